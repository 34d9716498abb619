//! Loading the subsystems' files of a tariff-plan folder into one
//! [`Profiles`] value, swapped whole by a load ([`SharedProfiles`]).

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::Error;
use crate::attributes::AttributeProfiles;
use crate::chargers::ChargerProfiles;
use crate::filters::FilterSet;
use crate::resources::ResourceProfiles;
use crate::routes::RouteProfiles;
use crate::stats::StatProfiles;
use crate::thresholds::ThresholdProfiles;

/// The files this crate reads from a tariff-plan folder (`Suppliers.csv`
/// is v0.10's name for `Routes.csv`; when both exist both load).
pub const HANDLED_FILES: &[&str] = &[
    "Filters.csv",
    "Attributes.csv",
    "Chargers.csv",
    "Routes.csv",
    "Suppliers.csv",
    "Resources.csv",
    "Thresholds.csv",
    "Stats.csv",
];

/// Every subsystem profile of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct Profiles {
    /// Filters.csv.
    pub filters: FilterSet,
    /// Attributes.csv.
    pub attributes: AttributeProfiles,
    /// Chargers.csv.
    pub chargers: ChargerProfiles,
    /// Routes.csv and Suppliers.csv.
    pub routes: RouteProfiles,
    /// Resources.csv.
    pub resources: ResourceProfiles,
    /// Thresholds.csv.
    pub thresholds: ThresholdProfiles,
    /// Stats.csv.
    pub stats: StatProfiles,
    /// The files among [`HANDLED_FILES`] that had at least one row: the
    /// subsystems this plan runs (the session flags of one it does not
    /// answer CGRateS's `NOT_CONNECTED`).
    pub loaded: Vec<String>,
}

impl Profiles {
    /// Whether the plan had rows in `file` (`Attributes.csv`...).
    #[must_use]
    pub fn has(&self, file: &str) -> bool {
        self.loaded.iter().any(|f| f == file)
    }
}

impl Profiles {
    /// Loads the files among `files` (name, contents) that this crate
    /// reads; the others are ignored, a missing file is an empty set.
    ///
    /// # Errors
    /// The first file or line that does not load.
    pub fn from_files<T: AsRef<[u8]>>(files: &[(&Path, T)]) -> Result<Profiles, Error> {
        let mut p = Profiles::default();
        for (path, bytes) in files {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if !HANDLED_FILES.contains(&name) {
                continue;
            }
            let records = rating::csv::parse(path, bytes.as_ref())?;
            if records.iter().next().is_some() {
                p.loaded.push(name.to_owned());
            }
            match name {
                "Filters.csv" => p.filters = FilterSet::load(&records, path)?,
                "Attributes.csv" => p.attributes = AttributeProfiles::load(&records, path)?,
                "Chargers.csv" => p.chargers = ChargerProfiles::load(&records, path)?,
                "Routes.csv" | "Suppliers.csv" => {
                    let more = RouteProfiles::load(&records, path)?;
                    p.routes.merge(more);
                }
                "Resources.csv" => p.resources = ResourceProfiles::load(&records, path)?,
                "Thresholds.csv" => p.thresholds = ThresholdProfiles::load(&records, path)?,
                "Stats.csv" => p.stats = StatProfiles::load(&records, path)?,
                _ => {}
            }
        }
        Ok(p)
    }

    /// Loads a tariff-plan folder's subsystem files.
    ///
    /// # Errors
    /// An unreadable file, or the first file or line that does not load.
    pub fn load_dir(dir: &Path) -> Result<Profiles, Error> {
        let mut files = Vec::new();
        for name in HANDLED_FILES {
            let path = dir.join(name);
            match std::fs::read(&path) {
                Ok(bytes) => files.push((path, bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Load {
                        file: path,
                        line: 0,
                        column: 0,
                        why: e.to_string(),
                    });
                }
            }
        }
        let pairs: Vec<(&Path, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_path(), b.as_slice()))
            .collect();
        Profiles::from_files(&pairs)
    }
}

/// The profiles in force, replaced whole by a load; readers take an
/// `Arc` and keep using it while a load swaps in the next.
#[derive(Debug, Default)]
pub struct SharedProfiles(RwLock<Arc<Profiles>>);

impl SharedProfiles {
    /// The profiles in force now.
    #[must_use]
    pub fn current(&self) -> Arc<Profiles> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Puts `p` in force.
    pub fn replace(&self, p: Profiles) {
        let p = Arc::new(p);
        match self.0.write() {
            Ok(mut g) => *g = p,
            Err(poisoned) => *poisoned.into_inner() = p,
        }
    }
}
