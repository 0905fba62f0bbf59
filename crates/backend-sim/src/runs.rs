//! Runs made of simulations: one pacer, several pacers on the same random numbers, many seeds
//! on all cores, the tuning of the baselines, and the statistics over seeds.

use crate::pacers::{erlang_rate, pacer_by_name, parse_target, PoissonOpenLoop};
use crate::report::Report;
use crate::scenario::Scenario;
use crate::sim::Simulator;
use crate::stats::MeanCi;
use crate::timeline::Timeline;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// A pacer could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RunError {
    /// Not a pacer name (see [`crate::pacers::PACER_NAMES`]) or a bad argument.
    #[error("{0}")]
    BadPacer(String),
    /// A Poisson baseline found no dial rate that keeps this seed at its target.
    #[error("{spec} cannot be tuned on {scenario} (seed {seed}): {why}")]
    Untunable {
        spec: String,
        scenario: String,
        seed: u64,
        why: String,
    },
}

/// One simulated run, with its timeline when one was asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub report: Report,
    #[serde(skip)]
    pub timeline: Option<Timeline>,
}

/// Checks a pacer spec without running it.
pub fn check_spec(scenario: &Scenario, spec: &str) -> Result<(), RunError> {
    pacer_by_name(spec, scenario, 0)
        .map(|_| ())
        .map_err(RunError::BadPacer)
}

/// The target a `poisson` spec is tuned to (`poisson` = the cap, `poisson:2.5%`), or `None`
/// for a Poisson rate given outright or another pacer.
fn poisson_target(scenario: &Scenario, spec: &str) -> Result<Option<f64>, RunError> {
    match spec.split_once(':') {
        None if spec == "poisson" => Ok(Some(scenario.campaign.abandon_cap)),
        Some(("poisson", a)) if a.ends_with('%') => {
            parse_target(spec, a).map(Some).map_err(RunError::BadPacer)
        }
        _ => Ok(None),
    }
}

/// Runs `spec` on `scenario` with `seed`, sampling a timeline every `timeline_step_s` if
/// given. A `poisson` or `poisson:<target>%` is first tuned on this seed (see
/// [`tune_poisson`]).
pub fn run_spec(
    scenario: &Scenario,
    spec: &str,
    seed: u64,
    timeline_step_s: Option<f64>,
    progress: &mut dyn FnMut(f64),
) -> Result<Run, RunError> {
    let (pacer, guard) = match poisson_target(scenario, spec)? {
        Some(target) => {
            let rate = tune_poisson(scenario, seed, target).map_err(|why| RunError::Untunable {
                spec: spec.to_owned(),
                scenario: scenario.name.clone(),
                seed,
                why,
            })?;
            let p: Box<dyn dialer_core::pacing::Pacer> =
                Box::new(PoissonOpenLoop::per_agent(rate, seed));
            (p, false)
        }
        None => pacer_by_name(spec, scenario, seed).map_err(RunError::BadPacer)?,
    };
    let sim = Simulator::new(scenario, seed, pacer, guard);
    Ok(match timeline_step_s {
        Some(step) => {
            let (report, timeline) = sim.with_timeline(step).run_traced(progress);
            Run {
                report,
                timeline: Some(timeline),
            }
        }
        None => Run {
            report: sim.run(progress),
            timeline: None,
        },
    })
}

/// Runs `pacer` (a name, see [`crate::pacers::PACER_NAMES`]) on `scenario` with `seed`.
/// A bare `poisson` is first tuned by simulation to the scenario's cap.
pub fn run_one(
    scenario: &Scenario,
    pacer: &str,
    seed: u64,
    progress: &mut dyn FnMut(f64),
) -> Result<Report, String> {
    run_spec(scenario, pacer, seed, None, progress)
        .map(|r| r.report)
        .map_err(|e| e.to_string())
}

