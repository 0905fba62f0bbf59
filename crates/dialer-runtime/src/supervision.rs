//! One campaign as a supervisor reads it (seed rows E10, U23, U24): agents by state with the
//! call and record of each, calls in flight with their dial, answer, queue and link times,
//! callers waiting and the longest wait, the abandonment position, and the ledger's talk,
//! hold and service-level figures. Built inside the dialer task from its status and one
//! spool read of the same instant, so the two parts agree.

use crate::dialer::DialerStatus;
use crate::error::OpError;
use chrono::{DateTime, Utc};
use dialer_core::{
    AbandonPosition, AgentState, AgentStatus, CallState, CallStatus, CampaignId, RejectReason,
};
use serde::Serialize;
use spool_store::CampaignStats;

/// Agents of a campaign by state (logged-out agents are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AgentCounts {
    /// Every agent logged in to the campaign.
    pub logged_in: u32,
    /// Free for a call.
    pub available: u32,
    /// Held for a call placed for them.
    pub reserved: u32,
    /// Looking at a record in preview.
    pub previewing: u32,
    /// Talking (a call on hold included).
    pub on_call: u32,
    /// In after-call work.
    pub wrap_up: u32,
    /// On a break.
    pub paused: u32,
}

/// A campaign as a supervisor reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Supervision {
    /// The campaign.
    pub campaign: CampaignId,
    /// When the status was taken (the dialer's clock).
    pub at: DateTime<Utc>,
    /// Agents by state.
    pub agent_counts: AgentCounts,
    /// Each logged-in agent with its state, since when, its call and its record.
    pub agents: Vec<AgentStatus>,
    /// Calls in flight, oldest first, with dial, answer, queue and link times.
    pub calls: Vec<CallStatus>,
    /// Calls in flight not yet linked to an agent (ECCP `activecalls`).
    pub calls_not_linked: u32,
    /// Callers answered and waiting for an agent.
    pub callers_waiting: u32,
    /// The longest of their waits so far, seconds.
    pub longest_wait_s: Option<f64>,
    /// Calls whose callee is on hold now.
    pub on_hold: u32,
    /// The abandonment rate against the cap over the current legal period.
    pub abandonment: AbandonPosition,
    /// Talk, hold and service-level figures from the ledger.
    pub stats: CampaignStats,
}

/// Builds the supervision view of `campaign` from a status and the ledger's figures; an
/// unknown campaign is refused by name.
pub fn supervision(
    status: &DialerStatus,
    campaign: &CampaignId,
    stats: CampaignStats,
) -> Result<Supervision, OpError> {
    let run = status
        .engine
        .campaigns
        .iter()
        .find(|c| &c.campaign == campaign)
        .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
    let mut counts = AgentCounts::default();
    let agents: Vec<AgentStatus> = status
        .engine
        .agents
        .iter()
        .filter(|a| a.campaign.as_ref() == Some(campaign) && a.state != AgentState::LoggedOut)
        .cloned()
        .collect();
    for a in &agents {
        counts.logged_in += 1;
        match a.state {
            AgentState::LoggedOut => {}
            AgentState::Ready => counts.available += 1,
            AgentState::Reserved { .. } => counts.reserved += 1,
            AgentState::Previewing { .. } => counts.previewing += 1,
            AgentState::OnCall { .. } => counts.on_call += 1,
            AgentState::WrapUp { .. } => counts.wrap_up += 1,
            AgentState::Paused { .. } => counts.paused += 1,
        }
    }
    let calls: Vec<CallStatus> = status
        .engine
        .calls
        .iter()
        .filter(|c| &c.campaign == campaign)
        .cloned()
        .collect();
    let linked = |c: &&CallStatus| matches!(c.state, CallState::Linked | CallState::OnHold);
    let waiting: Vec<&CallStatus> = calls
        .iter()
        .filter(|c| matches!(c.state, CallState::Waiting | CallState::Abandoned))
        .collect();
    let longest_wait_s = waiting
        .iter()
        .filter_map(|c| c.answered_at.or(c.queued_at))
        .map(|since| (status.at - since).num_milliseconds().max(0) as f64 / 1000.0)
        .reduce(f64::max);
    Ok(Supervision {
        campaign: campaign.clone(),
        at: status.at,
        agent_counts: counts,
        calls_not_linked: calls.iter().filter(|c| !linked(c)).count() as u32,
        callers_waiting: waiting.len() as u32,
        longest_wait_s,
        on_hold: calls
            .iter()
            .filter(|c| c.state == CallState::OnHold)
            .count() as u32,
        abandonment: run.abandonment.clone(),
        agents,
        calls,
        stats,
    })
}
