//! The discrete-event simulator. It owns an [`Engine`] and plays the telephone network, the
//! callees, the agents' desktops and the store around it, in simulated time.

use crate::dist::Dist;
use crate::report::{PeriodReport, Report};
use crate::rng::{self, Stream, Topic};
use crate::scenario::Scenario;
use crate::spool::Spool;
use crate::timeline::{Sample, Timeline};
use chrono::{DateTime, Duration, Utc};
use dialer_core::pacing::Pacer;
use dialer_core::{
    AgentEvent, AgentId, AnswerKind, CallEvent, CallId, CampaignId, Engine, EngineConfig, Event,
    FailureClass, InputKind, MachinePolicy, OriginateIntent, SpoolRecord, StoreUpdate,
};
use dialer_runtime::driver::{Action, Driver};
use rand::Rng;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

/// What a dial attempt will meet, drawn from the stream of (seed, record, attempt).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Live,
    Machine,
    Busy,
    NoAnswer,
    Congestion,
    Invalid,
}

#[derive(Debug, Clone, Copy)]
struct Fate {
    outcome: Outcome,
    latency_ms: i64,
    /// From the Originate to the answer or the failure signal.
    resolve_ms: i64,
    /// AMD's verdict says human.
    amd_says_human: bool,
    amd_delay_ms: i64,
    patience_ms: i64,
    /// Time an agent spends once linked.
    talk_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Dialing,
    /// Answered, AMD still listening.
    Detecting,
    /// Reported as a machine; the engine will hang it up.
    Machine,
    /// A live answer waiting for an agent.
    Waiting,
    Talking(usize),
}

struct SimCall {
    fate: Fate,
    stage: Stage,
    reserved: Option<usize>,
    answered_ms: i64,
    /// Reported to the engine as a live answer (human or unknown).
    live: bool,
    /// The dialer allowed AMD on this call ([`OriginateIntent::amd`]).
    amd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AState {
    Offline,
    Idle,
    Reserved,
    Talking,
    Wrap,
    Paused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterCall {
    Break,
    Logout,
}

struct SimAgent {
    id: AgentId,
    state: AState,
    idle_since: i64,
    after_call: Option<AfterCall>,
    rng: Stream,
}

/// An event and when it happens; the heap's greatest is the soonest (then the first scheduled),
/// so ties keep insertion order.
struct Timed {
    t_ms: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        (self.t_ms, self.seq) == (other.t_ms, other.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.t_ms, other.seq).cmp(&(self.t_ms, self.seq))
    }
}

/// Simulation events.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Accepted(CallId),
    Resolve(CallId),
    Verdict(CallId),
    GiveUp(CallId),
    TalkEnd(CallId),
    WrapEnd(usize),
    Login(usize),
    Logout(usize),
    BreakStart(usize),
    BreakEnd(usize),
}

#[derive(Debug, Default, Clone)]
struct Stats {
    dials: u64,
    live: u64,
    /// Abandons by the engine's definition, counted on the simulator's side (a cross-check).
    abandoned_seen: u64,
    connected: u64,
    wait_ms: i64,
    machines_detected: u64,
    amd_false_positives: u64,
    /// When each person hung up on by AMD answered (for reports that count them).
    amd_false_positive_at: Vec<i64>,
    staffed_ms: i128,
    busy_ms: i128,
    talk_ms: i128,
}

/// Adds people hung up on by AMD, answered on `days` (campaign local), to the books of the
/// legal periods `(first day, live answers, abandoned)` in order: each one is a live answer
/// abandoned in the period that contains its day (the first period for a day before all).
fn add_false_positives(
    books: &mut [(chrono::NaiveDate, u64, u64)],
    days: impl Iterator<Item = chrono::NaiveDate>,
) {
    for day in days {
        let i = books
            .iter()
            .rposition(|(start, _, _)| *start <= day)
            .unwrap_or(0);
        if let Some((_, live, abandoned)) = books.get_mut(i) {
            *live += 1;
            *abandoned += 1;
        }
    }
}

