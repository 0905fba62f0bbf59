//! Commands from operators and agents' desktops.

use super::agent::AgentState;
use super::coordinator::Engine;
use super::telephony::Telephony;
use super::timers::Timer;
use crate::engine::input::Command;
use crate::engine::output::{DialReason, DueClassCode, Event, Output, StoreUpdate};
use crate::engine::reject::RejectReason;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::record::{NumberState, RecordStatus, SpoolRecord};
use crate::rules::disposition;
use crate::rules::eligibility::{self};
use chrono::{DateTime, Duration, Utc};

/// The numbers a record may still dial: its active slots and a callback's own number.
pub(super) fn live_numbers(r: &SpoolRecord) -> impl Iterator<Item = &str> {
    r.numbers
        .iter()
        .filter(|s| s.state == NumberState::Active)
        .map(|s| s.number.e164())
        .chain(
            r.schedule
                .as_ref()
                .and_then(|s| s.number.as_ref())
                .map(|n| n.e164()),
        )
}

impl Engine {
    // ----- commands -----

    /// Asks the telephone system to hold a linked call's callee (`hold`) or to take it off
    /// hold. The state changes when the system reports it ([`crate::CallEvent::Held`]).
    fn hold(&mut self, call: CallId, hold: bool) -> Result<(), RejectReason> {
        if self.floor.calls.is_held(call) {
            return Err(RejectReason::CallNotLinked(call));
        }
        let c = self
            .floor
            .calls
            .get(&call)
            .ok_or(RejectReason::UnknownCall(call))?;
        let super::calls::CallPhase::Linked { on_hold, .. } = c.phase() else {
            return Err(RejectReason::CallNotLinked(call));
        };
        if on_hold.is_some() == hold {
            return Err(RejectReason::HoldState {
                call,
                on_hold: hold,
            });
        }
        self.floor.out.push_back(Output::Hold { call, hold });
        Ok(())
    }

    /// Applies a command. Every check comes first, then the change: a refused command
    /// changes nothing.
    pub(super) fn command(
        &mut self,
        now: DateTime<Utc>,
        command: Command,
    ) -> Result<(), RejectReason> {
        match command {
            Command::BlacklistAdd(entry) => {
                self.floor.blacklist.add(entry.clone());
                self.floor
                    .out
                    .push_back(Output::Store(StoreUpdate::BlacklistAdded(entry)));
                Ok(())
            }
            Command::BlacklistRemove { number, scope } => {
                self.floor.blacklist.remove(&number, &scope);
                self.floor
                    .out
                    .push_back(Output::Store(StoreUpdate::BlacklistRemoved {
                        number,
                        scope,
                    }));
                Ok(())
            }
            Command::Hangup { call } => {
                if !self.floor.calls.contains(&call) {
                    return Err(RejectReason::UnknownCall(call));
                }
                self.floor.out.push_back(Output::Hangup { call });
                Ok(())
            }
            Command::Hold { call } => self.hold(call, true),
            Command::Unhold { call } => self.hold(call, false),
            // The disposing agent is for the campaign log; the rules do not depend on it.
            Command::Dispose {
                agent: _,
                record,
                disposition: d,
            } => self.dispose(now, record, d),
            Command::PreviewDial { agent, record } => self.preview_dial(now, agent, record),
            Command::PreviewSkip { agent, record } => {
                let campaign = self.offered_preview(&agent, &record)?;
                self.floor.release_preview(&agent);
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or(RejectReason::UnknownCampaign(campaign))?;
                if let Some(pos) = run.hopper.iter().position(|r| r.id == record) {
                    if let Some(mut rec) = run.hopper.remove(pos) {
                        let manual_preview = super::campaigns::is_manual_preview(&rec);
                        let rec_mut = std::sync::Arc::make_mut(&mut rec);
                        if manual_preview {
                            // The agent declined its own manual dial: the dial is dropped,
                            // the record stays in the spool as it was.
                            rec_mut.task = None;
                        } else {
                            // Passed over: back of the queue for a while, so others get
                            // their turn.
                            rec_mut.next_eligible_at = Some(
                                now + Duration::seconds(i64::from(run.campaign.retry.no_answer_s)),
                            );
                        }
                        self.floor
                            .out
                            .push_back(Output::Store(StoreUpdate::Record(rec)));
                    }
                }
                Ok(())
            }
            Command::Forget { record } => self.forget(&record),
            Command::HoldLines {
                campaign,
                calls,
                until,
            } => {
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or(RejectReason::UnknownCampaign(campaign.clone()))?;
                for id in calls {
                    if until > now
                        && self
                            .floor
                            .calls
                            .hold(id, campaign.clone(), until, &mut run.calls)
                    {
                        self.floor.timers.set(until, Timer::HeldLineEnds(id));
                    }
                }
                Ok(())
            }
            Command::RestoreAbandonBooks { campaign, periods } => {
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or(RejectReason::UnknownCampaign(campaign.clone()))?;
                // The period grid starts at the campaign's start date, or else at the first
                // period an earlier run booked (not at the day of this restart).
                let anchor = run
                    .campaign
                    .start_date
                    .or_else(|| periods.iter().map(|p| p.start).min());
                run.ledger.restore(anchor, &periods);
                Ok(())
            }
        }
    }

