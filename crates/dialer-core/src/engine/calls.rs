//! Calls in flight: their phases, the table that holds them, and the per-campaign counts
//! that follow every phase change.

use super::reject::RejectReason;
use super::timers::{Timer, Timers};
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::AnswerKind;
use crate::model::phone::PhoneNumber;
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap as HashMap;

/// Where a call is in its life. What the call counts for in pacing ([`PacingClass`]) and
/// when it turns into an abandon are derived from this, never kept beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallPhase {
    /// Placed; nobody answered yet.
    Dialing,
    /// A machine answered; nobody was linked.
    Machine {
        /// When it answered.
        answered_at: DateTime<Utc>,
    },
    /// A person (or an undetected answer) waits for an agent; at `deadline` (the answer plus
    /// the campaign's abandonment threshold) the wait counts as abandoned.
    Waiting {
        /// When it answered.
        since: DateTime<Utc>,
        /// How it answered (never [`AnswerKind::Machine`]).
        kind: AnswerKind,
        /// When it counts as abandoned if nobody takes it.
        deadline: DateTime<Utc>,
    },
    /// Waited past its deadline: booked as abandoned, and still waiting.
    Abandoned {
        /// When it answered.
        since: DateTime<Utc>,
        /// How it answered.
        kind: AnswerKind,
    },
    /// Linked to an agent.
    Linked {
        /// The agent talking.
        agent: AgentId,
        /// When it was linked.
        at: DateTime<Utc>,
        /// When and how it was answered, if the answer was reported (it may come after the
        /// link).
        answered: Option<(DateTime<Utc>, AnswerKind)>,
        /// Since when the callee is on hold, if it is.
        on_hold: Option<DateTime<Utc>>,
    },
}

impl CallPhase {
    /// When and how the call was answered, if it was.
    pub(super) fn answered(&self) -> Option<(DateTime<Utc>, AnswerKind)> {
        match self {
            CallPhase::Dialing => None,
            CallPhase::Machine { answered_at } => Some((*answered_at, AnswerKind::Machine)),
            CallPhase::Waiting { since, kind, .. } | CallPhase::Abandoned { since, kind } => {
                Some((*since, *kind))
            }
            CallPhase::Linked { answered, .. } => *answered,
        }
    }

    /// When the call turns into an abandon if nobody takes it.
    fn deadline(&self) -> Option<DateTime<Utc>> {
        match self {
            CallPhase::Waiting { deadline, .. } => Some(*deadline),
            _ => None,
        }
    }
}

/// How a call counts for pacing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PacingClass {
    /// Not counted: reserved for an agent (covered by that agent), answered by a machine, or
    /// linked after its answer.
    Covered,
    /// Not answered yet (a call linked before its answer was reported stays here until the
    /// answer comes).
    Dialing,
    /// Answered live, not linked: an agent is owed.
    Waiting,
}

/// A call in flight.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// Its campaign.
    pub(super) campaign: CampaignId,
    /// The record dialed.
    pub(super) record: RecordId,
    /// The number dialed.
    pub(super) number: PhoneNumber,
    /// `number`'s key in [`Calls`]'s index by callee ([`number_key`]), made once.
    number_key: u128,
    /// The agent it was placed for (owner, schedule, preview, manual task), if any. Never
    /// changes: a reserved call is covered by its agent for its whole life.
    pub(super) reserved_agent: Option<AgentId>,
    /// When it was placed.
    pub(super) placed_at: DateTime<Utc>,
    /// When the backend reported it waiting in the queue.
    pub(super) queued: Option<DateTime<Utc>>,
    /// A live answer not linked within this long counts as abandoned.
    abandon_threshold: Duration,
    /// Where it is: private, changed only by [`Calls::set_phase`], which keeps the counters
    /// and the abandon timer in step.
    phase: CallPhase,
    /// Placed with answering-machine detection allowed ([`crate::OriginateIntent::amd`]).
    amd: bool,
}

impl Call {
    /// A call placed at `placed_at`, dialing.
    pub(super) fn placed(
        campaign: CampaignId,
        record: RecordId,
        number: PhoneNumber,
        reserved_agent: Option<AgentId>,
        placed_at: DateTime<Utc>,
        abandon_threshold: Duration,
        amd: bool,
    ) -> Call {
        Call {
            amd,
            campaign,
            record,
            number_key: number_key(number.e164()),
            number,
            reserved_agent,
            placed_at,
            queued: None,
            abandon_threshold,
            phase: CallPhase::Dialing,
        }
    }

    /// Where the call is.
    pub(super) fn phase(&self) -> &CallPhase {
        &self.phase
    }

