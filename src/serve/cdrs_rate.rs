//! `CDRsV1.RateCDRs`: re-rates the stored CDRs a filter selects with the
//! tariff plan in force (after a tariff change), as CGRateS v0.10's
//! `CDRServer.V1RateCDRs`. Its argument is CGRateS's `ArgRateCDRs`: the
//! `RPCCDRsFilter` fields at the top level, `Flags`, `Tenant`, `APIOpts`;
//! the reply is `"OK"`.
//!
//! Per CDR, by its request type:
//! - `*prepaid`, `*pseudoprepaid`, `*postpaid`: the account gives back
//!   what it paid for the call and pays the new cost, in one atomic update
//!   that also records the new cost in the session's charged mark
//!   ([`rating::rerate_session`]); then the stored CDR gets the new cost
//!   and CostSource `*cdrs`. The account is the truth of what was charged:
//!   re-rating twice with one plan moves nothing the second time, and a
//!   re-rate cut off between the account and the CDR (a crash) charges
//!   nothing more when it runs again. When the mark is gone (older than
//!   `[sessions] keep-charged-marks`), the CDR's cost is refunded as money
//!   on the default monetary balance (`docs/accounts.md`).
//! - `*rated`: the stored cost only.
//! - `*none`, unanswered calls: left as they are.
//!
//! A CDR that cannot be re-rated (its account is gone, no rate matches) is
//! left as it was and the others go on; the reply then names how many
//! failed and the first (CGRateS stops at the first).
//!
//! The accounts are changed on blocking threads (an fsync, a Redis round
//! trip), a chunk of CDRs at a time.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonrpc::RpcError;
use rating::{
    Account, AccountStoreExt, CallDescriptor, SessionCtx, TariffPlan, TariffStore as _, Tor,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use sessions::{Cdr, CostUpdate, RequestType};

use super::methods::{State, object};

/// The method answered here.
pub(crate) const METHOD: &str = "CDRsV1.RateCDRs";

/// CDRs re-rated per blocking task.
const CHUNK: usize = 256;

/// `CostSource` of a re-rated CDR, as CGRateS's CDR server writes it.
const COST_SOURCE: &str = "*cdrs";

/// Runs `CDRsV1.RateCDRs`.
pub(crate) async fn rate_cdrs(state: &Arc<State>, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "engine.ArgRateCDRs")?;
    check_flags(&m)?;
    let filter = super::cdrs::parse_filter(params)?;
    let server = |e: sessions::Error| RpcError::server(format!("SERVER_ERROR: {e}"));
    let list = state.cdrs.get(&filter).await.map_err(server)?;
    if list.is_empty() {
        return Err(RpcError::server("NOT_FOUND"));
    }
    let keep = state
        .sessions
        .get()
        .map_or(rating::DEFAULT_KEEP_MARKS, |s| s.keep_marks());
    let (mut rerated, mut failed) = (0u64, Vec::new());
    let mut rest = list;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(CHUNK));
        let chunk = std::mem::replace(&mut rest, tail);
        let st = Arc::clone(state);
        let outcomes = tokio::task::spawn_blocking(move || {
            let plan = st.plan.current();
            chunk
                .into_iter()
                .map(|c| {
                    let r = rerate_one(&st, &plan, &c, keep, Utc::now());
                    (c, r)
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| RpcError::server(format!("SERVER_ERROR: {e}")))?;
        for (cdr, r) in outcomes {
            match r {
                Ok(None) => {}
                Ok(Some(cost)) => {
                    if cdr.cost == Some(cost) && cdr.cost_source == COST_SOURCE {
                        continue;
                    }
                    let update = CostUpdate {
                        cost: Some(cost),
                        cost_source: COST_SOURCE.to_owned(),
                        extra_fields: std::collections::BTreeMap::new(),
                    };
                    match state
                        .cdrs
                        .update_cost(&cdr.cgrid, &cdr.run_id, &update)
                        .await
                    {
                        Ok(_) => rerated += 1,
                        Err(e) => failed.push((cdr, e.to_string())),
                    }
                }
                Err(e) => failed.push((cdr, e)),
            }
        }
    }
    for (c, e) in &failed {
        tracing::warn!(cgrid = %c.cgrid, run_id = %c.run_id, origin_id = %c.origin_id, error = %e, "CDR not re-rated");
    }
    tracing::info!(rerated, failed = failed.len(), "CDRsV1.RateCDRs");
    match failed.first() {
        None => Ok("\"OK\"".to_owned()),
        Some((c, e)) => Err(RpcError::server(format!(
            "SERVER_ERROR: {} CDR(s) not re-rated, first {}:{}: {e}",
            failed.len(),
            c.cgrid,
            c.run_id
        ))),
    }
}

/// `Flags`: `*rals` and `*store` are what this method does (on by
/// default); turning them off, and the subsystems AccuRate does not have
/// turned on, are refused rather than ignored.
fn check_flags(m: &Map<String, Value>) -> Result<(), RpcError> {
    let flags: Vec<String> = match m.get("Flags") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
            RpcError::new(
                jsonrpc::code::INVALID_PARAMS,
                format!(
                    "json: cannot unmarshal {} into Go struct field ArgRateCDRs.Flags of type []string",
                    jsonrpc::kind(v)
                ),
            )
        })?,
    };
    for f in &flags {
        let (name, arg) = f.split_once(':').unwrap_or((f.as_str(), "true"));
        let on = !matches!(arg, "false" | "0");
        let supported = match name {
            "*rals" | "*store" | "*rerate" => on,
            "*chargers" | "*attributes" | "*stats" | "*thresholds" | "*export" => !on,
            _ => false,
        };
        if !supported {
            return Err(RpcError::server(format!(
                "SERVER_ERROR: flag {f} is not supported (supported: *rals and *store, on)"
            )));
        }
    }
    Ok(())
}

