//! AttributeS (Attributes.csv): profiles that, for an event in a context
//! (`*sessions`, `*chargers`, `*cdrs`, `simpleauth`...), change its fields.
//!
//! A run picks one profile: among those of the event's tenant whose
//! contexts hold the asked context (or, when none of those matches, whose
//! contexts hold `*any`), active at the event's time, passing their
//! filters, the one of highest weight; on a tie the one loaded first. With
//! `profile_ids` only those profiles are candidates (context not checked;
//! an ID starting with `*` is an inline profile `*type:path:value`). Its
//! attributes apply in order, each when its own filters pass. With more
//! process runs the next run picks again on the changed event, skipping
//! the profile just applied (and, with `*profileRuns` in the options, any
//! applied that many times), until none matches or a blocker profile ran.

use std::path::Path;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

use crate::Error;
use crate::activation::ActivationInterval;

mod index;
mod json;
mod load;
pub mod subst;
pub mod value;

pub use subst::Kind;
pub use value::Template;

use value::EvalError;

/// One attribute: where, how and what to substitute.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// Filters the event must pass for this attribute to apply.
    pub filter_ids: Vec<String>,
    /// Where (`*req.Password`, `*opts.X`, `*vars.X`, `*tenant`; a path
    /// without prefix is an event field).
    pub path: String,
    /// The substitution type.
    pub kind: Kind,
    /// The value.
    pub value: Template,
}

/// An AttributeProfile.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeProfile {
    /// Tenant.
    pub tenant: String,
    /// ID.
    pub id: String,
    /// The contexts it serves (`*any`: all).
    pub contexts: Vec<String>,
    /// Filters the event must pass.
    pub filter_ids: Vec<String>,
    /// When it is in force.
    pub activation: ActivationInterval,
    /// The substitutions, in order.
    pub attributes: Vec<Attribute>,
    /// Whether no further run follows this profile.
    pub blocker: bool,
    /// Higher wins.
    pub weight: f64,
}

/// The profiles of one tariff plan, in load order.
#[derive(Debug, Clone, Default)]
pub struct AttributeProfiles {
    profiles: Vec<Arc<AttributeProfile>>,
    by_id: FxHashMap<(String, String), usize>,
    index: index::Index,
}

impl AttributeProfiles {
    /// Loads the file's records (master's and v0.10's
    /// `Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight`,
    /// and v0.9's `...,ActivationInterval,FieldName,Initial,Substitute,Append,Blocker,Weight`).
    /// Rows with the same Tenant and ID are one profile.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<AttributeProfiles, Error> {
        load::load(records, file)
    }

    /// Adds or replaces a profile (the index is rebuilt: for a few
    /// profiles, not a whole file).
    pub fn insert(&mut self, p: AttributeProfile) {
        self.push(p);
        self.reindex();
    }

    /// Adds or replaces a profile without rebuilding the index.
    fn push(&mut self, p: AttributeProfile) {
        let key = (p.tenant.clone(), p.id.clone());
        if let Some(&i) = self.by_id.get(&key)
            && let Some(slot) = self.profiles.get_mut(i)
        {
            *slot = Arc::new(p);
            return;
        }
        self.by_id.insert(key, self.profiles.len());
        self.profiles.push(Arc::new(p));
    }

    /// Removes the profile `id` of `tenant` (the index is rebuilt); the
    /// profile removed, if there was one.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<Arc<AttributeProfile>> {
        let i = self.by_id.remove(&(tenant.to_owned(), id.to_owned()))?;
        if i >= self.profiles.len() {
            return None;
        }
        let p = self.profiles.remove(i);
        for slot in self.by_id.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        self.reindex();
        Some(p)
    }

    fn reindex(&mut self) {
        self.index = index::Index::build(&self.profiles);
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&Arc<AttributeProfile>> {
        let i = self.by_id.get(&(tenant.to_owned(), id.to_owned()))?;
        self.profiles.get(*i)
    }

    /// The profiles, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<AttributeProfile>> {
        self.profiles.iter()
    }

    /// The IDs of `tenant`'s profiles, sorted.
    #[must_use]
    pub fn ids(&self, tenant: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .profiles
            .iter()
            .filter(|p| p.tenant == tenant)
            .map(|p| p.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// How many profiles there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.profiles.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.profiles.is_empty()
    }
}

/// What [`AttributeProfiles::process`] is asked.
#[derive(Debug, Clone, Default)]
pub struct AttrArgs {
    /// The context (`*sessions`, `*chargers`, `*cdrs`, `simpleauth`...;
    /// `*any` profiles match every context). v0.10's `Context` or
    /// `APIOpts.*context`.
    pub context: String,
    /// Only these profiles (v0.10's `AttributeIDs`,
    /// `APIOpts.*attributeIDs`); empty: every profile.
    pub profile_ids: Vec<String>,
    /// How many passes (`*processRuns`, at least 1).
    pub process_runs: usize,
}

