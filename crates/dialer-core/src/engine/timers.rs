//! Everything that happens at a set time, in one table.
//!
//! The table is an index, not an owner: each timer mirrors a deadline held by a state (a
//! waiting call's [`CallPhase::Waiting`](super::calls::CallPhase) deadline, an agent's timed
//! [`AgentState::WrapUp`], the telephony pause's `retry_at`), and is set or cancelled by the
//! one function that changes that state.

use super::agent::AgentState;
use super::coordinator::Engine;
use super::telephony::Telephony;
use crate::engine::output::{Event, Output};
use crate::model::ids::{AgentId, CallId};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;

/// Things that happen at a set time: a closed list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A live answer still waiting turns into an abandon (fires strictly after its time).
    Abandon(CallId),
    /// An agent's timed wrap-up ends.
    WrapUpEnds(AgentId),
    /// Dialing tries again after the telephone system refused a call.
    TelephonyRetry,
    /// A call of unknown fate from an earlier run stops holding its line
    /// ([`crate::Command::HoldLines`]).
    HeldLineEnds(CallId),
    /// An agent's session runs out of its inactivity timeout (no ping since).
    AgentSilent(AgentId),
}

impl Timer {
    /// Whether the timer is due at `now`: an abandon strictly after its time (a call linked at
    /// its very deadline was not abandoned), every other timer at its time.
    fn due(&self, at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        match self {
            Timer::Abandon(_) => at < now,
            Timer::WrapUpEnds(_)
            | Timer::TelephonyRetry
            | Timer::HeldLineEnds(_)
            | Timer::AgentSilent(_) => at <= now,
        }
    }

    /// The first instant at which [`Timer::due`] holds (engine times are whole milliseconds).
    fn wake_at(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Timer::Abandon(_) => at + Duration::milliseconds(1),
            Timer::WrapUpEnds(_)
            | Timer::TelephonyRetry
            | Timer::HeldLineEnds(_)
            | Timer::AgentSilent(_) => at,
        }
    }
}

/// Every pending timer, soonest first.
#[derive(Debug, Default)]
pub(super) struct Timers {
    table: BTreeSet<(DateTime<Utc>, Timer)>,
}

impl Timers {
    /// Sets `timer` to fire at `at`.
    pub(super) fn set(&mut self, at: DateTime<Utc>, timer: Timer) {
        self.table.insert((at, timer));
    }

    /// Cancels `timer` set for `at` (nothing if it is not set).
    pub(super) fn cancel(&mut self, at: DateTime<Utc>, timer: Timer) {
        self.table.remove(&(at, timer));
    }

    /// Takes out every timer due at `now`, soonest first.
    fn take_due(&mut self, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, Timer)> {
        // Most decisions have nothing due: no walk, no allocation.
        if self.table.first().is_none_or(|(t, _)| *t > now) {
            return Vec::new();
        }
        let due: Vec<(DateTime<Utc>, Timer)> = self
            .table
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter(|(t, timer)| timer.due(*t, now))
            .cloned()
            .collect();
        for entry in &due {
            self.table.remove(entry);
        }
        due
    }

    /// The first instant at which some timer is due.
    pub(super) fn next_wake(&self) -> Option<DateTime<Utc>> {
        let mut soonest: Option<DateTime<Utc>> = None;
        for (at, timer) in &self.table {
            if soonest.is_some_and(|t| *at >= t) {
                break;
            }
            let wake = timer.wake_at(*at);
            if soonest.is_none_or(|t| wake < t) {
                soonest = Some(wake);
            }
        }
        soonest
    }
}

impl Engine {
    /// Fires every timer due at `now`: abandons first (strictly after their deadline), then
    /// wrap-ups that ran out, then the telephony retry.
    pub(super) fn fire_timers(&mut self, now: DateTime<Utc>) {
        let due = self.floor.timers.take_due(now);
        let mut expired = Vec::new();
        let mut wrap_ups = Vec::new();
        let mut retry = false;
        let mut silent = Vec::new();
        for (at, timer) in due {
            match timer {
                Timer::Abandon(id) => expired.push(id),
                Timer::WrapUpEnds(agent) => wrap_ups.push((at, agent)),
                Timer::TelephonyRetry => retry = true,
                Timer::HeldLineEnds(id) => self.release_held_line(id),
                Timer::AgentSilent(agent) => silent.push((at, agent)),
            }
        }
        for id in expired {
            self.wait_expired(now, id);
        }
        for (at, agent) in wrap_ups {
            let still = self
                .floor
                .agents
                .get(&agent)
                .is_some_and(|a| a.state == AgentState::WrapUp { until: Some(at) });
            if still {
                self.end_wrap_up(now, &agent);
            }
        }
        for (at, agent) in silent {
            self.session_timed_out(now, at, &agent);
        }
        if retry {
            if let Telephony::Down {
                retry_at: Some(_), ..
            } = self.floor.telephony
            {
                self.floor.telephony = Telephony::Up;
                self.floor
                    .out
                    .push_back(Output::Event(Event::TelephonyUp { at: now }));
            }
        }
    }

    pub(super) fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let now = self.now?;
        let mut next: Option<DateTime<Utc>> = None;
        let mut consider = |t: DateTime<Utc>| {
            let t = t.max(now);
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        if let Some(t) = self.floor.timers.next_wake() {
            consider(t);
        }
        for run in self.campaigns.values().filter(|r| !r.stopped) {
            if let Some(t) = run.pacer.next_decision_at(now) {
                consider(t);
            }
            if !run.request_outstanding {
                let base = run.last_request.unwrap_or(now);
                consider(base + Duration::seconds(i64::from(self.cfg.refill_interval_s)));
            }
        }
        next
    }
}
