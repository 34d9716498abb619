//! Asterisk ARI connections (`[[agents.asterisk]] url = "http://HOST:PORT"`,
//! `user`, `password`, `app`): one task per Asterisk, holding its events
//! WebSocket (`ws://HOST:PORT/ari/events?app=APP&api_key=USER:PASSWORD`)
//! and reconnecting on a Fibonacci back-off ([`agents::evapi::Backoff`]).
//! Its events feed the sans-IO [`AriAgent`]; the operations it yields run
//! one after the other, in the order Asterisk sent them, through the
//! SessionSv1 entry point ([`super::sessionsapi::call_as`], owner
//! `asterisk:URL`), and the REST requests the agent answers with go out
//! through hyper's client with basic auth. The connection is that owner's
//! [`sessions::Disconnect`]: a disconnect hangs the channel up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agents::ari::{AriAgent, AriConfig, AriRequest, Operation};
use agents::evapi::Backoff;
use anyhow::Context as _;
use base64::Engine as _;
use futures_util::StreamExt as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use super::agentio;
use super::methods::State;

/// `[[agents.asterisk]]`: one Asterisk's ARI.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct AsteriskSection {
    /// Asterisk's HTTP server, `http://HOST:PORT`.
    pub url: String,
    /// The ARI user (`ari.conf`).
    pub user: String,
    /// Its password.
    pub password: String,
    /// The Stasis application (`cgrates_auth` when not set).
    pub app: Option<String>,
    /// `OriginHost` of its calls (Asterisk's host when not set).
    pub alias: Option<String>,
    /// Write a CDR for every ended call, not only those flagged `*cdrs`.
    pub create_cdr: bool,
    /// The max usage set for an unlimited authorization, seconds (3h).
    pub max_call_duration_secs: Option<u64>,
}

/// The longest a REST request may take.
const REST_TIMEOUT: Duration = Duration::from_secs(5);

/// One Asterisk: the agent core and what its tasks share.
struct Link {
    agent: Mutex<AriAgent>,
    /// `HOST:PORT` of Asterisk's HTTP server.
    host_port: String,
    /// The `Authorization` header of the REST requests.
    auth: String,
    /// The events WebSocket's URL.
    ws_url: String,
    /// The sessions started here: CGRID to channel id.
    calls: Mutex<HashMap<String, String>>,
    /// The owner name the sessions started here carry (`asterisk:URL`).
    owner: String,
    /// Hangups asked by the session manager, sent by their own task.
    hangups: mpsc::UnboundedSender<AriRequest>,
}

impl Link {
    fn agent(&self) -> std::sync::MutexGuard<'_, AriAgent> {
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
        let channel = self.calls().get(&session.cgrid).cloned();
        let req = channel.and_then(|c| self.agent().disconnect(&c));
        let Some(req) = req else {
            return Err(sessions::Error::Disconnect(format!(
                "no Asterisk channel for session {session}"
            )));
        };
        tracing::info!(session = %session, reason, "ari: hanging up");
        self.hangups
            .send(req)
            .map_err(|_| sessions::Error::Disconnect("the Asterisk link is closed".into()))
    }
}

/// `HOST:PORT` of an `http://HOST[:PORT]` URL.
fn host_port(url: &str) -> anyhow::Result<(String, String)> {
    let uri: hyper::Uri = url.parse().context("invalid Asterisk URL")?;
    anyhow::ensure!(
        uri.scheme_str().is_none_or(|s| s == "http"),
        "only http:// Asterisk URLs are supported: {url}"
    );
    let host = uri
        .host()
        .context("no host in the Asterisk URL")?
        .to_owned();
    let port = uri.port_u16().unwrap_or(8088);
    Ok((format!("{host}:{port}"), host))
}

/// Escaped but RFC 3986's unreserved characters.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// Starts one task per Asterisk of `cfg`; they end when `stop` turns true.
pub(crate) fn start(
    state: &Arc<State>,
    cfg: &[AsteriskSection],
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for a in cfg {
        let (hp, host) = match host_port(&a.url) {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(url = %a.url, error = %e, "ari: Asterisk not followed");
                continue;
            }
        };
        let app = a
            .app
            .clone()
            .unwrap_or_else(|| agents::ari::APP.to_string());
        let owner = format!("asterisk:{}", a.url);
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", a.user, a.password));
        let (hangups, hangup_rx) = mpsc::unbounded_channel();
        let mut acfg = AriConfig {
            origin_host: a.alias.clone().unwrap_or(host),
            create_cdr: a.create_cdr,
            app: app.clone(),
            id_prefix: owner.clone(),
            ..AriConfig::default()
        };
        if let Some(s) = a.max_call_duration_secs {
            acfg.max_call_duration_ms = i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX);
        }
        let link = Arc::new(Link {
            agent: Mutex::new(AriAgent::new(acfg)),
            ws_url: format!(
                "ws://{hp}/ari/events?app={}&api_key={}:{}",
                enc(&app),
                enc(&a.user),
                enc(&a.password)
            ),
            host_port: hp,
            auth: format!("Basic {token}"),
            calls: Mutex::default(),
            owner: owner.clone(),
            hangups,
        });
        super::agentio::register(
            state,
            &owner,
            Arc::clone(&link) as Arc<dyn sessions::Disconnect + Send + Sync>,
        );
        tasks.push(tokio::spawn(send_hangups(
            Arc::clone(&link),
            hangup_rx,
            stop.clone(),
        )));
        tasks.push(tokio::spawn(run(Arc::clone(state), link, stop.clone())));
    }
    tasks
}

