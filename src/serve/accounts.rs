//! The accounts service of `accurate serve`: CGRateS's account methods
//! (APIerSv1/APIerSv2 GetAccount, SetAccount, AddBalance, DebitUsage,
//! GetMaxUsage, ...) over an `Arc<dyn rating::AccountStore>`, the actions
//! and triggers they run, and the ActionPlan scheduler task.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonrpc::{RpcError, code};
use rating::{
    Account, AccountPlanData, AccountStoreExt, ActionDef, CallDescriptor, Effect, TariffStore, Tor,
};
use serde_json::{Map, Value};
use tokio::sync::watch;

use super::methods::{State, mandatory_missing, object, parse_usage, str_field};

/// Triggered actions may trigger again; this bounds the chain.
const MAX_TRIGGER_DEPTH: usize = 4;
/// GetMaxUsage without a Usage asks for this (CGRateS's default
/// `max_call_duration`).
const DEFAULT_MAX_USAGE: Duration = Duration::from_secs(3 * 3600);
/// The tenant when the caller gives none (CGRateS's `default_tenant`).
pub(crate) const DEFAULT_TENANT: &str = "cgrates.org";

/// A rating error as CGRateS spells it in an API reply.
pub(crate) fn rpc_error(e: &rating::Error) -> RpcError {
    match e {
        rating::Error::InsufficientCredit { .. } => RpcError::server("INSUFFICIENT_CREDIT"),
        rating::Error::AccountNotFound { .. } => RpcError::server("ACCOUNT_NOT_FOUND"),
        rating::Error::AccountDisabled { .. } => RpcError::server("ACCOUNT_DISABLED"),
        rating::Error::InvalidInput { .. } | rating::Error::Duration { .. } => {
            RpcError::new(code::INVALID_PARAMS, e.to_string())
        }
        rating::Error::Store(s) => RpcError::server(format!("SERVER_ERROR: {s}")),
        other => RpcError::server(format!("SERVER_ERROR: {}", other.reason())),
    }
}

fn not_found() -> RpcError {
    RpcError::server("NOT_FOUND")
}

/// Tenant (default `cgrates.org`) and the mandatory Account.
pub(crate) fn tenant_account(
    m: &Map<String, Value>,
    ty: &str,
) -> Result<(String, String), RpcError> {
    let account = str_field(m, "Account", ty)?;
    if account.is_empty() {
        return Err(mandatory_missing(&["Account"]));
    }
    let tenant = str_field(m, "Tenant", ty)?;
    let tenant = if tenant.is_empty() {
        DEFAULT_TENANT
    } else {
        tenant
    };
    Ok((tenant.to_owned(), account.to_owned()))
}

/// Changes one account, evaluates its triggers and runs what fires.
fn change<T>(
    state: &State,
    tenant: &str,
    id: &str,
    now: DateTime<Utc>,
    depth: usize,
    mut f: impl FnMut(&mut Account) -> Result<T, rating::Error>,
) -> Result<T, rating::Error> {
    let plan = state.plan.current();
    let data = plan.account_data();
    let (out, fired, groups, expiry) = state.accounts.update_with(tenant, id, |a| {
        let v = f(a)?;
        // CGRateS runs no triggers on a disabled account.
        let fired = if a.disabled {
            Vec::new()
        } else {
            rating::check_triggers(a, &data.triggers, now)
        };
        let groups: BTreeSet<String> = a
            .balances
            .values()
            .flatten()
            .flat_map(|b| b.shared_groups.iter().cloned())
            .collect();
        let expiry = rating::next_balance_expiry(a, &data.triggers, now);
        Ok((v, fired, groups, expiry))
    })?;
    set_membership(state, &format!("{tenant}:{id}"), &groups);
    super::expiry::track(state, tenant, id, expiry);
    for actions_id in fired {
        if depth >= MAX_TRIGGER_DEPTH {
            super::say(&format!(
                "serve: trigger chain on {tenant}:{id} deeper than {MAX_TRIGGER_DEPTH}: {actions_id} not run"
            ));
            break;
        }
        if let Err(e) = run_actions(state, data, tenant, id, &actions_id, now, depth + 1) {
            super::say(&format!(
                "serve: triggered actions {actions_id} on {tenant}:{id}: {e}"
            ));
        }
    }
    Ok(out)
}

