//! A profile in v0.10's JSON shape as the tariff-plan CSV rows that
//! define it, loaded by the subsystem's own CSV loader: a profile set
//! through the API is checked exactly as a plan's (same errors, same
//! defaults), and the saved JSON loads again the same way at a restart.

use std::path::Path;

use serde_json::{Map, Value};
use subsystems::Profiles;

/// The profile kinds the API sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Attributes.csv.
    Attribute,
    /// Chargers.csv.
    Charger,
    /// Resources.csv.
    Resource,
    /// Thresholds.csv.
    Threshold,
    /// Stats.csv.
    Stat,
    /// Routes.csv (v0.10's Suppliers).
    Route,
}

impl Kind {
    /// Every kind, in blob order.
    pub(crate) const ALL: [Kind; 6] = [
        Kind::Attribute,
        Kind::Charger,
        Kind::Resource,
        Kind::Threshold,
        Kind::Stat,
        Kind::Route,
    ];

    /// The key of its part of the saved blob.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Kind::Attribute => "Attributes",
            Kind::Charger => "Chargers",
            Kind::Resource => "Resources",
            Kind::Threshold => "Thresholds",
            Kind::Stat => "Stats",
            Kind::Route => "Routes",
        }
    }

    fn file(self) -> String {
        format!("{}.csv", self.key())
    }

    /// Whether `profiles` has the profile `tenant`/`id` of this kind.
    pub(crate) fn has(self, profiles: &Profiles, tenant: &str, id: &str) -> bool {
        match self {
            Kind::Attribute => profiles.attributes.get(tenant, id).is_some(),
            Kind::Charger => profiles.chargers.get(tenant, id).is_some(),
            Kind::Resource => profiles.resources.get(tenant, id).is_some(),
            Kind::Threshold => profiles.thresholds.get(tenant, id).is_some(),
            Kind::Stat => profiles.stats.get(tenant, id).is_some(),
            Kind::Route => profiles.routes.get(tenant, id).is_some(),
        }
    }

    /// The IDs of `tenant`'s profiles of this kind, sorted.
    pub(crate) fn ids(self, profiles: &Profiles, tenant: &str) -> Vec<String> {
        let mut v: Vec<String> = match self {
            Kind::Attribute => profiles.attributes.ids(tenant),
            Kind::Charger => profiles.chargers.ids(tenant),
            Kind::Route => profiles.routes.ids(tenant),
            Kind::Resource => (profiles.resources.iter())
                .filter(|p| p.tenant == tenant)
                .map(|p| p.id.clone())
                .collect(),
            Kind::Threshold => (profiles.thresholds.iter())
                .filter(|p| p.tenant == tenant)
                .map(|p| p.id.clone())
                .collect(),
            Kind::Stat => (profiles.stats.iter())
                .filter(|p| p.tenant == tenant)
                .map(|p| p.id.clone())
                .collect(),
        };
        v.sort();
        v
    }

    /// Removes the profile `tenant`/`id` of this kind; whether there was one.
    pub(crate) fn remove(self, profiles: &mut Profiles, tenant: &str, id: &str) -> bool {
        match self {
            Kind::Attribute => profiles.attributes.remove(tenant, id).is_some(),
            Kind::Charger => profiles.chargers.remove(tenant, id).is_some(),
            Kind::Resource => profiles.resources.remove(tenant, id).is_some(),
            Kind::Threshold => profiles.thresholds.remove(tenant, id).is_some(),
            Kind::Stat => profiles.stats.remove(tenant, id).is_some(),
            Kind::Route => profiles.routes.remove(tenant, id).is_some(),
        }
    }

    /// Loads the v0.10 JSON profile `v` (tenant and ID set) through the
    /// CSV loader and puts it in `profiles`, replacing one with its ID.
    ///
    /// # Errors
    /// The loader's error, naming the CSV column the JSON field maps to.
    pub(crate) fn insert(
        self,
        profiles: &mut Profiles,
        v: &Value,
        tenant: &str,
        id: &str,
    ) -> Result<(), String> {
        let rows = self.rows(v)?;
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        for r in &rows {
            w.write_record(r).map_err(|e| e.to_string())?;
        }
        let bytes = w.into_inner().map_err(|e| e.to_string())?;
        let file = self.file();
        let path = Path::new(&file);
        let records = rating::csv::parse(path, &bytes).map_err(|e| e.to_string())?;
        let missing = || format!("{} {tenant}:{id} did not load", self.key());
        match self {
            Kind::Attribute => {
                let set = subsystems::attributes::AttributeProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                let p = set.get(tenant, id).ok_or_else(missing)?;
                profiles.attributes.insert((**p).clone());
            }
            Kind::Charger => {
                let set = subsystems::chargers::ChargerProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                let p = set.get(tenant, id).ok_or_else(missing)?;
                profiles.chargers.insert(p.clone());
            }
            Kind::Resource => {
                let set = subsystems::resources::ResourceProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                let p = set.get(tenant, id).ok_or_else(missing)?;
                profiles.resources.insert((**p).clone());
            }
            Kind::Threshold => {
                let set = subsystems::thresholds::ThresholdProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                let p = set.get(tenant, id).ok_or_else(missing)?;
                profiles.thresholds.insert((**p).clone());
            }
            Kind::Stat => {
                let set = subsystems::stats::StatProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                let p = set.get(tenant, id).ok_or_else(missing)?;
                profiles.stats.insert(p.clone());
            }
            Kind::Route => {
                let set = subsystems::routes::RouteProfiles::load(&records, path)
                    .map_err(|e| e.to_string())?;
                set.get(tenant, id).ok_or_else(missing)?;
                profiles.routes.merge(set);
            }
        }
        Ok(())
    }

    /// The CSV rows (the file's columns, CGRateS's layout) of `v`.
    fn rows(self, v: &Value) -> Result<Vec<Vec<String>>, String> {
        let m = v.as_object().ok_or("the profile is not an object")?;
        let head = vec![
            scalar(m, "Tenant")?,
            scalar(m, "ID")?,
            ids(m, "FilterIDs")?,
            activation(m)?,
        ];
        let mut rows = Vec::new();
        match self {
            Kind::Attribute => {
                let contexts = match m.get("Contexts") {
                    Some(_) => ids(m, "Contexts")?,
                    None => ids(m, "Context")?,
                };
                let attrs: Vec<&Value> = match m.get("Attributes") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(_) => return Err("Attributes is not a list".into()),
                };
                let first = [
                    head[0].clone(),
                    head[1].clone(),
                    contexts,
                    head[2].clone(),
                    head[3].clone(),
                ];
                let tail = [scalar(m, "Blocker")?, scalar(m, "Weight")?];
                if attrs.is_empty() {
                    let mut r = first.to_vec();
                    r.extend([String::new(), String::new(), String::new(), String::new()]);
                    r.extend(tail.clone());
                    rows.push(r);
                }
                for (i, a) in attrs.iter().enumerate() {
                    let a = a.as_object().ok_or("an attribute is not an object")?;
                    let path = match a.get("Path") {
                        Some(_) => scalar(a, "Path")?,
                        None => scalar(a, "FieldName")?,
                    };
                    let mut r = if i == 0 {
                        first.to_vec()
                    } else {
                        vec![
                            head[0].clone(),
                            head[1].clone(),
                            String::new(),
                            String::new(),
                            String::new(),
                        ]
                    };
                    r.extend([ids(a, "FilterIDs")?, path, scalar(a, "Type")?, rules(a)?]);
                    if i == 0 {
                        r.extend(tail.clone());
                    } else {
                        r.resize(r.len() + tail.len(), String::new());
                    }
                    rows.push(r);
                }
            }
            Kind::Charger => {
                let mut r = head;
                r.extend([
                    scalar(m, "RunID")?,
                    ids(m, "AttributeIDs")?,
                    scalar(m, "Weight")?,
                ]);
                rows.push(r);
            }
            Kind::Resource => {
                let mut r = head;
                r.extend([
                    nanos(m, "UsageTTL")?,
                    scalar(m, "Limit")?,
                    scalar(m, "AllocationMessage")?,
                    scalar(m, "Blocker")?,
                    scalar(m, "Stored")?,
                    scalar(m, "Weight")?,
                    ids(m, "ThresholdIDs")?,
                ]);
                rows.push(r);
            }
            Kind::Threshold => {
                let mut r = head;
                r.extend([
                    scalar(m, "MaxHits")?,
                    scalar(m, "MinHits")?,
                    nanos(m, "MinSleep")?,
                    scalar(m, "Blocker")?,
                    scalar(m, "Weight")?,
                    ids(m, "ActionIDs")?,
                    scalar(m, "Async")?,
                    ids(m, "EeIDs")?,
                ]);
                rows.push(r);
            }
            Kind::Stat => {
                let metrics: Vec<&Value> = match m.get("Metrics") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.iter().collect(),
                    Some(_) => return Err("Metrics is not a list".into()),
                };
                let mut first = head.clone();
                first.extend([
                    scalar(m, "QueueLength")?,
                    nanos(m, "TTL")?,
                    scalar(m, "MinItems")?,
                ]);
                let tail = [
                    scalar(m, "Stored")?,
                    scalar(m, "Blocker")?,
                    scalar(m, "Weight")?,
                    ids(m, "ThresholdIDs")?,
                ];
                let one = |i: usize, metric: String, filters: String| {
                    let mut r = if i == 0 {
                        first.clone()
                    } else {
                        let mut r = vec![head[0].clone(), head[1].clone()];
                        r.resize(7, String::new());
                        r
                    };
                    r.extend([metric, filters]);
                    if i == 0 {
                        r.extend(tail.clone());
                    } else {
                        r.resize(r.len() + tail.len(), String::new());
                    }
                    r
                };
                if metrics.is_empty() {
                    rows.push(one(0, String::new(), String::new()));
                }
                for (i, x) in metrics.iter().enumerate() {
                    let x = x.as_object().ok_or("a metric is not an object")?;
                    rows.push(one(i, scalar(x, "MetricID")?, ids(x, "FilterIDs")?));
                }
            }
            Kind::Route => route_rows(m, &head, &mut rows)?,
        }
        Ok(rows)
    }
}

