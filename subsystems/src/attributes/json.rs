//! A profile as CGRateS v0.10's API shows an `AttributeProfile`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{Attribute, AttributeProfile};
use crate::activation::ActivationInterval;

fn go_time(t: Option<DateTime<Utc>>) -> Value {
    Value::String(t.map_or_else(
        || "0001-01-01T00:00:00Z".to_owned(),
        |t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    ))
}

fn activation_json(a: &ActivationInterval) -> Value {
    if *a == ActivationInterval::default() {
        return Value::Null;
    }
    json!({"ActivationTime": go_time(a.activation), "ExpiryTime": go_time(a.expiry)})
}

fn weight_json(w: f64) -> Value {
    // Rust prints 20.0 as "20", as Go writes it.
    serde_json::from_str(&format!("{w}")).unwrap_or(Value::Null)
}

impl Attribute {
    /// `{"FilterIDs":[..],"Path":..,"Type":..,"Value":[{"Rules":..,"AllFiltersMatch":true}]}`
    /// (v0.10's RSRParsers list for the value).
    #[must_use]
    pub fn to_json(&self) -> Value {
        let value: Vec<Value> = self
            .value
            .raw_parts
            .iter()
            .map(|r| json!({"Rules": r, "AllFiltersMatch": true}))
            .collect();
        json!({
            "FilterIDs": self.filter_ids,
            "Path": self.path,
            "Type": self.kind.name(),
            "Value": value,
        })
    }
}

impl AttributeProfile {
    /// The profile as v0.10's `APIerSv1.GetAttributeProfile` answers it.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("Tenant".into(), self.tenant.clone().into());
        m.insert("ID".into(), self.id.clone().into());
        m.insert("Contexts".into(), self.contexts.clone().into());
        m.insert("FilterIDs".into(), self.filter_ids.clone().into());
        m.insert(
            "ActivationInterval".into(),
            activation_json(&self.activation),
        );
        m.insert(
            "Attributes".into(),
            Value::Array(self.attributes.iter().map(Attribute::to_json).collect()),
        );
        m.insert("Blocker".into(), self.blocker.into());
        m.insert("Weight".into(), weight_json(self.weight));
        Value::Object(m)
    }
}
