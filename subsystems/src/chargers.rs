//! ChargerS (Chargers.csv): derived charging. Every charger profile
//! matching an event (its filters pass, it is active, highest `Weight`
//! first) gives one charging run of it: the event with `RunID` set to the
//! profile's, then passed through AttributeS with the context `*chargers`
//! and the profile's `AttributeIDs` (`*none`: no attributes; inline IDs
//! such as `*constant:*req.RequestType:*none` are applied as written).
//!
//! Chargers.csv: `#Tenant,ID,FilterIDs,ActivationInterval,RunID,
//! AttributeIDs,Weight` (FilterIDs and AttributeIDs separated by `;`);
//! rows with the same Tenant and ID are one profile, later rows adding
//! filters and attribute IDs and filling the columns left empty before.

use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use crate::Error;
use crate::activation::ActivationInterval;
use crate::attributes::{AttrArgs, AttributeProfiles};
use crate::event::Event;
use crate::filters::FilterCtx;

/// The event field a run's ID is written to (and `*opts.*runID` too).
pub const RUN_ID_FIELD: &str = "RunID";
/// The AttributeS context of a charger's attributes.
pub const CONTEXT_CHARGERS: &str = "*chargers";
/// `AttributeIDs` meaning "no attributes".
pub const META_NONE: &str = "*none";

/// One charger profile.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerProfile {
    /// Tenant.
    pub tenant: String,
    /// ID.
    pub id: String,
    /// Filters the event must pass.
    pub filter_ids: Vec<String>,
    /// When it is in force.
    pub activation: ActivationInterval,
    /// The run it makes (`*default`, `*raw`, `supplier1`...).
    pub run_id: String,
    /// The attribute profiles applied to its run (`*none`: none).
    pub attribute_ids: Vec<String>,
    /// Higher first.
    pub weight: f64,
}

impl ChargerProfile {
    /// Whether the run gets no attributes (`AttributeIDs` is `*none`).
    #[must_use]
    pub fn no_attributes(&self) -> bool {
        matches!(self.attribute_ids.as_slice(), [one] if one == META_NONE)
    }

    /// The profile as CGRateS v0.10 answers it (`engine.ChargerProfile`:
    /// `ActivationInterval` `null` when not set).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let t = |x: Option<chrono::DateTime<chrono::Utc>>| {
            x.map_or_else(
                || "0001-01-01T00:00:00Z".to_owned(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            )
        };
        let ai = if self.activation == ActivationInterval::default() {
            Value::Null
        } else {
            json!({"ActivationTime": t(self.activation.activation),
                   "ExpiryTime": t(self.activation.expiry)})
        };
        json!({
            "Tenant": self.tenant,
            "ID": self.id,
            "FilterIDs": self.filter_ids,
            "ActivationInterval": ai,
            "RunID": self.run_id,
            "AttributeIDs": self.attribute_ids,
            "Weight": go_float(self.weight),
        })
    }
}

/// A float as Go's JSON writes it: whole numbers without a fraction.
fn go_float(x: f64) -> Value {
    let whole = x.trunc();
    if whole == x && whole.abs() < 9.0e15 {
        // Exact: a whole number this small converts without loss.
        #[allow(clippy::cast_possible_truncation)]
        return json!(whole as i64);
    }
    json!(x)
}

/// One run of an event ([`ChargerProfiles::process`]): CGRateS's
/// `ChrgSProcessEventReply`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargerRun {
    /// The charger's ID.
    #[serde(rename = "ChargerSProfile")]
    pub charger: String,
    /// The attribute profiles applied.
    #[serde(rename = "AttributeSProfiles")]
    pub attribute_profiles: Vec<String>,
    /// The fields changed (`*req.RunID` first, as CGRateS).
    #[serde(rename = "AlteredFields")]
    pub altered_fields: Vec<String>,
    /// The run's event.
    #[serde(skip)]
    pub event: Event,
}

impl ChargerRun {
    /// The run's RunID.
    #[must_use]
    pub fn run_id(&self) -> String {
        self.event.text(RUN_ID_FIELD).into_owned()
    }

    /// The reply item as CGRateS v0.10 answers it.
    #[must_use]
    pub fn to_json(&self) -> Value {
        json!({
            "ChargerSProfile": self.charger,
            "AttributeSProfiles": if self.attribute_profiles.is_empty() {
                Value::Null
            } else {
                json!(self.attribute_profiles)
            },
            "AlteredFields": self.altered_fields,
            "CGREvent": self.event.to_cgr_event(),
        })
    }
}

/// The charger profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct ChargerProfiles {
    /// Profiles in file order (first row of each).
    list: Vec<ChargerProfile>,
}

