//! The one TOML configuration file (`accurate.toml`).
//!
//! Keys are kebab-case and unknown keys are errors, so a typo never silently
//! falls back to a default. Every section is optional.
//!
//! Values are range-checked while the file is parsed (`deserialize_with` a
//! function of [`check`]), so a refused value is reported like a syntax
//! error: the key, its line and column. To check a new key, add a line to
//! the `checks!` list in [`check`] and name it on the field.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;
use serde::Deserialize;

/// A configuration file that cannot be read or is invalid (exit code 78).
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub(crate) struct ConfigError(anyhow::Error);

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct Config {
    /// Capture-frame decoding (pcap files and live taps).
    #[serde(default)]
    pub capture: CaptureSection,
    /// HEP listeners.
    #[serde(default)]
    pub hep: HepSection,
    /// A live tap.
    #[serde(default)]
    pub live: Option<LiveSection>,
    /// The dialog machine: timers, reorder window, limits (`[dialog]`,
    /// sip-fsm's own config; its mapping lives in `[mapping]`).
    #[serde(default)]
    pub dialog: sip_fsm::Config,
    /// From SIP headers to CGRateS charging fields (`[mapping]`).
    #[serde(default)]
    pub mapping: sip_fsm::MappingConfig,
    /// Tariff-plan loading (`[rating]`).
    #[serde(default)]
    pub rating: RatingSection,
    /// `accurate serve`'s JSON-RPC API (`[api]`).
    #[serde(default)]
    pub api: ApiSection,
    /// Where `accurate serve` keeps accounts and its state (`[storage]`).
    #[serde(default)]
    pub storage: StorageSection,
    /// `accurate serve`'s session manager (`[sessions]`).
    #[serde(default)]
    pub sessions: crate::serve::SessionsSection,
    /// Where `accurate serve` stores CDRs and how it batches them
    /// (`[cdrs]`).
    #[serde(default)]
    pub cdrs: CdrsSection,
    /// CDR exporters (`[[exporters]]`: files or HTTP JSON posts).
    #[serde(default)]
    pub exporters: Vec<crate::serve::ExporterConfig>,
    /// CDR importers (`[[importers]]`: CSV files in a watched folder).
    #[serde(default)]
    pub importers: Vec<crate::serve::ImporterConfig>,
    /// The active agents (`[[agents.kamailio]]`).
    #[serde(default)]
    pub agents: crate::serve::AgentsSection,
    /// The one reassembly byte budget (`max-total-bytes`) of everything
    /// built from this config, made on first use. Not a key.
    #[serde(skip)]
    budget: OnceLock<capture::ByteBudget>,
}

/// `[rating]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct RatingSection {
    /// Accept a negative Rate or ConnectFee (a credit) in tariff plans;
    /// refused by default as a likely typo.
    pub allow_negative_rates: bool,
}

/// `[api]`: `accurate serve`'s JSON-RPC listeners.
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ApiSection {
    /// JSON-RPC over TCP, `IP:PORT` (127.0.0.1:2012 when not set).
    #[serde(deserialize_with = "check::rpc_tcp")]
    pub rpc_tcp: Option<String>,
    /// JSON-RPC over HTTP, `IP:PORT` (127.0.0.1:2080 when not set).
    #[serde(deserialize_with = "check::rpc_http")]
    pub rpc_http: Option<String>,
    /// Token callers must give: `Authorization: Bearer TOKEN` over HTTP, a
    /// first `AuthSv1.Auth` call over TCP. None: no authentication.
    #[serde(deserialize_with = "check::api_auth_token")]
    pub auth_token: Option<String>,
    /// `node_id` in `CoreSv1.Status` (the host name when not set).
    pub node_id: Option<String>,
    /// JSON-RPC TCP connections open at once; more are closed at once
    /// (counted as `tcp_conn_limit`).
    #[serde(deserialize_with = "check::api_max_connections")]
    pub max_connections: usize,
    /// Seconds a JSON-RPC TCP connection may send nothing before it is
    /// closed (counted as `tcp_idle_timeout`); an HTTP client gets as long
    /// to send its request headers.
    #[serde(deserialize_with = "check::api_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            rpc_tcp: None,
            rpc_http: None,
            auth_token: None,
            node_id: None,
            max_connections: 1024,
            idle_timeout_secs: 300,
        }
    }
}

