use super::*;
use crate::diameter::avp::Avp;
use serde_json::json;
use subsystems::FilterSet;

const TGPP: Option<u32> = Some(10415);

fn dict() -> Arc<Dictionary> {
    Arc::new(Dictionary::builtin().unwrap())
}

fn sub(kind: u32, data: &str) -> Avp {
    Avp::grouped(
        443,
        None,
        true,
        &[Avp::u32(450, kind), Avp::text(444, data)],
    )
}

fn unit(code: u32, avp: u32, v: u64, wide: bool) -> Avp {
    let data = if wide {
        v.to_be_bytes().to_vec()
    } else {
        u32::try_from(v).unwrap().to_be_bytes().to_vec()
    };
    Avp::grouped(code, None, true, &[Avp::new(avp, None, true, data)])
}

/// A voice CCR of `typ` from 4930555 (IMSI first, then the E.164).
fn ccr(typ: u32, extra: Vec<Avp>) -> Message {
    let mut m = Message::request(272, 4, true, 11, 12);
    m.push(Avp::text(263, "gy;1"));
    m.push(Avp::text(264, "pgw.test"));
    m.push(Avp::text(296, "test"));
    m.push(Avp::u32(416, typ));
    m.push(Avp::u32(415, 3));
    m.push(sub(1, "262019999"));
    m.push(sub(0, "4930555"));
    let ims = Avp::grouped(
        876,
        TGPP,
        true,
        &[Avp::new(832, TGPP, true, b"sip:+4930123@ims.test".to_vec())],
    );
    m.push(Avp::grouped(873, TGPP, true, &[ims]));
    m.avps.extend(extra);
    m
}

fn ctx(fs: &FilterSet) -> FilterCtx<'_> {
    FilterCtx {
        filters: fs,
        plan: None,
        now: Utc::now(),
    }
}

fn agent() -> CcAgent {
    CcAgent::new(
        CcConfig {
            tenant: "cgrates.org".into(),
            validity_time: Some(600),
            ..CcConfig::default()
        },
        dict(),
        "accurate.test",
        "test",
    )
    .unwrap()
}

#[test]
fn paths_groups_and_selectors() {
    let d = dict();
    let m = ccr(1, vec![unit(437, 420, 300, false)]);
    let vars = vec![("*cmd".to_owned(), "CCR".to_owned())];
    let v = CcrView {
        msg: &m,
        dict: &d,
        vars: &vars,
    };
    let get = |p: &str| v.field(p).map(|c| c.into_owned());
    assert_eq!(get("*req.Session-Id").as_deref(), Some("gy;1"));
    assert_eq!(get("*req.CC-Request-Type").as_deref(), Some("1"));
    assert_eq!(
        get("*req.Subscription-Id.Subscription-Id-Data").as_deref(),
        Some("262019999")
    );
    assert_eq!(
        get("*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(0)]").as_deref(),
        Some("4930555")
    );
    assert_eq!(
        get("*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(4)]"),
        None
    );
    assert_eq!(
        get("*req.Service-Information.IMS-Information.Called-Party-Address").as_deref(),
        Some("sip:+4930123@ims.test")
    );
    assert_eq!(
        get("*req.Requested-Service-Unit.CC-Time").as_deref(),
        Some("300")
    );
    assert_eq!(get("*req.Requested-Service-Unit").as_deref(), Some(""));
    assert_eq!(get("*req.No-Such-Avp"), None);
    assert_eq!(get("*vars.*cmd").as_deref(), Some("CCR"));
}

