#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::mi::{self, Subscription};
use super::*;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_430_579_800, 0).unwrap()
}

// The shapes of the E_ACC_EVENT datagrams in CGRateS's osipssm.go comment
// (OpenSIPS 1.11 acc module, evi_flag), with the dialog_id OpenSIPS adds
// through `evi_extra` in CGRateS's tutorial configuration.
const INVITE: &str = "E_ACC_EVENT\nmethod::INVITE\nfrom_tag::87d02470\nto_tag::a671a98\n\
callid::05dac0aaa716c9814f855f0e8fee6936@0:0:0:0:0:0:0:0\nsip_code::200\nsip_reason::OK\n\
time::1430579770\ncgr_reqtype::*prepaid\ncgr_account::1002\ncgr_subject::1002\n\
cgr_destination::1002\noriginalUri::sip:1002@172.16.254.77\nduration::\ndialog_id::3401:1472\n\n";

const BYE: &str = "E_ACC_EVENT\nmethod::BYE\nfrom_tag::a671a98\nto_tag::87d02470\n\
callid::05dac0aaa716c9814f855f0e8fee6936@0:0:0:0:0:0:0:0\nsip_code::200\nsip_reason::OK\n\
time::1430579797\ncgr_reqtype::\ncgr_account::\ncgr_subject::\ncgr_destination::\n\
originalUri::sip:1002@172.16.254.1:5060;transport=udp\nduration::\ndialog_id::3401:1472\n\n";

const MISSED: &str = "E_ACC_MISSED_EVENT\nmethod::INVITE\nfrom_tag::1d5efcc1\nto_tag::\n\
callid::c0965d3f42c720397ca1a5be9619c2ef@0:0:0:0:0:0:0:0\nsip_code::404\nsip_reason::Not Found\n\
time::1430579759\ncgr_reqtype::*pseudoprepaid\ncgr_account::1002\ncgr_subject::1002\n\
cgr_destination::1002\noriginalUri::sip:1002@172.16.254.77\nduration::\n";

// The E_ACC_CDR of CGRateS's osipsevent.go comment.
const CDR: &str = "E_ACC_CDR\nto_tag::5ec6e925\ncgr_account::dan\nsetuptime::1\ncreated::1406312794\n\
method::INVITE\ncallid::Y2I5ZDYzMDkzM2YzYjhlZjA2Y2ZhZTJmZTc4MGU4NDI.\nsip_reason::OK\n\
time::1406312795\ncgr_reqtype::prepaid\ncgr_destination::dan\ncgr_subject::dan\nsip_code::200\n\
duration::7\nfrom_tag::a5716471\n";

fn agent() -> OsipsAgent {
    OsipsAgent::new(AgentConfig {
        origin_host: "127.0.0.1".into(),
        ..AgentConfig::default()
    })
}

#[test]
fn legacy_datagrams_parse() {
    let ev = datagram::parse(INVITE.as_bytes()).unwrap();
    assert_eq!(ev.name, "E_ACC_EVENT");
    assert_eq!(ev.get("method"), Some("INVITE"));
    assert_eq!(
        ev.get("callid"),
        Some("05dac0aaa716c9814f855f0e8fee6936@0:0:0:0:0:0:0:0")
    );
    assert_eq!(ev.get("duration"), Some(""));
    // quoted values, CRLF, unnamed arguments
    let ev = datagram::parse(b"E_PIKE_BLOCKED\r\nip::\"192.168.2.11\"\r\nbare\r\n").unwrap();
    assert_eq!(ev.name, "E_PIKE_BLOCKED");
    assert_eq!(ev.get("ip"), Some("192.168.2.11"));
    assert_eq!(ev.get(""), Some("bare"));
}

#[test]
fn json_rpc_datagrams_parse() {
    let d = br#"{"jsonrpc":"2.0","method":"E_ACC_CDR","params":{"callid":"c1","duration":7,"cgr_account":"1001","x":null}}"#;
    let ev = datagram::parse(d).unwrap();
    assert_eq!(ev.name, "E_ACC_CDR");
    assert_eq!(ev.get("duration"), Some("7"));
    assert_eq!(ev.get("x"), Some(""));
}

