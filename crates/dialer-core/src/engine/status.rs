//! A snapshot of everything the engine holds, for operators' screens and the runtime's
//! status call: agents, calls in flight, and each campaign's position.

use super::agent::AgentState;
use super::calls::CallPhase;
use super::coordinator::Engine;
use super::telephony::Telephony;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::AnswerKind;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// The engine's state at its latest input. Lists are sorted by id, so two snapshots of the
/// same state are byte-identical.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EngineStatus {
    /// The time of the latest input.
    pub at: Option<DateTime<Utc>>,
    /// Whether calls can be placed at all.
    pub telephony: TelephonyStatus,
    /// Every agent seen, by id.
    pub agents: Vec<AgentStatus>,
    /// Calls in flight, by id.
    pub calls: Vec<CallStatus>,
    /// Campaigns, by id.
    pub campaigns: Vec<CampaignStatus>,
}

/// The telephone system as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum TelephonyStatus {
    /// Calls are placed.
    Up,
    /// No call is placed.
    Down {
        /// What was reported.
        reason: String,
        /// Since when.
        since: DateTime<Utc>,
        /// When the engine tries again on its own, if it paused itself.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// One agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// Who.
    pub agent: AgentId,
    /// Its state (with its call, preview or pause reason).
    pub state: AgentState,
    /// Since when.
    pub since: DateTime<Utc>,
    /// The campaign its free time counts for.
    pub campaign: Option<CampaignId>,
    /// The call it is on or reserved for.
    pub call: Option<CallId>,
    /// The record of that call, or of its preview.
    pub record: Option<RecordId>,
    /// Asked to pause or log out while dials in flight still need it.
    pub leaving: bool,
}

/// Where a call in flight is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Placed, not answered.
    Dialing,
    /// Answered by a machine.
    Machine,
    /// Answered live, waiting for an agent.
    Waiting,
    /// Talking with an agent.
    Linked,
    /// Linked to an agent, the callee on hold.
    OnHold,
    /// Answered live, too late to count as anything but abandoned.
    Abandoned,
}

/// One call in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStatus {
    /// The call.
    pub call: CallId,
    /// Its campaign.
    pub campaign: CampaignId,
    /// Its record.
    pub record: RecordId,
    /// The number dialed (E.164).
    pub number: String,
    /// The agent it is linked to, or reserved for.
    pub agent: Option<AgentId>,
    /// Where it is.
    pub state: CallState,
    /// When it was placed.
    pub placed_at: DateTime<Utc>,
    /// When it was answered, and by whom.
    pub answered_at: Option<DateTime<Utc>>,
    /// Machine, human or unknown.
    pub answer: Option<AnswerKind>,
    /// When it entered the queue.
    pub queued_at: Option<DateTime<Utc>>,
    /// When an agent took it.
    pub linked_at: Option<DateTime<Utc>>,
    /// Since when the callee is on hold, if it is.
    pub on_hold_since: Option<DateTime<Utc>>,
}

/// Why a campaign is not dialing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum DialingPaused {
    /// The telephone system is down.
    TelephonyDown {
        /// What was reported.
        reason: String,
    },
    /// The campaign was stopped.
    Stopped,
}

/// A campaign's abandonment position in its current legal period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbandonPosition {
    /// Abandoned live answers.
    pub abandoned: u64,
    /// Live answers.
    pub live_answers: u64,
    /// The cap (0.03 = 3%).
    pub cap: f64,
    /// Abandons still allowed: `cap × live answers − abandoned`.
    pub remaining_budget: f64,
    /// The period's first day, campaign time.
    pub period_start: Option<NaiveDate>,
    /// The period's bounds.
    pub period_from: Option<DateTime<Utc>>,
    /// The period's end (exclusive).
    pub period_until: Option<DateTime<Utc>>,
}

/// One campaign.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignStatus {
    /// The campaign.
    pub campaign: CampaignId,
    /// The pacer's name.
    pub pacer: String,
    /// Records held, ready to dial.
    pub hopper: usize,
    /// Calls in flight.
    pub calls_in_flight: usize,
    /// Calls placed and not answered (not reserved for an agent).
    pub dialing: u32,
    /// Live answers waiting for an agent.
    pub waiting: u32,
    /// Agents whose free time counts for it.
    pub agents: usize,
    /// Where it stands against its abandonment cap.
    pub abandonment: AbandonPosition,
    /// Why it does not dial, if it does not.
    pub dialing_paused: Option<DialingPaused>,
}

