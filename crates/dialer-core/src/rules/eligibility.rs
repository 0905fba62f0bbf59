//! Whether a record may be dialed now, and if not, why and until when.

use super::calling_window::{first_instant_at_or_after, CallingWindow};
use crate::model::blacklist::Blacklist;
use crate::model::campaign::Campaign;
use crate::model::campaign::{CallingHours, TimeRange};
use crate::model::ids::AgentId;
use crate::model::phone::PhoneNumber;
use crate::model::record::{NumberState, RecordStatus, ScheduleWhen, SpoolRecord, TaskTiming};
use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Why a record was not dialed. Every skip is reported so a run can be audited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Finished or already in flight.
    NotPending,
    /// Its retry delay, schedule or task date has not come.
    NotDue {
        /// When it comes due.
        until: DateTime<Utc>,
    },
    /// The number to dial is on the do-not-call list for this campaign.
    Blacklisted {
        /// The number (E.164).
        number: String,
    },
    /// Outside the callee's local calling hours, a holiday, or outside campaign dates.
    OutsideCallingWindow {
        /// When the window opens next; `None`: never again (the campaign's dates are over,
        /// or its hours are empty).
        next: Option<DateTime<Utc>>,
    },
    /// The record's zone is not an IANA zone: never dialed until fixed.
    UnknownTimeZone {
        /// The zone as stored.
        zone: String,
    },
    /// The record used all its attempts.
    AttemptCapReached,
    /// No number of the record can be dialed any more.
    NoDialableNumber,
    /// A frequency cap (attempts in days) holds until then.
    FrequencyCap {
        /// When the cap lets a dial through.
        until: DateTime<Utc>,
    },
    /// No redial so soon after an abandoned call.
    LockoutAfterAbandon {
        /// When the lockout ends.
        until: DateTime<Utc>,
    },
    /// No redial the same day after an answering machine.
    LockoutAfterMachine {
        /// When the lockout ends.
        until: DateTime<Utc>,
    },
    /// No redial so soon after a conversation.
    LockoutAfterConversation {
        /// When the lockout ends.
        until: DateTime<Utc>,
    },
    /// The owner (or scheduled) agent is not free.
    AgentNotFree {
        /// The agent.
        agent: AgentId,
    },
    /// The same number is already being called.
    NumberInFlight {
        /// The number (E.164).
        number: String,
    },
}

impl SkipReason {
    /// When it is worth looking at the record again, if the reason is about time.
    pub fn retry_at(&self) -> Option<DateTime<Utc>> {
        match self {
            SkipReason::NotDue { until }
            | SkipReason::FrequencyCap { until }
            | SkipReason::LockoutAfterAbandon { until }
            | SkipReason::LockoutAfterMachine { until }
            | SkipReason::LockoutAfterConversation { until } => Some(*until),
            SkipReason::OutsideCallingWindow { next } => *next,
            _ => None,
        }
    }

