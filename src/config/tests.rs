use super::*;

#[test]
fn empty_config_is_valid() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.capture.hep_ports, vec![9060]);
    assert!(c.live.is_none());
}

#[test]
fn every_key_is_optional() {
    let c = Config::parse("[hep]\nauth-key = \"k\"\n[capture.reassembly]\nmax-tcp-streams = 7\n")
        .unwrap();
    assert_eq!(c.hep.auth_key.as_deref(), Some("k"));
    assert_eq!(c.hep.udp_sockets, 1);
    assert_eq!(c.capture.reassembly.max_tcp_streams, 7);
    assert_eq!(c.capture.reassembly.tcp_idle_timeout_secs, 300);
}

#[test]
fn capture_bound_keys_reach_the_decoder_and_listeners() {
    let c = Config::parse(
        "[capture.reassembly]\nmax-total-bytes = 100000\n\
             [hep]\ntcp-max-connections = 3\ntcp-idle-timeout-secs = 7\n",
    )
    .unwrap();
    assert_eq!(c.decoder_config().max_total_bytes, 100_000);
    let l = c.listener_config();
    assert_eq!(l.tcp_max_connections, 3);
    assert_eq!(l.tcp_idle_timeout, std::time::Duration::from_secs(7));
    assert_eq!(l.budget.limit(), 100_000);
    let d = Config::parse("").unwrap();
    assert_eq!(d.hep.tcp_max_connections, 1024);
    assert_eq!(d.hep.tcp_idle_timeout_secs, 300);
    assert_eq!(d.capture.reassembly.max_total_bytes, 256 << 20);
}

/// Issue 7: every decoder (each capture file, the live tap) and every
/// HEP listener of a process charge one budget, not one each.
#[test]
fn decoders_and_listeners_share_one_budget() {
    let c = Config::parse("[capture.reassembly]\nmax-total-bytes = 100000\n").unwrap();
    let budget = c.byte_budget();
    assert_eq!(budget.limit(), 100_000);
    for d in [c.decoder_config(), c.decoder_config()] {
        assert!(d.budget.is_some_and(|b| b.same(&budget)));
    }
    assert!(c.listener_config().budget.same(&budget));
    assert!(c.listener_config().budget.same(&c.listener_config().budget));
}

#[test]
fn unknown_keys_fail_naming_the_key() {
    let e = Config::parse("[capture]\nhep-port = [9060]\n").unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.contains("hep-port"), "{msg}");
    let e = Config::parse("[nonsense]\n").unwrap_err();
    assert!(format!("{e:#}").contains("nonsense"));
}

#[test]
fn bad_listen_and_filter_are_refused() {
    let e = Config::parse("[hep]\nlisten = [\"udp:nowhere\"]\n").unwrap_err();
    assert!(format!("{e:#}").contains("hep.listen"), "{e:#}");
    let e = Config::parse("[live]\ninterface = \"lo\"\nfilter = \"port nonsense(\"\n").unwrap_err();
    assert!(format!("{e:#}").contains("live.filter"), "{e:#}");
}

#[test]
fn dialog_and_mapping_sections() {
    let c = Config::parse(
        "[dialog]\nreorder-window-ms = 50\n[mapping]\ntenant = \"acme\"\n\
             [mapping.account]\nfrom = [\"pai-user\", \"from-user\"]\n",
    )
    .unwrap();
    let d = c.dialog_config();
    assert_eq!(d.reorder_window_ms, 50);
    assert_eq!(d.invite_timeout_secs, 300);
    assert_eq!(d.mapping.tenant, "acme");
    assert_eq!(d.mapping.account.from.len(), 2);
    assert_eq!(
        Config::parse("").unwrap().dialog_config(),
        sip_fsm::Config::default()
    );
}

#[test]
fn unknown_dialog_and_mapping_keys_fail_naming_the_key() {
    for (text, key) in [
        ("[dialog]\nreorder-window = 5\n", "reorder-window"),
        ("[mapping]\ntennant = \"x\"\n", "tennant"),
        ("[mapping.account]\nsource = []\n", "source"),
    ] {
        let e = Config::parse(text).unwrap_err();
        assert!(format!("{e:#}").contains(key), "{text}: {e:#}");
    }
    let e = Config::parse("[dialog.mapping]\ntenant = \"x\"\n").unwrap_err();
    assert!(format!("{e:#}").contains("dialog.mapping"), "{e:#}");
}

#[test]
fn bad_mapping_regex_and_cidr_are_refused() {
    let e = Config::parse(
        "[mapping.destination]\nnormalize = [{ regex = { pattern = \"(\", replace = \"\" } }]\n",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("mapping"), "{e:#}");
    let e = Config::parse("[[mapping.rules]]\naddress = \"10.0.0.0/33\"\n").unwrap_err();
    assert!(format!("{e:#}").contains("10.0.0.0/33"), "{e:#}");
}

