//! Derived charging: one session event becomes its charging runs through
//! AttributeS (context `*sessions`) and ChargerS, as CGRateS's SessionS
//! does before it charges anything.
//!
//! A passive call has no flags: its event (the `[mapping]`'s SIP to
//! charging fields first) always goes through AttributeS when the plan
//! has attribute profiles, then through ChargerS when it has chargers.
//! A plan with neither changes nothing: one `*default` run, as before.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sessions::{Owner, SessionEvent};
use subsystems::attributes::{AttrArgs, AttrReply};
use subsystems::{Event, FilterCtx};

use crate::serve::methods::State;
use crate::serve::subsys::chargers;

/// The AttributeS context of session events.
pub(crate) const CONTEXT_SESSIONS: &str = "*sessions";

fn ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A session event as the subsystems read it (`*req` fields with
/// CGRateS's names, times RFC 3339, usages integer nanoseconds).
pub(crate) fn to_event(ev: &SessionEvent) -> Event {
    let mut f = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            f.insert(k.to_owned(), json!(v));
        }
    };
    put("Tenant", &ev.tenant);
    put("Account", &ev.account);
    put("Subject", &ev.subject);
    put("Destination", &ev.destination);
    put("Category", &ev.category);
    put("ToR", &ev.tor);
    put("RequestType", &ev.request_type);
    put("OriginID", &ev.origin_id);
    put("OriginHost", &ev.origin_host);
    put("Source", &ev.source);
    for (k, v) in &ev.extra_fields {
        f.insert(k.clone(), json!(v));
    }
    let time = |t: DateTime<Utc>| json!(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    if let Some(t) = ev.setup_time {
        f.insert("SetupTime".into(), time(t));
    }
    if let Some(t) = ev.answer_time {
        f.insert("AnswerTime".into(), time(t));
    }
    if let Some(u) = ev.usage {
        f.insert("Usage".into(), json!(ns(u)));
    }
    if let Some(u) = ev.last_used {
        f.insert("LastUsed".into(), json!(ns(u)));
    }
    let mut opts = Map::new();
    if let Some(d) = ev.debit_interval {
        opts.insert(sessions::manager::OPT_DEBIT_INTERVAL.into(), json!(ns(d)));
    }
    Event {
        tenant: if ev.tenant.is_empty() {
            "cgrates.org".to_owned()
        } else {
            ev.tenant.clone()
        },
        id: ev.id.clone(),
        time: None,
        fields: f,
        opts,
        vars: Map::new(),
    }
}

/// A run's event back as a session event of `owner`, for run `run`
/// (`None`: not a ChargerS run). The `RunID` field is the run, not an
/// extra field.
pub(crate) fn from_event(
    e: &Event,
    owner: Owner,
    run: Option<String>,
) -> Result<SessionEvent, sessions::Error> {
    let v = e.to_cgr_event();
    let mut m = match v {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    m.remove("Time");
    let mut sev = SessionEvent::from_cgr_event(&m, owner)?;
    sev.extra_fields.remove(subsystems::chargers::RUN_ID_FIELD);
    sev.run_id = run;
    Ok(sev)
}

/// AttributeS over `ev` with `context` (and only `ids` when given).
///
/// # Errors
/// [`subsystems::Error::NotFound`] when no profile matched; others.
pub(crate) fn attributes(
    state: &State,
    ev: Event,
    context: &str,
    ids: Vec<String>,
    now: DateTime<Utc>,
) -> Result<AttrReply, subsystems::Error> {
    let profiles = state.profiles.current();
    let plan = rating::TariffStore::current(&state.plan);
    let ctx = FilterCtx {
        filters: &profiles.filters,
        plan: Some(&plan),
        now,
    };
    let args = AttrArgs {
        context: context.to_owned(),
        profile_ids: ids,
        process_runs: 1,
    };
    profiles.attributes.process(&ctx, ev, &args)
}

/// The charging runs of `ev` (already through whatever attributes the
/// caller asked for): one session event per matching charger with its
/// run set, or `ev` itself as the one `*default` run when the plan has
/// no chargers.
///
/// # Errors
/// `NOT_FOUND` when chargers exist but none matched; filter, attribute
/// and event errors.
pub(crate) fn runs(
    state: &State,
    ev: &Event,
    owner: &Owner,
    now: DateTime<Utc>,
) -> Result<Vec<SessionEvent>, DeriveError> {
    if !chargers::enabled(state) {
        return Ok(vec![from_event(ev, owner.clone(), None)?]);
    }
    let list = chargers::runs(state, ev, now)?;
    list.iter()
        .map(|r| Ok(from_event(&r.event, owner.clone(), Some(r.run_id()))?))
        .collect()
}

/// What deriving the runs can fail on.
#[derive(Debug)]
pub(crate) enum DeriveError {
    /// AttributeS or ChargerS.
    Subsys(subsystems::Error),
    /// The derived event does not make a session event.
    Session(sessions::Error),
}

impl From<subsystems::Error> for DeriveError {
    fn from(e: subsystems::Error) -> Self {
        DeriveError::Subsys(e)
    }
}

impl From<sessions::Error> for DeriveError {
    fn from(e: sessions::Error) -> Self {
        DeriveError::Session(e)
    }
}

impl std::fmt::Display for DeriveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeriveError::Subsys(e) => write!(f, "{e}"),
            DeriveError::Session(e) => write!(f, "{e}"),
        }
    }
}

