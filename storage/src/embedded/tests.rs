#![allow(clippy::unwrap_used)]

use super::*;

/// The race that `remove_during_updates_does_not_resurrect`
/// (tests/suite.rs) hits only by chance, made certain: an update that
/// looked the account up before `remove` took it out must not journal
/// it again.
#[test]
fn update_of_a_removed_slot_does_not_resurrect_the_account() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("accurate-resurrect-{}-{nanos}", std::process::id()));
    let store = EmbeddedAccounts::open(&d).unwrap();
    store.set(Account::new("t", "a")).unwrap();
    let slot = store.slot("t", "a").unwrap();
    assert!(store.remove("t", "a").unwrap());
    let err = store
        .update_slot(&slot, "t", "a", &mut |a| {
            a.disabled = true;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(err.reason(), "ACCOUNT_NOT_FOUND");
    drop(store);
    let store = EmbeddedAccounts::open(&d).unwrap();
    assert_eq!(store.get("t", "a").unwrap(), None);
    drop(store);
    let _ = fs::remove_dir_all(&d);
}
