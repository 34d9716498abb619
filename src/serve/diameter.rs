//! Diameter credit control (`[[agents.diameter]] listen = "HOST:PORT"`):
//! a TCP listener, one task per peer connection feeding the sans-IO
//! [`agents::diameter::Peer`] (base protocol) and one task per connection
//! running its Credit-Control-Requests in order through
//! [`agents::diameter::CcAgent`] (request processors) and the SessionSv1
//! entry point ([`super::agentio::call`]). The listener registers as the
//! owner `diameter:LISTEN` of the sessions it starts; the session
//! manager's disconnects become Abort-Session-Requests to the peer
//! connection that started the session.
//!
//! A peer that drops mid-session leaves its sessions active: they end by
//! the session manager's TTL (or a `ForceDisconnect`), charged for the
//! usage reported, as a switch that vanished is in CGRateS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agents::diameter::{
    CcAgent, CcConfig, CcRequest, Dictionary, Event, Message, Peer, PeerConfig,
};
use agents::template::ProcessorCfg;
use anyhow::Context as _;
use rating::TariffStore as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::methods::State;

/// `[[agents.diameter]]`: one Diameter credit-control listener.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct DiameterSection {
    /// `HOST:PORT` to listen on (TCP).
    pub listen: String,
    /// Origin-Host of the answers.
    pub origin_host: String,
    /// Origin-Realm of the answers.
    pub origin_realm: String,
    /// Vendor-Id of the CEA.
    pub vendor_id: u32,
    /// Product-Name of the CEA.
    pub product_name: String,
    /// Dictionary files loaded after the shipped ones.
    pub dictionaries: Vec<String>,
    /// Seconds of silence before a DWR (and to wait for its DWA).
    pub watchdog_secs: u64,
    /// The events' tenant.
    pub tenant: String,
    /// Validity-Time sent with granted units.
    pub validity_time_secs: Option<u32>,
    /// The request processors; none: the defaults. Compiled while the
    /// file is read, so `config check` finds a bad field template.
    #[serde(alias = "request_processors", deserialize_with = "processors")]
    pub request_processors: Vec<ProcessorCfg>,
}

fn processors<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ProcessorCfg>, D::Error> {
    use serde::de::Error as _;
    let all = Vec::<ProcessorCfg>::deserialize(d)?;
    for p in &all {
        agents::template::Processor::compile(p)
            .map_err(|e| D::Error::custom(format!("request processor {:?}: {e}", p.id)))?;
    }
    Ok(all)
}

impl DiameterSection {
    /// The dictionary: the shipped files, then `dictionaries`.
    fn dictionary(&self) -> anyhow::Result<Dictionary> {
        let mut d = Dictionary::builtin()?;
        for path in &self.dictionaries {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("[[agents.diameter]] dictionary {path:?}"))?;
            d.load(path, &text)?;
        }
        Ok(d)
    }

    /// The sans-IO cores' configuration, checked (`config check` runs it).
    pub(crate) fn build(&self) -> anyhow::Result<(Arc<Dictionary>, CcAgent, PeerConfig)> {
        let dict = Arc::new(self.dictionary()?);
        let host = if self.origin_host.is_empty() {
            "accurate.localdomain"
        } else {
            &self.origin_host
        };
        let realm = if self.origin_realm.is_empty() {
            "localdomain"
        } else {
            &self.origin_realm
        };
        let cc = CcAgent::new(
            CcConfig {
                tenant: if self.tenant.is_empty() {
                    "cgrates.org".into()
                } else {
                    self.tenant.clone()
                },
                processors: self.request_processors.clone(),
                validity_time: self.validity_time_secs,
            },
            Arc::clone(&dict),
            host,
            realm,
        )
        .context("[[agents.diameter]] request-processors")?;
        let peer = PeerConfig {
            origin_host: host.to_owned(),
            origin_realm: realm.to_owned(),
            vendor_id: self.vendor_id,
            product_name: if self.product_name.is_empty() {
                "AccuRate".into()
            } else {
                self.product_name.clone()
            },
            watchdog: Duration::from_secs(if self.watchdog_secs == 0 {
                30
            } else {
                self.watchdog_secs
            }),
            ..PeerConfig::default()
        };
        Ok((dict, cc, peer))
    }
}

/// A session a connection started.
#[derive(Debug, Clone)]
struct Started {
    conn: u64,
    session_id: String,
    reported_ns: u128,
}

/// What the session manager asks a connection to do.
enum Command {
    /// Send an Abort-Session-Request for this Session-Id.
    Abort(String),
}

/// Counters, logged when a connection ends.
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bad: AtomicU64,
    errors: AtomicU64,
}

