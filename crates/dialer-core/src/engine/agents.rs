//! Agents: their states, what they do after a call, and every agent transition.

use super::agent::{AgentState, Departure, Plan, Watchdog};
use super::campaigns::CampaignRun;
use super::coordinator::{Engine, Floor};
use super::timers::{Timer, Timers};
use crate::engine::input::AgentEvent;
use crate::engine::output::{Event, Output};
use crate::engine::reject::RejectReason;
use crate::model::campaign::AfterCall;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::pacing::PacingEvent;
use chrono::{DateTime, Duration, Utc};

impl Engine {
    // ----- agents -----

    pub(super) fn agent_event(
        &mut self,
        now: DateTime<Utc>,
        id: AgentId,
        event: AgentEvent,
    ) -> Result<(), RejectReason> {
        if let AgentEvent::LoggedIn {
            campaigns,
            inactivity_timeout_s,
        } = &event
        {
            // Validated before anything changes: a login names only started campaigns.
            if let Some(unknown) = campaigns.iter().find(|c| !self.campaigns.contains_key(*c)) {
                return Err(RejectReason::UnknownCampaign(unknown.clone()));
            }
            if *inactivity_timeout_s == Some(0) {
                return Err(RejectReason::InvalidAgentTimeout { agent: id });
            }
            let a = self.floor.agents.get_or_insert(id.clone(), now);
            a.campaigns = campaigns.clone();
            let old = a.watchdog.take();
            a.watchdog = inactivity_timeout_s.map(|s| {
                let timeout = Duration::seconds(i64::from(s));
                Watchdog {
                    timeout,
                    deadline: now + timeout,
                }
            });
            rearm(&mut self.floor.timers, &id, old, a.watchdog);
            if a.plan.is_leaving() {
                a.plan = Plan::WrapUp;
            }
            if matches!(a.state, AgentState::LoggedOut) {
                a.state = AgentState::Ready;
                a.set_since(now);
            }
            self.recompute_homes();
            return Ok(());
        }
        let agent = self
            .floor
            .agents
            .get_mut(&id)
            .ok_or_else(|| RejectReason::UnknownAgent(id.clone()))?;
        let on_call = agent.on_call();
        let busy = agent.busy();
        match event {
            AgentEvent::LoggedIn { .. } => {}
            AgentEvent::Ping => {
                if agent.state == AgentState::LoggedOut {
                    return Err(RejectReason::AgentLoggedOut(id));
                }
                let old = agent.watchdog;
                if let Some(w) = &mut agent.watchdog {
                    w.deadline = now + w.timeout;
                }
                rearm(&mut self.floor.timers, &id, old, agent.watchdog);
            }
            AgentEvent::Ready => match agent.state {
                AgentState::LoggedOut => return Err(RejectReason::AgentLoggedOut(id)),
                // Ready before the call is over (the PBX reports the member free before the
                // caller's hang-up): ready when it ends, unless a departure was asked for.
                _ if on_call => {
                    agent.plan = std::mem::take(&mut agent.plan).ready_during_call();
                }
                AgentState::WrapUp { .. } => self.end_wrap_up(now, &id),
                AgentState::Ready if agent.plan.is_leaving() => {
                    // Back before the pause took effect: it simply stays.
                    agent.plan = Plan::WrapUp;
                }
                _ => {
                    agent.plan = Plan::WrapUp;
                    agent.state = AgentState::Ready;
                    agent.set_since(now);
                }
            },
            AgentEvent::Paused { reason } | AgentEvent::PauseAfterCall { reason } => {
                self.leave_or_plan(now, &id, busy, Departure::Pause(reason));
            }
            AgentEvent::LogoutAfterCall | AgentEvent::LoggedOut => {
                // The call (or its wrap-up) keeps the agent until it ends.
                self.leave_or_plan(now, &id, busy, Departure::Logout);
            }
            AgentEvent::WrapUp => {
                agent.state = AgentState::WrapUp { until: None };
                agent.set_since(now);
            }
        }
        Ok(())
    }

