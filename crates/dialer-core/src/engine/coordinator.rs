//! The engine: holds campaigns, agents, calls and the records about to be dialed; turns
//! inputs into outputs. Never reads a clock: time comes with each input.

use super::agent::{AgentState, Agents};
use super::calls::Calls;
use super::campaigns::CampaignRun;
use super::config::EngineConfig;
use super::telephony::Telephony;
use super::timers::Timers;
use crate::engine::input::{CallEvent, Command, Input, InputKind};
use crate::engine::output::{Event, Output};
use crate::engine::reject::{InputName, RejectReason};
use crate::model::blacklist::Blacklist;
use crate::model::ids::{AgentId, CampaignId, RecordId};
use crate::model::record::SpoolRecord;
use crate::pacing::{self, AgentLoad, Pacer};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

/// The dialer engine. See the crate documentation for the run loop.
///
/// A short coordinator: it owns the clock, the settings and the campaigns, hands each input
/// to the module of its lifecycle, and after a burst of inputs asks the dialing decision
/// ([`Engine::drive`]) once. Who owns which fact:
///
/// | fact | owner |
/// | --- | --- |
/// | the latest input's time, the last decision's time | [`Engine`] |
/// | a campaign's settings, pacer, abandonment books, hopper, records in flight and just called, its agents' handles | [`CampaignRun`] |
/// | a campaign's lines in use, unanswered dials, waiting answers | [`CallCounts`] in its [`CampaignRun`], changed only by [`Calls`] |
/// | each call's phase (dialing, machine, waiting with its deadline, abandoned, linked) | [`Calls`] |
/// | each agent's state, since when, campaigns, home, plan after the call | [`Agents`] |
/// | per home campaign, its agents counted for pacing (logged in, free, held back, talking, in wrap-up) | [`Roster`](super::agent::Roster) in [`Agents`], recounted from the agents changed since it was read |
/// | what is due when | [`Timers`] (an index over deadlines held by the states above) |
/// | whether calls may be placed | [`Telephony`] |
pub struct Engine {
    pub(super) cfg: EngineConfig,
    pub(super) now: Option<DateTime<Utc>>,
    pub(super) campaigns: BTreeMap<CampaignId, CampaignRun>,
    pub(super) floor: Floor,
    /// When the engine last decided what to dial.
    pub(super) last_drive: Option<DateTime<Utc>>,
}

/// Everything the engine holds across campaigns: agents, calls, timers, the telephone
/// system's health, the do-not-call list, and the outputs waiting to be polled. Kept apart
/// from the campaigns so a campaign's run is looked up once and passed, with the floor, to
/// whatever acts on both.
pub(super) struct Floor {
    /// Every agent seen.
    pub(super) agents: Agents,
    /// Every call in flight.
    pub(super) calls: Calls,
    /// Everything due at a set time, soonest first.
    pub(super) timers: Timers,
    /// Whether calls may be placed.
    pub(super) telephony: Telephony,
    /// The do-not-call list.
    pub(super) blacklist: Blacklist,
    /// The next call id to mint.
    pub(super) next_call: u64,
    /// Outputs waiting for [`Engine::poll_output`].
    pub(super) out: Outbox,
    /// Buffer of the pacing snapshot's busy agents, kept between inputs.
    pub(super) busy_scratch: Vec<AgentLoad>,
}

/// Outputs waiting to be polled, and whether the events of each call's and record's course
/// are reported ([`EngineConfig::call_events`]): such an event is built only if it is.
pub(super) struct Outbox {
    queue: VecDeque<Output>,
    call_events: bool,
}

impl Outbox {
    /// Queues an output.
    pub(super) fn push_back(&mut self, output: Output) {
        self.queue.push_back(output);
    }

    /// Queues an event of a call's or record's course ([`Event::Dialed`], [`Event::Progress`],
    /// [`Event::AgentLinked`], [`Event::AgentUnlinked`], [`Event::RecordFinished`]), built
    /// only when the engine reports them.
    pub(super) fn course(&mut self, event: impl FnOnce() -> Event) {
        if self.call_events {
            self.queue.push_back(Output::Event(event()));
        }
    }

    /// [`Outbox::course`] for an event that may not be built at all (its parts were not copied
    /// because the course is not reported).
    pub(super) fn course_if(&mut self, event: Option<impl FnOnce() -> Event>) {
        if let Some(event) = event {
            self.course(event);
        }
    }

