use std::path::Path;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::{Event, FilterCtx, FilterSet};

const PLAN: &str = "\
#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight
cgrates.org,ATTR_1001_SIMPLEAUTH,simpleauth,*string:~*req.Account:1001,,,*req.Password,*constant,CGRateS.org,false,20
cgrates.org,ATTR_1001_SESSIONAUTH,*sessions,*string:~*req.Account:1001,,,,,,false,10
cgrates.org,ATTR_1001_SESSIONAUTH,,,,,*req.Password,*constant,CGRateS.org,,
cgrates.org,ATTR_1001_SESSIONAUTH,,,,,*req.RequestType,*constant,*prepaid,,
cgrates.org,ATTR_ANY_LOW,*any,*string:~*req.Account:1001,,,*req.Low,*constant,yes,false,5
cgrates.org,ATTR_ANY_HIGH,*any,*string:~*req.Account:1001,,,*req.High,*constant,yes,false,50
cgrates.org,ATTR_NORM,*cdrs,,,,*req.Destination,*variable,~*req.Destination:s/^0049(\\d+)$/+49${1}/,false,30
cgrates.org,ATTR_NORM,,,,*prefix:~*req.Destination:+49,*req.Country,*constant,DE,,
cgrates.org,ATTR_NORM,,,,*prefix:~*req.Destination:+33,*req.Country,*constant,FR,,
cgrates.org,ATTR_OLD,*cdrs,*string:~*req.Account:1001,2014-01-14T00:00:00Z;2015-01-01T00:00:00Z,,*req.Old,*constant,yes,false,90
cgrates.com,ATTR_TNT,*any,*string:~*req.Account:1002,,,*tenant,*constant,cgrates.org,,
cgrates.com,ATTR_TNT,,,,,*req.Account,*constant,1001,,
cgrates.org,ATTR_RUN_A,run,*string:~*req.Account:2001,,,*req.A,*composed,a,false,20
cgrates.org,ATTR_RUN_B,run,*string:~*req.Account:2001,,,*req.B,*composed,b,false,10
cgrates.org,ATTR_BLOCK,block,*string:~*req.Account:2001,,,*req.A,*constant,x,true,20
cgrates.org,ATTR_BLOCK2,block,*string:~*req.Account:2001,,,*req.B,*constant,y,false,10
cgrates.org,ATTR_FLT,*sessions,FLTR_2002,,,*req.Flt,*constant,hit,false,10
cgrates.org,ATTR_REM,rm,,,,*req.Secret,*constant,*remove,false,0
cgrates.org,ATTR_REM,,,,,*opts.*rated,*constant,true,,
cgrates.org,ATTR_MISSING,miss,,,,*req.X,*variable,~*req.Nope,false,0
cgrates.org,ATTR_SECOND,vars,*string:~*vars.*processRuns:2,,,*req.Second,*variable,~*vars.*processRuns,false,20
cgrates.org,ATTR_FIRST,vars,,,,*req.First,*constant,1,false,10
";

const FILTERS: &str = "\
#Tenant,ID,Type,Element,Values,ActivationInterval
cgrates.org,FLTR_2002,*string,~*req.Account,2002,
";

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn fixture() -> (AttributeProfiles, FilterSet) {
    let p = Path::new("Attributes.csv");
    let attrs =
        AttributeProfiles::load(&rating::csv::parse(p, PLAN.as_bytes()).unwrap(), p).unwrap();
    let f = Path::new("Filters.csv");
    let filters = FilterSet::load(&rating::csv::parse(f, FILTERS.as_bytes()).unwrap(), f).unwrap();
    (attrs, filters)
}

fn run(ev: serde_json::Value, context: &str, runs: usize) -> Result<AttrReply, Error> {
    let (attrs, filters) = fixture();
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let args = AttrArgs {
        context: context.into(),
        profile_ids: Vec::new(),
        process_runs: runs,
    };
    attrs.process(&ctx, Event::from_cgr_event(&ev), &args)
}

fn acc(a: &str) -> serde_json::Value {
    json!({"Tenant": "cgrates.org", "ID": "e1", "Event": {"Account": a}})
}

