//! The JSON shape of CGRateS v0.10's `engine.Account` and `engine.Balance`,
//! for the API's replies and for storage.
//!
//! `ID` is `tenant:account`; `BalanceMap` maps a balance type to its
//! balances; sets are CGRateS's `StringMap` objects (`{"DST_MOBILE":
//! false}` for an exclusion); a missing time is Go's zero time
//! `0001-01-01T00:00:00Z`. Decimals are written as strings holding the
//! exact digits (serde cannot write an arbitrary-precision JSON number
//! without `serde_json`'s `arbitrary_precision`) and read from strings or
//! numbers (through a float, as serde_json parses them: exact to about 15
//! digits). [`Account::to_json`] writes the same shape with every decimal as
//! a JSON number holding its exact digits, for API replies.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Account, Balance, BalanceType, SessionCharges};
use crate::json::{json_number, push_str};

/// Go's zero `time.Time`, which CGRateS writes for "never".
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn ser_time<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => s.serialize_str(GO_ZERO_TIME),
    }
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let t = DateTime::parse_from_rfc3339(&s)
        .map_err(serde::de::Error::custom)?
        .with_timezone(&Utc);
    // Go's zero time (year 1) means "not set".
    Ok((t.year() > 1).then_some(t))
}

fn set_to_map(s: &BTreeSet<String>) -> BTreeMap<String, bool> {
    s.iter().map(|k| (k.clone(), true)).collect()
}

