//! Callback schedules: the one set of rules every path that books a callback applies (engine
//! dispositions and the store's own operations), and the one reading of a range schedule's
//! local dates and times.

use crate::model::campaign::Campaign;
use crate::model::record::{Schedule, ScheduleWhen};
use crate::rules::calling_window::first_instant_at_or_after;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Why a callback cannot be booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum ScheduleError {
    /// An exact-time callback in the past.
    #[error("the callback time {at} is already past")]
    InPast {
        /// The requested time.
        at: DateTime<Utc>,
    },
    /// A date range whose end comes before its start.
    #[error("the callback date range {start_date} to {end_date} ends before it starts")]
    RangeInverted {
        /// First day.
        start_date: NaiveDate,
        /// Last day.
        end_date: NaiveDate,
    },
    /// A daily time range that is empty.
    #[error("the callback hours {start_time}-{end_time} must start before they end")]
    EmptyHours {
        /// Daily start.
        start_time: NaiveTime,
        /// Daily end.
        end_time: NaiveTime,
    },
    /// A range callback whose last moment has passed.
    #[error("the callback range ended at {ended} and cannot be booked any more")]
    RangeOver {
        /// The last moment of the range (callee local time, as UTC).
        ended: DateTime<Utc>,
    },
    /// A callback before the campaign's first day.
    #[error("the callback day {day} is before the campaign's first day {first}")]
    BeforeCampaign {
        /// The callback's (last) day.
        day: NaiveDate,
        /// The campaign's start date.
        first: NaiveDate,
    },
    /// A callback after the campaign's last day.
    #[error("the callback day {day} is after the campaign's last day {last}")]
    AfterCampaign {
        /// The callback's (first) day.
        day: NaiveDate,
        /// The campaign's end date.
        last: NaiveDate,
    },
    /// The callee's zone is not an IANA zone, so local times cannot be read.
    #[error(
        "the callee's time zone {zone:?} is not an IANA zone, so a callback cannot be placed in it"
    )]
    UnknownTimeZone {
        /// The zone as stored.
        zone: String,
    },
    /// The same callback is already booked.
    #[error("this callback is already booked")]
    Duplicate,
    /// Another callback is booked; moving it must be asked for as a reschedule.
    #[error("the record already has a callback at another time; send a reschedule to move it")]
    AlreadyScheduled,
}

/// What the schedule rules need besides the schedule.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleContext<'a> {
    /// The campaign the callback will be dialed in.
    pub campaign: &'a Campaign,
    /// The record's own zone (`None`: the campaign's).
    pub callee_zone: Option<&'a str>,
    /// The callback already on the record, if any.
    pub existing: Option<&'a Schedule>,
    /// Whether replacing `existing` was asked for explicitly.
    pub reschedule: bool,
}

/// The zone a callback's local dates and times are read in: the callee's, else the campaign's.
pub fn callee_zone(campaign: &Campaign, callee_zone: Option<&str>) -> Result<Tz, ScheduleError> {
    match callee_zone {
        None => Ok(campaign.tz()),
        Some(z) => z
            .parse::<Tz>()
            .map_err(|_| ScheduleError::UnknownTimeZone { zone: z.to_owned() }),
    }
}

/// The instants a schedule covers: `[first, end)`, a range's local dates and hours read in
/// the callee's zone (DST-correct: a local time that never shows maps to the jump).
pub fn bounds(when: &ScheduleWhen, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    match when {
        ScheduleWhen::At { at } => (*at, *at),
        ScheduleWhen::Range {
            start_date,
            end_date,
            start_time,
            end_time,
        } => (
            first_instant_at_or_after(zone, start_date.and_time(*start_time)),
            first_instant_at_or_after(zone, end_date.and_time(*end_time)),
        ),
    }
}

/// Checks a callback before it is booked: not in the past, a range that starts before it
/// ends, inside the campaign's dates, not a duplicate, and a different time for an existing
/// callback only as an explicit reschedule.
pub fn validate(
    schedule: &Schedule,
    ctx: &ScheduleContext<'_>,
    now: DateTime<Utc>,
) -> Result<(), ScheduleError> {
    let zone = callee_zone(ctx.campaign, ctx.callee_zone)?;
    let (first_day, last_day) = match &schedule.when {
        ScheduleWhen::At { at } => {
            if *at < now {
                return Err(ScheduleError::InPast { at: *at });
            }
            let day = at.with_timezone(&ctx.campaign.tz()).date_naive();
            (day, day)
        }
        ScheduleWhen::Range {
            start_date,
            end_date,
            start_time,
            end_time,
        } => {
            if start_date > end_date {
                return Err(ScheduleError::RangeInverted {
                    start_date: *start_date,
                    end_date: *end_date,
                });
            }
            if start_time >= end_time {
                return Err(ScheduleError::EmptyHours {
                    start_time: *start_time,
                    end_time: *end_time,
                });
            }
            let (_, end) = bounds(&schedule.when, zone);
            if end <= now {
                return Err(ScheduleError::RangeOver { ended: end });
            }
            (*start_date, *end_date)
        }
    };
    if let Some(first) = ctx.campaign.start_date {
        if last_day < first {
            return Err(ScheduleError::BeforeCampaign {
                day: last_day,
                first,
            });
        }
    }
    if let Some(last) = ctx.campaign.end_date {
        if first_day > last {
            return Err(ScheduleError::AfterCampaign {
                day: first_day,
                last,
            });
        }
    }
    if let Some(old) = ctx.existing {
        if old.when == schedule.when && old.number == schedule.number && old.agent == schedule.agent
        {
            return Err(ScheduleError::Duplicate);
        }
        if !ctx.reschedule {
            return Err(ScheduleError::AlreadyScheduled);
        }
    }
    Ok(())
}

