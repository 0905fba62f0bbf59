//! Everything that can happen to the engine. Each input carries the time it happened.

use crate::model::blacklist::{BlacklistEntry, BlacklistScope};
use crate::model::campaign::Campaign;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, FailureClass};
use crate::model::record::SpoolRecord;
use crate::rules::disposition::Disposition;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One input: what happened and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub now: DateTime<Utc>,
    pub kind: InputKind,
}

impl Input {
    pub fn new(now: DateTime<Utc>, kind: InputKind) -> Input {
        Input { now, kind }
    }

    pub fn tick(now: DateTime<Utc>) -> Input {
        Input::new(now, InputKind::Tick)
    }
}

/// The kinds of input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "input", rename_all = "snake_case")]
pub enum InputKind {
    /// Time passed; nothing else happened.
    Tick,
    /// Start (or update) a campaign. Boxed: a campaign is large and rare, while every input
    /// is moved a few times on its way in.
    Campaign(Box<Campaign>),
    /// Stop dialing a campaign; calls in flight finish.
    StopCampaign { campaign: CampaignId },
    /// The store's answer to [`crate::Output::NeedRecords`]: the due records, in dial order.
    /// Replaces what the engine held for the campaign (records in flight are kept).
    RecordsOffered {
        campaign: CampaignId,
        records: Vec<SpoolRecord>,
    },
    /// An agent changed state.
    Agent { agent: AgentId, event: AgentEvent },
    /// A backend reported progress of a call.
    Call { call: CallId, event: CallEvent },
    /// An operator or agent command.
    Command(Command),
}

/// Agent state changes, from the agent's desktop or the telephone system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "agent_event", rename_all = "snake_case")]
pub enum AgentEvent {
    LoggedIn {
        campaigns: Vec<CampaignId>,
    },
    /// Ready for calls (also ends wrap-up and breaks).
    Ready,
    Paused {
        reason: String,
    },
    /// Pause once the current call (and its wrap-up) is over.
    PauseAfterCall {
        reason: String,
    },
    /// Log out once the current call (and its wrap-up) is over.
    LogoutAfterCall,
    /// Started wrap-up (after-call work) outside a call the engine saw end.
    WrapUp,
    LoggedOut,
}

/// Call progress reported by a backend, for a call the engine asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call_event", rename_all = "snake_case")]
pub enum CallEvent {
    /// The backend accepted the Originate; the network is being dialed.
    OriginateAccepted,
    /// The backend could not place the call at all.
    OriginateRefused {
        reason: String,
    },
    Ringing,
    Answered {
        kind: AnswerKind,
    },
    /// The answered call is waiting in the queue for an agent.
    Queued,
    /// An agent took the call.
    Linked {
        agent: AgentId,
    },
    /// The call ended. `failure` classifies an unanswered call; `None` after an answer.
    HungUp {
        failure: Option<FailureClass>,
    },
    /// The backend lost track of the call (connection dropped, restart): fate unknown.
    Lost,
}

/// Commands from operators and agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// An agent's result for a record, with what the agent does next.
    Dispose {
        /// Who disposed, for the campaign log (a same-agent callback names its agent in the
        /// schedule itself).
        agent: Option<AgentId>,
        record: RecordId,
        disposition: Disposition,
    },
    BlacklistAdd(BlacklistEntry),
    BlacklistRemove {
        number: String,
        scope: BlacklistScope,
    },
    /// Preview mode: the agent asks to dial the record offered to it.
    PreviewDial {
        agent: AgentId,
        record: RecordId,
    },
    /// Preview mode: the agent passes on the record offered to it.
    PreviewSkip {
        agent: AgentId,
        record: RecordId,
    },
    /// Hang up a call (supervisor, or the agent's desktop).
    Hangup {
        call: CallId,
    },
}
