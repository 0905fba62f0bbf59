//! The abandonment books: every entry a call makes in its campaign's
//! [`AbandonLedger`](crate::pacing::AbandonLedger), and what the pacer learns with it, goes
//! through one of these functions, called by every path (a link, a hang-up, a timer). Each
//! entry queues the period's new totals for the store ([`StoreUpdate::AbandonBooks`]) before
//! anything the engine decides next, so a restarted engine gets the same books back.

use crate::engine::output::{Output, StoreUpdate};
use crate::model::campaign::MachinePolicy;
use crate::model::outcome::AnswerKind;
use crate::pacing::{AbandonPeriod, PacingEvent};
use chrono::{DateTime, Utc};

use super::campaigns::CampaignRun;
use super::coordinator::Outbox;

impl CampaignRun {
    /// A call of the campaign was answered `dial_s` seconds after it was placed: the pacer
    /// learns how the dial resolved, a live answer is booked, and a machine is booked as a
    /// possible person hung up on when the campaign hangs up on machines. Returns whether the
    /// call is to be hung up (a machine, and the campaign says so).
    pub(super) fn book_answer(
        &mut self,
        now: DateTime<Utc>,
        dial_s: f64,
        kind: AnswerKind,
        out: &mut Outbox,
    ) -> bool {
        let live = kind != AnswerKind::Machine;
        self.pacer
            .observe(now, &PacingEvent::DialResolved { dial_s, live });
        if live {
            let period = self.ledger.live_answer(now);
            self.persist_books(period, out);
            false
        } else if self.campaign.machine == MachinePolicy::HangUp {
            // Possibly a person hung up on: the false-positive estimate counts it.
            let period = self.ledger.machine_answer(now);
            self.persist_books(period, out);
            true
        } else {
            false
        }
    }

    /// A live answer at `answered_at` waited `wait_s` seconds without an agent, past the
    /// campaign's threshold or until the callee hung up: booked as abandoned at `now`, and the
    /// pacer learns of it. Called once per call: the call's phase records that it was booked.
    pub(super) fn book_abandon(
        &mut self,
        answered_at: DateTime<Utc>,
        now: DateTime<Utc>,
        wait_s: f64,
        out: &mut Outbox,
    ) {
        let period = self.ledger.abandon(answered_at, now);
        self.persist_books(period, out);
        self.pacer.observe(now, &PacingEvent::Abandoned { wait_s });
    }

    fn persist_books(&self, period: AbandonPeriod, out: &mut Outbox) {
        out.push_back(Output::Store(StoreUpdate::AbandonBooks {
            campaign: self.campaign.id.clone(),
            period,
        }));
    }
}
