//! How a call ended, as the core understands it.

use serde::{Deserialize, Serialize};

/// Who picked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// A person.
    Human,
    /// An answering machine or voicemail.
    Machine,
    /// No detection, or detection unsure: treated as a live answer.
    Unknown,
}

/// The class of a hang-up before answer, from the telephone network's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The line was busy: retry the same number after the busy delay.
    Busy,
    /// Nobody answered within the ring timeout.
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
    Connected {
        /// Seconds of conversation, rounded.
        talk_s: u32,
    },
    /// Talked with an agent, but less than the short-call threshold (ECCP ShortCall).
    ShortCall {
        /// Seconds of conversation, rounded.
        talk_s: u32,
    },
    /// A live answer that no agent took in time (ECCP Abandoned).
    Abandoned,
    /// An answering machine, hung up by policy.
    Machine,
    /// Did not answer: busy, no answer, rejected, congestion, invalid, refused.
    Failed {
        /// How it failed.
        class: FailureClass,
    },
    /// The backend lost track of it (connection dropped, crash): retried after a safety delay.
    Unknown,
    /// Never placed, through no fault of the callee (the telephone system was down or refused
    /// the request, or the backend refused to send it). Charges no attempt.
    NotPlaced,
}

impl CallOutcome {
    /// Every outcome code [`CallOutcome::code`] gives, once each: the one definition the
    /// store's ledger and reports read (its `CHECK` list is tested against it).
    pub const CODES: [&'static str; 12] = [
        "connected",
        "short_call",
        "abandoned",
        "machine",
        "busy",
        "no_answer",
        "rejected",
        "congestion",
        "invalid_number",
        "originate_failed",
        "unknown",
        "not_placed",
    ];

    /// Rebuilds an outcome from its [`code`](CallOutcome::code) and the talk time kept beside
    /// it (0 if missing); `None` for a code that is not one.
    pub fn from_code(code: &str, talk_s: Option<u32>) -> Option<CallOutcome> {
        let failed = |class| CallOutcome::Failed { class };
        let talk_s = talk_s.unwrap_or(0);
        Some(match code {
            "connected" => CallOutcome::Connected { talk_s },
            "short_call" => CallOutcome::ShortCall { talk_s },
            "abandoned" => CallOutcome::Abandoned,
            "machine" => CallOutcome::Machine,
            "busy" => failed(FailureClass::Busy),
            "no_answer" => failed(FailureClass::NoAnswer),
            "rejected" => failed(FailureClass::Rejected),
            "congestion" => failed(FailureClass::Congestion),
            "invalid_number" => failed(FailureClass::InvalidNumber),
            "originate_failed" => failed(FailureClass::OriginateFailed),
            "unknown" => CallOutcome::Unknown,
            "not_placed" => CallOutcome::NotPlaced,
            _ => return None,
        })
    }

    /// The talk time an outcome carries (a conversation), if any.
    pub fn talk_s(&self) -> Option<u32> {
        match self {
            CallOutcome::Connected { talk_s } | CallOutcome::ShortCall { talk_s } => Some(*talk_s),
            _ => None,
        }
    }

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
