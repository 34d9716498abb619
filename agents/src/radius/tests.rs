use serde_json::json;
use subsystems::FilterSet;

use super::*;
use crate::template::ProcessorCfg;

const SECRET: &[u8] = b"CGRateS.org";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn agent(require_ma: bool) -> RadiusAgent {
    let procs: Vec<Processor> = request::default_processors()
        .iter()
        .map(|c: &ProcessorCfg| Processor::compile(c).unwrap())
        .collect();
    RadiusAgent::new(AgentConfig {
        tenant: "cgrates.org".into(),
        clients: vec![Client {
            net: client::Cidr::parse("127.0.0.0/8").unwrap(),
            secret: SECRET.to_vec(),
            dynauth_port: 3799,
            require_message_authenticator: require_ma,
        }],
        processors: procs,
        dict: Arc::new(Dictionary::builtin()),
        dedup_ttl: Duration::from_secs(30),
        id_prefix: "radius:test".into(),
        dynauth_timeout: Duration::from_secs(2),
        dynauth_tries: 3,
    })
}

fn nas() -> SocketAddr {
    "127.0.0.1:40000".parse().unwrap()
}

fn access_request(id: u8, attrs: Vec<Attr>, with_ma: bool) -> Vec<u8> {
    let mut attrs = attrs;
    if with_ma {
        attrs.push(Attr::new(MESSAGE_AUTHENTICATOR, vec![0; 16]));
    }
    let mut b = Packet {
        code: Code::AccessRequest,
        identifier: id,
        authenticator: [id; 16],
        attributes: attrs,
    }
    .encode()
    .unwrap();
    auth::set_message_authenticator(&mut b, None, SECRET);
    b
}

fn acct(id: u8, status: u32, time: u32, secret: &[u8]) -> Vec<u8> {
    let attrs = vec![
        Attr::new(1, b"1001".to_vec()),
        Attr::new(30, b"4930555002".to_vec()),
        Attr::new(44, b"sess-1".to_vec()),
        Attr::new(40, status.to_be_bytes().to_vec()),
        Attr::new(46, time.to_be_bytes().to_vec()),
        Attr::vendor_specific(9, 1, b"h323-ivr-out=x").unwrap(),
        Attr::vendor_specific(9, 1, b"other=y").unwrap(),
    ];
    let mut b = Packet {
        code: Code::AccountingRequest,
        identifier: id,
        authenticator: [0; 16],
        attributes: attrs,
    }
    .encode()
    .unwrap();
    auth::sign_request(&mut b, secret);
    b
}

fn run(a: &mut RadiusAgent, bytes: &[u8], is_acct: bool) -> Handled {
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: t0(),
    };
    a.handle(nas(), bytes, is_acct, &ctx, t0()).unwrap()
}

fn finish(a: &mut RadiusAgent, job: Job, answers: &[Result<Value, String>]) -> Packet {
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: t0(),
    };
    let auth_ = job.packet.authenticator;
    let b = a.finish(job, answers, &ctx, t0());
    assert!(auth::response_authenticator_ok(&b, &auth_, SECRET));
    Packet::decode(&b).unwrap()
}

fn job(h: Handled) -> Job {
    match h {
        Handled::Run(j) => *j,
        other => panic!("{other:?}"),
    }
}

fn authorized(pw: &str) -> Value {
    json!({"MaxUsage": 1_000_000_000_000_i64,
           "Attributes": {"CGREvent": {"Event": {"UserPassword": pw}}}})
}

