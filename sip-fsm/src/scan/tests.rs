use super::*;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP x;branch=z9hG4bKother\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
P-Asserted-Identity: \"Alice\" <sip:+15551000@atlanta.com>\r\n\
Diversion: <sip:+15552000@biloxi.com>;reason=unconditional\r\n\
History-Info: <sip:bob@biloxi.com>;index=1\r\n\
Session-Expires: 1800;refresher=uac\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\r\n";

#[test]
fn scans_every_billing_header_of_an_invite() {
    let m = scan(INVITE).unwrap();
    let StartLine::Request { method, uri } = m.start else {
        panic!("not a request")
    };
    assert_eq!(method, Method::Invite);
    assert_eq!(uri.user, Some(&b"bob"[..]));
    assert_eq!(m.call_id, b"a84b4c76e66710@pc33.atlanta.com");
    assert_eq!(
        m.cseq,
        CSeq {
            seq: 314159,
            method: Method::Invite
        }
    );
    assert_eq!(m.from.tag(), Some(&b"1928301774"[..]));
    assert_eq!(m.from.user(), Some(&b"alice"[..]));
    assert_eq!(m.to.tag(), None);
    assert_eq!(m.via_branch, Some(&b"z9hG4bK776asdhds"[..]));
    assert_eq!(m.contact.unwrap().user(), Some(&b"alice"[..]));
    assert_eq!(m.pai.unwrap().user(), Some(&b"+15551000"[..]));
    assert_eq!(m.diversion.unwrap().user(), Some(&b"+15552000"[..]));
    assert_eq!(m.history_info, Some(&b"<sip:bob@biloxi.com>;index=1"[..]));
    assert_eq!(
        m.session_expires,
        Some(SessionExpires {
            delta_secs: 1800,
            refresher: Some(Refresher::Uac)
        })
    );
    assert_eq!(m.max_forwards, Some(70));
    assert_eq!(m.content_length, Some(4));
    assert_eq!(m.body, b"v=0\r");
}

#[test]
fn compact_forms_and_case_insensitive_names() {
    let msg = b"BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n\
v: SIP/2.0/UDP 192.0.2.4;BRANCH=z9hG4bKnashds10\r\n\
i: a84b4c76e66710\r\n\
F: <sip:bob@biloxi.com>;tag=a6c85cf\r\n\
t: <sip:alice@atlanta.com>;tag=1928301774\r\n\
cseq: 231 BYE\r\n\
m: <sip:bob@192.0.2.4>\r\n\
x: 90\r\n\
L: 0\r\n\r\n";
    let m = scan(msg).unwrap();
    assert_eq!(m.method(), Some(Method::Bye));
    assert_eq!(m.call_id, b"a84b4c76e66710");
    assert_eq!(m.from.tag(), Some(&b"a6c85cf"[..]));
    assert_eq!(m.to.tag(), Some(&b"1928301774"[..]));
    assert_eq!(m.via_branch, Some(&b"z9hG4bKnashds10"[..]));
    assert_eq!(m.contact.unwrap().user(), Some(&b"bob"[..]));
    assert_eq!(m.session_expires.unwrap().delta_secs, 90);
    assert_eq!(m.content_length, Some(0));
    assert_eq!(m.cseq.method, Method::Bye);
    let long = b"BYE sip:a@b SIP/2.0\r\nCALL-ID: x\r\nCSEQ: 2 BYE\r\nFROM: <sip:a@b>;tag=1\r\nTO: <sip:c@d>;tag=2\r\nVIA: SIP/2.0/UDP h;branch=z9\r\n\r\n";
    let m = scan(long).unwrap();
    assert_eq!(m.call_id, b"x");
    assert_eq!(m.via_branch, Some(&b"z9"[..]));
}

#[test]
fn folded_lines_continue_the_header() {
    let msg = b"SIP/2.0 200 OK\r\n\
Call-ID:\r\n   folded@host\r\n\
CSeq: 1\r\n INVITE\r\n\
From: <sip:a@b>\r\n\t;tag=ft\r\n\
To: \"Long\r\n Name\" <sip:c@d>;tag=tt\r\n\
Reason: Q.850;cause=16;text=\"Normal\r\n call clearing\"\r\n\r\n";
    let m = scan(msg).unwrap();
    assert_eq!(m.status(), Some(200));
    assert_eq!(m.call_id, b"folded@host");
    assert_eq!(
        m.cseq,
        CSeq {
            seq: 1,
            method: Method::Invite
        }
    );
    assert_eq!(m.from.tag(), Some(&b"ft"[..]));
    assert_eq!(m.to.tag(), Some(&b"tt"[..]));
    assert_eq!(m.to.user(), Some(&b"c"[..]));
    assert_eq!(m.reason.unwrap().cause, Some(16));
}

