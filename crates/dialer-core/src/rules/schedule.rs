//! Callback schedules: the one set of rules every path that books a callback applies (engine
//! dispositions and the store's own operations), and the one reading of a range schedule's
//! local dates and times.

use crate::model::campaign::{Campaign, SameAgentCallbacks};
use crate::model::ids::AgentId;
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
    /// A range callback whose first day is before the callee's today (ECCP refuses a
    /// `date_init` before the current date).
    #[error("the callback range starts on {start_date}, before the callee's today {today}")]
    StartsBeforeToday {
        /// The range's first day.
        start_date: NaiveDate,
        /// Today in the callee's zone.
        today: NaiveDate,
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
    /// A new contact name (ECCP `newcontactname`) that cannot be stored.
    #[error("the new contact name {name:?} {why}")]
    BadContactName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// The longest contact name a callback may set, in characters.
pub const MAX_CONTACT_NAME: usize = 200;

/// The data field a new contact name creates on a record that has no data yet.
pub const CONTACT_NAME_FIELD: &str = "name";

/// Checks a new contact name (ECCP `newcontactname`): not blank, at most
/// [`MAX_CONTACT_NAME`] characters, no control characters (a record's data reaches the PBX
/// as channel variables and agents' screens).
pub fn check_contact_name(name: &str) -> Result<(), ScheduleError> {
    let why = if name.trim().is_empty() {
        "is blank".to_owned()
    } else if name.chars().count() > MAX_CONTACT_NAME {
        format!("is longer than {MAX_CONTACT_NAME} characters")
    } else if name.chars().any(char::is_control) {
        "contains a control character (line break, tab or NUL)".to_owned()
    } else {
        return Ok(());
    };
    Err(ScheduleError::BadContactName {
        name: name.to_owned(),
        why,
    })
}

/// Puts a new contact name on a record (ECCP `newcontactname`: it overwrites the contact's
/// first attribute): the value of the record's first data field, or a
/// [`CONTACT_NAME_FIELD`] field on a record without data. Every path that books a callback
/// with a new name calls this, after [`check_contact_name`] and the schedule's own checks
/// passed.
pub fn rename_contact(rec: &mut crate::model::record::SpoolRecord, name: &str) {
    match rec.data.first_mut() {
        Some((_, value)) => *value = name.to_owned(),
        None => rec
            .data
            .push((CONTACT_NAME_FIELD.to_owned(), name.to_owned())),
    }
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
        Some(z) => crate::model::campaign::parse_zone(z)
            .ok_or_else(|| ScheduleError::UnknownTimeZone { zone: z.to_owned() }),
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
/// ends and not before the callee's today, inside the campaign's dates, not a duplicate, and a different time for an existing
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
            let today = now.with_timezone(&zone).date_naive();
            if *start_date < today {
                return Err(ScheduleError::StartsBeforeToday {
                    start_date: *start_date,
                    today,
                });
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

/// The agent a callback is reserved for at `now`: its own agent (ECCP `sameagent`) until it
/// has waited for that agent as long as the campaign says
/// ([`crate::model::campaign::SameAgentCallbacks`]), then nobody in particular, so a callback
/// whose agent does not come back is not stranded.
pub fn reserved_agent<'a>(
    schedule: &'a Schedule,
    campaign: &Campaign,
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<&'a AgentId> {
    let agent = schedule.agent.as_ref()?;
    match campaign.same_agent_callbacks {
        SameAgentCallbacks::WaitForAgent => Some(agent),
        SameAgentCallbacks::AnyoneAfter { after_s } => {
            let due = bounds(&schedule.when, zone).0;
            (now < due + chrono::Duration::seconds(i64::from(after_s))).then_some(agent)
        }
    }
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

    #[test]
    fn e16b_a_same_agent_callback_falls_back_to_anyone_after_the_campaign_wait_unless_told_to_wait()
    {
        let mut c = Campaign::new("c", "UTC");
        c.same_agent_callbacks = SameAgentCallbacks::AnyoneAfter { after_s: 600 };
        let due = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let ana = AgentId("ana".into());
        let s = Schedule {
            id: ScheduleId(1),
            when: ScheduleWhen::At { at: due },
            agent: Some(ana.clone()),
            number: None,
        };
        let at = |secs| due + chrono::Duration::seconds(secs);
        assert_eq!(reserved_agent(&s, &c, chrono_tz::UTC, at(-60)), Some(&ana));
        assert_eq!(reserved_agent(&s, &c, chrono_tz::UTC, at(599)), Some(&ana));
        assert_eq!(reserved_agent(&s, &c, chrono_tz::UTC, at(600)), None);
        c.same_agent_callbacks = SameAgentCallbacks::WaitForAgent;
        assert_eq!(
            reserved_agent(&s, &c, chrono_tz::UTC, at(86_400 * 30)),
            Some(&ana)
        );
        // A range waits from its first moment in the callee's zone.
        c.same_agent_callbacks = SameAgentCallbacks::AnyoneAfter { after_s: 600 };
        let mut r = range((2026, 3, 2), (2026, 3, 4), 9, 18);
        r.agent = Some(ana.clone());
        let zone: Tz = "America/Montevideo".parse().unwrap();
        let first = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
        let wait = chrono::Duration::seconds(600);
        assert_eq!(
            reserved_agent(&r, &c, zone, first + wait - chrono::Duration::seconds(1)),
            Some(&ana)
        );
        assert_eq!(reserved_agent(&r, &c, zone, first + wait), None);
    }

    #[test]
    fn e16e_a_range_that_starts_before_the_callee_today_is_refused() {
        let c = Campaign::new("c", "UTC");
        // 01:00 UTC on 3 March is still 2 March in Montevideo (UTC-3): a range starting on
        // 2 March is not in the past there.
        let now = Utc.with_ymd_and_hms(2026, 3, 3, 1, 0, 0).unwrap();
        let s = range((2026, 3, 2), (2026, 3, 4), 9, 18);
        let mut cx = ctx(&c);
        cx.callee_zone = Some("America/Montevideo");
        assert_eq!(validate(&s, &cx, now), Ok(()));
        cx.callee_zone = Some("Asia/Tokyo");
        assert!(matches!(
            validate(&s, &cx, now),
            Err(ScheduleError::StartsBeforeToday { .. })
        ));
    }

    #[test]
    fn e16f_contact_names_with_control_characters_blank_or_too_long_are_refused() {
        assert_eq!(check_contact_name("Ana María"), Ok(()));
        for bad in [
            "",
            "  ",
            "a\nb",
            "a\rb",
            "a\0b",
            &"n".repeat(MAX_CONTACT_NAME + 1),
        ] {
            assert!(
                matches!(
                    check_contact_name(bad),
                    Err(ScheduleError::BadContactName { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(check_contact_name(&"n".repeat(MAX_CONTACT_NAME)), Ok(()));
    }
}
