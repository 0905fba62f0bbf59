//! A simulated telephone system for the runtime: callees, a queue of agents and PBX faults,
//! sans-IO. It takes the runtime's [`TelephonyCommand`]s and gives back bursts of
//! [`TelephonyEvent`]s at the simulated times they happen; [`crate::live::SimTelephony`] runs it
//! in real (or accelerated) time behind the `Telephony` seam, and tests step it directly.
//!
//! Unlike [`crate::sim::Simulator`], which plays a whole day for pacing measurements, the world
//! is driven from outside: the dialer decides, the world answers like a PBX with a queue would.
//! Every random quantity comes from a stream named by (seed, call id), so a seed reproduces a
//! run's callees.

use crate::rng::{self, Topic};
use crate::scenario::{AgentSpec, CalleeSpec, CarrierSpec};
use chrono::{DateTime, Duration, Utc};
use dialer_core::{
    AgentEvent, AgentId, AnswerKind, CallEvent, CallId, CampaignId, FailureClass, InputKind,
    PbxFault, RecordId, RefusalCause,
};
use dialer_runtime::telephony::{AgentControl, Health, TelephonyCommand, TelephonyEvent};
use rand::Rng;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

/// Faults the simulated PBX injects.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Probability that the PBX refuses an Originate itself (not the callee's fault).
    pub refuse: f64,
    /// Probability that a placed call's end is never reported live (events lost): it is
    /// reported `Lost` after `lost_after_s`.
    pub lose: f64,
    /// Seconds after which a lost call is reported lost (a reconnect's reconciliation).
    pub lost_after_s: f64,
    /// PBX outages: (seconds after the start, length in seconds). While down, every Originate
    /// is refused as unreachable and no call progresses.
    pub outages: Vec<(f64, f64)>,
}

/// What the world needs to know to play a floor and its callees.
#[derive(Debug, Clone)]
pub struct WorldSpec {
    pub callees: CalleeSpec,
    pub agents: AgentSpec,
    pub carrier: CarrierSpec,
    pub faults: FaultSpec,
    /// Campaigns the agents log in to.
    pub campaigns: Vec<CampaignId>,
    /// Agent ids are `{agent_prefix}{n}`, n from 1.
    pub agent_prefix: String,
    pub seed: u64,
    /// What the agents do on their own (log in, breaks, log out). Empty: every agent logs in
    /// at the start and stays. An agent whose first move is [`FloorMove::LogIn`] starts out.
    pub floor: Vec<FloorPlan>,
}

/// One thing an agent does at a moment of the run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloorPlan {
    /// Seconds after the world's start.
    pub at_s: f64,
    /// Index of the agent (0-based).
    pub agent: usize,
    pub mv: FloorMove,
}

/// What an agent asks for. A pause or a logout is asked of the dialer (the agent's desktop),
/// which says when it takes effect ([`dialer_core::Event::AgentAway`]); the dialer's owner
/// then tells the PBX ([`AgentControl::Pause`] / [`AgentControl::Leave`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "move", rename_all = "snake_case")]
pub enum FloorMove {
    LogIn,
    Break { length_s: f64 },
    LogOut,
}

/// What really happened on the PBX, for an oracle that must not trust the dialer's books.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "truth", rename_all = "snake_case")]
pub enum Truth {
    /// The call went out to the network.
    Placed {
        at: DateTime<Utc>,
        call: CallId,
        campaign: CampaignId,
        record: RecordId,
        /// E.164 of the number dialed.
        number: String,
    },
    /// The PBX refused the Originate: nobody was called.
    Refused { at: DateTime<Utc>, call: CallId },
    /// The callee answered; `human` is the truth, `said_machine` the AMD verdict.
    Answered {
        at: DateTime<Utc>,
        call: CallId,
        human: bool,
        said_machine: bool,
    },
    /// An agent took the call.
    Linked { at: DateTime<Utc>, call: CallId },
    /// The call ended on the PBX (whether or not the dialer heard of it).
    Ended { at: DateTime<Utc>, call: CallId },
    /// An agent's phase on the PBX changed (idle, talking, wrap_up, paused, out).
    Agent {
        at: DateTime<Utc>,
        agent: AgentId,
        phase: String,
    },
}

