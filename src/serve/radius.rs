//! RADIUS agents (`[[agents.radius]] auth = "ADDR"`, `acct = "ADDR"`):
//! per agent, a UDP socket for Access-Requests, one for
//! Accounting-Requests and one (ephemeral) for the Disconnect-Requests
//! sent to the NASes' dynamic authorization ports. One task reads the
//! sockets and feeds the sans-IO [`RadiusAgent`]; the session calls it
//! asks for run on two worker tasks (authorization: up to 64 requests at
//! once; accounting: in order)
//! through the SessionSv1 entry point ([`super::agentio::call`], owner
//! `radius:AUTH`), and their replies go back from the socket the request
//! came in on. The agent registers as the owner of the sessions it starts
//! ([`sessions::Disconnect`]): the session manager's disconnects become
//! Disconnect-Requests, retried until the NAS ACKs or NAKs.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::radius::client::{Cidr, Client};
use agents::radius::dict::Dictionary;
use agents::radius::{AgentConfig, Counters, DropReason, Handled, Job, RadiusAgent, request};
use agents::template::{Processor, ProcessorCfg};
use anyhow::Context as _;
use chrono::Utc;
use serde::Deserialize;
use serde_json::Value;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};

use super::methods::State;

/// `[[agents.radius]]`: one RADIUS agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RadiusSection {
    /// Where Access-Requests arrive, `HOST:PORT` (UDP).
    pub auth: String,
    /// Where Accounting-Requests arrive, `HOST:PORT` (UDP).
    pub acct: String,
    /// The events' tenant.
    pub tenant: String,
    /// FreeRADIUS dictionary files loaded over the embedded base set
    /// (their `$INCLUDE`s relative to each file).
    pub dictionaries: Vec<String>,
    /// Request processors (CGRateS's `request_processors`), tried before
    /// the built-in ones (authorize, start, interim, stop).
    #[serde(alias = "request_processors")]
    pub request_processors: Vec<ProcessorCfg>,
    /// The built-in processors run after the configured ones (the first
    /// that matches a request takes it, as CGRateS selects).
    pub builtin_processors: bool,
    /// The NASes allowed.
    pub clients: Vec<RadiusClient>,
    /// How long answered requests are kept for duplicates, seconds.
    pub duplicate_window_secs: u64,
    /// Seconds between Disconnect-Request tries.
    pub dynauth_timeout_secs: u64,
    /// Disconnect-Request tries.
    pub dynauth_tries: u32,
}

impl Default for RadiusSection {
    fn default() -> Self {
        RadiusSection {
            auth: "127.0.0.1:1812".into(),
            acct: "127.0.0.1:1813".into(),
            tenant: "cgrates.org".into(),
            dictionaries: Vec::new(),
            request_processors: Vec::new(),
            builtin_processors: true,
            clients: Vec::new(),
            duplicate_window_secs: 30,
            dynauth_timeout_secs: 2,
            dynauth_tries: 3,
        }
    }
}

/// `[[agents.radius.clients]]`: NASes by address range.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RadiusClient {
    /// `ADDR/PREFIX` or `ADDR`.
    pub address: String,
    /// The shared secret.
    pub secret: String,
    /// The NASes' dynamic authorization port (RFC 5176: 3799).
    pub dynauth_port: u16,
    /// Drop Access-Requests without a Message-Authenticator.
    pub require_message_authenticator: bool,
}

impl Default for RadiusClient {
    fn default() -> Self {
        RadiusClient {
            address: String::new(),
            secret: String::new(),
            dynauth_port: 3799,
            require_message_authenticator: false,
        }
    }
}

/// Requests waiting for their session calls, per worker.
const JOB_QUEUE: usize = 1024;
/// The largest RADIUS packet.
const MAX_PACKET: usize = 4096;

/// One agent: the core, shared by the socket task, the workers and the
/// session manager's disconnects.
pub(crate) struct Link {
    agent: Mutex<RadiusAgent>,
    /// Wakes the socket task when a Disconnect-Request is queued.
    wake: Notify,
    /// `radius:AUTH`.
    owner: String,
}