/// Whether a range callback is over at `now` (its last local moment has passed): its record
/// then goes back to normal dialing instead of waiting for a window that never opens again.
pub fn range_is_over(schedule: &Schedule, zone: Tz, now: DateTime<Utc>) -> bool {
    match &schedule.when {
        ScheduleWhen::Range { .. } => bounds(&schedule.when, zone).1 <= now,
        ScheduleWhen::At { .. } => false,
    }
}

/// Drops a range callback whose last moment has passed, so its record goes back to normal
/// dialing instead of being skipped day after day for a window that never opens again.
/// Returns whether it dropped one. A record whose zone is unknown keeps it (it is never
/// dialed anyway, and says why).
pub fn drop_if_over(
    rec: &mut crate::model::record::SpoolRecord,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> bool {
    let Some(schedule) = &rec.schedule else {
        return false;
    };
    let Ok(zone) = callee_zone(campaign, rec.time_zone.as_deref()) else {
        return false;
    };
    if range_is_over(schedule, zone, now) {
        rec.schedule = None;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::ScheduleId;
    use chrono::TimeZone;

    fn range(sd: (i32, u32, u32), ed: (i32, u32, u32), st: u32, et: u32) -> Schedule {
        Schedule {
            id: ScheduleId(1),
            when: ScheduleWhen::Range {
                start_date: NaiveDate::from_ymd_opt(sd.0, sd.1, sd.2).unwrap(),
                end_date: NaiveDate::from_ymd_opt(ed.0, ed.1, ed.2).unwrap(),
                start_time: NaiveTime::from_hms_opt(st, 0, 0).unwrap(),
                end_time: NaiveTime::from_hms_opt(et, 0, 0).unwrap(),
            },
            agent: None,
            number: None,
        }
    }

    fn ctx(c: &Campaign) -> ScheduleContext<'_> {
        ScheduleContext {
            campaign: c,
            callee_zone: None,
            existing: None,
            reschedule: false,
        }
    }

    #[test]
    fn inverted_range_is_refused() {
        let c = Campaign::new("c", "America/Montevideo");
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let s = range((2026, 3, 5), (2026, 3, 4), 9, 18);
        assert!(matches!(
            validate(&s, &ctx(&c), now),
            Err(ScheduleError::RangeInverted { .. })
        ));
    }

    #[test]
    fn range_that_has_passed_is_refused() {
        let c = Campaign::new("c", "America/Montevideo");
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
        let s = range((2026, 3, 1), (2026, 3, 4), 9, 18);
        assert!(matches!(
            validate(&s, &ctx(&c), now),
            Err(ScheduleError::RangeOver { .. })
        ));
    }

    #[test]
    fn range_is_read_in_the_callee_local_time() {
        // 22:00 on 3 March in Montevideo (UTC-3) is 01:00 on 4 March UTC.
        let zone: Tz = "America/Montevideo".parse().unwrap();
        let s = range((2026, 3, 3), (2026, 3, 3), 21, 22);
        let (_, end) = bounds(&s.when, zone);
        assert_eq!(end, Utc.with_ymd_and_hms(2026, 3, 4, 1, 0, 0).unwrap());
    }

    #[test]
    fn a_second_callback_at_another_time_needs_an_explicit_reschedule() {
        let c = Campaign::new("c", "UTC");
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let old = range((2026, 3, 2), (2026, 3, 2), 9, 18);
        let new = range((2026, 3, 3), (2026, 3, 3), 9, 18);
        let mut cx = ctx(&c);
        cx.existing = Some(&old);
        assert_eq!(
            validate(&new, &cx, now),
            Err(ScheduleError::AlreadyScheduled)
        );
        assert_eq!(validate(&old, &cx, now), Err(ScheduleError::Duplicate));
        cx.reschedule = true;
        assert_eq!(validate(&new, &cx, now), Ok(()));
    }

    #[test]
    fn callback_after_the_campaign_ends_is_refused() {
        let mut c = Campaign::new("c", "UTC");
        c.end_date = NaiveDate::from_ymd_opt(2026, 3, 2);
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let s = range((2026, 3, 5), (2026, 3, 6), 9, 18);
        assert!(matches!(
            validate(&s, &ctx(&c), now),
            Err(ScheduleError::AfterCampaign { .. })
        ));
    }
}