/// Checks an account's triggers at `now` without changing it otherwise
/// (a watched balance expired) and runs what fires.
///
/// # Errors
/// [`rating::Error::AccountNotFound`], a store error.
pub(crate) fn check_account(
    state: &State,
    tenant: &str,
    id: &str,
    now: DateTime<Utc>,
) -> Result<(), rating::Error> {
    change(state, tenant, id, now, 0, |_| Ok(()))
}

/// Runs an ActionsID on an account; performs the effects.
pub(crate) fn run_actions(
    state: &State,
    data: &AccountPlanData,
    tenant: &str,
    id: &str,
    actions_id: &str,
    now: DateTime<Utc>,
    depth: usize,
) -> Result<(), rating::Error> {
    let acts = data
        .actions
        .get(actions_id)
        .ok_or_else(|| rating::Error::InvalidInput {
            what: "ActionsId",
            value: actions_id.to_owned(),
        })?;
    run_defs(state, tenant, id, acts, now, depth)
}

pub(crate) fn run_defs(
    state: &State,
    tenant: &str,
    id: &str,
    acts: &[ActionDef],
    now: DateTime<Utc>,
    depth: usize,
) -> Result<(), rating::Error> {
    let plan = state.plan.current();
    let triggers = &plan.account_data().triggers;
    let outcome = change(state, tenant, id, now, depth, |a| {
        rating::apply_actions_with(a, acts, triggers, now)
    })?;
    for e in outcome.effects {
        perform(state, tenant, id, e, now);
    }
    if outcome.remove_account {
        state.accounts.remove(tenant, id)?;
        lock(&state.schedule).remove_account(tenant, id);
        set_membership(state, &format!("{tenant}:{id}"), &BTreeSet::new());
        lock(&state.expiries).set(tenant, id, None);
        super::store::detach_account(state, tenant, id)?;
    }
    Ok(())
}

/// Records which shared groups an account holds balances in.
fn set_membership(state: &State, key: &str, groups: &BTreeSet<String>) {
    let mut m = lock(&state.members);
    for (g, members) in m.iter_mut() {
        if !groups.contains(g) {
            members.remove(key);
        }
    }
    for g in groups {
        m.entry(g.clone()).or_default().insert(key.to_owned());
    }
    m.retain(|_, members| !members.is_empty());
}

/// The plan's SharedGroups.csv rows with the members the server tracks
/// now (the session manager's shared groups).
pub(crate) fn plan_groups<'a>(state: &State, plan: &'a rating::TariffPlan) -> PlanGroups<'a> {
    PlanGroups {
        data: plan.account_data(),
        members: lock(&state.members).clone(),
    }
}

/// The plan's SharedGroups.csv rows with the members the server tracks.
pub(crate) struct PlanGroups<'a> {
    data: &'a AccountPlanData,
    members: BTreeMap<String, BTreeSet<String>>,
}

