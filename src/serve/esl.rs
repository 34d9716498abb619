//! FreeSWITCH event socket connections (`--freeswitch-esl ADDR`,
//! `[[agents.freeswitch]] address = "ADDR"`): one task per FreeSWITCH,
//! connecting as an inbound event socket client and reconnecting on a
//! Fibonacci back-off, its bytes fed to the sans-IO [`EslAgent`]. The
//! operations it yields run through the SessionSv1 entry point
//! ([`super::sessionsapi::call_as`], owner `freeswitch:ADDR`), one after the
//! other in the order the events came; their outcomes go back to the agent
//! as commands (`uuid_setvar`, `uuid_transfer`, `sched_hangup`,
//! `uuid_kill`). The connection is the owner's [`sessions::Disconnect`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::esl::{AgentConfig, EslAgent, Operation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::methods::State;

/// `[[agents.freeswitch]]`: one FreeSWITCH's event socket.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct FreeswitchSection {
    /// The event socket, `HOST:PORT` (FreeSWITCH listens on 8021).
    pub address: String,
    /// The event socket password.
    pub password: String,
    /// `OriginHost` of its calls (its address when not set).
    pub alias: Option<String>,
    /// Write a CDR for every hangup, not only for calls flagged `*cdrs`.
    pub create_cdr: bool,
    /// Authorize calls on `CHANNEL_PARK`.
    pub subscribe_park: bool,
    /// Subscribe to JSON events rather than plain ones.
    pub json_events: bool,
    /// Seconds between `show channels` session syncs; 0: only when the
    /// connection (re)opens.
    pub sync_interval_secs: u64,
}

impl Default for FreeswitchSection {
    fn default() -> Self {
        FreeswitchSection {
            address: "127.0.0.1:8021".into(),
            password: "ClueCon".into(),
            alias: None,
            create_cdr: false,
            subscribe_park: true,
            json_events: false,
            sync_interval_secs: 0,
        }
    }
}

/// One FreeSWITCH: the agent core shared by the connection task, the
/// operation task and the session manager's disconnects.
struct Link {
    agent: Mutex<EslAgent>,
    wake: Notify,
    /// The sessions answered here: CGRID to channel UUID.
    calls: Mutex<HashMap<String, String>>,
    owner: String,
}

