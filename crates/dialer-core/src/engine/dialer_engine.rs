//! The engine: holds campaigns, agents, calls and the records about to be dialed; turns
//! inputs into outputs. Never reads a clock: time comes with each input.

use super::input::{
    AgentEvent, CallEvent, Command, Input, InputKind, RefusalCause, TelephonyHealth,
};
use super::output::{
    DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate,
};
use super::reject::{InputName, RejectReason};
use super::status::{
    AbandonPosition, AgentStatus, CallState, CallStatus, CampaignStatus, DialingPaused,
    EngineStatus, TelephonyStatus,
};
use crate::model::blacklist::Blacklist;
use crate::model::campaign::{AfterCall, Campaign, DialMode, MachinePolicy};
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, CallOutcome, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::{FinishReason, NumberState, RecordStatus, SpoolRecord, TaskKind};
use crate::model::variable::VariableName;
use crate::pacing::{
    self, abandonment, AbandonLedger, AgentLoad, AgentPhase, Pacer, PacingEvent, PacingSnapshot,
};
use crate::rules::eligibility::{self, EligibilityContext, SkipReason};
use crate::rules::{disposition, next_step, ordering, schedule};
use chrono::{DateTime, Duration, Utc};
use rustc_hash::FxHashMap as HashMap;
use std::collections::{BTreeMap, VecDeque};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How often to ask the store for due records even when the hopper is not low.
    pub refill_interval_s: u32,
    /// Records held per campaign: at least this many, or four per line.
    pub hopper_min: u32,
    /// First call id minted (the runtime continues after the ledger's last one).
    pub first_call_id: u64,
    /// Records whose call ended are kept this many for late dispositions.
    pub recent_records: usize,
    /// The abandonment guard. `false` exists only so a simulator can reproduce peer dialers
    /// that have no such guard; the `dialer` runtime refuses to start with it.
    pub abandon_guard: bool,
    /// After the telephone system refused a call itself (down, shutting down, refused the
    /// request), dialing pauses this long before one more try, unless the backend reports
    /// the telephone system up sooner.
    pub pbx_retry_s: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            refill_interval_s: 30,
            hopper_min: 50,
            first_call_id: 1,
            recent_records: 10_000,
            abandon_guard: true,
            pbx_retry_s: 30,
        }
    }
}

/// An agent as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AgentState {
    /// Not taking calls, not counted.
    LoggedOut,
    /// Free for a call.
    Ready,
    /// Held for a call being placed for it (owner, schedule, preview, manual task).
    Reserved { call: CallId },
    /// Looking at a record offered in preview mode.
    Previewing {
        campaign: CampaignId,
        record: RecordId,
    },
    /// Talking on a call.
    OnCall {
        /// The call.
        call: CallId,
    },
    /// After-call work. `until`: when it ends on its own (the campaign's
    /// [`AfterCall::WrapUp`]); `None`: at the agent's (or the PBX's) Ready.
    WrapUp {
        /// When wrap-up ends by itself, if it does.
        until: Option<DateTime<Utc>>,
    },
    /// On a break.
    Paused {
        /// The reason given.
        reason: String,
    },
}

/// A departure an agent asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Departure {
    Pause(String),
    Logout,
}

/// What an agent does once its call ends. Ready, pause and logout requests that arrive
/// during a call are folded in here, so the order in which the desktop, the PBX and the
/// hang-up report things cannot strand an agent in wrap-up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Then {
    /// Wrap up as the campaign says ([`AfterCall`]).
    #[default]
    WrapUp,
    /// Ready arrived during the call: ready as soon as it ends.
    Ready,
    /// Wrap up, then leave. Also the plan of a Ready agent held back while dials in flight
    /// need it (`leaving`).
    WrapUpThenLeave(Departure),
    /// Leave as soon as the call ends (Ready also arrived: no wrap-up to wait for).
    Leave(Departure),
}

impl Then {
    fn departure(&self) -> Option<&Departure> {
        match self {
            Then::WrapUpThenLeave(d) | Then::Leave(d) => Some(d),
            Then::WrapUp | Then::Ready => None,
        }
    }
}

/// Things that happen at a set time, in one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// A live answer still waiting turns into an abandon (fires strictly after its time).
    Abandon(CallId),
    /// An agent's timed wrap-up ends.
    WrapUpEnds(AgentId),
    /// Dialing tries again after the telephone system refused a call.
    TelephonyRetry,
}

/// Whether calls may be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Telephony {
    Up,
    Down {
        reason: String,
        since: DateTime<Utc>,
        /// Set when the engine paused on its own after a refusal; `None`: the backend said so.
        retry_at: Option<DateTime<Utc>>,
    },
}

/// How a call ended, as far as the engine's bookkeeping goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallEnd {
    HungUp {
        failure: Option<FailureClass>,
        ended_at: Option<DateTime<Utc>>,
    },
    Lost,
    /// Never placed, not the callee's fault; `hold_back`: keep the record back by the
    /// congestion delay (a local refusal that would otherwise loop).
    NotPlaced {
        hold_back: bool,
    },
}

#[derive(Debug, Clone)]
struct Agent {
    id: AgentId,
    campaigns: Vec<CampaignId>,
    /// The campaign this agent's free time counts for (cached; see `recompute_homes`).
    home: Option<CampaignId>,
    state: AgentState,
    /// When the current state began, in Unix milliseconds (the per-input snapshot subtracts
    /// integers, not dates).
    since_ms: i64,
    /// What happens when the current call ends.
    then: Then,
    /// Ready, but asked to pause or log out while dials it covers are in flight: takes calls,
    /// is not counted for new dials, and leaves (`then`) once it is no longer needed.
    leaving: bool,
}

/// Agents by numeric handle: the per-input pacing snapshot walks a campaign's agents by index
/// instead of comparing names.
#[derive(Debug, Default)]
struct Agents {
    list: Vec<Agent>,
    index: HashMap<AgentId, usize>,
}

impl Agent {
    fn set_since(&mut self, now: DateTime<Utc>) {
        self.since_ms = now.timestamp_millis();
    }
}

impl Agents {
    fn get(&self, id: &AgentId) -> Option<&Agent> {
        self.index.get(id).map(|&i| &self.list[i])
    }
    fn get_mut(&mut self, id: &AgentId) -> Option<&mut Agent> {
        self.index.get(id).map(|&i| &mut self.list[i])
    }
    fn values(&self) -> impl Iterator<Item = &Agent> {
        self.list.iter()
    }
    fn iter(&self) -> impl Iterator<Item = (&AgentId, &Agent)> {
        self.list.iter().map(|a| (&a.id, a))
    }
    fn get_or_insert(&mut self, id: AgentId, now: DateTime<Utc>) -> &mut Agent {
        let i = match self.index.get(&id) {
            Some(&i) => i,
            None => {
                self.index.insert(id.clone(), self.list.len());
                self.list.push(Agent {
                    id,
                    campaigns: Vec::new(),
                    home: None,
                    state: AgentState::LoggedOut,
                    since_ms: now.timestamp_millis(),
                    then: Then::WrapUp,
                    leaving: false,
                });
                self.list.len() - 1
            }
        };
        &mut self.list[i]
    }
}

#[derive(Debug, Clone)]
struct Call {
    campaign: CampaignId,
    record: RecordId,
    number: PhoneNumber,
    reserved_agent: Option<AgentId>,
    placed_at: DateTime<Utc>,
    answered: Option<(DateTime<Utc>, AnswerKind)>,
    /// When the backend reported it waiting in the queue.
    queued: Option<DateTime<Utc>>,
    linked: Option<(AgentId, DateTime<Utc>)>,
    abandon_counted: bool,
    /// A live answer not linked within this long counts as abandoned.
    abandon_threshold: Duration,
    /// Placed with answering-machine detection allowed ([`OriginateIntent::amd`]).
    amd: bool,
}

/// How a call counts for pacing: (dialing, waiting). Calls reserved for an agent are covered
/// by that agent and count as neither.
fn pacing_class(c: &Call) -> (bool, bool) {
    if c.reserved_agent.is_some() {
        return (false, false);
    }
    (c.answered.is_none(), c.waiting_since().is_some())
}

fn recount(run: &mut CampaignRun, before: (bool, bool), after: (bool, bool)) {
    run.dialing = (run.dialing + u32::from(after.0)).saturating_sub(u32::from(before.0));
    run.waiting = (run.waiting + u32::from(after.1)).saturating_sub(u32::from(before.1));
}

impl Call {
    /// When this call becomes an abandon if nobody takes it.
    fn abandon_deadline(&self) -> Option<DateTime<Utc>> {
        if self.abandon_counted {
            return None;
        }
        self.waiting_since().map(|at| at + self.abandon_threshold)
    }

    fn is_live(&self) -> bool {
        matches!(
            self.answered,
            Some((_, AnswerKind::Human | AnswerKind::Unknown))
        )
    }
    fn waiting_since(&self) -> Option<DateTime<Utc>> {
        match (self.answered, &self.linked) {
            (Some((at, _)), None) if self.is_live() => Some(at),
            _ => None,
        }
    }
}

