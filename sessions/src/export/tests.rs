use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use capture::Timestamp;
use rust_decimal::Decimal;

use super::*;

fn cdr() -> crate::Cdr {
    let setup = Timestamp::from_nanos(1_700_000_000_000_000_000);
    let answer = Timestamp::from_nanos(1_700_000_002_500_000_000);
    let mut extra = BTreeMap::new();
    extra.insert("Route".to_owned(), "gw1".to_owned());
    crate::Cdr {
        cgrid: "abc".into(),
        run_id: "*default".into(),
        origin_id: "call-1".into(),
        origin_host: "10.0.0.1".into(),
        source: "test".into(),
        tor: "*voice".into(),
        request_type: "*postpaid".into(),
        tenant: "cgrates.org".into(),
        category: "call".into(),
        account: "1001".into(),
        subject: "1001".into(),
        destination: "491234567".into(),
        setup_time: setup,
        answer_time: Some(answer),
        usage: Duration::from_millis(90_500),
        cost_source: "*sessions".into(),
        cost: Some(Decimal::from_str("0.123456").unwrap_or_default()),
        disconnect_cause: "NORMAL_CLEARING".into(),
        extra_fields: extra,
        end_time: answer.saturating_add(Duration::from_millis(90_500)),
    }
}

fn spec(kind: &str, value: &str) -> FieldSpec {
    FieldSpec {
        kind: kind.into(),
        value: value.into(),
        ..FieldSpec::default()
    }
}

fn one(s: FieldSpec) -> String {
    let t = Template::new(&[s]).unwrap_or_else(|e| panic!("{e}"));
    let c = cdr();
    t.render(&CdrSource(&c))
        .unwrap_or_else(|e| panic!("{e}"))
        .remove(0)
}

#[test]
fn variables_paths_and_constants() {
    assert_eq!(one(spec("*variable", "~*req.Account")), "1001");
    assert_eq!(one(spec("", "~Destination")), "491234567");
    assert_eq!(one(spec("", "CGRID")), "abc");
    assert_eq!(one(spec("", "~*req.Route")), "gw1", "an ExtraFields key");
    assert_eq!(one(spec("", "~*req.Nothing")), "");
    let by_path = FieldSpec {
        path: "~*req.RunID".into(),
        ..FieldSpec::default()
    };
    assert_eq!(one(by_path), "*default");
    assert_eq!(one(spec("*constant", "X;Y")), "X;Y");
    assert_eq!(
        one(spec("*composed", "~*req.Account;-;~*req.Destination")),
        "1001-491234567"
    );
    assert_eq!(one(spec("", "~*req.Usage")), "1m30.5s");
    assert_eq!(one(spec("", "~*req.Usage{*duration_seconds}")), "90.5");
    assert_eq!(
        one(spec("", "~*req.Usage{*duration_nanoseconds}")),
        "90500000000"
    );
}

