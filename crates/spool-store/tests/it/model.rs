//! The store against an in-memory model of the same rules, driven by random operations.
//! The model keeps records as plain `SpoolRecord`s and uses the core's rule functions
//! directly; every observable answer (results, errors, ready set, records, counters, blacklist)
//! must agree after every step.

use super::common::*;
use chrono::{DateTime, Duration, Utc};
use dialer_core::rules::next_step::{begin_attempt, finish_attempt};
use dialer_core::rules::ordering::sort_for_dialing;
use dialer_core::{
    Blacklist, BlacklistEntry, BlacklistScope, CallId, CallOutcome, Campaign, CampaignId,
    DialerTask, Direction, FailureClass, FinishReason, PhoneNumber, RecordId, RecordStatus,
    Schedule, ScheduleId, ScheduleWhen, SpoolRecord, StoreUpdate, TaskId, TaskKind, TaskTiming,
};
use proptest::prelude::*;
use spool_store::{Callback, ImportOptions, NewRecord, RejectReason, StoreError};
use std::collections::BTreeMap;

const POOL: u32 = 8;

#[derive(Debug, Clone)]
struct Line {
    main: Option<u32>, // None = an invalid number
    alt: Option<u32>,
    priority: Option<u32>,
}

#[derive(Debug, Clone)]
enum Op {
    Import(Vec<Line>),
    Respool(Vec<u32>, Option<u32>),
    Remove(u32),
    BlacklistAdd {
        n: u32,
        all: bool,
        expires_s: Option<i64>,
    },
    BlacklistRemove {
        n: u32,
        all: bool,
    },
    Start(usize),
    End(usize, u8),
    Advance(i64),
    /// A callback to a number, `offset` seconds from now, moving an existing one or not.
    Schedule(u32, i64, bool),
    Task(u32, u8, Option<i64>),
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..POOL;
    let line = (
        proptest::option::weighted(0.9, 0..POOL),
        proptest::option::of(0..POOL),
        proptest::option::of(0u32..5),
    )
        .prop_map(|(main, alt, priority)| Line {
            main,
            alt,
            priority,
        });
    prop_oneof![
        2 => proptest::collection::vec(line, 0..6).prop_map(Op::Import),
        2 => (proptest::collection::vec(n.clone(), 1..3), proptest::option::of(0u32..5)).prop_map(|(v, p)| Op::Respool(v, p)),
        1 => n.clone().prop_map(Op::Remove),
        1 => (n.clone(), any::<bool>(), proptest::option::of(1i64..7200)).prop_map(|(n, all, expires_s)| Op::BlacklistAdd { n, all, expires_s }),
        1 => (n.clone(), any::<bool>()).prop_map(|(n, all)| Op::BlacklistRemove { n, all }),
        4 => any::<usize>().prop_map(Op::Start),
        3 => (any::<usize>(), 0u8..6).prop_map(|(k, o)| Op::End(k, o)),
        2 => (1i64..4000).prop_map(Op::Advance),
        1 => (n.clone(), -600i64..3600, any::<bool>()).prop_map(|(n, s, r)| Op::Schedule(n, s, r)),
        1 => (n, 0u8..3, proptest::option::of(-60i64..600)).prop_map(|(n, k, t)| Op::Task(n, k, t)),
        1 => Just(Op::Crash),
    ]
}

fn outcome(k: u8) -> CallOutcome {
    match k {
        0 => CallOutcome::Connected { talk_s: 40 },
        1 => CallOutcome::Failed {
            class: FailureClass::Busy,
        },
        2 => CallOutcome::Failed {
            class: FailureClass::NoAnswer,
        },
        3 => CallOutcome::Failed {
            class: FailureClass::InvalidNumber,
        },
        4 => CallOutcome::Machine,
        _ => CallOutcome::Abandoned,
    }
}

#[derive(Default)]
struct Model {
    records: Vec<SpoolRecord>,
    blacklist: Blacklist,
    ledger: BTreeMap<CallId, (RecordId, Option<CallOutcome>)>,
    bases: u64,
    next_call: u64,
}

impl Model {
    fn live_with(&self, e164: &str) -> Vec<usize> {
        (0..self.records.len())
            .filter(|&i| {
                let r = &self.records[i];
                !r.is_finished() && r.numbers.iter().any(|s| s.number.e164() == e164)
            })
            .collect()
    }

    fn add(&mut self, mut rec: SpoolRecord) -> RecordId {
        rec.id = RecordId(self.records.len() as u64 + 1);
        let id = rec.id.clone();
        self.records.push(rec);
        id
    }

