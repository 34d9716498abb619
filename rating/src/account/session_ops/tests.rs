//! Every expectation is worked out by hand: the plan charges 0.01 a
//! second (0.6 a minute, 1 s increments, no connect fee) to 44.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use chrono::TimeZone;

use super::*;
use crate::{AccountStore, AccountStoreExt, Balance, LoadOptions, MemoryAccounts};

fn plan() -> TariffPlan {
    let files = [
        ("Destinations.csv", "DST_UK,44\n"),
        ("Rates.csv", "RT_SEC,0,0.6,60s,1s,0s\n"),
        ("DestinationRates.csv", "DR_UK,DST_UK,RT_SEC,*up,4,0,\n"),
        ("RatingPlans.csv", "RP_STD,DR_UK,*any,10\n"),
        (
            "RatingProfiles.csv",
            "cgrates.org,call,*any,2014-01-01T00:00:00Z,RP_STD,\n",
        ),
    ];
    let v: Vec<(&Path, &str)> = files.iter().map(|(n, t)| (Path::new(*n), *t)).collect();
    let opts = LoadOptions {
        loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    };
    TariffPlan::from_csv(&v, &opts).unwrap().0
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 13, 10, 0, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(secs)
}

/// Piece of the call to 4420 answered at t0: `offset` s in, `secs` long.
fn piece(offset: u64, secs: u64) -> CallDescriptor<'static> {
    CallDescriptor {
        start: at(i64::try_from(offset).unwrap()),
        offset: Duration::from_secs(offset),
        ..CallDescriptor::new("1001", "4420", t0(), Duration::from_secs(secs))
    }
}

fn account(money: &str, voice_secs: u64) -> Account {
    let mut a = Account::new("cgrates.org", "1001");
    a.add_balance(
        BalanceType::Monetary,
        Balance {
            id: "credit".into(),
            value: d(money),
            ..Balance::default()
        },
    );
    if voice_secs > 0 {
        a.add_balance(
            BalanceType::Voice,
            Balance {
                id: "minutes".into(),
                value: Decimal::from(voice_secs * 1_000_000_000),
                rating_subject: "*zero1s".into(),
                ..Balance::default()
            },
        );
    }
    a
}

fn money(a: &Account) -> Decimal {
    a.total(BalanceType::Monetary, t0())
}

fn voice(a: &Account) -> Decimal {
    a.total(BalanceType::Voice, t0())
}

fn ctx<'a>(plan: &'a TariffPlan, now: DateTime<Utc>) -> SessionCtx<'a> {
    SessionCtx {
        session: "cgrid1:*default",
        plan,
        mode: RoundingMode::Exact,
        groups: None,
        now,
        keep_marks: DEFAULT_KEEP_MARKS,
    }
}

fn one(a: &mut Account) -> &mut [Account] {
    std::slice::from_mut(a)
}

// 60 s reserved twice under the same number: 0.60 taken once.
#[test]
fn repeated_reservation_is_replayed_not_debited() {
    let p = plan();
    let mut a = account("10", 0);
    let c = ctx(&p, at(0));
    let r1 = reserve_session(one(&mut a), &c, 0, &piece(0, 60)).unwrap();
    assert!(matches!(r1, Reservation::Reserved(ref o) if o.cost == d("0.6")));
    let r2 = reserve_session(one(&mut a), &c, 0, &piece(0, 60)).unwrap();
    assert!(matches!(r2, Reservation::Replayed(ref o) if o.cost == d("0.6")));
    assert_eq!(money(&a), d("9.4"));
}

// Reserved 60 + 60 s (1.20), used 75 s: 0.75 in the end.
#[test]
fn settle_refunds_reservations_and_debits_real_usage_once() {
    let p = plan();
    let mut a = account("10", 0);
    reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
    reserve_session(one(&mut a), &ctx(&p, at(60)), 1, &piece(60, 60)).unwrap();
    assert_eq!(money(&a), d("8.8"));
    let s = settle_session(one(&mut a), &ctx(&p, at(75)), &piece(0, 75), false).unwrap();
    assert!(!s.replayed);
    assert_eq!(s.refunded.len(), 2);
    assert_eq!(s.charge.cost, d("0.75"));
    assert_eq!(money(&a), d("9.25"));
    let rec = &a.sessions["cgrid1:*default"];
    assert!(rec.reservations.is_empty());
    assert_eq!(rec.charged.unwrap().cost, d("0.75"));
}

