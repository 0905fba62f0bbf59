//! Staffing answers: how many agents, and which dial mode, reach a number of talk hours a day
//! within the abandonment cap — from simulations on many seeds, with confidence intervals.
//!
//! A point (a scenario, a dial mode, a number of agents) is run on every seed; it *reaches*
//! the target when no run ends a period above the cap and the lower end of the 95% interval
//! of the mean talk hours a day is at or above the target. The search for the fewest agents
//! steps by the talk each agent gave at the last point tried, then confirms the answer from
//! below: the answer reaches the target and one agent fewer does not.

use crate::runs::{parallel, run_spec, threads, RunError};
use crate::scenario::Scenario;
use crate::stats::MeanCi;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The most agents a search tries (the scenario format's limit).
pub const MAX_AGENTS: u32 = 5000;

/// A staffing question could not be asked or answered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Run(#[from] RunError),
    /// A sweep value or a target that makes no scenario.
    #[error("{0}")]
    Invalid(String),
}

/// Days in a run, for "talk hours a day": the run's hours over 24, and one day for a run
/// shorter than a day (a single shift).
pub fn days(sc: &Scenario) -> f64 {
    (sc.hours / 24.0).max(1.0)
}

/// What one (scenario, mode, agents) gave over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub mode: String,
    pub agents: u32,
    pub talk_hours_per_day: MeanCi,
    pub occupancy: MeanCi,
    pub abandonment_rate: MeanCi,
    pub worst_period_rate: f64,
    pub violating_seeds: Vec<u64>,
}

impl Point {
    /// Every seed within the cap, and the interval's lower end at or above `target`.
    pub fn reaches(&self, target: f64) -> bool {
        let lo = if self.talk_hours_per_day.half_width.is_some() {
            self.talk_hours_per_day.lo()
        } else {
            self.talk_hours_per_day.mean
        };
        self.violating_seeds.is_empty() && lo >= target
    }
}

/// Runs `mode` with `agents` agents on every seed.
pub fn evaluate(
    sc: &Scenario,
    mode: &str,
    agents: u32,
    seeds: &[u64],
    jobs: usize,
    progress: &mut dyn FnMut(f64),
) -> Result<Point, PlanError> {
    let mut sc = sc.clone();
    sc.agents.count = agents;
    sc.validate()
        .map_err(|(f, p)| PlanError::Invalid(format!("with {agents} agents, field `{f}`: {p}")))?;
    let runs = parallel(
        seeds,
        threads(jobs),
        &|&seed, p| run_spec(&sc, mode, seed, None, p).map(|r| r.report),
        progress,
    );
    let reports = runs.into_iter().collect::<Result<Vec<_>, _>>()?;
    let d = days(&sc);
    let ci = |v: Vec<f64>| {
        MeanCi::of(&v).ok_or_else(|| PlanError::Invalid("a run measured nothing".into()))
    };
    Ok(Point {
        mode: mode.to_owned(),
        agents,
        talk_hours_per_day: ci(reports
            .iter()
            .map(|r| r.talk_minutes_per_agent_hour * r.staffed_agent_hours / 60.0 / d)
            .collect())?,
        occupancy: ci(reports.iter().map(|r| r.occupancy).collect())?,
        abandonment_rate: ci(reports.iter().map(|r| r.abandonment_rate).collect())?,
        worst_period_rate: reports
            .iter()
            .map(|r| r.max_period_rate)
            .fold(0.0, f64::max),
        violating_seeds: reports
            .iter()
            .filter(|r| r.violating)
            .map(|r| r.seed)
            .collect(),
    })
}

/// The answer for one mode: the fewest agents that reach the target (`None`: not with
/// `max_agents`), and every point tried on the way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeAnswer {
    pub mode: String,
    pub answer: Option<Point>,
    pub tried: Vec<Point>,
}

/// Searches the fewest agents (at most `max_agents`) with which `mode` reaches `target` talk
/// hours a day. `progress` is told what runs and the fraction of that point done.
pub fn fewest_agents(
    sc: &Scenario,
    mode: &str,
    target: f64,
    max_agents: u32,
    seeds: &[u64],
    jobs: usize,
    progress: &mut dyn FnMut(&str, f64),
) -> Result<ModeAnswer, PlanError> {
    if !(target.is_finite() && target > 0.0) {
        return Err(PlanError::Invalid(format!(
            "the target of {target} talk hours a day must be positive"
        )));
    }
    let max_agents = max_agents.clamp(1, MAX_AGENTS);
    let mut tried: BTreeMap<u32, Point> = BTreeMap::new();
    // The agents the talk per agent of a point says the target needs.
    let aim = |p: &Point| {
        let per_agent = p.talk_hours_per_day.mean / f64::from(p.agents);
        if per_agent > 0.0 {
            (target / per_agent)
                .ceil()
                .clamp(1.0, f64::from(MAX_AGENTS)) as u32
        } else {
            MAX_AGENTS
        }
    };
    // `lo` fails (0: none known), `hi` reaches; each step lands strictly between them.
    let mut lo = 0u32;
    let mut hi: Option<u32> = None;
    let mut n = sc.agents.count.clamp(1, max_agents);
    for _ in 0..64 {
        let label = format!("{mode}, {n} agents");
        let point = evaluate(sc, mode, n, seeds, jobs, &mut |f| progress(&label, f))?;
        if point.reaches(target) {
            hi = Some(hi.map_or(n, |h| h.min(n)));
        } else {
            lo = lo.max(n);
        }
        let guess = aim(&point);
        tried.insert(n, point);
        n = match hi {
            None if lo >= max_agents => break,
            // Up by the aim, and by 5% at least (the interval may be what failed).
            None => guess.max(lo + 1 + lo / 20).min(max_agents),
            Some(h) if lo + 1 >= h => break,
            Some(h) => guess.clamp(lo + 1, h - 1),
        };
    }
    Ok(ModeAnswer {
        mode: mode.to_owned(),
        answer: hi.map(|h| tried[&h].clone()),
        tried: tried.into_values().collect(),
    })
}