impl Link {
    fn agent(&self) -> std::sync::MutexGuard<'_, RadiusAgent> {
        self.agent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl sessions::Disconnect for Link {
    fn disconnect(
        &self,
        session: &sessions::SessionKey,
        reason: &str,
    ) -> Result<(), sessions::Error> {
        if !self.agent().disconnect(&session.cgrid, Utc::now()) {
            return Err(sessions::Error::Disconnect(format!(
                "no RADIUS session {session}"
            )));
        }
        tracing::info!(session = %session, reason, "RADIUS Disconnect-Request queued");
        self.wake.notify_one();
        Ok(())
    }
}

/// The agents started, for `/metrics`.
static AGENTS: Mutex<Vec<Arc<Link>>> = Mutex::new(Vec::new());

/// Every agent's owner name and counters.
pub(crate) fn counters() -> Vec<(String, Counters)> {
    AGENTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(|l| (l.owner.clone(), l.agent().counters().clone()))
        .collect()
}

/// The core's settings from the section.
///
/// # Errors
/// A dictionary that does not load, a processor that does not compile,
/// a client range that does not parse.
pub(crate) fn agent_config(r: &RadiusSection, id_prefix: &str) -> anyhow::Result<AgentConfig> {
    let mut dict = Dictionary::builtin();
    for d in &r.dictionaries {
        dict.load_file(Path::new(d))
            .with_context(|| format!("[[agents.radius]] dictionaries {d:?}"))?;
    }
    let mut cfgs = r.request_processors.clone();
    if r.builtin_processors || cfgs.is_empty() {
        cfgs.extend(request::default_processors());
    }
    let processors = cfgs
        .iter()
        .map(Processor::compile)
        .collect::<Result<Vec<_>, _>>()
        .context("[[agents.radius]] request-processors")?;
    let clients = r
        .clients
        .iter()
        .map(|c| {
            anyhow::ensure!(
                !c.secret.is_empty(),
                "[[agents.radius.clients]] {:?}: empty secret",
                c.address
            );
            Ok(Client {
                net: Cidr::parse(&c.address)?,
                secret: c.secret.clone().into_bytes(),
                dynauth_port: c.dynauth_port,
                require_message_authenticator: c.require_message_authenticator,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(AgentConfig {
        tenant: r.tenant.clone(),
        clients,
        processors,
        dict: Arc::new(dict),
        dedup_ttl: Duration::from_secs(r.duplicate_window_secs),
        id_prefix: id_prefix.to_owned(),
        dynauth_timeout: Duration::from_secs(r.dynauth_timeout_secs.max(1)),
        dynauth_tries: r.dynauth_tries,
    })
}

fn bind(what: &str, addr: &str) -> anyhow::Result<(UdpSocket, SocketAddr)> {
    let s = std::net::UdpSocket::bind(addr)
        .with_context(|| format!("[[agents.radius]] {what} {addr:?}"))?;
    let local = s.local_addr()?;
    s.set_nonblocking(true)?;
    Ok((UdpSocket::from_std(s)?, local))
}

/// Binds each agent's sockets and starts its tasks; they end when `stop`
/// turns true.
///
/// # Errors
/// A bad section or a socket that cannot be bound.
pub(crate) fn start(
    state: &Arc<State>,
    cfg: &[RadiusSection],
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for r in cfg {
        let (auth, auth_local) = bind("auth", &r.auth)?;
        let (acct, acct_local) = bind("acct", &r.acct)?;
        let any = if auth_local.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let (dynauth, _) = bind("dynamic authorization", any)?;
        let owner = format!("radius:{auth_local}");
        let link = Arc::new(Link {
            agent: Mutex::new(RadiusAgent::new(agent_config(r, &owner)?)),
            wake: Notify::new(),
            owner: owner.clone(),
        });
        super::agentio::register(
            state,
            &owner,
            Arc::clone(&link) as Arc<dyn sessions::Disconnect + Send + Sync>,
        );
        AGENTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&link));
        super::say(&format!("listening on radius-auth:{auth_local}"));
        super::say(&format!("listening on radius-acct:{acct_local}"));
        let (auth, acct) = (Arc::new(auth), Arc::new(acct));
        let (auth_tx, auth_rx) = mpsc::channel(JOB_QUEUE);
        let (acct_tx, acct_rx) = mpsc::channel(JOB_QUEUE);
        for (rx, sock, parallel) in [
            (auth_rx, Arc::clone(&auth), AUTH_PARALLEL),
            (acct_rx, Arc::clone(&acct), 1),
        ] {
            tasks.push(tokio::spawn(worker(
                Arc::clone(state),
                Arc::clone(&link),
                sock,
                rx,
                parallel,
            )));
        }
        tasks.push(tokio::spawn(serve(
            Arc::clone(state),
            link,
            [auth, acct],
            dynauth,
            [auth_tx, acct_tx],
            stop.clone(),
        )));
    }
    Ok(tasks)
}

/// Runs `f` with the filters and plan in force now.
fn with_filters<T>(state: &State, f: impl FnOnce(&subsystems::FilterCtx<'_>) -> T) -> T {
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = subsystems::FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now: Utc::now(),
    };
    f(&ctx)
}

/// The socket task: requests in, cached replies and Disconnect-Requests
/// out, until `stop`.
async fn serve(
    state: Arc<State>,
    link: Arc<Link>,
    socks: [Arc<UdpSocket>; 2],
    dynauth: UdpSocket,
    jobs: [mpsc::Sender<Box<Job>>; 2],
    mut stop: watch::Receiver<bool>,
) {
    let mut bufs = [vec![0u8; MAX_PACKET], vec![0u8; MAX_PACKET]];
    let mut dbuf = vec![0u8; MAX_PACKET];
    loop {
        loop {
            let next = link.agent().poll_transmit();
            let Some((to, bytes)) = next else { break };
            if let Err(e) = dynauth.send_to(&bytes, to).await {
                tracing::warn!(nas = %to, error = %e, "Disconnect-Request not sent");
            }
        }
        let wait = link
            .agent()
            .poll_timeout()
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_secs(3600));
        let [b0, b1] = &mut bufs;
        let (acct, got) = tokio::select! {
            r = socks[0].recv_from(b0) => (false, r),
            r = socks[1].recv_from(b1) => (true, r),
            r = dynauth.recv_from(&mut dbuf) => {
                match r {
                    Ok((n, from)) => link.agent().handle_dynauth_reply(from, dbuf.get(..n).unwrap_or_default()),
                    Err(e) => tracing::warn!(error = %e, "dynamic authorization socket"),
                }
                continue;
            }
            () = link.wake.notified() => continue,
            () = tokio::time::sleep(wait) => {
                link.agent().handle_timeout(Utc::now());
                continue;
            }
            _ = stop.changed() => return,
        };
        let (n, from) = match got {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "RADIUS socket");
                continue;
            }
        };
        let i = usize::from(acct);
        let data = bufs[i].get(..n).unwrap_or_default();
        let handled = with_filters(&state, |ctx| {
            link.agent().handle(from, data, acct, ctx, Utc::now())
        });
        let reply = match handled {
            Ok(Handled::Run(job)) => {
                if jobs[i].send(job).await.is_err() {
                    return;
                }
                None
            }
            Ok(Handled::Reply(bytes)) => Some(bytes),
            Ok(Handled::Drop(reason)) => {
                log_drop(from, reason);
                None
            }
            Err(e) if !acct => {
                tracing::info!(nas = %from, error = %e, "Access-Request rejected");
                link.agent().reject(from, data, &e.to_string(), Utc::now())
            }
            Err(e) => {
                tracing::warn!(nas = %from, error = %e, "Accounting-Request not processed");
                None
            }
        };
        if let Some(bytes) = reply {
            if let Err(e) = socks[i].send_to(&bytes, from).await {
                tracing::warn!(nas = %from, error = %e, "RADIUS reply not sent");
            }
        }
    }
}

