use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::{Event, FilterCtx, FilterSet};

const CSV: &str = "#Tenant,ID,FilterIDs,ActivationInterval,UsageTTL,Limit,AllocationMessage,Blocker,Stored,Weight,ThresholdIDs\n\
cgrates.org,RES_ACC,*string:~*req.Account:1001,,-1,2,ACC_OK,false,true,20,\n\
cgrates.org,RES_TTL,*string:~*req.Account:1002,,10s,1,,false,false,10,THD_1;THD_2\n\
cgrates.org,RES_LOW,*prefix:~*req.Destination:49,,-1,5,LOW,false,false,5,*none\n\
cgrates.org,RES_HIGH,*prefix:~*req.Destination:49,,-1,1,HIGH,false,false,30,\n\
cgrates.org,RES_BLOCK,*prefix:~*req.Destination:33,,-1,0,,true,false,30,\n\
cgrates.org,RES_UNDER,*prefix:~*req.Destination:33,,-1,9,UNDER,false,false,10,\n\
cgrates.org,RES_ZERO,*string:~*req.Account:1003,,0,1,,false,false,0,\n\
cgrates.org,RES_ACC,,,,,,,,,THD_X\n";

fn profiles() -> ResourceProfiles {
    let path = Path::new("Resources.csv");
    let recs = rating::csv::parse(path, CSV.as_bytes()).unwrap();
    ResourceProfiles::load(&recs, path).unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn ev(fields: serde_json::Value) -> Event {
    Event::from_cgr_event(&json!({"Tenant": "cgrates.org", "ID": "e", "Event": fields}))
}

fn req(id: &str, units: f64) -> UsageRequest {
    UsageRequest {
        usage_id: id.into(),
        units,
        ttl: None,
    }
}

#[test]
fn loads_columns_and_merges_lines() {
    let p = profiles();
    assert_eq!(p.len(), 7);
    let acc = p.get("cgrates.org", "RES_ACC").unwrap();
    assert_eq!(acc.limit, 2.0);
    assert!(acc.stored);
    assert_eq!(acc.usage_ttl, UsageTtl::Never);
    assert_eq!(acc.threshold_ids, vec!["THD_X".to_owned()]);
    assert_eq!(acc.message(), "ACC_OK");
    let ttl = p.get("cgrates.org", "RES_TTL").unwrap();
    assert_eq!(ttl.usage_ttl, UsageTtl::After(Duration::from_secs(10)));
    assert_eq!(ttl.threshold_ids.len(), 2);
    assert_eq!(ttl.message(), "RES_TTL");
    assert_eq!(
        p.get("cgrates.org", "RES_ZERO").unwrap().usage_ttl,
        UsageTtl::NotRecorded
    );
}

#[test]
fn bad_lines_name_file_line_and_column() {
    let path = Path::new("Resources.csv");
    for (text, col) in [
        ("cgrates.org,R,,,abc,1,,false,false,0,\n", 5),
        ("cgrates.org,R,,,-1,lots,,false,false,0,\n", 6),
        ("cgrates.org,R,,,-1,1,,maybe,false,0,\n", 8),
        ("cgrates.org,R,,yesterday,-1,1,,false,false,0,\n", 4),
    ] {
        let recs = rating::csv::parse(path, text.as_bytes()).unwrap();
        let e = ResourceProfiles::load(&recs, path).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("Resources.csv:1: column {col}:")),
            "{e}"
        );
    }
    let recs = rating::csv::parse(path, b",R,,,,,,,,,\n").unwrap();
    assert!(ResourceProfiles::load(&recs, path).is_err());
}