    /// An agent's inactivity timer ran out at `at`: unless the agent pinged, logged in anew
    /// or left since, it is logged out as if it had asked (after its call and wrap-up).
    pub(super) fn session_timed_out(
        &mut self,
        now: DateTime<Utc>,
        at: DateTime<Utc>,
        id: &AgentId,
    ) {
        let Some(agent) = self.floor.agents.get_mut(id) else {
            return;
        };
        let Some(w) = agent.watchdog.filter(|w| w.deadline == at) else {
            return;
        };
        agent.watchdog = None;
        if agent.state == AgentState::LoggedOut {
            return;
        }
        let busy = agent.busy();
        self.floor
            .out
            .push_back(Output::Event(Event::AgentTimedOut {
                at: now,
                agent: id.clone(),
                timeout_s: u32::try_from(w.timeout.num_seconds()).unwrap_or(u32::MAX),
            }));
        self.leave_or_plan(now, id, busy, Departure::Logout);
    }

    /// A departure asked for: planned for after the call (and wrap-up) if busy, else now.
    pub(super) fn leave_or_plan(
        &mut self,
        now: DateTime<Utc>,
        id: &AgentId,
        busy: bool,
        how: Departure,
    ) {
        let Some(agent) = self.floor.agents.get_mut(id) else {
            return;
        };
        if busy {
            agent.plan = std::mem::take(&mut agent.plan).depart_after_call(how);
        } else {
            self.leave(now, id, how);
        }
    }

    /// Ends an agent's wrap-up (its Ready, or its timed wrap-up ran out): the pacer learns
    /// how long it took, for the agent's own campaign, and the agent is ready or leaves.
    pub(super) fn end_wrap_up(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.floor.agents.get_mut(id) else {
            return;
        };
        if let AgentState::WrapUp { until: Some(t) } = agent.state {
            self.floor.timers.cancel(t, Timer::WrapUpEnds(id.clone()));
        }
        let wrap_s = (now.timestamp_millis() - agent.since_ms) as f64 / 1000.0;
        if let Some(run) = agent.home.as_ref().and_then(|c| self.campaigns.get_mut(c)) {
            run.pacer.observe(now, &PacingEvent::WrapUpEnded { wrap_s });
        }
        self.after_call_over(now, id);
    }

    /// The call and its wrap-up are over: ready, or the departure planned.
    pub(super) fn after_call_over(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.floor.agents.get_mut(id) else {
            return;
        };
        match std::mem::take(&mut agent.plan) {
            Plan::Leave { how, .. } | Plan::Leaving { how, .. } => self.floor.depart(now, id, how),
            Plan::WrapUp | Plan::Ready => {
                agent.state = AgentState::Ready;
                agent.set_since(now);
            }
        }
    }

    /// The agent's call ended: wrap-up as its campaign says, unless Ready already came.
    pub(super) fn call_over_for_agent(&mut self, now: DateTime<Utc>, id: &AgentId, call: CallId) {
        let Some(agent) = self.floor.agents.get_mut(id) else {
            return;
        };
        if agent.state != (AgentState::OnCall { call }) {
            return;
        }
        if !agent.plan.wraps_up() {
            agent.set_since(now);
            self.end_wrap_up(now, id);
            return;
        }
        let mode = agent
            .home
            .as_ref()
            .and_then(|c| self.campaigns.get(c))
            .map_or(AfterCall::Desktop, |r| r.campaign.after_call);
        let until = match mode {
            AfterCall::WrapUp { seconds } => Some(now + Duration::seconds(i64::from(seconds))),
            AfterCall::Desktop | AfterCall::PbxMember => None,
        };
        agent.state = AgentState::WrapUp { until };
        agent.set_since(now);
        if let Some(t) = until {
            self.floor.timers.set(t, Timer::WrapUpEnds(id.clone()));
        }
    }

    /// An idle agent asks to pause or log out. If the dials in flight of its campaign need it
    /// to stay within the abandonment budget, it leaves once they no longer do; otherwise now.
    pub(super) fn leave(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.floor.agents.get(id) else {
            return;
        };
        let home = match agent.state {
            AgentState::Ready => agent.home.as_ref().and_then(|c| self.campaigns.get_mut(c)),
            _ => None,
        };
        let needed = home.is_some_and(|run| self.floor.coverage_short(run, now, 1));
        if needed {
            if let Some(agent) = self.floor.agents.get_mut(id) {
                // A call it takes meanwhile still ends in wrap-up, then the departure.
                agent.plan = Plan::Leaving { how, wrap_up: true };
            }
        } else {
            self.floor.release_preview(id);
            self.floor.depart(now, id, how);
        }
    }

