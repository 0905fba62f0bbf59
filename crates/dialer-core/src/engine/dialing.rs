//! The dialing decision: what to dial now, for each campaign.

use super::agent::{AgentState, Roster};
use super::calls::Call;
use super::campaigns::{is_manual, is_manual_now, is_manual_preview, CampaignRun};
use super::config::EngineConfig;
use super::coordinator::{Engine, Floor};
use super::telephony::Telephony;
use crate::engine::output::{
    DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate,
};
use crate::engine::reject::{InputName, RejectReason};
use crate::model::campaign::DialMode;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::record::{DialOrder, SpoolRecord, TaskKind};
use crate::model::variable::VariableName;
use crate::pacing::{abandonment, AgentLoad, AgentPhase, BusyDetail, PacingEvent, PacingSnapshot};
use crate::rules::eligibility::{self, EligibilityContext, SkipReason};
use crate::rules::{next_step, ordering};
use chrono::{DateTime, Duration, Utc};

/// Values that cannot break a protocol line.
pub(super) fn is_safe_value(value: &str) -> bool {
    !value.chars().any(|c| matches!(c, '\r' | '\n' | '\0'))
}

impl Engine {
    /// Decides what to dial at `now`: timers due fire first, then each campaign in turn
    /// lets go of agents no longer needed, dials (manual tasks, then previews or pacing) and
    /// asks the store for records if its hopper runs low.
    pub(super) fn drive(&mut self, now: DateTime<Utc>) {
        self.fire_timers(now);
        let dialing = self.floor.telephony == Telephony::Up;
        for run in self.campaigns.values_mut() {
            self.floor.release_leavers(run, now);
            if !run.stopped && dialing {
                self.floor.dial_manual_tasks(&self.cfg, run, now);
                if run.campaign.dial_mode == DialMode::Preview {
                    self.floor.offer_previews(run, now);
                } else {
                    self.floor.pace(&self.cfg, run, now);
                }
            }
            // After dialing, which may have drawn the hopper down.
            self.floor.request_records_if_needed(&self.cfg, run, now);
        }
    }
}

impl Floor {
    /// Whether `rec` may be dialed now for its campaign (`run`), and how.
    pub(super) fn check(
        &self,
        run: &CampaignRun,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        self.check_for(run, rec, now, None)
    }

