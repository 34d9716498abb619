//! `accurate serve`: the long-running server with CGRateS's JSON-RPC API.
//!
//! Two transports share one [`methods::State`]: JSON-RPC over TCP (Go's
//! `net/rpc/jsonrpc` stream, what CGRateS's own clients and `cgr-console`
//! speak; [`tcp`]) and `POST /jsonrpc` over HTTP ([`http`]). Each listener
//! is one `select!` loop over its socket and the shutdown signal, like
//! `sniff`'s; requests are decoded by the sans-IO `jsonrpc` codec and run
//! by [`methods::dispatch`].
//!
//! With capture options (`--hep`, `--interface`, or `[hep] listen` /
//! `[live]` in the config) the server also follows calls live
//! ([`capture`]): the dialog events go to the session driver
//! ([`sessions`]: the session manager on `[sessions] shards` threads),
//! which also answers `SessionSv1` ([`sessionsapi`]). `GET /metrics` on the HTTP listener gives
//! the counters in the Prometheus text format ([`metrics`]).
//!
//! Authentication (`[api] auth-token`): HTTP callers send
//! `Authorization: Bearer TOKEN` (for `POST /jsonrpc` and `GET /metrics`
//! alike); a TCP connection's first call must be `AuthSv1.Auth` with
//! `{"Token": TOKEN}`. Without a token configured neither is asked for.

mod accounts;
mod actionapi;
mod agentio;
mod ari;
mod balances;
mod capture;
mod cdrlog;
mod cdrs;
mod cdrs_event;
mod cdrs_rate;
mod diameter;
mod esl;
mod evapi;
mod eventcost;
mod expiry;
mod export;
mod http;
mod httpapi;
mod methods;
mod metrics;
mod osips;
mod radius;
mod sessions;
mod sessionsapi;
mod store;
mod subsys;
mod tcp;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use jsonrpc::{Invalid, Request, RpcError, Version};
use serde_json::Value;
use tokio::sync::watch;

use crate::args::Rounding;
use crate::config::Config;
use crate::exit::Failure;
pub(crate) use evapi::AgentsSection;
pub(crate) use export::{ExporterConfig, ImporterConfig, check as check_exports};
use methods::{AUTH_METHOD, State, UNAUTHORIZED};
pub(crate) use sessions::SessionsSection;

/// Default JSON-RPC over TCP address (CGRateS's `rpc_json`).
pub(crate) const DEFAULT_RPC_TCP: &str = "127.0.0.1:2012";
/// Default JSON-RPC over HTTP address (CGRateS's `http`).
pub(crate) const DEFAULT_RPC_HTTP: &str = "127.0.0.1:2080";
/// How long after SIGINT/SIGTERM the CDR writer keeps trying a database
/// that does not answer before it gives up on the CDRs left (they are
/// then finished at the next start).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// The largest request accepted (TCP: one JSON value; HTTP: the body).
const MAX_REQUEST_BYTES: usize = 4 << 20;

/// Arguments of `accurate serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Folder of the embedded store (accounts, balances, the loaded plan),
    /// created on first start [default: `[storage] data-dir`, else
    /// ./accurate-data]. Unused when `[storage] redis` is set.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Tariff plan folder (CGRateS CSVs) to load at start: rating data and
    /// accounts (AccountActions, with their ActionPlans and triggers).
    /// Without it the plan last loaded is restored from the store.
    #[arg(long, value_name = "DIR")]
    tariffplan: Option<PathBuf>,
    /// exact: round once at the end; cgrates: reproduce CGRateS's rounding.
    #[arg(long, value_enum, default_value_t = Rounding::Exact)]
    rounding: Rounding,
    /// JSON-RPC over TCP, IP:PORT (port 0 picks a free one) [default:
    /// `[api] rpc-tcp`, else 127.0.0.1:2012].
    #[arg(long, value_name = "ADDR")]
    rpc_tcp: Option<SocketAddr>,
    /// JSON-RPC over HTTP (`POST /jsonrpc`), IP:PORT [default: `[api]
    /// rpc-http`, else 127.0.0.1:2080].
    #[arg(long, value_name = "ADDR")]
    rpc_http: Option<SocketAddr>,
    /// Capture: HEP listeners and the live tap, as `sniff` takes them.
    #[command(flatten)]
    capture: capture::CaptureArgs,
    /// CDR database: postgres://USER@HOST:PORT/DB or sqlite://PATH?mode=rwc
    /// [default: `[cdrs] db`, else SQLite cdrs.sqlite in the data dir].
    #[arg(long, value_name = "URL")]
    cdr_db: Option<String>,
    /// Kamailio evapi to connect to, HOST:PORT (repeatable; also
    /// `[[agents.kamailio]] evapi`).
    #[arg(long = "kamailio-evapi", value_name = "ADDR")]
    kamailio_evapi: Vec<String>,
    /// FreeSWITCH event socket to connect to, HOST:PORT, password
    /// `ClueCon` (repeatable; also `[[agents.freeswitch]] address`).
    #[arg(long = "freeswitch-esl", value_name = "ADDR")]
    freeswitch_esl: Vec<String>,
}