struct CampaignRun {
    campaign: Campaign,
    pacer: Box<dyn Pacer>,
    /// Records offered by the store, in dial order (taken mostly from the front).
    hopper: VecDeque<Box<SpoolRecord>>,
    /// Whether the hopper may hold manual (click-to-call) tasks, which bypass pacing.
    has_manual: bool,
    /// Records with a call in flight.
    in_flight: HashMap<RecordId, Box<SpoolRecord>>,
    /// Records whose call ended, for dispositions; oldest first.
    recent: VecDeque<RecordId>,
    recent_records: HashMap<RecordId, Box<SpoolRecord>>,
    ledger: AbandonLedger,
    request_outstanding: bool,
    last_request: Option<DateTime<Utc>>,
    stopped: bool,
    /// Last skip code reported per record, so a waiting record is reported once.
    skip_noted: HashMap<RecordId, &'static str>,
    /// Handles of the agents whose home is this campaign.
    home_agents: Vec<usize>,
    /// Calls of this campaign in flight.
    calls: rustc_hash::FxHashSet<CallId>,
    /// Calls not reserved for an agent that are unanswered / answered live and waiting.
    /// Kept up to date in `call_event` and `dial`, so a snapshot needs no walk over calls.
    dialing: u32,
    waiting: u32,
    /// Open stretches of the calling window, per zone (cleared when the campaign changes).
    windows: eligibility::WindowCache,
    /// The campaign's routing, shared by its Originate intents.
    routing: std::sync::Arc<crate::model::campaign::Routing>,
}

/// The dialer engine. See the crate documentation for the run loop.
pub struct Engine {
    cfg: EngineConfig,
    now: Option<DateTime<Utc>>,
    campaigns: BTreeMap<CampaignId, CampaignRun>,
    agents: Agents,
    calls: HashMap<CallId, Call>,
    /// Calls in flight by callee, keyed by [`number_key`].
    numbers_in_flight: HashMap<u128, CallId>,
    /// Everything due at a set time, soonest first.
    timers: std::collections::BTreeSet<(DateTime<Utc>, Timer)>,
    telephony: Telephony,
    blacklist: Blacklist,
    next_call: u64,
    out: VecDeque<Output>,
    /// Buffer of the pacing snapshot's busy agents, kept between inputs.
    busy_scratch: Vec<AgentLoad>,
    /// When the engine last decided what to dial.
    last_drive: Option<DateTime<Utc>>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Engine {
        Engine {
            next_call: cfg.first_call_id,
            cfg,
            now: None,
            campaigns: BTreeMap::new(),
            agents: Agents::default(),
            calls: HashMap::default(),
            numbers_in_flight: HashMap::default(),
            timers: std::collections::BTreeSet::new(),
            telephony: Telephony::Up,
            blacklist: Blacklist::default(),
            out: VecDeque::new(),
            busy_scratch: Vec::new(),
            last_drive: None,
        }
    }

    // ----- getters -----

    /// The time of the latest input.
    pub fn now(&self) -> Option<DateTime<Utc>> {
        self.now
    }

    pub fn blacklist(&self) -> &Blacklist {
        &self.blacklist
    }

    pub fn agent_state(&self, agent: &AgentId) -> Option<&AgentState> {
        self.agents.get(agent).map(|a| &a.state)
    }

    /// Calls in flight (placed and not ended), all campaigns.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
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

    /// A snapshot of agents, calls in flight and campaigns, sorted by id.
    pub fn status(&self) -> EngineStatus {
        let now = self.now;
        let mut agents: Vec<AgentStatus> = self
            .agents
            .values()
            .map(|a| {
                let (call, record) = match &a.state {
                    AgentState::OnCall { call } | AgentState::Reserved { call } => {
                        (Some(*call), self.calls.get(call).map(|c| c.record.clone()))
                    }
                    AgentState::Previewing { record, .. } => (None, Some(record.clone())),
                    _ => (None, None),
                };
                AgentStatus {
                    agent: a.id.clone(),
                    state: a.state.clone(),
                    since: DateTime::from_timestamp_millis(a.since_ms).unwrap_or_default(),
                    campaign: a.home.clone(),
                    call,
                    record,
                    leaving: a.leaving,
                }
            })
            .collect();
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        let mut calls: Vec<CallStatus> = self
            .calls
            .iter()
            .map(|(id, c)| CallStatus {
                call: *id,
                campaign: c.campaign.clone(),
                record: c.record.clone(),
                number: c.number.e164().to_owned(),
                agent: c
                    .linked
                    .as_ref()
                    .map(|l| l.0.clone())
                    .or_else(|| c.reserved_agent.clone()),
                state: match (&c.answered, &c.linked) {
                    (_, Some(_)) => CallState::Linked,
                    (None, None) => CallState::Dialing,
                    (Some((_, AnswerKind::Machine)), None) => CallState::Machine,
                    (Some(_), None) if c.abandon_counted => CallState::Abandoned,
                    (Some(_), None) => CallState::Waiting,
                },
                placed_at: c.placed_at,
                answered_at: c.answered.map(|a| a.0),
                answer: c.answered.map(|a| a.1),
                queued_at: c.queued,
                linked_at: c.linked.as_ref().map(|l| l.1),
            })
            .collect();
        calls.sort_by_key(|c| c.call);
        let telephony = match &self.telephony {
            Telephony::Up => TelephonyStatus::Up,
            Telephony::Down {
                reason,
                since,
                retry_at,
            } => TelephonyStatus::Down {
                reason: reason.clone(),
                since: *since,
                retry_at: *retry_at,
            },
        };
        let campaigns = self
            .campaigns
            .iter()
            .map(|(cid, run)| {
                // The ledger caches its period; a copy answers without changing the engine.
                let mut ledger = run.ledger.clone();
                let (position, bounds) = match now {
                    Some(t) => (Some(ledger.status(t)), ledger.period_bounds(t)),
                    None => (None, None),
                };
                let dialing_paused = if run.stopped {
                    Some(DialingPaused::Stopped)
                } else {
                    match &self.telephony {
                        Telephony::Down { reason, .. } => Some(DialingPaused::TelephonyDown {
                            reason: reason.clone(),
                        }),
                        Telephony::Up => None,
                    }
                };
                CampaignStatus {
                    campaign: cid.clone(),
                    pacer: run.pacer.name(),
                    hopper: run.hopper.len(),
                    calls_in_flight: run.calls.len(),
                    dialing: run.dialing,
                    waiting: run.waiting,
                    agents: run.home_agents.len(),
                    abandonment: AbandonPosition {
                        abandoned: position.as_ref().map_or(0, |p| p.abandoned),
                        live_answers: position.as_ref().map_or(0, |p| p.live_answers),
                        cap: run.campaign.abandon.cap,
                        remaining_budget: position.as_ref().map_or(0.0, |p| p.budget),
                        period_start: position.as_ref().and_then(|p| p.period_start),
                        period_from: bounds.map(|b| b.0),
                        period_until: bounds.map(|b| b.1),
                    },
                    dialing_paused,
                }
            })
            .collect();
        EngineStatus {
            at: now,
            telephony,
            agents,
            calls,
            campaigns,
        }
    }

