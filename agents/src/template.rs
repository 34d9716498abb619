//! Request processors, as CGRateS's DiameterAgent and RadiusAgent
//! configure them: filters that pick the processor for a request, flags
//! that say which session operations run, and field templates that build
//! the CGREvent from the request (`request_fields`) and the answer from
//! the session's reply (`reply_fields`).
//!
//! The protocol cores (Diameter, RADIUS) only provide their message as a
//! [`DataProvider`] whose paths start with `*req.` (and `*vars.` for what
//! the agent knows besides the message); this module does the rest with
//! the subsystems' value templates ([`Template`]: `~*req.Path:s/re/repl/`
//! and `{*converters}`), substitution types ([`Kind`]) and filters
//! ([`FilterCtx`]: inline rules such as `*string:~*req.CC-Request-Type:1`).
//!
//! Written fields are readable by the fields after them: `~*cgreq.Account`
//! reads what an earlier field put at `*cgreq.Account`.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use subsystems::attributes::subst::{self, Kind};
use subsystems::attributes::value::{EvalError, Template};
use subsystems::{DataProvider, FilterCtx};

use crate::Error;

/// One field template as the configuration writes it (CGRateS's
/// `FCTemplate` JSON names).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FieldCfg {
    /// A name for logs (defaults to the path).
    #[serde(default)]
    pub tag: String,
    /// Where the value goes: `*cgreq.NAME` (the CGREvent's `Event`),
    /// `*opts.NAME` (its `APIOpts`), `*vars.NAME` (scratch, readable by
    /// later fields) or `*rep.NAME` (the answer; a protocol path such as
    /// `*rep.Granted-Service-Unit.CC-Time`).
    pub path: String,
    /// The substitution type (`*variable`, `*constant`, `*composed`,
    /// `*usage_difference`, `*sum`, ...); empty is `*variable`.
    #[serde(default, rename = "type")]
    pub kind: String,
    /// The value: constants and `~` paths separated by `;`.
    #[serde(default)]
    pub value: String,
    /// A missing path is an error (`MANDATORY_IE_MISSING`) instead of a
    /// skipped field.
    #[serde(default)]
    pub mandatory: bool,
    /// Filters the request must pass for this field to be written.
    #[serde(default)]
    pub filters: Vec<String>,
}

/// Where a field writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `*cgreq`: the CGREvent's `Event` map.
    CgrReq,
    /// `*opts`: the CGREvent's `APIOpts`.
    Opts,
    /// `*vars`: scratch values.
    Vars,
    /// `*rep`: the answer's fields, in order.
    Rep,
}

impl Target {
    fn prefix(self) -> &'static str {
        match self {
            Target::CgrReq => "*cgreq",
            Target::Opts => "*opts",
            Target::Vars => "*vars",
            Target::Rep => "*rep",
        }
    }
}

/// A compiled field template.
#[derive(Debug, Clone)]
pub struct Field {
    /// For logs.
    pub tag: String,
    /// Where it writes.
    pub target: Target,
    /// The name under the target (`Account`, `Granted-Service-Unit.CC-Time`).
    pub name: String,
    /// The substitution type.
    pub kind: Kind,
    /// The value.
    pub value: Template,
    /// Whether a missing path is an error.
    pub mandatory: bool,
    /// Filters for this field.
    pub filters: Vec<String>,
}

impl Field {
    /// Compiles `cfg`.
    ///
    /// # Errors
    /// [`Error::Template`]: an unknown target or type, a value that does
    /// not parse.
    pub fn compile(cfg: &FieldCfg) -> Result<Field, Error> {
        let bad = |what: String| Error::Template(format!("field {:?}: {what}", cfg.path));
        let (prefix, name) = cfg
            .path
            .split_once('.')
            .ok_or_else(|| bad("path must be *cgreq.X, *opts.X, *vars.X or *rep.X".into()))?;
        let target = match prefix {
            "*cgreq" => Target::CgrReq,
            "*opts" => Target::Opts,
            "*vars" => Target::Vars,
            "*rep" => Target::Rep,
            other => return Err(bad(format!("unknown target {other:?}"))),
        };
        if name.is_empty() {
            return Err(bad("empty name".into()));
        }
        let kind =
            Kind::parse(&cfg.kind).ok_or_else(|| bad(format!("unknown type {:?}", cfg.kind)))?;
        let value = Template::parse(&cfg.value, ';').map_err(bad)?;
        Ok(Field {
            tag: if cfg.tag.is_empty() {
                cfg.path.clone()
            } else {
                cfg.tag.clone()
            },
            target,
            name: name.to_owned(),
            kind,
            value,
            mandatory: cfg.mandatory,
            filters: cfg.filters.clone(),
        })
    }
}