    /// Whether the events of a call's course are reported.
    pub(super) fn reports_course(&self) -> bool {
        self.call_events
    }

    /// The oldest output waiting.
    pub(super) fn pop_front(&mut self) -> Option<Output> {
        self.queue.pop_front()
    }
}

/// The kind of an input, for [`Event::Rejected`].
pub(super) fn input_name(k: &InputKind) -> InputName {
    match k {
        InputKind::Tick => InputName::Tick,
        InputKind::Campaign(_) => InputName::Campaign,
        InputKind::StopCampaign { .. } => InputName::StopCampaign,
        InputKind::RecordsOffered { .. } => InputName::RecordsOffered,
        InputKind::Agent { .. } => InputName::Agent,
        InputKind::Call { .. } => InputName::Call,
        InputKind::Telephony(_) => InputName::Telephony,
        InputKind::Command(c) => match &**c {
            Command::Dispose { .. } => InputName::Dispose,
            Command::BlacklistAdd(_) => InputName::BlacklistAdd,
            Command::BlacklistRemove { .. } => InputName::BlacklistRemove,
            Command::PreviewDial { .. } => InputName::PreviewDial,
            Command::PreviewSkip { .. } => InputName::PreviewSkip,
            Command::Hangup { .. } => InputName::Hangup,
            Command::Hold { .. } => InputName::Hold,
            Command::Unhold { .. } => InputName::Unhold,
            Command::Forget { .. } => InputName::Forget,
            Command::HoldLines { .. } => InputName::HoldLines,
            Command::RestoreAbandonBooks { .. } => InputName::RestoreAbandonBooks,
        },
    }
}

