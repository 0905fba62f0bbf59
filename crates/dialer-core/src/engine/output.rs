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
use std::sync::Arc;

/// One output. [`Output::Timeout`] is always last: it says there is nothing more to do before
/// that moment unless an input arrives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum Output {
    /// Persist this before acting on any later output (the attempt ledger depends on it).
    Store(StoreUpdate),
    /// Place a call.
    Originate(Box<OriginateIntent>),
    /// Hang up a call.
    Hangup {
        /// The call to end.
        call: CallId,
    },
    /// Put a linked call's callee on hold (`hold`) or take it off hold; the telephone system
    /// reports the change with [`crate::CallEvent::Held`] / [`crate::CallEvent::Resumed`].
    Hold {
        /// The call.
        call: CallId,
        /// `true` to hold, `false` to resume.
        hold: bool,
    },
    /// Offer up to `limit` due records of the campaign, in dial order, with
    /// [`crate::InputKind::RecordsOffered`].
    NeedRecords {
        /// The campaign whose hopper runs low.
        campaign: CampaignId,
        /// At most this many records.
        limit: u32,
    },
    /// Something worth logging, showing or auditing.
    Event(Event),
    /// Call `handle_input` with a tick at this time (or earlier, if something happens).
    Timeout(Option<DateTime<Utc>>),
}

/// A call to place. Every string in it is checked: numbers are digits, campaign settings were
/// validated, variables carry no CR, LF or NUL (backends must still escape them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginateIntent {
    /// The id the engine minted for the call: every report about it names it.
    pub call: CallId,
    /// The campaign dialing.
    pub campaign: CampaignId,
    /// The record dialed.
    pub record: RecordId,
    /// The callee's number, validated.
    pub number: PhoneNumber,
    /// The campaign's routing prefix followed by the number's dial string.
    pub dial_string: String,
    /// The caller id to present, as the campaign states it.
    pub caller_id: String,
    /// Seconds to let the callee's phone ring before giving up (a no-answer).
    pub ring_timeout_s: u32,
    /// The agent the call must go to (owner, same-agent schedule, preview, manual).
    pub agent: Option<AgentId>,
    /// Which leg rings first. [`DialOrder::AgentFirst`] only with `agent` set: the backend
    /// rings that agent and dials the callee once the agent answers.
    pub order: crate::model::record::DialOrder,
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
        /// The call placed.
        call: CallId,
        /// Its campaign.
        campaign: CampaignId,
        /// The record dialed.
        record: RecordId,
        /// The number dialed.
        number: PhoneNumber,
        /// The agent it was placed for, if any.
        agent: Option<AgentId>,
        /// When it was placed.
        at: DateTime<Utc>,
    },
    /// Closes the ledger row.
    AttemptEnded {
        /// The call that ended.
        call: CallId,
        /// The record it dialed.
        record: RecordId,
        /// How it ended, for the callee's history and the ledger.
        outcome: CallOutcome,
        /// When it really ended (a late report's own time, clamped to the call's life).
        at: DateTime<Utc>,
    },
    /// The record's new state (full snapshot: status, numbers, next eligible time, history).
    /// Shared (`Arc`): every output moves through a queue, and the engine keeps the same copy
    /// (in flight, then for late dispositions), so the store is handed it without a copy.
    Record(Arc<SpoolRecord>),
    /// The abandonment books of one legal period of a campaign changed (a live answer, a
    /// machine verdict or an abandon was booked): the period's new totals, to persist in
    /// place of the old. A restarted engine is handed them back
    /// ([`crate::Command::RestoreAbandonBooks`]), so a period's cap holds across restarts.
    AbandonBooks {
        /// The campaign.
        campaign: CampaignId,
        /// The period and its totals.
        period: crate::pacing::AbandonPeriod,
    },
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
    /// The engine asked for the call (the Originate is leaving).
    Placing,
    /// The backend accepted the Originate and is dialing.
    Dialing,
    /// The callee's phone rings.
    Ringing,
    /// Answered, waiting in the queue for an agent.
    OnQueue,
    /// An agent took the call.
    Success {
        /// The agent.
        agent: AgentId,
    },
    /// The callee of a linked call was put on hold.
    OnHold,
    /// The callee was taken off hold.
    OffHold,
    /// A conversation ended normally.
    Hangup,
    /// A conversation shorter than the campaign's short-call threshold ended.
    ShortCall,
    /// The call failed before an answer (busy, congestion, invalid, ...).
    Failure {
        /// How it failed.
        class: FailureClass,
    },
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// A live answer hung up, or was linked too late, without an agent in time.
    Abandoned,
    /// A machine answered.
    Machine,
    /// The backend lost the call: its fate is unknown.
    Unknown,
    /// Never placed, through no fault of the callee (see [`crate::RefusalCause`]).
    NotPlaced,
}

