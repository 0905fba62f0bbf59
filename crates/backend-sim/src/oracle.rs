//! The swarm's independent oracle: judges a run from the simulated PBX's ground truth and the
//! operator's actions, never from the engine's counters.
//!
//! Each rule is re-implemented naively here on purpose (like `dialer_core::testing`'s trace
//! checker), so the oracle cannot share a bug with the engine:
//!
//! - **safety**, over every call the PBX placed: no blacklisted number (entries replayed in
//!   time order, with scope, expiry and direction), none outside the callee's local calling
//!   hours or on a holiday or outside the campaign's dates (the UTC instant converted to the
//!   callee's zone by chrono-tz), none to an unknown zone, attempt caps per number and per
//!   record, the K-in-D frequency cap, no number twice in flight, the line limit, and callbacks
//!   kept: the first dial after an operator booked one is not before its moment (exact) or
//!   its first day and hour, nor outside its daily hours while its days last (range, callee
//!   local time);
//! - **the abandonment cap in every legal period** (the campaign's zone: each calendar day
//!   for Ofcom, successive 30-day periods from the first day for the FTC), counted from what
//!   the callees experienced: a call answered and treated as live that no agent took within
//!   the threshold is abandoned (whether or not the dialer heard of it), and every machine
//!   verdict adds the world's *true* false-positive rate (a person hung up on). An estimate in
//!   the campaign below the truth therefore shows up here. Machine verdicts arrive after the
//!   dial, so the calls in flight (at most the line limit) may add their share beyond what
//!   the guard could see: the check allows `true rate × max_lines` for that, nothing else;
//! - **liveness**, after a phase without faults and a drain: no line in use on the PBX, no call
//!   in the engine, no agent free on the PBX but not ready in the engine, no record left in
//!   flight or pending without a number it may dial, no attempt left open in the ledger, each
//!   record's attempt count equal to the calls the PBX placed for it, one ledger row per
//!   Originate the PBX received, and the spool's counters equal to its records.

use crate::swarm::{thirty_day_period, SwarmSetup, TraceEvent};
use crate::world::Truth;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use dialer_core::{
    AbandonWindow, AgentId, BlacklistEntry, BlacklistScope, CallId, Direction, RecordId,
    RecordStatus, ScheduleWhen, SpoolRecord,
};
use serde::Serialize;
use spool_store::AttemptRow;
use std::collections::{BTreeMap, HashMap};

/// The invariants the oracle checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Invariant {
    Blacklist,
    CallingWindow,
    UnknownZone,
    AttemptCap,
    FrequencyCap,
    TwiceInFlight,
    LineLimit,
    Callback,
    AbandonCap,
    LineLeftInUse,
    AgentStuck,
    RecordStranded,
    LedgerMismatch,
    Stalled,
    Harness,
}

impl std::fmt::Display for Invariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invariant::Blacklist => "blacklist",
            Invariant::CallingWindow => "calling-window",
            Invariant::UnknownZone => "unknown-zone",
            Invariant::AttemptCap => "attempt-cap",
            Invariant::FrequencyCap => "frequency-cap",
            Invariant::TwiceInFlight => "twice-in-flight",
            Invariant::LineLimit => "line-limit",
            Invariant::Callback => "callback",
            Invariant::AbandonCap => "abandon-cap",
            Invariant::LineLeftInUse => "line-left-in-use",
            Invariant::AgentStuck => "agent-stuck",
            Invariant::RecordStranded => "record-stranded",
            Invariant::LedgerMismatch => "ledger-mismatch",
            Invariant::Stalled => "stalled",
            Invariant::Harness => "harness",
        })
    }
}

/// One broken invariant, with the first event that broke it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub at: Option<DateTime<Utc>>,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.at {
            Some(at) => write!(
                f,
                "{} at {}: {}",
                self.invariant,
                at.to_rfc3339(),
                self.detail
            ),
            None => write!(f, "{}: {}", self.invariant, self.detail),
        }
    }
}

