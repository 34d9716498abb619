//! The agent fed the messages CGRateS's tutorial script relays, written
//! here as Kamailio expands them (line breaks and tabs of the script's
//! string literals kept).

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn agent() -> EvapiAgent {
    EvapiAgent::new(AgentConfig {
        origin_host: "127.0.0.1:8448".into(),
        ..AgentConfig::default()
    })
}

fn feed(a: &mut EvapiAgent, json: &str) -> Vec<Result<Operation, Error>> {
    a.handle_bytes(&netstring::encode(json.as_bytes()), now())
        .unwrap()
}

fn one(a: &mut EvapiAgent, json: &str) -> Operation {
    let mut v = feed(a, json);
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0).unwrap()
}

fn sent(a: &mut EvapiAgent) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(b) = a.poll_transmit() {
        match netstring::decode(&b, usize::MAX).unwrap() {
            netstring::Decoded::Frame { payload, consumed } => {
                assert_eq!(consumed, b.len());
                out.push(serde_json::from_slice(payload).unwrap());
            }
            netstring::Decoded::Incomplete => panic!("partial frame queued"),
        }
    }
    out
}

const SIMPLEAUTH: &str = "{\"event\":\"CGR_AUTH_REQUEST\",\n\t\t\"tr_index\":\"2112\",\n\t\t\"tr_label\":\"1958452937\",\n\t\t\"cgr_flags\":\"*attributes\",\n\t\t\"cgr_context\":\"simpleauth\",\n\t\t\"reply_route\":\"CGR_SIMPLEAUTH_REPLY\",\n\t\t\"Account\":\"1001\"}";

const SESSIONAUTH: &str = "{\"event\":\"CGR_AUTH_REQUEST\",\n\t\t\"tr_index\":\"7\",\n\t\t\"tr_label\":\"42\",\n\t\t\"cgr_flags\":\"*attributes,*accounts,*suppliers,*resources,*thresholds\",\n\t\t\"reply_route\":\"CGR_SESSIONAUTH_REPLY\",\n\t\t\"Account\":\"1001\",\n\t\t\"Destination\":\"1002\",\n\t\t\"SetupTime\":\"1714564800\"}";

const CALL_START: &str = "{\"event\":\"CGR_CALL_START\",\n\t\t\"h_entry\":\"3287\",\n\t\t\"h_id\":\"27845\",\n\t\t\"cgr_flags\":\"*attributes,*accounts,*resources,*thresholds\",\n\t\t\"OriginID\":\"c1@10.0.0.1;ft1\",\n\t\t\"RequestType\":\"*prepaid\",\n\t\t\"Tenant\":\"cgrates.org\",\n\t\t\"Account\":\"1001\",\n\t\t\"Destination\":\"1002\",\n\t\t\"SetupTime\":\"1714564800\",\n\t\t\"AnswerTime\":\"1714564803\"}";

// v0.10's CALL_END: a stray quote after Supplier's value
const CALL_END_V010: &str = "{\"event\":\"CGR_CALL_END\",\n\t\t\"cgr_flags\":\"*accounts,*resources\",\n\t\t\"OriginID\":\"c1@10.0.0.1;ft1\",\n\t\t\"RequestType\":\"*prepaid\",\n\t\t\"Tenant\":\"cgrates.org\",\n\t\t\"Account\":\"1001\", \n\t\t\"Destination\":\"1002\",\n\t\t\"AnswerTime\":\"1714564803\",\n\t\t\"PaypalAccount\":\"\",\n\t\t\"SetupTime\":\"1714564800\",\n\t\t\"Usage\":\"65\",\n\t\t\"Supplier\":\"supplier1\"\"}";

