//! `dialer simulate`: run one pacer on a scenario (an embedded default with no arguments), or
//! on many seeds to check that the abandonment cap holds in every run.

use anyhow::{bail, Context};
use backend_sim::timeline::Timeline;
use backend_sim::{html, report, run_seeds, run_spec, Scenario, DEFAULT_SCENARIO};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// The scenario and its overrides, shared by `simulate` and `compare`.
#[derive(clap::Args)]
pub struct ScenarioArgs {
    /// A scenario file (TOML) or a built-in name (reference-markov, small-team, large-floor,
    /// low-answer, machines, multi-tz, realistic).
    #[arg(long, default_value = DEFAULT_SCENARIO)]
    pub scenario: String,
    /// Seed of every random stream (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Simulated hours (overrides the scenario).
    #[arg(long)]
    pub hours: Option<f64>,
    /// Number of agents (overrides the scenario).
    #[arg(long)]
    pub agents: Option<u32>,
    /// Window the abandonment cap is measured over (overrides the scenario).
    #[arg(long, value_parser = ["30-days", "calendar-day"])]
    pub abandon_window: Option<String>,
    /// Count the people AMD hangs up on as abandoned calls (Ofcom): the campaign's estimate is
    /// the scenario's true false-positive share, and rates and verdicts include them.
    #[arg(long)]
    pub count_amd_false_positives: bool,
}

#[derive(clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// predictive, progressive, power:<ratio>, vicidial[:<target>%], issabel[:<threshold>],
    /// poisson[:<target>%], poisson:<dials/h>, poisson:<dials/h>/agent.
    #[arg(long, default_value = "predictive")]
    pub pacer: String,
    /// Run many seeds: a count (`200`, starting at --seed or 1) or a range (`1..200`, inclusive).
    #[arg(long)]
    pub seeds: Option<String>,
    /// Write a self-contained HTML report with charts of the run to this file.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Writes an HTML report, saying which file could not be written.
pub fn write_report(path: &std::path::Path, html: &str) -> anyhow::Result<()> {
    std::fs::write(path, html).with_context(|| format!("writing the report {}", path.display()))
}

impl ScenarioArgs {
    /// Reads the scenario file, or a built-in by name, and applies the overrides.
    pub fn load(&self) -> anyhow::Result<Scenario> {
        use backend_sim::scenario::WindowSpec;
        let mut s = read_scenario(&self.scenario)?;
        if let Some(a) = self.agents {
            s.agents.count = a;
        }
        if let Some(h) = self.hours {
            s.hours = h;
        }
        match self.abandon_window.as_deref() {
            Some("calendar-day") => s.campaign.abandon_window = WindowSpec::CalendarDay,
            Some("30-days") => s.campaign.abandon_window = WindowSpec::ThirtyDays,
            _ => {}
        }
        if self.count_amd_false_positives {
            s.campaign.count_amd_false_positives = true;
        }
        if let Err((field, problem)) = s.validate() {
            bail!("scenario {}: field `{field}`: {problem}", s.name);
        }
        Ok(s)
    }
}

/// A scenario file, or a built-in by name.
fn read_scenario(arg: &str) -> anyhow::Result<Scenario> {
    let path = std::path::Path::new(arg);
    Ok(if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Scenario::from_toml(&text, &path.display().to_string())?
    } else if arg.ends_with(".toml") || arg.contains('/') {
        bail!("scenario file {arg} not found");
    } else {
        Scenario::builtin(arg)?
    })
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of panicking.
pub fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let r = out.write_all(text.as_bytes()).and_then(|()| {
        if text.ends_with('\n') {
            Ok(())
        } else {
            out.write_all(b"\n")
        }
    });
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Parses `--seeds`: `N` (N seeds from `first`) or `A..B` (inclusive).
pub fn parse_seeds(spec: &str, first: u64) -> anyhow::Result<Vec<u64>> {
    let bad = || {
        anyhow::anyhow!("--seeds {spec:?}: expected a count such as 200 or a range such as 1..200")
    };
    let seeds: Vec<u64> = match spec.split_once("..") {
        Some((a, b)) => {
            let a: u64 = a.trim().parse().map_err(|_| bad())?;
            let b: u64 = b
                .trim()
                .trim_start_matches('=')
                .parse()
                .map_err(|_| bad())?;
            (a..=b).collect()
        }
        None => {
            let n: u64 = spec.trim().parse().map_err(|_| bad())?;
            (first..first.saturating_add(n)).collect()
        }
    };
    if seeds.is_empty() || seeds.len() > 100_000 {
        bail!("--seeds {spec:?}: between 1 and 100000 seeds");
    }
    Ok(seeds)
}

