//! Everything the engine asks its driver to do or tells it.

use super::reject::{InputName, RejectReason};
use crate::model::blacklist::{BlacklistEntry, BlacklistScope};
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{CallOutcome, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::{FinishReason, SpoolRecord};
use crate::rules::eligibility::SkipReason;
use crate::rules::ordering::DueClass;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One output. [`Output::Timeout`] is always last: it says there is nothing more to do before
/// that moment unless an input arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum Output {
    /// Persist this before acting on any later output (the attempt ledger depends on it).
    Store(StoreUpdate),
    /// Place a call.
    Originate(OriginateIntent),
    /// Hang up a call.
    Hangup { call: CallId },
    /// Offer up to `limit` due records of the campaign, in dial order, with
    /// [`crate::InputKind::RecordsOffered`].
    NeedRecords { campaign: CampaignId, limit: u32 },
    /// Something worth logging, showing or auditing.
    Event(Event),
    /// Call `handle_input` with a tick at this time (or earlier, if something happens).
    Timeout(Option<DateTime<Utc>>),
}

/// A call to place. Every string in it is checked: numbers are digits, campaign settings were
/// validated, variables carry no CR, LF or NUL (backends must still escape them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginateIntent {
    pub call: CallId,
    pub campaign: CampaignId,
    pub record: RecordId,
    pub number: PhoneNumber,
    /// The campaign's routing prefix followed by the number's dial string.
    pub dial_string: String,
    pub caller_id: String,
    pub ring_timeout_s: u32,
    /// The agent the call must go to (owner, same-agent schedule, preview, manual).
    pub agent: Option<AgentId>,
    /// Record data for the agent's screen and the dialplan, order kept.
    pub variables: Vec<(String, String)>,
    /// The campaign's routing, shared by all its intents.
    pub routing: std::sync::Arc<crate::model::campaign::Routing>,
    /// Whether answering-machine detection may run on this call. `false` when the campaign
    /// counts AMD false positives (`abandon.amd_false_positive_rate` > 0) and its abandonment
    /// budget cannot absorb one more machine verdict: the call is then placed without AMD and
    /// an answer goes to an agent like a live one (a machine costs the agent a few seconds; a
    /// person is never hung up on). Backends that run AMD must skip it when this is `false`.
    pub amd: bool,
}

/// Changes the store must persist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "update", rename_all = "snake_case")]
pub enum StoreUpdate {
    /// A ledger row, committed before the Originate leaves.
    AttemptStarted {
        call: CallId,
        campaign: CampaignId,
        record: RecordId,
        number: PhoneNumber,
        agent: Option<AgentId>,
        at: DateTime<Utc>,
    },
    /// Closes the ledger row.
    AttemptEnded {
        call: CallId,
        record: RecordId,
        outcome: CallOutcome,
        at: DateTime<Utc>,
    },
    /// The record's new state (full snapshot: status, numbers, next eligible time, history).
    /// Boxed: every output moves through a queue, and a record is the largest thing in one.
    Record(Box<SpoolRecord>),
    /// A do-not-call entry to persist.
    BlacklistAdded(BlacklistEntry),
    /// Do-not-call entries lifted by [`crate::Command::BlacklistRemove`].
    BlacklistRemoved {
        /// The E.164 number.
        number: String,
        /// The scope lifted.
        scope: BlacklistScope,
    },
}

/// Call-progress states (ECCP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Progress {
    Placing,
    Dialing,
    Ringing,
    OnQueue,
    Success {
        agent: AgentId,
    },
    Hangup,
    ShortCall,
    Failure {
        class: FailureClass,
    },
    NoAnswer,
    Abandoned,
    Machine,
    Unknown,
    /// Never placed, through no fault of the callee (see [`crate::RefusalCause`]).
    NotPlaced,
}

/// Why a record was dialed: every dial is auditable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialReason {
    pub class: DueClassCode,
    /// The pacer that asked for the line.
    pub pacer: String,
    /// Lines the pacer wanted this round, after the line limit and the abandonment guard.
    pub wanted: u32,
}

/// Serializable mirror of [`DueClass`], plus the ways outside pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DueClassCode {
    Schedule,
    AutomaticTask,
    Normal,
    WhenFreeTask,
    Preview,
    Manual,
}

impl From<DueClass> for DueClassCode {
    fn from(c: DueClass) -> Self {
        match c {
            DueClass::Schedule => DueClassCode::Schedule,
            DueClass::AutomaticTask => DueClassCode::AutomaticTask,
            DueClass::Normal => DueClassCode::Normal,
            DueClass::WhenFreeTask => DueClassCode::WhenFreeTask,
        }
    }
}

/// Things that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Dialed {
        at: DateTime<Utc>,
        campaign: CampaignId,
        record: RecordId,
        call: CallId,
        number: String,
        reason: DialReason,
    },
    Skipped {
        at: DateTime<Utc>,
        campaign: CampaignId,
        record: RecordId,
        reason: SkipReason,
    },
    Progress {
        at: DateTime<Utc>,
        campaign: CampaignId,
        call: CallId,
        record: RecordId,
        progress: Progress,
    },
    AgentLinked {
        at: DateTime<Utc>,
        agent: AgentId,
        call: CallId,
    },
    AgentUnlinked {
        at: DateTime<Utc>,
        agent: AgentId,
        call: CallId,
    },
    /// An agent's pause or logout took effect (perhaps later than asked, when dials in flight
    /// needed it to keep the abandonment budget). `paused` is the reason; `None` = logged out.
    AgentAway {
        at: DateTime<Utc>,
        agent: AgentId,
        paused: Option<String>,
    },
    PreviewOffered {
        at: DateTime<Utc>,
        agent: AgentId,
        record: RecordId,
    },
    RecordFinished {
        at: DateTime<Utc>,
        record: RecordId,
        reason: FinishReason,
    },
    /// An input that could not be applied (unknown call, bad command); nothing changed.
    Rejected {
        /// When.
        at: DateTime<Utc>,
        /// The kind of input.
        input: InputName,
        /// Why (its `Display` is a sentence).
        reason: RejectReason,
    },
    /// The telephone system cannot place calls: no Originate leaves until
    /// [`Event::TelephonyUp`]. Calls in flight go on.
    TelephonyDown {
        /// When.
        at: DateTime<Utc>,
        /// What the backend reported.
        reason: String,
        /// When the engine tries again on its own (after a refusal it saw itself); `None`:
        /// when the backend reports the telephone system up.
        retry_at: Option<DateTime<Utc>>,
    },
    /// Dialing resumes.
    TelephonyUp {
        /// When.
        at: DateTime<Utc>,
    },
}
