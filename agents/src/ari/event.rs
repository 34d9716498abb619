//! The ARI events Asterisk sends on its events WebSocket
//! (`/ari/events?app=APP`), as JSON objects: `{"type":"StasisStart",
//! "timestamp":"2024-05-01T12:00:00.000+0000","args":[...],
//! "channel":{"id":...,"state":"Ring","caller":{"number":...},
//! "dialplan":{"exten":...},"creationtime":...,"channelvars":{...}}}`.
//! Only the fields the agent reads are kept.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// One ARI event, the parts the agent reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AriEvent {
    /// `type`: `StasisStart`, `ChannelStateChange`, `ChannelDestroyed`...
    #[serde(rename = "type")]
    pub kind: String,
    /// `timestamp`: when Asterisk raised the event.
    pub timestamp: String,
    /// `application`: the Stasis application.
    pub application: String,
    /// `args`: the `Stasis(app,arg1,arg2...)` arguments (StasisStart).
    pub args: Vec<String>,
    /// `channel`: the channel the event is about.
    pub channel: Option<Channel>,
    /// `cause_txt`: the hangup cause (ChannelDestroyed).
    pub cause_txt: String,
}

/// An ARI channel snapshot.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Channel {
    /// `id`: the channel's unique id (the session's `OriginID`).
    pub id: String,
    /// `state`: `Down`, `Ring`, `Ringing`, `Up`...
    pub state: String,
    /// `caller`: the calling party.
    pub caller: Party,
    /// `dialplan`: where the channel is in the dialplan.
    pub dialplan: Dialplan,
    /// `creationtime`: when the channel was created.
    pub creationtime: String,
    /// `channelvars`: the variables `ari.conf`'s `channelvars` lists.
    pub channelvars: BTreeMap<String, Value>,
}

/// A calling or called party.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Party {
    /// `number`.
    pub number: String,
    /// `name`.
    pub name: String,
}

/// A channel's dialplan position.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dialplan {
    /// `context`.
    pub context: String,
    /// `exten`: the dialled extension.
    pub exten: String,
}

/// Reads one WebSocket text message as an ARI event.
///
/// # Errors
/// [`Error::Json`] when it is not a JSON object of the ARI shape.
pub fn parse_event(data: &[u8]) -> Result<AriEvent, Error> {
    let v: Value = serde_json::from_slice(data).map_err(|e| Error::Json(e.to_string()))?;
    if !v.is_object() {
        return Err(Error::Json("an ARI event is a JSON object".into()));
    }
    serde_json::from_value(v).map_err(|e| Error::Json(e.to_string()))
}

/// An ARI time (`2024-05-01T12:00:03.123+0000`, or RFC 3339).
///
/// # Errors
/// [`Error::Time`] when it does not parse.
pub fn parse_time(field: &'static str, value: &str) -> Result<DateTime<Utc>, Error> {
    let v = value.trim();
    DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(v))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| Error::Time {
            field,
            value: value.to_string(),
        })
}

/// A time as the CGREvents carry it (RFC 3339, UTC).
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The variables of a call: the channel's `channelvars` (strings), then
/// the `key=value` Stasis arguments over them. An argument without `=`
/// is ignored, as CGRateS ignores it.
pub fn call_vars(ev: &AriEvent) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(ch) = &ev.channel {
        for (k, v) in &ch.channelvars {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            vars.insert(k.clone(), text);
        }
    }
    for arg in &ev.args {
        if let Some((k, v)) = arg.split_once('=') {
            vars.insert(k.trim().to_string(), v.to_string());
        }
    }
    vars
}
