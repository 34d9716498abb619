use std::path::Path;

use chrono::TimeZone;
use serde_json::json;

use super::*;

const HEADER: &str = "#Tenant[0],Id[1],FilterIDs[2],ActivationInterval[3],QueueLength[4],TTL[5],MinItems[6],Metrics[7],MetricFilterIDs[8],Stored[9],Blocker[10],Weight[11],ThresholdIDs[12]\n";

fn profiles(stats: &str) -> Arc<Profiles> {
    let csv = format!("{HEADER}{stats}");
    let filters = "#Tenant,ID,Type,Element,Values,ActivationInterval\n\
        cgrates.org,FLTR_1001,*string,~*req.Account,1001,\n";
    let files: Vec<(&Path, &[u8])> = vec![
        (Path::new("Stats.csv"), csv.as_bytes()),
        (Path::new("Filters.csv"), filters.as_bytes()),
    ];
    Arc::new(Profiles::from_files(&files).unwrap())
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

fn ev(id: &str, fields: Value) -> Event {
    Event::from_cgr_event(&json!({"Tenant": "cgrates.org", "ID": id, "Event": fields}))
}

fn call(id: &str, answered: bool, usage_s: i64, cost: &str) -> Event {
    ev(
        id,
        json!({
            "Account": "1001",
            "Destination": format!("10{}", id.len()),
            "AnswerTime": if answered { json!("2024-01-01T10:00:00Z") } else { Value::Null },
            "Usage": usage_s * 1_000_000_000,
            "Cost": cost.parse::<f64>().unwrap(),
            "PDD": "3s",
        }),
    )
}

fn texts(s: &mut StatService, p: &Arc<Profiles>, id: &str, now: DateTime<Utc>) -> Vec<String> {
    s.metrics(p, "cgrates.org", id, now)
        .unwrap()
        .values()
        .map(MetricValue::text)
        .collect()
}

#[test]
fn every_metric_with_min_items() {
    let p = profiles(
        "cgrates.org,Q,FLTR_1001,,0,,2,*asr;*acd;*tcd;*acc;*tcc;*pdd;*ddc;*sum#~*req.Usage;*average#~*req.Cost;*distinct#~*req.Account;*sum#1,,,,,*none\n",
    );
    let mut s = StatService::default();
    s.process_event(&p, None, &call("a", true, 60, "0.6"), None, t(0))
        .unwrap();
    // One event, MinItems 2: everything N/A.
    let m = s.metrics(&p, "cgrates.org", "Q", t(0)).unwrap();
    assert!(m.values().all(|v| !v.is_available()), "{m:?}");
    assert_eq!(m["*asr"].text(), "N/A");
    assert_eq!(m["*acd"].float(), -1.0);
    s.process_event(&p, None, &call("bb", true, 30, "0.3"), None, t(1))
        .unwrap();
    s.process_event(&p, None, &call("cc", false, 0, "0"), None, t(2))
        .unwrap();
    let m = s.metrics(&p, "cgrates.org", "Q", t(2)).unwrap();
    let text = |k: &str| m[k].text();
    assert_eq!(text("*asr"), "66.66667%");
    assert_eq!(text("*acd"), "30s");
    assert_eq!(text("*tcd"), "1m30s");
    assert_eq!(text("*acc"), "0.3");
    assert_eq!(text("*tcc"), "0.9");
    assert_eq!(text("*pdd"), "3s");
    assert_eq!(text("*ddc"), "2");
    assert_eq!(text("*sum#~*req.Usage"), "90000000000");
    assert_eq!(text("*average#~*req.Cost"), "0.3");
    assert_eq!(text("*distinct#~*req.Account"), "1");
    assert_eq!(text("*sum#1"), "3");
    assert_eq!(m["*acd"].float(), 30e9);
    assert_eq!(m["*asr"].float(), 66.66667);
    // Another account: the queue's filter does not pass.
    let other = ev("x", json!({"Account": "1002", "Usage": 1}));
    assert!(matches!(
        s.process_event(&p, None, &other, None, t(3)),
        Err(Error::NotFound)
    ));
}

#[test]
fn queue_length_pushes_out_the_oldest() {
    let p = profiles("cgrates.org,Q,,,2,,0,*tcd;*tcc;*ddc,,,,,\n");
    let mut s = StatService::default();
    for (i, secs) in [10, 20, 30].into_iter().enumerate() {
        let e = ev(
            &format!("e{i}"),
            json!({"Usage": format!("{secs}s"), "Cost": "1.10", "Destination": format!("d{i}")}),
        );
        s.process_event(&p, None, &e, None, t(0)).unwrap();
    }
    assert_eq!(texts(&mut s, &p, "Q", t(0)), ["2", "2.2", "50s"]);
}

#[test]
fn ttl_expires_events() {
    let p = profiles("cgrates.org,Q,,,100,10s,1,*acd;*asr,,,,,\n");
    let mut s = StatService::default();
    s.process_event(&p, None, &call("a", true, 60, "1"), None, t(0))
        .unwrap();
    s.process_event(&p, None, &call("bb", false, 0, "0"), None, t(5))
        .unwrap();
    assert_eq!(texts(&mut s, &p, "Q", t(9)), ["30s", "50%"]);
    // The first is gone at 10 s; the second at 15 s.
    assert_eq!(texts(&mut s, &p, "Q", t(10)), ["0s", "0%"]);
    assert_eq!(texts(&mut s, &p, "Q", t(15)), ["N/A", "N/A"]);
}

#[test]
fn metric_filters_errors_weights_and_blockers() {
    let p = profiles(
        "cgrates.org,LOW,,,0,,0,*tcc,,,,10,\n\
         cgrates.org,HIGH,,,0,,0,*acd,,,true,20,TH1\n\
         cgrates.org,HIGH,,,,,,*pdd,*exists:~*req.PDD:,,,,\n\
         cgrates.org,ONLY,*string:~*req.Kind:only,,0,,0,*tcd,,,,30,*none\n",
    );
    let mut s = StatService::default();
    // HIGH blocks LOW; no Usage: *acd cannot read it; no PDD: not counted.
    let e = ev("e1", json!({"Cost": 1}));
    let out = s.process_event(&p, None, &e, None, t(0)).unwrap();
    assert_eq!(out.ids(), ["HIGH"]);
    assert!(out.partial());
    assert_eq!(out.queues[0].errors, ["*acd: NOT_FOUND:Usage"]);
    assert_eq!(out.queues[0].threshold_ids, Some(vec!["TH1".to_owned()]));
    // Named: LOW alone.
    let out = s
        .process_event(&p, None, &e, Some(&["LOW".to_owned()]), t(0))
        .unwrap();
    assert_eq!(out.ids(), ["LOW"]);
    assert_eq!(texts(&mut s, &p, "LOW", t(0)), ["1"]);
    let e = ev(
        "e2",
        json!({"Kind": "only", "Usage": "1s", "PDD": 2_000_000_000_i64}),
    );
    let out = s.process_event(&p, None, &e, None, t(0)).unwrap();
    assert_eq!(out.ids(), ["ONLY", "HIGH"]);
    assert_eq!(out.queues[0].threshold_ids, None);
    assert_eq!(texts(&mut s, &p, "HIGH", t(0)), ["1s", "2s"]);
    let th = out.queues[1].threshold_event(&e);
    assert_eq!(th.fields["EventType"], "StatUpdate");
    assert_eq!(th.fields["StatID"], "HIGH");
    assert_eq!(th.fields["*acd"], 1_000_000_000_i64);
    assert_eq!(th.opts["*eventType"], "StatUpdate");
    // A negative cost is refused by *tcc.
    let e = ev("e3", json!({"Cost": -1}));
    let out = s
        .process_event(&p, None, &e, Some(&["LOW".to_owned()]), t(0))
        .unwrap();
    assert_eq!(out.queues[0].errors, ["*tcc: NEGATIVE:Cost"]);
}

#[test]
fn a_load_keeps_queues_whose_profile_stays() {
    let p1 = profiles("cgrates.org,A,,,0,,0,*tcc,,true,,,\ncgrates.org,B,,,0,,0,*tcc,,,,,\n");
    let mut s = StatService::default();
    let e = ev("e", json!({"Cost": "2.5"}));
    s.process_event(&p1, None, &e, None, t(0)).unwrap();
    assert!(s.take_dirty());
    assert_eq!(s.stored().len(), 1);
    let saved: Vec<StatQueue> = s.stored().into_iter().cloned().collect();
    let blob = serde_json::to_vec(&saved).unwrap();
    // A: same metrics, kept; B: metrics changed, new; C: new.
    let p2 = profiles(
        "cgrates.org,A,,,0,,0,*tcc,,true,,,\ncgrates.org,B,,,0,,0,*acc,,,,,\ncgrates.org,C,,,0,,0,*tcc,,,,,\n",
    );
    assert_eq!(s.queue_ids(&p2, "cgrates.org"), ["A", "B", "C"]);
    assert_eq!(texts(&mut s, &p2, "A", t(0)), ["2.5"]);
    assert_eq!(texts(&mut s, &p2, "B", t(0)), ["N/A"]);
    // A restart: the saved queue comes back into a fresh service.
    let mut fresh = StatService::default();
    fresh.restore(serde_json::from_slice(&blob).unwrap());
    assert_eq!(texts(&mut fresh, &p2, "A", t(0)), ["2.5"]);
    assert_eq!(fresh.all_metrics(&p2, t(0)).len(), 3);
}