/// What [`AttributeProfiles::process`] answers: CGRateS's
/// `AttrSProcessEventReply`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttrReply {
    /// The profiles applied, in order.
    pub matched_profiles: Vec<String>,
    /// The fields changed (`*req.Password`).
    pub altered_fields: Vec<String>,
    /// The event after the substitutions.
    pub event: crate::Event,
}

impl AttrReply {
    /// The reply as CGRateS v0.10 writes it:
    /// `{"MatchedProfiles":[..],"AlteredFields":[..],"CGREvent":{..}}`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "MatchedProfiles".into(),
            self.matched_profiles.clone().into(),
        );
        m.insert("AlteredFields".into(), self.altered_fields.clone().into());
        m.insert("CGREvent".into(), self.event.to_cgr_event());
        Value::Object(m)
    }
}

impl AttrReply {
    /// CGRateS's digest of the altered event fields,
    /// `Field1:value1,Field2:value2` (`*req.` fields still present only), as
    /// SessionS answers it in `AttributesDigest`.
    #[must_use]
    pub fn digest(&self) -> String {
        let mut out = String::new();
        for f in &self.altered_fields {
            let name = f.strip_prefix("*req.").unwrap_or(f);
            let Some(v) = self.event.fields.get(name) else {
                continue;
            };
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
            out.push(':');
            out.push_str(&crate::event::value_text(v));
        }
        out
    }
}

impl AttributeProfile {
    /// An inline profile as ChargerS's AttributeIDs write one
    /// (`*constant:*req.RequestType:*none`; several joined by `;`, a
    /// value's parts by `&`): its ID is the text, it serves every context.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a rule that does not read.
    pub fn inline(tenant: &str, text: &str) -> Result<AttributeProfile, Error> {
        load::inline_profile(tenant, text).map_err(Error::Invalid)
    }
}

/// The `*vars` this module sets while it runs (removed from the reply).
const VAR_PROCESS_RUNS: &str = "*processRuns";
const VAR_PROCESSED: &str = "*processedProfileIDs";

impl AttributeProfiles {
    /// Applies the matching profiles to `ev`. Inline profile IDs
    /// (`*constant:*req.RequestType:*none`, as Chargers.csv writes them)
    /// are applied as they read.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no profile matched (CGRateS's NOT_FOUND),
    /// a filter or substitution error. A field still holding `*attributes`
    /// afterwards is `MANDATORY_IE_MISSING: [field]` ([`Error::Invalid`]).
    pub fn process(
        &self,
        ctx: &crate::FilterCtx<'_>,
        ev: crate::Event,
        args: &AttrArgs,
    ) -> Result<AttrReply, Error> {
        let runs = args.process_runs.max(1);
        let profile_runs = opt_usize(&ev, "*profileRuns");
        let had_vars = (
            ev.vars.contains_key(VAR_PROCESS_RUNS),
            ev.vars.contains_key(VAR_PROCESSED),
        );
        let mut ev = ev;
        let mut matched: Vec<String> = Vec::new();
        let mut altered: Vec<String> = Vec::new();
        let mut counts: FxHashMap<String, usize> = FxHashMap::default();
        let mut not_found = false;
        for run in 0..runs {
            ev.vars.insert(VAR_PROCESS_RUNS.into(), (run + 1).into());
            ev.vars.insert(VAR_PROCESSED.into(), matched.clone().into());
            let last = matched.last().map(String::as_str);
            let Some(prof) = self.pick(ctx, &ev, args, last, &counts, profile_runs)? else {
                not_found = run == 0;
                break;
            };
            let mut next = ev.clone();
            match apply(ctx, &prof, &mut next) {
                Ok(fields) => {
                    for f in fields {
                        if !altered.contains(&f) {
                            altered.push(f);
                        }
                    }
                }
                Err(EvalError::NotFound(_)) => {
                    not_found = run == 0;
                    break;
                }
                Err(EvalError::Other(e)) => {
                    return Err(Error::Invalid(format!("SERVER_ERROR: {e}")));
                }
            }
            ev = next;
            *counts.entry(prof.id.clone()).or_default() += 1;
            matched.push(prof.id.clone());
            if prof.blocker {
                break;
            }
        }
        if !had_vars.0 {
            ev.vars.remove(VAR_PROCESS_RUNS);
        }
        if !had_vars.1 {
            ev.vars.remove(VAR_PROCESSED);
        }
        if let Some((name, _)) = ev
            .fields
            .iter()
            .find(|(_, v)| v.as_str() == Some("*attributes"))
        {
            return Err(Error::Invalid(format!("MANDATORY_IE_MISSING: [{name}]")));
        }
        if not_found {
            return Err(Error::NotFound);
        }
        Ok(AttrReply {
            matched_profiles: matched,
            altered_fields: altered,
            event: ev,
        })
    }