/// The open-loop rate per agent on duty (dials per second) whose run on `seed` ends with its
/// worst period at `target`: bisection on the rate, on the same random numbers, from the
/// Erlang B estimate. Open loop has no guard, so this is the most it can dial and still
/// comply, with hindsight. The rate follows the agents on duty, so logins, breaks and
/// shifts do not make the floor dial at a full floor's rate for one agent.
///
/// Fails, saying why, when even a twentieth of the estimate ends above the target: no rate
/// in reach complies, and a row for it would mean nothing.
pub fn tune_poisson(scenario: &Scenario, seed: u64, target: f64) -> Result<f64, String> {
    let guess = erlang_rate(scenario) / f64::from(scenario.agents.count);
    let run = |rate: f64| {
        Simulator::new(
            scenario,
            seed,
            Box::new(PoissonOpenLoop::per_agent(rate, seed)),
            false,
        )
        .run(&mut |_| {})
        .max_period_rate
    };
    let (mut lo, mut hi) = (guess * 0.05, guess * 3.0);
    let worst = run(lo);
    if worst > target {
        return Err(format!(
            "even at {:.1} dials per agent-hour its worst period is {:.2}%, above the {:.2}% target",
            lo * 3600.0,
            100.0 * worst,
            100.0 * target
        ));
    }
    if run(hi) <= target {
        // Lines or records bind before the cap does.
        return Ok(hi);
    }
    for _ in 0..14 {
        let mid = (lo * hi).sqrt();
        if run(mid) > target {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(lo)
}

/// Runs every pacer on the same scenario and seed: the same callees, attempt by attempt.
pub fn compare(
    scenario: &Scenario,
    pacers: &[String],
    seed: u64,
    progress: &mut dyn FnMut(usize, f64),
) -> Result<Vec<Report>, String> {
    for p in pacers {
        check_spec(scenario, p).map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    for (i, p) in pacers.iter().enumerate() {
        out.push(run_one(scenario, p, seed, &mut |f| progress(i, f))?);
    }
    Ok(out)
}

/// The number of threads to use for `jobs` (0 = one per core).
pub fn threads(jobs: usize) -> usize {
    if jobs > 0 {
        jobs
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

/// The work of [`parallel`] on one item, told how far along it is.
pub type Work<'a, I, T> = dyn Fn(&I, &mut dyn FnMut(f64)) -> T + Sync + 'a;

/// Runs `work` on every item on `threads` threads; results come back in the order of
/// `items`, whatever the order they finish in. `progress` is told the fraction of all the
/// work done, on the calling thread.
pub fn parallel<I: Sync, T: Send>(
    items: &[I],
    threads: usize,
    work: &Work<'_, I, T>,
    progress: &mut dyn FnMut(f64),
) -> Vec<T> {
    let n = items.len();
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    let mut done = vec![0.0f64; n];
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, Result<T, f64>)>();
        for _ in 0..threads.clamp(1, n.max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = work(&items[i], &mut |f| {
                    let _ = tx.send((i, Err(f)));
                });
                let _ = tx.send((i, Ok(t)));
            });
        }
        drop(tx);
        for (i, msg) in rx {
            match msg {
                Ok(t) => {
                    out[i] = Some(t);
                    done[i] = 1.0;
                }
                Err(f) => done[i] = f.clamp(0.0, 1.0),
            }
            progress(done.iter().sum::<f64>() / n.max(1) as f64);
        }
    });
    out.into_iter()
        .map(|t| t.expect("every job sends its result before its thread ends"))
        .collect()
}

/// What one pacer did over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacerSummary {
    /// The pacer as asked for (`vicidial:2.5%`, `poisson`).
    pub spec: String,
    /// Seeds it ran on (a Poisson baseline that cannot be tuned on a seed did not run).
    pub runs: usize,
    /// Seeds it could not be tuned on, and why.
    pub untunable: Vec<(u64, String)>,
    pub occupancy: Option<MeanCi>,
    pub talk_minutes_per_agent_hour: Option<MeanCi>,
    pub abandonment_rate: Option<MeanCi>,
    /// The worst legal period of all its runs, and the seed it came from.
    pub worst_period_rate: f64,
    pub worst_seed: u64,
    pub violating_seeds: Vec<u64>,
    /// Occupancy minus the first pacer's on the same seeds (`None` for the first).
    pub occupancy_vs_first: Option<MeanCi>,
}

