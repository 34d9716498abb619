//! `replay --format json` straight from a [`CallRecord`]: the same bytes as
//! [`super::write_json_line`] of [`Cdr::from_record`](sessions::Cdr::from_record),
//! without building the `Cdr` (about twenty `String`s and a `BTreeMap` a
//! call) or going through serde. The line is written into one reused
//! buffer; SetupTime and the end time come from a small cache of
//! formatted seconds, as calls cluster in time.
//!
//! Only for CDRs nobody changes after they are built (no `--tariffplan`):
//! `Cost` is `null` and `CostSource` absent, as `from_record` leaves them.
//! The tests below compare the two writers field for field on awkward
//! records (controls, C1 controls, non-UTF-8 Call-IDs, every optional
//! field), and `tests/replay_threads.rs` on every capture.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, SecondsFormat, Utc};
use sessions::CdrOptions;
use sha1::{Digest, Sha1};
use sip_fsm::{CallRecord, EndReason, Party};

/// Writes CDRs as JSON lines from call records, reusing its buffers.
pub(crate) struct JsonCdrWriter {
    line: Vec<u8>,
    /// The OriginID's bytes (Call-ID, then the reuse suffix).
    id: Vec<u8>,
    /// OriginHost when derived from the call; the Reason header.
    text: String,
    times: TimeCache,
}

impl JsonCdrWriter {
    pub(crate) fn new() -> Self {
        JsonCdrWriter {
            line: Vec::with_capacity(1024),
            id: Vec::with_capacity(128),
            text: String::with_capacity(64),
            times: TimeCache::default(),
        }
    }

    /// Writes the CDR of `rec` as one JSON line to `out`.
    pub(crate) fn write(
        &mut self,
        rec: &CallRecord,
        opts: &CdrOptions,
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.line.clear();
        self.fill(rec, opts);
        out.write_all(&self.line)
    }

    fn fill(&mut self, rec: &CallRecord, opts: &CdrOptions) {
        let call = &*rec.call;
        let c = &call.charging;
        self.id.clear();
        self.id.extend_from_slice(&call.call_id_bytes);
        if let Some(s) = &call.origin_suffix {
            self.id.extend_from_slice(s);
        }
        let host: &str = match &opts.origin_host {
            Some(h) => h,
            None => {
                self.text.clear();
                push_ip(&mut self.text, call.dst.ip());
                &self.text
            }
        };
        let b = &mut self.line;
        b.extend_from_slice(b"{\"CGRID\":\"");
        let mut h = Sha1::new();
        h.update(&self.id);
        h.update(host.as_bytes());
        push_hex(b, &h.finalize());
        b.extend_from_slice(b"\",\"RunID\":");
        push_str(b, &opts.run_id);
        b.extend_from_slice(b",\"OriginID\":");
        match std::str::from_utf8(&self.id) {
            Ok(s) => push_str(b, s),
            Err(_) => push_str(b, &sip_fsm::escape_id(&self.id)),
        }
        b.extend_from_slice(b",\"OriginHost\":");
        push_str(b, host);
        b.extend_from_slice(b",\"Source\":");
        push_str(b, &opts.source);
        b.extend_from_slice(b",\"ToR\":");
        push_str(b, sessions::cdr::TOR_VOICE);
        b.extend_from_slice(b",\"RequestType\":");
        push_str(b, &c.request_type);
        b.extend_from_slice(b",\"Tenant\":");
        push_str(b, &c.tenant);
        b.extend_from_slice(b",\"Category\":");
        push_str(b, &c.category);
        b.extend_from_slice(b",\"Account\":");
        push_str(b, &c.account);
        b.extend_from_slice(b",\"Subject\":");
        push_str(b, &c.subject);
        b.extend_from_slice(b",\"Destination\":");
        push_str(b, &c.destination);
        b.extend_from_slice(b",\"SetupTime\":\"");
        self.times.push(b, call.setup_time);
        b.extend_from_slice(b"\",\"AnswerTime\":");
        match rec.answer_time {
            Some(t) => {
                b.push(b'"');
                self.times.push(b, t);
                b.push(b'"');
            }
            None => b.extend_from_slice(b"null"),
        }
        b.extend_from_slice(b",\"Usage\":");
        let usage = if rec.answer_time.is_some() {
            u64::try_from(rec.duration.as_nanos()).unwrap_or(u64::MAX)
        } else {
            0
        };
        push_u64(b, usage);
        b.extend_from_slice(b",\"Cost\":null,\"DisconnectCause\":");
        // The Reason header text, when there is one.
        self.text.clear();
        if let Some(r) = &rec.reason {
            self.text.push_str(&r.protocol);
            if let Some(cause) = r.cause {
                let _ = write!(self.text, ";cause={cause}");
            }
            if let Some(t) = &r.text {
                let _ = write!(self.text, ";text=\"{t}\"");
            }
        }
        if rec.reason.is_some() && rec.end_reason == EndReason::Bye {
            push_str(b, &self.text);
        } else {
            b.push(b'"');
            push_u64(b, u64::from(rec.code));
            b.push(b'"');
        }
        // ExtraFields: a BTreeMap in serde, so its keys in byte order.
        b.extend_from_slice(b",\"ExtraFields\":{\"EndReason\":");
        push_str(b, rec.end_reason.as_str());
        b.extend_from_slice(b",\"EndTime\":\"");
        self.times.push(b, rec.end_time);
        b.push(b'"');
        if let Some(p) = rec.ended_by {
            b.extend_from_slice(match p {
                Party::Caller => b",\"EndedBy\":\"caller\"",
                Party::Callee => b",\"EndedBy\":\"callee\"",
            });
        }
        if let Some(d) = rec.pdd {
            b.extend_from_slice(b",\"PDD\":\"");
            push_go_duration(b, d);
            b.push(b'"');
        }
        if rec.reason.is_some() {
            b.extend_from_slice(b",\"Reason\":");
            push_str(b, &self.text);
        }
        if let Some(d) = rec.ring_time {
            b.extend_from_slice(b",\"RingTime\":\"");
            push_go_duration(b, d);
            b.push(b'"');
        }
        b.extend_from_slice(b",\"SIPCode\":\"");
        push_u64(b, u64::from(rec.code));
        b.push(b'"');
        if !rec.phrase.is_empty() {
            b.extend_from_slice(b",\"SIPPhrase\":");
            push_str(b, &rec.phrase);
        }
        b.extend_from_slice(b"}}\n");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// An IP address as its `Display` writes it (IPv4 by hand: the
/// formatter's padding support costs more than the call's JSON).
fn push_ip(s: &mut String, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + (o / 10) % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
        }
        std::net::IpAddr::V6(_) => {
            let _ = write!(s, "{ip}");
        }
    }
}

