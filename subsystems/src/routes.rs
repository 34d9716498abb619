//! RouteS (Routes.csv, v0.10's Suppliers.csv). (Skeleton: the helper that owns this module replaces it.)

use std::path::Path;

use crate::Error;

/// The profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct RouteProfiles {}

impl RouteProfiles {
    /// Loads the file's records.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<RouteProfiles, Error> {
        let _ = (records, file);
        Ok(RouteProfiles {})
    }
}

impl RouteProfiles {
    /// Adds the profiles of a second file (Routes.csv and Suppliers.csv).
    pub fn merge(&mut self, other: RouteProfiles) {
        let _ = other;
    }
}
