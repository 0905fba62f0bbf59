//! Whether calls may be placed: the telephone system's health.

use super::coordinator::Engine;
use super::timers::Timer;
use crate::engine::input::TelephonyHealth;
use crate::engine::output::{Event, Output};
use chrono::{DateTime, Utc};

/// Whether calls may be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Telephony {
    Up,
    Down {
        reason: String,
        since: DateTime<Utc>,
        /// Set when the engine paused on its own after a refusal; `None`: the backend said so.
        retry_at: Option<DateTime<Utc>>,
    },
}

impl Engine {
    // ----- telephony -----

    pub(super) fn telephony_health(&mut self, now: DateTime<Utc>, health: TelephonyHealth) {
        match health {
            TelephonyHealth::Up => self.set_telephony_up(now),
            TelephonyHealth::Down { reason } => self.set_telephony_down(now, reason, None),
        }
    }

    pub(super) fn set_telephony_down(
        &mut self,
        now: DateTime<Utc>,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    ) {
        if let Telephony::Down {
            retry_at: Some(t), ..
        } = &self.floor.telephony
        {
            self.floor.timers.cancel(*t, Timer::TelephonyRetry);
        }
        let since = match &self.floor.telephony {
            Telephony::Down { since, .. } => *since,
            Telephony::Up => now,
        };
        if let Some(t) = retry_at {
            self.floor.timers.set(t, Timer::TelephonyRetry);
        }
        let changed = match &self.floor.telephony {
            Telephony::Down {
                reason: r,
                retry_at: t,
                ..
            } => r != &reason || t != &retry_at,
            Telephony::Up => true,
        };
        self.floor.telephony = Telephony::Down {
            reason: reason.clone(),
            since,
            retry_at,
        };
        if changed {
            self.floor
                .out
                .push_back(Output::Event(Event::TelephonyDown {
                    at: now,
                    reason,
                    retry_at,
                }));
        }
    }

    pub(super) fn set_telephony_up(&mut self, now: DateTime<Utc>) {
        if let Telephony::Down { retry_at, .. } = &self.floor.telephony {
            if let Some(t) = retry_at {
                self.floor.timers.cancel(*t, Timer::TelephonyRetry);
            }
            self.floor.telephony = Telephony::Up;
            self.floor
                .out
                .push_back(Output::Event(Event::TelephonyUp { at: now }));
        }
    }
}
