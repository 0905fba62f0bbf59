//! The dialing decision: what to dial now, for each campaign.

use crate::engine::output::{
    DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate,
};
use crate::engine::reject::{InputName, RejectReason};
use crate::model::campaign::DialMode;
use crate::model::ids::{AgentId, CallId, CampaignId};
use crate::model::record::{SpoolRecord, TaskKind};
use crate::model::variable::VariableName;
use crate::pacing::{abandonment, AgentLoad, AgentPhase, PacingEvent, PacingSnapshot};
use crate::rules::eligibility::{self, EligibilityContext, SkipReason};
use crate::rules::{next_step, ordering};
use chrono::{DateTime, Duration, Utc};

use super::agents::*;
use super::calls::*;
use super::campaigns::*;
use super::coordinator::*;
use super::telephony::*;

/// Values that cannot break a protocol line.
pub(super) fn is_safe_value(value: &str) -> bool {
    !value.chars().any(|c| matches!(c, '\r' | '\n' | '\0'))
}

impl Engine {
    // ----- deciding -----

    pub(super) fn check(
        &self,
        cid: &CampaignId,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        self.check_for(cid, rec, now, None)
    }

    /// [`Engine::check`], counting `also_free` as a free agent of the campaign (an agent
    /// answering a preview offer).
    pub(super) fn check_for(
        &self,
        cid: &CampaignId,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
        also_free: Option<&AgentId>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        let run = &self.campaigns[cid];
        let in_flight = |n: &str| self.numbers_in_flight.contains_key(&number_key(n));
        let free = |a: &AgentId| {
            self.agent_free_for(a, cid)
                || (Some(a) == also_free
                    && self
                        .agents
                        .get(a)
                        .is_some_and(|x| x.campaigns.contains(cid)))
        };
        let ctx = EligibilityContext {
            campaign: &run.campaign,
            blacklist: &self.blacklist,
            now,
            number_in_flight: &in_flight,
            agent_free: &free,
            windows: Some(&run.windows),
        };
        eligibility::check(rec, &ctx)
    }

    pub(super) fn drive(&mut self, now: DateTime<Utc>) {
        self.fire_timers(now);
        let dialing = self.telephony == Telephony::Up;
        let ids: Vec<CampaignId> = self.campaigns.keys().cloned().collect();
        for cid in &ids {
            self.release_leavers(now, cid);
            if !self.campaigns[cid].stopped && dialing {
                self.dial_manual_tasks(now, cid);
                if self.campaigns[cid].campaign.dial_mode == DialMode::Preview {
                    self.offer_previews(now, cid);
                } else {
                    self.pace(now, cid);
                }
            }
            // After dialing, which may have drawn the hopper down.
            self.request_records_if_needed(now, cid);
        }
    }

    pub(super) fn snapshot(&mut self, now: DateTime<Utc>, cid: &CampaignId) -> PacingSnapshot {
        let mut free = 0;
        let mut logged = 0;
        // Reused between snapshots: one allocation for the engine's life, not one per input.
        let mut busy = std::mem::take(&mut self.busy_scratch);
        busy.clear();
        let now_ms = now.timestamp_millis();
        let run = &self.campaigns[cid];
        for &i in &run.home_agents {
            let a = &self.agents.list[i];
            let phase = match a.state {
                AgentState::LoggedOut => continue,
                AgentState::Ready if a.leaving => None,
                AgentState::Ready => {
                    free += 1;
                    None
                }
                AgentState::OnCall { .. } => Some(AgentPhase::Talking),
                AgentState::WrapUp { .. } => Some(AgentPhase::WrapUp),
                AgentState::Reserved { .. }
                | AgentState::Previewing { .. }
                | AgentState::Paused { .. } => None,
            };
            if let Some(phase) = phase {
                busy.push(AgentLoad {
                    phase,
                    elapsed_s: (now_ms - a.since_ms) as f64 / 1000.0,
                });
            }
            logged += 1;
        }
        let in_flight = run.dialing;
        let waiting = run.waiting;
        #[cfg(debug_assertions)]
        {
            let mut slow = (0, 0);
            for c in run.calls.iter().filter_map(|id| self.calls.get(id)) {
                let (d, w) = pacing_class(c);
                slow.0 += u32::from(d);
                slow.1 += u32::from(w);
            }
            debug_assert_eq!(slow, (in_flight, waiting), "pacing counters drifted");
        }
        let lines_used = run.calls.len() as u32;
        let run = self
            .campaigns
            .get_mut(cid)
            .expect("iterating known campaigns");
        PacingSnapshot {
            now,
            agents_logged_in: logged,
            agents_free: free,
            agents_busy: busy,
            dials_in_flight: in_flight,
            calls_waiting: waiting,
            lines_free: run.campaign.max_lines.saturating_sub(lines_used),
            records_ready: run.hopper.len() as u32,
            abandon: run.ledger.status(now),
            abandon_threshold_s: run.campaign.abandon.threshold_s,
        }
    }