#[test]
fn double_terminate_charges_once() {
    let p = plan();
    let mut a = account("10", 0);
    reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
    let s1 = settle_session(one(&mut a), &ctx(&p, at(30)), &piece(0, 30), false).unwrap();
    let before = a.clone();
    // The second terminate even says another usage: the mark wins.
    let s2 = settle_session(one(&mut a), &ctx(&p, at(31)), &piece(0, 45), true).unwrap();
    assert!(s2.replayed);
    assert_eq!(s2.charge, s1.charge);
    assert_eq!(s2.charge.cost, d("0.3"));
    assert_eq!(a, before);
    // And a late reservation of a settled session takes nothing.
    let r = reserve_session(one(&mut a), &ctx(&p, at(32)), 1, &piece(60, 60)).unwrap();
    assert!(matches!(r, Reservation::Settled(_)));
    assert_eq!(money(&a), d("9.7"));
}

// The process reserved pieces 0, 1 and 2, but crashed before the
// snapshot recording piece 2. After the restart it re-reserves piece 2
// (replayed, nothing taken) and settles 150 s: 1.50 in all, every
// reservation given back, including the one its snapshot missed.
#[test]
fn terminate_after_restart_with_stale_snapshot() {
    let p = plan();
    let mut a = account("10", 0);
    for seq in 0..3_u32 {
        let off = u64::from(seq) * 60;
        let c = ctx(&p, at(i64::from(seq) * 60));
        reserve_session(one(&mut a), &c, seq, &piece(off, 60)).unwrap();
    }
    assert_eq!(money(&a), d("8.2"));
    // Restarted from a snapshot that knew pieces 0 and 1 only.
    let again = reserve_session(one(&mut a), &ctx(&p, at(125)), 2, &piece(120, 60)).unwrap();
    assert!(matches!(again, Reservation::Replayed(_)));
    assert_eq!(money(&a), d("8.2"));
    let s = settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), false).unwrap();
    assert_eq!(s.refunded.len(), 3);
    assert_eq!(money(&a), d("8.5"));
}

// 100 s of free minutes reserved, 40 used: 60 s come back.
#[test]
fn settle_gives_back_unit_balances() {
    let p = plan();
    let mut a = account("10", 100);
    reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 100)).unwrap();
    assert_eq!(voice(&a), Decimal::ZERO);
    let s = settle_session(one(&mut a), &ctx(&p, at(40)), &piece(0, 40), false).unwrap();
    assert_eq!(s.charge.cost, Decimal::ZERO);
    assert_eq!(voice(&a), Decimal::from(60_u64 * 1_000_000_000));
    assert_eq!(money(&a), d("10"));
}

// 1.00 of credit, 150 s used: 1.50 due, 0.50 goes below zero although
// the account may not go negative; its flags are kept.
#[test]
fn forced_settle_goes_negative_on_the_default_balance() {
    let p = plan();
    let mut a = account("1", 0);
    assert!(matches!(
        settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), false),
        Err(Error::InsufficientCredit { .. })
    ));
    assert!(a.sessions.is_empty());
    let s = settle_session(one(&mut a), &ctx(&p, at(150)), &piece(0, 150), true).unwrap();
    assert_eq!(s.charge.cost, d("1.5"));
    assert_eq!(s.debit.unwrap().negative, d("0.5"));
    assert_eq!(money(&a), d("-0.5"));
    let def = a
        .balances_of(BalanceType::Monetary)
        .iter()
        .find(|b| b.id == crate::DEFAULT_BALANCE_ID)
        .unwrap();
    assert_eq!(def.value, d("-0.5"));
    assert!(!a.allow_negative);
}

#[test]
fn debit_forced_on_a_disabled_account_keeps_it_disabled() {
    let p = plan();
    let mut a = account("0", 0);
    a.disabled = true;
    let o = debit_forced(&mut a, &piece(0, 10), &p, RoundingMode::Exact, at(10)).unwrap();
    assert_eq!(o.negative, d("0.1"));
    assert!(a.disabled);
}