#[test]
fn sample_config_parses() {
    let text = include_str!("../../accurate.toml");
    let c = Config::parse(text).unwrap();
    assert!(!c.hep.listen.is_empty());
    // The sample spells out the defaults.
    assert_eq!(c.dialog_config(), sip_fsm::Config::default());
}

#[test]
fn api_section_keys_and_checks() {
    let c = Config::parse("").unwrap();
    assert!(c.api.rpc_tcp.is_none() && c.api.auth_token.is_none());
    assert_eq!(c.api.max_connections, 1024);
    let c = Config::parse(
        "[api]\nrpc-tcp = \"0.0.0.0:0\"\nrpc-http = \"[::1]:2080\"\nauth-token = \"s3cret\"\n",
    )
    .unwrap();
    assert_eq!(c.api.rpc_tcp.as_deref(), Some("0.0.0.0:0"));
    assert_eq!(c.api.auth_token.as_deref(), Some("s3cret"));
    for (text, key, line) in [
        ("[api]\nrpc-tcp = \"localhost\"\n", "api.rpc-tcp", "line 2"),
        (
            "[api]\n\nrpc-http = \"1.2.3.4:99999\"\n",
            "api.rpc-http",
            "line 3",
        ),
        ("[api]\nauth-token = \"a b\"\n", "api.auth-token", "line 2"),
        (
            "[api]\nmax-connections = 0\n",
            "api.max-connections",
            "line 2",
        ),
        ("[api]\nrpc-tls = \"x\"\n", "rpc-tls", "line 2"),
    ] {
        let e = format!("{:#}", Config::parse(text).unwrap_err());
        assert!(e.contains(key) && e.contains(line), "{text}: {e}");
    }
}

#[test]
fn storage_section_keys_and_checks() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.storage.data_dir, std::path::Path::new(DEFAULT_DATA_DIR));
    assert!(c.storage.redis.is_none());
    assert_eq!(c.storage.redis_prefix, "accurate:");
    let c = Config::parse(
            "[storage]\ndata-dir = \"/var/lib/accurate\"\nredis = \"redis://127.0.0.1:6379/0\"\nredis-prefix = \"x:\"\n",
        )
        .unwrap();
    assert_eq!(c.storage.redis.as_deref(), Some("redis://127.0.0.1:6379/0"));
    assert_eq!(c.storage.redis_prefix, "x:");
    for (text, key, line) in [
        ("[storage]\ndata-dir = \"\"\n", "storage.data-dir", "line 2"),
        (
            "[storage]\n\nredis = \"127.0.0.1:6379\"\n",
            "storage.redis",
            "line 3",
        ),
        (
            "[storage]\nredis-prefix = \"a b\"\n",
            "storage.redis-prefix",
            "line 2",
        ),
        ("[storage]\nredis-url = \"x\"\n", "redis-url", "line 2"),
    ] {
        let e = format!("{:#}", Config::parse(text).unwrap_err());
        assert!(e.contains(key) && e.contains(line), "{text}: {e}");
    }
}

#[test]
fn cdrs_section_keys_and_checks() {
    let c = Config::parse("").unwrap();
    assert_eq!(c.cdrs.db, None);
    assert_eq!((c.cdrs.batch_size, c.cdrs.flush_interval_ms), (1000, 20));
    let c = Config::parse(
            "[cdrs]\ndb = \"postgres://postgres@127.0.0.1:5432/cdrs\"\nbatch-size = 500\nflush-interval-ms = 5\n",
        )
        .unwrap();
    assert_eq!(
        c.cdrs.db.as_deref(),
        Some("postgres://postgres@127.0.0.1:5432/cdrs")
    );
    assert_eq!((c.cdrs.batch_size, c.cdrs.flush_interval_ms), (500, 5));
    assert!(Config::parse("[cdrs]\ndb = \"sqlite:///var/lib/accurate/cdrs.sqlite\"\n").is_ok());
    for (text, key, line) in [
        ("[cdrs]\ndb = \"mysql://x/y\"\n", "cdrs.db", "line 2"),
        ("[cdrs]\n\ndb = \"postgres://\"\n", "cdrs.db", "line 3"),
        ("[cdrs]\nbatch-size = 0\n", "cdrs.batch-size", "line 2"),
        (
            "[cdrs]\nflush-interval-ms = 60001\n",
            "cdrs.flush-interval-ms",
            "line 2",
        ),
        ("[cdrs]\nbatchsize = 5\n", "batchsize", "line 2"),
    ] {
        let e = format!("{:#}", Config::parse(text).unwrap_err());
        assert!(e.contains(key) && e.contains(line), "{text}: {e}");
    }
}

#[test]
fn rating_allow_negative_rates_key() {
    assert!(
        !Config::parse("")
            .unwrap()
            .load_policy()
            .allow_negative_rates
    );
    let c = Config::parse("[rating]\nallow-negative-rates = true\n").unwrap();
    assert!(c.load_policy().allow_negative_rates);
    let e = Config::parse("[rating]\nallow-negative-rate = true\n").unwrap_err();
    assert!(format!("{e:#}").contains("allow-negative-rate"), "{e:#}");
}
