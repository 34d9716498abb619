//! What `accurate serve` reads from callers and from its own store never
//! panics on any JSON: a CGREvent argument (`SessionEvent::from_cgr_event`),
//! a CDR filter (`CdrFilter`), a CDR (`Cdr`, which must round-trip when it
//! reads), and a saved dialog (`DialogSnapshot`, restored into a dialog
//! machine, which must refuse or accept it without panicking).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sessions::{Cdr, CdrFilter, Owner, SessionEvent};
use sip_fsm::{Config, DialogMachine, DialogSnapshot};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Value::Object(m) = &v {
        let _ = SessionEvent::from_cgr_event(m, Owner::Api);
    }
    let _ = serde_json::from_value::<CdrFilter>(v.clone());
    if let Ok(cdr) = serde_json::from_value::<Cdr>(v.clone()) {
        let text = serde_json::to_string(&cdr).expect("a CDR serialises");
        let back: Cdr = serde_json::from_str(&text).expect("a CDR reads back");
        assert_eq!(back, cdr);
    }
    if let Ok(snap) = serde_json::from_value::<DialogSnapshot>(v)
        && let Ok(mut m) = DialogMachine::new(Config::default())
    {
        let _ = m.restore(&snap);
        let _ = m.snapshots();
    }
});
