//! The event every subsystem reads: CGRateS's flattened CGREvent
//! (`Tenant`, `ID`, `Time`, `Event`, `APIOpts`), and the paths filters and
//! templates use to read it (`~*req.Account`, `~*opts.*context`,
//! `~*vars.X`).

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// A CGREvent: its fields (`*req`), options (`*opts`, from `APIOpts` or
/// v0.10's `Opts`) and variables set while it is processed (`*vars`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// Tenant (`cgrates.org` when not given).
    pub tenant: String,
    /// The CGREvent's `ID`.
    pub id: String,
    /// The CGREvent's `Time`, if given.
    pub time: Option<DateTime<Utc>>,
    /// `Event`: the fields (`~*req.X`).
    pub fields: Map<String, Value>,
    /// `APIOpts` (or `Opts`): the options (`~*opts.X`).
    pub opts: Map<String, Value>,
    /// Variables (`~*vars.X`), set by the processing itself.
    pub vars: Map<String, Value>,
}

/// What a filter or a template reads values from. `path` comes without
/// its leading `~` (`*req.Account`); `None` when the path leads nowhere.
pub trait DataProvider {
    /// The value at `path`, as CGRateS renders it to text.
    fn field(&self, path: &str) -> Option<Cow<'_, str>>;
    /// The raw JSON value at `path`, where the provider keeps one (numbers
    /// and times compare by value).
    fn value(&self, path: &str) -> Option<&Value> {
        let _ = path;
        None
    }
}

/// CGRateS's text form of an event value: strings as they are, numbers
/// and booleans as JSON writes them, `null` as "".
#[must_use]
pub fn value_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Null => Cow::Borrowed(""),
        other => Cow::Owned(other.to_string()),
    }
}

impl Event {
    /// From a flattened CGREvent JSON object. `Event`, `APIOpts` and
    /// `Opts` are optional; a `Time` that does not parse is ignored.
    #[must_use]
    pub fn from_cgr_event(v: &Value) -> Event {
        let get = |k: &str| v.get(k);
        let text = |k: &str| get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let mut tenant = text("Tenant");
        if tenant.is_empty() {
            "cgrates.org".clone_into(&mut tenant);
        }
        let mut opts = Map::new();
        for k in ["Opts", "APIOpts"] {
            if let Some(Value::Object(m)) = get(k) {
                opts.extend(m.clone());
            }
        }
        Event {
            tenant,
            id: text("ID"),
            time: get("Time")
                .and_then(Value::as_str)
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|t| t.with_timezone(&Utc)),
            fields: match get("Event") {
                Some(Value::Object(m)) => m.clone(),
                _ => Map::new(),
            },
            opts,
            vars: Map::new(),
        }
    }

    /// The CGREvent JSON object (`Tenant`, `ID`, `Time` when set, `Event`,
    /// `APIOpts`), as CGRateS answers it.
    #[must_use]
    pub fn to_cgr_event(&self) -> Value {
        let mut m = Map::new();
        m.insert("Tenant".into(), Value::String(self.tenant.clone()));
        m.insert("ID".into(), Value::String(self.id.clone()));
        m.insert(
            "Time".into(),
            self.time
                .map_or(Value::Null, |t| Value::String(t.to_rfc3339())),
        );
        m.insert("Event".into(), Value::Object(self.fields.clone()));
        m.insert("APIOpts".into(), Value::Object(self.opts.clone()));
        Value::Object(m)
    }

    /// A field of `Event` as text ("" when absent).
    #[must_use]
    pub fn text(&self, name: &str) -> Cow<'_, str> {
        self.fields.get(name).map_or(Cow::Borrowed(""), value_text)
    }

    /// Sets a field of `Event` to a string.
    pub fn set_text(&mut self, name: &str, value: impl Into<String>) {
        self.fields
            .insert(name.to_owned(), Value::String(value.into()));
    }

    /// The value at `path` (`*req.X`, `*opts.X`, `*vars.X`): a key of the
    /// map as it is, else a nested path (`*req.A.B`, `*req.List[0]`,
    /// `*req.Map[key]`).
    fn lookup(&self, path: &str) -> Option<&Value> {
        let (map, key) = if let Some(k) = path.strip_prefix("*req.") {
            (&self.fields, k)
        } else if let Some(k) = path.strip_prefix("*opts.") {
            (&self.opts, k)
        } else if let Some(k) = path.strip_prefix("*vars.") {
            (&self.vars, k)
        } else {
            return None;
        };
        if let Some(v) = map.get(key) {
            return Some(v);
        }
        if !key.contains(['.', '[']) {
            return None;
        }
        nested(map, key)
    }
}

/// Follows `a.b[0][k].c` from `map`.
fn nested<'v>(map: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    let mut segments = Vec::new();
    for part in path.split('.') {
        let (name, mut rest) = part.split_once('[').map_or((part, ""), |(n, r)| (n, r));
        if !name.is_empty() {
            segments.push(name);
        }
        while !rest.is_empty() {
            let (idx, after) = rest.split_once(']')?;
            segments.push(idx);
            rest = after.strip_prefix('[').unwrap_or(after);
        }
    }
    let (first, more) = segments.split_first()?;
    let mut cur = map.get(*first)?;
    for seg in more {
        cur = match cur {
            Value::Object(m) => m.get(*seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

impl DataProvider for Event {
    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        let path = path.strip_prefix('~').unwrap_or(path);
        self.lookup(path).map(value_text)
    }

    fn value(&self, path: &str) -> Option<&Value> {
        self.lookup(path.strip_prefix('~').unwrap_or(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_three_maps_and_both_opts_spellings() {
        let ev = Event::from_cgr_event(&json!({
            "ID": "e1",
            "Event": {"Account": "1001", "Usage": 60000000000_i64},
            "Opts": {"*context": "simpleauth"},
            "APIOpts": {"*processRuns": 2}
        }));
        assert_eq!(ev.tenant, "cgrates.org");
        assert_eq!(ev.field("~*req.Account").as_deref(), Some("1001"));
        assert_eq!(ev.field("*req.Usage").as_deref(), Some("60000000000"));
        assert_eq!(ev.field("~*opts.*context").as_deref(), Some("simpleauth"));
        assert_eq!(ev.field("~*opts.*processRuns").as_deref(), Some("2"));
        assert_eq!(ev.field("~*req.Nope"), None);
        assert_eq!(ev.field("~*cgreq.Account"), None);
    }

    #[test]
    fn nested_paths() {
        let mut ev = Event::from_cgr_event(&json!({
            "Event": {"A": {"B": "x", "L": [1, {"C": "y"}]}, "Dotted.Key": "d"}
        }));
        ev.vars.insert("V".into(), json!("v"));
        assert_eq!(ev.field("~*req.A.B").as_deref(), Some("x"));
        assert_eq!(ev.field("~*req.A.L[0]").as_deref(), Some("1"));
        assert_eq!(ev.field("~*req.A.L[1].C").as_deref(), Some("y"));
        assert_eq!(ev.field("~*req.A[B]").as_deref(), Some("x"));
        assert_eq!(ev.field("~*req.Dotted.Key").as_deref(), Some("d"));
        assert_eq!(ev.field("~*req.A.L[5]"), None);
        assert_eq!(ev.field("~*req.A.L[x"), None);
        assert_eq!(ev.field("~*req.A.B.C"), None);
        assert_eq!(ev.field("~*vars.V").as_deref(), Some("v"));
    }
}