fn push_hex(b: &mut Vec<u8>, bytes: &[u8]) {
    for &x in bytes {
        b.push(HEX[usize::from(x >> 4)]);
        b.push(HEX[usize::from(x & 0xf)]);
    }
}

fn push_u64(b: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // n % 10 < 10: always a digit.
        digits[i] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    b.extend_from_slice(&digits[i..]);
}

/// A JSON string as serde_json writes it (`"`, `\` and C0 controls
/// escaped, `\b \t \n \f \r` by name, the rest as `\u00xx`), with C1
/// controls also written `\u00xx` as [`super::write_json_line`] does.
fn push_str(b: &mut Vec<u8>, s: &str) {
    b.push(b'"');
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        b.extend_from_slice(bytes);
        b.push(b'"');
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let (skip, esc): (usize, &[u8]) = match c {
            b'"' => (1, b"\\\""),
            b'\\' => (1, b"\\\\"),
            0x08 => (1, b"\\b"),
            b'\t' => (1, b"\\t"),
            b'\n' => (1, b"\\n"),
            0x0c => (1, b"\\f"),
            b'\r' => (1, b"\\r"),
            0x00..=0x1f => (1, b""),
            // In UTF-8 a C1 control is 0xC2 then 0x80..=0x9F.
            0xc2 if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => (2, b""),
            _ => {
                i += 1;
                continue;
            }
        };
        b.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let x = bytes[i + skip - 1];
            b.extend_from_slice(b"\\u00");
            b.push(HEX[usize::from(x >> 4)]);
            b.push(HEX[usize::from(x & 0xf)]);
        } else {
            b.extend_from_slice(esc);
        }
        i += skip;
        start = i;
    }
    b.extend_from_slice(&bytes[start..]);
    b.push(b'"');
}

