//! Campaigns the engine runs and their hoppers.

use super::calls::CallCounts;
use super::config::EngineConfig;
use super::coordinator::{Engine, Floor};
use crate::engine::output::{Event, Output, StoreUpdate};
use crate::engine::reject::RejectReason;
use crate::model::campaign::Campaign;
use crate::model::ids::{CampaignId, RecordId};
use crate::model::record::{
    FinishReason, ManualStart, NumberState, RecordStatus, SpoolRecord, TaskKind,
};
use crate::pacing::{self, AbandonLedger, Pacer};
use crate::rules::eligibility::{self, SkipReason};
use crate::rules::{next_step, ordering, schedule};
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap as HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

pub(super) struct CampaignRun {
    pub(super) campaign: Campaign,
    pub(super) pacer: Box<dyn Pacer>,
    /// Records offered by the store, in dial order (taken mostly from the front). Shared with
    /// the store (`Arc`): a record is copied only when the engine changes it.
    pub(super) hopper: VecDeque<Arc<SpoolRecord>>,
    /// Whether the hopper may hold manual (click-to-call) tasks, which bypass pacing.
    pub(super) has_manual: bool,
    /// Records with a call in flight.
    pub(super) in_flight: HashMap<RecordId, Arc<SpoolRecord>>,
    /// Records whose call ended, for dispositions; oldest first.
    pub(super) recent: VecDeque<RecordId>,
    pub(super) recent_records: HashMap<RecordId, Arc<SpoolRecord>>,
    pub(super) ledger: AbandonLedger,
    pub(super) request_outstanding: bool,
    pub(super) last_request: Option<DateTime<Utc>>,
    pub(super) stopped: bool,
    /// Last skip code reported per record, so a waiting record is reported once.
    pub(super) skip_noted: HashMap<RecordId, &'static str>,
    /// Handles of the agents whose home is this campaign.
    pub(super) home_agents: Vec<usize>,
    /// Its calls in flight, counted (changed only by [`Calls`](super::calls::Calls)).
    pub(super) calls: CallCounts,
    /// Open stretches of the calling window, per zone (cleared when the campaign changes).
    pub(super) windows: eligibility::WindowCache,
    /// The campaign's routing, shared by its Originate intents.
    pub(super) routing: std::sync::Arc<crate::model::campaign::Routing>,
}

pub(super) fn is_manual(r: &SpoolRecord) -> bool {
    r.task.as_ref().is_some_and(|t| t.kind == TaskKind::Manual)
}

/// A manual dial to place at once (not offered in preview first).
pub(super) fn is_manual_now(r: &SpoolRecord) -> bool {
    r.task
        .as_ref()
        .is_some_and(|t| t.kind == TaskKind::Manual && t.call.start == ManualStart::DialNow)
}

/// A manual dial its agent previews before anything is dialed.
pub(super) fn is_manual_preview(r: &SpoolRecord) -> bool {
    r.task
        .as_ref()
        .is_some_and(|t| t.kind == TaskKind::Manual && t.call.start == ManualStart::Preview)
}

impl Engine {
    pub(super) fn add_campaign(
        &mut self,
        now: DateTime<Utc>,
        c: Campaign,
    ) -> Result<(), RejectReason> {
        c.validate().map_err(|e| RejectReason::InvalidCampaign {
            field: e.field.to_owned(),
            problem: e.problem,
        })?;
        if let Some(run) = self.campaigns.get_mut(&c.id) {
            if run.campaign.dial_mode != c.dial_mode {
                run.pacer = pacing::for_mode(&c.dial_mode);
            }
            run.routing = std::sync::Arc::new(c.routing.clone());
            // A changed cap, window or zone applies from now on; the books so far are kept.
            run.ledger.set_policy(c.abandon.clone(), c.tz());
            run.campaign = c;
            run.windows.clear();
            run.stopped = false;
            self.recompute_homes();
            return Ok(());
        }
        let anchor = c
            .start_date
            .or(Some(now.with_timezone(&c.tz()).date_naive()));
        let routing = std::sync::Arc::new(c.routing.clone());
        let run = CampaignRun {
            pacer: pacing::for_mode(&c.dial_mode),
            ledger: AbandonLedger::new(c.abandon.clone(), c.tz(), anchor),
            campaign: c,
            hopper: VecDeque::new(),
            has_manual: false,
            in_flight: HashMap::default(),
            recent: VecDeque::new(),
            recent_records: HashMap::default(),
            request_outstanding: false,
            last_request: None,
            stopped: false,
            skip_noted: HashMap::default(),
            home_agents: Vec::new(),
            calls: CallCounts::default(),
            windows: eligibility::WindowCache::default(),
            routing,
        };
        self.campaigns.insert(run.campaign.id.clone(), run);
        self.recompute_homes();
        Ok(())
    }