/// One simulated run. Build with [`Simulator::new`], then [`Simulator::run`].
pub struct Simulator {
    sc: Scenario,
    seed: u64,
    pacer_name: String,
    guard: bool,
    /// The production driver around the engine, with the simulated spool.
    driver: Driver<SimSpool>,
    cid: CampaignId,
    t0: DateTime<Utc>,
    /// `t0` in Unix milliseconds when it is a whole millisecond (the scenarios' starts are):
    /// simulated instants are then made and read with integer arithmetic, not calendar
    /// arithmetic (a conversion each way per burst).
    t0_ms: Option<i64>,
    now_ms: i64,
    /// `now_ms` as an instant, once asked for (cleared when the time moves).
    now_at: Option<DateTime<Utc>>,
    end_ms: i64,
    /// Pending events, soonest first (ties in the order they were scheduled).
    events: BinaryHeap<Timed>,
    seq: u64,
    /// Calls in flight (looked up on every event; iterated only for order-free sums).
    calls: FxHashMap<CallId, SimCall>,
    agents: Vec<SimAgent>,
    agent_index: FxHashMap<AgentId, usize>,
    /// Idle agents, longest idle first.
    idle: BTreeSet<(i64, usize)>,
    /// Live answers waiting for an agent, first come first served.
    queue: VecDeque<CallId>,
    inputs: VecDeque<InputKind>,
    /// Agents per state, for the time integrals.
    n_staffed: i64,
    n_busy: i64,
    n_talking: i64,
    threshold_ms: i64,
    stats: Stats,
    /// Samples of the floor for a report, when asked: (step, next sample, samples).
    timeline: Option<(i64, i64, Timeline)>,
}

fn ms(s: f64) -> i64 {
    (s * 1000.0).round().max(0.0) as i64
}

impl Simulator {
    /// A run of `scenario` with `seed`, driven by `pacer`; `guard` turns the engine's
    /// abandonment guard on (always for our pacers; off only for re-implemented peers).
    pub fn new(scenario: &Scenario, seed: u64, pacer: Box<dyn Pacer>, guard: bool) -> Simulator {
        let sc = scenario.clone();
        let t0 = sc.start;
        let campaign = sc.campaign();
        let cid = campaign.id.clone();
        let engine = Engine::new(EngineConfig {
            abandon_guard: guard,
            // The simulator reads no event of a call's course: the engine need not build them.
            call_events: false,
            // Nor does it send a disposition after a call: the engine need not keep ended
            // records for one. Kept, each ended record was let go 10,000 calls later, out of
            // every cache: a tenth of the reference day's time (PERF.md, seventh round).
            recent_records: 0,
            ..Default::default()
        });
        let pacer_name = pacer.name();
        let spool = SimSpool {
            list: Spool::new(cid.clone(), seed, sc.list.clone(), t0),
            offered: FxHashSet::default(),
            asked: None,
            page: sc.agents.count as usize + 40,
        };
        let mut driver = Driver::new(engine, spool);
        // The simulator acts on one event only (an agent let go); the others need not queue.
        driver.keep_events_where(|e| matches!(e, Event::AgentAway { .. }));
        driver
            .handle(t0, [InputKind::Campaign(Box::new(campaign))])
            .unwrap_or_else(|e| driver_failed(seed, e));
        driver.engine_mut().set_pacer(&cid, pacer);
        let agents = (0..sc.agents.count as usize)
            .map(|i| SimAgent {
                id: AgentId::from(format!("agent-{i:04}")),
                state: AState::Offline,
                idle_since: 0,
                after_call: None,
                rng: rng::stream(seed, Topic::Agent, i as u64, 0),
            })
            .collect::<Vec<_>>();
        let agent_index = agents
            .iter()
            .enumerate()
            .map(|(i, a)| (a.id.clone(), i))
            .collect();
        let end_ms = ms(sc.hours * 3600.0);
        let threshold_ms = ms(sc.campaign.abandon_threshold_s);
        let mut sim = Simulator {
            sc,
            seed,
            pacer_name,
            guard,
            driver,
            cid,
            t0,
            t0_ms: (t0.timestamp_subsec_nanos() % 1_000_000 == 0).then(|| t0.timestamp_millis()),
            now_ms: 0,
            now_at: None,
            end_ms,
            events: BinaryHeap::new(),
            seq: 0,
            calls: FxHashMap::default(),
            agents,
            agent_index,
            idle: BTreeSet::new(),
            queue: VecDeque::new(),
            inputs: VecDeque::new(),
            n_staffed: 0,
            n_busy: 0,
            n_talking: 0,
            threshold_ms,
            stats: Stats::default(),
            timeline: None,
        };
        sim.schedule_shifts();
        sim
    }

    /// The current simulated instant.
    fn now(&mut self) -> DateTime<Utc> {
        match self.now_at {
            Some(t) => t,
            None => *self.now_at.insert(self.at(self.now_ms)),
        }
    }

    /// Whether the unanswered record request made at `asked` is 30 s old or more.
    fn request_stale(&self, asked: DateTime<Utc>) -> bool {
        match self.t0_ms {
            // Both are whole milliseconds (`asked` is the instant of a burst).
            Some(t0) => t0 + self.now_ms - asked.timestamp_millis() >= 30_000,
            None => self.at(self.now_ms) - asked >= Duration::seconds(30),
        }
    }

    fn at(&self, t_ms: i64) -> DateTime<Utc> {
        self.t0_ms
            .and_then(|t0| DateTime::from_timestamp_millis(t0 + t_ms))
            .unwrap_or_else(|| self.t0 + Duration::milliseconds(t_ms))
    }

