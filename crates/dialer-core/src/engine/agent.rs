//! Agents as the engine tracks them: their public state, the plan for after the current
//! call, and the table of agents by handle.
//!
//! [`Agent`] owns an agent's state, since when it holds, its campaigns, its home campaign
//! and its [`Plan`]; nothing else keeps any of them.

use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap as HashMap;

/// An agent as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not taking calls, not counted.
    LoggedOut,
    /// Free for a call.
    Ready,
    /// Held for a call being placed for it (owner, schedule, preview, manual task).
    Reserved {
        /// The call placed for it.
        call: CallId,
    },
    /// Looking at a record offered in preview mode.
    Previewing {
        /// The record's campaign.
        campaign: CampaignId,
        /// The record offered.
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
    /// A break, with the reason given.
    Pause(String),
    /// The end of the agent's session.
    Logout,
}

/// What an agent does once its current call (and wrap-up) is over, and whether it is held
/// back from leaving. Ready, pause and logout requests that arrive during a call are folded in
/// here, so the order in which the desktop, the PBX and the hang-up report things cannot strand
/// an agent in wrap-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) enum Plan {
    /// Wrap up as the campaign says ([`AfterCall`](crate::model::campaign::AfterCall)), then
    /// ready.
    #[default]
    WrapUp,
    /// Ready arrived during the call: ready as soon as it ends.
    Ready,
    /// Leave once the call is over: after wrap-up (`wrap_up`), or at once (Ready also arrived).
    Leave {
        /// Pause or log out.
        how: Departure,
        /// Whether wrap-up comes first.
        wrap_up: bool,
    },
    /// Asked to pause or log out while Ready, but the dials in flight of its campaign need it
    /// to stay within the abandonment budget: it takes calls, is not counted for new dials,
    /// and leaves as soon as it is no longer needed. A call it takes meanwhile ends as
    /// `wrap_up` says, then it leaves.
    Leaving {
        /// Pause or log out.
        how: Departure,
        /// Whether the end of a call taken meanwhile goes through wrap-up first.
        wrap_up: bool,
    },
}

impl Plan {
    /// Whether the agent is held back from a departure ([`Plan::Leaving`]).
    pub(super) fn is_leaving(&self) -> bool {
        matches!(self, Plan::Leaving { .. })
    }

    /// Whether the end of the call goes through wrap-up.
    pub(super) fn wraps_up(&self) -> bool {
        match self {
            Plan::WrapUp => true,
            Plan::Ready => false,
            Plan::Leave { wrap_up, .. } | Plan::Leaving { wrap_up, .. } => *wrap_up,
        }
    }

    /// Ready arrived during the call: no wrap-up to wait for; a departure still stands.
    pub(super) fn ready_during_call(self) -> Plan {
        match self {
            Plan::WrapUp | Plan::Ready => Plan::Ready,
            Plan::Leave { how, .. } => Plan::Leave {
                how,
                wrap_up: false,
            },
            Plan::Leaving { how, .. } => Plan::Leaving {
                how,
                wrap_up: false,
            },
        }
    }

    /// A departure asked for during a call or wrap-up: the latest request wins, wrap-up stays
    /// as it was planned.
    pub(super) fn depart_after_call(self, how: Departure) -> Plan {
        match self {
            Plan::Ready => Plan::Leave {
                how,
                wrap_up: false,
            },
            Plan::WrapUp => Plan::Leave { how, wrap_up: true },
            Plan::Leave { wrap_up, .. } => Plan::Leave { how, wrap_up },
            Plan::Leaving { wrap_up, .. } => Plan::Leaving { how, wrap_up },
        }
    }