    /// A stable code for logs and the store.
    pub fn code(&self) -> &'static str {
        match self {
            SkipReason::NotPending => "not_pending",
            SkipReason::NotDue { .. } => "not_due",
            SkipReason::Blacklisted { .. } => "blacklisted",
            SkipReason::OutsideCallingWindow { .. } => "outside_calling_window",
            SkipReason::UnknownTimeZone { .. } => "unknown_time_zone",
            SkipReason::AttemptCapReached => "attempt_cap_reached",
            SkipReason::NoDialableNumber => "no_dialable_number",
            SkipReason::FrequencyCap { .. } => "frequency_cap",
            SkipReason::LockoutAfterAbandon { .. } => "lockout_after_abandon",
            SkipReason::LockoutAfterMachine { .. } => "lockout_after_machine",
            SkipReason::LockoutAfterConversation { .. } => "lockout_after_conversation",
            SkipReason::AgentNotFree { .. } => "agent_not_free",
            SkipReason::NumberInFlight { .. } => "number_in_flight",
        }
    }
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::NotPending => write!(f, "it is finished or already being called"),
            SkipReason::NotDue { until } => write!(f, "it is not due before {until}"),
            SkipReason::Blacklisted { number } => {
                write!(f, "number {number} is on the do-not-call list")
            }
            SkipReason::OutsideCallingWindow { next: Some(next) } => {
                write!(f, "it is outside the callee's calling hours until {next}")
            }
            SkipReason::OutsideCallingWindow { next: None } => {
                write!(f, "the callee's calling window does not open again")
            }
            SkipReason::UnknownTimeZone { zone } => {
                write!(f, "its time zone {zone:?} is not an IANA zone")
            }
            SkipReason::AttemptCapReached => write!(f, "it used all its attempts"),
            SkipReason::NoDialableNumber => write!(f, "none of its numbers may be dialed"),
            SkipReason::FrequencyCap { until } => {
                write!(f, "its frequency cap holds until {until}")
            }
            SkipReason::LockoutAfterAbandon { until } => {
                write!(f, "an abandoned call locks it out until {until}")
            }
            SkipReason::LockoutAfterMachine { until } => {
                write!(f, "an answering machine locks it out until {until}")
            }
            SkipReason::LockoutAfterConversation { until } => {
                write!(f, "a recent conversation locks it out until {until}")
            }
            SkipReason::AgentNotFree { agent } => write!(f, "its agent {agent} is not free"),
            SkipReason::NumberInFlight { number } => {
                write!(f, "number {number} is already being called")
            }
        }
    }
}

/// What the eligibility check needs besides the record.
pub struct EligibilityContext<'a> {
    /// The record's campaign.
    pub campaign: &'a Campaign,
    /// The do-not-call list.
    pub blacklist: &'a Blacklist,
    /// The moment of the check.
    pub now: DateTime<Utc>,
    /// E.164 numbers with a call in flight, in any campaign.
    pub number_in_flight: &'a dyn Fn(&str) -> bool,
    /// Whether an agent is logged in to the campaign and free to take a call now.
    pub agent_free: &'a dyn Fn(&AgentId) -> bool,
    /// Remembers open stretches of the campaign's window per zone (optional).
    pub windows: Option<&'a WindowCache>,
}

/// Open stretches of one campaign's calling window, per callee zone: most checks fall inside
/// the last one found, and skip recomputing the day's intervals. Clear it when the campaign's
/// hours, holidays, dates or closing margin change.
#[derive(Debug, Default)]
pub struct WindowCache {
    open: std::cell::RefCell<rustc_hash::FxHashMap<Tz, Stretch>>,
}

/// `[from, to)`: every instant in it allows a dial.
type Stretch = (DateTime<Utc>, DateTime<Utc>);

impl WindowCache {
    /// Forgets every stretch (the campaign's window changed).
    pub fn clear(&self) {
        self.open.borrow_mut().clear();
    }

    /// Whether the campaign's window allows a dial at `t` in `zone`; exactly
    /// `CallingWindow::for_campaign(campaign, zone).allows(t)`.
    fn allows(&self, campaign: &Campaign, zone: Tz, t: DateTime<Utc>) -> bool {
        if let Some(&(lo, hi)) = self.open.borrow().get(&zone) {
            if lo <= t && t < hi {
                return true;
            }
        }
        match CallingWindow::for_campaign(campaign, zone).open_stretch(t) {
            Some(stretch) => {
                self.open.borrow_mut().insert(zone, stretch);
                true
            }
            None => false,
        }
    }
}

/// What to dial when a record is eligible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialPlan {
    /// The number to dial: the record's current one, or a callback's own number.
    pub number: PhoneNumber,
    /// The agent the call is reserved for (owner or same-agent schedule).
    pub agent: Option<AgentId>,
}

/// The agent a dial of `rec` is held for: a manual dial's agent, else a same-agent callback's
/// (while the campaign keeps it for that agent), else the record's owner. One rule for every
/// path that reserves an agent.
pub fn reserved_agent<'a>(
    rec: &'a SpoolRecord,
    campaign: &Campaign,
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<&'a AgentId> {
    rec.task
        .as_ref()
        .and_then(|t| t.agent.as_ref())
        .or_else(|| {
            rec.schedule
                .as_ref()
                .and_then(|s| super::schedule::reserved_agent(s, campaign, zone, now))
        })
        .or(rec.owner_agent.as_ref())
}