/// `[storage]`: where `accurate serve` keeps accounts, balances and its
/// state (the loaded tariff plan, action plans).
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct StorageSection {
    /// The embedded store's folder (created on first start); `--data-dir`
    /// overrides it.
    #[serde(deserialize_with = "check::storage_data_dir")]
    pub data_dir: std::path::PathBuf,
    /// `redis://HOST:PORT/DB`: accounts and state live in Redis, shared by
    /// every AccuRate process using the same URL and prefix.
    #[serde(deserialize_with = "check::storage_redis")]
    pub redis: Option<String>,
    /// Prefix of every Redis key.
    #[serde(deserialize_with = "check::storage_redis_prefix")]
    pub redis_prefix: String,
}

/// `[storage] data-dir` when not set.
pub(crate) const DEFAULT_DATA_DIR: &str = "./accurate-data";

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            data_dir: DEFAULT_DATA_DIR.into(),
            redis: None,
            redis_prefix: "accurate:".to_owned(),
        }
    }
}

/// `[cdrs]`: the CDR database of `accurate serve`.
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct CdrsSection {
    /// `postgres://USER@HOST:PORT/DB` or `sqlite://PATH?mode=rwc`; not
    /// set: SQLite `cdrs.sqlite` in the data directory. `--cdr-db`
    /// overrides it.
    #[serde(deserialize_with = "check::cdrs_db")]
    pub db: Option<String>,
    /// CDRs stored per insert (one transaction) at most.
    #[serde(deserialize_with = "check::cdrs_batch_size")]
    pub batch_size: usize,
    /// Milliseconds a CDR may wait for others to share its insert.
    #[serde(deserialize_with = "check::cdrs_flush_interval_ms")]
    pub flush_interval_ms: u64,
}

impl Default for CdrsSection {
    fn default() -> Self {
        CdrsSection {
            db: None,
            batch_size: 1000,
            flush_interval_ms: 20,
        }
    }
}

/// A CDR database URL `accurate serve` can open: `sqlite:...`,
/// `postgres://...` or `postgresql://...`.
pub(crate) fn check_cdr_db(url: &str) -> Result<(), String> {
    let ok = ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| url.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{url:?} is not a CDR database URL (postgres://USER@HOST:PORT/DB or sqlite://PATH?mode=rwc)"
        ))
    }
}

/// `[capture]`
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct CaptureSection {
    /// UDP/TCP ports whose traffic inside a capture is HEP, not SIP.
    #[serde(deserialize_with = "check::hep_ports")]
    pub hep_ports: Vec<u16>,
    /// Largest SIP message accepted, bytes.
    #[serde(deserialize_with = "check::max_sip_message")]
    pub max_sip_message: usize,
    /// Reassembly limits.
    #[serde(default)]
    pub reassembly: ReassemblySection,
}

impl Default for CaptureSection {
    fn default() -> Self {
        let d = capture::frame::DecoderConfig::default();
        CaptureSection {
            hep_ports: d.hep_ports,
            max_sip_message: d.max_sip_message,
            reassembly: ReassemblySection::default(),
        }
    }
}