#[test]
fn malformed_datagrams_are_refused() {
    for bad in [
        &b""[..],
        b"\nkey::v",
        b"\xff\xfe",
        b"{\"jsonrpc\":\"2.0\"}",
        b"{not json",
        b"{\"method\":\"E\",\"params\":3}",
        b"bad name\nk::v",
    ] {
        assert!(
            matches!(datagram::parse(bad), Err(Error::Datagram(_))),
            "{bad:?}"
        );
    }
    let long = vec![b'a'; datagram::MAX_DATAGRAM + 1];
    assert!(datagram::parse(&long).is_err());
    let many: String = std::iter::once("E_X\n".to_owned())
        .chain((0..=datagram::MAX_ARGS).map(|i| format!("k{i}::v\n")))
        .collect();
    assert!(datagram::parse(many.as_bytes()).is_err());
}

#[test]
fn invite_then_bye_is_a_session_and_its_cdr() {
    let mut a = agent();
    let op = a
        .handle_datagram(INVITE.as_bytes(), now())
        .unwrap()
        .unwrap();
    let Operation::Initiate {
        dialog,
        origin_id,
        args,
    } = op
    else {
        panic!("{op:?}")
    };
    assert_eq!(
        dialog,
        DialogHash {
            entry: "3401".into(),
            id: "1472".into()
        }
    );
    assert_eq!(
        origin_id,
        "05dac0aaa716c9814f855f0e8fee6936@0:0:0:0:0:0:0:0"
    );
    assert_eq!(args["InitSession"], json!(true));
    let e = &args["Event"];
    assert_eq!(e["OriginID"], origin_id.as_str());
    assert_eq!(e["OriginHost"], "127.0.0.1");
    assert_eq!(e["Source"], "OSIPS_E_ACC_EVENT");
    assert_eq!(e["RequestType"], "*prepaid");
    assert_eq!(e["Account"], "1002");
    assert_eq!(e["Subject"], "1002");
    assert_eq!(e["Destination"], "1002");
    assert_eq!(e["Category"], "call");
    assert_eq!(e["AnswerTime"], "2015-05-02T15:16:10Z");
    assert_eq!(e["SetupTime"], "2015-05-02T15:16:10Z");
    assert_eq!(e["originalUri"], "sip:1002@172.16.254.77");
    assert!(e.get("from_tag").is_none() && e.get("Usage").is_none());
    assert_eq!(args["Tenant"], "cgrates.org");

    let op = a.handle_datagram(BYE.as_bytes(), now()).unwrap().unwrap();
    let Operation::Terminate {
        args, process_cdr, ..
    } = op
    else {
        panic!("{op:?}")
    };
    assert!(process_cdr);
    assert_eq!(args["TerminateSession"], json!(true));
    let e = &args["Event"];
    // 1430579797 - 1430579770
    assert_eq!(e["Usage"], "27.000s");
    assert_eq!(e["Account"], "1002", "the start's fields");
    assert_eq!(e["DisconnectCause"], "200");
    // a second BYE: no call
    assert_eq!(a.handle_datagram(BYE.as_bytes(), now()).unwrap(), None);
    assert_eq!(a.stats().ignored, 1);
}

#[test]
fn a_call_start_missing_fields_is_disconnected() {
    let mut a = agent();
    let d = INVITE.replace("cgr_account::1002\n", "");
    let e = a.handle_datagram(d.as_bytes(), now()).unwrap_err();
    assert_eq!(e, Error::MandatoryMissing("cgr_account".into()));
    assert_eq!(
        a.poll_transmit().unwrap(),
        b":dlg_end_dlg:\n3401\n1472\n\n".to_vec()
    );
    // without a dialog there is nothing to end
    let d = INVITE.replace("dialog_id::3401:1472\n", "");
    let e = a.handle_datagram(d.as_bytes(), now()).unwrap_err();
    assert_eq!(e, Error::MandatoryMissing("dialog_id".into()));
    assert!(a.poll_transmit().is_none());
    // h_entry / h_id as separate arguments
    let d = INVITE.replace("dialog_id::3401:1472", "h_entry::5\nh_id::6");
    assert!(matches!(
        a.handle_datagram(d.as_bytes(), now()),
        Ok(Some(Operation::Initiate { .. }))
    ));
    assert!(a.disconnect("05dac0aaa716c9814f855f0e8fee6936@0:0:0:0:0:0:0:0"));
    assert_eq!(
        a.poll_transmit().unwrap(),
        b":dlg_end_dlg:\n5\n6\n\n".to_vec()
    );
    assert!(!a.disconnect("other"));
}

