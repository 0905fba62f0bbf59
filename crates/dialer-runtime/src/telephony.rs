//! The seam between the dialer and a telephone system.
//!
//! A [`Telephony`] takes [`TelephonyCommand`]s (place a call, hang one up, control an agent's
//! queue membership) and reports what happened as bursts of [`TelephonyEvent`]s, already in the
//! core's terms: call progress and agent changes as [`InputKind`]s, and the health of the
//! telephone system. Everything that is specific to one system (AMI device states, queue member
//! events, the order Asterisk sends them in, routing) stays behind this trait.
//!
//! Two implementations exist: `backend_ami::AmiTelephony` (Asterisk) and
//! `backend_sim::live::SimTelephony` (simulated callees and agents in real or accelerated time).

use dialer_core::{AgentId, CallId, CampaignId, InputKind, OriginateIntent, PbxFault};

/// What the dialer asks of a telephone system.
#[derive(Debug, Clone, PartialEq)]
pub enum TelephonyCommand {
    /// Place a call. Its progress comes back as [`TelephonyEvent::Input`]s for `intent.call`.
    Originate(OriginateIntent),
    /// Hang a call up (before answer: it ends as not answered).
    Hangup(CallId),
    /// Put a linked call's callee on hold (`hold`) or take it off; the system reports the
    /// change as `CallEvent::Held` / `CallEvent::Resumed`.
    Hold { call: CallId, hold: bool },
    /// Agent control on the telephone system (queue pause, membership).
    Agent {
        agent: AgentId,
        control: AgentControl,
    },
}

/// Agent control the telephone system carries out (for Asterisk: queue member actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentControl {
    /// Stop offering calls to the agent (a break); `reason` is shown on the PBX.
    Pause { reason: String },
    /// Offer calls again.
    Unpause,
    /// Make the agent a member of the campaign's queue.
    Join { campaign: CampaignId },
    /// Remove the agent from the campaign's queue.
    Leave { campaign: CampaignId },
}

/// What the telephone system calls a call (ECCP `uniqueid`, `trunk`, `queue`): the core does
/// not see channels, the runtime keeps these in the attempt ledger and shows them on the
/// campaign log and on call-progress events. A field not known yet is `None`; a later report
/// adds to an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallIdentity {
    /// The system's unique id of the call (Asterisk: the originated channel's `Uniqueid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// The channel the call went out on, which names its trunk (`PJSIP/trunk-0000002a`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The queue the answered call entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl CallIdentity {
    /// Takes what `later` knows over what this one knew.
    pub fn merge(&mut self, later: CallIdentity) {
        if later.unique_id.is_some() {
            self.unique_id = later.unique_id;
        }
        if later.channel.is_some() {
            self.channel = later.channel;
        }
        if later.queue.is_some() {
            self.queue = later.queue;
        }
    }
}

/// What a telephone system reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TelephonyEvent {
    /// Call progress or an agent change, in the core's terms.
    Input(InputKind),
    /// What the telephone system calls a call it placed, as it learns it (before the
    /// progress it comes with in the same burst).
    Identity {
        call: CallId,
        identity: CallIdentity,
    },
    /// The telephone system's health changed.
    Health(Health),
}

/// Health of a telephone system as the dialer needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Connected and accepting calls.
    Up,
    /// Not accepting calls: down, shutting down, or refusing our requests.
    Down { fault: PbxFault, detail: String },
    /// After a reconnect, the calls the system really has for us were counted.
    Reconciled { lines_in_use: usize },
}

/// Why a command was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TelephonyError {
    /// The telephone system's queue is full: the command was not taken; nothing happened.
    #[error("the telephone system is busy (its request queue is full)")]
    Busy,
    /// The telephone system has stopped for good.
    #[error("the telephone system has stopped")]
    Stopped,
    /// This telephone system cannot carry the command out; nothing happened.
    #[error("this telephone system cannot {0}")]
    Unsupported(&'static str),
}

/// A telephone system the runtime drives.
#[cfg(feature = "runtime")]
///
/// Implementations never block for long in [`Telephony::submit`] (their queues are bounded and
/// a full queue is [`TelephonyError::Busy`]), report every call they accepted until it ends
/// (an Originate they cannot place is reported as `CallEvent::OriginateRefused` with its
/// cause), and deliver events in the order they happened.
#[async_trait::async_trait]
pub trait Telephony: Send {
    /// A short name for logs and status (`asterisk@127.0.0.1:5038`, `sim`).
    fn name(&self) -> &str;

    /// Hands a command over. Its result arrives later as events.
    async fn submit(&mut self, command: TelephonyCommand) -> Result<(), TelephonyError>;

    /// Waits for the next burst of events (everything that happened together, in order).
    /// `None` once the telephone system has stopped for good.
    async fn next_burst(&mut self) -> Option<Vec<TelephonyEvent>>;

    /// Stops the telephone system's tasks (bounded wait).
    async fn shutdown(&mut self);
}