#[test]
fn simpleauth_request_and_reply() {
    let mut a = agent();
    let Operation::Authorize { reply_to, args } = one(&mut a, SIMPLEAUTH) else {
        panic!("not an authorize");
    };
    assert_eq!(reply_to.event, "CGR_SIMPLEAUTH_REPLY");
    assert_eq!(args["GetAttributes"], json!(true));
    assert!(args.get("GetMaxUsage").is_none());
    assert_eq!(args["Tenant"], "cgrates.org");
    assert_eq!(args["ID"], "evapi-1");
    assert_eq!(args["Time"], Value::Null);
    let ev = &args["Event"];
    assert_eq!(ev["Account"], "1001");
    assert_eq!(ev["cgr_context"], "simpleauth");
    assert_eq!(ev["Source"], "KamailioAgent");
    assert_eq!(ev["OriginHost"], "127.0.0.1:8448");
    assert_eq!(ev["RequestType"], "*rated");
    for reserved in ["event", "tr_index", "tr_label", "cgr_flags", "reply_route"] {
        assert!(ev.get(reserved).is_none(), "{reserved}");
    }
    assert_eq!(args["APIOpts"]["*context"], "simpleauth");
    // the server's answer, from AttributeS
    let reply = json!({"Attributes": {"AlteredFields": ["*req.Password"],
        "CGREvent": {"Event": {"Account": "1001", "Password": "CGRateS.org"}}}, "MaxUsage": 0});
    a.reply(&reply_to, Ok(&reply));
    let out = sent(&mut a);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["Event"], "CGR_SIMPLEAUTH_REPLY");
    assert_eq!(out[0]["TransactionIndex"], "2112");
    assert_eq!(out[0]["TransactionLabel"], "1958452937");
    assert_eq!(out[0]["Attributes"], "Password:CGRateS.org");
    assert_eq!(out[0]["Error"], "");
}

#[test]
fn sessionauth_flags_and_time() {
    let mut a = agent();
    let Operation::Authorize { reply_to, args } = one(&mut a, SESSIONAUTH) else {
        panic!("not an authorize");
    };
    for k in [
        "GetAttributes",
        "GetMaxUsage",
        "GetSuppliers",
        "AuthorizeResources",
        "ProcessThresholds",
    ] {
        assert_eq!(args[k], json!(true), "{k}");
    }
    assert!(args.get("ProcessStats").is_none());
    assert_eq!(args["Time"], "2024-05-01T12:00:00Z");
    assert_eq!(args["Event"]["SetupTime"], "1714564800");
    // an error answers with every key, MaxUsage 0
    a.reply(&reply_to, Err("RALS_ERROR:INSUFFICIENT_CREDIT"));
    let out = sent(&mut a);
    assert_eq!(out[0]["Event"], "CGR_SESSIONAUTH_REPLY");
    assert_eq!(out[0]["MaxUsage"], 0);
    assert_eq!(out[0]["Error"], "RALS_ERROR:INSUFFICIENT_CREDIT");
    assert_eq!(out[0]["Suppliers"], "");
    assert_eq!(out[0].as_object().unwrap().len(), 11);
}

#[test]
fn auth_missing_transaction_is_answered_at_once() {
    let mut a = agent();
    let v = feed(
        &mut a,
        r#"{"event":"CGR_AUTH_REQUEST","tr_index":"","tr_label":"5","Account":"1001"}"#,
    );
    assert!(matches!(&v[..], [Err(Error::MandatoryMissing(f))] if f == "tr_index"));
    let out = sent(&mut a);
    assert_eq!(out[0]["Event"], "CGR_AUTH_REPLY");
    assert_eq!(out[0]["Error"], MANDATORY_IE_MISSING);
    assert_eq!(a.stats().rejected, 1);
    // a bad SetupTime is answered with the error too
    let v = feed(
        &mut a,
        r#"{"event":"CGR_AUTH_REQUEST","tr_index":"1","tr_label":"5","SetupTime":"later"}"#,
    );
    assert!(matches!(&v[..], [Err(Error::Time { .. })]));
    assert!(sent(&mut a)[0]["Error"].as_str().unwrap().contains("later"));
    // *none is not processed, as CGRateS
    assert!(
        feed(
            &mut a,
            r#"{"event":"CGR_AUTH_REQUEST","tr_index":"1","tr_label":"2","RequestType":"*none"}"#
        )
        .is_empty()
    );
    assert_eq!(a.stats().ignored, 1);
}

