//! Runs the engine through a generated script of events, with an in-memory spool and the
//! trace checker watching: the harness of the property tests, exported for users' own.

use super::memory_spool::MemorySpool;
use super::trace_checker::{TraceChecker, Violation};
use crate::engine::{
    AgentEvent, CallEvent, Command, Engine, EngineConfig, Input, InputKind, Output, PbxFault,
    RefusalCause,
};
use crate::model::blacklist::{BlacklistEntry, BlacklistScope, Direction};
use crate::model::campaign::Campaign;
use crate::model::ids::ScheduleId;
use crate::model::ids::{AgentId, CallId, RecordId};
use crate::model::outcome::{AnswerKind, FailureClass};
use crate::model::phone::PhoneNumber;
use crate::model::record::{Schedule, ScheduleWhen, SpoolRecord};
use crate::rules::disposition::{Disposition, Respool};
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;

/// What the script does to a call in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptCall {
    /// The backend accepts the Originate.
    Accept,
    /// The callee's phone rings.
    Ring,
    /// Someone (or something) answers.
    Answer(AnswerKind),
    /// Link to a free agent (the call's own agent if it has one).
    Link,
    /// The call fails before an answer.
    Fail(FailureClass),
    /// The call ends.
    HangUp,
    /// The telephone system refuses the Originate (its fault: no attempt charged).
    Refuse,
    /// The network refuses the callee (charged like a failed attempt).
    RefuseCallee,
    /// The backend loses track of the call.
    Lose,
}

/// What the script does to an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptAgent {
    /// The agent says Ready.
    Ready,
    /// The agent pauses now.
    Pause,
    /// The agent pauses after its call.
    PauseAfterCall,
    /// The agent logs out.
    LogOut,
    /// The agent logs in to the campaign.
    LogIn,
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Let time pass.
    Advance {
        /// Seconds to pass.
        secs: u32,
    },
    /// Something happens to the `pick`-th call in flight (modulo their number).
    Call {
        /// Which call (modulo the calls in flight).
        pick: usize,
        /// What happens.
        event: ScriptCall,
    },
    /// Something happens to the `pick`-th agent (modulo their number).
    Agent {
        /// Which agent.
        pick: usize,
        /// What happens.
        event: ScriptAgent,
    },
    /// Blacklist the `pick`-th number of the pool.
    Blacklist {
        /// Which number (modulo the pool).
        pick: usize,
        /// For every campaign, or the world's only.
        all_campaigns: bool,
        /// Hours until the entry expires; `None`: forever.
        expires_after_h: Option<u32>,
    },
    /// Lift the `pick`-th number of the pool from the blacklist (both scopes).
    Unblacklist {
        /// Which number (modulo the pool).
        pick: usize,
    },
    /// An agent disposes of the `pick`-th record of the world (modulo their number); the
    /// engine may refuse it (in flight, not held, a number live elsewhere), changing nothing.
    Dispose {
        /// Which record.
        pick: usize,
        /// What the agent asks for.
        action: ScriptDisposition,
    },
}

/// What a scripted disposition asks for. Numbers are picks from the world's pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptDisposition {
    /// RESPOOL with these numbers, main first.
    Respool(Vec<usize>),
    /// RESPOOLALTERNATIVE: the next alternative number.
    RespoolAlternative,
    /// SCHEDULE a callback in `after_s` seconds on a new phone (the pool's pick).
    ScheduleNewPhone {
        /// Seconds from now.
        after_s: u32,
        /// The new phone.
        number: usize,
    },
    /// SCHEDULE a callback over a date range: 09:00 to 17:00 (callee local time) each day
    /// from `start_in_days` days after today's UTC date, for `days` days.
    ScheduleRange {
        /// Days from today to the first day.
        start_in_days: u32,
        /// How many days.
        days: u32,
    },
    /// DONE.
    Done,
}