impl Truth {
    /// When it happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Truth::Placed { at, .. }
            | Truth::Refused { at, .. }
            | Truth::Answered { at, .. }
            | Truth::Linked { at, .. }
            | Truth::Ended { at, .. }
            | Truth::Agent { at, .. } => *at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AgentPhase {
    Idle,
    Talking(CallId),
    WrapUp,
    Paused,
    Out,
}

#[derive(Debug, Clone)]
struct WAgent {
    id: AgentId,
    phase: AgentPhase,
    /// Idle since (ms), for longest-idle-first distribution like a queue's strategy.
    idle_since_ms: i64,
    /// A pause or logout asked during a call, applied when it ends.
    after_call: Option<AgentControl>,
    /// Length of the break the agent asked for, once the pause takes effect.
    break_ms: Option<i64>,
    /// Whether the running dialer process knows this agent (false after a restart until the
    /// agent is announced again).
    known: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Live,
    Machine,
    Busy,
    NoAnswer,
    Congestion,
    Invalid,
}

#[derive(Debug, Clone)]
struct WCall {
    fate: Fate,
    /// Reserved for this agent (owner, preview, same-agent callback).
    agent: Option<AgentId>,
    stage: Stage,
    talk_ms: i64,
    patience_ms: i64,
    lost: bool,
    /// The dialer allowed AMD on this call (the dialplan runs it only if the PBX has it on).
    amd: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Dialing,
    Waiting,
    Talking(usize),
    /// A machine reported; waiting for the dialer to hang up.
    Machine,
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Accepted(CallId),
    Answer(CallId),
    Fail(CallId),
    Patience(CallId),
    TalkEnd(CallId),
    WrapEnd(usize),
    Lost(CallId),
    OutageStart(usize),
    OutageEnd(usize),
    Floor(usize),
    BreakEnd(usize),
    /// A machine's message ends; the PBX hangs up if the dialer has not.
    MachineEnd(CallId),
}

/// The simulated PBX, callees and agents.
#[derive(Debug)]
pub struct SimWorld {
    spec: WorldSpec,
    start: DateTime<Utc>,
    agents: Vec<WAgent>,
    calls: BTreeMap<CallId, WCall>,
    /// Live callers waiting for an agent, in arrival order.
    waiting: VecDeque<CallId>,
    timeline: BinaryHeap<Reverse<(i64, u64, Ev)>>,
    seq: u64,
    out: Vec<TelephonyEvent>,
    down: bool,
    logged_in: bool,
    truth: Vec<Truth>,
    /// The agents' phases last written to the truth.
    phases_seen: Vec<AgentPhase>,
}

impl SimWorld {
    /// A world starting at `start`; the agents log in at once.
    pub fn new(spec: WorldSpec, start: DateTime<Utc>) -> SimWorld {
        let agents = (1..=spec.agents.count)
            .map(|n| WAgent {
                id: AgentId::from(format!("{}{n}", spec.agent_prefix)),
                phase: AgentPhase::Out,
                idle_since_ms: 0,
                after_call: None,
                break_ms: None,
                known: false,
            })
            .collect();
        let mut w = SimWorld {
            spec,
            start,
            agents,
            calls: BTreeMap::new(),
            waiting: VecDeque::new(),
            timeline: BinaryHeap::new(),
            seq: 0,
            out: Vec::new(),
            down: false,
            logged_in: false,
            truth: Vec::new(),
            phases_seen: Vec::new(),
        };
        w.phases_seen = w.agents.iter().map(|a| a.phase).collect();
        for (i, (at_s, _)) in w.spec.faults.outages.clone().iter().enumerate() {
            w.schedule(ms(*at_s), Ev::OutageStart(i));
        }
        for (k, plan) in w.spec.floor.clone().iter().enumerate() {
            w.schedule(ms(plan.at_s), Ev::Floor(k));
        }
        w
    }

    /// What really happened so far, in order.
    pub fn truth(&self) -> &[Truth] {
        &self.truth
    }