    /// The profile [`AttributeProfiles::process`]'s first run would apply
    /// (`AttributeSv1.GetAttributeForEvent`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches; a filter error.
    pub fn profile_for_event(
        &self,
        ctx: &crate::FilterCtx<'_>,
        ev: &crate::Event,
        args: &AttrArgs,
    ) -> Result<Arc<AttributeProfile>, Error> {
        self.pick(ctx, ev, args, None, &FxHashMap::default(), 0)?
            .ok_or(Error::NotFound)
    }

    /// One run's choice.
    fn pick(
        &self,
        ctx: &crate::FilterCtx<'_>,
        ev: &crate::Event,
        args: &AttrArgs,
        last: Option<&str>,
        counts: &FxHashMap<String, usize>,
        profile_runs: usize,
    ) -> Result<Option<Arc<AttributeProfile>>, Error> {
        let at = ev.time.unwrap_or(ctx.now);
        let tenant = ev.tenant.as_str();
        let allowed = |id: &str| {
            last != Some(id)
                && (profile_runs == 0 || counts.get(id).copied().unwrap_or(0) < profile_runs)
        };
        let best_of = |cands: &mut dyn Iterator<Item = Arc<AttributeProfile>>| -> Result<
            Option<Arc<AttributeProfile>>,
            Error,
        > {
            let mut best: Option<Arc<AttributeProfile>> = None;
            for p in cands {
                if !allowed(&p.id) || best.as_ref().is_some_and(|b| b.weight >= p.weight) {
                    continue;
                }
                if !p.activation.is_active_at(at) || !ctx.pass(tenant, &p.filter_ids, ev)? {
                    continue;
                }
                best = Some(p);
            }
            Ok(best)
        };
        if !args.profile_ids.is_empty() {
            let mut inline_err = None;
            let mut cands = args.profile_ids.iter().filter_map(|id| {
                if id == "*none" {
                    // ChargerS's "no attributes": matches nothing.
                    None
                } else if id.starts_with('*') {
                    match load::inline_profile(tenant, id) {
                        Ok(p) => Some(Arc::new(p)),
                        Err(e) => {
                            inline_err.get_or_insert(e);
                            None
                        }
                    }
                } else {
                    self.get(tenant, id).cloned()
                }
            });
            let best = best_of(&mut cands)?;
            if let Some(e) = inline_err {
                return Err(Error::Invalid(format!("SERVER_ERROR: {e}")));
            }
            return Ok(best);
        }
        let context = if args.context.is_empty() {
            "*default"
        } else {
            args.context.as_str()
        };
        let of_context = |c: &str| {
            self.index
                .candidates(tenant, c, ev)
                .into_iter()
                .filter_map(|i| self.profiles.get(i).cloned())
        };
        if context != "*any"
            && let Some(p) = best_of(&mut of_context(context))?
        {
            return Ok(Some(p));
        }
        best_of(&mut of_context("*any"))
    }
}

/// An option given as a number or as text; 0 when absent or not a number.
fn opt_usize(ev: &crate::Event, key: &str) -> usize {
    match ev.opts.get(key) {
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .and_then(|f| format!("{:.0}", f.max(0.0).trunc()).parse().ok())
            })
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0),
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

/// Applies `prof`'s attributes to `ev`; the paths altered, in order.
fn apply(
    ctx: &crate::FilterCtx<'_>,
    prof: &AttributeProfile,
    ev: &mut crate::Event,
) -> Result<Vec<String>, EvalError> {
    let mut altered: Vec<String> = Vec::new();
    for attr in &prof.attributes {
        if !attr.filter_ids.is_empty() {
            match ctx.pass(&prof.tenant, &attr.filter_ids, &*ev) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(EvalError::Other(e.to_string())),
            }
        }
        let mut sub = subst::evaluate(attr.kind, &attr.value, &attr.path, &*ev, ctx.now)?;
        if !altered.contains(&attr.path) {
            altered.push(attr.path.clone());
        }
        if attr.path == "*tenant" {
            if attr.kind == Kind::Composed {
                ev.tenant.push_str(&sub);
            } else {
                ev.tenant = sub;
            }
            continue;
        }
        let (map, key) = target(ev, &attr.path);
        if sub == "*remove" {
            map.remove(key);
            continue;
        }
        if attr.kind == Kind::Composed
            && let Some(cur) = map.get(key)
        {
            sub = crate::event::value_text(cur).into_owned() + &sub;
        }
        map.insert(key.to_owned(), Value::String(sub));
    }
    Ok(altered)
}

/// The map and key a path writes to.
fn target<'e, 'p>(
    ev: &'e mut crate::Event,
    path: &'p str,
) -> (&'e mut Map<String, Value>, &'p str) {
    if let Some(k) = path.strip_prefix("*opts.") {
        (&mut ev.opts, k)
    } else if let Some(k) = path.strip_prefix("*vars.") {
        (&mut ev.vars, k)
    } else {
        (&mut ev.fields, path.strip_prefix("*req.").unwrap_or(path))
    }
}

#[cfg(test)]
mod tests;
