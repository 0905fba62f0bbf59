//! Spool records and what can be attached to them: schedules and dialer tasks.

use super::ids::{AgentId, CallId, CampaignId, RecordId, ScheduleId, TaskId};
use super::phone::PhoneNumber;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// Priority reserved for scheduled calls (uContact); normal records use 2 and above.
pub const SCHEDULE_PRIORITY: u32 = 1;

/// One of a record's numbers and how far it has been tried.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberSlot {
    /// The number.
    pub number: PhoneNumber,
    /// Attempts made on this number.
    pub attempts: u32,
    /// Whether it may still be dialed.
    pub state: NumberState,
}

impl NumberSlot {
    /// A number not tried yet.
    pub fn new(number: PhoneNumber) -> NumberSlot {
        NumberSlot {
            number,
            attempts: 0,
            state: NumberState::Active,
        }
    }
}

/// Whether a number may still be dialed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberState {
    /// May be dialed.
    Active,
    /// Its attempts are used up.
    Spent,
    /// The network said it does not exist (or refused it): never retried.
    Invalid,
    /// Blacklisted when its turn came.
    Blacklisted,
}

/// Where a record is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RecordStatus {
    /// Waiting for its next eligible time.
    Pending,
    /// A call is being placed on it.
    InFlight {
        /// The call placed on it.
        call: CallId,
    },
    /// Taken out of dialing by an operator without being finished (UCCX INACTIVE): never
    /// offered to the engine nor dialed until it is reactivated, when it is pending again
    /// with its attempts and numbers as they were.
    Inactive {
        /// When it was deactivated.
        since: DateTime<Utc>,
    },
    /// No more dialing.
    Finished {
        /// Why it is finished.
        reason: FinishReason,
    },
}

/// Why a record left the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Connected to an agent (ECCP Success).
    Completed,
    /// Every number used its attempts, or the record cap was hit (EXCEEDEDNUMBEROFATTEMPTS).
    AttemptsExhausted,
    /// No number left that may be dialed (invalid or blacklisted).
    NoDialableNumber,
    /// A disposition blacklisted it.
    Blacklisted,
    /// Removed by an operator.
    Removed,
}

/// When a scheduled call is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScheduleWhen {
    /// An exact moment (uContact ScheduleDialerCall).
    At {
        /// The moment (UTC).
        at: DateTime<Utc>,
    },
    /// Any time within a daily time range over a date range, callee local time (ECCP schedulecall).
    Range {
        /// The first day (callee local date).
        start_date: NaiveDate,
        /// The last day (included).
        end_date: NaiveDate,
        /// The daily start (callee local time).
        start_time: NaiveTime,
        /// The daily end (excluded), after the start.
        end_time: NaiveTime,
    },
}

/// A callback promised to a callee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The store's id of the callback.
    pub id: ScheduleId,
    /// When it is due.
    pub when: ScheduleWhen,
    /// Only this agent may take it (ECCP sameagent, VICIdial USERONLY); `None` = anyone.
    pub agent: Option<AgentId>,
    /// Dial this number instead of the record's current one (ECCP new phone).
    pub number: Option<PhoneNumber>,
}

/// When a dialer task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskTiming {
    /// `calldate` set: at that moment.
    At {
        /// The moment (UTC).
        at: DateTime<Utc>,
    },
    /// `calldate` null: when nothing dated is due.
    WhenFree,
}

/// How a dialer task is placed (uContact `automatic` / `bulk` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Top priority, ahead of the spool.
    Automatic,
    /// Normal spool priority.
    Bulk,
    /// Click-to-call: placed at once for its agent, outside pacing.
    Manual,
}

/// A dialer task attached to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialerTask {
    /// The store's id of the task.
    pub id: TaskId,
    /// When it runs.
    pub timing: TaskTiming,
    /// How it is placed.
    pub kind: TaskKind,
    /// The agent a manual dial is for (VICIdial `agent_user`, uContact AgentCall's `agent`):
    /// the call is reserved for this agent, ahead of the record's owner. `None` for the
    /// spool's own tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentId>,
    /// How this one call is placed, beside the campaign's settings (left out when they are
    /// all the campaign's).
    #[serde(default, skip_serializing_if = "CallOptions::is_default")]
    pub call: CallOptions,
}

/// Longest per-call dial prefix accepted (trunk access codes are a few digits).
pub const MAX_DIAL_PREFIX: usize = 16;
/// Longest per-call caller id accepted.
pub const MAX_CALLER_ID: usize = 80;

