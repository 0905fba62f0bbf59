//! When a callee may be called: calling hours in the callee's own zone, holidays, campaign
//! dates, and the margin before a window closes.
//!
//! All reasoning happens on UTC instants: each local interval of a day is mapped to UTC once,
//! conservatively. A local start that occurs twice (clocks fall back) maps to its later
//! occurrence, a local end to its earlier one; a local time that does not exist (clocks spring
//! forward) maps to the moment the clocks jump. So a window is never wider than the local
//! reading of the rule, on any day, in any zone.

use crate::model::campaign::{CallingHours, Campaign, TimeRange};
use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc,
};
use chrono_tz::Tz;

/// How far ahead [`CallingWindow::next_allowed`] looks before giving up.
const SEARCH_DAYS: u64 = 400;

/// A calling window for one callee of one campaign.
#[derive(Debug, Clone)]
pub struct CallingWindow<'a> {
    /// The campaign's hours, read in the callee's zone.
    pub hours: &'a CallingHours,
    /// The callee's zone.
    pub zone: Tz,
    /// No dial starts within this long of a window's end.
    pub margin: Duration,
    /// Local dates (callee's zone) never dialed.
    pub holidays: &'a [NaiveDate],
    /// Campaign dates as UTC instants: first instant allowed, first instant no longer allowed.
    pub from: Option<DateTime<Utc>>,
    /// The first instant the campaign's dates no longer allow (the day after its end date).
    pub until: Option<DateTime<Utc>>,
}

impl<'a> CallingWindow<'a> {
    /// The window of `campaign` for a callee in `zone`.
    pub fn for_campaign(campaign: &'a Campaign, zone: Tz) -> CallingWindow<'a> {
        let ctz = campaign.tz();
        CallingWindow {
            hours: &campaign.calling_hours,
            zone,
            margin: Duration::seconds(i64::from(campaign.last_dial_before_close_s)),
            holidays: &campaign.holidays,
            from: campaign
                .start_date
                .map(|d| first_instant_at_or_after(ctz, d.and_time(chrono::NaiveTime::MIN))),
            until: campaign.end_date.map(|d| {
                let next = d.checked_add_days(Days::new(1)).unwrap_or(d);
                first_instant_at_or_after(ctz, next.and_time(chrono::NaiveTime::MIN))
            }),
        }
    }

    /// Whether a dial may start at `t`.
    pub fn allows(&self, t: DateTime<Utc>) -> bool {
        if self.from.is_some_and(|f| t < f) || self.until.is_some_and(|u| t >= u) {
            return false;
        }
        let local_date = t.with_timezone(&self.zone).date_naive();
        // An interval of local date d maps within a day of d's UTC span, so d-1..=d+1 covers t.
        let Some(first) = local_date.pred_opt() else {
            return false;
        };
        self.merged_intervals(first, 3)
            .into_iter()
            .any(|(s, e)| s <= t && t + self.margin < e)
    }

    /// If a dial may start at `t`, a stretch `[from, to)` around it in which every instant
    /// also allows one (possibly shorter than the real opening: it is a cache's answer).
    pub fn open_stretch(&self, t: DateTime<Utc>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.from.is_some_and(|f| t < f) || self.until.is_some_and(|u| t >= u) {
            return None;
        }
        let local_date = t.with_timezone(&self.zone).date_naive();
        let first = local_date.pred_opt()?;
        // Intervals of days d-1..=d+1 only: an opening running on beyond them is cut short,
        // which keeps the stretch within the truth.
        let (s, e) = self
            .merged_intervals(first, 3)
            .into_iter()
            .find(|&(s, e)| s <= t && t + self.margin < e)?;
        let lo = self.from.map_or(s, |f| s.max(f));
        let hi = self
            .until
            .map_or(e - self.margin, |u| (e - self.margin).min(u));
        Some((lo, hi))
    }

    /// The first instant at or after `t` when a dial may start; `None` if there is none within
    /// about a year (no hours configured, or the campaign has ended).
    pub fn next_allowed(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let t = match self.from {
            Some(f) if t < f => f,
            _ => t,
        };
        let start = t.with_timezone(&self.zone).date_naive().pred_opt()?;
        // Chunks of a week, overlapping by a day so an interval running across midnight into
        // the next chunk is seen whole.
        for chunk in 0..SEARCH_DAYS / 7 {
            let first = start.checked_add_days(Days::new(chunk * 7))?;
            let best = self
                .merged_intervals(first, 8)
                .into_iter()
                .filter_map(|(s, e)| {
                    let candidate = s.max(t);
                    (candidate + self.margin < e).then_some(candidate)
                })
                .min();
            if let Some(b) = best {
                if self.until.is_some_and(|u| b >= u) {
                    return None;
                }
                return Some(b);
            }
        }
        None
    }

    /// The UTC intervals of `days` local days from `first`, holidays left out, sorted, with
    /// touching intervals merged: a window to 23:59:59.999… and one from 00:00 the next day
    /// are one window, so the closing margin does not cut them at midnight.
    fn merged_intervals(&self, first: NaiveDate, days: u64) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut all: Vec<(DateTime<Utc>, DateTime<Utc>)> = (0..days)
            .filter_map(|k| first.checked_add_days(Days::new(k)))
            .filter(|d| !self.holidays.contains(d))
            .flat_map(|d| self.utc_intervals(d).collect::<Vec<_>>())
            .collect();
        all.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::with_capacity(all.len());
        for (s, e) in all {
            match merged.last_mut() {
                // Within a millisecond counts as touching (23:59:59.999… then 00:00).
                Some(last) if s <= last.1 + Duration::milliseconds(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }

    /// The UTC intervals of the calling hours on local date `day`.
    fn utc_intervals(
        &self,
        day: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        self.hours
            .on(day.weekday())
            .iter()
            .map(move |r: &TimeRange| {
                let s = latest_instant_of(self.zone, day.and_time(r.start));
                let e = earliest_instant_of(self.zone, day.and_time(r.end));
                (s, e)
            })
            .filter(|(s, e)| s < e)
    }
}

/// The later of the instants showing local time `ndt` (or the jump, if it never shows).
fn latest_instant_of(zone: Tz, ndt: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&ndt) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(_, later) => later.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(zone, ndt),
    }
}

/// The earlier of the instants showing local time `ndt` (or the jump, if it never shows).
fn earliest_instant_of(zone: Tz, ndt: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&ndt) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => first_instant_at_or_after(zone, ndt),
    }
}