#[test]
fn cost_rounding() {
    let cost = |n: Option<u32>| {
        one(FieldSpec {
            rounding_decimals: n,
            ..spec("", "~*req.Cost")
        })
    };
    assert_eq!(cost(None), "0.123456");
    assert_eq!(cost(Some(4)), "0.1235", "half away from zero");
    assert_eq!(cost(Some(2)), "0.12");
    assert_eq!(cost(Some(0)), "0");
    let mut c = cdr();
    c.cost = Some(Decimal::from_str("1.5").unwrap_or_default());
    let t = Template::new(&[FieldSpec {
        rounding_decimals: Some(3),
        ..spec("", "Cost")
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.render(&CdrSource(&c)).unwrap_or_default(), ["1.500"]);
    c.cost = None;
    assert_eq!(
        t.render(&CdrSource(&c)).unwrap_or_default(),
        ["-1.000"],
        "not rated: -1 as CGRateS"
    );
}

#[test]
fn time_layouts() {
    let at = |layout: &str| {
        one(FieldSpec {
            layout: layout.into(),
            ..spec("", "~*req.AnswerTime")
        })
    };
    assert_eq!(at(""), "2023-11-14T22:13:22Z");
    assert_eq!(at("2006-01-02 15:04:05.000"), "2023-11-14 22:13:22.500");
    assert_eq!(at("20060102150405"), "20231114221322");
    let mut c = cdr();
    c.answer_time = None;
    let t = Template::new(&[spec("", "AnswerTime")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        t.render(&CdrSource(&c)).unwrap_or_default(),
        [""],
        "unanswered"
    );
}

#[test]
fn fixed_width_padding_and_truncation() {
    let fw = |value: &str, width: usize, padding: &str, strip: &str| {
        one(FieldSpec {
            width,
            padding: padding.into(),
            strip: strip.into(),
            ..spec("*constant", value)
        })
    };
    assert_eq!(fw("ab", 5, "", ""), "ab   ");
    assert_eq!(fw("ab", 5, "left", ""), "   ab");
    assert_eq!(fw("42", 5, "zeroleft", ""), "00042");
    assert_eq!(fw("abcdef", 4, "", ""), "abcd");
    assert_eq!(fw("abcdef", 4, "", "left"), "cdef");
    assert_eq!(fw("abcdef", 4, "", "xright"), "abcx");
    assert_eq!(fw("abcdef", 4, "", "xleft"), "xdef");
    assert_eq!(fw("42", 4, "zeroright", ""), "4200");
    assert_eq!(fw("ab", 2, "left", ""), "ab");
    assert_eq!(fw("äöü", 4, "", ""), "äöü ", "characters, not bytes");
    assert_eq!(
        one(FieldSpec {
            width: 3,
            ..spec("*filler", "")
        }),
        "   "
    );
    let cost = one(FieldSpec {
        width: 8,
        padding: "zeroleft".into(),
        rounding_decimals: Some(2),
        ..spec("", "Cost")
    });
    assert_eq!(cost, "00000.12");
}

#[test]
fn bad_fields_are_refused() {
    for s in [
        spec("*nope", "x"),
        spec("", ""),
        FieldSpec {
            padding: "middle".into(),
            ..spec("", "Account")
        },
        FieldSpec {
            strip: "both".into(),
            ..spec("", "Account")
        },
        spec("*filler", ""),
        spec("", "~Usage{*hours}"),
    ] {
        assert!(Template::new(std::slice::from_ref(&s)).is_err(), "{s:?}");
    }
    let t = Template::new(&[FieldSpec {
        mandatory: true,
        ..spec("", "~*req.Nothing")
    }])
    .unwrap_or_else(|e| panic!("{e}"));
    let c = cdr();
    let e = t.render(&CdrSource(&c)).err().unwrap_or_else(|| panic!());
    assert!(e.0.contains("mandatory"), "{e}");
}

#[test]
fn names_and_rows() {
    let t = Template::new(&[
        FieldSpec {
            tag: "Acc".into(),
            ..spec("", "~*req.Account")
        },
        FieldSpec {
            path: "*cgreq.Destination".into(),
            ..spec("", "~*req.2")
        },
        spec("", "~*req.5"),
        spec("", "~*req.0"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.names(), ["Acc", "Destination", "5", "0"]);
    let row: Vec<String> = ["1001", "x", "4930"].map(String::from).to_vec();
    let named = t.render_named(&RowSource(&row)).unwrap_or_default();
    assert_eq!(
        named,
        [
            ("Destination".to_owned(), "4930".to_owned()),
            ("0".to_owned(), "1001".to_owned())
        ],
        "missing columns and paths left out"
    );
}

#[test]
fn cdr_as_event_fields() {
    let m = cdr_event_fields(&cdr());
    assert_eq!(m["Account"], "1001");
    assert_eq!(m["Cost"], "0.123456");
    assert_eq!(m["Usage"], "1m30.5s");
    assert_eq!(m["Route"], "gw1");
    assert_eq!(m["AnswerTime"], "2023-11-14T22:13:22.500000Z");
}
