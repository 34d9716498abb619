//! Kamailio evapi connections (`--kamailio-evapi ADDR`, `[[agents.kamailio]]
//! evapi = "ADDR"`): one task per Kamailio, connecting as a client and
//! reconnecting on a Fibonacci back-off ([`agents::evapi::Backoff`]), its
//! bytes fed to the sans-IO [`EvapiAgent`]. The operations it yields run
//! through the same entry point as the SessionSv1 API
//! ([`super::sessionsapi::call`]), one after the other in the order
//! Kamailio sent them (one task per connection), and their answers
//! go back through the agent. The connection registers itself with the
//! session manager as the owner `evapi:ADDR` ([`sessions::Disconnect`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::evapi::{ActiveDialog, AgentConfig, Backoff, EvapiAgent, Operation, SERVER_ERROR};
use serde::Deserialize;
use serde_json::{Value, json};
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
    /// `[[agents.opensips]]`: OpenSIPS event_datagram agents.
    pub opensips: Vec<super::osips::OpensipsSection>,
    /// `[[agents.asterisk]]`: Asterisk ARI connections.
    pub asterisk: Vec<super::ari::AsteriskSection>,
    /// `[[agents.freeswitch]]`: FreeSWITCH event socket connections.
    pub freeswitch: Vec<super::esl::FreeswitchSection>,
    /// `[[agents.diameter]]`: Diameter credit-control (Gy) listeners.
    pub diameter: Vec<super::diameter::DiameterSection>,
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
    /// Seconds between dialog list requests (session sync); 0: only when
    /// the connection (re)opens.
    pub sync_interval_secs: u64,
}

/// Operations read and not yet run, per connection (reading waits when
/// it is full).
const OPS_QUEUE: usize = 1024;

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
    /// The owner name the sessions started here carry (`evapi:ADDR`).
    owner: String,
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
                owner: owner.clone(),
            });
            super::agentio::register(
                state,
                &owner,
                Arc::clone(&link) as Arc<dyn sessions::Disconnect + Send + Sync>,
            );
            let sync = Duration::from_secs(k.sync_interval_secs);
            tokio::spawn(run(Arc::clone(state), k.evapi, link, sync, stop.clone()))
        })
        .collect()
}

/// Connects, serves, reconnects, until `stop`.
async fn run(
    state: Arc<State>,
    addr: String,
    link: Arc<Link>,
    sync: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
    let mut failing = false;
    while !*stop.borrow() {
        let conn = tokio::select! {
            c = TcpStream::connect(&addr) => c,
            _ = stop.changed() => return,
        };
        match conn {
            Ok(stream) => {
                backoff.reset();
                failing = false;
                tracing::info!(kamailio = %addr, "evapi connected");
                {
                    // Sessions Kamailio lost while we were away end now.
                    let mut agent = link.agent();
                    agent.reconnected();
                    agent.request_dlg_list();
                }
                if let Err(e) = serve(&state, stream, &link, sync, &mut stop).await {
                    tracing::warn!(kamailio = %addr, error = %e, "evapi connection lost");
                }
            }
            // Said once per streak of failures, then only in debug logs.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(kamailio = %addr, error = %e, "evapi connect failed: retrying");
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
    sync: Duration,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    // Its first tick is at once (the (re)connect's dialog list is queued
    // already): skipped.
    let period = if sync.is_zero() {
        Duration::from_secs(86_400 * 365)
    } else {
        sync
    };
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    // Operations run one after the other, in the order Kamailio sent
    // them: a call's end never overtakes its start, and a dialog list
    // is compared with the sessions started before it.
    let (ops_tx, mut ops_rx) = tokio::sync::mpsc::channel::<Operation>(OPS_QUEUE);
    let (st, ln) = (Arc::clone(state), Arc::clone(link));
    tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            execute(Arc::clone(&st), Arc::clone(&ln), op).await;
        }
    });
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
                        Ok(op) => ops_tx.send(op).await?,
                        Err(e) => tracing::warn!(error = %e, "evapi message refused"),
                    }
                }
            }
            () = link.wake.notified() => {}
            _ = tick.tick() => link.agent().request_dlg_list(),
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
            let out = call(&state, &link, method, &args).await;
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
            if let Err(e) = call(&state, &link, method, &args).await {
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
            if let Err(e) = call(&state, &link, method, &args).await {
                tracing::warn!(error = %e, "evapi call end: terminate failed");
            }
            if process_cdr && let Err(e) = call(&state, &link, "SessionSv1.ProcessCDR", &args).await
            {
                tracing::warn!(error = %e, "evapi call end: CDR refused");
            }
        }
        Operation::DlgList { dialogs } => sync_sessions(&state, &link, &dialogs).await,
    }
    link.wake.notify_one();
}

