//! Table-driven tests of every rule type and its negation, Filters.csv
//! loading and its errors, and `FilterCtx::pass`.

use std::path::Path;

use chrono::{DateTime, Utc};
use rating::{LoadOptions, TariffPlan};
use serde_json::json;

use super::*;
use crate::Event;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn plan() -> TariffPlan {
    let files = [
        (
            Path::new("Destinations.csv"),
            "DST_DE,49\nDST_DE_MOB,4915\nDST_1002,1002\n",
        ),
        (
            Path::new("Timings.csv"),
            "WORKDAYS,*any,*any,*any,1;2;3;4;5,08:00:00\nWEEKEND,*any,*any,*any,6;7,00:00:00\n",
        ),
        (Path::new("Rates.csv"), "RT_1,0,0.1,60s,60s,0s\n"),
        (
            Path::new("DestinationRates.csv"),
            "DR_1,DST_1002,RT_1,*up,4,0,\n",
        ),
        (Path::new("RatingPlans.csv"), "RP_1,DR_1,*any,10\n"),
        (
            Path::new("RatingProfiles.csv"),
            "cgrates.org,call,1001,2014-01-14T00:00:00Z,RP_1,\n",
        ),
    ];
    let opts = LoadOptions {
        loaded_at: t("2024-01-01T00:00:00Z"),
    };
    TariffPlan::from_csv(&files, &opts).unwrap().0
}

fn event() -> Event {
    let mut ev = Event::from_cgr_event(&json!({
        "Tenant": "cgrates.org",
        "Event": {
            "Account": "1001",
            "Other": "1001",
            "Destination": "4915123",
            "Usage": "90s",
            "UsageNs": 60_000_000_000_i64,
            "Cost": 1.5,
            "Empty": "",
            "Null": null,
            "List": [],
            "Zero": 0,
            "AnswerTime": "2024-05-13T10:00:00Z",
            "Saturday": "2024-05-11T10:00:00Z",
            "Unix": "1715594400",
            "IP": "10.1.2.3",
            "IP6": "2001:db8::1",
            "Text": "hello world",
            "Nested": {"Inner": "in"}
        },
        "APIOpts": {"*context": "simpleauth"}
    }));
    ev.vars.insert("Hops".into(), json!(3));
    ev
}

