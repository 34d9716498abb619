//! OpenSIPS agents (`[[agents.opensips]] listen = "ADDR"`, `mi = "ADDR"`):
//! per OpenSIPS, a UDP socket receiving its `event_datagram` events and
//! one sending `mi_datagram` commands. A subscription task subscribes
//! (`event_subscribe` of [`agents::osips::mi::EVENTS`]) at start and
//! renews before expiry ([`Subscription`]), at once when OpenSIPS says it
//! restarted. The events' operations run one after the other through the
//! SessionSv1 entry point ([`super::sessionsapi::call_as`], owner
//! `opensips:LISTEN`); the session manager's disconnects become
//! `dlg_end_dlg` commands ([`sessions::Disconnect`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::osips::mi::{self, Subscription};
use agents::osips::{AgentConfig, Operation, OsipsAgent, SERVER_ERROR};
use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, watch};

use super::methods::State;

/// `[[agents.opensips]]`: one OpenSIPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct OpensipsSection {
    /// Where its events arrive, `HOST:PORT` (UDP).
    pub listen: String,
    /// Its `mi_datagram` socket, `HOST:PORT` (UDP).
    pub mi: String,
    /// The address put in the subscriptions (`udp:ADVERTISE`), when
    /// `listen` is a wildcard address; by default the listen address, or
    /// the MI socket's local address for a wildcard.
    pub advertise: Option<String>,
    /// `OriginHost` of its sessions and CDRs (its MI address when not
    /// set).
    pub alias: Option<String>,
    /// Write a CDR at each call's BYE (CGRateS's `create_cdr`).
    pub create_cdr: bool,
    /// The subscriptions' lifetime in seconds (renewed before it ends).
    pub subscribe_expire_secs: u64,
}

impl Default for OpensipsSection {
    fn default() -> Self {
        OpensipsSection {
            listen: "127.0.0.1:2020".into(),
            mi: "127.0.0.1:8020".into(),
            advertise: None,
            alias: None,
            create_cdr: true,
            subscribe_expire_secs: 3600,
        }
    }
}

/// How long an MI reply is waited for.
const MI_TIMEOUT: Duration = Duration::from_secs(2);

/// One OpenSIPS: the agent core, shared by the event task, the
/// operation task and the session manager's disconnects.
struct Link {
    agent: Mutex<OsipsAgent>,
    /// Wakes the event task when MI commands are queued.
    wake: Notify,
    /// Wakes the subscription task (OpenSIPS restarted).
    resubscribe: Notify,
    /// The sessions started here: CGRID to OriginID.
    calls: Mutex<HashMap<String, String>>,
    owner: String,
}

