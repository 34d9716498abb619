//! CSV importers: every `interval-secs` the folder is listed; a `*.csv`
//! file whose size is the same as at the previous poll (so not still
//! being written) is read line by line (up to 64 lines processed at
//! once), each line mapped by the template
//! to an event (`~*req.N`: column N) and processed as
//! `CDRsV1.ProcessEvent` (rated and charged by its `RequestType`, stored
//! once: a file imported again after a crash charges nothing twice). A
//! line that cannot be read, or that the event processing refuses, is
//! logged with its file and line and counted (`bad_lines`); the other
//! lines are imported. The file then moves to `processed-dir`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rating::TariffStore as _;
use serde_json::{Map, Value};
use sessions::export::{RowSource, Template};
use tokio::sync::watch;

use super::super::methods::State;
use super::ImporterConfig;

/// One importer's task.
pub(super) struct Importer {
    state: Arc<State>,
    cfg: ImporterConfig,
    tpl: Template,
    sep: u8,
    /// Sizes seen at the previous poll.
    sizes: BTreeMap<PathBuf, u64>,
}

/// What one line gave.
enum Line {
    Imported,
    Filtered,
    Bad(String),
}

impl Importer {
    pub(super) fn new(
        state: Arc<State>,
        cfg: ImporterConfig,
        what: &str,
    ) -> anyhow::Result<Importer> {
        // The one kind there is.
        let super::ImportKind::Csv = cfg.kind;
        let tpl = super::template(&cfg.fields, what)?;
        let sep = super::separator(&cfg.field_sep, what)?;
        for d in [&cfg.dir, &cfg.processed_dir] {
            std::fs::create_dir_all(d)
                .with_context(|| format!("{what}: creating {}", d.display()))?;
        }
        Ok(Importer {
            state,
            cfg,
            tpl,
            sep,
            sizes: BTreeMap::new(),
        })
    }

    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let every = std::time::Duration::from_secs(self.cfg.interval_secs.max(1));
        loop {
            for path in self.ready() {
                if *stop.borrow() {
                    return;
                }
                if let Err(e) = self.import(&path, &stop).await {
                    tracing::warn!(importer = %self.cfg.id, file = %path.display(), error = %format!("{e:#}"), "import failed");
                    self.state.export.import(&self.cfg.id, "errors", 1);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    /// The `*.csv` files whose size did not change since the last poll.
    fn ready(&mut self) -> Vec<PathBuf> {
        let list = match std::fs::read_dir(&self.cfg.dir) {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(importer = %self.cfg.id, dir = %self.cfg.dir.display(), error = %e, "cannot list the import folder");
                return Vec::new();
            }
        };
        let mut now = BTreeMap::new();
        for e in list.flatten() {
            let path = e.path();
            if path.extension().and_then(|x| x.to_str()) != Some("csv") {
                continue;
            }
            if let Ok(m) = e.metadata() {
                if m.is_file() {
                    now.insert(path, m.len());
                }
            }
        }
        let ready = now
            .iter()
            .filter(|(p, size)| self.sizes.get(*p) == Some(*size))
            .map(|(p, _)| p.clone())
            .collect();
        self.sizes = now;
        ready
    }

    /// Imports one file and moves it. Up to [`IN_FLIGHT`] lines are
    /// processed at once (each waits for its CDR's commit).
    async fn import(&mut self, path: &Path, stop: &watch::Receiver<bool>) -> anyhow::Result<()> {
        let bytes = tokio::fs::read(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.sep)
            .from_reader(bytes.as_slice());
        let mut tally = Tally::default();
        let mut running = tokio::task::JoinSet::new();
        let mut first = true;
        let mut record = csv::StringRecord::new();
        loop {
            if *stop.borrow() {
                // Stopping: the file stays where it is and is imported again
                // at the next start (what was imported is not stored or
                // charged twice).
                while running.join_next().await.is_some() {}
                tracing::info!(importer = %self.cfg.id, file = %name, "import stopped by the shutdown");
                return Ok(());
            }
            let line_no = rd.position().line();
            let (n, outcome) = match rd.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let n = record.position().map_or(line_no, csv::Position::line);
                    if std::mem::take(&mut first) && self.cfg.header {
                        continue;
                    }
                    let row: Vec<String> = record.iter().map(str::to_owned).collect();
                    match self.event(&name, n, &row) {
                        Err(outcome) => (n, outcome),
                        Ok(m) => {
                            while running.len() >= IN_FLIGHT {
                                if let Some(Ok((n, o))) = running.join_next().await {
                                    tally.add(&self.cfg.id, path, n, o);
                                }
                            }
                            let state = Arc::clone(&self.state);
                            running.spawn(async move {
                                let o = match super::super::cdrs_event::process_event(&state, &m)
                                    .await
                                {
                                    Ok(_) => Line::Imported,
                                    Err(e) => Line::Bad(e.message),
                                };
                                (n, o)
                            });
                            continue;
                        }
                    }
                }
                Err(e) => (line_no, Line::Bad(format!("unreadable: {e}"))),
            };
            tally.add(&self.cfg.id, path, n, outcome);
        }
        while let Some(r) = running.join_next().await {
            match r {
                Ok((n, o)) => tally.add(&self.cfg.id, path, n, o),
                Err(e) => tally.add(&self.cfg.id, path, 0, Line::Bad(e.to_string())),
            }
        }
        let to = self.cfg.processed_dir.join(&name);
        move_file(path, &to).await?;
        self.sizes.remove(path);
        let m = &self.state.export;
        m.import(&self.cfg.id, "lines_imported", tally.good);
        m.import(&self.cfg.id, "bad_lines", tally.bad);
        m.import(&self.cfg.id, "lines_filtered", tally.filtered);
        m.import(&self.cfg.id, "files", 1);
        tracing::info!(importer = %self.cfg.id, file = %name, imported = tally.good,
            bad = tally.bad, filtered = tally.filtered, "file imported");
        Ok(())
    }

