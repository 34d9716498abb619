//! One line per SIP message, for `sniff`.

use std::io::{self, Write};

use capture::SipPacket;
use serde::Serialize;

use super::{escape_controls, rfc3339_micros};

/// The parts of a SIP message `sniff` shows.
pub(crate) struct Described<'a> {
    /// The request or status line.
    pub first_line: &'a str,
    /// The Call-ID header value, if any.
    pub call_id: Option<&'a str>,
}

/// Start line and Call-ID of a SIP message.
pub(crate) fn describe(payload: &[u8]) -> Described<'_> {
    let end = memchr_crlf(payload);
    let first_line = std::str::from_utf8(&payload[..end]).unwrap_or("<not utf-8>");
    let call_id =
        header_value(payload, &["call-id", "i"]).and_then(|v| std::str::from_utf8(v).ok());
    Described {
        first_line,
        call_id,
    }
}

/// First value of a header (any of `names`, lower case), scanning the
/// header block only.
fn header_value<'a>(msg: &'a [u8], names: &[&str]) -> Option<&'a [u8]> {
    for line in msg.split(|&c| c == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if names
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
        {
            return Some(line[colon + 1..].trim_ascii());
        }
    }
    None
}

fn memchr_crlf(b: &[u8]) -> usize {
    b.iter()
        .position(|&c| c == b'\r' || c == b'\n')
        .unwrap_or(b.len())
}

#[derive(Serialize)]
struct JsonLine<'a> {
    ts: String,
    src: String,
    dst: String,
    transport: &'static str,
    source: &'static str,
    capture_id: Option<u32>,
    node: Option<&'a str>,
    vlan: Option<u16>,
    len: usize,
    first_line: &'a str,
    call_id: Option<&'a str>,
}

/// How `sniff` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum PacketFormat {
    /// A readable table.
    Table,
    /// One JSON object per line.
    Json,
}

/// Writes packets in one format, with a header for tables.
pub(crate) struct PacketPrinter<W: Write> {
    out: W,
    format: PacketFormat,
    header_done: bool,
}

impl<W: Write> PacketPrinter<W> {
    pub(crate) fn new(out: W, format: PacketFormat) -> Self {
        PacketPrinter {
            out,
            format,
            header_done: false,
        }
    }

    pub(crate) fn print(&mut self, p: &SipPacket) -> io::Result<()> {
        let d = describe(&p.payload);
        match self.format {
            PacketFormat::Json => {
                let line = JsonLine {
                    ts: rfc3339_micros(p.ts),
                    src: p.src.to_string(),
                    dst: p.dst.to_string(),
                    transport: p.transport.as_str(),
                    source: p.source.as_str(),
                    capture_id: p.capture_id,
                    node: p.node.as_deref(),
                    vlan: p.vlan,
                    len: p.payload.len(),
                    first_line: d.first_line,
                    call_id: d.call_id,
                };
                super::write_json_line(&mut self.out, &line)
            }
            PacketFormat::Table => {
                if !self.header_done {
                    self.header_done = true;
                    writeln!(
                        self.out,
                        "{:<27} {:<4} {:<4} {:<22} {:<22} {:<24} FIRST LINE",
                        "TIME (UTC)", "SRC", "PROT", "FROM", "TO", "CALL-ID"
                    )?;
                }
                let ts = rfc3339_micros(p.ts);
                writeln!(
                    self.out,
                    "{:<27} {:<4} {:<4} {:<22} {:<22} {:<24} {}",
                    ts,
                    p.source.as_str(),
                    p.transport.as_str(),
                    p.src.to_string(),
                    p.dst.to_string(),
                    escape_controls(d.call_id.unwrap_or("-")),
                    escape_controls(d.first_line)
                )
            }
        }
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
