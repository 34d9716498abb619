//! `[sessions]` of the config file.

use serde::Deserialize;

/// `[sessions]`: the session manager's settings (`sessions::SessionConfig`,
/// kebab-case keys with CGRateS durations) plus `shards`, the number of
/// session threads (a call always goes to the same one, by its CGRID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionsSection {
    /// Session threads (1 to 64).
    pub shards: usize,
    /// The manager's settings.
    pub config: sessions::SessionConfig,
}

/// `[sessions] shards` when not set.
pub(crate) const DEFAULT_SESSION_SHARDS: usize = 4;

impl Default for SessionsSection {
    fn default() -> Self {
        SessionsSection {
            shards: DEFAULT_SESSION_SHARDS,
            config: sessions::SessionConfig::default(),
        }
    }
}

impl<'de> Deserialize<'de> for SessionsSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut table = toml::Table::deserialize(d)?;
        let shards = match table.remove("shards") {
            None => DEFAULT_SESSION_SHARDS,
            Some(toml::Value::Integer(n)) if (1..=64).contains(&n) => {
                usize::try_from(n).map_err(D::Error::custom)?
            }
            Some(v) => {
                return Err(D::Error::custom(format!(
                    "shards: {v} is not a whole number from 1 to 64"
                )));
            }
        };
        let config = sessions::SessionConfig::deserialize(toml::Value::Table(table))
            .map_err(D::Error::custom)?;
        Ok(SessionsSection { shards, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_section() {
        let c = crate::config::Config::parse(
            "[sessions]\nshards = 2\ndebit-interval = \"10s\"\nsession-ttl = \"1m\"\n",
        )
        .unwrap();
        assert_eq!(c.sessions.shards, 2);
        assert_eq!(
            c.sessions.config.debit_interval,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(
            c.sessions.config.session_ttl,
            std::time::Duration::from_secs(60)
        );
        assert_eq!(
            crate::config::Config::parse("").unwrap().sessions,
            SessionsSection::default()
        );
        let e = crate::config::Config::parse("[sessions]\ndebit-intervl = \"1s\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("debit-intervl"), "{e:#}");
        let e = crate::config::Config::parse("[sessions]\nshards = 0\n").unwrap_err();
        assert!(format!("{e:#}").contains("shards"), "{e:#}");
    }
}
