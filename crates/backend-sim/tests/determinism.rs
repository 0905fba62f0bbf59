//! Determinism and internal consistency.

use backend_sim::{pacer_by_name, run_one, Scenario, Simulator};

#[test]
fn same_seed_gives_identical_json() {
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = 3.0;
    for pacer in ["predictive", "vicidial", "poisson:400"] {
        let a = serde_json::to_string(&run_one(&sc, pacer, 77, &mut |_| {}).unwrap()).unwrap();
        let b = serde_json::to_string(&run_one(&sc, pacer, 77, &mut |_| {}).unwrap()).unwrap();
        assert_eq!(a, b, "seed 77, pacer {pacer}: two runs differ");
        let c = serde_json::to_string(&run_one(&sc, pacer, 78, &mut |_| {}).unwrap()).unwrap();
        assert_ne!(a, c, "seeds 77 and 78 gave the same run for {pacer}");
    }
}

#[test]
fn simulator_and_engine_count_the_same_abandons_and_live_answers() {
    // Patience, AMD, breaks, logouts: every way a live answer can end is exercised.
    let mut sc = Scenario::builtin("realistic").unwrap();
    sc.hours = 30.0;
    let seed = 3;
    let (p, guard) = pacer_by_name("vicidial", &sc, seed).unwrap();
    let (r, seen, live) = Simulator::new(&sc, seed, p, guard).run_with_crosscheck();
    assert!(
        r.abandoned > 0,
        "seed {seed}: the scenario should abandon without a guard"
    );
    assert_eq!(
        r.live_answers, live,
        "seed {seed}: live answers, engine vs simulator"
    );
    assert_eq!(
        r.abandoned, seen,
        "seed {seed}: abandons, engine vs simulator"
    );
}

#[test]
fn agents_off_shift_are_not_counted_as_staffed() {
    // 8 h shifts in a 24 h run: staffed time is about a third of the run.
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = 24.0;
    let r = run_one(&sc, "progressive", 9, &mut |_| {}).unwrap();
    let full = f64::from(sc.agents.count) * 24.0;
    assert!(
        r.staffed_agent_hours > 0.2 * full && r.staffed_agent_hours < 0.36 * full,
        "seed 9: staffed {} of {full} agent-hours",
        r.staffed_agent_hours
    );
}
