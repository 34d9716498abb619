//! Issue 7: `accurate sniff` finds SIP inside the encapsulations and
//! transports port mirrors carry, in the fixture captures the capture
//! crate writes (`tests/data/frames/encap_*.pcap`, `sip_*.pcap`), and
//! tshark finds the same messages in them.
#![allow(missing_docs, clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{ACCURATE, parse_sniff, root, tshark};

/// (file, SIP messages, transport sniff reports).
const FIXTURES: [(&str, usize, &str); 7] = [
    ("encap_ipip.pcap", 1, "udp"),
    ("encap_gre.pcap", 1, "udp"),
    ("encap_erspan2.pcap", 1, "udp"),
    ("encap_erspan3.pcap", 1, "udp"),
    ("encap_vxlan.pcap", 1, "udp"),
    ("sip_sctp.pcap", 1, "sctp"),
    ("sip_websocket.pcap", 2, "ws"),
];

fn counter(stderr: &str, name: &str) -> u64 {
    let key = format!("sniff: {name}: ");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .unwrap_or_else(|| panic!("no {name} in {stderr}"))
        .parse()
        .unwrap()
}

#[test]
fn sniff_finds_sip_in_every_encapsulation() {
    for (file, messages, transport) in FIXTURES {
        let path = root().join("tests/data/frames").join(file);
        let out = Command::new(ACCURATE)
            .args(["sniff", "--format", "json"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        let lines = parse_sniff(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(lines.len(), messages, "{file}: {err}");
        assert!(
            lines.iter().all(|l| l.transport == transport),
            "{file}: {lines:?}"
        );
        assert_eq!(lines[0].src.split(':').next(), Some("10.0.0.1"), "{file}");
        assert_eq!(counter(&err, "dropped"), 0, "{file}: {err}");
        // The same messages for a dissector that knows nothing of ours.
        let seen = tshark(&[
            "-r",
            path.to_str().unwrap(),
            "-Y",
            "sip",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ]);
        assert_eq!(seen.lines().count(), messages, "tshark on {file}");
    }
}