/// Re-rates one CDR: its new cost, `None` when it is not rated (`*none`,
/// unanswered), or why it failed.
pub(super) fn rerate_one(
    state: &State,
    plan: &TariffPlan,
    cdr: &Cdr,
    keep: Duration,
    now: DateTime<Utc>,
) -> Result<Option<Decimal>, String> {
    let rt = RequestType::parse(&cdr.request_type).map_err(|e| e.to_string())?;
    let Some(answer) = cdr.answer_time else {
        return Ok(None);
    };
    let answer = DateTime::from_timestamp(answer.secs(), answer.subsec_nanos())
        .ok_or_else(|| format!("answer time {} out of range", answer.secs()))?;
    let f = Fields::of(cdr);
    let cd = CallDescriptor {
        tenant: f.tenant,
        category: f.category,
        subject: f.subject,
        account: &cdr.account,
        destination: &cdr.destination,
        tor: cdr.tor.parse().unwrap_or(Tor::Voice),
        start: answer,
        usage: cdr.usage,
        offset: Duration::ZERO,
    };
    match rt {
        RequestType::None => Ok(None),
        RequestType::Rated if cdr.usage.is_zero() => Ok(Some(Decimal::ZERO)),
        RequestType::Rated => plan
            .cost(&cd, state.mode)
            .map(|c| Some(c.cost.amount()))
            .map_err(|e| e.to_string()),
        RequestType::Prepaid | RequestType::PseudoPrepaid | RequestType::Postpaid => {
            charge(state, plan, cdr, &cd, keep, now)
                .map(|r| Some(r.new_cost))
                .map_err(|e| e.to_string())
        }
    }
}

/// The CDR's tenant, category and subject with CGRateS's defaults.
struct Fields<'a> {
    tenant: &'a str,
    category: &'a str,
    subject: &'a str,
}

impl<'a> Fields<'a> {
    fn of(c: &'a Cdr) -> Self {
        let or = |v: &'a str, d: &'a str| if v.is_empty() { d } else { v };
        Fields {
            tenant: or(&c.tenant, "cgrates.org"),
            category: or(&c.category, "call"),
            subject: or(&c.subject, &c.account),
        }
    }
}

/// The account's side: [`rating::rerate_session`] in one atomic update
/// of the account and the accounts its shared groups and its recorded
/// debit touch.
fn charge(
    state: &State,
    plan: &TariffPlan,
    cdr: &Cdr,
    cd: &CallDescriptor<'_>,
    keep: Duration,
    now: DateTime<Utc>,
) -> Result<rating::Rerated, rating::Error> {
    let session = rating::session_id(&cdr.cgrid, &cdr.run_id);
    let groups = super::accounts::plan_groups(state, plan);
    let keys = keys(state, plan, &groups, cd, &session)?;
    let ctx = |shared: bool| SessionCtx {
        session: &session,
        plan,
        mode: state.mode,
        groups: shared.then_some(&groups as &dyn rating::SharedGroups),
        now,
        keep_marks: keep,
    };
    let r = if let [(t, a)] = keys.as_slice() {
        state.accounts.update_with(t, a, |acct| {
            rating::rerate_session(std::slice::from_mut(acct), &ctx(false), cd, cdr.cost)
        })?
    } else {
        let mut out = None;
        state.accounts.update_many(&keys, &mut |accts| {
            out = Some(rating::rerate_session(accts, &ctx(true), cd, cdr.cost)?);
            Ok(())
        })?;
        out.ok_or_else(|| rating::Error::Store("update did not run".into()))?
    };
    if r.changed {
        tracing::info!(cgrid = %cdr.cgrid, run_id = %cdr.run_id, account = %cdr.account,
            old = %r.old_cost, new = %r.new_cost, basis = ?r.basis, "CDR re-rated");
    }
    Ok(r)
}

/// The account charged, then the other accounts the re-rate may touch:
/// the members of its usable shared groups and the owners of the
/// balances its recorded debit took from (missing ones left out).
fn keys(
    state: &State,
    plan: &TariffPlan,
    groups: &dyn rating::SharedGroups,
    cd: &CallDescriptor<'_>,
    session: &str,
) -> Result<Vec<(String, String)>, rating::Error> {
    let me: Account = state.accounts.get(cd.tenant, cd.account)?.ok_or_else(|| {
        rating::Error::AccountNotFound {
            account: format!("{}:{}", cd.tenant, cd.account),
        }
    })?;
    let mut others: Vec<String> = rating::shared_members(&me, cd, plan, groups)
        .into_iter()
        .collect();
    if let Some(d) = me.sessions.get(session).and_then(|r| r.debit.as_ref()) {
        others.extend(d.charges.iter().map(|c| c.account.clone()));
    }
    let my_key = me.key();
    let mut keys = vec![(cd.tenant.to_owned(), cd.account.to_owned())];
    others.sort();
    others.dedup();
    for k in others.into_iter().filter(|k| *k != my_key) {
        if let Some((t, a)) = k.split_once(':')
            && state.accounts.get(t, a)?.is_some()
        {
            keys.push((t.to_owned(), a.to_owned()));
        }
    }
    Ok(keys)
}
