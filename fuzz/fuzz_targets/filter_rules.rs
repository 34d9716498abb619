//! FilterS never panics: any Filters.csv text loads or fails with an
//! error, and any filter ID (inline rule or profile) evaluates on any
//! event to a decision or an error. A rule that evaluates gives the
//! opposite decision when negated (`*string` / `*notstring`).
//!
//! The input is split on 0xFF: Filters.csv, the filter IDs (one a line),
//! then the event (a CGREvent JSON object; other bytes become the
//! `Account`, `Destination` and `AnswerTime` fields).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use rating::{LoadOptions, TariffPlan};
use subsystems::{Event, FilterCtx, FilterSet};

fn plan() -> Option<&'static TariffPlan> {
    static PLAN: OnceLock<Option<TariffPlan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let files = [
            (Path::new("Destinations.csv"), "DST_DE,49\nDST_MOB,4915\n"),
            (
                Path::new("Timings.csv"),
                "WORKDAYS,*any,*any,*any,1;2;3;4;5,08:00:00\n",
            ),
            (Path::new("Rates.csv"), "RT_1,0,0.1,60s,60s,0s\n"),
            (
                Path::new("DestinationRates.csv"),
                "DR_1,DST_DE,RT_1,*up,4,0,\n",
            ),
            (Path::new("RatingPlans.csv"), "RP_1,DR_1,*any,10\n"),
            (
                Path::new("RatingProfiles.csv"),
                "cgrates.org,call,*any,2014-01-14T00:00:00Z,RP_1,\n",
            ),
        ];
        let opts = LoadOptions {
            loaded_at: Utc.timestamp_opt(1_700_000_000, 0).single()?,
        };
        TariffPlan::from_csv(&files, &opts).ok().map(|(p, _)| p)
    })
    .as_ref()
}

fuzz_target!(|data: &[u8]| {
    let parts: Vec<String> = data
        .split(|&b| b == 0xFF)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let part = |i: usize| parts.get(i).map_or("", String::as_str);

    let path = Path::new("Filters.csv");
    let set = match rating::csv::parse(path, part(0).as_bytes()) {
        Ok(records) => FilterSet::load(&records, path).unwrap_or_default(),
        Err(_) => FilterSet::default(),
    };

    let ev = match serde_json::from_str::<serde_json::Value>(part(2)) {
        Ok(v) => Event::from_cgr_event(&v),
        Err(_) => {
            let mut ev = Event::default();
            ev.set_text("Account", part(2));
            ev.set_text("Destination", part(3));
            ev.set_text("AnswerTime", part(4));
            ev.set_text("Usage", part(4));
            ev
        }
    };

    let now = Utc
        .timestamp_opt(1_715_594_400, 0)
        .single()
        .unwrap_or_default();
    for plan in [None, plan()] {
        let ctx = FilterCtx {
            filters: &set,
            plan,
            now,
        };
        let ids: Vec<String> = part(1).lines().map(str::to_owned).collect();
        let _ = ctx.pass("cgrates.org", &ids, &ev);
        for id in &ids {
            let Ok(got) = ctx.pass("cgrates.org", std::slice::from_ref(id), &ev) else {
                continue;
            };
            if let Some(rest) = id.strip_prefix('*')
                && !rest.starts_with("not")
            {
                let negated = format!("*not{rest}");
                if let Ok(neg) = ctx.pass("cgrates.org", &[negated], &ev) {
                    assert_eq!(neg, !got, "{id:?}");
                }
            }
        }
    }
});
