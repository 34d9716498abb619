use bytes::BytesMut;

use super::*;

#[test]
fn start_lines() {
    for ok in [
        &b"INVITE sip:bob@example.com SIP/2.0\r\n"[..],
        b"ACK sip:b@h;transport=tcp SIP/2.0\n",
        b"SIP/2.0 200 OK\r\n",
        b"SIP/2.0 180 \r\n",
        b"SIP/2.0 404\r\n",
        b"sip/2.0 100 Trying\r\n",
        b"X-CUSTOM.method sip:x sip/2.0\r\n",
    ] {
        assert!(
            matches!(check_start_line(ok), LineCheck::Sip(n) if n == ok.len()),
            "{:?}",
            String::from_utf8_lossy(ok)
        );
    }
    for bad in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"INVITE  sip:x SIP/2.0\r\n",
        b"INVITE sip:x SIP/2.0 \r\n",
        b"SIP/2.0 2000 OK\r\n",
        b"SIP/2.0 099 x\r\n",
        b"SIP/2.0/UDP host\r\n",
        b"\x16\x03\x01\x02\x00",
        b" INVITE sip:x SIP/2.0\r\n",
        b"INVITE sip:x SIP/2.0\rX",
    ] {
        assert_eq!(
            check_start_line(bad),
            LineCheck::NotSip,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    for part in [
        &b""[..],
        b"INV",
        b"INVITE sip:x",
        b"INVITE sip:x SIP/2",
        b"INVITE sip:x SIP/2.0\r",
        b"SIP/2.0 20",
        b"SIP/2.0 200 OK",
    ] {
        assert_eq!(check_start_line(part), LineCheck::Incomplete);
    }
    let mut long = b"INVITE sip:".to_vec();
    long.resize(MAX_START_LINE + 10, b'a');
    assert_eq!(check_start_line(&long), LineCheck::NotSip);
}

#[test]
fn udp_payload_recognition() {
    assert!(is_sip_message(b"OPTIONS sip:x SIP/2.0\r\nVia: x\r\n\r\n"));
    assert!(!is_sip_message(b"\r\n\r\n"));
    assert!(!is_sip_message(b"\0\0\0\0"));
    assert!(!is_sip_message(b"OPTIONS sip:x SIP/2.0"));
}

#[test]
fn content_length_forms() {
    assert_eq!(content_length(b"Content-Length: 12\r\n"), Some(12));
    assert_eq!(content_length(b"content-LENGTH :  7 \r\n"), Some(7));
    assert_eq!(content_length(b"l: 3\r\nVia: x\r\n"), Some(3));
    assert_eq!(content_length(b"L:0\r\n"), Some(0));
    assert_eq!(content_length(b"Via: x\r\n"), None);
    assert_eq!(content_length(b"Content-Length: x1\r\n"), None);
    assert_eq!(content_length(b"Content-Length: \r\n"), None);
    assert_eq!(content_length(b"Content-Length: 99999999999\r\n"), None);
    assert_eq!(
        content_length(b"Content-Length: 1\r\nl: 2\r\n"),
        None,
        "conflicting values"
    );
    assert_eq!(content_length(b"l: 2\r\nContent-Length: 2\r\n"), Some(2));
    assert_eq!(content_length(b"X-L: 5\r\n"), None);
    assert_eq!(content_length(b"Subject: a\r\n l: 5\r\n"), None);
}

#[test]
fn header_end_resumes() {
    let m = b"A sip:x SIP/2.0\r\nVia: x\r\n\r\nbody";
    assert_eq!(header_end(m, 0), Ok(m.len() - 4));
    assert_eq!(header_end(b"A\n\nx", 0), Ok(3));
    let part = &m[..25];
    let r = header_end(part, 0).expect_err("not ended");
    assert_eq!(header_end(m, r), Ok(m.len() - 4));
}

fn frame_all(framer: &mut SipFramer, input: &[u8], stats: &mut Stats) -> Vec<Bytes> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(m) = framer.next(&mut buf, 65535, stats).message {
        out.push(m);
    }
    out
}