/// A generated world: a campaign, its records, agents, numbers, and what happens.
#[derive(Debug, Clone)]
pub struct World {
    /// The campaign.
    pub campaign: Campaign,
    /// Its records, in the spool at the start.
    pub records: Vec<SpoolRecord>,
    /// How many agents log in at the start.
    pub agents: usize,
    /// E.164 numbers the records use (blacklist steps pick from them).
    pub pool: Vec<String>,
    /// Do-not-call entries loaded at the start.
    pub initial_blacklist: Vec<BlacklistEntry>,
    /// When the run starts.
    pub start: DateTime<Utc>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

/// The outcome of a run: the checker's findings and the trace.
pub struct RunReport {
    /// The checker that watched every output.
    pub checker: TraceChecker,
    /// Every output, in order.
    pub outputs: Vec<Output>,
    /// The spool as the run left it.
    pub spool: MemorySpool,
}

#[derive(Debug, Clone)]
struct FlightCall {
    id: CallId,
    agent: Option<AgentId>,
    answered: bool,
    linked: bool,
}

/// Executes a world. Never panics on engine behaviour: findings go to the checker.
pub fn run(world: &World) -> RunReport {
    run_observed(world, |_, _, _, _| {})
}

/// [`run`], calling `observe` after each step with the engine, the spool, the step and the
/// time, so a property can look at what the engine holds and what was persisted between
/// steps.
pub fn run_observed(
    world: &World,
    mut observe: impl FnMut(&Engine, &MemorySpool, &Step, DateTime<Utc>),
) -> RunReport {
    let mut h = Harness {
        engine: Engine::new(EngineConfig::default()),
        spool: MemorySpool::default(),
        checker: TraceChecker::new(),
        outputs: Vec::new(),
        flights: Vec::new(),
        agents_busy: BTreeMap::new(),
        now: world.start,
    };
    for r in &world.records {
        h.spool.insert(r.clone());
    }
    let cid = world.campaign.id.clone();
    h.feed(InputKind::Campaign(Box::new(world.campaign.clone())));
    for e in &world.initial_blacklist {
        h.feed(InputKind::Command(Box::new(Command::BlacklistAdd(
            e.clone(),
        ))));
    }
    let agents: Vec<AgentId> = (0..world.agents)
        .map(|i| AgentId::from(format!("agent{i}")))
        .collect();
    for a in &agents {
        h.agents_busy.insert(a.clone(), false);
        h.feed(InputKind::Agent {
            agent: a.clone(),
            event: AgentEvent::LoggedIn {
                campaigns: vec![cid.clone()],
                inactivity_timeout_s: None,
            },
        });
    }
    for step in &world.steps {
        match step {
            Step::Advance { secs } => {
                h.now += Duration::seconds(i64::from(*secs));
                h.feed(InputKind::Tick);
            }
            Step::Call { pick, event } => h.call_step(*pick, *event),
            Step::Agent { pick, event } => {
                if agents.is_empty() {
                    continue;
                }
                let a = agents[pick % agents.len()].clone();
                let busy = h.agents_busy.get(&a).copied().unwrap_or(false);
                let ev = match event {
                    ScriptAgent::Ready => {
                        h.agents_busy.insert(a.clone(), false);
                        AgentEvent::Ready
                    }
                    ScriptAgent::Pause if !busy => AgentEvent::Paused {
                        reason: "break".into(),
                    },
                    ScriptAgent::Pause | ScriptAgent::PauseAfterCall => {
                        AgentEvent::PauseAfterCall {
                            reason: "break".into(),
                        }
                    }
                    ScriptAgent::LogOut if !busy => AgentEvent::LoggedOut,
                    ScriptAgent::LogOut => AgentEvent::LogoutAfterCall,
                    ScriptAgent::LogIn => AgentEvent::LoggedIn {
                        campaigns: vec![cid.clone()],
                        inactivity_timeout_s: None,
                    },
                };
                h.feed(InputKind::Agent {
                    agent: a,
                    event: ev,
                });
            }
            Step::Blacklist {
                pick,
                all_campaigns,
                expires_after_h,
            } => {
                if world.pool.is_empty() {
                    continue;
                }
                let entry = BlacklistEntry {
                    number: world.pool[pick % world.pool.len()].clone(),
                    scope: if *all_campaigns {
                        BlacklistScope::All
                    } else {
                        BlacklistScope::Campaign(cid.clone())
                    },
                    expires_at: expires_after_h.map(|x| h.now + Duration::hours(i64::from(x))),
                    direction: Direction::Both,
                };
                h.feed(InputKind::Command(Box::new(Command::BlacklistAdd(entry))));
            }
            Step::Unblacklist { pick } => {
                if world.pool.is_empty() {
                    continue;
                }
                let number = world.pool[pick % world.pool.len()].clone();
                for scope in [BlacklistScope::All, BlacklistScope::Campaign(cid.clone())] {
                    h.feed(InputKind::Command(Box::new(Command::BlacklistRemove {
                        number: number.clone(),
                        scope,
                    })));
                }
            }
            Step::Dispose { pick, action } => {
                if world.records.is_empty() {
                    continue;
                }
                let record = world.records[pick % world.records.len()].id.clone();
                let number =
                    |i: &usize| PhoneNumber::parse(&world.pool[i % world.pool.len()], "US");
                let disposition = match action {
                    ScriptDisposition::Respool(picks) => {
                        let numbers: Result<Vec<_>, _> = picks.iter().map(number).collect();
                        let Ok(numbers) = numbers else { continue };
                        Disposition::Respool(Respool {
                            numbers: Some(numbers),
                            main_attempts: Some(0),
                            ..Respool::default()
                        })
                    }
                    ScriptDisposition::RespoolAlternative => Disposition::RespoolAlternative,
                    ScriptDisposition::ScheduleNewPhone { after_s, number: n } => {
                        let Ok(phone) = number(n) else { continue };
                        Disposition::Schedule {
                            schedule: Schedule {
                                id: ScheduleId(1_000_000 + *pick as u64),
                                when: ScheduleWhen::At {
                                    at: h.now + Duration::seconds(i64::from(*after_s)),
                                },
                                agent: None,
                                number: Some(phone),
                            },
                            campaign: None,
                            contact_name: None,
                        }
                    }
                    ScriptDisposition::ScheduleRange {
                        start_in_days,
                        days,
                    } => {
                        let start = h.now.date_naive() + Duration::days(i64::from(*start_in_days));
                        Disposition::Schedule {
                            schedule: Schedule {
                                id: ScheduleId(2_000_000 + *pick as u64),
                                when: ScheduleWhen::Range {
                                    start_date: start,
                                    end_date: start + Duration::days(i64::from(*days) - 1),
                                    start_time: chrono::NaiveTime::from_hms_opt(9, 0, 0)
                                        .unwrap_or_default(),
                                    end_time: chrono::NaiveTime::from_hms_opt(17, 0, 0)
                                        .unwrap_or_default(),
                                },
                                agent: None,
                                number: None,
                            },
                            campaign: None,
                            contact_name: None,
                        }
                    }
                    ScriptDisposition::Done => Disposition::Done,
                };
                h.feed(InputKind::Command(Box::new(Command::Dispose {
                    agent: None,
                    record,
                    disposition,
                })));
            }
        }
        observe(&h.engine, &h.spool, step, h.now);
        h.probe_refusals();
    }
    RunReport {
        checker: h.checker,
        outputs: h.outputs,
        spool: h.spool,
    }
}

impl Harness {
    /// Sends commands that must be refused and checks that each changed nothing: the status
    /// snapshot is identical and no output was queued.
    fn probe_refusals(&mut self) {
        let before = self.engine.status();
        let mut probes = vec![
            Command::Dispose {
                agent: None,
                record: RecordId(u64::MAX),
                disposition: Disposition::Done,
            },
            Command::Hangup {
                call: CallId(u64::MAX),
            },
            Command::PreviewSkip {
                agent: AgentId::from("nobody"),
                record: RecordId(u64::MAX),
            },
        ];
        if let Some(c) = before.calls.first() {
            probes.push(Command::Forget {
                record: c.record.clone(),
            });
            probes.push(Command::Dispose {
                agent: None,
                record: c.record.clone(),
                disposition: Disposition::Done,
            });
        }
        for probe in probes {
            let label = format!("{probe:?}");
            let result = self.engine.apply_command(self.now, probe);
            let queued = !matches!(self.engine.poll_output(), Output::Timeout(_));
            if result.is_ok() || queued || self.engine.status() != before {
                self.checker.violations.push(Violation {
                    rule: "rejected_input_changes_nothing",
                    detail: format!("{label} at {}: {result:?}", self.now),
                });
                return;
            }
        }
    }
}

struct Harness {
    engine: Engine,
    spool: MemorySpool,
    checker: TraceChecker,
    outputs: Vec<Output>,
    flights: Vec<FlightCall>,
    /// Agents linked to a call or in wrap-up, as the telephone system sees them.
    agents_busy: BTreeMap<AgentId, bool>,
    now: DateTime<Utc>,
}

impl Harness {
    fn feed(&mut self, kind: InputKind) {
        let mut queue = vec![kind];
        // Bounded: each round answers at most the record requests of the previous one.
        for _ in 0..16 {
            let Some(kind) = queue.pop() else { break };
            let input = Input::new(self.now, kind);
            self.checker.input(&input);
            self.engine.handle_input(input);
            loop {
                let out = self.engine.poll_output();
                if let Output::Timeout(_) = out {
                    break;
                }
                self.checker.output(&out);
                if let Some(reply) = self.spool.serve(&out, self.now) {
                    queue.push(reply);
                }
                if let Output::Originate(o) = &out {
                    self.flights.push(FlightCall {
                        id: o.call,
                        agent: o.agent.clone(),
                        answered: false,
                        linked: false,
                    });
                }
                if let Output::Hangup { call } = &out {
                    // The telephone system obeys: the call ends.
                    let call = *call;
                    queue.push(InputKind::Call {
                        call,
                        event: CallEvent::HungUp {
                            failure: None,
                            ended_at: None,
                        },
                    });
                }
                self.outputs.push(out);
            }
        }
    }