impl Link {
    fn agent(&self) -> std::sync::MutexGuard<'_, EslAgent> {
        self.agent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl super::agentio::Client for Link {
    type Op = Operation;
    const PEER: &'static str = "freeswitch";

    fn connected(&self) {
        // Calls FreeSWITCH lost while we were away end now.
        let mut agent = self.agent();
        agent.reconnected();
        agent.request_channels();
    }

    fn sync(&self) {
        self.agent().request_channels();
    }

    fn ready(&self) -> bool {
        // Logged in: a connection refused at login backs off further.
        self.agent().is_ready()
    }

    fn handle(&self, data: &[u8]) -> Result<Vec<Result<Operation, agents::Error>>, agents::Error> {
        self.agent().handle_bytes(data)
    }

    fn poll_transmit(&self) -> Option<Vec<u8>> {
        self.agent().poll_transmit()
    }

    fn wake(&self) -> &Notify {
        &self.wake
    }

    async fn execute(state: Arc<State>, link: Arc<Self>, op: Operation) {
        execute(&state, &link, op).await;
    }
}

impl sessions::Disconnect for Link {
    fn disconnect(
        &self,
        session: &sessions::SessionKey,
        reason: &str,
    ) -> Result<(), sessions::Error> {
        let uuid = self.calls().get(&session.cgrid).cloned();
        let sent = uuid.is_some_and(|u| self.agent().disconnect(&u, reason));
        if !sent {
            return Err(sessions::Error::Disconnect(format!(
                "no FreeSWITCH channel for session {session}"
            )));
        }
        self.wake.notify_one();
        Ok(())
    }
}

/// Starts one task per FreeSWITCH of `cli` and `cfg`; they end when `stop`
/// turns true.
pub(crate) fn start(
    state: &Arc<State>,
    cli: &[String],
    cfg: &[FreeswitchSection],
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut all: Vec<FreeswitchSection> = cli
        .iter()
        .map(|a| FreeswitchSection {
            address: a.clone(),
            ..FreeswitchSection::default()
        })
        .collect();
    all.extend(cfg.iter().cloned());
    all.into_iter()
        .map(|f| {
            let owner = format!("freeswitch:{}", f.address);
            let link = Arc::new(Link {
                agent: Mutex::new(EslAgent::new(AgentConfig {
                    password: f.password.clone(),
                    origin_host: f.alias.clone().unwrap_or_else(|| f.address.clone()),
                    create_cdr: f.create_cdr,
                    subscribe_park: f.subscribe_park,
                    json: f.json_events,
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
            let sync = Duration::from_secs(f.sync_interval_secs);
            tokio::spawn(super::agentio::run_client(
                Arc::clone(state),
                f.address,
                link,
                sync,
                stop.clone(),
            ))
        })
        .collect()
}

/// Runs one operation and hands its outcome back to the agent.
async fn execute(state: &Arc<State>, link: &Link, op: Operation) {
    match op {
        Operation::Authorize {
            uuid,
            dest_nr,
            args,
        } => {
            let get_max_usage = args["GetMaxUsage"] == true;
            let out = call(state, link, "SessionSv1.AuthorizeEvent", &args).await;
            if let Err(e) = &out {
                tracing::warn!(uuid = %uuid, error = %e, "FreeSWITCH park: authorization refused");
            }
            let outcome = out.as_ref().map_err(String::as_str);
            link.agent()
                .authorized(&uuid, &dest_nr, get_max_usage, outcome);
        }
        Operation::Initiate {
            uuid,
            prepaid,
            args,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            let cgrid = sessions::cgrid(&uuid, host);
            link.calls().insert(cgrid.clone(), uuid.clone());
            let out = call(state, link, "SessionSv1.InitiateSession", &args).await;
            if let Err(e) = &out {
                tracing::warn!(uuid = %uuid, error = %e, "FreeSWITCH answer refused: disconnecting");
                link.calls().remove(&cgrid);
            }
            let outcome = out.as_ref().map_err(String::as_str);
            link.agent().initiated(&uuid, prepaid, outcome);
        }
        Operation::Terminate {
            uuid,
            answered,
            process_cdr,
            args,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            link.calls().remove(&sessions::cgrid(&uuid, host));
            if answered
                && let Err(e) = call(state, link, "SessionSv1.TerminateSession", &args).await
            {
                tracing::warn!(uuid = %uuid, error = %e, "FreeSWITCH hangup: terminate failed");
            }
            if process_cdr && let Err(e) = call(state, link, "SessionSv1.ProcessCDR", &args).await {
                tracing::warn!(uuid = %uuid, error = %e, "FreeSWITCH hangup: CDR refused");
            }
        }
        Operation::Channels { uuids } => sync_sessions(state, link, &uuids).await,
    }
}

/// The reason a session FreeSWITCH no longer has is ended with.
const SYNC_REASON: &str = "SESSION_SYNC";

/// Session sync: this FreeSWITCH's sessions (by `OriginHost`) whose
/// channel `show channels` no longer lists are ended, their CDRs written,
/// as `SessionSv1.ForceDisconnect` ends them.
async fn sync_sessions(state: &Arc<State>, link: &Link, uuids: &[String]) {
    let host = link.agent().config().origin_host.clone();
    let filter = json!({"Filters": [format!("*string:~*req.OriginHost:{host}")]});
    let Ok(Value::Array(active)) = call(state, link, "SessionSv1.GetActiveSessions", &filter).await
    else {
        return;
    };
    for s in active {
        let origin = s["OriginID"].as_str().unwrap_or_default();
        if origin.is_empty() || uuids.iter().any(|u| u == origin) {
            continue;
        }
        tracing::info!(
            uuid = origin,
            "FreeSWITCH session sync: no such channel, ending the session"
        );
        let cgrid = s["CGRID"].as_str().unwrap_or_default();
        link.calls().remove(cgrid);
        link.agent().forget(origin);
        let one =
            json!({"Filters": [format!("*string:~*req.CGRID:{cgrid}")], "Reason": SYNC_REASON});
        if let Err(e) = call(state, link, "SessionSv1.ForceDisconnect", &one).await {
            tracing::warn!(uuid = origin, error = %e, "FreeSWITCH session sync: ending failed");
        }
    }
}

/// A SessionSv1 method run as this connection: its reply object, or its
/// error's text.
async fn call(
    state: &Arc<State>,
    link: &Link,
    method: &str,
    args: &Value,
) -> Result<Value, String> {
    super::agentio::call(state, &link.owner, method, args).await
}
