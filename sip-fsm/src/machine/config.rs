//! The dialog machine's settings and their ranges.
//!
//! Every number is range-checked where it is read, so a value that would
//! overflow a timestamp (`max-duration-secs = 9999999999`) or make no sense
//! (`max-dialogs = 0`) is refused by the TOML loader, whose error names the
//! key with its line and column. [`Config::validate`] repeats the checks
//! for configs built in code.

use serde::{Deserialize, Deserializer};

use crate::error::Error;
use crate::mapping::MappingConfig;

/// Dialog machine settings (embed in the binary's TOML config).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// How long packets wait to be put in timestamp order, milliseconds
    /// (0..=60000). Packets later than this are still processed, out of
    /// order, and counted as `late`.
    #[serde(deserialize_with = "reorder_window_ms")]
    pub reorder_window_ms: u64,
    /// An unanswered INVITE with no final response is reaped this long
    /// after it was sent, as a proxy's Timer C would (RFC 3261 16.6 step
    /// 11 asks for more than 3 minutes). Provisional responses do not
    /// extend it here, so the end time does not depend on copies.
    /// 1..=86400.
    #[serde(deserialize_with = "invite_timeout_secs")]
    pub invite_timeout_secs: u64,
    /// After a 3xx, 401, 407 or 422, how long the attempt is remembered
    /// waiting for the retried INVITE (same Call-ID and From-tag, higher
    /// CSeq) before it counts as failed with that response. Default 120 s:
    /// a stack retries at once, but a person typing credentials after a
    /// 401/407 takes 30-60 s, and the retry's final response is the call's.
    /// Keep it at most `invite-timeout-secs` so the default CDR order
    /// window (which covers the longer of the two) stays as it is.
    /// 0..=3600.
    #[serde(deserialize_with = "retry_wait_secs")]
    pub retry_wait_secs: u64,
    /// How long a finished call is kept to recognise late repeats
    /// (retransmitted BYE, 200 copies). Default 32 s (64*T1, Timer J).
    /// 0..=3600.
    #[serde(deserialize_with = "linger_secs")]
    pub linger_secs: u64,
    /// An answered call with no BYE and no session timer ends this long
    /// after its answer (marked `max-duration`). 1..=31622400 (a year).
    #[serde(deserialize_with = "max_duration_secs")]
    pub max_duration_secs: u64,
    /// Most calls tracked at once (live and lingering), 1..=100000000.
    /// When full, a new INVITE first displaces the oldest finished call
    /// still lingering, then the oldest unanswered one; answered calls are
    /// never displaced, and only when every tracked call is answered is
    /// the new INVITE dropped. All counted.
    #[serde(deserialize_with = "max_dialogs")]
    pub max_dialogs: usize,
    /// How far, in seconds, one packet's time may be from the stream clock
    /// (and from the `now` it is handed with) before it needs a second
    /// packet to agree with it (1..=86400, default 60). See the machine's
    /// clock rule.
    #[serde(deserialize_with = "max_clock_jump_secs")]
    pub max_clock_jump_secs: u64,
    /// How long a Call-ID is remembered after its first call, seconds
    /// (0..=604800, default 86400): a later call reusing it in that time
    /// gets its own OriginID (`Call-ID;from-tag`), so its own CGRID.
    #[serde(deserialize_with = "call_id_memory_secs")]
    pub call_id_memory_secs: u64,
    /// From SIP to charging fields.
    pub mapping: MappingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reorder_window_ms: 200,
            invite_timeout_secs: 300,
            retry_wait_secs: 120,
            linger_secs: 32,
            max_duration_secs: 4 * 3600,
            max_dialogs: 1_000_000,
            max_clock_jump_secs: 60,
            call_id_memory_secs: 86_400,
            mapping: MappingConfig::default(),
        }
    }
}

/// A key's allowed values (inclusive) and unit, for messages.
struct Range {
    key: &'static str,
    min: u64,
    max: u64,
    unit: &'static str,
}

impl Range {
    fn check(&self, v: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "{} must be between {} and {}{}, got {v}",
                self.key, self.min, self.max, self.unit
            ))
        }
    }
}

fn ranged<'de, D: Deserializer<'de>>(d: D, r: &Range) -> Result<u64, D::Error> {
    r.check(u64::deserialize(d)?)
        .map_err(serde::de::Error::custom)
}

/// One line per ranged key: the range and the `deserialize_with`
/// function named on the field.
macro_rules! ranges {
    ($($konst:ident $func:ident($key:literal): $min:expr, $max:expr, $unit:literal;)*) => {
        $(
            const $konst: Range = Range { key: $key, min: $min, max: $max, unit: $unit };
            fn $func<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
                ranged(d, &$konst)
            }
        )*
    };
}

ranges! {
    REORDER_WINDOW_MS reorder_window_ms("reorder-window-ms"): 0, 60_000, " ms";
    INVITE_TIMEOUT_SECS invite_timeout_secs("invite-timeout-secs"): 1, 86_400, " s";
    RETRY_WAIT_SECS retry_wait_secs("retry-wait-secs"): 0, 3_600, " s";
    LINGER_SECS linger_secs("linger-secs"): 0, 3_600, " s";
    MAX_DURATION_SECS max_duration_secs("max-duration-secs"): 1, 31_622_400, " s";
    MAX_DIALOGS max_dialogs_u64("max-dialogs"): 1, 100_000_000, "";
    MAX_CLOCK_JUMP_SECS max_clock_jump_secs("max-clock-jump-secs"): 1, 86_400, " s";
    CALL_ID_MEMORY_SECS call_id_memory_secs("call-id-memory-secs"): 0, 604_800, " s";
}

fn max_dialogs<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = max_dialogs_u64(d)?;
    usize::try_from(v).map_err(serde::de::Error::custom)
}

impl Config {
    /// Checks every range (what deserializing checks already), for configs
    /// built in code.
    pub fn validate(&self) -> Result<(), Error> {
        let dialogs = u64::try_from(self.max_dialogs).unwrap_or(u64::MAX);
        for (r, v) in [
            (&REORDER_WINDOW_MS, self.reorder_window_ms),
            (&INVITE_TIMEOUT_SECS, self.invite_timeout_secs),
            (&RETRY_WAIT_SECS, self.retry_wait_secs),
            (&LINGER_SECS, self.linger_secs),
            (&MAX_DURATION_SECS, self.max_duration_secs),
            (&MAX_DIALOGS, dialogs),
            (&MAX_CLOCK_JUMP_SECS, self.max_clock_jump_secs),
            (&CALL_ID_MEMORY_SECS, self.call_id_memory_secs),
        ] {
            r.check(v)
                .map_err(|reason| Error::Config { key: r.key, reason })?;
        }
        self.mapping.validate()
    }
}
