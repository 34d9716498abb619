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
        let list = std::fs::read_dir(&self.dir)
            .with_context(|| format!("listing {}", self.dir.display()))?;
        for entry in list.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(done) = name.strip_suffix(TMP) {
                if super::own_file(name, &self.id) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(dir: &Path, extra: &str) -> FileSink {
        let cfg: ExporterConfig = toml::from_str(&format!(
            "id = \"t\"\ntype = \"fixed_width\"\npath = \"{}\"\n{extra}",
            dir.display()
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        let tpl = Template::new(&[]).unwrap_or_else(|e| panic!("{e}"));
        FileSink::open(&cfg, dir.to_path_buf(), b',', &tpl).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("accurate-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    /// (name, content) of the folder's files, sorted by name.
    fn listing(dir: &Path) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap_or_default(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn rows(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| format!("{s}\n")).collect()
    }

    #[test]
    fn rotates_by_count_and_completes_at_the_end() {
        let dir = scratch("count");
        let mut s = sink(&dir, "rotate-count = 2");
        s.write_rows(&rows(&["a", "b", "c"]))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let l = listing(&dir);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].0.ends_with("_1.fwv") && l[0].1 == "a\nb\n", "{l:?}");
        assert!(l[1].0.ends_with("_2.fwv.tmp") && l[1].1 == "c\n", "{l:?}");
        assert!(!s.close_after_poll() && !s.rotate_due());
        s.finish().unwrap_or_else(|e| panic!("{e:#}"));
        let l = listing(&dir);
        assert!(l.iter().all(|(n, _)| n.ends_with(".fwv")), "{l:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotates_by_age_and_one_file_per_poll_without_limits() {
        let dir = scratch("age");
        let mut s = sink(&dir, "rotate-secs = 1");
        s.write_rows(&rows(&["a"]))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!s.rotate_due());
        std::thread::sleep(Duration::from_millis(1_050));
        assert!(s.rotate_due());
        s.close().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!s.rotate_due(), "nothing open");
        let _ = std::fs::remove_dir_all(&dir);

        let dir = scratch("poll");
        let mut s = sink(&dir, "");
        s.write_rows(&rows(&["a", "b"]))
            .unwrap_or_else(|e| panic!("{e:#}"));
        assert!(s.close_after_poll());
        s.close().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!s.close_after_poll());
        s.write_rows(&[]).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!s.close_after_poll(), "no rows: no file");
        assert_eq!(listing(&dir).len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn leftovers_of_this_exporter_are_completed_at_open() {
        let dir = scratch("left");
        let stamp = "20260102030405123456789";
        for n in [
            format!("t_{stamp}_1.fwv.tmp"),
            format!("other_{stamp}_1.fwv.tmp"),
            format!("t_x_{stamp}_1.fwv.tmp"),
            format!("t_{stamp}_2.fwv"),
        ] {
            std::fs::write(dir.join(n), "x\n").unwrap_or_else(|e| panic!("{e}"));
        }
        let _s = sink(&dir, "");
        let names: Vec<String> = listing(&dir).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                format!("other_{stamp}_1.fwv.tmp"),
                format!("t_{stamp}_1.fwv"),
                format!("t_{stamp}_2.fwv"),
                format!("t_x_{stamp}_1.fwv.tmp"),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