#[test]
fn loads_rows_into_profiles() {
    let (attrs, _) = fixture();
    let p = attrs.get("cgrates.org", "ATTR_1001_SESSIONAUTH").unwrap();
    assert_eq!(p.contexts, vec!["*sessions"]);
    assert_eq!(p.weight, 10.0);
    assert_eq!(p.attributes.len(), 2);
    assert_eq!(p.attributes[1].path, "*req.RequestType");
    assert_eq!(
        attrs
            .get("cgrates.org", "ATTR_NORM")
            .unwrap()
            .attributes
            .len(),
        3
    );
    assert!(attrs.get("cgrates.org", "ATTR_BLOCK").unwrap().blocker);
    assert_eq!(attrs.ids("cgrates.com"), vec!["ATTR_TNT"]);
    let j = p.to_json();
    assert_eq!(j["Attributes"][0]["Value"][0]["Rules"], "CGRateS.org");
    assert_eq!(j["Weight"], 10);
    assert_eq!(j["ActivationInterval"], serde_json::Value::Null);
}

#[test]
fn context_and_weight_pick_the_profile() {
    let r = run(acc("1001"), "simpleauth", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_1001_SIMPLEAUTH"]);
    assert_eq!(r.altered_fields, vec!["*req.Password"]);
    assert_eq!(r.event.text("Password"), "CGRateS.org");
    let r = run(acc("1001"), "*sessions", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_1001_SESSIONAUTH"]);
    assert_eq!(r.altered_fields, vec!["*req.Password", "*req.RequestType"]);
    assert_eq!(r.event.text("RequestType"), "*prepaid");
    // no profile of this context: the *any ones, highest weight first
    let r = run(acc("1001"), "*chargers", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_ANY_HIGH"]);
    let r = run(acc("1001"), "", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_ANY_HIGH"]);
    // filters decide
    assert!(matches!(
        run(acc("1009"), "simpleauth", 1),
        Err(Error::NotFound)
    ));
}

#[test]
fn activation_interval_uses_the_event_time() {
    let mut ev = acc("1001");
    ev["Time"] = json!("2014-06-01T00:00:00Z");
    let r = run(ev, "*cdrs", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_OLD"]);
    // now (2024) is past its expiry: the next best (*cdrs ATTR_NORM)
    let mut ev = acc("1001");
    ev["Event"]["Destination"] = json!("1002");
    let r = run(ev, "*cdrs", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_NORM"]);
}

#[test]
fn variable_with_rules_and_attribute_filters() {
    let ev = json!({"Event": {"Destination": "00491234"}});
    let r = run(ev, "*cdrs", 1).unwrap();
    assert_eq!(r.event.text("Destination"), "+491234");
    // the attribute filters see the changed event
    assert_eq!(r.event.text("Country"), "DE");
    assert_eq!(r.altered_fields, vec!["*req.Destination", "*req.Country"]);
    let r = run(json!({"Event": {"Destination": "+33123"}}), "*cdrs", 1).unwrap();
    assert_eq!(r.event.text("Destination"), "+33123");
    assert_eq!(r.event.text("Country"), "FR");
}

#[test]
fn filter_ids_from_filters_csv() {
    let r = run(acc("2002"), "*sessions", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_FLT"]);
    assert_eq!(r.event.text("Flt"), "hit");
}

#[test]
fn process_runs_skip_the_last_profile_and_see_the_new_tenant() {
    let r = run(acc("2001"), "run", 1).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_RUN_A"]);
    let r = run(acc("2001"), "run", 4).unwrap();
    assert_eq!(
        r.matched_profiles,
        vec!["ATTR_RUN_A", "ATTR_RUN_B", "ATTR_RUN_A", "ATTR_RUN_B"]
    );
    assert_eq!(r.event.text("A"), "aa");
    assert_eq!(r.event.text("B"), "bb");
    assert!(r.event.vars.is_empty());
    // *profileRuns 1: each profile at most once
    let mut ev = acc("2001");
    ev["APIOpts"] = json!({"*profileRuns": 1});
    let r = run(ev, "run", 4).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_RUN_A", "ATTR_RUN_B"]);
    // tenant change: the second run reads cgrates.org's profiles
    let ev = json!({"Tenant": "cgrates.com", "Event": {"Account": "1002"}});
    let r = run(ev, "*sessions", 2).unwrap();
    assert_eq!(
        r.matched_profiles,
        vec!["ATTR_TNT", "ATTR_1001_SESSIONAUTH"]
    );
    assert_eq!(r.event.tenant, "cgrates.org");
    assert_eq!(
        r.altered_fields,
        vec![
            "*tenant",
            "*req.Account",
            "*req.Password",
            "*req.RequestType"
        ]
    );
}

#[test]
fn blocker_stops_the_runs() {
    let r = run(acc("2001"), "block", 3).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_BLOCK"]);
    assert_eq!(r.event.text("B"), "");
}

#[test]
fn remove_opts_missing_paths_and_mandatory_fields() {
    let ev = json!({"Event": {"Secret": "s", "Keep": 1}});
    let r = run(ev, "rm", 1).unwrap();
    assert!(!r.event.fields.contains_key("Secret"));
    assert_eq!(r.event.opts["*rated"], "true");
    assert_eq!(r.altered_fields, vec!["*req.Secret", "*opts.*rated"]);
    assert!(matches!(run(acc("1"), "miss", 1), Err(Error::NotFound)));
    let ev = json!({"Event": {"Account": "1009", "Password": "*attributes"}});
    match run(ev, "simpleauth", 1) {
        Err(Error::Invalid(m)) => assert_eq!(m, "MANDATORY_IE_MISSING: [Password]"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn profile_ids_and_inline_profiles() {
    let (attrs, filters) = fixture();
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let ev =
        Event::from_cgr_event(&json!({"Event": {"Account": "1001", "RequestType": "*prepaid"}}));
    let args = AttrArgs {
        context: "*chargers".into(),
        profile_ids: vec![
            "*constant:*req.RequestType:*none;*variable:*req.Copy:x&~*req.Account".into(),
        ],
        process_runs: 1,
    };
    let r = attrs.process(&ctx, ev.clone(), &args).unwrap();
    assert_eq!(r.event.text("RequestType"), "*none");
    assert_eq!(r.event.text("Copy"), "x1001");
    assert_eq!(r.matched_profiles, args.profile_ids);
    // named IDs: the context is not checked, filters are
    let args = AttrArgs {
        context: "*chargers".into(),
        profile_ids: vec!["ATTR_1001_SIMPLEAUTH".into(), "NOPE".into()],
        process_runs: 1,
    };
    let r = attrs.process(&ctx, ev.clone(), &args).unwrap();
    assert_eq!(r.matched_profiles, vec!["ATTR_1001_SIMPLEAUTH"]);
    let p = attrs.profile_for_event(&ctx, &ev, &args).unwrap();
    assert_eq!(p.id, "ATTR_1001_SIMPLEAUTH");
    let args = AttrArgs {
        profile_ids: vec!["*constant:*req.RequestType".into()],
        ..AttrArgs::default()
    };
    assert!(attrs.process(&ctx, ev, &args).is_err());
}

fn load_err(csv: &str) -> String {
    let p = Path::new("Attributes.csv");
    AttributeProfiles::load(&rating::csv::parse(p, csv.as_bytes()).unwrap(), p)
        .unwrap_err()
        .to_string()
}

#[test]
fn csv_errors_name_the_line() {
    let head = "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight\n";
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,,,*req.X,*bogus,1,false,10\n"
    ));
    assert!(e.starts_with("Attributes.csv:2: column 8"), "{e}");
    let e = load_err(&format!(
        "{head}\ncgrates.org,A,*any,,,,*req.X,*constant,1,maybe,10\n"
    ));
    assert!(e.starts_with("Attributes.csv:3: column 10"), "{e}");
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,,,*req.X,*constant,1,false,ten\n"
    ));
    assert!(e.contains(":2: column 11"), "{e}");
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,yesterday,,*req.X,*constant,1,false,1\n"
    ));
    assert!(e.contains(":2: column 5"), "{e}");
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,,,*req.X,*variable,~*req.A:s/(/x/,false,1\n"
    ));
    assert!(e.contains(":2: column 9"), "{e}");
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,,,*req.X,*usage_difference,~*req.A,false,1\n"
    ));
    assert!(e.contains(":2: column 9"), "{e}");
    // an unknown type with a true/false value is still this layout's error
    let e = load_err(&format!(
        "{head}cgrates.org,A,*any,,,,*req.X,*bogus,true,false,10\n"
    ));
    assert!(e.contains(":2: column 8"), "{e}");
    let e = load_err(&format!("{head},A,*any,,,,*req.X,*constant,1,false,1\n"));
    assert!(e.contains(":2: column 0"), "{e}");
    let e = load_err(&format!("{head}cgrates.org,A,*any,,,\n"));
    assert!(e.contains(":2: column 0"), "{e}");
}

#[test]
fn reads_the_v09_layout() {
    let csv = "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,FieldName,Initial,Substitute,Append,Blocker,Weight\n\
        cgrates.org,OLD,*sessions,,,Account,*any,1001,true,false,10\n\
        cgrates.org,OLD,,,,Subject,1002,~Account,false,,\n";
    let p = Path::new("Attributes.csv");
    let attrs =
        AttributeProfiles::load(&rating::csv::parse(p, csv.as_bytes()).unwrap(), p).unwrap();
    let filters = FilterSet::default();
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let args = AttrArgs {
        context: "*sessions".into(),
        ..AttrArgs::default()
    };
    let ev = Event::from_cgr_event(&json!({"Event": {"Account": "7", "Subject": "1002"}}));
    let r = attrs.process(&ctx, ev, &args).unwrap();
    assert_eq!(r.event.text("Account"), "1001");
    assert_eq!(r.event.text("Subject"), "1001");
    // Subject is only replaced when it holds the Initial value
    let ev = Event::from_cgr_event(&json!({"Event": {"Account": "7", "Subject": "9"}}));
    let r = attrs.process(&ctx, ev, &args).unwrap();
    assert_eq!(r.event.text("Subject"), "9");
    assert_eq!(r.altered_fields, vec!["*req.Account"]);
    // Append false: an absent field stays absent
    let ev = Event::from_cgr_event(&json!({"Event": {"Account": "7"}}));
    let r = attrs.process(&ctx, ev, &args).unwrap();
    assert!(!r.event.fields.contains_key("Subject"));
}

#[test]
fn filters_read_the_run_number_and_digest() {
    let r = run(acc("1"), "vars", 3).unwrap();
    assert_eq!(
        r.matched_profiles,
        vec!["ATTR_FIRST", "ATTR_SECOND", "ATTR_FIRST"]
    );
    assert_eq!(r.event.text("Second"), "2");
    assert_eq!(r.digest(), "First:1,Second:2");
    assert!(r.event.vars.is_empty());
}

#[test]
fn none_ids_match_nothing() {
    let (attrs, filters) = fixture();
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let args = AttrArgs {
        profile_ids: vec!["*none".into()],
        ..AttrArgs::default()
    };
    let ev = Event::from_cgr_event(&acc("1001"));
    assert!(matches!(
        attrs.process(&ctx, ev, &args),
        Err(Error::NotFound)
    ));
    assert!(AttributeProfile::inline("t", "*constant:*req.A:1&2").is_ok());
    assert!(AttributeProfile::inline("t", "*constant::1").is_err());
}

#[test]
fn the_index_keeps_the_choice() {
    let mut csv = String::from(
        "#Tenant,ID,Contexts,FilterIDs,ActivationInterval,AttributeFilterIDs,Path,Type,Value,Blocker,Weight\n",
    );
    for i in 0..2000 {
        csv.push_str(&format!(
            "t,P{i},auth,*string:~*req.Account:{i},,,*req.Password,*constant,pw{i},false,10\n"
        ));
    }
    // two values, and a second filter the index does not read
    csv.push_str("t,MULTI,auth,*string:~*req.Account:a|b;*prefix:~*req.Dst:49,,,*req.Password,*constant,multi,false,20\n");
    // no *string filter: always a candidate, lower weight
    csv.push_str(
        "t,ANY_ACC,auth;other,*prefix:~*req.Account:1,,,*req.Password,*constant,prefix,false,5\n",
    );
    let p = Path::new("Attributes.csv");
    let attrs =
        AttributeProfiles::load(&rating::csv::parse(p, csv.as_bytes()).unwrap(), p).unwrap();
    let filters = FilterSet::default();
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let args = AttrArgs {
        context: "auth".into(),
        process_runs: 1,
        ..AttrArgs::default()
    };
    let pick = |ev: serde_json::Value| {
        attrs
            .process(
                &ctx,
                Event::from_cgr_event(&json!({"Tenant": "t", "Event": ev})),
                &args,
            )
            .map(|r| r.event.text("Password").into_owned())
    };
    assert_eq!(pick(json!({"Account": "1234"})).unwrap(), "pw1234");
    assert_eq!(pick(json!({"Account": 77})).unwrap(), "pw77");
    assert_eq!(
        pick(json!({"Account": "b", "Dst": "4930"})).unwrap(),
        "multi"
    );
    assert!(pick(json!({"Account": "b", "Dst": "3330"})).is_err());
    assert_eq!(pick(json!({"Account": "19999"})).unwrap(), "prefix");
    assert!(pick(json!({"Account": "x"})).is_err());
    assert!(pick(json!({})).is_err());
    let other = AttrArgs {
        context: "other".into(),
        ..args.clone()
    };
    let ev = Event::from_cgr_event(&json!({"Tenant": "t", "Event": {"Account": "1"}}));
    assert_eq!(
        attrs.process(&ctx, ev, &other).unwrap().matched_profiles,
        vec!["ANY_ACC"]
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any row loads or fails with a line, never panics; what loads
        /// processes without panicking.
        #[test]
        fn any_row(cols in proptest::collection::vec("[*~a-zA-Z0-9.:;|/_-]{0,14}", 0..13)) {
            let csv = format!("t,P,*any,,,,*req.A,*constant,1,false,1\n{}\n", cols.join(","));
            let p = Path::new("Attributes.csv");
            let Ok(recs) = rating::csv::parse(p, csv.as_bytes()) else { return Ok(()) };
            match AttributeProfiles::load(&recs, p) {
                Ok(attrs) => {
                    let filters = FilterSet::default();
                    let ctx = FilterCtx { filters: &filters, plan: None, now: now() };
                    let ev = Event::from_cgr_event(&json!({"Tenant": "t", "Event": {"A": "1"}}));
                    let args = AttrArgs { context: "*any".into(), process_runs: 3, ..AttrArgs::default() };
                    let _ = attrs.process(&ctx, ev, &args);
                }
                Err(e) => prop_assert!(e.to_string().starts_with("Attributes.csv:2:"), "{}", e),
            }
        }
    }
}

#[test]
fn remove_keeps_the_other_profiles_and_the_index() {
    let (mut attrs, filters) = fixture();
    let n = attrs.len();
    assert!(attrs.remove("cgrates.org", "ATTR_ANY_HIGH").is_some());
    assert!(attrs.remove("cgrates.org", "ATTR_ANY_HIGH").is_none());
    assert_eq!(attrs.len(), n - 1);
    assert!(attrs.get("cgrates.org", "ATTR_ANY_HIGH").is_none());
    // Profiles after the removed one are still found by ID and by event.
    assert_eq!(
        attrs.get("cgrates.org", "ATTR_NORM").unwrap().id,
        "ATTR_NORM"
    );
    assert_eq!(attrs.get("cgrates.com", "ATTR_TNT").unwrap().id, "ATTR_TNT");
    let ctx = FilterCtx {
        filters: &filters,
        plan: None,
        now: now(),
    };
    let args = AttrArgs {
        context: "*sessions".into(),
        profile_ids: Vec::new(),
        process_runs: 1,
    };
    let r = attrs
        .process(&ctx, Event::from_cgr_event(&acc("2002")), &args)
        .unwrap();
    assert_eq!(r.matched_profiles, ["ATTR_FLT"]);
}
