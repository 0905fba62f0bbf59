//! Many seeds on all cores; the baselines' targets and their tuning; the tuned Poisson
//! baseline on scenarios with shifts.

use backend_sim::runs::{tune_poisson, RunError};
use backend_sim::{compare_seeds, run_one, run_spec, tune_baselines, Scenario};

fn short_team(hours: f64) -> Scenario {
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = hours;
    sc
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn seeds_on_several_threads_give_the_same_bytes_in_the_same_order_as_on_one() {
    let sc = short_team(2.0);
    let pacers = names(&["predictive", "progressive", "vicidial"]);
    let seeds = [5, 6, 7, 8];
    let one = compare_seeds(&sc, &pacers, &seeds, 1, None, &mut |_| {}).unwrap();
    let three = compare_seeds(&sc, &pacers, &seeds, 3, None, &mut |_| {}).unwrap();
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&three).unwrap(),
        "seeds {seeds:?}: 1 thread and 3 threads differ"
    );
    for (p, runs) in one.runs.iter().enumerate() {
        for (s, run) in runs.iter().enumerate() {
            let r = &run.as_ref().unwrap().report;
            assert_eq!(r.seed, seeds[s]);
            // Each cell is the run `run_one` gives for that pacer and seed.
            let alone = run_one(&sc, &pacers[p], seeds[s], &mut |_| {}).unwrap();
            assert_eq!(*r, alone, "pacer {} seed {}", pacers[p], seeds[s]);
        }
    }
}

#[test]
fn summaries_hold_the_mean_and_interval_of_the_runs_and_wins_are_paired_by_seed() {
    let sc = short_team(2.0);
    let pacers = names(&["predictive", "progressive"]);
    let seeds = [1, 2, 3, 4, 5];
    let cmp = compare_seeds(&sc, &pacers, &seeds, 2, None, &mut |_| {}).unwrap();
    let occ: Vec<f64> = cmp.runs[0]
        .iter()
        .map(|r| r.as_ref().unwrap().report.occupancy)
        .collect();
    let ci = cmp.summaries[0].occupancy.unwrap();
    assert_eq!(ci.n, 5);
    assert!((ci.mean - occ.iter().sum::<f64>() / 5.0).abs() < 1e-12);
    assert!(ci.half_width.unwrap() > 0.0);
    // Paired by seed: a win is counted on each seed for exactly one side unless tied.
    let mut expected = 0;
    for s in 0..seeds.len() {
        let a = &cmp.runs[0][s].as_ref().unwrap().report;
        let b = &cmp.runs[1][s].as_ref().unwrap().report;
        expected += u32::from(backend_sim::runs::beats(a, b));
    }
    assert_eq!(cmp.wins[0][1], expected);
    assert!(cmp.wins[0][1] + cmp.wins[1][0] <= seeds.len() as u32);
    // The paired difference is taken seed by seed against the first pacer.
    let diff = cmp.summaries[1].occupancy_vs_first.unwrap();
    let prog = cmp.summaries[1].occupancy.unwrap();
    assert!((diff.mean - (prog.mean - ci.mean)).abs() < 1e-12);
    assert!(cmp.summaries[0].occupancy_vs_first.is_none());
}

#[test]
fn a_lower_vicidial_target_abandons_less_on_the_same_callees() {
    let sc = Scenario::reference(20, 4.0);
    let seed = 1;
    let at_cap = run_one(&sc, "vicidial", seed, &mut |_| {}).unwrap();
    let low = run_one(&sc, "vicidial:1%", seed, &mut |_| {}).unwrap();
    assert_eq!(low.pacer, "vicidial:1%");
    assert!(
        low.abandonment_rate < at_cap.abandonment_rate,
        "seed {seed}: 1% target abandons {:.4}, 3% abandons {:.4}",
        low.abandonment_rate,
        at_cap.abandonment_rate
    );
}