#[test]
fn pap_accepts_with_session_timeout_and_rejects_a_wrong_password() {
    let mut a = agent(false);
    let ra = [5u8; 16];
    let hidden = auth::encrypt_password(b"CGRateSPassword1", SECRET, &ra);
    let mut p = Packet::decode(&access_request(
        5,
        vec![
            Attr::new(1, b"1001".to_vec()),
            Attr::new(2, hidden),
            Attr::new(30, b"4930555002".to_vec()),
        ],
        true,
    ))
    .unwrap();
    p.authenticator = ra;
    let mut bytes = p.encode().unwrap();
    auth::set_message_authenticator(&mut bytes, None, SECRET);
    let j = job(run(&mut a, &bytes, false));
    assert_eq!(j.calls.len(), 1);
    assert_eq!(j.calls[0].method, "SessionSv1.AuthorizeEvent");
    let args = &j.calls[0].args;
    assert_eq!(args["Event"]["Account"], "1001");
    assert_eq!(args["Event"]["Destination"], "4930555002");
    assert_eq!(args["GetMaxUsage"], true);
    assert_eq!(args["GetAttributes"], true);
    let reply = finish(&mut a, j, &[Ok(authorized("CGRateSPassword1"))]);
    assert_eq!(reply.code, Code::AccessAccept);
    assert_eq!(reply.attr(27), Some(&1000u32.to_be_bytes()[..]));
    assert!(reply.attr(MESSAGE_AUTHENTICATOR).is_some());

    // the same request again: the cached answer, no new call
    match run(&mut a, &bytes, false) {
        Handled::Reply(b) => assert_eq!(Packet::decode(&b).unwrap(), reply),
        other => panic!("{other:?}"),
    }
    assert_eq!(a.counters().duplicates, 1);

    let bytes2 = {
        let mut p2 = p.clone();
        p2.identifier = 6;
        let mut b = p2.encode().unwrap();
        auth::set_message_authenticator(&mut b, None, SECRET);
        b
    };
    let j = job(run(&mut a, &bytes2, false));
    let reply = finish(&mut a, j, &[Ok(authorized("another"))]);
    assert_eq!(reply.code, Code::AccessReject);
    assert_eq!(reply.attr(18), Some(&b"AUTHENTICATION_FAILED"[..]));
}

#[test]
fn chap_and_digest() {
    let mut a = agent(false);
    let challenge = [9u8; 16];
    let mut cp = vec![1u8];
    let mut h = <md5::Md5 as md5::Digest>::new();
    md5::Digest::update(&mut h, [1u8]);
    md5::Digest::update(&mut h, b"pw1");
    md5::Digest::update(&mut h, challenge);
    cp.extend_from_slice(&md5::Digest::finalize(h));
    let b = access_request(
        7,
        vec![
            Attr::new(1, b"1001".to_vec()),
            Attr::new(3, cp),
            Attr::new(60, challenge.to_vec()),
            Attr::new(30, b"4930555002".to_vec()),
        ],
        false,
    );
    let j = job(run(&mut a, &b, false));
    assert_eq!(
        finish(&mut a, j, &[Ok(authorized("pw1"))]).code,
        Code::AccessAccept
    );

    let mut d = auth::DigestParams {
        realm: "example.org".into(),
        nonce: "abc".into(),
        method: "INVITE".into(),
        uri: "sip:4930555002@example.org".into(),
        username: "1001".into(),
        ..auth::DigestParams::default()
    };
    d.response = auth::digest_response(&d, b"pw1");
    let b = access_request(
        8,
        vec![
            Attr::new(1, b"1001".to_vec()),
            Attr::new(30, b"4930555002".to_vec()),
            Attr::new(103, d.response.clone().into_bytes()),
            Attr::new(104, d.realm.clone().into_bytes()),
            Attr::new(105, d.nonce.clone().into_bytes()),
            Attr::new(108, d.method.clone().into_bytes()),
            Attr::new(109, d.uri.clone().into_bytes()),
        ],
        false,
    );
    let j = job(run(&mut a, &b, false));
    assert_eq!(
        finish(&mut a, j, &[Ok(authorized("pw1"))]).code,
        Code::AccessAccept
    );
    let b9 = {
        let mut p = Packet::decode(&b).unwrap();
        p.identifier = 9;
        p.encode().unwrap()
    };
    let j = job(run(&mut a, &b9, false));
    assert_eq!(
        finish(&mut a, j, &[Ok(authorized("pw2"))]).code,
        Code::AccessReject
    );
    // an authorization error rejects with its text
    let b10 = {
        let mut p = Packet::decode(&b).unwrap();
        p.identifier = 10;
        p.encode().unwrap()
    };
    let j = job(run(&mut a, &b10, false));
    let r = finish(&mut a, j, &[Err("INSUFFICIENT_CREDIT".into())]);
    assert_eq!(r.code, Code::AccessReject);
    assert_eq!(r.attr(18), Some(&b"INSUFFICIENT_CREDIT"[..]));
}

