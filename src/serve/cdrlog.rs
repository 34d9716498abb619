//! The `*cdrlog` action: one CDR per balance change of the same action
//! list, stored through the CDR writer, as CGRateS v0.10 makes them:
//! RunID the action type (`*topup`...), Source `*cdrlog`, a new OriginID,
//! OriginHost `127.0.0.1`, ToR the balance type, RequestType `*none`,
//! Subject the account, Cost the action's units, Usage 1 ns, setup and
//! answer time now. The action's ExtraParameters, a JSON object of field
//! -> value, replace fields: a value `~Name` is read from the change
//! (`BalanceType`, `BalanceID`, `ActionType`, `ActionValue`, `Tenant`,
//! `Account`), anything else is the value itself; fields that are not
//! CDR fields go to ExtraFields.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use capture::Timestamp;
use chrono::{DateTime, Utc};
use rating::ActionType;
use rust_decimal::Decimal;
use sessions::Cdr;

/// CGRateS's `Source` of these CDRs.
pub(crate) const SOURCE: &str = "*cdrlog";

/// One balance change: the action, the balance type and ID, the units.
pub(crate) type Entry = (ActionType, String, String, Decimal);

/// The CDRs of `entries` for `tenant:account` at `now`.
///
/// # Errors
/// ExtraParameters that are not a JSON object of strings.
pub(crate) fn cdrs(
    tenant: &str,
    account: &str,
    template: &str,
    entries: &[Entry],
    now: DateTime<Utc>,
) -> Result<Vec<Cdr>, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let template: BTreeMap<String, String> = if template.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(template)
            .map_err(|e| format!("*cdrlog ExtraParameters {template:?}: {e}"))?
    };
    let at = Timestamp::from_secs_nanos(now.timestamp(), now.timestamp_subsec_nanos());
    let mut out = Vec::with_capacity(entries.len());
    for (action, bt, bid, units) in entries {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        // A fresh id (CGRateS: a UUID): unique per process, time and change.
        let origin_id = sessions::cgrid(
            &format!(
                "{tenant}:{account}:{}:{bid}:{}:{n}:{}",
                action.as_str(),
                now.timestamp_nanos_opt().unwrap_or_default(),
                std::process::id()
            ),
            SOURCE,
        );
        let origin_host = "127.0.0.1".to_owned();
        let mut cdr = Cdr {
            cgrid: sessions::cgrid(&origin_id, &origin_host),
            run_id: action.as_str().to_owned(),
            origin_id,
            origin_host,
            source: SOURCE.to_owned(),
            tor: bt.clone(),
            request_type: "*none".to_owned(),
            tenant: tenant.to_owned(),
            category: String::new(),
            account: account.to_owned(),
            subject: account.to_owned(),
            destination: String::new(),
            setup_time: at,
            answer_time: Some(at),
            usage: Duration::from_nanos(1),
            cost_source: String::new(),
            cost: Some(*units),
            disconnect_cause: String::new(),
            extra_fields: BTreeMap::new(),
            end_time: at,
        };
        let value = |v: &str| -> String {
            let Some(name) = v.strip_prefix('~') else {
                return v.to_owned();
            };
            let name = name
                .strip_prefix("*acnt.")
                .or_else(|| name.strip_prefix("*act."))
                .unwrap_or(name);
            match name {
                "BalanceType" => bt.clone(),
                "BalanceID" => bid.clone(),
                "ActionType" => action.as_str().to_owned(),
                "ActionValue" => units.to_string(),
                "Tenant" => tenant.to_owned(),
                "Account" => account.to_owned(),
                _ => String::new(),
            }
        };
        for (field, v) in &template {
            let v = value(v);
            match field.as_str() {
                "ToR" => cdr.tor = v,
                "OriginHost" => cdr.origin_host = v,
                "OriginID" => cdr.origin_id = v,
                "RequestType" => cdr.request_type = v,
                "Tenant" => cdr.tenant = v,
                "Account" => cdr.account = v,
                "Subject" => cdr.subject = v,
                "Category" => cdr.category = v,
                "Destination" => cdr.destination = v,
                "RunID" => cdr.run_id = v,
                "Source" => cdr.source = v,
                // Not a number: left as it was, as CGRateS does.
                "Cost" => {
                    if let Ok(c) = Decimal::from_str(&v) {
                        cdr.cost = Some(c);
                    }
                }
                _ => {
                    cdr.extra_fields.insert(field.clone(), v);
                }
            }
        }
        cdr.cgrid = sessions::cgrid(&cdr.origin_id, &cdr.origin_host);
        out.push(cdr);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_template_fields() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let e = vec![(
            ActionType::Topup,
            "*monetary".to_owned(),
            "credit".to_owned(),
            Decimal::new(125, 1),
        )];
        let c = cdrs("t", "a", "", &e, now).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].run_id, "*topup");
        assert_eq!(c[0].source, "*cdrlog");
        assert_eq!(c[0].tor, "*monetary");
        assert_eq!(c[0].request_type, "*none");
        assert_eq!(c[0].cost, Some(Decimal::new(125, 1)));
        assert_eq!(c[0].cgrid, sessions::cgrid(&c[0].origin_id, "127.0.0.1"));
        let c2 = cdrs("t", "a", "", &e, now).unwrap();
        assert_ne!(c[0].origin_id, c2[0].origin_id);
        let c = cdrs(
            "t",
            "a",
            r#"{"Category":"topup","Subject":"~BalanceID","Note":"x"}"#,
            &e,
            now,
        )
        .unwrap();
        assert_eq!(c[0].category, "topup");
        assert_eq!(c[0].subject, "credit");
        assert_eq!(c[0].extra_fields["Note"], "x");
        assert!(cdrs("t", "a", "[1]", &e, now).is_err());
    }
}