/// Whether `bytes` holds a byte [`push_str`] escapes or looks at twice
/// ([`escaped`]). Most strings need no escape, so all of them is read
/// anyway: 16 bytes at a time by comparisons the compiler runs on a whole
/// vector, the rest (short strings, the usual case) by [`ESCAPED`].
#[inline]
fn needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    let mut acc = false;
    for chunk in &mut chunks {
        acc |= chunk.iter().fold(false, |a, &c| a | escaped(c));
    }
    chunks
        .remainder()
        .iter()
        .fold(acc, |a, &c| a | ESCAPED[usize::from(c)])
}

/// A C0 control, `"`, `\` or 0xC2 (a C1 control's first byte); without
/// early exits, so that a fold over it runs on vectors.
#[inline]
const fn escaped(c: u8) -> bool {
    (c < 0x20) | (c == b'"') | (c == b'\\') | (c == 0xc2)
}

/// [`escaped`] as a table.
static ESCAPED: [bool; 256] = {
    let mut t = [false; 256];
    let mut c: u8 = 0;
    loop {
        t[c as usize] = escaped(c);
        if c == u8::MAX {
            break t;
        }
        c += 1;
    }
};

/// A duration in Go's syntax, as [`rating::format_duration`] writes it:
/// `0s`, `850ns`, `1.5µs`, `1.204ms`, `2.5s`, `1m30s`, `1h2m3.5s`.
fn push_go_duration(b: &mut Vec<u8>, d: Duration) {
    let ns = d.as_nanos();
    if ns == 0 {
        b.extend_from_slice(b"0s");
        return;
    }
    if ns < 1_000_000_000 {
        let (unit, div, width): (&str, u128, usize) = if ns < 1_000 {
            ("ns", 1, 0)
        } else if ns < 1_000_000 {
            ("µs", 1_000, 3)
        } else {
            ("ms", 1_000_000, 6)
        };
        push_fraction(b, ns, div, width);
        b.extend_from_slice(unit.as_bytes());
        return;
    }
    let hours = ns / 3_600_000_000_000;
    let minutes = (ns / 60_000_000_000) % 60;
    let sec_ns = ns % 60_000_000_000;
    if hours > 0 {
        push_u128(b, hours);
        b.push(b'h');
        push_u128(b, minutes);
        b.push(b'm');
    } else if minutes > 0 {
        push_u128(b, minutes);
        b.push(b'm');
    }
    push_fraction(b, sec_ns, 1_000_000_000, 9);
    b.push(b's');
}

fn push_u128(b: &mut Vec<u8>, n: u128) {
    match u64::try_from(n) {
        Ok(n) => push_u64(b, n),
        Err(_) => {
            let mut s = String::new();
            let _ = write!(s, "{n}");
            b.extend_from_slice(s.as_bytes());
        }
    }
}

/// `value / div`, then `.` and the remainder on `width` digits without its
/// trailing zeros, when there is a remainder.
fn push_fraction(b: &mut Vec<u8>, value: u128, div: u128, width: usize) {
    push_u128(b, value / div);
    let mut frac = value % div;
    if frac == 0 {
        return;
    }
    let mut digits = [b'0'; 9];
    let mut i = width;
    while i > 0 {
        i -= 1;
        // frac % 10 < 10: always a digit.
        digits[i] = b'0' + u8::try_from(frac % 10).unwrap_or(0);
        frac /= 10;
    }
    let end = digits[..width]
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(0, |p| p + 1);
    b.push(b'.');
    b.extend_from_slice(&digits[..end]);
}

/// RFC 3339 as [`sessions::cdr::rfc3339`] writes it, with the part up to
/// the seconds formatted by chrono once per second and kept in a few
/// slots (set up and end times of calls cluster in time).
#[derive(Default)]
struct TimeCache {
    slots: [Option<(i64, Box<str>)>; 8],
}