/// The `/metrics` counters of every Diameter listener.
pub(crate) struct Metrics {
    /// Whether a listener runs (the metrics are shown only then).
    pub active: std::sync::atomic::AtomicBool,
    /// CCRs by CC-Request-Type (INITIAL, UPDATE, TERMINATION, EVENT).
    pub ccr: [AtomicU64; 4],
    /// CCAs by Result-Code class: 2xxx, 4xxx, 5xxx (and others).
    pub cca: [AtomicU64; 3],
    /// Messages refused by the base protocol (bad framing or AVPs, unknown
    /// mandatory AVPs, requests before the CER, unsupported commands).
    pub bad: AtomicU64,
    /// Session calls that failed.
    pub errors: AtomicU64,
    /// Abort-Session-Requests sent.
    pub asr: AtomicU64,
    /// Peer connections open.
    pub peers: AtomicU64,
}

/// The counters.
pub(crate) static METRICS: Metrics = Metrics {
    active: std::sync::atomic::AtomicBool::new(false),
    ccr: [const { AtomicU64::new(0) }; 4],
    cca: [const { AtomicU64::new(0) }; 3],
    bad: AtomicU64::new(0),
    errors: AtomicU64::new(0),
    asr: AtomicU64::new(0),
    peers: AtomicU64::new(0),
};

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One listener: the cores' configuration, the connections and the
/// sessions they started.
struct Agent {
    owner: String,
    dict: Arc<Dictionary>,
    cc: CcAgent,
    peer: PeerConfig,
    /// CGRID to the session's connection, Session-Id and the usage its
    /// requests reported so far.
    sessions: Mutex<HashMap<String, Started>>,
    /// Connection to its command queue.
    conns: Mutex<HashMap<u64, mpsc::UnboundedSender<Command>>>,
    next_conn: AtomicU64,
    counters: Counters,
}

impl sessions::Disconnect for Agent {
    fn disconnect(
        &self,
        session: &sessions::SessionKey,
        reason: &str,
    ) -> Result<(), sessions::Error> {
        let mut known = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let sent = known.get(&session.cgrid).and_then(|st| {
            let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
            conns
                .get(&st.conn)
                .map(|tx| tx.send(Command::Abort(st.session_id.clone())).is_ok())
        });
        if sent != Some(true) {
            // Its peer is gone: the session manager ends it all the same.
            known.remove(&session.cgrid);
            return Err(sessions::Error::Disconnect(format!(
                "no Diameter peer connection for session {session}"
            )));
        }
        tracing::info!(session = %session, reason, "Diameter Abort-Session-Request queued");
        Ok(())
    }
}

/// Binds each listener and starts its accept task; connections and the
/// accept loop end when `stop` turns true.
///
/// # Errors
/// A listener that cannot be bound, a dictionary or a request processor
/// that does not load.
pub(crate) fn start(
    state: &Arc<State>,
    cfg: &[DiameterSection],
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for d in cfg {
        let (dict, cc, mut peer) = d.build()?;
        let listener = std::net::TcpListener::bind(&d.listen)
            .with_context(|| format!("[[agents.diameter]] listen {:?}", d.listen))?;
        let local = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        peer.host_ip = if local.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            local.ip()
        };
        let owner = format!("diameter:{}", d.listen);
        let agent = Arc::new(Agent {
            owner: owner.clone(),
            dict,
            cc,
            peer,
            sessions: Mutex::default(),
            conns: Mutex::default(),
            next_conn: AtomicU64::new(1),
            counters: Counters::default(),
        });
        super::agentio::register(
            state,
            &owner,
            Arc::clone(&agent) as Arc<dyn sessions::Disconnect + Send + Sync>,
        );
        METRICS.active.store(true, Ordering::Relaxed);
        super::say(&format!("listening on diameter:{local}"));
        tasks.push(tokio::spawn(accept(
            Arc::clone(state),
            agent,
            listener,
            stop.clone(),
        )));
    }
    Ok(tasks)
}