/// A SessionSv1 method as the API runs it: its reply object, or its
/// error's text.
async fn call(
    state: &Arc<State>,
    link: &Link,
    method: &str,
    args: &Value,
) -> Result<Value, String> {
    super::agentio::call(state, &link.owner, method, args).await
}

/// The reason a session Kamailio no longer has is ended with.
const SYNC_REASON: &str = "SESSION_SYNC";

/// CGRateS's session sync: the sessions of this Kamailio (by
/// `OriginHost`) that its dialog list no longer has are ended, their CDRs
/// written, as `SessionSv1.ForceDisconnect` ends them.
async fn sync_sessions(state: &Arc<State>, link: &Link, dialogs: &[ActiveDialog]) {
    let host = link.agent().config().origin_host.clone();
    let filter = json!({"Filters": [format!("*string:~*req.OriginHost:{host}")]});
    let Ok(Value::Array(active)) = call(state, link, "SessionSv1.GetActiveSessions", &filter).await
    else {
        return;
    };
    for s in active {
        let origin = s["OriginID"].as_str().unwrap_or_default();
        let known = dialogs
            .iter()
            .any(|d| d.origin_id == origin && d.origin_host == host);
        if known || origin.is_empty() {
            continue;
        }
        tracing::info!(
            origin_id = origin,
            "evapi session sync: Kamailio has no such dialog, ending the session"
        );
        link.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, o| o != origin);
        link.agent().forget(origin);
        // by CGRID: an OriginID holds `;`, a filter's value separator
        let cgrid = s["CGRID"].as_str().unwrap_or_default();
        let one =
            json!({"Filters": [format!("*string:~*req.CGRID:{cgrid}")], "Reason": SYNC_REASON});
        if let Err(e) = call(state, link, "SessionSv1.ForceDisconnect", &one).await {
            tracing::warn!(origin_id = origin, error = %e, "evapi session sync: ending failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessions::Disconnect as _;

    #[test]
    fn the_session_managers_disconnect_reaches_the_dialog() {
        let link = Link {
            agent: Mutex::new(EvapiAgent::new(AgentConfig {
                origin_host: "kam".into(),
                ..AgentConfig::default()
            })),
            wake: Notify::new(),
            calls: Mutex::default(),
            owner: "evapi:test".into(),
        };
        let start = r#"{"event":"CGR_CALL_START","h_entry":"12","h_id":"34","OriginID":"c;t","AnswerTime":"1714564803","Account":"1001","Destination":"1002"}"#;
        let ops = link
            .agent()
            .handle_bytes(
                &agents::evapi::netstring::encode(start.as_bytes()),
                chrono::Utc::now(),
            )
            .unwrap();
        assert!(matches!(&ops[..], [Ok(Operation::Initiate { .. })]));
        let cgrid = sessions::cgrid("c;t", "kam");
        link.calls
            .lock()
            .unwrap()
            .insert(cgrid.clone(), "c;t".into());
        let key = sessions::SessionKey {
            cgrid,
            run_id: "*default".into(),
        };
        link.disconnect(&key, "INSUFFICIENT_CREDIT").unwrap();
        let sent = link.agent().poll_transmit().unwrap();
        let text = String::from_utf8(sent).unwrap();
        assert!(
            text.ends_with(r#""HashEntry":"12","HashId":"34","Reason":"INSUFFICIENT_CREDIT"},"#),
            "{text}"
        );
        // a session this connection did not start
        let other = sessions::SessionKey {
            cgrid: "x".into(),
            run_id: "*default".into(),
        };
        assert!(link.disconnect(&other, "X").is_err());
        assert!(link.agent().poll_transmit().is_none());
    }
}
