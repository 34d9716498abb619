//! One test suite for every account store backend: the same tests run on
//! [`EmbeddedAccounts`] (a fresh data directory each) and [`RedisAccounts`]
//! (the real Redis on 127.0.0.1:6379, or `ACCURATE_TEST_REDIS`, under a
//! fresh key prefix each, deleted at the end). Then the backend-specific
//! tests: `kill -9` during debits or session writes and a torn journal
//! (embedded), two processes debiting one account (Redis). The live
//! sessions' store ([`SessionStore`]) is tested the same way. Child processes are this test
//! binary run again with `ACCURATE_STORAGE_CHILD` set (see
//! [`child_process`]).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, TimeZone, Utc};
use rating::{
    Account, AccountStore, AccountStoreExt, Balance, BalanceType, CallDescriptor, Error,
    LoadOptions, RoundingMode, TariffPlan,
};
use rust_decimal::Decimal;
use sessions::SessionStore;
use storage::{EmbeddedAccounts, EmbeddedOptions, MetaStore, RedisAccounts};

const TENANT: &str = "cgrates.org";
const CHILD_ENV: &str = "ACCURATE_STORAGE_CHILD";

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn redis_url() -> String {
    std::env::var("ACCURATE_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

fn open_redis(prefix: &str) -> RedisAccounts {
    RedisAccounts::open(&redis_url(), prefix).unwrap_or_else(|e| {
        panic!("the Redis tests need a running redis-server (set ACCURATE_TEST_REDIS to another URL): {e}")
    })
}

/// The office tariff plan of `tests/data`: subject 1002 calling 1001 pays
/// RPL_LEGACY's R_STANDARD: 0.4 connect fee + 0.2 for the first minute.
fn plan() -> &'static TariffPlan {
    static PLAN: OnceLock<TariffPlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tariffplans/office");
        let opts = LoadOptions {
            loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        };
        TariffPlan::load_dir(&dir, &opts).unwrap().0
    })
}

/// What one [`debit`] costs.
const CALL_COST: &str = "0.6";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 13, 10, 5, 0).unwrap()
}

/// Debits a one-minute call of account 1002 to 1001.
fn debit(store: &dyn AccountStore) -> Result<(), Error> {
    let start = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap();
    let cd = CallDescriptor::new("1002", "1001", start, Duration::from_secs(60));
    store
        .debit_call(TENANT, "1002", &cd, plan(), RoundingMode::Exact, now())
        .map(|_| ())
}

fn caller(money: &str) -> Account {
    let mut a = Account::new(TENANT, "1002");
    a.add_balance(
        BalanceType::Monetary,
        Balance {
            id: "main".into(),
            value: d(money),
            weight: Decimal::from(10),
            ..Balance::default()
        },
    );
    a
}

fn money(store: &dyn AccountStore, id: &str) -> Decimal {
    store
        .get(TENANT, id)
        .unwrap()
        .unwrap()
        .balances_of(BalanceType::Monetary)
        .iter()
        .map(|b| b.value)
        .sum()
}

/// A store under test, which can be closed and opened again.
trait Fixture {
    type Store: AccountStore + MetaStore;
    fn store(&self) -> &Self::Store;
    /// The same store as a [`SessionStore`] (a separate view: its
    /// `remove` and `list` would be ambiguous with the accounts' ones).
    fn sessions(&self) -> &dyn SessionStore;
    /// Embedded: drop and open the directory again; Redis: a second
    /// store on the same prefix.
    fn reopen(&mut self);
}

struct Embedded {
    dir: PathBuf,
    store: Option<EmbeddedAccounts>,
}

impl Embedded {
    fn new(name: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique(name));
        let store = Some(EmbeddedAccounts::open(&dir).unwrap());
        Embedded { dir, store }
    }
}