    fn ready(&self, now: DateTime<Utc>) -> Vec<SpoolRecord> {
        let mut v: Vec<SpoolRecord> = self
            .records
            .iter()
            .filter(|r| r.status == RecordStatus::Pending)
            .filter(|r| r.next_eligible_at.is_none_or(|t| t <= now))
            .filter(|r| !matches!(r.schedule.as_ref().map(|s| &s.when), Some(ScheduleWhen::At { at }) if *at > now))
            .filter(|r| !matches!(r.task.as_ref().map(|t| t.timing), Some(TaskTiming::At { at }) if at > now))
            .cloned()
            .collect();
        sort_for_dialing(&mut v);
        v
    }

    fn next_schedule_id(&self) -> ScheduleId {
        ScheduleId(
            self.records
                .iter()
                .filter_map(|r| r.schedule.as_ref().map(|s| s.id.0))
                .max()
                .unwrap_or(0)
                + 1,
        )
    }

    fn next_task_id(&self) -> TaskId {
        TaskId(
            self.records
                .iter()
                .filter_map(|r| r.task.as_ref().map(|t| t.id.0))
                .max()
                .unwrap_or(0)
                + 1,
        )
    }
}

fn new_record(nums: &[u32], now: DateTime<Utc>) -> SpoolRecord {
    let ps: Vec<PhoneNumber> = nums.iter().map(|&i| phone(i)).collect();
    SpoolRecord::new(
        RecordId(0),
        CampaignId("c".into()),
        ps[0].clone(),
        ps[1..].to_vec(),
        now,
    )
}

/// Errors compared by kind (the store's carry more detail than the model computes).
fn kind<T>(r: &Result<T, StoreError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(StoreError::DuplicateDestination { .. }) => "duplicate_destination",
        Err(StoreError::DuplicateSchedule { .. }) => "duplicate_schedule",
        Err(StoreError::InvalidSchedule(dialer_core::ScheduleError::InPast { .. })) => "in_past",
        Err(StoreError::InvalidSchedule(dialer_core::ScheduleError::AlreadyScheduled)) => {
            "already_scheduled"
        }
        Err(StoreError::RecordInFlight(_)) => "in_flight",
        Err(StoreError::ReservedPriority(_)) => "reserved_priority",
        Err(StoreError::ManualDialQueued { .. }) => "manual_dial_queued",
        Err(e) => panic!("unexpected store error {e}"),
    }
}

