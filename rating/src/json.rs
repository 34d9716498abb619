//! JSON for a [`CallCost`], written by hand so that every amount is a JSON
//! number with its exact decimal digits (`0.65`, never `0.6500000001`).

use std::fmt::Write as _;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::cost::{CallCost, TimeSpan};
use crate::money::Money;

/// A decimal as a JSON number token: its exact digits without trailing
/// zeros (`0.65`, `-1`, `0`), never through a float. The one writer of
/// amounts in JSON: [`CallCost::to_json`] and the CDR writers use it.
#[must_use]
pub fn json_number(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Appends `s` as a JSON string.
pub(crate) fn push_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn key(out: &mut String, k: &str) {
    if !out.ends_with('{') {
        out.push(',');
    }
    push_str(out, k);
    out.push(':');
}

fn money(out: &mut String, k: &str, m: Money) {
    key(out, k);
    out.push_str(&json_number(m.amount()));
}

fn ns(out: &mut String, k: &str, d: Duration) {
    key(out, k);
    let _ = write!(out, "{}", d.as_nanos());
}

fn string(out: &mut String, k: &str, v: &str) {
    key(out, k);
    push_str(out, v);
}

impl CallCost {
    /// The cost as a JSON object in CGRateS's naming: `Cost` (exact digits),
    /// `Usage` and `RatedUsage` (nanoseconds), the rounding, MaxCost
    /// outcome and `Timespans`.
    #[must_use]
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(512 + 512 * self.timespans.len());
        out.push('{');
        money(&mut out, "Cost", self.cost);
        ns(&mut out, "Usage", self.usage);
        ns(&mut out, "RatedUsage", self.rated_usage);
        money(&mut out, "ConnectFee", self.connect_fee);
        money(&mut out, "UnroundedCost", self.unrounded_cost);
        string(&mut out, "RoundingMode", self.mode.as_str());
        key(&mut out, "Rounding");
        match self.rounding {
            Some(r) => {
                out.push('{');
                string(&mut out, "Method", r.method().as_str());
                key(&mut out, "Decimals");
                let _ = write!(out, "{}", r.decimals());
                out.push('}');
            }
            None => out.push_str("null"),
        }
        key(&mut out, "MaxCostApplied");
        out.push_str(if self.max_cost_applied {
            "true"
        } else {
            "false"
        });
        key(&mut out, "MaxCostDisconnectAt");
        match self.max_cost_disconnect_at {
            Some(d) => {
                let _ = write!(out, "{}", d.as_nanos());
            }
            None => out.push_str("null"),
        }
        key(&mut out, "Timespans");
        out.push('[');
        for (i, ts) in self.timespans.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            timespan(&mut out, ts);
        }
        out.push_str("]}");
        out
    }
}

fn timespan(out: &mut String, ts: &TimeSpan) {
    out.push('{');
    string(out, "TimeStart", &ts.start.to_rfc3339());
    string(out, "TimeEnd", &ts.end.to_rfc3339());
    ns(out, "CallOffset", ts.call_offset);
    ns(out, "Usage", ts.usage);
    money(out, "Cost", ts.cost);
    string(out, "MatchedSubject", ts.matched_subject());
    string(out, "RatingPlanID", ts.rating_plan());
    string(out, "MatchedDestID", ts.destination_id());
    string(out, "MatchedPrefix", ts.matched_prefix());
    string(out, "DestinationRateID", ts.destination_rate());
    string(out, "TimingID", ts.timing());
    key(out, "Weight");
    out.push_str(&json_number(ts.weight));
    string(out, "RateID", ts.rate_id());
    money(out, "Rate", ts.rate);
    ns(out, "RateUnit", ts.rate_unit);
    ns(out, "RateIncrement", ts.rate_increment);
    ns(out, "GroupIntervalStart", ts.group_interval_start);
    key(out, "Increments");
    let _ = write!(out, "{}", ts.increments);
    money(out, "IncrementCost", ts.increment_cost);
    string(out, "RoundingMethod", ts.rounding.method().as_str());
    key(out, "RoundingDecimals");
    let _ = write!(out, "{}", ts.rounding.decimals());
    key(out, "MaxCost");
    match ts.max_cost {
        Some(mc) => {
            out.push('{');
            money(out, "Amount", mc.amount);
            string(out, "Strategy", mc.strategy.as_str());
            out.push('}');
        }
        None => out.push_str("null"),
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_keep_exact_digits_without_trailing_zeros() {
        let n = |s: &str| json_number(s.parse().unwrap());
        assert_eq!(n("0.6500"), "0.65");
        assert_eq!(n("-1"), "-1");
        assert_eq!(n("-0.000"), "0");
        assert_eq!(n("100"), "100");
        assert_eq!(
            n("0.1000000000000000000000000001"),
            "0.1000000000000000000000000001"
        );
        assert_eq!(
            n("79228162514264337593543950335"),
            "79228162514264337593543950335"
        );
    }

    #[test]
    fn strings_are_escaped() {
        let mut s = String::new();
        push_str(&mut s, "a\"b\\c\n\u{1}é");
        assert_eq!(s, r#""a\"b\\c\n\u0001é""#);
    }
}
