//! An independent checker of the engine's outputs against the compliance rules.
//!
//! It re-derives what it needs from the inputs with its own, deliberately naive, logic (wall
//! clock reading of the callee's local time, plain counting), so a bug in the engine's rules
//! cannot hide itself. Feed it every input before the engine sees it and every output after.

use crate::engine::{AgentEvent, CallEvent, Command, Input, InputKind, Output, StoreUpdate};
use crate::model::blacklist::{BlacklistEntry, BlacklistScope};
use crate::model::campaign::{Campaign, DialMode};
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, CallOutcome};
use crate::model::record::SpoolRecord;
use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};

/// A broken rule, with what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule's short name (`blacklist`, `calling-window`, ...).
    pub rule: &'static str,
    /// What shows it was broken.
    pub detail: String,
}

#[derive(Debug, Clone)]
struct LiveCall {
    campaign: CampaignId,
    record: RecordId,
    e164: String,
    answered: Option<AnswerKind>,
    linked: Option<AgentId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentMode {
    Free,
    Busy,
    /// On a call, and said Ready during it: free when it ends.
    FreeAfterCall,
    Away,
}

/// Watches a trace; collects [`Violation`]s.
#[derive(Debug, Default)]
pub struct TraceChecker {
    now: Option<DateTime<Utc>>,
    campaigns: BTreeMap<CampaignId, Campaign>,
    /// First snapshot of each record seen (baseline counts) and the latest (zone, schedule).
    first_seen: BTreeMap<RecordId, SpoolRecord>,
    latest: BTreeMap<RecordId, SpoolRecord>,
    blacklist: Vec<BlacklistEntry>,
    calls: BTreeMap<CallId, LiveCall>,
    /// Originate times per record, and per (record, number).
    dials: BTreeMap<RecordId, Vec<DateTime<Utc>>>,
    dials_per_number: BTreeMap<(RecordId, String), u32>,
    /// Every Originate: record, number, time (a dial never placed is taken back).
    placed: BTreeMap<CallId, (RecordId, String, DateTime<Utc>)>,
    last_abandon: BTreeMap<RecordId, DateTime<Utc>>,
    last_machine: BTreeMap<RecordId, DateTime<Utc>>,
    agents: BTreeMap<AgentId, (Vec<CampaignId>, AgentMode)>,
    /// Every broken rule seen, in order.
    pub violations: Vec<Violation>,
    /// How many Originates it saw.
    pub originates: usize,
}

impl TraceChecker {
    /// A checker that has seen nothing.
    pub fn new() -> TraceChecker {
        TraceChecker::default()
    }

    fn violate(&mut self, rule: &'static str, detail: String) {
        self.violations.push(Violation { rule, detail });
    }

    /// Records an input (call before the engine handles it).
    pub fn input(&mut self, input: &Input) {
        let now = self.now.map_or(input.now, |t| t.max(input.now));
        self.now = Some(now);
        match &input.kind {
            InputKind::Campaign(c) => {
                self.campaigns.insert(c.id.clone(), Campaign::clone(c));
            }
            InputKind::RecordsOffered { records, .. } => {
                for r in records {
                    self.first_seen
                        .entry(r.id.clone())
                        .or_insert_with(|| SpoolRecord::clone(r));
                    self.latest.insert(r.id.clone(), SpoolRecord::clone(r));
                }
            }
            InputKind::Command(c) => match &**c {
                Command::BlacklistAdd(e) => self.blacklist.push(e.clone()),
                Command::BlacklistRemove { number, scope } => {
                    self.blacklist
                        .retain(|e| !(&e.number == number && &e.scope == scope));
                }
                _ => {}
            },
            InputKind::Agent { agent, event } => {
                let entry = self
                    .agents
                    .entry(agent.clone())
                    .or_insert((Vec::new(), AgentMode::Away));
                match event {
                    AgentEvent::LoggedIn { campaigns, .. } => {
                        entry.0 = campaigns.clone();
                        if entry.1 == AgentMode::Away {
                            entry.1 = AgentMode::Free;
                        }
                    }
                    AgentEvent::Ready => {
                        // Ready during a call does not end it: free when it ends.
                        let on_call = self
                            .calls
                            .values()
                            .any(|c| c.linked.as_ref() == Some(agent));
                        entry.1 = if on_call {
                            AgentMode::FreeAfterCall
                        } else {
                            AgentMode::Free
                        };
                    }
                    AgentEvent::Paused { .. } | AgentEvent::LoggedOut => {
                        let on_call = self
                            .calls
                            .values()
                            .any(|c| c.linked.as_ref() == Some(agent));
                        entry.1 = if on_call {
                            AgentMode::Busy
                        } else {
                            AgentMode::Away
                        };
                    }
                    AgentEvent::WrapUp => entry.1 = AgentMode::Busy,
                    AgentEvent::PauseAfterCall { .. }
                    | AgentEvent::LogoutAfterCall
                    | AgentEvent::Ping => {}
                }
            }
            InputKind::Call { call, event } => self.call_input(now, *call, event),
            _ => {}
        }
    }