/// Compiles a list of field templates.
///
/// # Errors
/// The first field that does not compile.
pub fn compile_fields(cfgs: &[FieldCfg]) -> Result<Vec<Field>, Error> {
    cfgs.iter().map(Field::compile).collect()
}

/// What the request fields built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Built {
    /// The CGREvent's `Event`.
    pub cgreq: Map<String, Value>,
    /// The CGREvent's `APIOpts`.
    pub opts: Map<String, Value>,
    /// Scratch values.
    pub vars: Map<String, Value>,
    /// Answer fields `(name, value)` in the order written; a name may
    /// repeat (several AVPs or attributes of one kind).
    pub rep: Vec<(String, String)>,
}

impl Built {
    /// The text written at `target.name`, the last one for `*rep`.
    #[must_use]
    pub fn get(&self, target: Target, name: &str) -> Option<&str> {
        match target {
            Target::Rep => self
                .rep
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str()),
            _ => self.map(target).get(name).and_then(Value::as_str),
        }
    }

    fn map(&self, target: Target) -> &Map<String, Value> {
        match target {
            Target::CgrReq => &self.cgreq,
            Target::Opts => &self.opts,
            Target::Vars | Target::Rep => &self.vars,
        }
    }

    fn set(&mut self, target: Target, name: &str, v: String, kind: Kind) {
        let appends = matches!(kind, Kind::Composed);
        match target {
            Target::Rep => {
                if appends && let Some(last) = self.rep.iter_mut().rev().find(|(n, _)| n == name) {
                    last.1.push_str(&v);
                    return;
                }
                self.rep.push((name.to_owned(), v));
            }
            _ => {
                let map = match target {
                    Target::CgrReq => &mut self.cgreq,
                    Target::Opts => &mut self.opts,
                    _ => &mut self.vars,
                };
                let v = match (appends, map.get(name).and_then(Value::as_str)) {
                    (true, Some(cur)) => format!("{cur}{v}"),
                    _ => v,
                };
                map.insert(name.to_owned(), Value::String(v));
            }
        }
    }

    /// The flattened CGREvent the session methods take: `Tenant`, `ID`,
    /// `Event` and `APIOpts` (v0.10's `Opts` too), plus `extra` (the
    /// method's switches).
    #[must_use]
    pub fn cgr_event(&self, tenant: &str, id: &str, extra: Map<String, Value>) -> Value {
        let mut args = extra;
        let tenant = self
            .cgreq
            .get("Tenant")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .unwrap_or(tenant);
        args.insert("Tenant".into(), tenant.into());
        args.insert("ID".into(), id.into());
        args.insert("Event".into(), Value::Object(self.cgreq.clone()));
        args.insert("APIOpts".into(), Value::Object(self.opts.clone()));
        args.insert("Opts".into(), Value::Object(self.opts.clone()));
        Value::Object(args)
    }
}

/// The request's provider with what the fields already wrote on top:
/// `*cgreq.`, `*opts.`, `*vars.` and `*rep.` paths read the written
/// values (falling back to the request's own `*vars.`).
struct Layered<'a> {
    base: &'a dyn DataProvider,
    built: &'a Built,
}

impl DataProvider for Layered<'_> {
    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        if let Some((prefix, name)) = path.split_once('.') {
            let target = match prefix {
                "*cgreq" => Some(Target::CgrReq),
                "*opts" => Some(Target::Opts),
                "*vars" => Some(Target::Vars),
                "*rep" => Some(Target::Rep),
                _ => None,
            };
            if let Some(t) = target {
                if let Some(v) = self.built.get(t, name) {
                    return Some(Cow::Borrowed(v));
                }
            }
        }
        self.base.field(path)
    }
}

