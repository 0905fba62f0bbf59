//! What a run measured.

use serde::{Deserialize, Serialize};

/// One abandonment period of the run, as the engine's ledger closed (or left) it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodReport {
    pub start: String,
    pub live_answers: u64,
    pub abandoned: u64,
    pub rate: f64,
}

/// The result of one simulated run. Every rate is over the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub pacer: String,
    pub seed: u64,
    pub hours: f64,
    pub agents: u32,
    /// Whether the engine's abandonment guard was on.
    pub guard: bool,
    pub dials: u64,
    /// Live answers (human or unknown) as the engine counts them.
    pub live_answers: u64,
    /// Abandoned live answers as the engine counts them (all periods).
    pub abandoned: u64,
    pub abandonment_rate: f64,
    pub cap: f64,
    /// The worst period's abandonment rate.
    pub max_period_rate: f64,
    /// Some period ended above the cap.
    pub violating: bool,
    /// (Talking + wrap-up) / staffed time (logged in, not on a break).
    pub occupancy: f64,
    pub talk_minutes_per_agent_hour: f64,
    /// Answer to agent, over live answers that reached one.
    pub mean_wait_s: f64,
    pub dials_per_hour: f64,
    /// Calls that reached an agent, per hour.
    pub connected_per_hour: f64,
    pub connected: u64,
    pub machines_detected: u64,
    /// Humans hung up because AMD called them machines.
    pub amd_false_positives: u64,
    pub records_finished: u64,
    pub staffed_agent_hours: f64,
    pub periods: Vec<PeriodReport>,
}

/// A side-by-side table of reports (one row per pacer).
pub fn table(reports: &[Report]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<16} {:>8} {:>8} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>8}  {}\n",
        "pacer",
        "dials",
        "live",
        "aband",
        "rate%",
        "max%",
        "occ",
        "talk/h",
        "wait_s",
        "conn/h",
        "verdict"
    ));
    for r in reports {
        out.push_str(&format!(
            "{:<16} {:>8} {:>8} {:>7} {:>7.3} {:>7.3} {:>6.3} {:>7.2} {:>7.2} {:>8.1}  {}\n",
            r.pacer,
            r.dials,
            r.live_answers,
            r.abandoned,
            100.0 * r.abandonment_rate,
            100.0 * r.max_period_rate,
            r.occupancy,
            r.talk_minutes_per_agent_hour,
            r.mean_wait_s,
            r.connected_per_hour,
            if r.violating {
                "VIOLATING (above cap)"
            } else {
                "ok"
            },
        ));
    }
    out
}

/// A readable summary of one run.
pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    s.push_str(&format!("scenario        {}\n", r.scenario));
    s.push_str(&format!(
        "pacer           {}{}\n",
        r.pacer,
        if r.guard {
            ""
        } else {
            " (no abandonment guard)"
        }
    ));
    s.push_str(&format!("seed            {}\n", r.seed));
    s.push_str(&format!(
        "simulated       {:.1} h, {} agents ({:.1} staffed agent-hours)\n",
        r.hours, r.agents, r.staffed_agent_hours
    ));
    s.push_str(&format!(
        "dials           {} ({:.1} per hour)\n",
        r.dials, r.dials_per_hour
    ));
    s.push_str(&format!("live answers    {}\n", r.live_answers));
    s.push_str(&format!("abandoned       {}\n", r.abandoned));
    s.push_str(&format!(
        "abandonment     {:.3}% over the window (worst period {:.3}%, cap {:.1}%){}\n",
        100.0 * r.abandonment_rate,
        100.0 * r.max_period_rate,
        100.0 * r.cap,
        if r.violating { "  VIOLATING" } else { "" }
    ));
    s.push_str(&format!("occupancy       {:.3}\n", r.occupancy));
    s.push_str(&format!(
        "talk            {:.1} minutes per agent-hour\n",
        r.talk_minutes_per_agent_hour
    ));
    s.push_str(&format!(
        "mean wait       {:.2} s (answer to agent)\n",
        r.mean_wait_s
    ));
    s.push_str(&format!(
        "connected       {} ({:.1} calls per hour)\n",
        r.connected, r.connected_per_hour
    ));
    s.push_str(&format!(
        "machines        {} detected, {} humans mistaken for machines\n",
        r.machines_detected, r.amd_false_positives
    ));
    s.push_str(&format!("records done    {}\n", r.records_finished));
    s
}

