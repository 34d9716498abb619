//! The crate's error type and the scanner's malformed-input reasons.

/// Errors of the `sip-fsm` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A SIP message the scanner could not make sense of.
    #[error("malformed SIP message: {0}")]
    Scan(#[from] ScanError),
    /// A mapping regex that does not compile.
    #[error("bad regex {pattern:?}: {reason}")]
    Regex {
        /// The pattern as configured.
        pattern: String,
        /// What the regex compiler said.
        reason: String,
    },
    /// An address or CIDR block in the mapping config that does not parse.
    #[error("bad address or CIDR block {0:?}: expected IP or IP/LEN")]
    Cidr(String),
    /// A config value out of its range (the TOML loader reports these with
    /// line and column; this is the check for configs built in code).
    #[error("key {key}: {reason}")]
    Config {
        /// The key, as spelt in the config file.
        key: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// A [`DialogSnapshot`](crate::DialogSnapshot) that this machine
    /// cannot take.
    #[error("cannot restore call {call_id}: {reason}")]
    Restore {
        /// The call's Call-ID.
        call_id: String,
        /// Why.
        reason: &'static str,
    },
}

/// Why the scanner rejected a message. Each variant is also a metrics label
/// ([`ScanError::as_str`]), so the dialog machine counts malformed input by
/// reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Nothing but whitespace (a keep-alive, RFC 5626 section 4.4.1).
    #[error("empty message")]
    Empty,
    /// The start line is neither a Request-Line nor a Status-Line
    /// (RFC 3261 section 7.1 and 7.2).
    #[error("bad start line")]
    BadStartLine,
    /// The SIP-Version is not `SIP/2.0`.
    #[error("unsupported SIP version")]
    BadVersion,
    /// A Status-Code that is not three digits in 100..=699.
    #[error("bad status code")]
    BadStatusCode,
    /// A Request-URI without a scheme.
    #[error("bad Request-URI")]
    BadRequestUri,
    /// A header line without a colon, or with an empty or invalid name.
    #[error("bad header line")]
    BadHeader,
    /// No Call-ID header (mandatory, RFC 3261 section 8.1.1.4).
    #[error("missing Call-ID")]
    MissingCallId,
    /// No CSeq header (mandatory, RFC 3261 section 8.1.1.5).
    #[error("missing CSeq")]
    MissingCSeq,
    /// A CSeq that is not `number method` (RFC 3261 section 20.16).
    #[error("bad CSeq")]
    BadCSeq,
    /// No From header (mandatory, RFC 3261 section 8.1.1.3).
    #[error("missing From")]
    MissingFrom,
    /// No To header (mandatory, RFC 3261 section 8.1.1.2).
    #[error("missing To")]
    MissingTo,
}

impl ScanError {
    /// How many reasons there are; the length of [`ScanError::ALL`].
    pub const COUNT: usize = 11;

    /// Every reason, in declaration order (index = [`ScanError::index`]).
    pub const ALL: [ScanError; Self::COUNT] = [
        ScanError::Empty,
        ScanError::BadStartLine,
        ScanError::BadVersion,
        ScanError::BadStatusCode,
        ScanError::BadRequestUri,
        ScanError::BadHeader,
        ScanError::MissingCallId,
        ScanError::MissingCSeq,
        ScanError::BadCSeq,
        ScanError::MissingFrom,
        ScanError::MissingTo,
    ];

    /// A stable snake_case label for metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScanError::Empty => "empty",
            ScanError::BadStartLine => "bad_start_line",
            ScanError::BadVersion => "bad_version",
            ScanError::BadStatusCode => "bad_status_code",
            ScanError::BadRequestUri => "bad_request_uri",
            ScanError::BadHeader => "bad_header",
            ScanError::MissingCallId => "missing_call_id",
            ScanError::MissingCSeq => "missing_cseq",
            ScanError::BadCSeq => "bad_cseq",
            ScanError::MissingFrom => "missing_from",
            ScanError::MissingTo => "missing_to",
        }
    }

    /// Position in [`ScanError::ALL`], for counter arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_with_unique_labels() {
        for (i, e) in ScanError::ALL.iter().enumerate() {
            assert_eq!(e.index(), i);
        }
        let mut labels: Vec<_> = ScanError::ALL.iter().map(|e| e.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ScanError::COUNT);
    }
}