#[test]
fn each_request_type_runs_its_session_methods() {
    let a = agent();
    let fs = FilterSet::default();
    let now = Utc::now();
    let init = a
        .request(
            ccr(1, vec![unit(437, 420, 300, false)]),
            "10.0.0.1:3868",
            &ctx(&fs),
            now,
        )
        .unwrap();
    assert_eq!(init.request_type, 1);
    let methods = |r: &CcRequest| r.calls.iter().map(|c| c.method).collect::<Vec<_>>();
    assert_eq!(methods(&init), ["SessionSv1.InitiateSession"]);
    let args = &init.calls[0].args;
    assert_eq!(args["InitSession"], true);
    assert_eq!(args["Tenant"], "cgrates.org");
    let ev = &args["Event"];
    assert_eq!(ev["OriginID"], "gy;1");
    assert_eq!(ev["OriginHost"], "pgw.test");
    assert_eq!(ev["Account"], "4930555");
    assert_eq!(ev["Subject"], "4930555");
    assert_eq!(ev["Destination"], "+4930123");
    assert_eq!(ev["ToR"], "*voice");
    assert_eq!(ev["Usage"], "300s");
    assert_eq!(ev["RequestType"], "*prepaid");

    let upd = a
        .request(
            ccr(
                2,
                vec![unit(437, 420, 300, false), unit(446, 420, 120, false)],
            ),
            "x",
            &ctx(&fs),
            now,
        )
        .unwrap();
    assert_eq!(methods(&upd), ["SessionSv1.UpdateSession"]);
    assert_eq!(upd.calls[0].args["Event"]["LastUsed"], "120s");
    assert_eq!(upd.reported_ns(), 120_000_000_000);

    let mut term = a
        .request(ccr(3, vec![unit(446, 420, 30, false)]), "x", &ctx(&fs), now)
        .unwrap();
    assert_eq!(
        methods(&term),
        ["SessionSv1.TerminateSession", "SessionSv1.ProcessCDR"]
    );
    term.settle_total(120_000_000_000);
    for c in &term.calls {
        assert_eq!(c.args["Event"]["Usage"], "150000000000");
    }

    // an SMS event: octets and units pick the ToR
    let ev = a
        .request(ccr(4, vec![unit(437, 417, 1, true)]), "x", &ctx(&fs), now)
        .unwrap();
    assert_eq!(
        methods(&ev),
        ["SessionSv1.AuthorizeEvent", "SessionSv1.ProcessCDR"]
    );
    assert_eq!(ev.calls[0].args["Event"]["ToR"], "*sms");
    assert!(ev.calls[1].after_grant);
    let data = a
        .request(
            ccr(4, vec![unit(437, 421, 5000, true)]),
            "x",
            &ctx(&fs),
            now,
        )
        .unwrap();
    assert_eq!(data.calls[0].args["Event"]["ToR"], "*data");
    let msg = CcAgent::new(
        CcConfig {
            tenant: "t".into(),
            processors: vec![crate::template::ProcessorCfg {
                flags: vec!["*message".into(), "*accounts".into()],
                ..crate::template::ProcessorCfg::default()
            }],
            validity_time: None,
        },
        dict(),
        "h",
        "r",
    )
    .unwrap()
    .request(ccr(4, vec![]), "x", &ctx(&fs), now)
    .unwrap();
    assert_eq!(methods(&msg), ["SessionSv1.ProcessMessage"]);
    assert_eq!(msg.calls[0].args["Debit"], true);
    assert_eq!(data.calls[0].args["Event"]["Usage"], "5000");
    // the debit runs only when the authorization granted it all
    assert!(CcAgent::should_run(
        &data,
        1,
        &[Ok(json!({"MaxUsage": 5000}))]
    ));
    assert!(!CcAgent::should_run(
        &data,
        1,
        &[Ok(json!({"MaxUsage": 4000}))]
    ));
    assert!(!CcAgent::should_run(&data, 1, &[Err("x".into())]));
}

#[test]
fn a_missing_subscription_is_5005_at_once() {
    let a = agent();
    let fs = FilterSet::default();
    let mut m = ccr(1, vec![]);
    m.avps.retain(|x| x.code != 443);
    let ans = a.request(m, "x", &ctx(&fs), Utc::now()).unwrap_err();
    assert_eq!(
        ans.find(268, None).and_then(Avp::as_u32),
        Some(result::MISSING_AVP)
    );
    assert_eq!((ans.hop_by_hop, ans.end_to_end), (11, 12));
}

fn rc(m: &Message) -> u32 {
    m.find(268, None).and_then(Avp::as_u32).unwrap()
}

#[test]
fn answers_follow_the_replies() {
    let a = agent();
    let fs = FilterSet::default();
    let now = Utc::now();
    let d = dict();
    let req = a
        .request(
            ccr(1, vec![unit(437, 420, 300, false)]),
            "x",
            &ctx(&fs),
            now,
        )
        .unwrap();
    let answer = |r: Result<Value, String>| a.answer(&req, &[r], &ctx(&fs), now).0;

    let ok = answer(Ok(json!({"MaxUsage": 300_000_000_000_u64})));
    assert_eq!(rc(&ok), 2001);
    assert!(!ok.is_request());
    assert_eq!(ok.find(415, None).and_then(Avp::as_u32), Some(3));
    assert_eq!(ok.find(416, None).and_then(Avp::as_u32), Some(1));
    assert_eq!(ok.find(258, None).and_then(Avp::as_u32), Some(4));
    assert_eq!(
        lookup(&d, &ok.avps, "Granted-Service-Unit.CC-Time").as_deref(),
        Some("300")
    );
    assert_eq!(
        lookup(&d, &ok.avps, "Validity-Time").as_deref(),
        Some("600")
    );
    assert!(lookup(&d, &ok.avps, "Final-Unit-Indication").is_none());

    let last = answer(Ok(json!({"MaxUsage": 3_000_000_000_u64})));
    assert_eq!(rc(&last), 2001);
    assert_eq!(
        lookup(&d, &last.avps, "Granted-Service-Unit.CC-Time").as_deref(),
        Some("3")
    );
    assert_eq!(
        lookup(&d, &last.avps, "Final-Unit-Indication.Final-Unit-Action").as_deref(),
        Some("0")
    );

    let none = answer(Ok(json!({"MaxUsage": 0})));
    assert_eq!(rc(&none), result::CREDIT_LIMIT_REACHED);
    assert!(lookup(&d, &none.avps, "Granted-Service-Unit").is_none());
    assert_eq!(rc(&answer(Err("INSUFFICIENT_CREDIT".into()))), 4012);
    assert_eq!(rc(&answer(Err("ACCOUNT_NOT_FOUND".into()))), 5030);
    assert_eq!(rc(&answer(Err("RATING_PLAN_NOT_FOUND".into()))), 5003);
}