    /// A call was linked to the agent. A Ready kept for "when the call ends" belonged to an
    /// earlier call (one whose end was lost, or the reservation before this link): this call
    /// gets its own wrap-up. Found by the swarm, seed 158.
    pub(super) fn call_linked(self) -> Plan {
        match self {
            Plan::Ready => Plan::WrapUp,
            Plan::Leave { how, .. } => Plan::Leave { how, wrap_up: true },
            Plan::Leaving { how, .. } => Plan::Leaving { how, wrap_up: true },
            Plan::WrapUp => Plan::WrapUp,
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
    /// What happens when the current call ends, and whether the agent is held back from
    /// leaving (the only place either fact is kept).
    pub(super) plan: Plan,
    /// The session's inactivity timeout (ECCP `loginagent` timeout): the agent is logged out
    /// unless its desktop pings before the deadline.
    pub(super) watchdog: Option<Watchdog>,
}

/// An agent session's inactivity timeout and the moment it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Watchdog {
    /// How long the desktop may stay silent.
    pub(super) timeout: chrono::Duration,
    /// When the agent is logged out unless it pings before.
    pub(super) deadline: DateTime<Utc>,
}

/// What an agent counts as for its home campaign's pacing: derived from its state and plan,
/// never kept beside them except as the [`Roster`] contribution last counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Load {
    /// Logged out: not counted.
    Out,
    /// Ready and not on its way out.
    Free,
    /// Ready, but held back from a departure ([`Plan::Leaving`]).
    LeavingReady,
    /// On a call.
    Talking,
    /// In after-call work.
    WrapUp,
    /// Logged in, none of the above (reserved, previewing, paused).
    Other,
}

impl Load {
    fn of(state: &AgentState, plan: &Plan) -> Load {
        match state {
            AgentState::LoggedOut => Load::Out,
            AgentState::Ready if plan.is_leaving() => Load::LeavingReady,
            AgentState::Ready => Load::Free,
            AgentState::OnCall { .. } => Load::Talking,
            AgentState::WrapUp { .. } => Load::WrapUp,
            AgentState::Reserved { .. }
            | AgentState::Previewing { .. }
            | AgentState::Paused { .. } => Load::Other,
        }
    }
}

/// A campaign's home agents, counted by what pacing needs (the snapshot, the departure rule),
/// so a decision does not walk every agent. Kept by [`Agents`] from each agent's state and
/// plan: every mutable access marks the agent, and [`Agents::roster`] recounts the marked ones
/// first, so the counts cannot drift from the states.
#[derive(Debug, Clone, Default)]
pub(super) struct Roster {
    /// Not logged out.
    pub(super) logged_in: u32,
    /// Ready and not on their way out.
    pub(super) free: u32,
    /// Ready but held back from a departure.
    pub(super) leaving_ready: u32,
    /// On a call.
    pub(super) talking: u32,
    /// Handles of the agents in wrap-up, ascending (the order of the home agent lists).
    pub(super) wrapping: Vec<usize>,
}

impl Roster {
    fn add(&mut self, i: usize, load: Load, sign: bool) {
        let step = |n: &mut u32| {
            if sign {
                *n += 1
            } else {
                *n -= 1
            }
        };
        if load != Load::Out {
            step(&mut self.logged_in);
        }
        match load {
            Load::Free => step(&mut self.free),
            Load::LeavingReady => step(&mut self.leaving_ready),
            Load::Talking => step(&mut self.talking),
            Load::WrapUp => match (self.wrapping.binary_search(&i), sign) {
                (Err(at), true) => self.wrapping.insert(at, i),
                (Ok(at), false) => {
                    self.wrapping.remove(at);
                }
                _ => {}
            },
            Load::Out | Load::Other => {}
        }
    }
}

/// Agents by numeric handle: the per-input pacing snapshot reads a campaign's [`Roster`]
/// instead of walking its agents.
#[derive(Debug, Default)]
pub(super) struct Agents {
    list: Vec<Agent>,
    index: HashMap<AgentId, usize>,
    /// Per agent: the home and load it is counted with in `rosters` (`None`: nowhere).
    counted: Vec<Option<(CampaignId, Load)>>,
    /// Agents handed out mutably since the last recount.
    touched: Vec<usize>,
    /// Whether each agent is in `touched`.
    is_touched: Vec<bool>,
    /// Home agents of each campaign, counted.
    rosters: HashMap<CampaignId, Roster>,
}

