//! `dialer compare`: several pacers on the same scenario and seed — the same callees,
//! attempt by attempt — side by side.

use super::simulate::{emit, Progress, ScenarioArgs};
use backend_sim::{compare, report};

#[derive(clap::Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Comma-separated pacers. A bare `poisson` is tuned by bisection to end at the cap.
    #[arg(
        long,
        default_value = "predictive,progressive,power:2,vicidial,issabel,poisson"
    )]
    pub pacers: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let sc = args.scenario.load()?;
    let seed = args.scenario.seed.unwrap_or(sc.seed);
    let pacers: Vec<String> = args
        .pacers
        .split(',')
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if pacers.is_empty() {
        anyhow::bail!("--pacers: give at least one pacer");
    }
    let n = pacers.len() as f64;
    let mut progress = Progress::new(format!("{} pacers on {}", pacers.len(), sc.name));
    let reports = compare(&sc, &pacers, seed, &mut |i, f| {
        progress.set((i as f64 + f) / n)
    })
    .map_err(anyhow::Error::msg)?;
    progress.finish();
    if args.json {
        let out = serde_json::json!({
            "scenario": sc.name,
            "seed": seed,
            "hours": sc.hours,
            "agents": sc.agents.count,
            "results": reports,
        });
        emit(&serde_json::to_string_pretty(&out)?)?;
    } else {
        emit(&format!(
            "scenario {} — {} agents, {:.1} h, seed {}, cap {:.1}% ({})",
            sc.name,
            sc.agents.count,
            sc.hours,
            seed,
            100.0 * sc.campaign.abandon_cap,
            sc.description
        ))?;
        emit(&report::table(&reports))?;
    }
    Ok(())
}
