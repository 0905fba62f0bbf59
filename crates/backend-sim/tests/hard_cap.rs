//! The abandonment cap is a hard guarantee: no run ends a legal period above it.
//! (The CLI runs the 200-seed, 30-day version: `dialer simulate --scenario realistic --seeds 200`.)

use backend_sim::scenario::WindowSpec;
use backend_sim::{run_seeds, Scenario};

fn check(window: WindowSpec, hours: f64, seeds: std::ops::Range<u64>) {
    let mut sc = Scenario::builtin("realistic").unwrap();
    sc.hours = hours;
    sc.campaign.abandon_window = window;
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