fn run(ops: Vec<Op>) {
    let camp: Campaign = campaign("c");
    let mut s = store();
    let mut m = Model::default();
    let mut now = t0();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Import(lines) => {
                let text: String = lines
                    .iter()
                    .map(|l| {
                        format!(
                            "c;{};;{};{}\n",
                            l.main.map_or("12".to_string(), uy),
                            l.alt.map_or(String::new(), uy),
                            l.priority.map_or(String::new(), |p| p.to_string())
                        )
                    })
                    .collect();
                let opts = ImportOptions::new("c", format!("b{step}"), now);
                let sum = s.import_base(text.as_bytes(), &opts, &mut |_| {}).unwrap();
                m.bases += 1;
                let mut want: BTreeMap<RejectReason, u64> = BTreeMap::new();
                let mut imported = 0;
                'line: for l in &lines {
                    let Some(main) = l.main else {
                        *want.entry(RejectReason::InvalidNumber).or_default() += 1;
                        continue;
                    };
                    if l.alt == Some(main) {
                        *want.entry(RejectReason::NumberRepeatedInLine).or_default() += 1;
                        continue;
                    }
                    if l.priority.is_some_and(|p| p <= 1) {
                        *want.entry(RejectReason::BadPriority).or_default() += 1;
                        continue;
                    }
                    let nums: Vec<u32> = std::iter::once(main).chain(l.alt).collect();
                    for &n in &nums {
                        if m.blacklist.blocks(&uy_e164(n), &"c".into(), now) {
                            *want.entry(RejectReason::Blacklisted).or_default() += 1;
                            continue 'line;
                        }
                        if let Some(&i) = m.live_with(&uy_e164(n)).first() {
                            let r = if m.records[i].base_id == Some(m.bases) {
                                RejectReason::DuplicateInFile
                            } else {
                                RejectReason::DuplicateInSpool
                            };
                            *want.entry(r).or_default() += 1;
                            continue 'line;
                        }
                    }
                    let mut rec = new_record(&nums, now);
                    if let Some(p) = l.priority {
                        rec.priority = p;
                    }
                    rec.base_id = Some(m.bases);
                    m.add(rec);
                    imported += 1;
                }
                assert_eq!(sum.imported, imported, "step {step}");
                assert_eq!(sum.rejected_by_reason, want, "step {step}");
            }
            Op::Respool(nums, prio) => {
                let mut new = NewRecord::new("c", nums.iter().map(|&i| phone(i)).collect());
                new.priority = prio;
                let got = s.respool(&new, now);
                let want = if prio.is_some_and(|p| p <= 1) {
                    "reserved_priority"
                } else if nums.len() == 2 && nums[0] == nums[1]
                    || nums.iter().any(|&n| !m.live_with(&uy_e164(n)).is_empty())
                {
                    "duplicate_destination"
                } else {
                    let mut rec = new_record(&nums, now);
                    if let Some(p) = prio {
                        rec.priority = p;
                    }
                    let id = m.add(rec);
                    assert_eq!(got.as_ref().ok(), Some(&id), "step {step}");
                    "ok"
                };
                assert_eq!(kind(&got), want, "step {step}");
            }
            Op::Remove(n) => {
                let got = s.remove_contact("c", &uy_e164(n));
                let idx = m.live_with(&uy_e164(n));
                if idx
                    .iter()
                    .any(|&i| matches!(m.records[i].status, RecordStatus::InFlight { .. }))
                {
                    assert_eq!(kind(&got), "in_flight", "step {step}");
                } else {
                    let ids: Vec<RecordId> = idx.iter().map(|&i| m.records[i].id.clone()).collect();
                    for i in idx {
                        let r = &mut m.records[i];
                        r.status = RecordStatus::Finished {
                            reason: FinishReason::Removed,
                        };
                        r.schedule = None;
                        r.task = None;
                        r.next_eligible_at = None;
                    }
                    assert_eq!(got.unwrap(), ids, "step {step}");
                }
            }
            Op::BlacklistAdd { n, all, expires_s } => {
                let e = BlacklistEntry {
                    number: uy_e164(n),
                    scope: if all {
                        BlacklistScope::All
                    } else {
                        BlacklistScope::Campaign("c".into())
                    },
                    expires_at: expires_s.map(|x| now + Duration::seconds(x)),
                    direction: Direction::Outbound,
                };
                s.blacklist_add(&e, now).unwrap();
                m.blacklist.add(e);
            }
            Op::BlacklistRemove { n, all } => {
                let scope = if all {
                    BlacklistScope::All
                } else {
                    BlacklistScope::Campaign("c".into())
                };
                assert_eq!(
                    s.blacklist_remove(&uy_e164(n), &scope).unwrap(),
                    m.blacklist.remove(&uy_e164(n), &scope),
                    "step {step}"
                );
            }
            Op::Start(k) => {
                let ready = m.ready(now);
                if ready.is_empty() {
                    continue;
                }
                let id = ready[k % ready.len()].id.clone();
                let i = (id.0 - 1) as usize;
                let number = m.records[i].numbers[m.records[i].current].number.clone();
                m.next_call += 1;
                let call = CallId(m.next_call);
                s.apply(&StoreUpdate::AttemptStarted {
                    call,
                    campaign: "c".into(),
                    record: id.clone(),
                    number,
                    agent: None,
                    at: now,
                })
                .unwrap();
                begin_attempt(&mut m.records[i], &camp, call, now);
                m.ledger.insert(call, (id, None));
            }
            Op::End(k, o) => {
                let open: Vec<CallId> = m
                    .ledger
                    .iter()
                    .filter(|(_, v)| v.1.is_none())
                    .map(|(c, _)| *c)
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let call = open[k % open.len()];
                let id = m.ledger[&call].0.clone();
                let outcome = outcome(o);
                s.apply(&StoreUpdate::AttemptEnded {
                    call,
                    record: id.clone(),
                    outcome,
                    at: now,
                })
                .unwrap();
                m.ledger.get_mut(&call).unwrap().1 = Some(outcome);
                let r = &mut m.records[(id.0 - 1) as usize];
                if r.status == (RecordStatus::InFlight { call }) {
                    finish_attempt(r, &camp, outcome, now);
                }
            }
            Op::Advance(secs) => now += Duration::seconds(secs),
            Op::Schedule(n, offset, reschedule) => {
                let when = ScheduleWhen::At {
                    at: now + Duration::seconds(offset),
                };
                let got = s.schedule_call(
                    &NewRecord::new("c", vec![phone(n)]),
                    &Callback {
                        reschedule,
                        ..Callback::at(when.clone())
                    },
                    now,
                );
                let sid = m.next_schedule_id();
                let sched = Schedule {
                    id: sid,
                    when: when.clone(),
                    agent: None,
                    number: None,
                };
                let want = match m.live_with(&uy_e164(n)).first() {
                    Some(&i) if matches!(m.records[i].status, RecordStatus::InFlight { .. }) => {
                        "in_flight"
                    }
                    _ if offset < 0 => "in_past",
                    Some(&i) => match &m.records[i].schedule {
                        Some(old) if old.when == when => "duplicate_schedule",
                        Some(_) if !reschedule => "already_scheduled",
                        _ => {
                            m.records[i].schedule = Some(sched);
                            "ok"
                        }
                    },
                    None => {
                        let mut rec = new_record(&[n], now);
                        rec.schedule = Some(sched);
                        m.add(rec);
                        "ok"
                    }
                };
                assert_eq!(kind(&got), want, "step {step}");
            }
            Op::Task(n, k, at) => {
                let kind_ = [TaskKind::Automatic, TaskKind::Bulk, TaskKind::Manual][k as usize];
                let timing = at.map_or(TaskTiming::WhenFree, |x| TaskTiming::At {
                    at: now + Duration::seconds(x),
                });
                let got = s.add_task(&NewRecord::new("c", vec![phone(n)]), timing, kind_, now);
                let task = DialerTask {
                    id: m.next_task_id(),
                    timing,
                    kind: kind_,
                    agent: None,
                    call: Default::default(),
                };
                let want = match m.live_with(&uy_e164(n)).first() {
                    Some(&i) if matches!(m.records[i].status, RecordStatus::InFlight { .. }) => {
                        "in_flight"
                    }
                    // V1: a manual dial already queued (for the same agent, here none) is
                    // refused, not queued twice.
                    Some(&i)
                        if kind_ == TaskKind::Manual
                            && m.records[i]
                                .task
                                .as_ref()
                                .is_some_and(|t| t.kind == TaskKind::Manual)
                            && m.records[i].owner_agent.is_none() =>
                    {
                        "manual_dial_queued"
                    }
                    Some(&i) => {
                        m.records[i].task = Some(task);
                        "ok"
                    }
                    None => {
                        let mut rec = new_record(&[n], now);
                        rec.task = Some(task);
                        m.add(rec);
                        "ok"
                    }
                };
                assert_eq!(kind(&got), want, "step {step}");
            }
            Op::Crash => {
                s.reconcile(now).unwrap();
                let hold = now
                    + Duration::seconds(
                        i64::from(camp.retry.unknown_s).max(spool_store::MIN_RECONCILE_DELAY_S),
                    );
                let open: Vec<CallId> = m
                    .ledger
                    .iter()
                    .filter(|(_, v)| v.1.is_none())
                    .map(|(c, _)| *c)
                    .collect();
                for call in open {
                    let id = m.ledger[&call].0.clone();
                    m.ledger.get_mut(&call).unwrap().1 = Some(CallOutcome::Unknown);
                    let r = &mut m.records[(id.0 - 1) as usize];
                    if r.status == (RecordStatus::InFlight { call }) {
                        finish_attempt(r, &camp, CallOutcome::Unknown, now);
                    }
                    if r.status == RecordStatus::Pending
                        && r.next_eligible_at.is_none_or(|t| t < hold)
                    {
                        r.next_eligible_at = Some(hold);
                    }
                }
            }
        }
        assert_eq!(
            s.records("c").unwrap(),
            m.records,
            "records after step {step}"
        );
        assert_eq!(
            s.ready_set("c", now, 1000).unwrap(),
            m.ready(now),
            "ready set after step {step}"
        );
        for n in 0..POOL {
            assert_eq!(
                s.is_blacklisted(&uy_e164(n), "c", now).unwrap(),
                m.blacklist.blocks(&uy_e164(n), &"c".into(), now),
                "blacklist of {n} after step {step}"
            );
        }
        let st = s.campaign_status("c").unwrap();
        let ended = |f: &dyn Fn(&CallOutcome) -> bool| {
            m.ledger
                .values()
                .filter(|v| v.1.as_ref().is_some_and(f))
                .count() as u64
        };
        assert_eq!(st.total, m.records.len() as u64);
        assert_eq!(
            st.pending,
            m.records
                .iter()
                .filter(|r| r.status == RecordStatus::Pending && r.attempts == 0)
                .count() as u64
        );
        assert_eq!(
            st.placing,
            m.ledger.values().filter(|v| v.1.is_none()).count() as u64,
            "step {step}"
        );
        assert_eq!(
            st.success,
            ended(&|o| matches!(o, CallOutcome::Connected { .. }))
        );
        assert_eq!(st.abandoned, ended(&|o| *o == CallOutcome::Abandoned));
        assert_eq!(st.unknown, ended(&|o| *o == CallOutcome::Unknown));
        assert_eq!(
            st.noanswer + st.failure,
            ended(&|o| matches!(o, CallOutcome::Failed { .. } | CallOutcome::Machine))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_the_model_of_the_same_rules(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops);
    }
}

#[test]
fn model_agrees_on_a_crash_during_a_call_to_a_scheduled_number() {
    run(vec![
        Op::Import(vec![Line {
            main: Some(1),
            alt: Some(2),
            priority: None,
        }]),
        Op::Schedule(1, 10, false),
        Op::Advance(10),
        Op::Start(0),
        Op::Crash,
        Op::Advance(3601),
        Op::Start(0),
        Op::End(0, 1),
    ]);
}
