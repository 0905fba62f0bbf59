//! `dialer compare`: several pacers on the same scenario and seeds — the same callees,
//! attempt by attempt — side by side; over many seeds, means with 95% intervals and who
//! beat whom seed by seed.

use super::simulate::{emit, parse_seeds, write_report, Progress, ScenarioArgs};
use backend_sim::runs::baseline_candidates;
use backend_sim::timeline::Timeline;
use backend_sim::{compare_seeds, html, report, tune_baselines};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Comma-separated pacers. Baselines take a target: `vicidial:2.5%`, `poisson:2.5%`
    /// (a bare `poisson` is tuned on each seed, per agent on duty, to end at the cap).
    #[arg(
        long,
        default_value = "predictive,progressive,power:2,vicidial,issabel,poisson"
    )]
    pub pacers: String,
    /// Run many seeds: a count (`20`, starting at --seed or 1) or a range (`1..20`, inclusive).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Simulations run at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Also search each baseline's (vicidial, issabel) best setting that keeps every seed
    /// within the cap, and compare it too.
    #[arg(long)]
    pub tune_baselines: bool,
    /// Write a self-contained HTML report with charts to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let sc = args.scenario.load()?;
    let seeds = match &args.seeds {
        Some(spec) => parse_seeds(spec, args.scenario.seed.unwrap_or(1))?,
        None => vec![args.scenario.seed.unwrap_or(sc.seed)],
    };
    let mut pacers: Vec<String> = args
        .pacers
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if pacers.is_empty() {
        anyhow::bail!("--pacers: give at least one pacer");
    }
    for p in &pacers {
        backend_sim::runs::check_spec(&sc, p)?;
    }
    let mut notes = Vec::new();
    if args.tune_baselines {
        let baselines: Vec<String> = pacers
            .iter()
            .filter(|p| !baseline_candidates(&sc, p).is_empty())
            .cloned()
            .collect();
        let mut progress = Progress::new(format!("tuning baselines on {}", sc.name));
        let tunings = tune_baselines(&sc, &baselines, &seeds, args.jobs, &mut |f| progress.set(f))?;
        progress.finish();
        for t in tunings {
            let tried: Vec<String> = t
                .tried
                .iter()
                .map(|(s, v, o)| format!("{s} ({v} violating, occupancy {o:.3})"))
                .collect();
            match &t.chosen {
                Some(c) => {
                    notes.push(format!(
                        "{}: best setting within the cap on every seed: {c}; tried {}",
                        t.baseline,
                        tried.join(", ")
                    ));
                    if !pacers.contains(c) {
                        let at = pacers
                            .iter()
                            .position(|p| *p == t.baseline)
                            .map_or(pacers.len(), |i| i + 1);
                        pacers.insert(at, c.clone());
                    }
                }
                None => notes.push(format!(
                    "{}: no setting tried kept every seed within the cap; tried {}",
                    t.baseline,
                    tried.join(", ")
                )),
            }
        }
    }
    let step = args
        .report
        .as_ref()
        .map(|_| Timeline::step_for(sc.hours, html::REPORT_POINTS));
    let n = pacers.len() * seeds.len();
    let mut progress = Progress::new(format!("{n} runs on {}", sc.name));
    let cmp = compare_seeds(&sc, &pacers, &seeds, args.jobs, step, &mut |f| {
        progress.set(f)
    })?;
    progress.finish();
    if let Some(path) = &args.report {
        write_report(path, &html::compare_report(&sc, &cmp))?;
    }
    if args.json {
        let out = serde_json::json!({
            "scenario": sc.name,
            "seeds": seeds,
            "hours": sc.hours,
            "agents": sc.agents.count,
            "tuning": notes,
            "summaries": cmp.summaries,
            "wins": cmp.wins,
            "results": cmp.runs,
        });
        emit(&serde_json::to_string_pretty(&out)?)?;
        return Ok(());
    }
    let mut head = format!(
        "scenario {} — {} agents, {:.1} h, cap {:.1}% ({})",
        sc.name,
        sc.agents.count,
        sc.hours,
        100.0 * sc.campaign.abandon_cap,
        sc.description
    );
    if sc.campaign.count_amd_false_positives {
        head.push_str(&format!(
            ", people hung up on by AMD counted as abandoned (true share {:.2}% of machine \
             verdicts, campaign estimate {:.2}%)",
            100.0 * sc.callees.amd_false_positive_share(),
            100.0 * sc.campaign().abandon.amd_false_positive_rate
        ));
    }
    if seeds.len() == 1 {
        emit(&format!("{head}, seed {}", seeds[0]))?;
        let reports: Vec<_> = cmp
            .runs
            .iter()
            .flatten()
            .flatten()
            .map(|r| r.report.clone())
            .collect();
        let mut text = report::table(&reports);
        for s in cmp.summaries.iter().filter(|s| !s.untunable.is_empty()) {
            text.push_str(&format!(
                "{:<16} cannot be tuned: {}\n",
                s.spec, s.untunable[0].1
            ));
        }
        emit(&text)?;
    } else {
        emit(&format!(
            "{head}\nseeds {}..={} ({}), means ± 95% interval (Student t)",
            seeds[0],
            seeds[seeds.len() - 1],
            seeds.len()
        ))?;
        emit(&report::seeds_table(&cmp))?;
    }
    for n in notes {
        emit(&format!("tuning: {n}"))?;
    }
    if let Some(path) = &args.report {
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