const MSG: &[u8] = b"MESSAGE sip:a SIP/2.0\r\nl: 5\r\n\r\nhello";

#[test]
fn frames_back_to_back_messages_and_keepalives() {
    let mut input = b"\r\n\r\n".to_vec();
    input.extend_from_slice(MSG);
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::at_boundary(), &input, &mut stats);
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0][..], MSG);
    assert_eq!(stats.total_drops(), 0);
}

#[test]
fn missing_content_length_keeps_the_headers_and_resyncs() {
    let head = b"INVITE sip:a SIP/2.0\r\nVia: x\r\n\r\n";
    let mut input = head.to_vec();
    input.extend_from_slice(b"v=0\r\n");
    input.extend_from_slice(MSG);
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::at_boundary(), &input, &mut stats);
    assert_eq!(got, vec![Bytes::from_static(head), Bytes::from_static(MSG)]);
    assert_eq!(stats.drops(DropReason::BadContentLength), 1);
}

/// Regression: a BYE over TCP with an unparseable Content-Length was
/// dropped whole, and its call billed to max-duration.
#[test]
fn bye_with_unparseable_content_length_is_framed() {
    let bye = b"BYE sip:a SIP/2.0\r\nCall-ID: c\r\nContent-Length: zero\r\n\r\n";
    let ok = b"SIP/2.0 200 OK\r\nCall-ID: c\r\nContent-Length: 0\r\n\r\n";
    let input = [&bye[..], &ok[..], MSG].concat();
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::at_boundary(), &input, &mut stats);
    let want = [&bye[..], &ok[..], MSG].map(Bytes::copy_from_slice);
    assert_eq!(got, want.to_vec());
    assert_eq!(stats.drops(DropReason::BadContentLength), 1);
    // The stream ends right after the BYE: it is framed at once, not
    // held waiting for the next message.
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::at_boundary(), bye, &mut stats);
    assert_eq!(got, vec![Bytes::from_static(bye)]);
}

#[test]
fn garbage_counts_not_sip_then_resyncs() {
    let mut input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    input.extend_from_slice(MSG);
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::at_boundary(), &input, &mut stats);
    assert_eq!(got, vec![Bytes::from_static(MSG)]);
    assert_eq!(stats.drops(DropReason::NotSip), 1);
}

#[test]
fn resync_skips_a_message_tail() {
    // Joined mid-message: the tail mentions SIP/2.0 in a Via header.
    let mut input = b"Via: SIP/2.0/TCP h\r\nl: 0\r\n\r\n".to_vec();
    input.extend_from_slice(MSG);
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::resync(), &input, &mut stats);
    assert_eq!(got, vec![Bytes::from_static(MSG)]);
    assert_eq!(stats.total_drops(), 0);
}

#[test]
fn resync_waits_for_a_split_start_line() {
    let mut f = SipFramer::resync();
    let mut stats = Stats::default();
    let mut buf = BytesMut::from(&b"junk\r\nMESSAGE sip:a SI"[..]);
    let r = f.next(&mut buf, 65535, &mut stats);
    assert_eq!(r.message, None);
    assert_eq!(&buf[..], b"MESSAGE sip:a SI");
    buf.extend_from_slice(&MSG[16..]);
    assert_eq!(
        f.next(&mut buf, 65535, &mut stats).message.as_deref(),
        Some(MSG)
    );
}

#[test]
fn resync_bounds_what_it_keeps() {
    let mut f = SipFramer::resync();
    let mut stats = Stats::default();
    let mut buf = BytesMut::from(&vec![b'x'; MAX_START_LINE * 2][..]);
    let r = f.next(&mut buf, 65535, &mut stats);
    assert_eq!(r.skipped, MAX_START_LINE);
    assert_eq!(buf.len(), MAX_START_LINE);
    // Not at a line start: a known method is still found inside the line.
    buf.extend_from_slice(MSG);
    assert_eq!(
        f.next(&mut buf, 65535, &mut stats).message.as_deref(),
        Some(MSG)
    );
}