    pub(super) fn records_offered(
        &mut self,
        now: DateTime<Utc>,
        campaign: &CampaignId,
        records: Vec<Arc<SpoolRecord>>,
    ) -> Result<(), RejectReason> {
        let previewed = self.floor.records_in_preview();
        let run = self
            .campaigns
            .get_mut(campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
        run.request_outstanding = false;
        // Shared: records move between the hopper, the calls in flight and the recent ones as
        // pointers, and one the engine does not change is never copied.
        let mut hopper: Vec<Arc<SpoolRecord>> = records
            .into_iter()
            .map(|mut r| {
                if r.has_duplicate_numbers() {
                    Arc::make_mut(&mut r).merge_duplicate_numbers();
                }
                r
            })
            .filter(|r| &r.campaign == campaign)
            .filter(|r| !run.in_flight.contains_key(&r.id) && !previewed.contains(&r.id))
            .collect();
        // A record an agent is looking at stays as the engine holds it: the agent's dial or
        // skip finds it in the hopper (a refill used to drop it, and the agent's answer then
        // found nothing).
        if !previewed.is_empty() {
            hopper.extend(
                std::mem::take(&mut run.hopper)
                    .into_iter()
                    .filter(|r| previewed.contains(&r.id)),
            );
        }
        // Every record ends or has a future: a range callback that is over no longer holds
        // its record back.
        for r in &mut hopper {
            // Only a record with a schedule can change (copied then, if shared).
            if r.schedule.is_some() && schedule::drop_if_over(Arc::make_mut(r), &run.campaign, now)
            {
                self.floor
                    .out
                    .push_back(Output::Store(StoreUpdate::Record(r.clone())));
            }
        }
        // The store offers its records in this order already: checking that is cheaper than
        // a sort with cached keys (a stable sort leaves a sorted list as it is).
        if !hopper.is_sorted_by_key(|r| ordering::order_key(r)) {
            hopper.sort_by_cached_key(|r| ordering::order_key(r));
        }
        hopper.dedup_by(|a, b| a.id == b.id);
        run.has_manual = hopper.iter().any(|r| is_manual(r));
        run.hopper = hopper.into();
        Ok(())
    }
}

impl CampaignRun {
    /// Puts a record whose call was never placed back in the hopper, in its place, as if
    /// never dialed.
    pub(super) fn return_to_hopper(&mut self, rec: Arc<SpoolRecord>) {
        let key = ordering::order_key(&rec);
        let at = self
            .hopper
            .partition_point(|r| ordering::order_key(r) <= key);
        self.has_manual |= is_manual(&rec);
        self.hopper.insert(at, rec);
    }

    /// Keeps a record whose call ended for late dispositions: the newest `cap` are kept (none
    /// when `cap` is 0, for a backend that sends no dispositions: then nothing is copied, not
    /// even the pointer, whose copy is an atomic increment).
    pub(super) fn remember_recent(&mut self, rec: &Arc<SpoolRecord>, cap: usize) {
        if cap == 0 {
            return;
        }
        self.recent.push_back(rec.id.clone());
        self.recent_records.insert(rec.id.clone(), Arc::clone(rec));
        while self.recent.len() > cap {
            if let Some(old) = self.recent.pop_front() {
                self.recent_records.remove(&old);
            }
        }
    }

