//! CDR inserts per second into SQLite and PostgreSQL through
//! [`storage::SqlCdrs`], in batches of 1,000 (what `accurate serve`'s CDR
//! writer sends at load), one batch in flight and then two at once.
//!
//! `cargo bench -p storage --bench cdrs` (PostgreSQL on 127.0.0.1:5432,
//! database `test`, or `ACCURATE_TEST_POSTGRES`; a schema of its own,
//! dropped at the end). `CDR_BENCH_TOTAL` sets the CDRs per run (100,000).

#![allow(clippy::unwrap_used, clippy::cast_precision_loss)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capture::Timestamp;
use rust_decimal::Decimal;
use sessions::{Cdr, CdrStore};
use storage::SqlCdrs;

const BATCH: usize = 1_000;

fn cdr(run: usize, i: usize) -> Cdr {
    let n = i64::try_from(i).unwrap();
    let setup = Timestamp::from_nanos(1_795_438_458_516_552_000 + n * 1_000_000);
    let answer = setup.saturating_add(Duration::from_millis(1_500));
    let usage = Duration::from_secs(60 + (i % 600) as u64);
    let mut extra = BTreeMap::new();
    extra.insert("EndReason".to_owned(), "bye".to_owned());
    extra.insert("SIPCode".to_owned(), "200".to_owned());
    extra.insert("PDD".to_owned(), "1.204ms".to_owned());
    let origin_id = format!("{run}-{i}-13033@10.0.0.1");
    Cdr {
        cgrid: sessions::cgrid(&origin_id, "10.0.0.1"),
        run_id: "*default".into(),
        origin_id,
        origin_host: "10.0.0.1".into(),
        source: "accurate".into(),
        tor: "*voice".into(),
        request_type: "*postpaid".into(),
        tenant: "cgrates.org".into(),
        category: "call".into(),
        account: format!("10{:02}", i % 100),
        subject: format!("10{:02}", i % 100),
        destination: format!("4930555{:04}", i % 10_000),
        setup_time: setup,
        answer_time: Some(answer),
        usage,
        cost_source: "*sessions".into(),
        cost: Some(Decimal::new(i64::try_from(i % 1000).unwrap() * 7, 4)),
        disconnect_cause: "16".into(),
        extra_fields: extra,
        end_time: answer.saturating_add(usage),
    }
}

async fn run(name: &str, store: Arc<SqlCdrs>, total: usize, run: usize, parallel: usize) {
    let batches: Vec<Vec<Cdr>> = (0..total / BATCH)
        .map(|b| (b * BATCH..(b + 1) * BATCH).map(|i| cdr(run, i)).collect())
        .collect();
    let batches = Arc::new(batches);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..parallel {
        let (store, batches) = (Arc::clone(&store), Arc::clone(&batches));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for b in batches.iter().skip(w).step_by(parallel) {
                let r = store.insert(b).await.unwrap();
                n += r.iter().filter(|x| **x).count();
            }
            n
        }));
    }
    let mut stored = 0;
    for t in tasks {
        stored += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(stored, total);
    println!(
        "{name:<10} {parallel} in flight: {total} CDRs in {secs:.2} s = {:.0} inserts/s",
        total as f64 / secs
    );
}

fn main() {
    let total: usize = std::env::var("CDR_BENCH_TOTAL")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let tag = format!("{}_{nanos}", std::process::id());

        let dir = std::env::temp_dir().join(format!("accurate-cdr-bench-{tag}"));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("cdrs.sqlite").display());
        let store = Arc::new(SqlCdrs::open(&url).await.unwrap());
        run("sqlite", Arc::clone(&store), total, 0, 1).await;
        run("sqlite", Arc::clone(&store), total, 1, 2).await;
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);

        let pg = std::env::var("ACCURATE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("cdr_bench_{tag}");
        let admin = sqlx::PgPool::connect(&pg).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .unwrap();
        let sep = if pg.contains('?') { '&' } else { '?' };
        let url = format!("{pg}{sep}options=-c%20search_path%3D{schema}");
        let store = Arc::new(SqlCdrs::open(&url).await.unwrap());
        run("postgres", Arc::clone(&store), total, 0, 1).await;
        run("postgres", Arc::clone(&store), total, 1, 2).await;
        store.close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
    });
}