impl Progress {
    /// Every code [`Progress::code`] gives, once each (the store's campaign log `CHECK` list
    /// is tested against it).
    pub const CODES: [&'static str; 15] = [
        "placing",
        "dialing",
        "ringing",
        "on_queue",
        "success",
        "on_hold",
        "off_hold",
        "hangup",
        "short_call",
        "failure",
        "no_answer",
        "abandoned",
        "machine",
        "unknown",
        "not_placed",
    ];

    /// The progress state's stable code (ECCP names, snake case), as the campaign log stores
    /// it.
    pub fn code(&self) -> &'static str {
        match self {
            Progress::Placing => "placing",
            Progress::Dialing => "dialing",
            Progress::Ringing => "ringing",
            Progress::OnQueue => "on_queue",
            Progress::Success { .. } => "success",
            Progress::OnHold => "on_hold",
            Progress::OffHold => "off_hold",
            Progress::Hangup => "hangup",
            Progress::ShortCall => "short_call",
            Progress::Failure { .. } => "failure",
            Progress::NoAnswer => "no_answer",
            Progress::Abandoned => "abandoned",
            Progress::Machine => "machine",
            Progress::Unknown => "unknown",
            Progress::NotPlaced => "not_placed",
        }
    }
}

/// Why a record was dialed: every dial is auditable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialReason {
    /// Which kind of due record it was, or the way outside pacing (preview, manual).
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
    /// A scheduled callback came due.
    Schedule,
    /// A task dialed as soon as it is due.
    AutomaticTask,
    /// A record in the ordinary rotation.
    Normal,
    /// A task dialed when an agent is free and nothing else is due.
    WhenFreeTask,
    /// An agent asked to dial the record offered in preview.
    Preview,
    /// A click-to-call task for one agent, outside pacing.
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
    /// A record was dialed.
    Dialed {
        /// When.
        at: DateTime<Utc>,
        /// Its campaign.
        campaign: CampaignId,
        /// The record.
        record: RecordId,
        /// The call placed.
        call: CallId,
        /// The number dialed (E.164).
        number: String,
        /// Why this record, now.
        reason: DialReason,
    },
    /// A record was not dialed now; a reason that passes soon is reported once while it
    /// lasts, others take the record out of the hopper until the store offers it again.
    Skipped {
        /// When.
        at: DateTime<Utc>,
        /// Its campaign.
        campaign: CampaignId,
        /// The record.
        record: RecordId,
        /// Why it was not dialed.
        reason: SkipReason,
    },
    /// A call made progress.
    Progress {
        /// When.
        at: DateTime<Utc>,
        /// Its campaign.
        campaign: CampaignId,
        /// The call.
        call: CallId,
        /// The record it dials.
        record: RecordId,
        /// Where the call is now.
        progress: Progress,
    },
    /// An agent was connected to a call.
    AgentLinked {
        /// When.
        at: DateTime<Utc>,
        /// The agent.
        agent: AgentId,
        /// The call.
        call: CallId,
    },
    /// A linked call ended for its agent.
    AgentUnlinked {
        /// When.
        at: DateTime<Utc>,
        /// The agent.
        agent: AgentId,
        /// The call.
        call: CallId,
        /// Seconds of conversation, rounded (`None` when the call's end was lost).
        talk_s: Option<u32>,
        /// Shorter than the campaign's short-call threshold (ECCP ShortCall).
        short_call: bool,
    },
    /// An agent's desktop stayed silent past the session's inactivity timeout: the agent is
    /// logged out (after the current call and wrap-up, like a logout it asked for;
    /// [`Event::AgentAway`] says when it took effect).
    AgentTimedOut {
        /// When the timeout ran out.
        at: DateTime<Utc>,
        /// The agent.
        agent: AgentId,
        /// The timeout, in seconds.
        timeout_s: u32,
    },
    /// An agent's pause or logout took effect (perhaps later than asked, when dials in flight
    /// needed it to keep the abandonment budget). `paused` is the reason; `None` = logged out.
    AgentAway {
        /// When it took effect.
        at: DateTime<Utc>,
        /// The agent.
        agent: AgentId,
        /// The pause's reason; `None`: logged out.
        paused: Option<String>,
    },
    /// Preview mode: a record was offered to an agent, who dials or skips it.
    PreviewOffered {
        /// When.
        at: DateTime<Utc>,
        /// The agent.
        agent: AgentId,
        /// The record offered.
        record: RecordId,
    },
    /// A record will never be dialed again.
    RecordFinished {
        /// When.
        at: DateTime<Utc>,
        /// The record.
        record: RecordId,
        /// Why it is finished.
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
