//! A full small campaign, end to end through the engine: records with alternatives, a
//! blacklisted number, a callee in another time zone, busy / no-answer / answered outcomes and
//! a reschedule. Checks the exact sequence of dials and the final state of every record.

use chrono::{DateTime, Duration, TimeZone, Utc};
use dialer_core::testing::MemorySpool;
use dialer_core::*;
use std::collections::{BTreeMap, VecDeque};

/// What a callee does on one attempt.
#[derive(Clone, Copy, Debug)]
enum Fate {
    Busy,
    NoAnswer,
    /// Answers after 8 s and talks this long with the first free agent.
    Talks(i64),
}

struct Run {
    engine: Engine,
    spool: MemorySpool,
    now: DateTime<Utc>,
    fates: BTreeMap<&'static str, VecDeque<Fate>>,
    /// Scheduled telephone-side events.
    pending: Vec<(DateTime<Utc>, InputKind)>,
    dials: Vec<(u64, String)>,
    agents: Vec<AgentId>,
    free: BTreeMap<AgentId, bool>,
    skips: Vec<(u64, &'static str)>,
    linked: BTreeMap<CallId, AgentId>,
}

impl Run {
    fn feed(&mut self, kind: InputKind) {
        let mut queue = VecDeque::from([kind]);
        while let Some(kind) = queue.pop_front() {
            self.engine.handle_input(Input::new(self.now, kind));
            loop {
                let out = self.engine.poll_output();
                if let Some(reply) = self.spool.serve(&out, self.now) {
                    queue.push_back(reply);
                }
                match out {
                    Output::Timeout(_) => break,
                    Output::Originate(o) => self.place(*o),
                    Output::Event(Event::Skipped { record, reason, .. }) => {
                        self.skips.push((record.0, reason.code()))
                    }
                    _ => {}
                }
            }
        }
    }

    fn place(&mut self, o: OriginateIntent) {
        let number = o.number.e164().to_owned();
        self.dials.push((o.record.0, number.clone()));
        let key: &'static str = self
            .fates
            .keys()
            .find(|k| **k == number)
            .copied()
            .expect("every number has fates");
        let fate = self
            .fates
            .get_mut(key)
            .unwrap()
            .pop_front()
            .expect("a fate per attempt");
        let c = o.call;
        let call = |event| InputKind::Call { call: c, event };
        self.pending.push((
            self.now + Duration::seconds(1),
            call(CallEvent::OriginateAccepted),
        ));
        match fate {
            Fate::Busy => self.pending.push((
                self.now + Duration::seconds(5),
                call(CallEvent::HungUp {
                    failure: Some(FailureClass::Busy),
                    ended_at: None,
                }),
            )),
            Fate::NoAnswer => self.pending.push((
                self.now + Duration::seconds(25),
                call(CallEvent::HungUp {
                    failure: Some(FailureClass::NoAnswer),
                    ended_at: None,
                }),
            )),
            Fate::Talks(s) => {
                self.pending.push((
                    self.now + Duration::seconds(8),
                    call(CallEvent::Answered {
                        kind: AnswerKind::Human,
                    }),
                ));
                // Linking is decided when the answer happens (see `step`); the hang-up follows the talk.
                self.pending.push((
                    self.now + Duration::seconds(9 + s),
                    call(CallEvent::HungUp {
                        failure: None,
                        ended_at: None,
                    }),
                ));
            }
        }
    }

    /// Runs the telephone side and the engine's timers until `until`.
    fn run_until(&mut self, until: DateTime<Utc>) {
        for _ in 0..100_000 {
            self.pending.sort_by_key(|(t, _)| *t);
            let wake = match self.engine.poll_output() {
                Output::Timeout(t) => t,
                _ => unreachable!("outputs are drained after every input"),
            };
            let next_event = self.pending.first().map(|(t, _)| *t);
            let next = [wake, next_event].into_iter().flatten().min();
            match next {
                Some(t) if t <= until => {
                    self.now = t.max(self.now);
                    if next_event == Some(t) {
                        let (_, kind) = self.pending.remove(0);
                        self.step(kind);
                    } else {
                        self.feed(InputKind::Tick);
                    }
                }
                _ => {
                    self.now = until;
                    return;
                }
            }
        }
        panic!("run did not settle");
    }

    fn step(&mut self, kind: InputKind) {
        let link = match &kind {
            InputKind::Call {
                call,
                event: CallEvent::Answered { .. },
            } => Some(*call),
            _ => None,
        };
        let hang = match &kind {
            InputKind::Call {
                call,
                event:
                    CallEvent::HungUp {
                        failure: None,
                        ended_at: None,
                    },
            } => Some(*call),
            _ => None,
        };
        self.feed(kind);
        if let Some(call) = link {
            let agent = self
                .agents
                .iter()
                .find(|a| self.free[*a])
                .cloned()
                .expect("progressive keeps an agent free");
            self.free.insert(agent.clone(), false);
            self.feed(InputKind::Call {
                call,
                event: CallEvent::Linked {
                    agent: agent.clone(),
                },
            });
            self.linked.insert(call, agent);
        }
        if let Some(call) = hang {
            if let Some(agent) = self.linked.remove(&call) {
                // Five seconds of wrap-up, then ready again.
                self.pending.push((
                    self.now + Duration::seconds(5),
                    InputKind::Agent {
                        agent: agent.clone(),
                        event: AgentEvent::Ready,
                    },
                ));
                self.free.insert(agent, true);
            }
        }
    }
}

fn utc(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, h, m, s).unwrap()
}

fn number(n: &str) -> PhoneNumber {
    PhoneNumber::parse(n, "US").unwrap()
}

