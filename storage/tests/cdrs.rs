//! One test suite for both CDR databases: the same tests run on SQLite (a
//! fresh file in a temporary directory each, removed at the end) and on
//! the real PostgreSQL on 127.0.0.1:5432 (or `ACCURATE_TEST_POSTGRES`),
//! each test in a schema of its own, dropped at the end, so they run in
//! parallel and leave nothing behind. Query results are checked against
//! [`CdrFilter::matches`] over the CDRs inserted and against expectations
//! worked out by hand.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use capture::Timestamp;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sessions::{Cdr, CdrFilter, CdrStore, CostUpdate};
use storage::SqlCdrs;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}_{}_{nanos}", std::process::id())
}

fn pg_url() -> String {
    std::env::var("ACCURATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store and what to remove after the test (also on a panic).
struct Db {
    store: SqlCdrs,
    cleanup: Cleanup,
}

enum Cleanup {
    Dir(PathBuf),
    Schema(String),
}

impl Db {
    async fn sqlite(name: &str) -> Db {
        let dir = std::env::temp_dir().join(unique(&format!("accurate-cdrs-{name}")));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("cdrs.sqlite").display());
        Db {
            store: SqlCdrs::open(&url).await.unwrap(),
            cleanup: Cleanup::Dir(dir),
        }
    }

    async fn postgres(name: &str) -> Db {
        let schema = unique(&format!("cdrs_{name}")).to_lowercase();
        let admin = sqlx::PgPool::connect(&pg_url()).await.unwrap_or_else(|e| {
            panic!("the PostgreSQL tests need a running server (set ACCURATE_TEST_POSTGRES to another URL): {e}")
        });
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        Db {
            store: SqlCdrs::open(&Self::pg_schema_url(&schema)).await.unwrap(),
            cleanup: Cleanup::Schema(schema),
        }
    }

    fn pg_schema_url(schema: &str) -> String {
        let url = pg_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!("{url}{sep}options=-c%20search_path%3D{schema}")
    }

    /// The same database opened again (a restart).
    async fn reopen(&mut self) {
        self.store.close().await;
        let url = match &self.cleanup {
            Cleanup::Dir(dir) => format!("sqlite://{}?mode=rwc", dir.join("cdrs.sqlite").display()),
            Cleanup::Schema(s) => Self::pg_schema_url(s),
        };
        self.store = SqlCdrs::open(&url).await.unwrap();
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema(schema) => {
                // Drop runs inside the test's runtime: a thread of its own
                // with its own runtime does the async work.
                let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(p) = sqlx::PgPool::connect(&pg_url()).await {
                            let _ = sqlx::query(&sql).execute(&p).await;
                            p.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

const T0: i64 = 1_795_438_458_516_552_123;

/// CDR number `i`: fields vary with `i` so that every filter selects a
/// different subset.
fn cdr(i: usize) -> Cdr {
    let n = i64::try_from(i).unwrap();
    let setup = Timestamp::from_nanos(T0 + n * 10_000_000_000);
    let answered = i % 3 != 2;
    let answer = answered.then(|| setup.saturating_add(Duration::from_nanos(1_500_000_001)));
    let usage = if answered {
        Duration::from_nanos(u64::try_from(n).unwrap() * 7_000_000_123)
    } else {
        Duration::ZERO
    };
    let mut extra = BTreeMap::new();
    extra.insert(
        "EndReason".to_owned(),
        if answered { "bye" } else { "rejected" }.to_owned(),
    );
    extra.insert(
        "SIPCode".to_owned(),
        if answered { "200" } else { "486" }.to_owned(),
    );
    extra.insert("Quote\"d".to_owned(), "é \\ ü".to_owned());
    let account = ["1001", "1002", "1003"][i % 3];
    Cdr {
        cgrid: format!("cgrid-{i:03}"),
        run_id: if i % 4 == 3 { "*raw" } else { "*default" }.to_owned(),
        origin_id: format!("call-{i}@10.0.0.1"),
        origin_host: ["10.0.0.1", "10.0.0.2"][i % 2].to_owned(),
        source: if i % 5 == 0 { "api" } else { "accurate" }.to_owned(),
        tor: if i % 6 == 5 { "*sms" } else { "*voice" }.to_owned(),
        request_type: ["*postpaid", "*prepaid", "*rated"][i % 3].to_owned(),
        tenant: if i % 7 == 6 {
            "other.org"
        } else {
            "cgrates.org"
        }
        .to_owned(),
        category: if i % 2 == 0 { "call" } else { "premium" }.to_owned(),
        account: account.to_owned(),
        subject: format!("s{account}"),
        destination: ["4930555006", "4971112345", "1555", "49"][i % 4].to_owned(),
        setup_time: setup,
        answer_time: answer,
        usage,
        cost_source: if i % 2 == 0 {
            "*sessions".to_owned()
        } else {
            String::new()
        },
        cost: match i % 5 {
            0 => None,
            1 => Some(d("0.1")),
            2 => Some(Decimal::new(n, 2)),
            3 => Some(d("0.1000000000000000000000000001")),
            _ => Some(d("-1")),
        },
        disconnect_cause: if answered { "16" } else { "486" }.to_owned(),
        extra_fields: extra,
        end_time: answer.unwrap_or(setup).saturating_add(usage),
    }
}

fn filter(v: Value) -> CdrFilter {
    serde_json::from_value(v).unwrap()
}

async fn get(s: &SqlCdrs, f: &CdrFilter) -> Vec<Cdr> {
    s.get(f).await.unwrap()
}

async fn insert_dedups_and_round_trips(s: &SqlCdrs) {
    assert_eq!(s.insert(&[]).await.unwrap(), Vec::<bool>::new());
    let (a, b) = (cdr(1), cdr(2));
    let mut a_again = a.clone();
    a_again.cost = Some(d("99"));
    // A key twice in one batch: stored once, the first.
    assert_eq!(
        s.insert(&[a.clone(), b.clone(), a_again.clone()])
            .await
            .unwrap(),
        [true, true, false]
    );
    // Already stored: left as it is.
    let c = cdr(3);
    assert_eq!(
        s.insert(&[a_again, c.clone()]).await.unwrap(),
        [false, true]
    );
    // Same CGRID, another run: a row of its own.
    let mut a_raw = a.clone();
    a_raw.run_id = "*other".into();
    assert_eq!(s.insert(&[a_raw.clone()]).await.unwrap(), [true]);
    // Every field back exactly: nanosecond times, exact cost, extra fields.
    assert_eq!(get(s, &CdrFilter::default()).await, [a, b, c, a_raw]);
    assert_eq!(s.count(&CdrFilter::default()).await.unwrap(), 4);
}

async fn every_filter_selects_what_matches(s: &SqlCdrs) {
    let all: Vec<Cdr> = (0..40).map(cdr).collect();
    assert!(s.insert(&all).await.unwrap().iter().all(|x| *x));
    let t = |i: i64| json!(format!("@{}", T0 + i * 10_000_000_000));
    let rfc = |i: i64| {
        let ns = T0 + i * 10_000_000_000;
        let t = chrono::DateTime::from_timestamp(
            ns.div_euclid(1_000_000_000),
            u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap(),
        )
        .unwrap();
        json!(t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
    };
    let _ = t;
    let filters = [
        json!({"CGRIDs": ["cgrid-001", "cgrid-007", "nope"]}),
        json!({"NotCGRIDs": ["cgrid-001"]}),
        json!({"RunIDs": ["*raw"]}),
        json!({"NotRunIDs": ["*raw"]}),
        json!({"OriginIDs": ["call-5@10.0.0.1"]}),
        json!({"NotOriginIDs": ["call-5@10.0.0.1", "call-6@10.0.0.1"]}),
        json!({"OriginHosts": ["10.0.0.2"]}),
        json!({"NotOriginHosts": ["10.0.0.2"]}),
        json!({"Sources": ["api"]}),
        json!({"NotSources": ["api"]}),
        json!({"ToRs": ["*sms"]}),
        json!({"NotToRs": ["*sms"]}),
        json!({"RequestTypes": ["*prepaid", "*rated"]}),
        json!({"NotRequestTypes": ["*prepaid"]}),
        json!({"Tenants": ["other.org"]}),
        json!({"NotTenants": ["other.org"]}),
        json!({"Categories": ["premium"]}),
        json!({"NotCategories": ["premium"]}),
        json!({"Accounts": ["1001", "1003"]}),
        json!({"NotAccounts": ["1001"]}),
        json!({"Subjects": ["s1002"]}),
        json!({"NotSubjects": ["s1002"]}),
        json!({"DestinationPrefixes": ["49"]}),
        json!({"DestinationPrefixes": ["4930", "155"]}),
        json!({"NotDestinationPrefixes": ["497"]}),
        json!({"SetupTimeStart": rfc(10)}),
        json!({"SetupTimeEnd": rfc(10)}),
        json!({"SetupTimeStart": rfc(5), "SetupTimeEnd": rfc(9)}),
        json!({"AnswerTimeStart": rfc(20)}),
        json!({"AnswerTimeEnd": rfc(20)}),
        json!({"MinUsage": "70s"}),
        json!({"MaxUsage": 70_000_001_230u64}),
        json!({"MinUsage": "1m10.00000123s", "MaxUsage": "2m"}),
        json!({"MinCost": 0.1}),
        json!({"MaxCost": 0.1}),
        json!({"ExtraArgs": {"MinCost": "0.1000000000000000000000000001"}}),
        json!({"MinCost": -1, "MaxCost": 0}),
        json!({"Accounts": ["1002"], "RunIDs": ["*default"], "MinUsage": "1s", "DestinationPrefixes": ["49"]}),
    ];
    for v in filters {
        let f = filter(v.clone());
        let want: Vec<Cdr> = all.iter().filter(|c| f.matches(c)).cloned().collect();
        let got = get(s, &f).await;
        assert_eq!(
            got.iter().map(|c| &c.cgrid).collect::<Vec<_>>(),
            want.iter().map(|c| &c.cgrid).collect::<Vec<_>>(),
            "{v}"
        );
        assert_eq!(got, want, "{v}");
        assert_eq!(
            s.count(&f).await.unwrap(),
            u64::try_from(want.len()).unwrap(),
            "{v}"
        );
        assert!(
            !want.is_empty() || v == json!({"OriginIDs": []}),
            "{v} selects nothing: a weak test"
        );
        assert!(
            want.len() < all.len() || v.get("NotCGRIDs").is_some(),
            "{v} selects everything: a weak test"
        );
    }
    // Worked out by hand.
    let cg = |v: Value| {
        let f = filter(v);
        async move {
            get(s, &f)
                .await
                .into_iter()
                .map(|c| c.cgrid)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        cg(json!({"CGRIDs": ["cgrid-007", "cgrid-001"]})).await,
        ["cgrid-001", "cgrid-007"]
    );
    // Setup times are 10 s apart: [5, 9) is 5, 6, 7, 8.
    assert_eq!(
        cg(json!({"SetupTimeStart": rfc(5), "SetupTimeEnd": rfc(9)})).await,
        ["cgrid-005", "cgrid-006", "cgrid-007", "cgrid-008"]
    );
    // Usage is i * 7.000000123 s when answered (i % 3 != 2): >= 70.00000123 s
    // from i = 10; under 2 min up to i = 17.
    assert_eq!(
        cg(json!({"MinUsage": "1m10.00000123s", "MaxUsage": "2m"})).await,
        [
            "cgrid-010",
            "cgrid-012",
            "cgrid-013",
            "cgrid-015",
            "cgrid-016"
        ]
    );
}

async fn limit_and_offset_page_in_insert_order(s: &SqlCdrs) {
    let all: Vec<Cdr> = (0..25).map(cdr).collect();
    s.insert(&all).await.unwrap();
    let page = |l: Option<u64>, o: Option<u64>| CdrFilter {
        limit: l,
        offset: o,
        ..CdrFilter::default()
    };
    assert_eq!(get(s, &page(Some(10), None)).await, all[..10]);
    assert_eq!(get(s, &page(Some(10), Some(20))).await, all[20..]);
    assert_eq!(get(s, &page(None, Some(24))).await, all[24..]);
    assert_eq!(get(s, &page(Some(0), None)).await, []);
    assert_eq!(get(s, &page(None, Some(30))).await, []);
    // Count ignores paging.
    assert_eq!(s.count(&page(Some(3), Some(1))).await.unwrap(), 25);
    let f = CdrFilter {
        accounts: vec!["1002".into()],
        limit: Some(2),
        offset: Some(1),
        ..CdrFilter::default()
    };
    let got: Vec<_> = get(s, &f).await.into_iter().map(|c| c.cgrid).collect();
    assert_eq!(got, ["cgrid-004", "cgrid-007"]);
}

async fn costs_compare_exactly(s: &SqlCdrs) {
    let costs = [
        Some("0.1"),
        Some("0.1000000000000000000000000001"),
        Some("0.0999999999999999999999999999"),
        Some("0.2"),
        Some("-1"),
        Some("-0.05"),
        Some("0.00000000000000000001"),
        Some("12345678901234567.5"),
        Some("0"),
        None,
    ];
    let cdrs: Vec<Cdr> = costs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut x = cdr(i);
            x.cost = c.map(d);
            x
        })
        .collect();
    s.insert(&cdrs).await.unwrap();
    let sel = |v: Value| {
        let f = filter(v);
        async move {
            get(s, &f)
                .await
                .into_iter()
                .map(|c| c.cost.unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        sel(json!({"MinCost": 0.1})).await,
        [
            "0.1",
            "0.1000000000000000000000000001",
            "0.2",
            "12345678901234567.5"
        ]
    );
    assert_eq!(
        sel(json!({"MaxCost": "0.1"})).await,
        [
            "0.0999999999999999999999999999",
            "-1",
            "-0.05",
            "0.00000000000000000001",
            "0"
        ]
    );
    assert_eq!(
        sel(json!({"MinCost": "-0.05", "MaxCost": "0.00000000000000000001"})).await,
        ["-0.05", "0"]
    );
    assert_eq!(
        sel(json!({"ExtraArgs": {"MinCost": "0.10000000000000000000000000005"}})).await,
        [
            "0.1000000000000000000000000001",
            "0.2",
            "12345678901234567.5"
        ]
    );
    // Exact digits back, trailing zeros included.
    let mut e = cdr(50);
    e.cost = Some(d("2.5000"));
    s.insert(std::slice::from_ref(&e)).await.unwrap();
    let f = filter(json!({"CGRIDs": ["cgrid-050"]}));
    assert_eq!(get(s, &f).await[0].cost.unwrap().to_string(), "2.5000");
}

async fn update_cost_rerates_one_row(s: &SqlCdrs) {
    let (a, b) = (cdr(0), cdr(1));
    s.insert(&[a.clone(), b.clone()]).await.unwrap();
    let mut extra = BTreeMap::new();
    extra.insert("Rerated".to_owned(), "yes".to_owned());
    extra.insert("SIPCode".to_owned(), "201".to_owned());
    let u = CostUpdate {
        cost: Some(d("0.0300000000000000000000000001")),
        cost_source: "*cdrs".into(),
        extra_fields: extra,
    };
    assert!(s.update_cost(&a.cgrid, &a.run_id, &u).await.unwrap());
    assert!(!s.update_cost(&a.cgrid, "*nope", &u).await.unwrap());
    assert!(!s.update_cost("nope", &a.run_id, &u).await.unwrap());
    let got = get(s, &CdrFilter::default()).await;
    let mut want = a.clone();
    want.cost = u.cost;
    want.cost_source = "*cdrs".into();
    want.extra_fields.insert("Rerated".into(), "yes".into());
    want.extra_fields.insert("SIPCode".into(), "201".into());
    assert_eq!(got, [want, b]);
    // And the new cost is what filters see.
    let f = filter(json!({"MinCost": "0.03", "MaxCost": "0.0300000000000000000000000002"}));
    assert_eq!(s.count(&f).await.unwrap(), 1);
    // Back to not rated.
    let none = CostUpdate::default();
    assert!(s.update_cost(&a.cgrid, &a.run_id, &none).await.unwrap());
    assert_eq!(get(s, &CdrFilter::default()).await[0].cost, None);
    assert_eq!(s.count(&f).await.unwrap(), 0);
}

/// `replace` puts a whole CDR in place of the stored one with its key,
/// which keeps its place in the storage order; a key not stored is added.
async fn replace_swaps_every_field_in_place(s: &SqlCdrs) {
    let (a, b, c) = (cdr(0), cdr(1), cdr(4));
    s.insert(&[a.clone(), b.clone()]).await.unwrap();
    let mut a2 = cdr(5);
    a2.cgrid.clone_from(&a.cgrid);
    a2.run_id.clone_from(&a.run_id);
    a2.cost = Some(d("0.0300000000000000000000000001"));
    a2.cost_source = "*cdrs".into();
    a2.extra_fields.clear();
    assert_ne!(a2, a);
    s.replace(&a2).await.unwrap();
    s.replace(&c).await.unwrap();
    assert_eq!(get(s, &CdrFilter::default()).await, [a2.clone(), b, c]);
    // Filters see the new fields and cost, not the old ones.
    let f = filter(json!({"MinCost": "0.03", "MaxCost": "0.0300000000000000000000000002"}));
    assert_eq!(get(s, &f).await, [a2.clone()]);
    let f = filter(json!({"OriginIDs": [a.origin_id]}));
    assert_eq!(s.count(&f).await.unwrap(), 0);
    // Stored once: an insert of the old one leaves the new one.
    assert_eq!(s.insert(std::slice::from_ref(&a)).await.unwrap(), [false]);
    assert_eq!(s.count(&CdrFilter::default()).await.unwrap(), 3);
}

async fn big_batches_and_reopen(db: &mut Db) {
    let all: Vec<Cdr> = (0..2_500).map(cdr).collect();
    let r = db.store.insert(&all).await.unwrap();
    assert_eq!(r.len(), 2_500);
    assert!(r.iter().all(|x| *x));
    // Half old, half new, in one batch.
    let again: Vec<Cdr> = (2_000..3_000).map(cdr).collect();
    let r = db.store.insert(&again).await.unwrap();
    assert_eq!(r.iter().filter(|x| **x).count(), 500);
    assert!(r[..500].iter().all(|x| !*x) && r[500..].iter().all(|x| *x));
    db.reopen().await;
    assert_eq!(db.store.count(&CdrFilter::default()).await.unwrap(), 3_000);
    let f = CdrFilter {
        offset: Some(2_999),
        ..CdrFilter::default()
    };
    assert_eq!(get(&db.store, &f).await, [cdr(2_999)]);
}

async fn export_marks_survive_a_reopen(db: &mut Db) {
    use storage::ExportOutcome::{Exported, Filtered, Parked};
    let all: Vec<Cdr> = (0..5).map(cdr).collect();
    db.store.insert(&all).await.unwrap();
    let first = db.store.unexported("csv1", 3).await.unwrap();
    assert_eq!(first, all[..3], "oldest first, limited");
    let key = |c: &Cdr| (c.cgrid.clone(), c.run_id.clone());
    let marks = vec![
        (key(&all[0]).0, key(&all[0]).1, Exported),
        (key(&all[1]).0, key(&all[1]).1, Parked),
        (key(&all[2]).0, key(&all[2]).1, Filtered),
    ];
    db.store.mark_exported("csv1", &marks).await.unwrap();
    // Marked twice: kept once, with its first outcome.
    db.store.mark_exported("csv1", &marks[..1]).await.unwrap();
    db.reopen().await;
    assert_eq!(db.store.unexported("csv1", 10).await.unwrap(), all[3..]);
    assert_eq!(
        db.store.unexported("other", 10).await.unwrap(),
        all,
        "marks are per exporter"
    );
    assert_eq!(db.store.export_count("csv1", Exported).await.unwrap(), 1);
    assert_eq!(db.store.export_count("csv1", Parked).await.unwrap(), 1);
    assert_eq!(db.store.export_count("other", Exported).await.unwrap(), 0);
    // A CDR replaced (re-rated) keeps its mark.
    let mut again = all[0].clone();
    again.cost = Some(d("9"));
    db.store.replace(&again).await.unwrap();
    assert_eq!(db.store.unexported("csv1", 10).await.unwrap(), all[3..]);
}

macro_rules! suite {
    ($module:ident, $open:ident) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn insert_dedups_and_round_trips() {
                let db = Db::$open("insert").await;
                super::insert_dedups_and_round_trips(&db.store).await;
            }

            #[tokio::test]
            async fn every_filter_selects_what_matches() {
                let db = Db::$open("filters").await;
                super::every_filter_selects_what_matches(&db.store).await;
            }

            #[tokio::test]
            async fn limit_and_offset_page_in_insert_order() {
                let db = Db::$open("paging").await;
                super::limit_and_offset_page_in_insert_order(&db.store).await;
            }

            #[tokio::test]
            async fn costs_compare_exactly() {
                let db = Db::$open("costs").await;
                super::costs_compare_exactly(&db.store).await;
            }

            #[tokio::test]
            async fn update_cost_rerates_one_row() {
                let db = Db::$open("update").await;
                super::update_cost_rerates_one_row(&db.store).await;
            }

            #[tokio::test]
            async fn replace_swaps_every_field_in_place() {
                let db = Db::$open("replace").await;
                super::replace_swaps_every_field_in_place(&db.store).await;
            }

            #[tokio::test]
            async fn big_batches_and_reopen() {
                let mut db = Db::$open("big").await;
                super::big_batches_and_reopen(&mut db).await;
            }

            #[tokio::test]
            async fn export_marks_survive_a_reopen() {
                let mut db = Db::$open("exports").await;
                super::export_marks_survive_a_reopen(&mut db).await;
            }
        }
    };
}

suite!(sqlite, sqlite);
suite!(postgres, postgres);

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://x/y", "", "postgres://127.0.0.1:1/none"] {
        assert!(SqlCdrs::open(url).await.is_err(), "{url}");
    }
}

// ---- SQLite durability: kill -9 ----

const CHILD_ENV: &str = "ACCURATE_CDRS_CHILD";
const CHILD_BATCH: usize = 50;

/// Not a test of its own: with `ACCURATE_CDRS_CHILD` set to a SQLite URL,
/// the body of the child process [`sqlite_kill_9_loses_no_committed_cdr`]
/// starts: it stores batches of CDRs, printing each acknowledged one,
/// until it is killed.
#[test]
fn child_process() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use std::io::Write;
        let s = SqlCdrs::open(&url).await.unwrap();
        let mut out = std::io::stdout().lock();
        for b in 0.. {
            let batch: Vec<Cdr> = (b * CHILD_BATCH..(b + 1) * CHILD_BATCH).map(cdr).collect();
            let r = s.insert(&batch).await.unwrap();
            assert!(r.iter().all(|x| *x));
            writeln!(out, "ACK {}", (b + 1) * CHILD_BATCH).unwrap();
            out.flush().unwrap();
        }
    });
}

#[tokio::test]
async fn sqlite_kill_9_loses_no_committed_cdr() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(unique("accurate-cdrs-kill9"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("cdrs.sqlite").display());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &url)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = 0usize;
    while acked < 40 * CHILD_BATCH {
        let l = lines.next().expect("child ended early").unwrap();
        // libtest prints `test child_process ... ` before the first line.
        if let Some((_, n)) = l.split_once("ACK ") {
            acked = n.trim().parse().unwrap();
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let store = SqlCdrs::open(&url).await.unwrap();
    let n = usize::try_from(store.count(&CdrFilter::default()).await.unwrap()).unwrap();
    let got = get(&store, &CdrFilter::default()).await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    // Everything acknowledged is there (maybe a batch more, committed
    // before its line was printed), and only whole batches.
    assert!(n >= acked, "{n} stored, {acked} acknowledged");
    assert_eq!(n % CHILD_BATCH, 0, "a torn batch: {n}");
    assert!(got == (0..n).map(cdr).collect::<Vec<_>>());
}