    /// Whether a call on the record is in flight (an operator may not change it now).
    pub fn record_in_flight(&self, record: &RecordId) -> bool {
        self.campaigns
            .values()
            .any(|run| run.in_flight.contains_key(record))
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
        self.blacklist = blacklist;
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
    fn advance_clock(&mut self, at: DateTime<Utc>) -> DateTime<Utc> {
        let now = match self.now {
            Some(t) if at < t => t,
            _ => at,
        };
        self.now = Some(now);
        now
    }

    /// Decides what to dial after inputs applied at `now`, unless nothing a decision depends
    /// on changed since the last one at this very instant (most bursts of a busy floor).
    fn decide_after(&mut self, now: DateTime<Utc>, changed: bool) {
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
                Err(reason) => self.out.push_back(Output::Event(Event::Rejected {
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
        match self.out.pop_front() {
            Some(o) => o,
            None => Output::Timeout(self.next_wakeup()),
        }
    }

    fn apply(&mut self, now: DateTime<Utc>, kind: InputKind) -> Result<(), RejectReason> {
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
            InputKind::Command(c) => self.command(now, c),
        }
    }

    fn add_campaign(&mut self, now: DateTime<Utc>, c: Campaign) -> Result<(), RejectReason> {
        c.validate().map_err(|e| RejectReason::InvalidCampaign {
            field: e.field.to_owned(),
            problem: e.problem,
        })?;
        if let Some(run) = self.campaigns.get_mut(&c.id) {
            if run.campaign.dial_mode != c.dial_mode {
                run.pacer = pacing::for_mode(&c.dial_mode);
            }
            run.routing = std::sync::Arc::new(c.routing.clone());
            run.campaign = c;
            run.windows.clear();
            run.stopped = false;
            self.recompute_homes();
            return Ok(());
        }
        let anchor = c
            .start_date
            .or(Some(now.with_timezone(&c.tz()).date_naive()));
        let routing = std::sync::Arc::new(c.routing.clone());
        let run = CampaignRun {
            pacer: pacing::for_mode(&c.dial_mode),
            ledger: AbandonLedger::new(c.abandon.clone(), c.tz(), anchor),
            campaign: c,
            hopper: VecDeque::new(),
            has_manual: false,
            in_flight: HashMap::default(),
            recent: VecDeque::new(),
            recent_records: HashMap::default(),
            request_outstanding: false,
            last_request: None,
            stopped: false,
            skip_noted: HashMap::default(),
            home_agents: Vec::new(),
            calls: rustc_hash::FxHashSet::default(),
            dialing: 0,
            waiting: 0,
            windows: eligibility::WindowCache::default(),
            routing,
        };
        self.campaigns.insert(run.campaign.id.clone(), run);
        self.recompute_homes();
        Ok(())
    }

    fn records_offered(
        &mut self,
        now: DateTime<Utc>,
        campaign: &CampaignId,
        records: Vec<SpoolRecord>,
    ) -> Result<(), RejectReason> {
        let previewed = self.records_in_preview();
        let run = self
            .campaigns
            .get_mut(campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
        run.request_outstanding = false;
        // Boxed: records move between the hopper, the calls in flight and the recent ones,
        // and a pointer moves cheaper than a whole record.
        let mut hopper: Vec<Box<SpoolRecord>> = records
            .into_iter()
            .map(|mut r| {
                r.merge_duplicate_numbers();
                Box::new(r)
            })
            .filter(|r| &r.campaign == campaign)
            .filter(|r| !run.in_flight.contains_key(&r.id) && !previewed.contains(&r.id))
            .collect();
        // Every record ends or has a future: a range callback that is over no longer holds
        // its record back.
        for r in &mut hopper {
            if schedule::drop_if_over(r, &run.campaign, now) {
                self.out
                    .push_back(Output::Store(StoreUpdate::Record(r.clone())));
            }
        }
        hopper.sort_by_cached_key(|r| ordering::order_key(r));
        hopper.dedup_by(|a, b| a.id == b.id);
        run.has_manual = hopper.iter().any(|r| is_manual(r));
        run.hopper = hopper.into();
        Ok(())
    }

    // ----- agents -----

    fn agent_event(
        &mut self,
        now: DateTime<Utc>,
        id: AgentId,
        event: AgentEvent,
    ) -> Result<(), RejectReason> {
        if let AgentEvent::LoggedIn { campaigns } = &event {
            // Validated before anything changes: a login names only started campaigns.
            if let Some(unknown) = campaigns.iter().find(|c| !self.campaigns.contains_key(*c)) {
                return Err(RejectReason::UnknownCampaign(unknown.clone()));
            }
            let a = self.agents.get_or_insert(id.clone(), now);
            a.campaigns = campaigns.clone();
            if a.leaving {
                a.leaving = false;
                a.then = Then::WrapUp;
            }
            if matches!(a.state, AgentState::LoggedOut) {
                a.state = AgentState::Ready;
                a.set_since(now);
            }
            self.recompute_homes();
            return Ok(());
        }
        let agent = self
            .agents
            .get_mut(&id)
            .ok_or_else(|| RejectReason::UnknownAgent(id.clone()))?;
        let on_call = matches!(
            agent.state,
            AgentState::OnCall { .. } | AgentState::Reserved { .. }
        );
        let busy = on_call || matches!(agent.state, AgentState::WrapUp { .. });
        match event {
            AgentEvent::LoggedIn { .. } => {}
            AgentEvent::Ready => match agent.state {
                AgentState::LoggedOut => return Err(RejectReason::AgentLoggedOut(id)),
                // Ready before the call is over (the PBX reports the member free before the
                // caller's hang-up): ready when it ends, unless a departure was asked for.
                _ if on_call => {
                    agent.then = match std::mem::take(&mut agent.then) {
                        Then::WrapUp | Then::Ready => Then::Ready,
                        Then::WrapUpThenLeave(d) | Then::Leave(d) => Then::Leave(d),
                    };
                }
                AgentState::WrapUp { .. } => self.end_wrap_up(now, &id),
                AgentState::Ready if agent.leaving => {
                    // Back before the pause took effect: it simply stays.
                    agent.leaving = false;
                    agent.then = Then::WrapUp;
                }
                _ => {
                    agent.then = Then::WrapUp;
                    agent.state = AgentState::Ready;
                    agent.set_since(now);
                }
            },
            AgentEvent::Paused { reason } | AgentEvent::PauseAfterCall { reason } => {
                self.leave_or_plan(now, &id, busy, Departure::Pause(reason));
            }
            AgentEvent::LogoutAfterCall | AgentEvent::LoggedOut => {
                // The call (or its wrap-up) keeps the agent until it ends.
                self.leave_or_plan(now, &id, busy, Departure::Logout);
            }
            AgentEvent::WrapUp => {
                agent.state = AgentState::WrapUp { until: None };
                agent.set_since(now);
            }
        }
        Ok(())
    }

    /// A departure asked for: planned for after the call (and wrap-up) if busy, else now.
    fn leave_or_plan(&mut self, now: DateTime<Utc>, id: &AgentId, busy: bool, how: Departure) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if busy {
            agent.then = match std::mem::take(&mut agent.then) {
                Then::Ready | Then::Leave(_) => Then::Leave(how),
                Then::WrapUp | Then::WrapUpThenLeave(_) => Then::WrapUpThenLeave(how),
            };
        } else {
            self.leave(now, id, how);
        }
    }

    /// Ends an agent's wrap-up (its Ready, or its timed wrap-up ran out): the pacer learns
    /// how long it took, for the agent's own campaign, and the agent is ready or leaves.
    fn end_wrap_up(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if let AgentState::WrapUp { until: Some(t) } = agent.state {
            self.timers.remove(&(t, Timer::WrapUpEnds(id.clone())));
        }
        let wrap_s = (now.timestamp_millis() - agent.since_ms) as f64 / 1000.0;
        if let Some(run) = agent.home.as_ref().and_then(|c| self.campaigns.get_mut(c)) {
            run.pacer.observe(now, &PacingEvent::WrapUpEnded { wrap_s });
        }
        self.after_call_over(now, id);
    }

    /// The call and its wrap-up are over: ready, or the departure planned.
    fn after_call_over(&mut self, now: DateTime<Utc>, id: &AgentId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        match std::mem::take(&mut agent.then) {
            Then::WrapUpThenLeave(how) | Then::Leave(how) => self.depart(now, id, how),
            Then::WrapUp | Then::Ready => {
                agent.state = AgentState::Ready;
                agent.set_since(now);
            }
        }
    }

    /// The agent's call ended: wrap-up as its campaign says, unless Ready already came.
    fn call_over_for_agent(&mut self, now: DateTime<Utc>, id: &AgentId, call: CallId) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        if agent.state != (AgentState::OnCall { call }) {
            return;
        }
        match agent.then {
            Then::Ready | Then::Leave(_) => {
                agent.set_since(now);
                self.end_wrap_up(now, id);
            }
            Then::WrapUp | Then::WrapUpThenLeave(_) => {
                let mode = agent
                    .home
                    .as_ref()
                    .and_then(|c| self.campaigns.get(c))
                    .map_or(AfterCall::Desktop, |r| r.campaign.after_call);
                let until = match mode {
                    AfterCall::WrapUp { seconds } => {
                        Some(now + Duration::seconds(i64::from(seconds)))
                    }
                    AfterCall::Desktop | AfterCall::PbxMember => None,
                };
                agent.state = AgentState::WrapUp { until };
                agent.set_since(now);
                if let Some(t) = until {
                    self.timers.insert((t, Timer::WrapUpEnds(id.clone())));
                }
            }
        }
    }

    /// An idle agent asks to pause or log out. If the dials in flight of its campaign need it
    /// to stay within the abandonment budget, it leaves once they no longer do; otherwise now.
    fn leave(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.agents.get(id) else {
            return;
        };
        let needed = agent.state == AgentState::Ready
            && agent
                .home
                .clone()
                .is_some_and(|cid| self.coverage_short(now, &cid, 1));
        if needed {
            let agent = self.agents.get_mut(id).expect("looked up above");
            // A call it takes meanwhile still ends in wrap-up, then the departure.
            agent.then = Then::WrapUpThenLeave(how);
            agent.leaving = true;
        } else {
            self.release_preview(id);
            self.depart(now, id, how);
        }
    }

    /// Applies a departure and reports it.
    fn depart(&mut self, now: DateTime<Utc>, id: &AgentId, how: Departure) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        agent.leaving = false;
        agent.then = Then::WrapUp;
        agent.set_since(now);
        let paused = match how {
            Departure::Pause(reason) => {
                agent.state = AgentState::Paused {
                    reason: reason.clone(),
                };
                Some(reason)
            }
            Departure::Logout => {
                agent.state = AgentState::LoggedOut;
                None
            }
        };
        self.out.push_back(Output::Event(Event::AgentAway {
            at: now,
            agent: id.clone(),
            paused,
        }));
    }

    /// Whether the campaign's calls at risk would exceed its abandonment budget if `leavers`
    /// more free agents went away.
    fn coverage_short(&mut self, now: DateTime<Utc>, cid: &CampaignId, leavers: u32) -> bool {
        let free = self.free_agents(cid);
        let Some(run) = self.campaigns.get_mut(cid) else {
            return false;
        };
        // Pacers that never dial ahead promise no abandons: no budget is spent on departures.
        let allowance = if run.pacer.dials_ahead() {
            run.ledger.status(now).budget.max(0.0).floor() as u32
        } else {
            0
        };
        run.dialing + run.waiting > free.saturating_sub(leavers) + allowance
    }

    /// Ready agents of the campaign not on their way out.
    fn free_agents(&self, cid: &CampaignId) -> u32 {
        self.campaigns.get(cid).map_or(0, |run| {
            run.home_agents
                .iter()
                .filter(|&&i| {
                    let a = &self.agents.list[i];
                    a.state == AgentState::Ready && !a.leaving
                })
                .count() as u32
        })
    }

    /// Lets leaving agents go once the dials they covered no longer need them.
    fn release_leavers(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let leavers: Vec<AgentId> = self.campaigns[cid]
            .home_agents
            .iter()
            .map(|&i| &self.agents.list[i])
            .filter(|a| a.leaving && a.state == AgentState::Ready)
            .map(|a| a.id.clone())
            .collect();
        if leavers.is_empty() || self.coverage_short(now, cid, 0) {
            return;
        }
        for id in leavers {
            let how = self
                .agents
                .get(&id)
                .and_then(|a| a.then.departure().cloned());
            if let Some(how) = how {
                self.depart(now, &id, how);
            }
        }
    }

    /// Records currently offered to agents in preview mode.
    fn records_in_preview(&self) -> Vec<RecordId> {
        self.agents
            .values()
            .filter_map(|a| match &a.state {
                AgentState::Previewing { record, .. } => Some(record.clone()),
                _ => None,
            })
            .collect()
    }

    fn release_preview(&mut self, id: &AgentId) {
        if let Some(a) = self.agents.get_mut(id) {
            if let AgentState::Previewing { .. } = a.state {
                a.state = AgentState::Ready;
            }
        }
    }

    /// The campaign an agent's free time counts for: its first running campaign, so an agent
    /// in several campaigns is never counted twice.
    fn home_campaign<'a>(&self, agent: &'a Agent) -> Option<&'a CampaignId> {
        agent.home.as_ref()
    }

    /// Recomputes every agent's home campaign (its first running campaign, so an agent in
    /// several campaigns is never counted twice) and each campaign's agent list. Runs on
    /// logins and campaign changes only, so the per-input snapshot needs no lookups.
    fn recompute_homes(&mut self) {
        for run in self.campaigns.values_mut() {
            run.home_agents.clear();
        }
        for (i, a) in self.agents.list.iter_mut().enumerate() {
            a.home = a
                .campaigns
                .iter()
                .find(|c| self.campaigns.get(*c).is_some_and(|r| !r.stopped))
                .cloned();
            if let Some(run) = a.home.as_ref().and_then(|h| self.campaigns.get_mut(h)) {
                run.home_agents.push(i);
            }
        }
    }

    fn agent_free_for(&self, id: &AgentId, campaign: &CampaignId) -> bool {
        self.agents.get(id).is_some_and(|a| {
            a.state == AgentState::Ready && !a.leaving && a.campaigns.contains(campaign)
        })
    }

    // ----- calls -----

    fn call_event(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        event: CallEvent,
    ) -> Result<(), RejectReason> {
        let Some(call) = self.calls.get(&id) else {
            return Err(RejectReason::UnknownCall(id));
        };
        let before = pacing_class(call);
        let deadline_before = call.abandon_deadline();
        let cid = call.campaign.clone();
        let result = self.call_event_inner(now, id, &cid, event);
        let after = self.calls.get(&id).map(pacing_class).unwrap_or_default();
        let deadline_after = self.calls.get(&id).and_then(Call::abandon_deadline);
        if deadline_before != deadline_after {
            if let Some(d) = deadline_before {
                self.timers.remove(&(d, Timer::Abandon(id)));
            }
            if let Some(d) = deadline_after {
                self.timers.insert((d, Timer::Abandon(id)));
            }
        }
        if let Some(run) = self.campaigns.get_mut(&cid) {
            recount(run, before, after);
        }
        result
    }

    fn call_event_inner(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        campaign: &CampaignId,
        event: CallEvent,
    ) -> Result<(), RejectReason> {
        let call = self
            .calls
            .get_mut(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let record = call.record.clone();
        let progress = |p: Progress| {
            Output::Event(Event::Progress {
                at: now,
                campaign: campaign.clone(),
                call: id,
                record: record.clone(),
                progress: p,
            })
        };
        match event {
            CallEvent::OriginateAccepted => self.out.push_back(progress(Progress::Dialing)),
            CallEvent::Ringing => self.out.push_back(progress(Progress::Ringing)),
            CallEvent::Queued => {
                call.queued.get_or_insert(now);
                self.out.push_back(progress(Progress::OnQueue));
            }
            CallEvent::Answered { kind } => {
                if call.answered.is_some() {
                    return Ok(());
                }
                call.answered = Some((now, kind));
                let dial_s = secs(now - call.placed_at);
                let live = kind != AnswerKind::Machine;
                let run = self
                    .campaigns
                    .get_mut(campaign)
                    .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
                run.pacer
                    .observe(now, &PacingEvent::DialResolved { dial_s, live });
                if live {
                    run.ledger.live_answer(now);
                } else if run.campaign.machine == MachinePolicy::HangUp {
                    // Possibly a person hung up on: the false-positive estimate counts it.
                    run.ledger.machine_answer(now);
                    self.out.push_back(Output::Hangup { call: id });
                }
            }
            CallEvent::Linked { agent } => {
                if call.linked.is_some() {
                    return Ok(());
                }
                call.linked = Some((agent.clone(), now));
                let wait_s = call.answered.map_or(0.0, |(at, _)| secs(now - at));
                let late = call.is_live() && !call.abandon_counted;
                let answered_at = call.answered.map(|a| a.0);
                let run = self
                    .campaigns
                    .get_mut(campaign)
                    .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
                if late && wait_s > run.campaign.abandon.threshold_s {
                    // Connected, but later than the rule allows: it counts as abandoned.
                    run.ledger.abandon(answered_at.unwrap_or(now), now);
                    run.pacer.observe(now, &PacingEvent::Abandoned { wait_s });
                    if let Some(c) = self.calls.get_mut(&id) {
                        c.abandon_counted = true;
                    }
                } else {
                    run.pacer.observe(now, &PacingEvent::Linked { wait_s });
                }
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.state = AgentState::OnCall { call: id };
                    a.set_since(now);
                    // A Ready kept for "when the call ends" belonged to an earlier call (one
                    // whose end was lost, or the reservation before this link): this call
                    // gets its own wrap-up. Found by the swarm, seed 158.
                    a.then = match std::mem::take(&mut a.then) {
                        Then::Ready => Then::WrapUp,
                        Then::Leave(d) => Then::WrapUpThenLeave(d),
                        other => other,
                    };
                }
                // If the call was reserved for someone else, free them.
                self.release_reservation(id, Some(&agent), now);
                self.out.push_back(progress(Progress::Success {
                    agent: agent.clone(),
                }));
                self.out.push_back(Output::Event(Event::AgentLinked {
                    at: now,
                    agent,
                    call: id,
                }));
            }
            CallEvent::OriginateRefused { cause } => match &cause {
                RefusalCause::Pbx { .. } => {
                    self.end_call(now, id, CallEnd::NotPlaced { hold_back: false })?;
                    let retry_at = now + Duration::seconds(i64::from(self.cfg.pbx_retry_s));
                    self.set_telephony_down(now, cause.to_string(), Some(retry_at));
                }
                RefusalCause::Local { .. } => {
                    self.end_call(now, id, CallEnd::NotPlaced { hold_back: true })?
                }
                RefusalCause::Callee { class, .. } => self.end_call(
                    now,
                    id,
                    CallEnd::HungUp {
                        failure: Some(*class),
                        ended_at: None,
                    },
                )?,
            },
            CallEvent::HungUp { failure, ended_at } => {
                self.end_call(now, id, CallEnd::HungUp { failure, ended_at })?
            }
            CallEvent::Lost => self.end_call(now, id, CallEnd::Lost)?,
        }
        Ok(())
    }

    fn release_reservation(&mut self, call: CallId, except: Option<&AgentId>, now: DateTime<Utc>) {
        let Some(reserved) = self.calls.get(&call).and_then(|c| c.reserved_agent.clone()) else {
            return;
        };
        if Some(&reserved) == except {
            return;
        }
        if self
            .agents
            .get(&reserved)
            .is_some_and(|a| a.state == (AgentState::Reserved { call }))
        {
            // Never talked: no wrap-up.
            self.after_call_over(now, &reserved);
        }
    }

    fn end_call(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        end: CallEnd,
    ) -> Result<(), RejectReason> {
        self.release_reservation(id, None, now);
        let call = self
            .calls
            .remove(&id)
            .ok_or(RejectReason::UnknownCall(id))?;
        let key = number_key(call.number.e164());
        if self.numbers_in_flight.get(&key) == Some(&id) {
            self.numbers_in_flight.remove(&key);
        }
        // When the call really ended: a backend that learned of the end late says when.
        let ended = match end {
            CallEnd::HungUp {
                ended_at: Some(t), ..
            } => t.clamp(call.placed_at, now),
            _ => now,
        };
        if let Some((agent, _)) = &call.linked {
            self.out.push_back(Output::Event(Event::AgentUnlinked {
                at: now,
                agent: agent.clone(),
                call: id,
            }));
            self.call_over_for_agent(now, agent, id);
        }
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(call.campaign.clone()))?;
        run.calls.remove(&id);
        let c = &run.campaign;
        let (outcome, progress) = match end {
            // Never placed: not the callee's, and not the pacer's business.
            CallEnd::NotPlaced { .. } => (CallOutcome::NotPlaced, Progress::NotPlaced),
            // Nobody knows how long a lost call lasted, answered or not.
            CallEnd::Lost => (CallOutcome::Unknown, Progress::Unknown),
            CallEnd::HungUp { failure, .. } => {
                if let Some((_, linked_at)) = &call.linked {
                    let talk_s = secs(ended - *linked_at).max(0.0);
                    run.pacer.observe(now, &PacingEvent::TalkEnded { talk_s });
                    let talk = talk_s.round() as u32;
                    if talk < c.short_call_s {
                        (CallOutcome::ShortCall { talk_s: talk }, Progress::ShortCall)
                    } else {
                        (CallOutcome::Connected { talk_s: talk }, Progress::Hangup)
                    }
                } else if let Some((answered_at, kind)) = call.answered {
                    if kind == AnswerKind::Machine {
                        (CallOutcome::Machine, Progress::Machine)
                    } else {
                        if !call.abandon_counted {
                            let wait_s = secs(ended - answered_at).max(0.0);
                            run.ledger.abandon(answered_at, now);
                            run.pacer.observe(now, &PacingEvent::Abandoned { wait_s });
                        }
                        (CallOutcome::Abandoned, Progress::Abandoned)
                    }
                } else {
                    let class = failure.unwrap_or(FailureClass::NoAnswer);
                    run.pacer.observe(
                        now,
                        &PacingEvent::DialResolved {
                            dial_s: secs(ended - call.placed_at),
                            live: false,
                        },
                    );
                    let p = match class {
                        FailureClass::NoAnswer => Progress::NoAnswer,
                        other => Progress::Failure { class: other },
                    };
                    (CallOutcome::Failed { class }, p)
                }
            }
        };
        self.out.push_back(Output::Event(Event::Progress {
            at: now,
            campaign: call.campaign.clone(),
            call: id,
            record: call.record.clone(),
            progress,
        }));
        self.out.push_back(Output::Store(StoreUpdate::AttemptEnded {
            call: id,
            record: call.record.clone(),
            outcome,
            at: ended,
        }));
        let Some(mut rec) = run.in_flight.remove(&call.record) else {
            return Ok(());
        };
        next_step::finish_attempt(&mut rec, &run.campaign, outcome, ended);
        if let CallEnd::NotPlaced { hold_back } = end {
            if hold_back {
                let until = now + Duration::seconds(i64::from(run.campaign.retry.congestion_s));
                rec.next_eligible_at = Some(rec.next_eligible_at.map_or(until, |t| t.max(until)));
            }
            self.out
                .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
            // Back in the hopper, in its place, as if never dialed.
            let key = ordering::order_key(&rec);
            let at = run
                .hopper
                .partition_point(|r| ordering::order_key(r) <= key);
            run.has_manual |= is_manual(&rec);
            run.hopper.insert(at, rec);
            return Ok(());
        }
        if let RecordStatus::Finished { reason } = rec.status {
            self.out.push_back(Output::Event(Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            }));
        }
        self.out
            .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
        run.recent.push_back(rec.id.clone());
        run.recent_records.insert(rec.id.clone(), rec);
        while run.recent.len() > self.cfg.recent_records {
            if let Some(old) = run.recent.pop_front() {
                run.recent_records.remove(&old);
            }
        }
        Ok(())
    }

    // ----- telephony -----

    fn telephony_health(&mut self, now: DateTime<Utc>, health: TelephonyHealth) {
        match health {
            TelephonyHealth::Up => self.set_telephony_up(now),
            TelephonyHealth::Down { reason } => self.set_telephony_down(now, reason, None),
        }
    }

    fn set_telephony_down(
        &mut self,
        now: DateTime<Utc>,
        reason: String,
        retry_at: Option<DateTime<Utc>>,
    ) {
        if let Telephony::Down {
            retry_at: Some(t), ..
        } = &self.telephony
        {
            self.timers.remove(&(*t, Timer::TelephonyRetry));
        }
        let since = match &self.telephony {
            Telephony::Down { since, .. } => *since,
            Telephony::Up => now,
        };
        if let Some(t) = retry_at {
            self.timers.insert((t, Timer::TelephonyRetry));
        }
        let changed = match &self.telephony {
            Telephony::Down {
                reason: r,
                retry_at: t,
                ..
            } => r != &reason || t != &retry_at,
            Telephony::Up => true,
        };
        self.telephony = Telephony::Down {
            reason: reason.clone(),
            since,
            retry_at,
        };
        if changed {
            self.out.push_back(Output::Event(Event::TelephonyDown {
                at: now,
                reason,
                retry_at,
            }));
        }
    }

    fn set_telephony_up(&mut self, now: DateTime<Utc>) {
        if let Telephony::Down { retry_at, .. } = &self.telephony {
            if let Some(t) = retry_at {
                self.timers.remove(&(*t, Timer::TelephonyRetry));
            }
            self.telephony = Telephony::Up;
            self.out
                .push_back(Output::Event(Event::TelephonyUp { at: now }));
        }
    }

    // ----- commands -----

    /// Applies a command. Every check comes first, then the change: a refused command
    /// changes nothing.
    fn command(&mut self, now: DateTime<Utc>, command: Command) -> Result<(), RejectReason> {
        match command {
            Command::BlacklistAdd(entry) => {
                self.blacklist.add(entry.clone());
                self.out
                    .push_back(Output::Store(StoreUpdate::BlacklistAdded(entry)));
                Ok(())
            }
            Command::BlacklistRemove { number, scope } => {
                self.blacklist.remove(&number, &scope);
                self.out
                    .push_back(Output::Store(StoreUpdate::BlacklistRemoved {
                        number,
                        scope,
                    }));
                Ok(())
            }
            Command::Hangup { call } => {
                if !self.calls.contains_key(&call) {
                    return Err(RejectReason::UnknownCall(call));
                }
                self.out.push_back(Output::Hangup { call });
                Ok(())
            }
            // The disposing agent is for the campaign log; the rules do not depend on it.
            Command::Dispose {
                agent: _,
                record,
                disposition: d,
            } => self.dispose(now, record, d),
            Command::PreviewDial { agent, record } => self.preview_dial(now, agent, record),
            Command::PreviewSkip { agent, record } => {
                let campaign = self.offered_preview(&agent, &record)?;
                self.release_preview(&agent);
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or(RejectReason::UnknownCampaign(campaign))?;
                if let Some(pos) = run.hopper.iter().position(|r| r.id == record) {
                    // Passed over: back of the queue for a while, so others get their turn.
                    if let Some(mut rec) = run.hopper.remove(pos) {
                        rec.next_eligible_at = Some(
                            now + Duration::seconds(i64::from(run.campaign.retry.no_answer_s)),
                        );
                        self.out.push_back(Output::Store(StoreUpdate::Record(rec)));
                    }
                }
                Ok(())
            }
            Command::Forget { record } => self.forget(&record),
        }
    }

    /// The campaign of the record an agent was offered in preview, if it is `record`.
    fn offered_preview(
        &self,
        agent: &AgentId,
        record: &RecordId,
    ) -> Result<CampaignId, RejectReason> {
        let a = self
            .agents
            .get(agent)
            .ok_or_else(|| RejectReason::UnknownAgent(agent.clone()))?;
        match &a.state {
            AgentState::Previewing {
                campaign,
                record: offered,
            } if offered == record => Ok(campaign.clone()),
            AgentState::Previewing {
                record: offered, ..
            } => Err(RejectReason::NotOffered {
                agent: agent.clone(),
                record: record.clone(),
                offered: Some(offered.clone()),
            }),
            _ => Err(RejectReason::NotOffered {
                agent: agent.clone(),
                record: record.clone(),
                offered: None,
            }),
        }
    }

    fn preview_dial(
        &mut self,
        now: DateTime<Utc>,
        agent: AgentId,
        record: RecordId,
    ) -> Result<(), RejectReason> {
        let campaign = self.offered_preview(&agent, &record)?;
        if let Telephony::Down { reason, .. } = &self.telephony {
            return Err(RejectReason::TelephonyDown {
                reason: reason.clone(),
            });
        }
        let run = self
            .campaigns
            .get(&campaign)
            .ok_or_else(|| RejectReason::UnknownCampaign(campaign.clone()))?;
        let pos = run
            .hopper
            .iter()
            .position(|r| r.id == record)
            .ok_or_else(|| RejectReason::UnknownRecord(record.clone()))?;
        // Checked as if the agent were free: it is, once it answers the offer.
        let plan = self
            .check_for(&campaign, &run.hopper[pos], now, Some(&agent))
            .map_err(|reason| RejectReason::NotEligible {
                record: record.clone(),
                reason,
            })?;
        self.release_preview(&agent);
        let rec = self.take_from_hopper(&campaign, pos);
        let plan = eligibility::DialPlan {
            agent: Some(agent),
            ..plan
        };
        let reason = DialReason {
            class: DueClassCode::Preview,
            pacer: "preview".into(),
            wanted: 1,
        };
        self.dial(now, &campaign, rec, plan, reason);
        Ok(())
    }

    /// Drops a record an operator removed from the spool. Nothing to do if the engine does
    /// not hold it; refused while a call on it is in flight.
    fn forget(&mut self, record: &RecordId) -> Result<(), RejectReason> {
        if self
            .campaigns
            .values()
            .any(|run| run.in_flight.contains_key(record))
        {
            return Err(RejectReason::RecordInFlight(record.clone()));
        }
        let previewing: Vec<AgentId> = self
            .agents
            .values()
            .filter(|a| matches!(&a.state, AgentState::Previewing { record: r, .. } if r == record))
            .map(|a| a.id.clone())
            .collect();
        for a in &previewing {
            self.release_preview(a);
        }
        for run in self.campaigns.values_mut() {
            run.hopper.retain(|r| &r.id != record);
            if run.recent_records.remove(record).is_some() {
                run.recent.retain(|r| r != record);
            }
            run.skip_noted.remove(record);
        }
        Ok(())
    }

    fn dispose(
        &mut self,
        now: DateTime<Utc>,
        record: RecordId,
        d: disposition::Disposition,
    ) -> Result<(), RejectReason> {
        // Find it without taking it: a refused disposition leaves it where it was.
        let mut held = None;
        for (cid, run) in &self.campaigns {
            if run.in_flight.contains_key(&record) {
                return Err(RejectReason::RecordInFlight(record));
            }
            if let Some(r) = run.recent_records.get(&record) {
                held = Some((cid.clone(), None, &**r));
                break;
            }
            if let Some(p) = run.hopper.iter().position(|r| r.id == record) {
                held = Some((cid.clone(), Some(p), &*run.hopper[p]));
                break;
            }
        }
        let (cid, hopper_pos, held) = held.ok_or(RejectReason::UnknownRecord(record.clone()))?;
        // A callback moved to another campaign follows that campaign's rules.
        let target = match &d {
            disposition::Disposition::Schedule {
                campaign: Some(other),
                ..
            }
            | disposition::Disposition::Reschedule {
                campaign: Some(other),
                ..
            } => other.clone(),
            _ => cid.clone(),
        };
        let camp = &self
            .campaigns
            .get(&target)
            .ok_or_else(|| RejectReason::UnknownCampaign(target.clone()))?
            .campaign;
        let before_numbers: Vec<String> = held
            .numbers
            .iter()
            .map(|s| s.number.e164().to_owned())
            .collect();
        let mut rec = held.clone();
        let effect = disposition::apply(&mut rec, camp, &d, now)?;
        if !rec.is_finished() {
            for number in live_numbers(&rec) {
                if let Some(other) = self.number_live_elsewhere(&rec.campaign, &rec.id, number) {
                    return Err(RejectReason::NumberLiveOnAnotherRecord {
                        number: number.to_owned(),
                        record: rec.id.clone(),
                        other,
                    });
                }
                let new = !before_numbers.iter().any(|n| n == number);
                if new && self.blacklist.blocks(number, &rec.campaign, now) {
                    return Err(RejectReason::Blacklisted {
                        number: number.to_owned(),
                        record: rec.id.clone(),
                    });
                }
            }
        }
        // Every check passed: now the change.
        let run = self.campaigns.get_mut(&cid).expect("found above");
        match hopper_pos {
            Some(p) => {
                run.hopper.remove(p);
            }
            None => {
                run.recent_records.remove(&record);
                run.recent.retain(|r| r != &record);
            }
        }
        run.skip_noted.remove(&record);
        if let Some(entry) = effect.blacklist {
            self.blacklist.add(entry.clone());
            self.out
                .push_back(Output::Store(StoreUpdate::BlacklistAdded(entry)));
        }
        if let RecordStatus::Finished { reason } = rec.status {
            self.out.push_back(Output::Event(Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            }));
        }
        self.out
            .push_back(Output::Store(StoreUpdate::Record(Box::new(rec))));
        Ok(())
    }

    /// Another live record of the campaign that could dial `e164` (held in the hopper, in
    /// flight, or just called and not finished), or a call in flight to it.
    fn number_live_elsewhere(
        &self,
        cid: &CampaignId,
        record: &RecordId,
        e164: &str,
    ) -> Option<RecordId> {
        if let Some(call) = self.numbers_in_flight.get(&number_key(e164)) {
            if let Some(c) = self.calls.get(call).filter(|c| &c.record != record) {
                return Some(c.record.clone());
            }
        }
        let run = self.campaigns.get(cid)?;
        let has = |r: &SpoolRecord| {
            &r.id != record && !r.is_finished() && live_numbers(r).any(|n| n == e164)
        };
        run.hopper
            .iter()
            .map(|r| &**r)
            .chain(run.in_flight.values().map(|r| &**r))
            .chain(run.recent_records.values().map(|r| &**r))
            .find(|r| has(r))
            .map(|r| r.id.clone())
    }

    // ----- deciding -----

    fn check(
        &self,
        cid: &CampaignId,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        self.check_for(cid, rec, now, None)
    }

    /// [`Engine::check`], counting `also_free` as a free agent of the campaign (an agent
    /// answering a preview offer).
    fn check_for(
        &self,
        cid: &CampaignId,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
        also_free: Option<&AgentId>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        let run = &self.campaigns[cid];
        let in_flight = |n: &str| self.numbers_in_flight.contains_key(&number_key(n));
        let free = |a: &AgentId| {
            self.agent_free_for(a, cid)
                || (Some(a) == also_free
                    && self
                        .agents
                        .get(a)
                        .is_some_and(|x| x.campaigns.contains(cid)))
        };
        let ctx = EligibilityContext {
            campaign: &run.campaign,
            blacklist: &self.blacklist,
            now,
            number_in_flight: &in_flight,
            agent_free: &free,
            windows: Some(&run.windows),
        };
        eligibility::check(rec, &ctx)
    }

    fn drive(&mut self, now: DateTime<Utc>) {
        self.fire_timers(now);
        let dialing = self.telephony == Telephony::Up;
        let ids: Vec<CampaignId> = self.campaigns.keys().cloned().collect();
        for cid in &ids {
            self.release_leavers(now, cid);
            if !self.campaigns[cid].stopped && dialing {
                self.dial_manual_tasks(now, cid);
                if self.campaigns[cid].campaign.dial_mode == DialMode::Preview {
                    self.offer_previews(now, cid);
                } else {
                    self.pace(now, cid);
                }
            }
            // After dialing, which may have drawn the hopper down.
            self.request_records_if_needed(now, cid);
        }
    }

    /// Fires every timer due at `now`: abandons first (strictly after their deadline), then
    /// wrap-ups that ran out, then the telephony retry.
    fn fire_timers(&mut self, now: DateTime<Utc>) {
        let due: Vec<(DateTime<Utc>, Timer)> = self
            .timers
            .iter()
            .take_while(|(t, _)| *t <= now)
            .filter(|(t, timer)| !matches!(timer, Timer::Abandon(_)) || *t < now)
            .cloned()
            .collect();
        let mut expired = Vec::new();
        let mut wrap_ups = Vec::new();
        let mut retry = false;
        for entry in due {
            self.timers.remove(&entry);
            match entry.1 {
                Timer::Abandon(id) => {
                    if let Some(at) = self.calls.get(&id).and_then(|c| c.waiting_since()) {
                        expired.push((id, at));
                    }
                }
                Timer::WrapUpEnds(agent) => wrap_ups.push((entry.0, agent)),
                Timer::TelephonyRetry => retry = true,
            }
        }
        for (id, at) in expired {
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            call.abandon_counted = true;
            let cid = call.campaign.clone();
            if let Some(run) = self.campaigns.get_mut(&cid) {
                run.ledger.abandon(at, now);
                run.pacer.observe(
                    now,
                    &PacingEvent::Abandoned {
                        wait_s: secs(now - at),
                    },
                );
            }
        }
        for (at, agent) in wrap_ups {
            let still = self
                .agents
                .get(&agent)
                .is_some_and(|a| a.state == AgentState::WrapUp { until: Some(at) });
            if still {
                self.end_wrap_up(now, &agent);
            }
        }
        if retry {
            if let Telephony::Down {
                retry_at: Some(_), ..
            } = self.telephony
            {
                self.telephony = Telephony::Up;
                self.out
                    .push_back(Output::Event(Event::TelephonyUp { at: now }));
            }
        }
    }

    fn hopper_target(&self, run: &CampaignRun) -> u32 {
        self.cfg
            .hopper_min
            .max(run.campaign.max_lines.saturating_mul(4))
    }

    fn request_records_if_needed(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let target = self.hopper_target(&self.campaigns[cid]);
        let interval = Duration::seconds(i64::from(self.cfg.refill_interval_s));
        let run = self
            .campaigns
            .get_mut(cid)
            .expect("iterating known campaigns");
        if run.stopped || run.request_outstanding {
            return;
        }
        let low = (run.hopper.len() as u32) < target / 2;
        let stale = run.last_request.is_none_or(|t| now - t >= interval);
        // A low hopper is refilled at once, but an empty list is not asked again every event.
        let recently = run
            .last_request
            .is_some_and(|t| now - t < Duration::seconds(1));
        if stale || (low && !recently) {
            run.request_outstanding = true;
            run.last_request = Some(now);
            self.out.push_back(Output::NeedRecords {
                campaign: cid.clone(),
                limit: target,
            });
        }
    }

    fn snapshot(&mut self, now: DateTime<Utc>, cid: &CampaignId) -> PacingSnapshot {
        let mut free = 0;
        let mut logged = 0;
        // Reused between snapshots: one allocation for the engine's life, not one per input.
        let mut busy = std::mem::take(&mut self.busy_scratch);
        busy.clear();
        let now_ms = now.timestamp_millis();
        let run = &self.campaigns[cid];
        for &i in &run.home_agents {
            let a = &self.agents.list[i];
            let phase = match a.state {
                AgentState::LoggedOut => continue,
                AgentState::Ready if a.leaving => None,
                AgentState::Ready => {
                    free += 1;
                    None
                }
                AgentState::OnCall { .. } => Some(AgentPhase::Talking),
                AgentState::WrapUp { .. } => Some(AgentPhase::WrapUp),
                AgentState::Reserved { .. }
                | AgentState::Previewing { .. }
                | AgentState::Paused { .. } => None,
            };
            if let Some(phase) = phase {
                busy.push(AgentLoad {
                    phase,
                    elapsed_s: (now_ms - a.since_ms) as f64 / 1000.0,
                });
            }
            logged += 1;
        }
        let in_flight = run.dialing;
        let waiting = run.waiting;
        #[cfg(debug_assertions)]
        {
            let mut slow = (0, 0);
            for c in run.calls.iter().filter_map(|id| self.calls.get(id)) {
                let (d, w) = pacing_class(c);
                slow.0 += u32::from(d);
                slow.1 += u32::from(w);
            }
            debug_assert_eq!(slow, (in_flight, waiting), "pacing counters drifted");
        }
        let lines_used = run.calls.len() as u32;
        let run = self
            .campaigns
            .get_mut(cid)
            .expect("iterating known campaigns");
        PacingSnapshot {
            now,
            agents_logged_in: logged,
            agents_free: free,
            agents_busy: busy,
            dials_in_flight: in_flight,
            calls_waiting: waiting,
            lines_free: run.campaign.max_lines.saturating_sub(lines_used),
            records_ready: run.hopper.len() as u32,
            abandon: run.ledger.status(now),
            abandon_threshold_s: run.campaign.abandon.threshold_s,
        }
    }

    fn pace(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let run = &self.campaigns[cid];
        if run.hopper.is_empty() || run.calls.len() as u32 >= run.campaign.max_lines {
            return;
        }
        let snap = self.snapshot(now, cid);
        let guard_on = self.cfg.abandon_guard;
        let run = self
            .campaigns
            .get_mut(cid)
            .expect("iterating known campaigns");
        let wanted = run.pacer.dials_to_place(&snap).min(snap.lines_free);
        let mut status = snap.abandon;
        let horizon = Duration::seconds(i64::from(run.campaign.ring_timeout_s))
            + Duration::seconds(run.campaign.abandon.threshold_s.ceil() as i64);
        if run.ledger.period_ends_within(now, horizon) {
            // Calls placed now may be answered in the next period, whose budget starts at zero.
            status.budget = status.budget.min(0.0);
        }
        self.busy_scratch = snap.agents_busy;
        let allowed = if guard_on {
            abandonment::guard(
                wanted,
                snap.agents_free,
                snap.dials_in_flight,
                snap.calls_waiting,
                &status,
            )
        } else {
            wanted
        };
        if allowed == 0 {
            return;
        }
        let pacer = run.pacer.name();
        self.place_from_hopper(now, cid, allowed, &pacer, |_| true);
    }

    /// Takes the `i`-th record out of a campaign's hopper (the caller has checked both).
    fn take_from_hopper(&mut self, cid: &CampaignId, i: usize) -> Box<SpoolRecord> {
        self.campaigns
            .get_mut(cid)
            .and_then(|run| run.hopper.remove(i))
            .expect("campaign and hopper index checked by the caller")
    }

    /// Dials up to `n` eligible records of the hopper, in order, that pass `filter`.
    fn place_from_hopper(
        &mut self,
        now: DateTime<Utc>,
        cid: &CampaignId,
        n: u32,
        pacer: &str,
        filter: impl Fn(&SpoolRecord) -> bool,
    ) -> u32 {
        let mut placed = 0;
        let mut i = 0;
        while placed < n {
            let run = &self.campaigns[cid];
            if i >= run.hopper.len() {
                break;
            }
            if !filter(&run.hopper[i]) {
                i += 1;
                continue;
            }
            match self.check(cid, &self.campaigns[cid].hopper[i], now) {
                Ok(plan) => {
                    let rec = self.take_from_hopper(cid, i);
                    let class = DueClassCode::from(ordering::due_class(&rec));
                    let class = if rec
                        .task
                        .as_ref()
                        .is_some_and(|t| t.kind == TaskKind::Manual)
                    {
                        DueClassCode::Manual
                    } else {
                        class
                    };
                    let reason = DialReason {
                        class,
                        pacer: pacer.to_owned(),
                        wanted: n,
                    };
                    self.dial(now, cid, rec, plan, reason);
                    placed += 1;
                }
                Err(reason) => {
                    let transient = matches!(
                        reason,
                        SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }
                    );
                    if transient {
                        let run = self.campaigns.get_mut(cid).expect("known");
                        let id = run.hopper[i].id.clone();
                        if run.skip_noted.insert(id.clone(), reason.code()) != Some(reason.code()) {
                            self.out.push_back(Output::Event(Event::Skipped {
                                at: now,
                                campaign: cid.clone(),
                                record: id,
                                reason,
                            }));
                        }
                        i += 1;
                    } else {
                        let rec = self.take_from_hopper(cid, i);
                        self.skip(now, cid, rec, reason);
                    }
                }
            }
        }
        placed
    }

    /// Takes a record out of the hopper for a reason that will not pass soon, and tells the
    /// store when to offer it again (or that it is finished).
    fn skip(
        &mut self,
        now: DateTime<Utc>,
        cid: &CampaignId,
        mut rec: Box<SpoolRecord>,
        reason: SkipReason,
    ) {
        let run = self.campaigns.get_mut(cid).expect("known");
        run.skip_noted.remove(&rec.id);
        self.out.push_back(Output::Event(Event::Skipped {
            at: now,
            campaign: cid.clone(),
            record: rec.id.clone(),
            reason: reason.clone(),
        }));
        let before = rec.clone();
        match &reason {
            SkipReason::NotPending => return,
            SkipReason::Blacklisted { .. } => {
                if let Some(slot) = rec.numbers.get_mut(rec.current) {
                    slot.state = NumberState::Blacklisted;
                }
                if rec.schedule.as_ref().is_some_and(|s| s.number.is_some()) {
                    rec.schedule = None;
                }
                next_step::advance_if_current_unusable(&mut rec);
            }
            SkipReason::AttemptCapReached => {
                if let Some(slot) = rec.numbers.get_mut(rec.current) {
                    if slot.state == NumberState::Active {
                        slot.state = NumberState::Spent;
                    }
                }
                if rec.attempts >= run.campaign.max_attempts_per_record {
                    rec.status = RecordStatus::Finished {
                        reason: FinishReason::AttemptsExhausted,
                    };
                } else {
                    next_step::advance_if_current_unusable(&mut rec);
                }
            }
            SkipReason::NoDialableNumber => {
                rec.status = RecordStatus::Finished {
                    reason: FinishReason::NoDialableNumber,
                };
            }
            SkipReason::UnknownTimeZone { .. } => {
                // Reported again daily until someone fixes the zone: never dialed meanwhile.
                rec.next_eligible_at = Some(now + Duration::days(1));
            }
            other => {
                rec.next_eligible_at = Some(other.retry_at().unwrap_or(now + Duration::days(1)));
            }
        }
        if let RecordStatus::Finished { reason } = rec.status {
            rec.next_eligible_at = None;
            self.out.push_back(Output::Event(Event::RecordFinished {
                at: now,
                record: rec.id.clone(),
                reason,
            }));
        }
        if rec != before {
            self.out.push_back(Output::Store(StoreUpdate::Record(rec)));
        }
    }

    fn dial(
        &mut self,
        now: DateTime<Utc>,
        cid: &CampaignId,
        mut rec: Box<SpoolRecord>,
        plan: eligibility::DialPlan,
        reason: DialReason,
    ) {
        let call = CallId(self.next_call);
        self.next_call += 1;
        let run = self.campaigns.get_mut(cid).expect("known");
        run.skip_noted.remove(&rec.id);
        next_step::begin_attempt(&mut rec, &run.campaign, call, now);
        let c = &run.campaign;
        let mut variables = Vec::with_capacity(rec.data.len());
        for (k, v) in &rec.data {
            if VariableName::parse(k).is_ok() && is_safe_value(v) {
                variables.push((k.clone(), v.clone()));
            } else {
                self.out.push_back(Output::Event(Event::Rejected {
                    at: now,
                    input: InputName::RecordData,
                    reason: RejectReason::UnsafeVariable {
                        record: rec.id.clone(),
                        name: k.clone(),
                    },
                }));
            }
        }
        // AMD only while the abandonment budget can absorb the false positives of every call
        // that could still bring a machine verdict (with the guard off, as peers run, always).
        let amd_unanswered = run
            .calls
            .iter()
            .filter(|c| {
                self.calls
                    .get(c)
                    .is_some_and(|c| c.amd && c.answered.is_none())
            })
            .count() as u32;
        let amd = !self.cfg.abandon_guard || run.ledger.amd_affordable(now, amd_unanswered);
        let intent = OriginateIntent {
            call,
            campaign: cid.clone(),
            record: rec.id.clone(),
            number: plan.number.clone(),
            dial_string: c.routing.dial_string(&plan.number),
            caller_id: c.caller_id.clone(),
            ring_timeout_s: c.ring_timeout_s,
            agent: plan.agent.clone(),
            variables,
            routing: run.routing.clone(),
            amd,
        };
        run.pacer.observe(now, &PacingEvent::DialPlaced);
        if let Some(a) = &plan.agent {
            if let Some(agent) = self.agents.get_mut(a) {
                agent.state = AgentState::Reserved { call };
                agent.set_since(now);
            }
        }
        self.numbers_in_flight
            .insert(number_key(plan.number.e164()), call);
        let run = self.campaigns.get_mut(cid).expect("known");
        let threshold_ms = (run.campaign.abandon.threshold_s * 1000.0).ceil() as i64;
        run.calls.insert(call);
        self.calls.insert(
            call,
            Call {
                campaign: cid.clone(),
                record: rec.id.clone(),
                number: plan.number.clone(),
                reserved_agent: plan.agent.clone(),
                placed_at: now,
                answered: None,
                queued: None,
                linked: None,
                abandon_counted: false,
                abandon_threshold: Duration::milliseconds(threshold_ms),
                amd,
            },
        );
        if plan.agent.is_none() {
            self.campaigns.get_mut(cid).expect("known").dialing += 1;
        }
        self.out
            .push_back(Output::Store(StoreUpdate::AttemptStarted {
                call,
                campaign: cid.clone(),
                record: rec.id.clone(),
                number: plan.number.clone(),
                agent: plan.agent.clone(),
                at: now,
            }));
        self.out
            .push_back(Output::Store(StoreUpdate::Record(rec.clone())));
        self.out.push_back(Output::Event(Event::Dialed {
            at: now,
            campaign: cid.clone(),
            record: rec.id.clone(),
            call,
            number: plan.number.e164().to_owned(),
            reason,
        }));
        self.out.push_back(Output::Originate(intent));
        self.out.push_back(Output::Event(Event::Progress {
            at: now,
            campaign: cid.clone(),
            call,
            record: rec.id.clone(),
            progress: Progress::Placing,
        }));
        let run = self.campaigns.get_mut(cid).expect("known");
        run.in_flight.insert(rec.id.clone(), rec);
    }

    /// Manual (click-to-call) tasks go out at once for their agent, outside pacing but
    /// within the line limit and every compliance rule.
    fn dial_manual_tasks(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let run = &self.campaigns[cid];
        let used = run.calls.len() as u32;
        let lines = run.campaign.max_lines.saturating_sub(used);
        if lines == 0 || !run.has_manual {
            return;
        }
        if !run.hopper.iter().any(|r| is_manual(r)) {
            self.campaigns.get_mut(cid).expect("known").has_manual = false;
            return;
        }
        self.place_from_hopper(now, cid, lines, "manual", is_manual);
    }

    /// Preview mode: each free agent is offered the next eligible record.
    fn offer_previews(&mut self, now: DateTime<Utc>, cid: &CampaignId) {
        let free: Vec<AgentId> = self
            .agents
            .iter()
            .filter(|(_, a)| a.state == AgentState::Ready && self.home_campaign(a) == Some(cid))
            .map(|(id, _)| id.clone())
            .collect();
        let offered = self.records_in_preview();
        for agent in free {
            let mut i = 0;
            loop {
                let run = &self.campaigns[cid];
                let Some(rec) = run.hopper.get(i) else { break };
                if offered.contains(&rec.id)
                    || rec.owner_agent.as_ref().is_some_and(|o| o != &agent)
                {
                    i += 1;
                    continue;
                }
                // Check as if the agent were free to take it; it is.
                match self.check(cid, rec, now) {
                    Ok(_) => {
                        let record = rec.id.clone();
                        if let Some(a) = self.agents.get_mut(&agent) {
                            a.state = AgentState::Previewing {
                                campaign: cid.clone(),
                                record: record.clone(),
                            };
                            a.set_since(now);
                        }
                        self.out.push_back(Output::Event(Event::PreviewOffered {
                            at: now,
                            agent: agent.clone(),
                            record,
                        }));
                        break;
                    }
                    Err(SkipReason::AgentNotFree { .. } | SkipReason::NumberInFlight { .. }) => {
                        i += 1
                    }
                    Err(reason) => {
                        let rec = self.take_from_hopper(cid, i);
                        self.skip(now, cid, rec, reason);
                    }
                }
            }
        }
    }

    fn next_wakeup(&self) -> Option<DateTime<Utc>> {
        let now = self.now?;
        let mut next: Option<DateTime<Utc>> = None;
        let mut consider = |t: DateTime<Utc>| {
            let t = t.max(now);
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        // An abandon fires strictly after its deadline; every other timer at its time.
        let mut soonest: Option<DateTime<Utc>> = None;
        for (at, timer) in &self.timers {
            if soonest.is_some_and(|t| *at >= t) {
                break;
            }
            let wake = match timer {
                Timer::Abandon(_) => *at + Duration::milliseconds(1),
                _ => *at,
            };
            if soonest.is_none_or(|t| wake < t) {
                soonest = Some(wake);
            }
        }
        if let Some(t) = soonest {
            consider(t);
        }
        for run in self.campaigns.values().filter(|r| !r.stopped) {
            if let Some(t) = run.pacer.next_decision_at(now) {
                consider(t);
            }
            if !run.request_outstanding {
                let base = run.last_request.unwrap_or(now);
                consider(base + Duration::seconds(i64::from(self.cfg.refill_interval_s)));
            }
        }
        next
    }
}