impl rating::SharedGroups for PlanGroups<'_> {
    fn shared_group(&self, id: &str) -> Option<rating::SharedGroup> {
        let rows = self.data.shared_groups.get(id)?;
        let members = self.members.get(id).cloned().unwrap_or_default();
        let mut strategies = BTreeMap::new();
        for r in rows {
            if &*r.account == "*any" || r.account.contains(':') {
                strategies.insert(r.account.to_string(), r.strategy);
            } else {
                // An account ID without its tenant: each member with it.
                for m in members
                    .iter()
                    .filter(|m| m.split_once(':').is_some_and(|(_, a)| a == &*r.account))
                {
                    strategies.insert(m.clone(), r.strategy);
                }
            }
        }
        Some(rating::SharedGroup {
            id: id.to_owned(),
            strategies,
            members,
        })
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs `*log`; stores `*cdrlog`'s CDRs and posts `*http_post` in the
/// background.
fn perform(state: &State, tenant: &str, id: &str, e: Effect, now: DateTime<Utc>) {
    match e {
        Effect::Log { account_json } => super::say(&format!("action *log: {account_json}")),
        Effect::Cdrlog { template, entries } => {
            match super::cdrlog::cdrs(tenant, id, &template, &entries, now) {
                Ok(cdrs) => match tokio::runtime::Handle::try_current() {
                    Ok(handle) => {
                        let w = state.cdr_writer.clone();
                        handle.spawn(async move {
                            for cdr in cdrs {
                                if w.submit(cdr).await.is_err() {
                                    tracing::warn!("*cdrlog CDR not stored: shutting down");
                                }
                            }
                        });
                    }
                    Err(_) => super::say("action *cdrlog: not stored (no runtime)"),
                },
                Err(e) => super::say(&format!("action *cdrlog {tenant}:{id}: {e}")),
            }
        }
        Effect::HttpPost { url, body } => {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if let Err(err) = post(&url, body).await {
                        super::say(&format!("action *http_post {url}: {err}"));
                    }
                });
            } else {
                super::say(&format!(
                    "action *http_post {url}: not performed (no runtime)"
                ));
            }
        }
    }
}

/// POSTs JSON to an `http://` URL, 10 s at most.
async fn post(url: &str, body: String) -> anyhow::Result<()> {
    use anyhow::Context;
    use http_body_util::Full;
    let uri: hyper::Uri = url.parse().context("invalid URL")?;
    if uri.scheme_str() != Some("http") {
        anyhow::bail!("only http:// URLs are posted");
    }
    let host = uri.host().context("no host")?.to_owned();
    let host_port = format!("{host}:{}", uri.port_u16().unwrap_or(80));
    let fut = async {
        let stream = tokio::net::TcpStream::connect(&host_port).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, host_port.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(bytes::Bytes::from(body)))?;
        let resp = sender.send_request(req).await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        anyhow::Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .context("timed out")?
}

/// Creates or updates the plan's accounts (flags and triggers; balances
/// kept), reschedules its ActionPlans and runs what is due (`*asap`).
/// Returns the number of accounts.
pub(crate) fn load_accounts(state: &State, now: DateTime<Utc>) -> Result<usize, rating::Error> {
    let plan = state.plan.current();
    let data = plan.account_data();
    for aa in data.account_actions.values() {
        let fresh = rating::initial_account(aa);
        if state.accounts.get(&aa.tenant, &aa.account)?.is_some() {
            state.accounts.update_with(&aa.tenant, &aa.account, |a| {
                a.allow_negative = fresh.allow_negative;
                a.disabled = fresh.disabled;
                a.action_triggers.clone_from(&fresh.action_triggers);
                Ok(())
            })?;
        } else {
            state.accounts.set(fresh)?;
        }
    }
    // The ActionPlans are anchored at this load (CGRateS's behaviour),
    // saved so a restart keeps their days and times.
    super::store::save_loaded_at(state, now)?;
    *lock(&state.schedule) = rating::Schedule::from_plan(data, now, now);
    run_due(state, now);
    // Stored accounts may hold shared-group balances and expiring ones.
    super::store::rebuild_index(state)?;
    state.wake.notify_one();
    Ok(data.account_actions.len())
}

/// Runs the ActionPlan runs due at `now`.
pub(crate) fn run_due(state: &State, now: DateTime<Utc>) {
    let due = lock(&state.schedule).due(now);
    if due.is_empty() {
        return;
    }
    let plan = state.plan.current();
    for d in due {
        if !super::store::claim_run(state, plan.account_data(), &d) {
            continue;
        }
        if let Err(e) = run_actions(
            state,
            plan.account_data(),
            &d.tenant,
            &d.account,
            &d.actions_id,
            now,
            0,
        ) {
            super::say(&format!(
                "serve: action plan {} ({}) on {}:{}: {e}",
                d.plan_id, d.actions_id, d.tenant, d.account
            ));
        }
    }
}