/// `[capture.reassembly]`
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct ReassemblySection {
    /// Seconds IP fragments wait for the rest of their packet.
    #[serde(deserialize_with = "check::ip_fragment_timeout_secs")]
    pub ip_fragment_timeout_secs: u64,
    /// Bytes held for IP fragment reassembly, all packets together.
    #[serde(deserialize_with = "check::max_ip_fragment_bytes")]
    pub max_ip_fragment_bytes: usize,
    /// TCP streams tracked at once.
    #[serde(deserialize_with = "check::max_tcp_streams")]
    pub max_tcp_streams: usize,
    /// Bytes buffered per TCP stream.
    #[serde(deserialize_with = "check::max_tcp_stream_bytes")]
    pub max_tcp_stream_bytes: usize,
    /// Seconds an idle TCP stream is kept.
    #[serde(deserialize_with = "check::tcp_idle_timeout_secs")]
    pub tcp_idle_timeout_secs: u64,
    /// Seconds out-of-order TCP data waits for a missing segment before the
    /// hole is skipped (counted as `tcp_gap`).
    #[serde(deserialize_with = "check::tcp_gap_timeout_secs")]
    pub tcp_gap_timeout_secs: u64,
    /// One byte budget for everything reassembly holds in the process: IP
    /// fragments and TCP streams of every capture file and live tap, and
    /// the partial frames of all HEP-over-TCP connections (counted as
    /// `reassembly_budget`).
    #[serde(deserialize_with = "check::max_total_bytes")]
    pub max_total_bytes: usize,
}

impl Default for ReassemblySection {
    fn default() -> Self {
        let d = capture::frame::DecoderConfig::default();
        ReassemblySection {
            ip_fragment_timeout_secs: d.ip_fragment_timeout.as_secs(),
            max_ip_fragment_bytes: d.max_ip_fragment_bytes,
            max_tcp_streams: d.max_tcp_streams,
            max_tcp_stream_bytes: d.max_tcp_stream_bytes,
            tcp_idle_timeout_secs: d.tcp_idle_timeout.as_secs(),
            tcp_gap_timeout_secs: d.tcp_gap_timeout.as_secs(),
            max_total_bytes: d.max_total_bytes,
        }
    }
}

/// `[hep]`
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct HepSection {
    /// Listeners, `udp:IP:PORT` or `tcp:IP:PORT`.
    #[serde(deserialize_with = "check::listen")]
    pub listen: Vec<String>,
    /// Shared secret HEP agents must send (HEPv3 auth key chunk); packets
    /// without it, or with another, are dropped and counted.
    #[serde(deserialize_with = "check::auth_key")]
    pub auth_key: Option<String>,
    /// SO_RCVBUF for UDP listeners, bytes.
    #[serde(deserialize_with = "check::recv_buffer")]
    pub recv_buffer: usize,
    /// UDP sockets per address (SO_REUSEPORT), one task each.
    #[serde(deserialize_with = "check::udp_sockets")]
    pub udp_sockets: usize,
    /// HEP TCP connections open at once; more are closed at once (counted
    /// as `hep_conn_limit`).
    #[serde(deserialize_with = "check::tcp_max_connections")]
    pub tcp_max_connections: usize,
    /// Seconds a HEP TCP connection may send nothing before it is closed
    /// (counted as `hep_idle_timeout`).
    #[serde(deserialize_with = "check::hep_tcp_idle_timeout_secs")]
    pub tcp_idle_timeout_secs: u64,
}

impl Default for HepSection {
    fn default() -> Self {
        let d = capture::io::ListenerConfig::default();
        HepSection {
            listen: Vec::new(),
            auth_key: None,
            recv_buffer: d.recv_buffer,
            udp_sockets: d.udp_sockets,
            tcp_max_connections: d.tcp_max_connections,
            tcp_idle_timeout_secs: d.tcp_idle_timeout.as_secs(),
        }
    }
}

/// `[live]`
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct LiveSection {
    /// Interface to capture on.
    #[serde(deserialize_with = "check::interface")]
    pub interface: String,
    /// BPF filter.
    #[serde(default, deserialize_with = "check::filter")]
    pub filter: Option<String>,
    /// Bytes captured per frame.
    #[serde(default = "default_snaplen", deserialize_with = "check::snaplen")]
    pub snaplen: i32,
    /// Promiscuous mode.
    #[serde(default = "default_true")]
    pub promisc: bool,
}

fn default_snaplen() -> i32 {
    65535
}

fn default_true() -> bool {
    true
}