    /// Recomputes every agent's home campaign (its first running campaign, so an agent in
    /// several campaigns is never counted twice) and each campaign's agent list. Runs on
    /// logins and campaign changes only, so the per-input snapshot needs no lookups.
    pub(super) fn recompute_homes(&mut self) {
        for run in self.campaigns.values_mut() {
            run.home_agents.clear();
        }
        for (i, a) in self.floor.agents.iter_mut() {
            a.home = a
                .campaigns
                .iter()
                .find(|c| self.campaigns.get(*c).is_some_and(|r| !r.stopped))
                .cloned();
            if let Some(run) = a.home.as_ref().and_then(|h| self.campaigns.get_mut(h)) {
                run.home_agents.push(i);
            }
        }
    }
}

impl Floor {
    /// Applies a departure and reports it.
    pub(super) fn depart(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        agent.plan = Plan::WrapUp;
        agent.set_since(now);
        let paused = match how {
            Departure::Pause(reason) => {
                agent.state = AgentState::Paused {
                    reason: reason.clone(),
                };
                Some(reason)
            }
            Departure::Logout => {
                agent.state = AgentState::LoggedOut;
                None
            }
        };
        self.out.push_back(Output::Event(Event::AgentAway {
            at: now,
            agent: id.clone(),
            paused,
        }));
    }

    /// Whether the campaign's calls at risk would exceed its abandonment budget if `leavers`
    /// more free agents went away.
    pub(super) fn coverage_short(
        &mut self,
        run: &mut CampaignRun,
        now: DateTime<Utc>,
        leavers: u32,
    ) -> bool {
        let free = self.free_agents(run);
        // Pacers that never dial ahead promise no abandons: no budget is spent on departures.
        let allowance = if run.pacer.dials_ahead() {
            run.ledger.status(now).budget.max(0.0).floor() as u32
        } else {
            0
        };
        run.calls.dialing() + run.calls.waiting() > free.saturating_sub(leavers) + allowance
    }

    /// Ready agents of the campaign not on their way out.
    fn free_agents(&mut self, run: &CampaignRun) -> u32 {
        self.agents.roster(&run.campaign.id).map_or(0, |r| r.free)
    }

    /// Lets leaving agents of the campaign go once the dials they covered no longer need them.
    pub(super) fn release_leavers(&mut self, run: &mut CampaignRun, now: DateTime<Utc>) {
        // Counted: most decisions have nobody held back, and need not walk the agents.
        if self
            .agents
            .roster(&run.campaign.id)
            .is_none_or(|r| r.leaving_ready == 0)
        {
            return;
        }
        let leavers: Vec<(AgentId, Departure)> = run
            .home_agents
            .iter()
            .map(|&i| self.agents.at(i))
            .filter(|a| a.state == AgentState::Ready)
            .filter_map(|a| match &a.plan {
                Plan::Leaving { how, .. } => Some((a.id.clone(), how.clone())),
                _ => None,
            })
            .collect();
        if leavers.is_empty() || self.coverage_short(run, now, 0) {
            return;
        }
        for (id, how) in leavers {
            self.depart(now, &id, how);
        }
    }

    /// Records currently offered to agents in preview mode.
    pub(super) fn records_in_preview(&self) -> Vec<RecordId> {
        self.agents
            .values()
            .filter_map(|a| match &a.state {
                AgentState::Previewing { record, .. } => Some(record.clone()),
                _ => None,
            })
            .collect()
    }

    /// An agent looking at a preview offer is Ready again (the offer is withdrawn).
    pub(super) fn release_preview(&mut self, id: &AgentId) {
        if let Some(a) = self.agents.get_mut(id) {
            if let AgentState::Previewing { .. } = a.state {
                a.state = AgentState::Ready;
            }
        }
    }

    /// Whether the agent is Ready for the campaign and not on its way out.
    pub(super) fn agent_free_for(&self, id: &AgentId, campaign: &CampaignId) -> bool {
        self.agents.get(id).is_some_and(|a| {
            a.state == AgentState::Ready && !a.plan.is_leaving() && a.campaigns.contains(campaign)
        })
    }
}

/// Moves an agent's inactivity timer from `old` to `new` (either may be none).
fn rearm(timers: &mut Timers, id: &AgentId, old: Option<Watchdog>, new: Option<Watchdog>) {
    if let Some(w) = old {
        timers.cancel(w.deadline, Timer::AgentSilent(id.clone()));
    }
    if let Some(w) = new {
        timers.set(w.deadline, Timer::AgentSilent(id.clone()));
    }
}