    pub(super) fn pace(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let run = &self.campaigns[cid];
        if run.hopper.is_empty() || run.calls.len() as u32 >= run.campaign.max_lines {
            return;
        }
        let snap = self.snapshot(now, cid);
        let guard_on = self.cfg.abandon_guard;
        let run = self
            .campaigns
            .get_mut(cid)
            .expect("iterating known campaigns");
        let wanted = run.pacer.dials_to_place(&snap).min(snap.lines_free);
        let mut status = snap.abandon;
        let horizon = Duration::seconds(i64::from(run.campaign.ring_timeout_s))
            + Duration::seconds(run.campaign.abandon.threshold_s.ceil() as i64);
        if run.ledger.period_ends_within(now, horizon) {
            // Calls placed now may be answered in the next period, whose budget starts at zero.
            status.budget = status.budget.min(0.0);
        }
        self.busy_scratch = snap.agents_busy;
        let allowed = if guard_on {
            abandonment::guard(
                wanted,
                snap.agents_free,
                snap.dials_in_flight,
                snap.calls_waiting,
                &status,
            )
        } else {
            wanted
        };
        if allowed == 0 {
            return;
        }
        let pacer = run.pacer.name();
        self.place_from_hopper(now, cid, allowed, &pacer, |_| true);
    }

