//! Session manager scenarios with a fake clock, `rating::MemoryAccounts`
//! and the `accounts` tariff plan of `tests/data/tariffplans/`: every call
//! of tenant `acme.test` to 4420... (or 447...) costs 0.05 a started
//! minute (60 s increments, no connect fee). Every expected amount is
//! worked out by hand in the comment above it.
#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rating::{
    Account, AccountStore, Balance, BalanceType, LoadOptions, MemoryAccounts, RoundingMode,
    SharedGroup, TariffPlan,
};
use rust_decimal::Decimal;
use serde_json::json;
use sessions::manager::{EXTRA_DISCONNECT_REQUESTED, EXTRA_TTL_EXPIRED};
use sessions::{
    Action, Charging, Error, Owner, SessionConfig, SessionEvent, SessionManager, SessionSnapshot,
};
use sip_fsm::{CallInfo, CallRecord, DialogEvent, EndReason};

const TENANT: &str = "acme.test";

struct Fx {
    plan: TariffPlan,
    store: MemoryAccounts,
    groups: BTreeMap<String, SharedGroup>,
}

impl Fx {
    fn new() -> Self {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/data/tariffplans/accounts");
        let opts = LoadOptions {
            loaded_at: Utc.with_ymd_and_hms(2025, 1, 15, 10, 20, 30).unwrap(),
        };
        let (plan, _) = TariffPlan::load_dir(&dir, &opts).unwrap();
        Fx {
            plan,
            store: MemoryAccounts::new(),
            groups: BTreeMap::new(),
        }
    }

    fn ch(&self) -> Charging<'_> {
        Charging {
            accounts: &self.store,
            plan: &self.plan,
            rounding: RoundingMode::Exact,
            groups: &self.groups,
        }
    }

    /// An account with `money` on its `credit` balance and `voice_secs` of
    /// free minutes.
    fn account(&self, id: &str, money: &str, voice_secs: u64) {
        let mut a = Account::new(TENANT, id);
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
        self.store.set(a).unwrap();
    }

    fn acct(&self, id: &str) -> Account {
        self.store.get(TENANT, id).unwrap().unwrap()
    }

    fn money(&self, id: &str) -> Decimal {
        self.acct(id).total(BalanceType::Monetary, t(0))
    }

    fn voice_secs(&self, id: &str) -> Decimal {
        self.acct(id).total(BalanceType::Voice, t(0)) / Decimal::from(1_000_000_000_u64)
    }
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// The fake clock: `secs` after 2025-02-03 10:00:00 UTC.
fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 2, 3, 10, 0, 0).unwrap() + TimeDelta::seconds(secs)
}

/// An API event of call `origin` from `account` to 44201234 answered at t(0).
fn ev(origin: &str, account: &str, rt: &str, more: serde_json::Value) -> SessionEvent {
    let mut event = json!({
        "OriginID": origin, "OriginHost": "10.1.1.1", "Account": account,
        "Destination": "44201234", "RequestType": rt, "Category": "call",
        "SetupTime": "2025-02-03T09:59:55Z", "AnswerTime": "2025-02-03T10:00:00Z",
    });
    let mut opts = json!({});
    for (k, v) in more.as_object().unwrap() {
        if k.starts_with('*') {
            opts[k] = v.clone();
        } else {
            event[k] = v.clone();
        }
    }
    let args = json!({"Tenant": TENANT, "ID": "e1", "Event": event, "APIOpts": opts});
    SessionEvent::from_cgr_event(args.as_object().unwrap(), Owner::Api).unwrap()
}

fn drain(m: &mut SessionManager) -> Vec<Action> {
    std::iter::from_fn(|| m.poll_action()).collect()
}

fn cdrs(actions: &[Action]) -> Vec<&sessions::Cdr> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::WriteCdr(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

fn disconnects(actions: &[Action]) -> Vec<(Owner, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Disconnect { owner, reason, .. } => Some((owner.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

fn last_snapshot(actions: &[Action]) -> SessionSnapshot {
    actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Save(s) => Some((**s).clone()),
            _ => None,
        })
        .unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

// 1.00 of credit pays 20 minutes: the whole MaxUsage is reserved at once
// (debit interval 0) and the balance is empty. LastUsed 60 s leaves 19 min.
// Terminate at 150 s: 3 started minutes, 0.15; 0.85 comes back.
#[test]
fn prepaid_initiate_update_terminate_refunds_money() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let r = m
        .handle_initiate(&ev("c1", "ann", "*prepaid", json!({})), t(0), &fx.ch())
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(1200)));
    assert_eq!(fx.money("ann"), d("0"));
    assert_eq!(m.active_count(), 1);
    let r = m
        .handle_update(
            &ev("c1", "ann", "*prepaid", json!({"LastUsed": "60s"})),
            t(60),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(1140)));
    assert_eq!(fx.money("ann"), d("0"));
    let r = m
        .handle_terminate(
            &ev("c1", "ann", "*prepaid", json!({"Usage": "150s"})),
            t(150),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.15")));
    assert_eq!(fx.money("ann"), d("0.85"));
    let acts = drain(&mut m);
    let c = cdrs(&acts);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].cost, Some(d("0.15")));
    assert_eq!(c[0].usage, secs(150));
    assert_eq!(c[0].request_type, "*prepaid");
    assert!(matches!(acts.last(), Some(Action::Forget(_))));
    assert_eq!(m.active_count(), 0);
    assert!(
        fx.acct("ann")
            .sessions
            .values()
            .all(|s| s.reservations.is_empty())
    );
    let n = m.counters();
    assert_eq!(
        (n.initiated, n.updated, n.terminated, n.active),
        (1, 1, 1, 0)
    );
}

