//! Threshold and stat queue profiles as v0.10's getters answer them.

use serde_json::{Value, json};
use subsystems::stats::StatProfile;
use subsystems::thresholds::ThresholdProfile;

/// Go's `time.Duration` (nanoseconds) of `d`.
fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// v0.10's `ThresholdProfile`.
pub(super) fn threshold(p: &ThresholdProfile) -> Value {
    json!({
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": p.filter_ids,
        "ActivationInterval": p.activation.to_json(),
        "MaxHits": p.max_hits,
        "MinHits": p.min_hits,
        "MinSleep": nanos(p.min_sleep),
        "Blocker": p.blocker,
        "Weight": p.weight,
        "ActionIDs": p.action_ids,
        "Async": p.async_exec,
    })
}

/// v0.10's `StatQueueProfile`.
pub(super) fn stat(p: &StatProfile) -> Value {
    let metrics: Vec<Value> = p
        .metrics
        .iter()
        .map(|m| json!({"MetricID": m.id, "FilterIDs": m.filter_ids}))
        .collect();
    json!({
        "Tenant": p.tenant,
        "ID": p.id,
        "FilterIDs": p.filter_ids,
        "ActivationInterval": p.activation.to_json(),
        "QueueLength": p.queue_length,
        "TTL": p.ttl_nanos.unwrap_or(0),
        "MinItems": p.min_items,
        "Metrics": metrics,
        "Stored": p.stored,
        "Blocker": p.blocker,
        "Weight": serde_json::from_str::<Value>(&p.weight.normalize().to_string()).unwrap_or(Value::Null),
        "ThresholdIDs": p.threshold_ids,
    })
}
