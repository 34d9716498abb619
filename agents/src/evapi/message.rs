//! The JSON messages Kamailio sends over evapi, as CGRateS's tutorial
//! configuration (`kamailio-cgrates.cfg`) writes them: flat objects of
//! strings (`{"event":"CGR_CALL_START","h_entry":"1234",...}`), built by
//! string concatenation in the Kamailio script, and the `dlg.list` reply
//! relayed as `CGR_DLG_LIST_REPLY`.
//!
//! Because the script builds JSON by hand, a message is not always valid
//! JSON: the v0.10 tutorial writes a stray `"` into `Supplier`, and a
//! `$dlg_var` holding a quote or a control character breaks the object.
//! [`parse_event`] therefore reads strictly first and, when that fails,
//! re-reads the text as a flat object of strings in which a `"` closes a
//! string only where the object's grammar can continue (before `,`, `:` or
//! `}`); other quotes are kept as text, then quotes left at either end of a
//! recovered value are trimmed (Kamailio values never carry them
//! legitimately where a script adds them by mistake).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;

/// A flat Kamailio event: field name to text, in name order.
pub type KamEvent = BTreeMap<String, String>;

/// How an event was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// Valid JSON.
    Strict,
    /// Recovered by the lenient reading.
    Repaired,
}

/// Reads one evapi message as a flat event.
///
/// Non-string scalar values (numbers, booleans) are kept as their JSON text,
/// `null` as empty; a nested value (`jsonrpl_body`) is kept as its JSON text.
///
/// # Errors
/// [`Error::Json`] when the text is not an object even read leniently.
pub fn parse_event(data: &[u8]) -> Result<(KamEvent, Parsed), Error> {
    if let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(data) {
        let ev = m
            .into_iter()
            .map(|(k, v)| {
                let text = match v {
                    Value::String(s) => s,
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect();
        return Ok((ev, Parsed::Strict));
    }
    let text = String::from_utf8_lossy(data);
    lenient(&text).map(|ev| (ev, Parsed::Repaired))
}

/// The lenient reading of a flat object of strings (see the module docs).
fn lenient(text: &str) -> Result<KamEvent, Error> {
    let chars: Vec<char> = text.chars().collect();
    let mut p = Lenient { chars, pos: 0 };
    p.skip_ws();
    if !p.eat('{') {
        return Err(Error::Json("not an object".into()));
    }
    let mut out = KamEvent::new();
    p.skip_ws();
    if p.eat('}') {
        return p.end(out);
    }
    loop {
        p.skip_ws();
        let key = p.string(&[':'])?;
        p.skip_ws();
        if !p.eat(':') {
            return Err(Error::Json(format!("no ':' after key {key:?}")));
        }
        p.skip_ws();
        let value = if p.peek() == Some('"') {
            p.string(&[',', '}'])?
        } else {
            p.bare()?
        };
        out.insert(key, trim_quotes(&value));
        p.skip_ws();
        if p.eat(',') {
            continue;
        }
        if p.eat('}') {
            return p.end(out);
        }
        return Err(Error::Json("expected ',' or '}'".into()));
    }
}

/// A recovered value without the stray quotes at its ends.
fn trim_quotes(v: &str) -> String {
    v.trim_matches('"').to_string()
}

struct Lenient {
    chars: Vec<char>,
    pos: usize,
}

impl Lenient {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// The next non-whitespace character from `from`.
    fn next_solid(&self, from: usize) -> Option<char> {
        self.chars
            .get(from..)
            .and_then(|s| s.iter().find(|c| !c.is_whitespace()).copied())
    }

    fn end(&mut self, out: KamEvent) -> Result<KamEvent, Error> {
        self.skip_ws();
        match self.peek() {
            None => Ok(out),
            Some(_) => Err(Error::Json("text after the object".into())),
        }
    }

    /// A quoted string whose closing quote is the first unescaped `"`
    /// followed by one of `closers` (or the end of the text for `}`).
    fn string(&mut self, closers: &[char]) -> Result<String, Error> {
        if !self.eat('"') {
            return Err(Error::Json("expected a string".into()));
        }
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += 1;
            match c {
                '\\' => {
                    let Some(e) = self.peek() else { break };
                    self.pos += 1;
                    out.push(self.escape(e));
                }
                '"' => match self.next_solid(self.pos) {
                    Some(n) if closers.contains(&n) => return Ok(out),
                    // a stray quote: part of the text
                    _ => out.push('"'),
                },
                c => out.push(c),
            }
        }
        Err(Error::Json("unterminated string".into()))
    }

    /// The character an escape `\e` stands for (`\uXXXX` read here).
    fn escape(&mut self, e: char) -> char {
        match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'u' => {
                let hex: String = self.chars.iter().skip(self.pos).take(4).collect();
                match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    Some(c) if hex.len() == 4 => {
                        self.pos += 4;
                        c
                    }
                    _ => 'u',
                }
            }
            other => other,
        }
    }

    /// An unquoted scalar (number, `true`, `null`) up to `,` or `}`.
    fn bare(&mut self) -> Result<String, Error> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == ',' || c == '}' {
                break;
            }
            if c == '{' || c == '[' || c == '"' {
                return Err(Error::Json("nested value in a flat event".into()));
            }
            self.pos += 1;
        }
        let s: String = self
            .chars
            .get(start..self.pos)
            .unwrap_or_default()
            .iter()
            .collect();
        let s = s.trim();
        Ok(if s == "null" {
            String::new()
        } else {
            s.to_string()
        })
    }
}

