//! Calls in flight: their states and every call transition.

use crate::engine::input::{CallEvent, RefusalCause};
use crate::engine::output::{Event, Output, Progress, StoreUpdate};
use crate::engine::reject::RejectReason;
use crate::model::campaign::MachinePolicy;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, CallOutcome, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::RecordStatus;
use crate::pacing::PacingEvent;
use crate::rules::{next_step, ordering};
use chrono::{DateTime, Duration, Utc};

use super::agents::*;
use super::campaigns::*;
use super::coordinator::*;
use super::timers::*;

/// How a call ended, as far as the engine's bookkeeping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallEnd {
    HungUp {
        failure: Option<FailureClass>,
        ended_at: Option<DateTime<Utc>>,
    },
    Lost,
    /// Never placed, not the callee's fault; `hold_back`: keep the record back by the
    /// congestion delay (a local refusal that would otherwise loop).
    NotPlaced {
        hold_back: bool,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Call {
    pub(super) campaign: CampaignId,
    pub(super) record: RecordId,
    pub(super) number: PhoneNumber,
    pub(super) reserved_agent: Option<AgentId>,
    pub(super) placed_at: DateTime<Utc>,
    pub(super) answered: Option<(DateTime<Utc>, AnswerKind)>,
    /// When the backend reported it waiting in the queue.
    pub(super) queued: Option<DateTime<Utc>>,
    pub(super) linked: Option<(AgentId, DateTime<Utc>)>,
    pub(super) abandon_counted: bool,
    /// A live answer not linked within this long counts as abandoned.
    pub(super) abandon_threshold: Duration,
}

/// How a call counts for pacing: (dialing, waiting). Calls reserved for an agent are covered
/// by that agent and count as neither.
pub(super) fn pacing_class(c: &Call) -> (bool, bool) {
    if c.reserved_agent.is_some() {
        return (false, false);
    }
    (c.answered.is_none(), c.waiting_since().is_some())
}

pub(super) fn recount(run: &mut CampaignRun, before: (bool, bool), after: (bool, bool)) {
    run.dialing = (run.dialing + u32::from(after.0)).saturating_sub(u32::from(before.0));
    run.waiting = (run.waiting + u32::from(after.1)).saturating_sub(u32::from(before.1));
}

impl Call {
    /// When this call becomes an abandon if nobody takes it.
    pub(super) fn abandon_deadline(&self) -> Option<DateTime<Utc>> {
        if self.abandon_counted {
            return None;
        }
        self.waiting_since().map(|at| at + self.abandon_threshold)
    }

    pub(super) fn is_live(&self) -> bool {
        matches!(
            self.answered,
            Some((_, AnswerKind::Human | AnswerKind::Unknown))
        )
    }
    pub(super) fn waiting_since(&self) -> Option<DateTime<Utc>> {
        match (self.answered, &self.linked) {
            (Some((at, _)), None) if self.is_live() => Some(at),
            _ => None,
        }
    }
}

/// A callee's E.164 digits as a number: no allocation per call. A country code never starts
/// with 0 and a number has at most 23 digits, so distinct valid numbers get distinct keys
/// (malformed ones could only collide, which holds back a dial, never adds one).
pub(super) fn number_key(e164: &str) -> u128 {
    e164.bytes().filter(u8::is_ascii_digit).fold(0u128, |k, b| {
        k.wrapping_mul(10).wrapping_add(u128::from(b - b'0'))
    })
}

pub(super) fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

impl Engine {
    // ----- calls -----

    pub(super) fn call_event(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        event: CallEvent,
    ) -> Result<(), RejectReason> {
        let Some(call) = self.calls.get(&id) else {
            return Err(RejectReason::UnknownCall(id));
        };
        let before = pacing_class(call);
        let deadline_before = call.abandon_deadline();
        let cid = call.campaign.clone();
        let result = self.call_event_inner(now, id, &cid, event);
        let after = self.calls.get(&id).map(pacing_class).unwrap_or_default();
        let deadline_after = self.calls.get(&id).and_then(Call::abandon_deadline);
        if deadline_before != deadline_after {
            if let Some(d) = deadline_before {
                self.timers.remove(&(d, Timer::Abandon(id)));
            }
            if let Some(d) = deadline_after {
                self.timers.insert((d, Timer::Abandon(id)));
            }
        }
        if let Some(run) = self.campaigns.get_mut(&cid) {
            recount(run, before, after);
        }
        result
    }

    pub(super) fn call_event_inner(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        campaign: &CampaignId,
        event: CallEvent,
    ) -> Result<(), RejectReason> {
        let call = self
            .calls
            .get_mut(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let record = call.record.clone();
        let progress = |p: Progress| {
            Output::Event(Event::Progress {
                at: now,
                campaign: campaign.clone(),
                call: id,
                record: record.clone(),
                progress: p,
            })
        };
        match event {
            CallEvent::OriginateAccepted => self.out.push_back(progress(Progress::Dialing)),
            CallEvent::Ringing => self.out.push_back(progress(Progress::Ringing)),
            CallEvent::Queued => {
                call.queued.get_or_insert(now);
                self.out.push_back(progress(Progress::OnQueue));
            }
            CallEvent::Answered { kind } => {
                if call.answered.is_some() {
                    return Ok(());
                }
                call.answered = Some((now, kind));
                let dial_s = secs(now - call.placed_at);
                let live = kind != AnswerKind::Machine;
                let run = self
                    .campaigns
                    .get_mut(campaign)
                    .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
                run.pacer
                    .observe(now, &PacingEvent::DialResolved { dial_s, live });
                if live {
                    run.ledger.live_answer(now);
                } else if run.campaign.machine == MachinePolicy::HangUp {
                    // Possibly a person hung up on: the false-positive estimate counts it.
                    run.ledger.machine_answer(now);
                    self.out.push_back(Output::Hangup { call: id });
                }
            }
            CallEvent::Linked { agent } => {
                if call.linked.is_some() {
                    return Ok(());
                }
                call.linked = Some((agent.clone(), now));
                let wait_s = call.answered.map_or(0.0, |(at, _)| secs(now - at));
                let late = call.is_live() && !call.abandon_counted;
                let answered_at = call.answered.map(|a| a.0);
                let run = self
                    .campaigns
                    .get_mut(campaign)
                    .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
                if late && wait_s > run.campaign.abandon.threshold_s {
                    // Connected, but later than the rule allows: it counts as abandoned.
                    run.ledger.abandon(answered_at.unwrap_or(now), now);
                    run.pacer.observe(now, &PacingEvent::Abandoned { wait_s });
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.abandon_counted = true;
                    }
                } else {
                    run.pacer.observe(now, &PacingEvent::Linked { wait_s });
                }
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.state = AgentState::OnCall { call: id };
                    a.set_since(now);
                    // A Ready kept for "when the call ends" belonged to an earlier call (one
                    // whose end was lost, or the reservation before this link): this call
                    // gets its own wrap-up. Found by the swarm, seed 158.
                    a.then = match std::mem::take(&mut a.then) {
                        Then::Ready => Then::WrapUp,
                        Then::Leave(d) => Then::WrapUpThenLeave(d),
                        other => other,
                    };
                }
                // If the call was reserved for someone else, free them.
                self.release_reservation(id, Some(&agent), now);
                self.out.push_back(progress(Progress::Success {
                    agent: agent.clone(),
                }));
                self.out.push_back(Output::Event(Event::AgentLinked {
                    at: now,
                    agent,
                    call: id,
                }));
            }
            CallEvent::OriginateRefused { cause } => match &cause {
                RefusalCause::Pbx { .. } => {
                    self.end_call(now, id, CallEnd::NotPlaced { hold_back: false })?;
                    let retry_at = now + Duration::seconds(i64::from(self.cfg.pbx_retry_s));
                    self.set_telephony_down(now, cause.to_string(), Some(retry_at));
                }
                RefusalCause::Local { .. } => {
                    self.end_call(now, id, CallEnd::NotPlaced { hold_back: true })?
                }
                RefusalCause::Callee { class, .. } => self.end_call(
                    now,
                    id,
                    CallEnd::HungUp {
                        failure: Some(*class),
                        ended_at: None,
                    },
                )?,
            },
            CallEvent::HungUp { failure, ended_at } => {
                self.end_call(now, id, CallEnd::HungUp { failure, ended_at })?
            }
            CallEvent::Lost => self.end_call(now, id, CallEnd::Lost)?,
        }
        Ok(())
    }

    pub(super) fn release_reservation(
        &mut self,
        call: CallId,
        except: Option<&AgentId>,
        now: DateTime<Utc>,
    ) {
        let Some(reserved) = self.calls.get(&call).and_then(|c| c.reserved_agent.clone()) else {
            return;
        };
        if Some(&reserved) == except {
            return;
        }
        if self
            .agents
            .get(&reserved)
            .is_some_and(|a| a.state == (AgentState::Reserved { call }))
        {
            // Never talked: no wrap-up.
            self.after_call_over(now, &reserved);
        }
    }

    pub(super) fn end_call(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        end: CallEnd,
    ) -> Result<(), RejectReason> {
        self.release_reservation(id, None, now);
        let call = self
            .calls
            .remove(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let key = number_key(call.number.e164());
        if self.numbers_in_flight.get(&key) == Some(&id) {
            self.numbers_in_flight.remove(&key);
        }
        // When the call really ended: a backend that learned of the end late says when.
        let ended = match end {
            CallEnd::HungUp {
                ended_at: Some(t), ..
            } => t.clamp(call.placed_at, now),
            _ => now,
        };
        if let Some((agent, _)) = &call.linked {
            self.out.push_back(Output::Event(Event::AgentUnlinked {
                at: now,
                agent: agent.clone(),
                call: id,
            }));
            self.call_over_for_agent(now, agent, id);
        }
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(call.campaign.clone()))?;
        run.calls.remove(&id);
        let c = &run.campaign;
        let (outcome, progress) = match end {
            // Never placed: not the callee's, and not the pacer's business.
            CallEnd::NotPlaced { .. } => (CallOutcome::NotPlaced, Progress::NotPlaced),
            // Nobody knows how long a lost call lasted, answered or not.
            CallEnd::Lost => (CallOutcome::Unknown, Progress::Unknown),
            CallEnd::HungUp { failure, .. } => {
                if let Some((_, linked_at)) = &call.linked {
                    let talk_s = secs(ended - *linked_at).max(0.0);
                    run.pacer.observe(now, &PacingEvent::TalkEnded { talk_s });
                    let talk = talk_s.round() as u32;
                    if talk < c.short_call_s {
                        (CallOutcome::ShortCall { talk_s: talk }, Progress::ShortCall)
                    } else {
                        (CallOutcome::Connected { talk_s: talk }, Progress::Hangup)
                    }
                } else if let Some((answered_at, kind)) = call.answered {
                    if kind == AnswerKind::Machine {
                        (CallOutcome::Machine, Progress::Machine)
                    } else {
                        if !call.abandon_counted {
                            let wait_s = secs(ended - answered_at).max(0.0);
                            run.ledger.abandon(answered_at, now);
                            run.pacer.observe(now, &PacingEvent::Abandoned { wait_s });
                        }
                        (CallOutcome::Abandoned, Progress::Abandoned)
                    }
                } else {
                    let class = failure.unwrap_or(FailureClass::NoAnswer);
                    run.pacer.observe(
                        now,
                        &PacingEvent::DialResolved {
                            dial_s: secs(ended - call.placed_at),
                            live: false,
                        },
                    );
                    let p = match class {
                        FailureClass::NoAnswer => Progress::NoAnswer,
                        other => Progress::Failure { class: other },
                    };
                    (CallOutcome::Failed { class }, p)
                }
            }
        };
        self.out.push_back(Output::Event(Event::Progress {
            at: now,
            campaign: call.campaign.clone(),
            call: id,
            record: call.record.clone(),
            progress,
        }));
        self.out.push_back(Output::Store(StoreUpdate::AttemptEnded {
            call: id,
            record: call.record.clone(),
            outcome,
            at: ended,
        }));
        let Some(mut rec) = run.in_flight.remove(&call.record) else {
            return Ok(());
        };
        next_step::finish_attempt(&mut rec, &run.campaign, outcome, ended);
        if let CallEnd::NotPlaced { hold_back } = end {
            if hold_back {
                let until = now + Duration::seconds(i64::from(run.campaign.retry.congestion_s));
                rec.next_eligible_at = Some(rec.next_eligible_at.map_or(until, |t| t.max(until)));
            }
            self.out
                .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
            // Back in the hopper, in its place, as if never dialed.
            let key = ordering::order_key(&rec);
            let at = run
                .hopper
                .partition_point(|r| ordering::order_key(r) <= key);
            run.has_manual |= is_manual(&rec);
            run.hopper.insert(at, rec);
            return Ok(());
        }
        if let RecordStatus::Finished { reason } = rec.status {
            self.out.push_back(Output::Event(Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            }));
        }
        self.out
            .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
        run.recent.push_back(rec.id.clone());
        run.recent_records.insert(rec.id.clone(), rec);
        while run.recent.len() > self.cfg.recent_records {
            if let Some(old) = run.recent.pop_front() {
                run.recent_records.remove(&old);
            }
        }
        Ok(())
    }
}