impl Fixture for Embedded {
    type Store = EmbeddedAccounts;
    fn store(&self) -> &EmbeddedAccounts {
        self.store.as_ref().unwrap()
    }
    fn sessions(&self) -> &dyn SessionStore {
        self.store.as_ref().unwrap()
    }
    fn reopen(&mut self) {
        self.store = None;
        self.store = Some(EmbeddedAccounts::open(&self.dir).unwrap());
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.store = None;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Redis {
    prefix: String,
    store: RedisAccounts,
}

impl Redis {
    fn new(name: &str) -> Self {
        let prefix = format!("accurate-test:{}:", unique(name));
        Redis {
            store: open_redis(&prefix),
            prefix,
        }
    }
}

impl Fixture for Redis {
    type Store = RedisAccounts;
    fn store(&self) -> &RedisAccounts {
        &self.store
    }
    fn sessions(&self) -> &dyn SessionStore {
        &self.store
    }
    fn reopen(&mut self) {
        self.store = open_redis(&self.prefix);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.store.clear();
    }
}

// ---- the shared tests ----

fn set_get_list_remove(f: &mut impl Fixture) {
    let s = f.store();
    assert_eq!(s.get(TENANT, "1002").unwrap(), None);
    s.set(caller("5")).unwrap();
    s.set(Account::new(TENANT, "1001")).unwrap();
    s.set(Account::new("other.org", "1003")).unwrap();
    assert_eq!(s.get(TENANT, "1002").unwrap(), Some(caller("5")));
    let ids: Vec<String> = s.list(TENANT).unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["1001", "1002"]);
    // set replaces.
    s.set(caller("7.125")).unwrap();
    assert_eq!(money(s, "1002"), d("7.125"));
    assert!(s.remove(TENANT, "1001").unwrap());
    assert!(!s.remove(TENANT, "1001").unwrap());
    assert_eq!(s.get(TENANT, "1001").unwrap(), None);
    let ids: Vec<String> = s.list(TENANT).unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["1002"]);
    assert_eq!(s.list("nobody").unwrap(), vec![]);
}

fn tenants_lists_those_with_accounts(f: &mut impl Fixture) {
    let s = f.store();
    assert_eq!(s.tenants().unwrap(), Vec::<String>::new());
    s.set(Account::new("b.org", "1")).unwrap();
    s.set(Account::new("a.org", "1")).unwrap();
    s.set(Account::new("a.org", "2")).unwrap();
    assert_eq!(s.tenants().unwrap(), ["a.org", "b.org"]);
    assert!(s.remove("b.org", "1").unwrap());
    assert_eq!(s.tenants().unwrap(), ["a.org"]);
    f.reopen();
    assert_eq!(f.store().tenants().unwrap(), ["a.org"]);
}

fn update_applies_or_leaves_untouched(f: &mut impl Fixture) {
    let s = f.store();
    s.set(caller("5")).unwrap();
    let err = s.update_with(TENANT, "nobody", |_| Ok(())).unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_NOT_FOUND");
    let r: Result<(), Error> = s.update_with(TENANT, "1002", |a| {
        a.disabled = true;
        Err(Error::Store("refused".into()))
    });
    assert!(r.is_err());
    assert!(!s.get(TENANT, "1002").unwrap().unwrap().disabled);
    let v = s
        .update_with(TENANT, "1002", |a| {
            a.allow_negative = true;
            Ok(42)
        })
        .unwrap();
    assert_eq!(v, 42);
    assert!(s.get(TENANT, "1002").unwrap().unwrap().allow_negative);
}

fn update_many_is_all_or_nothing(f: &mut impl Fixture) {
    let s = f.store();
    s.set(caller("5")).unwrap();
    let mut b = caller("1");
    b.id = "1001".into();
    s.set(b).unwrap();
    let keys = vec![
        (TENANT.to_owned(), "1002".to_owned()),
        (TENANT.to_owned(), "1001".to_owned()),
    ];
    s.update_many(&keys, &mut |accts| {
        accts[0].balances.get_mut(&BalanceType::Monetary).unwrap()[0].value -= d("2");
        accts[1].balances.get_mut(&BalanceType::Monetary).unwrap()[0].value += d("2");
        Ok(())
    })
    .unwrap();
    assert_eq!(money(s, "1002"), d("3"));
    assert_eq!(money(s, "1001"), d("3"));
    let r = s.update_many(&keys, &mut |accts| {
        accts[0].disabled = true;
        Err(Error::Store("refused".into()))
    });
    assert!(r.is_err());
    assert!(!s.get(TENANT, "1002").unwrap().unwrap().disabled);
    let missing = vec![
        (TENANT.to_owned(), "1002".to_owned()),
        (TENANT.to_owned(), "nobody".to_owned()),
    ];
    let err = s.update_many(&missing, &mut |_| Ok(())).unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_NOT_FOUND");
}

fn debit_call_charges_the_plan(f: &mut impl Fixture) {
    let s = f.store();
    s.set(caller("1")).unwrap();
    debit(s).unwrap();
    assert_eq!(money(s, "1002"), d("1") - d(CALL_COST));
    let err = debit(s).unwrap_err();
    assert_eq!(err.reason(), "INSUFFICIENT_CREDIT");
    assert_eq!(money(s, "1002"), d("0.4"));
    assert_eq!(
        s.get(TENANT, "1002").unwrap().unwrap().update_time,
        Some(now())
    );
}