    /// Changes the fault rates from now on (a swarm's liveness phase turns them off).
    /// Outages already scheduled still happen.
    pub fn set_fault_rates(&mut self, refuse: f64, lose: f64) {
        self.spec.faults.refuse = refuse;
        self.spec.faults.lose = lose;
    }

    /// Whether the PBX is down now.
    pub fn is_down(&self) -> bool {
        self.down
    }

    /// The dialer process was restarted: it knows no agent. Idle agents are announced at
    /// the next poll; the others when they become ready again (after their call, wrap-up
    /// or break), as an agent desktop reconnecting would.
    pub fn dialer_restarted(&mut self) {
        for i in 0..self.agents.len() {
            self.agents[i].known = false;
            if self.agents[i].phase == AgentPhase::Idle {
                self.announce(i);
            }
        }
    }

    /// Tells the dialer the agent is ready: `Ready` if it knows the agent, else a login.
    fn announce(&mut self, i: usize) {
        if self.agents[i].known {
            self.agent_event(i, AgentEvent::Ready);
        } else {
            self.agents[i].known = true;
            let campaigns = self.spec.campaigns.clone();
            self.agent_event(
                i,
                AgentEvent::LoggedIn {
                    campaigns,
                    inactivity_timeout_s: None,
                },
            );
        }
    }

    /// Whether an agent is free on the PBX and waiting for calls, by id (liveness checks).
    pub fn agent_idle(&self, agent: &AgentId) -> bool {
        self.agents
            .iter()
            .any(|a| &a.id == agent && a.phase == AgentPhase::Idle)
    }

    fn starts_out(&self, i: usize) -> bool {
        self.spec
            .floor
            .iter()
            .find(|p| p.agent == i)
            .is_some_and(|p| p.mv == FloorMove::LogIn)
    }

    /// The agents' ids.
    pub fn agent_ids(&self) -> Vec<AgentId> {
        self.agents.iter().map(|a| a.id.clone()).collect()
    }

    /// Calls the PBX holds now (the true line count).
    pub fn lines_in_use(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.stage != Stage::Ended)
            .count()
    }

    fn t_ms(&self, now: DateTime<Utc>) -> i64 {
        (now - self.start).num_milliseconds().max(0)
    }

    fn at(&self, t_ms: i64) -> DateTime<Utc> {
        self.start + Duration::milliseconds(t_ms)
    }

    fn schedule(&mut self, t_ms: i64, ev: Ev) {
        self.seq += 1;
        self.timeline.push(Reverse((t_ms, self.seq, ev)));
    }

    /// When the next thing happens by itself.
    pub fn next_at(&self) -> Option<DateTime<Utc>> {
        if !self.logged_in || !self.out.is_empty() {
            return Some(self.start);
        }
        self.timeline.peek().map(|Reverse((t, _, _))| self.at(*t))
    }

    fn input(&mut self, kind: InputKind) {
        self.out.push(TelephonyEvent::Input(kind));
    }

    fn call_event(&mut self, call: CallId, event: CallEvent) {
        self.input(InputKind::Call { call, event });
    }

    fn agent_event(&mut self, i: usize, event: AgentEvent) {
        let agent = self.agents[i].id.clone();
        self.input(InputKind::Agent { agent, event });
    }

    /// Writes agents' phase changes to the truth.
    fn note_phases(&mut self, t: i64) {
        for i in 0..self.agents.len() {
            let phase = self.agents[i].phase;
            if self.phases_seen[i] != phase {
                self.phases_seen[i] = phase;
                let name = match phase {
                    AgentPhase::Idle => "idle".to_owned(),
                    AgentPhase::Talking(c) => format!("talking {c}"),
                    AgentPhase::WrapUp => "wrap_up".to_owned(),
                    AgentPhase::Paused => "paused".to_owned(),
                    AgentPhase::Out => "out".to_owned(),
                };
                let at = self.at(t);
                let agent = self.agents[i].id.clone();
                self.truth.push(Truth::Agent {
                    at,
                    agent,
                    phase: name,
                });
            }
        }
    }