    /// [`Floor::check`], counting `also_free` as a free agent of the campaign (an agent
    /// answering a preview offer).
    pub(super) fn check_for(
        &self,
        run: &CampaignRun,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
        also_free: Option<&AgentId>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        let cid = &run.campaign.id;
        let in_flight = |n: &str| self.calls.number_in_flight(n);
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

    /// What the pacer sees of the campaign at `now`: counts from the campaign's [`Roster`],
    /// and the busy agents the pacer reads ([`Pacer::busy_detail`]).
    ///
    /// [`Pacer::busy_detail`]: crate::pacing::Pacer::busy_detail
    fn snapshot(&mut self, run: &mut CampaignRun, now: DateTime<Utc>) -> PacingSnapshot {
        // Reused between snapshots: one allocation for the engine's life, not one per input.
        let mut busy = std::mem::take(&mut self.busy_scratch);
        busy.clear();
        let now_ms = now.timestamp_millis();
        let elapsed_s = |since_ms: i64| (now_ms - since_ms) as f64 / 1000.0;
        let (roster, agents) = self.agents.roster_and_agents(&run.campaign.id);
        let empty = Roster::default();
        let roster = roster.unwrap_or(&empty);
        match run.pacer.busy_detail() {
            BusyDetail::WrapUpOnly => busy.extend(roster.wrapping.iter().map(|&i| AgentLoad {
                phase: AgentPhase::WrapUp,
                elapsed_s: elapsed_s(agents[i].since_ms),
            })),
            BusyDetail::All => {
                for &i in &run.home_agents {
                    let a = &agents[i];
                    let phase = match a.state {
                        AgentState::OnCall { .. } => AgentPhase::Talking,
                        AgentState::WrapUp { .. } => AgentPhase::WrapUp,
                        _ => continue,
                    };
                    busy.push(AgentLoad {
                        phase,
                        elapsed_s: elapsed_s(a.since_ms),
                    });
                }
            }
        }
        PacingSnapshot {
            now,
            agents_logged_in: roster.logged_in,
            agents_free: roster.free,
            agents_talking: roster.talking,
            agents_wrap_up: roster.wrapping.len() as u32,
            agents_busy: busy,
            dials_in_flight: run.calls.dialing(),
            calls_waiting: run.calls.waiting(),
            lines_free: run.campaign.max_lines.saturating_sub(run.calls.lines()),
            records_ready: run.hopper.len() as u32,
            abandon: run.ledger.status(now),
            abandon_threshold_s: run.campaign.abandon.threshold_s,
        }
    }

    /// Asks the campaign's pacer how many to dial, holds that to the abandonment guard, and
    /// dials that many from the hopper.
    fn pace(&mut self, cfg: &EngineConfig, run: &mut CampaignRun, now: DateTime<Utc>) {
        if run.hopper.is_empty() || run.calls.lines() >= run.campaign.max_lines {
            return;
        }
        let snap = self.snapshot(run, now);
        let wanted = run.pacer.dials_to_place(&snap).min(snap.lines_free);
        let mut status = snap.abandon;
        let horizon = Duration::seconds(i64::from(run.campaign.ring_timeout_s))
            + Duration::seconds(run.campaign.abandon.threshold_s.ceil() as i64);
        if run.ledger.period_ends_within(now, horizon) {
            // Calls placed now may be answered in the next period, whose budget starts at zero.
            status.budget = status.budget.min(0.0);
        }
        self.busy_scratch = snap.agents_busy;
        let allowed = if cfg.abandon_guard {
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
        // The pacer's name is read only by `Event::Dialed`: not asked for when unreported.
        let pacer = if self.out.reports_course() {
            run.pacer.name()
        } else {
            String::new()
        };
        self.place_from_hopper(cfg, run, now, allowed, &pacer, |_| true);
    }

    /// Dials up to `n` eligible records of the hopper, in order, that pass `filter`.
    fn place_from_hopper(
        &mut self,
        cfg: &EngineConfig,
        run: &mut CampaignRun,
        now: DateTime<Utc>,
        n: u32,
        pacer: &str,
        filter: impl Fn(&SpoolRecord) -> bool,
    ) -> u32 {
        let mut placed = 0;
        let mut i = 0;
        while placed < n {
            let Some(rec) = run.hopper.get(i) else {
                break;
            };
            if !filter(rec) {
                i += 1;
                continue;
            }
            match self.check(run, rec, now) {
                Ok(plan) => {
                    let Some(rec) = run.hopper.remove(i) else {
                        break;
                    };
                    let class = if is_manual(&rec) {
                        DueClassCode::Manual
                    } else {
                        DueClassCode::from(ordering::due_class(&rec))
                    };
                    let reason = DialReason {
                        class,
                        pacer: pacer.to_owned(),
                        wanted: n,
                    };
                    self.dial(cfg, run, now, rec, plan, reason);
                    placed += 1;
                }
                Err(reason) => {
                    let transient = matches!(
                        reason,
                        SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }
                    );
                    if transient {
                        let id = rec.id.clone();
                        if run.skip_noted.insert(id.clone(), reason.code()) != Some(reason.code()) {
                            self.out.push_back(Output::Event(Event::Skipped {
                                at: now,
                                campaign: run.campaign.id.clone(),
                                record: id,
                                reason,
                            }));
                        }
                        i += 1;
                    } else if let Some(rec) = run.hopper.remove(i) {
                        self.skip(run, now, rec, reason);
                    }
                }
            }
        }
        placed
    }

    /// Places a call on `rec` (taken out of the hopper) as `plan` says: the attempt begins,
    /// the agent it is for (if any) is reserved, and the Originate goes out.
    pub(super) fn dial(
        &mut self,
        cfg: &EngineConfig,
        run: &mut CampaignRun,
        now: DateTime<Utc>,
        mut rec: std::sync::Arc<SpoolRecord>,
        plan: eligibility::DialPlan,
        reason: DialReason,
    ) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        run.skip_noted.remove(&rec.id);
        // The one copy of a dial, if the store shares the record; the store is then handed
        // this copy (`Arc`), and the engine keeps it while the call is in flight.
        next_step::begin_attempt(std::sync::Arc::make_mut(&mut rec), &run.campaign, call, now);
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
        // A manual dial's own caller id, prefix and leg order (checked when stored; checked
        // again here, as every value bound for the wire is).
        let options = rec
            .task
            .as_ref()
            .filter(|t| t.kind == TaskKind::Manual)
            .map(|t| &t.call);
        let caller_id = options
            .and_then(|o| o.caller_id.as_deref())
            .filter(|v| is_safe_value(v))
            .unwrap_or(&c.caller_id)
            .to_owned();
        let dial_string = match options.and_then(|o| o.dial_prefix.as_deref()) {
            Some(prefix) if is_safe_value(prefix) => {
                c.routing.dial_string_with_prefix(&plan.number, prefix)
            }
            _ => c.routing.dial_string(&plan.number),
        };
        let order = match options.map(|o| o.order) {
            Some(DialOrder::AgentFirst) if plan.agent.is_some() => DialOrder::AgentFirst,
            _ => DialOrder::CalleeFirst,
        };
        // AMD only while the abandonment budget can absorb the false positives of every call
        // that could still bring a machine verdict (with the guard off, as peers run, always).
        // An agent-first call has its agent on the line before the callee answers: no AMD.
        let amd = order == DialOrder::CalleeFirst
            && (!cfg.abandon_guard || run.ledger.amd_affordable(now, run.calls.amd_unanswered()));
        let intent = OriginateIntent {
            call,
            campaign: c.id.clone(),
            record: rec.id.clone(),
            number: plan.number.clone(),
            dial_string,
            caller_id,
            ring_timeout_s: c.ring_timeout_s,
            agent: plan.agent.clone(),
            order,
            variables,
            routing: run.routing.clone(),
            amd,
        };
        run.pacer.observe(now, &PacingEvent::DialPlaced);
        if let Some(a) = &plan.agent {
            if let Some(agent) = self.agents.get_mut(a) {
                agent.state = AgentState::Reserved { call };
                agent.set_since(now);
            }
        }
        let threshold_ms = (run.campaign.abandon.threshold_s * 1000.0).ceil() as i64;
        self.calls.place(
            call,
            Call::placed(
                run.campaign.id.clone(),
                rec.id.clone(),
                plan.number.clone(),
                plan.agent.clone(),
                now,
                Duration::milliseconds(threshold_ms),
                amd,
            ),
            &mut run.calls,
        );
        self.out
            .push_back(Output::Store(StoreUpdate::AttemptStarted {
                call,
                campaign: run.campaign.id.clone(),
                record: rec.id.clone(),
                number: plan.number.clone(),
                agent: plan.agent.clone(),
                at: now,
            }));
        self.out
            .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
        self.out.course(|| Event::Dialed {
            at: now,
            campaign: run.campaign.id.clone(),
            record: rec.id.clone(),
            call,
            number: plan.number.e164().to_owned(),
            reason,
        });
        self.out.push_back(Output::Originate(Box::new(intent)));
        self.out.course(|| Event::Progress {
            at: now,
            campaign: run.campaign.id.clone(),
            call,
            record: rec.id.clone(),
            progress: Progress::Placing,
        });
        run.in_flight.insert(rec.id.clone(), rec);
    }