/// The scheduler task: sleeps until the next run (or a load changes the
/// schedule), runs what is due, stops with the server.
pub(crate) async fn scheduler(state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        let next = [
            lock(&state.schedule).next_wakeup(),
            lock(&state.expiries).next(),
        ]
        .into_iter()
        .flatten()
        .min();
        // At most an hour: the wall clock may jump (the runs are wall-clock
        // moments, the timer is monotonic).
        let sleep = next
            .map_or(Duration::from_secs(3600), |t| {
                (t - Utc::now()).to_std().unwrap_or(Duration::ZERO)
            })
            .min(Duration::from_secs(3600));
        tokio::select! {
            _ = stop.changed() => return,
            () = state.wake.notified() => continue,
            () = tokio::time::sleep(sleep) => {}
        }
        // Store calls block: off the async workers.
        let st = Arc::clone(&state);
        let _ = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            run_due(&st, now);
            super::expiry::run_expired(&st, now);
        })
        .await;
    }
}

/// `APIerSv1.GetAccount` / `APIerSv2.GetAccount`: `{Tenant, Account}` ->
/// the account JSON.
pub(crate) fn get_account(state: &State, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "AttrGetAccount";
    let m = object(params, "utils.AttrGetAccount")?;
    // CGRateS does not ask for the Account here: without one the account
    // `tenant:` is not found.
    let a = str_field(&m, "Account", TY)?;
    let t = match str_field(&m, "Tenant", TY)? {
        "" => DEFAULT_TENANT,
        t => t,
    };
    match state.accounts.get(t, a).map_err(|e| rpc_error(&e))? {
        Some(acc) => Ok(super::actionapi::account_json(state, &acc)),
        None => Err(not_found()),
    }
}

