//! Kamailio evapi connections (`--kamailio-evapi ADDR`, `[[agents.kamailio]]
//! evapi = "ADDR"`): one task per Kamailio, connecting as a client and
//! reconnecting on a Fibonacci back-off ([`agents::evapi::Backoff`]), its
//! bytes fed to the sans-IO [`EvapiAgent`]. The operations it yields run
//! through the same entry point as the SessionSv1 API
//! ([`super::sessionsapi::call`]), each on its own task, and their answers
//! go back through the agent. The connection registers itself with the
//! session manager as the owner `evapi:ADDR` ([`sessions::Disconnect`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::evapi::{AgentConfig, Backoff, EvapiAgent, Operation, SERVER_ERROR};
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, watch};

use super::methods::State;

/// `[agents]`: the active agents.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct AgentsSection {
    /// `[[agents.kamailio]]`: Kamailio evapi connections.
    pub kamailio: Vec<KamailioSection>,
}

/// `[[agents.kamailio]]`: one Kamailio's evapi.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct KamailioSection {
    /// Kamailio's evapi listener, `HOST:PORT`.
    pub evapi: String,
    /// `OriginHost` of its events (its address when not set).
    pub alias: Option<String>,
    /// Write a CDR for every call end, not only those flagged `*cdrs`.
    pub create_cdr: bool,
}

/// The first reconnect delay and the longest.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One Kamailio: the agent core, shared by the connection task, the
/// operation tasks and the session manager's disconnects.
struct Link {
    agent: Mutex<EvapiAgent>,
    /// Wakes the connection task when bytes are queued.
    wake: Notify,
    /// The sessions started here: CGRID to OriginID.
    calls: Mutex<HashMap<String, String>>,
}

impl Link {
    fn agent(&self) -> std::sync::MutexGuard<'_, EvapiAgent> {
        self.agent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl sessions::Disconnect for Link {
    fn disconnect(
        &self,
        session: &sessions::SessionKey,
        reason: &str,
    ) -> Result<(), sessions::Error> {
        let origin = self
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&session.cgrid)
            .cloned();
        let sent = origin.is_some_and(|o| self.agent().disconnect(&o, reason));
        if !sent {
            return Err(sessions::Error::Disconnect(format!(
                "no Kamailio dialog for session {session}"
            )));
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// Starts one task per Kamailio of `cli` and `cfg`; they end when `stop`
/// turns true.
pub(crate) fn start(
    state: &Arc<State>,
    cli: &[String],
    cfg: &AgentsSection,
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut all: Vec<KamailioSection> = cli
        .iter()
        .map(|a| KamailioSection {
            evapi: a.clone(),
            ..KamailioSection::default()
        })
        .collect();
    all.extend(cfg.kamailio.iter().cloned());
    all.into_iter()
        .map(|k| {
            let owner = format!("evapi:{}", k.evapi);
            let link = Arc::new(Link {
                agent: Mutex::new(EvapiAgent::new(AgentConfig {
                    origin_host: k.alias.clone().unwrap_or_else(|| k.evapi.clone()),
                    create_cdr: k.create_cdr,
                    id_prefix: owner.clone(),
                    ..AgentConfig::default()
                })),
                wake: Notify::new(),
                calls: Mutex::default(),
            });
            if let Some(s) = state.sessions.get() {
                s.owners
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(
                        owner,
                        Arc::clone(&link) as Arc<dyn sessions::Disconnect + Send + Sync>,
                    );
            }
            tokio::spawn(run(Arc::clone(state), k.evapi, link, stop.clone()))
        })
        .collect()
}

/// Connects, serves, reconnects, until `stop`.
async fn run(state: Arc<State>, addr: String, link: Arc<Link>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
    while !*stop.borrow() {
        let conn = tokio::select! {
            c = TcpStream::connect(&addr) => c,
            _ = stop.changed() => return,
        };
        match conn {
            Ok(stream) => {
                backoff.reset();
                tracing::info!(kamailio = %addr, "evapi connected");
                link.agent().reconnected();
                if let Err(e) = serve(&state, stream, &link, &mut stop).await {
                    tracing::warn!(kamailio = %addr, error = %e, "evapi connection lost");
                }
            }
            Err(e) => tracing::debug!(kamailio = %addr, error = %e, "evapi connect failed"),
        }
        let wait = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One connection: reads and writes until it fails or `stop`.
async fn serve(
    state: &Arc<State>,
    mut stream: TcpStream,
    link: &Arc<Link>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        flush(&mut stream, link).await?;
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = n?;
                if n == 0 {
                    anyhow::bail!("closed by Kamailio");
                }
                let data = buf.get(..n).unwrap_or_default();
                let ops = link.agent().handle_bytes(data, chrono::Utc::now())?;
                for op in ops {
                    match op {
                        Ok(op) => {
                            tokio::spawn(execute(Arc::clone(state), Arc::clone(link), op));
                        }
                        Err(e) => tracing::warn!(error = %e, "evapi message refused"),
                    }
                }
            }
            () = link.wake.notified() => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Writes what the agent queued.
async fn flush(stream: &mut TcpStream, link: &Link) -> std::io::Result<()> {
    loop {
        let next = link.agent().poll_transmit();
        match next {
            Some(bytes) => stream.write_all(&bytes).await?,
            None => return Ok(()),
        }
    }
}

/// Runs one operation through the SessionSv1 entry point and queues its
/// answer.
async fn execute(state: Arc<State>, link: Arc<Link>, op: Operation) {
    let method = op.method().unwrap_or_default();
    match op {
        Operation::Authorize { reply_to, args }
        | Operation::ProcessMessage { reply_to, args }
        | Operation::ProcessCdr { reply_to, args } => {
            let out = call(&state, method, &args).await;
            let mut agent = link.agent();
            match &out {
                Ok(v) => agent.reply(&reply_to, Ok(v)),
                Err(e) => agent.reply(&reply_to, Err(e)),
            }
        }
        Operation::Initiate {
            dialog,
            origin_id,
            args,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            let cgrid = sessions::cgrid(&origin_id, host);
            link.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(cgrid.clone(), origin_id);
            if let Err(e) = call(&state, method, &args).await {
                tracing::warn!(error = %e, "evapi call start refused: disconnecting");
                link.calls
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&cgrid);
                link.agent().disconnect_dialog(&dialog, SERVER_ERROR);
            }
        }
        Operation::Terminate {
            origin_id,
            args,
            process_cdr,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            link.calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&sessions::cgrid(&origin_id, host));
            if let Err(e) = call(&state, method, &args).await {
                tracing::warn!(error = %e, "evapi call end: terminate failed");
            }
            if process_cdr && let Err(e) = call(&state, "SessionSv1.ProcessCDR", &args).await {
                tracing::warn!(error = %e, "evapi call end: CDR refused");
            }
        }
        Operation::DlgList { dialogs } => {
            tracing::debug!(
                dialogs = dialogs.len(),
                "evapi dialog list (session sync not wired yet)"
            );
        }
    }
    link.wake.notify_one();
}

/// A SessionSv1 method as the API runs it: its reply object, or its
/// error's text.
async fn call(state: &Arc<State>, method: &str, args: &Value) -> Result<Value, String> {
    let text = super::sessionsapi::call(state, method, args)
        .await
        .map_err(|e| e.message.clone())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}
