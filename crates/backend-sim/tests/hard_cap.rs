//! The abandonment cap is a hard guarantee: no run ends a legal period above it.
//! (The CLI runs the 200-seed, 30-day version: `dialer simulate --scenario realistic --seeds 200`.)

use backend_sim::scenario::WindowSpec;
use backend_sim::{run_seeds, Scenario};

fn check(window: WindowSpec, hours: f64, seeds: std::ops::Range<u64>) {
    check_scenario("realistic", false, window, hours, seeds);
}

fn check_scenario(
    name: &str,
    count_amd_false_positives: bool,
    window: WindowSpec,
    hours: f64,
    seeds: std::ops::Range<u64>,
) {
    let mut sc = Scenario::builtin(name).unwrap();
    sc.hours = hours;
    sc.campaign.abandon_window = window;
    sc.campaign.count_amd_false_positives = count_amd_false_positives;
    let seeds: Vec<u64> = seeds.collect();
    let (reports, summary) = run_seeds(&sc, "predictive", &seeds, &mut |_, _| {}).unwrap();
    for r in &reports {
        assert!(
            r.live_answers > 500,
            "seed {}: only {} live answers",
            r.seed,
            r.live_answers
        );
        for p in &r.periods {
            assert!(
                p.abandoned as f64 <= sc.campaign.abandon_cap * p.live_answers as f64 + 1e-9,
                "seed {}: period {} ended at {}/{} abandoned, above the {} cap ({window:?})",
                r.seed,
                p.start,
                p.abandoned,
                p.live_answers,
                sc.campaign.abandon_cap
            );
        }
    }
    assert_eq!(
        summary.violating_runs, 0,
        "violating seeds {:?}",
        summary.violating_seeds
    );
}

#[test]
fn no_thirty_day_window_ends_above_the_cap() {
    check(WindowSpec::ThirtyDays, 48.0, 1..6);
}

#[test]
fn no_calendar_day_ends_above_the_cap() {
    check(WindowSpec::CalendarDay, 48.0, 101..106);
}

/// With the people AMD hangs up on counted as abandoned (Ofcom), the cap still holds in every
/// calendar day: the engine spends its estimate per machine verdict and dials without AMD
/// when the budget cannot absorb another one.
#[test]
fn with_amd_false_positives_counted_no_calendar_day_ends_above_the_cap() {
    check_scenario("machines", true, WindowSpec::CalendarDay, 24.0, 1..4);
}