/// `APIerSv2.GetAccounts`: `{Tenant, AccountIDs, Offset, Limit}` -> a list.
pub(crate) fn get_accounts(state: &State, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "AttrGetAccounts";
    let m = object(params, "utils.AttrGetAccounts")?;
    let tenant = match str_field(&m, "Tenant", TY)? {
        "" => DEFAULT_TENANT,
        t => t,
    };
    let ids: Vec<String> = m
        .get("AccountIDs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut list = Vec::new();
    if ids.is_empty() {
        list = state.accounts.list(tenant).map_err(|e| rpc_error(&e))?;
    } else {
        for id in &ids {
            if let Some(a) = state.accounts.get(tenant, id).map_err(|e| rpc_error(&e))? {
                list.push(a);
            }
        }
    }
    let offset = m.get("Offset").and_then(Value::as_u64).unwrap_or(0);
    let limit = m.get("Limit").and_then(Value::as_u64).unwrap_or(0);
    let items = list
        .iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(if limit == 0 {
            usize::MAX
        } else {
            usize::try_from(limit).unwrap_or(usize::MAX)
        })
        .map(|a| super::actionapi::account_json(state, a))
        .collect::<Vec<_>>();
    Ok(format!("[{}]", items.join(",")))
}

fn ids_field(m: &Map<String, Value>, list_key: &str, one_key: &str) -> Option<Vec<String>> {
    if let Some(arr) = m.get(list_key).and_then(Value::as_array) {
        return Some(
            arr.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .filter(|s| !s.is_empty())
                .collect(),
        );
    }
    m.get(one_key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(|s| vec![s.to_owned()])
}

/// `APIerSv1.SetAccount` / `APIerSv2.SetAccount`: `{Tenant, Account,
/// ActionPlanID | ActionPlanIDs, ActionTriggersID | ActionTriggerIDs,
/// ExtraOptions: {AllowNegative, Disabled}}` -> `"OK"`. Creates the
/// account when missing; the ActionPlans are scheduled for it (`*asap`
/// rows run now).
pub(crate) fn set_account(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "utils.AttrSetAccount")?;
    let (t, a) = tenant_account(&m, "AttrSetAccount")?;
    let now = Utc::now();
    let plan = state.plan.current();
    let data = plan.account_data();
    let plans = ids_field(&m, "ActionPlanIDs", "ActionPlanID").unwrap_or_default();
    // CGRateS wraps the lookup's NOT_FOUND as a server error here.
    let unknown = || RpcError::server("SERVER_ERROR: NOT_FOUND");
    for p in &plans {
        if !data.action_plans.contains_key(p.as_str()) {
            return Err(unknown());
        }
    }
    let triggers = ids_field(&m, "ActionTriggerIDs", "ActionTriggersID");
    if let Some(ts) = &triggers {
        if ts.iter().any(|x| !data.triggers.contains_key(x.as_str())) {
            return Err(unknown());
        }
    }
    let opts = m.get("ExtraOptions").and_then(Value::as_object);
    let flag = |k: &str| {
        opts.and_then(|o| o.get(k))
            .or_else(|| m.get(k))
            .and_then(Value::as_bool)
    };
    let (neg, dis) = (flag("AllowNegative"), flag("Disabled"));
    let store = &state.accounts;
    if store.get(&t, &a).map_err(|e| rpc_error(&e))?.is_none() {
        store.set(Account::new(&t, &a)).map_err(|e| rpc_error(&e))?;
    }
    change(state, &t, &a, now, 0, |acc| {
        if let Some(x) = neg {
            acc.allow_negative = x;
        }
        if let Some(x) = dis {
            acc.disabled = x;
        }
        if let Some(ts) = &triggers {
            for x in ts {
                if !acc.action_triggers.contains(x) {
                    acc.action_triggers.push(x.clone());
                }
            }
        }
        acc.update_time = Some(now);
        Ok(())
    })
    .map_err(|e| rpc_error(&e))?;
    if !plans.is_empty() {
        let mut s = lock(&state.schedule);
        for p in &plans {
            s.add(data, &t, &a, p, now, now);
        }
        // Saved before the `*asap` rows run: a crash in between loses
        // them rather than running them twice after the restart.
        super::store::attach_plans(state, &t, &a, &plans, now).map_err(|e| rpc_error(&e.into()))?;
    }
    run_due(state, now);
    state.wake.notify_one();
    Ok("\"OK\"".to_owned())
}

/// `APIerSv1.RemoveAccount`: `{Tenant, Account}` -> `"OK"`, also for an
/// account that does not exist (CGRateS on its default Redis or internal
/// data DB deletes nothing and answers OK).
pub(crate) fn remove_account(state: &State, params: &Value) -> Result<String, RpcError> {
    let m = object(params, "utils.AttrRemoveAccount")?;
    let (t, a) = tenant_account(&m, "AttrRemoveAccount")?;
    state.accounts.remove(&t, &a).map_err(|e| rpc_error(&e))?;
    lock(&state.schedule).remove_account(&t, &a);
    set_membership(state, &format!("{t}:{a}"), &BTreeSet::new());
    lock(&state.expiries).set(&t, &a, None);
    super::store::detach_account(state, &t, &a).map_err(|e| rpc_error(&e.into()))?;
    Ok("\"OK\"".to_owned())
}

/// `APIerSv1.ExecuteAction`: `{Tenant, Account, ActionsId}` -> `"OK"`.
pub(crate) fn execute_action(state: &State, params: &Value) -> Result<String, RpcError> {
    const TY: &str = "AttrExecuteAction";
    let m = object(params, "v1.AttrExecuteAction")?;
    let actions_id = str_field(&m, "ActionsId", TY)?;
    let (t, a) = tenant_account(&m, TY)?;
    let plan = state.plan.current();
    let data = plan.account_data();
    // An empty or unknown ActionsId is not found (CGRateS looks it up).
    if !data.actions.contains_key(actions_id) {
        return Err(not_found());
    }
    // As CGRateS's ActionTiming.Execute: a missing account is created,
    // and kept only when the actions succeed.
    let store = &state.accounts;
    let created = store.get(&t, &a).map_err(|e| rpc_error(&e))?.is_none();
    if created {
        store.set(Account::new(&t, &a)).map_err(|e| rpc_error(&e))?;
    }
    if let Err(e) = run_actions(state, data, &t, &a, actions_id, Utc::now(), 0) {
        if created {
            // Best effort: the error reported is the actions'.
            let _ = store.remove(&t, &a);
        }
        return Err(rpc_error(&e));
    }
    Ok("\"OK\"".to_owned())
}

/// A usage record (`engine.UsageRecord`): tenant, account, the call.
struct UsageRecord {
    tenant: String,
    account: String,
    subject: String,
    category: String,
    destination: String,
    tor: Tor,
    answer: DateTime<Utc>,
    usage: Option<Duration>,
}

/// `debit`: DebitUsage requires Account, Destination and Usage (CGRateS's
/// list); GetMaxUsage requires a Destination only (CGRateS asks for
/// nothing: an empty Account is simply not found).
fn usage_record(params: &Value, debit: bool) -> Result<UsageRecord, RpcError> {
    const TY: &str = "UsageRecord";
    let m = object(params, "engine.UsageRecord")?;
    let account = str_field(&m, "Account", TY)?;
    let destination = str_field(&m, "Destination", TY)?;
    let mut missing = Vec::new();
    if debit && account.is_empty() {
        missing.push("Account");
    }
    if destination.is_empty() {
        missing.push("Destination");
    }
    let no_usage = match m.get("Usage") {
        None | Some(Value::Null) => true,
        Some(Value::String(u)) => u.is_empty(),
        _ => false,
    };
    if debit && no_usage {
        missing.push("Usage");
    }
    if !missing.is_empty() {
        return Err(mandatory_missing(&missing));
    }
    let s = |k: &str, d: &str| -> Result<String, RpcError> {
        Ok(match str_field(&m, k, TY)? {
            "" => d.to_owned(),
            v => v.to_owned(),
        })
    };
    let tor = match str_field(&m, "ToR", TY)? {
        "" => Tor::Voice,
        t => t
            .parse()
            .map_err(|()| RpcError::server(format!("SERVER_ERROR: unsupported ToR {t}")))?,
    };
    let answer = match str_field(&m, "AnswerTime", TY)? {
        "" => Utc::now(),
        s => super::methods::parse_answer_time(s, Utc::now())
            .map_err(|e| RpcError::new(code::INVALID_PARAMS, e))?,
    };
    let usage = match m.get("Usage") {
        None | Some(Value::Null) => None,
        v => Some(parse_usage(v)?),
    };
    Ok(UsageRecord {
        tenant: s("Tenant", DEFAULT_TENANT)?,
        account: account.to_owned(),
        subject: s("Subject", account)?,
        category: s("Category", "call")?,
        destination: destination.to_owned(),
        tor,
        answer,
        usage,
    })
}

impl UsageRecord {
    fn call(&self, usage: Duration) -> CallDescriptor<'_> {
        let mut cd = CallDescriptor::new(&self.subject, &self.destination, self.answer, usage);
        cd.tenant = &self.tenant;
        cd.account = &self.account;
        cd.category = &self.category;
        cd.tor = self.tor;
        cd
    }
}

