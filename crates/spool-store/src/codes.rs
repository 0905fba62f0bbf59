//! The closed sets of codes enums are persisted as. Each mapping is total both ways; an
//! unknown code read back is corruption, never a guess.
//!
//! The spool's own columns (record status, finish reason, origin, number state) are small
//! integers under `CHECK` ranges: they sit in every record row and index entry. The ledger,
//! blacklist and log keep readable text codes; they are small and read by people.

use crate::error::{Result, StoreError};
use chrono::{DateTime, Utc};
use dialer_core::{CallOutcome, Direction, FinishReason, NumberState, Progress, TaskKind};

fn corrupt<T>(what: &str, code: &str) -> Result<T> {
    Err(StoreError::Corrupt(format!("unknown {what} code {code:?}")))
}

/// `record.status`: pending, in flight, finished, inactive (migration 8).
pub const STATUS_PENDING: i64 = 0;
pub const STATUS_IN_FLIGHT: i64 = 1;
pub const STATUS_FINISHED: i64 = 2;
pub const STATUS_INACTIVE: i64 = 3;

/// `record.finish_reason` (`CHECK (finish_reason BETWEEN 0 AND 4)`).
pub fn finish_reason(r: FinishReason) -> i64 {
    match r {
        FinishReason::Completed => 0,
        FinishReason::AttemptsExhausted => 1,
        FinishReason::NoDialableNumber => 2,
        FinishReason::Blacklisted => 3,
        FinishReason::Removed => 4,
    }
}

pub fn parse_finish_reason(v: i64) -> Result<FinishReason> {
    Ok(match v {
        0 => FinishReason::Completed,
        1 => FinishReason::AttemptsExhausted,
        2 => FinishReason::NoDialableNumber,
        3 => FinishReason::Blacklisted,
        4 => FinishReason::Removed,
        _ => return corrupt("finish reason", &v.to_string()),
    })
}

/// A number's state in `record.numbers` (one digit).
pub fn number_state(s: NumberState) -> char {
    match s {
        NumberState::Active => '0',
        NumberState::Spent => '1',
        NumberState::Invalid => '2',
        NumberState::Blacklisted => '3',
    }
}

pub fn parse_number_state(s: &str) -> Result<NumberState> {
    Ok(match s {
        "0" => NumberState::Active,
        "1" => NumberState::Spent,
        "2" => NumberState::Invalid,
        "3" => NumberState::Blacklisted,
        _ => return corrupt("number state", s),
    })
}

pub fn task_kind(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Automatic => "automatic",
        TaskKind::Bulk => "bulk",
        TaskKind::Manual => "manual",
    }
}

pub fn parse_task_kind(s: &str) -> Result<TaskKind> {
    Ok(match s {
        "automatic" => TaskKind::Automatic,
        "bulk" => TaskKind::Bulk,
        "manual" => TaskKind::Manual,
        _ => return corrupt("task kind", s),
    })
}

pub fn direction(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "I",
        Direction::Outbound => "O",
        Direction::Both => "B",
    }
}

pub fn parse_direction(s: &str) -> Result<Direction> {
    Ok(match s {
        "I" => Direction::Inbound,
        "O" => Direction::Outbound,
        "B" => Direction::Both,
        _ => return corrupt("direction", s),
    })
}

/// The ledger's outcome code is the core's own stable code.
pub fn outcome(o: &CallOutcome) -> &'static str {
    o.code()
}

/// Rebuilds an outcome from its code and the talk time kept beside it (the core's one
/// definition, [`CallOutcome::from_code`]).
pub fn parse_outcome(s: &str, talk_s: Option<u32>) -> Result<CallOutcome> {
    match CallOutcome::from_code(s, talk_s) {
        Some(o) => Ok(o),
        None => corrupt("outcome", s),
    }
}

pub fn talk_s(o: &CallOutcome) -> Option<u32> {
    o.talk_s()
}

/// The campaign-log status of a progress report (ECCP names, snake case): the core's
/// [`Progress::code`].
pub fn progress_log_status(p: &Progress) -> &'static str {
    p.code()
}

/// The ledger's in-call progress after a report, if the report moves it.
pub fn progress_ledger_state(p: &Progress) -> Option<&'static str> {
    match p {
        Progress::Placing => Some("placing"),
        Progress::Dialing => Some("dialing"),
        Progress::Ringing => Some("ringing"),
        Progress::OnQueue => Some("on_queue"),
        Progress::Success { .. } => Some("linked"),
        _ => None,
    }
}

/// Milliseconds since the epoch, the unit every time column uses.
pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_ms(v: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("time {v} ms out of range")))
}

/// Ids are u64 in the core and signed in SQLite.
pub fn id_to_sql(what: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::IdOutOfRange { what, value: v })
}

pub fn id_from_sql(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative id {v}")))
}
