use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::{Event, FilterCtx, FilterSet};

const CSV: &str = "#Tenant,ID,FilterIDs,ActivationInterval,MaxHits,MinHits,MinSleep,Blocker,Weight,ActionIDs,Async\n\
cgrates.org,THD_MIN,*string:~*req.Account:1001,,-1,3,,false,10,ACT_A,false\n\
cgrates.org,THD_SLEEP,*string:~*req.Account:1002,,-1,1,10s,false,10,ACT_B,true\n\
cgrates.org,THD_MAX,*string:~*req.Account:1003,,2,1,0,false,10,ACT_C,false\n\
cgrates.org,THD_HEAVY,*prefix:~*req.Destination:49,,-1,1,,true,30,ACT_H,false\n\
cgrates.org,THD_LIGHT,*prefix:~*req.Destination:49,,-1,1,,false,20,ACT_L,false\n\
cgrates.org,THD_NONE,*string:~*req.Account:1004,,-1,1,,false,0,*none,false\n\
cgrates.org,THD_MIN,,,,,,,,ACT_A2,\n";

fn profiles() -> ThresholdProfiles {
    let path = Path::new("Thresholds.csv");
    let recs = rating::csv::parse(path, CSV.as_bytes()).unwrap();
    ThresholdProfiles::load(&recs, path).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ev(fields: serde_json::Value) -> Event {
    Event::from_cgr_event(&json!({"Tenant": "cgrates.org", "ID": "e", "Event": fields}))
}

fn secs(n: i64) -> DateTime<Utc> {
    t("2024-01-01T00:00:00Z") + chrono::Duration::seconds(n)
}

#[test]
fn loads_columns_and_merges_lines() {
    let p = profiles();
    assert_eq!(p.len(), 6);
    let m = p.get("cgrates.org", "THD_MIN").unwrap();
    assert_eq!((m.max_hits, m.min_hits), (-1, 3));
    assert_eq!(m.action_ids, ["ACT_A", "ACT_A2"]);
    let s = p.get("cgrates.org", "THD_SLEEP").unwrap();
    assert_eq!(s.min_sleep, Duration::from_secs(10));
    assert!(s.async_exec);
    assert!(
        p.get("cgrates.org", "THD_NONE")
            .unwrap()
            .action_ids
            .is_empty()
    );
    let path = Path::new("Thresholds.csv");
    let recs = rating::csv::parse(path, b"cgrates.org,T,,,x,1,,false,0,A,false\n").unwrap();
    let e = ThresholdProfiles::load(&recs, path)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Thresholds.csv:1: column 5:"), "{e}");
    let recs = rating::csv::parse(path, b"cgrates.org,T,,,1,1,soon,false,0,A,false\n").unwrap();
    let e = ThresholdProfiles::load(&recs, path)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("Thresholds.csv:1: column 7:"), "{e}");
}

#[test]
fn fires_from_min_hits_on_the_account() {
    let p = profiles();
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: secs(0),
    };
    let mut eng = ThresholdEngine::default();
    let e = ev(json!({"Account": "1001"}));
    for n in 1..=2 {
        let out = eng.process(&p, &ctx, &e, None, secs(n)).unwrap();
        assert_eq!(out.hit, ["THD_MIN"]);
        assert!(out.fired.is_empty(), "hit {n}");
    }
    let out = eng.process(&p, &ctx, &e, None, secs(3)).unwrap();
    assert_eq!(out.fired.len(), 1);
    assert_eq!(out.fired[0].action_ids, ["ACT_A", "ACT_A2"]);
    assert_eq!(out.fired[0].account.as_deref(), Some("1001"));
    // Past MinHits, every later hit fires (no MinSleep).
    let out = eng.process(&p, &ctx, &e, None, secs(4)).unwrap();
    assert_eq!(out.fired.len(), 1);
    let th = eng.get(&p, "cgrates.org", "THD_MIN").unwrap();
    assert_eq!(th.hits, 4);
    assert_eq!(th.to_json()["Hits"], json!(4));
    // No match: NOT_FOUND; *accountID in the options names the account.
    assert!(matches!(
        eng.process(&p, &ctx, &ev(json!({"Account": "9"})), None, secs(4)),
        Err(crate::Error::NotFound)
    ));
    let mut e2 = e.clone();
    e2.opts.insert("*accountID".into(), json!("2002"));
    let out = eng.process(&p, &ctx, &e2, None, secs(5)).unwrap();
    assert_eq!(out.fired[0].account.as_deref(), Some("2002"));
    // An AccountUpdate event without Account: its ID.
    let mut au = ev(json!({"EventType": "AccountUpdate", "ID": "3003"}));
    au.opts.insert("*eventType".into(), json!("AccountUpdate"));
    assert_eq!(super::event_account(&au).as_deref(), Some("3003"));
}

