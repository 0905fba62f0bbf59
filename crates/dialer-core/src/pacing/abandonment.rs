//! Abandonment accounting and the guard that keeps every legal period under its cap.
//!
//! Periods follow the rules: the FTC measures "each successive 30-day period" of a campaign
//! (not a rolling window); Ofcom measures each calendar day. Periods are counted in the
//! campaign's zone from the first day the campaign dialed.
//!
//! The budget of the current period is `cap × live − abandoned`. Every abandoned live answer
//! lowers it by `1 − cap`, so allowing at most `floor(budget)` calls at risk of abandonment
//! at any moment keeps the period at or under the cap, whatever happens to those calls.
//!
//! Answering-machine detection hangs up on some live people (false positives) whom the
//! engine never sees. Each machine verdict adds the campaign's estimate
//! (`AbandonPolicy::amd_false_positive_rate`) to the period's abandoned count, so the budget
//! is `cap × live − abandoned − estimate × machines`.

use crate::model::campaign::{AbandonPolicy, AbandonWindow};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The abandonment position of the current period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AbandonStatus {
    /// Live answers booked in the period.
    pub live_answers: u64,
    /// Abandons booked in the period (including the AMD false-positive estimate, rounded
    /// down).
    pub abandoned: u64,
    /// The campaign's cap (abandoned / live answers).
    pub cap: f64,
    /// `cap × live − abandoned`: how many more abandons the period can absorb now.
    pub budget: f64,
    /// The first day of the period, in the campaign's zone; `None` before the first input.
    pub period_start: Option<NaiveDate>,
}

impl AbandonStatus {
    /// Abandoned / live answers (0 with no live answer yet).
    pub fn rate(&self) -> f64 {
        if self.live_answers == 0 {
            0.0
        } else {
            self.abandoned as f64 / self.live_answers as f64
        }
    }
}

/// The books of one legal period: what the engine persists each time they change
/// ([`crate::StoreUpdate::AbandonBooks`]) and restores after a restart
/// ([`crate::Command::RestoreAbandonBooks`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbandonPeriod {
    /// The first day of the period, in the campaign's zone.
    pub start: NaiveDate,
    /// Live answers booked in it.
    pub live: u64,
    /// Abandons booked in it.
    pub abandoned: u64,
    /// Machine verdicts booked in it (each may have been a person: see the module).
    pub machines: u64,
}

/// Live answers and abandons per period of a campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbandonLedger {
    policy: AbandonPolicy,
    zone: Tz,
    /// First day of the first period.
    anchor: Option<NaiveDate>,
    period_start: Option<NaiveDate>,
    live: u64,
    abandoned: u64,
    /// Machine verdicts of the current period (each may have been a person: see the module).
    #[serde(default)]
    machines: u64,
    /// Closed periods, oldest first.
    history: Vec<AbandonPeriod>,
    /// UTC bounds of the current period, so most inputs skip the calendar arithmetic.
    #[serde(skip)]
    bounds: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// For a period ending at `.0` and a horizon `.1`, the first instant from which the period
    /// ends within the horizon (`.0 − .1`): asked before every dialing decision, made again
    /// only when the period or the horizon changes.
    #[serde(skip)]
    ends_soon_from: Option<(DateTime<Utc>, chrono::Duration, DateTime<Utc>)>,
}

impl AbandonLedger {
    /// An empty ledger for `policy`, with periods in `zone` starting from `anchor` (the
    /// campaign's start date; `None`: the day of the first booking).
    pub fn new(policy: AbandonPolicy, zone: Tz, anchor: Option<NaiveDate>) -> AbandonLedger {
        AbandonLedger {
            policy,
            zone,
            anchor,
            period_start: None,
            live: 0,
            abandoned: 0,
            machines: 0,
            history: Vec::new(),
            bounds: None,
            ends_soon_from: None,
        }
    }

    /// Replaces the books with periods persisted by an earlier run (after a restart), in any
    /// order (of two books of one period, the later holds): the latest becomes the current
    /// period (closed at the next input if its time is over), the others history. `anchor` is the first day of the period grid (the
    /// campaign's start date, or the earliest period an earlier run booked); `None` keeps
    /// this ledger's. Periods booked on another grid (the window changed between runs) stay
    /// in the history and never count in a period of this grid.
    pub fn restore(&mut self, anchor: Option<NaiveDate>, periods: &[AbandonPeriod]) {
        // Oldest first; of two books of the same period, the later in `periods` holds.
        let mut periods: Vec<AbandonPeriod> = periods
            .iter()
            .map(|p| (p.start, *p))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .collect();
        if anchor.is_some() {
            self.anchor = anchor;
        }
        self.bounds = None;
        let current = periods.pop();
        self.history = periods;
        self.period_start = current.map(|p| p.start);
        self.live = current.map_or(0, |p| p.live);
        self.abandoned = current.map_or(0, |p| p.abandoned);
        self.machines = current.map_or(0, |p| p.machines);
    }