#[test]
fn resync_finds_a_message_after_a_body_without_crlf() {
    // The tail of a body, then a message, as after a gap.
    let mut input = b"a=sendrecv".to_vec();
    input.extend_from_slice(MSG);
    input.extend_from_slice(b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
    let mut stats = Stats::default();
    let got = frame_all(&mut SipFramer::resync(), &input, &mut stats);
    assert_eq!(got.len(), 2);
    assert_eq!(&got[0][..], MSG);
    assert_eq!(&got[1][..], b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
    // An extension method is believed only at a real line start.
    let input = b"xFOO sip:a SIP/2.0\r\nl: 0\r\n\r\nFOO sip:a SIP/2.0\r\nl: 0\r\n\r\n";
    let got = frame_all(&mut SipFramer::resync(), input, &mut stats);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0][..], &input[28..]);
}

#[test]
fn body_with_blank_lines_is_not_reparsed() {
    let m = b"MESSAGE sip:a SIP/2.0\r\nl: 6\r\n\r\n\r\n\n\r\nx";
    let mut f = SipFramer::at_boundary();
    let mut stats = Stats::default();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    for b in m {
        buf.extend_from_slice(&[*b]);
        if let Some(msg) = f.next(&mut buf, 65535, &mut stats).message {
            got.push(msg);
        }
    }
    assert_eq!(got, vec![Bytes::from_static(m)]);
}

#[test]
fn oversize_message_is_skipped_exactly() {
    let mut big = b"MESSAGE sip:a SIP/2.0\r\nContent-Length: 100\r\n\r\n".to_vec();
    big.extend_from_slice(&[b'z'; 100]);
    big.extend_from_slice(MSG);
    let mut stats = Stats::default();
    let mut f = SipFramer::at_boundary();
    let mut buf = BytesMut::from(&big[..]);
    let r = f.next(&mut buf, 100, &mut stats);
    assert_eq!(r.message.as_deref(), Some(MSG));
    assert_eq!(stats.drops(DropReason::Oversize), 1);
}

#[test]
fn unterminated_headers_over_limit_are_oversize() {
    let mut f = SipFramer::at_boundary();
    let mut stats = Stats::default();
    let mut input = b"MESSAGE sip:a SIP/2.0\r\n".to_vec();
    input.extend_from_slice(&[b'h'; 200]);
    let mut buf = BytesMut::from(&input[..]);
    assert_eq!(f.next(&mut buf, 100, &mut stats).message, None);
    assert_eq!(stats.drops(DropReason::Oversize), 1);
    assert!(buf.is_empty());
}

/// Feeds `input` one byte at a time; returns the messages, the largest
/// buffer held and the work done.
fn trickle(mut f: SipFramer, input: &[u8], max: usize) -> (usize, usize, u64) {
    let mut stats = Stats::default();
    let mut buf = BytesMut::new();
    let (mut msgs, mut held) = (0, 0);
    for b in input {
        buf.extend_from_slice(std::slice::from_ref(b));
        while f.next(&mut buf, max, &mut stats).message.is_some() {
            msgs += 1;
        }
        held = held.max(buf.len());
    }
    (msgs, held, f.work())
}

