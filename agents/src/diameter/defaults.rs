//! The request processors a `[[agents.diameter]]` runs when its
//! configuration names none: CGRateS's Gy samples' mapping, written as
//! processors so that a configuration can replace any of it.
//!
//! - OriginID = Session-Id; OriginHost = the CCR's Origin-Host;
//! - Account = Subject = the Subscription-Id-Data of type END_USER_E164 (0);
//! - Destination = IMS-Information's Called-Party-Address without its
//!   `tel:`/`sip:` scheme and `@host`;
//! - ToR `*voice` for CC-Time units, `*data` for octets, `*sms` for
//!   service-specific units; RequestType `*prepaid`, Category `call`;
//! - Usage from the Requested-Service-Unit (top level or inside
//!   Multiple-Services-Credit-Control), LastUsed from the
//!   Used-Service-Unit;
//! - SetupTime = AnswerTime = Event-Timestamp, else the time the CCR
//!   came (`*vars.Now`);
//! - INITIAL: `*initiate`; UPDATE: `*update`; TERMINATION: `*terminate`
//!   and `*cdrs`; EVENT: `*event` (authorization, then the CDR that debits);
//! - the answer: Granted-Service-Unit of the unit asked for from
//!   MaxUsage, where it was asked (top level or in the
//!   Multiple-Services-Credit-Control with its Rating-Group echoed,
//!   Validity-Time when configured, Final-Unit-Indication TERMINATE when
//!   the grant is less than asked).

use crate::template::{FieldCfg, ProcessorCfg};

const MSCC: &str = "Multiple-Services-Credit-Control";
const RSU: &str = "Requested-Service-Unit";
const USU: &str = "Used-Service-Unit";
const GSU: &str = "Granted-Service-Unit";

fn field(path: &str, kind: &str, value: &str, filters: &[String]) -> FieldCfg {
    FieldCfg {
        path: path.to_owned(),
        kind: kind.to_owned(),
        value: value.to_owned(),
        filters: filters.to_vec(),
        ..FieldCfg::default()
    }
}

/// Where units are: the top level and inside the first MSCC.
fn places(unit: &str) -> [String; 2] {
    [unit.to_owned(), format!("{MSCC}.{unit}")]
}

/// `*cgreq.TARGET` from the unit AVP `unit` (seconds with `s`, octets and
/// service-specific units as they are), the MSCC's last.
fn usage_fields(target: &str, unit: &str) -> Vec<FieldCfg> {
    let mut out = Vec::new();
    for at in places(unit) {
        let p = format!("*cgreq.{target}");
        out.push(field(
            &p,
            "*variable",
            &format!("~*req.{at}.CC-Time;s"),
            &[],
        ));
        out.push(field(
            &p,
            "*variable",
            &format!("~*req.{at}.CC-Total-Octets"),
            &[],
        ));
        out.push(field(
            &p,
            "*variable",
            &format!("~*req.{at}.CC-Service-Specific-Units"),
            &[],
        ));
    }
    out
}

fn common_fields() -> Vec<FieldCfg> {
    let mut out = vec![field("*cgreq.ToR", "*constant", "*voice", &[])];
    for unit in [RSU, USU] {
        for at in places(unit) {
            out.push(field(
                "*cgreq.ToR",
                "*constant",
                "*data",
                &[format!("*exists:~*req.{at}.CC-Total-Octets:")],
            ));
            out.push(field(
                "*cgreq.ToR",
                "*constant",
                "*sms",
                &[format!("*exists:~*req.{at}.CC-Service-Specific-Units:")],
            ));
        }
    }
    let mut origin = field("*cgreq.OriginID", "*variable", "~*req.Session-Id", &[]);
    origin.mandatory = true;
    let sub = "~*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(0)]";
    let mut account = field("*cgreq.Account", "*variable", sub, &[]);
    account.mandatory = true;
    out.extend([
        origin,
        field("*cgreq.OriginHost", "*variable", "~*req.Origin-Host", &[]),
        field("*cgreq.RequestType", "*constant", "*prepaid", &[]),
        field("*cgreq.Category", "*constant", "call", &[]),
        account,
        field("*cgreq.Subject", "*variable", "~*cgreq.Account", &[]),
        field(
            "*cgreq.Destination",
            "*variable",
            "~*req.Service-Information.IMS-Information.Called-Party-Address:s/^(?:tel:|sips?:)?([^@]*).*$/${1}/",
            &[],
        ),
        field("*cgreq.SetupTime", "*variable", "~*vars.Now", &[]),
        field("*cgreq.SetupTime", "*variable", "~*req.Event-Timestamp", &[]),
        field("*cgreq.AnswerTime", "*variable", "~*cgreq.SetupTime", &[]),
        field("*cgreq.RatingGroup", "*variable", &format!("~*req.{MSCC}.Rating-Group"), &[]),
    ]);
    out
}

