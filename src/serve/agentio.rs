//! What every agent's I/O loop (`evapi.rs`, `esl.rs`, `ari.rs`,
//! `osips.rs`, ...) does the same way with the session manager: register as
//! the `Disconnect` owner of its sessions, and run SessionSv1 methods on its
//! own behalf; and the connect-serve-reconnect loop of the agents that
//! connect to their switch as clients (evapi, ESL).

use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use agents::evapi::Backoff;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use super::methods::State;

/// Makes `link` the owner `owner` of the sessions an agent creates, so the
/// session manager's disconnects (money run out, `ForceDisconnect`, TTL)
/// reach it.
pub(crate) fn register(
    state: &State,
    owner: &str,
    link: Arc<dyn sessions::Disconnect + Send + Sync>,
) {
    if let Some(s) = state.sessions.get() {
        s.owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(owner.to_owned(), link);
    }
}

/// A SessionSv1 method run as the API runs it, on behalf of the agent
/// `owner`: its reply object, or its error's text.
pub(crate) async fn call(
    state: &Arc<State>,
    owner: &str,
    method: &str,
    args: &Value,
) -> Result<Value, String> {
    let owner = sessions::Owner::Agent(owner.to_owned());
    let text = super::sessionsapi::call_as(state, method, args, owner)
        .await
        .map_err(|e| e.message.clone())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// What an agent that connects to its switch as a client (evapi, ESL)
/// gives the shared connection loop ([`run_client`]).
pub(crate) trait Client: Send + Sync + 'static {
    /// One operation its core yields.
    type Op: Send + 'static;
    /// For logs: the switch (`kamailio`, `freeswitch`).
    const PEER: &'static str;
    /// A connection is open: calls the switch lost while we were away
    /// end, and the switch's list of calls is asked for.
    fn connected(&self);
    /// The periodic session sync: ask for the switch's list of calls.
    fn sync(&self);
    /// Whether the connection that just ended got far enough (logged in)
    /// for the back-off to start over.
    fn ready(&self) -> bool;
    /// Bytes read: the operations they complete (each or its error), or
    /// a stream that cannot go on.
    fn handle(&self, data: &[u8]) -> Result<Vec<Result<Self::Op, agents::Error>>, agents::Error>;
    /// The next bytes to write.
    fn poll_transmit(&self) -> Option<Vec<u8>>;
    /// Notified when bytes are queued.
    fn wake(&self) -> &Notify;
    /// Runs one operation and queues its answer.
    fn execute(state: Arc<State>, link: Arc<Self>, op: Self::Op)
    -> impl Future<Output = ()> + Send;
}

/// Operations read and not yet run, per connection (reading waits when
/// it is full); every agent's queue.
pub(crate) const OPS_QUEUE: usize = 1024;
/// The first reconnect delay and the longest, for every agent that
/// reconnects.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_millis(100);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Connects to `addr`, serves, reconnects on a Fibonacci back-off, until
/// `stop`. A failed connect is logged once per streak of failures.
pub(crate) async fn run_client<C: Client>(
    state: Arc<State>,
    addr: String,
    link: Arc<C>,
    sync: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
    let mut failing = false;
    let peer = C::PEER;
    while !*stop.borrow() {
        let conn = tokio::select! {
            c = TcpStream::connect(&addr) => c,
            _ = stop.changed() => return,
        };
        match conn {
            Ok(stream) => {
                failing = false;
                tracing::info!(%peer, %addr, "agent connected");
                link.connected();
                let out = serve(&state, stream, &link, sync, &mut stop).await;
                if link.ready() {
                    backoff.reset();
                }
                if let Err(e) = out {
                    tracing::warn!(%peer, %addr, error = %e, "agent connection lost");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(%peer, %addr, error = %e, "agent connect failed: retrying");
            }
            Err(e) => tracing::debug!(%peer, %addr, error = %e, "agent connect failed"),
        }
        let wait = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection: reads and writes until it fails or `stop`. Operations
/// run one after the other, in the order the switch sent them, on a task
/// of their own: a call's end never overtakes its start, and a call list
/// is compared with the sessions started before it.
async fn serve<C: Client>(
    state: &Arc<State>,
    mut stream: TcpStream,
    link: &Arc<C>,
    sync: Duration,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    // The first tick is at once (the connect's sync is queued): skipped.
    let period = if sync.is_zero() {
        Duration::from_secs(86_400 * 365)
    } else {
        sync
    };
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    let (ops_tx, mut ops_rx) = tokio::sync::mpsc::channel::<C::Op>(OPS_QUEUE);
    let (st, ln) = (Arc::clone(state), Arc::clone(link));
    tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            C::execute(Arc::clone(&st), Arc::clone(&ln), op).await;
            ln.wake().notify_one();
        }
    });
    loop {
        while let Some(bytes) = link.poll_transmit() {
            stream.write_all(&bytes).await?;
        }
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    anyhow::bail!("closed by {}", C::PEER);
                }
                let data = buf.get(..n).unwrap_or_default();
                for op in link.handle(data)? {
                    match op {
                        Ok(op) => {
                            if ops_tx.send(op).await.is_err() {
                                anyhow::bail!("the operation task ended");
                            }
                        }
                        Err(e) => tracing::warn!(peer = C::PEER, error = %e, "message refused"),
                    }
                }
            }
            () = link.wake().notified() => {}
            _ = tick.tick() => link.sync(),
            _ = stop.changed() => return Ok(()),
        }
    }
}