    /// The phase an answer at `now` moves the call to; `None` if it was already answered
    /// (the first report counts). A live answer starts the abandonment clock.
    pub(super) fn on_answer(&self, now: DateTime<Utc>, kind: AnswerKind) -> Option<CallPhase> {
        match &self.phase {
            CallPhase::Dialing if kind == AnswerKind::Machine => {
                Some(CallPhase::Machine { answered_at: now })
            }
            CallPhase::Dialing => Some(CallPhase::Waiting {
                since: now,
                kind,
                deadline: now + self.abandon_threshold,
            }),
            CallPhase::Linked {
                agent,
                at,
                answered: None,
                on_hold,
            } => Some(CallPhase::Linked {
                agent: agent.clone(),
                at: *at,
                answered: Some((now, kind)),
                on_hold: *on_hold,
            }),
            _ => None,
        }
    }

    /// Whether it may still bring a machine verdict: placed with AMD, not answered yet.
    fn amd_pending(&self) -> bool {
        self.amd && self.phase.answered().is_none()
    }

    fn pacing_class(&self) -> PacingClass {
        if self.reserved_agent.is_some() {
            return PacingClass::Covered;
        }
        match &self.phase {
            CallPhase::Dialing | CallPhase::Linked { answered: None, .. } => PacingClass::Dialing,
            CallPhase::Waiting { .. } | CallPhase::Abandoned { .. } => PacingClass::Waiting,
            CallPhase::Machine { .. } | CallPhase::Linked { .. } => PacingClass::Covered,
        }
    }
}

/// A campaign's calls in flight, counted: lines in use, unreserved calls not answered yet,
/// unreserved live answers waiting for an agent. Owned by the campaign, changed only by
/// [`Calls`] as calls are placed, change phase and end, so a pacing snapshot needs no walk
/// over calls and the counts cannot drift from the calls.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CallCounts {
    lines: u32,
    dialing: u32,
    waiting: u32,
    amd_unanswered: u32,
    /// Lines held by calls of unknown fate from an earlier run ([`Calls::hold`]).
    held: u32,
}

impl CallCounts {
    /// Lines in use: calls in flight, and calls of unknown fate from an earlier run.
    pub(super) fn lines(&self) -> u32 {
        self.lines + self.held
    }
    /// Unreserved calls not answered yet.
    pub(super) fn dialing(&self) -> u32 {
        self.dialing
    }
    /// Unreserved live answers waiting for an agent.
    pub(super) fn waiting(&self) -> u32 {
        self.waiting
    }
    /// Gives back a line held by a call of unknown fate.
    pub(super) fn release_held(&mut self) {
        self.held = self.held.saturating_sub(1);
    }
    /// Calls placed with AMD and not answered yet: each may still bring a machine verdict.
    pub(super) fn amd_unanswered(&self) -> u32 {
        self.amd_unanswered
    }
    fn add(&mut self, class: PacingClass) {
        match class {
            PacingClass::Dialing => self.dialing += 1,
            PacingClass::Waiting => self.waiting += 1,
            PacingClass::Covered => {}
        }
    }
    fn sub(&mut self, class: PacingClass) {
        match class {
            PacingClass::Dialing => self.dialing -= 1,
            PacingClass::Waiting => self.waiting -= 1,
            PacingClass::Covered => {}
        }
    }
}

/// Every call in flight, by id and by callee. The only owner of calls: a campaign keeps
/// their [`CallCounts`], an agent the id of its call.
#[derive(Debug, Default)]
pub(super) struct Calls {
    by_id: HashMap<CallId, Call>,
    /// The call in flight to each callee, keyed by [`number_key`].
    by_number: HashMap<u128, CallId>,
    /// Calls of unknown fate from an earlier run, each holding a line of its campaign until
    /// its end is reported or the time given passes.
    held: HashMap<CallId, (CampaignId, DateTime<Utc>)>,
}