/// Each case: the rule, whether it passes; the negation is checked too
/// (`*notX` gives the opposite) unless the case says it errors.
#[test]
fn every_type_and_its_negation() {
    let plan = plan();
    let set = FilterSet::default();
    let ctx = FilterCtx {
        filters: &set,
        plan: Some(&plan),
        now: t("2024-05-13T12:00:00Z"),
    };
    let ev = event();
    let cases: &[(&str, bool)] = &[
        // *string
        ("*string:~*req.Account:1001", true),
        ("*string:~*req.Account:1002|1001", true),
        ("*string:~*req.Account:1002;1001", true),
        ("*string:~*req.Account:1002", false),
        ("*string:~*req.Nope:1001", false),
        ("*string:~*req.Account:~*req.Other", true),
        ("*string:~*req.Account:~*req.Destination", false),
        ("*string:~*req.Account:~*req.Missing|1001", true),
        ("*string:~*opts.*context:simpleauth", true),
        ("*string:~*vars.Hops:3", true),
        ("*string:~*req.Nested.Inner:in", true),
        ("*string:~*req.UsageNs:60000000000", true),
        ("*string:~*req.Cost:1.5", true),
        // a constant element is compared as it reads
        ("*string:*req.Account:1001", false),
        ("*string:1001:1001", true),
        // search and replace on the element
        (r"*string:~*req.Account:s/^10(\d+)$/$1/:01", true),
        // *prefix, *suffix, *contains
        ("*prefix:~*req.Destination:49", true),
        ("*prefix:~*req.Destination:33|4915", true),
        ("*prefix:~*req.Destination:33", false),
        ("*prefix:~*req.Nope:4", false),
        ("*suffix:~*req.Destination:123", true),
        ("*suffix:~*req.Destination:124", false),
        ("*contains:~*req.Text:lo wo", true),
        ("*contains:~*req.Text:bye", false),
        // *empty, *exists
        ("*empty:~*req.Empty:", true),
        ("*empty:~*req.Null:", true),
        ("*empty:~*req.List:", true),
        ("*empty:~*req.Nope:", true),
        ("*empty:~*req.Account:", false),
        ("*empty:~*req.Zero:", false),
        ("*exists:~*req.Account:", true),
        ("*exists:~*req.Empty:", true),
        ("*exists:~*req.Nope:", false),
        ("*exists:~*opts.*context:", true),
        ("*exists:~*vars.Nope:", false),
        // *gt, *gte, *lt, *lte: numbers, durations, times
        ("*gt:~*req.Usage:60s", true),
        ("*gt:~*req.Usage:90s", false),
        ("*gte:~*req.Usage:90s", true),
        ("*gte:~*req.Usage:90000000000", true),
        ("*lt:~*req.Usage:2m", true),
        ("*lt:~*req.Usage:90s", false),
        ("*lte:~*req.Usage:90s", true),
        ("*lte:~*req.Usage:89s", false),
        ("*gt:~*req.UsageNs:59s", true),
        ("*gt:~*req.Cost:1", true),
        ("*lt:~*req.Cost:1.49", false),
        ("*gte:~*vars.Hops:3", true),
        ("*gt:~*req.AnswerTime:2024-05-13T09:59:59Z", true),
        ("*lt:~*req.AnswerTime:2024-05-13 10:00:01", true),
        ("*lt:~*req.AnswerTime:*now", true),
        ("*gt:~*req.Nope:1", false),
        ("*gt:~*req.Usage:~*req.UsageNs", true),
        ("*gt:~*req.Usage:1h|1s", true),
        ("*gt:~*req.Usage{*duration_seconds}:89", true),
        // *eq
        ("*eq:~*req.Usage:90000000000", true),
        ("*eq:~*req.Usage:1m30s", true),
        ("*eq:~*req.Usage:91s", false),
        // *destinations
        ("*destinations:~*req.Destination:DST_DE", true),
        ("*destinations:~*req.Destination:DST_DE_MOB", true),
        ("*destinations:~*req.Destination:DST_1002|DST_DE_MOB", true),
        ("*destinations:~*req.Destination:DST_1002", false),
        ("*destinations:~*req.Nope:DST_DE", false),
        // *timings (2024-05-13 is a Monday, 2024-05-11 a Saturday)
        ("*timings:~*req.AnswerTime:WORKDAYS", true),
        ("*timings:~*req.AnswerTime:WEEKEND", false),
        ("*timings:~*req.Saturday:WEEKEND", true),
        ("*timings:~*req.Saturday:WORKDAYS|WEEKEND", true),
        ("*timings:~*req.AnswerTime:NO_SUCH_TIMING", false),
        ("*timings:~*req.Nope:WORKDAYS", false),
        // *rsr
        (r"*rsr:~*req.Account:~^10\d+$", true),
        (r"*rsr:~*req.Account:~^20\d+$", false),
        ("*rsr:~*req.Account:^10", true),
        ("*rsr:~*req.Account:01$", true),
        ("*rsr:~*req.Account:^1001$", true),
        ("*rsr:~*req.Account:00", true),
        ("*rsr:~*req.Account:!00", false),
        ("*rsr:~*req.Account:>=1001", true),
        ("*rsr:~*req.Account:<1001", false),
        ("*rsr:~*req.Account:^20|01$", true),
        ("*rsr:~*req.Empty:^$", true),
        ("*rsr:~*req.Nope:^$", true),
        ("*rsr:~*req.Nope:^10", false),
        (r"*rsr:~*req.Account:s/^10(\d+)$/$1/:^01$", true),
        // v0.10's form: no element, the filters inside the value
        (r"*rsr::~*req.Account(~^10\d+$)", true),
        ("*rsr::~*req.Account(^10&01$)", true),
        ("*rsr::~*req.Account(^10&!01$)", false),
        ("*rsr::~*req.Account(1001)|~*req.Destination(^49)", true),
        ("*rsr::~*req.Account(1001)|~*req.Destination(^33)", false),
        ("*rsr::~*req.Nope(^10)", false),
        ("*rsr::~*req.Account", true),
        ("*rsr::~*req.Nope", false),
        ("*rsr::~*req.Account(1001);~*req.Destination(^49)", true),
        (r"*rsr::~*req.Account:s/^10(\d+)$/$1/(^01$)", true),
        // *regex
        (r"*regex:~*req.Account:^10\d{2}$", true),
        ("*regex:~*req.Account:^2|^1", true),
        ("*regex:~*req.Account:^2", false),
        ("*regex:~*req.Nope:.*", false),
        // *ai: after start, before end (both strict)
        ("*ai:~*req.AnswerTime:2024-05-01T00:00:00Z", true),
        ("*ai:~*req.AnswerTime:2024-06-01T00:00:00Z", false),
        (
            "*ai:~*req.AnswerTime:2024-05-01T00:00:00Z|2024-06-01T00:00:00Z",
            true,
        ),
        (
            "*ai:~*req.AnswerTime:2024-05-01T00:00:00Z;2024-05-13T10:00:00Z",
            false,
        ),
        ("*ai:~*req.AnswerTime:|2024-06-01T00:00:00Z", true),
        ("*ai:~*req.AnswerTime:|2024-05-01T00:00:00Z", false),
        ("*ai:~*req.Unix:2024-05-01T00:00:00Z", true),
        ("*ai:~*req.Nope:2024-05-01T00:00:00Z", false),
        // *ipnet
        ("*ipnet:~*req.IP:10.0.0.0/8", true),
        ("*ipnet:~*req.IP:192.168.0.0/16|10.1.2.0/24", true),
        ("*ipnet:~*req.IP:10.1.3.0/24", false),
        ("*ipnet:~*req.IP6:2001:db8::/32", true),
        ("*ipnet:~*req.Account:10.0.0.0/8", false),
    ];
    for (rule, want) in cases {
        let got = ctx.pass("cgrates.org", &[(*rule).to_owned()], &ev);
        assert_eq!(got.unwrap(), *want, "{rule}");
        let negated = rule.replacen('*', "*not", 1);
        let got = ctx.pass("cgrates.org", std::slice::from_ref(&negated), &ev);
        assert_eq!(got.unwrap(), !*want, "{negated}");
    }
}

