//! Stored CDRs in SQLite or PostgreSQL through sqlx: [`SqlCdrs`], the
//! [`sessions::CdrStore`] of `accurate serve`.
//!
//! One table, `cdrs`, with CGRateS's CDR columns and `UNIQUE (cgrid,
//! run_id)`; the migrations are in the repository (`migrations/sqlite`,
//! `migrations/postgres`) and run when a store is opened. Inserts are
//! batched: multi-row `INSERT ... ON CONFLICT DO NOTHING RETURNING`s of up
//! to 500 rows with anonymous `?` placeholders (SQLite) or one `INSERT ...
//! SELECT FROM UNNEST(arrays)` (PostgreSQL) per batch, in one transaction. SQLite runs in WAL mode with
//! `synchronous = FULL`: a committed batch survives `kill -9` and a power
//! cut.
//!
//! A second table, `cdr_exports`, marks which CDRs each exporter has dealt
//! with ([`SqlCdrs::unexported`], [`SqlCdrs::mark_exported`]).

mod costkey;
mod export;
mod postgres;
mod query;
mod sqlite;

use std::collections::BTreeMap;
use std::time::Duration;

use capture::Timestamp;
use rust_decimal::Decimal;
use sessions::{BoxFuture, Cdr, CdrFilter, CdrStore, CostUpdate};
use sqlx::{PgPool, SqlitePool};

use crate::Error;
pub use export::ExportOutcome;

/// CDRs in SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlCdrs {
    backend: Backend,
    describe: String,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl SqlCdrs {
    /// Opens (creating what is missing) the store at `url` and runs the
    /// migrations: `sqlite://PATH?mode=rwc` (or `sqlite:PATH`) or
    /// `postgres://USER@HOST:PORT/DB` (`postgresql://` too; a schema can
    /// be chosen with `?options=-c%20search_path%3DNAME`).
    ///
    /// # Errors
    /// [`Error::Sql`] when the URL is not one of those, the database cannot
    /// be reached or a migration fails.
    pub async fn open(url: &str) -> Result<SqlCdrs, Error> {
        let describe = redact(url);
        let sql_err = |source: sqlx::Error| Error::Sql {
            what: format!("opening {describe}"),
            source,
        };
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite(sqlite::open(url).await.map_err(sql_err)?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::open(url).await.map_err(sql_err)?)
        } else {
            return Err(Error::Sql {
                what: format!("opening {describe}"),
                source: sqlx::Error::Configuration(
                    "not a CDR database URL: expected sqlite://PATH or postgres://...".into(),
                ),
            });
        };
        Ok(SqlCdrs { backend, describe })
    }

    /// The URL without its password, for log lines.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Closes the connections (waits for those in use).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => p.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }
}

/// `user:password@` becomes `user@`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((a, h)) if !a.contains('/') => (a, h),
        _ => return url.to_owned(),
    };
    let user = auth.split_once(':').map_or(auth, |(u, _)| u);
    format!("{scheme}://{user}@{host}")
}

/// A refusal by the database itself is [`sessions::Error::CdrRejected`]
/// (retrying cannot help); anything else may pass later.
fn store_err(e: sqlx::Error) -> sessions::Error {
    match e {
        sqlx::Error::Database(_) | sqlx::Error::Encode(_) => {
            sessions::Error::CdrRejected(e.to_string())
        }
        _ => sessions::Error::CdrStore(e.to_string()),
    }
}

impl CdrStore for SqlCdrs {
    fn insert<'a>(&'a self, cdrs: &'a [Cdr]) -> BoxFuture<'a, Result<Vec<bool>, sessions::Error>> {
        Box::pin(async move {
            if cdrs.is_empty() {
                return Ok(Vec::new());
            }
            let inserted = match &self.backend {
                Backend::Sqlite(p) => sqlite::insert(p, cdrs).await,
                Backend::Postgres(p) => postgres::insert(p, cdrs).await,
            }
            .map_err(store_err)?;
            Ok(mark_new(cdrs, inserted))
        })
    }