impl Config {
    /// Reads and parses `path`. The error names the file, and toml's message
    /// names the key, line and column.
    pub(crate) fn load(path: &Path) -> anyhow::Result<Config> {
        // A missing or unreadable file is a missing input (66), not a bad
        // configuration.
        let text = std::fs::read_to_string(path).map_err(|source| crate::exit::Failure::Input {
            what: "config file",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
            .map_err(|e| ConfigError(e).into())
    }

    /// The config at `path`, or the defaults when no file is given.
    pub(crate) fn load_or_default(path: Option<&Path>) -> anyhow::Result<Config> {
        match path {
            Some(p) => Self::load(p),
            None => Ok(Config::default()),
        }
    }

    /// Parses and validates config text.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Config> {
        let cfg: Config = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what one key alone cannot say (listen addresses, BPF syntax
    /// and ranges are checked while parsing, see [`check`]).
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.dialog.mapping == sip_fsm::MappingConfig::default(),
            "key dialog.mapping: the mapping goes in its own [mapping] section"
        );
        // Regexes and CIDR blocks are checked by building the machine.
        sip_fsm::DialogMachine::new(self.dialog_config()).context("in section mapping")?;
        crate::serve::check_exports(&self.exporters, &self.importers)?;
        Ok(())
    }

    /// The dialog machine settings: `[dialog]` with `[mapping]` in it.
    pub(crate) fn dialog_config(&self) -> sip_fsm::Config {
        sip_fsm::Config {
            mapping: self.mapping.clone(),
            ..self.dialog.clone()
        }
    }

    /// The reassembly byte budget (`max-total-bytes`) every frame decoder
    /// and HEP listener built from this config shares: the same one on
    /// every call, so one per process (the process loads one config).
    pub(crate) fn byte_budget(&self) -> capture::ByteBudget {
        self.budget
            .get_or_init(|| capture::ByteBudget::new(self.capture.reassembly.max_total_bytes))
            .clone()
    }

    /// The frame decoder settings this config asks for, charging the
    /// config's one byte budget.
    pub(crate) fn decoder_config(&self) -> capture::frame::DecoderConfig {
        let r = &self.capture.reassembly;
        capture::frame::DecoderConfig {
            hep_ports: self.capture.hep_ports.clone(),
            hep: self.hep_config(),
            max_sip_message: self.capture.max_sip_message,
            ip_fragment_timeout: std::time::Duration::from_secs(r.ip_fragment_timeout_secs),
            max_ip_fragment_bytes: r.max_ip_fragment_bytes,
            max_tcp_streams: r.max_tcp_streams,
            max_tcp_stream_bytes: r.max_tcp_stream_bytes,
            tcp_idle_timeout: std::time::Duration::from_secs(r.tcp_idle_timeout_secs),
            tcp_gap_timeout: std::time::Duration::from_secs(r.tcp_gap_timeout_secs),
            max_total_bytes: r.max_total_bytes,
            budget: Some(self.byte_budget()),
        }
    }

    /// What the tariff-plan loader accepts (`[rating]`).
    pub(crate) fn load_policy(&self) -> rating::LoadPolicy {
        rating::LoadPolicy {
            allow_negative_rates: self.rating.allow_negative_rates,
        }
    }

    /// HEP decoding settings (auth key, payload limit).
    pub(crate) fn hep_config(&self) -> capture::hep::HepConfig {
        capture::hep::HepConfig {
            auth_key: self.hep.auth_key.as_ref().map(|k| k.as_bytes().to_vec()),
            max_payload: self.capture.max_sip_message,
        }
    }

    /// HEP listener settings, charging the config's one byte budget (the
    /// same the frame decoders charge).
    pub(crate) fn listener_config(&self) -> capture::io::ListenerConfig {
        capture::io::ListenerConfig {
            hep: self.hep_config(),
            recv_buffer: self.hep.recv_buffer,
            udp_sockets: self.hep.udp_sockets,
            tcp_max_connections: self.hep.tcp_max_connections,
            tcp_idle_timeout: std::time::Duration::from_secs(self.hep.tcp_idle_timeout_secs),
            budget: self.byte_budget(),
            ..capture::io::ListenerConfig::default()
        }
    }
}

/// Per-key checks run while parsing (`#[serde(deserialize_with = ...)]`),
/// so toml reports a refused value with its key, line and column.
mod check {
    use std::fmt::Display;

