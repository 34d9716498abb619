//! The runtime state of a subsystem (resource usages, threshold hits)
//! kept in step with the profiles in force and saved in the store.
//!
//! [`Kept::run`] takes the profiles in force; the first time it restores
//! what the store saved, and when a load has put other profiles in force
//! it forgets the items whose profile is gone (the others keep their
//! counters). A change the closure reports is saved as one meta blob,
//! outside the engine's lock and never older over newer (versions).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use subsystems::Profiles;

use crate::serve::methods::State;

/// An engine whose state [`Kept`] restores, prunes and saves.
pub(crate) trait Engine: Default + Send {
    /// What is saved.
    type Saved: Serialize + DeserializeOwned;
    /// What survives a restart, under `profiles`.
    fn saved(&self, profiles: &Profiles) -> Self::Saved;
    /// Puts back what [`Engine::saved`] gave.
    fn restore(&mut self, saved: Self::Saved);
    /// Forgets the items whose profile is gone.
    fn retain(&mut self, profiles: &Profiles);
}

impl Engine for subsystems::resources::ResourceEngine {
    type Saved = Vec<subsystems::resources::Resource>;
    fn saved(&self, profiles: &Profiles) -> Self::Saved {
        self.stored(&profiles.resources)
    }
    fn restore(&mut self, saved: Self::Saved) {
        subsystems::resources::ResourceEngine::restore(self, saved);
    }
    fn retain(&mut self, profiles: &Profiles) {
        self.retain_profiles(&profiles.resources);
    }
}

impl Engine for subsystems::thresholds::ThresholdEngine {
    type Saved = Vec<subsystems::thresholds::Threshold>;
    fn saved(&self, _profiles: &Profiles) -> Self::Saved {
        self.snapshot()
    }
    fn restore(&mut self, saved: Self::Saved) {
        subsystems::thresholds::ThresholdEngine::restore(self, saved);
    }
    fn retain(&mut self, profiles: &Profiles) {
        self.retain_profiles(&profiles.thresholds);
    }
}

struct Inner<E> {
    engine: E,
    seen: Option<Arc<Profiles>>,
    restored: bool,
    version: u64,
}

/// An engine behind a lock, restored from and saved to the meta blob
/// `name`.
pub(crate) struct Kept<E> {
    name: &'static str,
    inner: Mutex<Inner<E>>,
    saved: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<E: Engine> Kept<E> {
    /// An empty engine saved under `name`.
    pub(crate) fn new(name: &'static str) -> Self {
        Kept {
            name,
            inner: Mutex::new(Inner {
                engine: E::default(),
                seen: None,
                restored: false,
                version: 0,
            }),
            saved: Mutex::new(0),
        }
    }

    /// Runs `f` on the engine with the profiles in force; when `f` says
    /// (second value) that what survives a restart changed, saves it
    /// before returning.
    pub(crate) fn run<T>(
        &self,
        state: &State,
        f: impl FnOnce(&mut E, &Profiles) -> (T, bool),
    ) -> T {
        let (out, snapshot) = {
            let mut g = lock(&self.inner);
            let profiles = state.profiles.current();
            if !g.restored {
                g.restored = true;
                match state.meta.get_meta(self.name) {
                    Ok(Some(bytes)) => match serde_json::from_slice::<E::Saved>(&bytes) {
                        Ok(s) => g.engine.restore(s),
                        Err(e) => crate::serve::say(&format!(
                            "serve: the saved {} do not read, starting empty: {e}",
                            self.name
                        )),
                    },
                    Ok(None) => {}
                    Err(e) => crate::serve::say(&format!(
                        "serve: cannot read the saved {}: {e}",
                        self.name
                    )),
                }
            }
            let changed_profiles = g.seen.as_ref().is_some_and(|s| !Arc::ptr_eq(s, &profiles));
            if changed_profiles {
                g.engine.retain(&profiles);
            }
            if changed_profiles || g.seen.is_none() {
                g.seen = Some(Arc::clone(&profiles));
            }
            let (out, changed) = f(&mut g.engine, &profiles);
            let snapshot = if changed {
                g.version += 1;
                serde_json::to_vec(&g.engine.saved(&profiles))
                    .ok()
                    .map(|b| (g.version, b))
            } else {
                None
            };
            (out, snapshot)
        };
        if let Some((v, bytes)) = snapshot {
            let mut s = lock(&self.saved);
            if *s < v {
                if let Err(e) = state.meta.put_meta(self.name, &bytes) {
                    crate::serve::say(&format!("serve: cannot save the {}: {e}", self.name));
                }
                *s = v;
            }
        }
        out
    }
}
