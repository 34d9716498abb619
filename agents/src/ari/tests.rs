use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_564_800, 0).unwrap()
}

fn agent() -> AriAgent {
    AriAgent::new(AriConfig {
        origin_host: "127.0.0.1".into(),
        ..AriConfig::default()
    })
}

/// A StasisStart as Asterisk sends it for
/// `Stasis(cgrates_auth,cgr_reqtype=*prepaid,...)`: the event and channel
/// fields of ARI's REST Data Models (docs.asterisk.org, "Asterisk REST
/// Data Models": StasisStart, Channel), laid out as in a captured event
/// stream (https://pastebin.com/8tdBZBrM).
fn stasis_start(args: &[&str]) -> Vec<u8> {
    json!({
        "type": "StasisStart",
        "timestamp": "2024-05-01T12:00:01.250+0000",
        "args": args,
        "channel": {
            "id": "1714564800.7",
            "name": "PJSIP/1001-00000003",
            "state": "Ring",
            "caller": {"name": "", "number": "1001"},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": "internal", "exten": "1002", "priority": 2, "app_name": "Stasis", "app_data": "cgrates_auth"},
            "creationtime": "2024-05-01T12:00:00.900+0000",
            "language": "en"
        },
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
    .to_string()
    .into_bytes()
}

fn state_change(state: &str, ts: &str) -> Vec<u8> {
    json!({
        "type": "ChannelStateChange",
        "timestamp": ts,
        "channel": {"id": "1714564800.7", "name": "PJSIP/1001-00000003", "state": state,
            "caller": {"name": "", "number": "1001"},
            "dialplan": {"context": "internal", "exten": "1002", "priority": 4},
            "creationtime": "2024-05-01T12:00:00.900+0000"},
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
    .to_string()
    .into_bytes()
}

fn destroyed(ts: &str) -> Vec<u8> {
    json!({
        "type": "ChannelDestroyed",
        "timestamp": ts,
        "cause": 16,
        "cause_txt": "Normal Clearing",
        "channel": {"id": "1714564800.7", "name": "PJSIP/1001-00000003", "state": "Up",
            "caller": {"name": "", "number": "1001"},
            "dialplan": {"context": "internal", "exten": "1002", "priority": 4},
            "creationtime": "2024-05-01T12:00:00.900+0000"},
        "asterisk_id": "08:00:27:18:d8:cf",
        "application": "cgrates_auth"
    })
    .to_string()
    .into_bytes()
}

#[test]
fn stasis_start_authorizes_with_the_call_variables() {
    let mut a = agent();
    let op = a
        .handle_message(
            &stasis_start(&[
                "cgr_reqtype=*prepaid",
                "cgr_destination=+4986517174963",
                "cgr_flags=*accounts+*attributes:ATTR_1+*cdrs",
                "cgr_route=premium",
                "*context=ari_ctx",
            ]),
            now(),
        )
        .unwrap()
        .unwrap();
    let Operation::Authorize {
        channel,
        subscribe,
        args,
    } = op
    else {
        panic!("{op:?}")
    };
    assert_eq!(channel, "1714564800.7");
    assert_eq!(
        subscribe,
        AriRequest {
            method: Method::Post,
            segments: vec![
                "applications".into(),
                "cgrates_auth".into(),
                "subscription".into()
            ],
            query: vec![("eventSource".into(), "channel:1714564800.7".into())],
        }
    );
    let ev = &args["Event"];
    assert_eq!(ev["OriginID"], "1714564800.7");
    assert_eq!(ev["OriginHost"], "127.0.0.1");
    assert_eq!(ev["RequestType"], "*prepaid");
    // the caller's number; the argument's destination over the dialplan's
    assert_eq!(ev["Account"], "1001");
    assert_eq!(ev["Destination"], "+4986517174963");
    assert_eq!(ev["SetupTime"], "2024-05-01T12:00:00.900Z");
    assert_eq!(ev["Source"], "AsteriskAgent");
    assert_eq!(ev["cgr_route"], "premium");
    assert!(ev.get("cgr_flags").is_none());
    assert_eq!(args["APIOpts"]["*context"], "ari_ctx");
    assert_eq!(args["Tenant"], "cgrates.org");
    assert_eq!(args["Time"], "2024-05-01T12:00:01.250Z");
    assert_eq!(args["GetMaxUsage"], true);
    assert_eq!(args["GetAttributes"], true);
    assert_eq!(args["AttributeIDs"], json!(["ATTR_1"]));
    assert!(a.has_call("1714564800.7"));
}

#[test]
fn channel_variables_are_read_and_arguments_win() {
    let mut ev: Value = serde_json::from_slice(&stasis_start(&["cgr_account=2001"])).unwrap();
    ev["channel"]["channelvars"] =
        json!({"cgr_account": "3001", "cgr_tenant": "t1.org", "cgr_subsystems": "*resources"});
    let mut a = agent();
    let op = a
        .handle_message(ev.to_string().as_bytes(), now())
        .unwrap()
        .unwrap();
    let Operation::Authorize { args, .. } = op else {
        panic!()
    };
    assert_eq!(args["Event"]["Account"], "2001");
    assert_eq!(args["Tenant"], "t1.org");
    assert_eq!(args["Event"]["Tenant"], "t1.org");
    assert_eq!(args["AuthorizeResources"], true);
    assert!(args.get("GetMaxUsage").is_none());
}

#[test]
fn authorized_sets_the_max_usage_in_milliseconds_then_continues() {
    let mut a = agent();
    a.handle_message(&stasis_start(&[]), now()).unwrap();
    let reply = json!({
        "MaxUsage": 90_500_000_000i64,
        "ResourceAllocation": "RES_1",
        "Attributes": {"AlteredFields": ["*req.Subject"], "CGREvent": {"Event": {"Subject": "1001_alias"}}},
        "Suppliers": {"SortedSuppliers": [{"SupplierID": "sup1"}, {"SupplierID": "sup2"}]}
    });
    let reqs = a.authorized("1714564800.7", Ok(&reply));
    let id = "1714564800.7";
    assert_eq!(
        reqs,
        vec![
            AriRequest::setvar(id, "Subject", "1001_alias"),
            AriRequest::setvar(id, "CGRMaxSessionTime", "90500"),
            AriRequest::setvar(id, "CGRResourceAllocation", "RES_1"),
            AriRequest::setvar(id, "CGRSupplier1", "sup1"),
            AriRequest::setvar(id, "CGRSupplier2", "sup2"),
            AriRequest::continue_dialplan(id),
        ]
    );
    assert_eq!(
        reqs[1].query,
        vec![
            ("variable".to_string(), "CGRMaxSessionTime".to_string()),
            ("value".to_string(), "90500".to_string())
        ]
    );
    // unlimited: the max call duration
    a.handle_message(&stasis_start(&[]), now()).unwrap();
    let reqs = a.authorized(id, Ok(&json!({"MaxUsage": -1})));
    assert_eq!(
        reqs[0],
        AriRequest::setvar(id, "CGRMaxSessionTime", "10800000")
    );
    // postpaid without MaxUsage: only continue
    let reqs = a.authorized(id, Ok(&json!({"MaxUsage": null})));
    assert_eq!(reqs, vec![AriRequest::continue_dialplan(id)]);
}

#[test]
fn refusals_hang_up_and_forget_the_call() {
    let id = "1714564800.7";
    for outcome in [Err("INSUFFICIENT_CREDIT"), Ok(&json!({"MaxUsage": 0}))] {
        let mut a = agent();
        a.handle_message(&stasis_start(&[]), now()).unwrap();
        let reqs = a.authorized(id, outcome);
        assert_eq!(reqs, vec![AriRequest::hangup(id)]);
        assert_eq!(reqs[0].method, Method::Delete);
        assert_eq!(reqs[0].query, vec![("reason".into(), "congestion".into())]);
        assert!(!a.has_call(id));
        // its destruction is then none of ours
        assert_eq!(
            a.handle_message(&destroyed("2024-05-01T12:00:02.000+0000"), now()),
            Ok(None)
        );
    }
}

#[test]
fn answer_initiates_and_destroy_terminates_with_the_usage() {
    let id = "1714564800.7";
    let mut a = AriAgent::new(AriConfig {
        origin_host: "ast1".into(),
        create_cdr: true,
        ..AriConfig::default()
    });
    a.handle_message(&stasis_start(&["cgr_reqtype=*prepaid"]), now())
        .unwrap();
    // not Up: nothing
    let ringing = state_change("Ringing", "2024-05-01T12:00:02.000+0000");
    assert_eq!(a.handle_message(&ringing, now()), Ok(None));
    let up = state_change("Up", "2024-05-01T12:00:03.000+0000");
    let Some(Operation::Initiate { channel, args }) = a.handle_message(&up, now()).unwrap() else {
        panic!()
    };
    assert_eq!(channel, id);
    assert_eq!(args["InitSession"], true);
    assert_eq!(args["Event"]["AnswerTime"], "2024-05-01T12:00:03Z");
    assert_eq!(args["Event"]["OriginHost"], "ast1");
    // a second Up is not a second answer
    assert_eq!(a.handle_message(&up, now()), Ok(None));
    assert_eq!(
        a.initiated(id, Ok(&json!({"MaxUsage": 60_000_000_000i64}))),
        vec![]
    );
    assert_eq!(a.initiated(id, Err("boom")), vec![AriRequest::hangup(id)]);
    let end = destroyed("2024-05-01T12:01:08.500+0000");
    let Some(Operation::Terminate { args, cdr, .. }) = a.handle_message(&end, now()).unwrap()
    else {
        panic!()
    };
    let args = args.unwrap();
    assert_eq!(args["TerminateSession"], true);
    assert_eq!(args["Event"]["Usage"], "65500000000ns");
    assert_eq!(args["Event"]["DisconnectCause"], "Normal Clearing");
    let cdr = cdr.unwrap();
    assert_eq!(cdr["Event"]["Usage"], "65500000000ns");
    assert!(cdr.get("TerminateSession").is_none());
    assert!(!a.has_call(id));
    assert_eq!(a.disconnect(id), None);
}

#[test]
fn an_unanswered_call_writes_only_its_cdr_when_flagged() {
    let mut a = agent();
    a.handle_message(&stasis_start(&["cgr_flags=*accounts+*cdrs"]), now())
        .unwrap();
    let end = destroyed("2024-05-01T12:00:09.000+0000");
    let Some(Operation::Terminate { args, cdr, .. }) = a.handle_message(&end, now()).unwrap()
    else {
        panic!()
    };
    assert!(args.is_none());
    assert_eq!(cdr.unwrap()["Event"]["Usage"], "0s");
    // without *cdrs nor create_cdr: nothing to write
    a.handle_message(&stasis_start(&[]), now()).unwrap();
    let Some(Operation::Terminate { args, cdr, .. }) = a.handle_message(&end, now()).unwrap()
    else {
        panic!()
    };
    assert!(args.is_none() && cdr.is_none());
}

#[test]
fn disconnect_hangs_up_a_known_call_only() {
    let mut a = agent();
    assert_eq!(a.disconnect("1714564800.7"), None);
    a.handle_message(&stasis_start(&[]), now()).unwrap();
    assert_eq!(
        a.disconnect("1714564800.7"),
        Some(AriRequest::hangup("1714564800.7"))
    );
    assert!(a.has_call("1714564800.7"));
}

#[test]
fn other_events_and_applications_are_ignored_and_garbage_refused() {
    let mut a = agent();
    let hangup_req = json!({"type": "ChannelHangupRequest", "cause": 16,
        "channel": {"id": "1714564800.7"}, "timestamp": "2024-05-01T12:00:09.000+0000"});
    assert_eq!(
        a.handle_message(hangup_req.to_string().as_bytes(), now()),
        Ok(None)
    );
    let mut other: Value = serde_json::from_slice(&stasis_start(&[])).unwrap();
    other["application"] = "another_app".into();
    assert_eq!(
        a.handle_message(other.to_string().as_bytes(), now()),
        Ok(None)
    );
    // a channel never seen
    assert_eq!(
        a.handle_message(&state_change("Up", "2024-05-01T12:00:03.000+0000"), now()),
        Ok(None)
    );
    assert!(matches!(
        a.handle_message(b"[1,2]", now()),
        Err(Error::Json(_))
    ));
    assert!(matches!(
        a.handle_message(b"{\"type\":", now()),
        Err(Error::Json(_))
    ));
    let no_id = json!({"type": "StasisStart", "channel": {"state": "Ring"}});
    assert!(matches!(
        a.handle_message(no_id.to_string().as_bytes(), now()),
        Err(Error::MandatoryMissing(_))
    ));
    let mut bad_time: Value = serde_json::from_slice(&stasis_start(&[])).unwrap();
    bad_time["timestamp"] = "yesterday".into();
    assert!(matches!(
        a.handle_message(bad_time.to_string().as_bytes(), now()),
        Err(Error::Time { .. })
    ));
    assert_eq!(a.stats().events, 7);
    assert_eq!(a.stats().rejected, 4);
    assert_eq!(a.stats().ignored, 3);
}

#[test]
fn a_missing_timestamp_is_now() {
    let mut ev: Value = serde_json::from_slice(&stasis_start(&[])).unwrap();
    ev.as_object_mut().unwrap().remove("timestamp");
    let mut a = agent();
    let Some(Operation::Authorize { args, .. }) =
        a.handle_message(ev.to_string().as_bytes(), now()).unwrap()
    else {
        panic!()
    };
    assert_eq!(args["Time"], "2024-05-01T12:00:00Z");
}

#[test]
fn sync_forgets_the_calls_asterisk_no_longer_has() {
    let mut a = agent();
    a.handle_message(&stasis_start(&[]), now()).unwrap();
    let mut other: Value = serde_json::from_slice(&stasis_start(&[])).unwrap();
    other["channel"]["id"] = "1714564800.9".into();
    a.handle_message(other.to_string().as_bytes(), now())
        .unwrap();
    let body = json!([{"id": "1714564800.9", "name": "PJSIP/1001-00000004", "state": "Up",
        "caller": {"name": "", "number": "1001"}, "creationtime": "2024-05-01T14:00:00.900+0200"}]);
    let lost = a.sync(body.to_string().as_bytes()).unwrap();
    assert_eq!(lost, vec!["1714564800.7".to_string()]);
    assert!(!a.has_call("1714564800.7") && a.has_call("1714564800.9"));
    assert!(a.sync(b"{}").is_err());
    assert_eq!(a.sync(b"[]").unwrap(), vec!["1714564800.9".to_string()]);
}

#[test]
fn timestamps_keep_their_offset() {
    // as in a captured ARI event stream (https://pastebin.com/8tdBZBrM)
    let t = event::parse_time("timestamp", "2019-04-01T19:57:23.302+0200").unwrap();
    assert_eq!(event::rfc3339(t), "2019-04-01T17:57:23.302Z");
    let t = event::parse_time("timestamp", "2019-04-01T17:57:23Z").unwrap();
    assert_eq!(event::rfc3339(t), "2019-04-01T17:57:23Z");
}