impl Engine {
    /// An engine with no campaign, agent or call, and no time yet: the first input sets its
    /// clock.
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            floor: Floor {
                agents: Agents::default(),
                calls: Calls::default(),
                timers: Timers::default(),
                telephony: Telephony::Up,
                blacklist: Blacklist::default(),
                next_call: cfg.first_call_id,
                out: Outbox {
                    queue: VecDeque::new(),
                    call_events: cfg.call_events,
                },
                busy_scratch: Vec::new(),
            },
            cfg,
            now: None,
            campaigns: BTreeMap::new(),
            last_drive: None,
        }
    }

    // ----- getters -----

    /// The time of the latest input.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    /// The do-not-call list as the engine applies it.
    pub fn blacklist(&self) -> &Blacklist {
        &self.floor.blacklist
    }

    /// An agent's state; `None` for an agent never seen.
    pub fn agent_state(&self, agent: &AgentId) -> Option<&AgentState> {
        self.floor.agents.get(agent).map(|a| &a.state)
    }

    /// Calls in flight (placed and not ended), all campaigns.
    pub fn calls_in_flight(&self) -> usize {
        self.floor.calls.len()
    }

    /// The abandonment position of a campaign's current period.
    pub fn abandon_status(&mut self, campaign: &CampaignId) -> Option<pacing::AbandonStatus> {
        let now = self.now?;
        self.campaigns
            .get_mut(campaign)
            .map(|c| c.ledger.status(now))
    }

    /// Every abandonment period of a campaign so far: (start, live answers, abandoned).
    pub fn abandon_periods(&self, campaign: &CampaignId) -> Vec<(chrono::NaiveDate, u64, u64)> {
        self.campaigns
            .get(campaign)
            .map(|c| c.ledger.periods())
            .unwrap_or_default()
    }

    /// Whether a call on the record is in flight (an operator may not change it now).
    pub fn record_in_flight(&self, record: &RecordId) -> bool {
        self.campaigns
            .values()
            .any(|run| run.in_flight.contains_key(record))
    }

    /// The records the engine holds for `campaign`: offered and waiting in the hopper (in dial
    /// order), with a call in flight, and kept after their call for late dispositions. Empty
    /// for a campaign the engine does not run.
    pub fn held_records(&self, campaign: &CampaignId) -> Vec<&SpoolRecord> {
        let Some(run) = self.campaigns.get(campaign) else {
            return Vec::new();
        };
        run.hopper
            .iter()
            .chain(run.in_flight.values())
            .chain(run.recent_records.values())
            .map(|r| &**r)
            .collect()
    }

    /// The campaigns the engine holds, in order.
    pub fn campaign_ids(&self) -> impl Iterator<Item = &CampaignId> {
        self.campaigns.keys()
    }

    /// The name of the pacer a campaign runs.
    pub fn pacer_name(&self, campaign: &CampaignId) -> Option<String> {
        self.campaigns.get(campaign).map(|c| c.pacer.name())
    }

    // ----- mutators -----

    /// Replaces a campaign's pacer (simulator baselines, custom policies).
    pub fn set_pacer(&mut self, campaign: &CampaignId, pacer: Box<dyn Pacer>) -> bool {
        match self.campaigns.get_mut(campaign) {
            Some(c) => {
                c.pacer = pacer;
                true
            }
            None => false,
        }
    }

    /// Loads the do-not-call list at start-up.
    pub fn load_blacklist(&mut self, blacklist: Blacklist) {
        self.floor.blacklist = blacklist;
    }

    // ----- input -----

    /// Applies one input, then decides what to dial. Outputs wait in [`Engine::poll_output`].
    /// An input that cannot be applied produces an [`Event::Rejected`] and changes nothing.
    pub fn handle_input(&mut self, input: Input) {
        self.handle_inputs(std::iter::once(input));
    }

    /// Applies one command and answers at once: `Err` says why it was refused, and then
    /// nothing changed (no output is queued for it). On success its outputs, and those of the
    /// dialing decision that follows, wait in [`Engine::poll_output`] like any input's.
    pub fn apply_command(
        &mut self,
        now: DateTime<Utc>,
        command: Command,
    ) -> Result<(), RejectReason> {
        // A refused command changes nothing, not even the engine's clock.
        let now = self.now.map_or(now, |t| t.max(now));
        self.command(now, command)?;
        self.advance_clock(now);
        self.decide_after(now, true);
        Ok(())
    }

    /// Time never runs backwards inside the engine: a late input is applied "now".
    pub(super) fn advance_clock(&mut self, at: DateTime<Utc>) -> DateTime<Utc> {
        let now = match self.now {
            Some(t) if at < t => t,
            _ => at,
        };
        self.now = Some(now);
        now
    }

    /// Decides what to dial after inputs applied at `now`, unless nothing a decision depends
    /// on changed since the last one at this very instant (most bursts of a busy floor).
    pub(super) fn decide_after(&mut self, now: DateTime<Utc>, changed: bool) {
        if changed || self.last_drive != Some(now) {
            self.drive(now);
            self.last_drive = Some(now);
        }
    }

    /// Applies a burst of inputs (events that arrived together), then decides what to dial
    /// once, with all of them known. Same as [`Engine::handle_input`] for each, except that no
    /// dialing decision is taken between them.
    pub fn handle_inputs(&mut self, inputs: impl IntoIterator<Item = Input>) {
        let mut last = None;
        let mut changed = false;
        for input in inputs {
            // Progress reports of a call change nothing a dialing decision depends on, and
            // neither does a refused input.
            let decisive = !matches!(
                input.kind,
                InputKind::Call {
                    event: CallEvent::OriginateAccepted | CallEvent::Ringing | CallEvent::Queued,
                    ..
                }
            );
            let now = self.advance_clock(input.now);
            let input_name = input_name(&input.kind);
            match self.apply(now, input.kind) {
                Ok(()) => changed |= decisive,
                Err(reason) => self.floor.out.push_back(Output::Event(Event::Rejected {
                    at: now,
                    input: input_name,
                    reason,
                })),
            }
            last = Some(now);
        }
        if let Some(now) = last {
            self.decide_after(now, changed);
        }
    }

    /// The next output; [`Output::Timeout`] when there is nothing more before that time.
    pub fn poll_output(&mut self) -> Output {
        match self.floor.out.pop_front() {
            Some(o) => o,
            None => Output::Timeout(self.next_wakeup()),
        }
    }

    pub(super) fn apply(
        &mut self,
        now: DateTime<Utc>,
        kind: InputKind,
    ) -> Result<(), RejectReason> {
        match kind {
            InputKind::Tick => Ok(()),
            InputKind::Campaign(c) => self.add_campaign(now, *c),
            InputKind::Telephony(health) => {
                self.telephony_health(now, health);
                Ok(())
            }
            InputKind::StopCampaign { campaign } => {
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
                run.stopped = true;
                run.hopper.clear();
                self.recompute_homes();
                Ok(())
            }
            InputKind::RecordsOffered { campaign, records } => {
                self.records_offered(now, &campaign, records)
            }
            InputKind::Agent { agent, event } => self.agent_event(now, agent, event),
            InputKind::Call { call, event } => self.call_event(now, call, event),
            InputKind::Command(c) => self.command(now, *c),
        }
    }
}