/// Whether a passive call's event goes through any subsystem (the plan
/// has attributes, chargers or resources).
pub(crate) fn passive_subsystems(state: &State) -> bool {
    let p = state.profiles.current();
    p.has("Attributes.csv") || !p.chargers.is_empty() || p.has("Resources.csv")
}

/// A passive call's runs: `None` when the plan has neither attributes
/// nor chargers (today's one `*default` run, untouched) or when deriving
/// fails (logged: the call is still charged, as its one `*default` run).
/// Order: the `[mapping]` made `base`, AttributeS (`*sessions`) changes
/// it, ChargerS splits it.
pub(crate) fn passive_runs(
    state: &State,
    base: &SessionEvent,
    now: DateTime<Utc>,
) -> Option<Vec<SessionEvent>> {
    let profiles = state.profiles.current();
    let with_attrs = profiles.has("Attributes.csv");
    if !with_attrs && profiles.chargers.is_empty() {
        return None;
    }
    let mut ev = to_event(base);
    if with_attrs {
        match attributes(state, ev.clone(), CONTEXT_SESSIONS, Vec::new(), now) {
            Ok(r) => ev = r.event,
            Err(subsystems::Error::NotFound) => {}
            Err(e) => {
                tracing::warn!(origin = %base.origin_id, error = %e, "passive call: attributes failed; charged as it came");
            }
        }
    }
    match runs(state, &ev, &Owner::Passive, now) {
        Ok(mut runs) => {
            for r in &mut runs {
                // Times and usage stay the call's own.
                r.setup_time = base.setup_time;
                r.answer_time = base.answer_time;
                r.usage = base.usage;
            }
            Some(runs)
        }
        Err(e) => {
            tracing::warn!(origin = %base.origin_id, error = %e, "passive call: no charging run derived; charged as its *default run");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session event read by the subsystems and back is the same event
    /// (times, usages, extra fields, debit interval), the run set apart.
    #[test]
    fn session_events_round_trip_through_the_subsystems_shape() {
        let args = json!({"Tenant": "cgrates.org", "ID": "e1",
            "Event": {"OriginID": "o1", "OriginHost": "h", "Account": "1001",
                      "Subject": "s1", "Destination": "4930", "Category": "call",
                      "ToR": "*voice", "RequestType": "*prepaid",
                      "SetupTime": "2026-01-07T16:59:58Z",
                      "AnswerTime": "2026-01-07T17:00:00.5Z",
                      "Usage": "1m30s", "LastUsed": "10s", "Codec": "PCMA"},
            "APIOpts": {"*sessionsDebitInterval": "5s"}});
        let ev = SessionEvent::from_cgr_event(args.as_object().unwrap(), Owner::Api).unwrap();
        let mut e = to_event(&ev);
        assert_eq!(e.text("Usage"), "90000000000");
        let back = from_event(&e, Owner::Api, None).unwrap();
        assert_eq!(back, ev);
        e.set_text("RunID", "supplier");
        let run = from_event(&e, Owner::Passive, Some("supplier".into())).unwrap();
        assert_eq!(run.key().run_id, "supplier");
        assert_eq!(run.key().cgrid, ev.key().cgrid);
        assert!(!run.extra_fields.contains_key("RunID"));
        assert_eq!(run.owner, Owner::Passive);
    }
}
