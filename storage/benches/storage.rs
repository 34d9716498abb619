//! Acknowledged debits per second of each account store backend, with 1
//! and 8 threads: 8 threads on 8 accounts (group commit shares fsyncs on
//! the embedded store) and 8 threads on one account (the contended case:
//! Redis transactions retry). Then session writes per second (a 512-byte
//! put, later its remove: what the session manager does per call), with 1
//! and 8 threads. A plain harness: `cargo bench -p storage`.
//! The Redis rows need redis-server on 127.0.0.1:6379 (or
//! `ACCURATE_BENCH_REDIS`); they are skipped, saying so, without it.

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use rating::{
    Account, AccountStore, Balance, BalanceType, Error, LoadOptions, RoundingMode, TariffPlan,
};
use rust_decimal::Decimal;
use sessions::SessionStore;
use storage::{EmbeddedAccounts, RedisAccounts};

const TENANT: &str = "cgrates.org";

fn account(id: &str) -> Account {
    let mut a = Account::new(TENANT, id);
    a.add_balance(
        BalanceType::Monetary,
        Balance {
            id: "main".into(),
            value: Decimal::from_str("1000000000").unwrap_or_default(),
            weight: Decimal::from(10),
            ..Balance::default()
        },
    );
    a
}

/// Runs `threads` threads of `per_thread` debits each (thread `i` on
/// account `ids[i % ids.len()]`); debits per second.
fn run(
    store: &dyn AccountStore,
    plan: &TariffPlan,
    threads: usize,
    ids: &[String],
    per_thread: usize,
) -> f64 {
    use rating::AccountStoreExt;
    for id in ids {
        if let Err(e) = store.set(account(id)) {
            panic!("{e}");
        }
    }
    let start_call = Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).single();
    let now = Utc.with_ymd_and_hms(2024, 5, 13, 10, 5, 0).single();
    let (Some(sc), Some(now)) = (start_call, now) else {
        return 0.0;
    };
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for i in 0..threads {
            let id = &ids[i % ids.len()];
            s.spawn(move || {
                // Priced as subject 1002 (0.6 a call); the money comes
                // from account `id`.
                let cd = rating::CallDescriptor::new("1002", "1001", sc, Duration::from_secs(60));
                for _ in 0..per_thread {
                    let r: Result<_, Error> =
                        store.debit_call(TENANT, id, &cd, plan, RoundingMode::Exact, now);
                    if let Err(e) = r {
                        panic!("{e}");
                    }
                }
            });
        }
    });
    (threads * per_thread) as f64 / t0.elapsed().as_secs_f64()
}

fn cases(name: &str, store: &dyn AccountStore, plan: &TariffPlan, n: usize) {
    let one = vec!["1002".to_owned()];
    let eight: Vec<String> = (0..8).map(|i| format!("acct{i}")).collect();
    let r1 = run(store, plan, 1, &one, n);
    let r8 = run(store, plan, 8, &eight, n / 4);
    let r8h = run(store, plan, 8, &one, n / 4);
    println!(
        "{name:<9} 1 thread: {r1:>9.0}/s   8 threads, 8 accounts: {r8:>9.0}/s   8 threads, 1 account: {r8h:>9.0}/s"
    );
}

/// `threads` threads each put `per_thread` sessions of 512 bytes and
/// remove each one two puts later (so a few are live at a time, as calls
/// are); acknowledged writes (puts and removes) per second.
fn run_sessions(store: &dyn SessionStore, threads: usize, per_thread: usize) -> f64 {
    let value = vec![b'x'; 512];
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let value = &value;
            s.spawn(move || {
                let key = |i: usize| format!("bench-{t}-{i}");
                for i in 0..per_thread {
                    if let Err(e) = store.put(&key(i), value) {
                        panic!("{e}");
                    }
                    if i >= 2 {
                        if let Err(e) = store.remove(&key(i - 2)) {
                            panic!("{e}");
                        }
                    }
                }
            });
        }
    });
    (threads * (2 * per_thread - 2)) as f64 / t0.elapsed().as_secs_f64()
}

fn session_cases(name: &str, store: &dyn SessionStore, n: usize) {
    let r1 = run_sessions(store, 1, n);
    let r8 = run_sessions(store, 8, n / 4);
    println!("{name:<9} session writes, 1 thread: {r1:>9.0}/s   8 threads: {r8:>9.0}/s");
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tariffplans/office");
    let opts = LoadOptions {
        loaded_at: Utc::now(),
    };
    let plan = match TariffPlan::load_dir(&dir, &opts) {
        Ok((p, _)) => p,
        Err(e) => panic!("{e}"),
    };
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{}", std::process::id()));
    match EmbeddedAccounts::open(&data) {
        Ok(s) => {
            cases("embedded", &s, &plan, 2000);
            session_cases("embedded", &s, 2000);
        }
        Err(e) => panic!("{e}"),
    }
    let _ = std::fs::remove_dir_all(&data);
    let url =
        std::env::var("ACCURATE_BENCH_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let prefix = format!("accurate-bench:{}:", std::process::id());
    match RedisAccounts::open(&url, &prefix) {
        Ok(s) => {
            cases("redis", &s, &plan, 2000);
            session_cases("redis", &s, 2000);
            let _ = s.clear();
        }
        Err(e) => println!("redis     skipped: {e}"),
    }
}