#[test]
fn rules_that_error_as_cgrates_does() {
    let set = FilterSet::default();
    let ctx = FilterCtx {
        filters: &set,
        plan: None,
        now: t("2024-05-13T12:00:00Z"),
    };
    let ev = event();
    for rule in [
        // incomparable types
        "*gt:~*req.Text:1",
        "*gt:~*req.Usage:2024-05-13T10:00:00Z",
        "*lte:~*req.Text:abc",
        // not a time
        "*ai:~*req.Text:2024-05-01T00:00:00Z",
        "*ai:~*req.AnswerTime:2024-05-01T00:00:00Z|nope",
        "*timings:~*req.Text:WORKDAYS",
        // a converter that cannot convert
        "*string:~*req.Text{*duration_seconds}:1",
    ] {
        assert!(
            ctx.pass("cgrates.org", &[rule.to_owned()], &ev).is_err(),
            "{rule}"
        );
    }
    // Without a plan, *destinations and *timings match nothing.
    for rule in [
        "*destinations:~*req.Destination:DST_DE",
        "*timings:~*req.AnswerTime:WORKDAYS",
    ] {
        assert!(!ctx.pass("cgrates.org", &[rule.to_owned()], &ev).unwrap());
    }
}

#[test]
fn malformed_inline_rules() {
    for (rule, why) in [
        ("*string", "inline parse error"),
        ("*string:~*req.Account", "inline parse error"),
        ("*nope:~*req.Account:1", "Unsupported filter Type"),
        ("*string::1", "Element is mandatory"),
        ("*string:~*req.Account:", "Values is mandatory"),
        ("*regex:~*req.Account:(", "regex"),
        ("*rsr:~*req.Account:~(", "regex"),
        ("*ai:~*req.A:1|2|3", "*ai takes"),
        ("*rsr::(1001)", "invalid RSRFilter start"),
        ("*rsr::~*req.A(~[)", "regex"),
        ("*string:~*req.A{*nope}:1", "unsupported converter"),
    ] {
        let err = Rule::parse_inline(rule).unwrap_err().to_string();
        assert!(err.contains(why), "{rule}: {err}");
    }
    let set = FilterSet::default();
    assert!(
        set.check_inline(&["FLTR_X".into(), "*string:~*req.A:1".into()])
            .is_ok()
    );
    assert!(set.check_inline(&["*string:~*req.A".into()]).is_err());
}

fn load(csv: &str) -> Result<FilterSet, Error> {
    let path = Path::new("Filters.csv");
    let recs = rating::csv::parse(path, csv.as_bytes()).unwrap();
    FilterSet::load(&recs, path)
}