/// Runs `fields` over `req` on top of `built` (so reply fields see what
/// the request fields wrote).
///
/// # Errors
/// [`Error::MandatoryMissing`] for a mandatory field whose path the
/// request lacks; [`Error::Template`] for a value that does not compute
/// or a filter that cannot be evaluated.
pub fn run_fields(
    fields: &[Field],
    req: &dyn DataProvider,
    filters: &FilterCtx<'_>,
    tenant: &str,
    now: DateTime<Utc>,
    built: &mut Built,
) -> Result<(), Error> {
    for f in fields {
        let (out, pass) = {
            let dp = Layered { base: req, built };
            let pass = filters
                .pass(tenant, &f.filters, &dp)
                .map_err(|e| Error::Template(format!("field {}: {e}", f.tag)))?;
            if !pass && !f.filters.is_empty() {
                (None, false)
            } else {
                let path = format!("{}.{}", f.target.prefix(), f.name);
                match subst::evaluate(f.kind, &f.value, &path, &dp, now) {
                    Ok(v) => (Some(v), true),
                    Err(EvalError::NotFound(_)) if f.mandatory => {
                        return Err(Error::MandatoryMissing(f.tag.clone()));
                    }
                    Err(EvalError::NotFound(_)) => (None, true),
                    Err(EvalError::Other(e)) => {
                        return Err(Error::Template(format!("field {}: {e}", f.tag)));
                    }
                }
            }
        };
        if let (Some(v), true) = (out, pass) {
            if f.mandatory && v.is_empty() && f.kind != Kind::None {
                return Err(Error::MandatoryMissing(f.tag.clone()));
            }
            built.set(f.target, &f.name, v, f.kind);
        }
    }
    Ok(())
}

/// One request processor as the configuration writes it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProcessorCfg {
    /// A name for logs and counters.
    #[serde(default)]
    pub id: String,
    /// Filters a request must pass for this processor to take it (inline
    /// rules over `*req.` and `*vars.` paths).
    #[serde(default)]
    pub filters: Vec<String>,
    /// The session flags (CGRateS's: `*initiate`, `*update`,
    /// `*terminate`, `*event`, `*message`, `*accounts`, `*attributes`,
    /// `*cdrs`, `*resources`, `*routes`, `*thresholds`, `*stats`, ...).
    #[serde(default)]
    pub flags: Vec<String>,
    /// Fields building the CGREvent.
    #[serde(default)]
    pub request_fields: Vec<FieldCfg>,
    /// Fields building the answer.
    #[serde(default)]
    pub reply_fields: Vec<FieldCfg>,
    /// After this processor, try the next ones too (CGRateS's
    /// `continue`).
    #[serde(default, rename = "continue")]
    pub continue_: bool,
}

/// A compiled request processor.
#[derive(Debug, Clone)]
pub struct Processor {
    /// Its name.
    pub id: String,
    /// Its selection filters.
    pub filters: Vec<String>,
    /// Its flags, as written.
    pub flags: Vec<String>,
    /// Request fields.
    pub request_fields: Vec<Field>,
    /// Reply fields.
    pub reply_fields: Vec<Field>,
    /// Whether later processors run too.
    pub continue_: bool,
}

impl Processor {
    /// Compiles `cfg`.
    ///
    /// # Errors
    /// A field that does not compile.
    pub fn compile(cfg: &ProcessorCfg) -> Result<Processor, Error> {
        Ok(Processor {
            id: cfg.id.clone(),
            filters: cfg.filters.clone(),
            flags: cfg.flags.clone(),
            request_fields: compile_fields(&cfg.request_fields)?,
            reply_fields: compile_fields(&cfg.reply_fields)?,
            continue_: cfg.continue_,
        })
    }

    /// Whether the processor has flag `name` (`*initiate`; a flag with
    /// IDs, `*attributes:ATTR1`, counts too).
    #[must_use]
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags
            .iter()
            .any(|f| f == name || f.split_once(':').is_some_and(|(n, _)| n == name))
    }

    /// The IDs given with flag `name` (`*attributes:A1;A2` gives A1, A2).
    #[must_use]
    pub fn flag_ids(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter_map(|f| f.split_once(':').filter(|(n, _)| *n == name))
            .flat_map(|(_, ids)| ids.split(';').map(str::to_owned))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether `req` passes this processor's filters (no filters: yes).
    ///
    /// # Errors
    /// A filter that cannot be evaluated.
    pub fn matches(
        &self,
        req: &dyn DataProvider,
        filters: &FilterCtx<'_>,
        tenant: &str,
    ) -> Result<bool, Error> {
        if self.filters.iter().all(String::is_empty) {
            return Ok(true);
        }
        filters
            .pass(tenant, &self.filters, req)
            .map_err(|e| Error::Template(format!("processor {}: {e}", self.id)))
    }
}