    fn get<'a>(
        &'a self,
        filter: &'a CdrFilter,
    ) -> BoxFuture<'a, Result<Vec<Cdr>, sessions::Error>> {
        Box::pin(async move {
            let rows = match &self.backend {
                Backend::Sqlite(p) => sqlite::get(p, filter).await,
                Backend::Postgres(p) => postgres::get(p, filter).await,
            }
            .map_err(store_err)?;
            rows.into_iter().map(CdrRow::into_cdr).collect()
        })
    }

    fn count<'a>(&'a self, filter: &'a CdrFilter) -> BoxFuture<'a, Result<u64, sessions::Error>> {
        Box::pin(async move {
            let n = match &self.backend {
                Backend::Sqlite(p) => sqlite::count(p, filter).await,
                Backend::Postgres(p) => postgres::count(p, filter).await,
            }
            .map_err(store_err)?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn update_cost<'a>(
        &'a self,
        cgrid: &'a str,
        run_id: &'a str,
        update: &'a CostUpdate,
    ) -> BoxFuture<'a, Result<bool, sessions::Error>> {
        Box::pin(async move {
            let extra = serde_json::to_string(&update.extra_fields)
                .map_err(|e| sessions::Error::CdrStore(e.to_string()))?;
            match &self.backend {
                Backend::Sqlite(p) => sqlite::update_cost(p, cgrid, run_id, update, &extra).await,
                Backend::Postgres(p) => {
                    postgres::update_cost(p, cgrid, run_id, update, &extra).await
                }
            }
            .map_err(store_err)
        })
    }

    fn replace<'a>(&'a self, cdr: &'a Cdr) -> BoxFuture<'a, Result<(), sessions::Error>> {
        Box::pin(async move {
            match &self.backend {
                Backend::Sqlite(p) => sqlite::replace(p, cdr).await,
                Backend::Postgres(p) => postgres::replace(p, cdr).await,
            }
            .map_err(store_err)
        })
    }
}

/// Which of `cdrs` the database reports inserted: each returned (CGRID,
/// RunID) marks the first input with that key not yet marked (a key twice
/// in one batch is stored once, for its first occurrence).
fn mark_new(cdrs: &[Cdr], inserted: Vec<(String, String)>) -> Vec<bool> {
    let mut out = vec![false; cdrs.len()];
    let mut by_key: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (i, c) in cdrs.iter().enumerate().rev() {
        by_key
            .entry((c.cgrid.as_str(), c.run_id.as_str()))
            .or_default()
            .push(i);
    }
    for (cgrid, run_id) in &inserted {
        if let Some(i) = by_key
            .get_mut(&(cgrid.as_str(), run_id.as_str()))
            .and_then(Vec::pop)
        {
            out[i] = true;
        }
    }
    out
}

/// A CDR's columns as both backends return them.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct CdrRow {
    cgrid: String,
    run_id: String,
    origin_host: String,
    source: String,
    origin_id: String,
    tor: String,
    request_type: String,
    tenant: String,
    category: String,
    account: String,
    subject: String,
    destination: String,
    setup_time: i64,
    answer_time: Option<i64>,
    usage: i64,
    cost: Option<String>,
    cost_source: String,
    extra_fields: String,
    disconnect_cause: String,
    end_time: i64,
}

impl CdrRow {
    fn into_cdr(self) -> Result<Cdr, sessions::Error> {
        let bad = |what: &str, e: String| {
            sessions::Error::CdrStore(format!(
                "stored CDR {} {}: {what}: {e}",
                self.cgrid, self.run_id
            ))
        };
        let cost = match &self.cost {
            None => None,
            Some(t) => Some(
                t.parse::<Decimal>()
                    .map_err(|e| bad("cost", e.to_string()))?,
            ),
        };
        let extra_fields: BTreeMap<String, String> = serde_json::from_str(&self.extra_fields)
            .map_err(|e| bad("extra_fields", e.to_string()))?;
        Ok(Cdr {
            cgrid: self.cgrid,
            run_id: self.run_id,
            origin_id: self.origin_id,
            origin_host: self.origin_host,
            source: self.source,
            tor: self.tor,
            request_type: self.request_type,
            tenant: self.tenant,
            category: self.category,
            account: self.account,
            subject: self.subject,
            destination: self.destination,
            setup_time: Timestamp::from_nanos(self.setup_time),
            answer_time: self.answer_time.map(Timestamp::from_nanos),
            usage: Duration::from_nanos(u64::try_from(self.usage).unwrap_or(0)),
            cost_source: self.cost_source,
            cost,
            disconnect_cause: self.disconnect_cause,
            extra_fields,
            end_time: Timestamp::from_nanos(self.end_time),
        })
    }
}

/// `usage` as stored: nanoseconds (292 years fit).
fn usage_ns(c: &Cdr) -> i64 {
    i64::try_from(c.usage.as_nanos()).unwrap_or(i64::MAX)
}

/// `extra_fields` as stored: a JSON object.
fn extra_json(c: &Cdr) -> String {
    // A map of strings always serialises.
    serde_json::to_string(&c.extra_fields).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("sqlite://a/b.sqlite?mode=rwc"),
            "sqlite://a/b.sqlite?mode=rwc"
        );
    }
}
