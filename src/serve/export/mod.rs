//! CDR exporters and importers of `accurate serve` (`[[exporters]]`,
//! `[[importers]]`), CGRateS's `cdre`/`ees` and `ers` in small.
//!
//! Each exporter is one task polling the CDR database every
//! `interval-secs` for the CDRs it has not marked yet
//! ([`storage::SqlCdrs::unexported`]), checking its filters, formatting
//! them with its template ([`sessions::export`]) and writing them: CSV or
//! fixed-width files ([`files`], rotated by count or age, written under a
//! temporary name and renamed when complete) or one HTTP JSON POST per
//! CDR ([`post`], retried with back-off, then parked in a failed-posts
//! folder and replayed later). A CDR is marked once written and synced,
//! delivered or parked (or left out by the filters), so it is exported at
//! most once, across restarts; a crash between the write and the mark
//! exports it again (at least once on a crash).
//!
//! Each importer is one task polling a folder for `*.csv` files whose size
//! did not change since the previous poll ([`import`]); each line becomes
//! an event processed as `CDRsV1.ProcessEvent` (rated, charged, stored).

mod files;
mod import;
mod post;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use rating::TariffStore as _;
use serde::Deserialize;
use sessions::export::{FieldSpec, Template};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::methods::State;

/// `[[exporters]] type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum ExportKind {
    /// CSV files.
    #[serde(rename = "csv", alias = "*file_csv")]
    Csv,
    /// Fixed-width lines.
    #[serde(rename = "fixed_width", alias = "*file_fwv", alias = "fixed-width")]
    FixedWidth,
    /// One JSON POST per CDR.
    #[serde(
        rename = "http_json",
        alias = "*http_json_map",
        alias = "*http_json_cdr",
        alias = "http-json"
    )]
    HttpJson,
}

fn default_interval() -> u64 {
    5
}
fn default_attempts() -> u32 {
    3
}
fn default_replay() -> u64 {
    60
}
fn default_batch() -> u32 {
    500
}
fn default_true() -> bool {
    true
}
fn default_sep() -> String {
    ",".to_owned()
}

/// One `[[exporters]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ExporterConfig {
    /// Unique name: the export marks' key and the files' prefix.
    pub id: String,
    /// `csv`, `fixed_width` or `http_json`.
    #[serde(rename = "type")]
    pub kind: ExportKind,
    /// Folder of the files (csv, fixed_width).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `http://` URL (http_json).
    #[serde(default)]
    pub url: Option<String>,
    /// Filter IDs (Filters.csv of the plan in force) or inline rules; a
    /// CDR is exported only if it passes them all.
    #[serde(default)]
    pub filters: Vec<String>,
    /// The template; empty: every CGRateS CDR field (files) or the CDR's
    /// JSON (http_json).
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// CSV separator (one character).
    #[serde(default = "default_sep", alias = "field_sep")]
    pub field_sep: String,
    /// A CSV file starts with the fields' names.
    #[serde(default = "default_true")]
    pub header: bool,
    /// A new file after this many CDRs (0: no limit).
    #[serde(default, alias = "rotate_count")]
    pub rotate_count: u64,
    /// A new file after this many seconds (0: no limit). Neither limit:
    /// one file per poll that found CDRs.
    #[serde(default, alias = "rotate_secs")]
    pub rotate_secs: u64,
    /// Seconds between polls of the CDR database.
    #[serde(default = "default_interval", alias = "interval_secs")]
    pub interval_secs: u64,
    /// Most CDRs read per query.
    #[serde(default = "default_batch", alias = "batch_size")]
    pub batch_size: u32,
    /// HTTP attempts per CDR before it is parked.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Where undelivered POSTs are saved (none: kept unmarked and retried
    /// at the next poll).
    #[serde(default, alias = "failed_posts_dir")]
    pub failed_posts_dir: Option<PathBuf>,
    /// Seconds between replays of the failed-posts folder.
    #[serde(default = "default_replay", alias = "failed_posts_interval_secs")]
    pub failed_posts_interval_secs: u64,
}

/// `[[importers]] type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) enum ImportKind {
    /// CSV files.
    #[serde(rename = "csv", alias = "*file_csv")]
    Csv,
}

/// One `[[importers]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ImporterConfig {
    /// Unique name (metrics, log lines, event IDs).
    pub id: String,
    /// `csv`.
    #[serde(rename = "type")]
    pub kind: ImportKind,
    /// The folder watched.
    pub dir: PathBuf,
    /// Where a file goes once imported.
    #[serde(alias = "processed_dir")]
    pub processed_dir: PathBuf,
    /// Column separator (one character).
    #[serde(default = "default_sep", alias = "field_sep")]
    pub field_sep: String,
    /// The first line is a header (skipped).
    #[serde(default)]
    pub header: bool,
    /// Filters on the row (`~*req.2`: the third column).
    #[serde(default)]
    pub filters: Vec<String>,
    /// Columns to event fields (`path` the field, `value` `~*req.N`).
    pub fields: Vec<FieldSpec>,
    /// Seconds between polls of the folder.
    #[serde(default = "default_interval", alias = "interval_secs")]
    pub interval_secs: u64,
}

