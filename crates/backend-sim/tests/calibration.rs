//! Calibration against pacing-reference.md's closed forms.
//!
//! Tolerances: occupancy of one agent alternates talk (Exp 120 s) and dialing (Exp 80 s in
//! total), so the time-average over n cycles has standard deviation ≈ 0.34/√n. The runs below
//! give n ≈ 10 800 agent cycles, sd ≈ 0.0033: the ±0.01 of the acceptance is 3 sd.

use backend_sim::erlang::open_loop;
use backend_sim::{run_one, PoissonOpenLoop, Scenario, Simulator};

fn progressive(agents: u32, hours: f64, seed: u64) {
    let sc = Scenario::reference(agents, hours);
    let r = run_one(&sc, "progressive", seed, &mut |_| {}).unwrap();
    assert_eq!(
        r.abandoned, 0,
        "seed {seed}, N={agents}: progressive abandoned {}",
        r.abandoned
    );
    assert!(
        (r.occupancy - 0.600).abs() <= 0.01,
        "seed {seed}, N={agents}: progressive occupancy {:.4}, expected 0.600 ± 0.01",
        r.occupancy
    );
    // Talk minutes per agent-hour is 60 × occupancy when there is no wrap-up.
    assert!(
        (r.talk_minutes_per_agent_hour - 60.0 * r.occupancy).abs() < 0.05,
        "seed {seed}"
    );
}

#[test]
fn progressive_occupancy_is_0_600_with_five_agents() {
    // 5 agents × 120 h / 200 s per cycle = 10 800 cycles.
    progressive(5, 120.0, 11);
}

#[test]
fn progressive_occupancy_is_0_600_with_fifty_agents() {
    // 50 agents × 12 h / 200 s per cycle = 10 800 cycles.
    progressive(50, 12.0, 12);
}

#[test]
fn open_loop_poisson_at_three_percent_matches_erlang_b() {
    // Erlang B at N = 20 and a 3% loss: occupancy 0.679 (pacing-reference.md). The busy-agent
    // count of an M/M/20/20 loss system has variance ≈ a ≈ 14 and correlation time ≈ 120 s,
    // so over T seconds sd(occupancy) ≈ √(14 · 240 / T) / 20: 0.0034 at 200 h, and ±0.01 is
    // 3 sd. Abandonment: ≈ 12 500 live answers × 3%, sd of the rate ≈ 0.0017 (×3 = 0.005).
    let n = 20;
    let seed = 5;
    let target = open_loop(n, 0.03, 0.25, 120.0);
    assert!((target.occupancy - 0.679).abs() < 0.001);
    let sc = Scenario::reference(n, 200.0);
    let r = Simulator::new(
        &sc,
        seed,
        Box::new(PoissonOpenLoop::new(target.dial_rate_per_s, seed)),
        false,
    )
    .run(&mut |_| {});
    assert!(
        (r.occupancy - target.occupancy).abs() <= 0.01,
        "seed {seed}: open-loop occupancy {:.4}, Erlang B {:.4}",
        r.occupancy,
        target.occupancy
    );
    assert!(
        (r.abandonment_rate - 0.03).abs() <= 0.005,
        "seed {seed}: open-loop abandonment {:.4}, Erlang B 0.03",
        r.abandonment_rate
    );
}
