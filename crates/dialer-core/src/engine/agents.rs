//! Agents: their states, what they do after a call, and every agent transition.

use crate::engine::input::AgentEvent;
use crate::engine::output::{Event, Output};
use crate::engine::reject::RejectReason;
use crate::model::campaign::AfterCall;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::pacing::PacingEvent;
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap as HashMap;

use super::coordinator::*;
use super::timers::*;

/// An agent as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not taking calls, not counted.
    LoggedOut,
    /// Free for a call.
    Ready,
    /// Held for a call being placed for it (owner, schedule, preview, manual task).
    Reserved { call: CallId },
    /// Looking at a record offered in preview mode.
    Previewing {
        campaign: CampaignId,
        record: RecordId,
    },
    /// Talking on a call.
    OnCall {
        /// The call.
        call: CallId,
    },
    /// After-call work. `until`: when it ends on its own (the campaign's
    /// [`AfterCall::WrapUp`]); `None`: at the agent's (or the PBX's) Ready.
    WrapUp {
        /// When wrap-up ends by itself, if it does.
        until: Option<DateTime<Utc>>,
    },
    /// On a break.
    Paused {
        /// The reason given.
        reason: String,
    },
}

/// A departure an agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Departure {
    Pause(String),
    Logout,
}

/// What an agent does once its call ends. Ready, pause and logout requests that arrive
/// during a call are folded in here, so the order in which the desktop, the PBX and the
/// hang-up report things cannot strand an agent in wrap-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Then {
    /// Wrap up as the campaign says ([`AfterCall`]).
    #[default]
    WrapUp,
    /// Ready arrived during the call: ready as soon as it ends.
    Ready,
    /// Wrap up, then leave. Also the plan of a Ready agent held back while dials in flight
    /// need it (`leaving`).
    WrapUpThenLeave(Departure),
    /// Leave as soon as the call ends (Ready also arrived: no wrap-up to wait for).
    Leave(Departure),
}

