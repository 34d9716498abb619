use std::path::Path;

use super::*;
use crate::serve::store::Store;

const RESOURCES: &str = "#Tenant,ID,FilterIDs,ActivationInterval,UsageTTL,Limit,AllocationMessage,Blocker,Stored,Weight,ThresholdIDs\n\
cgrates.org,RES_S,*string:~*req.Account:1001,,-1,1,S_OK,false,true,10,\n\
cgrates.org,RES_N,*string:~*req.Account:1002,,-1,1,,false,false,10,*none\n";

fn state(store: &Store, resources: &str) -> State {
    let s = State::new(
        rating::SharedTariffPlan::default(),
        rating::RoundingMode::Exact,
        rating::LoadPolicy::default(),
        None,
        "n".into(),
        store.clone(),
        crate::serve::cdrs::Cdrs::unavailable(),
    );
    load(&s, resources);
    s
}

fn load(s: &State, resources: &str) {
    let files = [(Path::new("Resources.csv"), resources)];
    s.profiles
        .replace(subsystems::Profiles::from_files(&files).unwrap());
}

fn ev(account: &str) -> Event {
    Event::from_cgr_event(&json!({"ID": "e", "Event": {"Account": account}}))
}

fn queued(s: &State) -> u64 {
    s.thresholds.counters()[1].2
}

#[test]
fn hooks_count_persist_and_follow_the_loads() {
    let store = Store::memory();
    let s = state(&store, RESOURCES);
    assert_eq!(authorize(&s, &ev("1001"), "c1", 1.0).unwrap(), "S_OK");
    assert_eq!(allocate(&s, &ev("1001"), "c1", 1.0).unwrap(), "S_OK");
    assert_eq!(
        authorize(&s, &ev("1001"), "c2", 1.0).unwrap_err().message,
        "RESOURCE_UNAUTHORIZED"
    );
    assert_eq!(
        allocate(&s, &ev("1001"), "c2", 1.0).unwrap_err().message,
        "RESOURCE_UNAVAILABLE"
    );
    // A passive call is allocated over the limit, and counted.
    assert!(allocate_passive(&s, &ev("1001"), "c2"));
    assert_eq!(s.resources.over_limit.load(Ordering::Relaxed), 1);
    assert_eq!(usage(&s, "cgrates.org", "RES_S"), Some((2.0, 1.0)));
    // Within the limit it is not.
    assert!(!allocate_passive(&s, &ev("1002"), "n1"));
    assert_eq!(s.resources.over_limit.load(Ordering::Relaxed), 1);
    // RES_S tells every matching threshold; RES_N (*none) tells none.
    assert_eq!(queued(&s), 2);
    release(&s, &ev("1001"), "c1").unwrap();
    assert_eq!(usage(&s, "cgrates.org", "RES_S"), Some((1.0, 1.0)));
    assert_eq!(queued(&s), 3);
    assert_eq!(
        release(&s, &ev("9999"), "c1").unwrap_err().message,
        "NOT_FOUND"
    );

    // A new server on the same store: the Stored resource's usages only.
    let again = state(&store, RESOURCES);
    assert_eq!(usage(&again, "cgrates.org", "RES_S"), Some((1.0, 1.0)));
    assert_eq!(usage(&again, "cgrates.org", "RES_N"), Some((0.0, 1.0)));
    // A load without RES_S forgets it; a load with it back starts empty.
    load(&again, "cgrates.org,RES_N,,,-1,1,,false,false,10,\n");
    assert_eq!(usage(&again, "cgrates.org", "RES_S"), None);
    load(&again, RESOURCES);
    assert_eq!(usage(&again, "cgrates.org", "RES_S"), Some((0.0, 1.0)));
}