    /// The first whole millisecond of simulated time at or after `t`.
    fn ms_at_or_after(&self, t: DateTime<Utc>) -> i64 {
        match self.t0_ms {
            Some(t0) => {
                t.timestamp_millis() - t0 + i64::from(t.timestamp_subsec_nanos() % 1_000_000 != 0)
            }
            None => {
                let d = t - self.t0;
                d.num_milliseconds() + i64::from(d.subsec_nanos() % 1_000_000 != 0)
            }
        }
    }

    fn schedule(&mut self, t_ms: i64, ev: Ev) {
        self.seq += 1;
        self.events.push(Timed {
            t_ms,
            seq: self.seq,
            ev,
        });
    }

    /// Logins, logouts and breaks of every agent, drawn up front from each agent's stream.
    fn schedule_shifts(&mut self) {
        let a = self.sc.agents.clone();
        let day_ms = 24 * 3_600_000;
        for i in 0..self.agents.len() {
            let rng = &mut self.agents[i].rng;
            let stagger = |r: &mut Stream| ms(r.gen::<f64>() * a.stagger_s);
            let mut plan = Vec::new();
            match a.shift_hours {
                None => {
                    let login = stagger(rng);
                    plan.push((login, Ev::Login(i)));
                    if let Some(every) = a.break_every_h {
                        let mut t = login + ms(every * 3600.0);
                        while t < self.end_ms {
                            plan.push((
                                t + ms((rng.gen::<f64>() - 0.5) * 600.0),
                                Ev::BreakStart(i),
                            ));
                            t += ms(every * 3600.0);
                        }
                    }
                }
                Some(shift) => {
                    let mut day = 0;
                    while day * day_ms + ms(a.shift_start_h * 3600.0) < self.end_ms {
                        let start = day * day_ms + ms(a.shift_start_h * 3600.0);
                        let login = start + stagger(rng);
                        let logout = start + ms(shift * 3600.0) + stagger(rng);
                        plan.push((login, Ev::Login(i)));
                        plan.push((logout, Ev::Logout(i)));
                        if let Some(every) = a.break_every_h {
                            let mut t = login + ms(every * 3600.0);
                            while t + 900_000 < logout {
                                plan.push((
                                    t + ms((rng.gen::<f64>() - 0.5) * 600.0),
                                    Ev::BreakStart(i),
                                ));
                                t += ms(every * 3600.0);
                            }
                        }
                        day += 1;
                    }
                }
            }
            for (t, ev) in plan {
                self.schedule(t, ev);
            }
        }
    }

    /// Draws the fate of attempt `attempt` on record `record` dialing number slot `slot`.
    fn fate(&self, record: u64, attempt: u32, slot: u64, ring_timeout_s: u32) -> Fate {
        let c = &self.sc.callees;
        let mut r = rng::stream(self.seed, Topic::Attempt, record, u64::from(attempt));
        // Every draw is made, in this order, whatever the outcome (common random numbers);
        // a duration the outcome does not use is not computed (`Dist::draw`, `Dist::at`).
        let u: f64 = r.gen();
        let latency_ms = ms(self.sc.carrier.originate_latency.sample(&mut r));
        let answer_u = Dist::draw(&mut r);
        let fail_u = Dist::draw(&mut r);
        let amd_u: f64 = r.gen();
        let amd_delay_ms = ms(c.amd.delay.sample(&mut r));
        let patience_ms = ms(c.patience.sample(&mut r));
        let talk_u = Dist::draw(&mut r);
        let machine_talk_u = Dist::draw(&mut r);
        let dead = c.invalid > 0.0
            && rng::stream(self.seed, Topic::Number, record, slot).gen::<f64>() < c.invalid;
        let mut outcome = if dead {
            Outcome::Invalid
        } else {
            let mut acc = c.live;
            if u < acc {
                Outcome::Live
            } else if u < {
                acc += c.machine;
                acc
            } {
                Outcome::Machine
            } else if u < {
                acc += c.busy;
                acc
            } {
                Outcome::Busy
            } else if u < {
                acc += c.no_answer;
                acc
            } {
                Outcome::NoAnswer
            } else {
                Outcome::Congestion
            }
        };
        let ring_ms = i64::from(ring_timeout_s) * 1000;
        let mut resolve_ms = match outcome {
            Outcome::Live | Outcome::Machine => latency_ms + ms(c.time_to_answer.at(answer_u)),
            Outcome::NoAnswer if c.no_answer_rings_out => ring_ms,
            _ => latency_ms + ms(c.time_to_failure.at(fail_u)),
        };
        if resolve_ms >= ring_ms {
            // Nobody picks up after the ring timeout: the network gives up.
            outcome = if matches!(outcome, Outcome::Live | Outcome::Machine) {
                Outcome::NoAnswer
            } else {
                outcome
            };
            resolve_ms = ring_ms;
        }
        let amd_says_human = match outcome {
            Outcome::Machine => amd_u >= c.amd.machine_accuracy,
            _ => amd_u < c.amd.human_accuracy,
        };
        Fate {
            outcome,
            latency_ms: latency_ms.min(resolve_ms),
            resolve_ms,
            amd_says_human,
            amd_delay_ms,
            patience_ms,
            talk_ms: match outcome {
                Outcome::Machine => ms(c.machine_talk.at(machine_talk_u)),
                Outcome::Live => ms(c.talk.at(talk_u)),
                // Never linked: the call ends when it resolves.
                Outcome::Busy | Outcome::NoAnswer | Outcome::Congestion | Outcome::Invalid => 0,
            },
        }
    }

