//! `accurate replay` with one packet stamped in 2106 or 1970 among real
//! traffic gives the same CDRs as without it (issue 7): the dialog clock
//! never leaps on one packet.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{ACCURATE, Scratch, root};

/// The records of a classic little-endian pcap: (header, data) each.
fn records(pcap: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(pcap[at..at + 16 + len].to_vec());
        at += 16 + len;
    }
    (pcap[..24].to_vec(), out)
}

fn replay(path: &Path) -> (String, String) {
    let out = Command::new(ACCURATE)
        .args(["replay", "--format", "json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn one_packet_stamped_2106_or_1970_changes_no_cdr() {
    let s = Scratch::new("replay-clock");
    let original = root().join("captures").join("answered-caller-bye.pcap");
    let (want, _) = replay(&original);
    assert_eq!(want.lines().count(), 2);
    let (header, recs) = records(&std::fs::read(&original).unwrap());
    // 0xffffffff seconds comes back from libpcap as -1 (1969): a jump
    // into the past; 0x7fffffff is 2038.
    for (secs, counter) in [
        (0x7fff_ffff_u32, "dialog.clock_jump_future"),
        (0xffff_ffff_u32, "dialog.clock_jump_past"),
        (1, "dialog.clock_jump_past"),
    ] {
        // A copy of a packet from the middle of the calls, stamped wrong,
        // inserted right after it.
        let mid = recs.len() / 2;
        let mut wild = recs[mid].clone();
        wild[..4].copy_from_slice(&secs.to_le_bytes());
        let mut file = header.clone();
        for (i, r) in recs.iter().enumerate() {
            file.extend_from_slice(r);
            if i == mid {
                file.extend_from_slice(&wild);
            }
        }
        let path = s.file("wild.pcap");
        std::fs::write(&path, &file).unwrap();
        let (got, err) = replay(&path);
        assert_eq!(got, want, "{counter}");
        assert!(err.contains(&format!("replay: {counter}: 1\n")), "{err}");
    }
}