// 10 free minutes and 1.00: a 5 min request is reserved from the minutes
// (*zero1s), money untouched; 90 s used: 8.5 min come back.
#[test]
fn prepaid_refunds_voice_units() {
    let fx = Fx::new();
    fx.account("ben", "1", 600);
    let mut m = SessionManager::new(SessionConfig::default());
    let r = m
        .handle_initiate(
            &ev("c2", "ben", "*prepaid", json!({"Usage": "5m"})),
            t(0),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(300)));
    assert_eq!(fx.voice_secs("ben"), d("300"));
    let r = m
        .handle_terminate(
            &ev(
                "c2",
                "ben",
                "*prepaid",
                json!({"Usage": 90_000_000_000_u64}),
            ),
            t(90),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0")));
    assert_eq!(fx.voice_secs("ben"), d("510"));
    assert_eq!(fx.money("ben"), d("1"));
}

// Debit interval 60 s (per call, from APIOpts), 0.12 of credit: 0.05 at
// 0 s, 0.05 at 60 s, then 0.02 cannot pay a minute: the API owner is asked
// to disconnect at 120 s exactly. 120 s used: 0.10, 0.02 left.
#[test]
fn debit_loop_runs_out_and_disconnects_at_the_end_of_the_reserved_usage() {
    let fx = Fx::new();
    fx.account("cat", "0.12", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let e = ev(
        "c3",
        "cat",
        "*prepaid",
        json!({"*sessionsDebitInterval": "60s"}),
    );
    m.handle_initiate(&e, t(0), &fx.ch()).unwrap();
    assert_eq!(fx.money("cat"), d("0.07"));
    assert_eq!(m.poll_timeout(), Some(t(60)));
    m.handle_timeout(t(59), &fx.ch());
    assert_eq!(fx.money("cat"), d("0.07"));
    m.handle_timeout(t(60), &fx.ch());
    assert_eq!(fx.money("cat"), d("0.02"));
    assert_eq!(m.poll_timeout(), Some(t(120)));
    drain(&mut m);
    m.handle_timeout(t(120), &fx.ch());
    let acts = drain(&mut m);
    assert_eq!(
        disconnects(&acts),
        [(Owner::Api, "INSUFFICIENT_CREDIT".to_owned())]
    );
    assert_eq!(m.poll_timeout(), None);
    assert_eq!(fx.money("cat"), d("0.02"));
    let r = m
        .handle_terminate(
            &ev("c3", "cat", "*prepaid", json!({"Usage": "120s"})),
            t(121),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.1")));
    assert_eq!(fx.money("cat"), d("0.02"));
    let acts = drain(&mut m);
    assert_eq!(
        cdrs(&acts)[0].extra_fields[EXTRA_DISCONNECT_REQUESTED],
        "INSUFFICIENT_CREDIT"
    );
    assert_eq!(m.counters().disconnects, 1);
}

// The config's debit interval of 30 s, 1.00: each 30 s tick reserves 30 s
// more, and each piece is rounded up to its own 60 s increment (0.05 each,
// as a CGRateS debit loop does); the settle gives the excess back: 61 s
// are two started minutes, 0.10.
#[test]
fn debit_interval_from_config_bills_minutes_once() {
    let fx = Fx::new();
    fx.account("dan", "1", 0);
    let cfg = SessionConfig {
        debit_interval: secs(30),
        ..SessionConfig::default()
    };
    let mut m = SessionManager::new(cfg);
    m.handle_initiate(&ev("c4", "dan", "*prepaid", json!({})), t(0), &fx.ch())
        .unwrap();
    let after0 = fx.money("dan");
    m.handle_timeout(t(30), &fx.ch());
    let after30 = fx.money("dan");
    m.handle_timeout(t(60), &fx.ch());
    let after60 = fx.money("dan");
    assert_eq!((after0, after30, after60), (d("0.95"), d("0.9"), d("0.85")));
    assert_eq!(m.poll_timeout(), Some(t(90)));
    let r = m
        .handle_terminate(
            &ev("c4", "dan", "*prepaid", json!({"Usage": "61s"})),
            t(61),
            &fx.ch(),
        )
        .unwrap();
    // 61 s: two started minutes.
    assert_eq!(r.cost, Some(d("0.1")));
    assert_eq!(fx.money("dan"), d("0.9"));
}

fn call(origin: &str, account: &str, rt: &str) -> Arc<CallInfo> {
    let addr: SocketAddr = "10.2.2.2:5060".parse().unwrap();
    Arc::new(CallInfo {
        call_id_bytes: Arc::from(origin.as_bytes()),
        origin_suffix: None,
        capture_point: "hep1".into(),
        src: "10.3.3.3:5060".parse().unwrap(),
        dst: addr,
        setup_time: ts(t(-5)),
        from_user: Some(account.into()),
        from_tag: Some("ft".into()),
        to_user: Some("44201234".into()),
        ruri_user: Some("44201234".into()),
        pai_user: None,
        diversion_user: None,
        charging: sip_fsm::Charging {
            tenant: TENANT.into(),
            category: "call".into(),
            account: account.into(),
            subject: account.into(),
            destination: "44201234".into(),
            request_type: rt.into(),
        },
    })
}

fn ts(t: DateTime<Utc>) -> Timestamp {
    Timestamp::from_secs_nanos(t.timestamp(), t.timestamp_subsec_nanos())
}

fn record(c: &Arc<CallInfo>, answered: bool, end: i64) -> CallRecord {
    CallRecord {
        call: Arc::clone(c),
        answer_time: answered.then(|| ts(t(0))),
        end_time: ts(t(end)),
        duration: if answered {
            secs(end.unsigned_abs())
        } else {
            Duration::ZERO
        },
        end_reason: if answered {
            EndReason::Bye
        } else {
            EndReason::Rejected
        },
        code: if answered { 200 } else { 486 },
        phrase: "".into(),
        reason: None,
        pdd: None,
        ring_time: None,
        ended_by: None,
    }
}

// A passive prepaid call with 0.12: 2 minutes reserved at the answer. At
// 120 s nobody can stop it: a Disconnect for the passive owner (to log),
// counted; the call goes on to 200 s and is billed in full, 4 minutes =
// 0.20, 0.08 below zero; its CDR is flagged.
#[test]
fn passive_call_running_out_is_flagged_and_billed_in_full() {
    let fx = Fx::new();
    fx.account("eve", "0.12", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let c = call("p1@host", "eve", "*prepaid");
    let r = m
        .handle_dialog(
            &DialogEvent::Attempt {
                call: Arc::clone(&c),
            },
            t(-5),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(120)));
    let answer = DialogEvent::Answer {
        call: Arc::clone(&c),
        answer_time: ts(t(0)),
        to_tag: None,
        pdd: None,
        session_expires: None,
    };
    m.handle_dialog(&answer, t(0), &fx.ch()).unwrap();
    assert_eq!(fx.money("eve"), d("0.02"));
    assert_eq!(m.poll_timeout(), Some(t(120)));
    m.handle_timeout(t(120), &fx.ch());
    let acts = drain(&mut m);
    assert_eq!(
        disconnects(&acts),
        [(Owner::Passive, "INSUFFICIENT_CREDIT".to_owned())]
    );
    assert_eq!(m.counters().disconnect_passive, 1);
    let r = m
        .handle_dialog(&DialogEvent::End(record(&c, true, 200)), t(200), &fx.ch())
        .unwrap();
    assert_eq!(r.cost, Some(d("0.2")));
    assert_eq!(fx.money("eve"), d("-0.08"));
    let acts = drain(&mut m);
    let cdr = cdrs(&acts)[0];
    assert_eq!(cdr.cost, Some(d("0.2")));
    assert_eq!(
        cdr.extra_fields[EXTRA_DISCONNECT_REQUESTED],
        "INSUFFICIENT_CREDIT"
    );
    assert_eq!(cdr.cgrid, sessions::cgrid("p1@host", "10.2.2.2"));
    assert_eq!(cdr.extra_fields["EndReason"], "bye");
}

// The same passive call ending twice (two proxies' copies): charged once,
// both CDRs carry the one cost.
#[test]
fn passive_end_seen_twice_is_charged_once() {
    let fx = Fx::new();
    fx.account("eve", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let c = call("p2@host", "eve", "*postpaid");
    let end = DialogEvent::End(record(&c, true, 90));
    m.handle_dialog(&end, t(90), &fx.ch()).unwrap();
    let r = m.handle_dialog(&end, t(91), &fx.ch()).unwrap();
    assert!(r.replayed);
    assert_eq!(r.cost, Some(d("0.1")));
    assert_eq!(fx.money("eve"), d("0.9"));
    let acts = drain(&mut m);
    let costs: Vec<_> = cdrs(&acts).iter().map(|c| c.cost).collect();
    assert_eq!(costs, [Some(d("0.1")), Some(d("0.1"))]);
}

// TTL 30 s, TTL usage 10 s: last update at 20 s with LastUsed 20 s, then
// silence. At 50 s the session ends with 30 s: one minute, 0.05.
#[test]
fn ttl_terminates_a_silent_session() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let cfg = SessionConfig {
        session_ttl: secs(30),
        ttl_usage: Some(secs(10)),
        ..SessionConfig::default()
    };
    let mut m = SessionManager::new(cfg);
    m.handle_initiate(&ev("c5", "ann", "*postpaid", json!({})), t(0), &fx.ch())
        .unwrap();
    assert_eq!(m.poll_timeout(), Some(t(30)));
    m.handle_update(
        &ev("c5", "ann", "*postpaid", json!({"LastUsed": "20s"})),
        t(20),
        &fx.ch(),
    )
    .unwrap();
    assert_eq!(m.poll_timeout(), Some(t(50)));
    m.handle_timeout(t(49), &fx.ch());
    assert_eq!(m.active_count(), 1);
    m.handle_timeout(t(50), &fx.ch());
    assert_eq!(m.active_count(), 0);
    let acts = drain(&mut m);
    let cdr = cdrs(&acts)[0];
    assert_eq!(cdr.usage, secs(30));
    assert_eq!(cdr.cost, Some(d("0.05")));
    assert_eq!(cdr.extra_fields[EXTRA_TTL_EXPIRED], "true");
    assert_eq!(fx.money("ann"), d("0.95"));
    assert_eq!(m.counters().ttl_expired, 1);
}

// Debit interval 60 s, 1.00. The process reserves minute 1 at 0 s and
// minute 2 at 60 s, then dies before the snapshot of minute 2 is stored.
// The new process resumes from the snapshot taken after initiate: at 60 s
// it reserves minute 2 again (found in the account: nothing taken), at
// 120 s minute 3. Terminate at 130 s: 3 minutes, 0.15, paid once.
#[test]
fn restore_in_the_middle_of_a_session_does_not_debit_twice() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let cfg = SessionConfig {
        debit_interval: secs(60),
        ..SessionConfig::default()
    };
    let mut m1 = SessionManager::new(cfg.clone());
    m1.handle_initiate(&ev("c6", "ann", "*prepaid", json!({})), t(0), &fx.ch())
        .unwrap();
    let stored = last_snapshot(&drain(&mut m1));
    m1.handle_timeout(t(60), &fx.ch());
    assert_eq!(fx.money("ann"), d("0.9"));
    drop(m1); // the crash: its last Save never reached the disk

    let json = serde_json::to_string(&stored).unwrap();
    let back: SessionSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stored);
    let mut m2 = SessionManager::new(cfg);
    assert_eq!(m2.restore([back], t(65)), 1);
    assert_eq!(m2.poll_timeout(), Some(t(60)));
    m2.handle_timeout(t(65), &fx.ch());
    assert_eq!(fx.money("ann"), d("0.9"));
    assert_eq!(m2.poll_timeout(), Some(t(120)));
    m2.handle_timeout(t(120), &fx.ch());
    assert_eq!(fx.money("ann"), d("0.85"));
    let r = m2
        .handle_terminate(
            &ev("c6", "ann", "*prepaid", json!({"Usage": "130s"})),
            t(130),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.15")));
    assert_eq!(fx.money("ann"), d("0.85"));
}

// Postpaid, 0.05 and no AllowNegative: 5 minutes cost 0.25, 0.20 below zero
// on the default balance.
#[test]
fn postpaid_goes_negative() {
    let fx = Fx::new();
    fx.account("ben", "0.05", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let r = m
        .handle_initiate(&ev("c7", "ben", "*postpaid", json!({})), t(0), &fx.ch())
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(3 * 3600)));
    assert_eq!(fx.money("ben"), d("0.05"));
    let r = m
        .handle_terminate(
            &ev("c7", "ben", "*postpaid", json!({"Usage": "5m"})),
            t(300),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.25")));
    assert_eq!(fx.money("ben"), d("-0.2"));
    assert!(!fx.acct("ben").allow_negative);
}

// Pseudoprepaid: refused with nothing on the account; with 1.00 it is
// authorized for 20 minutes and debited only at the end.
#[test]
fn pseudoprepaid_refuses_without_credit_and_debits_at_the_end() {
    let fx = Fx::new();
    fx.account("cat", "0", 0);
    fx.account("dan", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let broke = ev("c8", "cat", "*pseudoprepaid", json!({}));
    let e = m.handle_authorize(&broke, t(0), &fx.ch()).unwrap_err();
    assert!(e.to_string().starts_with("INSUFFICIENT_CREDIT"), "{e}");
    assert!(m.handle_initiate(&broke, t(0), &fx.ch()).is_err());
    assert_eq!(m.active_count(), 0);
    let ok = ev("c9", "dan", "*pseudoprepaid", json!({}));
    let r = m.handle_initiate(&ok, t(0), &fx.ch()).unwrap();
    assert_eq!(r.max_usage, Some(secs(1200)));
    assert_eq!(fx.money("dan"), d("1"));
    let r = m
        .handle_terminate(
            &ev("c9", "dan", "*pseudoprepaid", json!({"Usage": "90s"})),
            t(90),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.1")));
    assert_eq!(fx.money("dan"), d("0.9"));
}

// Rated: 120 s priced at 0.10, nothing debited; *none: not priced.
#[test]
fn rated_prices_only_and_none_does_nothing() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let r = m
        .handle_process_cdr(
            &ev("c10", "ann", "*rated", json!({"Usage": "120s"})),
            t(120),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.1")));
    let r = m
        .handle_process_cdr(
            &ev("c11", "ann", "*none", json!({"Usage": "120s"})),
            t(120),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, None);
    assert_eq!(fx.money("ann"), d("1"));
    let acts = drain(&mut m);
    let costs: Vec<_> = cdrs(&acts).iter().map(|c| c.cost).collect();
    assert_eq!(costs, [Some(d("0.1")), None]);
}

// A failed attempt (486) gets its CDR with Cost 0 and no debit, from the
// dialog machine and from the API (no AnswerTime).
#[test]
fn failed_attempt_gets_a_zero_cost_cdr() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let c = call("f1@host", "ann", "*postpaid");
    let r = m
        .handle_dialog(&DialogEvent::Failed(record(&c, false, 3)), t(3), &fx.ch())
        .unwrap();
    assert_eq!(r.cost, Some(Decimal::ZERO));
    let mut unanswered = ev("f2", "ann", "*prepaid", json!({}));
    unanswered.answer_time = None;
    m.handle_process_cdr(&unanswered, t(3), &fx.ch()).unwrap();
    assert_eq!(fx.money("ann"), d("1"));
    let acts = drain(&mut m);
    let c = cdrs(&acts);
    assert_eq!(c.len(), 2);
    assert!(
        c.iter()
            .all(|c| c.cost == Some(Decimal::ZERO) && c.usage.is_zero())
    );
    assert_eq!(c[0].disconnect_cause, "486");
    assert_eq!(m.counters().failed_attempts, 2);
}

// Terminate sent twice, then a ProcessCDR of the same call: 0.10 once.
#[test]
fn duplicate_terminate_and_process_cdr_charge_once() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    m.handle_initiate(&ev("c12", "ann", "*prepaid", json!({})), t(0), &fx.ch())
        .unwrap();
    let term = ev("c12", "ann", "*prepaid", json!({"Usage": "100s"}));
    let r1 = m.handle_terminate(&term, t(100), &fx.ch()).unwrap();
    let r2 = m.handle_terminate(&term, t(101), &fx.ch()).unwrap();
    let r3 = m.handle_process_cdr(&term, t(102), &fx.ch()).unwrap();
    assert_eq!(r1.cost, Some(d("0.1")));
    assert!(!r1.replayed && r2.replayed && r3.replayed);
    assert_eq!((r2.cost, r3.cost), (r1.cost, r1.cost));
    assert_eq!(fx.money("ann"), d("0.9"));
    assert_eq!(m.counters().terminate_unknown, 1);
}

// A second initiate of a live session changes nothing; an update or a
// ForceDisconnect of an unknown one is SESSION_NOT_FOUND.
#[test]
fn duplicate_initiate_and_unknown_sessions() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let e = ev("c13", "ann", "*prepaid", json!({"Usage": "2m"}));
    m.handle_initiate(&e, t(0), &fx.ch()).unwrap();
    let r = m.handle_initiate(&e, t(1), &fx.ch()).unwrap();
    assert!(r.replayed);
    assert_eq!(r.max_usage, Some(secs(120)));
    assert_eq!(fx.money("ann"), d("0.9"));
    let other = ev("nope", "ann", "*prepaid", json!({}));
    assert!(matches!(
        m.handle_update(&other, t(2), &fx.ch()),
        Err(Error::SessionNotFound(_))
    ));
    assert!(m.force_disconnect(&other.key(), "x", t(2)).is_err());
    m.force_disconnect(&e.key(), "ADMIN", t(3)).unwrap();
    let acts = drain(&mut m);
    assert_eq!(disconnects(&acts), [(Owner::Api, "ADMIN".to_owned())]);
    assert_eq!(m.active_sessions().len(), 1);
    assert_eq!(m.poll_timeout(), None);
    let j = m.active_sessions()[0].to_active_json();
    assert_eq!(j["OriginID"], "c13");
    assert_eq!(j["CGRID"], sessions::cgrid("c13", "10.1.1.1"));
    assert_eq!(j["AnswerTime"], "2025-02-03T10:00:00Z");
    assert_eq!(j["Owner"], "*api");
}