/// The flags of `cgr_flags`: each `*name` with the IDs after its `:`.
///
/// The v0.10 tutorial separates flags with `,` (`*attributes,*accounts`)
/// and IDs with `;` (`*attributes:ATTR1;ATTR2`); master separates flags
/// with `;` and IDs with `&`. Both are read: the text is split on `,` and
/// `;`, and a piece that does not start with `*` is one more ID of the flag
/// before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    /// `(name, ids)` in the order given.
    pub list: Vec<(String, Vec<String>)>,
}

impl Flags {
    /// Parses a `cgr_flags` value.
    pub fn parse(text: &str) -> Flags {
        let mut list: Vec<(String, Vec<String>)> = Vec::new();
        for piece in text
            .split([',', ';'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if !piece.starts_with('*') {
                if let Some((_, ids)) = list.last_mut() {
                    ids.extend(piece.split('&').map(str::to_string));
                }
                continue;
            }
            let (name, ids) = match piece.split_once(':') {
                Some((n, rest)) => (n, ids_of(rest)),
                None => (piece, Vec::new()),
            };
            list.push((name.to_string(), ids));
        }
        Flags { list }
    }

    /// Whether `name` is given.
    pub fn has(&self, name: &str) -> bool {
        self.list.iter().any(|(n, _)| n == name)
    }

    /// The IDs given with `name` (the last occurrence wins).
    pub fn ids(&self, name: &str) -> Option<&[String]> {
        self.list
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, ids)| ids.as_slice())
    }
}