    use serde::de::{Deserialize, Deserializer, Error};

    /// A value of `T` within `min..=max`.
    fn within<'de, D, T>(d: D, key: &str, min: T, max: T, unit: &str) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + PartialOrd + Display + Copy,
    {
        let v = T::deserialize(d)?;
        if v < min || v > max {
            return Err(D::Error::custom(format!(
                "key {key}: {v} is out of range, must be {min} to {max}{unit}"
            )));
        }
        Ok(v)
    }

    /// One checker per key: `name("section.key"): type = min..=max, "unit";`.
    macro_rules! checks {
        ($($name:ident($key:literal): $t:ty = $min:literal ..= $max:expr, $unit:literal;)*) => {$(
            pub(super) fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                within(d, $key, $min, $max, $unit)
            }
        )*};
    }

    const DAY: u64 = 24 * 3600;

    checks! {
        // [capture]: SIP over TCP can be long (large SDP, many headers),
        // but not megabytes; under 512 bytes not even an INVITE fits.
        max_sip_message("capture.max-sip-message"): usize = 512..=16 << 20, " bytes";
        // [capture.reassembly]
        ip_fragment_timeout_secs("capture.reassembly.ip-fragment-timeout-secs"): u64 = 1..=DAY, " seconds";
        max_ip_fragment_bytes("capture.reassembly.max-ip-fragment-bytes"): usize = 1..=1 << 30, " bytes";
        max_tcp_streams("capture.reassembly.max-tcp-streams"): usize = 1..=10_000_000, "";
        max_tcp_stream_bytes("capture.reassembly.max-tcp-stream-bytes"): usize = 1..=1 << 30, " bytes";
        tcp_idle_timeout_secs("capture.reassembly.tcp-idle-timeout-secs"): u64 = 1..=7 * DAY, " seconds";
        tcp_gap_timeout_secs("capture.reassembly.tcp-gap-timeout-secs"): u64 = 1..=DAY, " seconds";
        // One budget over all reassembly: under 64 KiB not one HEP frame
        // or largest SIP message fits; over 64 GiB is a typo.
        max_total_bytes("capture.reassembly.max-total-bytes"): usize = 65_536..=64 << 30, " bytes";
        // [hep]: SO_RCVBUF is a C int; the kernel caps it at rmem_max.
        recv_buffer("hep.recv-buffer"): usize = 4096..=1 << 30, " bytes";
        // One task and socket each; more than this is a typo.
        udp_sockets("hep.udp-sockets"): usize = 1..=1024, "";
        // A descriptor each.
        tcp_max_connections("hep.tcp-max-connections"): usize = 1..=1_000_000, "";
        hep_tcp_idle_timeout_secs("hep.tcp-idle-timeout-secs"): u64 = 1..=7 * DAY, " seconds";
        // [api]: a descriptor each.
        api_max_connections("api.max-connections"): usize = 1..=1_000_000, "";
        api_idle_timeout_secs("api.idle-timeout-secs"): u64 = 1..=7 * DAY, " seconds";
        // [cdrs]: one insert's bound parameters grow with the batch.
        cdrs_batch_size("cdrs.batch-size"): usize = 1..=100_000, "";
        cdrs_flush_interval_ms("cdrs.flush-interval-ms"): u64 = 1..=60_000, " ms";
        // [live]: libpcap's own maximum is 262144.
        snaplen("live.snaplen"): i32 = 64..=262_144, " bytes";
    }