#[test]
fn config_reads_kebab_case_durations_and_refuses_unknown_keys() {
    let c: SessionConfig =
        serde_json::from_value(json!({"debit-interval": "10s", "session-ttl": "1m"})).unwrap();
    assert_eq!(c.debit_interval, secs(10));
    assert_eq!(c.session_ttl, secs(60));
    assert_eq!(c.max_call_duration, secs(3 * 3600));
    assert!(serde_json::from_value::<SessionConfig>(json!({"debit-intervall": "10s"})).is_err());
}

// Shared groups: kid's `fam` balance is empty but shares SG_FAM with mum's
// 1.00. Kid's prepaid call is authorized for 20 minutes, reserves them from
// mum, and the settle of 90 s (0.10) gives mum back 0.90.
#[test]
fn prepaid_draws_on_a_shared_group() {
    let mut fx = Fx::new();
    for (id, value) in [("kid", "0"), ("mum", "1")] {
        let mut a = Account::new(TENANT, id);
        a.add_balance(
            BalanceType::Monetary,
            Balance {
                id: "fam".into(),
                value: d(value),
                shared_groups: ["SG_FAM".to_owned()].into(),
                ..Balance::default()
            },
        );
        fx.store.set(a).unwrap();
    }
    fx.groups.insert(
        "SG_FAM".into(),
        SharedGroup {
            id: "SG_FAM".into(),
            strategies: BTreeMap::new(),
            members: ["acme.test:kid".to_owned(), "acme.test:mum".to_owned()].into(),
        },
    );
    let mut m = SessionManager::new(SessionConfig::default());
    let e = ev("s1", "kid", "*prepaid", json!({}));
    assert_eq!(
        m.handle_authorize(&e, t(0), &fx.ch()).unwrap().max_usage,
        Some(secs(1200))
    );
    m.handle_initiate(&e, t(0), &fx.ch()).unwrap();
    assert_eq!(fx.money("mum"), d("0"));
    let r = m
        .handle_terminate(
            &ev("s1", "kid", "*prepaid", json!({"Usage": "90s"})),
            t(90),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.1")));
    assert_eq!(fx.money("mum"), d("0.9"));
    assert_eq!(fx.money("kid"), d("0"));
}

// A passive prepaid call of an account that does not exist: it cannot be
// refused (it goes on), so it is flagged at once; its CDR is still written,
// with the rating error (Cost -1), when it ends.
#[test]
fn passive_call_of_an_unknown_account_still_gets_its_cdr() {
    let fx = Fx::new();
    let mut m = SessionManager::new(SessionConfig::default());
    let c = call("u1@host", "ghost", "*prepaid");
    let answer = DialogEvent::Answer {
        call: Arc::clone(&c),
        answer_time: ts(t(0)),
        to_tag: None,
        pdd: None,
        session_expires: None,
    };
    m.handle_dialog(&answer, t(0), &fx.ch()).unwrap();
    let acts = drain(&mut m);
    assert_eq!(
        disconnects(&acts),
        [(Owner::Passive, "DEBIT_ERROR".to_owned())]
    );
    let e = m
        .handle_dialog(&DialogEvent::End(record(&c, true, 30)), t(30), &fx.ch())
        .unwrap_err();
    assert!(e.to_string().starts_with("ACCOUNT_NOT_FOUND"), "{e}");
    let acts = drain(&mut m);
    let cdr = cdrs(&acts)[0];
    assert_eq!(cdr.cost, Some(Decimal::NEGATIVE_ONE));
    assert!(cdr.extra_fields["RatingError"].starts_with("ACCOUNT_NOT_FOUND"));
    assert_eq!(m.counters().debit_errors, 2);
    assert_eq!(m.active_count(), 0);
}

// No debit loop, max-call-duration 3 min, 2 minutes asked for, 1.00: 0.10
// reserved. No update comes by 120 s: more is reserved, the 1 minute left
// under the cap (0.05), no disconnect. At 180 s nothing more may be
// granted: disconnected for its duration, not for money.
#[test]
fn granted_usage_is_extended_while_money_lasts_up_to_max_call_duration() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let cfg = SessionConfig {
        max_call_duration: secs(180),
        ..SessionConfig::default()
    };
    let mut m = SessionManager::new(cfg);
    let r = m
        .handle_initiate(
            &ev("c14", "ann", "*prepaid", json!({"Usage": "2m"})),
            t(0),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.max_usage, Some(secs(120)));
    assert_eq!(fx.money("ann"), d("0.9"));
    m.handle_timeout(t(120), &fx.ch());
    assert_eq!(fx.money("ann"), d("0.85"));
    assert!(disconnects(&drain(&mut m)).is_empty());
    assert_eq!(m.poll_timeout(), Some(t(180)));
    m.handle_timeout(t(180), &fx.ch());
    assert_eq!(
        disconnects(&drain(&mut m)),
        [(Owner::Api, "MAX_CALL_DURATION".to_owned())]
    );
    let r = m
        .handle_terminate(
            &ev("c14", "ann", "*prepaid", json!({"Usage": "181s"})),
            t(181),
            &fx.ch(),
        )
        .unwrap();
    // 181 s: 4 started minutes.
    assert_eq!(r.cost, Some(d("0.2")));
    assert_eq!(fx.money("ann"), d("0.8"));
}