/// Sends the session manager's hangups, until `stop`.
async fn send_hangups(
    link: Arc<Link>,
    mut rx: mpsc::UnboundedReceiver<AriRequest>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let req = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => return,
        };
        let Some(req) = req else { return };
        if let Err(e) = rest(&link, &req).await {
            tracing::warn!(error = %format!("{e:#}"), "ari: hangup failed");
        }
    }
}

/// Connects, serves, reconnects, until `stop`.
async fn run(state: Arc<State>, link: Arc<Link>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(agentio::BACKOFF_BASE, agentio::BACKOFF_MAX);
    let mut failing = false;
    let addr = link.host_port.clone();
    while !*stop.borrow() {
        let conn = tokio::select! {
            c = tokio_tungstenite::connect_async(link.ws_url.as_str()) => c,
            _ = stop.changed() => return,
        };
        match conn {
            Ok((ws, _)) => {
                backoff.reset();
                failing = false;
                tracing::info!(asterisk = %addr, "ari connected");
                sync_calls(&state, &link).await;
                if let Err(e) = serve(&state, ws, &link, &mut stop).await {
                    tracing::warn!(asterisk = %addr, error = %format!("{e:#}"), "ari connection lost");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(asterisk = %addr, error = %e, "ari connect failed: retrying");
            }
            Err(e) => tracing::debug!(asterisk = %addr, error = %e, "ari connect failed"),
        }
        let wait = backoff.next_delay();
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection: reads events until it fails or `stop`.
async fn serve(
    state: &Arc<State>,
    mut ws: Ws,
    link: &Arc<Link>,
    stop: &mut watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (ops_tx, mut ops_rx) = mpsc::channel::<Operation>(agentio::OPS_QUEUE);
    let (st, ln) = (Arc::clone(state), Arc::clone(link));
    tokio::spawn(async move {
        while let Some(op) = ops_rx.recv().await {
            execute(&st, &ln, op).await;
        }
    });
    loop {
        let msg = tokio::select! {
            m = ws.next() => m,
            _ = stop.changed() => return Ok(()),
        };
        let data = match msg {
            None => anyhow::bail!("closed by Asterisk"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Close(_))) => anyhow::bail!("closed by Asterisk"),
            Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
            Some(Ok(Message::Binary(b))) => b.to_vec(),
            Some(Ok(_)) => continue,
        };
        let op = link.agent().handle_message(&data, chrono::Utc::now());
        match op {
            Ok(Some(op)) => ops_tx.send(op).await?,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "ari event refused"),
        }
    }
}

/// Runs one operation and sends the requests it answers with.
async fn execute(state: &Arc<State>, link: &Arc<Link>, op: Operation) {
    match op {
        Operation::Authorize {
            channel,
            subscribe,
            args,
        } => {
            if let Err(e) = rest(link, &subscribe).await {
                tracing::warn!(channel, error = %format!("{e:#}"), "ari: subscription failed: hanging up");
                let reqs = link.agent().failed(&channel);
                send_all(link, &channel, reqs).await;
                return;
            }
            let out = call(state, link, "SessionSv1.AuthorizeEvent", &args).await;
            if let Err(e) = &out {
                tracing::info!(channel, error = %e, "ari: call refused");
            }
            let reqs = link
                .agent()
                .authorized(&channel, out.as_ref().map_err(|e| e.as_str()));
            send_all(link, &channel, reqs).await;
        }
        Operation::Initiate { channel, args } => {
            let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
            let cgrid = sessions::cgrid(&channel, host);
            link.calls().insert(cgrid.clone(), channel.clone());
            let out = call(state, link, "SessionSv1.InitiateSession", &args).await;
            if let Err(e) = &out {
                tracing::warn!(channel, error = %e, "ari: session start refused: hanging up");
                link.calls().remove(&cgrid);
            }
            let reqs = link
                .agent()
                .initiated(&channel, out.as_ref().map_err(|e| e.as_str()));
            send_all(link, &channel, reqs).await;
        }
        Operation::Terminate { channel, args, cdr } => {
            if let Some(args) = args {
                let host = args["Event"]["OriginHost"].as_str().unwrap_or_default();
                link.calls().remove(&sessions::cgrid(&channel, host));
                if let Err(e) = call(state, link, "SessionSv1.TerminateSession", &args).await {
                    tracing::warn!(channel, error = %e, "ari call end: terminate failed");
                }
            }
            if let Some(cdr) = cdr
                && let Err(e) = call(state, link, "SessionSv1.ProcessCDR", &cdr).await
            {
                tracing::warn!(channel, error = %e, "ari call end: CDR refused");
            }
        }
    }
}

/// Sends `reqs` in order; when one fails (not a hangup), the channel is
/// hung up, as CGRateS does when a variable cannot be set.
async fn send_all(link: &Link, channel: &str, reqs: Vec<AriRequest>) {
    for req in reqs {
        if let Err(e) = rest(link, &req).await {
            tracing::warn!(channel, error = %format!("{e:#}"), "ari request failed");
            if !req.is_hangup() {
                let hangup = link.agent().failed(channel);
                for h in hangup {
                    if let Err(e) = rest(link, &h).await {
                        tracing::warn!(channel, error = %format!("{e:#}"), "ari hangup failed");
                    }
                }
            }
            return;
        }
    }
}

/// The path and query of a request.
fn path_of(req: &AriRequest) -> String {
    let mut path = String::from("/ari");
    for s in &req.segments {
        path.push('/');
        path.push_str(&enc(s));
    }
    for (i, (k, v)) in req.query.iter().enumerate() {
        path.push(if i == 0 { '?' } else { '&' });
        path.push_str(&enc(k));
        path.push('=');
        path.push_str(&enc(v));
    }
    path
}

/// One REST request; `Ok` (its body) on a 2xx answer.
async fn rest(link: &Link, req: &AriRequest) -> anyhow::Result<bytes::Bytes> {
    use http_body_util::{BodyExt as _, Empty};
    let path = path_of(req);
    let fut = async {
        let stream = tokio::net::TcpStream::connect(&link.host_port).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(req.method.as_str())
            .uri(path.as_str())
            .header(hyper::header::HOST, link.host_port.as_str())
            .header(hyper::header::AUTHORIZATION, link.auth.as_str())
            .body(Empty::<bytes::Bytes>::new())?;
        let resp = sender.send_request(request).await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        anyhow::Ok(resp.into_body().collect().await?.to_bytes())
    };
    tokio::time::timeout(REST_TIMEOUT, fut)
        .await
        .with_context(|| format!("{} {path}: timed out", req.method.as_str()))?
        .with_context(|| format!("{} {path}", req.method.as_str()))
}

/// The reason a session Asterisk no longer has is ended with.
const SYNC_REASON: &str = "SESSION_SYNC";

/// Session sync on (re)connect (CGRateS's `V1GetActiveSessionIDs`): the
/// calls followed that `GET /ari/channels` no longer lists ended while the
/// WebSocket was down; their sessions end now, as
/// `SessionSv1.ForceDisconnect` ends them (CDR written).
async fn sync_calls(state: &Arc<State>, link: &Link) {
    if link.agent().channels().is_empty() {
        return;
    }
    let lost = match rest(link, &AriRequest::channels()).await {
        Ok(body) => link.agent().sync(&body),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "ari session sync: channels not listed");
            return;
        }
    };
    let lost = match lost {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "ari session sync: bad channel list");
            return;
        }
    };
    for channel in lost {
        let cgrid = {
            let mut calls = link.calls();
            let cgrid = calls
                .iter()
                .find(|(_, c)| **c == channel)
                .map(|(k, _)| k.clone());
            if let Some(k) = &cgrid {
                calls.remove(k);
            }
            cgrid
        };
        // never answered: no session to end
        let Some(cgrid) = cgrid else { continue };
        tracing::info!(
            channel,
            "ari session sync: Asterisk has no such channel, ending the session"
        );
        let one = serde_json::json!({
            "Filters": [format!("*string:~*req.CGRID:{cgrid}")],
            "Reason": SYNC_REASON,
        });
        if let Err(e) = call(state, link, "SessionSv1.ForceDisconnect", &one).await {
            tracing::warn!(channel, error = %e, "ari session sync: ending failed");
        }
    }
}

/// A SessionSv1 method as the API runs it, on behalf of this Asterisk.
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

    #[test]
    fn paths_and_queries_are_escaped() {
        let req = AriRequest::setvar("1714564800.7", "CGRMaxSessionTime", "90500");
        assert_eq!(
            path_of(&req),
            "/ari/channels/1714564800.7/variable?variable=CGRMaxSessionTime&value=90500"
        );
        let req = AriRequest::setvar("a/b", "Subject", "x y&z");
        assert_eq!(
            path_of(&req),
            "/ari/channels/a%2Fb/variable?variable=Subject&value=x%20y%26z"
        );
    }

    #[test]
    fn urls_are_read() {
        assert_eq!(
            host_port("http://127.0.0.1:8088").unwrap(),
            ("127.0.0.1:8088".to_string(), "127.0.0.1".to_string())
        );
        assert_eq!(host_port("http://ast").unwrap().0, "ast:8088");
        assert!(host_port("https://ast:8089").is_err());
    }
}