/// Why [`debit_usage`]'s update of an account with shared groups stops
/// (never shown: the debit goes on by the shared path).
const TAKE_SHARED_PATH: &str = "the account draws on shared groups";

/// `APIerSv1.DebitUsage`: a UsageRecord -> `"OK"`.
pub(crate) fn debit_usage(state: &State, params: &Value) -> Result<String, RpcError> {
    let ur = usage_record(params, true)?;
    let usage = ur.usage.unwrap_or_default();
    let plan = state.plan.current();
    let cd = ur.call(usage);
    let now = Utc::now();
    // CGRateS's DebitUsage wraps every debit error: SERVER_ERROR: NOT_FOUND,
    // SERVER_ERROR: ACCOUNT_DISABLED, ...
    let wrap = |e: &rating::Error| {
        let inner = match e {
            rating::Error::AccountNotFound { .. } => "NOT_FOUND".to_owned(),
            e => rpc_error(e).message,
        };
        if inner.starts_with("SERVER_ERROR") {
            RpcError::server(inner)
        } else {
            RpcError::server(format!("SERVER_ERROR: {inner}"))
        }
    };
    // The usual case, an account without shared groups, is one atomic
    // update: whether it is disabled or draws on shared groups is checked
    // inside it, on the state the debit is computed from (no read before).
    let mut shared = false;
    let r = change(state, &ur.tenant, &ur.account, now, 0, |a| {
        shared = false;
        if a.disabled {
            return Err(rating::Error::AccountDisabled { account: a.key() });
        }
        if has_shared(a) {
            // Leaves the account untouched: the shared path below.
            shared = true;
            return Err(rating::Error::Store(TAKE_SHARED_PATH.to_owned()));
        }
        let out = rating::debit(a, &cd, &plan, state.mode, now)?;
        rating::record_debit(a, &out, &cd, &plan, &plan.account_data().triggers);
        Ok(())
    });
    match r {
        Ok(()) => return Ok("\"OK\"".to_owned()),
        Err(rating::Error::Store(s)) if shared && s == TAKE_SHARED_PATH => {}
        Err(e) => return Err(wrap(&e)),
    }
    // Locks the account with the groups' members; the counters and
    // triggers of the debited account follow in a second step.
    let groups = PlanGroups {
        data: plan.account_data(),
        members: lock(&state.members).clone(),
    };
    let out = state
        .accounts
        .debit_call_shared(
            &ur.tenant,
            &ur.account,
            &cd,
            &plan,
            &groups,
            state.mode,
            now,
        )
        .map_err(|e| wrap(&e))?;
    change(state, &ur.tenant, &ur.account, now, 0, |a| {
        rating::record_debit(a, &out, &cd, &plan, &plan.account_data().triggers);
        Ok(())
    })
    .map_err(|e| wrap(&e))?;
    Ok("\"OK\"".to_owned())
}