impl Link {
    fn agent(&self) -> std::sync::MutexGuard<'_, OsipsAgent> {
        self.agent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl sessions::Disconnect for Link {
    fn disconnect(
        &self,
        session: &sessions::SessionKey,
        reason: &str,
    ) -> Result<(), sessions::Error> {
        let origin = self.calls().get(&session.cgrid).cloned();
        if !origin.is_some_and(|o| self.agent().disconnect(&o)) {
            return Err(sessions::Error::Disconnect(format!(
                "no OpenSIPS dialog for session {session}"
            )));
        }
        tracing::info!(session = %session, reason, "OpenSIPS dialog ended (dlg_end_dlg)");
        self.wake.notify_one();
        Ok(())
    }
}

/// Binds each OpenSIPS's sockets and starts its tasks; they end when
/// `stop` turns true.
///
/// # Errors
/// An address that does not parse or a socket that cannot be bound.
pub(crate) fn start(
    state: &Arc<State>,
    cfg: &[OpensipsSection],
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for o in cfg {
        let mi_addr: SocketAddr =
            o.mi.parse()
                .with_context(|| format!("[[agents.opensips]] mi {:?}", o.mi))?;
        let events = std::net::UdpSocket::bind(&o.listen)
            .with_context(|| format!("[[agents.opensips]] listen {:?}", o.listen))?;
        let local = events.local_addr()?;
        events.set_nonblocking(true)?;
        let events = UdpSocket::from_std(events)?;
        let any: SocketAddr = if mi_addr.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let mi_sock = std::net::UdpSocket::bind(any)?;
        mi_sock.connect(mi_addr)?;
        let advertise = match &o.advertise {
            Some(a) => a.clone(),
            None if local.ip().is_unspecified() => {
                format!("{}:{}", mi_sock.local_addr()?.ip(), local.port())
            }
            None => local.to_string(),
        };
        mi_sock.set_nonblocking(true)?;
        let mi_sock = UdpSocket::from_std(mi_sock)?;
        let owner = format!("opensips:{}", o.listen);
        let link = Arc::new(Link {
            agent: Mutex::new(OsipsAgent::new(AgentConfig {
                origin_host: o.alias.clone().unwrap_or_else(|| mi_addr.ip().to_string()),
                create_cdr: o.create_cdr,
                id_prefix: owner.clone(),
                ..AgentConfig::default()
            })),
            wake: Notify::new(),
            resubscribe: Notify::new(),
            calls: Mutex::default(),
            owner: owner.clone(),
        });
        super::agentio::register(
            state,
            &owner,
            Arc::clone(&link) as Arc<dyn sessions::Disconnect + Send + Sync>,
        );
        tracing::info!(listen = %local, mi = %mi_addr, "OpenSIPS agent listening for datagram events");
        let sub = Subscription::new(Duration::from_secs(o.subscribe_expire_secs));
        tasks.push(tokio::spawn(subscribe(
            Arc::clone(&link),
            mi_addr,
            format!("udp:{advertise}"),
            sub,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(serve(
            Arc::clone(state),
            events,
            mi_sock,
            link,
            stop.clone(),
        )));
    }
    Ok(tasks)
}

/// Keeps the subscriptions alive until `stop`.
async fn subscribe(
    link: Arc<Link>,
    mi_addr: SocketAddr,
    socket: String,
    mut sub: Subscription,
    mut stop: watch::Receiver<bool>,
) {
    let mut failing = false;
    loop {
        let now = chrono::Utc::now();
        if sub.due(now) {
            match subscribe_round(mi_addr, &sub.commands(&socket)).await {
                Ok(()) => {
                    if failing {
                        tracing::info!(mi = %mi_addr, "OpenSIPS subscriptions accepted again");
                    }
                    failing = false;
                    sub.succeeded(chrono::Utc::now());
                }
                Err(e) => {
                    if failing {
                        tracing::debug!(mi = %mi_addr, error = %e, "OpenSIPS subscription failed");
                    } else {
                        tracing::warn!(mi = %mi_addr, error = %e, "OpenSIPS subscription failed: retrying");
                    }
                    failing = true;
                    sub.failed(chrono::Utc::now());
                }
            }
        }
        let wait = sub
            .next_due()
            .and_then(|t| (t - chrono::Utc::now()).to_std().ok())
            .unwrap_or_default();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = link.resubscribe.notified() => sub.restart(),
            _ = stop.changed() => return,
        }
    }
}

/// One round of `event_subscribe` commands on a socket of its own, each
/// answered `200 OK` within [`MI_TIMEOUT`].
async fn subscribe_round(mi_addr: SocketAddr, cmds: &[Vec<u8>]) -> anyhow::Result<()> {
    let any = if mi_addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = UdpSocket::bind(any).await?;
    sock.connect(mi_addr).await?;
    let mut buf = vec![0u8; 65_535];
    for cmd in cmds {
        sock.send(cmd).await?;
        let n = tokio::time::timeout(MI_TIMEOUT, sock.recv(&mut buf))
            .await
            .context("no MI reply")??;
        let reply = buf.get(..n).unwrap_or_default();
        if !mi::reply_ok(reply) {
            anyhow::bail!("MI answered {:?}", String::from_utf8_lossy(reply));
        }
    }
    Ok(())
}

/// Reads events and sends the queued MI commands until `stop`.
async fn serve(
    state: Arc<State>,
    events: UdpSocket,
    mi_sock: UdpSocket,
    link: Arc<Link>,
    mut stop: watch::Receiver<bool>,
) {
    let (ops_tx, mut ops_rx) = tokio::sync::mpsc::channel::<Operation>(super::agentio::OPS_QUEUE);
    let (st, ln) = (Arc::clone(&state), Arc::clone(&link));
    tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            execute(&st, &ln, op).await;
        }
    });
    let mut buf = vec![0u8; 65_536];
    let mut reply = vec![0u8; 65_536];
    loop {
        flush(&mi_sock, &link).await;
        tokio::select! {
            r = events.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::debug!(error = %e, "OpenSIPS event socket");
                        continue;
                    }
                };
                let data = buf.get(..n).unwrap_or_default();
                let op = link.agent().handle_datagram(data, chrono::Utc::now());
                match op {
                    Ok(Some(Operation::Resubscribe)) => {
                        tracing::info!(from = %from, "OpenSIPS restarted: subscribing again");
                        link.resubscribe.notify_one();
                    }
                    Ok(Some(op)) => {
                        if ops_tx.send(op).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(from = %from, error = %e, "OpenSIPS event refused"),
                }
            }
            r = mi_sock.recv(&mut reply) => {
                if let Ok(n) = r {
                    let text = reply.get(..n).unwrap_or_default();
                    if !mi::reply_ok(text) {
                        tracing::warn!(reply = %String::from_utf8_lossy(text), "OpenSIPS MI command failed");
                    }
                }
            }
            () = link.wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