    fn call_input(&mut self, now: DateTime<Utc>, call: CallId, event: &CallEvent) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match event {
            CallEvent::Answered { kind } => c.answered = c.answered.or(Some(*kind)),
            CallEvent::Linked { agent } => {
                c.linked = Some(agent.clone());
                if let Some(a) = self.agents.get_mut(agent) {
                    a.1 = AgentMode::Busy;
                }
            }
            CallEvent::HungUp { .. } | CallEvent::OriginateRefused { .. } | CallEvent::Lost => {
                let c = self.calls.remove(&call).expect("checked above");
                if matches!(event, CallEvent::HungUp { .. }) && c.linked.is_none() {
                    match c.answered {
                        Some(AnswerKind::Machine) => {
                            self.last_machine.insert(c.record.clone(), now);
                        }
                        Some(_) => {
                            self.last_abandon.insert(c.record.clone(), now);
                        }
                        None => {}
                    }
                }
                // The agent of a linked call stays busy (wrap-up) until it says Ready, unless
                // it said so during the call.
                if let Some(a) = c.linked.as_ref().and_then(|a| self.agents.get_mut(a)) {
                    if a.1 == AgentMode::FreeAfterCall {
                        a.1 = AgentMode::Free;
                    }
                }
            }
            _ => {}
        }
    }