/// Whether the account holds a balance in a shared group.
fn has_shared(acc: &Account) -> bool {
    acc.balances
        .values()
        .flatten()
        .any(|b| !b.shared_groups.is_empty())
}

/// `APIerSv1.GetMaxUsage`: a UsageRecord -> the usage in nanoseconds.
pub(crate) fn get_max_usage(state: &State, params: &Value) -> Result<String, RpcError> {
    let ur = usage_record(params, false)?;
    let usage = ur
        .usage
        .filter(|u| !u.is_zero())
        .unwrap_or(DEFAULT_MAX_USAGE);
    let plan = state.plan.current();
    // CGRateS answers the data DB's NOT_FOUND as it is here.
    let acc = state
        .accounts
        .get(&ur.tenant, &ur.account)
        .map_err(|e| rpc_error(&e))?
        .ok_or_else(not_found)?;
    let cd = ur.call(usage);
    let max = if has_shared(&acc) {
        // Counted as DebitUsage would debit: the groups' members too.
        let groups = PlanGroups {
            data: plan.account_data(),
            members: lock(&state.members).clone(),
        };
        state.accounts.max_usage_call_shared(
            &ur.tenant,
            &ur.account,
            &cd,
            &plan,
            &groups,
            state.mode,
            Utc::now(),
        )
    } else {
        rating::max_usage(&acc, &cd, &plan, state.mode, Utc::now())
    }
    .map_err(|e| match e {
        rating::Error::AccountNotFound { .. } => not_found(),
        e => rpc_error(&e),
    })?;
    Ok(u64::try_from(max.as_nanos())
        .unwrap_or(u64::MAX)
        .to_string())
}
