//! The agents' error type.

/// What can go wrong reading or answering a switch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The byte stream is not netstrings: the connection must be dropped.
    #[error("malformed netstring: {0}")]
    Netstring(&'static str),
    /// A netstring announced more bytes than the configured maximum.
    #[error("netstring of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// The announced length (or a lower bound of it).
        len: usize,
        /// The maximum accepted.
        max: usize,
    },
    /// A message that is not a JSON object, even read leniently.
    #[error("malformed evapi message: {0}")]
    Json(String),
    /// A message without an `event` or with one this agent does not know.
    #[error("unsupported event {0:?}")]
    UnknownEvent(String),
    /// A mandatory field is missing or empty (CGRateS's
    /// `MANDATORY_IE_MISSING`).
    #[error("MANDATORY_IE_MISSING: [{0}]")]
    MandatoryMissing(String),
    /// A time field that does not parse.
    #[error("cannot parse {field} {value:?} as a time")]
    Time {
        /// The field (`SetupTime`, `AnswerTime`).
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// An OpenSIPS datagram that cannot be read.
    #[error("malformed OpenSIPS datagram: {0}")]
    Datagram(String),
    /// The event socket's byte stream is not ESL: drop the connection.
    #[error("malformed ESL frame: {0}")]
    EslFrame(&'static str),
    /// An ESL header block or body larger than the configured maximum.
    #[error("ESL frame of {len} bytes exceeds the maximum of {max}")]
    EslTooLong {
        /// The size seen (or announced).
        len: usize,
        /// The maximum accepted.
        max: usize,
    },
    /// An ESL event whose body does not read (plain or JSON).
    #[error("malformed ESL event: {0}")]
    EslEvent(String),
    /// FreeSWITCH refused the password (`-ERR invalid`).
    #[error("FreeSWITCH refused the event socket password: {0}")]
    EslAuth(String),
    /// FreeSWITCH refused a command (`-ERR ...` reply).
    #[error("FreeSWITCH refused {command:?}: {reply}")]
    EslCommand {
        /// The command sent.
        command: String,
        /// What FreeSWITCH answered.
        reply: String,
    },
    /// FreeSWITCH closes the socket (`text/disconnect-notice`).
    #[error("FreeSWITCH disconnects: {0}")]
    EslDisconnect(String),
    /// A request processor or field template that does not compile or
    /// cannot be evaluated.
    #[error("template: {0}")]
    Template(String),
    /// A RADIUS packet that cannot be read or written.
    #[error("RADIUS: {0}")]
    Radius(String),
    /// A RADIUS dictionary that cannot be read.
    #[error("RADIUS dictionary: {0}")]
    Dictionary(String),
    /// A Diameter AVP that does not decode or a value that does not fit
    /// its type.
    #[error("Diameter AVP: {0}")]
    DiameterAvp(String),
    /// A Diameter message header that does not frame a message.
    #[error("Diameter message: {0}")]
    DiameterMessage(String),
    /// A Diameter dictionary line that does not read.
    #[error("Diameter dictionary: {0}")]
    DiameterDict(String),
}
