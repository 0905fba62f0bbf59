//! The engine: holds campaigns, agents, calls and the records about to be dialed; turns
//! inputs into outputs. Never reads a clock: time comes with each input.

use super::input::{AgentEvent, CallEvent, Command, Input, InputKind};
use super::output::{
    DialReason, DueClassCode, Event, OriginateIntent, Output, Progress, StoreUpdate,
};
use crate::model::blacklist::Blacklist;
use crate::model::campaign::{Campaign, DialMode, MachinePolicy};
use crate::model::ids::{AgentId, CallId, CampaignId, RecordId};
use crate::model::outcome::{AnswerKind, CallOutcome, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::{FinishReason, NumberState, RecordStatus, SpoolRecord, TaskKind};
use crate::pacing::{
    self, abandonment, AbandonLedger, AgentLoad, AgentPhase, Pacer, PacingEvent, PacingSnapshot,
};
use crate::rules::eligibility::{self, EligibilityContext, SkipReason};
use crate::rules::{disposition, next_step, ordering};
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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            refill_interval_s: 30,
            hopper_min: 50,
            first_call_id: 1,
            recent_records: 10_000,
            abandon_guard: true,
        }
    }
}

/// An agent as the engine tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentState {
    LoggedOut,
    Ready,
    /// Held for a call being placed for it (owner, schedule, preview, manual task).
    Reserved {
        call: CallId,
    },
    /// Looking at a record offered in preview mode.
    Previewing {
        campaign: CampaignId,
        record: RecordId,
    },
    OnCall {
        call: CallId,
    },
    WrapUp,
    Paused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AfterCall {
    Pause(String),
    Logout,
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
    after_call: Option<AfterCall>,
    /// Ready, but asked to pause or log out while dials it covers are in flight: takes calls,
    /// is not counted for new dials, and leaves (`after_call`) once it is no longer needed.
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
                    after_call: None,
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
    linked: Option<(AgentId, DateTime<Utc>)>,
    abandon_counted: bool,
    /// A live answer not linked within this long counts as abandoned.
    abandon_threshold: Duration,
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
    /// When each waiting live answer turns into an abandon, soonest first.
    abandon_deadlines: std::collections::BTreeSet<(DateTime<Utc>, CallId)>,
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
            abandon_deadlines: std::collections::BTreeSet::new(),
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

    /// Applies a burst of inputs (events that arrived together), then decides what to dial
    /// once, with all of them known. Same as [`Engine::handle_input`] for each, except that no
    /// dialing decision is taken between them.
    pub fn handle_inputs(&mut self, inputs: impl IntoIterator<Item = Input>) {
        let mut last = None;
        let mut changed = false;
        for input in inputs {
            // Progress reports of a call change nothing a dialing decision depends on.
            changed |= !matches!(
                input.kind,
                InputKind::Call {
                    event: CallEvent::OriginateAccepted | CallEvent::Ringing | CallEvent::Queued,
                    ..
                }
            );
            // Time never runs backwards inside the engine: a late input is applied "now".
            let now = match self.now {
                Some(t) if input.now < t => t,
                _ => input.now,
            };
            self.now = Some(now);
            let label = input_label(&input.kind);
            if let Err(error) = self.apply(now, input.kind) {
                self.out.push_back(Output::Event(Event::Rejected {
                    at: now,
                    input: label.to_string(),
                    error,
                }));
            }
            last = Some(now);
        }
        if let Some(now) = last {
            // Driving again at the instant of the last decision, with nothing changed since,
            // would decide the same: skip it (it is most of the bursts a busy floor sends).
            if changed || self.last_drive != Some(now) {
                self.drive(now);
                self.last_drive = Some(now);
            }
        }
    }

    /// The next output; [`Output::Timeout`] when there is nothing more before that time.
    pub fn poll_output(&mut self) -> Output {
        match self.out.pop_front() {
            Some(o) => o,
            None => Output::Timeout(self.next_wakeup()),
        }
    }

    fn apply(&mut self, now: DateTime<Utc>, kind: InputKind) -> Result<(), String> {
        match kind {
            InputKind::Tick => Ok(()),
            InputKind::Campaign(c) => self.add_campaign(now, *c),
            InputKind::StopCampaign { campaign } => {
                let run = self
                    .campaigns
                    .get_mut(&campaign)
                    .ok_or("unknown campaign")?;
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

    fn add_campaign(&mut self, now: DateTime<Utc>, c: Campaign) -> Result<(), String> {
        c.validate().map_err(|e| e.to_string())?;
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
        _now: DateTime<Utc>,
        campaign: &CampaignId,
        records: Vec<SpoolRecord>,
    ) -> Result<(), String> {
        let previewed = self.records_in_preview();
        let run = self.campaigns.get_mut(campaign).ok_or("unknown campaign")?;
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
    ) -> Result<(), String> {
        if let AgentEvent::LoggedIn { campaigns } = &event {
            let a = self.agents.get_or_insert(id.clone(), now);
            a.campaigns = campaigns.clone();
            if a.leaving {
                a.leaving = false;
                a.after_call = None;
            }
            if matches!(a.state, AgentState::LoggedOut) {
                a.state = AgentState::Ready;
                a.set_since(now);
            }
            self.recompute_homes();
            return Ok(());
        }
        let agent = self.agents.get_mut(&id).ok_or("agent is not logged in")?;
        let busy = matches!(
            agent.state,
            AgentState::OnCall { .. } | AgentState::Reserved { .. } | AgentState::WrapUp
        );
        match event {
            AgentEvent::LoggedIn { .. } => {}
            AgentEvent::Ready => {
                match agent.state {
                    AgentState::WrapUp => {
                        let wrap_s = (now.timestamp_millis() - agent.since_ms) as f64 / 1000.0;
                        let home = agent.campaigns.first().cloned();
                        if let Some(run) = home.and_then(|c| self.campaigns.get_mut(&c)) {
                            run.pacer.observe(now, &PacingEvent::WrapUpEnded { wrap_s });
                        }
                    }
                    AgentState::OnCall { .. } | AgentState::Reserved { .. } => return Ok(()),
                    AgentState::LoggedOut => return Err("agent is logged out: log in first".into()),
                    AgentState::Ready if agent.leaving => {
                        // Back before the pause took effect: it simply stays.
                        agent.leaving = false;
                        agent.after_call = None;
                        return Ok(());
                    }
                    _ => {}
                }
                let agent = self.agents.get_mut(&id).expect("looked up above");
                match agent.after_call.take() {
                    Some(how) => self.depart(now, &id, how),
                    None => {
                        agent.state = AgentState::Ready;
                        agent.set_since(now);
                    }
                }
            }
            AgentEvent::Paused { reason } | AgentEvent::PauseAfterCall { reason } => {
                if busy {
                    agent.after_call = Some(AfterCall::Pause(reason));
                } else {
                    self.leave(now, &id, AfterCall::Pause(reason));
                }
            }
            AgentEvent::LogoutAfterCall => {
                if busy {
                    agent.after_call = Some(AfterCall::Logout);
                } else {
                    self.leave(now, &id, AfterCall::Logout);
                }
            }
            AgentEvent::WrapUp => {
                agent.state = AgentState::WrapUp;
                agent.set_since(now);
            }
            AgentEvent::LoggedOut if busy => {
                // The call (or its wrap-up) keeps the agent until it ends.
                agent.after_call = Some(AfterCall::Logout);
            }
            AgentEvent::LoggedOut => self.leave(now, &id, AfterCall::Logout),
        }
        Ok(())
    }

    /// An idle agent asks to pause or log out. If the dials in flight of its campaign need it
    /// to stay within the abandonment budget, it leaves once they no longer do; otherwise now.
    fn leave(&mut self, now: DateTime<Utc>, id: &AgentId, how: AfterCall) {
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
            agent.after_call = Some(how);
            agent.leaving = true;
        } else {
            self.release_preview(id);
            self.depart(now, id, how);
        }
    }

    /// Applies a departure and reports it.
    fn depart(&mut self, now: DateTime<Utc>, id: &AgentId, how: AfterCall) {
        let Some(agent) = self.agents.get_mut(id) else {
            return;
        };
        agent.leaving = false;
        agent.after_call = None;
        agent.set_since(now);
        let paused = match how {
            AfterCall::Pause(reason) => {
                agent.state = AgentState::Paused {
                    reason: reason.clone(),
                };
                Some(reason)
            }
            AfterCall::Logout => {
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
            let how = self.agents.get_mut(&id).and_then(|a| a.after_call.take());
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
    ) -> Result<(), String> {
        let Some(call) = self.calls.get(&id) else {
            return Err(format!("unknown call {id}"));
        };
        let before = pacing_class(call);
        let deadline_before = call.abandon_deadline();
        let cid = call.campaign.clone();
        let result = self.call_event_inner(now, id, &cid, event);
        let after = self.calls.get(&id).map(pacing_class).unwrap_or_default();
        let deadline_after = self.calls.get(&id).and_then(Call::abandon_deadline);
        if deadline_before != deadline_after {
            if let Some(d) = deadline_before {
                self.abandon_deadlines.remove(&(d, id));
            }
            if let Some(d) = deadline_after {
                self.abandon_deadlines.insert((d, id));
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
    ) -> Result<(), String> {
        let call = self
            .calls
            .get_mut(&id)
            .ok_or_else(|| format!("unknown call {id}"))?;
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
            CallEvent::Queued => self.out.push_back(progress(Progress::OnQueue)),
            CallEvent::Answered { kind } => {
                if call.answered.is_some() {
                    return Ok(());
                }
                call.answered = Some((now, kind));
                let dial_s = secs(now - call.placed_at);
                let live = kind != AnswerKind::Machine;
                let run = self.campaigns.get_mut(campaign).ok_or("campaign gone")?;
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
                let run = self.campaigns.get_mut(campaign).ok_or("campaign gone")?;
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
            CallEvent::OriginateRefused { .. } => {
                self.end_call(now, id, Some(FailureClass::OriginateFailed), false)?;
            }
            CallEvent::HungUp { failure } => self.end_call(now, id, failure, false)?,
            CallEvent::Lost => self.end_call(now, id, None, true)?,
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
        if let Some(a) = self.agents.get_mut(&reserved) {
            if a.state == (AgentState::Reserved { call }) {
                match a.after_call.take() {
                    Some(how) => self.depart(now, &reserved, how),
                    None => {
                        a.state = AgentState::Ready;
                        a.set_since(now);
                    }
                }
            }
        }
    }

    fn end_call(
        &mut self,
        now: DateTime<Utc>,
        id: CallId,
        failure: Option<FailureClass>,
        lost: bool,
    ) -> Result<(), String> {
        self.release_reservation(id, None, now);
        let call = self
            .calls
            .remove(&id)
            .ok_or_else(|| format!("unknown call {id}"))?;
        let key = number_key(call.number.e164());
        if self.numbers_in_flight.get(&key) == Some(&id) {
            self.numbers_in_flight.remove(&key);
        }
        let run = self
            .campaigns
            .get_mut(&call.campaign)
            .ok_or("campaign gone")?;
        run.calls.remove(&id);
        let c = &run.campaign;
        let (outcome, progress) = if let Some((agent, linked_at)) = &call.linked {
            let talk_s = secs(now - *linked_at);
            run.pacer.observe(now, &PacingEvent::TalkEnded { talk_s });
            if let Some(a) = self.agents.get_mut(agent) {
                if a.state == (AgentState::OnCall { call: id }) {
                    a.state = AgentState::WrapUp;
                    a.set_since(now);
                }
            }
            self.out.push_back(Output::Event(Event::AgentUnlinked {
                at: now,
                agent: agent.clone(),
                call: id,
            }));
            let talk = talk_s.round() as u32;
            if talk < c.short_call_s {
                (CallOutcome::ShortCall { talk_s: talk }, Progress::ShortCall)
            } else {
                (CallOutcome::Connected { talk_s: talk }, Progress::Hangup)
            }
        } else if lost {
            (CallOutcome::Unknown, Progress::Unknown)
        } else if let Some((answered_at, kind)) = call.answered {
            if kind == AnswerKind::Machine {
                (CallOutcome::Machine, Progress::Machine)
            } else {
                if !call.abandon_counted {
                    let wait_s = secs(now - answered_at);
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
                    dial_s: secs(now - call.placed_at),
                    live: false,
                },
            );
            let p = match class {
                FailureClass::NoAnswer => Progress::NoAnswer,
                other => Progress::Failure { class: other },
            };
            (CallOutcome::Failed { class }, p)
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
            at: now,
        }));
        if let Some(mut rec) = run.in_flight.remove(&call.record) {
            next_step::finish_attempt(&mut rec, &run.campaign, outcome, now);
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
        }
        Ok(())
    }

    // ----- commands -----

    fn command(&mut self, now: DateTime<Utc>, command: Command) -> Result<(), String> {
        match command {
            Command::BlacklistAdd(entry) => {
                self.blacklist.add(entry);
                Ok(())
            }
            Command::BlacklistRemove { number, scope } => {
                self.blacklist.remove(&number, &scope);
                Ok(())
            }
            Command::Hangup { call } => {
                if !self.calls.contains_key(&call) {
                    return Err(format!("unknown call {call}"));
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
            Command::PreviewDial { agent, record } => {
                let campaign = self.end_preview(&agent, &record)?;
                let run = self.campaigns.get_mut(&campaign).ok_or("campaign gone")?;
                let pos = run
                    .hopper
                    .iter()
                    .position(|r| r.id == record)
                    .ok_or("record no longer held")?;
                let rec = run.hopper.remove(pos).expect("position found above");
                match self.check(&campaign, &rec, now) {
                    Ok(plan) => {
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
                    Err(reason) => {
                        self.skip(now, &campaign, rec, reason);
                        Err("record is no longer eligible".into())
                    }
                }
            }
            Command::PreviewSkip { agent, record } => {
                let campaign = self.end_preview(&agent, &record)?;
                let run = self.campaigns.get_mut(&campaign).ok_or("campaign gone")?;
                if let Some(pos) = run.hopper.iter().position(|r| r.id == record) {
                    // Passed over: back of the queue for a while, so others get their turn.
                    let mut rec = run.hopper.remove(pos).expect("position found above");
                    rec.next_eligible_at =
                        Some(now + Duration::seconds(i64::from(run.campaign.retry.no_answer_s)));
                    self.out.push_back(Output::Store(StoreUpdate::Record(rec)));
                }
                Ok(())
            }
        }
    }

    /// Ends an agent's preview of `record` (it answered the offer); returns the campaign.
    fn end_preview(&mut self, agent: &AgentId, record: &RecordId) -> Result<CampaignId, String> {
        let Some(AgentState::Previewing {
            campaign,
            record: offered,
        }) = self.agents.get(agent).map(|a| a.state.clone())
        else {
            return Err(format!("agent {agent} has no record in preview"));
        };
        if &offered != record {
            return Err(format!(
                "agent {agent} was offered record {offered}, not {record}"
            ));
        }
        if let Some(a) = self.agents.get_mut(agent) {
            a.state = AgentState::Ready;
        }
        Ok(campaign)
    }

    fn dispose(
        &mut self,
        now: DateTime<Utc>,
        record: RecordId,
        d: disposition::Disposition,
    ) -> Result<(), String> {
        let (cid, mut rec) = self
            .campaigns
            .iter_mut()
            .find_map(|(cid, run)| {
                run.recent_records
                    .remove(&record)
                    .or_else(|| {
                        run.hopper
                            .iter()
                            .position(|r| r.id == record)
                            .and_then(|p| run.hopper.remove(p))
                    })
                    .map(|r| (cid.clone(), r))
            })
            .ok_or_else(|| format!("record {record} is not held by the engine (offer it first)"))?;
        let run = self.campaigns.get_mut(&cid).expect("found above");
        match disposition::apply(&mut rec, &run.campaign, &d, now) {
            Ok(effect) => {
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
                self.out.push_back(Output::Store(StoreUpdate::Record(rec)));
                Ok(())
            }
            Err(e) => {
                run.recent_records.insert(rec.id.clone(), rec);
                Err(e.to_string())
            }
        }
    }

    // ----- deciding -----

    fn check(
        &self,
        cid: &CampaignId,
        rec: &SpoolRecord,
        now: DateTime<Utc>,
    ) -> Result<eligibility::DialPlan, SkipReason> {
        let run = &self.campaigns[cid];
        let in_flight = |n: &str| self.numbers_in_flight.contains_key(&number_key(n));
        let free = |a: &AgentId| self.agent_free_for(a, cid);
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
        self.expire_abandon_timers(now);
        let ids: Vec<CampaignId> = self.campaigns.keys().cloned().collect();
        for cid in &ids {
            self.release_leavers(now, cid);
            if !self.campaigns[cid].stopped {
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

    fn expire_abandon_timers(&mut self, now: DateTime<Utc>) {
        let mut expired = Vec::new();
        while let Some(&(deadline, id)) = self.abandon_deadlines.first() {
            if deadline >= now {
                break;
            }
            self.abandon_deadlines.pop_first();
            if let Some(at) = self.calls.get(&id).and_then(|c| c.waiting_since()) {
                expired.push((id, at));
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
                AgentState::WrapUp => Some(AgentPhase::WrapUp),
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
            if is_safe_variable(k, v) {
                variables.push((k.clone(), v.clone()));
            } else {
                self.out.push_back(Output::Event(Event::Rejected {
                    at: now,
                    input: format!("record {} data", rec.id),
                    error: format!("variable {k:?} dropped: names are letters, digits and _; values carry no CR, LF or NUL"),
                }));
            }
        }
        let intent = OriginateIntent {
            call,
            campaign: cid.clone(),
            record: rec.id.clone(),
            number: plan.number.clone(),
            dial_string: format!("{}{}", c.routing.dial_prefix, plan.number.dial_string()),
            caller_id: c.caller_id.clone(),
            ring_timeout_s: c.ring_timeout_s,
            agent: plan.agent.clone(),
            variables,
            routing: run.routing.clone(),
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
                linked: None,
                abandon_counted: false,
                abandon_threshold: Duration::milliseconds(threshold_ms),
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
        if let Some(&(deadline, _)) = self.abandon_deadlines.first() {
            consider(deadline + Duration::milliseconds(1));
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

/// Variable names the dialplan may see, and values that cannot break a protocol line.
fn is_safe_variable(name: &str, value: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !value.chars().any(|c| matches!(c, '\r' | '\n' | '\0'))
}

fn secs(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// What an input was, kept cheaply until we know whether it is rejected (most are not).
enum InputLabel {
    Tick,
    Campaign(CampaignId),
    Stop(CampaignId),
    Records(CampaignId),
    Agent(AgentId),
    Call(CallId),
    Command(String),
}

fn input_label(k: &InputKind) -> InputLabel {
    match k {
        InputKind::Tick => InputLabel::Tick,
        InputKind::Campaign(c) => InputLabel::Campaign(c.id.clone()),
        InputKind::StopCampaign { campaign } => InputLabel::Stop(campaign.clone()),
        InputKind::RecordsOffered { campaign, .. } => InputLabel::Records(campaign.clone()),
        InputKind::Agent { agent, .. } => InputLabel::Agent(agent.clone()),
        InputKind::Call { call, .. } => InputLabel::Call(*call),
        InputKind::Command(c) => {
            InputLabel::Command(format!("command {c:?}").chars().take(120).collect())
        }
    }
}

impl std::fmt::Display for InputLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputLabel::Tick => write!(f, "tick"),
            InputLabel::Campaign(c) => write!(f, "campaign {c}"),
            InputLabel::Stop(c) => write!(f, "stop campaign {c}"),
            InputLabel::Records(c) => write!(f, "records offered to {c}"),
            InputLabel::Agent(a) => write!(f, "agent {a}"),
            InputLabel::Call(c) => write!(f, "{c}"),
            InputLabel::Command(s) => f.write_str(s),
        }
    }
}