impl PacerSummary {
    /// Ran on every seed and never ended a period above the cap.
    pub fn compliant(&self) -> bool {
        self.runs > 0 && self.untunable.is_empty() && self.violating_seeds.is_empty()
    }
}

/// Several pacers on the same seeds: every run, and the statistics over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedsComparison {
    pub scenario: String,
    pub agents: u32,
    pub hours: f64,
    pub cap: f64,
    pub seeds: Vec<u64>,
    pub pacers: Vec<String>,
    /// `runs[p][s]`: pacer `p` on seed `s` (`None`: it could not be tuned there).
    pub runs: Vec<Vec<Option<Run>>>,
    pub summaries: Vec<PacerSummary>,
    /// `wins[a][b]`: seeds on which pacer `a` beat pacer `b` on the same callees: `a` kept
    /// every period within the cap and `b` did not, or both did and `a` had the higher
    /// occupancy.
    pub wins: Vec<Vec<u32>>,
}

/// Whether run `a` beat run `b` on the same seed (see [`SeedsComparison::wins`]).
pub fn beats(a: &Report, b: &Report) -> bool {
    !a.violating && (b.violating || a.occupancy > b.occupancy)
}

/// Runs every pacer on every seed, `jobs` at a time (0 = one per core); records the
/// timelines of the first seed when `timeline_step_s` is given.
pub fn compare_seeds(
    scenario: &Scenario,
    pacers: &[String],
    seeds: &[u64],
    jobs: usize,
    timeline_step_s: Option<f64>,
    progress: &mut dyn FnMut(f64),
) -> Result<SeedsComparison, RunError> {
    for p in pacers {
        check_spec(scenario, p)?;
    }
    let work: Vec<(usize, usize)> = (0..pacers.len())
        .flat_map(|p| (0..seeds.len()).map(move |s| (p, s)))
        .collect();
    let results = parallel(
        &work,
        threads(jobs),
        &|&(p, s), progress| {
            let step = if s == 0 { timeline_step_s } else { None };
            run_spec(scenario, &pacers[p], seeds[s], step, progress)
        },
        progress,
    );
    let mut runs: Vec<Vec<Option<Run>>> = vec![Vec::new(); pacers.len()];
    let mut untunable: Vec<Vec<(u64, String)>> = vec![Vec::new(); pacers.len()];
    for ((p, s), r) in work.into_iter().zip(results) {
        match r {
            Ok(run) => runs[p].push(Some(run)),
            Err(RunError::Untunable { why, .. }) => {
                runs[p].push(None);
                untunable[p].push((seeds[s], why));
            }
            Err(e) => return Err(e),
        }
    }
    let summaries = pacers
        .iter()
        .enumerate()
        .map(|(p, spec)| {
            summarize(
                spec,
                &runs[p],
                &runs[0],
                std::mem::take(&mut untunable[p]),
                p == 0,
            )
        })
        .collect();
    let wins = (0..pacers.len())
        .map(|a| {
            (0..pacers.len())
                .map(|b| {
                    runs[a]
                        .iter()
                        .zip(&runs[b])
                        .filter(|(x, y)| match (x, y) {
                            (Some(x), Some(y)) => beats(&x.report, &y.report),
                            _ => false,
                        })
                        .count() as u32
                })
                .collect()
        })
        .collect();
    Ok(SeedsComparison {
        scenario: scenario.name.clone(),
        agents: scenario.agents.count,
        hours: scenario.hours,
        cap: scenario.campaign.abandon_cap,
        seeds: seeds.to_vec(),
        pacers: pacers.to_vec(),
        runs,
        summaries,
        wins,
    })
}