/// Runs the server until SIGINT or SIGTERM.
pub(crate) fn run(mut args: ServeArgs, config: Option<&Path>) -> anyhow::Result<()> {
    let cfg = Config::load_or_default(config)?;
    let capture_args = std::mem::take(&mut args.capture).or_config(&cfg)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| cfg.storage.data_dir.clone());
    let store = store::Store::open(&cfg.storage, &data_dir)?;
    say(&format!("store: {}", store.describe));
    let cdr_url = cdrs::db_url(args.cdr_db.as_deref(), &cfg.cdrs, &data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    let (cdr_store, cdr_task, cdr_describe) = rt.block_on(cdrs::Cdrs::open(&cdr_url, &cfg.cdrs))?;
    say(&format!("cdrs: {cdr_describe}"));
    let tcp_addr = match args.rpc_tcp {
        Some(a) => a,
        None => parse_addr(cfg.api.rpc_tcp.as_deref().unwrap_or(DEFAULT_RPC_TCP))?,
    };
    let http_addr = match args.rpc_http {
        Some(a) => a,
        None => parse_addr(cfg.api.rpc_http.as_deref().unwrap_or(DEFAULT_RPC_HTTP))?,
    };
    let state = Arc::new(State::new(
        rating::SharedTariffPlan::default(),
        args.rounding.into(),
        cfg.load_policy(),
        cfg.api.auth_token.clone(),
        cfg.api.node_id.clone().unwrap_or_else(host_name),
        store,
        cdr_store,
    ));
    // Account events queue up for the thresholds from the first load on.
    subsys::thresholds::start(&state);
    let max_connections = cfg.api.max_connections;
    let idle = std::time::Duration::from_secs(cfg.api.idle_timeout_secs);
    rt.block_on(async move {
        // Before the listening lines: a supervisor may signal as soon as
        // it reads them, and the default action would kill the process.
        let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
        let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Stopped last, after everything that writes CDRs: it stores all
        // that is queued before it returns.
        let (cdr_stop_tx, cdr_stop_rx) = watch::channel(false);
        // Set SHUTDOWN_GRACE after the signal: the writer stops waiting
        // for a CDR database that does not answer.
        let (give_up_tx, give_up_rx) = watch::channel(false);
        let cdr_writer = tokio::spawn(cdr_task.give_up_on(give_up_rx).run(cdr_stop_rx));
        // In the runtime: `*http_post` actions run at load post from it.
        if let Some(dir) = &args.tariffplan {
            let report = store::load_plan_dir(&state, dir)?;
            for w in &report.warnings {
                say(&format!("warning: {w}"));
            }
            let n = accounts::load_accounts(&state, chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!("loading accounts: {e}"))?;
            if n > 0 {
                say(&format!("loaded {n} accounts"));
            }
        } else if let Some((plan, profiles)) =
            store::saved_plan(state.meta.as_ref(), &state.policy)?
        {
            state.plan.replace(plan);
            state.profiles.replace(profiles);
            subsys::filters::restore(&state)?;
            let n = store::restore(&state, chrono::Utc::now())
                .map_err(|e| anyhow::anyhow!("restoring accounts: {e}"))?;
            say(&format!(
                "restored the saved tariff plan and {n} accounts from the store"
            ));
        } else {
            subsys::filters::restore(&state)?;
        }
        // StatS: the saved queues back, fed by every CDR stored from now.
        subsys::stats::start(&state)?;
        // The session shards, with the sessions saved before a restart.
        let sink = Arc::new(sessions::WriterSink::new(state.cdr_writer.clone()));
        let (sessions, dialogs) = sessions::Sessions::start(
            Arc::clone(&state),
            &cfg.sessions,
            Arc::clone(&state.session_store),
            sink as Arc<dyn sessions::CdrSink>,
        )?;
        if sessions.restored() > 0 {
            say(&format!("restored {} active sessions", sessions.restored()));
        }
        let _ = state.sessions.set(Arc::clone(&sessions));
        let export_tasks =
            export::start(&state, &cfg.exporters, &cfg.importers, &cdr_url, &stop_rx).await?;
        // Capture first: its `listening on udp:...` lines come before the
        // RPC ones, so a supervisor reading up to those has seen them all.
        let mut captured = None;
        if capture_args.any() {
            let (ev_tx, ev_rx) = tokio::sync::mpsc::channel(capture::EVENT_QUEUE);
            let metrics = Arc::clone(&state.capture);
            let c = capture::start(
                &capture_args,
                &cfg,
                Arc::clone(&metrics),
                ev_tx,
                &stop_rx,
                &dialogs,
            )
            .await?;
            let s = Arc::clone(&sessions);
            let consumer =
                tokio::task::spawn_blocking(move || capture::feed_sessions(ev_rx, s, metrics));
            captured = Some((c, consumer));
        } else if !dialogs.is_empty() {
            say(&format!(
                "warning: {} saved calls in progress are not followed (no capture source)",
                dialogs.len()
            ));
        }
        let evapi_tasks = evapi::start(&state, &args.kamailio_evapi, &cfg.agents, &stop_rx);
        let osips_tasks = osips::start(&state, &cfg.agents.opensips, &stop_rx)?;
        let ari_tasks = ari::start(&state, &cfg.agents.asterisk, &stop_rx);
        let radius_tasks = radius::start(&state, &cfg.agents.radius, &stop_rx)?;
        let diameter_tasks = diameter::start(&state, &cfg.agents.diameter, &stop_rx)?;
        let esl_tasks = esl::start(
            &state,
            &args.freeswitch_esl,
            &cfg.agents.freeswitch,
            &stop_rx,
        );
        let tcp = tokio::net::TcpListener::bind(tcp_addr)
            .await
            .map_err(|e| bind_failure("rpc-tcp", tcp_addr, e))?;
        let http = tokio::net::TcpListener::bind(http_addr)
            .await
            .map_err(|e| bind_failure("rpc-http", http_addr, e))?;
        let tcp_bound = tcp.local_addr().context("rpc-tcp address")?;
        let http_bound = http.local_addr().context("rpc-http address")?;
        say(&format!("listening on rpc-tcp:{tcp_bound}"));
        say(&format!("listening on rpc-http:{http_bound}"));
        let tcp_task = tokio::spawn(tcp::run(
            tcp,
            Arc::clone(&state),
            max_connections,
            idle,
            stop_rx.clone(),
        ));
        let http_task = tokio::spawn(http::run(http, Arc::clone(&state), idle, stop_rx.clone()));
        let sched_task = tokio::spawn(accounts::scheduler(Arc::clone(&state), stop_rx.clone()));

        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        let _ = stop_tx.send(true);
        tokio::spawn(async move {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
            let _ = give_up_tx.send(true);
        });
        let _ = tcp_task.await;
        let _ = http_task.await;
        let _ = sched_task.await;
        for t in export_tasks {
            let _ = t.await;
        }
        for t in evapi_tasks {
            let _ = t.await;
        }
        for t in osips_tasks {
            let _ = t.await;
        }
        for t in ari_tasks {
            let _ = t.await;
        }
        for t in radius_tasks {
            let _ = t.await;
        }
        for t in esl_tasks {
            let _ = t.await;
        }
        for t in diameter_tasks {
            let _ = t.await;
        }
        if let Some((c, consumer)) = captured {
            let (stats, extra) = c.join().await;
            // The dialog task has ended (its sender is gone): the consumer
            // takes what is queued and ends.
            let _ = consumer.await;
            crate::output::print_stats("serve", &stats, &extra);
        }
        // After the last dialog event: the shards finish what is queued
        // and wait (the writer still runs) until every CDR they wrote is
        // stored and its session forgotten; then the writer stores the
        // rest and stops.
        let s = Arc::clone(&sessions);
        let _ = tokio::task::spawn_blocking(move || s.stop_blocking()).await;
        let _ = cdr_stop_tx.send(true);
        let _ = cdr_writer.await;
        // The last CDRs through StatS, its Stored queues saved.
        let st = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || subsys::stats::flush(&st)).await;
        let mut e = std::io::stderr().lock();
        for (k, v) in state.counters.all() {
            let _ = writeln!(e, "serve: {k}: {v}");
        }
        for (k, v) in state.cdr_writer.stats().all() {
            let _ = writeln!(e, "serve: {k}: {v}");
        }
        for (k, v) in sessions.all_counters() {
            let _ = writeln!(e, "serve: {k}: {v}");
        }
        drop(e);
        unfinished(&state, &sessions)
    })
}