    // ----- agent bookkeeping -----

    fn set_agent(&mut self, i: usize, state: AState) {
        let old = self.agents[i].state;
        let staffed = |s: AState| {
            matches!(
                s,
                AState::Idle | AState::Reserved | AState::Talking | AState::Wrap
            )
        };
        let busy = |s: AState| matches!(s, AState::Talking | AState::Wrap);
        self.n_staffed += i64::from(staffed(state)) - i64::from(staffed(old));
        self.n_busy += i64::from(busy(state)) - i64::from(busy(old));
        self.n_talking += i64::from(state == AState::Talking) - i64::from(old == AState::Talking);
        if old == AState::Idle {
            self.idle.remove(&(self.agents[i].idle_since, i));
        }
        self.agents[i].state = state;
        if state == AState::Idle {
            self.agents[i].idle_since = self.now_ms;
            self.idle.insert((self.now_ms, i));
        }
    }

    fn agent_input(&mut self, i: usize, event: AgentEvent) {
        self.inputs.push_back(InputKind::Agent {
            agent: self.agents[i].id.clone(),
            event,
        });
    }

    /// An agent became idle: it takes the longest-waiting live answer, if any.
    fn agent_idle(&mut self, i: usize) {
        self.set_agent(i, AState::Idle);
        if let Some(call) = self.queue.pop_front() {
            self.link(call, i);
        }
    }

    /// The agent's call (and wrap-up) is over: what it does next, as the engine will apply it.
    fn agent_done(&mut self, i: usize) {
        match self.agents[i].after_call.take() {
            Some(AfterCall::Break) => {
                self.set_agent(i, AState::Paused);
                let len = ms(self.sc.agents.break_length.sample(&mut self.agents[i].rng));
                self.schedule(self.now_ms + len, Ev::BreakEnd(i));
            }
            Some(AfterCall::Logout) => self.set_agent(i, AState::Offline),
            None => self.agent_idle(i),
        }
    }

    // ----- calls -----

    fn originate(&mut self, intent: &OriginateIntent) {
        self.stats.dials += 1;
        let spool = self.driver.spool_mut();
        spool.offered.remove(&intent.record.0);
        let rec = spool.list.in_flight(&intent.record);
        let attempt = rec.map_or(1, |(attempts, _)| attempts);
        let slot = rec.map_or(0, |(_, current)| current as u64);
        let fate = self.fate(intent.record.0, attempt, slot, intent.ring_timeout_s);
        let reserved = intent
            .agent
            .as_ref()
            .and_then(|a| self.agent_index.get(a).copied());
        if let Some(i) = reserved {
            self.set_agent(i, AState::Reserved);
        }
        self.calls.insert(
            intent.call,
            SimCall {
                fate,
                stage: Stage::Dialing,
                reserved,
                answered_ms: 0,
                live: false,
                amd: intent.amd,
            },
        );
        self.schedule(self.now_ms + fate.latency_ms, Ev::Accepted(intent.call));
        self.schedule(self.now_ms + fate.resolve_ms, Ev::Resolve(intent.call));
    }

    fn call_input(&mut self, call: CallId, event: CallEvent) {
        self.inputs.push_back(InputKind::Call { call, event });
    }

    /// Ends a call the simulator knows; frees its agent (to wrap-up) or its reservation.
    fn end_call(&mut self, call: CallId, failure: Option<FailureClass>) {
        let Some(c) = self.calls.remove(&call) else {
            return;
        };
        self.call_input(
            call,
            CallEvent::HungUp {
                failure,
                ended_at: None,
            },
        );
        if c.stage == Stage::Waiting {
            self.queue.retain(|q| *q != call);
        }
        if c.live && !matches!(c.stage, Stage::Talking(_)) {
            self.stats.abandoned_seen += 1;
        }
        match c.stage {
            Stage::Talking(i) => {
                self.stats.talk_ms += i128::from(self.now_ms - c.answered_ms);
                self.set_agent(i, AState::Wrap);
                let wrap = ms(self.sc.agents.wrap_up.sample(&mut self.agents[i].rng));
                self.schedule(self.now_ms + wrap, Ev::WrapEnd(i));
            }
            _ => {
                if let Some(i) = c.reserved {
                    if self.agents[i].state == AState::Reserved {
                        // The engine releases the reservation (applying any pending pause).
                        self.agent_done(i);
                    }
                }
            }
        }
    }