    /// Changes the policy (an operator changed the campaign's cap, window or AMD estimate)
    /// and the zone periods are counted in. The books so far are kept; a new window starts a
    /// new period at the next input.
    pub fn set_policy(&mut self, policy: AbandonPolicy, zone: Tz) {
        if self.policy != policy || self.zone != zone {
            self.policy = policy;
            self.zone = zone;
            self.bounds = None;
        }
    }

    /// The books of the current period.
    fn current(&self) -> AbandonPeriod {
        AbandonPeriod {
            start: self.period_start.unwrap_or_default(),
            live: self.live,
            abandoned: self.abandoned,
            machines: self.machines,
        }
    }

    fn period_of(&mut self, now: DateTime<Utc>) -> NaiveDate {
        let day = now.with_timezone(&self.zone).date_naive();
        match self.policy.window {
            AbandonWindow::CalendarDay => day,
            AbandonWindow::RollingDays { days } => {
                let anchor = *self.anchor.get_or_insert(day);
                let n = (day - anchor).num_days().max(0) / i64::from(days.max(1));
                anchor + chrono::Duration::days(n * i64::from(days.max(1)))
            }
        }
    }

    /// Moves to the period of `now`, closing the previous one.
    fn roll(&mut self, now: DateTime<Utc>) {
        if self.bounds.is_some_and(|(b, e)| b <= now && now < e) {
            return;
        }
        let p = self.period_of(now);
        let len = match self.policy.window {
            AbandonWindow::CalendarDay => 1,
            AbandonWindow::RollingDays { days } => i64::from(days.max(1)),
        };
        let start = crate::rules::calling_window::first_instant_at_or_after(
            self.zone,
            p.and_time(chrono::NaiveTime::MIN),
        );
        let end = crate::rules::calling_window::first_instant_at_or_after(
            self.zone,
            (p + chrono::Duration::days(len)).and_time(chrono::NaiveTime::MIN),
        );
        self.bounds = Some((start, end));
        if self.period_start != Some(p) {
            if self.period_start.is_some() {
                self.history.push(self.current());
            }
            self.period_start = Some(p);
            self.live = 0;
            self.abandoned = 0;
            self.machines = 0;
        }
    }

    /// A live answer (human or unknown) at `now`. Returns the period's books, to persist.
    pub fn live_answer(&mut self, now: DateTime<Utc>) -> AbandonPeriod {
        self.roll(now);
        self.live += 1;
        self.current()
    }

    /// An answer the detector classified as a machine, at `now`: it counts the campaign's
    /// false-positive estimate as abandoned in the current period. Returns the period's
    /// books, to persist.
    pub fn machine_answer(&mut self, now: DateTime<Utc>) -> AbandonPeriod {
        self.roll(now);
        self.machines += 1;
        self.current()
    }

    /// The estimated live people hung up on by AMD in the current period
    /// (`machines × amd_false_positive_rate`).
    pub fn false_positive_estimate(&mut self, now: DateTime<Utc>) -> f64 {
        self.roll(now);
        self.machines as f64 * self.policy.amd_false_positive_rate
    }

    /// Whether a new call may run answering-machine detection at `now`: with a false-positive
    /// estimate, every machine verdict spends it from the budget, so AMD is affordable only
    /// while the budget covers one more verdict for each call that could still bring one
    /// (`amd_unanswered` calls placed with AMD and not answered yet, plus this one). Without
    /// an estimate AMD costs nothing in the books and is always allowed.
    pub fn amd_affordable(&mut self, now: DateTime<Utc>, amd_unanswered: u32) -> bool {
        let r = self.policy.amd_false_positive_rate;
        if r <= 0.0 {
            return true;
        }
        let budget = self.status(now).budget;
        budget - r * f64::from(amd_unanswered + 1) >= -1e-9
    }

