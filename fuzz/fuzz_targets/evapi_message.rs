//! Any bytes Kamailio could send are read as an evapi message without
//! panicking: the lenient event reader, the dialog list reply reader, and
//! the agent core turning them into operations and replies.
#![no_main]

use agents::evapi::netstring::encode;
use agents::evapi::{AgentConfig, EvapiAgent, Operation, parse_event, reply};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let _ = parse_event(data);
    let _ = reply::parse_dlg_list(data, "h");
    let mut a = EvapiAgent::new(AgentConfig::default());
    let now = DateTime::from_timestamp(1_714_564_800, 0).unwrap_or_default();
    if let Ok(ops) = a.handle_bytes(&encode(data), now) {
        for op in ops.into_iter().flatten() {
            match op {
                Operation::Authorize { reply_to, args }
                | Operation::ProcessMessage { reply_to, args }
                | Operation::ProcessCdr { reply_to, args } => a.reply(&reply_to, Ok(&args)),
                Operation::Initiate { origin_id, .. } => {
                    a.disconnect(&origin_id, "X");
                }
                Operation::Terminate { .. } | Operation::DlgList { .. } => {}
            }
        }
    }
    while let Some(out) = a.poll_transmit() {
        let payload = &out[out.iter().position(|b| *b == b':').unwrap_or(0) + 1..out.len() - 1];
        assert!(
            serde_json::from_slice::<Value>(payload).is_ok(),
            "agent sent invalid JSON"
        );
    }
});