/// The table of a comparison over seeds: per pacer, means with 95% intervals, the worst
/// legal period, the verdict; then who beat whom on the same callees; then where the first
/// pacer's occupancy interval lies against every compliant one's.
pub fn seeds_table(cmp: &crate::runs::SeedsComparison) -> String {
    let n = cmp.seeds.len();
    let mut out = format!(
        "{:<18} {:>4}  {:<15} {:<15} {:<15} {:>15}  {:<15} {}\n",
        "pacer",
        "runs",
        "occupancy",
        "talk min/ag-h",
        "abandon %",
        "worst % (seed)",
        "occ − first",
        "verdict"
    );
    let ci = |c: &Option<crate::stats::MeanCi>, scale: f64, d: usize| {
        c.map_or_else(|| "—".to_owned(), |c| c.show(scale, d))
    };
    for s in &cmp.summaries {
        let verdict = if !s.untunable.is_empty() {
            let seeds: Vec<String> = s.untunable.iter().map(|(k, _)| k.to_string()).collect();
            format!(
                "CANNOT BE TUNED on seed(s) {}: {}",
                seeds.join(", "),
                s.untunable[0].1
            )
        } else if !s.violating_seeds.is_empty() {
            format!(
                "VIOLATING on {} of {} seeds {:?}",
                s.violating_seeds.len(),
                s.runs,
                s.violating_seeds
            )
        } else {
            "within the cap on every seed".to_owned()
        };
        out.push_str(&format!(
            "{:<18} {:>4}  {:<15} {:<15} {:<15} {:>15}  {:<15} {}\n",
            s.spec,
            s.runs,
            ci(&s.occupancy, 1.0, 4),
            ci(&s.talk_minutes_per_agent_hour, 1.0, 2),
            ci(&s.abandonment_rate, 100.0, 3),
            format!("{:.3} ({})", 100.0 * s.worst_period_rate, s.worst_seed),
            ci(&s.occupancy_vs_first, 1.0, 4),
            verdict
        ));
    }
    out.push_str(&format!(
        "\nwins on the same callees (seeds of {n} on which the row beat the column: within the cap \
         when the other was not, or both within it and a higher occupancy)\n{:<18}",
        ""
    ));
    for p in &cmp.pacers {
        out.push_str(&format!(" {:>12}", truncate(p, 12)));
    }
    out.push('\n');
    for (a, row) in cmp.wins.iter().enumerate() {
        out.push_str(&format!("{:<18}", cmp.pacers[a]));
        for (b, w) in row.iter().enumerate() {
            if a == b {
                out.push_str(&format!(" {:>12}", "—"));
            } else {
                out.push_str(&format!(" {w:>12}"));
            }
        }
        out.push('\n');
    }
    if let Some(first) = cmp.summaries.first() {
        if let Some(f) = first.occupancy {
            let mut above = Vec::new();
            let mut overlap = Vec::new();
            for s in cmp.summaries[1..].iter().filter(|s| s.compliant()) {
                if let Some(o) = s.occupancy {
                    if f.above(&o) {
                        above.push(s.spec.clone());
                    } else {
                        overlap.push(s.spec.clone());
                    }
                }
            }
            out.push_str(&format!(
                "\n{}'s occupancy interval is above every compliant pacer's: {}",
                first.spec,
                if overlap.is_empty() { "yes" } else { "no" }
            ));
            if !above.is_empty() {
                out.push_str(&format!("\n  above: {}", above.join(", ")));
            }
            if !overlap.is_empty() {
                out.push_str(&format!("\n  not above: {}", overlap.join(", ")));
            }
            out.push('\n');
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}