    /// A live answer made at `answered_at` was abandoned. It counts in the period of the
    /// answer, with its live answer, even if the period has closed since. Returns the books
    /// of the period it counted in, to persist.
    pub fn abandon(&mut self, answered_at: DateTime<Utc>, now: DateTime<Utc>) -> AbandonPeriod {
        self.roll(now);
        if self
            .bounds
            .is_some_and(|(b, e)| b <= answered_at && answered_at < e)
        {
            self.abandoned += 1;
            return self.current();
        }
        let p = self.period_of(answered_at);
        if Some(p) != self.period_start {
            if let Some(h) = self.history.iter_mut().rev().find(|h| h.start == p) {
                h.abandoned += 1;
                return *h;
            }
        }
        self.abandoned += 1;
        self.current()
    }

    /// Whether the period changes between `now` and `now + horizon`: a dial placed now could
    /// then be answered in a period whose budget is not known yet.
    pub fn period_ends_within(&mut self, now: DateTime<Utc>, horizon: chrono::Duration) -> bool {
        self.roll(now);
        match self.bounds {
            // `now + horizon >= end`, as `now >= end - horizon` with the difference kept.
            Some((_, end)) => match self.ends_soon_from {
                Some((e, h, from)) if e == end && h == horizon => now >= from,
                _ => match end.checked_sub_signed(horizon) {
                    Some(from) => {
                        self.ends_soon_from = Some((end, horizon, from));
                        now >= from
                    }
                    None => now + horizon >= end,
                },
            },
            None => {
                let a = self.period_of(now);
                self.period_of(now + horizon) != a
            }
        }
    }

    /// The position of the period containing `now` (rolling the period forward if `now` is
    /// past it).
    pub fn status(&mut self, now: DateTime<Utc>) -> AbandonStatus {
        self.roll(now);
        AbandonStatus {
            live_answers: self.live,
            abandoned: self.abandoned,
            cap: self.policy.cap,
            budget: self.policy.cap * self.live as f64
                - self.abandoned as f64
                - self.machines as f64 * self.policy.amd_false_positive_rate,
            period_start: self.period_start,
        }
    }

    /// The UTC bounds `[from, until)` of the period of `now`.
    pub fn period_bounds(&mut self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        self.roll(now);
        self.bounds
    }

    /// Every period so far, the current one last: (start, live answers, abandoned).
    pub fn periods(&self) -> Vec<(NaiveDate, u64, u64)> {
        let mut all: Vec<_> = self
            .history
            .iter()
            .map(|p| (p.start, p.live, p.abandoned))
            .collect();
        if let Some(p) = self.period_start {
            all.push((p, self.live, self.abandoned));
        }
        all
    }
}

