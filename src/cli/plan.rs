//! `dialer plan`: how many agents, and which dial mode, give a number of talk hours a day
//! within the abandonment cap — answered from simulations on many seeds, with intervals.

use super::simulate::{emit, parse_seeds, Progress, ScenarioArgs};
use backend_sim::pacers::parse_target;
use backend_sim::plan::{self, Point, Sweep};
use backend_sim::Scenario;

#[derive(clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Talk hours a day to reach (a day: 24 simulated hours, or the whole run when shorter).
    #[arg(long)]
    pub target_talk_hours: f64,
    /// Abandonment cap (overrides the scenario's), e.g. 3%.
    #[arg(long)]
    pub cap: Option<String>,
    /// Dial modes to consider (our pacers, which run with the abandonment guard).
    #[arg(long, default_value = "predictive,power:2,progressive")]
    pub modes: String,
    /// Seeds each point is run on: a count or a range (inclusive).
    #[arg(long, default_value = "1..10")]
    pub seeds: String,
    /// Vary one thing: agents=5..40[:step] (each count run as is), cap=1%,2%,3% or
    /// answer=0.2..0.4:0.05 (the agents needed at each value).
    #[arg(long)]
    pub sweep: Option<String>,
    /// The most agents a search tries.
    #[arg(long, default_value_t = 400)]
    pub max_agents: u32,
    /// Simulations run at once (default: one per core).
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

fn header() -> String {
    format!(
        "{:<8} {:<14} {:>6}  {:<18} {:<16} {:<16} {:>9}  {}\n",
        "value", "mode", "agents", "talk h/day", "occupancy", "abandon %", "worst %", "reaches"
    )
}

fn row(value: &str, p: &Point, target: f64) -> String {
    format!(
        "{:<8} {:<14} {:>6}  {:<18} {:<16} {:<16} {:>9.3}  {}\n",
        value,
        p.mode,
        p.agents,
        p.talk_hours_per_day.show(1.0, 1),
        p.occupancy.show(1.0, 3),
        p.abandonment_rate.show(100.0, 3),
        100.0 * p.worst_period_rate,
        if p.reaches(target) { "yes" } else { "no" }
    )
}

/// Answers for every mode on one scenario; the best is the fewest agents (then the most
/// talk).
fn answer(
    sc: &Scenario,
    modes: &[String],
    args: &PlanArgs,
    seeds: &[u64],
    progress: &mut Progress,
) -> anyhow::Result<Vec<plan::ModeAnswer>> {
    let mut out = Vec::new();
    for m in modes {
        out.push(plan::fewest_agents(
            sc,
            m,
            args.target_talk_hours,
            args.max_agents,
            seeds,
            args.jobs,
            &mut |label, f| {
                progress.label(label);
                progress.set(f);
            },
        )?);
    }
    Ok(out)
}

fn best(answers: &[plan::ModeAnswer]) -> Option<&Point> {
    answers
        .iter()
        .filter_map(|a| a.answer.as_ref())
        .min_by(|a, b| {
            a.agents.cmp(&b.agents).then(
                b.talk_hours_per_day
                    .mean
                    .total_cmp(&a.talk_hours_per_day.mean),
            )
        })
}