/// A callee's E.164 digits as a number: no allocation per call. A country code never starts
/// with 0 and a number has at most 23 digits, so distinct valid numbers get distinct keys
/// (malformed ones could only collide, which holds back a dial, never adds one).
fn number_key(e164: &str) -> u128 {
    e164.bytes().filter(u8::is_ascii_digit).fold(0u128, |k, b| {
        k.wrapping_mul(10).wrapping_add(u128::from(b - b'0'))
    })
}

fn is_manual(r: &SpoolRecord) -> bool {
    r.task.as_ref().is_some_and(|t| t.kind == TaskKind::Manual)
}

/// Values that cannot break a protocol line.
fn is_safe_value(value: &str) -> bool {
    !value.chars().any(|c| matches!(c, '\r' | '\n' | '\0'))
}

/// The numbers a record may still dial: its active slots and a callback's own number.
fn live_numbers(r: &SpoolRecord) -> impl Iterator<Item = &str> {
    r.numbers
        .iter()
        .filter(|s| s.state == NumberState::Active)
        .map(|s| s.number.e164())
        .chain(
            r.schedule
                .as_ref()
                .and_then(|s| s.number.as_ref())
                .map(|n| n.e164()),
        )
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The kind of an input, for [`Event::Rejected`].
fn input_name(k: &InputKind) -> InputName {
    match k {
        InputKind::Tick => InputName::Tick,
        InputKind::Campaign(_) => InputName::Campaign,
        InputKind::StopCampaign { .. } => InputName::StopCampaign,
        InputKind::RecordsOffered { .. } => InputName::RecordsOffered,
        InputKind::Agent { .. } => InputName::Agent,
        InputKind::Call { .. } => InputName::Call,
        InputKind::Telephony(_) => InputName::Telephony,
        InputKind::Command(c) => match c {
            Command::Dispose { .. } => InputName::Dispose,
            Command::BlacklistAdd(_) => InputName::BlacklistAdd,
            Command::BlacklistRemove { .. } => InputName::BlacklistRemove,
            Command::PreviewDial { .. } => InputName::PreviewDial,
            Command::PreviewSkip { .. } => InputName::PreviewSkip,
            Command::Hangup { .. } => InputName::Hangup,
            Command::Forget { .. } => InputName::Forget,
        },
    }
}