impl Calls {
    /// The call `id`, if in flight.
    pub(super) fn get(&self, id: &CallId) -> Option<&Call> {
        self.by_id.get(id)
    }
    /// Whether `id` is a call of unknown fate from an earlier run holding a line.
    pub(super) fn is_held(&self, id: CallId) -> bool {
        self.held.contains_key(&id)
    }
    /// Whether `id` is in flight.
    pub(super) fn contains(&self, id: &CallId) -> bool {
        self.by_id.contains_key(id)
    }
    /// How many calls are in flight.
    pub(super) fn len(&self) -> usize {
        self.by_id.len()
    }
    /// Every call in flight, in no order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&CallId, &Call)> {
        self.by_id.iter()
    }
    /// The call in flight to `e164`, if any.
    pub(super) fn to_number(&self, e164: &str) -> Option<CallId> {
        self.by_number.get(&number_key(e164)).copied()
    }
    /// Whether a call to `e164` is in flight.
    pub(super) fn number_in_flight(&self, e164: &str) -> bool {
        self.by_number.contains_key(&number_key(e164))
    }

    /// Holds a line of the campaign (`counts`) for call `id` of an earlier run until `until`;
    /// false if the call is tracked already (in flight or held).
    pub(super) fn hold(
        &mut self,
        id: CallId,
        campaign: CampaignId,
        until: DateTime<Utc>,
        counts: &mut CallCounts,
    ) -> bool {
        if self.by_id.contains_key(&id) || self.held.contains_key(&id) {
            return false;
        }
        self.held.insert(id, (campaign, until));
        counts.held += 1;
        true
    }

    /// Stops holding the line of call `id`: its campaign and the time set, if it was held.
    /// The caller gives the line back to the campaign's counts ([`CallCounts::release_held`]).
    pub(super) fn unhold(&mut self, id: CallId) -> Option<(CampaignId, DateTime<Utc>)> {
        self.held.remove(&id)
    }

    /// Starts tracking a call just placed; `counts` are its campaign's.
    pub(super) fn place(&mut self, id: CallId, call: Call, counts: &mut CallCounts) {
        counts.lines += 1;
        counts.add(call.pacing_class());
        counts.amd_unanswered += u32::from(call.amd_pending());
        self.by_number.insert(call.number_key, id);
        self.by_id.insert(id, call);
    }

    /// Notes when the backend reported the call queued (the first report counts).
    pub(super) fn queued(&mut self, id: CallId, now: DateTime<Utc>) {
        if let Some(c) = self.by_id.get_mut(&id) {
            c.queued.get_or_insert(now);
        }
    }

    /// Puts a linked call's callee on hold (`Some(since)`) or takes it off (`None`). Holding
    /// changes no count: a held call keeps its line and its agent.
    pub(super) fn set_on_hold(
        &mut self,
        id: CallId,
        hold: Option<DateTime<Utc>>,
    ) -> Result<(), RejectReason> {
        let call = self
            .by_id
            .get_mut(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        match &mut call.phase {
            CallPhase::Linked { on_hold, .. } => {
                *on_hold = hold;
                Ok(())
            }
            _ => Err(RejectReason::CallNotLinked(id)),
        }
    }

    /// Moves a call to `phase`: its campaign's `counts` and the abandon timer follow in the
    /// same step.
    pub(super) fn set_phase(
        &mut self,
        id: CallId,
        phase: CallPhase,
        counts: &mut CallCounts,
        timers: &mut Timers,
    ) {
        let Some(call) = self.by_id.get_mut(&id) else {
            return;
        };
        let (class, deadline) = (call.pacing_class(), call.phase.deadline());
        let amd_pending = call.amd_pending();
        call.phase = phase;
        counts.sub(class);
        counts.add(call.pacing_class());
        counts.amd_unanswered =
            counts.amd_unanswered + u32::from(call.amd_pending()) - u32::from(amd_pending);
        let new_deadline = call.phase.deadline();
        if deadline != new_deadline {
            if let Some(d) = deadline {
                timers.cancel(d, Timer::Abandon(id));
            }
            if let Some(d) = new_deadline {
                timers.set(d, Timer::Abandon(id));
            }
        }
    }

    /// Stops tracking a call that ended; its campaign's `counts` and its abandon timer follow.
    pub(super) fn end(
        &mut self,
        id: CallId,
        counts: &mut CallCounts,
        timers: &mut Timers,
    ) -> Option<Call> {
        let call = self.by_id.remove(&id)?;
        counts.lines -= 1;
        counts.sub(call.pacing_class());
        counts.amd_unanswered -= u32::from(call.amd_pending());
        if let Some(d) = call.phase.deadline() {
            timers.cancel(d, Timer::Abandon(id));
        }
        if self.by_number.get(&call.number_key) == Some(&id) {
            self.by_number.remove(&call.number_key);
        }
        Some(call)
    }
}

/// A callee's E.164 digits as a number: no allocation per call. Each digit takes four bits,
/// as the digit plus one (never zero, so `012` and `12` differ); a number has at most 23
/// digits and a key holds 32, so distinct valid numbers get distinct keys (malformed ones could
/// only collide, which holds back a dial, never adds one).
fn number_key(e164: &str) -> u128 {
    e164.bytes()
        .filter(u8::is_ascii_digit)
        .fold(0u128, |k, b| (k << 4) | u128::from(b - b'0' + 1))
}

/// A duration in seconds, to the millisecond.
pub(super) fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}