    /// Checks an output (call after the engine produced it).
    pub fn output(&mut self, output: &Output) {
        match output {
            Output::Originate(o) => self.check_originate(o),
            Output::Store(StoreUpdate::BlacklistAdded(e)) => self.blacklist.push(e.clone()),
            // A dial the telephone system never placed is no attempt: take it back.
            Output::Store(StoreUpdate::AttemptEnded {
                call,
                outcome: CallOutcome::NotPlaced,
                ..
            }) => {
                if let Some((record, e164, at)) = self.placed.remove(call) {
                    if let Some(d) = self.dials.get_mut(&record) {
                        if let Some(i) = d.iter().rposition(|t| *t == at) {
                            d.remove(i);
                        }
                    }
                    if let Some(n) = self.dials_per_number.get_mut(&(record, e164)) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            Output::Store(StoreUpdate::Record(r)) => {
                self.latest.insert(r.id.clone(), SpoolRecord::clone(r));
            }
            _ => {}
        }
    }

    fn check_originate(&mut self, o: &crate::engine::OriginateIntent) {
        self.originates += 1;
        let now = self.now.expect("an input precedes every output");
        let e164 = o.number.e164().to_owned();
        let Some(campaign) = self.campaigns.get(&o.campaign).cloned() else {
            self.violate(
                "known_campaign",
                format!("{} dialed for unknown campaign", o.call),
            );
            return;
        };
        // Blacklist.
        let blocked = self.blacklist.iter().any(|e| {
            e.number == e164
                && match &e.scope {
                    BlacklistScope::All => true,
                    BlacklistScope::Campaign(c) => c == &o.campaign,
                }
                && e.expires_at.is_none_or(|x| now < x)
                && e.direction.blocks_outbound()
        });
        if blocked {
            self.violate(
                "never_dials_a_blacklisted_number",
                format!("{e164} at {now}"),
            );
        }
        // Calling window, read naively on the callee's wall clock.
        let rec = self.latest.get(&o.record).cloned();
        let zone_name = rec
            .as_ref()
            .and_then(|r| r.time_zone.clone())
            .unwrap_or_else(|| campaign.time_zone.clone());
        match zone_name.parse::<Tz>() {
            Err(_) => self.violate(
                "unknown_zone_is_never_dialed",
                format!("{e164} zone {zone_name:?}"),
            ),
            Ok(tz) => {
                let local = now.with_timezone(&tz);
                let t = local.time();
                let inside = campaign
                    .calling_hours
                    .on(local.weekday())
                    .iter()
                    .any(|r| r.start <= t && t < r.end);
                let holiday = campaign.holidays.contains(&local.date_naive());
                let ctz: Tz = campaign.time_zone.parse().unwrap_or(chrono_tz::UTC);
                let cday = now.with_timezone(&ctz).date_naive();
                let in_dates = campaign.start_date.is_none_or(|d| cday >= d)
                    && campaign.end_date.is_none_or(|d| cday <= d);
                if !inside || holiday || !in_dates {
                    self.violate(
                        "never_dials_outside_the_callee_window",
                        format!("{e164} at {now} = {local} ({zone_name})"),
                    );
                }
            }
        }
        // Number in flight twice.
        if self.calls.values().any(|c| c.e164 == e164) {
            self.violate(
                "never_has_one_number_in_flight_twice",
                format!("{e164} at {now}"),
            );
        }
        // Attempt caps, from the first snapshot's counts plus the dials seen.
        let (base_total, base_number, base_recent) = match self.first_seen.get(&o.record) {
            Some(first) => (
                first.attempts,
                first
                    .numbers
                    .iter()
                    .find(|s| s.number.e164() == e164)
                    .map_or(0, |s| s.attempts),
                first.history.recent.clone(),
            ),
            None => (0, 0, Vec::new()),
        };
        self.placed
            .insert(o.call, (o.record.clone(), e164.clone(), now));
        let dials = self.dials.entry(o.record.clone()).or_default();
        dials.push(now);
        let total = base_total + dials.len() as u32;
        let per_number = self
            .dials_per_number
            .entry((o.record.clone(), e164.clone()))
            .or_default();
        *per_number += 1;
        let per_number = base_number + *per_number;
        let mut recent = base_recent;
        recent.extend(self.dials[&o.record].iter().copied());
        if total > campaign.max_attempts_per_record {
            self.violate(
                "never_exceeds_attempt_caps",
                format!("record {} dialed {total} times", o.record),
            );
        }
        if per_number > campaign.max_attempts_per_number {
            self.violate(
                "never_exceeds_attempt_caps",
                format!("{e164} of record {} dialed {per_number} times", o.record),
            );
        }
        if let Some(cap) = campaign.frequency.per_record {
            let since = now - Duration::days(i64::from(cap.days));
            let n = recent.iter().filter(|&&t| t > since).count() as u32;
            if n > cap.max_attempts {
                self.violate(
                    "never_exceeds_frequency_caps",
                    format!("record {} has {n} attempts in {} days", o.record, cap.days),
                );
            }
        }
        if let (Some(h), Some(at)) = (
            campaign.frequency.no_redial_after_abandon_h,
            self.last_abandon.get(&o.record),
        ) {
            if now < *at + Duration::hours(i64::from(h)) {
                self.violate(
                    "never_exceeds_frequency_caps",
                    format!(
                        "record {} redialed {} after an abandon",
                        o.record,
                        now - *at
                    ),
                );
            }
        }
        if campaign.frequency.no_redial_same_day_after_machine {
            if let (Some(at), Ok(tz)) = (self.last_machine.get(&o.record), zone_name.parse::<Tz>())
            {
                if at.with_timezone(&tz).date_naive() == now.with_timezone(&tz).date_naive() {
                    self.violate(
                        "never_exceeds_frequency_caps",
                        format!("record {} redialed the day of a machine", o.record),
                    );
                }
            }
        }
        // Line limit (the new call included).
        let lines = self
            .calls
            .values()
            .filter(|c| c.campaign == o.campaign)
            .count() as u32
            + 1;
        if lines > campaign.max_lines {
            self.violate(
                "never_exceeds_the_line_limit",
                format!("{lines} lines > {}", campaign.max_lines),
            );
        }
        // Progressive: unlinked calls never outnumber free agents.
        if campaign.dial_mode == DialMode::Progressive {
            let unlinked = self
                .calls
                .values()
                .filter(|c| {
                    c.campaign == o.campaign
                        && c.linked.is_none()
                        && c.answered != Some(AnswerKind::Machine)
                })
                .count()
                + 1;
            let home = |cs: &Vec<CampaignId>| {
                cs.iter().find(|c| self.campaigns.contains_key(*c)) == Some(&o.campaign)
            };
            let free = self
                .agents
                .values()
                .filter(|(cs, m)| *m == AgentMode::Free && home(cs))
                .count();
            if unlinked > free {
                self.violate(
                    "progressive_never_outdials_free_agents",
                    format!("{unlinked} calls in flight for {free} free agents at {now}"),
                );
            }
        }
        self.calls.insert(
            o.call,
            LiveCall {
                campaign: o.campaign.clone(),
                record: o.record.clone(),
                e164,
                answered: None,
                linked: None,
            },
        );
    }

    /// Calls the checker believes are in flight.
    pub fn calls_in_flight(&self) -> BTreeSet<CallId> {
        self.calls.keys().copied().collect()
    }
}
