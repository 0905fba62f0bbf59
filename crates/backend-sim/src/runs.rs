//! Runs made of simulations: one pacer, several pacers on the same random numbers, many seeds.

use crate::pacers::{erlang_rate, pacer_by_name, PoissonOpenLoop};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::sim::Simulator;
use serde::{Deserialize, Serialize};

/// Runs `pacer` (a name, see [`crate::pacers::PACER_NAMES`]) on `scenario` with `seed`.
/// A bare `poisson` is first tuned by simulation to the scenario's cap.
pub fn run_one(
    scenario: &Scenario,
    pacer: &str,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, String> {
    if pacer == "poisson" {
        let rate = tune_poisson(scenario, seed);
        let sim = Simulator::new(
            scenario,
            seed,
            Box::new(PoissonOpenLoop::new(rate, seed)),
            false,
        );
        return Ok(sim.run(progress));
    }
    let (p, guard) = pacer_by_name(pacer, scenario, seed)?;
    Ok(Simulator::new(scenario, seed, p, guard).run(progress))
}

/// The open-loop rate (dials per second) whose run on `seed` ends at the cap: bisection on
/// the rate, on the same random numbers, starting from the Erlang B estimate. Open loop has
/// no guard, so this is the most it can dial and still comply, with hindsight.
pub fn tune_poisson(scenario: &Scenario, seed: u64) -> f64 {
    let cap = scenario.campaign.abandon_cap;
    let guess = erlang_rate(scenario);
    let run = |rate: f64| {
        Simulator::new(
            scenario,
            seed,
            Box::new(PoissonOpenLoop::new(rate, seed)),
            false,
        )
        .run(&mut |_| {})
        .max_period_rate
    };
    let (mut lo, mut hi) = (guess * 0.05, guess * 3.0);
    for _ in 0..14 {
        let mid = (lo * hi).sqrt();
        if run(mid) > cap {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    lo
}

/// Runs every pacer on the same scenario and seed: the same callees, attempt by attempt.
pub fn compare(
    scenario: &Scenario,
    pacers: &[String],
    seed: u64,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Vec<Report>, String> {
    for p in pacers {
        if p != "poisson" {
            pacer_by_name(p, scenario, seed)?;
        }
    }
    let mut out = Vec::new();
    for (i, p) in pacers.iter().enumerate() {
        out.push(run_one(scenario, p, seed, &mut |f| progress(i, f))?);
    }
    Ok(out)
}

/// What many seeds of one pacer did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedSummary {
    pub scenario: String,
    pub pacer: String,
    pub seeds: Vec<u64>,
    pub runs: usize,
    /// Runs with some period above the cap.
    pub violating_runs: usize,
    pub violating_seeds: Vec<u64>,
    pub cap: f64,
    /// The worst period of all runs, and the seed it came from.
    pub worst_period_rate: f64,
    pub worst_seed: u64,
    pub periods_checked: usize,
    pub mean_abandonment_rate: f64,
    pub mean_occupancy: f64,
    pub min_occupancy: f64,
}

/// Runs `pacer` on each seed and summarises the cap compliance.
pub fn run_seeds(
    scenario: &Scenario,
    pacer: &str,
    seeds: &[u64],
    progress: &mut dyn FnMut(usize, f64),
) -> Result<(Vec<Report>, SeedSummary), String> {
    pacer_by_name(pacer, scenario, 0)?;
    let mut reports = Vec::with_capacity(seeds.len());
    for (i, &seed) in seeds.iter().enumerate() {
        reports.push(run_one(scenario, pacer, seed, &mut |f| progress(i, f))?);
    }
    let n = reports.len().max(1) as f64;
    let worst = reports
        .iter()
        .max_by(|a, b| a.max_period_rate.total_cmp(&b.max_period_rate))
        .map_or((0.0, 0), |r| (r.max_period_rate, r.seed));
    let summary = SeedSummary {
        scenario: scenario.name.clone(),
        pacer: reports
            .first()
            .map_or_else(|| pacer.to_owned(), |r| r.pacer.clone()),
        seeds: seeds.to_vec(),
        runs: reports.len(),
        violating_runs: reports.iter().filter(|r| r.violating).count(),
        violating_seeds: reports
            .iter()
            .filter(|r| r.violating)
            .map(|r| r.seed)
            .collect(),
        cap: scenario.campaign.abandon_cap,
        worst_period_rate: worst.0,
        worst_seed: worst.1,
        periods_checked: reports.iter().map(|r| r.periods.len()).sum(),
        mean_abandonment_rate: reports.iter().map(|r| r.abandonment_rate).sum::<f64>() / n,
        mean_occupancy: reports.iter().map(|r| r.occupancy).sum::<f64>() / n,
        min_occupancy: reports
            .iter()
            .map(|r| r.occupancy)
            .fold(f64::INFINITY, f64::min),
    };
    Ok((reports, summary))
}