/// What a sweep varies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "over", content = "values", rename_all = "snake_case")]
pub enum Sweep {
    /// Agent counts: each is run as is (no search).
    Agents(Vec<u32>),
    /// Abandonment caps (fractions).
    Cap(Vec<f64>),
    /// The share of dials a person answers (`callees.live`); no-answers make up the rest.
    Answer(Vec<f64>),
}

impl Sweep {
    /// Parses `agents=5..40`, `agents=5..40:5`, `agents=10,20,30`, `cap=1%,2%,3%`,
    /// `cap=1%..5%:1%`, `answer=0.2,0.3,0.4` or `answer=0.2..0.4:0.05`.
    pub fn parse(spec: &str) -> Result<Sweep, PlanError> {
        let bad = |why: &str| {
            PlanError::Invalid(format!(
                "--sweep {spec:?}: {why}; expected agents=5..40, cap=1%,2%,3% or answer=0.2..0.4:0.05"
            ))
        };
        let (what, values) = spec.split_once('=').ok_or_else(|| bad("no `=`"))?;
        let number = |t: &str, pct: bool| -> Result<f64, PlanError> {
            let t = t.trim();
            let (t, scale) = match t.strip_suffix('%') {
                Some(x) => (x, 0.01),
                None if pct => return Err(bad(&format!("{t:?} is not a percentage"))),
                None => (t, 1.0),
            };
            t.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(|x| x * scale)
                .ok_or_else(|| bad(&format!("{t:?} is not a number")))
        };
        let list = |pct: bool, default_step: f64| -> Result<Vec<f64>, PlanError> {
            if let Some((a, rest)) = values.split_once("..") {
                let (b, step) = match rest.split_once(':') {
                    Some((b, s)) => (b, number(s, pct)?),
                    None => (rest, default_step),
                };
                let (a, b) = (number(a, pct)?, number(b, pct)?);
                if step.is_nan() || step <= 0.0 || b < a || (b - a) / step > 1000.0 {
                    return Err(bad(
                        "a range goes up by a positive step, at most 1000 values",
                    ));
                }
                let n = ((b - a) / step + 1e-9).floor() as usize;
                Ok((0..=n).map(|k| a + step * k as f64).collect())
            } else {
                values.split(',').map(|t| number(t, pct)).collect()
            }
        };
        let sweep = match what.trim() {
            "agents" => {
                let v = list(false, 1.0)?;
                if v.iter()
                    .any(|x| *x < 1.0 || *x > f64::from(MAX_AGENTS) || x.fract() != 0.0)
                {
                    return Err(bad(&format!(
                        "agents are whole numbers within 1..={MAX_AGENTS}"
                    )));
                }
                Sweep::Agents(v.into_iter().map(|x| x as u32).collect())
            }
            "cap" => {
                let v = list(true, 0.01)?;
                if v.iter().any(|x| !(*x > 0.0 && *x <= 1.0)) {
                    return Err(bad("caps are within (0%, 100%]"));
                }
                Sweep::Cap(v)
            }
            "answer" => {
                let v = list(false, 0.05)?;
                if v.iter().any(|x| !(*x > 0.0 && *x <= 1.0)) {
                    return Err(bad("answer rates are within (0, 1]"));
                }
                Sweep::Answer(v)
            }
            other => return Err(bad(&format!("cannot sweep {other:?}"))),
        };
        Ok(sweep)
    }
}

/// `sc` with its cap set to `cap`.
pub fn with_cap(sc: &Scenario, cap: f64) -> Result<Scenario, PlanError> {
    let mut s = sc.clone();
    s.campaign.abandon_cap = cap;
    s.validate().map_err(|(f, p)| {
        PlanError::Invalid(format!("cap {:.2}%: field `{f}`: {p}", 100.0 * cap))
    })?;
    Ok(s)
}

/// `sc` where a person answers a share `live` of dials; the no-answers take up the change.
pub fn with_answer_rate(sc: &Scenario, live: f64) -> Result<Scenario, PlanError> {
    let mut s = sc.clone();
    let c = &mut s.callees;
    let no_answer = c.no_answer + c.live - live;
    if no_answer < 0.0 {
        return Err(PlanError::Invalid(format!(
            "answer rate {live}: with {} machines, {} busy and {} congestion the shares would exceed 1",
            c.machine, c.busy, c.congestion
        )));
    }
    c.live = live;
    c.no_answer = no_answer;
    s.validate()
        .map_err(|(f, p)| PlanError::Invalid(format!("answer rate {live}: field `{f}`: {p}")))?;
    Ok(s)
}
