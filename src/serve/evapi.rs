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

use agents::evapi::{ActiveDialog, AgentConfig, EvapiAgent, Operation, SERVER_ERROR};
use serde::Deserialize;
use serde_json::{Value, json};
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
    /// `[[agents.radius]]`: RADIUS authentication and accounting.
    pub radius: Vec<super::radius::RadiusSection>,
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

impl super::agentio::Client for Link {
    type Op = Operation;
    const PEER: &'static str = "kamailio";

    fn connected(&self) {
        // Sessions Kamailio lost while we were away end now.
        let mut agent = self.agent();
        agent.reconnected();
        agent.request_dlg_list();
    }

    fn sync(&self) {
        self.agent().request_dlg_list();
    }

    fn ready(&self) -> bool {
        true
    }

    fn handle(&self, data: &[u8]) -> Result<Vec<Result<Operation, agents::Error>>, agents::Error> {
        self.agent().handle_bytes(data, chrono::Utc::now())
    }

    fn poll_transmit(&self) -> Option<Vec<u8>> {
        self.agent().poll_transmit()
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    async fn execute(state: Arc<State>, link: Arc<Self>, op: Operation) {
        execute(state, link, op).await;
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
            tokio::spawn(super::agentio::run_client(
                Arc::clone(state),
                k.evapi,
                link,
                sync,
                stop.clone(),
            ))
        })
        .collect()
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