/// The callee's zone: the record's, else the campaign's. Unknown zone = do not dial.
pub fn callee_zone(rec: &SpoolRecord, campaign: &Campaign) -> Result<Tz, SkipReason> {
    let name = rec.time_zone.as_deref().unwrap_or(&campaign.time_zone);
    crate::model::campaign::parse_zone(name).ok_or_else(|| SkipReason::UnknownTimeZone {
        zone: name.to_owned(),
    })
}

/// The earliest moment at or after `t` the record could be dialed if nothing else changed,
/// considering only time rules (window, schedule range, caps, lockouts). `None` = never.
pub fn next_time_allowed(
    rec: &SpoolRecord,
    campaign: &Campaign,
    t: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let zone = callee_zone(rec, campaign).ok()?;
    let window = CallingWindow::for_campaign(campaign, zone);
    let schedule_hours;
    let schedule_window = match rec.schedule.as_ref().map(|s| &s.when) {
        Some(ScheduleWhen::Range {
            start_date,
            end_date,
            start_time,
            end_time,
        }) => {
            schedule_hours = CallingHours::every_day(vec![TimeRange {
                start: *start_time,
                end: *end_time,
            }]);
            Some(CallingWindow {
                hours: &schedule_hours,
                zone,
                margin: Duration::zero(),
                holidays: &[],
                // Dates of a range schedule are the callee's, not the campaign's.
                from: Some(first_instant_at_or_after(
                    zone,
                    start_date.and_time(NaiveTime::MIN),
                )),
                until: end_date
                    .succ_opt()
                    .map(|d| first_instant_at_or_after(zone, d.and_time(NaiveTime::MIN))),
            })
        }
        _ => None,
    };
    let mut t = t;
    // Each rule only moves t forward; a fixpoint is reached quickly in practice. Bounded.
    for _ in 0..64 {
        let mut next = t;
        if let Some(until) = time_lockout(rec, campaign, zone, next) {
            next = next.max(until);
        }
        next = window.next_allowed(next)?;
        if let Some(sw) = &schedule_window {
            next = sw.next_allowed(next)?;
        }
        if next == t {
            return Some(t);
        }
        t = next;
    }
    None
}

/// Whether the calling windows (campaign hours in the callee's zone, and a range schedule's
/// hours) allow a dial to start at `t`: the common case of [`next_time_allowed`] returning `t`,
/// without searching ahead for the next opening.
fn windows_allow(
    rec: &SpoolRecord,
    campaign: &Campaign,
    zone: Tz,
    t: DateTime<Utc>,
    cache: Option<&WindowCache>,
) -> bool {
    let open = match cache {
        Some(c) => c.allows(campaign, zone, t),
        None => CallingWindow::for_campaign(campaign, zone).allows(t),
    };
    if !open {
        return false;
    }
    match rec.schedule.as_ref().map(|s| &s.when) {
        // Rare: the full search, which also applies the range's own dates and hours.
        Some(ScheduleWhen::Range { .. }) => next_time_allowed(rec, campaign, t) == Some(t),
        _ => time_lockout(rec, campaign, zone, t).is_none(),
    }
}

/// The latest "not before" among retry delay, schedule date, task date, caps and lockouts.
fn time_lockout(
    rec: &SpoolRecord,
    campaign: &Campaign,
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    time_skip(rec, campaign, zone, now).and_then(|s| s.retry_at())
}