impl Violation {
    fn new(invariant: Invariant, at: impl Into<Option<DateTime<Utc>>>, detail: String) -> Self {
        Violation {
            invariant,
            at: at.into(),
            detail,
        }
    }

    /// The run stopped moving: the loop turned at one instant without end.
    pub fn stalled(at: DateTime<Utc>) -> Violation {
        Violation::new(
            Invariant::Stalled,
            at,
            "the dialer and the PBX kept exchanging at one instant".into(),
        )
    }

    /// Something the swarm saw itself (an operation the engine refused after the spool took it).
    pub fn harness(at: DateTime<Utc>, detail: String) -> Violation {
        Violation::new(Invariant::Harness, at, detail)
    }
}

/// The state at the end of a run, after the drain.
#[derive(Debug, Clone)]
pub struct EndState {
    pub at: DateTime<Utc>,
    /// Calls the simulated PBX still holds.
    pub lines_in_use: usize,
    /// Calls the engine still tracks.
    pub engine_calls: usize,
    /// Agents free on the PBX whom the engine does not hold ready: (agent, engine's state).
    pub stuck_agents: Vec<(AgentId, String)>,
    pub records: Vec<SpoolRecord>,
    pub ledger: Vec<AttemptRow>,
    /// The spool's counters (ECCP status): records in flight, and in all.
    pub status_in_flight: u64,
    pub status_total: u64,
}

/// One legal period of the abandonment cap, as the callees experienced it.
#[derive(Debug, Clone, Copy, Default)]
struct Period {
    /// Answers treated as live (the detector said human, or there was none).
    live: u64,
    /// Of those, not taken by an agent within the threshold.
    abandoned: u64,
    /// Machine verdicts (some were people).
    machines: u64,
    first_abandon: Option<DateTime<Utc>>,
}

/// A call as the PBX saw it.
#[derive(Debug, Clone, Default)]
struct CallFacts {
    placed: Option<(DateTime<Utc>, RecordId, String)>,
    answered: Option<(DateTime<Utc>, bool)>,
    linked: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
}

fn blocks(e: &BlacklistEntry, number: &str, campaign: &str, at: DateTime<Utc>) -> bool {
    let scope = match &e.scope {
        BlacklistScope::All => true,
        BlacklistScope::Campaign(c) => &*c.0 == campaign,
    };
    let alive = match e.expires_at {
        None => true,
        Some(x) => at < x,
    };
    let outbound = matches!(e.direction, Direction::Outbound | Direction::Both);
    e.number == number && scope && alive && outbound
}

/// Judges a run. Violations of one invariant are reported once, at their first event.
/// Why the first dial of a record with a callback at `at` breaks the callback, if it does:
/// before an exact callback's moment; before a range callback's first day and hour, or inside
/// its days but outside its daily hours (callee local time). Once a range is over the record is
/// dialed like any other.
fn callback_broken(when: &ScheduleWhen, zone: &str, at: DateTime<Utc>) -> Option<String> {
    match when {
        ScheduleWhen::At { at: due } => {
            (at < *due).then(|| format!("at {at}, before its callback at {due}"))
        }
        ScheduleWhen::Range {
            start_date,
            end_date,
            start_time,
            end_time,
        } => {
            let tz: Tz = zone.parse().ok()?;
            let local = |d: NaiveDate, t: chrono::NaiveTime| {
                let ndt = d.and_time(t);
                tz.from_local_datetime(&ndt).earliest().or_else(|| {
                    tz.from_local_datetime(&(ndt + chrono::Duration::hours(1)))
                        .earliest()
                })
            };
            let (first, last) = (
                local(*start_date, *start_time)?,
                local(*end_date, *end_time)?,
            );
            let time = at.with_timezone(&tz).time();
            if at < first {
                Some(format!(
                    "at {at}, before its callback range starts at {first}"
                ))
            } else if at <= last && (time < *start_time || time > *end_time) {
                Some(format!(
                    "at {} local time, outside its callback hours {start_time}-{end_time}",
                    at.with_timezone(&tz)
                ))
            } else {
                None
            }
        }
    }
}