// ForceDisconnect ends the session at once (CGRateS's forceSTerminate):
// the owner is asked, the session is settled for the usage so far (here
// 30 s since it started; the reservation given back) and its CDR written,
// flagged; the owner's late terminate charges nothing more.
#[test]
fn force_terminate_settles_the_usage_so_far_once() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let e = ev("c14", "ann", "*prepaid", json!({"Usage": "2m"}));
    m.handle_initiate(&e, t(0), &fx.ch()).unwrap();
    drain(&mut m);
    let other = ev("nope", "ann", "*prepaid", json!({}));
    assert!(matches!(
        m.force_terminate(&other.key(), "ADMIN", t(30), &fx.ch()),
        Err(Error::SessionNotFound(_))
    ));
    let r = m
        .force_terminate(&e.key(), "ADMIN", t(30), &fx.ch())
        .unwrap();
    let acts = drain(&mut m);
    assert_eq!(disconnects(&acts), [(Owner::Api, "ADMIN".to_owned())]);
    let c = cdrs(&acts);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].usage, secs(30));
    assert_eq!(c[0].cost, r.cost);
    assert_eq!(c[0].extra_fields[EXTRA_DISCONNECT_REQUESTED], "ADMIN");
    let cost = r.cost.unwrap();
    assert!(cost > Decimal::ZERO);
    assert_eq!(fx.money("ann"), d("1") - cost);
    assert_eq!(m.active_sessions().len(), 0);
    assert_eq!(m.poll_timeout(), None);
    // The owner's terminate, later and longer: replayed, not charged.
    let term = ev("c14", "ann", "*prepaid", json!({"Usage": "100s"}));
    let late = m.handle_terminate(&term, t(100), &fx.ch()).unwrap();
    assert!(late.replayed);
    assert_eq!(late.cost, Some(cost));
    assert_eq!(fx.money("ann"), d("1") - cost);
}

