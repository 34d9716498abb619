//! Export marks: which stored CDRs each exporter has dealt with (table
//! `cdr_exports`), so each is exported at most once, across restarts.

use sessions::Cdr;

use super::query::{Dialect, select_columns};
use super::{Backend, CdrRow, SqlCdrs};
use crate::Error;

/// What became of a CDR an exporter took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportOutcome {
    /// Written or delivered.
    Exported,
    /// Not delivered: saved in the failed-posts folder, replayed later.
    Parked,
    /// Left out by the exporter's filters.
    Filtered,
    /// Refused by the exporter's template.
    Failed,
}

impl ExportOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ExportOutcome::Exported => "exported",
            ExportOutcome::Parked => "parked",
            ExportOutcome::Filtered => "filtered",
            ExportOutcome::Failed => "failed",
        }
    }
}

fn unexported_sql(d: Dialect) -> String {
    let (p1, p2) = match d {
        Dialect::Sqlite => ("?1", "?2"),
        Dialect::Postgres => ("$1", "$2"),
    };
    format!(
        "SELECT {} FROM cdrs c WHERE NOT EXISTS (SELECT 1 FROM cdr_exports e \
         WHERE e.exporter = {p1} AND e.cgrid = c.cgrid AND e.run_id = c.run_id) \
         ORDER BY c.id LIMIT {p2}",
        select_columns(d)
    )
}

fn sql_err(what: &str) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |source| Error::Sql {
        what: what.to_owned(),
        source,
    }
}

impl SqlCdrs {
    /// Up to `limit` stored CDRs `exporter` has not marked yet, oldest
    /// stored first.
    ///
    /// # Errors
    /// [`Error::Sql`]: the database failed, or a stored CDR does not read
    /// back.
    pub async fn unexported(&self, exporter: &str, limit: u32) -> Result<Vec<Cdr>, Error> {
        let err = sql_err("reading CDRs to export");
        let rows = match &self.backend {
            Backend::Sqlite(p) => {
                sqlx::query_as::<_, CdrRow>(&unexported_sql(Dialect::Sqlite))
                    .bind(exporter)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await
            }
            Backend::Postgres(p) => {
                sqlx::query_as::<_, CdrRow>(&unexported_sql(Dialect::Postgres))
                    .bind(exporter)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await
            }
        }
        .map_err(&err)?;
        rows.into_iter()
            .map(|r| {
                r.into_cdr().map_err(|e| Error::Sql {
                    what: "reading CDRs to export".to_owned(),
                    source: sqlx::Error::Decode(e.to_string().into()),
                })
            })
            .collect()
    }

    /// Marks `(CGRID, RunID)`s as dealt with by `exporter` (one
    /// transaction; a key already marked keeps its first outcome).
    ///
    /// # Errors
    /// [`Error::Sql`]: the database failed.
    pub async fn mark_exported(
        &self,
        exporter: &str,
        marks: &[(String, String, ExportOutcome)],
    ) -> Result<(), Error> {
        if marks.is_empty() {
            return Ok(());
        }
        let err = sql_err("marking exported CDRs");
        match &self.backend {
            Backend::Sqlite(p) => {
                let mut tx = p.begin().await.map_err(&err)?;
                for (cgrid, run_id, outcome) in marks {
                    sqlx::query(
                        "INSERT INTO cdr_exports (exporter, cgrid, run_id, outcome) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    )
                    .bind(exporter)
                    .bind(cgrid)
                    .bind(run_id)
                    .bind(outcome.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                }
                tx.commit().await.map_err(&err)?;
            }
            Backend::Postgres(p) => {
                let cgrids: Vec<&str> = marks.iter().map(|m| m.0.as_str()).collect();
                let run_ids: Vec<&str> = marks.iter().map(|m| m.1.as_str()).collect();
                let outcomes: Vec<&str> = marks.iter().map(|m| m.2.as_str()).collect();
                sqlx::query(
                    "INSERT INTO cdr_exports (exporter, cgrid, run_id, outcome) \
                     SELECT $1, c, r, o FROM UNNEST($2::text[], $3::text[], $4::text[]) \
                     AS t(c, r, o) ON CONFLICT DO NOTHING",
                )
                .bind(exporter)
                .bind(cgrids)
                .bind(run_ids)
                .bind(outcomes)
                .execute(p)
                .await
                .map_err(&err)?;
            }
        }
        Ok(())
    }

    /// How many CDRs `exporter` marked with `outcome`.
    ///
    /// # Errors
    /// [`Error::Sql`]: the database failed.
    pub async fn export_count(&self, exporter: &str, outcome: ExportOutcome) -> Result<u64, Error> {
        let err = sql_err("counting exported CDRs");
        let n: i64 = match &self.backend {
            Backend::Sqlite(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM cdr_exports WHERE exporter = ?1 AND outcome = ?2",
                )
                .bind(exporter)
                .bind(outcome.as_str())
                .fetch_one(p)
                .await
            }
            Backend::Postgres(p) => {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM cdr_exports WHERE exporter = $1 AND outcome = $2",
                )
                .bind(exporter)
                .bind(outcome.as_str())
                .fetch_one(p)
                .await
            }
        }
        .map_err(&err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