    /// One row's CGREvent (filters, then the template), or what became
    /// of the row without one.
    fn event(&self, file: &str, line_no: u64, row: &[String]) -> Result<Map<String, Value>, Line> {
        if !self.cfg.filters.is_empty() {
            let mut ev = subsystems::Event {
                tenant: "cgrates.org".to_owned(),
                ..subsystems::Event::default()
            };
            for (i, v) in row.iter().enumerate() {
                ev.fields.insert(i.to_string(), Value::String(v.clone()));
            }
            let profiles = self.state.profiles.current();
            let plan = self.state.plan.current();
            let ctx = subsystems::FilterCtx {
                filters: &profiles.filters,
                plan: Some(&*plan),
                now: chrono::Utc::now(),
            };
            match ctx.pass(&ev.tenant, &self.cfg.filters, &ev) {
                Ok(true) => {}
                Ok(false) => return Err(Line::Filtered),
                Err(e) => return Err(Line::Bad(format!("filters: {e}"))),
            }
        }
        let fields = self
            .tpl
            .render_named(&RowSource(row))
            .map_err(|e| Line::Bad(e.to_string()))?;
        let mut event = Map::new();
        for (k, v) in fields {
            event.insert(k, Value::String(v));
        }
        let tenant = event
            .get("Tenant")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .unwrap_or("cgrates.org")
            .to_owned();
        let mut m = Map::new();
        m.insert("Tenant".into(), Value::String(tenant));
        m.insert(
            "ID".into(),
            Value::String(format!("{}:{file}:{line_no}", self.cfg.id)),
        );
        m.insert("Event".into(), Value::Object(event));
        Ok(m)
    }
}

/// Lines processed at once per importer.
const IN_FLIGHT: usize = 64;

/// A file's counts.
#[derive(Default)]
struct Tally {
    good: u64,
    bad: u64,
    filtered: u64,
}

impl Tally {
    fn add(&mut self, id: &str, path: &Path, n: u64, outcome: Line) {
        match outcome {
            Line::Imported => self.good += 1,
            Line::Filtered => self.filtered += 1,
            Line::Bad(why) => {
                self.bad += 1;
                tracing::warn!(importer = %id, "{}:{n}: line not imported: {why}", path.display());
                crate::serve::say(&format!(
                    "import {id}: {}:{n}: line not imported: {why}",
                    path.display()
                ));
            }
        }
    }
}

/// Renames `from` to `to` (copy and remove across file systems).
async fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if tokio::fs::rename(from, to).await.is_ok() {
        return Ok(());
    }
    tokio::fs::copy(from, to)
        .await
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    tokio::fs::remove_file(from)
        .await
        .with_context(|| format!("removing {}", from.display()))
}