#[test]
fn small_campaign_dials_in_order_and_ends_in_the_right_states() {
    let t0 = utc(14, 0, 0); // 10:00 in New York (EDT), 07:00 in Los Angeles (PDT)
    let mut c = Campaign::new("spring", "America/New_York");
    c.calling_hours = CallingHours::us_tsr();
    c.max_attempts_per_number = 2;
    c.max_attempts_per_record = 4;
    c.retry.busy_s = 600;
    c.retry.no_answer_s = 1800;
    let cid = c.id.clone();

    let mut spool = MemorySpool::default();
    let created = t0 - Duration::days(1);
    let mk = |id: u64, main: &str, alts: &[&str]| {
        SpoolRecord::new(
            RecordId(id),
            cid.clone(),
            number(main),
            alts.iter().map(|a| number(a)).collect(),
            created + Duration::seconds(id as i64),
        )
    };
    spool.insert(mk(1, "2125550101", &["2125550111"]));
    spool.insert(mk(2, "2125550102", &["2125550112"]));
    spool.insert(mk(3, "2125550103", &["2125550113"]));
    let mut la = mk(4, "3105550104", &[]);
    la.time_zone = Some("America/Los_Angeles".into());
    spool.insert(la);
    spool.insert(mk(5, "2125550105", &[]));
    let mut r6 = mk(6, "2125550106", &[]);
    r6.next_eligible_at = Some(utc(16, 0, 0));
    spool.insert(r6);

    let fates: BTreeMap<&'static str, VecDeque<Fate>> = [
        ("+12125550101", vec![Fate::Talks(80)]),
        ("+12125550102", vec![Fate::Busy, Fate::Busy]),
        ("+12125550112", vec![Fate::Talks(60)]),
        ("+12125550113", vec![Fate::NoAnswer, Fate::NoAnswer]),
        ("+13105550104", vec![Fate::Talks(40)]),
        ("+12125550105", vec![Fate::Talks(30), Fate::Talks(30)]),
        ("+12125550106", vec![Fate::Talks(30)]),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.into()))
    .collect();

    let agents = vec![AgentId::from("a1"), AgentId::from("a2")];
    let mut run = Run {
        engine: Engine::new(EngineConfig::default()),
        spool,
        now: t0,
        fates,
        pending: Vec::new(),
        dials: Vec::new(),
        free: agents.iter().map(|a| (a.clone(), true)).collect(),
        agents: agents.clone(),
        skips: Vec::new(),
        linked: BTreeMap::new(),
    };
    run.feed(InputKind::Campaign(Box::new(c)));
    run.feed(InputKind::Command(Box::new(Command::BlacklistAdd(
        BlacklistEntry {
            number: "+12125550103".into(),
            scope: BlacklistScope::All,
            expires_at: None,
            direction: Direction::Both,
        },
    ))));
    for a in &agents {
        run.feed(InputKind::Agent {
            agent: a.clone(),
            event: AgentEvent::LoggedIn {
                campaigns: vec![cid.clone()],
                inactivity_timeout_s: None,
            },
        });
    }

    // Record 5 answers at 14:00:23 and talks 30 s; its agent then schedules a callback at 16:00.
    run.run_until(utc(14, 1, 30));
    run.feed(InputKind::Command(Box::new(Command::Dispose {
        agent: Some(AgentId::from("a2")),
        record: RecordId(5),
        disposition: Disposition::Schedule {
            schedule: Schedule {
                id: ScheduleId(1),
                when: ScheduleWhen::At { at: utc(16, 0, 0) },
                agent: None,
                number: None,
            },
            campaign: None,
            contact_name: None,
        },
    })));
    // One agent takes a long break before 16:00, so the schedule and record 6 compete for a1.
    run.run_until(utc(15, 30, 0));
    run.feed(InputKind::Agent {
        agent: AgentId::from("a2"),
        event: AgentEvent::Paused {
            reason: "lunch".into(),
        },
    });
    run.free.insert(AgentId::from("a2"), false);
    run.run_until(utc(17, 0, 0));

    let dials: Vec<(u64, &str)> = run.dials.iter().map(|(r, n)| (*r, n.as_str())).collect();
    assert_eq!(
        dials,
        vec![
            (1, "+12125550101"), // a1 logs in
            (2, "+12125550102"), // a2 logs in; busy
            (5, "+12125550105"), // 3 is blacklisted on its main number, 4 is before 08:00 in LA
            (3, "+12125550113"), // 3 moved to its alternative; no answer
            (2, "+12125550102"), // busy retry after 600 s; busy again: number spent
            (2, "+12125550112"), // alternative at once
            (3, "+12125550113"), // no-answer retry after 1800 s: spent, record exhausted
            (4, "+13105550104"), // 08:00 in Los Angeles
            (5, "+12125550105"), // the callback at 16:00 goes before record 6, due at the same time
            (6, "+12125550106"),
        ]
    );
    let state = |id: u64| run.spool.records[&RecordId(id)].status.clone();
    let done = |reason| RecordStatus::Finished { reason };
    assert_eq!(state(1), done(FinishReason::Completed));
    assert_eq!(state(2), done(FinishReason::Completed));
    assert_eq!(state(3), done(FinishReason::AttemptsExhausted));
    assert_eq!(state(4), done(FinishReason::Completed));
    assert_eq!(state(5), done(FinishReason::Completed));
    assert_eq!(state(6), done(FinishReason::Completed));
    let r3 = &run.spool.records[&RecordId(3)];
    assert_eq!(r3.numbers[0].state, NumberState::Blacklisted);
    assert_eq!(r3.numbers[1].state, NumberState::Spent);
    assert!(run.skips.contains(&(3, "blacklisted")));
    assert!(run.skips.contains(&(4, "outside_calling_window")));
    assert!(
        run.spool.records[&RecordId(5)].schedule.is_none(),
        "the callback was used"
    );
}