/// Counters by (exporter or importer ID, name), for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    exports: Mutex<BTreeMap<(String, &'static str), u64>>,
    imports: Mutex<BTreeMap<(String, &'static str), u64>>,
}

impl Metrics {
    fn add(
        map: &Mutex<BTreeMap<(String, &'static str), u64>>,
        id: &str,
        name: &'static str,
        n: u64,
    ) {
        if n == 0 {
            return;
        }
        let mut m = map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((id.to_owned(), name)).or_default() += n;
    }

    /// Counts `n` under exporter `id`'s `name`.
    pub(crate) fn export(&self, id: &str, name: &'static str, n: u64) {
        Self::add(&self.exports, id, name, n);
    }

    /// Counts `n` under importer `id`'s `name`.
    pub(crate) fn import(&self, id: &str, name: &'static str, n: u64) {
        Self::add(&self.imports, id, name, n);
    }

    /// Exporters' counters: ((id, name), value).
    pub(crate) fn exports(&self) -> Vec<((String, &'static str), u64)> {
        let m = self
            .exports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Importers' counters: ((id, name), value).
    pub(crate) fn imports(&self) -> Vec<((String, &'static str), u64)> {
        let m = self
            .imports
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

fn separator(s: &str, what: &str) -> anyhow::Result<u8> {
    match s.as_bytes() {
        [b] => Ok(*b),
        _ if s == "\\t" => Ok(b'\t'),
        _ => bail!("{what}: field-sep must be one ASCII character, got {s:?}"),
    }
}

/// A file exporter's fields when none are configured: the CDR's CGRateS
/// fields.
fn default_fields() -> Vec<FieldSpec> {
    [
        "CGRID",
        "RunID",
        "OriginHost",
        "Source",
        "OriginID",
        "ToR",
        "RequestType",
        "Tenant",
        "Category",
        "Account",
        "Subject",
        "Destination",
        "SetupTime",
        "AnswerTime",
        "Usage",
        "Cost",
    ]
    .into_iter()
    .map(|f| FieldSpec {
        tag: f.to_owned(),
        value: format!("~*req.{f}"),
        ..FieldSpec::default()
    })
    .collect()
}

fn template(fields: &[FieldSpec], what: &str) -> anyhow::Result<Template> {
    Template::new(fields).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// Checks `[[exporters]]` and `[[importers]]` as the config is read:
/// unique IDs, a path or URL as the type needs, separators, templates.
///
/// # Errors
/// What is wrong, naming the table.
pub(crate) fn check(
    exporters: &[ExporterConfig],
    importers: &[ImporterConfig],
) -> anyhow::Result<()> {
    let mut ids = BTreeSet::new();
    for e in exporters {
        let what = format!("[[exporters]] {:?}", e.id);
        if e.id.is_empty() || !ids.insert(e.id.clone()) {
            bail!("{what}: id is empty or used twice");
        }
        match e.kind {
            ExportKind::Csv | ExportKind::FixedWidth if e.path.is_none() => {
                bail!("{what}: path (a folder) is required")
            }
            ExportKind::HttpJson if e.url.is_none() => bail!("{what}: url is required"),
            _ => {}
        }
        separator(&e.field_sep, &what)?;
        template(&e.fields, &what)?;
    }
    ids.clear();
    for i in importers {
        let what = format!("[[importers]] {:?}", i.id);
        if i.id.is_empty() || !ids.insert(i.id.clone()) {
            bail!("{what}: id is empty or used twice");
        }
        separator(&i.field_sep, &what)?;
        template(&i.fields, &what)?;
    }
    Ok(())
}

/// Checks the exporters and importers, then starts one task each; they
/// end when `stop` turns true.
///
/// # Errors
/// A bad table (duplicate ID, missing path or URL, bad template), a folder
/// that cannot be created, the CDR database cannot be opened.
pub(crate) async fn start(
    state: &Arc<State>,
    exporters: &[ExporterConfig],
    importers: &[ImporterConfig],
    cdr_url: &str,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    check(exporters, importers)?;
    let mut tasks = Vec::new();
    if !exporters.is_empty() {
        let db = Arc::new(
            storage::SqlCdrs::open(cdr_url)
                .await
                .context("exporters: opening the CDR database")?,
        );
        for e in exporters {
            let what = format!("[[exporters]] {}", e.id);
            let tpl = if e.fields.is_empty() && e.kind != ExportKind::HttpJson {
                template(&default_fields(), &what)?
            } else {
                template(&e.fields, &what)?
            };
            let (mut files, mut poster) = (None, None);
            match e.kind {
                ExportKind::Csv | ExportKind::FixedWidth => {
                    let dir = e
                        .path
                        .clone()
                        .with_context(|| format!("{what}: path (a folder) is required"))?;
                    let sep = separator(&e.field_sep, &what)?;
                    files = Some(files::FileSink::open(e, dir, sep, &tpl)?);
                }
                ExportKind::HttpJson => {
                    let url = e
                        .url
                        .clone()
                        .with_context(|| format!("{what}: url is required"))?;
                    poster = Some(post::Poster::new(e, url)?);
                }
            }
            let ex = Exporter {
                state: Arc::clone(state),
                db: Arc::clone(&db),
                cfg: e.clone(),
                tpl,
                files,
                poster,
            };
            tasks.push(tokio::spawn(ex.run(stop.clone())));
        }
    }
    for i in importers {
        let what = format!("[[importers]] {}", i.id);
        let imp = import::Importer::new(Arc::clone(state), i.clone(), &what)?;
        tasks.push(tokio::spawn(imp.run(stop.clone())));
    }
    Ok(tasks)
}

/// One exporter's task.
struct Exporter {
    state: Arc<State>,
    db: Arc<storage::SqlCdrs>,
    cfg: ExporterConfig,
    tpl: Template,
    /// csv, fixed_width (taken while a blocking thread writes).
    files: Option<files::FileSink>,
    /// http_json.
    poster: Option<post::Poster>,
}

/// What the filters say of one CDR.
enum Verdict {
    Pass,
    Out,
}

impl Exporter {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let every = std::time::Duration::from_secs(self.cfg.interval_secs.max(1));
        if let Some(p) = &mut self.poster {
            p.replay(&self.state.export).await;
        }
        loop {
            if let Err(e) = self.poll(&stop).await {
                tracing::warn!(exporter = %self.cfg.id, error = %format!("{e:#}"), "export poll failed");
                self.state.export.export(&self.cfg.id, "errors", 1);
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
        if let Some(f) = self.files.take() {
            let id = self.cfg.id.clone();
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || f.finish()).await {
                tracing::warn!(exporter = %id, error = %e, "closing the export file");
            }
        }
    }

    /// Which CDRs pass the filters; `Err` (nothing marked) when a filter
    /// cannot be checked (unknown ID): the exporter waits for a plan
    /// that has it.
    fn verdicts(&self, cdrs: &[sessions::Cdr]) -> anyhow::Result<Vec<Verdict>> {
        if self.cfg.filters.is_empty() {
            return Ok(cdrs.iter().map(|_| Verdict::Pass).collect());
        }
        let profiles = self.state.profiles.current();
        let plan = self.state.plan.current();
        let ctx = subsystems::FilterCtx {
            filters: &profiles.filters,
            plan: Some(&*plan),
            now: chrono::Utc::now(),
        };
        cdrs.iter()
            .map(|c| match passes(&ctx, &self.cfg.filters, c) {
                Ok(true) => Ok(Verdict::Pass),
                Ok(false) => Ok(Verdict::Out),
                Err(e) => Err(anyhow::anyhow!("filters: {e}")),
            })
            .collect()
    }

    /// Exports what is not marked yet, batch after batch.
    async fn poll(&mut self, stop: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let id = self.cfg.id.clone();
        let metrics = Arc::clone(&self.state.export);
        if let Some(p) = &mut self.poster {
            if p.replay_due() {
                p.replay(&metrics).await;
            }
        }
        loop {
            let cdrs = self.db.unexported(&id, self.cfg.batch_size.max(1)).await?;
            let verdicts = self.verdicts(&cdrs)?;
            let n = cdrs.len();
            let marks = match &mut self.poster {
                None => self.write_files(cdrs, verdicts).await?,
                Some(p) => p.send(&metrics, &self.tpl, cdrs, verdicts).await?,
            };
            let full = marks.len() == n;
            self.db.mark_exported(&id, &marks).await?;
            if let Some(f) = &self.files {
                if f.rotate_due() {
                    self.with_files(files::FileSink::close).await?;
                }
            }
            if n < self.cfg.batch_size.max(1) as usize || !full || *stop.borrow() {
                break;
            }
        }
        if let Some(f) = &self.files {
            if f.close_after_poll() {
                self.with_files(files::FileSink::close).await?;
            }
        }
        Ok(())
    }

    /// Runs `f` on the file sink on a blocking thread.
    async fn with_files(
        &mut self,
        f: impl FnOnce(&mut files::FileSink) -> anyhow::Result<()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Some(mut sink) = self.files.take() else {
            return Ok(());
        };
        let (sink, r) = tokio::task::spawn_blocking(move || {
            let r = f(&mut sink);
            (sink, r)
        })
        .await
        .context("export file task")?;
        self.files = Some(sink);
        r
    }

    /// Formats and writes a batch; the marks of what is written (synced),
    /// filtered out or refused by the template.
    async fn write_files(
        &mut self,
        cdrs: Vec<sessions::Cdr>,
        verdicts: Vec<Verdict>,
    ) -> anyhow::Result<Vec<(String, String, storage::ExportOutcome)>> {
        use storage::ExportOutcome as O;
        let mut marks = Vec::with_capacity(cdrs.len());
        let mut rows = Vec::new();
        let Some(sink) = self.files.as_ref() else {
            return Ok(marks);
        };
        for (c, v) in cdrs.into_iter().zip(verdicts) {
            let outcome = match v {
                Verdict::Out => O::Filtered,
                Verdict::Pass => match sink.line(&self.tpl, &c) {
                    Ok(r) => {
                        rows.push(r);
                        O::Exported
                    }
                    Err(e) => {
                        tracing::warn!(exporter = %self.cfg.id, cgrid = %c.cgrid, error = %e, "CDR not exported");
                        O::Failed
                    }
                },
            };
            self.state
                .export
                .export(&self.cfg.id, outcome_name(outcome), 1);
            marks.push((c.cgrid, c.run_id, outcome));
        }
        self.with_files(move |f| f.write_rows(&rows)).await?;
        Ok(marks)
    }
}

/// Whether CDR `c` passes `filters` (IDs of its tenant, or inline rules
/// on `~*req.X`: its CGRateS fields and `ExtraFields` keys).
fn passes(
    ctx: &subsystems::FilterCtx<'_>,
    filters: &[String],
    c: &sessions::Cdr,
) -> Result<bool, subsystems::Error> {
    let ev = subsystems::Event {
        tenant: c.tenant.clone(),
        id: c.cgrid.clone(),
        fields: sessions::export::cdr_event_fields(c),
        ..subsystems::Event::default()
    };
    ctx.pass(&c.tenant, filters, &ev)
}

/// Whether a file `name` of a shared folder is exporter `id`'s: `ID_`
/// then the time stamp (20 digits or more) and `_` (so exporter `a` never
/// takes exporter `a_1`'s files).
fn own_file(name: &str, id: &str) -> bool {
    name.strip_prefix(id)
        .and_then(|r| r.strip_prefix('_'))
        .and_then(|r| r.split_once('_'))
        .is_some_and(|(stamp, _)| stamp.len() >= 20 && stamp.bytes().all(|b| b.is_ascii_digit()))
}

/// The counter of an outcome.
fn outcome_name(o: storage::ExportOutcome) -> &'static str {
    match o {
        storage::ExportOutcome::Exported => "exported",
        storage::ExportOutcome::Parked => "parked",
        storage::ExportOutcome::Filtered => "filtered",
        storage::ExportOutcome::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cdr() -> sessions::Cdr {
        let mut c: sessions::Cdr = serde_json::from_value(serde_json::json!({
            "CGRID": "g1", "RunID": "*default", "Tenant": "cgrates.org",
            "Account": "1001", "Destination": "4930555002", "RequestType": "*postpaid",
            "SetupTime": "2026-01-02T10:00:00Z", "AnswerTime": "2026-01-02T10:00:05Z",
            "Usage": 60_000_000_000u64, "Cost": 0.6,
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        c.extra_fields.insert("Route".into(), "gw1".into());
        c
    }

    #[test]
    fn export_filters_read_the_cdr_fields() {
        let set = subsystems::FilterSet::default();
        let ctx = subsystems::FilterCtx {
            filters: &set,
            plan: None,
            now: chrono::Utc::now(),
        };
        let c = cdr();
        let check = |rules: &[&str]| {
            let ids: Vec<String> = rules.iter().map(|r| (*r).to_owned()).collect();
            passes(&ctx, &ids, &c)
        };
        assert_eq!(check(&[]).ok(), Some(true));
        assert_eq!(check(&["*string:~*req.Account:1001"]).ok(), Some(true));
        assert_eq!(
            check(&["*prefix:~*req.Destination:49", "*string:~*req.Cost:0.6"]).ok(),
            Some(true)
        );
        assert_eq!(
            check(&["*string:~*req.Route:gw1"]).ok(),
            Some(true),
            "ExtraFields"
        );
        assert_eq!(
            check(&[
                "*string:~*req.Account:1001",
                "*string:~*req.RequestType:*prepaid"
            ])
            .ok(),
            Some(false),
            "every filter must pass"
        );
        assert_eq!(check(&["*notstring:~*req.Account:1001"]).ok(), Some(false));
        assert!(
            check(&["FLTR_UNKNOWN"]).is_err(),
            "an unknown ID is an error"
        );
    }
}