    fn link(&mut self, call: CallId, i: usize) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let wait = self.now_ms - c.answered_ms;
        if c.live && wait > self.threshold_ms {
            self.stats.abandoned_seen += 1;
        }
        c.stage = Stage::Talking(i);
        c.answered_ms = self.now_ms; // from now on: start of talk
        let talk = c.fate.talk_ms;
        self.stats.connected += 1;
        self.stats.wait_ms += wait;
        self.set_agent(i, AState::Talking);
        self.call_input(
            call,
            CallEvent::Linked {
                agent: self.agents[i].id.clone(),
            },
        );
        self.schedule(self.now_ms + talk, Ev::TalkEnd(call));
    }

    /// An answer is reported to the engine with the kind AMD (or its absence) gives it.
    fn report_answer(&mut self, call: CallId, kind: AnswerKind) {
        let machine_policy = self.sc.campaign.machine;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.answered_ms = self.now_ms;
        let to_agent = kind != AnswerKind::Machine || machine_policy == MachinePolicy::ToAgent;
        c.live = kind != AnswerKind::Machine;
        if c.live {
            self.stats.live += 1;
        }
        c.stage = if to_agent {
            Stage::Waiting
        } else {
            Stage::Machine
        };
        let patience = c.fate.patience_ms;
        let reserved = c.reserved;
        self.call_input(call, CallEvent::Answered { kind });
        if !to_agent {
            return;
        }
        if let Some(i) = reserved {
            self.link(call, i);
        } else if let Some(&(_, i)) = self.idle.first() {
            self.link(call, i);
        } else if patience == 0 {
            self.end_call(call, None);
        } else {
            self.queue.push_back(call);
            self.schedule(self.now_ms + patience, Ev::GiveUp(call));
        }
    }

    fn handle_event(&mut self, ev: Ev) {
        match ev {
            Ev::Accepted(call) => {
                if self.calls.contains_key(&call) {
                    self.call_input(call, CallEvent::OriginateAccepted);
                    self.call_input(call, CallEvent::Ringing);
                }
            }
            Ev::Resolve(call) => {
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.stage != Stage::Dialing {
                    return;
                }
                let f = c.fate;
                match f.outcome {
                    Outcome::Live | Outcome::Machine => {
                        if self.sc.callees.amd.enabled && c.amd {
                            c.stage = Stage::Detecting;
                            self.schedule(self.now_ms + f.amd_delay_ms, Ev::Verdict(call));
                        } else {
                            self.report_answer(call, AnswerKind::Unknown);
                        }
                    }
                    Outcome::Busy => self.end_call(call, Some(FailureClass::Busy)),
                    Outcome::NoAnswer => self.end_call(call, Some(FailureClass::NoAnswer)),
                    Outcome::Congestion => self.end_call(call, Some(FailureClass::Congestion)),
                    Outcome::Invalid => self.end_call(call, Some(FailureClass::InvalidNumber)),
                }
            }
            Ev::Verdict(call) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.stage != Stage::Detecting {
                    return;
                }
                let f = c.fate;
                if f.amd_says_human {
                    self.report_answer(call, AnswerKind::Human);
                } else {
                    if f.outcome == Outcome::Live {
                        self.stats.amd_false_positives += 1;
                        self.stats.amd_false_positive_at.push(self.now_ms);
                    } else {
                        self.stats.machines_detected += 1;
                    }
                    self.report_answer(call, AnswerKind::Machine);
                }
            }
            Ev::GiveUp(call) => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.stage == Stage::Waiting)
                {
                    self.end_call(call, None);
                }
            }
            Ev::TalkEnd(call) => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| matches!(c.stage, Stage::Talking(_)))
                {
                    self.end_call(call, None);
                }
            }
            Ev::WrapEnd(i) => {
                if self.agents[i].state == AState::Wrap {
                    self.agent_input(i, AgentEvent::Ready);
                    self.agent_done(i);
                }
            }
            Ev::Login(i) => {
                if self.agents[i].state == AState::Offline {
                    self.agents[i].after_call = None;
                    self.inputs.push_back(InputKind::Agent {
                        agent: self.agents[i].id.clone(),
                        event: AgentEvent::LoggedIn {
                            campaigns: vec![self.cid.clone()],
                            inactivity_timeout_s: None,
                        },
                    });
                    self.agent_idle(i);
                }
            }
            Ev::Logout(i) => match self.agents[i].state {
                // The engine may keep an idle agent while dials it covers are in flight; it
                // says when the agent has gone (`Event::AgentAway`).
                AState::Idle => {
                    self.agent_input(i, AgentEvent::LoggedOut);
                    self.agents[i].after_call = Some(AfterCall::Logout);
                }
                AState::Paused => {
                    self.agent_input(i, AgentEvent::LoggedOut);
                    self.set_agent(i, AState::Offline);
                }
                AState::Reserved | AState::Talking | AState::Wrap => {
                    self.agent_input(i, AgentEvent::LogoutAfterCall);
                    self.agents[i].after_call = Some(AfterCall::Logout);
                }
                AState::Offline => {}
            },
            Ev::BreakStart(i) => match self.agents[i].state {
                AState::Idle => {
                    self.agent_input(
                        i,
                        AgentEvent::Paused {
                            reason: "break".into(),
                        },
                    );
                    // Takes calls until the engine lets it go (`Event::AgentAway`).
                    self.agents[i].after_call = Some(AfterCall::Break);
                }
                AState::Reserved | AState::Talking | AState::Wrap => {
                    if self.agents[i].after_call.is_none() {
                        self.agent_input(
                            i,
                            AgentEvent::PauseAfterCall {
                                reason: "break".into(),
                            },
                        );
                        self.agents[i].after_call = Some(AfterCall::Break);
                    }
                }
                AState::Paused | AState::Offline => {}
            },
            Ev::BreakEnd(i) => {
                if self.agents[i].state == AState::Paused {
                    self.agent_input(i, AgentEvent::Ready);
                    self.agent_idle(i);
                }
            }
        }
    }

    /// Carries out what the driver asks, in the engine's order (the store updates are
    /// already persisted into the simulated spool); returns the engine's next wake-up.
    fn drain(&mut self) -> Option<DateTime<Utc>> {
        loop {
            let Some(action) = self.driver.poll_action() else {
                return self.driver.next_wake();
            };
            match action {
                Action::Originate(intent) => self.originate(&intent),
                // Machines hung up by policy, or a supervisor's hang-up: the call ends now.
                Action::Hangup(call) => self.end_call(call, None),
                // Simulated agents never put callers on hold.
                Action::Hold { .. } => {}
                Action::Event(Event::AgentAway { agent, .. }) => {
                    if let Some(&i) = self.agent_index.get(&agent) {
                        if self.agents[i].state == AState::Idle
                            && self.agents[i].after_call.is_some()
                        {
                            self.agent_done(i);
                        }
                    }
                }
                Action::Event(_) => {}
            }
        }
    }

    fn advance(&mut self, t_ms: i64) {
        self.sample_until(t_ms);
        let dt = i128::from(t_ms - self.now_ms);
        self.stats.staffed_ms += dt * i128::from(self.n_staffed);
        self.stats.busy_ms += dt * i128::from(self.n_busy);
        self.now_ms = t_ms;
        self.now_at = None;
    }

    /// Runs to the end of the scenario; `progress` is told the fraction done now and then.
    pub fn run(mut self, progress: &mut dyn FnMut(f64)) -> Report {
        self.run_loop(progress);
        self.report()
    }

    /// Also samples the floor every `step_s` seconds of simulated time (see
    /// [`Simulator::run_traced`]). Sampling only reads: the report is the same.
    pub fn with_timeline(mut self, step_s: f64) -> Simulator {
        let step = ms(step_s).max(1000);
        self.timeline = Some((
            step,
            0,
            Timeline {
                step_s: step as f64 / 1000.0,
                samples: Vec::new(),
            },
        ));
        self
    }

    /// Like [`Simulator::run`], also returning the timeline ([`Simulator::with_timeline`];
    /// empty without it).
    pub fn run_traced(mut self, progress: &mut dyn FnMut(f64)) -> (Report, Timeline) {
        self.run_loop(progress);
        // The instant the run ends is sampled too.
        if let Some((_, next, tl)) = &mut self.timeline {
            if tl
                .samples
                .last()
                .is_none_or(|s| s.t_s * 1000.0 < self.end_ms as f64)
            {
                *next = (*next).min(self.end_ms);
            }
        }
        self.sample_until(self.end_ms);
        let timeline = self.timeline.take().map(|(_, _, t)| t).unwrap_or(Timeline {
            step_s: 0.0,
            samples: Vec::new(),
        });
        (self.report(), timeline)
    }

    /// Samples every step up to and including `t_ms`; the state is the one since `now_ms`.
    fn sample_until(&mut self, t_ms: i64) {
        let Some((step, next, _)) = self.timeline else {
            return;
        };
        if next > t_ms {
            return;
        }
        let mut agents = [0u32; 6];
        for a in &self.agents {
            agents[a.state as usize] += 1;
        }
        let (mut dialing, mut talking) = (0u32, 0u32);
        for c in self.calls.values() {
            match c.stage {
                Stage::Talking(_) => talking += 1,
                Stage::Waiting => {}
                Stage::Dialing | Stage::Detecting | Stage::Machine => dialing += 1,
            }
        }
        let (period_day, period_live, period_abandoned) = self
            .driver
            .engine()
            .abandon_periods(&self.cid)
            .last()
            .map_or((0, 0, 0), |(d, l, a)| {
                ((*d - chrono::NaiveDate::default()).num_days(), *l, *a)
            });
        let mut t = next;
        let mut out = Vec::new();
        while t <= t_ms {
            let dt = (t - self.now_ms) as f64;
            out.push(Sample {
                t_s: t as f64 / 1000.0,
                agents_offline: agents[AState::Offline as usize],
                agents_idle: agents[AState::Idle as usize],
                agents_reserved: agents[AState::Reserved as usize],
                agents_talking: agents[AState::Talking as usize],
                agents_wrap_up: agents[AState::Wrap as usize],
                agents_paused: agents[AState::Paused as usize],
                lines_dialing: dialing,
                lines_waiting: self.queue.len() as u32,
                lines_talking: talking,
                staffed_ms: self.stats.staffed_ms as f64 + dt * self.n_staffed as f64,
                busy_ms: self.stats.busy_ms as f64 + dt * self.n_busy as f64,
                period_day,
                period_live,
                period_abandoned,
            });
            t += step;
        }
        if let Some((_, next, tl)) = &mut self.timeline {
            *next = t;
            tl.samples.extend(out);
        }
    }

    fn run_loop(&mut self, progress: &mut dyn FnMut(f64)) {
        let mut next_progress = 0;
        let step = (self.end_ms / 200).max(1);
        loop {
            let wake = self.drain();
            // The store answers a record request when the engine's hopper is nearly dry (or
            // the request is 30 s old), with a page sized to the floor, like a store paging a
            // slow query: answering every request at once with 4 × lines records would make
            // the engine copy its whole hopper on every dial.
            let answer = self.driver.has_deferred_requests() && {
                let agents = self.sc.agents.count as usize;
                let spool = self.driver.spool();
                spool.offered.len() < agents / 2 + 10
                    || spool.asked.is_some_and(|asked| self.request_stale(asked))
            };
            if answer || !self.inputs.is_empty() {
                // Everything that happened at this instant reaches the engine as one burst, as
                // events read off one socket would: one dialing decision, with all of it known.
                let at = self.now();
                let inputs = self.inputs.drain(..);
                let result = if answer {
                    self.driver.handle_with_deferred(at, inputs)
                } else {
                    self.driver.handle(at, inputs)
                };
                result.unwrap_or_else(|e| driver_failed(self.seed, e));
                continue;
            }
            let ev_t = self.events.peek().map(|e| e.t_ms);
            // The engine has already acted at `now`: its next wake-up is strictly later.
            let eng_t = wake.map(|w| self.ms_at_or_after(w).max(self.now_ms + 1));
            let next = match (ev_t, eng_t) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => self.end_ms,
            };
            if next >= self.end_ms {
                self.advance(self.end_ms);
                break;
            }
            self.advance(next);
            if next >= next_progress {
                progress(next as f64 / self.end_ms as f64);
                next_progress = next + step;
            }
            if ev_t == Some(next) {
                while self.events.peek().is_some_and(|e| e.t_ms == next) {
                    let ev = self.events.pop().expect("peeked above").ev;
                    self.handle_event(ev);
                }
            } else {
                self.inputs.push_back(InputKind::Tick);
            }
        }
        progress(1.0);
    }

    fn report(mut self) -> Report {
        // Talk still under way at the end counts up to the end.
        for c in self.calls.values() {
            if let Stage::Talking(_) = c.stage {
                self.stats.talk_ms += i128::from(self.now_ms - c.answered_ms);
            }
        }
        let mut books = self.driver.engine().abandon_periods(&self.cid);
        if self.sc.campaign.count_amd_false_positives {
            // Each person AMD hung up on is a live answer abandoned, in the period of the answer.
            if let Ok(tz) = self.sc.campaign.time_zone.parse::<chrono_tz::Tz>() {
                let days = self
                    .stats
                    .amd_false_positive_at
                    .iter()
                    .map(|&t| self.at(t).with_timezone(&tz).date_naive());
                add_false_positives(&mut books, days);
            }
        }
        let periods: Vec<PeriodReport> = books
            .into_iter()
            .map(|(start, live, ab)| PeriodReport {
                start: start.to_string(),
                live_answers: live,
                abandoned: ab,
                rate: if live == 0 {
                    if ab > 0 {
                        1.0
                    } else {
                        0.0
                    }
                } else {
                    ab as f64 / live as f64
                },
            })
            .collect();
        let live: u64 = periods.iter().map(|p| p.live_answers).sum();
        let abandoned: u64 = periods.iter().map(|p| p.abandoned).sum();
        let cap = self.sc.campaign.abandon_cap;
        let max_period_rate = periods.iter().map(|p| p.rate).fold(0.0, f64::max);
        let hours = self.sc.hours;
        let staffed_h = self.stats.staffed_ms as f64 / 3.6e6;
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Report {
            scenario: self.sc.name.clone(),
            pacer: self.pacer_name.clone(),
            seed: self.seed,
            hours,
            agents: self.sc.agents.count,
            guard: self.guard,
            dials: self.stats.dials,
            live_answers: live,
            abandoned,
            abandonment_rate: ratio(abandoned as f64, live as f64),
            cap,
            max_period_rate,
            violating: periods
                .iter()
                .any(|p| p.abandoned as f64 > cap * p.live_answers as f64 + 1e-9),
            occupancy: ratio(self.stats.busy_ms as f64, self.stats.staffed_ms as f64),
            talk_minutes_per_agent_hour: ratio(self.stats.talk_ms as f64 / 60_000.0, staffed_h),
            mean_wait_s: ratio(
                self.stats.wait_ms as f64 / 1000.0,
                self.stats.connected as f64,
            ),
            dials_per_hour: self.stats.dials as f64 / hours,
            connected_per_hour: self.stats.connected as f64 / hours,
            connected: self.stats.connected,
            machines_detected: self.stats.machines_detected,
            amd_false_positives: self.stats.amd_false_positives,
            records_finished: self.driver.spool().list.finished,
            staffed_agent_hours: staffed_h,
            periods,
        }
    }

    /// Like [`Simulator::run`], also returning the abandons and live answers the simulator
    /// itself saw by the engine's rule: a cross-check of the engine's ledger (tests).
    pub fn run_with_crosscheck(mut self) -> (Report, u64, u64) {
        self.run_loop(&mut |_| {});
        let (seen, live) = (self.stats.abandoned_seen, self.stats.live);
        (self.report(), seen, live)
    }
}

