//! Everything the binary prints: SIP packets (`sniff`), CDRs (`replay`),
//! and the counters on stderr.

mod cdr;
mod cdr_json;
mod packet;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use capture::{Stats, Timestamp};
use chrono::{DateTime, SecondsFormat, Utc};

pub(crate) use cdr::{CdrFormat, CdrWriter};
pub(crate) use packet::{PacketFormat, PacketPrinter};

/// RFC 3339, UTC, microseconds: `2026-11-23T12:00:00.123456Z`.
pub(crate) fn rfc3339_micros(ts: Timestamp) -> String {
    match DateTime::<Utc>::from_timestamp(ts.secs(), ts.subsec_nanos()) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Micros, true),
        None => format!("@{}ns", ts.as_nanos()),
    }
}

/// A wire string made safe for a terminal: C0 controls, DEL and C1
/// controls become `\xNN` (`\u{NN}` for C1), and `\` becomes `\\`, so
/// a Call-ID holding `ESC[2J` cannot clear the operator's screen and the
/// escaped form cannot be mistaken for a literal one. Borrowed when there
/// is nothing to escape (the usual case).
pub(crate) fn escape_controls(s: &str) -> Cow<'_, str> {
    let needs = |c: char| c.is_control() || c == '\\';
    if !s.chars().any(needs) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            // char::is_control is exactly C0, DEL and C1.
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Writes `value` as one JSON line. serde escapes C0 controls; C1 controls
/// (U+0080..U+009F, which some terminals obey, e.g. U+009B as CSI) are valid
/// raw in JSON, so they are written as `\u00XX` too. They can only occur
/// inside strings, where the escape means the same character.
pub(crate) fn write_json_line(
    out: &mut impl Write,
    value: &impl serde::Serialize,
) -> io::Result<()> {
    let json = serde_json::to_vec(value)?;
    let mut rest = json.as_slice();
    // In UTF-8 a C1 control is 0xC2 followed by 0x80..=0x9F; 0xC2 never
    // appears as a continuation byte.
    while let Some(i) = rest
        .windows(2)
        .position(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
    {
        out.write_all(&rest[..i])?;
        write!(out, "\\u{:04x}", rest[i + 1])?;
        rest = &rest[i + 2..];
    }
    out.write_all(rest)?;
    out.write_all(b"\n")
}

/// Prints counters to stderr: every drop reason by name, zeros included,
/// so scripts can rely on the lines being there.
pub(crate) fn print_stats(label: &str, stats: &Stats, extra: &[(&str, u64)]) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "{label}: packets: {}", stats.packets);
    let _ = writeln!(e, "{label}: bytes: {}", stats.bytes);
    let _ = writeln!(e, "{label}: sip_messages: {}", stats.sip);
    let _ = writeln!(e, "{label}: dropped: {}", stats.total_drops());
    let _ = writeln!(e, "{label}: discarded_bytes: {}", stats.discarded_bytes);
    for (reason, n) in stats.drop_counts() {
        let _ = writeln!(e, "{label}: drop.{reason}: {n}");
    }
    for (k, v) in extra {
        let _ = writeln!(e, "{label}: {k}: {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert!(matches!(escape_controls("abc@host"), Cow::Borrowed(_)));
        assert_eq!(escape_controls("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(
            escape_controls("\r\n\t\x7f\u{85}"),
            "\\x0d\\x0a\\x09\\x7f\\u{85}"
        );
        assert_eq!(escape_controls("a\\x1b"), "a\\\\x1b");
        assert_eq!(escape_controls("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn json_lines_escape_c1_controls() {
        let mut v = Vec::new();
        write_json_line(&mut v, &["a\u{9b}b\u{e9}\u{85}", "\x1b"]).unwrap();
        let text = String::from_utf8(v).unwrap();
        assert_eq!(text, "[\"a\\u009bb\u{e9}\\u0085\",\"\\u001b\"]\n");
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ["a\u{9b}b\u{e9}\u{85}", "\x1b"]);
    }

    #[test]
    fn formats_microseconds_utc() {
        let t = Timestamp::from_secs_nanos(1_700_000_000, 123_456_789);
        assert_eq!(rfc3339_micros(t), "2023-11-14T22:13:20.123456Z");
    }
}
