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
                });
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }
}