impl Agent {
    pub(super) fn set_since(&mut self, now: DateTime<Utc>) {
        self.since_ms = now.timestamp_millis();
    }

    /// On a call, or reserved for one being placed.
    pub(super) fn on_call(&self) -> bool {
        matches!(
            self.state,
            AgentState::OnCall { .. } | AgentState::Reserved { .. }
        )
    }

    /// Whether a departure (pause, logout, timeout) waits: on a call or in its wrap-up.
    pub(super) fn busy(&self) -> bool {
        self.on_call() || matches!(self.state, AgentState::WrapUp { .. })
    }
}

impl Agents {
    pub(super) fn get(&self, id: &AgentId) -> Option<&Agent> {
        self.index.get(id).map(|&i| &self.list[i])
    }
    /// The agent with handle `i` (from a campaign's home list).
    pub(super) fn at(&self, i: usize) -> &Agent {
        &self.list[i]
    }
    /// The agent, to change: it is recounted before the next [`Agents::roster`].
    pub(super) fn get_mut(&mut self, id: &AgentId) -> Option<&mut Agent> {
        let i = *self.index.get(id)?;
        Some(self.touch(i))
    }
    pub(super) fn values(&self) -> impl Iterator<Item = &Agent> {
        self.list.iter()
    }
    /// Every agent with its handle, to change (all are recounted).
    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Agent)> {
        for i in 0..self.list.len() {
            self.mark(i);
        }
        self.list.iter_mut().enumerate()
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
                    plan: Plan::WrapUp,
                    watchdog: None,
                });
                self.counted.push(None);
                self.is_touched.push(false);
                self.list.len() - 1
            }
        };
        self.touch(i)
    }

    fn mark(&mut self, i: usize) {
        if !self.is_touched[i] {
            self.is_touched[i] = true;
            self.touched.push(i);
        }
    }

    fn touch(&mut self, i: usize) -> &mut Agent {
        self.mark(i);
        &mut self.list[i]
    }

    /// The counts of `campaign`'s home agents, up to date with every change handed out.
    pub(super) fn roster(&mut self, campaign: &CampaignId) -> Option<&Roster> {
        self.roster_and_agents(campaign).0
    }

    /// [`Agents::roster`], and the agents by handle to read beside it.
    pub(super) fn roster_and_agents(
        &mut self,
        campaign: &CampaignId,
    ) -> (Option<&Roster>, &[Agent]) {
        self.recount();
        (self.rosters.get(campaign), &self.list)
    }

    /// Recounts the agents handed out mutably since the last recount.
    fn recount(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let mut touched = std::mem::take(&mut self.touched);
        for &i in &touched {
            self.is_touched[i] = false;
            let a = &self.list[i];
            let load = Load::of(&a.state, &a.plan);
            let home = a.home.as_ref().filter(|_| load != Load::Out);
            // Compared before anything is copied: a copy of a campaign id is an atomic
            // increment (and its drop a decrement), and most touches change nothing counted.
            let unchanged = match (&self.counted[i], home) {
                (None, None) => true,
                (Some((h, l)), Some(home)) => h == home && *l == load,
                _ => false,
            };
            if unchanged {
                continue;
            }
            let old = self.counted[i].take();
            if let Some((h, l)) = &old {
                if let Some(r) = self.rosters.get_mut(h) {
                    r.add(i, *l, false);
                }
            }
            // The same home keeps the id already held.
            let now = home.map(|home| match old {
                Some((h, _)) if h == *home => (h, load),
                _ => (home.clone(), load),
            });
            if let Some((home, load)) = &now {
                match self.rosters.get_mut(home) {
                    Some(r) => r.add(i, *load, true),
                    None => self
                        .rosters
                        .entry(home.clone())
                        .or_default()
                        .add(i, *load, true),
                }
            }
            self.counted[i] = now;
        }
        // The buffer is kept: one allocation for the engine's life.
        touched.clear();
        self.touched = touched;
    }
}