/// The IDs after a flag's `:` (master writes `*ids:A&B`).
fn ids_of(rest: &str) -> Vec<String> {
    let rest = rest.strip_prefix("*ids:").unwrap_or(rest);
    rest.split('&')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A Kamailio time field as RFC 3339 UTC: epoch seconds (`$TS`, possibly
/// with a fraction), RFC 3339, or `YYYY-MM-DD HH:MM:SS` read as UTC. An
/// empty value is no time (`Ok(None)`), as CGRateS reads it.
///
/// # Errors
/// [`Error::Time`] for anything else.
pub fn parse_time(field: &'static str, value: &str) -> Result<Option<String>, Error> {
    use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let bad = || Error::Time {
        field,
        value: value.to_string(),
    };
    let t: DateTime<Utc> = if v.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
        let secs: i64 = secs.parse().map_err(|_| bad())?;
        let nanos: u32 = if frac.is_empty() {
            0
        } else {
            let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            digits.parse().map_err(|_| bad())?
        };
        DateTime::from_timestamp(secs, nanos).ok_or_else(bad)?
    } else if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        t.with_timezone(&Utc)
    } else {
        NaiveDateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S")
            .map_err(|_| bad())?
            .and_utc()
    };
    Ok(Some(t.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_event_with_script_whitespace() {
        // the tutorial's strings span lines: newlines and tabs between fields
        let raw =
            "{\"event\":\"CGR_AUTH_REQUEST\",\n\t\t\"tr_index\":\"7\",\n\t\t\"Account\":\"1001\"}";
        let (ev, how) = parse_event(raw.as_bytes()).unwrap();
        assert_eq!(how, Parsed::Strict);
        assert_eq!(ev["event"], "CGR_AUTH_REQUEST");
        assert_eq!(ev["tr_index"], "7");
        assert_eq!(ev["Account"], "1001");
    }

    #[test]
    fn stray_quote_in_supplier_is_recovered() {
        // a doubled quote closing the last value, as the v0.10 CALL_END
        let raw =
            r#"{"event":"CGR_CALL_END","OriginID":"abc;1","Usage":"42","Supplier":"supplier1""}"#;
        assert!(serde_json::from_str::<Value>(raw).is_err());
        let (ev, how) = parse_event(raw.as_bytes()).unwrap();
        assert_eq!(how, Parsed::Repaired);
        assert_eq!(ev["Supplier"], "supplier1");
        assert_eq!(ev["Usage"], "42");
        assert_eq!(ev["OriginID"], "abc;1");
        // an empty $dlg_var plus the stray quote
        let raw = r#"{"event":"CGR_CALL_END","Supplier":"""}"#;
        let (ev, _) = parse_event(raw.as_bytes()).unwrap();
        assert_eq!(ev["Supplier"], "");
        // a quote inside a value, control characters, a bare number
        let raw = "{\"event\":\"X\",\"Subject\":\"say \"hi\" there\",\"n\":12,\"t\":\"a\tb\"}";
        let (ev, _) = parse_event(raw.as_bytes()).unwrap();
        assert_eq!(ev["Subject"], "say \"hi\" there");
        assert_eq!(ev["n"], "12");
        assert_eq!(ev["t"], "a\tb");
    }

    #[test]
    fn not_objects_are_refused() {
        for raw in [
            "",
            "[]",
            "\"x\"",
            "{\"a\":\"b\"",
            "{\"a\" \"b\"}",
            "{\"a\":{\"b\":1}",
            "{} x",
        ] {
            assert!(parse_event(raw.as_bytes()).is_err(), "{raw}");
        }
        assert!(parse_event(b"{}").unwrap().0.is_empty());
    }

    #[test]
    fn flags_both_separators() {
        let f = Flags::parse("*attributes,*accounts,*suppliers,*resources,*thresholds");
        assert!(f.has("*accounts") && f.has("*suppliers") && f.has("*thresholds"));
        assert!(!f.has("*stats"));
        let f = Flags::parse("*attributes:ATTR1;ATTR2,*accounts");
        assert_eq!(f.ids("*attributes").unwrap(), ["ATTR1", "ATTR2"]);
        assert!(f.has("*accounts"));
        let f = Flags::parse("*attributes:*ids:A&B;*accounts;*cdrs");
        assert_eq!(f.ids("*attributes").unwrap(), ["A", "B"]);
        assert!(f.has("*cdrs"));
        assert!(Flags::parse("").list.is_empty());
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("SetupTime", "1436280728").unwrap().unwrap(),
            "2015-07-07T14:52:08Z"
        );
        assert_eq!(
            parse_time("SetupTime", "1436280728.5").unwrap().unwrap(),
            "2015-07-07T14:52:08.500Z"
        );
        assert_eq!(
            parse_time("AnswerTime", "2015-07-07 14:52:08")
                .unwrap()
                .unwrap(),
            "2015-07-07T14:52:08Z"
        );
        assert_eq!(parse_time("AnswerTime", "").unwrap(), None);
        assert!(parse_time("AnswerTime", "soon").is_err());
        assert!(parse_time("AnswerTime", "99999999999999999999").is_err());
    }
}
