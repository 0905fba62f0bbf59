//! Everything that can happen to the engine. Each input carries the time it happened.

use crate::model::blacklist::{BlacklistEntry, BlacklistScope};
use crate::model::campaign::Campaign;
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, FailureClass};
use crate::model::record::SpoolRecord;
use crate::rules::disposition::Disposition;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One input: what happened and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// When it happened (UTC). The engine's clock never runs backwards: an input older than
    /// the latest one is applied at the latest one's time.
    pub now: DateTime<Utc>,
    /// What happened.
    pub kind: InputKind,
}

impl Input {
    /// `kind`, happening at `now`.
    pub fn new(now: DateTime<Utc>, kind: InputKind) -> Input {
        Input { now, kind }
    }

    /// Nothing happened but time passing to `now`: timers due fire and the engine decides
    /// what to dial.
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
    StopCampaign {
        /// The campaign.
        campaign: CampaignId,
    },
    /// The store's answer to [`crate::Output::NeedRecords`]: the due records, in dial order.
    /// Replaces what the engine held for the campaign (records in flight are kept).
    RecordsOffered {
        /// The campaign asked for; records of another campaign are ignored.
        campaign: CampaignId,
        /// The due records, in the store's dial order. Shared (`Arc`): the store may keep the
        /// same copies, and the engine holds them until it dials them without a copy.
        records: Vec<Arc<SpoolRecord>>,
    },
    /// An agent changed state.
    Agent {
        /// The agent.
        agent: AgentId,
        /// What changed.
        event: AgentEvent,
    },
    /// A backend reported progress of a call.
    Call {
        /// The call, as minted by the engine in its Originate.
        call: CallId,
        /// What happened to it.
        event: CallEvent,
    },
    /// An operator or agent command. [`crate::Engine::apply_command`] applies one and
    /// answers at once; through `handle_input` a refusal becomes [`crate::Event::Rejected`].
    Command(Box<Command>),
    /// The telephone system's health, from the backend: while it is down no call is placed.
    Telephony(TelephonyHealth),
}

/// Whether calls can be placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum TelephonyHealth {
    /// Connected and accepting requests: dialing resumes.
    Up,
    /// Disconnected, shutting down or refusing requests: no Originate leaves until `Up`.
    Down {
        /// What the backend saw, for people.
        reason: String,
    },
}

/// Why the backend could not place a call, and so who pays for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum RefusalCause {
    /// The telephone system could not or would not place it (down, shutting down, refused the
    /// request itself). Never the callee's fault: no attempt is charged, the record goes back
    /// to the hopper as if never dialed, and dialing pauses (see [`crate::Event::TelephonyDown`]).
    Pbx {
        /// The kind of fault.
        fault: PbxFault,
        /// What the telephone system said.
        detail: String,
    },
    /// The backend refused before sending (its own line limit, a request it cannot encode).
    /// Not the callee's fault either: no attempt is charged, but the record is held back by
    /// the campaign's congestion delay so one bad request cannot loop.
    Local {
        /// What the backend said.
        detail: String,
    },
    /// A two-step (agent-first) call whose agent's phone did not answer or could not be
    /// reached: the callee was never dialed. Not the callee's fault: no attempt is charged,
    /// and the record is held back by the campaign's congestion delay, like [`Self::Local`].
    AgentUnreachable {
        /// What the telephone system said.
        detail: String,
    },
    /// The network refused the call to this callee: charged like a failed attempt of that class.
    Callee {
        /// The failure, as for a hang-up before answer.
        class: FailureClass,
        /// What the network said.
        detail: String,
    },
}

/// The telephone system's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PbxFault {
    /// Not connected, or it did not answer the request in time.
    Unreachable,
    /// It is shutting down or restarting.
    ShuttingDown,
    /// It refused the request itself: permission, caller id, no such extension or context.
    RequestRefused,
}

impl std::fmt::Display for RefusalCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefusalCause::Pbx { fault, detail } => {
                let what = match fault {
                    PbxFault::Unreachable => "the telephone system is unreachable",
                    PbxFault::ShuttingDown => "the telephone system is shutting down",
                    PbxFault::RequestRefused => "the telephone system refused the request",
                };
                write!(f, "{what}: {detail}")
            }
            RefusalCause::Local { detail } => write!(f, "the backend refused to send it: {detail}"),
            RefusalCause::AgentUnreachable { detail } => {
                write!(
                    f,
                    "the agent's phone did not answer the two-step call: {detail}"
                )
            }
            RefusalCause::Callee { class, detail } => {
                write!(f, "the network refused the callee ({class:?}): {detail}")
            }
        }
    }
}

