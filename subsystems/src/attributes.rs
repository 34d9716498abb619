//! AttributeS (Attributes.csv). (Skeleton: the helper that owns this module replaces it.)

use std::path::Path;

use crate::Error;

/// The profiles of one tariff plan.
#[derive(Debug, Clone, Default)]
pub struct AttributeProfiles {}

impl AttributeProfiles {
    /// Loads the file's records.
    ///
    /// # Errors
    /// [`Error::Load`] naming the line.
    pub fn load(records: &rating::csv::Records, file: &Path) -> Result<AttributeProfiles, Error> {
        let _ = (records, file);
        Ok(AttributeProfiles {})
    }
}

/// What [`AttributeProfiles::process`] is asked.
#[derive(Debug, Clone, Default)]
pub struct AttrArgs {
    /// The context (`*sessions`, `*chargers`, `*cdrs`, `simpleauth`...;
    /// `*any` profiles match every context). v0.10's `Context` or
    /// `APIOpts.*context`.
    pub context: String,
    /// Only these profiles (v0.10's `AttributeIDs`,
    /// `APIOpts.*attributeIDs`); empty: every profile.
    pub profile_ids: Vec<String>,
    /// How many passes (`*processRuns`, at least 1).
    pub process_runs: usize,
}

/// What [`AttributeProfiles::process`] answers: CGRateS's
/// `AttrSProcessEventReply`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttrReply {
    /// The profiles applied, in order.
    pub matched_profiles: Vec<String>,
    /// The fields changed (`*req.Password`).
    pub altered_fields: Vec<String>,
    /// The event after the substitutions.
    pub event: crate::Event,
}

impl AttributeProfiles {
    /// Applies the matching profiles to `ev`. Inline profile IDs
    /// (`*constant:*req.RequestType:*none`, as Chargers.csv writes them)
    /// are applied as they read.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no profile matched (CGRateS's NOT_FOUND),
    /// a filter or substitution error.
    pub fn process(
        &self,
        ctx: &crate::FilterCtx<'_>,
        ev: crate::Event,
        args: &AttrArgs,
    ) -> Result<AttrReply, Error> {
        let _ = (ctx, args);
        Ok(AttrReply {
            event: ev,
            ..AttrReply::default()
        })
    }
}