    /// Drops a record from the ones kept for late dispositions.
    pub(super) fn forget_recent(&mut self, record: &RecordId) {
        if self.recent_records.remove(record).is_some() {
            self.recent.retain(|r| r != record);
        }
    }
}

impl Floor {
    /// Asks the store for the campaign's due records when its hopper runs low (at once, but
    /// not twice within a second) or the last request is older than the refill interval.
    pub(super) fn request_records_if_needed(
        &mut self,
        cfg: &EngineConfig,
        run: &mut CampaignRun,
        now: DateTime<Utc>,
    ) {
        // Records held per campaign: at least the configured minimum, or four per line.
        let target = cfg.hopper_min.max(run.campaign.max_lines.saturating_mul(4));
        let interval = Duration::seconds(i64::from(cfg.refill_interval_s));
        if run.stopped || run.request_outstanding {
            return;
        }
        let low = (run.hopper.len() as u32) < target / 2;
        let stale = run.last_request.is_none_or(|t| now - t >= interval);
        // A low hopper is refilled at once, but an empty list is not asked again every event.
        let recently = run
            .last_request
            .is_some_and(|t| now - t < Duration::seconds(1));
        if stale || (low && !recently) {
            run.request_outstanding = true;
            run.last_request = Some(now);
            self.out.push_back(Output::NeedRecords {
                campaign: run.campaign.id.clone(),
                limit: target,
            });
        }
    }

    /// Takes a record out of the hopper for a reason that will not pass soon, and tells the
    /// store when to offer it again (or that it is finished).
    pub(super) fn skip(
        &mut self,
        run: &mut CampaignRun,
        now: DateTime<Utc>,
        mut rec: Arc<SpoolRecord>,
        reason: SkipReason,
    ) {
        // Every record ends or has a future: a range callback that ended while its record
        // waited in the hopper no longer holds it back (the rule the store's offer applies).
        if matches!(reason, SkipReason::OutsideCallingWindow { .. })
            && rec.schedule.is_some()
            && schedule::drop_if_over(Arc::make_mut(&mut rec), &run.campaign, now)
        {
            self.out
                .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
            run.return_to_hopper(rec);
            return;
        }
        run.skip_noted.remove(&rec.id);
        self.out.push_back(Output::Event(Event::Skipped {
            at: now,
            campaign: run.campaign.id.clone(),
            record: rec.id.clone(),
            reason: reason.clone(),
        }));
        let before = Arc::clone(&rec);
        {
            // Copied here, as `before` shares it: the old one stays to compare.
            let rec = Arc::make_mut(&mut rec);
            match &reason {
                SkipReason::NotPending => return,
                SkipReason::Blacklisted { .. } => {
                    if let Some(slot) = rec.numbers.get_mut(rec.current) {
                        slot.state = NumberState::Blacklisted;
                    }
                    if rec.schedule.as_ref().is_some_and(|s| s.number.is_some()) {
                        rec.schedule = None;
                    }
                    next_step::advance_if_current_unusable(rec);
                }
                SkipReason::AttemptCapReached => {
                    if let Some(slot) = rec.numbers.get_mut(rec.current) {
                        if slot.state == NumberState::Active {
                            slot.state = NumberState::Spent;
                        }
                    }
                    if rec.attempts >= run.campaign.max_attempts_per_record {
                        rec.status = RecordStatus::Finished {
                            reason: FinishReason::AttemptsExhausted,
                        };
                    } else {
                        next_step::advance_if_current_unusable(rec);
                    }
                }
                SkipReason::NoDialableNumber => {
                    rec.status = RecordStatus::Finished {
                        reason: FinishReason::NoDialableNumber,
                    };
                }
                SkipReason::UnknownTimeZone { .. } => {
                    // Reported again daily until someone fixes the zone: never dialed meanwhile.
                    rec.next_eligible_at = Some(now + Duration::days(1));
                }
                other => {
                    rec.next_eligible_at =
                        Some(other.retry_at().unwrap_or(now + Duration::days(1)));
                }
            }
            if let RecordStatus::Finished { reason } = rec.status {
                rec.next_eligible_at = None;
                self.out.course(|| Event::RecordFinished {
                    at: now,
                    record: rec.id.clone(),
                    reason,
                });
            }
        }
        if rec != before {
            self.out.push_back(Output::Store(StoreUpdate::Record(rec)));
        }
    }
}