// A passive call split into ChargerS runs (as the server derives them):
// the caller's prepaid `*default` run, `bob`'s postpaid `supplier` run and
// a `*raw` run nobody pays. The answer starts the two charged sessions'
// and the raw one; the end gives three CDRs of one CGRID: 61 s is two
// started minutes, 0.10 each; the raw CDR has Cost -1. The end seen twice
// charges nothing more.
#[test]
fn passive_call_charger_runs_each_charged_once() {
    let fx = Fx::new();
    fx.account("ann", "1", 0);
    fx.account("bob", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let c = call("runs@host", "ann", "*prepaid");
    let answer = DialogEvent::Answer {
        call: Arc::clone(&c),
        answer_time: ts(t(0)),
        to_tag: None,
        pdd: None,
        session_expires: None,
    };
    let runs = |base: SessionEvent| {
        let mut def = base.clone();
        def.run_id = Some("*default".into());
        let mut sup = base.clone();
        sup.run_id = Some("supplier".into());
        "bob".clone_into(&mut sup.account);
        "bob".clone_into(&mut sup.subject);
        "*postpaid".clone_into(&mut sup.request_type);
        sup.extra_fields.insert("Leg".into(), "supplier".into());
        let mut raw = base;
        raw.run_id = Some("*raw".into());
        "*none".clone_into(&mut raw.request_type);
        vec![def, sup, raw]
    };
    let base = m.call_event(&answer);
    assert_eq!(base.answer_time, Some(t(0)));
    m.handle_dialog_runs(&answer, &runs(base), t(0), &fx.ch())
        .unwrap();
    assert_eq!(m.active_count(), 3);
    // The prepaid run reserved the whole MaxUsage (3 h capped by 1.00:
    // 20 minutes), bob's postpaid run nothing yet.
    assert_eq!(fx.money("ann"), d("0"));
    assert_eq!(fx.money("bob"), d("1"));
    // What the server learns later (a resource limit passed) is saved
    // with the session and lands in its CDR.
    let key = sessions::SessionKey {
        run_id: "supplier".into(),
        ..SessionEvent::key_of_call(&c)
    };
    assert!(m.set_extra(&key, "ResourceLimitExceeded", "true"));
    assert!(matches!(drain(&mut m).last(), Some(Action::Save(s)) if s.key == key));
    let end = DialogEvent::End(record(&c, true, 61));
    let base = m.call_event(&end);
    assert_eq!(base.usage, Some(secs(61)));
    let intents = m.end_intents(&end, &runs(base));
    assert_eq!(intents.len(), 3);
    assert!(intents.iter().all(|i| i.key.cgrid == intents[0].key.cgrid));
    for i in intents.clone() {
        m.handle_end_intent(i, t(61), &fx.ch()).unwrap();
    }
    let acts = drain(&mut m);
    let got = cdrs(&acts);
    let view: Vec<(&str, &str, Option<Decimal>)> = got
        .iter()
        .map(|c| (c.run_id.as_str(), c.account.as_str(), c.cost))
        .collect();
    assert_eq!(
        view,
        [
            ("*default", "ann", Some(d("0.1"))),
            ("supplier", "bob", Some(d("0.1"))),
            ("*raw", "ann", Some(d("-1"))),
        ]
    );
    assert_eq!(got[1].extra_fields["Leg"], "supplier");
    assert_eq!(got[1].extra_fields["ResourceLimitExceeded"], "true");
    assert!(!got[0].extra_fields.contains_key("ResourceLimitExceeded"));
    assert_eq!(got[1].request_type, "*postpaid");
    assert_eq!(fx.money("ann"), d("0.9"));
    assert_eq!(fx.money("bob"), d("0.9"));
    assert_eq!(m.active_count(), 0);
    // Seen again (a copy, a restart replaying the saved ends).
    for i in intents {
        m.handle_end_intent(i, t(62), &fx.ch()).unwrap();
    }
    assert_eq!(fx.money("ann"), d("0.9"));
    assert_eq!(fx.money("bob"), d("0.9"));
}

// LastUsed is the usage since the previous report: 60 s, 60 s, then a
// terminate with LastUsed 30 s and no Usage is a call of 150 s, 3 started
// minutes, 0.15.
#[test]
fn last_used_reports_add_up() {
    let fx = Fx::new();
    fx.account("lu", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    m.handle_initiate(&ev("c9", "lu", "*postpaid", json!({})), t(0), &fx.ch())
        .unwrap();
    for at in [60, 120] {
        m.handle_update(
            &ev("c9", "lu", "*postpaid", json!({"LastUsed": "60s"})),
            t(at),
            &fx.ch(),
        )
        .unwrap();
    }
    let r = m
        .handle_terminate(
            &ev("c9", "lu", "*postpaid", json!({"LastUsed": "30s"})),
            t(150),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.15")));
    let acts = drain(&mut m);
    assert_eq!(cdrs(&acts)[0].usage, secs(150));
    assert_eq!(fx.money("lu"), d("0.85"));
}

// A prepaid call that asked for 1000 ns: its reservation runs out at once.
// Each further step is at least a second and covers the time the deadline
// is behind, so the timer fires a bounded number of times (it used to
// re-reserve 1000 ns forever). Terminated with 400 ns: one started minute.
#[test]
fn a_tiny_requested_usage_does_not_spin_the_reservation_timer() {
    let fx = Fx::new();
    fx.account("tiny", "1", 0);
    let mut m = SessionManager::new(SessionConfig::default());
    let r = m
        .handle_initiate(
            &ev("c10", "tiny", "*prepaid", json!({"Usage": "1000"})),
            t(0),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.max_usage, Some(Duration::from_nanos(1000)));
    // Two minutes later (the API's clock): one catch-up step.
    let before = m.counters().reservations;
    m.handle_timeout(t(120), &fx.ch());
    let steps = m.counters().reservations - before;
    assert!(steps <= 2, "{steps} reservations");
    assert!(m.poll_timeout().unwrap() > t(120));
    let r = m
        .handle_terminate(
            &ev("c10", "tiny", "*prepaid", json!({"Usage": "400"})),
            t(121),
            &fx.ch(),
        )
        .unwrap();
    assert_eq!(r.cost, Some(d("0.05")));
    assert_eq!(fx.money("tiny"), d("0.95"));
}