/// A route profile's rows (master's `Routes` or v0.10's `Suppliers`),
/// one per route, the profile's own columns on the first.
fn route_rows(
    m: &Map<String, Value>,
    head: &[String],
    rows: &mut Vec<Vec<String>>,
) -> Result<(), String> {
    let routes: Vec<&Value> = match m.get("Routes").or_else(|| m.get("Suppliers")) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(_) => return Err("Routes is not a list".into()),
    };
    let mut first = head.to_vec();
    first.extend([scalar(m, "Sorting")?, ids(m, "SortingParameters")?]);
    let weight = scalar(m, "Weight")?;
    let mut push = |i: usize, route: [String; 9]| {
        let mut r = if i == 0 {
            first.clone()
        } else {
            let mut r = head.get(..2).unwrap_or_default().to_vec();
            r.resize(6, String::new());
            r
        };
        r.extend(route);
        r.push(if i == 0 {
            weight.clone()
        } else {
            String::new()
        });
        rows.push(r);
    };
    if routes.is_empty() {
        push(0, Default::default());
    }
    for (i, x) in routes.iter().enumerate() {
        let x = x.as_object().ok_or("a route is not an object")?;
        let params = match x.get("RouteParameters") {
            Some(_) => scalar(x, "RouteParameters")?,
            None => scalar(x, "SupplierParameters")?,
        };
        push(
            i,
            [
                scalar(x, "ID")?,
                ids(x, "FilterIDs")?,
                ids(x, "AccountIDs")?,
                ids(x, "RatingPlanIDs")?,
                ids(x, "ResourceIDs")?,
                ids(x, "StatIDs")?,
                scalar(x, "Weight")?,
                scalar(x, "Blocker")?,
                params,
            ],
        );
    }
    Ok(())
}

