//! ChargerS (Chargers.csv). (Skeleton: the helper that owns this module replaces it.)

use std::path::Path;

use crate::Error;

/// The profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct ChargerProfiles {}

impl ChargerProfiles {
    /// Loads the file's records.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<ChargerProfiles, Error> {
        let _ = (records, file);
        Ok(ChargerProfiles {})
    }
}
