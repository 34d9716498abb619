//! StatS (Stats.csv). (Skeleton: the helper that owns this module replaces it.)

use std::path::Path;

use crate::Error;

/// The profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct StatProfiles {}

impl StatProfiles {
    /// Loads the file's records.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<StatProfiles, Error> {
        let _ = (records, file);
        Ok(StatProfiles {})
    }
}