/// Sends the MI commands the agent queued.
async fn flush(mi_sock: &UdpSocket, link: &Link) {
    loop {
        let next = link.agent().poll_transmit();
        let Some(cmd) = next else { return };
        if let Err(e) = mi_sock.send(&cmd).await {
            tracing::warn!(error = %e, "OpenSIPS MI command not sent");
        }
    }
}

/// Runs one operation through the SessionSv1 entry point.
async fn execute(state: &Arc<State>, link: &Link, op: Operation) {
    let method = op.method().unwrap_or_default();
    match op {
        Operation::Initiate {
            dialog,
            origin_id,
            args,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            let cgrid = sessions::cgrid(&origin_id, host);
            link.calls().insert(cgrid.clone(), origin_id.clone());
            if let Err(e) = call(state, link, method, &args).await {
                tracing::warn!(error = %e, "OpenSIPS call start refused: ending the dialog");
                link.calls().remove(&cgrid);
                let mut agent = link.agent();
                agent.forget(&origin_id);
                agent.disconnect_dialog(&dialog, SERVER_ERROR);
            }
        }
        Operation::Terminate {
            origin_id,
            args,
            process_cdr,
        } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            link.calls().remove(&sessions::cgrid(&origin_id, host));
            if let Err(e) = call(state, link, method, &args).await {
                tracing::warn!(error = %e, "OpenSIPS call end: terminate failed");
            }
            if process_cdr && let Err(e) = call(state, link, "SessionSv1.ProcessCDR", &args).await {
                tracing::warn!(error = %e, "OpenSIPS call end: CDR refused");
            }
        }
        Operation::ProcessCdr { args } => {
            if let Err(e) = call(state, link, method, &args).await {
                tracing::warn!(error = %e, "OpenSIPS CDR refused");
            }
        }
        Operation::Resubscribe => link.resubscribe.notify_one(),
    }
    link.wake.notify_one();
}

/// A SessionSv1 method as the API runs it, on behalf of this OpenSIPS.
async fn call(
    state: &Arc<State>,
    link: &Link,
    method: &str,
    args: &Value,
) -> Result<Value, String> {
    super::agentio::call(state, &link.owner, method, args).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use sessions::Disconnect as _;

    #[test]
    fn the_session_managers_disconnect_becomes_dlg_end_dlg() {
        let link = Link {
            agent: Mutex::new(OsipsAgent::new(AgentConfig {
                origin_host: "10.0.0.9".into(),
                ..AgentConfig::default()
            })),
            wake: Notify::new(),
            resubscribe: Notify::new(),
            calls: Mutex::default(),
            owner: "opensips:test".into(),
        };
        let invite = "E_ACC_EVENT\nmethod::INVITE\ncallid::c1\ntime::1430579770\n\
                      cgr_account::1001\ncgr_destination::1002\ndialog_id::12:34\n";
        let op = link
            .agent()
            .handle_datagram(invite.as_bytes(), chrono::Utc::now())
            .unwrap();
        assert!(matches!(op, Some(Operation::Initiate { .. })));
        let cgrid = sessions::cgrid("c1", "10.0.0.9");
        link.calls().insert(cgrid.clone(), "c1".into());
        let key = sessions::SessionKey {
            cgrid,
            run_id: "*default".into(),
        };
        link.disconnect(&key, "INSUFFICIENT_CREDIT").unwrap();
        assert_eq!(
            link.agent().poll_transmit().unwrap(),
            b":dlg_end_dlg:\n12\n34\n\n".to_vec()
        );
        let other = sessions::SessionKey {
            cgrid: "x".into(),
            run_id: "*default".into(),
        };
        assert!(link.disconnect(&other, "X").is_err());
        assert!(link.agent().poll_transmit().is_none());
    }

    #[test]
    fn the_config_section_reads() {
        let s: OpensipsSection = toml::from_str(
            "listen = \"0.0.0.0:2020\"\nmi = \"10.0.0.1:8020\"\nsubscribe-expire-secs = 60\n",
        )
        .unwrap();
        assert_eq!(s.listen, "0.0.0.0:2020");
        assert_eq!(s.subscribe_expire_secs, 60);
        assert!(s.create_cdr);
        assert!(toml::from_str::<OpensipsSection>("lisen = \"x\"").is_err());
    }
}