#[test]
fn limit_refuses_the_third_and_release_frees() {
    let p = profiles();
    let fs = FilterSet::default();
    let now = t("2024-01-01T00:00:00Z");
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now,
    };
    let mut eng = ResourceEngine::default();
    let e = ev(json!({"Account": "1001"}));
    assert_eq!(
        eng.authorize(&p, &ctx, &e, &req("c1", 1.0), now).unwrap(),
        "ACC_OK"
    );
    eng.allocate(&p, &ctx, &e, &req("c1", 1.0), now, false)
        .unwrap();
    eng.allocate(&p, &ctx, &e, &req("c2", 1.0), now, false)
        .unwrap();
    assert_eq!(
        eng.authorize(&p, &ctx, &e, &req("c3", 1.0), now),
        Err(ResourceError::Unauthorized)
    );
    assert_eq!(
        eng.allocate(&p, &ctx, &e, &req("c3", 1.0), now, false),
        Err(ResourceError::Unavailable)
    );
    // Re-allocating a usage it holds replaces it rather than adding.
    eng.allocate(&p, &ctx, &e, &req("c2", 1.0), now, false)
        .unwrap();
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_ACC", now),
        Some((2.0, 2.0))
    );
    eng.release(&p, &ctx, &e, &req("c1", 1.0), now).unwrap();
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_ACC", now),
        Some((1.0, 2.0))
    );
    eng.allocate(&p, &ctx, &e, &req("c3", 1.0), now, false)
        .unwrap();
    // Never expiring: still there a year later.
    let later = t("2025-01-01T00:00:00Z");
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_ACC", later),
        Some((2.0, 2.0))
    );
    // A forced (passive) allocation goes over and says so.
    let a = eng
        .allocate(&p, &ctx, &e, &req("c4", 1.0), now, true)
        .unwrap();
    assert!(a.over_limit);
    assert_eq!(a.message, "ACC_OK");
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_ACC", now),
        Some((3.0, 2.0))
    );
    // No match.
    let nobody = ev(json!({"Account": "9999"}));
    assert_eq!(
        eng.authorize(&p, &ctx, &nobody, &req("x", 1.0), now),
        Err(ResourceError::NotFound)
    );
}

#[test]
fn usages_expire_after_their_ttl() {
    let p = profiles();
    let fs = FilterSet::default();
    let now = t("2024-01-01T00:00:00Z");
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now,
    };
    let mut eng = ResourceEngine::default();
    let e = ev(json!({"Account": "1002"}));
    eng.allocate(&p, &ctx, &e, &req("c1", 1.0), now, false)
        .unwrap();
    let r = eng.resource(&p, "cgrates.org", "RES_TTL", now).unwrap();
    assert_eq!(r.ttl_idx, vec!["c1".to_owned()]);
    assert_eq!(
        r.to_json()["Usages"]["c1"]["ExpiryTime"],
        json!("2024-01-01T00:00:10+00:00")
    );
    let at9 = t("2024-01-01T00:00:09Z");
    assert_eq!(
        eng.allocate(&p, &ctx, &e, &req("c2", 1.0), at9, false),
        Err(ResourceError::Unavailable)
    );
    // Expired at exactly its expiry time.
    let at10 = t("2024-01-01T00:00:10Z");
    eng.allocate(&p, &ctx, &e, &req("c2", 1.0), at10, false)
        .unwrap();
    let r = eng.resource(&p, "cgrates.org", "RES_TTL", at10).unwrap();
    assert_eq!(r.usages.keys().collect::<Vec<_>>(), vec!["c2"]);
    assert_eq!(r.ttl_idx, vec!["c2".to_owned()]);
    // Releasing what an expiring resource does not hold is an error.
    assert!(matches!(
        eng.release(&p, &ctx, &e, &req("c1", 1.0), at10),
        Err(ResourceError::UsageNotFound(_))
    ));
    // A request's TTL replaces the profile's.
    let long = UsageRequest {
        ttl: Some(UsageTtl::After(Duration::from_secs(3600))),
        ..req("c3", 1.0)
    };
    let at30 = t("2024-01-01T00:00:30Z");
    eng.allocate(&p, &ctx, &e, &long, at30, false).unwrap();
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_TTL", t("2024-01-01T00:59:00Z")),
        Some((1.0, 1.0))
    );
    // UsageTTL 0: granted, nothing recorded (CGRateS).
    let z = ev(json!({"Account": "1003"}));
    for id in ["a", "b"] {
        eng.allocate(&p, &ctx, &z, &req(id, 1.0), now, false)
            .unwrap();
    }
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_ZERO", now),
        Some((0.0, 1.0))
    );
}