/// Issue 7: framing and resynchronisation are linear in the bytes
/// received and hold a bounded amount, however the stream is cut.
/// `INVITE SIP/2.0aaaa...` with no space grew the resync buffer without
/// end (a known method waiting for its line), and every byte rescanned
/// the whole buffer.
#[test]
fn framing_one_byte_at_a_time_is_linear_and_bounded() {
    const N: usize = 1 << 20;
    let with = |head: &[u8], fill: &[u8]| {
        let mut v = head.to_vec();
        while v.len() < N {
            v.extend_from_slice(fill);
        }
        v
    };
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
        ("no-space line", true, with(b"INVITE SIP/2.0", b"a")),
        (
            "no-space line, resync",
            false,
            with(b"INVITE SIP/2.0", b"a"),
        ),
        ("garbage, resync", false, with(b"", b"x")),
        (
            "endless headers",
            true,
            with(b"INVITE sip:x SIP/2.0\r\n", b"h"),
        ),
        ("versions", false, with(b"", b"SIP/2.0 ")),
        ("methods", false, with(b"", b"INVITE ")),
        ("method lines", false, with(b"", b"INVITE x SIP/2.0 y\n")),
        ("short lines", true, with(b"", b"a\n")),
    ];
    for (name, boundary, input) in cases {
        let f = if boundary {
            SipFramer::at_boundary()
        } else {
            SipFramer::resync()
        };
        let (msgs, held, work) = trickle(f, &input, 65535);
        assert_eq!(msgs, 0, "{name}");
        assert!(held <= 65536 + 2, "{name}: held {held}");
        let per_byte = work / input.len() as u64;
        assert!(
            per_byte <= 8,
            "{name}: {work} bytes examined for {}",
            input.len()
        );
    }
    // Real messages trickled in are still all found, as linearly.
    let mut input = Vec::new();
    for i in 0..2000 {
        input.extend_from_slice(format!("MESSAGE sip:a SIP/2.0\r\nl: 3\r\n\r\n{i:03}").as_bytes());
    }
    let (msgs, _, work) = trickle(SipFramer::at_boundary(), &input, 65535);
    assert_eq!(msgs, 2000);
    assert!(work / input.len() as u64 <= 8, "{work}");
}

#[test]
fn partial_message_is_reported() {
    let f = SipFramer::at_boundary();
    assert!(f.holds_partial(b"INVITE sip:"));
    assert!(!f.holds_partial(b"\r\n"));
    assert!(!SipFramer::resync().holds_partial(b"junk"));
}

/// The Request-Line check as it was written first, a byte at a time: the
/// reference for the vectorised one.
fn request_line_by_bytes(buf: &[u8]) -> LineCheck {
    let method = buf.iter().take_while(|b| is_token(**b)).count();
    if method > MAX_METHOD {
        return LineCheck::NotSip;
    }
    match buf.get(method) {
        None => return LineCheck::Incomplete,
        Some(b' ') if method > 0 => {}
        Some(_) => return LineCheck::NotSip,
    }
    let uri_start = method + 1;
    let uri = buf[uri_start..]
        .iter()
        .take_while(|b| **b > b' ' && **b != 0x7f)
        .count();
    match buf.get(uri_start + uri) {
        None => return LineCheck::Incomplete,
        Some(b' ') if uri > 0 => {}
        Some(_) => return LineCheck::NotSip,
    }
    let ver = uri_start + uri + 1;
    match prefix_match(&buf[ver..], VERSION) {
        None => LineCheck::NotSip,
        Some(false) => LineCheck::Incomplete,
        Some(true) => line_end_at(buf, ver + VERSION.len()),
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// A request line with up to three bytes replaced by ones that matter
    /// (space, controls, DEL, UTF-8, letters), cut anywhere: the vectorised
    /// check says what the byte-at-a-time one says.
    #[test]
    fn request_line_check_matches_the_bytewise_one(
        uri in "[a-z:@.;=0-9]{0,40}",
        changes in proptest::collection::vec(
            (
                proptest::num::usize::ANY,
                proptest::sample::select(vec![b' ', b'\t', b'\r', b'\n', 0, 0x7f, 0xc3, b'a', b'/']),
            ),
            0..3,
        ),
        cut in proptest::num::usize::ANY,
    ) {
        let mut line = format!("INVITE {uri} SIP/2.0\r\n").into_bytes();
        for (at, b) in changes {
            let n = line.len();
            line[at % n] = b;
        }
        let line = &line[..cut % (line.len() + 1)];
        proptest::prop_assert_eq!(check_request_line(line), request_line_by_bytes(line));
    }
}

#[test]
fn the_token_table_is_rfc_3261s_token() {
    for b in 0..=255u8 {
        let want = b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
        assert_eq!(is_token(b), want, "{b:#04x}");
    }
}