#[test]
fn tuning_vicidial_finds_a_target_below_the_cap_that_keeps_every_seed_compliant() {
    // VICIdial aiming at the 3% cap overshoots it by a hair (3.2–3.3%) on these seeds.
    // (On small-team no target helps: its dial level never goes under one line per agent.)
    let sc = Scenario::reference(20, 4.0);
    let seeds = [1, 2];
    let t = tune_baselines(&sc, &names(&["vicidial"]), &seeds, 2, &mut |_| {}).unwrap();
    let t = &t[0];
    assert_eq!(t.tried[0].0, "vicidial");
    assert!(t.tried[0].1 > 0, "seeds {seeds:?}: {t:?}");
    let chosen = t
        .chosen
        .clone()
        .unwrap_or_else(|| panic!("seeds {seeds:?}: {t:?}"));
    assert_ne!(chosen, "vicidial");
    for seed in seeds {
        let r = run_one(&sc, &chosen, seed, &mut |_| {}).unwrap();
        assert!(!r.violating, "seed {seed}: {chosen} {r:?}");
    }
}

#[test]
fn tuned_poisson_on_a_scenario_with_shifts_dials_for_the_agents_on_duty() {
    // The defect: tuned to one constant rate, open-loop Poisson dialed at the whole floor's
    // rate for the first agent logged in and through every break, so on small-team it tuned
    // itself to 7–22 dials an hour and an occupancy of 0.02–0.09. Its rate now follows the
    // agents on duty.
    let sc = short_team(8.0);
    for seed in [1, 2] {
        let r = run_one(&sc, "poisson", seed, &mut |_| {}).unwrap();
        assert!(!r.violating, "seed {seed}: {r:?}");
        assert!(
            r.dials_per_hour > 30.0 && r.occupancy > 0.15,
            "seed {seed}: {} dials an hour, occupancy {:.3}",
            r.dials_per_hour,
            r.occupancy
        );
        assert!(r.pacer.ends_with("/agent"), "{}", r.pacer);
    }
}

#[test]
fn a_poisson_baseline_that_no_rate_keeps_within_the_target_says_it_cannot_be_tuned() {
    // One agent, zero patience, a campaign whose cap is 90%: the search starts from the
    // Erlang rate for 90% and goes down to a twentieth of it, where a lone agent still
    // misses about 30% of live answers. At a 3% target no rate in reach complies.
    let mut sc = Scenario::reference(1, 2.0);
    sc.campaign.abandon_cap = 0.9;
    let seed = 4;
    let why = tune_poisson(&sc, seed, 0.03).unwrap_err();
    assert!(why.contains("above the 3.00% target"), "seed {seed}: {why}");
    match run_spec(&sc, "poisson:3%", seed, None, &mut |_| {}) {
        Err(RunError::Untunable { spec, seed: s, .. }) => {
            assert_eq!((spec.as_str(), s), ("poisson:3%", seed));
        }
        other => panic!("seed {seed}: expected untunable, got {other:?}"),
    }
    let cmp = compare_seeds(
        &sc,
        &names(&["progressive", "poisson:3%"]),
        &[seed],
        1,
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(cmp.summaries[1].runs, 0);
    assert_eq!(cmp.summaries[1].untunable.len(), 1);
    assert!(!cmp.summaries[1].compliant());
    let table = backend_sim::report::seeds_table(&cmp);
    assert!(table.contains("CANNOT BE TUNED on seed(s) 4"), "{table}");
}

#[test]
fn a_timeline_changes_nothing_in_the_run_and_accounts_for_every_agent() {
    let sc = short_team(3.0);
    let seed = 11;
    let plain = run_spec(&sc, "predictive", seed, None, &mut |_| {}).unwrap();
    let traced = run_spec(&sc, "predictive", seed, Some(300.0), &mut |_| {}).unwrap();
    assert_eq!(plain.report, traced.report, "seed {seed}");
    let tl = traced.timeline.unwrap();
    // Every 5 minutes from 0 to 3 h inclusive.
    assert_eq!(tl.samples.len(), 37);
    assert_eq!(tl.samples.last().unwrap().t_s, 3.0 * 3600.0);
    for s in &tl.samples {
        let all = s.agents_staffed() + s.agents_paused + s.agents_offline;
        assert_eq!(all, sc.agents.count, "seed {seed} at {} s", s.t_s);
    }
    let last = tl.samples.last().unwrap();
    assert!(
        (last.staffed_ms / 3.6e6 - traced.report.staffed_agent_hours).abs() < 1e-9,
        "seed {seed}"
    );
    assert_eq!(last.period_live, traced.report.live_answers);
    assert!(tl.samples.iter().any(|s| s.lines_in_flight() > 0));
}
