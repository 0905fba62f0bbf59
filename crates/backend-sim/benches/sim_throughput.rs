//! Simulator throughput (simulated dial attempts per second of wall time) and the cost of one
//! pacing decision. `cargo bench -p backend-sim`.

use backend_sim::{pacer_by_name, Scenario, Simulator};
use chrono::{TimeZone, Utc};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dialer_core::pacing::{AbandonStatus, AgentLoad, AgentPhase, PacingSnapshot};

// The `dialer` binary's allocator, so the bench measures what `dialer simulate` runs.
#[global_allocator]
static GLOBAL: backend_sim::alloc::Allocator = backend_sim::alloc::Allocator;

fn run(sc: &Scenario, pacer: &str, seed: u64) -> u64 {
    let (p, guard) = pacer_by_name(pacer, sc, seed).expect("known pacer");
    Simulator::new(sc, seed, p, guard).run(&mut |_| {}).dials
}

fn throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulator");
    g.sample_size(10);
    for (name, sc) in [
        ("reference_20_agents_4h", Scenario::reference(20, 4.0)),
        ("reference_100_agents_8h_day", Scenario::reference(100, 8.0)),
        (
            "small_team_8h",
            Scenario::builtin("small-team").expect("built-in"),
        ),
    ] {
        // Attempts per run are fixed by the seed: criterion reports attempts per second.
        g.throughput(Throughput::Elements(run(&sc, "predictive", 1)));
        g.bench_function(name, |b| b.iter(|| run(black_box(&sc), "predictive", 1)));
    }
    g.finish();
}

fn snapshot(agents: u32) -> PacingSnapshot {
    let busy = agents * 85 / 100;
    PacingSnapshot {
        now: Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap(),
        agents_logged_in: agents,
        agents_free: agents - busy,
        agents_talking: (0..busy).filter(|i| i % 7 != 0).count() as u32,
        agents_wrap_up: (0..busy).filter(|i| i % 7 == 0).count() as u32,
        agents_busy: (0..busy)
            .map(|i| AgentLoad {
                phase: if i % 7 == 0 {
                    AgentPhase::WrapUp
                } else {
                    AgentPhase::Talking
                },
                elapsed_s: f64::from(i % 200),
            })
            .collect(),
        dials_in_flight: agents / 2,
        calls_waiting: 0,
        lines_free: 4 * agents,
        records_ready: 16 * agents,
        abandon: AbandonStatus {
            live_answers: 10_000,
            abandoned: 250,
            cap: 0.03,
            budget: 50.0,
            period_start: None,
        },
        abandon_threshold_s: 2.0,
    }
}

fn decision(c: &mut Criterion) {
    let sc = Scenario::reference(20, 1.0);
    let mut g = c.benchmark_group("pacing_decision");
    for agents in [3u32, 20, 500] {
        let s = snapshot(agents);
        for name in ["predictive", "vicidial", "issabel", "progressive"] {
            let (mut p, _) = pacer_by_name(name, &sc, 1).expect("known pacer");
            g.bench_function(format!("{name}_{agents}_agents"), |b| {
                b.iter(|| p.dials_to_place(black_box(&s)))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, throughput, decision);
criterion_main!(benches);