#[test]
fn bare_lf_leading_crlf_and_no_final_blank_line() {
    let msg = b"\r\n\r\nSIP/2.0 180 Ringing\nCall-ID: c\nCSeq: 1 INVITE\nFrom: <sip:a@b>;tag=1\nTo: <sip:c@d>;tag=2";
    let m = scan(msg).unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 180,
            reason: b"Ringing"
        }
    );
    assert_eq!(m.to.tag(), Some(&b"2"[..]));
    assert!(m.body.is_empty());
}

#[test]
fn reason_prefers_q850_and_keeps_text() {
    let msg = b"BYE sip:a@b SIP/2.0\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n\
Reason: SIP;cause=200;text=\"Call completed elsewhere\", Q.850 ;cause=31 ;text=\"Normal, unspecified\"\r\n\r\n";
    let r = scan(msg).unwrap().reason.unwrap();
    assert_eq!(r.protocol, b"Q.850");
    assert_eq!(r.cause, Some(31));
    // The comma inside the quoted text splits the list; the text is cut
    // there, which is acceptable for a label.
    assert!(r.text.is_some());
    let only_sip = b"BYE sip:a@b SIP/2.0\r\ni: c\r\nCSeq: 2 BYE\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\nReason: SIP ;cause=480\r\n\r\n";
    let r = scan(only_sip).unwrap().reason.unwrap();
    assert_eq!((r.protocol, r.cause), (&b"SIP"[..], Some(480)));
}

#[test]
fn tel_request_uri_and_sips() {
    let msg = b"INVITE tel:+4930123;phone-context=+49 SIP/2.0\r\ni: c\r\nCSeq: 1 INVITE\r\nf: <sips:a@b>;tag=1\r\nt: <tel:+4930123>\r\n\r\n";
    let m = scan(msg).unwrap();
    let StartLine::Request { uri, .. } = m.start else {
        panic!()
    };
    assert_eq!(
        (uri.scheme, uri.user),
        (Scheme::Tel, Some(&b"+4930123"[..]))
    );
    assert_eq!(m.from.uri.unwrap().scheme, Scheme::Sips);
    assert_eq!(m.to.user(), Some(&b"+4930123"[..]));
}

#[test]
fn first_of_repeated_headers_wins() {
    let msg = b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP p1;branch=top\r\nVia: SIP/2.0/UDP p2;branch=second\r\ni: first\r\ni: second\r\nCSeq: 1 INVITE\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n\r\n";
    let m = scan(msg).unwrap();
    assert_eq!(m.call_id, b"first");
    assert_eq!(m.via_branch, Some(&b"top"[..]));
}

#[test]
fn bad_optional_headers_are_treated_as_absent() {
    let msg = b"INVITE sip:b@h SIP/2.0\r\ni: c\r\nCSeq: 1 INVITE\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\nSession-Expires: soon\r\nMax-Forwards: many\r\nReason: \r\n\r\n";
    let m = scan(msg).unwrap();
    assert_eq!(
        (m.session_expires, m.max_forwards, m.reason),
        (None, None, None)
    );
}

fn err(msg: &[u8]) -> ScanError {
    scan(msg).unwrap_err()
}

const HDRS: &str = "i: c\r\nCSeq: 1 INVITE\r\nf: <sip:a@b>;tag=1\r\nt: <sip:c@d>\r\n";