#[cfg(test)]
mod roster_tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    /// What the roster must say: a walk over every agent whose home is `campaign`.
    fn walk(agents: &Agents, campaign: &CampaignId) -> (u32, u32, u32, u32, Vec<usize>) {
        let (mut logged, mut free, mut leaving, mut talking, mut wrapping) = (0, 0, 0, 0, vec![]);
        for (i, a) in agents.values().enumerate() {
            if a.home.as_ref() != Some(campaign) {
                continue;
            }
            match Load::of(&a.state, &a.plan) {
                Load::Out => continue,
                Load::Free => free += 1,
                Load::LeavingReady => leaving += 1,
                Load::Talking => talking += 1,
                Load::WrapUp => wrapping.push(i),
                Load::Other => {}
            }
            logged += 1;
        }
        (logged, free, leaving, talking, wrapping)
    }

    fn state(k: u8) -> AgentState {
        match k % 7 {
            0 => AgentState::LoggedOut,
            1 => AgentState::Ready,
            2 => AgentState::Reserved { call: CallId(1) },
            3 => AgentState::OnCall { call: CallId(2) },
            4 => AgentState::WrapUp { until: None },
            5 => AgentState::Paused {
                reason: "break".into(),
            },
            _ => AgentState::Previewing {
                campaign: CampaignId::from("a"),
                record: RecordId(1),
            },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever changes are made to agents (state, plan, home, new agents), in whatever
        /// order and however many between two reads, the counts read are a fresh walk's.
        #[test]
        fn roster_counts_equal_a_walk_of_the_agents_after_any_changes(
            ops in proptest::collection::vec((0u8..6, 0usize..8, any::<u8>(), any::<bool>()), 1..200)
        ) {
            let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
            let campaigns = [CampaignId::from("a"), CampaignId::from("b")];
            let mut agents = Agents::default();
            for (op, who, k, flag) in ops {
                let id = AgentId::from(format!("agent-{who}"));
                match op {
                    0 => {
                        agents.get_or_insert(id, now);
                    }
                    1 => {
                        if let Some(a) = agents.get_mut(&id) {
                            a.state = state(k);
                        }
                    }
                    2 => {
                        if let Some(a) = agents.get_mut(&id) {
                            a.plan = if flag {
                                Plan::Leaving { how: Departure::Logout, wrap_up: true }
                            } else {
                                Plan::WrapUp
                            };
                        }
                    }
                    3 => {
                        for (i, a) in agents.iter_mut() {
                            if i % 2 == usize::from(flag) {
                                a.home = match k % 3 {
                                    0 => None,
                                    n => Some(campaigns[usize::from(n) - 1].clone()),
                                };
                            }
                        }
                    }
                    4 => {
                        if let Some(a) = agents.get_mut(&id) {
                            a.home = Some(campaigns[usize::from(flag)].clone());
                        }
                    }
                    _ => {
                        for c in &campaigns {
                            let expected = walk(&agents, c);
                            let got = agents.roster(c).map_or((0, 0, 0, 0, vec![]), |r| {
                                (r.logged_in, r.free, r.leaving_ready, r.talking, r.wrapping.clone())
                            });
                            prop_assert_eq!(got, expected);
                        }
                    }
                }
            }
            for c in &campaigns {
                let expected = walk(&agents, c);
                let got = agents.roster(c).map_or((0, 0, 0, 0, vec![]), |r| {
                    (r.logged_in, r.free, r.leaving_ready, r.talking, r.wrapping.clone())
                });
                prop_assert_eq!(got, expected);
            }
        }
    }
}