/// The first instant whose local reading is at or after `ndt`. Inside a spring-forward gap
/// that is the moment of the jump.
pub(crate) fn first_instant_at_or_after(zone: Tz, ndt: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&ndt) {
        LocalResult::Single(t) => return t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
        LocalResult::None => {}
    }
    // In a gap. Offsets are within ±15 h and gaps last at most a few hours, so scanning UTC
    // minutes from "ndt as if at UTC+15" finds the jump within a bounded number of steps.
    let mut t = Utc.from_utc_datetime(&(ndt - Duration::hours(15)));
    t = t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos()));
    for _ in 0..(31 * 60) {
        if t.with_timezone(&zone).naive_local() >= ndt {
            return t;
        }
        t += Duration::minutes(1);
    }
    // Unreachable for real zone data; fall back to reading ndt as UTC rather than panic.
    Utc.from_utc_datetime(&ndt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn hours(sh: u32, eh: u32) -> CallingHours {
        CallingHours::every_day(vec![TimeRange::new(
            NaiveTime::from_hms_opt(sh, 0, 0).unwrap(),
            NaiveTime::from_hms_opt(eh, 0, 0).unwrap(),
        )
        .unwrap()])
    }

    fn window(h: &CallingHours, zone: Tz, margin_s: i64) -> CallingWindow<'_> {
        CallingWindow {
            hours: h,
            zone,
            margin: Duration::seconds(margin_s),
            holidays: &[],
            from: None,
            until: None,
        }
    }

    fn utc(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, hh, mm, 0).unwrap()
    }

    #[test]
    fn new_york_window_follows_daylight_saving() {
        let h = hours(8, 21);
        let w = window(&h, chrono_tz::America::New_York, 0);
        // January: EST = UTC-5. 08:00 local = 13:00 UTC.
        assert!(!w.allows(utc(2026, 1, 15, 12, 59)));
        assert!(w.allows(utc(2026, 1, 15, 13, 0)));
        // July: EDT = UTC-4. 08:00 local = 12:00 UTC.
        assert!(w.allows(utc(2026, 7, 15, 12, 0)));
        assert!(!w.allows(utc(2026, 7, 15, 11, 59)));
        // 21:00 EDT = 01:00 UTC next day.
        assert!(w.allows(utc(2026, 7, 16, 0, 59)));
        assert!(!w.allows(utc(2026, 7, 16, 1, 0)));
    }

    #[test]
    fn retry_due_just_before_close_moves_to_next_opening() {
        let h = hours(8, 21);
        let w = window(&h, chrono_tz::America::New_York, 120);
        // 20:59 EST on 2026-01-15 = 01:59 UTC on the 16th.
        let due = utc(2026, 1, 16, 1, 59);
        assert!(!w.allows(due));
        assert_eq!(w.next_allowed(due), Some(utc(2026, 1, 16, 13, 0)));
    }

    #[test]
    fn window_opening_in_a_spring_forward_gap_opens_at_the_jump() {
        // New York 2026-03-08: 02:00 jumps to 03:00. A 02:30-05:00 window opens at 03:00 EDT.
        let h = CallingHours::every_day(vec![TimeRange::new(
            NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
        )
        .unwrap()]);
        let w = window(&h, chrono_tz::America::New_York, 0);
        let jump = utc(2026, 3, 8, 7, 0); // 03:00 EDT
        assert_eq!(w.next_allowed(utc(2026, 3, 8, 5, 0)), Some(jump));
        assert!(!w.allows(jump - Duration::seconds(1)));
    }

    #[test]
    fn window_in_repeated_hour_uses_the_narrower_reading() {
        // London 2026-10-25: 01:00-02:00 happens twice. Window 01:30-03:00 starts at the
        // second 01:30 (01:30 GMT = 01:30 UTC), not the first (00:30 UTC).
        let h = CallingHours::every_day(vec![TimeRange::new(
            NaiveTime::from_hms_opt(1, 30, 0).unwrap(),
            NaiveTime::from_hms_opt(3, 0, 0).unwrap(),
        )
        .unwrap()]);
        let w = window(&h, chrono_tz::Europe::London, 0);
        assert!(!w.allows(utc(2026, 10, 25, 0, 45)));
        assert!(w.allows(utc(2026, 10, 25, 1, 30)));
    }

    #[test]
    fn kathmandu_quarter_hour_offset_is_respected() {
        let h = hours(9, 17);
        let w = window(&h, chrono_tz::Asia::Kathmandu, 0);
        // 09:00 NPT = 03:15 UTC.
        assert!(!w.allows(utc(2026, 5, 1, 3, 14)));
        assert!(w.allows(utc(2026, 5, 1, 3, 15)));
    }

    #[test]
    fn lord_howe_half_hour_shift_is_respected() {
        let h = hours(9, 17);
        let w = window(&h, chrono_tz::Australia::Lord_Howe, 0);
        // January (summer, +11:00): 09:00 = 22:00 UTC previous day.
        assert!(w.allows(utc(2026, 1, 14, 22, 0)));
        assert!(!w.allows(utc(2026, 1, 14, 21, 59)));
        // July (winter, +10:30): 09:00 = 22:30 UTC previous day.
        assert!(!w.allows(utc(2026, 7, 14, 22, 29)));
        assert!(w.allows(utc(2026, 7, 14, 22, 30)));
    }

    #[test]
    fn always_open_hours_stay_open_across_midnight_despite_the_margin() {
        let h = CallingHours::always();
        let w = window(&h, chrono_tz::America::New_York, 120);
        // 23:59 and 00:00:30 local, on an ordinary day and on the spring-forward night.
        assert!(w.allows(utc(2026, 1, 16, 4, 59)));
        assert!(w.allows(utc(2026, 1, 16, 5, 0) + Duration::seconds(30)));
        assert!(w.allows(utc(2026, 3, 8, 7, 0)));
        assert_eq!(
            w.next_allowed(utc(2026, 1, 16, 4, 59)),
            Some(utc(2026, 1, 16, 4, 59))
        );
    }

    #[test]
    fn holidays_and_campaign_end_close_the_window() {
        let h = hours(8, 21);
        let hol = [NaiveDate::from_ymd_opt(2026, 1, 15).unwrap()];
        let mut w = window(&h, chrono_tz::UTC, 0);
        w.holidays = &hol;
        assert!(!w.allows(utc(2026, 1, 15, 12, 0)));
        assert_eq!(
            w.next_allowed(utc(2026, 1, 15, 12, 0)),
            Some(utc(2026, 1, 16, 8, 0))
        );
        w.until = Some(utc(2026, 1, 16, 0, 0));
        assert_eq!(w.next_allowed(utc(2026, 1, 15, 12, 0)), None);
    }
}
