//! Swarm runs judged by the independent oracle.

use backend_sim::swarm::{run_seed, SwarmOptions, SwarmSetup};

/// Seeds the CI runs: small runs, so a debug build gets through them in about a minute.
const CI_SEEDS: u64 = 200;

#[test]
fn ci_seeds_break_no_invariant() {
    let opts = SwarmOptions::default();
    let n: u64 = std::env::var("SWARM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_SEEDS);
    let mut failures = Vec::new();
    let mut dials = 0;
    for seed in 1..=n {
        let run = run_seed(seed, &opts).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        dials += run.stats.dials;
        if let Some(v) = run.violations.first() {
            failures.push(format!("seed {seed}: {v}"));
        }
    }
    assert!(dials > 0);
    assert!(
        failures.is_empty(),
        "{} failing seeds:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn same_seed_same_trace() {
    let opts = SwarmOptions::default();
    let a = run_seed(11, &opts).unwrap();
    let b = run_seed(11, &opts).unwrap();
    let text = |r: &backend_sim::swarm::SwarmRun| serde_json::to_string(&r.trace).unwrap();
    assert_eq!(text(&a), text(&b), "seed 11");
    assert_eq!(SwarmSetup::draw(11), a.setup);
}

#[test]
#[ignore = "debug aid"]
fn dump_trace_tmp() {
    let seed: u64 = std::env::var("SWARM_SEED").unwrap().parse().unwrap();
    let run = run_seed(seed, &SwarmOptions::default()).unwrap();
    let mut out = serde_json::to_string(&run.setup).unwrap() + "\n";
    for e in &run.trace {
        out += &serde_json::to_string(e).unwrap();
        out.push('\n');
    }
    std::fs::write(format!("/tmp/swarm-{seed}.jsonl"), out).unwrap();
    for v in &run.violations {
        println!("{v}");
    }
}
