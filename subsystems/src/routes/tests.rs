use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, json};

use super::*;
use crate::FilterSet;

const HEADER: &str = "#Tenant,ID,FilterIDs,ActivationInterval,Sorting,SortingParameters,RouteID,RouteFilterIDs,RouteAccountIDs,RouteRatingPlanIDs,RouteResourceIDs,RouteStatIDs,RouteWeight,RouteBlocker,RouteParameters,Weight\n";

fn load(rows: &str) -> Result<RouteProfiles, Error> {
    let text = format!("{HEADER}{rows}");
    let path = Path::new("Routes.csv");
    let recs = rating::csv::parse(path, text.as_bytes())?;
    RouteProfiles::load(&recs, path)
}

#[derive(Default)]
struct Fake {
    costs: HashMap<String, Decimal>,
    metrics: HashMap<String, BTreeMap<String, f64>>,
    usage: HashMap<String, f64>,
}

impl RouteData for Fake {
    fn cost(&self, _ev: &Event, route: &Route) -> Result<Option<RouteCost>, Error> {
        if route.id == "broken" {
            return Err(Error::Invalid("SERVER_ERROR: broken".into()));
        }
        Ok(self.costs.get(&route.id).map(|c| RouteCost {
            cost: *c,
            data: Map::new(),
        }))
    }
    fn event_cost(&self, _ev: &Event) -> Result<Decimal, Error> {
        Ok(Decimal::from_str("0.5").unwrap())
    }
    fn stat_metrics(&self, _tenant: &str, id: &str) -> Option<BTreeMap<String, f64>> {
        self.metrics.get(id).cloned()
    }
    fn resource_usage(&self, _tenant: &str, id: &str) -> Option<f64> {
        self.usage.get(id).copied()
    }
}

fn ctx(filters: &FilterSet) -> FilterCtx<'_> {
    FilterCtx {
        filters,
        plan: None,
        now: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
    }
}

fn ev(fields: serde_json::Value) -> Event {
    Event::from_cgr_event(&json!({"ID": "e", "Event": fields}))
}

fn ids(rs: &[SortedRoutes]) -> Vec<Vec<String>> {
    rs.iter()
        .map(|r| r.routes.iter().map(|x| x.route_id.clone()).collect())
        .collect()
}