/// The processors that take `req`, in order: the first that matches, and
/// those after it while each says `continue`.
///
/// # Errors
/// A filter that cannot be evaluated.
pub fn select<'p>(
    processors: &'p [Processor],
    req: &dyn DataProvider,
    filters: &FilterCtx<'_>,
    tenant: &str,
) -> Result<Vec<&'p Processor>, Error> {
    let mut out = Vec::new();
    for p in processors {
        if p.matches(req, filters, tenant)? {
            out.push(p);
            if !p.continue_ {
                break;
            }
        }
    }
    Ok(out)
}

/// A session method's reply (or its error) seen as `*cgrep.` paths, on
/// top of the request: `~*cgrep.MaxUsage`, `~*cgrep.Error`,
/// `~*cgrep.Attributes.NAME` (the attributes' altered event fields).
pub struct ReplyProvider<'a> {
    /// The request.
    pub req: &'a dyn DataProvider,
    /// The reply object (`Null` when the call failed).
    pub reply: &'a Value,
    /// The call's error text, if it failed.
    pub error: Option<&'a str>,
}

impl DataProvider for ReplyProvider<'_> {
    fn field(&self, path: &str) -> Option<Cow<'_, str>> {
        let Some(rest) = path.strip_prefix("*cgrep.") else {
            return self.req.field(path);
        };
        if rest == "Error" {
            return Some(Cow::Borrowed(self.error.unwrap_or("")));
        }
        let mut cur = self.reply;
        let mut parts = rest.split('.');
        if let Some(first) = parts.next() {
            cur = if first == "Attributes" {
                // v0.10: Attributes.CGREvent.Event holds the altered event.
                let attrs = self.reply.get("Attributes")?;
                attrs
                    .pointer("/CGREvent/Event")
                    .or_else(|| attrs.get("Event"))
                    .unwrap_or(attrs)
            } else {
                cur.get(first)?
            };
        }
        for p in parts {
            cur = cur.get(p)?;
        }
        match cur {
            Value::Null => None,
            v => Some(subsystems::event::value_text(v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use subsystems::FilterSet;

    struct Req(HashMap<&'static str, &'static str>);
    impl DataProvider for Req {
        fn field(&self, path: &str) -> Option<Cow<'_, str>> {
            self.0.get(path).map(|v| Cow::Borrowed(*v))
        }
    }

    fn cfg(path: &str, kind: &str, value: &str) -> FieldCfg {
        FieldCfg {
            path: path.into(),
            kind: kind.into(),
            value: value.into(),
            ..FieldCfg::default()
        }
    }

    fn ctx(fs: &FilterSet) -> FilterCtx<'_> {
        FilterCtx {
            filters: fs,
            plan: None,
            now: Utc::now(),
        }
    }

    #[test]
    fn request_fields_build_the_event_and_read_each_other() {
        let req = Req(HashMap::from([
            ("*req.Session-Id", "s1"),
            ("*req.Called", "sip:+4930123@example.org"),
        ]));
        let fields = compile_fields(&[
            cfg("*cgreq.OriginID", "*variable", "~*req.Session-Id"),
            cfg("*cgreq.ToR", "*constant", "*voice"),
            cfg(
                "*cgreq.Destination",
                "*variable",
                "~*req.Called:s/^(?:sip:|tel:)?([^@]+).*$/${1}/",
            ),
            cfg("*vars.Copy", "*variable", "~*cgreq.Destination"),
            cfg("*cgreq.Note", "*variable", "x;~*vars.Copy"),
            cfg("*cgreq.Note", "*composed", "!"),
            cfg("*cgreq.Absent", "*variable", "~*req.Nothing"),
        ])
        .unwrap();
        let fs = FilterSet::default();
        let mut built = Built::default();
        run_fields(
            &fields,
            &req,
            &ctx(&fs),
            "cgrates.org",
            Utc::now(),
            &mut built,
        )
        .unwrap();
        assert_eq!(built.cgreq["OriginID"], "s1");
        assert_eq!(built.cgreq["ToR"], "*voice");
        assert_eq!(built.cgreq["Destination"], "+4930123");
        assert_eq!(built.cgreq["Note"], "x+4930123!");
        assert!(!built.cgreq.contains_key("Absent"));
        let ev = built.cgr_event("cgrates.org", "id1", Map::new());
        assert_eq!(ev["Event"]["OriginID"], "s1");
        assert_eq!(ev["Tenant"], "cgrates.org");
    }

    #[test]
    fn mandatory_and_filters() {
        let req = Req(HashMap::from([("*req.Type", "1")]));
        let mut c = cfg("*cgreq.Account", "*variable", "~*req.User");
        c.mandatory = true;
        let fields = compile_fields(&[c]).unwrap();
        let fs = FilterSet::default();
        let mut built = Built::default();
        let err = run_fields(&fields, &req, &ctx(&fs), "t", Utc::now(), &mut built).unwrap_err();
        assert_eq!(err, Error::MandatoryMissing("*cgreq.Account".into()));

        let mut only2 = cfg("*cgreq.Two", "*constant", "yes");
        only2.filters = vec!["*string:~*req.Type:2".into()];
        let mut only1 = cfg("*cgreq.One", "*constant", "yes");
        only1.filters = vec!["*string:~*req.Type:1".into()];
        let fields = compile_fields(&[only2, only1]).unwrap();
        let mut built = Built::default();
        run_fields(&fields, &req, &ctx(&fs), "t", Utc::now(), &mut built).unwrap();
        assert!(!built.cgreq.contains_key("Two"));
        assert_eq!(built.cgreq["One"], "yes");
    }

    #[test]
    fn processors_are_selected_by_filters_and_continue() {
        let req = Req(HashMap::from([("*req.CC-Request-Type", "1")]));
        let mk = |id: &str, filter: &str, cont: bool| {
            Processor::compile(&ProcessorCfg {
                id: id.into(),
                filters: vec![filter.into()],
                flags: vec!["*initiate".into(), "*attributes:A;B".into()],
                continue_: cont,
                ..ProcessorCfg::default()
            })
            .unwrap()
        };
        let ps = vec![
            mk("upd", "*string:~*req.CC-Request-Type:2", false),
            mk("init", "*string:~*req.CC-Request-Type:1", true),
            mk("any", "*string:~*req.CC-Request-Type:1", false),
            mk("never", "*string:~*req.CC-Request-Type:1", false),
        ];
        let fs = FilterSet::default();
        let got = select(&ps, &req, &ctx(&fs), "t").unwrap();
        let ids: Vec<&str> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["init", "any"]);
        assert!(got[0].has_flag("*attributes"));
        assert_eq!(got[0].flag_ids("*attributes"), ["A", "B"]);
        assert!(!got[0].has_flag("*terminate"));
    }

    #[test]
    fn reply_fields_read_the_reply() {
        let req = Req(HashMap::from([("*req.Session-Id", "s1")]));
        let reply = serde_json::json!({
            "MaxUsage": 300_000_000_000_i64,
            "Attributes": {"CGREvent": {"Event": {"Password": "secret"}}}
        });
        let rp = ReplyProvider {
            req: &req,
            reply: &reply,
            error: None,
        };
        let fields = compile_fields(&[
            cfg(
                "*rep.Granted-Service-Unit.CC-Time",
                "*variable",
                "~*cgrep.MaxUsage{*duration_seconds}",
            ),
            cfg(
                "*rep.Reply-Message",
                "*variable",
                "~*cgrep.Attributes.Password",
            ),
            cfg("*rep.Session-Id", "*variable", "~*req.Session-Id"),
            cfg("*rep.Err", "*variable", "~*cgrep.Error"),
        ])
        .unwrap();
        let fs = FilterSet::default();
        let mut built = Built::default();
        run_fields(&fields, &rp, &ctx(&fs), "t", Utc::now(), &mut built).unwrap();
        assert_eq!(
            built.rep,
            vec![
                ("Granted-Service-Unit.CC-Time".to_owned(), "300".to_owned()),
                ("Reply-Message".to_owned(), "secret".to_owned()),
                ("Session-Id".to_owned(), "s1".to_owned()),
                ("Err".to_owned(), String::new()),
            ]
        );
    }
}
