//! Reading tariff plan CSV files with the `csv` crate.
//!
//! CGRateS's files are comma separated, use `#` for header and comment
//! lines, may hold blank lines, and come with LF, CRLF or (from old Mac
//! editors) CR-only line ends. Quoted fields (`"a,b"`, `""` for a quote)
//! are accepted. Records may differ in length (older layouts carry extra
//! columns); the loader checks each file's widths itself. Every record
//! keeps the physical line it starts on, so errors point at line and
//! column (the 1-based field number).

use std::borrow::Cow;
use std::path::Path;

use crate::Error;

/// The data lines of one CSV file: every trimmed field in one string,
/// so a 100,000-line file costs a few allocations, not one per line.
#[derive(Debug, Default)]
pub struct Records {
    text: String,
    /// Byte range of each field in `text`.
    fields: Vec<(usize, usize)>,
    /// Per line: its number and its range in `fields`.
    rows: Vec<(usize, usize, usize)>,
}

impl Records {
    /// The lines, in file order.
    pub fn iter(&self) -> impl Iterator<Item = Record<'_>> {
        self.rows.iter().map(|&(line, from, to)| Record {
            line,
            text: &self.text,
            fields: self.fields.get(from..to).unwrap_or(&[]),
        })
    }

    /// Adds a line from its raw fields, checked as UTF-8 (the error names
    /// the field) and trimmed; drops it again if it is blank or a comment
    /// after leading spaces.
    fn push_line(&mut self, path: &Path, line: usize, raw: &csv::ByteRecord) -> Result<(), Error> {
        let (text_mark, from) = (self.text.len(), self.fields.len());
        for (i, f) in raw.iter().enumerate() {
            let text = std::str::from_utf8(f).map_err(|_| {
                parse_err(path, line, i + 1, "UTF-8 text", &String::from_utf8_lossy(f))
            })?;
            let start = self.text.len();
            self.text.push_str(text.trim());
            self.fields.push((start, self.text.len()));
        }
        let skip = {
            let fields = self.fields.get(from..).unwrap_or(&[]);
            let first = fields
                .first()
                .and_then(|&(a, b)| self.text.get(a..b))
                .unwrap_or("");
            first.starts_with('#') || (fields.len() == 1 && first.is_empty())
        };
        if skip {
            self.text.truncate(text_mark);
            self.fields.truncate(from);
        } else {
            self.rows.push((line, from, self.fields.len()));
        }
        Ok(())
    }
}

/// One data line of a CSV file.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// 1-based line number where the record starts.
    pub line: usize,
    text: &'a str,
    fields: &'a [(usize, usize)],
}

impl<'a> Record<'a> {
    /// Field `i` (0-based), trimmed of surrounding blanks, or "" when the
    /// line is shorter.
    pub fn field(&self, i: usize) -> &'a str {
        self.fields
            .get(i)
            .and_then(|&(a, b)| self.text.get(a..b))
            .unwrap_or("")
    }

    /// How many fields the line has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the line has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

fn parse_err(path: &Path, line: usize, column: usize, expected: &str, found: &str) -> Error {
    Error::Load {
        file: path.to_owned(),
        line,
        column,
        expected: expected.to_owned(),
        found: found.to_owned(),
    }
}

/// Splits `bytes` (the contents of `path`) into records, skipping `#`
/// lines and blank lines.
///
/// # Errors
/// [`Error::Load`] naming `path`, line and column for text that is not
/// UTF-8 and for a quote that never closes.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Records, Error> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let bytes = lone_cr_to_lf(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(bytes.as_ref());
    let mut lines = LineCounter::new(&bytes);
    let mut records = Records::default();
    let mut raw = csv::ByteRecord::new();
    let mut last_start = None;
    loop {
        let before = reader.position().byte();
        let more = reader.read_byte_record(&mut raw);
        // The reader's own positions count from where it started reading,
        // blank and comment lines included: find the record's first byte.
        let start = record_start(&bytes, usize::try_from(before).unwrap_or(usize::MAX));
        let line = lines.line_at(start);
        match more {
            Ok(true) => {}
            Ok(false) => break,
            // Reading from memory without headers or fixed widths, the
            // reader has no other error than I/O; report it where it arose.
            Err(e) => return Err(parse_err(path, line, 1, "CSV text", &e.to_string())),
        }
        last_start = Some((start, line));
        records.push_line(path, line, &raw)?;
    }
    // The reader ends a quoted field that never closes at the end of the
    // text; only the last record can hold one.
    if let Some((start, line)) = last_start
        && let Some(column) = unclosed_quote(&bytes[start..])
    {
        return Err(parse_err(
            path,
            line,
            column,
            "a closing quote",
            "end of file",
        ));
    }
    Ok(records)
}

/// CR-only line ends as LF: the reader splits records on a lone CR but
/// ends comment lines only at LF, so a CR-only file would be one comment.
fn lone_cr_to_lf(bytes: &[u8]) -> Cow<'_, [u8]> {
    let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(lone) {
        return Cow::Borrowed(bytes);
    }
    Cow::Owned(
        (0..bytes.len())
            .map(|i| if lone(i) { b'\n' } else { bytes[i] })
            .collect(),
    )
}

