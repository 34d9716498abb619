//! `accurate serve`'s CDR database and CDR query methods, end to end: the
//! real binary with its default SQLite file in the data directory, and
//! with `--cdr-db` on the real PostgreSQL (127.0.0.1:5432 or
//! `ACCURATE_TEST_POSTGRES`) in a schema of its own. Nothing writes CDRs
//! through the API yet (the session manager and `CDRsV1.ProcessCDR` come
//! next): here the store is empty and the arguments are checked; storing
//! and querying CDRs is tested in `storage/tests/cdrs.rs` and the writer
//! in the binary's unit tests.
#![allow(clippy::unwrap_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

mod serve_common;

use serve_common::*;

fn pg_url() -> String {
    std::env::var("ACCURATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn unique(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}_{}_{nanos}", std::process::id())
}

/// What every server answers with no CDR stored.
fn empty_store_answers(s: &Server) {
    let r = s.http_call("CDRsV1.GetCDRs", json!({}));
    assert_eq!(r["error"], "SERVER_ERROR: NOT_FOUND", "{r}");
    let r = s.http_call(
        "CDRsV1.GetCDRs",
        json!({"Tenant": "cgrates.org", "APIOpts": {}, "Accounts": ["1001"], "MinCost": 0.1}),
    );
    assert_eq!(r["error"], "SERVER_ERROR: NOT_FOUND", "{r}");
    let r = s.http_call("APIerSv2.GetCDRs", json!({"RunIDs": ["*default"]}));
    assert_eq!(r["error"], "NOT_FOUND", "{r}");
    let r = s.http_call("ApierV2.GetCDRs", json!({}));
    assert_eq!(r["error"], "NOT_FOUND", "{r}");
    for m in ["CDRsV1.GetCDRsCount", "APIerSv2.CountCDRs"] {
        let r = s.http_call(
            m,
            json!({"SetupTimeStart": "2026-01-01T00:00:00Z", "MaxUsage": "1h"}),
        );
        assert_eq!(r["result"], json!(0), "{m}: {r}");
        assert!(r["error"].is_null(), "{r}");
    }
    // Over TCP too.
    let mut c = Replies::new(s.connect());
    let r = c.call("CDRsV1.GetCDRsCount", Value::Null, 7);
    assert_eq!(r["result"], json!(0), "{r}");
}

/// Filter arguments that cannot be used.
fn bad_filters_are_refused(s: &Server) {
    for (args, want) in [
        (
            json!({"SetupTimeStart": "yesterday"}),
            "SERVER_ERROR: invalid CDR filter: SetupTimeStart",
        ),
        (
            json!({"MinUsage": "soon"}),
            "SERVER_ERROR: invalid CDR filter: MinUsage",
        ),
        (
            json!({"ExtraArgs": {"MaxCost": "cheap"}}),
            "SERVER_ERROR: invalid CDR filter: MaxCost",
        ),
        (
            json!({"Limit": -1}),
            "SERVER_ERROR: invalid CDR filter: Limit",
        ),
        (json!({"CGRIDs": "abc"}), "json: invalid type: string"),
        (json!("abc"), "json: cannot unmarshal string"),
    ] {
        for m in ["CDRsV1.GetCDRs", "CDRsV1.GetCDRsCount", "APIerSv2.GetCDRs"] {
            let r = s.http_call(m, args.clone());
            let e = r["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{m} {args}: {r}"));
            assert!(e.starts_with(want), "{m} {args}: {e}");
        }
    }
    let r = s.http_call("CDRsV1.Nope", json!({}));
    assert_eq!(r["error"], "rpc: can't find method CDRsV1.Nope", "{r}");
}

#[test]
fn default_sqlite_in_the_data_dir() {
    let mut s = Server::start(&[]);
    let data = s.data.clone().unwrap();
    let file = data.join("cdrs.sqlite");
    assert!(
        s.seen
            .iter()
            .any(|l| l.starts_with("cdrs: sqlite://") && l.contains("cdrs.sqlite")),
        "{:?}",
        s.seen
    );
    assert!(file.is_file(), "{}", file.display());
    empty_store_answers(&s);
    bad_filters_are_refused(&s);
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "serve: cdrs_stored: 0"),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l == "serve: cdrs_pending: 0"),
        "{lines:?}"
    );
}

#[test]
fn config_db_and_flag_on_postgres() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let schema = unique("serve_cdrs");
    let admin = rt.block_on(sqlx::PgPool::connect(&pg_url())).unwrap();
    rt.block_on(sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin))
        .unwrap();
    let url = format!("{}?options=-c%20search_path%3D{schema}", pg_url());
    // `[cdrs] db` names a database that is not there; the flag wins.
    let config = "[api]\nrpc-tcp = \"127.0.0.1:0\"\nrpc-http = \"127.0.0.1:0\"\n\
                  [cdrs]\ndb = \"postgres://127.0.0.1:1/none\"\nbatch-size = 10\n";
    let mut s = Server::start_with(&["--cdr-db", &url], Some(config));
    assert!(
        s.seen.iter().any(|l| l.starts_with("cdrs: postgres://")),
        "{:?}",
        s.seen
    );
    empty_store_answers(&s);
    bad_filters_are_refused(&s);
    let (status, lines) = s.signal("-TERM");
    assert!(status.success(), "{lines:?}");
    // The migrations ran in the schema, and no SQLite file was made.
    let tables: i64 = rt
        .block_on(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = $1 AND table_name IN ('cdrs', '_sqlx_migrations')",
            )
            .bind(&schema)
            .fetch_one(&admin),
        )
        .unwrap();
    assert!(!s.data.as_ref().unwrap().join("cdrs.sqlite").exists());
    rt.block_on(sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin))
        .unwrap();
    assert_eq!(tables, 2);
}

#[test]
fn an_unreachable_or_bad_cdr_database_stops_the_start() {
    let out = std::process::Command::new(ACCURATE)
        .args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(temp_data_dir())
        .args(["--cdr-db", "mysql://127.0.0.1/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a CDR database URL"), "{err}");
    let dir = temp_data_dir();
    let out = std::process::Command::new(ACCURATE)
        .args([
            "serve",
            "--rpc-tcp",
            "127.0.0.1:0",
            "--rpc-http",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .args(["--cdr-db", "postgres://postgres@127.0.0.1:1/none"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("CDR database") && !err.contains("listening on"),
        "{err}"
    );
}
