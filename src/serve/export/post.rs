//! `http_json` exporters: one POST per CDR (its CGRateS JSON, or a JSON
//! object of the template's fields), `attempts` tries with a doubling
//! back-off, then the request saved in `failed-posts-dir` (one JSON file:
//! `{"url": ..., "body": ...}`) and replayed at start and every
//! `failed-posts-interval-secs` until delivered.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Map, Value, json};
use sessions::Cdr;
use sessions::export::{CdrSource, Template};
use storage::ExportOutcome as O;

use super::{ExporterConfig, Metrics, Verdict, outcome_name};

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait between attempts (doubled each time, at most 5 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// One exporter's poster.
pub(super) struct Poster {
    id: String,
    url: String,
    attempts: u32,
    dir: Option<PathBuf>,
    replay_every: Duration,
    last_replay: Instant,
    seq: u64,
}

impl Poster {
    pub(super) fn new(cfg: &ExporterConfig, url: String) -> anyhow::Result<Poster> {
        let uri: hyper::Uri = url
            .parse()
            .with_context(|| format!("[[exporters]] {}: invalid url {url:?}", cfg.id))?;
        anyhow::ensure!(
            uri.scheme_str() == Some("http") && uri.host().is_some(),
            "[[exporters]] {}: url {url:?}: only http://HOST[:PORT]/PATH is posted",
            cfg.id
        );
        if let Some(d) = &cfg.failed_posts_dir {
            std::fs::create_dir_all(d)
                .with_context(|| format!("[[exporters]] {}: creating {}", cfg.id, d.display()))?;
        }
        Ok(Poster {
            id: cfg.id.clone(),
            url,
            attempts: cfg.attempts.max(1),
            dir: cfg.failed_posts_dir.clone(),
            replay_every: Duration::from_secs(cfg.failed_posts_interval_secs.max(1)),
            last_replay: Instant::now(),
            seq: 0,
        })
    }

    /// The JSON posted for `cdr`.
    fn body(tpl: &Template, cdr: &Cdr) -> anyhow::Result<Value> {
        if tpl.is_empty() {
            return Ok(serde_json::to_value(cdr)?);
        }
        let values = tpl.render(&CdrSource(cdr))?;
        let mut m = Map::new();
        for (k, v) in tpl.names().into_iter().zip(values) {
            m.insert(k, Value::String(v));
        }
        Ok(Value::Object(m))
    }

    /// Posts a batch; the marks of what was delivered, parked, filtered
    /// out or refused by the template. Without a failed-posts folder, the
    /// first CDR not delivered ends the batch (it and the rest stay
    /// unmarked, tried again at the next poll). Once one CDR was not
    /// delivered after all its attempts, the rest of the batch is parked
    /// at once (the endpoint is down).
    pub(super) async fn send(
        &mut self,
        metrics: &Metrics,
        tpl: &Template,
        cdrs: Vec<Cdr>,
        verdicts: Vec<Verdict>,
    ) -> anyhow::Result<Vec<(String, String, O)>> {
        let mut marks = Vec::with_capacity(cdrs.len());
        let mut down = false;
        for (c, v) in cdrs.into_iter().zip(verdicts) {
            let outcome = match v {
                Verdict::Out => O::Filtered,
                Verdict::Pass => match Self::body(tpl, &c) {
                    Err(e) => {
                        tracing::warn!(exporter = %self.id, cgrid = %c.cgrid, error = %format!("{e:#}"), "CDR not exported");
                        O::Failed
                    }
                    Ok(body) => {
                        let bytes = serde_json::to_vec(&body)?;
                        let delivered = !down && self.deliver(metrics, &bytes).await;
                        if delivered {
                            O::Exported
                        } else {
                            down = true;
                            if self.dir.is_none() {
                                break;
                            }
                            self.park(&body)?;
                            O::Parked
                        }
                    }
                },
            };
            metrics.export(&self.id, outcome_name(outcome), 1);
            marks.push((c.cgrid, c.run_id, outcome));
        }
        Ok(marks)
    }

    /// Up to `attempts` POSTs with back-off.
    async fn deliver(&self, metrics: &Metrics, body: &[u8]) -> bool {
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=self.attempts {
            match post(&self.url, body.to_vec()).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::warn!(exporter = %self.id, url = %self.url, attempt, error = %format!("{e:#}"), "export POST failed");
                    metrics.export(&self.id, "post_errors", 1);
                }
            }
            if attempt < self.attempts {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
        false
    }

    /// Saves a request in the failed-posts folder (temporary name, then
    /// renamed: a replay never reads half a file).
    fn park(&mut self, body: &Value) -> anyhow::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        self.seq += 1;
        let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%f");
        let name = format!("{}_{stamp}_{}.json", self.id, self.seq);
        let tmp = dir.join(format!(".{name}.tmp"));
        let doc = json!({"url": self.url, "body": body});
        std::fs::write(&tmp, serde_json::to_vec(&doc)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        if let Ok(f) = std::fs::File::open(&tmp) {
            let _ = f.sync_all();
        }
        std::fs::rename(&tmp, dir.join(&name))
            .with_context(|| format!("renaming {}", tmp.display()))?;
        tracing::warn!(exporter = %self.id, file = %name, "export POST parked in the failed-posts folder");
        Ok(())
    }

    /// Whether the failed-posts folder is due for a replay.
    pub(super) fn replay_due(&self) -> bool {
        self.dir.is_some() && self.last_replay.elapsed() >= self.replay_every
    }

    /// Posts each parked request once, oldest first; a delivered one is
    /// removed. The first failure ends the replay (the endpoint is still
    /// down).
    pub(super) async fn replay(&mut self, metrics: &Metrics) {
        self.last_replay = Instant::now();
        let Some(dir) = self.dir.clone() else {
            return;
        };
        let mut names: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(list) => list
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| super::own_file(n, &self.id) && n.ends_with(".json"))
                .collect(),
            Err(e) => {
                tracing::warn!(exporter = %self.id, dir = %dir.display(), error = %e, "cannot list the failed posts");
                return;
            }
        };
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let parked = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|b| Ok(serde_json::from_slice::<Value>(&b)?));
            let (url, body) = match &parked {
                Ok(v) => (
                    v.get("url").and_then(Value::as_str).unwrap_or(&self.url),
                    v.get("body").cloned().unwrap_or(Value::Null),
                ),
                Err(e) => {
                    tracing::warn!(exporter = %self.id, file = %name, error = %format!("{e:#}"), "unreadable failed post left in place");
                    continue;
                }
            };
            let Ok(bytes) = serde_json::to_vec(&body) else {
                continue;
            };
            if let Err(e) = post(url, bytes).await {
                tracing::info!(exporter = %self.id, error = %format!("{e:#}"), "failed posts not replayed yet");
                return;
            }
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(exporter = %self.id, file = %name, error = %e, "replayed post not removed");
            }
            metrics.export(&self.id, "replayed", 1);
        }
    }
}

/// One JSON POST; `Ok` on a 2xx answer.
async fn post(url: &str, body: Vec<u8>) -> anyhow::Result<()> {
    use http_body_util::Full;
    let uri: hyper::Uri = url.parse().context("invalid URL")?;
    let host = uri.host().context("no host")?.to_owned();
    let host_port = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let fut = async {
        let stream = tokio::net::TcpStream::connect(&host_port).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, host_port.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(body)))?;
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        anyhow::Ok(())
    };
    tokio::time::timeout(POST_TIMEOUT, fut)
        .await
        .context("timed out")?
}