#[test]
fn filters_csv_profiles_and_activation() {
    let set = load(
        "#Tenant,ID,Type,Element,Values,ActivationInterval\n\
         cgrates.org,FLTR_1,*string,~*req.Account,1001;1002,2014-07-29T15:00:00Z\n\
         cgrates.org,FLTR_1,*prefix,~*req.Destination,49;33,\n\
         cgrates.org,FLTR_OLD,*string,~*req.Account,1001,2014-07-29T15:00:00Z;2015-01-01T00:00:00Z\n\
         cgrates.org,FLTR_LATER,*string,~*req.Account,1001,\n\
         cgrates.org,FLTR_LATER,,,,2030-01-01T00:00:00Z\n\
         other.org,FLTR_1,*string,~*req.Account,2000,\n",
    )
    .unwrap();
    assert_eq!(set.len(), 4);
    assert_eq!(set.ids("cgrates.org"), ["FLTR_1", "FLTR_LATER", "FLTR_OLD"]);
    let f = set.get("cgrates.org", "FLTR_1").unwrap();
    assert_eq!(f.rules.len(), 2);
    assert_eq!(f.rules[0].values, ["1001", "1002"]);
    assert_eq!(set.get("cgrates.org", "FLTR_LATER").unwrap().rules.len(), 1);
    let ctx = FilterCtx {
        filters: &set,
        plan: None,
        now: t("2024-05-13T12:00:00Z"),
    };
    let ev = event();
    let pass = |ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        ctx.pass("cgrates.org", &ids, &ev)
    };
    assert!(pass(&[]).unwrap());
    assert!(pass(&["FLTR_1"]).unwrap());
    assert!(pass(&["FLTR_1", "*string:~*req.Account:1001"]).unwrap());
    assert!(!pass(&["FLTR_1", "*string:~*req.Account:1002"]).unwrap());
    // Expired and not yet active filters are skipped; alone they fail.
    assert!(!pass(&["FLTR_OLD"]).unwrap());
    assert!(!pass(&["FLTR_LATER"]).unwrap());
    assert!(pass(&["FLTR_OLD", "FLTR_1"]).unwrap());
    assert!(pass(&["FLTR_1", "FLTR_LATER"]).unwrap());
    // The other tenant's FLTR_1 wants 2000.
    let ids = vec!["FLTR_1".to_owned()];
    assert!(!ctx.pass("other.org", &ids, &ev).unwrap());
    // Unknown IDs: CGRateS's NOT_FOUND:ID.
    let err = pass(&["FLTR_NOPE"]).unwrap_err();
    assert_eq!(err.to_string(), "NOT_FOUND:FLTR_NOPE");
    assert!(ctx.pass("no.tenant", &ids, &ev).is_err());
}

#[test]
fn filters_csv_errors_name_line_and_column() {
    for (csv, line, column, why) in [
        ("cgrates.org,,*string,~*req.A,1,\n", 1, 0, "Tenant and ID"),
        (
            "#Tenant,ID,Type,Element,Values,ActivationInterval\n\
             cgrates.org,F,*string,~*req.A,1,\n\
             cgrates.org,F,*strung,~*req.A,1,\n",
            3,
            3,
            "Unsupported filter Type",
        ),
        ("cgrates.org,F,*string,,1,\n", 1, 4, "Element is mandatory"),
        (
            "cgrates.org,F,*prefix,~*req.A,,\n",
            1,
            5,
            "Values is mandatory",
        ),
        ("cgrates.org,F,*regex,~*req.A,(,\n", 1, 5, "regex"),
        (
            "cgrates.org,F,*string,~*req.A,1,yesterday\n",
            1,
            6,
            "not a time",
        ),
        ("cgrates.org,*F,*string,~*req.A,1,\n", 1, 2, "cannot start"),
    ] {
        match load(csv) {
            Err(Error::Load {
                line: l,
                column: c,
                why: w,
                ..
            }) => {
                assert_eq!((l, c), (line, column), "{csv}: {w}");
                assert!(w.contains(why), "{csv}: {w}");
            }
            other => panic!("{csv}: {other:?}"),
        }
    }
}

