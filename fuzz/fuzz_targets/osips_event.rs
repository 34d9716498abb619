//! Any bytes OpenSIPS could send are read as an event_datagram event
//! without panicking; the agent core turns them into operations and its
//! MI commands stay well framed.
#![no_main]

use agents::osips::{AgentConfig, Operation, OsipsAgent, datagram};
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = datagram::parse(data);
    let mut a = OsipsAgent::new(AgentConfig::default());
    let now = DateTime::from_timestamp(1_430_579_800, 0).unwrap_or_default();
    // the same datagram twice: a start then its repeat (or an end)
    for _ in 0..2 {
        if let Ok(Some(Operation::Initiate { origin_id, .. })) = a.handle_datagram(data, now) {
            assert!(a.disconnect(&origin_id), "a started call can be ended");
        }
    }
    while let Some(cmd) = a.poll_transmit() {
        let text = String::from_utf8(cmd).expect("MI command not UTF-8");
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 5, "{text:?}");
        assert_eq!(lines[0], ":dlg_end_dlg:");
        assert!(
            lines[1..3]
                .iter()
                .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
        );
    }
});