/// A dropped request's log line: wrong secrets and strangers are worth
/// a warning (RFC 2865 section 3: silently discarded, but an operator
/// needs to see a misconfigured NAS).
fn log_drop(from: SocketAddr, reason: DropReason) {
    match reason {
        DropReason::DuplicateInFlight => {
            tracing::debug!(nas = %from, "duplicate of a request in progress dropped");
        }
        r => tracing::warn!(nas = %from, reason = r.name(), "RADIUS request dropped"),
    }
}

/// Access-Requests run at the same time, at most this many (they are
/// independent); accounting runs in order (a Stop never overtakes its
/// Start).
const AUTH_PARALLEL: usize = 64;

/// Runs the requests' session calls and sends their replies: one after
/// the other, or (`parallel` > 1) up to that many at once.
async fn worker(
    state: Arc<State>,
    link: Arc<Link>,
    sock: Arc<UdpSocket>,
    mut rx: mpsc::Receiver<Box<Job>>,
    parallel: usize,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    while let Some(job) = rx.recv().await {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let run = run_job(
            Arc::clone(&state),
            Arc::clone(&link),
            Arc::clone(&sock),
            job,
        );
        if parallel > 1 {
            tokio::spawn(async move {
                run.await;
                drop(slot);
            });
        } else {
            run.await;
            drop(slot);
        }
    }
}

/// One request's calls, in order, then its reply.
async fn run_job(state: Arc<State>, link: Arc<Link>, sock: Arc<UdpSocket>, job: Box<Job>) {
    let mut answers: Vec<Result<Value, String>> = Vec::with_capacity(job.calls.len());
    for c in &job.calls {
        let a = super::agentio::call(&state, &link.owner, c.method, &c.args).await;
        if let Err(e) = &a {
            tracing::info!(method = c.method, error = %e, "RADIUS session call failed");
        }
        answers.push(a);
    }
    let to = job.from();
    let bytes = with_filters(&state, |ctx| {
        link.agent().finish(*job, &answers, ctx, Utc::now())
    });
    if let Err(e) = sock.send_to(&bytes, to).await {
        tracing::warn!(nas = %to, error = %e, "RADIUS reply not sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        agents: super::super::AgentsSection,
    }

    #[test]
    fn the_example_compiles_and_keeps_the_builtin_processors() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/radius.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let f: File = toml::from_str(&text).unwrap();
        let r = &f.agents.radius[0];
        let cfg = agent_config(r, "radius:test").unwrap();
        let ids: Vec<&str> = cfg.processors.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "auth",
                "radius-auth",
                "radius-acct-start",
                "radius-acct-update",
                "radius-acct-stop"
            ]
        );
        assert_eq!(cfg.clients[0].dynauth_port, 3799);
        let only = RadiusSection {
            builtin_processors: false,
            ..r.clone()
        };
        assert_eq!(agent_config(&only, "t").unwrap().processors.len(), 1);
        let bad = RadiusSection {
            dictionaries: vec!["/nonexistent/dictionary".into()],
            ..r.clone()
        };
        assert!(agent_config(&bad, "t").is_err());
        let unknown = "[[agents.radius]]\nauth = \"127.0.0.1:1812\"\nsecrets = 1\n";
        assert!(toml::from_str::<File>(unknown).is_err());
    }
}
