//! `dialer swarm`: seeded campaigns with faults, judged by the independent oracle.

use anyhow::{bail, Context};
use backend_sim::swarm::{parse_seeds, run_seed, SwarmOptions, SwarmRun};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

#[derive(Args, Debug)]
pub struct SwarmArgs {
    /// Seeds to run, `FIRST..LAST` (both included), e.g. `1..10000`.
    #[arg(long, conflicts_with = "seed", default_value = "1..200")]
    seeds: String,
    /// Run one seed (with `--trace`, write its trace).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the run's set-up, trace and violations as JSON lines (one seed only).
    #[arg(long, requires = "seed")]
    trace: Option<PathBuf>,
    /// Seeds run at once.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Directory of the temporary spool files (default: /dev/shm when present).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

/// Totals over the seeds.
#[derive(Default)]
struct Totals {
    runs: u64,
    failing: u64,
    violations: u64,
    dials: u64,
    restarts: u64,
    campaign_days: f64,
}

impl Totals {
    fn add(&mut self, run: &SwarmRun) {
        self.runs += 1;
        self.dials += run.stats.dials;
        self.restarts += u64::from(run.stats.restarts);
        self.campaign_days += run.stats.campaign_days;
        self.violations += run.violations.len() as u64;
        if !run.violations.is_empty() {
            self.failing += 1;
        }
    }
}

pub fn run(args: SwarmArgs) -> anyhow::Result<()> {
    let options = SwarmOptions {
        work_dir: args.work_dir.clone(),
    };
    let started = std::time::Instant::now();
    let seeds = match args.seed {
        Some(s) => s..=s,
        None => parse_seeds(&args.seeds).map_err(anyhow::Error::msg)?,
    };
    let mut totals = Totals::default();
    let stdout = std::io::stdout();
    if let (Some(seed), Some(path)) = (args.seed, &args.trace) {
        let run = run_seed(seed, &options)?;
        write_trace(&run, path)?;
        totals.add(&run);
        report_seed(&mut stdout.lock(), &run)?;
    } else {
        let jobs = args.jobs.max(1);
        let next = Arc::new(AtomicU64::new(*seeds.start()));
        let last = *seeds.end();
        let (tx, rx) = mpsc::channel();
        let mut workers = Vec::new();
        for _ in 0..jobs {
            let (next, tx, options) = (next.clone(), tx.clone(), options.clone());
            workers.push(std::thread::spawn(move || loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed > last {
                    break;
                }
                if tx.send((seed, run_seed(seed, &options))).is_err() {
                    break;
                }
            }));
        }
        drop(tx);
        for (seed, result) in rx {
            let run = result.with_context(|| format!("seed {seed}"))?;
            totals.add(&run);
            report_seed(&mut stdout.lock(), &run)?;
        }
        for w in workers {
            if w.join().is_err() {
                bail!("a swarm worker panicked (its seed is printed above)");
            }
        }
    }
    println!(
        "{} runs, {:.1} simulated campaign-days, {} dials, {} restarts from the spool, {} violations in {} runs, {:.1} s",
        totals.runs,
        totals.campaign_days,
        totals.dials,
        totals.restarts,
        totals.violations,
        totals.failing,
        started.elapsed().as_secs_f64()
    );
    if totals.failing > 0 {
        bail!(
            "{} of {} seeds broke an invariant; replay one with `dialer swarm --seed S --trace out.jsonl`",
            totals.failing,
            totals.runs
        );
    }
    Ok(())
}

/// One line per failing seed: the seed, the invariant and its first violating event.
fn report_seed(out: &mut impl Write, run: &SwarmRun) -> anyhow::Result<()> {
    if let Some(v) = run.violations.first() {
        let more = run.violations.len() - 1;
        let also = if more > 0 {
            format!(" (and {more} more)")
        } else {
            String::new()
        };
        writeln!(out, "seed {}: {v}{also}", run.setup.seed)?;
    }
    Ok(())
}

fn write_trace(run: &SwarmRun, path: &PathBuf) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create the trace file {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    let line = |w: &mut std::io::BufWriter<std::fs::File>, v: serde_json::Value| {
        serde_json::to_writer(&mut *w, &v)?;
        writeln!(w)?;
        anyhow::Ok(())
    };
    line(&mut w, serde_json::json!({ "setup": run.setup }))?;
    for e in &run.trace {
        line(&mut w, serde_json::to_value(e)?)?;
    }
    for v in &run.violations {
        line(&mut w, serde_json::json!({ "violation": v }))?;
    }
    w.flush()
        .with_context(|| format!("cannot write the trace file {}", path.display()))?;
    Ok(())
}