fn parallel_debits_are_exact(f: &mut impl Fixture) {
    let s = f.store();
    // 100 calls' worth; 8 threads try 160.
    s.set(caller("60")).unwrap();
    let ok: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| {
                    let mut ok = 0;
                    for _ in 0..20 {
                        match debit(s) {
                            Ok(()) => ok += 1,
                            Err(Error::InsufficientCredit { .. }) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    ok
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(ok, 100);
    assert_eq!(money(s, "1002"), Decimal::ZERO);
}

fn reopen_keeps_everything(f: &mut impl Fixture) {
    f.store().set(caller("5")).unwrap();
    f.store().set(Account::new(TENANT, "gone")).unwrap();
    debit(f.store()).unwrap();
    assert!(f.store().remove(TENANT, "gone").unwrap());
    f.store().put_meta("tariff_plan", b"/plans/office").unwrap();
    f.store().put_meta("scratch", b"x").unwrap();
    assert!(f.store().remove_meta("scratch").unwrap());
    let before = f.store().get(TENANT, "1002").unwrap();
    f.reopen();
    assert_eq!(f.store().get(TENANT, "1002").unwrap(), before);
    assert_eq!(f.store().get(TENANT, "gone").unwrap(), None);
    assert_eq!(
        f.store().get_meta("tariff_plan").unwrap().as_deref(),
        Some(&b"/plans/office"[..])
    );
    assert_eq!(f.store().get_meta("scratch").unwrap(), None);
    debit(f.store()).unwrap();
    assert_eq!(money(f.store(), "1002"), d("3.8"));
}

fn crossed_transfers_neither_deadlock_nor_lose_money(f: &mut impl Fixture) {
    let s = f.store();
    s.set(caller("100")).unwrap();
    let mut b = caller("100");
    b.id = "1001".into();
    s.set(b).unwrap();
    let ab = vec![
        (TENANT.to_owned(), "1002".to_owned()),
        (TENANT.to_owned(), "1001".to_owned()),
    ];
    let ba: Vec<_> = ab.iter().rev().cloned().collect();
    // Half the threads move money 1002 -> 1001, half the other way, with
    // the keys in opposite orders: the stores lock in sorted order.
    std::thread::scope(|sc| {
        for i in 0..4 {
            let keys = if i % 2 == 0 { &ab } else { &ba };
            sc.spawn(move || {
                for _ in 0..25 {
                    s.update_many(keys, &mut |accts| {
                        accts[0].balances.get_mut(&BalanceType::Monetary).unwrap()[0].value -=
                            d("1");
                        accts[1].balances.get_mut(&BalanceType::Monetary).unwrap()[0].value +=
                            d("1");
                        Ok(())
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(money(s, "1002"), d("100"));
    assert_eq!(money(s, "1001"), d("100"));
}

fn remove_during_updates_does_not_resurrect(f: &mut impl Fixture) {
    // An update that found the account just before it was removed must
    // not write it back (in memory or, after a reopen, from the journal).
    // The window is small: many rounds of debits hammering an account
    // while it is removed (the sleep only lets the debits get going).
    for _ in 0..12 {
        f.store().set(caller("1000000")).unwrap();
        let s = f.store();
        std::thread::scope(|sc| {
            for _ in 0..3 {
                sc.spawn(move || {
                    loop {
                        match debit(s) {
                            Ok(()) => {}
                            Err(Error::AccountNotFound { .. }) => break,
                            Err(e) => panic!("{e}"),
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(3));
            assert!(s.remove(TENANT, "1002").unwrap());
        });
        assert_eq!(s.get(TENANT, "1002").unwrap(), None);
    }
    f.reopen();
    assert_eq!(f.store().get(TENANT, "1002").unwrap(), None);
    assert_eq!(f.store().list(TENANT).unwrap(), vec![]);
}

type Sessions = Vec<(String, Vec<u8>)>;

fn sessions(pairs: &[(&str, &[u8])]) -> Sessions {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}

fn sessions_put_remove_list(f: &mut impl Fixture) {
    let s = f.sessions();
    assert_eq!(s.list().unwrap(), vec![]);
    s.put("call-b", b"{\"usage\":1}").unwrap();
    // Values are bytes, not text; an empty one is a value too.
    s.put("call-a", &[0, 255, 1]).unwrap();
    s.put("empty", b"").unwrap();
    // put replaces.
    s.put("call-b", b"v2").unwrap();
    assert_eq!(
        s.list().unwrap(),
        sessions(&[("call-a", &[0, 255, 1]), ("call-b", b"v2"), ("empty", b"")])
    );
    assert!(s.remove("call-a").unwrap());
    assert!(!s.remove("call-a").unwrap());
    assert!(!s.remove("never").unwrap());
    // Sessions are apart from accounts and meta values.
    f.store().put_meta("call-b", b"meta").unwrap();
    f.store().set(Account::new(TENANT, "call-b")).unwrap();
    assert_eq!(
        f.sessions().list().unwrap(),
        sessions(&[("call-b", b"v2"), ("empty", b"")])
    );
    assert_eq!(
        f.store().get_meta("call-b").unwrap().as_deref(),
        Some(&b"meta"[..])
    );
}

fn sessions_survive_reopen(f: &mut impl Fixture) {
    let mut expected = std::collections::BTreeMap::new();
    for i in 0..100u8 {
        let key = format!("session-{i:03}");
        let value = vec![i; usize::from(i)];
        f.sessions().put(&key, &value).unwrap();
        expected.insert(key, value);
    }
    for i in (1..100u8).step_by(2) {
        let key = format!("session-{i:03}");
        assert!(f.sessions().remove(&key).unwrap());
        expected.remove(&key);
    }
    f.sessions().put("session-000", b"again").unwrap();
    expected.insert("session-000".into(), b"again".to_vec());
    f.store().set(caller("5")).unwrap();
    f.reopen();
    let want: Sessions = expected.into_iter().collect();
    assert_eq!(f.sessions().list().unwrap(), want);
    assert_eq!(money(f.store(), "1002"), d("5"));
    for (k, _) in &want {
        assert!(f.sessions().remove(k).unwrap());
    }
    f.reopen();
    assert_eq!(f.sessions().list().unwrap(), vec![]);
}

fn parallel_session_writes_all_land(f: &mut impl Fixture) {
    let s = f.sessions();
    std::thread::scope(|sc| {
        for t in 0..8 {
            sc.spawn(move || {
                for i in 0..25 {
                    let key = format!("t{t}-{i:02}");
                    s.put(&key, key.as_bytes()).unwrap();
                    if i % 5 == 0 {
                        assert!(s.remove(&key).unwrap());
                    }
                }
            });
        }
    });
    f.reopen();
    let got = f.sessions().list().unwrap();
    assert_eq!(got.len(), 8 * 20);
    assert!(got.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
}

fn sessions_batch_puts_then_removes(f: &mut impl Fixture) {
    let s = f.sessions();
    s.put("old", b"0").unwrap();
    s.put("kept", b"k").unwrap();
    s.apply_batch(&[], &[]).unwrap();
    s.apply_batch(
        &[("a", b"1"), ("b", &[0, 255]), ("a", b"11"), ("gone", b"g")],
        &["old", "gone", "never"],
    )
    .unwrap();
    let want = sessions(&[("a", b"11"), ("b", &[0, 255]), ("kept", b"k")]);
    assert_eq!(s.list().unwrap(), want);
    f.reopen();
    assert_eq!(f.sessions().list().unwrap(), want);
    f.sessions().apply_batch(&[], &["a", "b", "kept"]).unwrap();
    f.reopen();
    assert_eq!(f.sessions().list().unwrap(), vec![]);
}

fn parallel_session_batches_all_land(f: &mut impl Fixture) {
    let s = f.sessions();
    std::thread::scope(|sc| {
        for t in 0..8 {
            sc.spawn(move || {
                for i in 0..10 {
                    let keys: Vec<String> = (0..5).map(|j| format!("t{t}-{i:02}-{j}")).collect();
                    let puts: Vec<(&str, &[u8])> =
                        keys.iter().map(|k| (k.as_str(), k.as_bytes())).collect();
                    // Each batch also removes one key of the batch before.
                    let prev = (i > 0).then(|| format!("t{t}-{:02}-0", i - 1));
                    let removes: Vec<&str> = prev.iter().map(String::as_str).collect();
                    s.apply_batch(&puts, &removes).unwrap();
                }
            });
        }
    });
    f.reopen();
    let got = f.sessions().list().unwrap();
    assert_eq!(got.len(), 8 * (10 * 5 - 9));
    assert!(got.iter().all(|(k, v)| k.as_bytes() == v.as_slice()));
    assert!(!got.iter().any(|(k, _)| k == "t3-04-0"));
    assert!(got.iter().any(|(k, _)| k == "t3-09-0"));
}

/// The point of a batch on the embedded store: its records share one
/// `fsync`, where as many puts and removes make one each.
#[test]
fn embedded_session_batch_is_one_fsync() {
    let f = Embedded::new("sessions-batch-fsync");
    let s = f.store();
    let keys: Vec<String> = (0..20).map(|i| format!("call-{i:02}")).collect();
    let puts: Vec<(&str, &[u8])> = keys
        .iter()
        .map(|k| (k.as_str(), &b"snapshot"[..]))
        .collect();
    let before = s.journal_syncs();
    SessionStore::apply_batch(s, &puts, &[]).unwrap();
    assert_eq!(s.journal_syncs() - before, 1);
    let removes: Vec<&str> = keys.iter().map(String::as_str).collect();
    let before = s.journal_syncs();
    SessionStore::apply_batch(s, &puts[..3], &removes).unwrap();
    assert_eq!(s.journal_syncs() - before, 1);
    assert_eq!(SessionStore::list(s).unwrap(), vec![]);
    // One by one: one fsync each.
    let before = s.journal_syncs();
    for (k, v) in &puts[..4] {
        SessionStore::put(s, k, v).unwrap();
    }
    assert_eq!(s.journal_syncs() - before, 4);
}

macro_rules! suite {
    ($module:ident, $fixture:ident) => {
        mod $module {
            use super::*;

            #[test]
            fn set_get_list_remove() {
                super::set_get_list_remove(&mut $fixture::new("basic"));
            }

            #[test]
            fn tenants_lists_those_with_accounts() {
                super::tenants_lists_those_with_accounts(&mut $fixture::new("tenants"));
            }

            #[test]
            fn update_applies_or_leaves_untouched() {
                super::update_applies_or_leaves_untouched(&mut $fixture::new("update"));
            }

            #[test]
            fn update_many_is_all_or_nothing() {
                super::update_many_is_all_or_nothing(&mut $fixture::new("many"));
            }

            #[test]
            fn debit_call_charges_the_plan() {
                super::debit_call_charges_the_plan(&mut $fixture::new("debit"));
            }

            #[test]
            fn parallel_debits_are_exact() {
                super::parallel_debits_are_exact(&mut $fixture::new("parallel"));
            }

            #[test]
            fn crossed_transfers_neither_deadlock_nor_lose_money() {
                super::crossed_transfers_neither_deadlock_nor_lose_money(&mut $fixture::new(
                    "crossed",
                ));
            }

            #[test]
            fn remove_during_updates_does_not_resurrect() {
                super::remove_during_updates_does_not_resurrect(&mut $fixture::new("resurrect"));
            }

            #[test]
            fn reopen_keeps_everything() {
                super::reopen_keeps_everything(&mut $fixture::new("reopen"));
            }

            #[test]
            fn sessions_put_remove_list() {
                super::sessions_put_remove_list(&mut $fixture::new("sessions"));
            }

            #[test]
            fn sessions_survive_reopen() {
                super::sessions_survive_reopen(&mut $fixture::new("sessions-reopen"));
            }

            #[test]
            fn sessions_batch_puts_then_removes() {
                super::sessions_batch_puts_then_removes(&mut $fixture::new("sessions-batch"));
            }

            #[test]
            fn parallel_session_batches_all_land() {
                super::parallel_session_batches_all_land(&mut $fixture::new("sessions-batches"));
            }

            #[test]
            fn parallel_session_writes_all_land() {
                super::parallel_session_writes_all_land(&mut $fixture::new("sessions-parallel"));
            }
        }
    };
}

suite!(embedded, Embedded);
suite!(redis, Redis);

// ---- child processes ----

/// Not a test of its own: with `ACCURATE_STORAGE_CHILD` set, the body of a
/// child process that another test started (`crash` or `redis`).
#[test]
fn child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let arg = std::env::var("ACCURATE_STORAGE_ARG").unwrap();
    match mode.as_str() {
        // Debits one at a time, printing each acknowledged one, until the
        // parent kills it.
        "crash" => {
            let opts = match std::env::var("ACCURATE_STORAGE_COMPACT") {
                Ok(n) => EmbeddedOptions {
                    compact_after_bytes: n.parse().unwrap(),
                },
                Err(_) => EmbeddedOptions::default(),
            };
            let store = EmbeddedAccounts::open_with(&arg, opts).unwrap();
            let mut out = std::io::stdout().lock();
            for i in 0.. {
                match debit(&store) {
                    Ok(()) => {
                        use std::io::Write;
                        writeln!(out, "ACK {i}").unwrap();
                        out.flush().unwrap();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
        }
        // Puts session i, then removes session i-2, printing each
        // acknowledged write, until the parent kills it.
        "sessions" => {
            let opts = match std::env::var("ACCURATE_STORAGE_COMPACT") {
                Ok(n) => EmbeddedOptions {
                    compact_after_bytes: n.parse().unwrap(),
                },
                Err(_) => EmbeddedOptions::default(),
            };
            let store = EmbeddedAccounts::open_with(&arg, opts).unwrap();
            let s: &dyn SessionStore = &store;
            let mut out = std::io::stdout().lock();
            for i in 0u64.. {
                use std::io::Write;
                s.put(&session_key(i), &session_value(i)).unwrap();
                writeln!(out, "PUT {i}").unwrap();
                out.flush().unwrap();
                if i >= 2 {
                    assert!(s.remove(&session_key(i - 2)).unwrap());
                    writeln!(out, "DEL {}", i - 2).unwrap();
                    out.flush().unwrap();
                }
            }
        }
        // 8 threads x 20 debits; prints how many succeeded.
        "redis" => {
            let store = open_redis(&arg);
            let ok: usize = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..8)
                    .map(|_| {
                        sc.spawn(|| {
                            (0..20)
                                .filter(|_| match debit(&store) {
                                    Ok(()) => true,
                                    Err(Error::InsufficientCredit { .. }) => false,
                                    Err(e) => panic!("{e}"),
                                })
                                .count()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).sum()
            });
            println!("OK {ok}");
        }
        m => panic!("unknown child mode {m}"),
    }
}

fn child(mode: &str, arg: &str) -> std::process::Child {
    child_with(mode, arg, None)
}

fn child_with(mode: &str, arg: &str, compact: Option<u64>) -> std::process::Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env("ACCURATE_STORAGE_ARG", arg)
    .stdout(Stdio::piped());
    if let Some(n) = compact {
        c.env("ACCURATE_STORAGE_COMPACT", n.to_string());
    }
    c.spawn().unwrap()
}

// ---- embedded only ----

#[test]
fn kill_9_during_debits_loses_no_acknowledged_debit() {
    kill_9_during_debits(None);
}

#[test]
fn kill_9_during_debits_and_compactions_loses_no_acknowledged_debit() {
    // A compaction every few debits: the kill lands in or between them.
    kill_9_during_debits(Some(3000));
}

fn kill_9_during_debits(compact: Option<u64>) {
    let f = Embedded::new("crash");
    let initial = d("10000");
    f.store().set(caller("10000")).unwrap();
    let dir = f.dir.clone();
    let mut f = f;
    f.store = None; // the child takes the directory's lock
    let mut c = child_with("crash", dir.to_str().unwrap(), compact);
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let mut acked = 0u32;
    while acked < 200 {
        let l = lines.next().expect("child ended early").unwrap();
        // libtest prints `test child_process ... ` before the first line.
        if l.contains("ACK ") {
            acked += 1;
        }
    }
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    // Lines written before the kill but not read yet were acknowledged too.
    acked += u32::try_from(
        lines
            .map_while(Result::ok)
            .filter(|l| l.contains("ACK "))
            .count(),
    )
    .unwrap();
    if compact.is_some() {
        assert!(f.dir.join("snapshot").exists(), "no compaction ran");
    }
    f.reopen();
    let left = money(f.store(), "1002");
    let expected = initial - d(CALL_COST) * Decimal::from(acked);
    // Every acknowledged debit is there, once; at most the one in flight
    // when the child died is there too.
    assert!(
        left <= expected,
        "{left} > {expected}: an acknowledged debit was lost"
    );
    assert!(
        left >= expected - d(CALL_COST),
        "{left} < {expected} - one call: a debit was applied twice"
    );
}

fn session_key(i: u64) -> String {
    format!("call-{i:08}")
}

/// A few hundred bytes, as a session snapshot is.
fn session_value(i: u64) -> Vec<u8> {
    format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(300)).into_bytes()
}

#[test]
fn kill_9_during_session_writes_loses_no_acknowledged_write() {
    kill_9_during_session_writes(None);
}

#[test]
fn kill_9_during_session_writes_and_compactions_loses_no_acknowledged_write() {
    kill_9_during_session_writes(Some(8000));
}

fn kill_9_during_session_writes(compact: Option<u64>) {
    let mut f = Embedded::new("sessions-crash");
    let dir = f.dir.clone();
    f.store = None; // the child takes the directory's lock
    let mut c = child_with("sessions", dir.to_str().unwrap(), compact);
    let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < 400 {
        let l = lines.next().expect("child ended early").unwrap();
        if l.contains("PUT ") || l.contains("DEL ") {
            acked.push(l);
        }
    }
    c.kill().unwrap(); // SIGKILL
    c.wait().unwrap();
    // Lines written before the kill but not read yet were acknowledged too.
    acked.extend(
        lines
            .map_while(Result::ok)
            .filter(|l| l.contains("PUT ") || l.contains("DEL ")),
    );
    if compact.is_some() {
        assert!(f.dir.join("snapshot").exists(), "no compaction ran");
    }
    let n = |l: &str| -> u64 { l.rsplit(' ').next().unwrap().parse().unwrap() };
    let mut want = std::collections::BTreeMap::new();
    for l in &acked {
        let i = n(l);
        if l.contains("PUT ") {
            want.insert(session_key(i), session_value(i));
        } else {
            want.remove(&session_key(i));
        }
    }
    // The write in flight when the child died may have landed.
    let last = acked.last().unwrap();
    let (in_flight_key, in_flight_value) = if last.contains("PUT ") {
        let i = n(last);
        (session_key(i - 2), None) // its remove
    } else {
        let i = n(last) + 3;
        (session_key(i), Some(session_value(i))) // the next put
    };
    f.reopen();
    let mut got: std::collections::BTreeMap<String, Vec<u8>> =
        f.sessions().list().unwrap().into_iter().collect();
    let landed = match &in_flight_value {
        // A remove in flight: the session may be gone.
        None => !got.contains_key(&in_flight_key),
        Some(_) => got.remove(&in_flight_key).is_some(),
    };
    if landed && in_flight_value.is_none() {
        want.remove(&in_flight_key);
    }
    assert_eq!(got, want, "in flight: {in_flight_key} (landed: {landed})");
    assert!(got.len() <= 3, "{} live sessions", got.len());
}

#[test]
fn sessions_survive_compaction() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("sessions-compact"));
    let opts = EmbeddedOptions {
        compact_after_bytes: 4096,
    };
    let mut want = std::collections::BTreeMap::new();
    {
        let s = EmbeddedAccounts::open_with(&dir, opts).unwrap();
        let ss: &dyn SessionStore = &s;
        for i in 0..100 {
            ss.put(&session_key(i), &session_value(i)).unwrap();
            want.insert(session_key(i), session_value(i));
            if i % 3 == 0 {
                assert!(ss.remove(&session_key(i)).unwrap());
                want.remove(&session_key(i));
            }
        }
    }
    assert!(dir.join("snapshot").exists());
    let s = EmbeddedAccounts::open_with(&dir, opts).unwrap();
    assert!(s.recovery().snapshot_records > 0);
    let got: std::collections::BTreeMap<String, Vec<u8>> =
        SessionStore::list(&s).unwrap().into_iter().collect();
    assert_eq!(got, want);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn torn_journal_tail_is_cut_off_on_open() {
    let mut f = Embedded::new("torn");
    f.store().set(caller("5")).unwrap();
    for _ in 0..3 {
        debit(f.store()).unwrap();
    }
    f.store = None;
    // A crash in the middle of the last record's write.
    let journal = f.dir.join("journal");
    let len = std::fs::metadata(&journal).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.set_len(len - 10).unwrap();
    drop(file);
    f.reopen();
    let r = f.store().recovery().clone();
    assert!(r.torn_bytes > 0, "{r:?}");
    assert_eq!(r.journal_records, 3, "{r:?}");
    assert_eq!(money(f.store(), "1002"), d("3.8"));
    // New records go after the cut, where the next open finds them.
    debit(f.store()).unwrap();
    f.reopen();
    assert_eq!(f.store().recovery().torn_bytes, 0);
    assert_eq!(money(f.store(), "1002"), d("3.2"));
}

#[test]
fn garbage_after_the_journal_is_ignored() {
    let mut f = Embedded::new("garbage");
    f.store().set(caller("5")).unwrap();
    f.store = None;
    let journal = f.dir.join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    // A length that claims more than the file holds, then zeroes.
    bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 0]);
    std::fs::write(&journal, bytes).unwrap();
    f.reopen();
    assert_eq!(money(f.store(), "1002"), d("5"));
}

#[test]
fn a_second_process_cannot_open_the_data_dir() {
    let f = Embedded::new("lock");
    let err = EmbeddedAccounts::open(&f.dir).unwrap_err();
    assert!(matches!(err, storage::Error::Locked { .. }), "{err}");
}

#[test]
fn compaction_keeps_state_and_bounds_the_journal() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique("compact"));
    let opts = EmbeddedOptions {
        compact_after_bytes: 4096,
    };
    {
        let s = EmbeddedAccounts::open_with(&dir, opts).unwrap();
        s.set(caller("100")).unwrap();
        s.put_meta("plan", b"office").unwrap();
        for _ in 0..100 {
            debit(&s).unwrap();
        }
    }
    let journal = std::fs::metadata(dir.join("journal")).unwrap().len();
    assert!(journal <= 4096 + 2048, "journal has {journal} bytes");
    assert!(dir.join("snapshot").exists());
    let s = EmbeddedAccounts::open_with(&dir, opts).unwrap();
    assert!(s.recovery().snapshot_records > 0);
    assert_eq!(money(&s, "1002"), d("40"));
    assert_eq!(s.get_meta("plan").unwrap().as_deref(), Some(&b"office"[..]));
    s.compact().unwrap();
    drop(s);
    assert_eq!(std::fs::metadata(dir.join("journal")).unwrap().len(), 0);
    let s = EmbeddedAccounts::open_with(&dir, opts).unwrap();
    assert_eq!(money(&s, "1002"), d("40"));
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Redis only ----

#[test]
fn a_redis_update_sees_what_another_process_wrote() {
    // `a` caches what it last saw of the account; `b` (another process,
    // as far as Redis can tell) changes it behind `a`'s back each time.
    let f = Redis::new("stale");
    let a = f.store();
    let b = open_redis(&f.prefix);
    a.set(caller("0.6")).unwrap();
    debit(a).unwrap();
    assert!(matches!(debit(a), Err(Error::InsufficientCredit { .. })));
    // Topped up elsewhere: the refusal `a` would compute from its cache
    // is not answered, the debit is made on the new state.
    b.set(caller("1.2")).unwrap();
    debit(a).unwrap();
    assert_eq!(money(&b, "1002"), d("0.6"));
    // Debited elsewhere: not spent twice.
    debit(&b).unwrap();
    assert!(matches!(debit(a), Err(Error::InsufficientCredit { .. })));
    assert_eq!(money(&b, "1002"), d("0"));
    let mut off = caller("5");
    off.disabled = true;
    b.set(off).unwrap();
    assert!(matches!(debit(a), Err(Error::AccountDisabled { .. })));
    b.set(caller("5")).unwrap();
    debit(a).unwrap();
    assert!(AccountStore::remove(&b, TENANT, "1002").unwrap());
    assert!(matches!(debit(a), Err(Error::AccountNotFound { .. })));
    assert_eq!(b.get(TENANT, "1002").unwrap(), None);
    // Redis forgot the script (a restart, `SCRIPT FLUSH`): loaded again.
    b.set(caller("5")).unwrap();
    debit(a).unwrap();
    let mut con = ::redis::Client::open(redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    ::redis::cmd("SCRIPT").arg("FLUSH").exec(&mut con).unwrap();
    debit(a).unwrap();
    assert_eq!(money(&b, "1002"), d("3.8"));
}

#[test]
fn two_processes_sharing_redis_debit_exactly() {
    let f = Redis::new("two-procs");
    // 50 calls' worth; the two children try 320.
    let initial = d("30");
    f.store().set(caller("30")).unwrap();
    let children: Vec<_> = (0..2).map(|_| child("redis", &f.prefix)).collect();
    let mut ok = 0u32;
    for mut c in children {
        let out = BufReader::new(c.stdout.take().unwrap());
        for l in out.lines() {
            let l = l.unwrap();
            if let Some((_, n)) = l.split_once("OK ") {
                ok += n.trim().parse::<u32>().unwrap();
            }
        }
        assert!(c.wait().unwrap().success());
    }
    let left = money(f.store(), "1002");
    assert_eq!(left, initial - d(CALL_COST) * Decimal::from(ok));
    assert_eq!(ok, 50);
    assert!(left >= Decimal::ZERO);
}