/// The answer's granted units, where the request asked.
fn reply_fields() -> Vec<FieldCfg> {
    let ok = "*string:~*vars.Result-Code:2001".to_owned();
    let mut out = Vec::new();
    for (at, exists) in [
        (GSU.to_owned(), format!("*exists:~*req.{RSU}:")),
        (format!("{MSCC}.{GSU}"), format!("*exists:~*req.{MSCC}:")),
    ] {
        let f = [ok.clone(), exists.clone()];
        if at.starts_with(MSCC) {
            out.push(field(
                &format!("*rep.{MSCC}.Rating-Group"),
                "*variable",
                &format!("~*req.{MSCC}.Rating-Group"),
                std::slice::from_ref(&exists),
            ));
        }
        let tor = |t: &str| {
            let mut v = f.to_vec();
            v.push(format!("*string:~*cgreq.ToR:{t}"));
            v
        };
        out.push(field(
            &format!("*rep.{at}.CC-Time"),
            "*variable",
            "~*cgrep.MaxUsage{*duration_seconds}",
            &tor("*voice"),
        ));
        out.push(field(
            &format!("*rep.{at}.CC-Total-Octets"),
            "*variable",
            "~*cgrep.MaxUsage",
            &tor("*data"),
        ));
        out.push(field(
            &format!("*rep.{at}.CC-Service-Specific-Units"),
            "*variable",
            "~*cgrep.MaxUsage",
            &tor("*sms"),
        ));
        let parent = at.strip_suffix(&format!(".{GSU}")).map(|p| format!("{p}."));
        let parent = parent.unwrap_or_default();
        out.push(field(
            &format!("*rep.{parent}Validity-Time"),
            "*variable",
            "~*vars.ValidityTime",
            &f,
        ));
        let mut last = f.to_vec();
        last.push("*string:~*vars.FinalUnit:true".into());
        out.push(field(
            &format!("*rep.{parent}Final-Unit-Indication.Final-Unit-Action"),
            "*constant",
            "0",
            &last,
        ));
    }
    out
}

fn processor(id: &str, request_type: u32, flags: &[&str], extra: Vec<FieldCfg>) -> ProcessorCfg {
    let mut fields = common_fields();
    fields.extend(extra);
    ProcessorCfg {
        id: id.to_owned(),
        filters: vec![format!("*string:~*req.CC-Request-Type:{request_type}")],
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        request_fields: fields,
        reply_fields: if request_type == 3 {
            Vec::new()
        } else {
            reply_fields()
        },
        continue_: false,
    }
}

/// The default processors, one per CC-Request-Type.
#[must_use]
pub fn default_processors() -> Vec<ProcessorCfg> {
    let mut update = usage_fields("Usage", RSU);
    update.extend(usage_fields("LastUsed", USU));
    let mut event = usage_fields("Usage", USU);
    event.extend(usage_fields("Usage", RSU));
    vec![
        processor(
            "gy_initial",
            1,
            &["*initiate", "*accounts"],
            usage_fields("Usage", RSU),
        ),
        processor("gy_update", 2, &["*update", "*accounts"], update),
        processor(
            "gy_terminate",
            3,
            &["*terminate", "*accounts", "*cdrs"],
            usage_fields("LastUsed", USU),
        ),
        processor("gy_event", 4, &["*event", "*accounts", "*cdrs"], event),
    ]
}
