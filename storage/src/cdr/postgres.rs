//! The PostgreSQL side of [`super::SqlCdrs`].

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use sessions::{Cdr, CdrFilter, CostUpdate};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::query::{Arg, Dialect, Query};
use super::{CdrRow, extra_json, usage_ns};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// One statement for a whole batch: each column bound as one array and
/// turned back into rows by `UNNEST`, so a batch costs one round trip and
/// one plan whatever its size.
const INSERT: &str = "INSERT INTO cdrs (cgrid, run_id, origin_host, source, origin_id, tor, \
     request_type, tenant, category, account, subject, destination, setup_time, answer_time, \
     usage, cost, cost_source, extra_fields, disconnect_cause, end_time) \
     SELECT c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, \
     c18::jsonb, c19, c20 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], \
     $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], \
     $12::text[], $13::int8[], $14::int8[], $15::int8[], $16::numeric[], $17::text[], \
     $18::text[], $19::text[], $20::int8[]) \
     AS t(c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15, c16, c17, c18, \
     c19, c20) \
     ON CONFLICT (cgrid, run_id) DO NOTHING RETURNING cgrid, run_id";

pub(super) async fn open(url: &str) -> Result<PgPool, sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

fn texts(cdrs: &[Cdr], f: impl Fn(&Cdr) -> &str) -> Vec<&str> {
    cdrs.iter().map(f).collect()
}

pub(super) async fn insert(
    pool: &PgPool,
    cdrs: &[Cdr],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let extra: Vec<String> = cdrs.iter().map(extra_json).collect();
    let rows = sqlx::query(INSERT)
        .bind(texts(cdrs, |c| &c.cgrid))
        .bind(texts(cdrs, |c| &c.run_id))
        .bind(texts(cdrs, |c| &c.origin_host))
        .bind(texts(cdrs, |c| &c.source))
        .bind(texts(cdrs, |c| &c.origin_id))
        .bind(texts(cdrs, |c| &c.tor))
        .bind(texts(cdrs, |c| &c.request_type))
        .bind(texts(cdrs, |c| &c.tenant))
        .bind(texts(cdrs, |c| &c.category))
        .bind(texts(cdrs, |c| &c.account))
        .bind(texts(cdrs, |c| &c.subject))
        .bind(texts(cdrs, |c| &c.destination))
        .bind(
            cdrs.iter()
                .map(|c| c.setup_time.as_nanos())
                .collect::<Vec<i64>>(),
        )
        .bind(
            cdrs.iter()
                .map(|c| c.answer_time.map(capture::Timestamp::as_nanos))
                .collect::<Vec<Option<i64>>>(),
        )
        .bind(cdrs.iter().map(usage_ns).collect::<Vec<i64>>())
        .bind(
            cdrs.iter()
                .map(|c| c.cost)
                .collect::<Vec<Option<Decimal>>>(),
        )
        .bind(texts(cdrs, |c| &c.cost_source))
        .bind(&extra)
        .bind(texts(cdrs, |c| &c.disconnect_cause))
        .bind(
            cdrs.iter()
                .map(|c| c.end_time.as_nanos())
                .collect::<Vec<i64>>(),
        )
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(super) async fn get(pool: &PgPool, f: &CdrFilter) -> Result<Vec<CdrRow>, sqlx::Error> {
    let q = Query::select(Dialect::Postgres, f);
    let mut s = sqlx::query_as::<_, CdrRow>(&q.sql);
    for a in &q.args {
        s = match a {
            Arg::Text(t) => s.bind(t.as_str()),
            Arg::Int(i) => s.bind(*i),
            Arg::Dec(d) => s.bind(*d),
            Arg::Texts(v) => s.bind(v.as_slice()),
        };
    }
    s.fetch_all(pool).await
}

pub(super) async fn count(pool: &PgPool, f: &CdrFilter) -> Result<i64, sqlx::Error> {
    let q = Query::count(Dialect::Postgres, f);
    let mut s = sqlx::query_scalar::<_, i64>(&q.sql);
    for a in &q.args {
        s = match a {
            Arg::Text(t) => s.bind(t.as_str()),
            Arg::Int(i) => s.bind(*i),
            Arg::Dec(d) => s.bind(*d),
            Arg::Texts(v) => s.bind(v.as_slice()),
        };
    }
    s.fetch_one(pool).await
}

pub(super) async fn update_cost(
    pool: &PgPool,
    cgrid: &str,
    run_id: &str,
    u: &CostUpdate,
    extra: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE cdrs SET cost = $1, cost_source = $2, extra_fields = extra_fields || $3::jsonb \
         WHERE cgrid = $4 AND run_id = $5",
    )
    .bind(u.cost)
    .bind(&u.cost_source)
    .bind(extra)
    .bind(cgrid)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// One CDR in place of the stored one with its key (or a new row).
const REPLACE: &str = "INSERT INTO cdrs (cgrid, run_id, origin_host, source, origin_id, tor, \
     request_type, tenant, category, account, subject, destination, setup_time, answer_time, \
     usage, cost, cost_source, extra_fields, disconnect_cause, end_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18::jsonb, $19, $20) \
     ON CONFLICT (cgrid, run_id) DO UPDATE SET origin_host = excluded.origin_host, \
     source = excluded.source, origin_id = excluded.origin_id, tor = excluded.tor, \
     request_type = excluded.request_type, tenant = excluded.tenant, \
     category = excluded.category, account = excluded.account, subject = excluded.subject, \
     destination = excluded.destination, setup_time = excluded.setup_time, \
     answer_time = excluded.answer_time, usage = excluded.usage, cost = excluded.cost, \
     cost_source = excluded.cost_source, extra_fields = excluded.extra_fields, \
     disconnect_cause = excluded.disconnect_cause, end_time = excluded.end_time";

pub(super) async fn replace(pool: &PgPool, c: &Cdr) -> Result<(), sqlx::Error> {
    sqlx::query(REPLACE)
        .bind(&c.cgrid)
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
        .bind(c.cost)
        .bind(&c.cost_source)
        .bind(extra_json(c))
        .bind(&c.disconnect_cause)
        .bind(c.end_time.as_nanos())
        .execute(pool)
        .await?;
    Ok(())
}