    /// Manual (click-to-call) tasks go out at once for their agent, outside pacing but
    /// within the line limit and every compliance rule.
    fn dial_manual_tasks(&mut self, cfg: &EngineConfig, run: &mut CampaignRun, now: DateTime<Utc>) {
        if !run.has_manual {
            return;
        }
        if !run.hopper.iter().any(|r| is_manual(r)) {
            run.has_manual = false;
            return;
        }
        self.offer_manual_previews(run, now);
        let lines = run.campaign.max_lines.saturating_sub(run.calls.lines());
        if lines == 0 {
            return;
        }
        self.place_from_hopper(cfg, run, now, lines, "manual", is_manual_now);
    }

    /// Manual dials asked with a preview are offered to their agent once it is free: the
    /// agent sees the record and dials it ([`crate::Command::PreviewDial`]) or drops it
    /// ([`crate::Command::PreviewSkip`]). Nothing is dialed meanwhile; every compliance rule
    /// is checked at the offer and again at the dial.
    fn offer_manual_previews(&mut self, run: &mut CampaignRun, now: DateTime<Utc>) {
        if !run.hopper.iter().any(|r| is_manual_preview(r)) {
            return;
        }
        let offered = self.records_in_preview();
        let cid = run.campaign.id.clone();
        let mut i = 0;
        while let Some(rec) = run.hopper.get(i) {
            let agent = rec.task.as_ref().and_then(|t| t.agent.clone());
            let Some(agent) = agent.filter(|_| is_manual_preview(rec)) else {
                i += 1;
                continue;
            };
            if offered.contains(&rec.id) || !self.agent_free_for(&agent, &cid) {
                i += 1;
                continue;
            }
            match self.check(run, rec, now) {
                Ok(_) => {
                    let record = rec.id.clone();
                    self.offer_preview(&cid, agent, record, now);
                    i += 1;
                }
                Err(SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }) => i += 1,
                Err(reason) => {
                    if let Some(rec) = run.hopper.remove(i) {
                        self.skip(run, now, rec, reason);
                    }
                }
            }
        }
    }

    /// Offers `record` to `agent` (preview mode, or a manual dial asked with a preview): the
    /// agent looks at it until it dials or skips it.
    fn offer_preview(
        &mut self,
        campaign: &CampaignId,
        agent: AgentId,
        record: RecordId,
        now: DateTime<Utc>,
    ) {
        if let Some(a) = self.agents.get_mut(&agent) {
            a.state = AgentState::Previewing {
                campaign: campaign.clone(),
                record: record.clone(),
            };
            a.set_since(now);
        }
        self.out.push_back(Output::Event(Event::PreviewOffered {
            at: now,
            agent,
            record,
        }));
    }

    /// Preview mode: each free agent is offered the next eligible record.
    fn offer_previews(&mut self, run: &mut CampaignRun, now: DateTime<Utc>) {
        let cid = run.campaign.id.clone();
        let free: Vec<AgentId> = self
            .agents
            .values()
            .filter(|a| a.state == AgentState::Ready && a.home.as_ref() == Some(&cid))
            .map(|a| a.id.clone())
            .collect();
        let offered = self.records_in_preview();
        for agent in free {
            let mut i = 0;
            while let Some(rec) = run.hopper.get(i) {
                // Manual dials are their own agent's (`dial_manual_tasks`).
                if offered.contains(&rec.id)
                    || is_manual(rec)
                    || rec.owner_agent.as_ref().is_some_and(|o| o != &agent)
                {
                    i += 1;
                    continue;
                }
                // Check as if the agent were free to take it; it is.
                match self.check(run, rec, now) {
                    Ok(_) => {
                        let record = rec.id.clone();
                        self.offer_preview(&cid, agent.clone(), record, now);
                        break;
                    }
                    Err(SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }) => {
                        i += 1
                    }
                    Err(reason) => {
                        if let Some(rec) = run.hopper.remove(i) {
                            self.skip(run, now, rec, reason);
                        }
                    }
                }
            }
        }
    }
}
