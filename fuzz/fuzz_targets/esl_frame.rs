//! Any bytes FreeSWITCH could send are read without panicking: the frame
//! decoder (a stream fed in two pieces finds the same frames as one fed
//! it whole; a frame never uses more bytes than it was given), the plain
//! and JSON event readers, and the agent core after a login.
#![no_main]

use agents::esl::frame::{Decoded, Decoder, decode};
use agents::esl::{AgentConfig, EslAgent, Operation, event};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MAX: usize = 1 << 16;

fn frames(d: &mut Decoder) -> Vec<agents::esl::Frame> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = d.next_frame() {
        out.push(f);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Decoded::Frame { consumed, .. }) = decode(data, MAX) {
        assert!(consumed <= data.len());
    }
    let mut whole = Decoder::new(MAX);
    whole.push(data);
    let a = frames(&mut whole);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut split = Decoder::new(MAX);
    split.push(&data[..cut]);
    let mut b = frames(&mut split);
    split.push(&data[cut..]);
    b.extend(frames(&mut split));
    assert_eq!(a, b);
    let _ = event::parse_plain(data);
    let _ = event::parse_json(data);

    let mut agent = EslAgent::new(AgentConfig::default());
    let login = b"Content-Type: auth/request\n\nContent-Type: command/reply\nReply-Text: +OK accepted\n\nContent-Type: command/reply\nReply-Text: +OK\n\n";
    assert!(agent.handle_bytes(login).is_ok());
    if let Ok(ops) = agent.handle_bytes(data) {
        for op in ops.into_iter().flatten() {
            match op {
                Operation::Authorize {
                    uuid,
                    dest_nr,
                    args,
                } => {
                    agent.authorized(&uuid, &dest_nr, true, Ok(&args));
                }
                Operation::Initiate { uuid, prepaid, .. } => {
                    agent.initiated(&uuid, prepaid, Ok(&Value::Null));
                    agent.disconnect(&uuid, "X");
                }
                Operation::Terminate { .. } | Operation::Channels { .. } => {}
            }
        }
    }
    while agent.poll_transmit().is_some() {}
});