#[test]
fn cdrs_missed_calls_and_none() {
    let mut a = agent();
    let op = a.handle_datagram(CDR.as_bytes(), now()).unwrap().unwrap();
    let Operation::ProcessCdr { args } = op else {
        panic!("{op:?}")
    };
    let e = &args["Event"];
    assert_eq!(e["Usage"], "7s");
    assert_eq!(e["SetupTime"], "2014-07-25T18:26:34Z");
    assert_eq!(e["AnswerTime"], "2014-07-25T18:26:35Z");
    assert_eq!(e["RequestType"], "prepaid");
    assert_eq!(e["Account"], "dan");
    assert_eq!(e["Source"], "OSIPS_E_ACC_CDR");

    let op = a
        .handle_datagram(MISSED.as_bytes(), now())
        .unwrap()
        .unwrap();
    let Operation::ProcessCdr { args } = op else {
        panic!("{op:?}")
    };
    assert_eq!(args["Event"]["Usage"], "0s");
    assert_eq!(args["Event"]["DisconnectCause"], "404");
    assert!(args["Event"].get("AnswerTime").is_none());

    let none = INVITE.replace("*prepaid", "*none");
    assert_eq!(a.handle_datagram(none.as_bytes(), now()).unwrap(), None);
    assert_eq!(
        a.handle_datagram(b"E_OPENSIPS_START\n", now()).unwrap(),
        Some(Operation::Resubscribe)
    );
    assert!(matches!(
        a.handle_datagram(b"E_OTHER\nk::v\n", now()),
        Err(Error::UnknownEvent(_))
    ));
    let bad_time = CDR.replace("time::1406312795", "time::yesterday");
    assert!(matches!(
        a.handle_datagram(bad_time.as_bytes(), now()),
        Err(Error::Time { .. })
    ));
    let bad_dur = CDR.replace("duration::7", "duration::7m");
    assert!(a.handle_datagram(bad_dur.as_bytes(), now()).is_err());
}

#[test]
fn mi_commands() {
    assert_eq!(
        mi::event_subscribe("E_ACC_CDR", "udp:127.0.0.1:2020", 3600).unwrap(),
        b":event_subscribe:\nE_ACC_CDR\nudp:127.0.0.1:2020\n3600\n".to_vec()
    );
    assert!(mi::event_subscribe("E\nX", "udp:1:2", 1).is_none());
    assert!(mi::dlg_end_dlg("1\n", "2").is_none());
    assert!(mi::reply_ok(b"200 OK\n\n"));
    assert!(!mi::reply_ok(b"500 Bad\n"));
}

#[test]
fn subscriptions_renew_before_they_expire_and_retry() {
    let t0 = now();
    let mut s = Subscription::new(Duration::from_secs(3600));
    assert!(s.due(t0));
    let cmds = s.commands("udp:10.0.0.1:2020");
    assert_eq!(cmds.len(), 3);
    assert_eq!(
        cmds[1],
        b":event_subscribe:\nE_ACC_EVENT\nudp:10.0.0.1:2020\n3600\n".to_vec()
    );
    s.succeeded(t0);
    assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(3240)));
    assert!(!s.due(t0 + Duration::from_secs(3239)));
    assert!(s.due(t0 + Duration::from_secs(3240)));
    s.failed(t0);
    assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(1)));
    s.failed(t0);
    assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(2)));
    for _ in 0..10 {
        s.failed(t0);
    }
    assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(30)));
    s.restart();
    assert!(s.due(t0));
    // short lifetimes still renew before expiry
    let mut s = Subscription::new(Duration::from_secs(2));
    s.succeeded(t0);
    assert_eq!(s.next_due(), Some(t0 + Duration::from_secs(1)));
}

proptest::proptest! {
    #[test]
    fn never_panics(data: Vec<u8>) {
        let mut a = agent();
        let _ = a.handle_datagram(&data, now());
    }
}
