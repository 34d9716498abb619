//! `[[importers]]` over `accurate serve`, end to end: a CSV file dropped in
//! the watched folder, with a header, one bad line and one line the
//! importer's filter leaves out: the good lines become CDRs, rated and
//! charged as `CDRsV1.ProcessEvent` does (the `export` plan: 0.01 a second
//! to `49`; 1001 and 1004 start with 10.00), the bad line is reported with
//! its file and line and counted, and the file moves to the processed
//! folder.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::json;

mod serve_common;

use serve_common::{Server, credit, dec, metric, rpc, temp_data_dir, wait_until};

fn plan_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/tariffplans/export")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn csv_lines_become_charged_cdrs_and_a_bad_line_is_counted() {
    let dir = temp_data_dir();
    let (inbox, done) = (dir.join("in"), dir.join("done"));
    let config = format!(
        r#"[api]
rpc-tcp = "127.0.0.1:0"
rpc-http = "127.0.0.1:0"

[[importers]]
id = "imp1"
type = "csv"
dir = "{inbox}"
processed-dir = "{done}"
field-sep = ";"
header = true
interval-secs = 1
filters = ["*notstring:~*req.1:9999"]
fields = [
  {{path = "*cgreq.OriginID", value = "~*req.0"}},
  {{path = "Account", value = "~*req.1", mandatory = true}},
  {{path = "Destination", value = "~*req.2"}},
  {{path = "SetupTime", value = "~*req.3"}},
  {{path = "AnswerTime", value = "~*req.3"}},
  {{path = "Usage", value = "~*req.4"}},
  {{path = "RequestType", type = "*constant", value = "*postpaid"}},
  {{path = "OriginHost", type = "*constant", value = "import"}},
]
"#,
        inbox = inbox.display(),
        done = done.display()
    );
    let plan = plan_dir();
    let s = Server::start_with(&["--tariffplan", &plan], Some(&config));
    assert_eq!(credit(&s, "1001"), dec("10"));
    let csv = "id;account;destination;answered;usage\n\
               i1;1001;4930555002;2026-01-02 10:00:05;60s\n\
               i2;1004;4930555003;2026-01-02 11:00:00;30s\n\
               i3;1001;4930555004;2026-01-02 12:00:00;not-a-duration\n\
               i4;9999;4930555005;2026-01-02 12:00:00;10s\n\
               i5;1001;4930555006;1767355200;1m30s\n";
    // Written under another name, then renamed: a `.part` is never read.
    std::fs::write(inbox.join("batch.part"), csv).unwrap();
    std::fs::rename(inbox.join("batch.part"), inbox.join("batch1.csv")).unwrap();
    wait_until("the file processed", || done.join("batch1.csv").exists());
    assert!(!inbox.join("batch1.csv").exists());
    let m = |name: &str| {
        metric(
            &s,
            &format!("accurate_import_total{{id=\"imp1\",name=\"{name}\"}}"),
        )
    };
    assert_eq!(m("lines_imported"), 3);
    assert_eq!(m("bad_lines"), 1);
    assert_eq!(m("lines_filtered"), 1);
    assert_eq!(m("files"), 1);
    let cdrs = rpc(&s, "CDRsV1.GetCDRs", json!({}));
    let mut got: Vec<(String, String, String)> = cdrs
        .as_array()
        .unwrap_or_else(|| panic!("{cdrs}"))
        .iter()
        .map(|c| {
            (
                c["OriginID"].as_str().unwrap().to_owned(),
                c["Account"].as_str().unwrap().to_owned(),
                c["Cost"].to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("i1".into(), "1001".into(), "0.6".into()),
            ("i2".into(), "1004".into(), "0.3".into()),
            ("i5".into(), "1001".into(), "0.9".into()),
        ]
    );
    // Charged: 1001 paid 0.60 + 0.90, 1004 0.30.
    assert_eq!(credit(&s, "1001"), dec("8.50"));
    assert_eq!(credit(&s, "1004"), dec("9.70"));
    // The bad line is named by file and line (the header is line 1).
    let mut s = s;
    let (_, lines) = s.signal("-TERM");
    assert!(
        lines
            .iter()
            .chain(s.seen.iter())
            .any(|l| l.contains("batch1.csv:4: line not imported") && l.contains("Usage")),
        "{lines:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