#[test]
fn call_start_remembers_the_dialog_and_end_forgets_it() {
    let mut a = agent();
    let Operation::Initiate {
        dialog,
        origin_id,
        args,
    } = one(&mut a, CALL_START)
    else {
        panic!("not an initiate");
    };
    assert_eq!(
        dialog,
        DialogHash {
            entry: "3287".into(),
            id: "27845".into()
        }
    );
    assert_eq!(origin_id, "c1@10.0.0.1;ft1");
    assert_eq!(args["InitSession"], json!(true));
    assert_eq!(args["AllocateResources"], json!(true));
    assert_eq!(args["GetAttributes"], json!(true));
    assert_eq!(args["Time"], "2024-05-01T12:00:03Z");
    // h_entry/h_id stay in the event, as CGRateS keeps them
    assert_eq!(args["Event"]["h_entry"], "3287");
    assert_eq!(args["Event"]["RequestType"], "*prepaid");
    assert!(a.dialog(&origin_id).is_some());
    // a disconnect for it
    assert!(a.disconnect(&origin_id, INSUFFICIENT_CREDIT));
    assert!(!a.disconnect("other", INSUFFICIENT_CREDIT));
    let out = sent(&mut a);
    assert_eq!(
        out,
        vec![
            json!({"Event":"CGR_SESSION_DISCONNECT","HashEntry":"3287","HashId":"27845","Reason":"INSUFFICIENT_CREDIT"})
        ]
    );
    // the end, from the v0.10 script with its stray quote
    let Operation::Terminate {
        origin_id: end_id,
        args,
        process_cdr,
    } = one(&mut a, CALL_END_V010)
    else {
        panic!("not a terminate");
    };
    assert_eq!(a.stats().repaired, 1);
    assert_eq!(end_id, origin_id);
    assert!(!process_cdr);
    assert_eq!(args["TerminateSession"], json!(true));
    assert_eq!(args["ReleaseResources"], json!(true));
    assert!(args.get("GetAttributes").is_none());
    assert_eq!(args["Event"]["Usage"], "65s");
    assert_eq!(args["Event"]["Supplier"], "supplier1");
    assert!(a.dialog(&origin_id).is_none());
}

#[test]
fn call_start_missing_fields_disconnects() {
    let mut a = agent();
    let v = feed(
        &mut a,
        r#"{"event":"CGR_CALL_START","h_entry":"1","h_id":"2","OriginID":"x","AnswerTime":"1714564803","Account":"1001"}"#,
    );
    assert!(matches!(&v[..], [Err(Error::MandatoryMissing(f))] if f == "Destination"));
    let out = sent(&mut a);
    assert_eq!(out[0]["Event"], "CGR_SESSION_DISCONNECT");
    assert_eq!(out[0]["Reason"], MANDATORY_IE_MISSING);
    // older scripts: callid and from_tag instead of OriginID
    let op = one(
        &mut a,
        r#"{"event":"CGR_CALL_START","h_entry":"1","h_id":"2","callid":"c9","from_tag":"t9","AnswerTime":"1714564803","Account":"1001","Destination":"1002"}"#,
    );
    assert!(matches!(op, Operation::Initiate { origin_id, .. } if origin_id == "c9;t9"));
}

#[test]
fn call_end_with_cdrs_flag_and_no_flags() {
    let mut a = agent();
    let op = one(
        &mut a,
        r#"{"event":"CGR_CALL_END","cgr_flags":"*accounts;*cdrs","OriginID":"o","AnswerTime":"1714564803","Account":"1001","Destination":"1002","Usage":"10"}"#,
    );
    assert!(matches!(
        op,
        Operation::Terminate {
            process_cdr: true,
            ..
        }
    ));
    let op = one(
        &mut a,
        r#"{"event":"CGR_CALL_END","OriginID":"o","AnswerTime":"1714564803","Account":"1001","Destination":"1002"}"#,
    );
    let Operation::Terminate {
        args, process_cdr, ..
    } = op
    else {
        panic!()
    };
    assert!(!process_cdr);
    assert_eq!(args["TerminateSession"], json!(true));
    // create_cdr writes one for every end
    let mut a = EvapiAgent::new(AgentConfig {
        create_cdr: true,
        ..AgentConfig::default()
    });
    let op = one(
        &mut a,
        r#"{"event":"CGR_CALL_END","OriginID":"o","AnswerTime":"1714564803","Account":"1001","Destination":"1002"}"#,
    );
    assert!(matches!(
        op,
        Operation::Terminate {
            process_cdr: true,
            ..
        }
    ));
}