pub fn check(setup: &SwarmSetup, trace: &[TraceEvent], end: &EndState) -> Vec<Violation> {
    let mut out: BTreeMap<Invariant, Violation> = BTreeMap::new();
    let mut report = |v: Violation| {
        out.entry(v.invariant).or_insert(v);
    };
    let c = &setup.campaign;
    let campaign = &*c.id.0;
    let zone_of: HashMap<RecordId, Option<String>> = trace
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Spooled { record, index, .. } => {
                Some((record.clone(), setup.records[*index].zone.clone()))
            }
            _ => None,
        })
        .collect();

    // Replay in time order.
    let mut blacklist: Vec<BlacklistEntry> = Vec::new();
    let mut calls: BTreeMap<CallId, CallFacts> = BTreeMap::new();
    let mut in_flight_by_number: HashMap<String, CallId> = HashMap::new();
    let mut lines: usize = 0;
    let mut dials_by_record: HashMap<RecordId, Vec<DateTime<Utc>>> = HashMap::new();
    let mut dials_by_number: HashMap<(RecordId, String), u32> = HashMap::new();
    let mut refused = 0usize;
    // Callbacks booked and not yet dialed, per record.
    let mut callbacks: HashMap<RecordId, ScheduleWhen> = HashMap::new();
    for ev in trace {
        match ev {
            TraceEvent::Scheduled { record, when, .. } => {
                callbacks.insert(record.clone(), when.clone());
            }
            TraceEvent::BlacklistAdd { entry, .. } => blacklist.push(entry.clone()),
            TraceEvent::BlacklistRemove { number, scope, .. } => {
                blacklist.retain(|e| !(e.number == *number && e.scope == *scope))
            }
            TraceEvent::World(Truth::Refused { .. }) => refused += 1,
            TraceEvent::World(Truth::Placed {
                at,
                call,
                record,
                number,
                ..
            }) => {
                let at = *at;
                if let Some(e) = blacklist.iter().find(|e| blocks(e, number, campaign, at)) {
                    let scope = match &e.scope {
                        BlacklistScope::All => "every campaign".to_owned(),
                        BlacklistScope::Campaign(c) => format!("campaign {c}"),
                    };
                    report(Violation::new(
                        Invariant::Blacklist,
                        at,
                        format!(
                            "call {call} dialed {number} of record {record}, on the do-not-call list for {scope}"
                        ),
                    ));
                }
                let zone_name = zone_of
                    .get(record)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| c.time_zone.clone());
                match zone_name.parse::<Tz>() {
                    Err(_) => report(Violation::new(
                        Invariant::UnknownZone,
                        at,
                        format!("call {call} dialed record {record}, whose zone {zone_name:?} is unknown"),
                    )),
                    Ok(tz) => {
                        let local = at.with_timezone(&tz);
                        let (day, time) = (local.date_naive(), local.time());
                        let hours = c.calling_hours.on(day.weekday());
                        let in_hours = hours.iter().any(|r| r.start <= time && time < r.end);
                        let campaign_day = at.with_timezone(&c.tz()).date_naive();
                        let in_dates = c.start_date.is_none_or(|s| campaign_day >= s)
                            && c.end_date.is_none_or(|e| campaign_day <= e);
                        if !in_hours || c.holidays.contains(&day) || !in_dates {
                            report(Violation::new(
                                Invariant::CallingWindow,
                                at,
                                format!(
                                    "call {call} dialed record {record} at {local} in {zone_name}, outside its calling hours, dates or holidays"
                                ),
                            ));
                        }
                    }
                }
                if let Some(when) = callbacks.remove(record) {
                    let zone = zone_of.get(record).cloned().flatten();
                    let zone = zone.as_deref().unwrap_or(&c.time_zone);
                    if let Some(problem) = callback_broken(&when, zone, at) {
                        report(Violation::new(
                            Invariant::Callback,
                            at,
                            format!("call {call} dialed record {record} {problem}"),
                        ));
                    }
                }
                let times = dials_by_record.entry(record.clone()).or_default();
                times.push(at);
                if times.len() as u32 > c.max_attempts_per_record {
                    report(Violation::new(
                        Invariant::AttemptCap,
                        at,
                        format!(
                            "record {record} dialed {} times (cap {})",
                            times.len(),
                            c.max_attempts_per_record
                        ),
                    ));
                }
                if let Some(f) = c.frequency.per_record {
                    let k = f.max_attempts as usize;
                    if times.len() > k {
                        let first = times[times.len() - 1 - k];
                        if at - first < chrono::Duration::days(i64::from(f.days)) {
                            report(Violation::new(
                                Invariant::FrequencyCap,
                                at,
                                format!(
                                    "record {record} dialed {} times within {} day(s) (cap {k} per {} day(s))",
                                    k + 1,
                                    f.days,
                                    f.days
                                ),
                            ));
                        }
                    }
                }
                let n = dials_by_number
                    .entry((record.clone(), number.clone()))
                    .or_default();
                *n += 1;
                if *n > c.max_attempts_per_number {
                    report(Violation::new(
                        Invariant::AttemptCap,
                        at,
                        format!(
                            "number {number} of record {record} dialed {n} times (cap {})",
                            c.max_attempts_per_number
                        ),
                    ));
                }
                if let Some(other) = in_flight_by_number.insert(number.clone(), *call) {
                    report(Violation::new(
                        Invariant::TwiceInFlight,
                        at,
                        format!(
                            "call {call} dialed {number} while call {other} to it was still up"
                        ),
                    ));
                }
                lines += 1;
                if lines > c.max_lines as usize {
                    report(Violation::new(
                        Invariant::LineLimit,
                        at,
                        format!(
                            "call {call} made {lines} lines in use (limit {})",
                            c.max_lines
                        ),
                    ));
                }
                calls.entry(*call).or_default().placed = Some((at, record.clone(), number.clone()));
            }
            TraceEvent::World(Truth::Answered {
                at,
                call,
                said_machine,
                ..
            }) => {
                calls.entry(*call).or_default().answered = Some((*at, *said_machine));
            }
            TraceEvent::World(Truth::Linked { at, call }) => {
                calls.entry(*call).or_default().linked = Some(*at);
            }
            TraceEvent::World(Truth::Ended { at, call }) => {
                let f = calls.entry(*call).or_default();
                f.ended = Some(*at);
                if let Some((_, _, number)) = &f.placed {
                    if in_flight_by_number.get(number) == Some(call) {
                        in_flight_by_number.remove(number);
                    }
                    lines = lines.saturating_sub(1);
                }
            }
            _ => {}
        }
    }

    // The abandonment cap, per legal period, from what the callees experienced.
    let tz = c.tz();
    let first_day = calls
        .values()
        .filter_map(|f| f.placed.as_ref().map(|p| p.0))
        .min()
        .map(|t| t.with_timezone(&tz).date_naive());
    let anchor = c.start_date.or(first_day);
    let threshold = chrono::Duration::milliseconds((c.abandon.threshold_s * 1000.0).round() as i64);
    let mut periods: BTreeMap<NaiveDate, Period> = BTreeMap::new();
    for f in calls.values() {
        let Some((answered_at, said_machine)) = f.answered else {
            continue;
        };
        let day = answered_at.with_timezone(&tz).date_naive();
        let period = match (c.abandon.window, anchor) {
            (AbandonWindow::CalendarDay, _) => day,
            (AbandonWindow::RollingDays { days }, Some(a)) => thirty_day_period(a, day, days),
            (AbandonWindow::RollingDays { .. }, None) => day,
        };
        let p = periods.entry(period).or_default();
        if said_machine {
            p.machines += 1;
            continue;
        }
        p.live += 1;
        let abandoned = match f.linked {
            Some(l) => l - answered_at > threshold,
            None => true,
        };
        if abandoned {
            p.abandoned += 1;
            p.first_abandon = Some(p.first_abandon.map_or(answered_at, |t| t.min(answered_at)));
        }
    }
    let r = setup.true_fp_rate;
    for (start, p) in &periods {
        let Period {
            live,
            abandoned,
            machines,
            first_abandon,
        } = *p;
        let counted = abandoned as f64 + r * machines as f64;
        let allowed = c.abandon.cap * live as f64 + r * f64::from(c.max_lines) + 1e-9;
        if counted > allowed {
            report(Violation::new(
                Invariant::AbandonCap,
                first_abandon,
                format!(
                    "period from {start}: {abandoned} abandoned + {machines} machine verdicts × true false-positive rate {r:.4} = {counted:.2} over {live} live answers, above the cap {}",
                    c.abandon.cap
                ),
            ));
        }
    }

    // Liveness.
    if end.lines_in_use > 0 || end.engine_calls > 0 {
        report(Violation::new(
            Invariant::LineLeftInUse,
            end.at,
            format!(
                "after the drain the PBX holds {} calls and the engine tracks {}",
                end.lines_in_use, end.engine_calls
            ),
        ));
    }
    if let Some((agent, state)) = end.stuck_agents.first() {
        report(Violation::new(
            Invariant::AgentStuck,
            end.at,
            format!("agent {agent} is free on the PBX but the engine holds it as {state}"),
        ));
    }
    let placed_by_record: HashMap<&RecordId, u32> = dials_by_record
        .iter()
        .map(|(r, t)| (r, t.len() as u32))
        .collect();
    for rec in &end.records {
        match &rec.status {
            RecordStatus::InFlight { call } => report(Violation::new(
                Invariant::RecordStranded,
                end.at,
                format!(
                    "record {} is still in flight on call {call} after the drain",
                    rec.id
                ),
            )),
            RecordStatus::Pending if rec.number_to_dial().is_none() => report(Violation::new(
                Invariant::RecordStranded,
                end.at,
                format!("record {} is pending with no number it may dial", rec.id),
            )),
            RecordStatus::Pending if rec.attempts >= c.max_attempts_per_record => {
                report(Violation::new(
                    Invariant::RecordStranded,
                    end.at,
                    format!(
                        "record {} is pending with {} attempts, at its cap",
                        rec.id, rec.attempts
                    ),
                ))
            }
            _ => {}
        }
        let placed = placed_by_record.get(&rec.id).copied().unwrap_or(0);
        if rec.attempts != placed {
            report(Violation::new(
                Invariant::LedgerMismatch,
                end.at,
                format!(
                    "record {} counts {} attempts but the PBX placed {placed} calls for it",
                    rec.id, rec.attempts
                ),
            ));
        }
    }
    if let Some(open) = end.ledger.iter().find(|a| a.ended_at.is_none()) {
        report(Violation::new(
            Invariant::LedgerMismatch,
            end.at,
            format!(
                "the ledger's attempt of call {} is still open after the drain",
                open.call
            ),
        ));
    }
    let originates = calls.values().filter(|f| f.placed.is_some()).count() + refused;
    if end.ledger.len() != originates {
        report(Violation::new(
            Invariant::LedgerMismatch,
            end.at,
            format!(
                "the ledger has {} attempts but the PBX received {originates} Originates",
                end.ledger.len()
            ),
        ));
    }
    if end.status_in_flight != 0 || end.status_total != end.records.len() as u64 {
        report(Violation::new(
            Invariant::LedgerMismatch,
            end.at,
            format!(
                "the spool's counters say {} records, {} in flight; it holds {} records",
                end.status_total,
                end.status_in_flight,
                end.records.len()
            ),
        ));
    }
    out.into_values().collect()
}