/// The most dials the guard allows now, given what the pacer wants.
///
/// Calls at risk of abandonment are live answers waiting for an agent plus dials in flight
/// beyond the agents free to take them. Their number after dialing may not exceed
/// `floor(budget)`. A period with no budget therefore dials progressively.
pub fn guard(
    wanted: u32,
    agents_free: u32,
    dials_in_flight: u32,
    calls_waiting: u32,
    status: &AbandonStatus,
) -> u32 {
    let allowance = status.budget.max(0.0).floor() as i64;
    let covered = i64::from(agents_free);
    let pending = i64::from(dials_in_flight) + i64::from(calls_waiting);
    // Largest n with (pending + n - covered)^+ + waiting-at-risk <= allowance.
    let max_total = covered + allowance;
    let n = (max_total - pending).max(0);
    wanted.min(u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn status(live: u64, abandoned: u64) -> AbandonStatus {
        AbandonStatus {
            live_answers: live,
            abandoned,
            cap: 0.03,
            budget: 0.03 * live as f64 - abandoned as f64,
            period_start: None,
        }
    }

    #[test]
    fn guard_without_budget_dials_progressively() {
        assert_eq!(guard(10, 3, 1, 0, &status(0, 0)), 2);
    }

    #[test]
    fn guard_allows_over_dial_up_to_the_budget() {
        // 200 live answers, 2 abandoned: budget 4.
        assert_eq!(guard(10, 3, 1, 0, &status(200, 2)), 6);
    }

    #[test]
    fn guard_never_goes_negative_when_over_budget() {
        assert_eq!(guard(10, 0, 5, 2, &status(100, 5)), 0);
    }

    /// The period ends within a horizon from exactly `end − horizon` on, whatever horizons
    /// were asked before and across the period's change (the answer is kept between asks).
    #[test]
    fn the_period_ends_within_a_horizon_from_its_end_less_the_horizon() {
        let policy = AbandonPolicy {
            window: AbandonWindow::CalendarDay,
            ..AbandonPolicy::default()
        };
        let mut l = AbandonLedger::new(policy, chrono_tz::Europe::London, None);
        // Midnight in London, BST: 23:00 UTC; the next day's period ends at 23:00 UTC again.
        for end in [
            Utc.with_ymd_and_hms(2026, 6, 1, 23, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 6, 2, 23, 0, 0).unwrap(),
        ] {
            for secs in [60, 45, 60, 1] {
                let horizon = chrono::Duration::seconds(secs);
                let from = end - horizon;
                let just_before = from - chrono::Duration::nanoseconds(1);
                assert!(!l.period_ends_within(just_before, horizon), "{end} {secs}");
                assert!(l.period_ends_within(from, horizon), "{end} {secs}");
                assert!(l.period_ends_within(end - chrono::Duration::nanoseconds(1), horizon));
            }
        }
    }

    #[test]
    fn calendar_day_periods_reset_at_local_midnight() {
        let policy = AbandonPolicy {
            window: AbandonWindow::CalendarDay,
            ..AbandonPolicy::default()
        };
        let mut l = AbandonLedger::new(policy, chrono_tz::Europe::London, None);
        let t = Utc.with_ymd_and_hms(2026, 6, 1, 22, 0, 0).unwrap(); // 23:00 BST
        l.live_answer(t);
        l.abandon(t, t);
        assert_eq!(l.status(t).abandoned, 1);
        let next = Utc.with_ymd_and_hms(2026, 6, 1, 23, 0, 0).unwrap(); // 00:00 BST
        assert_eq!(l.status(next).abandoned, 0);
        assert_eq!(l.periods().len(), 2);
    }

    #[test]
    fn amd_is_affordable_only_while_the_budget_covers_one_more_verdict_per_open_call() {
        let policy = AbandonPolicy {
            window: AbandonWindow::CalendarDay,
            cap: 0.03,
            amd_false_positive_rate: 0.05,
            ..AbandonPolicy::default()
        };
        let mut l = AbandonLedger::new(policy, chrono_tz::Europe::London, None);
        let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        // A new period has no budget: a machine verdict would put it over at once.
        assert!(!l.amd_affordable(t, 0));
        for _ in 0..10 {
            l.live_answer(t);
        }
        // 3% of 10 = 0.3: room for 6 verdicts at 5%, counting this call.
        assert!(l.amd_affordable(t, 5));
        assert!(!l.amd_affordable(t, 6));
        l.machine_answer(t);
        assert!(l.amd_affordable(t, 4));
        assert!(!l.amd_affordable(t, 5));
    }

    #[test]
    fn without_a_false_positive_estimate_amd_is_always_affordable() {
        let mut l = AbandonLedger::new(AbandonPolicy::default(), chrono_tz::Europe::London, None);
        let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        assert!(l.amd_affordable(t, 30));
    }

    #[test]
    fn machine_verdicts_spend_the_false_positive_estimate_of_their_period() {
        let policy = AbandonPolicy {
            window: AbandonWindow::CalendarDay,
            amd_false_positive_rate: 0.05,
            ..AbandonPolicy::default()
        };
        let mut l = AbandonLedger::new(policy, chrono_tz::Europe::London, None);
        let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        for _ in 0..100 {
            l.live_answer(t);
        }
        for _ in 0..20 {
            l.machine_answer(t);
        }
        // 3% of 100 live answers, less 20 machines × 5%: one abandon left.
        assert!((l.status(t).budget - 2.0).abs() < 1e-9);
        assert!((l.false_positive_estimate(t) - 1.0).abs() < 1e-9);
        let next_day = t + chrono::Duration::days(1);
        assert_eq!(l.false_positive_estimate(next_day), 0.0);
    }

    #[test]
    fn without_an_estimate_machine_verdicts_change_nothing() {
        let mut l = AbandonLedger::new(AbandonPolicy::default(), chrono_tz::UTC, None);
        let t = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        l.live_answer(t);
        l.machine_answer(t);
        assert!((l.status(t).budget - 0.03).abs() < 1e-9);
    }

    #[test]
    fn thirty_day_periods_are_successive_from_the_first_day() {
        let mut l = AbandonLedger::new(AbandonPolicy::default(), chrono_tz::UTC, None);
        let d0 = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        l.live_answer(d0);
        let d29 = d0 + chrono::Duration::days(29);
        l.live_answer(d29);
        assert_eq!(l.status(d29).live_answers, 2);
        let d30 = d0 + chrono::Duration::days(30);
        assert_eq!(l.status(d30).live_answers, 0);
    }
}