/// Agent state changes, from the agent's desktop or the telephone system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "agent_event", rename_all = "snake_case")]
pub enum AgentEvent {
    /// Logged in (or changed campaigns): Ready if it was logged out. Every campaign named
    /// must have been started; its free time counts for the first running one.
    LoggedIn {
        /// The campaigns the agent takes calls for, in order of preference.
        campaigns: Vec<CampaignId>,
        /// Log the agent out after this many seconds without a [`AgentEvent::Ping`] (ECCP
        /// `loginagent` timeout, `pingagent`); `None`: the session never times out. A login
        /// while logged in sets the timeout anew.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inactivity_timeout_s: Option<u32>,
    },
    /// The agent's desktop is still there (ECCP `pingagent`): the session's inactivity
    /// timeout starts again. Nothing else changes.
    Ping,
    /// Ready for calls (also ends wrap-up and breaks).
    Ready,
    /// On a break now (after the current call and wrap-up if it has one; held back while
    /// the campaign's dials in flight need it).
    Paused {
        /// The reason the agent gave.
        reason: String,
    },
    /// Pause once the current call (and its wrap-up) is over.
    PauseAfterCall {
        /// The reason the agent gave.
        reason: String,
    },
    /// Log out once the current call (and its wrap-up) is over.
    LogoutAfterCall,
    /// Started wrap-up (after-call work) outside a call the engine saw end.
    WrapUp,
    /// Logged out (after the current call and wrap-up if it has one; held back like a
    /// pause while the campaign's dials in flight need it).
    LoggedOut,
}

/// Call progress reported by a backend, for a call the engine asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "call_event", rename_all = "snake_case")]
pub enum CallEvent {
    /// The backend accepted the Originate; the network is being dialed.
    OriginateAccepted,
    /// The backend could not place the call at all; the cause says who pays for it.
    OriginateRefused {
        /// Why, and whose fault.
        cause: RefusalCause,
    },
    /// The callee's phone is ringing.
    Ringing,
    /// The callee's line answered (the first report counts). A live answer waits for an
    /// agent; past the campaign's threshold it counts as abandoned.
    Answered {
        /// Who answered: a person, a machine, or undetected.
        kind: AnswerKind,
    },
    /// The answered call is waiting in the queue for an agent.
    Queued,
    /// An agent took the call.
    Linked {
        /// The agent talking to the callee.
        agent: AgentId,
    },
    /// The call ended. `failure` classifies an unanswered call; `None` after an answer.
    HungUp {
        /// How an unanswered call failed; `None` after an answer.
        failure: Option<FailureClass>,
        /// When the call really ended, if the backend learned it later than it happened (an
        /// event gap: the PBX's CDR, `AgentComplete` talk time). Talk time and the ledger's
        /// end time use it; `None` means "now".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_at: Option<DateTime<Utc>>,
    },
    /// The callee was put on hold (the agent's phone, or [`Command::Hold`] carried out by the
    /// telephone system). Only a linked call can be held; a repeated report changes nothing.
    Held,
    /// The callee was taken off hold.
    Resumed,
    /// The backend lost track of the call (connection dropped, restart): fate unknown. Even a
    /// call that was answered or linked ends as [`crate::CallOutcome::Unknown`], retried after
    /// `retry.unknown_s`: nobody knows how long it lasted.
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
        /// The record disposed (held in the hopper or just called; not with a call in
        /// flight).
        record: RecordId,
        /// The result and what happens next.
        disposition: Disposition,
    },
    /// Adds a number to the do-not-call list; it is never dialed again in its scope.
    BlacklistAdd(BlacklistEntry),
    /// Removes a number from the do-not-call list in one scope.
    BlacklistRemove {
        /// The number as stored (E.164).
        number: String,
        /// The scope it is removed from (all campaigns, or one).
        scope: BlacklistScope,
    },
    /// Preview mode: the agent asks to dial the record offered to it.
    PreviewDial {
        /// The agent the record was offered to.
        agent: AgentId,
        /// The record offered.
        record: RecordId,
    },
    /// Preview mode: the agent passes on the record offered to it.
    PreviewSkip {
        /// The agent the record was offered to.
        agent: AgentId,
        /// The record offered.
        record: RecordId,
    },
    /// Hang up a call (supervisor, or the agent's desktop).
    Hangup {
        /// The call.
        call: CallId,
    },
    /// Put the callee of a linked call on hold (ECCP `hold`). The engine asks the telephone
    /// system ([`crate::Output::Hold`]); the call counts as held when the system reports
    /// [`CallEvent::Held`].
    Hold {
        /// The call.
        call: CallId,
    },
    /// Take the callee of a held call off hold (ECCP `unhold`).
    Unhold {
        /// The call.
        call: CallId,
    },
    /// The record was removed from the spool by an operator: drop it from the hopper (and
    /// from a preview). Refused while a call on it is in flight.
    Forget {
        /// The record.
        record: RecordId,
    },
    /// Calls of unknown fate: placed by an earlier run of the dialer that stopped without
    /// seeing their end (their ledger rows were closed `unknown` when it restarted). They
    /// may still be up on the PBX, so each holds one of the campaign's lines until the PBX
    /// reports its end or `until` passes, whichever comes first. Nothing else about them is
    /// tracked: their records and ledger rows are already settled.
    HoldLines {
        /// Their campaign.
        campaign: CampaignId,
        /// The calls, as the earlier run numbered them.
        calls: Vec<CallId>,
        /// When a call not reported ended by then is taken to be over.
        until: DateTime<Utc>,
    },
    /// The abandonment books an earlier run persisted for a campaign
    /// ([`crate::StoreUpdate::AbandonBooks`]): they replace the campaign's, so the budget of a
    /// legal period counts what was booked before a restart. Sent when the campaign is
    /// loaded, before its first call.
    RestoreAbandonBooks {
        /// The campaign.
        campaign: CampaignId,
        /// Its periods, in any order.
        periods: Vec<crate::pacing::AbandonPeriod>,
    },
}
