//! A small CSV reader for tariff plan files.
//!
//! CGRateS's files are comma separated, use `#` for header and comment
//! lines, and may hold blank lines. Quoted fields (`"a,b"`, `""` for a
//! quote) are accepted. Every record keeps its line number so errors can
//! point at line and column.

use std::borrow::Cow;

/// One data line of a CSV file.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// 1-based line number where the record starts.
    pub line: usize,
    /// The fields, trimmed of surrounding blanks.
    pub fields: Vec<Cow<'a, str>>,
}

impl Record<'_> {
    /// Field `i` (0-based), or "" when the line is shorter.
    pub fn field(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |f| f.as_ref())
    }
}

/// A quote that never closes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UnclosedQuote {
    pub line: usize,
    pub column: usize,
}

/// Splits `text` into records, skipping `#` lines and blank lines.
pub(crate) fn parse(text: &str) -> Result<Vec<Record<'_>>, UnclosedQuote> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records = Vec::new();
    let mut line_no = 0;
    let mut rest = text;
    while !rest.is_empty() {
        line_no += 1;
        let (line, tail) = split_line(rest);
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            rest = tail;
            continue;
        }
        if !line.contains('"') {
            let fields = line.split(',').map(|f| Cow::Borrowed(f.trim())).collect();
            records.push(Record {
                line: line_no,
                fields,
            });
            rest = tail;
            continue;
        }
        let start_line = line_no;
        let (fields, consumed_lines, tail) = parse_quoted(rest, start_line)?;
        line_no += consumed_lines;
        records.push(Record {
            line: start_line,
            fields,
        });
        rest = tail;
    }
    Ok(records)
}

fn split_line(s: &str) -> (&str, &str) {
    match s.find('\n') {
        Some(i) => (s[..i].strip_suffix('\r').unwrap_or(&s[..i]), &s[i + 1..]),
        None => (s.strip_suffix('\r').unwrap_or(s), ""),
    }
}

/// Parses one record that contains quotes, possibly spanning lines.
/// Returns the fields, the number of extra lines consumed, and the rest.
fn parse_quoted(s: &str, line: usize) -> Result<(Vec<Cow<'_, str>>, usize, &str), UnclosedQuote> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut extra_lines = 0;
    let mut quote_col = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (in_quotes, c) {
            (true, '"') => {
                if matches!(chars.peek(), Some((_, '"'))) {
                    chars.next();
                    field.push('"');
                } else {
                    in_quotes = false;
                }
            }
            (true, '\n') => {
                extra_lines += 1;
                field.push('\n');
            }
            (true, c) => field.push(c),
            (false, '"') => {
                in_quotes = true;
                quote_col = fields.len() + 1;
                field.clear();
            }
            (false, ',') => fields.push(Cow::Owned(std::mem::take(&mut field).trim().to_owned())),
            (false, '\n') => {
                fields.push(Cow::Owned(field.trim().to_owned()));
                return Ok((fields, extra_lines, &s[i + 1..]));
            }
            (false, '\r') => {}
            (false, c) => field.push(c),
        }
    }
    if in_quotes {
        return Err(UnclosedQuote {
            line,
            column: quote_col,
        });
    }
    fields.push(Cow::Owned(field.trim().to_owned()));
    Ok((fields, extra_lines, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse("ok,1\nx,\"open\n").unwrap_err(),
            UnclosedQuote { line: 2, column: 2 }
        );
    }
}