impl Then {
    pub(super) fn departure(&self) -> Option<&Departure> {
        match self {
            Then::WrapUpThenLeave(d) | Then::Leave(d) => Some(d),
            Then::WrapUp | Then::Ready => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub(super) id: AgentId,
    pub(super) campaigns: Vec<CampaignId>,
    /// The campaign this agent's free time counts for (cached; see `recompute_homes`).
    pub(super) home: Option<CampaignId>,
    pub(super) state: AgentState,
    /// When the current state began, in Unix milliseconds (the per-input snapshot subtracts
    /// integers, not dates).
    pub(super) since_ms: i64,
    /// What happens when the current call ends.
    pub(super) then: Then,
    /// Ready, but asked to pause or log out while dials it covers are in flight: takes calls,
    /// is not counted for new dials, and leaves (`then`) once it is no longer needed.
    pub(super) leaving: bool,
}

/// Agents by numeric handle: the per-input pacing snapshot walks a campaign's agents by index
/// instead of comparing names.
#[derive(Debug, Default)]
pub(super) struct Agents {
    pub(super) list: Vec<Agent>,
    pub(super) index: HashMap<AgentId, usize>,
}

impl Agent {
    pub(super) fn set_since(&mut self, now: DateTime<Utc>) {
        self.since_ms = now.timestamp_millis();
    }
}

impl Agents {
    pub(super) fn get(&self, id: &AgentId) -> Option<&Agent> {
        self.index.get(id).map(|&i| &self.list[i])
    }
    pub(super) fn get_mut(&mut self, id: &AgentId) -> Option<&mut Agent> {
        self.index.get(id).map(|&i| &mut self.list[i])
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &Agent> {
        self.list.iter()
    }
    pub(super) fn iter(&self) -> impl Iterator<Item = (&AgentId, &Agent)> {
        self.list.iter().map(|a| (&a.id, a))
    }
    pub(super) fn get_or_insert(&mut self, id: AgentId, now: DateTime<Utc>) -> &mut Agent {
        let i = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                self.index.insert(id.clone(), self.list.len());
                self.list.push(Agent {
                    id,
                    campaigns: Vec::new(),
                    home: None,
                    state: AgentState::LoggedOut,
                    since_ms: now.timestamp_millis(),
                    then: Then::WrapUp,
                    leaving: false,
                });
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }
}

impl Engine {
    // ----- agents -----

    pub(super) fn agent_event(
        &mut self,
        now: DateTime<Utc>,
        id: AgentId,
        event: AgentEvent,
    ) -> Result<(), RejectReason> {
        if let AgentEvent::LoggedIn { campaigns } = &event {
            // Validated before anything changes: a login names only started campaigns.
            if let Some(unknown) = campaigns.iter().find(|c| !self.campaigns.contains_key(*c)) {
                return Err(RejectReason::UnknownCampaign(unknown.clone()));
            }
            let a = self.agents.get_or_insert(id.clone(), now);
            a.campaigns = campaigns.clone();
            if a.leaving {
                a.leaving = false;
                a.then = Then::WrapUp;
            }
            if matches!(a.state, AgentState::LoggedOut) {
                a.state = AgentState::Ready;
                a.set_since(now);
            }
            self.recompute_homes();
            return Ok(());
        }
        let agent = self
            .agents
            .get_mut(&id)
            .ok_or_else(|| RejectReason::UnknownAgent(id.clone()))?;
        let on_call = matches!(
            agent.state,
            AgentState::OnCall { .. } | AgentState::Reserved { .. }
        );
        let busy = on_call || matches!(agent.state, AgentState::WrapUp { .. });
        match event {
            AgentEvent::LoggedIn { .. } => {}
            AgentEvent::Ready => match agent.state {
                AgentState::LoggedOut => return Err(RejectReason::AgentLoggedOut(id)),
                // Ready before the call is over (the PBX reports the member free before the
                // caller's hang-up): ready when it ends, unless a departure was asked for.
                _ if on_call => {
                    agent.then = match std::mem::take(&mut agent.then) {
                        Then::WrapUp | Then::Ready => Then::Ready,
                        Then::WrapUpThenLeave(d) | Then::Leave(d) => Then::Leave(d),
                    };
                }
                AgentState::WrapUp { .. } => self.end_wrap_up(now, &id),
                AgentState::Ready if agent.leaving => {
                    // Back before the pause took effect: it simply stays.
                    agent.leaving = false;
                    agent.then = Then::WrapUp;
                }
                _ => {
                    agent.then = Then::WrapUp;
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

    /// A departure asked for: planned for after the call (and wrap-up) if busy, else now.
    pub(super) fn leave_or_plan(
        &mut self,
        now: DateTime<Utc>,
        id: &AgentId,
        busy: bool,
        how: Departure,
    ) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if busy {
            agent.then = match std::mem::take(&mut agent.then) {
                Then::Ready | Then::Leave(_) => Then::Leave(how),
                Then::WrapUp | Then::WrapUpThenLeave(_) => Then::WrapUpThenLeave(how),
            };
        } else {
            self.leave(now, id, how);
        }
    }

    /// Ends an agent's wrap-up (its Ready, or its timed wrap-up ran out): the pacer learns
    /// how long it took, for the agent's own campaign, and the agent is ready or leaves.
    pub(super) fn end_wrap_up(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if let AgentState::WrapUp { until: Some(t) } = agent.state {
            self.timers.remove(&(t, Timer::WrapUpEnds(id.clone())));
        }
        let wrap_s = (now.timestamp_millis() - agent.since_ms) as f64 / 1000.0;
        if let Some(run) = agent.home.as_ref().and_then(|c| self.campaigns.get_mut(c)) {
            run.pacer.observe(now, &PacingEvent::WrapUpEnded { wrap_s });
        }
        self.after_call_over(now, id);
    }

    /// The call and its wrap-up are over: ready, or the departure planned.
    pub(super) fn after_call_over(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        match std::mem::take(&mut agent.then) {
            Then::WrapUpThenLeave(how) | Then::Leave(how) => self.depart(now, id, how),
            Then::WrapUp | Then::Ready => {
                agent.state = AgentState::Ready;
                agent.set_since(now);
            }
        }
    }

    /// The agent's call ended: wrap-up as its campaign says, unless Ready already came.
    pub(super) fn call_over_for_agent(&mut self, now: DateTime<Utc>, id: &AgentId, call: CallId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if agent.state != (AgentState::OnCall { call }) {
            return;
        }
        match agent.then {
            Then::Ready | Then::Leave(_) => {
                agent.set_since(now);
                self.end_wrap_up(now, id);
            }
            Then::WrapUp | Then::WrapUpThenLeave(_) => {
                let mode = agent
                    .home
                    .as_ref()
                    .and_then(|c| self.campaigns.get(c))
                    .map_or(AfterCall::Desktop, |r| r.campaign.after_call);
                let until = match mode {
                    AfterCall::WrapUp { seconds } => {
                        Some(now + Duration::seconds(i64::from(seconds)))
                    }
                    AfterCall::Desktop | AfterCall::PbxMember => None,
                };
                agent.state = AgentState::WrapUp { until };
                agent.set_since(now);
                if let Some(t) = until {
                    self.timers.insert((t, Timer::WrapUpEnds(id.clone())));
                }
            }
        }
    }

    /// An idle agent asks to pause or log out. If the dials in flight of its campaign need it
    /// to stay within the abandonment budget, it leaves once they no longer do; otherwise now.
    pub(super) fn leave(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let needed = agent.state == AgentState::Ready
            && agent
                .home
                .clone()
                .is_some_and(|cid| self.coverage_short(now, &cid, 1));
        if needed {
            let agent = self.agents.get_mut(id).expect("looked up above");
            // A call it takes meanwhile still ends in wrap-up, then the departure.
            agent.then = Then::WrapUpThenLeave(how);
            agent.leaving = true;
        } else {
            self.release_preview(id);
            self.depart(now, id, how);
        }
    }

    /// Applies a departure and reports it.
    pub(super) fn depart(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        agent.leaving = false;
        agent.then = Then::WrapUp;
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
        now: DateTime<Utc>,
        cid: &CampaignId,
        leavers: u32,
    ) -> bool {
        let free = self.free_agents(cid);
        let Some(run) = self.campaigns.get_mut(cid) else {
            return false;
        };
        // Pacers that never dial ahead promise no abandons: no budget is spent on departures.
        let allowance = if run.pacer.dials_ahead() {
            run.ledger.status(now).budget.max(0.0).floor() as u32
        } else {
            0
        };
        run.dialing + run.waiting > free.saturating_sub(leavers) + allowance
    }

    /// Ready agents of the campaign not on their way out.
    pub(super) fn free_agents(&self, cid: &CampaignId) -> u32 {
        self.campaigns.get(cid).map_or(0, |run| {
            run.home_agents
                .iter()
                .filter(|&&i| {
                    let a = &self.agents.list[i];
                    a.state == AgentState::Ready && !a.leaving
                })
                .count() as u32
        })
    }

    /// Lets leaving agents go once the dials they covered no longer need them.
    pub(super) fn release_leavers(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let leavers: Vec<AgentId> = self.campaigns[cid]
            .home_agents
            .iter()
            .map(|&i| &self.agents.list[i])
            .filter(|a| a.leaving && a.state == AgentState::Ready)
            .map(|a| a.id.clone())
            .collect();
        if leavers.is_empty() || self.coverage_short(now, cid, 0) {
            return;
        }
        for id in leavers {
            let how = self
                .agents
                .get(&id)
                .and_then(|a| a.then.departure().cloned());
            if let Some(how) = how {
                self.depart(now, &id, how);
            }
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

    pub(super) fn release_preview(&mut self, id: &AgentId) {
        if let Some(a) = self.agents.get_mut(id) {
            if let AgentState::Previewing { .. } = a.state {
                a.state = AgentState::Ready;
            }
        }
    }

    /// The campaign an agent's free time counts for: its first running campaign, so an agent
    /// in several campaigns is never counted twice.
    pub(super) fn home_campaign<'a>(&self, agent: &'a Agent) -> Option<&'a CampaignId> {
        agent.home.as_ref()
    }

    /// Recomputes every agent's home campaign (its first running campaign, so an agent in
    /// several campaigns is never counted twice) and each campaign's agent list. Runs on
    /// logins and campaign changes only, so the per-input snapshot needs no lookups.
    pub(super) fn recompute_homes(&mut self) {
        for run in self.campaigns.values_mut() {
            run.home_agents.clear();
        }
        for (i, a) in self.agents.list.iter_mut().enumerate() {
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

    pub(super) fn agent_free_for(&self, id: &AgentId, campaign: &CampaignId) -> bool {
        self.agents.get(id).is_some_and(|a| {
            a.state == AgentState::Ready && !a.leaving && a.campaigns.contains(campaign)
        })
    }
}
