//! An in-memory spool that answers the engine's record requests: the reference behaviour a
//! persistent store must match, and the spool of tests and simulations.

use crate::engine::{Output, StoreUpdate};
use crate::model::ids::{CampaignId, RecordId};
use crate::model::record::{RecordStatus, SpoolRecord};
use crate::rules::ordering::order_key;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// Records by id; due records are offered in the core's dial order.
#[derive(Debug, Clone, Default)]
pub struct MemorySpool {
    /// Every record, by id, as last persisted.
    pub records: BTreeMap<RecordId, SpoolRecord>,
}

impl MemorySpool {
    /// Adds (or replaces) a record.
    pub fn insert(&mut self, rec: SpoolRecord) {
        self.records.insert(rec.id.clone(), rec);
    }

    /// Pending records of `campaign` due at `now`, in dial order, at most `limit`.
    pub fn due(&self, campaign: &CampaignId, now: DateTime<Utc>, limit: u32) -> Vec<SpoolRecord> {
        let mut due: Vec<&SpoolRecord> = self
            .records
            .values()
            .filter(|r| &r.campaign == campaign && r.status == RecordStatus::Pending)
            .filter(|r| r.next_eligible_at.is_none_or(|t| t <= now))
            .collect();
        due.sort_by_cached_key(|r| order_key(r));
        due.into_iter().take(limit as usize).cloned().collect()
    }

    /// Applies a store update from the engine.
    pub fn apply(&mut self, update: &StoreUpdate) {
        if let StoreUpdate::Record(r) = update {
            self.records.insert(r.id.clone(), SpoolRecord::clone(r));
        }
    }

    /// Answers a [`Output::NeedRecords`] (or applies a [`Output::Store`]); returns the records
    /// input to feed back, if any.
    pub fn serve(
        &mut self,
        output: &Output,
        now: DateTime<Utc>,
    ) -> Option<crate::engine::InputKind> {
        match output {
            Output::NeedRecords { campaign, limit } => {
                Some(crate::engine::InputKind::RecordsOffered {
                    campaign: campaign.clone(),
                    records: self
                        .due(campaign, now, *limit)
                        .into_iter()
                        .map(std::sync::Arc::new)
                        .collect(),
                })
            }
            Output::Store(u) => {
                self.apply(u);
                None
            }
            _ => None,
        }
    }
}