async fn accept(
    state: Arc<State>,
    agent: Arc<Agent>,
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = Vec::new();
    loop {
        tokio::select! {
            a = listener.accept() => match a {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    conns.push(tokio::spawn(connection(
                        Arc::clone(&state),
                        Arc::clone(&agent),
                        stream,
                        remote,
                        stop.clone(),
                    )));
                    conns.retain(|t: &tokio::task::JoinHandle<()>| !t.is_finished());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "diameter accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    for c in conns {
        let _ = c.await;
    }
}

/// One peer connection until it closes or `stop`.
async fn connection(
    state: Arc<State>,
    agent: Arc<Agent>,
    mut stream: TcpStream,
    remote: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let id = agent.next_conn.fetch_add(1, Ordering::Relaxed);
    let mut cfg = agent.peer.clone();
    cfg.id_seed = u32::try_from(id & 0xffff).unwrap_or(1) << 16;
    let mut peer = Peer::new(cfg, Arc::clone(&agent.dict), Instant::now());
    bump(&METRICS.peers);
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel();
    agent
        .conns
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(id, cmd_tx);
    // CCRs run one after the other, in the order the peer sent them.
    let (ccr_tx, mut ccr_rx) = mpsc::channel::<Message>(1024);
    let (ans_tx, mut ans_rx) = mpsc::channel::<Message>(1024);
    let worker = {
        let (state, agent) = (Arc::clone(&state), Arc::clone(&agent));
        let remote = remote.to_string();
        tokio::spawn(async move {
            while let Some(ccr) = ccr_rx.recv().await {
                let cca = credit_control(&state, &agent, id, ccr, &remote).await;
                if ans_tx.send(cca).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut buf = vec![0u8; 64 * 1024];
    let why = loop {
        if let Err(e) = flush(&mut stream, &mut peer).await {
            break format!("write: {e}");
        }
        if peer.is_closed() {
            break "closed".to_owned();
        }
        let wake = peer.poll_timeout().map_or_else(
            || tokio::time::Instant::now() + Duration::from_secs(3600),
            tokio::time::Instant::from_std,
        );
        let events = tokio::select! {
            n = stream.read(&mut buf) => match n {
                Ok(0) => break "closed by the peer".to_owned(),
                Ok(n) => peer.handle_bytes(buf.get(..n).unwrap_or_default(), Instant::now()),
                Err(e) => break format!("read: {e}"),
            },
            Some(Command::Abort(sid)) = cmd_rx.recv() => {
                if peer.abort_session(&sid) {
                    bump(&METRICS.asr);
                } else {
                    tracing::warn!(session_id = sid, "diameter ASR: peer not open");
                }
                Vec::new()
            }
            Some(cca) = ans_rx.recv() => {
                peer.send(&cca);
                Vec::new()
            }
            () = tokio::time::sleep_until(wake) => peer.handle_timeout(Instant::now()),
            _ = stop.changed() => peer.disconnect(),
        };
        for ev in events {
            match ev {
                Event::Opened { host, realm } => {
                    tracing::info!(peer = %remote, host, realm, "diameter peer open");
                }
                Event::CreditControl(ccr) => {
                    agent.counters.requests.fetch_add(1, Ordering::Relaxed);
                    if ccr_tx.send(ccr).await.is_err() {
                        break;
                    }
                }
                Event::Answer(a) => {
                    tracing::debug!(peer = %remote, command = a.code, "diameter answer received");
                }
                Event::Bad(reason) => {
                    agent.counters.bad.fetch_add(1, Ordering::Relaxed);
                    bump(&METRICS.bad);
                    tracing::warn!(peer = %remote, ?reason, "diameter message refused");
                }
                Event::Closed(reason) => {
                    tracing::info!(peer = %remote, ?reason, "diameter peer closing");
                }
            }
        }
    };
    let _ = flush(&mut stream, &mut peer).await;
    let _ = stream.shutdown().await;
    // The CCRs already read still run (their sessions stay accounted);
    // their answers have nowhere to go.
    drop(ccr_tx);
    drop(worker);
    METRICS.peers.fetch_sub(1, Ordering::Relaxed);
    agent
        .conns
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    tracing::info!(
        peer = %remote,
        why,
        requests = agent.counters.requests.load(Ordering::Relaxed),
        refused = agent.counters.bad.load(Ordering::Relaxed),
        errors = agent.counters.errors.load(Ordering::Relaxed),
        "diameter connection ended (its sessions end by TTL or ForceDisconnect)"
    );
}

async fn flush(stream: &mut TcpStream, peer: &mut Peer) -> std::io::Result<()> {
    while let Some(bytes) = peer.poll_transmit() {
        stream.write_all(&bytes).await?;
    }
    Ok(())
}

/// One CCR: the processors' calls through the SessionSv1 entry point,
/// then the CCA.
async fn credit_control(
    state: &Arc<State>,
    agent: &Agent,
    conn: u64,
    ccr: Message,
    remote: &str,
) -> Message {
    let cca = answer_ccr(state, agent, conn, ccr, remote).await;
    let rc = cca
        .find(agents::diameter::code::RESULT_CODE, None)
        .and_then(agents::diameter::Avp::as_u32)
        .unwrap_or(0);
    if let Some(c) = METRICS.cca.get(match rc / 1000 {
        2 => 0,
        4 => 1,
        _ => 2,
    }) {
        bump(c);
    }
    cca
}

async fn answer_ccr(
    state: &Arc<State>,
    agent: &Agent,
    conn: u64,
    ccr: Message,
    remote: &str,
) -> Message {
    let kind = ccr
        .find(agents::diameter::code::CC_REQUEST_TYPE, None)
        .and_then(agents::diameter::Avp::as_u32)
        .unwrap_or(0);
    if let Some(c) = (kind as usize)
        .checked_sub(1)
        .and_then(|i| METRICS.ccr.get(i))
    {
        bump(c);
    }
    let mut req: CcRequest = {
        let profiles = state.profiles.current();
        let plan = state.plan.current();
        let ctx = subsystems::FilterCtx {
            filters: &profiles.filters,
            plan: Some(&*plan),
            now: chrono::Utc::now(),
        };
        match agent.cc.request(ccr, remote, &ctx, chrono::Utc::now()) {
            Ok(r) => r,
            Err(answer) => {
                agent.counters.errors.fetch_add(1, Ordering::Relaxed);
                return *answer;
            }
        }
    };
    let str_of = |k: &str| {
        req.built
            .cgreq
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let cgrid = sessions::cgrid(&str_of("OriginID"), &str_of("OriginHost"));
    let starts = req
        .calls
        .iter()
        .any(|c| c.method == "SessionSv1.InitiateSession");
    {
        let mut known = agent
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if starts {
            // Known before the call: money may run out during it.
            known.insert(
                cgrid.clone(),
                Started {
                    conn,
                    session_id: req.session_id.clone(),
                    reported_ns: 0,
                },
            );
        }
        let before = known.get(&cgrid).map_or(0, |s| s.reported_ns);
        req.settle_total(before);
        if let Some(s) = known.get_mut(&cgrid) {
            s.reported_ns += req.reported_ns();
            // A peer that reconnected goes on with its session here.
            s.conn = conn;
        }
    }
    let mut replies: Vec<Result<Value, String>> = Vec::new();
    for i in 0..req.calls.len() {
        if !CcAgent::should_run(&req, i, &replies) {
            break;
        }
        let Some(call) = req.calls.get(i) else { break };
        let out = super::agentio::call(state, &agent.owner, call.method, &call.args).await;
        if let Err(e) = &out {
            agent.counters.errors.fetch_add(1, Ordering::Relaxed);
            bump(&METRICS.errors);
            tracing::info!(method = call.method, session_id = req.session_id, error = %e, "diameter session call refused");
        }
        replies.push(out);
    }
    let ends = req
        .calls
        .iter()
        .any(|c| c.method == "SessionSv1.TerminateSession")
        || (starts && replies.first().is_some_and(Result::is_err));
    if ends {
        agent
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&cgrid);
    }
    let profiles = state.profiles.current();
    let plan = state.plan.current();
    let ctx = subsystems::FilterCtx {
        filters: &profiles.filters,
        plan: Some(&*plan),
        now: chrono::Utc::now(),
    };
    let (cca, problems) = agent.cc.answer(&req, &replies, &ctx, chrono::Utc::now());
    for p in problems {
        tracing::warn!(
            session_id = req.session_id,
            problem = p,
            "diameter reply field"
        );
    }
    cca
}

/// One counter of `/metrics`: its name, its help and its samples
/// (label name, label value, count; an empty label name for none).
pub(crate) type Counter = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str, u64)>,
);

/// The `/metrics` lines of the Diameter listeners (none without one).
pub(crate) fn metrics_text() -> Vec<Counter> {
    if !METRICS.active.load(Ordering::Relaxed) {
        return Vec::new();
    }
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    let types = ["initial", "update", "termination", "event"];
    let classes = ["2xxx", "4xxx", "5xxx"];
    vec![
        (
            "accurate_diameter_ccr_total",
            "Credit-Control-Requests by CC-Request-Type.",
            types
                .iter()
                .zip(&METRICS.ccr)
                .map(|(t, c)| ("type", *t, get(c)))
                .collect(),
        ),
        (
            "accurate_diameter_cca_total",
            "Credit-Control-Answers by Result-Code class.",
            classes
                .iter()
                .zip(&METRICS.cca)
                .map(|(t, c)| ("result", *t, get(c)))
                .collect(),
        ),
        (
            "accurate_diameter_refused_total",
            "Messages refused by the base protocol (framing, AVPs, unknown mandatory AVPs, before the CER, unsupported commands).",
            vec![("", "", get(&METRICS.bad))],
        ),
        (
            "accurate_diameter_session_errors_total",
            "Session calls of Credit-Control-Requests that failed.",
            vec![("", "", get(&METRICS.errors))],
        ),
        (
            "accurate_diameter_asr_total",
            "Abort-Session-Requests sent.",
            vec![("", "", get(&METRICS.asr))],
        ),
    ]
}