#[cfg(test)]
mod call_events_tests {
    use crate::engine::input::{AgentEvent, CallEvent, InputKind};
    use crate::engine::output::{Event, Output};
    use crate::model::ids::{AgentId, CallId, RecordId};
    use crate::model::outcome::{AnswerKind, FailureClass};
    use crate::{Campaign, Engine, EngineConfig, Input, PhoneNumber, SpoolRecord};
    use chrono::{Duration, TimeZone, Utc};

    fn is_course(o: &Output) -> bool {
        matches!(
            o,
            Output::Event(
                Event::Dialed { .. }
                    | Event::Progress { .. }
                    | Event::AgentLinked { .. }
                    | Event::AgentUnlinked { .. }
                    | Event::RecordFinished { .. }
            )
        )
    }

    /// A morning of three agents and eight records: calls answered and talked, refused,
    /// unanswered; the same inputs to an engine that reports the course of calls and to one
    /// that does not.
    fn outputs(call_events: bool) -> Vec<Output> {
        let mut engine = Engine::new(EngineConfig {
            call_events,
            ..EngineConfig::default()
        });
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 15, 0, 0).unwrap(); // 11:00 in New York
        let campaign = Campaign::new("spring", "America/New_York");
        let cid = campaign.id.clone();
        let records = (1..=8)
            .map(|i| {
                let number = PhoneNumber::parse(&format!("212 555 01{i:02}"), "US").unwrap();
                std::sync::Arc::new(SpoolRecord::new(
                    RecordId(i),
                    cid.clone(),
                    number,
                    vec![],
                    t0,
                ))
            })
            .collect();
        let mut out = Vec::new();
        let mut feed = |engine: &mut Engine, at, kind| {
            engine.handle_input(Input::new(at, kind));
            loop {
                match engine.poll_output() {
                    Output::Timeout(_) => break,
                    o => out.push(o),
                }
            }
        };
        feed(&mut engine, t0, InputKind::Campaign(Box::new(campaign)));
        for a in ["ann", "bob", "cy"] {
            let event = AgentEvent::LoggedIn {
                campaigns: vec![cid.clone()],
                inactivity_timeout_s: None,
            };
            let agent = AgentId::from(a);
            feed(&mut engine, t0, InputKind::Agent { agent, event });
        }
        let offer = InputKind::RecordsOffered {
            campaign: cid.clone(),
            records,
        };
        feed(&mut engine, t0, offer);
        let at = |s| t0 + Duration::seconds(s);
        let script = [
            (1, CallEvent::OriginateAccepted),
            (1, CallEvent::Ringing),
            (2, CallEvent::OriginateAccepted),
            (
                1,
                CallEvent::Answered {
                    kind: AnswerKind::Human,
                },
            ),
            (
                1,
                CallEvent::Linked {
                    agent: AgentId::from("ann"),
                },
            ),
            (
                2,
                CallEvent::HungUp {
                    failure: Some(FailureClass::Busy),
                    ended_at: None,
                },
            ),
            (
                3,
                CallEvent::HungUp {
                    failure: Some(FailureClass::NoAnswer),
                    ended_at: None,
                },
            ),
            (
                1,
                CallEvent::HungUp {
                    failure: None,
                    ended_at: None,
                },
            ),
        ];
        for (i, (call, event)) in script.into_iter().enumerate() {
            let call = CallId(call);
            feed(
                &mut engine,
                at(5 * i as i64 + 5),
                InputKind::Call { call, event },
            );
        }
        out
    }

    #[test]
    fn without_call_events_the_engine_decides_and_persists_exactly_the_same() {
        let with = outputs(true);
        let without = outputs(false);
        assert!(
            with.iter().any(is_course),
            "the script reports a call's course"
        );
        assert!(with.iter().any(|o| matches!(o, Output::Originate(_))));
        assert!(!without.iter().any(is_course));
        let rest: Vec<_> = with.into_iter().filter(|o| !is_course(o)).collect();
        assert_eq!(rest, without);
    }
}