/// A field as CSV text: a string as it is, a number or bool as written,
/// absent or null as empty.
fn scalar(m: &Map<String, Value>, k: &str) -> Result<String, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(v) => Err(format!("{k} is not a string or number: {v}")),
    }
}

/// A list of IDs as `;`-separated text.
fn ids(m: &Map<String, Value>, k: &str) -> Result<String, String> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::Array(a)) => {
            let parts: Vec<&str> = a
                .iter()
                .map(|x| {
                    x.as_str()
                        .ok_or_else(|| format!("{k} holds a non-string: {x}"))
                })
                .collect::<Result<_, _>>()?;
            Ok(parts.join(";"))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(format!("{k} is not a list of strings: {v}")),
    }
}

/// A Go `time.Duration` (nanoseconds) as CSV text; a string as it is.
fn nanos(m: &Map<String, Value>, k: &str) -> Result<String, String> {
    match m.get(k) {
        Some(Value::Number(n)) => {
            let n = n
                .as_i64()
                .ok_or_else(|| format!("{k} is not a whole number of nanoseconds: {n}"))?;
            Ok(if n < 0 {
                "-1".to_owned()
            } else if n == 0 {
                "0".to_owned()
            } else {
                format!("{n}ns")
            })
        }
        _ => scalar(m, k),
    }
}

/// `ActivationInterval` (`{"ActivationTime","ExpiryTime"}`) as the
/// column's `from;until` text.
fn activation(m: &Map<String, Value>) -> Result<String, String> {
    let v = m.get("ActivationInterval").unwrap_or(&Value::Null);
    let ai = subsystems::activation::ActivationInterval::from_json(v)?;
    let t = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            .unwrap_or_default()
    };
    Ok(match (ai.activation, ai.expiry) {
        (None, None) => String::new(),
        (a, None) => t(a),
        (a, e) => format!("{};{}", t(a), t(e)),
    })
}

/// An attribute's `Value`: v0.10's RSRParsers list (`[{"Rules": ..}]`)
/// or a plain string, as the column's `;`-separated text.
fn rules(a: &Map<String, Value>) -> Result<String, String> {
    match a.get("Value") {
        Some(Value::Array(parts)) => {
            let rules: Vec<String> = parts
                .iter()
                .map(|p| match p {
                    Value::Object(o) => scalar(o, "Rules"),
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("an attribute Value part is not a rule: {other}")),
                })
                .collect::<Result<_, _>>()?;
            Ok(rules.join(";"))
        }
        _ => scalar(a, "Value"),
    }
}