/// Per-call settings of a manual dial (VICIdial `external_dial`: `dial_prefix`,
/// `group_alias`, `preview`; uContact AgentCall: `callerid`, two-step call). The campaign's
/// settings apply where a field is empty. Checked by [`CallOptions::validate`] on every path
/// that stores one; the engine places only checked options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallOptions {
    /// Caller id to present instead of the campaign's (`"Name" <number>` or a number).
    pub caller_id: Option<String>,
    /// Digits put in front of the dial string instead of the campaign's routing prefix.
    pub dial_prefix: Option<String>,
    /// Which leg rings first.
    pub order: DialOrder,
    /// Whether the agent sees the record before anything is dialed.
    pub start: ManualStart,
}

/// Which leg of a call for an agent rings first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DialOrder {
    /// The callee is dialed; once answered, the call goes to the agent held for it.
    #[default]
    CalleeFirst,
    /// uContact's two-step call: the agent's phone rings first, and the callee is dialed
    /// once the agent answers. The agent hears the callee's phone ring; nobody is ever
    /// answered into silence, so no answering-machine detection runs on it.
    AgentFirst,
}

/// When a manual dial starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualStart {
    /// At once, as soon as the agent is free.
    #[default]
    DialNow,
    /// Offered to the agent first (VICIdial `preview=YES`): nothing is dialed until the agent
    /// asks for it (`PreviewDial`); skipping it (`PreviewSkip`) drops the manual dial.
    Preview,
}

/// Why per-call options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallOptionsError {
    /// The caller id cannot be presented.
    #[error("caller id {value:?} is refused: {reason}")]
    CallerId {
        /// What was given.
        value: String,
        /// Why.
        reason: String,
    },
    /// The dial prefix is not a short string of dial digits.
    #[error(
        "dial prefix {0:?} is refused: it must be 1 to {MAX_DIAL_PREFIX} of the digits 0-9, `*` and `#`"
    )]
    DialPrefix(String),
    /// A two-step call or a preview needs the agent it is for.
    #[error("{0} needs the agent the call is for")]
    NeedsAgent(&'static str),
    /// Per-call options only apply to a manual dial.
    #[error("per-call options (caller id, dial prefix, two-step call, preview) apply only to a manual dial")]
    NotManual,
}

impl CallOptions {
    /// Whether every field is the campaign's default.
    pub fn is_default(&self) -> bool {
        *self == CallOptions::default()
    }

    /// Checks the options of a task of `kind` for `agent`: a caller id the telephone system
    /// reads as given (no CR, LF, NUL, no stray `"`, `<`, `>`, at most [`MAX_CALLER_ID`]
    /// characters), a prefix of dial digits, and an agent for a two-step call or a preview.
    pub fn validate(
        &self,
        kind: TaskKind,
        agent: Option<&AgentId>,
    ) -> Result<(), CallOptionsError> {
        if self.is_default() {
            return Ok(());
        }
        if kind != TaskKind::Manual {
            return Err(CallOptionsError::NotManual);
        }
        if let Some(cid) = &self.caller_id {
            let refuse = |reason: String| CallOptionsError::CallerId {
                value: cid.clone(),
                reason,
            };
            if cid.trim().is_empty() {
                return Err(refuse("it is empty".into()));
            }
            if cid.chars().count() > MAX_CALLER_ID {
                return Err(refuse(format!(
                    "it is longer than {MAX_CALLER_ID} characters"
                )));
            }
            if cid.chars().any(char::is_control) {
                return Err(refuse("it contains a control character".into()));
            }
            super::campaign::split_caller_id(cid).map_err(refuse)?;
        }
        if let Some(p) = &self.dial_prefix {
            if p.is_empty()
                || p.len() > MAX_DIAL_PREFIX
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
            {
                return Err(CallOptionsError::DialPrefix(p.clone()));
            }
        }
        if agent.is_none() {
            if self.order == DialOrder::AgentFirst {
                return Err(CallOptionsError::NeedsAgent(
                    "a two-step (agent-first) call",
                ));
            }
            if self.start == ManualStart::Preview {
                return Err(CallOptionsError::NeedsAgent("a preview"));
            }
        }
        Ok(())
    }
}

/// What the frequency caps need to know about past attempts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttemptHistory {
    /// Start times of recent attempts, oldest first, kept as long as a cap looks at them.
    pub recent: Vec<DateTime<Utc>>,
    /// When the record's last abandoned call was (the no-redial-after-abandon cap).
    pub last_abandoned_at: Option<DateTime<Utc>>,
    /// When an answering machine last answered (the same-day cap).
    pub last_machine_at: Option<DateTime<Utc>>,
    /// When the last conversation was (the no-redial-after-conversation cap).
    pub last_conversation_at: Option<DateTime<Utc>>,
}