#[test]
fn each_malformed_reason() {
    let req = |hdrs: &str| format!("INVITE sip:b@h SIP/2.0\r\n{hdrs}\r\n").into_bytes();
    assert_eq!(err(b""), ScanError::Empty);
    assert_eq!(err(b"\r\n\r\n"), ScanError::Empty);
    assert_eq!(err(b"hello\r\n"), ScanError::BadStartLine);
    assert_eq!(err(b"INVITE sip:b@h HTTP/1.1\r\n"), ScanError::BadStartLine);
    assert_eq!(err(b"INV(TE sip:b@h SIP/2.0\r\n"), ScanError::BadStartLine);
    assert_eq!(err(b"INVITE sip:b@h SIP/3.0\r\n"), ScanError::BadVersion);
    assert_eq!(err(b"SIP/1.0 200 OK\r\n"), ScanError::BadVersion);
    assert_eq!(err(b"SIP/2.0 2000 OK\r\n"), ScanError::BadStatusCode);
    assert_eq!(err(b"SIP/2.0 099 Odd\r\n"), ScanError::BadStatusCode);
    assert_eq!(err(b"SIP/2.0 2x0 OK\r\n"), ScanError::BadStatusCode);
    assert_eq!(err(b"INVITE bob SIP/2.0\r\n"), ScanError::BadRequestUri);
    assert_eq!(
        err(&req(&format!("{HDRS}no colon here\r\n"))),
        ScanError::BadHeader
    );
    assert_eq!(
        err(&req(&format!("{HDRS}: empty name\r\n"))),
        ScanError::BadHeader
    );
    assert_eq!(
        err(&req(&format!("{HDRS}Bad Name: x\r\n"))),
        ScanError::BadHeader
    );
    assert_eq!(
        err(&req("CSeq: 1 INVITE\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n")),
        ScanError::MissingCallId
    );
    assert_eq!(
        err(&req(
            "i: \r\nCSeq: 1 INVITE\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n"
        )),
        ScanError::MissingCallId
    );
    assert_eq!(
        err(&req("i: c\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n")),
        ScanError::MissingCSeq
    );
    assert_eq!(
        err(&req(
            "i: c\r\nCSeq: INVITE\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n"
        )),
        ScanError::BadCSeq
    );
    assert_eq!(
        err(&req(
            "i: c\r\nCSeq: 99999999999 INVITE\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n"
        )),
        ScanError::BadCSeq
    );
    assert_eq!(
        err(&req("i: c\r\nCSeq: 1\r\nf: <sip:a@b>\r\nt: <sip:c@d>\r\n")),
        ScanError::BadCSeq
    );
    assert_eq!(
        err(&req("i: c\r\nCSeq: 1 INVITE\r\nt: <sip:c@d>\r\n")),
        ScanError::MissingFrom
    );
    assert_eq!(
        err(&req("i: c\r\nCSeq: 1 INVITE\r\nf: <sip:a@b>\r\n")),
        ScanError::MissingTo
    );
}

/// Regression: a BYE whose Content-Length is not a number was dropped as
/// malformed, and its call billed to max-duration.
#[test]
fn unparseable_content_length_keeps_the_message_with_the_rest_as_body() {
    for value in ["-1", "abc", "", "99999999999", "1 2", "0x10"] {
        let msg = format!("BYE sip:b@h SIP/2.0\r\n{HDRS}Content-Length: {value}\r\n\r\nxyz");
        let m = scan(msg.as_bytes()).unwrap_or_else(|e| panic!("{value:?}: {e}"));
        assert_eq!(m.method(), Some(Method::Bye));
        assert!(m.bad_content_length, "{value:?}");
        assert_eq!((m.content_length, m.body), (None, &b"xyz"[..]), "{value:?}");
    }
    // The first occurrence decides, as for every header.
    let msg = format!("BYE sip:b@h SIP/2.0\r\n{HDRS}l: x\r\nl: 1\r\n\r\nxyz");
    let m = scan(msg.as_bytes()).unwrap();
    assert!(m.bad_content_length);
    assert_eq!(m.body, b"xyz");
    let msg = format!("BYE sip:b@h SIP/2.0\r\n{HDRS}l: 1\r\nl: x\r\n\r\nxyz");
    let m = scan(msg.as_bytes()).unwrap();
    assert!(!m.bad_content_length);
    assert_eq!((m.content_length, m.body), (Some(1), &b"x"[..]));
}

#[test]
fn body_respects_content_length() {
    let msg = format!("INVITE sip:b@h SIP/2.0\r\n{HDRS}l: 3\r\n\r\nabcdef");
    assert_eq!(scan(msg.as_bytes()).unwrap().body, b"abc");
    let long = format!("INVITE sip:b@h SIP/2.0\r\n{HDRS}l: 300\r\n\r\nabc");
    assert_eq!(scan(long.as_bytes()).unwrap().body, b"abc");
}

