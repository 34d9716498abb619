//! The writer task against real databases: SQLite in a temporary
//! directory, PostgreSQL (127.0.0.1:5432 or `ACCURATE_TEST_POSTGRES`) in a
//! schema of its own.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use capture::Timestamp;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

use super::writer::WriterClosed;
use super::*;

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}_{}_{nanos}", std::process::id())
}

/// A temporary SQLite database, removed on drop.
struct TempDb {
    dir: PathBuf,
    store: Arc<storage::SqlCdrs>,
}

impl TempDb {
    async fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(unique(&format!("accurate-writer-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("cdrs.sqlite").display());
        TempDb {
            store: Arc::new(storage::SqlCdrs::open(&url).await.unwrap()),
            dir,
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cdr(i: usize) -> Cdr {
    let origin_id = format!("call-{i}");
    let setup = Timestamp::from_secs_nanos(1_795_438_458 + i64::try_from(i).unwrap(), 0);
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
        account: "1001".into(),
        subject: "1001".into(),
        destination: "1002".into(),
        setup_time: setup,
        answer_time: Some(setup),
        usage: Duration::from_secs(60),
        cost_source: String::new(),
        cost: Some(rust_decimal::Decimal::new(6, 1)),
        disconnect_cause: "16".into(),
        extra_fields: BTreeMap::new(),
        end_time: setup.saturating_add(Duration::from_secs(60)),
    }
}

fn all() -> CdrFilter {
    CdrFilter::default()
}

#[tokio::test]
async fn batches_and_waits_for_the_commit() {
    let db = TempDb::new("batches").await;
    let (w, task) = CdrWriter::new(db.store.clone(), 10, Duration::from_millis(20));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = tokio::spawn(task.run(stop_rx));
    for i in 0..25 {
        w.submit(cdr(i)).await.unwrap();
    }
    // After the commit of the batch holding it: a duplicate of call 0.
    assert_eq!(w.submit_wait(cdr(0)).await.ok(), Some(false));
    assert_eq!(w.submit_wait(cdr(25)).await.ok(), Some(true));
    assert_eq!(db.store.count(&all()).await.unwrap(), 26);
    let s = w.stats();
    assert_eq!(s.stored.load(Ordering::Relaxed), 26);
    assert_eq!(s.duplicates.load(Ordering::Relaxed), 1);
    assert_eq!(s.pending(), 0);
    // 27 CDRs in batches of at most 10.
    assert!(s.batches.load(Ordering::Relaxed) >= 3);
    stop_tx.send(true).unwrap();
    t.await.unwrap();
}

#[tokio::test]
async fn shutdown_stores_everything_queued() {
    let db = TempDb::new("shutdown").await;
    // A batch would wait a minute for more CDRs: only the stop flushes.
    let (w, task) = CdrWriter::new(db.store.clone(), 1000, Duration::from_secs(60));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = tokio::spawn(task.run(stop_rx));
    for i in 0..10 {
        w.submit(cdr(i)).await.unwrap();
    }
    let waiter = {
        let w = w.clone();
        tokio::spawn(async move { w.submit_wait(cdr(10)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(db.store.count(&all()).await.unwrap(), 0);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiter.await.unwrap().ok(), Some(true));
    assert_eq!(db.store.count(&all()).await.unwrap(), 11);
    assert_eq!(w.submit(cdr(99)).await, Err(WriterClosed));
    assert!(w.submit_wait(cdr(99)).await.is_err());
}

#[tokio::test]
async fn a_full_queue_makes_submitters_wait() {
    let db = TempDb::new("full").await;
    // Queue of 4.
    let (w, task) = CdrWriter::new(db.store.clone(), 1, Duration::from_millis(1));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = tokio::spawn(task.run(stop_rx));
    for i in 0..40 {
        w.submit(cdr(i)).await.unwrap();
    }
    stop_tx.send(true).unwrap();
    t.await.unwrap();
    assert_eq!(db.store.count(&all()).await.unwrap(), 40);
    assert!(w.stats().queue_full.load(Ordering::Relaxed) > 0);
    assert_eq!(w.stats().submitted.load(Ordering::Relaxed), 40);
}

#[tokio::test]
async fn a_refused_cdr_does_not_take_its_batch_with_it() {
    // PostgreSQL refuses a NUL in text; SQLite would store it.
    let pg = std::env::var("ACCURATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = unique("writer_refused");
    let admin = sqlx::PgPool::connect(&pg).await.unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    let url = format!("{pg}?options=-c%20search_path%3D{schema}");
    let store = Arc::new(storage::SqlCdrs::open(&url).await.unwrap());
    let (w, task) = CdrWriter::new(store.clone(), 100, Duration::from_millis(50));
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = tokio::spawn(task.run(stop_rx));
    let mut bad = cdr(1);
    bad.origin_id = "nul\0byte".into();
    let mut waits = Vec::new();
    for c in [cdr(0), bad, cdr(2)] {
        let w = w.clone();
        waits.push(tokio::spawn(async move { w.submit_wait(c).await }));
    }
    let mut results = Vec::new();
    for h in waits {
        results.push(h.await.unwrap());
    }
    stop_tx.send(true).unwrap();
    t.await.unwrap();
    let count = store.count(&all()).await;
    store.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    assert!(matches!(results[0], Ok(true)));
    assert!(
        matches!(results[1], Err(sessions::Error::CdrRejected(_))),
        "{:?}",
        results[1]
    );
    assert!(matches!(results[2], Ok(true)));
    assert_eq!(count.unwrap(), 2);
    assert_eq!(w.stats().failed.load(Ordering::Relaxed), 1);
}

#[test]
fn default_database_is_sqlite_in_the_data_dir() {
    let dir = std::env::temp_dir().join(unique("accurate-cdr-url"));
    let cfg = CdrsSection::default();
    let url = db_url(None, &cfg, &dir).unwrap();
    assert_eq!(
        url,
        format!("sqlite://{}/cdrs.sqlite?mode=rwc", dir.display())
    );
    assert!(dir.is_dir());
    std::fs::remove_dir_all(&dir).unwrap();
    let cfg = CdrsSection {
        db: Some("postgres://a@b/c".into()),
        ..CdrsSection::default()
    };
    assert_eq!(db_url(None, &cfg, &dir).unwrap(), "postgres://a@b/c");
    assert_eq!(
        db_url(Some("postgres://x@y/z"), &cfg, &dir).unwrap(),
        "postgres://x@y/z"
    );
    assert!(db_url(Some("mysql://x"), &cfg, &dir).is_err());
    assert!(!dir.exists());
}

#[test]
fn filter_errors_as_cgrates_reports_them() {
    use serde_json::json;
    let e = parse_filter(&json!({"SetupTimeStart": "yesterday"})).unwrap_err();
    assert!(
        e.message
            .starts_with("SERVER_ERROR: invalid CDR filter: SetupTimeStart"),
        "{}",
        e.message
    );
    let e = parse_filter(&json!({"CGRIDs": "x"})).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS, "{}", e.message);
    let e = parse_filter(&json!("x")).unwrap_err();
    assert_eq!(e.code, code::INVALID_PARAMS, "{}", e.message);
    assert_eq!(parse_filter(&Value::Null).unwrap(), CdrFilter::default());
    let f = parse_filter(&json!({"Tenant": "cgrates.org", "APIOpts": {}, "MinCost": 0.1})).unwrap();
    assert_eq!(f.min_cost, Some(rust_decimal::Decimal::new(1, 1)));
}

/// A database that never answers: each insert hangs (as a connection
/// attempt to a host gone away waits out the pool's timeout).
struct Hanging;

impl CdrStore for Hanging {
    fn insert<'a>(
        &'a self,
        _: &'a [Cdr],
    ) -> sessions::BoxFuture<'a, Result<Vec<bool>, sessions::Error>> {
        Box::pin(std::future::pending())
    }
    fn get<'a>(
        &'a self,
        _: &'a CdrFilter,
    ) -> sessions::BoxFuture<'a, Result<Vec<Cdr>, sessions::Error>> {
        Box::pin(std::future::pending())
    }
    fn count<'a>(
        &'a self,
        _: &'a CdrFilter,
    ) -> sessions::BoxFuture<'a, Result<u64, sessions::Error>> {
        Box::pin(std::future::pending())
    }
    fn update_cost<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a sessions::CostUpdate,
    ) -> sessions::BoxFuture<'a, Result<bool, sessions::Error>> {
        Box::pin(std::future::pending())
    }
    fn replace<'a>(&'a self, _: &'a Cdr) -> sessions::BoxFuture<'a, Result<(), sessions::Error>> {
        Box::pin(std::future::pending())
    }
}