impl ChargerProfiles {
    /// Loads the file's records.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<ChargerProfiles, Error> {
        let mut out = ChargerProfiles::default();
        for r in records.iter() {
            let err = |column: usize, why: String| Error::Load {
                file: file.to_owned(),
                line: r.line,
                column,
                why,
            };
            let (tenant, id) = (r.field(0).trim(), r.field(1).trim());
            if tenant.is_empty() || id.is_empty() {
                return Err(err(0, "Tenant and ID are required".into()));
            }
            let activation = ActivationInterval::parse(r.field(3)).map_err(|e| err(4, e))?;
            let weight = match r.field(6).trim() {
                "" => None,
                w => Some(
                    w.parse::<f64>()
                        .ok()
                        .filter(|w| w.is_finite())
                        .ok_or_else(|| err(7, format!("Weight {w:?} is not a number")))?,
                ),
            };
            let run_id = r.field(4).trim();
            let pos = out
                .list
                .iter()
                .position(|p| p.tenant == tenant && p.id == id);
            let p = match pos.and_then(|i| out.list.get_mut(i)) {
                Some(p) => p,
                None => {
                    out.list.push(ChargerProfile {
                        tenant: tenant.to_owned(),
                        id: id.to_owned(),
                        filter_ids: Vec::new(),
                        activation: ActivationInterval::default(),
                        run_id: String::new(),
                        attribute_ids: Vec::new(),
                        weight: 0.0,
                    });
                    let last = out.list.len() - 1;
                    match out.list.get_mut(last) {
                        Some(p) => p,
                        None => continue,
                    }
                }
            };
            p.filter_ids.extend(crate::columns::list(r.field(2)));
            if activation != ActivationInterval::default() {
                p.activation = activation;
            }
            if !run_id.is_empty() {
                run_id.clone_into(&mut p.run_id);
            }
            p.attribute_ids.extend(crate::columns::list(r.field(5)));
            if let Some(w) = weight {
                p.weight = w;
            }
        }
        if let Some(p) = out.list.iter().find(|p| p.run_id.is_empty()) {
            return Err(Error::Load {
                file: file.to_owned(),
                line: 0,
                column: 5,
                why: format!("charger {}:{} has no RunID", p.tenant, p.id),
            });
        }
        Ok(out)
    }

    /// Whether the plan has no charger (derived charging off: one
    /// `*default` run, as before ChargerS).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// How many profiles there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The profile `id` of `tenant`.
    #[must_use]
    pub fn get(&self, tenant: &str, id: &str) -> Option<&ChargerProfile> {
        self.list.iter().find(|p| p.tenant == tenant && p.id == id)
    }

    /// Adds a profile, or replaces the one with its tenant and ID (in
    /// its place).
    pub fn insert(&mut self, p: ChargerProfile) {
        match self
            .list
            .iter_mut()
            .find(|q| q.tenant == p.tenant && q.id == p.id)
        {
            Some(slot) => *slot = p,
            None => self.list.push(p),
        }
    }

    /// Removes the profile `id` of `tenant`; the profile removed, if any.
    pub fn remove(&mut self, tenant: &str, id: &str) -> Option<ChargerProfile> {
        let i = self
            .list
            .iter()
            .position(|p| p.tenant == tenant && p.id == id)?;
        Some(self.list.remove(i))
    }

    /// The IDs of `tenant`'s profiles, sorted.
    #[must_use]
    pub fn ids(&self, tenant: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .list
            .iter()
            .filter(|p| p.tenant == tenant)
            .map(|p| p.id.clone())
            .collect();
        v.sort();
        v
    }

    /// The profiles matching `ev` (its tenant's, active at `ctx.now`,
    /// filters passing), highest weight first (file order among equals).
    ///
    /// # Errors
    /// [`Error::NotFound`] when none matches; filter errors.
    pub fn matching(&self, ctx: &FilterCtx<'_>, ev: &Event) -> Result<Vec<&ChargerProfile>, Error> {
        let mut out = Vec::new();
        for p in self.list.iter().filter(|p| p.tenant == ev.tenant) {
            if !p.activation.is_active_at(ctx.now) {
                continue;
            }
            if ctx.pass(&p.tenant, &p.filter_ids, ev)? {
                out.push(p);
            }
        }
        if out.is_empty() {
            return Err(Error::NotFound);
        }
        out.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        Ok(out)
    }

    /// The runs of `ev`: one per matching profile, in order, each the
    /// event with `RunID` set (in `Event` and `*opts.*runID`) and the
    /// profile's attributes applied (context `*chargers`; an attribute
    /// NOT_FOUND leaves the run as it is).
    ///
    /// # Errors
    /// [`Error::NotFound`] when no charger matches; filter and attribute
    /// errors.
    pub fn process(
        &self,
        ctx: &FilterCtx<'_>,
        attributes: &AttributeProfiles,
        ev: &Event,
    ) -> Result<Vec<ChargerRun>, Error> {
        let mut runs = Vec::new();
        for p in self.matching(ctx, ev)? {
            let mut e = ev.clone();
            e.set_text(RUN_ID_FIELD, p.run_id.clone());
            e.opts
                .insert("*runID".into(), Value::String(p.run_id.clone()));
            let mut run = ChargerRun {
                charger: p.id.clone(),
                attribute_profiles: Vec::new(),
                altered_fields: vec![format!("*req.{RUN_ID_FIELD}")],
                event: e,
            };
            if !p.no_attributes() {
                let args = AttrArgs {
                    context: CONTEXT_CHARGERS.to_owned(),
                    profile_ids: p.attribute_ids.clone(),
                    process_runs: 1,
                };
                match attributes.process(ctx, run.event.clone(), &args) {
                    Ok(r) => {
                        run.attribute_profiles = r.matched_profiles;
                        if !r.altered_fields.is_empty() {
                            run.altered_fields.extend(r.altered_fields);
                            run.event = r.event;
                        }
                    }
                    Err(Error::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            runs.push(run);
        }
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::filters::FilterSet;

    fn load(csv: &str) -> Result<ChargerProfiles, Error> {
        let path = Path::new("Chargers.csv");
        let recs = rating::csv::parse(path, csv.as_bytes()).unwrap();
        ChargerProfiles::load(&recs, path)
    }

    #[test]
    fn insert_replaces_in_place_and_remove() {
        let mut set = load(PLAN).unwrap();
        let mut p = set.get("cgrates.org", "RAW").unwrap().clone();
        p.weight = 99.0;
        set.insert(p);
        assert_eq!(set.len(), 5);
        assert_eq!(set.get("cgrates.org", "RAW").unwrap().weight, 99.0);
        let mut q = set.get("cgrates.org", "RAW").unwrap().clone();
        q.id = "NEW".into();
        set.insert(q);
        assert_eq!(
            set.ids("cgrates.org"),
            ["DEFAULT", "LATER", "NEW", "RAW", "SUPPLIER"]
        );
        assert!(set.remove("cgrates.org", "RAW").is_some());
        assert!(set.remove("cgrates.org", "RAW").is_none());
        assert!(set.get("other.org", "DEFAULT").is_some());
        assert_eq!(set.len(), 5);
    }

    const PLAN: &str = "#Tenant,ID,FilterIDs,ActivationInterval,RunID,AttributeIDs,Weight\n\
        cgrates.org,DEFAULT,,,*default,*none,0\n\
        cgrates.org,RAW,,,*raw,*constant:*req.RequestType:*none,20\n\
        cgrates.org,SUPPLIER,*string:~*req.Account:1001,,supplier,ATTR_SUPPLIER,10\n\
        cgrates.org,SUPPLIER,*prefix:~*req.Destination:10,,,,\n\
        cgrates.org,LATER,,2099-01-01T00:00:00Z,later,*none,30\n\
        other.org,DEFAULT,,,*default,*none,0\n";

    fn ctx(filters: &FilterSet) -> FilterCtx<'_> {
        FilterCtx {
            filters,
            plan: None,
            now: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        }
    }

    fn ev(account: &str, dest: &str) -> Event {
        Event::from_cgr_event(&json!({"Tenant": "cgrates.org", "ID": "e1",
            "Event": {"Account": account, "Destination": dest, "RequestType": "*postpaid"}}))
    }

    #[test]
    fn rows_merge_and_order_is_by_weight() {
        let p = load(PLAN).unwrap();
        assert_eq!(p.len(), 5);
        let s = p.get("cgrates.org", "SUPPLIER").unwrap();
        assert_eq!(
            s.filter_ids,
            ["*string:~*req.Account:1001", "*prefix:~*req.Destination:10"]
        );
        assert_eq!(s.run_id, "supplier");
        assert!((s.weight - 10.0).abs() < f64::EPSILON);
        assert!(p.get("cgrates.org", "DEFAULT").unwrap().no_attributes());
        assert_eq!(
            p.ids("cgrates.org"),
            ["DEFAULT", "LATER", "RAW", "SUPPLIER"]
        );
        let f = FilterSet::default();
        let ids = |e: &Event| -> Vec<String> {
            p.matching(&ctx(&f), e)
                .unwrap()
                .iter()
                .map(|c| c.id.clone())
                .collect()
        };
        // LATER is not active yet; SUPPLIER's filters all pass.
        assert_eq!(ids(&ev("1001", "1002")), ["RAW", "SUPPLIER", "DEFAULT"]);
        assert_eq!(ids(&ev("1001", "2002")), ["RAW", "DEFAULT"]);
        assert_eq!(ids(&ev("1002", "1002")), ["RAW", "DEFAULT"]);
        let mut none = ev("1001", "1002");
        "nobody.org".clone_into(&mut none.tenant);
        assert!(matches!(p.matching(&ctx(&f), &none), Err(Error::NotFound)));
    }

    #[test]
    fn runs_carry_their_run_id() {
        let p = load(PLAN).unwrap();
        let f = FilterSet::default();
        let runs = p
            .process(&ctx(&f), &AttributeProfiles::default(), &ev("1001", "1002"))
            .unwrap();
        let got: Vec<(String, String)> = runs
            .iter()
            .map(|r| (r.charger.clone(), r.run_id()))
            .collect();
        assert_eq!(
            got,
            [
                ("RAW".to_owned(), "*raw".to_owned()),
                ("SUPPLIER".to_owned(), "supplier".to_owned()),
                ("DEFAULT".to_owned(), "*default".to_owned())
            ]
        );
        let j = runs[2].to_json();
        assert_eq!(j["ChargerSProfile"], "DEFAULT");
        assert_eq!(j["AlteredFields"], json!(["*req.RunID"]));
        assert_eq!(j["CGREvent"]["Event"]["RunID"], "*default");
        assert_eq!(j["CGREvent"]["Event"]["Account"], "1001");
        assert_eq!(j["CGREvent"]["APIOpts"]["*runID"], "*default");
    }

    #[test]
    fn runs_get_their_attributes_and_inline_ones() {
        let p = load(PLAN).unwrap();
        let path = Path::new("Attributes.csv");
        let csv = "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight\n\
            cgrates.org,ATTR_SUPPLIER,*chargers,,,,*req.Subject,*constant,supplier1,false,10\n\
            cgrates.org,ATTR_OTHER,*sessions,,,,*req.Subject,*constant,nobody,false,20\n";
        let recs = rating::csv::parse(path, csv.as_bytes()).unwrap();
        let attrs = AttributeProfiles::load(&recs, path).unwrap();
        let f = FilterSet::default();
        let runs = p.process(&ctx(&f), &attrs, &ev("1001", "1002")).unwrap();
        let raw = &runs[0];
        assert_eq!(raw.event.text("RequestType"), "*none");
        assert_eq!(raw.event.text("Subject"), "");
        let sup = &runs[1];
        assert_eq!(sup.attribute_profiles, ["ATTR_SUPPLIER"]);
        assert_eq!(sup.altered_fields, ["*req.RunID", "*req.Subject"]);
        assert_eq!(sup.event.text("Subject"), "supplier1");
        assert_eq!(sup.event.text("RunID"), "supplier");
        let def = &runs[2];
        assert_eq!(def.event.text("RequestType"), "*postpaid");
        assert!(def.attribute_profiles.is_empty());
    }

    #[test]
    fn bad_lines_name_file_line_and_column() {
        let e = load("cgrates.org,C1,,,r1,*none,heavy\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Chargers.csv:1: column 7: Weight \"heavy\" is not a number"
        );
        let e = load("cgrates.org,C1,,soon,r1,*none,1\n").unwrap_err();
        assert!(e.to_string().starts_with("Chargers.csv:1: column 4"), "{e}");
        let e = load(",C1,,,r1,*none,1\n").unwrap_err();
        assert!(e.to_string().contains("Tenant and ID"), "{e}");
        let e = load("cgrates.org,C1,,,,*none,1\n").unwrap_err();
        assert!(e.to_string().contains("no RunID"), "{e}");
    }

    #[test]
    fn profile_json_is_v0_10_shape() {
        let p = load(PLAN).unwrap();
        let j = p.get("cgrates.org", "LATER").unwrap().to_json();
        assert_eq!(j["RunID"], "later");
        assert_eq!(j["AttributeIDs"], json!(["*none"]));
        assert!(j.to_string().ends_with("\"Weight\":30}"), "{j}");
        assert_eq!(
            j["ActivationInterval"]["ActivationTime"],
            "2099-01-01T00:00:00Z"
        );
        assert!(p.get("cgrates.org", "DEFAULT").unwrap().to_json()["ActivationInterval"].is_null());
    }
}