/// A progress bar on stderr, shown only on a terminal and once a run has lasted a second.
pub struct Progress {
    started: Instant,
    bar: Option<ProgressBar>,
    enabled: bool,
    label: String,
}

impl Progress {
    /// Shows `label` from now on.
    pub fn label(&mut self, label: &str) {
        if self.label != label {
            self.label = label.to_owned();
            if let Some(b) = &self.bar {
                b.set_message(self.label.clone());
            }
        }
    }

    pub fn new(label: impl Into<String>) -> Progress {
        Progress {
            started: Instant::now(),
            bar: None,
            enabled: std::io::stderr().is_terminal(),
            label: label.into(),
        }
    }

    /// `fraction` of the whole job is done.
    pub fn set(&mut self, fraction: f64) {
        if !self.enabled || self.started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let b = ProgressBar::new(1000);
            b.set_style(
                ProgressStyle::with_template("{msg} [{bar:40}] {percent}% ({elapsed}, eta {eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b.set_message(self.label.clone());
            b
        });
        bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
    }

    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

pub fn run(args: SimulateArgs) -> anyhow::Result<()> {
    let sc = args.scenario.load()?;
    let seed = args.scenario.seed.unwrap_or(sc.seed);
    if let Some(spec) = &args.seeds {
        if args.report.is_some() {
            bail!("--report charts one run: use it without --seeds, or compare --seeds --report");
        }
        let seeds = parse_seeds(spec, args.scenario.seed.unwrap_or(1))?;
        let n = seeds.len() as f64;
        let mut progress = Progress::new(format!("{} × {} seeds", args.pacer, seeds.len()));
        let (reports, summary) = run_seeds(&sc, &args.pacer, &seeds, &mut |i, f| {
            progress.set((i as f64 + f) / n)
        })
        .map_err(anyhow::Error::msg)?;
        progress.finish();
        if args.json {
            emit(&serde_json::to_string_pretty(
                &serde_json::json!({ "summary": summary, "runs": reports }),
            )?)?;
        } else {
            println!("scenario          {}", summary.scenario);
            println!("pacer             {}", summary.pacer);
            println!(
                "seeds             {} ({}..={})",
                summary.runs,
                seeds[0],
                seeds[seeds.len() - 1]
            );
            println!("periods checked   {}", summary.periods_checked);
            println!(
                "worst period      {:.3}% (seed {}), cap {:.1}%",
                100.0 * summary.worst_period_rate,
                summary.worst_seed,
                100.0 * summary.cap
            );
            println!(
                "violating runs    {} {:?}",
                summary.violating_runs, summary.violating_seeds
            );
            println!(
                "mean abandonment  {:.3}%",
                100.0 * summary.mean_abandonment_rate
            );
            println!(
                "occupancy         mean {:.3}, min {:.3}",
                summary.mean_occupancy, summary.min_occupancy
            );
            // What `dialer plan` answers with, to check its answer run by run.
            let days = backend_sim::plan::days(&sc);
            let talk: Vec<f64> = reports
                .iter()
                .map(|r| r.talk_minutes_per_agent_hour * r.staffed_agent_hours / 60.0 / days)
                .collect();
            if let Some(ci) = backend_sim::MeanCi::of(&talk) {
                println!("talk hours a day  {} (95% interval)", ci.show(1.0, 1));
            }
        }
        if summary.violating_runs > 0 {
            bail!(
                "{} of {} runs ended a period above the cap",
                summary.violating_runs,
                summary.runs
            );
        }
        return Ok(());
    }
    let mut progress = Progress::new(format!("{} on {}", args.pacer, sc.name));
    let step = args
        .report
        .as_ref()
        .map(|_| Timeline::step_for(sc.hours, html::REPORT_POINTS));
    let run = run_spec(&sc, &args.pacer, seed, step, &mut |f| progress.set(f))?;
    progress.finish();
    if let Some(path) = &args.report {
        write_report(path, &html::simulate_report(&sc, &run))?;
        eprintln!("report written to {}", path.display());
    }
    let r = run.report;
    if args.json {
        emit(&serde_json::to_string_pretty(&r)?)?;
    } else {
        emit(&report::summary(&r))?;
    }
    Ok(())
}