#[test]
fn mscc_answers_carry_the_rating_group() {
    let a = agent();
    let fs = FilterSet::default();
    let now = Utc::now();
    let d = dict();
    let mscc = Avp::grouped(
        456,
        None,
        true,
        &[Avp::u32(432, 7), unit(437, 421, 2000, true)],
    );
    let req = a.request(ccr(1, vec![mscc]), "x", &ctx(&fs), now).unwrap();
    assert_eq!(req.calls[0].args["Event"]["ToR"], "*data");
    assert_eq!(req.calls[0].args["Event"]["RatingGroup"], "7");
    let (cca, problems) = a.answer(&req, &[Ok(json!({"MaxUsage": 2000}))], &ctx(&fs), now);
    assert!(problems.is_empty(), "{problems:?}");
    let get = |p: &str| lookup(&d, &cca.avps, p);
    assert_eq!(
        get("Multiple-Services-Credit-Control.Rating-Group").as_deref(),
        Some("7")
    );
    assert_eq!(
        get("Multiple-Services-Credit-Control.Granted-Service-Unit.CC-Total-Octets").as_deref(),
        Some("2000")
    );
    assert_eq!(
        get("Multiple-Services-Credit-Control.Validity-Time").as_deref(),
        Some("600")
    );
    assert!(get("Granted-Service-Unit").is_none());
    // one MSCC holds them all
    assert_eq!(cca.avps.iter().filter(|x| x.code == 456).count(), 1);
}

#[test]
fn configured_processors_replace_the_defaults() {
    use crate::template::{FieldCfg, ProcessorCfg};
    let f = |path: &str, kind: &str, value: &str| FieldCfg {
        path: path.into(),
        kind: kind.into(),
        value: value.into(),
        ..FieldCfg::default()
    };
    let a = CcAgent::new(
        CcConfig {
            tenant: "t".into(),
            processors: vec![ProcessorCfg {
                id: "imsi".into(),
                filters: vec!["*string:~*vars.*cmd:CCR".into()],
                flags: vec!["*authorize".into(), "*accounts".into()],
                request_fields: vec![
                    f(
                        "*cgreq.Account",
                        "*variable",
                        "~*req.Subscription-Id.Subscription-Id-Data[~Subscription-Id-Type(1)]",
                    ),
                    f("*cgreq.Usage", "*constant", "60s"),
                ],
                reply_fields: vec![
                    f("*rep.Result-Code", "*constant", "5031"),
                    f("*rep.Error-Message", "*variable", "~*cgrep.MaxUsage"),
                ],
                continue_: false,
            }],
            validity_time: None,
        },
        dict(),
        "h",
        "r",
    )
    .unwrap();
    let fs = FilterSet::default();
    let now = Utc::now();
    let req = a.request(ccr(1, vec![]), "x", &ctx(&fs), now).unwrap();
    assert_eq!(req.calls.len(), 1);
    assert_eq!(req.calls[0].method, "SessionSv1.AuthorizeEvent");
    assert_eq!(req.calls[0].args["GetMaxUsage"], true);
    assert_eq!(req.calls[0].args["Tenant"], "t");
    assert_eq!(req.calls[0].args["Event"]["Account"], "262019999");
    let (cca, _) = a.answer(&req, &[Ok(json!({"MaxUsage": 60}))], &ctx(&fs), now);
    assert_eq!(rc(&cca), 5031);
    assert_eq!(cca.find(281, None).and_then(Avp::as_str), Some("60"));
    assert_eq!(cca.avps.iter().filter(|x| x.code == 268).count(), 1);
}

#[test]
fn rep_fields_that_do_not_fit_are_reported() {
    let d = dict();
    let mut problems = Vec::new();
    let avps = build_avps(
        &d,
        &[
            ("Granted-Service-Unit.CC-Time".into(), "12.7".into()),
            ("Nope".into(), "1".into()),
            ("Validity-Time".into(), "soon".into()),
        ],
        &mut problems,
    );
    assert_eq!(avps.len(), 1);
    assert_eq!(
        lookup(&d, &avps, "Granted-Service-Unit.CC-Time").as_deref(),
        Some("12")
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
}