    /// Dials up to `n` eligible records of the hopper, in order, that pass `filter`.
    pub(super) fn place_from_hopper(
        &mut self,
        now: DateTime<Utc>,
        cid: &CampaignId,
        n: u32,
        pacer: &str,
        filter: impl Fn(&SpoolRecord) -> bool,
    ) -> u32 {
        let mut placed = 0;
        let mut i = 0;
        while placed < n {
            let run = &self.campaigns[cid];
            if i >= run.hopper.len() {
                break;
            }
            if !filter(&run.hopper[i]) {
                i += 1;
                continue;
            }
            match self.check(cid, &self.campaigns[cid].hopper[i], now) {
                Ok(plan) => {
                    let rec = self.take_from_hopper(cid, i);
                    let class = DueClassCode::from(ordering::due_class(&rec));
                    let class = if rec
                        .task
                        .as_ref()
                        .is_some_and(|t| t.kind == TaskKind::Manual)
                    {
                        DueClassCode::Manual
                    } else {
                        class
                    };
                    let reason = DialReason {
                        class,
                        pacer: pacer.to_owned(),
                        wanted: n,
                    };
                    self.dial(now, cid, rec, plan, reason);
                    placed += 1;
                }
                Err(reason) => {
                    let transient = matches!(
                        reason,
                        SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }
                    );
                    if transient {
                        let run = self.campaigns.get_mut(cid).expect("known");
                        let id = run.hopper[i].id.clone();
                        if run.skip_noted.insert(id.clone(), reason.code()) != Some(reason.code()) {
                            self.out.push_back(Output::Event(Event::Skipped {
                                at: now,
                                campaign: cid.clone(),
                                record: id,
                                reason,
                            }));
                        }
                        i += 1;
                    } else {
                        let rec = self.take_from_hopper(cid, i);
                        self.skip(now, cid, rec, reason);
                    }
                }
            }
        }
        placed
    }

    pub(super) fn dial(
        &mut self,
        now: DateTime<Utc>,
        cid: &CampaignId,
        mut rec: Box<SpoolRecord>,
        plan: eligibility::DialPlan,
        reason: DialReason,
    ) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        let run = self.campaigns.get_mut(cid).expect("known");
        run.skip_noted.remove(&rec.id);
        next_step::begin_attempt(&mut rec, &run.campaign, call, now);
        let c = &run.campaign;
        let mut variables = Vec::with_capacity(rec.data.len());
        for (k, v) in &rec.data {
            if VariableName::parse(k).is_ok() && is_safe_value(v) {
                variables.push((k.clone(), v.clone()));
            } else {
                self.out.push_back(Output::Event(Event::Rejected {
                    at: now,
                    input: InputName::RecordData,
                    reason: RejectReason::UnsafeVariable {
                        record: rec.id.clone(),
                        name: k.clone(),
                    },
                }));
            }
        }
        let intent = OriginateIntent {
            call,
            campaign: cid.clone(),
            record: rec.id.clone(),
            number: plan.number.clone(),
            dial_string: c.routing.dial_string(&plan.number),
            caller_id: c.caller_id.clone(),
            ring_timeout_s: c.ring_timeout_s,
            agent: plan.agent.clone(),
            variables,
            routing: run.routing.clone(),
        };
        run.pacer.observe(now, &PacingEvent::DialPlaced);
        if let Some(a) = &plan.agent {
            if let Some(agent) = self.agents.get_mut(a) {
                agent.state = AgentState::Reserved { call };
                agent.set_since(now);
            }
        }
        self.numbers_in_flight
            .insert(number_key(plan.number.e164()), call);
        let run = self.campaigns.get_mut(cid).expect("known");
        let threshold_ms = (run.campaign.abandon.threshold_s * 1000.0).ceil() as i64;
        run.calls.insert(call);
        self.calls.insert(
            call,
            Call {
                campaign: cid.clone(),
                record: rec.id.clone(),
                number: plan.number.clone(),
                reserved_agent: plan.agent.clone(),
                placed_at: now,
                answered: None,
                queued: None,
                linked: None,
                abandon_counted: false,
                abandon_threshold: Duration::milliseconds(threshold_ms),
            },
        );
        if plan.agent.is_none() {
            self.campaigns.get_mut(cid).expect("known").dialing += 1;
        }
        self.out
            .push_back(Output::Store(StoreUpdate::AttemptStarted {
                call,
                campaign: cid.clone(),
                record: rec.id.clone(),
                number: plan.number.clone(),
                agent: plan.agent.clone(),
                at: now,
            }));
        self.out
            .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
        self.out.push_back(Output::Event(Event::Dialed {
            at: now,
            campaign: cid.clone(),
            record: rec.id.clone(),
            call,
            number: plan.number.e164().to_owned(),
            reason,
        }));
        self.out.push_back(Output::Originate(intent));
        self.out.push_back(Output::Event(Event::Progress {
            at: now,
            campaign: cid.clone(),
            call,
            record: rec.id.clone(),
            progress: Progress::Placing,
        }));
        let run = self.campaigns.get_mut(cid).expect("known");
        run.in_flight.insert(rec.id.clone(), rec);
    }

    /// Manual (click-to-call) tasks go out at once for their agent, outside pacing but
    /// within the line limit and every compliance rule.
    pub(super) fn dial_manual_tasks(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let run = &self.campaigns[cid];
        let used = run.calls.len() as u32;
        let lines = run.campaign.max_lines.saturating_sub(used);
        if lines == 0 || !run.has_manual {
            return;
        }
        if !run.hopper.iter().any(|r| is_manual(r)) {
            self.campaigns.get_mut(cid).expect("known").has_manual = false;
            return;
        }
        self.place_from_hopper(now, cid, lines, "manual", is_manual);
    }

    /// Preview mode: each free agent is offered the next eligible record.
    pub(super) fn offer_previews(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let free: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Ready && self.home_campaign(a) == Some(cid))
            .map(|(id, _)| id.clone())
            .collect();
        let offered = self.records_in_preview();
        for agent in free {
            let mut i = 0;
            loop {
                let run = &self.campaigns[cid];
                let Some(rec) = run.hopper.get(i) else { break };
                if offered.contains(&rec.id)
                    || rec.owner_agent.as_ref().is_some_and(|o| o != &agent)
                {
                    i += 1;
                    continue;
                }
                // Check as if the agent were free to take it; it is.
                match self.check(cid, rec, now) {
                    Ok(_) => {
                        let record = rec.id.clone();
                        if let Some(a) = self.agents.get_mut(&agent) {
                            a.state = AgentState::Previewing {
                                campaign: cid.clone(),
                                record: record.clone(),
                            };
                            a.set_since(now);
                        }
                        self.out.push_back(Output::Event(Event::PreviewOffered {
                            at: now,
                            agent: agent.clone(),
                            record,
                        }));
                        break;
                    }
                    Err(SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }) => {
                        i += 1
                    }
                    Err(reason) => {
                        let rec = self.take_from_hopper(cid, i);
                        self.skip(now, cid, rec, reason);
                    }
                }
            }
        }
    }
}