#[test]
fn accounting_sequence_to_calls_and_a_disconnect() {
    let mut a = agent(false);
    let j = job(run(&mut a, &acct(1, 1, 0, SECRET), true));
    let methods: Vec<&str> = j.calls.iter().map(|c| c.method).collect();
    assert_eq!(methods, ["SessionSv1.InitiateSession"]);
    let ev = &j.calls[0].args["Event"];
    assert_eq!(ev["OriginID"], "sess-1");
    assert_eq!(ev["OriginHost"], "127.0.0.1");
    assert_eq!(ev["Cisco-AVPair"], "h323-ivr-out=x;other=y");
    assert_eq!(j.calls[0].args["InitSession"], true);
    let r = finish(&mut a, j, &[Ok(json!({"MaxUsage": 0}))]);
    assert_eq!(r.code, Code::AccountingResponse);

    let j = job(run(&mut a, &acct(2, 3, 30, SECRET), true));
    assert_eq!(j.calls[0].method, "SessionSv1.UpdateSession");
    assert_eq!(j.calls[0].args["Event"]["LastUsed"], "30s");
    assert_eq!(j.calls[0].args["UpdateSession"], true);
    finish(&mut a, j, &[Ok(json!({}))]);
    let j = job(run(&mut a, &acct(3, 3, 50, SECRET), true));
    assert_eq!(j.calls[0].args["Event"]["LastUsed"], "20s");
    finish(&mut a, j, &[Ok(json!({}))]);

    // the session manager asks for a disconnect
    let cgrid = sessions::cgrid("sess-1", "127.0.0.1");
    assert!(a.disconnect(&cgrid, t0()));
    let (to, dr) = a.poll_transmit().unwrap();
    assert_eq!(to, "127.0.0.1:3799".parse::<SocketAddr>().unwrap());
    let dp = Packet::decode(&dr).unwrap();
    assert_eq!(dp.code, Code::DisconnectRequest);
    assert_eq!(dp.attr(44), Some(&b"sess-1"[..]));
    assert!(auth::request_authenticator_ok(&dr, SECRET));
    let mut ack = Packet {
        code: Code::DisconnectAck,
        identifier: dp.identifier,
        authenticator: dp.authenticator,
        attributes: vec![],
    }
    .encode()
    .unwrap();
    auth::sign_response(&mut ack, &dp.authenticator, SECRET);
    a.handle_dynauth_reply(to, &ack);
    assert_eq!(a.counters().disconnect_acks, 1);

    let j = job(run(&mut a, &acct(4, 2, 62, SECRET), true));
    let methods: Vec<&str> = j.calls.iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        ["SessionSv1.TerminateSession", "SessionSv1.ProcessCDR"]
    );
    assert_eq!(j.calls[0].args["Event"]["Usage"], "62s");
    finish(&mut a, j, &[Ok(json!("OK")), Ok(json!("OK"))]);
    assert!(!a.disconnect(&cgrid, t0()), "ended sessions are forgotten");
}

