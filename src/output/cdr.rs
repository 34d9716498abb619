//! CDRs as a table, JSON lines or CSV, for `replay`.

use std::io::{self, Write};

use sessions::cdr::rfc3339;
use sessions::{Cdr, CdrOptions};
use sip_fsm::CallRecord;

use super::cdr_json::JsonCdrWriter;
use super::escape_controls;

/// How `replay` prints CDRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CdrFormat {
    /// A readable table.
    Table,
    /// One JSON object per line, CGRateS field names.
    Json,
    /// CSV with a header line of CGRateS field names; `ExtraFields` is one
    /// column holding a JSON object.
    Csv,
}

/// The CGRateS field names, in the order `csv` writes them.
const CSV_HEADER: &str = "CGRID,RunID,OriginID,OriginHost,Source,ToR,RequestType,Tenant,\
Category,Account,Subject,Destination,SetupTime,AnswerTime,Usage,Cost,DisconnectCause,ExtraFields";

/// Writes CDRs in one format.
pub(crate) struct CdrWriter<W: Write> {
    out: W,
    format: CdrFormat,
    header_done: bool,
    json: JsonCdrWriter,
}

impl<W: Write> CdrWriter<W> {
    pub(crate) fn new(out: W, format: CdrFormat) -> Self {
        CdrWriter {
            out,
            format,
            header_done: false,
            json: JsonCdrWriter::new(),
        }
    }

    /// The CDR of `rec` as [`CdrWriter::write`] of
    /// [`Cdr::from_record`] would write it; JSON lines go straight from
    /// the record into a reused buffer.
    pub(crate) fn write_record(&mut self, rec: &CallRecord, opts: &CdrOptions) -> io::Result<()> {
        match self.format {
            CdrFormat::Json => self.json.write(rec, opts, &mut self.out),
            CdrFormat::Csv | CdrFormat::Table => self.write(&Cdr::from_record(rec, opts)),
        }
    }

    pub(crate) fn write(&mut self, c: &Cdr) -> io::Result<()> {
        match self.format {
            CdrFormat::Json => super::write_json_line(&mut self.out, c),
            CdrFormat::Csv => self.csv(c),
            CdrFormat::Table => self.table(c),
        }
    }

    fn csv(&mut self, c: &Cdr) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            writeln!(self.out, "{CSV_HEADER}")?;
        }
        let extra = serde_json::to_string(&c.extra_fields)?;
        let fields: [&str; 18] = [
            &c.cgrid,
            &c.run_id,
            &c.origin_id,
            &c.origin_host,
            &c.source,
            &c.tor,
            &c.request_type,
            &c.tenant,
            &c.category,
            &c.account,
            &c.subject,
            &c.destination,
            &rfc3339(c.setup_time),
            &c.answer_time.map(rfc3339).unwrap_or_default(),
            &c.usage_nanos().to_string(),
            &c.cost.map(|d| d.to_string()).unwrap_or_default(),
            &c.disconnect_cause,
            &extra,
        ];
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.write_all(b",")?;
            }
            write_csv_field(&mut self.out, f)?;
        }
        self.out.write_all(b"\n")
    }

    fn table(&mut self, c: &Cdr) -> io::Result<()> {
        if !self.header_done {
            self.header_done = true;
            writeln!(
                self.out,
                "{:<27} {:>12} {:<15} {:<10} {:<14} {:<14} {:<9} {:>10} CALL-ID",
                "SETUP (UTC)", "USAGE (s)", "END", "CAUSE", "ACCOUNT", "DESTINATION", "PDD", "COST"
            )?;
        }
        let ns = c.usage_nanos();
        let usage = format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1_000);
        // Every string here may come from the wire (the Call-ID, users,
        // Reason): escaped so it cannot drive the terminal.
        let x = |k: &str| escape_controls(c.extra_fields.get(k).map_or("-", String::as_str));
        writeln!(
            self.out,
            "{:<27} {:>12} {:<15} {:<10} {:<14} {:<14} {:<9} {:>10} {}",
            rfc3339(c.setup_time),
            usage,
            x(sessions::cdr::extra::END_REASON),
            x(sessions::cdr::extra::SIP_CODE),
            escape_controls(&c.account),
            escape_controls(&c.destination),
            x(sessions::cdr::extra::PDD),
            c.cost.map_or_else(|| "-".to_owned(), |d| d.to_string()),
            escape_controls(&c.origin_id)
        )
    }

    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break, doubling
/// its quotes.
fn write_csv_field(out: &mut impl Write, f: &str) -> io::Result<()> {
    if f.contains([',', '"', '\n', '\r']) {
        out.write_all(b"\"")?;
        out.write_all(f.replace('"', "\"\"").as_bytes())?;
        out.write_all(b"\"")
    } else {
        out.write_all(f.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut v = Vec::new();
        write_csv_field(&mut v, "plain").unwrap();
        v.push(b'|');
        write_csv_field(&mut v, "{\"a\":\"b,c\"}").unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "plain|\"{\"\"a\"\":\"\"b,c\"\"}\""
        );
    }
}