fn run(
    rows: &str,
    fake: &Fake,
    opts: &GetRoutesOpts,
    fields: serde_json::Value,
) -> Result<Vec<SortedRoutes>, Error> {
    let set = load(rows)?;
    let filters = FilterSet::default();
    let c = ctx(&filters);
    let e = ev(fields);
    let profiles = set.matching(&c, &e)?;
    sorted_routes(&profiles, &c, &e, fake, opts)
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[test]
fn rows_merge_into_profiles_and_routes() {
    let set = load(
        "cgrates.org,P1,*string:~*req.Account:1001,,*lc,,r1,,,RP_1,,,10,false,p1,20\n\
         cgrates.org,P1,FLTR_X,,,,r1,,,RP_2,,,,,,\n\
         cgrates.org,P1,,,,,r2,*prefix:~*req.Destination:44,,RP_3,,,5,true,,\n\
         cgrates.org,P1,,,,,r2,,,RP_4,,,7,,,\n\
         cgrates.org,P2,,2014-07-29T15:00:00Z,,,r1,,,,,,,,,\n",
    )
    .unwrap();
    assert_eq!(set.len(), 2);
    let p = set.get("cgrates.org", "P1").unwrap();
    assert_eq!(p.filter_ids, ["*string:~*req.Account:1001", "FLTR_X"]);
    assert_eq!(p.strategy, Sorting::LeastCost);
    assert_eq!(p.weight, 20.0);
    assert_eq!(p.routes.len(), 3, "r2 with other filters is another route");
    assert_eq!(p.routes[0].rating_plan_ids, ["RP_1", "RP_2"]);
    assert_eq!(p.routes[0].parameters, "p1");
    assert!(p.routes[1].blocker);
    assert_eq!(p.routes[1].filter_ids, ["*prefix:~*req.Destination:44"]);
    let p2 = set.get("cgrates.org", "P2").unwrap();
    assert_eq!(p2.sorting, "*weight");
    assert!(p2.activation.activation.is_some());
    let j = p.to_json(true);
    assert_eq!(j["Suppliers"][0]["SupplierParameters"], "p1");
    assert_eq!(j["Weight"], 20);
}

#[test]
fn bad_lines_name_line_and_column() {
    let e = load("cgrates.org,P1,,,*cheapest,,r1,,,,,,,,,\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Routes.csv:2: column 5: unsupported sorting strategy: *cheapest"
    );
    let e = load("cgrates.org,P1,,,,,r1,,,,,,ten,,,\n").unwrap_err();
    assert!(e.to_string().starts_with("Routes.csv:2: column 13:"), "{e}");
    let e = load("cgrates.org,P1,,,,,r1,,,,,,,maybe,,\n").unwrap_err();
    assert!(e.to_string().contains("column 14"), "{e}");
    let e = load(",P1,,,,,r1,,,,,,,,,\n").unwrap_err();
    assert!(e.to_string().contains("Tenant and ID"), "{e}");
    assert!(load("cgrates.org,P1,,,*load,r1;r2,r1,,,,,s1,,,,\n").is_err());
}

#[test]
fn merge_replaces_same_id_and_adds_others() {
    let mut a = load("cgrates.org,P1,,,,,r1,,,,,,,,,\n").unwrap();
    let b = load("cgrates.org,P1,,,,,r9,,,,,,,,,\ncgrates.org,P2,,,,,r2,,,,,,,,,\n").unwrap();
    a.merge(b);
    assert_eq!(a.len(), 2);
    assert_eq!(a.get("cgrates.org", "P1").unwrap().routes[0].id, "r9");
}

#[test]
fn weight_sorting_with_filters_blocker_and_duplicates() {
    let rows = "cgrates.org,W,,,*weight,,a,,,,,,10,,,\n\
                cgrates.org,W,,,,,b,*prefix:~*req.Destination:44,,,,,40,,,\n\
                cgrates.org,W,,,,,c,,,,,,30,,,\n\
                cgrates.org,W,,,,,a,*string:~*req.Account:1001,,,,,50,,,\n\
                cgrates.org,W,,,,,d,,,,,,20,true,,\n\
                cgrates.org,W,,,,,e,,,,,,5,,,\n";
    let f = Fake::default();
    let o = GetRoutesOpts::default();
    let r = run(
        rows,
        &f,
        &o,
        json!({"Account": "1001", "Destination": "49"}),
    )
    .unwrap();
    // a (50 wins over its 10), c, d (blocker): e is cut, b fails its filter.
    assert_eq!(ids(&r), [["a", "c", "d"]]);
    assert_eq!(r[0].routes[0].sorting_data["Weight"], 50);
    assert_eq!(r[0].routes[2].sorting_data["Blocker"], true);
    let r = run(
        rows,
        &f,
        &o,
        json!({"Account": "1002", "Destination": "44"}),
    )
    .unwrap();
    assert_eq!(ids(&r), [["b", "c", "d"]]);
    let j = r[0].to_json(false);
    assert_eq!(j["Routes"][0]["RouteID"], "b");
    let j = r[0].to_json(true);
    assert_eq!(j["Count"], 3);
    assert!(
        j["SortedSuppliers"][2]["SortingData"]
            .get("Blocker")
            .is_none()
    );
}

#[test]
fn least_and_highest_cost_with_max_cost_and_errors() {
    let mut f = Fake::default();
    f.costs.insert("a".into(), dec("0.6"));
    f.costs.insert("b".into(), dec("0.3"));
    f.costs.insert("c".into(), dec("1.2"));
    f.costs.insert("d".into(), dec("0.3"));
    let routes = ",a,,,RP_A,,,10,,,\n\
                  cgrates.org,P,,,,,b,,,RP_B,,,10,,,\n\
                  cgrates.org,P,,,,,c,,,RP_C,,,10,,,\n\
                  cgrates.org,P,,,,,d,,,RP_D,,,20,,,\n\
                  cgrates.org,P,,,,,x,,,RP_X,,,90,,,\n";
    let lc = format!("cgrates.org,P,,,*lc,{routes}");
    let o = GetRoutesOpts::default();
    let r = run(&lc, &f, &o, json!({})).unwrap();
    // x has no cost: left out; b and d tie on cost, d is heavier.
    assert_eq!(ids(&r), [["d", "b", "a", "c"]]);
    assert_eq!(r[0].routes[0].sorting_data["Cost"], 0.3);
    let hc = format!("cgrates.org,P,,,*hc,{routes}");
    let r = run(&hc, &f, &o, json!({})).unwrap();
    assert_eq!(ids(&r), [["c", "a", "d", "b"]]);
    let capped = GetRoutesOpts {
        max_cost: Some(MaxCostOpt::Value(dec("0.6"))),
        ..GetRoutesOpts::default()
    };
    let r = run(&lc, &f, &capped, json!({})).unwrap();
    assert_eq!(ids(&r), [["d", "b", "a"]]);
    let by_event = GetRoutesOpts {
        max_cost: Some(MaxCostOpt::EventCost),
        ..GetRoutesOpts::default()
    };
    let r = run(&lc, &f, &by_event, json!({})).unwrap();
    assert_eq!(ids(&r), [["d", "b"]]);
    // A route without rating plans under *lc.
    let bad = "cgrates.org,P,,,*lc,,a,,,,,,10,,,\n";
    let e = run(bad, &f, &o, json!({})).unwrap_err();
    assert_eq!(e.to_string(), "MANDATORY_IE_MISSING: [RatingPlanIDs]");
    // A failing cost fails the call unless errors are ignored.
    let broken = format!("{lc}cgrates.org,P,,,,,broken,,,RP_Z,,,1,,,\n");
    assert!(run(&broken, &f, &o, json!({})).is_err());
    let ignore = GetRoutesOpts {
        ignore_errors: true,
        ..GetRoutesOpts::default()
    };
    assert_eq!(
        ids(&run(&broken, &f, &ignore, json!({})).unwrap()),
        [["d", "b", "a", "c"]]
    );
}

#[test]
fn qos_by_metrics_in_order_missing_last_pdd_lowest_first() {
    let mut f = Fake::default();
    let m = |v: &[(&str, f64)]| {
        v.iter()
            .map(|(k, x)| ((*k).to_owned(), *x))
            .collect::<BTreeMap<_, _>>()
    };
    f.metrics
        .insert("st_a".into(), m(&[("*acd", 60.0), ("*asr", 50.0)]));
    f.metrics
        .insert("st_b".into(), m(&[("*acd", 60.0), ("*asr", 80.0)]));
    f.metrics.insert("st_c".into(), m(&[("*acd", 90.0)]));
    f.metrics.insert("st_c2".into(), m(&[("*acd", 10.0)]));
    let rows = "cgrates.org,Q,,,*qos,*acd;*asr,a,,,,,st_a,10,,,\n\
                cgrates.org,Q,,,,,b,,,,,st_b,10,,,\n\
                cgrates.org,Q,,,,,c,,,,,st_c;st_c2,10,,,\n\
                cgrates.org,Q,,,,,d,,,,,st_none,30,,,\n";
    let r = run(rows, &f, &GetRoutesOpts::default(), json!({})).unwrap();
    // acd: a 60, b 60, c (90+10)/2 = 50, d missing (-1); asr breaks a/b.
    assert_eq!(ids(&r), [["b", "a", "c", "d"]]);
    assert_eq!(r[0].routes[2].sorting_data["*acd"], 50);
    assert_eq!(r[0].routes[2].sorting_data["*asr"], -1);
    assert_eq!(r[0].routes[3].sorting_data["*acd"], -1);

    f.metrics.insert("p1".into(), m(&[("*pdd", 3.0)]));
    f.metrics.insert("p2".into(), m(&[("*pdd", 1.5)]));
    let rows = "cgrates.org,Q,,,*qos,*pdd,a,,,,,p1,10,,,\n\
                cgrates.org,Q,,,,,b,,,,,p2,10,,,\n\
                cgrates.org,Q,,,,,c,,,,,none,10,,,\n";
    let r = run(rows, &f, &GetRoutesOpts::default(), json!({})).unwrap();
    assert_eq!(ids(&r), [["b", "a", "c"]]);
}

#[test]
fn resource_sortings() {
    let mut f = Fake::default();
    f.usage.insert("r1".into(), 3.0);
    f.usage.insert("r2".into(), 1.0);
    f.usage.insert("r3".into(), 1.5);
    let routes = ",a,,,,r1,,10,,,\n\
                  cgrates.org,R,,,,,b,,,,r2;r3,,10,,,\n\
                  cgrates.org,R,,,,,c,,,,r3,,10,,,\n\
                  cgrates.org,R,,,,,d,,,,nope,,10,,,\n";
    let o = GetRoutesOpts::default();
    let r = run(
        &format!("cgrates.org,R,,,*reas,{routes}"),
        &f,
        &o,
        json!({}),
    )
    .unwrap();
    assert_eq!(ids(&r), [["d", "c", "b", "a"]]);
    assert_eq!(r[0].routes[2].sorting_data["ResourceUsage"], 2.5);
    let r = run(
        &format!("cgrates.org,R,,,*reds,{routes}"),
        &f,
        &o,
        json!({}),
    )
    .unwrap();
    assert_eq!(ids(&r), [["a", "b", "c", "d"]]);
    let e = run("cgrates.org,R,,,*reas,,a,,,,,,,,,\n", &f, &o, json!({})).unwrap_err();
    assert_eq!(e.to_string(), "MANDATORY_IE_MISSING: [ResourceIDs]");
}

#[test]
fn load_distribution_by_ratio() {
    let mut f = Fake::default();
    let one = |k: &str, v: f64| BTreeMap::from([(k.to_owned(), v)]);
    f.metrics.insert("sa".into(), one("*sum#1", 10.0));
    f.metrics.insert("sb".into(), one("*sum#1", 4.0));
    f.metrics.insert("sc".into(), one("*sum#1", 3.0));
    let rows = "cgrates.org,L,,,*load,a:10;b:2;*default:1,a,,,,,sa,10,,,\n\
                cgrates.org,L,,,,,b,,,,,sb:*sum#1,10,,,\n\
                cgrates.org,L,,,,,c,,,,,sc,10,,,\n";
    let r = run(rows, &f, &GetRoutesOpts::default(), json!({})).unwrap();
    // a 10/10 = 1, b 4/2 = 2, c 3/1 = 3.
    assert_eq!(ids(&r), [["a", "b", "c"]]);
    assert_eq!(r[0].routes[1].sorting_data["Ratio"], 2);
    assert_eq!(r[0].routes[1].sorting_data["Load"], 4);
    // A named metric that the queue lacks is an error.
    let bad = "cgrates.org,L,,,*load,a:1,a,,,,,sa:*acd,10,,,\n";
    assert!(run(bad, &f, &GetRoutesOpts::default(), json!({})).is_err());
}

#[test]
fn profiles_by_weight_count_limit_offset() {
    let rows = "cgrates.org,P1,,,*weight,,a,,,,,,30,,,10\n\
                cgrates.org,P1,,,,,b,,,,,,20,,,\n\
                cgrates.org,P2,,,*weight,,c,,,,,,30,,,20\n\
                cgrates.org,P2,,,,,d,,,,,,20,,,\n\
                cgrates.org,P2,,,,,e,,,,,,10,,,\n\
                cgrates.org,P3,*string:~*req.Account:9,,,,f,,,,,,,,,99\n";
    let f = Fake::default();
    let e = json!({"Account": "1"});
    let r = run(rows, &f, &GetRoutesOpts::default(), e.clone()).unwrap();
    assert_eq!(ids(&r), [["c", "d", "e"]]);
    let all = GetRoutesOpts {
        profile_count: None,
        ..GetRoutesOpts::default()
    };
    assert_eq!(
        ids(&run(rows, &f, &all, e.clone()).unwrap()),
        [vec!["c", "d", "e"], vec!["a", "b"]]
    );
    let page = GetRoutesOpts {
        profile_count: Some(2),
        offset: Some(2),
        limit: Some(2),
        ..GetRoutesOpts::default()
    };
    assert_eq!(
        ids(&run(rows, &f, &page, e.clone()).unwrap()),
        [["e"], ["a"]]
    );
    // A profile the offset skips whole does not count (as master).
    let skip = GetRoutesOpts {
        offset: Some(3),
        ..GetRoutesOpts::default()
    };
    assert_eq!(ids(&run(rows, &f, &skip, e.clone()).unwrap()), [["a", "b"]]);
    let past = GetRoutesOpts {
        offset: Some(5),
        ..GetRoutesOpts::default()
    };
    assert!(matches!(
        run(rows, &f, &past, e.clone()),
        Err(Error::NotFound)
    ));
    assert!(matches!(
        run(rows, &f, &all, json!({"Account": "9"})).map(|r| ids(&r)),
        Ok(v) if v[0] == ["f"]
    ));
    let set = load(rows).unwrap();
    let filters = FilterSet::default();
    let none = Event::from_cgr_event(&json!({"Tenant": "other.org", "Event": {}}));
    assert!(matches!(
        set.matching(&ctx(&filters), &none),
        Err(Error::NotFound)
    ));
}

#[test]
fn costs_from_a_real_plan_on_each_route_rating_plan() {
    let files: Vec<(&Path, &str)> = vec![
        (
            Path::new("Destinations.csv"),
            "#Id,Prefix\nDST_DE,49\nDST_UK,44\n",
        ),
        (
            Path::new("Rates.csv"),
            "#Id,ConnectFee,Rate,RateUnit,RateIncrement,GroupIntervalStart\n\
             R_1,0,0.01,1s,1s,0s\nR_2,0.1,0.005,1s,1s,0s\n",
        ),
        (
            Path::new("DestinationRates.csv"),
            "#Id,DestinationId,RatesTag,RoundingMethod,RoundingDecimals,MaxCost,MaxCostStrategy\n\
             DR_1,DST_DE,R_1,*up,4,0,\nDR_2,DST_DE,R_2,*up,4,0,\nDR_UK,DST_UK,R_1,*up,4,0,\n",
        ),
        (
            Path::new("RatingPlans.csv"),
            "#Id,DestinationRatesId,TimingTag,Weight\nRP_1,DR_1,*any,10\nRP_2,DR_2,*any,10\nRP_UK,DR_UK,*any,10\n",
        ),
        (
            Path::new("RatingProfiles.csv"),
            "#Tenant,Category,Subject,ActivationTime,RatingPlanId,RatesFallbackSubject\n\
             cgrates.org,call,*any,2020-01-01T00:00:00Z,RP_1,\n",
        ),
    ];
    let (plan, _) = rating::TariffPlan::from_csv(
        &files,
        &rating::LoadOptions {
            loaded_at: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap(),
        },
    )
    .unwrap();
    let mode = rating::RoundingMode::Exact;
    let e = ev(
        json!({"Account": "1001", "Destination": "4930", "SetupTime": "2024-01-01T10:00:00Z", "Usage": "90s"}),
    );
    let c = sort::cost_on_rating_plans(&plan, &e, &["RP_2".into()], mode)
        .unwrap()
        .unwrap();
    assert_eq!(c.cost, dec("0.55"));
    assert_eq!(c.data["RatingPlanID"], "RP_2");
    // The first plan that prices the destination counts.
    let c = sort::cost_on_rating_plans(
        &plan,
        &e,
        &["RP_UK".into(), "NOPE".into(), "RP_1".into()],
        mode,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        (c.cost, c.data["RatingPlanID"].as_str()),
        (dec("0.9"), Some("RP_1"))
    );
    assert!(
        sort::cost_on_rating_plans(&plan, &e, &["RP_UK".into()], mode)
            .unwrap()
            .is_none()
    );
    assert_eq!(sort::event_cost(&plan, &e, mode).unwrap(), dec("0.9"));
    let e2 = ev(json!({"Account": "1001", "Destination": "4930"}));
    assert_eq!(
        sort::cost_on_rating_plans(&plan, &e2, &["RP_1".into()], mode)
            .unwrap_err()
            .to_string(),
        "MANDATORY_IE_MISSING: [SetupTime]"
    );
    // Accounts first: what the first paying account leaves is costed on
    // the rating plans from where its part ends.
    let accts = vec!["poor".to_owned(), "acc".to_owned()];
    let rps = vec!["RP_1".to_owned()];
    let mut part = |id: &str, cd: &rating::CallDescriptor<'_>| {
        assert_eq!(cd.subject, "1001");
        (id == "acc").then_some(std::time::Duration::from_secs(30))
    };
    let c = sort::cost_for_event(&plan, &e, (&accts, &rps), mode, &mut part)
        .unwrap()
        .unwrap();
    assert_eq!(c.cost, dec("0.6"));
    assert_eq!(c.data["Account"], "acc");
    assert_eq!(c.data["MaxUsage"], 30_000_000_000_u64);
    assert_eq!(c.data["RatingPlanID"], "RP_1");
    let mut all =
        |_: &str, _: &rating::CallDescriptor<'_>| Some(std::time::Duration::from_secs(600));
    let c = sort::cost_for_event(&plan, &e, (&accts, &rps), mode, &mut all)
        .unwrap()
        .unwrap();
    assert_eq!(c.cost, Decimal::ZERO);
    let mut none = |_: &str, _: &rating::CallDescriptor<'_>| None;
    let c = sort::cost_for_event(&plan, &e, (&accts, &rps), mode, &mut none)
        .unwrap()
        .unwrap();
    assert_eq!(c.cost, dec("0.9"));
    assert!(sort::cost_for_event(&plan, &e, (&accts, &[]), mode, &mut part).is_err());
    assert!(
        sort::cost_for_event(&plan, &e, (&accts, &[]), mode, &mut none)
            .unwrap()
            .is_none()
    );
    // No Usage: a minute.
    let e3 = ev(json!({"Account": "1001", "Destination": "4930", "SetupTime": "1704103200"}));
    let c = sort::cost_on_rating_plans(&plan, &e3, &["RP_1".into()], mode)
        .unwrap()
        .unwrap();
    assert_eq!(c.cost, dec("0.6"));
}

#[test]
fn remove_keeps_the_other_profiles_and_merge_replaces() {
    let rows = "cgrates.org,R1,,,*weight,,a,,,,,,10,false,,10\n\
                cgrates.org,R2,,,*weight,,b,,,,,,10,false,,20\n\
                cgrates.org,R3,,,*weight,,c,,,,,,10,false,,30\n";
    let mut set = load(rows).unwrap();
    assert!(set.remove("cgrates.org", "R1").is_some());
    assert!(set.remove("cgrates.org", "R1").is_none());
    assert_eq!(set.len(), 2);
    assert_eq!(set.get("cgrates.org", "R3").unwrap().routes[0].id, "c");
    set.merge(load("cgrates.org,R2,,,*weight,,z,,,,,,10,false,,20\n").unwrap());
    assert_eq!(set.len(), 2);
    assert_eq!(set.get("cgrates.org", "R2").unwrap().routes[0].id, "z");
    assert_eq!(set.get("cgrates.org", "R3").unwrap().routes[0].id, "c");
}
