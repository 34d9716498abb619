//! A processor's flags as SessionSv1 calls (CGRateS's RadiusAgent:
//! `*authorize`, `*initiate`, `*update`, `*terminate`, `*message`,
//! `*event`, `*cdrs`), their v0.10 switches from the same flags as the
//! Kamailio agent's (`*accounts`, `*attributes`, `*resources`, ...).

use serde_json::{Map, Value};

use super::Call;
use crate::evapi::Flags;
use crate::evapi::ops::{Kind, switches};
use crate::template::{Built, Processor};

/// The calls `p` makes with the event `built`, in order.
pub(super) fn calls(p: &Processor, built: &Built, tenant: &str, id: &str) -> Vec<Call> {
    let flags = Flags {
        list: p
            .flags
            .iter()
            .map(|f| match f.split_once(':') {
                Some((n, ids)) => (
                    n.to_owned(),
                    ids.split(';')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                ),
                None => (f.clone(), Vec::new()),
            })
            .collect(),
    };
    let with = |kind: Option<Kind>| {
        let mut extra = Map::new();
        if let Some(k) = kind {
            switches(k, Some(&flags), &mut extra);
        }
        extra
    };
    let mut out = Vec::new();
    let mut push = |method: &'static str, extra: Map<String, Value>| {
        out.push(Call {
            method,
            args: built.cgr_event(tenant, id, extra),
        });
    };
    if p.has_flag("*authorize") {
        push("SessionSv1.AuthorizeEvent", with(Some(Kind::Authorize)));
    }
    if p.has_flag("*initiate") {
        push("SessionSv1.InitiateSession", with(Some(Kind::Initiate)));
    }
    if p.has_flag("*update") {
        let mut extra = Map::new();
        if p.has_flag("*accounts") {
            extra.insert("UpdateSession".into(), true.into());
        }
        if p.has_flag("*attributes") {
            extra.insert("GetAttributes".into(), true.into());
        }
        push("SessionSv1.UpdateSession", extra);
    }
    if p.has_flag("*terminate") {
        push("SessionSv1.TerminateSession", with(Some(Kind::Terminate)));
    }
    if p.has_flag("*message") {
        push("SessionSv1.ProcessMessage", with(Some(Kind::Message)));
    }
    if p.has_flag("*event") {
        let mut extra = Map::new();
        extra.insert(
            "Flags".into(),
            p.flags
                .iter()
                .filter(|f| *f != "*event")
                .cloned()
                .collect::<Vec<_>>()
                .into(),
        );
        push("SessionSv1.ProcessEvent", extra);
    }
    if p.has_flag("*cdrs") {
        push("SessionSv1.ProcessCDR", Map::new());
    }
    out
}