    /// `[capture] hep-ports`: real ports (not 0).
    pub(super) fn hep_ports<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
        let v = Vec::<u16>::deserialize(d)?;
        if v.contains(&0) {
            return Err(D::Error::custom(
                "key capture.hep-ports: port 0 is not a port, must be 1 to 65535",
            ));
        }
        Ok(v)
    }

    /// `[hep] listen`: each `udp:IP:PORT` or `tcp:IP:PORT`.
    pub(super) fn listen<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        for l in &v {
            l.parse::<capture::io::HepBind>()
                .map_err(|e| D::Error::custom(format!("key hep.listen: {e}")))?;
        }
        Ok(v)
    }

    /// `[hep] auth-key`: not empty (an empty key would match no agent's).
    pub(super) fn auth_key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if v.as_deref() == Some("") {
            return Err(D::Error::custom(
                "key hep.auth-key: must not be empty (leave the key out for none)",
            ));
        }
        Ok(v)
    }

    /// An `IP:PORT` listen address of `[api]`.
    fn rpc_addr<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if let Some(a) = &v {
            a.parse::<std::net::SocketAddr>().map_err(|_| {
                D::Error::custom(format!(
                    "key {key}: {a:?} is not IP:PORT (127.0.0.1:2012, [::1]:2012; port 0 picks a free one)"
                ))
            })?;
        }
        Ok(v)
    }

    /// `[storage] data-dir`: not empty.
    pub(super) fn storage_data_dir<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::path::PathBuf, D::Error> {
        let v = String::deserialize(d)?;
        if v.is_empty() {
            return Err(D::Error::custom(
                "key storage.data-dir: must not be empty (leave the key out for ./accurate-data)",
            ));
        }
        Ok(v.into())
    }

    /// `[storage] redis`: a `redis://` or `rediss://` URL with a host.
    pub(super) fn storage_redis<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if let Some(u) = &v {
            let rest = u
                .strip_prefix("redis://")
                .or_else(|| u.strip_prefix("rediss://"))
                .or_else(|| u.strip_prefix("redis+unix://"))
                .or_else(|| u.strip_prefix("unix://"));
            if rest.is_none_or(str::is_empty) {
                return Err(D::Error::custom(format!(
                    "key storage.redis: {u:?} is not a Redis URL (redis://127.0.0.1:6379/0)"
                )));
            }
        }
        Ok(v)
    }

    /// `[storage] redis-prefix`: printable ASCII without spaces, not empty
    /// (an empty prefix would mix AccuRate's keys with everything else).
    pub(super) fn storage_redis_prefix<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<String, D::Error> {
        let v = String::deserialize(d)?;
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(D::Error::custom(
                "key storage.redis-prefix: must be printable ASCII without spaces, not empty",
            ));
        }
        Ok(v)
    }

    /// `[cdrs] db`: a URL the CDR store can open.
    pub(super) fn cdrs_db<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if let Some(u) = &v {
            super::check_cdr_db(u).map_err(|e| D::Error::custom(format!("key cdrs.db: {e}")))?;
        }
        Ok(v)
    }

    /// `[api] rpc-tcp`.
    pub(super) fn rpc_tcp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        rpc_addr(d, "api.rpc-tcp")
    }

    /// `[api] rpc-http`.
    pub(super) fn rpc_http<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        rpc_addr(d, "api.rpc-http")
    }

    /// `[api] auth-token`: not empty, no whitespace (it travels in an
    /// HTTP header).
    pub(super) fn api_auth_token<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if let Some(t) = &v
            && (t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(D::Error::custom(
                "key api.auth-token: must be printable ASCII without spaces, not empty (leave the key out for none)",
            ));
        }
        Ok(v)
    }

    /// `[live] interface`: not empty.
    pub(super) fn interface<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let v = String::deserialize(d)?;
        if v.trim().is_empty() {
            return Err(D::Error::custom(
                "key live.interface: must name an interface (`any` for all)",
            ));
        }
        Ok(v)
    }

    /// `[live] filter`: BPF that compiles.
    pub(super) fn filter<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<String>::deserialize(d)?;
        if let Some(f) = &v {
            capture::io::check_filter(f)
                .map_err(|e| D::Error::custom(format!("key live.filter: {e}")))?;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