/// `Err` (exit 75) when CDRs were left unstored: the calls' saved
/// sessions and ends stay in the session store and are finished at the
/// next start.
fn unfinished(state: &State, sessions: &sessions::Sessions) -> anyhow::Result<()> {
    use std::sync::atomic::Ordering;
    let abandoned = state.cdr_writer.stats().abandoned.load(Ordering::Relaxed);
    let unstored = sessions.counters.cdrs_unstored.load(Ordering::Relaxed);
    if abandoned == 0 && unstored == 0 {
        return Ok(());
    }
    Err(Failure::Unfinished(format!(
        "CDRs not stored at shutdown ({abandoned} given up with the CDR database not \
         answering, {unstored} of calls the session manager follows): those calls keep their \
         saved session or end in the session store and get their CDR at the next start"
    ))
    .into())
}

/// `accurate load DIR --data-dir D`: loads a plan folder into a stopped
/// server's store as the server would (plan saved, accounts created or
/// updated, `*asap` actions run); the next `accurate serve` without
/// `--tariffplan` restores it.
///
/// # Errors
/// The store cannot be opened (locked by a running server...), a bad
/// plan, a store error.
pub(crate) fn load_offline(dir: &Path, data_dir: &Path, cfg: &Config) -> anyhow::Result<()> {
    let store = store::Store::open(&cfg.storage, data_dir)?;
    let state = State::new(
        rating::SharedTariffPlan::default(),
        rating::RoundingMode::Exact,
        cfg.load_policy(),
        None,
        host_name(),
        store,
        cdrs::Cdrs::unavailable(),
    );
    let report = store::load_plan_dir(&state, dir)?;
    for w in &report.warnings {
        say(&format!("warning: {w}"));
    }
    accounts::load_accounts(&state, chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!("loading accounts: {e}"))?;
    Ok(())
}