#[test]
fn wrong_secrets_and_strangers_are_dropped_and_counted() {
    let mut a = agent(true);
    assert!(matches!(
        run(&mut a, &acct(1, 1, 0, b"wrong"), true),
        Handled::Drop(DropReason::BadAuthenticator)
    ));
    let mut b = Packet::decode(&access_request(
        2,
        vec![Attr::new(1, b"1001".to_vec())],
        true,
    ))
    .unwrap()
    .encode()
    .unwrap();
    auth::set_message_authenticator(&mut b, None, b"wrong");
    assert!(matches!(
        run(&mut a, &b, false),
        Handled::Drop(DropReason::BadMessageAuthenticator)
    ));
    let no_ma = access_request(3, vec![Attr::new(1, b"1001".to_vec())], false);
    assert!(matches!(
        run(&mut a, &no_ma, false),
        Handled::Drop(DropReason::MissingMessageAuthenticator)
    ));
    assert!(matches!(
        run(&mut a, &acct(4, 1, 0, SECRET), false),
        Handled::Drop(DropReason::UnexpectedCode)
    ));
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: t0(),
    };
    let stranger: SocketAddr = "10.1.1.1:1".parse().unwrap();
    assert!(matches!(
        a.handle(stranger, &acct(5, 1, 0, SECRET), true, &ctx, t0())
            .unwrap(),
        Handled::Drop(DropReason::UnknownClient)
    ));
    assert!(matches!(
        run(&mut a, &[1, 2, 3], true),
        Handled::Drop(DropReason::Malformed)
    ));
    let c = a.counters();
    assert_eq!(c.dropped["bad_authenticator"], 1);
    assert_eq!(c.dropped["bad_message_authenticator"], 1);
    assert_eq!(c.received, 6);
}

#[test]
fn a_missing_mandatory_field_is_an_error() {
    let mut a = agent(false);
    let b = access_request(1, vec![Attr::new(30, b"4930555002".to_vec())], false);
    let fs = FilterSet::default();
    let ctx = FilterCtx {
        filters: &fs,
        plan: None,
        now: t0(),
    };
    let e = a.handle(nas(), &b, false, &ctx, t0()).unwrap_err();
    assert!(matches!(e, Error::MandatoryMissing(_)), "{e}");
    let r = Packet::decode(&a.reject(nas(), &b, &e.to_string(), t0()).unwrap()).unwrap();
    assert_eq!(r.code, Code::AccessReject);
}

#[test]
fn radauth_requires_credentials_and_method_flags_limit_them() {
    let none = Credentials::None;
    let flags = |f: &[&str]| f.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(check_password(&none, Some("pw"), &[]), Ok(()));
    assert_eq!(
        check_password(&none, Some("pw"), &flags(&["*radauth"])),
        Err("AUTHENTICATION_REQUIRED".into())
    );
    let pap = Credentials::Pap(b"pw".to_vec());
    assert_eq!(
        check_password(&pap, Some("pw"), &flags(&["*radauth", "*pap"])),
        Ok(())
    );
    assert_eq!(
        check_password(&pap, Some("pw"), &flags(&["*radauth", "*chap"])),
        Err("UNSUPPORTED_AUTH_METHOD *pap".into())
    );
    assert_eq!(
        check_password(&pap, None, &[]),
        Err("NO_PASSWORD_KNOWN".into())
    );
    assert_eq!(
        check_password(&pap, Some("x"), &[]),
        Err("AUTHENTICATION_FAILED".into())
    );
}

#[test]
fn proxy_state_is_copied_into_the_reply() {
    let mut a = agent(false);
    let mut b = acct(9, 7, 0, SECRET);
    let mut p = Packet::decode(&b).unwrap();
    p.attributes.push(Attr::new(PROXY_STATE, b"hop1".to_vec()));
    p.attributes.push(Attr::new(PROXY_STATE, b"hop2".to_vec()));
    b = p.encode().unwrap();
    auth::sign_request(&mut b, SECRET);
    // Accounting-On: no processor, answered at once.
    let j = job(run(&mut a, &b, true));
    assert!(j.calls.is_empty());
    let r = finish(&mut a, j, &[]);
    assert_eq!(r.code, Code::AccountingResponse);
    let ps: Vec<&[u8]> = r
        .attributes
        .iter()
        .filter(|x| x.typ == PROXY_STATE)
        .map(|x| x.value.as_slice())
        .collect();
    assert_eq!(ps, [&b"hop1"[..], &b"hop2"[..]]);
}
