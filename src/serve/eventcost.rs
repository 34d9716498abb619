//! A [`CallCost`] as CGRateS's `EventCost` (the reply of
//! `APIerSv1.GetCost`): `CGRID`, `RunID`, `StartTime`, `Usage` (ns),
//! `Cost`, `Charges` (one charging interval per timespan, its increments
//! compressed), `AccountSummary`, `Rating`, `Accounting`, `RatingFilters`,
//! `Rates`, `Timings`.
//!
//! Written by hand, like `CallCost::to_json`, so every amount is a JSON
//! number with its exact decimal digits. CGRateS keys `Rating`, `Rates`
//! and `RatingFilters` by short hashes of their contents; here they are
//! keyed by the plan's own IDs, which say the same and can be read.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rating::{CallCost, Money, TimeSpan, json_number};

fn string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn money(m: Money) -> String {
    json_number(m.amount())
}

fn ns(d: Duration) -> String {
    d.as_nanos().to_string()
}

/// Go's `time.Time` in JSON: RFC 3339 with as many fraction digits as
/// needed.
pub(crate) fn go_time(t: DateTime<Utc>) -> String {
    string(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// The IDs a timespan's rating details are filed under.
fn rating_id(ts: &TimeSpan) -> String {
    format!("{}:{}:{}", ts.destination_rate(), ts.timing(), rates_id(ts))
}

fn rates_id(ts: &TimeSpan) -> String {
    format!(
        "{}@{}",
        ts.rate_id(),
        rating::format_duration(ts.group_interval_start)
    )
}

fn filter_id(ts: &TimeSpan) -> String {
    format!(
        "{}:{}:{}:{}",
        ts.matched_subject(),
        ts.rating_plan(),
        ts.destination_id(),
        ts.matched_prefix()
    )
}

/// The EventCost JSON of a priced call.
pub(crate) fn event_cost(cc: &CallCost, start: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(1024 + 512 * cc.timespans.len());
    let _ = write!(
        out,
        "{{\"CGRID\":\"\",\"RunID\":\"\",\"StartTime\":{},\"Usage\":{},\"Cost\":{},\"Charges\":[",
        go_time(start),
        ns(cc.rated_usage),
        money(cc.cost)
    );
    for (i, ts) in cc.timespans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"RatingID\":{},\"Increments\":[",
            string(&rating_id(ts))
        );
        // CGRateS puts the connect fee in a first increment of no usage.
        if i == 0 && !cc.connect_fee.amount().is_zero() {
            let _ = write!(
                out,
                "{{\"Usage\":0,\"Cost\":{},\"AccountingID\":\"\",\"CompressFactor\":1}},",
                money(cc.connect_fee)
            );
        }
        let _ = write!(
            out,
            "{{\"Usage\":{},\"Cost\":{},\"AccountingID\":\"\",\"CompressFactor\":{}}}],\"CompressFactor\":1}}",
            ns(ts.rate_increment),
            money(ts.increment_cost),
            ts.increments
        );
    }
    out.push_str("],\"AccountSummary\":null,\"Rating\":{");
    let mut seen = Vec::new();
    for ts in &cc.timespans {
        let id = rating_id(ts);
        if seen.contains(&id) {
            continue;
        }
        if !seen.is_empty() {
            out.push(',');
        }
        let (max_cost, strategy) = ts.max_cost.map_or(("0".to_owned(), ""), |m| {
            (money(m.amount), m.strategy.as_str())
        });
        let _ = write!(
            out,
            "{}:{{\"ConnectFee\":{},\"RoundingMethod\":{},\"RoundingDecimals\":{},\"MaxCost\":{},\"MaxCostStrategy\":{},\"TimingID\":{},\"RatesID\":{},\"RatingFiltersID\":{}}}",
            string(&id),
            money(cc.connect_fee),
            string(ts.rounding.method().as_str()),
            ts.rounding.decimals(),
            max_cost,
            string(strategy),
            string(ts.timing()),
            string(&rates_id(ts)),
            string(&filter_id(ts))
        );
        seen.push(id);
    }
    out.push_str("},\"Accounting\":{},\"RatingFilters\":{");
    seen.clear();
    for ts in &cc.timespans {
        let id = filter_id(ts);
        if seen.contains(&id) {
            continue;
        }
        if !seen.is_empty() {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}:{{\"DestinationID\":{},\"DestinationPrefix\":{},\"RatingPlanID\":{},\"Subject\":{}}}",
            string(&id),
            string(ts.destination_id()),
            string(ts.matched_prefix()),
            string(ts.rating_plan()),
            string(ts.matched_subject())
        );
        seen.push(id);
    }
    out.push_str("},\"Rates\":{");
    seen.clear();
    for ts in &cc.timespans {
        let id = rates_id(ts);
        if seen.contains(&id) {
            continue;
        }
        if !seen.is_empty() {
            out.push(',');
        }
        let _ = write!(
            out,
            "{}:[{{\"GroupIntervalStart\":{},\"Value\":{},\"RateIncrement\":{},\"RateUnit\":{}}}]",
            string(&id),
            ns(ts.group_interval_start),
            money(ts.rate),
            ns(ts.rate_increment),
            ns(ts.rate_unit)
        );
        seen.push(id);
    }
    // Timing details are not kept in a CallCost; the Rating entries name
    // each timing by its ID.
    out.push_str("},\"Timings\":{}}");
    out
}