#[test]
fn process_cdr_and_message() {
    let mut a = agent();
    let op = one(
        &mut a,
        r#"{"event":"CGR_PROCESS_CDR","tr_index":"1","tr_label":"2","OriginID":"o","Account":"1001","Usage":"30"}"#,
    );
    let Operation::ProcessCdr { reply_to, args } = op else {
        panic!()
    };
    assert_eq!(reply_to.event, "CGR_PROCESS_CDR");
    assert_eq!(args["Time"], "2024-05-01T12:00:00Z");
    assert_eq!(args["Event"]["Usage"], "30s");
    a.reply(&reply_to, Ok(&json!("OK")));
    assert_eq!(sent(&mut a)[0]["Error"], "");
    // a message without flags is a ping, answered empty at once
    assert!(
        feed(
            &mut a,
            r#"{"event":"CGR_PROCESS_MESSAGE","tr_index":"3","tr_label":"4","reply_route":"PONG"}"#
        )
        .is_empty()
    );
    let out = sent(&mut a);
    assert_eq!(out[0]["Event"], "PONG");
    assert_eq!(out[0]["TransactionIndex"], "3");
    let op = one(
        &mut a,
        r#"{"event":"CGR_PROCESS_MESSAGE","tr_index":"3","tr_label":"4","cgr_flags":"*accounts,*stats:S1;S2","OriginID":"m","AnswerTime":"1714564803","Account":"1001","Destination":"1002"}"#,
    );
    let Operation::ProcessMessage { args, .. } = op else {
        panic!()
    };
    assert_eq!(args["Debit"], json!(true));
    assert_eq!(args["StatIDs"], json!(["S1", "S2"]));
}

#[test]
fn dlg_list_round() {
    let mut a = agent();
    a.request_dlg_list();
    assert_eq!(sent(&mut a), vec![json!({"Event":"CGR_DLG_LIST"})]);
    let op = one(
        &mut a,
        r#"{"event":"CGR_DLG_LIST_REPLY","jsonrpl_body":{"jsonrpc":"2.0","result":[{"call-id":"c","caller":{"tag":"t"},"variables":[]}],"id":1}}"#,
    );
    assert_eq!(
        op,
        Operation::DlgList {
            dialogs: vec![ActiveDialog {
                origin_id: "c;t".into(),
                origin_host: "127.0.0.1:8448".into()
            }]
        }
    );
    assert_eq!(op.method(), None);
}

#[test]
fn bad_messages_and_framing() {
    let mut a = agent();
    let v = feed(&mut a, r#"{"event":"CGR_SOMETHING"}"#);
    assert!(matches!(&v[..], [Err(Error::UnknownEvent(e))] if e == "CGR_SOMETHING"));
    let v = feed(&mut a, "[1,2]");
    assert!(matches!(&v[..], [Err(Error::Json(_))]));
    // two messages split across reads, the second in three pieces
    let wire = [
        netstring::encode(SIMPLEAUTH.as_bytes()),
        netstring::encode(CALL_START.as_bytes()),
    ]
    .concat();
    let (x, rest) = wire.split_at(10);
    let (y, z) = rest.split_at(SIMPLEAUTH.len() + 3);
    assert!(a.handle_bytes(x, now()).unwrap().is_empty());
    assert_eq!(a.handle_bytes(y, now()).unwrap().len(), 1);
    assert_eq!(a.handle_bytes(z, now()).unwrap().len(), 1);
    // framing garbage ends the stream; a reconnect starts clean
    assert!(a.handle_bytes(b"HTTP/1.1 400", now()).is_err());
    a.reconnected();
    assert_eq!(
        a.handle_bytes(&netstring::encode(SIMPLEAUTH.as_bytes()), now())
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn backoff_schedule() {
    let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
    let delays: Vec<u128> = (0..8).map(|_| b.next_delay().as_millis()).collect();
    assert_eq!(delays, [100, 100, 200, 300, 500, 800, 1000, 1000]);
    b.reset();
    let t = Instant::now();
    assert_eq!(b.next_attempt(t), t + Duration::from_millis(100));
}
