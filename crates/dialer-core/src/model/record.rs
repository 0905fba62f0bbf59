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