#[test]
fn weights_pick_the_message_and_blockers_cut() {
    let p = profiles();
    let fs = FilterSet::default();
    let now = t("2024-01-01T00:00:00Z");
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now,
    };
    let mut eng = ResourceEngine::default();
    let de = ev(json!({"Destination": "4930"}));
    let ids =
        |v: &[std::sync::Arc<ResourceProfile>]| v.iter().map(|p| p.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&eng.matching(&p, &ctx, &de, now).unwrap()),
        ["RES_HIGH", "RES_LOW"]
    );
    // The heavier one has room first; then the lighter one answers.
    let a = eng
        .allocate(&p, &ctx, &de, &req("c1", 1.0), now, false)
        .unwrap();
    assert_eq!(a.message, "HIGH");
    let a = eng
        .allocate(&p, &ctx, &de, &req("c2", 1.0), now, false)
        .unwrap();
    assert_eq!(a.message, "LOW");
    // Recorded in both, even over the heavier one's limit (CGRateS).
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_HIGH", now),
        Some((2.0, 1.0))
    );
    assert_eq!(
        eng.usage(&p, "cgrates.org", "RES_LOW", now),
        Some((2.0, 5.0))
    );
    // The blocker (limit 0) stops RES_UNDER from being considered.
    let fr = ev(json!({"Destination": "331"}));
    assert_eq!(
        ids(&eng.matching(&p, &ctx, &fr, now).unwrap()),
        ["RES_BLOCK"]
    );
    assert_eq!(
        eng.authorize(&p, &ctx, &fr, &req("c1", 1.0), now),
        Err(ResourceError::Unauthorized)
    );
}

#[test]
fn activation_and_store_and_profile_changes() {
    let mut p = profiles();
    let fs = FilterSet::default();
    let now = t("2024-01-01T00:00:00Z");
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now,
    };
    let mut eng = ResourceEngine::default();
    let e = ev(json!({"Account": "1001", "Destination": "4930"}));
    eng.allocate(&p, &ctx, &e, &req("c1", 1.0), now, false)
        .unwrap();
    // Only RES_ACC is Stored.
    let saved = eng.stored(&p);
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].id, "RES_ACC");
    let mut back = ResourceEngine::default();
    back.restore(saved);
    assert_eq!(
        back.usage(&p, "cgrates.org", "RES_ACC", now),
        Some((1.0, 2.0))
    );
    // A profile not yet active for the event's time does not match.
    let mut late = (**p.get("cgrates.org", "RES_ACC").unwrap()).clone();
    late.activation = crate::ActivationInterval::parse("2030-01-01T00:00:00Z").unwrap();
    p.insert(late);
    let mut timed = e.clone();
    timed.time = Some(now);
    let m = eng.matching(&p, &ctx, &timed, now).unwrap();
    assert!(m.iter().all(|p| p.id != "RES_ACC"));
    // A load without the profile forgets its usages.
    let mut fewer = ResourceProfiles::default();
    fewer.insert((**p.get("cgrates.org", "RES_LOW").unwrap()).clone());
    eng.retain_profiles(&fewer);
    assert!(eng.stored(&p).is_empty());
    assert_eq!(
        eng.usage(&fewer, "cgrates.org", "RES_LOW", now),
        Some((1.0, 5.0))
    );
    assert_eq!(eng.usage(&fewer, "cgrates.org", "RES_ACC", now), None);
}