pub fn run(args: PlanArgs) -> anyhow::Result<()> {
    let mut sc = args.scenario.load()?;
    if let Some(c) = &args.cap {
        sc = plan::with_cap(&sc, parse_target("--cap", c).map_err(anyhow::Error::msg)?)?;
    }
    let seeds = parse_seeds(&args.seeds, 1)?;
    let modes: Vec<String> = args
        .modes
        .split(',')
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .collect();
    if modes.is_empty() {
        anyhow::bail!("--modes: give at least one dial mode");
    }
    for m in &modes {
        backend_sim::runs::check_spec(&sc, m)?;
    }
    if !(args.target_talk_hours.is_finite() && args.target_talk_hours > 0.0) {
        anyhow::bail!(
            "--target-talk-hours {}: give a positive number of hours",
            args.target_talk_hours
        );
    }
    let sweep = args.sweep.as_deref().map(Sweep::parse).transpose()?;
    let target = args.target_talk_hours;
    let days = plan::days(&sc);
    let mut progress = Progress::new(format!("planning on {}", sc.name));
    let mut text = format!(
        "plan: {} — target {target} talk hours a day ({}), cap {:.2}%, seeds {}..={} ({}), 95% intervals\n",
        sc.name,
        if sc.hours <= 24.0 {
            format!("a day = the {:.1} h run", sc.hours)
        } else {
            format!("{days:.1} days simulated")
        },
        100.0 * sc.campaign.abandon_cap,
        seeds[0],
        seeds[seeds.len() - 1],
        seeds.len()
    );
    let mut json = Vec::new();
    match &sweep {
        Some(Sweep::Agents(counts)) => {
            text.push_str(&header());
            for &n in counts {
                for m in &modes {
                    let label = format!("{m}, {n} agents");
                    let p = plan::evaluate(&sc, m, n, &seeds, args.jobs, &mut |f| {
                        progress.label(&label);
                        progress.set(f);
                    })?;
                    text.push_str(&row(&n.to_string(), &p, target));
                    json.push(serde_json::json!({ "agents": n, "point": p }));
                }
            }
        }
        Some(Sweep::Cap(values)) | Some(Sweep::Answer(values)) => {
            let is_cap = matches!(sweep, Some(Sweep::Cap(_)));
            text.push_str(&header());
            for &v in values {
                let (variant, shown) = if is_cap {
                    (plan::with_cap(&sc, v)?, format!("{:.2}%", 100.0 * v))
                } else {
                    (plan::with_answer_rate(&sc, v)?, format!("{v:.3}"))
                };
                let answers = answer(&variant, &modes, &args, &seeds, &mut progress)?;
                for a in &answers {
                    match &a.answer {
                        Some(p) => text.push_str(&row(&shown, p, target)),
                        None => text.push_str(&format!(
                            "{shown:<8} {:<14} not reached with {} agents\n",
                            a.mode, args.max_agents
                        )),
                    }
                }
                json.push(serde_json::json!({ if is_cap { "cap" } else { "answer_rate" }: v, "answers": answers }));
            }
        }
        None => {
            let answers = answer(&sc, &modes, &args, &seeds, &mut progress)?;
            text.push_str(&header());
            for a in &answers {
                match &a.answer {
                    Some(p) => text.push_str(&row("", p, target)),
                    None => text.push_str(&format!(
                        "{:<8} {:<14} not reached with {} agents\n",
                        "", a.mode, args.max_agents
                    )),
                }
            }
            match best(&answers) {
                Some(p) => text.push_str(&format!(
                    "\nanswer: {} agents in {} mode give {} talk hours a day (95% interval; target {target}), \
                     occupancy {}, every seed within the cap (worst period {:.3}%).\n\
                     check: dialer simulate --scenario {} --agents {} --pacer {} --seeds {}\n",
                    p.agents,
                    p.mode,
                    p.talk_hours_per_day.show(1.0, 1),
                    p.occupancy.show(1.0, 3),
                    100.0 * p.worst_period_rate,
                    args.scenario.scenario,
                    p.agents,
                    p.mode,
                    args.seeds
                )),
                None => text.push_str(&format!(
                    "\nanswer: no mode reaches {target} talk hours a day with at most {} agents\n",
                    args.max_agents
                )),
            }
            json.push(serde_json::json!({ "answers": answers }));
        }
    }
    progress.finish();
    if args.json {
        emit(&serde_json::to_string_pretty(&serde_json::json!({
            "scenario": sc.name,
            "target_talk_hours_per_day": target,
            "cap": sc.campaign.abandon_cap,
            "seeds": seeds,
            "results": json,
        }))?)?;
    } else {
        emit(&text)?;
    }
    Ok(())
}
