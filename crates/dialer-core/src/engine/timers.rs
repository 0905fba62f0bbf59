//! Everything that happens at a set time, in one table.

use crate::engine::output::{Event, Output};
use crate::model::ids::{AgentId, CallId};
use crate::pacing::PacingEvent;
use chrono::{DateTime, Duration, Utc};

use super::agents::*;
use super::calls::*;
use super::coordinator::*;
use super::telephony::*;

/// Things that happen at a set time, in one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A live answer still waiting turns into an abandon (fires strictly after its time).
    Abandon(CallId),
    /// An agent's timed wrap-up ends.
    WrapUpEnds(AgentId),
    /// Dialing tries again after the telephone system refused a call.
    TelephonyRetry,
}

impl Engine {
    /// Fires every timer due at `now`: abandons first (strictly after their deadline), then
    /// wrap-ups that ran out, then the telephony retry.
    pub(super) fn fire_timers(&mut self, now: DateTime<Utc>) {
        let due: Vec<(DateTime<Utc>, Timer)> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter(|(t, timer)| !matches!(timer, Timer::Abandon(_)) || *t < now)
            .cloned()
            .collect();
        let mut expired = Vec::new();
        let mut wrap_ups = Vec::new();
        let mut retry = false;
        for entry in due {
            self.timers.remove(&entry);
            match entry.1 {
                Timer::Abandon(id) => {
                    if let Some(at) = self.calls.get(&id).and_then(|c| c.waiting_since()) {
                        expired.push((id, at));
                    }
                }
                Timer::WrapUpEnds(agent) => wrap_ups.push((entry.0, agent)),
                Timer::TelephonyRetry => retry = true,
            }
        }
        for (id, at) in expired {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            call.abandon_counted = true;
            let cid = call.campaign.clone();
            if let Some(run) = self.campaigns.get_mut(&cid) {
                run.ledger.abandon(at, now);
                run.pacer.observe(
                    now,
                    &PacingEvent::Abandoned {
                        wait_s: secs(now - at),
                    },
                );
            }
        }
        for (at, agent) in wrap_ups {
            let still = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.state == AgentState::WrapUp { until: Some(at) });
            if still {
                self.end_wrap_up(now, &agent);
            }
        }
        if retry {
            if let Telephony::Down {
                retry_at: Some(_), ..
            } = self.telephony
            {
                self.telephony = Telephony::Up;
                self.out
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
        // An abandon fires strictly after its deadline; every other timer at its time.
        let mut soonest: Option<DateTime<Utc>> = None;
        for (at, timer) in &self.timers {
            if soonest.is_some_and(|t| *at >= t) {
                break;
            }
            let wake = match timer {
                Timer::Abandon(_) => *at + Duration::milliseconds(1),
                _ => *at,
            };
            if soonest.is_none_or(|t| wake < t) {
                soonest = Some(wake);
            }
        }
        if let Some(t) = soonest {
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