fn summarize(
    spec: &str,
    runs: &[Option<Run>],
    first: &[Option<Run>],
    untunable: Vec<(u64, String)>,
    is_first: bool,
) -> PacerSummary {
    let reports: Vec<&Report> = runs.iter().flatten().map(|r| &r.report).collect();
    let of = |f: fn(&Report) -> f64| MeanCi::of(&reports.iter().map(|r| f(r)).collect::<Vec<_>>());
    let worst = reports
        .iter()
        .max_by(|a, b| a.max_period_rate.total_cmp(&b.max_period_rate))
        .map_or((0.0, 0), |r| (r.max_period_rate, r.seed));
    let diffs: Vec<f64> = runs
        .iter()
        .zip(first)
        .filter_map(|(a, b)| Some(a.as_ref()?.report.occupancy - b.as_ref()?.report.occupancy))
        .collect();
    PacerSummary {
        spec: spec.to_owned(),
        runs: reports.len(),
        untunable,
        occupancy: of(|r| r.occupancy),
        talk_minutes_per_agent_hour: of(|r| r.talk_minutes_per_agent_hour),
        abandonment_rate: of(|r| r.abandonment_rate),
        worst_period_rate: worst.0,
        worst_seed: worst.1,
        violating_seeds: reports
            .iter()
            .filter(|r| r.violating)
            .map(|r| r.seed)
            .collect(),
        occupancy_vs_first: if is_first { None } else { MeanCi::of(&diffs) },
    }
}

/// The search of one baseline's best compliant setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineTuning {
    pub baseline: String,
    /// Settings tried, most aggressive first: (spec, violating seeds, mean occupancy).
    pub tried: Vec<(String, usize, f64)>,
    /// The most aggressive setting that kept every seed within the cap, if any.
    pub chosen: Option<String>,
}

/// The settings [`tune_baselines`] tries for a baseline, most aggressive first; empty for a
/// pacer that has none to tune (ours run with the guard; `poisson` is tuned on each seed).
pub fn baseline_candidates(scenario: &Scenario, baseline: &str) -> Vec<String> {
    let cap = scenario.campaign.abandon_cap;
    match baseline {
        "vicidial" => [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.35, 0.2]
            .iter()
            .map(|k| {
                let pct = (k * cap * 100.0 * 1000.0).round() / 1000.0;
                if *k == 1.0 {
                    "vicidial".to_owned()
                } else {
                    format!("vicidial:{pct}%")
                }
            })
            .collect(),
        "issabel" => [0.7, 0.8, 0.9, 0.95, 0.97, 0.99]
            .iter()
            .map(|t| {
                if *t == 0.97 {
                    "issabel".to_owned()
                } else {
                    format!("issabel:{t}")
                }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Searches each baseline's best compliant setting on `seeds`: its settings from the most
/// aggressive, stopping at the first that keeps every seed within the cap. The search sees
/// the seeds it is then compared on: a hindsight the baselines get and predictive does not.
pub fn tune_baselines(
    scenario: &Scenario,
    baselines: &[String],
    seeds: &[u64],
    jobs: usize,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<BaselineTuning>, RunError> {
    let mut out = Vec::new();
    let total = baselines.len().max(1) as f64;
    for (b, baseline) in baselines.iter().enumerate() {
        let mut tuning = BaselineTuning {
            baseline: baseline.clone(),
            tried: Vec::new(),
            chosen: None,
        };
        let candidates = baseline_candidates(scenario, baseline);
        let n = candidates.len().max(1) as f64;
        for (c, spec) in candidates.iter().enumerate() {
            let runs = parallel(
                seeds,
                threads(jobs),
                &|&seed, p| run_spec(scenario, spec, seed, None, p).map(|r| r.report),
                &mut |f| progress((b as f64 + (c as f64 + f) / n) / total),
            );
            let reports = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
            let violating = reports.iter().filter(|r| r.violating).count();
            let occ =
                reports.iter().map(|r| r.occupancy).sum::<f64>() / reports.len().max(1) as f64;
            tuning.tried.push((spec.clone(), violating, occ));
            if violating == 0 {
                tuning.chosen = Some(spec.clone());
                break;
            }
        }
        out.push(tuning);
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