/// A record in the call spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolRecord {
    /// The store's id of the record.
    pub id: RecordId,
    /// The campaign it belongs to.
    pub campaign: CampaignId,
    /// Main number first, then the alternatives in order.
    pub numbers: Vec<NumberSlot>,
    /// Index into `numbers` of the number dialed next.
    pub current: usize,
    /// Free `key=value` data for scripts and forms, order kept.
    pub data: Vec<(String, String)>,
    /// Lower dials first; 1 is reserved for schedules.
    pub priority: u32,
    /// Progressive ownership (uContact agentphone): only dialed when this agent is free.
    pub owner_agent: Option<AgentId>,
    /// The contact's id in the customer's own system, as imported.
    pub contact_id: Option<String>,
    /// The imported base (upload) the record came from.
    pub base_id: Option<u64>,
    /// IANA zone of the callee; `None` uses the campaign's. An unknown zone is never dialed.
    pub time_zone: Option<String>,
    /// Attempts on the record, all numbers together.
    pub attempts: u32,
    /// Where the record is in its life.
    pub status: RecordStatus,
    /// Not dialed before this moment (retry delay).
    pub next_eligible_at: Option<DateTime<Utc>>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// What the frequency caps need of its past attempts.
    pub history: AttemptHistory,
    /// A callback promised to the callee, if any (dialed ahead of normal records).
    pub schedule: Option<Schedule>,
    /// A dialer task attached to it, if any.
    pub task: Option<DialerTask>,
}

impl SpoolRecord {
    /// A fresh pending record with its main number and alternatives.
    pub fn new(
        id: RecordId,
        campaign: CampaignId,
        main: PhoneNumber,
        alternatives: Vec<PhoneNumber>,
        created_at: DateTime<Utc>,
    ) -> SpoolRecord {
        let mut numbers = vec![NumberSlot::new(main)];
        numbers.extend(alternatives.into_iter().map(NumberSlot::new));
        let mut rec = SpoolRecord {
            id,
            campaign,
            numbers,
            current: 0,
            data: Vec::new(),
            priority: 2,
            owner_agent: None,
            contact_id: None,
            base_id: None,
            time_zone: None,
            attempts: 0,
            status: RecordStatus::Pending,
            next_eligible_at: None,
            created_at,
            history: AttemptHistory::default(),
            schedule: None,
            task: None,
        };
        rec.merge_duplicate_numbers();
        rec
    }

    /// Whether two slots hold the same callee (by E.164): what
    /// [`SpoolRecord::merge_duplicate_numbers`] would merge, found without changing anything.
    pub fn has_duplicate_numbers(&self) -> bool {
        (1..self.numbers.len()).any(|i| {
            let e164 = self.numbers[i].number.e164();
            self.numbers[..i].iter().any(|s| s.number.e164() == e164)
        })
    }

    /// Merges slots that hold the same callee (by E.164), keeping the first position and
    /// adding up attempts, so a number listed twice can never get twice its attempt cap.
    /// Returns whether anything was merged.
    pub fn merge_duplicate_numbers(&mut self) -> bool {
        let mut merged = false;
        let mut i = 1;
        while i < self.numbers.len() {
            let (before, rest) = self.numbers.split_at(i);
            let e164 = rest[0].number.e164();
            if let Some(first) = before.iter().position(|s| s.number.e164() == e164) {
                let dup = self.numbers.remove(i);
                let keep = &mut self.numbers[first];
                keep.attempts += dup.attempts;
                if dup.state != NumberState::Active && keep.state == NumberState::Active {
                    keep.state = dup.state;
                }
                if self.current == i {
                    self.current = first;
                } else if self.current > i {
                    self.current -= 1;
                }
                merged = true;
            } else {
                i += 1;
            }
        }
        merged
    }

    /// The number the next dial would use: a schedule's new phone, else the current slot.
    pub fn number_to_dial(&self) -> Option<&PhoneNumber> {
        if let Some(n) = self.schedule.as_ref().and_then(|s| s.number.as_ref()) {
            return Some(n);
        }
        self.numbers
            .get(self.current)
            .filter(|s| s.state == NumberState::Active)
            .map(|s| &s.number)
    }

    /// Whether the record will never be dialed again.
    pub fn is_finished(&self) -> bool {
        matches!(self.status, RecordStatus::Finished { .. })
    }
}
