//! The SQLite side of [`super::SqlCdrs`].

use std::str::FromStr;
use std::time::Duration;

use sessions::{Cdr, CdrFilter, CostUpdate};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// A query on SQLite with its arguments.
type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

use super::costkey::cost_key;
use super::query::{Arg, Dialect, Query};
use super::{CdrRow, extra_json, usage_ns};

/// Columns written per CDR.
const COLUMNS: &str = "cgrid, run_id, origin_host, source, origin_id, tor, request_type, tenant, \
     category, account, subject, destination, setup_time, answer_time, usage, cost, cost_key, \
     cost_source, extra_fields, disconnect_cause, end_time";
const NCOLS: usize = 21;
/// Most rows per INSERT statement (21 anonymous `?` placeholders each,
/// 10,500 in all: under SQLite's limit of 32,766). Placeholders are `?`,
/// not `$N`: sqlx looks up each numbered placeholder's name, which SQLite
/// finds by a linear scan, so binding a statement of n `$N` placeholders
/// costs O(n^2) (the reason the statements once held 20 rows); an
/// anonymous `?` has no name and binds in order.
const ROWS_PER_STATEMENT: usize = 500;

/// The row counts of the statements storing `n` CDRs: as many full
/// statements as fit, then the rest as powers of two (256, 128, ..., 1),
/// so whatever the batch size a connection prepares at most ten distinct
/// statements and sqlx's statement cache keeps them all.
fn chunk_sizes(mut n: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        if n == 0 {
            return None;
        }
        let k = if n >= ROWS_PER_STATEMENT {
            ROWS_PER_STATEMENT
        } else {
            1 << n.ilog2()
        };
        n -= k;
        Some(k)
    })
}

/// `INSERT ... VALUES (?,...),... ON CONFLICT DO NOTHING RETURNING` for
/// `rows` rows.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(300 + rows * (NCOLS * 2 + 3));
    sql.push_str("INSERT INTO cdrs (");
    sql.push_str(COLUMNS);
    sql.push_str(") VALUES ");
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for j in 0..NCOLS {
            if j > 0 {
                sql.push(',');
            }
            sql.push('?');
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (cgrid, run_id) DO NOTHING RETURNING cgrid, run_id");
    sql
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(super) async fn open(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let opts = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // Every commit is fsynced (WAL and FULL): a batch acknowledged is
        // on disk.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub(super) async fn insert(
    pool: &SqlitePool,
    cdrs: &[Cdr],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let mut inserted = Vec::with_capacity(cdrs.len());
    let mut rest = cdrs;
    for rows in chunk_sizes(cdrs.len()) {
        let (chunk, tail) = rest.split_at(rows.min(rest.len()));
        rest = tail;
        let sql = insert_sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = bind_cdr(q, c);
        }
        for row in q.fetch_all(&mut *tx).await? {
            inserted.push((row.try_get(0)?, row.try_get(1)?));
        }
    }
    tx.commit().await?;
    Ok(inserted)
}

fn bind_all<'q>(
    mut q: sqlx::query::QueryAs<'q, sqlx::Sqlite, CdrRow, sqlx::sqlite::SqliteArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::QueryAs<'q, sqlx::Sqlite, CdrRow, sqlx::sqlite::SqliteArguments<'q>> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(i) => q.bind(*i),
            Arg::Dec(d) => q.bind(d.to_string()),
            Arg::Texts(v) => q.bind(v.join(",")),
        };
    }
    q
}

pub(super) async fn get(pool: &SqlitePool, f: &CdrFilter) -> Result<Vec<CdrRow>, sqlx::Error> {
    let q = Query::select(Dialect::Sqlite, f);
    bind_all(sqlx::query_as::<_, CdrRow>(&q.sql), &q.args)
        .fetch_all(pool)
        .await
}

pub(super) async fn count(pool: &SqlitePool, f: &CdrFilter) -> Result<i64, sqlx::Error> {
    let q = Query::count(Dialect::Sqlite, f);
    let mut s = sqlx::query_scalar::<_, i64>(&q.sql);
    for a in &q.args {
        s = match a {
            Arg::Text(t) => s.bind(t.as_str()),
            Arg::Int(i) => s.bind(*i),
            Arg::Dec(d) => s.bind(d.to_string()),
            Arg::Texts(v) => s.bind(v.join(",")),
        };
    }
    s.fetch_one(pool).await
}

pub(super) async fn update_cost(
    pool: &SqlitePool,
    cgrid: &str,
    run_id: &str,
    u: &CostUpdate,
    extra: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE cdrs SET cost = $1, cost_key = $2, cost_source = $3, \
         extra_fields = json_patch(extra_fields, $4) WHERE cgrid = $5 AND run_id = $6",
    )
    .bind(u.cost.map(|d| d.to_string()))
    .bind(u.cost.map(cost_key))
    .bind(&u.cost_source)
    .bind(extra)
    .bind(cgrid)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub(super) async fn replace(pool: &SqlitePool, c: &Cdr) -> Result<(), sqlx::Error> {
    let placeholders: Vec<String> = (1..=NCOLS).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = COLUMNS
        .split(", ")
        .filter(|c| !matches!(*c, "cgrid" | "run_id"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO cdrs ({COLUMNS}) VALUES ({}) ON CONFLICT (cgrid, run_id) DO UPDATE SET {}",
        placeholders.join(","),
        updates.join(", ")
    );
    bind_cdr(sqlx::query(&sql), c).execute(pool).await?;
    Ok(())
}

/// Binds one CDR's values in `COLUMNS` order.
fn bind_cdr<'q>(q: SqliteQuery<'q>, c: &'q Cdr) -> SqliteQuery<'q> {
    q.bind(&c.cgrid)
        .bind(&c.run_id)
        .bind(&c.origin_host)
        .bind(&c.source)
        .bind(&c.origin_id)
        .bind(&c.tor)
        .bind(&c.request_type)
        .bind(&c.tenant)
        .bind(&c.category)
        .bind(&c.account)
        .bind(&c.subject)
        .bind(&c.destination)
        .bind(c.setup_time.as_nanos())
        .bind(c.answer_time.map(capture::Timestamp::as_nanos))
        .bind(usage_ns(c))
        .bind(c.cost.map(|d| d.to_string()))
        .bind(c.cost.map(cost_key))
        .bind(&c.cost_source)
        .bind(extra_json(c))
        .bind(&c.disconnect_cause)
        .bind(c.end_time.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_cover_the_batch_with_few_distinct_sizes() {
        for n in [0, 1, 2, 3, 20, 499, 500, 501, 1000, 1234, 100_000] {
            let sizes: Vec<usize> = chunk_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
            assert!(
                sizes
                    .iter()
                    .all(|s| *s == ROWS_PER_STATEMENT || s.is_power_of_two())
            );
            assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        }
        assert_eq!(
            chunk_sizes(1234).collect::<Vec<_>>(),
            [500, 500, 128, 64, 32, 8, 2]
        );
        let sql = insert_sql(2);
        assert_eq!(sql.matches('?').count(), 2 * NCOLS);
        assert!(!sql.contains('$'));
    }
}