/// The first byte of the record the reader reads from `at`: after blank
/// lines and `#` comment lines, as the reader skips them.
fn record_start(bytes: &[u8], mut at: usize) -> usize {
    loop {
        match bytes.get(at) {
            Some(b'\r' | b'\n') => at += 1,
            Some(b'#') => {
                at = bytes[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |n| at + n + 1);
            }
            _ => return at.min(bytes.len()),
        }
    }
}

/// Physical line numbers of byte offsets, asked in increasing order.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line holding byte `at` (line ends are LF by now).
    fn line_at(&mut self, at: usize) -> usize {
        let at = at.min(self.bytes.len());
        if at > self.offset {
            self.line += self.bytes[self.offset..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.offset = at;
        }
        self.line
    }
}

/// The 1-based field number of a quote that opens a field in `record` and
/// never closes, with the reader's rules: a quote opens a field only as
/// its first byte, and `""` inside quotes is a quote.
fn unclosed_quote(record: &[u8]) -> Option<usize> {
    let mut field = 1;
    let mut at_field_start = true;
    let mut open = None;
    let mut bytes = record.iter().peekable();
    while let Some(&b) = bytes.next() {
        if open.is_some() {
            if b == b'"' {
                if bytes.peek() == Some(&&b'"') {
                    bytes.next();
                } else {
                    open = None;
                }
            }
            continue;
        }
        match b {
            b'"' if at_field_start => open = Some(field),
            b',' => {
                field += 1;
                at_field_start = true;
                continue;
            }
            // The record ended without an open quote.
            b'\n' | b'\r' => return None,
            _ => {}
        }
        at_field_start = false;
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record, owned, to index in tests.
    #[derive(Debug)]
    struct Owned {
        line: usize,
        fields: Vec<String>,
    }

    impl Owned {
        fn field(&self, i: usize) -> &str {
            self.fields.get(i).map_or("", String::as_str)
        }
    }

    fn parse(text: &str) -> Result<Vec<Owned>, Error> {
        let recs = super::parse(Path::new("T.csv"), text.as_bytes())?;
        Ok(recs
            .iter()
            .map(|r| Owned {
                line: r.line,
                fields: (0..r.len()).map(|i| r.field(i).to_owned()).collect(),
            })
            .collect())
    }

    /// The error's (line, column).
    fn at(e: &Error) -> (usize, usize) {
        match e {
            Error::Load { line, column, .. } => (*line, *column),
            other => panic!("not a load error: {other}"),
        }
    }

    #[test]
    fn skips_comments_and_blank_lines_and_keeps_line_numbers() {
        let text = "#Id,Prefix\nDST_1,1001\n\n# note\r\nDST_2, 1002 \nDST_3,1003";
        let recs = parse(text).unwrap();
        let lines: Vec<usize> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 5, 6]);
        assert_eq!(recs[1].field(1), "1002");
        assert_eq!(recs[2].field(0), "DST_3");
        assert_eq!(recs[2].field(7), "");
    }

    #[test]
    fn quoted_fields_with_commas_quotes_and_newlines() {
        let text = "a,\"b,c\",\"say \"\"hi\"\"\"\n\"multi\nline\",x\nlast,1\n";
        let recs = parse(text).unwrap();
        assert_eq!(recs[0].field(1), "b,c");
        assert_eq!(recs[0].field(2), "say \"hi\"");
        assert_eq!(recs[1].field(0), "multi\nline");
        assert_eq!(recs[1].line, 2);
        assert_eq!(recs[2].line, 4);
    }

    #[test]
    fn unclosed_quote_is_an_error_with_position() {
        assert_eq!(at(&parse("ok,1\nx,\"open\n").unwrap_err()), (2, 2));
        // A quote inside a field is just a character.
        assert_eq!(parse("a,b\"c\n").unwrap()[0].field(1), "b\"c");
    }

    #[test]
    fn cr_only_line_ends_parse_with_comments_and_line_numbers() {
        let recs = parse("#Id,Prefix\rDST_1,1001\r\r# note\rDST_2,1002\r").unwrap();
        let got: Vec<(usize, &str)> = recs.iter().map(|r| (r.line, r.field(1))).collect();
        assert_eq!(got, vec![(2, "1001"), (5, "1002")]);
    }

    #[test]
    fn crlf_and_mixed_line_ends_count_lines_alike() {
        let recs = parse("#h\r\nA,1\r\n\r\nB,2\nC,3\rD,4").unwrap();
        let lines: Vec<usize> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4, 5, 6]);
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let e = super::parse(Path::new("T.csv"), b"#h\nA,1\nB,x\xff\xfey,3\n").unwrap_err();
        assert_eq!(at(&e), (3, 2));
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn byte_order_mark_and_blank_space_lines_are_skipped() {
        let recs = parse("\u{feff}#h\n   \nA,1\n  # indented note\n").unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!((recs[0].line, recs[0].field(0)), (3, "A"));
    }
}
