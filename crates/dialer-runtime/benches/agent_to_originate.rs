//! Time from an agent becoming free to the Originate leaving the driver, with the SQLite
//! spool in WAL mode on a file (the ledger row and the record update are committed first).
//!
//! VICIdial's design for comparison: a 2.5 s top-up loop fed by a once-a-minute hopper, so an
//! agent that becomes free waits on average 1.25 s (up to 2.5 s) for its next dial.
//!
//! Besides criterion's figures, the bench prints p50 and p99 over a fixed sample.

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use dialer_core::{
    AgentEvent, AgentId, AnswerKind, CallEvent, CallId, CallingHours, Campaign, CampaignId,
    DialMode, Engine, EngineConfig, InputKind,
};
use dialer_runtime::driver::{Action, Driver};
use spool_store::{ImportOptions, SpoolStore};
use std::time::Instant;

struct Bench {
    driver: Driver<SpoolStore>,
    agent: AgentId,
    call: Option<CallId>,
    now: chrono::DateTime<Utc>,
    _dir: tempfile::TempDir,
}

fn setup(records: usize) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let now = Utc
        .with_ymd_and_hms(2026, 6, 1, 14, 0, 0)
        .single()
        .expect("time");
    let mut store = SpoolStore::open_at(dir.path().join("spool.db"), now)
        .expect("spool")
        .0;
    let mut c = Campaign::new("bench", "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Progressive;
    store.upsert_campaign(&c, now).expect("campaign");
    let base: String = (0..records)
        .map(|i| format!("bench;+1212{:07};;;;\n", 5_550_000 + i))
        .collect();
    store
        .import_base(
            base.as_bytes(),
            &ImportOptions::new("bench", "b.txt", now),
            &mut |_| {},
        )
        .expect("import");
    let mut driver = Driver::new(Engine::new(EngineConfig::default()), store);
    driver
        .handle(now, [InputKind::Campaign(Box::new(c))])
        .expect("campaign");
    let agent = AgentId::from("alice");
    driver
        .handle(
            now,
            [InputKind::Agent {
                agent: agent.clone(),
                event: AgentEvent::LoggedIn {
                    campaigns: vec![CampaignId::from("bench")],
                    inactivity_timeout_s: None,
                },
            }],
        )
        .expect("login");
    let mut b = Bench {
        driver,
        agent,
        call: None,
        now,
        _dir: dir,
    };
    b.call = b.take_originate();
    b
}

impl Bench {
    fn take_originate(&mut self) -> Option<CallId> {
        let mut call = None;
        while let Some(a) = self.driver.poll_action() {
            if let Action::Originate(i) = a {
                call = Some(i.call);
            }
        }
        call
    }

    /// The current call is answered, talked and hung up (not timed); the agent is in wrap-up.
    fn finish_call(&mut self) {
        let call = self.call.expect("a call in flight");
        self.now += Duration::seconds(30);
        let ev = |event| InputKind::Call { call, event };
        self.driver
            .handle(
                self.now,
                [
                    ev(CallEvent::OriginateAccepted),
                    ev(CallEvent::Answered {
                        kind: AnswerKind::Human,
                    }),
                    ev(CallEvent::Linked {
                        agent: self.agent.clone(),
                    }),
                ],
            )
            .expect("answer");
        self.now += Duration::seconds(60);
        self.driver
            .handle(
                self.now,
                [ev(CallEvent::HungUp {
                    failure: None,
                    ended_at: None,
                })],
            )
            .expect("hang up");
        while self.driver.poll_action().is_some() {}
    }

    /// Timed: the agent is ready; until the next Originate is available.
    fn ready_to_originate(&mut self) -> std::time::Duration {
        self.now += Duration::seconds(5);
        let t = Instant::now();
        self.driver
            .handle(
                self.now,
                [InputKind::Agent {
                    agent: self.agent.clone(),
                    event: AgentEvent::Ready,
                }],
            )
            .expect("ready");
        self.call = self.take_originate();
        let d = t.elapsed();
        assert!(self.call.is_some(), "a free agent gets a call");
        d
    }
}

fn percentiles(c: &mut Criterion) {
    let mut b = setup(60_000);
    let mut samples: Vec<std::time::Duration> = (0..2_000)
        .map(|_| {
            b.finish_call();
            b.ready_to_originate()
        })
        .collect();
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "agent free -> Originate (SQLite WAL, {} samples): p50 {:?}, p99 {:?}, max {:?}; VICIdial's design: mean 1.25 s, up to 2.5 s",
        samples.len(),
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
    c.bench_function("agent_free_to_originate", |bench| {
        bench.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    b.finish_call();
                    b.ready_to_originate()
                })
                .sum()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = percentiles
}
criterion_main!(benches);
