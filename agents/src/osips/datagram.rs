//! OpenSIPS `event_datagram` payloads.
//!
//! OpenSIPS 1.x/2.x write an event as its name on the first line, then one
//! argument a line, `name::value` (a value may be double-quoted); OpenSIPS
//! 3.x writes a JSON-RPC notification, `{"jsonrpc":"2.0","method":NAME,
//! "params":{...}}`. Both are read; a datagram is one event.

use serde_json::Value;

use crate::Error;

/// The largest datagram OpenSIPS sends (its documented maximum is 65457
/// bytes); anything longer is refused.
pub const MAX_DATAGRAM: usize = 65_535;

/// The most arguments one event may carry.
pub const MAX_ARGS: usize = 512;

/// One event OpenSIPS raised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OsipsEvent {
    /// The event's name (`E_ACC_CDR`, `E_ACC_EVENT`...).
    pub name: String,
    /// Its arguments in the order sent (an argument without a name has
    /// an empty one).
    pub args: Vec<(String, String)>,
}

impl OsipsEvent {
    /// The value of the first argument named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` when present and not empty.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }
}

/// Reads one datagram.
///
/// # Errors
/// [`Error::Datagram`] when it is too long, not UTF-8, has no event name,
/// too many arguments, or is a JSON-RPC payload without a `method`.
pub fn parse(data: &[u8]) -> Result<OsipsEvent, Error> {
    if data.len() > MAX_DATAGRAM {
        return Err(Error::Datagram(format!(
            "{} bytes exceed the maximum of {MAX_DATAGRAM}",
            data.len()
        )));
    }
    let text = std::str::from_utf8(data).map_err(|_| Error::Datagram("not UTF-8".into()))?;
    if text.trim_start().starts_with('{') {
        return parse_json(text);
    }
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let name = lines.next().unwrap_or_default().trim();
    if name.is_empty() || name.contains(['"', ' ', '\t']) {
        return Err(Error::Datagram(format!("bad event name {name:?}")));
    }
    let mut args = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        if args.len() == MAX_ARGS {
            return Err(Error::Datagram(format!("more than {MAX_ARGS} arguments")));
        }
        let (key, value) = match line.split_once("::") {
            Some((k, v)) => (k, v),
            None => ("", line),
        };
        args.push((key.trim().to_owned(), unquote(value).to_owned()));
    }
    Ok(OsipsEvent {
        name: name.to_owned(),
        args,
    })
}

/// A value without its surrounding double quotes.
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// OpenSIPS 3.x: a JSON-RPC notification.
fn parse_json(text: &str) -> Result<OsipsEvent, Error> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| Error::Datagram(format!("bad JSON-RPC: {e}")))?;
    let name = v
        .get("method")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Error::Datagram("JSON-RPC event without a method".into()))?;
    let mut args = Vec::new();
    match v.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, val) in m {
                if args.len() == MAX_ARGS {
                    return Err(Error::Datagram(format!("more than {MAX_ARGS} arguments")));
                }
                args.push((k.clone(), scalar(val)));
            }
        }
        Some(Value::Array(a)) => {
            for val in a {
                if args.len() == MAX_ARGS {
                    return Err(Error::Datagram(format!("more than {MAX_ARGS} arguments")));
                }
                args.push((String::new(), scalar(val)));
            }
        }
        Some(_) => return Err(Error::Datagram("JSON-RPC params not an object".into())),
    }
    Ok(OsipsEvent {
        name: name.to_owned(),
        args,
    })
}

/// A JSON value as the text OpenSIPS meant.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
