//! Pacing: how many lines to open now.
//!
//! A [`Pacer`] sees a [`PacingSnapshot`] of the campaign and answers how many new dials to
//! start. It learns from [`PacingEvent`]s. The engine then caps the answer by free lines, dial
//! -able records and — for every pacer — the abandonment guard ([`abandonment::guard`]), which
//! is what makes the legal cap a guarantee rather than a hope.

pub mod abandonment;
pub mod predictive;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use abandonment::{AbandonLedger, AbandonPeriod, AbandonStatus};
pub use predictive::Predictive;

/// What a busy agent is doing, and for how long it has been doing it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgentLoad {
    /// Talking or wrapping up.
    pub phase: AgentPhase,
    /// Seconds since the phase began.
    pub elapsed_s: f64,
}

/// What a busy agent is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentPhase {
    /// On a call.
    Talking,
    /// In after-call work.
    WrapUp,
}

/// The campaign as a pacer sees it at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacingSnapshot {
    /// When the snapshot was taken.
    pub now: DateTime<Utc>,
    /// The campaign's agents not logged out (Ready, busy, reserved, previewing or paused).
    pub agents_logged_in: u32,
    /// Ready and not reserved for a call.
    pub agents_free: u32,
    /// Agents on a call.
    pub agents_talking: u32,
    /// Agents in after-call work.
    pub agents_wrap_up: u32,
    /// Busy agents with the time spent in their phase, in agent order: everyone talking or
    /// in wrap-up, or only those in wrap-up for a pacer whose [`Pacer::busy_detail`] says it
    /// reads no more (the others are in the counts above).
    pub agents_busy: Vec<AgentLoad>,
    /// Dials placed and not yet resolved (ringing, not answered).
    pub dials_in_flight: u32,
    /// Live answers waiting for an agent.
    pub calls_waiting: u32,
    /// Lines the campaign may still open.
    pub lines_free: u32,
    /// Records dialable now that the engine holds (an upper bound on useful dials).
    pub records_ready: u32,
    /// The campaign's abandonment position in its current period.
    pub abandon: AbandonStatus,
    /// A live answer not linked within this many seconds is abandoned.
    pub abandon_threshold_s: f64,
}

/// What a pacer can learn from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PacingEvent {
    /// A call was placed.
    DialPlaced,
    /// A dial resolved after `dial_s`: a live answer (`live`), or anything else.
    DialResolved {
        /// Seconds from placing to the resolution.
        dial_s: f64,
        /// Whether a person (or an undetected answer) picked up.
        live: bool,
    },
    /// A live answer reached an agent after waiting `wait_s`.
    Linked {
        /// Seconds the answer waited.
        wait_s: f64,
    },
    /// A live answer was abandoned (not linked in time, or hung up waiting).
    Abandoned {
        /// Seconds the answer waited.
        wait_s: f64,
    },
    /// A conversation ended after `talk_s` seconds.
    TalkEnded {
        /// Seconds of conversation.
        talk_s: f64,
    },
    /// An agent's wrap-up ended after `wrap_s` seconds.
    WrapUpEnded {
        /// Seconds of after-call work.
        wrap_s: f64,
    },
}

/// Which busy agents a pacer reads the elapsed time of ([`PacingSnapshot::agents_busy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusyDetail {
    /// Every agent talking or in wrap-up.
    All,
    /// Only agents in wrap-up (agents talking are counted, not listed): the engine then
    /// builds no per-agent entry for the agents on a call, most of a busy floor.
    WrapUpOnly,
}

/// A pacing policy. Implemented by the built-in modes and by simulator baselines.
pub trait Pacer: Send {
    /// Short name for reports (`predictive`, `power:2`, ...).
    fn name(&self) -> String;
    /// Learn from something that happened at `now`.
    fn observe(&mut self, now: DateTime<Utc>, event: &PacingEvent);
    /// How many new dials to start now (the engine caps the answer).
    fn dials_to_place(&mut self, snapshot: &PacingSnapshot) -> u32;
    /// A pacer with its own clock (e.g. a fixed decision loop) says when to ask it next.
    fn next_decision_at(&self, _now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
    /// Whether this pacer places calls beyond the free agents, spending the abandonment
    /// budget. A pacer that does not (progressive, preview) promises no abandons, so the
    /// engine keeps an agent who asks to leave until the dials it covers have resolved,
    /// instead of letting it go within the budget.
    fn dials_ahead(&self) -> bool {
        true
    }
    /// Which busy agents [`PacingSnapshot::agents_busy`] lists for this pacer.
    fn busy_detail(&self) -> BusyDetail {
        BusyDetail::All
    }
}

/// One call per free agent, counting calls already dialing or waiting.
#[derive(Debug, Clone, Default)]
pub struct Progressive;

impl Pacer for Progressive {
    fn dials_ahead(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "progressive".into()
    }
    fn observe(&mut self, _now: DateTime<Utc>, _event: &PacingEvent) {}
    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        s.agents_free
            .saturating_sub(s.dials_in_flight + s.calls_waiting)
    }
}

/// A fixed ratio of lines per free agent (VICIdial RATIO).
#[derive(Debug, Clone)]
pub struct Power {
    /// Lines per free agent.
    pub ratio: f64,
}

impl Pacer for Power {
    fn name(&self) -> String {
        format!("power:{}", self.ratio)
    }
    fn observe(&mut self, _now: DateTime<Utc>, _event: &PacingEvent) {}
    fn dials_to_place(&mut self, s: &PacingSnapshot) -> u32 {
        let target = (f64::from(s.agents_free) * self.ratio).round() as u32;
        target.saturating_sub(s.dials_in_flight + s.calls_waiting)
    }
}

/// Preview places nothing on its own: the agent asks for each dial.
#[derive(Debug, Clone, Default)]
pub struct Preview;

impl Pacer for Preview {
    fn dials_ahead(&self) -> bool {
        false
    }
    fn name(&self) -> String {
        "preview".into()
    }
    fn observe(&mut self, _now: DateTime<Utc>, _event: &PacingEvent) {}
    fn dials_to_place(&mut self, _s: &PacingSnapshot) -> u32 {
        0
    }
}

/// The built-in pacer of a dial mode.
pub fn for_mode(mode: &crate::model::campaign::DialMode) -> Box<dyn Pacer> {
    use crate::model::campaign::DialMode;
    match mode {
        DialMode::Preview => Box::new(Preview),
        DialMode::Progressive => Box::new(Progressive),
        DialMode::Power { ratio } => Box::new(Power { ratio: *ratio }),
        DialMode::Predictive => Box::new(Predictive::default()),
    }
}