#[test]
fn marks_are_pruned_by_age_reservations_are_not() {
    let p = plan();
    let mut a = account("10", 0);
    settle_session(one(&mut a), &ctx(&p, at(0)), &piece(0, 10), false).unwrap();
    let mut other = ctx(&p, at(10));
    other.session = "cgrid2:*default";
    reserve_session(one(&mut a), &other, 0, &piece(0, 10)).unwrap();
    let mut late = ctx(&p, at(0) + TimeDelta::days(2));
    late.session = "cgrid3:*default";
    reserve_session(one(&mut a), &late, 0, &piece(0, 10)).unwrap();
    let keys: Vec<&str> = a.sessions.keys().map(String::as_str).collect();
    assert_eq!(keys, ["cgrid2:*default", "cgrid3:*default"]);
}

#[test]
fn session_records_survive_the_json_round_trip_and_are_absent_when_empty() {
    let p = plan();
    let mut a = account("10", 100);
    let plain = serde_json::to_string(&a).unwrap();
    assert!(!plain.contains("Sessions"), "{plain}");
    reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 130)).unwrap();
    let mut c2 = ctx(&p, at(0));
    c2.session = "other:*default";
    settle_session(one(&mut a), &c2, &piece(0, 5), false).unwrap();
    let json = serde_json::to_string(&a).unwrap();
    let back: Account = serde_json::from_str(&json).unwrap();
    assert_eq!(back, a);
}

// Two copies of one call (two proxies) race through a shared store:
// each reserves piece 0 and settles 30 s; the account pays 0.30 once.
#[test]
fn concurrent_copies_of_a_call_are_charged_once() {
    let p = Arc::new(plan());
    let store = Arc::new(MemoryAccounts::new());
    store.set(account("10", 0)).unwrap();
    let mut handles = Vec::new();
    for _ in 0..4 {
        let (p, store) = (Arc::clone(&p), Arc::clone(&store));
        handles.push(std::thread::spawn(move || {
            let c = ctx(&p, at(0));
            store
                .update_with("cgrates.org", "1001", |a| {
                    reserve_session(one(a), &c, 0, &piece(0, 60))
                })
                .unwrap();
            let c = ctx(&p, at(30));
            store
                .update_with("cgrates.org", "1001", |a| {
                    settle_session(one(a), &c, &piece(0, 30), false)
                })
                .unwrap()
        }));
    }
    let outs: Vec<Settlement> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outs.iter().filter(|s| !s.replayed).count(), 1);
    assert!(outs.iter().all(|s| s.charge.cost == d("0.3")));
    let a = store.get("cgrates.org", "1001").unwrap().unwrap();
    assert_eq!(money(&a), d("9.7"));
}

// Interleaving by hand: copy A reserves, copy B reserves the same piece
// (replayed), A settles 20 s, B's later reservation of piece 1 and its
// settle of 45 s take nothing.
#[test]
fn interleaved_copies_by_hand() {
    let p = plan();
    let mut a = account("10", 0);
    reserve_session(one(&mut a), &ctx(&p, at(0)), 0, &piece(0, 60)).unwrap();
    let b0 = reserve_session(one(&mut a), &ctx(&p, at(1)), 0, &piece(0, 60)).unwrap();
    assert!(matches!(b0, Reservation::Replayed(_)));
    settle_session(one(&mut a), &ctx(&p, at(20)), &piece(0, 20), false).unwrap();
    let b1 = reserve_session(one(&mut a), &ctx(&p, at(60)), 1, &piece(60, 60)).unwrap();
    assert!(matches!(b1, Reservation::Settled(c) if c.cost == d("0.2")));
    let bs = settle_session(one(&mut a), &ctx(&p, at(45)), &piece(0, 45), false).unwrap();
    assert!(bs.replayed);
    assert_eq!(money(&a), d("9.8"));
}

// 3.00 of credit: 300 s at most; a reservation beyond fails whole.
#[test]
fn max_usage_and_a_reservation_too_big() {
    let p = plan();
    let mut a = account("3", 0);
    let c = ctx(&p, at(0));
    let m = session_max_usage(std::slice::from_ref(&a), &c, &piece(0, 3600)).unwrap();
    assert_eq!(m, Duration::from_secs(300));
    assert!(reserve_session(one(&mut a), &c, 0, &piece(0, 301)).is_err());
    assert!(a.sessions.is_empty());
    assert_eq!(money(&a), d("3"));
}