    /// The campaign of the record an agent was offered in preview, if it is `record`.
    pub(super) fn offered_preview(
        &self,
        agent: &AgentId,
        record: &RecordId,
    ) -> Result<CampaignId, RejectReason> {
        let a = self
            .floor
            .agents
            .get(agent)
            .ok_or_else(|| RejectReason::UnknownAgent(agent.clone()))?;
        match &a.state {
            AgentState::Previewing {
                campaign,
                record: offered,
            } if offered == record => Ok(campaign.clone()),
            AgentState::Previewing {
                record: offered, ..
            } => Err(RejectReason::NotOffered {
                agent: agent.clone(),
                record: record.clone(),
                offered: Some(offered.clone()),
            }),
            _ => Err(RejectReason::NotOffered {
                agent: agent.clone(),
                record: record.clone(),
                offered: None,
            }),
        }
    }

    pub(super) fn preview_dial(
        &mut self,
        now: DateTime<Utc>,
        agent: AgentId,
        record: RecordId,
    ) -> Result<(), RejectReason> {
        let campaign = self.offered_preview(&agent, &record)?;
        if let Telephony::Down { reason, .. } = &self.floor.telephony {
            return Err(RejectReason::TelephonyDown {
                reason: reason.clone(),
            });
        }
        let run = self
            .campaigns
            .get_mut(&campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
        let pos = run
            .hopper
            .iter()
            .position(|r| r.id == record)
            .ok_or_else(|| RejectReason::UnknownRecord(record.clone()))?;
        // Checked as if the agent were free: it is, once it answers the offer.
        let plan = self
            .floor
            .check_for(run, &run.hopper[pos], now, Some(&agent))
            .map_err(|reason| RejectReason::NotEligible {
                record: record.clone(),
                reason,
            })?;
        let rec = run
            .hopper
            .remove(pos)
            .ok_or_else(|| RejectReason::UnknownRecord(record.clone()))?;
        self.floor.release_preview(&agent);
        let plan = eligibility::DialPlan {
            agent: Some(agent),
            ..plan
        };
        let reason = DialReason {
            class: DueClassCode::Preview,
            pacer: "preview".into(),
            wanted: 1,
        };
        self.floor.dial(&self.cfg, run, now, rec, plan, reason);
        Ok(())
    }

    /// Drops a record an operator removed from the spool. Nothing to do if the engine does
    /// not hold it; refused while a call on it is in flight.
    pub(super) fn forget(&mut self, record: &RecordId) -> Result<(), RejectReason> {
        if self
            .campaigns
            .values()
            .any(|run| run.in_flight.contains_key(record))
        {
            return Err(RejectReason::RecordInFlight(record.clone()));
        }
        let previewing: Vec<AgentId> = self
            .floor
            .agents
            .values()
            .filter(|a| matches!(&a.state, AgentState::Previewing { record: r, .. } if r == record))
            .map(|a| a.id.clone())
            .collect();
        for a in &previewing {
            self.floor.release_preview(a);
        }
        for run in self.campaigns.values_mut() {
            run.hopper.retain(|r| &r.id != record);
            run.forget_recent(record);
            run.skip_noted.remove(record);
        }
        Ok(())
    }

    pub(super) fn dispose(
        &mut self,
        now: DateTime<Utc>,
        record: RecordId,
        d: disposition::Disposition,
    ) -> Result<(), RejectReason> {
        // Find it without taking it: a refused disposition leaves it where it was.
        let mut held = None;
        for (cid, run) in &self.campaigns {
            if run.in_flight.contains_key(&record) {
                return Err(RejectReason::RecordInFlight(record));
            }
            if let Some(r) = run.recent_records.get(&record) {
                held = Some((cid.clone(), None, &**r));
                break;
            }
            if let Some(p) = run.hopper.iter().position(|r| r.id == record) {
                held = Some((cid.clone(), Some(p), &*run.hopper[p]));
                break;
            }
        }
        let (cid, hopper_pos, held) = held.ok_or(RejectReason::UnknownRecord(record.clone()))?;
        // A callback moved to another campaign follows that campaign's rules.
        let target = match &d {
            disposition::Disposition::Schedule {
                campaign: Some(other),
                ..
            }
            | disposition::Disposition::Reschedule {
                campaign: Some(other),
                ..
            } => other.clone(),
            _ => cid.clone(),
        };
        let camp = &self
            .campaigns
            .get(&target)
            .ok_or_else(|| RejectReason::UnknownCampaign(target.clone()))?
            .campaign;
        let before_numbers: Vec<String> = held
            .numbers
            .iter()
            .map(|s| s.number.e164().to_owned())
            .collect();
        let mut rec = held.clone();
        let effect = disposition::apply(&mut rec, camp, &d, now)?;
        if !rec.is_finished() {
            for number in live_numbers(&rec) {
                if let Some(other) = self.number_live_elsewhere(&rec.campaign, &rec.id, number) {
                    return Err(RejectReason::NumberLiveOnAnotherRecord {
                        number: number.to_owned(),
                        record: rec.id.clone(),
                        other,
                    });
                }
                let new = !before_numbers.iter().any(|n| n == number);
                if new && self.floor.blacklist.blocks(number, &rec.campaign, now) {
                    return Err(RejectReason::Blacklisted {
                        number: number.to_owned(),
                        record: rec.id.clone(),
                    });
                }
            }
        }
        // Every check passed: now the change.
        let run = self
            .campaigns
            .get_mut(&cid)
            .ok_or(RejectReason::UnknownCampaign(cid))?;
        match hopper_pos {
            Some(p) => {
                run.hopper.remove(p);
            }
            None => run.forget_recent(&record),
        }
        run.skip_noted.remove(&record);
        if let Some(entry) = effect.blacklist {
            self.floor.blacklist.add(entry.clone());
            self.floor
                .out
                .push_back(Output::Store(StoreUpdate::BlacklistAdded(entry)));
        }
        if let RecordStatus::Finished { reason } = rec.status {
            self.floor.out.course(|| Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            });
        }
        self.floor
            .out
            .push_back(Output::Store(StoreUpdate::Record(std::sync::Arc::new(rec))));
        Ok(())
    }

    /// Another live record of the campaign that could dial `e164` (held in the hopper, in
    /// flight, or just called and not finished), or a call in flight to it.
    pub(super) fn number_live_elsewhere(
        &self,
        cid: &CampaignId,
        record: &RecordId,
        e164: &str,
    ) -> Option<RecordId> {
        if let Some(call) = self.floor.calls.to_number(e164) {
            if let Some(c) = self.floor.calls.get(&call).filter(|c| &c.record != record) {
                return Some(c.record.clone());
            }
        }
        let run = self.campaigns.get(cid)?;
        let has = |r: &SpoolRecord| {
            &r.id != record && !r.is_finished() && live_numbers(r).any(|n| n == e164)
        };
        run.hopper
            .iter()
            .map(|r| &**r)
            .chain(run.in_flight.values().map(|r| &**r))
            .chain(run.recent_records.values().map(|r| &**r))
            .find(|r| has(r))
            .map(|r| r.id.clone())
    }
}