impl TimeCache {
    fn push(&mut self, b: &mut Vec<u8>, ts: Timestamp) {
        let secs = ts.secs();
        let i = usize::try_from(secs.rem_euclid(8)).unwrap_or(0);
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if slot.as_ref().is_none_or(|(s, _)| *s != secs) {
            let Some(t) = DateTime::<Utc>::from_timestamp(secs, 0) else {
                // Beyond chrono's range: as `rfc3339` writes it.
                let mut s = String::new();
                let _ = write!(s, "@{}ns", ts.as_nanos());
                b.extend_from_slice(s.as_bytes());
                return;
            };
            let full = t.to_rfc3339_opts(SecondsFormat::Secs, true);
            let prefix = full.strip_suffix('Z').unwrap_or(&full);
            *slot = Some((secs, prefix.into()));
        }
        if let Some((_, prefix)) = slot {
            b.extend_from_slice(prefix.as_bytes());
        }
        let nanos = ts.subsec_nanos();
        b.push(b'.');
        let (mut frac, width) = if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        let mut digits = [b'0'; 9];
        let mut i = width;
        while i > 0 {
            i -= 1;
            // frac % 10 < 10: always a digit.
            digits[i] = b'0' + u8::try_from(frac % 10).unwrap_or(0);
            frac /= 10;
        }
        b.extend_from_slice(&digits[..width]);
        b.push(b'Z');
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use proptest::prelude::*;
    use sessions::Cdr;
    use sip_fsm::{CallInfo, Charging, ReasonInfo};

    use super::*;

    fn via_serde(rec: &CallRecord, opts: &CdrOptions) -> String {
        let mut v = Vec::new();
        super::super::write_json_line(&mut v, &Cdr::from_record(rec, opts)).unwrap();
        String::from_utf8(v).unwrap()
    }

    fn direct(rec: &CallRecord, opts: &CdrOptions) -> String {
        let mut w = JsonCdrWriter::new();
        let mut v = Vec::new();
        w.write(rec, opts, &mut v).unwrap();
        // A second record through the same buffers gives the same line.
        let mut again = Vec::new();
        w.write(rec, opts, &mut again).unwrap();
        assert_eq!(v, again);
        String::from_utf8(v).unwrap()
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        call_id: &[u8],
        suffix: Option<&[u8]>,
        text: &str,
        dst: &str,
        setup: i64,
        answer: Option<i64>,
        end: i64,
        reason: Option<ReasonInfo>,
        end_reason: EndReason,
        code: u16,
        phrase: &str,
        pdd: Option<Duration>,
        ring: Option<Duration>,
        ended_by: Option<Party>,
    ) -> CallRecord {
        let dst: SocketAddr = dst.parse().unwrap();
        let call = CallInfo {
            call_id_bytes: Arc::from(call_id),
            origin_suffix: suffix.map(Box::from),
            capture_point: "cp".into(),
            src: "10.0.0.1:5060".parse().unwrap(),
            dst,
            setup_time: Timestamp::from_nanos(setup),
            from_user: Some(text.into()),
            from_tag: None,
            to_user: None,
            ruri_user: None,
            pai_user: None,
            diversion_user: None,
            charging: Charging {
                tenant: Arc::from(text),
                category: Arc::from("call"),
                account: text.into(),
                subject: "1001".into(),
                destination: format!("+1{text}").into(),
                request_type: Arc::from("*rated"),
            },
        };
        let answer_time = answer.map(Timestamp::from_nanos);
        CallRecord {
            call: Arc::new(call),
            answer_time,
            end_time: Timestamp::from_nanos(end),
            duration: answer.map_or(Duration::ZERO, |a| {
                Duration::from_nanos(u64::try_from(end - a).unwrap_or(0))
            }),
            end_reason,
            code,
            phrase: phrase.into(),
            reason,
            pdd,
            ring_time: ring,
            ended_by,
        }
    }

    const T0: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn same_bytes_as_the_cdr_on_plain_calls() {
        let opts = CdrOptions::default();
        let answered = record(
            b"abc@host",
            None,
            "1002",
            "10.0.0.2:5060",
            T0,
            Some(T0 + 1_204_000_000),
            T0 + 61_000_000_000,
            Some(ReasonInfo {
                protocol: "Q.850".into(),
                cause: Some(16),
                text: Some("Normal call clearing".into()),
            }),
            EndReason::Bye,
            200,
            "OK",
            Some(Duration::from_micros(1_204)),
            Some(Duration::from_millis(1_500)),
            Some(Party::Callee),
        );
        assert_eq!(direct(&answered, &opts), via_serde(&answered, &opts));
        let failed = record(
            b"x",
            Some(b";tag;2"),
            "1003",
            "[2001:db8::1]:5060",
            T0 + 7,
            None,
            T0 + 3_000_000_123,
            None,
            EndReason::Timeout,
            408,
            "",
            None,
            None,
            None,
        );
        assert_eq!(direct(&failed, &opts), via_serde(&failed, &opts));
        let host = CdrOptions {
            origin_host: Some("probe \"1\"".into()),
            ..CdrOptions::default()
        };
        assert_eq!(direct(&failed, &host), via_serde(&failed, &host));
    }

    #[test]
    fn addresses_as_display_writes_them() {
        for ip in [
            "0.0.0.0",
            "10.0.0.2",
            "192.168.100.255",
            "8.80.9.199",
            "2001:db8::1",
            "::",
        ] {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    #[test]
    fn go_durations_match_ratings_writer() {
        for ns in [
            0u64,
            1,
            999,
            1_000,
            1_500,
            999_999,
            1_000_000,
            1_204_000,
            999_999_999,
            1_000_000_000,
            2_500_000_000,
            60_000_000_000,
            90_000_000_000,
            3_600_000_000_000,
            3_723_500_000_000,
            u64::MAX,
        ] {
            let d = Duration::from_nanos(ns);
            let mut b = Vec::new();
            push_go_duration(&mut b, d);
            assert_eq!(String::from_utf8(b).unwrap(), rating::format_duration(d));
        }
    }

    #[test]
    fn times_match_the_cdr_writer_at_the_edges() {
        let mut cache = TimeCache::default();
        for n in [
            i64::MIN,
            i64::MAX,
            -1,
            0,
            1,
            999,
            1_000,
            T0,
            T0 + 1,
            T0 + 999_999_999,
            i64::MIN / 2,
        ] {
            let t = Timestamp::from_nanos(n);
            let mut b = Vec::new();
            cache.push(&mut b, t);
            assert_eq!(String::from_utf8(b).unwrap(), sessions::cdr::rfc3339(t));
        }
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9@.+]{0,12}",
            any::<String>(),
            proptest::collection::vec(
                prop_oneof![
                    Just('\u{85}'),
                    Just('\u{9b}'),
                    Just('\u{a0}'),
                    Just('\u{c2}'),
                    Just('"'),
                    Just('\\'),
                    Just('\x1b'),
                    Just('\x7f'),
                    Just('\n'),
                    Just('%'),
                    Just('a'),
                ],
                0..12
            )
            .prop_map(|v| v.into_iter().collect()),
        ]
    }

    proptest! {
        #[test]
        fn same_bytes_as_the_cdr(
            call_id in proptest::collection::vec(any::<u8>(), 0..24),
            suffix in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            t in text(),
            phrase in text(),
            reason_text in proptest::option::of(text()),
            cause in proptest::option::of(any::<u16>()),
            with_reason in any::<bool>(),
            setup in any::<i64>(),
            answer in proptest::option::of(0i64..10_000_000_000_000),
            end_after in 0i64..100_000_000_000_000,
            reason_kind in 0usize..8,
            code in any::<u16>(),
            pdd in proptest::option::of(any::<u64>()),
            ring in proptest::option::of(any::<u64>()),
            ended_by in proptest::option::of(any::<bool>()),
            v6 in any::<bool>(),
        ) {
            let ends = [
                EndReason::Bye,
                EndReason::Cancel,
                EndReason::Rejected,
                EndReason::Timeout,
                EndReason::SessionExpired,
                EndReason::MaxDuration,
                EndReason::DialogLost,
                EndReason::Evicted,
            ];
            let answer = answer.map(|a| setup.saturating_add(a));
            let end = answer.unwrap_or(setup).saturating_add(end_after);
            let reason = with_reason.then(|| ReasonInfo {
                protocol: t.clone().into(),
                cause,
                text: reason_text.map(Into::into),
            });
            let rec = record(
                &call_id,
                suffix.as_deref(),
                &t,
                if v6 { "[2001:db8::7]:5061" } else { "192.0.2.9:5060" },
                setup,
                answer,
                end,
                reason,
                ends[reason_kind],
                code,
                &phrase,
                pdd.map(Duration::from_nanos),
                ring.map(Duration::from_nanos),
                ended_by.map(|c| if c { Party::Caller } else { Party::Callee }),
            );
            let opts = CdrOptions::default();
            prop_assert_eq!(direct(&rec, &opts), via_serde(&rec, &opts));
        }

        #[test]
        fn the_escape_check_is_the_bytewise_one(
            v in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let bytewise = v
                .iter()
                .any(|&c| c < 0x20 || c == b'"' || c == b'\\' || c == 0xc2);
            prop_assert_eq!(needs_escape(&v), bytewise);
        }
    }
}