fn map_to_set(m: Option<BTreeMap<String, bool>>) -> BTreeSet<String> {
    m.unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.then_some(k))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct ActionTriggerRef {
    #[serde(rename = "ID")]
    id: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BalanceWire {
    uuid: String,
    #[serde(rename = "ID")]
    id: String,
    value: Decimal,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time", default)]
    expiration_date: Option<DateTime<Utc>>,
    #[serde(default)]
    weight: Decimal,
    #[serde(rename = "DestinationIDs", default)]
    destination_ids: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    rating_subject: String,
    #[serde(default)]
    categories: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    shared_groups: Option<BTreeMap<String, bool>>,
    /// Resolved timings: not kept here (see `TimingIDs`); always null.
    #[serde(default, skip_deserializing)]
    timings: Option<Vec<String>>,
    #[serde(rename = "TimingIDs", default)]
    timing_ids: Option<BTreeMap<String, bool>>,
    #[serde(default)]
    disabled: bool,
    #[serde(default)]
    factor: Option<BTreeMap<String, Decimal>>,
    #[serde(default)]
    blocker: bool,
}

impl From<&Balance> for BalanceWire {
    fn from(b: &Balance) -> Self {
        BalanceWire {
            uuid: b.uuid.clone(),
            id: b.id.clone(),
            value: b.value,
            expiration_date: b.expiration,
            weight: b.weight,
            destination_ids: Some(b.destination_ids.clone()),
            rating_subject: b.rating_subject.clone(),
            categories: Some(b.categories.clone()),
            shared_groups: Some(set_to_map(&b.shared_groups)),
            timings: None,
            timing_ids: Some(set_to_map(&b.timing_ids)),
            disabled: b.disabled,
            factor: (!b.factor.is_empty()).then(|| b.factor.clone()),
            blocker: b.blocker,
        }
    }
}

impl From<BalanceWire> for Balance {
    fn from(w: BalanceWire) -> Self {
        Balance {
            uuid: w.uuid,
            id: w.id,
            value: w.value,
            weight: w.weight,
            expiration: w.expiration_date,
            destination_ids: w.destination_ids.unwrap_or_default(),
            rating_subject: w.rating_subject,
            categories: w.categories.unwrap_or_default(),
            shared_groups: map_to_set(w.shared_groups),
            timing_ids: map_to_set(w.timing_ids),
            disabled: w.disabled,
            blocker: w.blocker,
            factor: w.factor.unwrap_or_default(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccountWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(default)]
    balance_map: Option<BTreeMap<String, Vec<BalanceWire>>>,
    #[serde(default)]
    action_triggers: Option<Vec<ActionTriggerRef>>,
    #[serde(default)]
    allow_negative: bool,
    #[serde(default)]
    disabled: bool,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time", default)]
    update_time: Option<DateTime<Utc>>,
    /// AccuRate's trigger state (not in CGRateS's shape): key -> last run
    /// (`executed` false: re-armed).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    trigger_runs: BTreeMap<String, TriggerRunWire>,
    /// AccuRate's event counters by balance type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    counters: BTreeMap<String, Decimal>,
    /// AccuRate's session records (reservations, charged marks).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sessions: BTreeMap<String, SessionCharges>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TriggerRunWire {
    executed: bool,
    #[serde(serialize_with = "ser_time", deserialize_with = "de_time", default)]
    last_execution_time: Option<DateTime<Utc>>,
}

impl Serialize for Balance {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        BalanceWire::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Balance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BalanceWire::deserialize(d).map(Balance::from)
    }
}

impl Serialize for Account {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let balance_map = self
            .balances
            .iter()
            .map(|(t, l)| {
                (
                    t.as_str().to_owned(),
                    l.iter().map(BalanceWire::from).collect(),
                )
            })
            .collect();
        AccountWire {
            id: self.key(),
            balance_map: Some(balance_map),
            action_triggers: (!self.action_triggers.is_empty()).then(|| {
                self.action_triggers
                    .iter()
                    .map(|id| ActionTriggerRef { id: id.clone() })
                    .collect()
            }),
            allow_negative: self.allow_negative,
            disabled: self.disabled,
            update_time: self.update_time,
            trigger_runs: self
                .trigger_runs
                .iter()
                .map(|(k, r)| {
                    (
                        k.clone(),
                        TriggerRunWire {
                            executed: r.executed,
                            last_execution_time: r.last_run,
                        },
                    )
                })
                .collect(),
            counters: self.counters.clone(),
            sessions: self.sessions.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Account {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = AccountWire::deserialize(d)?;
        let Some((tenant, id)) = w.id.split_once(':') else {
            return Err(serde::de::Error::custom(format!(
                "account ID {:?} is not tenant:account",
                w.id
            )));
        };
        let mut balances = BTreeMap::new();
        for (t, list) in w.balance_map.unwrap_or_default() {
            let t: BalanceType = t
                .parse()
                .map_err(|()| serde::de::Error::custom(format!("unknown balance type {t:?}")))?;
            balances.insert(t, list.into_iter().map(Balance::from).collect());
        }
        Ok(Account {
            tenant: tenant.to_owned(),
            id: id.to_owned(),
            balances,
            allow_negative: w.allow_negative,
            disabled: w.disabled,
            update_time: w.update_time,
            action_triggers: w
                .action_triggers
                .unwrap_or_default()
                .into_iter()
                .map(|a| a.id)
                .collect(),
            trigger_runs: w
                .trigger_runs
                .into_iter()
                .map(|(k, r)| {
                    (
                        k,
                        crate::actions::TriggerRun {
                            executed: r.executed,
                            last_run: r.last_execution_time,
                        },
                    )
                })
                .collect(),
            counters: w.counters,
            sessions: w.sessions,
        })
    }
}

/// `,"key":` (no comma after `{` or `[`).
fn key(out: &mut String, k: &str) {
    if !out.ends_with('{') && !out.ends_with('[') {
        out.push(',');
    }
    push_str(out, k);
    out.push(':');
}

fn time_json(out: &mut String, t: Option<DateTime<Utc>>) {
    match t {
        Some(t) => push_str(out, &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => push_str(out, GO_ZERO_TIME),
    }
}

fn bool_map<'a>(out: &mut String, k: &str, m: impl Iterator<Item = (&'a String, bool)>) {
    key(out, k);
    out.push('{');
    for (id, v) in m {
        key(out, id);
        out.push_str(if v { "true" } else { "false" });
    }
    out.push('}');
}

fn balance_json(out: &mut String, b: &Balance) {
    out.push('{');
    key(out, "Uuid");
    push_str(out, &b.uuid);
    key(out, "ID");
    push_str(out, &b.id);
    key(out, "Value");
    out.push_str(&json_number(b.value));
    key(out, "ExpirationDate");
    time_json(out, b.expiration);
    key(out, "Weight");
    out.push_str(&json_number(b.weight));
    bool_map(
        out,
        "DestinationIDs",
        b.destination_ids.iter().map(|(k, v)| (k, *v)),
    );
    key(out, "RatingSubject");
    push_str(out, &b.rating_subject);
    bool_map(out, "Categories", b.categories.iter().map(|(k, v)| (k, *v)));
    bool_map(
        out,
        "SharedGroups",
        b.shared_groups.iter().map(|k| (k, true)),
    );
    key(out, "Timings");
    out.push_str("null");
    bool_map(out, "TimingIDs", b.timing_ids.iter().map(|k| (k, true)));
    key(out, "Disabled");
    out.push_str(if b.disabled { "true" } else { "false" });
    key(out, "Factor");
    if b.factor.is_empty() {
        out.push_str("null");
    } else {
        out.push('{');
        for (k, v) in &b.factor {
            key(out, k);
            out.push_str(&json_number(*v));
        }
        out.push('}');
    }
    key(out, "Blocker");
    out.push_str(if b.blocker { "true" } else { "false" });
    out.push('}');
}

impl Account {
    /// The account as CGRateS's `engine.Account` JSON, every decimal a JSON
    /// number with its exact digits (`"Value":10.125`), `*voice` values in
    /// nanoseconds. The same fields as the serde form.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + 384 * self.balances.len());
        out.push('{');
        key(&mut out, "ID");
        push_str(&mut out, &self.key());
        key(&mut out, "BalanceMap");
        out.push('{');
        for (t, list) in &self.balances {
            key(&mut out, t.as_str());
            out.push('[');
            for (i, b) in list.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                balance_json(&mut out, b);
            }
            out.push(']');
        }
        out.push('}');
        key(&mut out, "ActionTriggers");
        if self.action_triggers.is_empty() {
            out.push_str("null");
        } else {
            out.push('[');
            for (i, id) in self.action_triggers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('{');
                key(&mut out, "ID");
                push_str(&mut out, id);
                out.push('}');
            }
            out.push(']');
        }
        key(&mut out, "AllowNegative");
        out.push_str(if self.allow_negative { "true" } else { "false" });
        key(&mut out, "Disabled");
        out.push_str(if self.disabled { "true" } else { "false" });
        key(&mut out, "UpdateTime");
        time_json(&mut out, self.update_time);
        out.push('}');
        out
    }
}
