//! The agent core against event socket text shaped as FreeSWITCH sends it
//! (header and event layouts from the mod_event_socket and Event List
//! pages of the FreeSWITCH documentation; channel variables as CGRateS's
//! tutorial dialplan sets them).

use serde_json::json;

use super::*;

fn agent() -> EslAgent {
    EslAgent::new(AgentConfig {
        password: "s3cret".into(),
        origin_host: "fs1".into(),
        ..AgentConfig::default()
    })
}

fn sent(a: &mut EslAgent) -> Vec<String> {
    std::iter::from_fn(|| a.poll_transmit())
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
}

/// A `text/event-plain` frame of these headers (values URL-encoded as
/// FreeSWITCH does).
pub(super) fn plain_event(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut body = String::new();
    for (k, v) in headers {
        let enc = percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC);
        body.push_str(&format!("{k}: {enc}\n"));
    }
    body.push('\n');
    format!(
        "Content-Length: {}\nContent-Type: text/event-plain\n\n{body}",
        body.len()
    )
    .into_bytes()
}

pub(super) fn channel(name: &str, uuid: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = [
        ("Event-Name", name),
        ("Core-UUID", "2130a7d1-c1f7-44cd-8fae-8ed5946f3cec"),
        ("FreeSWITCH-IPv4", "10.0.0.5"),
        ("Event-Date-Timestamp", "1714564800123456"),
        ("Unique-ID", uuid),
        ("Call-Direction", "inbound"),
        ("Caller-Username", "1001"),
        ("Caller-Caller-ID-Name", "Extension 1001"),
        ("Caller-Destination-Number", "4930555002"),
        ("Caller-Context", "default"),
        ("Caller-Channel-Created-Time", "1714564800123456"),
        ("variable_sip_call_id", "a84b4c76e66710@10.0.0.9"),
        ("variable_cgr_reqtype", "*prepaid"),
        ("variable_cgr_flags", "*accounts"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        h.retain(|(x, _)| x != k);
        h.push((k.to_string(), v.to_string()));
    }
    h
}

fn ev(name: &str, uuid: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let h = channel(name, uuid, extra);
    let r: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    plain_event(&r)
}

fn login(a: &mut EslAgent) {
    assert!(
        a.handle_bytes(b"Content-Type: auth/request\n\n")
            .unwrap()
            .is_empty()
    );
    assert_eq!(sent(a), ["auth s3cret\n\n"]);
    a.handle_bytes(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        .unwrap();
    assert_eq!(
        sent(a),
        ["event plain CHANNEL_PARK CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM\n\n"]
    );
    a.handle_bytes(
        b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n",
    )
    .unwrap();
    assert!(!a.is_ready());
    assert_eq!(sent(a), ["filter Call-Direction inbound\n\n"]);
    a.handle_bytes(
        b"Content-Type: command/reply\nReply-Text: +OK filter added. [Call-Direction]=[inbound]\n\n",
    )
    .unwrap();
    assert!(a.is_ready());
}

#[test]
fn login_then_a_park_is_authorized_and_unparked() {
    let mut a = agent();
    login(&mut a);
    let ops = a.handle_bytes(&ev("CHANNEL_PARK", "u1", &[])).unwrap();
    let [
        Ok(Operation::Authorize {
            uuid,
            dest_nr,
            args,
        }),
    ] = &ops[..]
    else {
        panic!("{ops:?}");
    };
    assert_eq!((uuid.as_str(), dest_nr.as_str()), ("u1", "4930555002"));
    assert_eq!(args["GetMaxUsage"], true);
    assert_eq!(args["Event"]["Account"], "1001");
    assert_eq!(args["Event"]["OriginID"], "u1");
    assert_eq!(args["Event"]["OriginHost"], "fs1");
    assert_eq!(
        args["Event"]["Caller-Caller-ID-Name"],
        serde_json::Value::Null
    );
    let reply = json!({"MaxUsage": 120_000_000_000_u64});
    a.authorized("u1", "4930555002", true, Ok(&reply));
    assert_eq!(
        sent(&mut a),
        [
            "api uuid_setvar u1 cgr_max_usage 120\n\n",
            "api uuid_setvar u1 execute_on_answer sched_hangup +120 alloted_timeout\n\n",
            "api uuid_setvar u1 cgr_notify +AUTH_OK\n\n",
            "api uuid_transfer u1 4930555002\n\n",
        ]
    );
    // the api replies, one refused
    let ops = a
        .handle_bytes(b"Content-Type: api/response\nContent-Length: 3\n\n+OKContent-Type: api/response\nContent-Length: 24\n\n-ERR No such channel!\n\n\n")
        .unwrap();
    assert!(
        matches!(&ops[..], [Err(Error::EslCommand { command, .. })] if command.contains("execute_on_answer")),
        "{ops:?}"
    );
    assert_eq!(a.stats().refused, 1);
}

#[test]
fn refusals_notify_and_transfer() {
    let mut a = agent();
    login(&mut a);
    a.authorized("u2", "1002", true, Ok(&json!({"MaxUsage": 0})));
    assert_eq!(
        sent(&mut a),
        [
            "api uuid_setvar u2 cgr_notify -INSUFFICIENT_FUNDS\n\n",
            "api uuid_transfer u2 1002\n\n"
        ]
    );
    a.authorized("u3", "1002", true, Err("ACCOUNT_NOT_FOUND"));
    assert_eq!(
        sent(&mut a),
        [
            "api uuid_setvar u3 cgr_notify ACCOUNT_NOT_FOUND\n\n",
            "api uuid_transfer u3 1002\n\n"
        ]
    );
    // a park lacking the account
    let ops = a
        .handle_bytes(&ev("CHANNEL_PARK", "u4", &[("Caller-Username", "")]))
        .unwrap();
    assert!(ops.is_empty());
    assert_eq!(
        sent(&mut a),
        [
            "api uuid_setvar u4 cgr_notify -MISSING_PARAMETER\n\n",
            "api uuid_transfer u4 4930555002\n\n"
        ]
    );
}

#[test]
fn attributes_and_routes_become_channel_variables() {
    let mut a = agent();
    login(&mut a);
    let reply = json!({
        "MaxUsage": 60_000_000_000_u64,
        "Attributes": {"AlteredFields": ["*req.Password"], "CGREvent": {"Event": {"Password": "p1"}}},
        "ResourceAllocation": "RES_1",
        "Routes": [{"ProfileID": "RP1", "Routes": [{"RouteID": "gw1"}, {"RouteID": "gw2"}]}],
    });
    a.authorized("u5", "1002", true, Ok(&reply));
    let out = sent(&mut a);
    assert_eq!(out[0], "api uuid_setvar u5 Password p1\n\n");
    assert!(out.contains(&"api uuid_setvar u5 cgr_resource_allocation RES_1\n\n".to_string()));
    assert!(
        out.iter()
            .any(|c| c.starts_with("api uuid_setvar u5 cgr_routes ARRAY::")),
        "{out:?}"
    );
    assert_eq!(out.last().unwrap(), "api uuid_transfer u5 1002\n\n");
}

#[test]
fn answer_hangup_and_disconnect() {
    let mut a = agent();
    login(&mut a);
    let ops = a
        .handle_bytes(&ev(
            "CHANNEL_ANSWER",
            "u6",
            &[("Caller-Channel-Answered-Time", "1714564803000000")],
        ))
        .unwrap();
    let [
        Ok(Operation::Initiate {
            uuid,
            prepaid,
            args,
        }),
    ] = &ops[..]
    else {
        panic!("{ops:?}");
    };
    assert_eq!(uuid, "u6");
    assert!(*prepaid);
    assert_eq!(args["InitSession"], true);
    assert_eq!(args["Event"]["AnswerTime"], "2024-05-01T12:00:03Z");
    assert_eq!(sent(&mut a), ["api uuid_setvar u6 cgr_originhost fs1\n\n"]);
    a.initiated("u6", true, Ok(&json!({"MaxUsage": 30_000_000_000_u64})));
    assert_eq!(
        sent(&mut a),
        ["api sched_hangup +30 u6 alloted_timeout\n\n"]
    );
    // the session manager's disconnect
    assert!(a.disconnect("u6", "INSUFFICIENT_CREDIT"));
    assert_eq!(
        sent(&mut a),
        [
            "api uuid_setvar u6 cgr_notify INSUFFICIENT_CREDIT\n\n",
            "api uuid_kill u6 MANAGER_REQUEST\n\n"
        ]
    );
    assert!(!a.disconnect("nope", "X"));
    let ops = a
        .handle_bytes(&ev(
            "CHANNEL_HANGUP_COMPLETE",
            "u6",
            &[
                ("variable_answer_epoch", "1714564803"),
                ("variable_billsec", "25"),
                ("variable_cgr_flags", "*accounts;*cdrs"),
            ],
        ))
        .unwrap();
    let [
        Ok(Operation::Terminate {
            answered,
            process_cdr,
            args,
            ..
        }),
    ] = &ops[..]
    else {
        panic!("{ops:?}");
    };
    assert!(*answered && *process_cdr);
    assert_eq!(args["TerminateSession"], true);
    assert_eq!(args["Event"]["Usage"], "25s");
    assert!(!a.disconnect("u6", "X"), "hung up: no longer ours");
    // an unanswered call's hangup
    let ops = a
        .handle_bytes(&ev(
            "CHANNEL_HANGUP_COMPLETE",
            "u7",
            &[("variable_answer_epoch", "0")],
        ))
        .unwrap();
    assert!(matches!(
        &ops[..],
        [Ok(Operation::Terminate {
            answered: false,
            process_cdr: false,
            ..
        })]
    ));
}

#[test]
fn json_events_other_events_and_none() {
    let mut a = EslAgent::new(AgentConfig {
        json: true,
        ..AgentConfig::default()
    });
    a.handle_bytes(b"Content-Type: auth/request\n\n").unwrap();
    a.handle_bytes(b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n")
        .unwrap();
    assert!(sent(&mut a)[1].starts_with("event json CHANNEL_PARK"));
    let body = r#"{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"j1","Caller-Username":"1001","Caller-Destination-Number":"1002","Caller-Channel-Answered-Time":"1714564803000000"}"#;
    let f = format!(
        "Content-Length: {}\nContent-Type: text/event-json\n\n{body}",
        body.len()
    );
    let ops = a.handle_bytes(f.as_bytes()).unwrap();
    assert!(
        matches!(&ops[..], [Ok(Operation::Initiate { prepaid: false, .. })]),
        "{ops:?}"
    );
    // a heartbeat, a CUSTOM event and a *none call are not acted on
    let ops = a
        .handle_bytes(&plain_event(&[
            ("Event-Name", "HEARTBEAT"),
            ("Up-Time", "0 years"),
        ]))
        .unwrap();
    assert!(ops.is_empty());
    let ops = a
        .handle_bytes(&ev(
            "CHANNEL_ANSWER",
            "n1",
            &[
                ("variable_process_cdr", "false"),
                ("variable_cgr_reqtype", ""),
            ],
        ))
        .unwrap();
    assert!(ops.is_empty());
    // a bad JSON event is reported, the stream goes on
    let f = "Content-Length: 1\nContent-Type: text/event-json\n\n{";
    let ops = a.handle_bytes(f.as_bytes()).unwrap();
    assert!(matches!(&ops[..], [Err(Error::EslEvent(_))]));
}

#[test]
fn wrong_password_disconnect_notice_and_held_commands() {
    let mut a = agent();
    // a disconnect asked before the login waits for it
    a.api("uuid_kill x MANAGER_REQUEST");
    a.handle_bytes(b"Content-Type: auth/request\n\n").unwrap();
    assert_eq!(sent(&mut a), ["auth s3cret\n\n"]);
    let e = a
        .handle_bytes(b"Content-Type: command/reply\nReply-Text: -ERR invalid\n\n")
        .unwrap_err();
    assert!(matches!(e, Error::EslAuth(_)));
    a.reconnected();
    login(&mut a);
    assert_eq!(sent(&mut a), ["api uuid_kill x MANAGER_REQUEST\n\n"]);
    let e = a
        .handle_bytes(b"Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n")
        .unwrap_err();
    assert!(matches!(e, Error::EslDisconnect(_)));
    // bgapi carries its Job-UUID
    a.bgapi("status", "job-1");
    assert_eq!(sent(&mut a), ["bgapi status\nJob-UUID: job-1\n\n"]);
}

#[test]
fn an_event_split_anywhere_gives_the_same_operation() {
    let whole = ev("CHANNEL_PARK", "s1", &[]);
    for cut in [1, 10, 40, whole.len() / 2, whole.len() - 1] {
        let mut a = agent();
        login(&mut a);
        let mut ops = a.handle_bytes(&whole[..cut]).unwrap();
        assert!(ops.is_empty());
        ops.extend(a.handle_bytes(&whole[cut..]).unwrap());
        assert!(
            matches!(&ops[..], [Ok(Operation::Authorize { .. })]),
            "{cut}"
        );
    }
}

#[test]
fn show_channels_is_the_session_sync() {
    let mut a = agent();
    a.request_channels();
    a.request_channels();
    login(&mut a);
    assert_eq!(
        sent(&mut a),
        ["api show channels\n\n"],
        "one request, after the login"
    );
    let body = "uuid,direction,created,created_epoch,name,state\nc1,inbound,2024-05-01 12:00:00,1714564800,sofia/internal/1001@10.0.0.5,CS_EXECUTE\nc2,inbound,2024-05-01 12:00:01,1714564801,sofia/internal/1002@10.0.0.5,CS_EXECUTE\n\n2 total.\n";
    let f = format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    );
    let ops = a.handle_bytes(f.as_bytes()).unwrap();
    assert_eq!(
        ops,
        [Ok(Operation::Channels {
            uuids: vec!["c1".into(), "c2".into()]
        })]
    );
    assert_eq!(parse_channels("\n0 total.\n"), Some(vec![]));
    assert_eq!(parse_channels("+OK"), None);
    assert_eq!(
        parse_channels("uuid,direction\nc1,inbound\n"),
        None,
        "no total: cut short"
    );
    a.request_channels();
    sent(&mut a);
    let ops = a
        .handle_bytes(
            b"Content-Type: api/response\nContent-Length: 22\n\n-ERR no reply\n\n\n\n\n\n\n\n\n",
        )
        .unwrap();
    assert!(
        matches!(&ops[..], [Err(Error::EslCommand { .. })]),
        "{ops:?}"
    );
}

#[test]
fn outbound_legs_are_not_billed() {
    let mut a = agent();
    login(&mut a);
    let ops = a
        .handle_bytes(&ev(
            "CHANNEL_ANSWER",
            "b-leg",
            &[("Call-Direction", "outbound")],
        ))
        .unwrap();
    assert!(ops.is_empty());
    assert!(sent(&mut a).is_empty());
}
