//! CSV and fixed-width export files: written under `NAME.tmp`, synced
//! before the CDRs in them are marked, and renamed to `NAME` when complete
//! (rotation, or the server stopping). A `.tmp` file of this exporter left
//! by a crash is complete as far as the marks go (they are set only after
//! its rows are synced), so it is renamed at start.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sessions::Cdr;
use sessions::export::{CdrSource, Template};

use super::{ExportKind, ExporterConfig};

/// Suffix of a file being written.
const TMP: &str = ".tmp";

/// An open file and what is in it.
struct Open {
    tmp: PathBuf,
    done: PathBuf,
    out: BufWriter<File>,
    rows: u64,
    opened: Instant,
}

/// One exporter's files.
pub(super) struct FileSink {
    id: String,
    dir: PathBuf,
    kind: ExportKind,
    sep: u8,
    header: Option<String>,
    rotate_count: u64,
    rotate_after: Option<Duration>,
    open: Option<Open>,
    seq: u64,
}

impl FileSink {
    /// Creates the folder and completes this exporter's `.tmp` files left
    /// by a crash.
    pub(super) fn open(
        cfg: &ExporterConfig,
        dir: PathBuf,
        sep: u8,
        tpl: &Template,
    ) -> anyhow::Result<FileSink> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("[[exporters]] {}: creating {}", cfg.id, dir.display()))?;
        let mut sink = FileSink {
            id: cfg.id.clone(),
            dir,
            kind: cfg.kind,
            sep,
            header: None,
            rotate_count: cfg.rotate_count,
            rotate_after: (cfg.rotate_secs > 0).then(|| Duration::from_secs(cfg.rotate_secs)),
            open: None,
            seq: 0,
        };
        if cfg.header && cfg.kind == ExportKind::Csv {
            sink.header = Some(sink.csv_line(&tpl.names())?);
        }
        sink.complete_leftovers()?;
        Ok(sink)
    }

    fn prefix(&self) -> String {
        format!("{}_", self.id)
    }

    fn complete_leftovers(&self) -> anyhow::Result<()> {
        let prefix = self.prefix();
        let list = std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing {}", self.dir.display()))?;
        for entry in list.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(done) = name.strip_suffix(TMP) {
                if name.starts_with(&prefix) {
                    let to = self.dir.join(done);
                    std::fs::rename(entry.path(), &to)
                        .with_context(|| format!("completing {}", to.display()))?;
                    tracing::info!(exporter = %self.id, file = %to.display(), "export file left by a stop completed");
                }
            }
        }
        Ok(())
    }

    fn csv_line(&self, fields: &[String]) -> anyhow::Result<String> {
        let mut w = csv::WriterBuilder::new()
            .delimiter(self.sep)
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        w.write_record(fields)?;
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(String::from_utf8(bytes)?)
    }

    /// One CDR's line, newline included.
    pub(super) fn line(&self, tpl: &Template, cdr: &Cdr) -> anyhow::Result<String> {
        let fields = tpl.render(&CdrSource(cdr))?;
        match self.kind {
            ExportKind::FixedWidth => {
                let mut s = fields.concat();
                s.push('\n');
                Ok(s)
            }
            _ => self.csv_line(&fields),
        }
    }

    fn extension(&self) -> &'static str {
        match self.kind {
            ExportKind::FixedWidth => "fwv",
            _ => "csv",
        }
    }

    fn new_file(&mut self) -> anyhow::Result<()> {
        let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S%f");
        self.seq += 1;
        let name = format!("{}{stamp}_{}.{}", self.prefix(), self.seq, self.extension());
        let done = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}{TMP}"));
        let f = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = BufWriter::new(f);
        if let Some(h) = &self.header {
            out.write_all(h.as_bytes())?;
        }
        self.open = Some(Open {
            tmp,
            done,
            out,
            rows: 0,
            opened: Instant::now(),
        });
        Ok(())
    }

    /// Appends `rows`, starting new files as `rotate-count` says, and
    /// syncs what is open: once this returns, the rows are on disk.
    pub(super) fn write_rows(&mut self, rows: &[String]) -> anyhow::Result<()> {
        let limit = self.rotate_count;
        for r in rows {
            if self.open.is_none() {
                self.new_file()?;
            }
            let Some(o) = self.open.as_mut() else {
                continue;
            };
            o.out
                .write_all(r.as_bytes())
                .with_context(|| format!("writing {}", o.tmp.display()))?;
            o.rows += 1;
            if limit > 0 && o.rows >= limit {
                self.close()?;
            }
        }
        if let Some(o) = &mut self.open {
            o.out.flush()?;
            o.out.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// Whether the open file is due for rotation by age.
    pub(super) fn rotate_due(&self) -> bool {
        match (&self.open, self.rotate_after) {
            (Some(o), Some(after)) => o.opened.elapsed() >= after,
            _ => false,
        }
    }

    /// No rotation limit: each poll's rows make one file.
    pub(super) fn close_after_poll(&self) -> bool {
        self.rotate_count == 0 && self.rotate_after.is_none() && self.open.is_some()
    }

    /// Completes the open file: synced, then renamed.
    pub(super) fn close(&mut self) -> anyhow::Result<()> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        o.out.flush()?;
        o.out.get_ref().sync_all()?;
        drop(o.out);
        std::fs::rename(&o.tmp, &o.done)
            .with_context(|| format!("renaming {} to {}", o.tmp.display(), o.done.display()))?;
        sync_dir(&self.dir);
        tracing::info!(exporter = %self.id, file = %o.done.display(), rows = o.rows, "export file complete");
        Ok(())
    }

    /// At shutdown: the open file completed.
    pub(super) fn finish(mut self) -> anyhow::Result<()> {
        self.close()
    }
}

/// Makes a rename durable (best effort: not every file system allows it).
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