/// Once the shutdown's grace is over, the insert in progress is cut, the
/// CDRs queued are answered "not stored" (abandoned, not failed), a
/// submitter waiting for room is let go, and the task ends.
#[tokio::test]
async fn giving_up_ends_a_writer_stuck_on_a_database_that_never_answers() {
    let (w, task) = CdrWriter::new(Arc::new(Hanging), 1, Duration::from_millis(1));
    let (give_up_tx, give_up_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let t = tokio::spawn(task.give_up_on(give_up_rx).run(stop_rx));
    let waiters: Vec<_> = (0..6)
        .map(|i| {
            let w = w.clone();
            tokio::spawn(async move { w.submit_wait(cdr(i)).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One in the insert, four queued, one waiting for room: all wait.
    assert!(waiters.iter().all(|w| !w.is_finished()));
    stop_tx.send(true).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!t.is_finished());
    give_up_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), t)
        .await
        .unwrap()
        .unwrap();
    for wt in waiters {
        assert!(wt.await.unwrap().is_err());
    }
    let s = w.stats();
    assert_eq!(s.abandoned.load(Ordering::Relaxed), 5);
    assert_eq!(s.failed.load(Ordering::Relaxed), 0);
    assert_eq!(s.stored.load(Ordering::Relaxed), 0);
    assert!(w.submit(cdr(9)).await.is_err());
}