    /// Carries out a command at `now`.
    pub fn command(&mut self, now: DateTime<Utc>, cmd: &TelephonyCommand) {
        let t = self.t_ms(now);
        self.command_at(now, t, cmd);
        self.note_phases(t);
    }

    fn command_at(&mut self, now: DateTime<Utc>, t: i64, cmd: &TelephonyCommand) {
        match cmd {
            TelephonyCommand::Originate(intent) => {
                let call = intent.call;
                if self.down || self.calls.contains_key(&call) {
                    self.truth.push(Truth::Refused { at: now, call });
                    self.call_event(
                        call,
                        CallEvent::OriginateRefused {
                            cause: RefusalCause::Pbx {
                                fault: PbxFault::Unreachable,
                                detail: "the simulated PBX is down".into(),
                            },
                        },
                    );
                    return;
                }
                let mut r = rng::stream(self.spec.seed, Topic::Attempt, call.0, 0);
                if r.gen::<f64>() < self.spec.faults.refuse {
                    self.truth.push(Truth::Refused { at: now, call });
                    self.call_event(
                        call,
                        CallEvent::OriginateRefused {
                            cause: RefusalCause::Pbx {
                                fault: PbxFault::RequestRefused,
                                detail: "the simulated PBX refused the originate".into(),
                            },
                        },
                    );
                    return;
                }
                let c = &self.spec.callees;
                let u: f64 = r.gen();
                let fate = [
                    (c.live, Fate::Live),
                    (c.machine, Fate::Machine),
                    (c.busy, Fate::Busy),
                    (c.no_answer, Fate::NoAnswer),
                    (c.congestion, Fate::Congestion),
                ]
                .iter()
                .scan(0.0, |acc, (p, f)| {
                    *acc += p;
                    Some((*acc, *f))
                })
                .find(|(acc, _)| u < *acc)
                .map_or(Fate::NoAnswer, |(_, f)| f);
                let fate = if r.gen::<f64>() < c.invalid {
                    Fate::Invalid
                } else {
                    fate
                };
                let latency = ms(self.spec.carrier.originate_latency.sample(&mut r));
                let ring_timeout_ms = i64::from(intent.ring_timeout_s) * 1000;
                let answer = ms(c.time_to_answer.sample(&mut r));
                let fail = ms(c.time_to_failure.sample(&mut r));
                let lost = r.gen::<f64>() < self.spec.faults.lose;
                let call_state = WCall {
                    fate,
                    agent: intent.agent.clone(),
                    stage: Stage::Dialing,
                    talk_ms: ms(c.talk.sample(&mut r)).max(1000),
                    patience_ms: ms(c.patience.sample(&mut r)),
                    lost,
                    amd: intent.amd,
                };
                self.calls.insert(call, call_state);
                self.truth.push(Truth::Placed {
                    at: now,
                    call,
                    campaign: intent.campaign.clone(),
                    record: intent.record.clone(),
                    number: intent.number.e164().to_owned(),
                });
                self.schedule(t + latency, Ev::Accepted(call));
                match fate {
                    Fate::Live | Fate::Machine if answer < ring_timeout_ms => {
                        self.schedule(t + latency + answer, Ev::Answer(call))
                    }
                    Fate::Live | Fate::Machine | Fate::NoAnswer => {
                        self.schedule(t + latency + ring_timeout_ms, Ev::Fail(call))
                    }
                    _ => self.schedule(t + latency + fail.min(ring_timeout_ms), Ev::Fail(call)),
                }
                if lost {
                    let after = ms(self.spec.faults.lost_after_s.max(1.0));
                    self.schedule(t + latency + after, Ev::Lost(call));
                }
            }
            TelephonyCommand::Hangup(call) => self.hang_up(t, *call),
            // The simulated PBX holds and resumes at once, and only a call in conversation.
            TelephonyCommand::Hold { call, hold } => {
                if matches!(
                    self.calls.get(call).map(|c| c.stage),
                    Some(Stage::Talking(_))
                ) {
                    let event = if *hold {
                        CallEvent::Held
                    } else {
                        CallEvent::Resumed
                    };
                    self.call_event(*call, event);
                }
            }
            TelephonyCommand::Agent { agent, control } => {
                let Some(i) = self.agents.iter().position(|a| &a.id == agent) else {
                    return;
                };
                match (self.agents[i].phase, control) {
                    (AgentPhase::Talking(_) | AgentPhase::WrapUp, c) => {
                        self.agents[i].after_call = Some(c.clone());
                    }
                    (AgentPhase::Out, AgentControl::Pause { .. }) => {}
                    (_, AgentControl::Pause { .. }) => self.pause(t, i),
                    (_, AgentControl::Leave { .. }) => self.agents[i].phase = AgentPhase::Out,
                    (_, AgentControl::Unpause | AgentControl::Join { .. }) => {
                        self.agents[i].phase = AgentPhase::Idle;
                        self.agents[i].idle_since_ms = t;
                        self.offer(t);
                    }
                }
            }
        }
    }