fn parse_addr(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse()
        .with_context(|| format!("invalid listen address {s:?}: expected IP:PORT"))
}

fn bind_failure(what: &str, addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    Failure::Bind(format!("{what}:{addr}"), ::capture::CaptureError::Io(e)).into()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "accurate".to_owned())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> anyhow::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).context("cannot install a signal handler")
}

/// A line on stderr; never panics (unlike `eprintln!`).
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Whether a caller is authenticated (HTTP: by its header; TCP: by a
/// first `AuthSv1.Auth` call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Done,
    Needed,
}

/// Answers one decoded JSON value: the reply bytes, or `None` for a 2.0
/// notification. An `AuthSv1.Auth` call with the right token sets `auth`.
async fn answer(state: &Arc<State>, value: Value, auth: &mut Auth) -> Option<Vec<u8>> {
    let req: Request = match jsonrpc::parse_request(value) {
        Ok(r) => r,
        Err(Invalid { id, version, error }) => {
            count_error(state);
            return Some(jsonrpc::encode_error(version, &id, &error));
        }
    };
    let outcome = if req.method == AUTH_METHOD {
        let token = req
            .params
            .get("Token")
            .and_then(Value::as_str)
            .unwrap_or("");
        if state.token_ok(token) {
            *auth = Auth::Done;
            methods::dispatch(state, AUTH_METHOD, Value::Null).await
        } else {
            count_error(state);
            Err(RpcError::server(UNAUTHORIZED))
        }
    } else if *auth == Auth::Needed {
        count_error(state);
        Err(RpcError::server(UNAUTHORIZED))
    } else {
        methods::dispatch(state, &req.method, req.params).await
    };
    if req.notification {
        return None;
    }
    Some(match outcome {
        Ok(result) => jsonrpc::encode_result(req.version, &req.id, &result),
        Err(e) => jsonrpc::encode_error(req.version, &req.id, &e),
    })
}

/// Counts a request refused before dispatch (under method `invalid`).
fn count_error(state: &State) {
    state.counters.count("invalid", true);
}

/// The reply to a body that is not JSON at all (HTTP only; TCP closes).
fn parse_error(msg: &str) -> Vec<u8> {
    jsonrpc::encode_error(
        Version::V1,
        &Value::Null,
        &RpcError::new(jsonrpc::code::PARSE_ERROR, msg),
    )
}
