//! Differential tests: the single-pass scanner and the lazy name-addr
//! path give exactly what the previous scanner
//! (`tests/reference/scan.rs`) gave, on the corpus, on handmade edge cases
//! and on generated input.
#![allow(clippy::unwrap_used)]

/// The test oracles.
mod reference {
    pub mod scan;
}

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use sip_fsm::scan::fuzzing::{raw_from_to, tag_of};
use sip_fsm::scan::{NameAddr, Uri, scan};

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/sip");
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "sip") {
                out.push((f.clone(), std::fs::read(&f).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The new scanner, the raw path and the tag shortcut all agree with the
/// reference on `input`.
fn agree(input: &[u8]) {
    let new = scan(input);
    let old = reference::scan::scan(input);
    assert_eq!(new, old, "input {:?}", String::from_utf8_lossy(input));
    if let Some((from, to)) = raw_from_to(input) {
        assert_eq!(tag_of(from), NameAddr::parse(from).tag());
        assert_eq!(tag_of(to), NameAddr::parse(to).tag());
    }
}

#[test]
fn corpus_scans_as_before() {
    let all = corpus();
    assert!(all.len() > 50, "corpus not found");
    for (_, bytes) in &all {
        agree(bytes);
    }
}

#[test]
fn corpus_mutations_scan_as_before() {
    // Every single-byte deletion and a set of single-byte replacements of
    // every corpus message: most are malformed in some way.
    let subst = b":;<>\"@?,= \t\r\nxX[]\\";
    for (_, bytes) in corpus().iter().take(20) {
        for i in 0..bytes.len().min(700) {
            let mut m = bytes.clone();
            m.remove(i);
            agree(&m);
            for &c in subst {
                let mut m = bytes.clone();
                m[i] = c;
                agree(&m);
            }
        }
    }
}

#[test]
fn edge_cases_scan_as_before() {
    let base = "INVITE sip:bob@b SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\
From: <sip:a@a>;tag=1\r\nTo: <sip:b@b>\r\n";
    for extra in [
        "",
        " Via: x\r\n",
        "Via : SIP/2.0/UDP h;branch=z\r\n",
        "Via\t:SIP/2.0/UDP h;BRANCH=\"z\",x;branch=y\r\n",
        "Bad Name: x\r\n",
        ": empty\r\n",
        "NoColon\r\n",
        "X-\u{e9}: x\r\n",
        "Contact: \"unterminated <sip:x@y>\r\n",
        "Contact: sip:c@d;expires=3, <sip:e@f>\r\n",
        "P-Asserted-Identity: tel:+123;cpc=x\r\n",
        "Diversion: <sips:[2001:db8::1]:5061;transport=tls>;reason=x\r\n",
        "Reason: SIP;cause=200, Q.850;cause=16;text=\"Normal\"\r\n",
        "Session-Expires: 90;refresher=UAS\r\n",
        "x: 90\r\n",
        "Content-Length: 99999999999\r\n",
        "l: 2\r\n",
        "Max-Forwards: -1\r\n",
        "Subject: folded\r\n  more\r\n\tand more\r\n",
    ] {
        for end in ["\r\n", "\n", "", "\r\nbody", "\n\nbody"] {
            agree(format!("{base}{extra}{end}").as_bytes());
            agree(
                format!("\r\n\r\n{base}{extra}{end}")
                    .replace("\r\n", "\n")
                    .as_bytes(),
            );
        }
    }
    for start in [
        "SIP/2.0 200 OK",
        "SIP/2.0 99 Low",
        "sip/2.0 486",
        "SIP/3.0 200 OK",
        "INVITE x SIP/2.0",
        "INVITE :x SIP/2.0",
        "INVITE 1sip:x SIP/2.0",
        "INVITE s+i.p-:x SIP/2.0",
        "INVITE sip:x SIP/2.1",
        "INV ITE sip:x SIP/2.0",
        "",
    ] {
        agree(format!("{start}\r\ni: a\r\nCSeq: 2 BYE\r\nf: a\r\nt: b\r\n\r\n").as_bytes());
    }
}

/// Characters that matter to the scanner and the URI/name-addr parsers.
fn interesting() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b":;<>\"@?,= \t\r\n[]\\aAsSiIpPtTeElL0123456789-.+_";
    prop::collection::vec(prop::sample::select(alphabet), 0..60)
}

proptest! {
    #[test]
    fn uri_parses_as_before(s in interesting()) {
        prop_assert_eq!(Uri::parse(&s), reference::scan::uri_parse(&s));
        let mut sip = b"sip:".to_vec();
        sip.extend_from_slice(&s);
        prop_assert_eq!(Uri::parse(&sip), reference::scan::uri_parse(&sip));
    }

    #[test]
    fn name_addr_parses_as_before(s in interesting()) {
        prop_assert_eq!(NameAddr::parse(&s), reference::scan::name_addr_parse(&s));
        prop_assert_eq!(tag_of(&s), reference::scan::name_addr_parse(&s).tag());
        let mut v = b"\"d\" <sip:".to_vec();
        v.extend_from_slice(&s);
        prop_assert_eq!(NameAddr::parse(&v), reference::scan::name_addr_parse(&v));
        prop_assert_eq!(tag_of(&v), reference::scan::name_addr_parse(&v).tag());
    }

    #[test]
    fn messages_scan_as_before(
        lines in prop::collection::vec(
            (prop::sample::select(vec![
                "Call-ID", "i", "CSeq", "From", "f", "To", "t", "Via", "v", "Contact",
                "m", "P-Asserted-Identity", "Diversion", "History-Info", "Reason",
                "Session-Expires", "x", "Content-Length", "l", "Max-Forwards",
                "User-Agent", "Allow", "CALL-ID", " to", "to ", "X Y", "",
            ]),
            interesting()),
            0..12),
        start in prop::sample::select(vec![
            "INVITE sip:a@b SIP/2.0", "SIP/2.0 200 OK", "BYE tel:+1 SIP/2.0",
            "SIP/2.0 180", "ACK x:y SIP/2.0",
        ]),
        body in interesting(),
    ) {
        let mut m = format!("{start}\r\n").into_bytes();
        for (name, value) in &lines {
            m.extend_from_slice(name.as_bytes());
            m.push(b':');
            m.extend_from_slice(value);
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b"\r\n");
        m.extend_from_slice(&body);
        agree(&m);
    }

    #[test]
    fn arbitrary_bytes_scan_as_before(b in prop::collection::vec(any::<u8>(), 0..200)) {
        agree(&b);
    }
}
