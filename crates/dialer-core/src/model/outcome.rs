//! How a call ended, as the core understands it.

use serde::{Deserialize, Serialize};

/// Who picked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    Human,
    Machine,
    /// No detection, or detection unsure: treated as a live answer.
    Unknown,
}

/// The class of a hang-up before answer, from the telephone network's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    Busy,
    NoAnswer,
    /// The callee's side refused the call (Q.850 21): move to the next number.
    Rejected,
    /// Network or trunk trouble: retry the same number soon.
    Congestion,
    /// The number does not exist: never retried.
    InvalidNumber,
    /// The backend could not place the call at all (Originate refused).
    OriginateFailed,
}

/// The final classification of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Talked with an agent for at least the short-call threshold (ECCP Success).
    Connected { talk_s: u32 },
    /// Talked with an agent, but less than the short-call threshold (ECCP ShortCall).
    ShortCall { talk_s: u32 },
    /// A live answer that no agent took in time (ECCP Abandoned).
    Abandoned,
    /// An answering machine, hung up by policy.
    Machine,
    /// Did not answer: busy, no answer, rejected, congestion, invalid, refused.
    Failed { class: FailureClass },
    /// The backend lost track of it (connection dropped, crash): retried after a safety delay.
    Unknown,
    /// Never placed, through no fault of the callee (the telephone system was down or refused
    /// the request, or the backend refused to send it). Charges no attempt.
    NotPlaced,
}

impl CallOutcome {
    /// A short stable code for logs, the ledger and the store.
    pub fn code(&self) -> &'static str {
        match self {
            CallOutcome::Connected { .. } => "connected",
            CallOutcome::ShortCall { .. } => "short_call",
            CallOutcome::Abandoned => "abandoned",
            CallOutcome::Machine => "machine",
            CallOutcome::Failed { class } => match class {
                FailureClass::Busy => "busy",
                FailureClass::NoAnswer => "no_answer",
                FailureClass::Rejected => "rejected",
                FailureClass::Congestion => "congestion",
                FailureClass::InvalidNumber => "invalid_number",
                FailureClass::OriginateFailed => "originate_failed",
            },
            CallOutcome::Unknown => "unknown",
            CallOutcome::NotPlaced => "not_placed",
        }
    }
}