/// The first time-based reason not to dial at `now`, if any.
fn time_skip(
    rec: &SpoolRecord,
    campaign: &Campaign,
    zone: Tz,
    now: DateTime<Utc>,
) -> Option<SkipReason> {
    if let Some(t) = rec.next_eligible_at.filter(|&t| t > now) {
        return Some(SkipReason::NotDue { until: t });
    }
    if let Some(ScheduleWhen::At { at }) = rec.schedule.as_ref().map(|s| &s.when) {
        if *at > now {
            return Some(SkipReason::NotDue { until: *at });
        }
    }
    if let Some(TaskTiming::At { at }) = rec.task.as_ref().map(|t| t.timing) {
        if at > now {
            return Some(SkipReason::NotDue { until: at });
        }
    }
    let f = &campaign.frequency;
    if let Some(cap) = f.per_record {
        let span = Duration::days(i64::from(cap.days));
        let in_span: Vec<_> = rec
            .history
            .recent
            .iter()
            .filter(|&&a| a > now - span)
            .collect();
        if in_span.len() >= cap.max_attempts as usize {
            // The oldest attempt in the span must leave it before another is allowed.
            let idx = in_span.len() - cap.max_attempts as usize;
            return Some(SkipReason::FrequencyCap {
                until: *in_span[idx] + span,
            });
        }
    }
    if let (Some(h), Some(at)) = (f.no_redial_after_abandon_h, rec.history.last_abandoned_at) {
        let until = at + Duration::hours(i64::from(h));
        if until > now {
            return Some(SkipReason::LockoutAfterAbandon { until });
        }
    }
    if let (Some(h), Some(at)) = (
        f.no_redial_after_conversation_h,
        rec.history.last_conversation_at,
    ) {
        let until = at + Duration::hours(i64::from(h));
        if until > now {
            return Some(SkipReason::LockoutAfterConversation { until });
        }
    }
    if f.no_redial_same_day_after_machine {
        if let Some(at) = rec.history.last_machine_at {
            let machine_day = at.with_timezone(&zone).date_naive();
            if now.with_timezone(&zone).date_naive() <= machine_day {
                let next_day = machine_day.succ_opt()?;
                let until = first_instant_at_or_after(zone, next_day.and_time(NaiveTime::MIN));
                return Some(SkipReason::LockoutAfterMachine { until });
            }
        }
    }
    None
}

/// Checks every rule; `Ok` says what to dial. The order of checks puts the hard compliance
/// rules (blacklist, zone, window, caps) before the soft ones (agent availability).
pub fn check(rec: &SpoolRecord, ctx: &EligibilityContext<'_>) -> Result<DialPlan, SkipReason> {
    let campaign = ctx.campaign;
    if rec.status != RecordStatus::Pending || rec.campaign != campaign.id {
        return Err(SkipReason::NotPending);
    }
    let Some(number) = rec.number_to_dial().cloned() else {
        return Err(SkipReason::NoDialableNumber);
    };
    if ctx.blacklist.blocks(number.e164(), &campaign.id, ctx.now) {
        return Err(SkipReason::Blacklisted {
            number: number.e164().to_owned(),
        });
    }
    let zone = callee_zone(rec, campaign)?;
    if rec.attempts >= campaign.max_attempts_per_record {
        return Err(SkipReason::AttemptCapReached);
    }
    let from_schedule = rec
        .schedule
        .as_ref()
        .and_then(|s| s.number.as_ref())
        .is_some();
    if !from_schedule {
        let slot = &rec.numbers[rec.current];
        if slot.attempts >= campaign.max_attempts_per_number || slot.state != NumberState::Active {
            return Err(SkipReason::AttemptCapReached);
        }
    }
    if let Some(skip) = time_skip(rec, campaign, zone, ctx.now) {
        return Err(skip);
    }
    if !windows_allow(rec, campaign, zone, ctx.now, ctx.windows) {
        return Err(SkipReason::OutsideCallingWindow {
            next: next_time_allowed(rec, campaign, ctx.now),
        });
    }
    if (ctx.number_in_flight)(number.e164()) {
        return Err(SkipReason::NumberInFlight {
            number: number.e164().to_owned(),
        });
    }
    let agent = reserved_agent(rec, campaign, zone, ctx.now).cloned();
    if let Some(a) = &agent {
        if !(ctx.agent_free)(a) {
            return Err(SkipReason::AgentNotFree { agent: a.clone() });
        }
    }
    Ok(DialPlan { number, agent })
}
