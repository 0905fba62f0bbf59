//! What happens to a call, report by report: answered, linked, refused, hung up, lost; the
//! outcome of each attempt and where its record goes next.

use super::agent::AgentState;
use super::calls::{secs, CallPhase};
use super::coordinator::Engine;
use super::timers::Timer;
use crate::engine::input::{CallEvent, RefusalCause};
use crate::engine::output::{Event, Output, Progress, StoreUpdate};
use crate::engine::reject::RejectReason;
use crate::model::ids::{AgentId, CallId};
use crate::model::outcome::{AnswerKind, CallOutcome, FailureClass};
use crate::model::record::RecordStatus;
use crate::pacing::PacingEvent;
use crate::rules::next_step;
use chrono::{DateTime, Duration, Utc};

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

impl Engine {
    /// Applies a report about call `id`.
    pub(super) fn call_event(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        event: CallEvent,
    ) -> Result<(), RejectReason> {
        if self.floor.calls.is_held(id) {
            // A call of unknown fate from an earlier run: only its end matters (its line).
            if matches!(
                event,
                CallEvent::HungUp { .. } | CallEvent::Lost | CallEvent::OriginateRefused { .. }
            ) {
                self.release_held_line(id);
            }
            return Ok(());
        }
        let call = self
            .floor
            .calls
            .get(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        // Copied only when the engine reports a call's course (the simulator does not): each
        // copy of a campaign id is an atomic increment, and its drop an atomic decrement.
        let ids = self
            .floor
            .out
            .reports_course()
            .then(|| (call.campaign.clone(), call.record.clone()));
        let progress = |p: Progress| {
            ids.as_ref().map(|(campaign, record)| {
                move || Event::Progress {
                    at: now,
                    campaign: campaign.clone(),
                    call: id,
                    record: record.clone(),
                    progress: p,
                }
            })
        };
        match event {
            CallEvent::OriginateAccepted => self.floor.out.course_if(progress(Progress::Dialing)),
            CallEvent::Ringing => self.floor.out.course_if(progress(Progress::Ringing)),
            CallEvent::Queued => {
                self.floor.calls.queued(id, now);
                self.floor.out.course_if(progress(Progress::OnQueue));
            }
            CallEvent::Answered { kind } => self.call_answered(now, id, kind)?,
            CallEvent::Linked { agent } => {
                if matches!(call.phase(), CallPhase::Linked { .. }) {
                    return Ok(());
                }
                self.call_linked(now, id, &agent)?;
                // Asked first so the agent's id is not copied for nothing.
                if self.floor.out.reports_course() {
                    self.floor.out.course_if(progress(Progress::Success {
                        agent: agent.clone(),
                    }));
                }
                self.floor.out.course(|| Event::AgentLinked {
                    at: now,
                    agent,
                    call: id,
                });
            }
            CallEvent::OriginateRefused { cause } => match &cause {
                RefusalCause::Pbx { .. } => {
                    self.end_call(now, id, CallEnd::NotPlaced { hold_back: false })?;
                    let retry_at = now + Duration::seconds(i64::from(self.cfg.pbx_retry_s));
                    self.set_telephony_down(now, cause.to_string(), Some(retry_at));
                }
                RefusalCause::Local { .. } | RefusalCause::AgentUnreachable { .. } => {
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
            CallEvent::Held | CallEvent::Resumed => {
                let held = matches!(event, CallEvent::Held);
                let CallPhase::Linked { on_hold, .. } = call.phase() else {
                    // A hold before the link (the PBX playing music to a queued caller, say)
                    // is the queue's business, not a hold by an agent.
                    return Ok(());
                };
                if on_hold.is_some() == held {
                    return Ok(()); // a repeated report
                }
                self.floor.calls.set_on_hold(id, held.then_some(now))?;
                self.floor.out.course_if(progress(if held {
                    Progress::OnHold
                } else {
                    Progress::OffHold
                }));
            }
            CallEvent::Lost => self.end_call(now, id, CallEnd::Lost)?,
        }
        Ok(())
    }

    /// The call was answered (the first report counts): booked, and a machine hung up on if
    /// the campaign says so.
    fn call_answered(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        kind: AnswerKind,
    ) -> Result<(), RejectReason> {
        let call = self
            .floor
            .calls
            .get(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let Some(phase) = call.on_answer(now, kind) else {
            return Ok(());
        };
        let dial_s = secs(now - call.placed_at);
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(call.campaign.clone()))?;
        self.floor
            .calls
            .set_phase(id, phase, &mut run.calls, &mut self.floor.timers);
        if run.book_answer(now, dial_s, kind, &mut self.floor.out) {
            self.floor.out.push_back(Output::Hangup { call: id });
        }
        Ok(())
    }

    /// The call was linked to `agent`: a wait past the threshold is booked as abandoned, the
    /// agent is on the call, and an agent it was reserved for (someone else) is freed.
    fn call_linked(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        agent: &AgentId,
    ) -> Result<(), RejectReason> {
        let call = self
            .floor
            .calls
            .get(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let answered = call.phase().answered();
        let wait_s = answered.map_or(0.0, |(at, _)| secs(now - at));
        // Only a wait not yet booked can turn into an abandon here.
        let waited_since = match call.phase() {
            CallPhase::Waiting { since, .. } => Some(*since),
            _ => None,
        };
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(call.campaign.clone()))?;
        self.floor.calls.set_phase(
            id,
            CallPhase::Linked {
                agent: agent.clone(),
                at: now,
                answered,
                on_hold: None,
            },
            &mut run.calls,
            &mut self.floor.timers,
        );
        match waited_since {
            // Connected, but later than the rule allows: it counts as abandoned.
            Some(since) if wait_s > run.campaign.abandon.threshold_s => {
                run.book_abandon(since, now, wait_s, &mut self.floor.out)
            }
            _ => run.pacer.observe(now, &PacingEvent::Linked { wait_s }),
        }
        if let Some(a) = self.floor.agents.get_mut(agent) {
            a.state = AgentState::OnCall { call: id };
            a.set_since(now);
            a.plan = std::mem::take(&mut a.plan).call_linked();
        }
        // If the call was reserved for someone else, free them.
        self.release_reservation(id, Some(agent), now);
        Ok(())
    }

    /// Frees the agent call `call` was reserved for, unless it is `except` (the agent that
    /// took it): it never talked, so no wrap-up.
    pub(super) fn release_reservation(
        &mut self,
        call: CallId,
        except: Option<&AgentId>,
        now: DateTime<Utc>,
    ) {
        let Some(reserved) = self
            .floor
            .calls
            .get(&call)
            .and_then(|c| c.reserved_agent.clone())
        else {
            return;
        };
        if Some(&reserved) == except {
            return;
        }
        if self
            .floor
            .agents
            .get(&reserved)
            .is_some_and(|a| a.state == (AgentState::Reserved { call }))
        {
            self.after_call_over(now, &reserved);
        }
    }

    /// A live answer waited past its deadline without an agent: booked as abandoned, and
    /// still waiting (an agent may yet take it).
    pub(super) fn wait_expired(&mut self, now: DateTime<Utc>, id: CallId) {
        let Some(call) = self.floor.calls.get(&id) else {
            return;
        };
        let (since, kind) = match call.phase() {
            CallPhase::Waiting { since, kind, .. } => (*since, *kind),
            _ => return,
        };
        let Some(run) = self.campaigns.get_mut(&call.campaign) else {
            return;
        };
        self.floor.calls.set_phase(
            id,
            CallPhase::Abandoned { since, kind },
            &mut run.calls,
            &mut self.floor.timers,
        );
        run.book_abandon(since, now, secs(now - since), &mut self.floor.out);
    }

    /// A call of unknown fate from an earlier run ended (or is taken to have): its line is
    /// free again.
    pub(super) fn release_held_line(&mut self, id: CallId) {
        if let Some((campaign, until)) = self.floor.calls.unhold(id) {
            self.floor.timers.cancel(until, Timer::HeldLineEnds(id));
            if let Some(run) = self.campaigns.get_mut(&campaign) {
                run.calls.release_held();
            }
        }
    }

    pub(super) fn end_call(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        end: CallEnd,
    ) -> Result<(), RejectReason> {
        self.release_reservation(id, None, now);
        let campaign = &self
            .floor
            .calls
            .get(&id)
            .ok_or(RejectReason::UnknownCall(id))?
            .campaign;
        let run = self
            .campaigns
            .get_mut(campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
        let call = self
            .floor
            .calls
            .end(id, &mut run.calls, &mut self.floor.timers)
            .ok_or(RejectReason::UnknownCall(id))?;
        // When the call really ended: a backend that learned of the end late says when.
        let ended = match end {
            CallEnd::HungUp {
                ended_at: Some(t), ..
            } => t.clamp(call.placed_at, now),
            _ => now,
        };
        if let CallPhase::Linked { agent, .. } = call.phase() {
            self.call_over_for_agent(now, agent, id);
        }
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(call.campaign.clone()))?;
        let c = &run.campaign;
        let (outcome, progress) = match end {
            // Never placed: not the callee's, and not the pacer's business.
            CallEnd::NotPlaced { .. } => (CallOutcome::NotPlaced, Progress::NotPlaced),
            // Nobody knows how long a lost call lasted, answered or not.
            CallEnd::Lost => (CallOutcome::Unknown, Progress::Unknown),
            CallEnd::HungUp { failure, .. } => {
                if let CallPhase::Linked { at: linked_at, .. } = call.phase() {
                    let talk_s = secs(ended - *linked_at).max(0.0);
                    run.pacer.observe(now, &PacingEvent::TalkEnded { talk_s });
                    let talk = talk_s.round() as u32;
                    if talk < c.short_call_s {
                        (CallOutcome::ShortCall { talk_s: talk }, Progress::ShortCall)
                    } else {
                        (CallOutcome::Connected { talk_s: talk }, Progress::Hangup)
                    }
                } else if let CallPhase::Machine { .. } = call.phase() {
                    (CallOutcome::Machine, Progress::Machine)
                } else if let CallPhase::Waiting { since, .. } = call.phase() {
                    // Hung up waiting: abandoned (booked now, the deadline had not passed).
                    run.book_abandon(
                        *since,
                        now,
                        secs(ended - *since).max(0.0),
                        &mut self.floor.out,
                    );
                    (CallOutcome::Abandoned, Progress::Abandoned)
                } else if let CallPhase::Abandoned { .. } = call.phase() {
                    // Booked when its deadline passed.
                    (CallOutcome::Abandoned, Progress::Abandoned)
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
        if let CallPhase::Linked { agent, .. } = call.phase() {
            // ECCP agentunlinked: the conversation's length and whether it was a short call.
            let (talk_s, short_call) = match outcome {
                CallOutcome::Connected { talk_s } => (Some(talk_s), false),
                CallOutcome::ShortCall { talk_s } => (Some(talk_s), true),
                _ => (None, false),
            };
            self.floor.out.course(|| Event::AgentUnlinked {
                at: now,
                agent: agent.clone(),
                call: id,
                talk_s,
                short_call,
            });
        }
        self.floor.out.course(|| Event::Progress {
            at: now,
            campaign: call.campaign.clone(),
            call: id,
            record: call.record.clone(),
            progress,
        });
        self.floor
            .out
            .push_back(Output::Store(StoreUpdate::AttemptEnded {
                call: id,
                record: call.record.clone(),
                outcome,
                at: ended,
            }));
        let Some(mut rec) = run.in_flight.remove(&call.record) else {
            return Ok(());
        };
        // Copied here, as the store shares the record in flight.
        next_step::finish_attempt(
            std::sync::Arc::make_mut(&mut rec),
            &run.campaign,
            outcome,
            ended,
        );
        if let CallEnd::NotPlaced { hold_back } = end {
            if hold_back {
                let until = now + Duration::seconds(i64::from(run.campaign.retry.congestion_s));
                let rec = std::sync::Arc::make_mut(&mut rec);
                rec.next_eligible_at = Some(rec.next_eligible_at.map_or(until, |t| t.max(until)));
            }
            self.floor
                .out
                .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
            run.return_to_hopper(rec);
            return Ok(());
        }
        if let RecordStatus::Finished { reason } = rec.status {
            self.floor.out.course(|| Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            });
        }
        run.remember_recent(&rec, self.cfg.recent_records);
        self.floor
            .out
            .push_back(Output::Store(StoreUpdate::Record(rec)));
        Ok(())
    }
}