impl Engine {
    /// A snapshot of agents, calls in flight and campaigns, sorted by id.
    pub fn status(&self) -> EngineStatus {
        let now = self.now;
        let mut agents: Vec<AgentStatus> = self
            .floor
            .agents
            .values()
            .map(|a| {
                let (call, record) = match &a.state {
                    AgentState::OnCall { call } | AgentState::Reserved { call } => (
                        Some(*call),
                        self.floor.calls.get(call).map(|c| c.record.clone()),
                    ),
                    AgentState::Previewing { record, .. } => (None, Some(record.clone())),
                    _ => (None, None),
                };
                AgentStatus {
                    agent: a.id.clone(),
                    state: a.state.clone(),
                    since: DateTime::from_timestamp_millis(a.since_ms).unwrap_or_default(),
                    campaign: a.home.clone(),
                    call,
                    record,
                    leaving: a.plan.is_leaving(),
                }
            })
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        let mut calls: Vec<CallStatus> = self
            .floor
            .calls
            .iter()
            .map(|(id, c)| {
                let answered = c.phase().answered();
                let (state, linked, on_hold_since) = match c.phase() {
                    CallPhase::Dialing => (CallState::Dialing, None, None),
                    CallPhase::Machine { .. } => (CallState::Machine, None, None),
                    CallPhase::Waiting { .. } => (CallState::Waiting, None, None),
                    CallPhase::Abandoned { .. } => (CallState::Abandoned, None, None),
                    CallPhase::Linked {
                        agent, at, on_hold, ..
                    } => (
                        if on_hold.is_some() {
                            CallState::OnHold
                        } else {
                            CallState::Linked
                        },
                        Some((agent, *at)),
                        *on_hold,
                    ),
                };
                CallStatus {
                    call: *id,
                    campaign: c.campaign.clone(),
                    record: c.record.clone(),
                    number: c.number.e164().to_owned(),
                    agent: linked
                        .map(|l| l.0.clone())
                        .or_else(|| c.reserved_agent.clone()),
                    state,
                    placed_at: c.placed_at,
                    answered_at: answered.map(|a| a.0),
                    answer: answered.map(|a| a.1),
                    queued_at: c.queued,
                    linked_at: linked.map(|l| l.1),
                    on_hold_since,
                }
            })
            .collect();
        calls.sort_by_key(|c| c.call);
        let telephony = match &self.floor.telephony {
            Telephony::Up => TelephonyStatus::Up,
            Telephony::Down {
                reason,
                since,
                retry_at,
            } => TelephonyStatus::Down {
                reason: reason.clone(),
                since: *since,
                retry_at: *retry_at,
            },
        };
        let campaigns = self
            .campaigns
            .iter()
            .map(|(cid, run)| {
                // The ledger caches its period; a copy answers without changing the engine.
                let mut ledger = run.ledger.clone();
                let (position, bounds) = match now {
                    Some(t) => (Some(ledger.status(t)), ledger.period_bounds(t)),
                    None => (None, None),
                };
                let dialing_paused = if run.stopped {
                    Some(DialingPaused::Stopped)
                } else {
                    match &self.floor.telephony {
                        Telephony::Down { reason, .. } => Some(DialingPaused::TelephonyDown {
                            reason: reason.clone(),
                        }),
                        Telephony::Up => None,
                    }
                };
                CampaignStatus {
                    campaign: cid.clone(),
                    pacer: run.pacer.name(),
                    hopper: run.hopper.len(),
                    calls_in_flight: run.calls.lines() as usize,
                    dialing: run.calls.dialing(),
                    waiting: run.calls.waiting(),
                    agents: run.home_agents.len(),
                    abandonment: AbandonPosition {
                        abandoned: position.as_ref().map_or(0, |p| p.abandoned),
                        live_answers: position.as_ref().map_or(0, |p| p.live_answers),
                        cap: run.campaign.abandon.cap,
                        remaining_budget: position.as_ref().map_or(0.0, |p| p.budget),
                        period_start: position.as_ref().and_then(|p| p.period_start),
                        period_from: bounds.map(|b| b.0),
                        period_until: bounds.map(|b| b.1),
                    },
                    dialing_paused,
                }
            })
            .collect();
        EngineStatus {
            at: now,
            telephony,
            agents,
            calls,
            campaigns,
        }
    }
}