    fn hang_up(&mut self, t: i64, call: CallId) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        match c.stage {
            Stage::Ended => {}
            Stage::Dialing => self.finish(t, call, Some(FailureClass::NoAnswer)),
            Stage::Talking(i) => {
                self.finish(t, call, None);
                self.agent_free(t, i);
            }
            Stage::Waiting | Stage::Machine => {
                self.waiting.retain(|w| *w != call);
                self.finish(t, call, None);
            }
        }
    }

    /// The agent's pause takes effect; the break it asked for ends by itself.
    fn pause(&mut self, t: i64, i: usize) {
        self.agents[i].phase = AgentPhase::Paused;
        if let Some(len) = self.agents[i].break_ms.take() {
            self.schedule(t + len, Ev::BreakEnd(i));
        }
    }

    fn finish(&mut self, t: i64, call: CallId, failure: Option<FailureClass>) {
        let lost = match self.calls.get_mut(&call) {
            Some(c) if c.stage != Stage::Ended => {
                c.stage = Stage::Ended;
                c.lost
            }
            _ => return,
        };
        let at = self.at(t);
        self.truth.push(Truth::Ended { at, call });
        if !lost {
            let ended_at = Some(self.at(t));
            self.call_event(call, CallEvent::HungUp { failure, ended_at });
            self.calls.remove(&call);
        }
    }

    /// An agent who finished a call goes to wrap-up, then is ready (or leaves as asked).
    fn agent_free(&mut self, t: i64, i: usize) {
        self.agents[i].phase = AgentPhase::WrapUp;
        let mut r = rng::stream(self.spec.seed, Topic::Agent, i as u64, t as u64);
        let wrap = ms(self.spec.agents.wrap_up.sample(&mut r));
        self.schedule(t + wrap, Ev::WrapEnd(i));
    }

    /// Offers waiting callers to idle agents (reserved calls only to their agent).
    fn offer(&mut self, t: i64) {
        let mut k = 0;
        while k < self.waiting.len() {
            let call = self.waiting[k];
            let reserved = self.calls.get(&call).and_then(|c| c.agent.clone());
            let pick = self
                .agents
                .iter()
                .enumerate()
                .filter(|(_, a)| a.phase == AgentPhase::Idle)
                .filter(|(_, a)| reserved.as_ref().is_none_or(|r| *r == a.id))
                .min_by_key(|(_, a)| a.idle_since_ms)
                .map(|(i, _)| i);
            match pick {
                Some(i) => {
                    self.waiting.remove(k);
                    self.link(t, call, i);
                }
                None => k += 1,
            }
        }
    }

    fn link(&mut self, t: i64, call: CallId, i: usize) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.stage = Stage::Talking(i);
        let talk = c.talk_ms;
        let at = self.at(t);
        self.truth.push(Truth::Linked { at, call });
        self.agents[i].phase = AgentPhase::Talking(call);
        let agent = self.agents[i].id.clone();
        self.call_event(call, CallEvent::Linked { agent });
        self.schedule(t + talk, Ev::TalkEnd(call));
    }

    /// Applies everything due up to `now` and returns it as one burst (empty if nothing).
    pub fn poll(&mut self, now: DateTime<Utc>) -> Vec<TelephonyEvent> {
        if !self.logged_in {
            self.logged_in = true;
            for i in 0..self.agents.len() {
                if self.starts_out(i) {
                    continue;
                }
                self.agents[i].phase = AgentPhase::Idle;
                self.announce(i);
            }
            self.note_phases(self.t_ms(now));
        }
        let t_now = self.t_ms(now);
        while let Some(Reverse((t, _, _))) = self.timeline.peek() {
            if *t > t_now {
                break;
            }
            let Some(Reverse((t, _, ev))) = self.timeline.pop() else {
                break;
            };
            self.apply(t, ev);
            self.note_phases(t);
        }
        std::mem::take(&mut self.out)
    }

    fn apply(&mut self, t: i64, ev: Ev) {
        if self.down && !matches!(ev, Ev::OutageEnd(_) | Ev::OutageStart(_)) {
            // While the PBX is down nothing progresses; it resumes after the outage.
            let end = self.outage_end_ms(t);
            self.schedule(end, ev);
            return;
        }
        match ev {
            Ev::Accepted(call) => {
                if self.calls.contains_key(&call) {
                    self.call_event(call, CallEvent::OriginateAccepted);
                    self.call_event(call, CallEvent::Ringing);
                }
            }
            Ev::Answer(call) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.stage != Stage::Dialing {
                    return;
                }
                let (fate, patience) = (c.fate, c.patience_ms);
                let amd = self.spec.callees.amd.enabled && c.amd;
                let mut r = rng::stream(self.spec.seed, Topic::Attempt, call.0, 1);
                let says_machine = amd
                    && match fate {
                        Fate::Machine => r.gen::<f64>() < self.spec.callees.amd.machine_accuracy,
                        _ => r.gen::<f64>() >= self.spec.callees.amd.human_accuracy,
                    };
                let at = self.at(t);
                self.truth.push(Truth::Answered {
                    at,
                    call,
                    human: fate == Fate::Live,
                    said_machine: says_machine,
                });
                if says_machine {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.stage = Stage::Machine;
                    }
                    // The dialplan plays to the machine and hangs up if the dialer does not.
                    self.schedule(t + MACHINE_HANGUP_MS, Ev::MachineEnd(call));
                    self.call_event(
                        call,
                        CallEvent::Answered {
                            kind: AnswerKind::Machine,
                        },
                    );
                } else {
                    let kind = if amd {
                        AnswerKind::Human
                    } else {
                        AnswerKind::Unknown
                    };
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.stage = Stage::Waiting;
                    }
                    self.call_event(call, CallEvent::Answered { kind });
                    self.call_event(call, CallEvent::Queued);
                    self.waiting.push_back(call);
                    self.schedule(t + patience, Ev::Patience(call));
                    self.offer(t);
                }
            }
            Ev::Fail(call) => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if c.stage != Stage::Dialing {
                    return;
                }
                let class = match c.fate {
                    Fate::Busy => FailureClass::Busy,
                    Fate::Congestion => FailureClass::Congestion,
                    Fate::Invalid => FailureClass::InvalidNumber,
                    _ => FailureClass::NoAnswer,
                };
                self.finish(t, call, Some(class));
            }
            Ev::Patience(call) => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.stage == Stage::Waiting)
                {
                    self.waiting.retain(|w| *w != call);
                    self.finish(t, call, None);
                }
            }
            Ev::TalkEnd(call) => {
                if let Some(Stage::Talking(i)) = self.calls.get(&call).map(|c| c.stage) {
                    self.finish(t, call, None);
                    self.agent_free(t, i);
                }
            }
            Ev::WrapEnd(i) => {
                if self.agents[i].phase != AgentPhase::WrapUp {
                    return;
                }
                match self.agents[i].after_call.take() {
                    Some(AgentControl::Pause { .. }) => self.pause(t, i),
                    Some(AgentControl::Leave { .. }) => self.agents[i].phase = AgentPhase::Out,
                    _ => {
                        self.agents[i].phase = AgentPhase::Idle;
                        self.agents[i].idle_since_ms = t;
                        self.announce(i);
                        self.offer(t);
                    }
                }
            }
            Ev::Lost(call) => {
                if let Some(c) = self.calls.remove(&call) {
                    if c.stage != Stage::Ended {
                        let at = self.at(t);
                        self.truth.push(Truth::Ended { at, call });
                    }
                    if let Stage::Talking(i) = c.stage {
                        self.agent_free(t, i);
                    }
                    self.waiting.retain(|w| *w != call);
                    self.call_event(call, CallEvent::Lost);
                }
            }
            Ev::MachineEnd(call) => {
                if self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.stage == Stage::Machine)
                {
                    self.finish(t, call, None);
                }
            }
            Ev::Floor(k) => self.floor_move(t, k),
            Ev::BreakEnd(i) => {
                if self.agents[i].phase == AgentPhase::Paused {
                    self.agents[i].phase = AgentPhase::Idle;
                    self.agents[i].idle_since_ms = t;
                    self.announce(i);
                    self.offer(t);
                }
            }
            Ev::OutageStart(i) => {
                self.down = true;
                self.out.push(TelephonyEvent::Health(Health::Down {
                    fault: PbxFault::Unreachable,
                    detail: format!("simulated outage {}", i + 1),
                }));
                let len = self.spec.faults.outages[i].1;
                self.schedule(t + ms(len), Ev::OutageEnd(i));
            }
            Ev::OutageEnd(_) => {
                self.down = false;
                self.out.push(TelephonyEvent::Health(Health::Reconciled {
                    lines_in_use: self.lines_in_use(),
                }));
            }
        }
    }

    /// An agent's own move: a login takes effect at once; a break or logout is asked of the
    /// dialer, which answers with `AgentAway` when it may take effect.
    fn floor_move(&mut self, t: i64, k: usize) {
        let FloorPlan { agent: i, mv, .. } = self.spec.floor[k].clone();
        if i >= self.agents.len() {
            return;
        }
        let on_call = matches!(
            self.agents[i].phase,
            AgentPhase::Talking(_) | AgentPhase::WrapUp
        );
        match (mv, self.agents[i].phase) {
            (FloorMove::LogIn, AgentPhase::Out) => {
                self.agents[i].phase = AgentPhase::Idle;
                self.agents[i].idle_since_ms = t;
                self.agents[i].known = false;
                self.announce(i);
                self.offer(t);
            }
            (FloorMove::LogIn, _) => {}
            (_, AgentPhase::Out | AgentPhase::Paused) => {}
            (_, _) if !self.agents[i].known => {}
            (FloorMove::Break { length_s }, _) => {
                self.agents[i].break_ms = Some(ms(length_s).max(1000));
                let reason = "break".to_owned();
                let event = if on_call {
                    AgentEvent::PauseAfterCall { reason }
                } else {
                    AgentEvent::Paused { reason }
                };
                self.agent_event(i, event);
            }
            (FloorMove::LogOut, _) => {
                let event = if on_call {
                    AgentEvent::LogoutAfterCall
                } else {
                    AgentEvent::LoggedOut
                };
                self.agent_event(i, event);
            }
        }
    }

    fn outage_end_ms(&self, t: i64) -> i64 {
        self.spec
            .faults
            .outages
            .iter()
            .map(|(s, len)| ms(*s) + ms(*len))
            .filter(|end| *end > t)
            .min()
            .unwrap_or(t + 1000)
    }
}

/// How long the dialplan plays to a machine before hanging up if the dialer has not.
const MACHINE_HANGUP_MS: i64 = 30_000;

fn ms(s: f64) -> i64 {
    if s.is_finite() {
        (s.max(0.0) * 1000.0).round() as i64
    } else {
        0
    }
}

/// A world spec from a built-in scenario's callees, agents and carrier.
pub fn spec_from_scenario(
    scenario: &crate::scenario::Scenario,
    campaigns: Vec<CampaignId>,
    seed: u64,
) -> WorldSpec {
    WorldSpec {
        callees: scenario.callees.clone(),
        agents: scenario.agents.clone(),
        carrier: scenario.carrier.clone(),
        faults: FaultSpec::default(),
        campaigns,
        agent_prefix: "agent".into(),
        seed,
        floor: Vec::new(),
    }
}