/// The simulated spool as the driver sees it: the in-memory list, paged like a slow store.
struct SimSpool {
    list: Spool,
    /// Records offered to the engine and neither dialed nor sent back since: what its hopper
    /// still holds, as far as the store can tell.
    offered: FxHashSet<u64>,
    /// When the unanswered record request was made.
    asked: Option<DateTime<Utc>>,
    /// Most records offered at once.
    page: usize,
}

/// The simulated spool never fails, so a driver error is an engine bug (a record-request loop
/// or an unbounded backlog): the run cannot go on, and the seed reproduces it.
fn driver_failed(seed: u64, e: dialer_runtime::DriverError<std::convert::Infallible>) -> ! {
    panic!("seed {seed}: the driver stopped: {e}")
}

impl dialer_runtime::Spool for SimSpool {
    type Error = std::convert::Infallible;

    fn persist(&mut self, update: StoreUpdate) -> Result<(), Self::Error> {
        if let StoreUpdate::Record(rec) = update {
            self.offered.remove(&rec.id.0);
            self.list.update(rec);
        }
        Ok(())
    }

    fn ready_set(
        &mut self,
        _campaign: &CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<std::sync::Arc<SpoolRecord>>, Self::Error> {
        self.asked = None;
        let records = self.list.due(now, (limit as usize).min(self.page));
        self.offered.clear();
        self.offered.extend(records.iter().map(|r| r.id.0));
        Ok(records)
    }

    fn defer_records(&mut self, _campaign: &CampaignId, now: DateTime<Utc>, _limit: u32) -> bool {
        self.asked = Some(now);
        true
    }
}

#[cfg(test)]
mod false_positive_tests {
    use super::add_false_positives;
    use chrono::NaiveDate;

    #[test]
    fn a_false_positive_is_a_live_answer_abandoned_in_the_period_of_its_day() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 6, n).unwrap();
        let mut books = vec![(d(1), 10, 0), (d(3), 5, 1)];
        add_false_positives(&mut books, [d(1), d(2), d(3), d(4)].into_iter());
        assert_eq!(books, vec![(d(1), 12, 2), (d(3), 7, 3)]);
        let mut books = vec![(d(3), 5, 1)];
        add_false_positives(&mut books, std::iter::once(d(1)));
        assert_eq!(
            books,
            vec![(d(3), 6, 2)],
            "a day before every period goes to the first"
        );
    }
}
