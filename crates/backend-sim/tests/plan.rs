//! Staffing answers, checked by running the proposed staffing directly.

use backend_sim::plan::{self, fewest_agents, Sweep};
use backend_sim::{run_one, MeanCi, Scenario};

fn talk_hours(sc: &Scenario, mode: &str, agents: u32, seeds: &[u64]) -> MeanCi {
    let mut sc = sc.clone();
    sc.agents.count = agents;
    let v: Vec<f64> = seeds
        .iter()
        .map(|&seed| {
            let r = run_one(&sc, mode, seed, &mut |_| {}).unwrap();
            assert!(!r.violating, "seed {seed}: {agents} agents {r:?}");
            r.talk_minutes_per_agent_hour * r.staffed_agent_hours / 60.0
        })
        .collect();
    MeanCi::of(&v).unwrap()
}

#[test]
fn plan_answer_reaches_the_target_in_direct_runs_and_one_agent_fewer_does_not() {
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = 2.0;
    let seeds = [1, 2, 3, 4];
    let target = 5.0;
    let ans = fewest_agents(&sc, "predictive", target, 60, &seeds, 2, &mut |_, _| {}).unwrap();
    let p = ans
        .answer
        .clone()
        .unwrap_or_else(|| panic!("seeds {seeds:?}: no answer: {ans:?}"));
    assert!(
        p.agents > 3,
        "three agents give less than {target} h: {p:?}"
    );
    let direct = talk_hours(&sc, "predictive", p.agents, &seeds);
    assert_eq!(direct, p.talk_hours_per_day, "seeds {seeds:?}");
    assert!(
        direct.lo() >= target,
        "seeds {seeds:?}: {} agents give {}",
        p.agents,
        direct.show(1.0, 2)
    );
    let fewer = talk_hours(&sc, "predictive", p.agents - 1, &seeds);
    assert!(
        fewer.lo() < target,
        "seeds {seeds:?}: {} agents already give {}",
        p.agents - 1,
        fewer.show(1.0, 2)
    );
    assert!(ans.tried.len() <= 8, "a long search: {:?}", ans.tried.len());
}

#[test]
fn a_target_out_of_reach_has_no_answer_and_a_bad_target_is_refused() {
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = 1.0;
    let ans = fewest_agents(&sc, "progressive", 1000.0, 4, &[1, 2], 1, &mut |_, _| {}).unwrap();
    assert_eq!(ans.answer, None);
    assert!(ans.tried.iter().any(|p| p.agents == 4));
    let e = fewest_agents(&sc, "progressive", -1.0, 4, &[1], 1, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("must be positive"), "{e}");
}

#[test]
fn sweeps_parse_ranges_lists_and_percentages_and_explain_bad_ones() {
    assert_eq!(
        Sweep::parse("agents=5..20:5").unwrap(),
        Sweep::Agents(vec![5, 10, 15, 20])
    );
    assert_eq!(
        Sweep::parse("agents=3,4").unwrap(),
        Sweep::Agents(vec![3, 4])
    );
    match Sweep::parse("cap=1%,2.5%").unwrap() {
        Sweep::Cap(v) => assert!((v[0] - 0.01).abs() < 1e-12 && (v[1] - 0.025).abs() < 1e-12),
        other => panic!("{other:?}"),
    }
    match Sweep::parse("answer=0.2..0.3:0.05").unwrap() {
        Sweep::Answer(v) => assert_eq!(v.len(), 3),
        other => panic!("{other:?}"),
    }
    for (bad, why) in [
        ("agents", "no `=`"),
        ("cap=3", "not a percentage"),
        ("agents=2.5", "whole numbers"),
        ("agents=9..3", "positive step"),
        ("colour=red", "cannot sweep"),
        ("answer=1.5", "within (0, 1]"),
    ] {
        let e = Sweep::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad}: {e}");
    }
}

#[test]
fn an_answer_rate_sweep_moves_the_change_into_no_answers_and_refuses_impossible_shares() {
    let sc = Scenario::builtin("small-team").unwrap();
    let s = plan::with_answer_rate(&sc, 0.4).unwrap();
    assert_eq!(s.callees.live, 0.4);
    assert!((s.callees.no_answer - 0.4).abs() < 1e-12);
    let e = plan::with_answer_rate(&sc, 0.95).unwrap_err().to_string();
    assert!(e.contains("exceed 1"), "{e}");
    assert_eq!(
        plan::with_cap(&sc, 0.01).unwrap().campaign.abandon_cap,
        0.01
    );
}