    fn call_step(&mut self, pick: usize, event: ScriptCall) {
        if self.flights.is_empty() {
            return;
        }
        let idx = pick % self.flights.len();
        let f = self.flights[idx].clone();
        let ev = match event {
            ScriptCall::Accept => CallEvent::OriginateAccepted,
            ScriptCall::Ring => CallEvent::Ringing,
            ScriptCall::Answer(kind) => {
                self.flights[idx].answered = true;
                CallEvent::Answered { kind }
            }
            ScriptCall::Link => {
                if !f.answered || f.linked {
                    return;
                }
                let agent = match &f.agent {
                    Some(a) => a.clone(),
                    None => {
                        let free = self.agents_busy.iter().find(|(a, busy)| {
                            !**busy
                                && matches!(
                                    self.engine.agent_state(a),
                                    Some(crate::engine::AgentState::Ready)
                                )
                        });
                        match free {
                            Some((a, _)) => a.clone(),
                            None => return,
                        }
                    }
                };
                self.agents_busy.insert(agent.clone(), true);
                self.flights[idx].linked = true;
                CallEvent::Linked { agent }
            }
            ScriptCall::Fail(class) => {
                if f.answered {
                    return;
                }
                self.flights.remove(idx);
                CallEvent::HungUp {
                    failure: Some(class),
                    ended_at: None,
                }
            }
            ScriptCall::HangUp => {
                self.flights.remove(idx);
                CallEvent::HungUp {
                    failure: None,
                    ended_at: None,
                }
            }
            ScriptCall::Refuse => {
                if f.answered {
                    return;
                }
                self.flights.remove(idx);
                CallEvent::OriginateRefused {
                    cause: RefusalCause::Pbx {
                        fault: PbxFault::ShuttingDown,
                        detail: "Asterisk is shutting down".into(),
                    },
                }
            }
            ScriptCall::RefuseCallee => {
                if f.answered {
                    return;
                }
                self.flights.remove(idx);
                CallEvent::OriginateRefused {
                    cause: RefusalCause::Callee {
                        class: FailureClass::OriginateFailed,
                        detail: "refused".into(),
                    },
                }
            }
            ScriptCall::Lose => {
                self.flights.remove(idx);
                CallEvent::Lost
            }
        };
        self.feed(InputKind::Call {
            call: f.id,
            event: ev,
        });
        // Hangup intents end calls; drop those from the flight list too.
        let live = self.engine_calls();
        self.flights.retain(|f| live.contains(&f.id));
    }

    fn engine_calls(&self) -> Vec<CallId> {
        self.checker.calls_in_flight().into_iter().collect()
    }
}