/// Regression: a header line holding only a colon after folding must not
/// index past the line.
#[test]
fn odd_inputs_do_not_panic() {
    for msg in [
        &b"SIP/2.0 200\r\n"[..],
        b"SIP/2.0 ",
        b"A B SIP/2.0\r\n:\r\n",
        b"A sip: SIP/2.0\r\n \r\n",
        b"A sip:@ SIP/2.0\r\ni:\"\r\nf:\"\\\r\nt:<\r\nCSeq:1 A\r\n",
        b"SIP/2.0 200 OK\r\nf: <sip:[::1\r\nt: \"\r\ni: x\r\nCSeq: 1 A\r\nv: ;\r\nReason: ;,;\r\nx: ;refresher\r\n",
    ] {
        let _ = scan(msg);
    }
    let m =
        scan(b"SIP/2.0 200\r\ni: c\r\nCSeq: 1 INVITE\r\nf: <sip:[::1\r\nt: \"\r\n\r\n").unwrap();
    assert_eq!(
        m.start,
        StartLine::Response {
            code: 200,
            reason: b""
        }
    );
    assert!(m.to.uri.is_none());
    assert_eq!(m.from.uri.unwrap().host, b"[::1");
}

/// What the general path makes of a header line: its billing name (if it
/// is one) and where the value starts, or `None` for a bad line.
fn general(line: &[u8]) -> Option<(Option<Name>, usize)> {
    header_name(line).map(|(name, at)| (classify(name), at))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
    /// The fast path for the usual billing header lines gives what the
    /// general path does, or leaves the line to it: names in any case,
    /// compact forms, near misses (a byte changed to CR, `-`, `:`, a space,
    /// another letter; a byte dropped or added), and values after them.
    #[test]
    fn known_names_read_as_the_general_path_does(
        name in proptest::sample::select(vec![
            "i", "f", "t", "v", "m", "l", "x", "to", "via", "cseq", "from",
            "reason", "call-id", "contact", "diversion", "history-info",
            "max-forwards", "content-length", "session-expires",
            "p-asserted-identity", "content-type", "user-agent", "c", "s", "r",
        ]),
        upper in proptest::prelude::any::<u32>(),
        edit in proptest::prelude::any::<(u8, u8, u8)>(),
        tail in proptest::sample::select(vec![
            ": value", ":value", " : value", ":", "", "\t: x", "x: y",
        ]),
    ) {
        let mut line: Vec<u8> = name
            .bytes()
            .enumerate()
            .map(|(i, c)| if upper >> (i % 32) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        let (kind, at, byte) = edit;
        let at = usize::from(at) % (line.len() + 1);
        let byte = [b'\r', b'-', b':', b' ', b'q', b'\t', 0x0d | 0x20, 0xe9][usize::from(byte) % 8];
        match kind % 4 {
            0 => {}
            1 if at < line.len() => line[at] = byte,
            2 if at < line.len() => {
                line.remove(at);
            }
            _ => line.insert(at, byte),
        }
        line.extend_from_slice(tail.as_bytes());
        if let Some((k, at)) = known_name(&line) {
            proptest::prop_assert_eq!(general(&line), Some((Some(k), at)), "{:?}", String::from_utf8_lossy(&line));
        }
    }
}

#[test]
fn known_names_cover_the_usual_lines() {
    for (line, want) in [
        (&b"Via: SIP/2.0/UDP h"[..], Name::Via),
        (b"v:x", Name::Via),
        (b"CALL-ID: a", Name::CallId),
        (b"Content-Length: 0", Name::ContentLength),
        (b"p-asserted-identity: <sip:a@b>", Name::Pai),
        (b"t: <sip:b@c>", Name::To),
    ] {
        let (k, at) = known_name(line).unwrap();
        assert_eq!((Some(k), at), general(line).unwrap(), "{line:?}");
        assert_eq!(k, want);
    }
    // Left to the general path: other headers, space before the colon, CR
    // where a `-` belongs.
    for line in [
        &b"User-Agent: x"[..],
        b"Via : x",
        b"Call\rID: x",
        b"Fromx: y",
    ] {
        assert_eq!(known_name(line), None, "{line:?}");
    }
}