#[test]
fn min_sleep_holds_the_actions_but_counts() {
    let p = profiles();
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: secs(0),
    };
    let mut eng = ThresholdEngine::default();
    let e = ev(json!({"Account": "1002"}));
    let fired = |eng: &mut ThresholdEngine, at| eng.process(&p, &ctx, &e, None, at).unwrap().fired;
    let f = fired(&mut eng, secs(0));
    assert_eq!(f.len(), 1);
    assert!(f[0].async_exec);
    assert!(fired(&mut eng, secs(5)).is_empty());
    // Exactly at the end of the sleep it still sleeps; just after, fires.
    assert!(fired(&mut eng, secs(10)).is_empty());
    assert_eq!(fired(&mut eng, secs(11)).len(), 1);
    assert!(fired(&mut eng, secs(12)).is_empty());
    let th = eng.get(&p, "cgrates.org", "THD_SLEEP").unwrap();
    assert_eq!(th.hits, 5);
    assert_eq!(th.snooze, Some(secs(21)));
    // A reset wakes it and zeroes the hits.
    assert!(eng.reset(&p, "cgrates.org", "THD_SLEEP"));
    assert_eq!(fired(&mut eng, secs(13)).len(), 1);
    assert_eq!(eng.get(&p, "cgrates.org", "THD_SLEEP").unwrap().hits, 1);
}

#[test]
fn max_hits_stops_the_threshold() {
    let p = profiles();
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: secs(0),
    };
    let mut eng = ThresholdEngine::default();
    let e = ev(json!({"Account": "1003"}));
    for n in 0..2 {
        let out = eng.process(&p, &ctx, &e, None, secs(n)).unwrap();
        assert_eq!((out.hit.len(), out.fired.len()), (1, 1));
    }
    // Matched but no longer counting: an empty reply, no actions.
    let out = eng.process(&p, &ctx, &e, None, secs(3)).unwrap();
    assert!(out.hit.is_empty() && out.fired.is_empty());
    assert_eq!(eng.get(&p, "cgrates.org", "THD_MAX").unwrap().hits, 2);
    // Saved and restored as it was.
    let mut back = ThresholdEngine::default();
    back.restore(eng.snapshot());
    assert!(
        back.process(&p, &ctx, &e, None, secs(4))
            .unwrap()
            .hit
            .is_empty()
    );
    // A load without the profile forgets it.
    back.retain_profiles(&ThresholdProfiles::default());
    assert!(back.snapshot().is_empty());
}

#[test]
fn weights_blockers_and_ids() {
    let p = profiles();
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: secs(0),
    };
    let mut eng = ThresholdEngine::default();
    let e = ev(json!({"Destination": "4930", "Account": "1004"}));
    // THD_HEAVY (30) blocks THD_LIGHT (20) and THD_NONE (0).
    let out = eng.process(&p, &ctx, &e, None, secs(0)).unwrap();
    assert_eq!(out.hit, ["THD_HEAVY"]);
    // Asked by ID: only those (filters still apply).
    let ids = vec!["THD_LIGHT".to_owned(), "THD_NONE".to_owned()];
    let out = eng.process(&p, &ctx, &e, Some(&ids), secs(0)).unwrap();
    assert_eq!(out.hit, ["THD_LIGHT", "THD_NONE"]);
    // THD_NONE counts but has no actions to fire.
    assert_eq!(out.fired.len(), 1);
    assert_eq!(out.fired[0].threshold_id, "THD_LIGHT");
    assert_eq!(eng.ids(&p, "cgrates.org").len(), 6);
    assert!(eng.ids(&p, "other.org").is_empty());
    assert!(eng.get(&p, "cgrates.org", "NOPE").is_none());
}
