//! Any message Asterisk could send on its events WebSocket is read
//! without panicking: the ARI event reader and the agent core turning it
//! into operations, then answering them with the message itself as the
//! SessionSv1 reply (and as an error).
#![no_main]

use agents::ari::{AriAgent, AriConfig, Operation};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let now = DateTime::from_timestamp(1_714_564_800, 0).unwrap_or_default();
    let mut a = AriAgent::new(AriConfig::default());
    let reply: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
    // twice: the second message finds the call of the first
    for _ in 0..2 {
        if let Ok(Some(op)) = a.handle_message(data, now) {
            let ch = op.channel().to_string();
            match op {
                Operation::Authorize { .. } => {
                    let _ = a.authorized(&ch, Ok(&reply));
                    let _ = a.disconnect(&ch);
                }
                Operation::Initiate { .. } => {
                    let _ = a.initiated(&ch, Err("x"));
                }
                Operation::Terminate { .. } => {}
            }
        }
    }
});
