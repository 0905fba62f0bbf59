//! Why an input was refused: one typed reason, shared by [`crate::Event::Rejected`] and by
//! [`crate::Engine::apply_command`]'s result, so callers match on data, never on text.

use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::rules::disposition::DispositionError;
use crate::rules::eligibility::SkipReason;
use crate::rules::schedule::ScheduleError;
use serde::{Deserialize, Serialize};

/// The kind of input that was refused (small and `Copy`: the details are in the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputName {
    /// [`crate::InputKind::Tick`].
    Tick,
    /// [`crate::InputKind::Campaign`].
    Campaign,
    /// [`crate::InputKind::StopCampaign`].
    StopCampaign,
    /// [`crate::InputKind::RecordsOffered`].
    RecordsOffered,
    /// [`crate::InputKind::Agent`].
    Agent,
    /// [`crate::InputKind::Call`].
    Call,
    /// [`crate::InputKind::Telephony`].
    Telephony,
    /// [`crate::Command::Dispose`].
    Dispose,
    /// [`crate::Command::BlacklistAdd`].
    BlacklistAdd,
    /// [`crate::Command::BlacklistRemove`].
    BlacklistRemove,
    /// [`crate::Command::PreviewDial`].
    PreviewDial,
    /// [`crate::Command::PreviewSkip`].
    PreviewSkip,
    /// [`crate::Command::Hangup`].
    Hangup,
    /// [`crate::Command::Hold`].
    Hold,
    /// [`crate::Command::Unhold`].
    Unhold,
    /// [`crate::Command::Forget`].
    Forget,
    /// [`crate::Command::HoldLines`].
    HoldLines,
    /// [`crate::Command::RestoreAbandonBooks`].
    RestoreAbandonBooks,
    /// A record's data, refused while building an Originate (the record is still dialed,
    /// without the refused variable).
    RecordData,
}

impl std::fmt::Display for InputName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputName::Tick => "tick",
            InputName::Campaign => "campaign",
            InputName::StopCampaign => "stop campaign",
            InputName::RecordsOffered => "records offered",
            InputName::Agent => "agent event",
            InputName::Call => "call event",
            InputName::Telephony => "telephony health",
            InputName::Dispose => "disposition",
            InputName::BlacklistAdd => "blacklist add",
            InputName::BlacklistRemove => "blacklist remove",
            InputName::PreviewDial => "preview dial",
            InputName::PreviewSkip => "preview skip",
            InputName::Hangup => "hang-up",
            InputName::Hold => "hold",
            InputName::Unhold => "unhold",
            InputName::Forget => "forget record",
            InputName::HoldLines => "hold lines of calls of unknown fate",
            InputName::RestoreAbandonBooks => "restore the abandonment books",
            InputName::RecordData => "record data",
        })
    }
}

/// Why an input could not be applied. Nothing changed because of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", content = "detail", rename_all = "snake_case")]
pub enum RejectReason {
    /// No campaign of that name was started.
    #[error("campaign {0} is not known to the engine")]
    UnknownCampaign(CampaignId),
    /// The campaign settings are invalid (the field is named).
    #[error("campaign setting `{field}`: {problem}")]
    InvalidCampaign {
        /// The first bad field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The engine does not hold that record (not offered by the store, or forgotten).
    #[error("record {0} is not held by the engine (it must be offered by the store first)")]
    UnknownRecord(RecordId),
    /// A call on the record is in flight: the change waits until the call ends.
    #[error("record {0} has a call in flight; try again after the call ends")]
    RecordInFlight(RecordId),
    /// No call in flight has that id.
    #[error("{0} is not a call in flight")]
    UnknownCall(CallId),
    /// The call is not linked to an agent, so there is nobody to hold it for.
    #[error("{0} is not linked to an agent, so it cannot be put on hold or taken off it")]
    CallNotLinked(CallId),
    /// Hold asked for a call already on hold, or unhold for one that is not.
    #[error("{call} is {} on hold", if *on_hold { "already" } else { "not" })]
    HoldState {
        /// The call.
        call: CallId,
        /// Whether it is on hold now.
        on_hold: bool,
    },
    /// The agent never logged in.
    #[error("agent {0} is not known (log in first)")]
    UnknownAgent(AgentId),
    /// The agent is logged out.
    #[error("agent {0} is logged out (log in first)")]
    AgentLoggedOut(AgentId),
    /// A login whose inactivity timeout is zero seconds (it would log the agent out at once).
    #[error("agent {agent}: an inactivity timeout must be at least 1 second")]
    InvalidAgentTimeout {
        /// The agent logging in.
        agent: AgentId,
    },
    /// The change would give the record a number that another live record of the campaign
    /// already has; two records sharing a callee would defeat per-record caps and lockouts.
    #[error("number {number} is already live on record {other} of the campaign, so record {record} cannot take it")]
    NumberLiveOnAnotherRecord {
        /// The E.164 number.
        number: String,
        /// The record the change was for.
        record: RecordId,
        /// The live record that has the number.
        other: RecordId,
    },
    /// The change would dial a number on the do-not-call list.
    #[error("number {number} is on the do-not-call list, so record {record} cannot take it")]
    Blacklisted {
        /// The E.164 number.
        number: String,
        /// The record the change was for.
        record: RecordId,
    },
    /// The callback cannot be scheduled.
    #[error("{0}")]
    InvalidSchedule(ScheduleError),
    /// The disposition cannot apply to the record.
    #[error("{0}")]
    Disposition(DispositionError),
    /// A preview answer for a record the agent was not offered.
    #[error("agent {agent} was not offered record {record} in preview{}", offered.as_ref().map(|o| format!(" (it was offered record {o})")).unwrap_or_default())]
    NotOffered {
        /// The agent answering.
        agent: AgentId,
        /// The record it named.
        record: RecordId,
        /// What it was offered, if anything.
        offered: Option<RecordId>,
    },
    /// The record may not be dialed now.
    #[error("record {record} may not be dialed now: {reason}")]
    NotEligible {
        /// The record.
        record: RecordId,
        /// Why not.
        reason: SkipReason,
    },
    /// The telephone system is down: no call can be placed now.
    #[error("the telephone system is down ({reason}); no call can be placed until it is back")]
    TelephonyDown {
        /// What the backend reported.
        reason: String,
    },
    /// A record variable whose name or value is unsafe (dropped from the Originate).
    #[error("variable {name:?} of record {record} was dropped: a name is a letter or `_` followed by letters, digits and `_`, and a value carries no CR, LF or NUL")]
    UnsafeVariable {
        /// The record.
        record: RecordId,
        /// The variable's name.
        name: String,
    },
}

impl From<ScheduleError> for RejectReason {
    fn from(e: ScheduleError) -> Self {
        RejectReason::InvalidSchedule(e)
    }
}

impl From<DispositionError> for RejectReason {
    fn from(e: DispositionError) -> Self {
        match e {
            DispositionError::Schedule(s) => RejectReason::InvalidSchedule(s),
            other => RejectReason::Disposition(other),
        }
    }
}