#[test]
fn json_round_trip_and_set_operations() {
    let v = json!({
        "Tenant": "cgrates.org",
        "ID": "FLTR_API",
        "Rules": [
            {"Type": "*string", "Element": "~*req.Account", "Values": ["1001", "1002"]},
            {"Type": "*notprefix", "FieldName": "~*req.Destination", "Values": ["33"]},
            {"Type": "*exists", "Element": "~*req.Usage", "Values": null}
        ],
        "ActivationInterval": {"ActivationTime": "2014-07-29T15:00:00Z", "ExpiryTime": "0001-01-01T00:00:00Z"}
    });
    let f = Filter::from_json(&v, "cgrates.org").unwrap();
    assert_eq!(f.rules.len(), 3);
    assert_eq!(f.rules[1].type_name(), "*notprefix");
    let back = f.to_json();
    assert_eq!(back["Rules"][1]["Element"], "~*req.Destination");
    assert_eq!(back["Rules"][2]["Values"], json!([]));
    assert_eq!(Filter::from_json(&back, "x").unwrap(), f);
    assert!(Filter::from_json(&json!({"Tenant": "t"}), "t").is_err());
    assert!(Filter::from_json(&json!({"ID": "*string:~*req.A:1"}), "t").is_err());
    assert!(
        Filter::from_json(
            &json!({"ID": "F", "Rules": [{"Type": "*nope", "Element": "~*req.A", "Values": ["1"]}]}),
            "t"
        )
        .is_err()
    );
    assert!(Filter::from_json(&json!({"ID": "F", "Rules": {}}), "t").is_err());
    assert_eq!(
        Filter::from_json(&json!({"ID": "F"}), "cgrates.org")
            .unwrap()
            .tenant,
        "cgrates.org"
    );

    let mut set = FilterSet::default();
    set.insert(f);
    assert!(set.get("cgrates.org", "FLTR_API").is_some());
    assert_eq!(set.ids("cgrates.org"), ["FLTR_API"]);
    assert_eq!(set.iter().count(), 1);
    assert!(set.remove("cgrates.org", "FLTR_API").is_some());
    assert!(set.remove("cgrates.org", "FLTR_API").is_none());
    assert!(set.is_empty());
}

#[test]
fn inline_rules_compile_once_and_clones_share_the_cache() {
    let set = FilterSet::default();
    let a = set.inline("*string:~*req.Account:1001").unwrap();
    let clone = set.clone();
    let b = clone.inline("*string:~*req.Account:1001").unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(a.id, "*string:~*req.Account:1001");
    assert!(set.inline("*string:~*req.Account").is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn type_name() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "*string",
                "*prefix",
                "*suffix",
                "*contains",
                "*empty",
                "*exists",
                "*gt",
                "*gte",
                "*lt",
                "*lte",
                "*eq",
                "*destinations",
                "*timings",
                "*rsr",
                "*regex",
                "*ai",
                "*ipnet",
            ])
            .prop_map(str::to_owned),
            "\\*[a-z]{0,8}",
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "1001",
                "4915123",
                "60s",
                "1m30s",
                "60000000000",
                "1.5",
                "true",
                "2024-05-13T10:00:00Z",
                "2024-05-13 10:00:00",
                "1715594400",
                "10.1.2.3",
                "10.0.0.0/8",
                "DST_DE",
                "WORKDAYS",
                "^$",
                "~^10",
                ">=10",
                "",
            ])
            .prop_map(str::to_owned),
            ".{0,12}",
        ]
    }

    fn element() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "~*req.A",
                "~*req.B",
                "~*req.Nope",
                "~*opts.*context",
                "~*req.N.X",
                "~*req.A{*duration_seconds}",
                "~*req.A:s/^(\\d)(.*)$/$2/",
                "1001",
            ])
            .prop_map(str::to_owned),
            "[~*a-zA-Z.{}:/$]{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn filters_csv_never_panics(s in ".{0,200}") {
            let path = Path::new("Filters.csv");
            if let Ok(recs) = rating::csv::parse(path, s.as_bytes()) {
                let _ = FilterSet::load(&recs, path);
            }
        }

        #[test]
        fn rules_decide_or_err_and_negate(
            ty in type_name(),
            el in element(),
            vals in prop::collection::vec(text(), 0..3),
            sep in prop::sample::select(vec!["|", ";"]),
            a in text(),
            b in text(),
        ) {
            let plan = plan();
            let set = FilterSet::default();
            let ctx = FilterCtx { filters: &set, plan: Some(&plan), now: t("2024-05-13T12:00:00Z") };
            let ev = Event::from_cgr_event(&json!({
                "Event": {"A": a, "B": b, "N": {"X": "1"}},
                "APIOpts": {"*context": "x"}
            }));
            let rule = format!("{ty}:{el}:{}", vals.join(sep));
            let got = ctx.pass("cgrates.org", std::slice::from_ref(&rule), &ev);
            if let (Ok(got), Some(rest)) = (got, ty.strip_prefix('*'))
                && !rest.starts_with("not")
            {
                let negated = format!("*not{}", &rule[1..]);
                if let Ok(neg) = ctx.pass("cgrates.org", &[negated], &ev) {
                    prop_assert_eq!(neg, !got, "{}", rule);
                }
            }
        }
    }
}
