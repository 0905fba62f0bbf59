//! Self-contained HTML reports of a run (`dialer simulate --report`) and of a comparison
//! (`dialer compare --report`): one file, inline CSS and SVG, no script and no link out, so
//! it opens anywhere without a network.

use crate::report::Report;
use crate::runs::{Run, SeedsComparison};
use crate::scenario::Scenario;
use crate::stats::MeanCi;
use crate::svg::{esc, interval_chart, Band, Chart, HLine, Series, Style, PALETTE};
use crate::timeline::{Sample, Timeline};
use std::fmt::Write;

/// Samples to take over a run for a report.
pub const REPORT_POINTS: u32 = 600;

/// Occupancy is shown over windows of at least this many seconds (a minute of three agents
/// says little).
const OCCUPANCY_WINDOW_S: f64 = 900.0;

const CSS: &str = "body{font-family:DejaVu Sans,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}\
td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}th{background:#f0f0f0}\
td.l,th.l{text-align:left}.bad{color:#b00;font-weight:bold}.ok{color:#070}.note{color:#555;font-size:13px}\
svg.chart{display:block;margin:10px 0;max-width:100%;height:auto}";

/// A stacked layer: its name, its colour and what it counts in a sample.
type Layer = (&'static str, &'static str, fn(&Sample) -> u32);

fn hours(s: &Sample) -> f64 {
    s.t_s / 3600.0
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{CSS}</style></head><body><h1>{t}</h1>\n{body}\n</body></html>\n",
        t = esc(title)
    )
}

fn period_date(day: i64) -> String {
    (chrono::NaiveDate::default() + chrono::Duration::days(day)).to_string()
}

/// The legal periods a timeline crosses, as shaded bands.
fn period_bands(tl: &Timeline) -> Vec<Band> {
    let Some(last) = tl.samples.last() else {
        return Vec::new();
    };
    let mut starts = vec![0];
    starts.extend(tl.period_starts());
    starts
        .iter()
        .enumerate()
        .map(|(k, &i)| Band {
            from: hours(&tl.samples[i]),
            to: starts
                .get(k + 1)
                .map_or(hours(last), |&j| hours(&tl.samples[j])),
            label: format!(
                "legal period from {}",
                period_date(tl.samples[i].period_day)
            ),
        })
        .collect()
}

/// Occupancy over windows of about [`OCCUPANCY_WINDOW_S`], at the end of each window.
fn occupancy_points(tl: &Timeline) -> Vec<(f64, Option<f64>)> {
    let k = ((OCCUPANCY_WINDOW_S / tl.step_s.max(1.0)).round() as usize).max(1);
    tl.samples
        .iter()
        .enumerate()
        .skip(k)
        .map(|(i, s)| {
            let a = &tl.samples[i - k];
            let staffed = s.staffed_ms - a.staffed_ms;
            (
                hours(s),
                (staffed > 0.0).then(|| (s.busy_ms - a.busy_ms) / staffed),
            )
        })
        .collect()
}

fn points(tl: &Timeline, f: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, Option<f64>)> {
    tl.samples.iter().map(|s| (hours(s), f(s))).collect()
}

fn x_label(sc: &Scenario) -> String {
    format!(
        "hours since the start ({} UTC)",
        sc.start.format("%Y-%m-%d %H:%M")
    )
}

fn cap_line(cap: f64) -> HLine {
    HLine {
        y: 100.0 * cap,
        label: format!("cap {:.1}%", 100.0 * cap),
        color: "#b00".into(),
    }
}

/// The four time charts, each with one series per (name, timeline).
fn time_charts(sc: &Scenario, runs: &[(String, &Timeline)]) -> Vec<Chart> {
    let cap = sc.campaign.abandon_cap;
    let x = x_label(sc);
    let bands = runs
        .first()
        .map(|(_, t)| period_bands(t))
        .unwrap_or_default();
    let mut occ = Chart::new(
        "occupancy",
        &format!(
            "Occupancy (talk + wrap-up over staffed time, {:.0}-minute windows)",
            OCCUPANCY_WINDOW_S / 60.0
        ),
        &x,
        "occupancy",
        Style::Lines,
    );
    occ.y_min = Some(0.0);
    occ.y_max = Some(1.0);
    let mut ab = Chart::new(
        "abandonment",
        "Abandonment in the current legal period, against the cap (axis up to 4 × the cap)",
        &x,
        "abandoned / live answers (%)",
        Style::Lines,
    );
    ab.hlines.push(cap_line(cap));
    ab.bands = bands.clone();
    ab.y_min = Some(0.0);
    // Early in a period a few answers make wild rates: the axis keeps the cap readable and
    // clips what lies above four times it.
    ab.y_max = Some(400.0 * cap);
    let mut budget = Chart::new(
        "budget",
        "Remaining abandonment budget (cap × live answers − abandoned)",
        &x,
        "abandons the period can still take",
        Style::Lines,
    );
    budget.bands = bands;
    budget.hlines.push(HLine {
        y: 0.0,
        label: "none left".into(),
        color: "#b00".into(),
    });
    let mut lines = Chart::new(
        "lines",
        "Lines in flight (dialing, waiting for an agent, talking)",
        &x,
        "lines",
        Style::Lines,
    );
    for (k, (name, tl)) in runs.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()].to_owned();
        let series = |points| Series {
            name: name.clone(),
            color: color.clone(),
            points,
        };
        occ.series.push(series(occupancy_points(tl)));
        ab.series.push(series(points(tl, |s| {
            (s.period_live > 0).then(|| 100.0 * s.period_rate())
        })));
        budget
            .series
            .push(series(points(tl, |s| Some(s.budget(cap)))));
        lines
            .series
            .push(series(points(tl, |s| Some(f64::from(s.lines_in_flight())))));
    }
    vec![occ, ab, budget, lines]
}

/// Agents by state over the run, stacked.
fn agents_chart(sc: &Scenario, id: &str, title: &str, tl: &Timeline) -> Chart {
    let mut c = Chart::new(id, title, &x_label(sc), "agents", Style::Stacked);
    let layers: [Layer; 6] = [
        ("talking", "#1f77b4", |s| s.agents_talking),
        ("wrap-up", "#aec7e8", |s| s.agents_wrap_up),
        ("reserved", "#9467bd", |s| s.agents_reserved),
        ("idle", "#2ca02c", |s| s.agents_idle),
        ("paused", "#ff7f0e", |s| s.agents_paused),
        ("offline", "#d9d9d9", |s| s.agents_offline),
    ];
    for (name, color, f) in layers {
        c.series.push(Series {
            name: name.into(),
            color: color.into(),
            points: points(tl, |s| Some(f64::from(f(s)))),
        });
    }
    c.y_min = Some(0.0);
    c.y_max = Some(f64::from(sc.agents.count));
    c
}

/// Lines by what they carry, stacked.
fn lines_chart(sc: &Scenario, tl: &Timeline) -> Chart {
    let mut c = Chart::new(
        "lines-by-state",
        "Lines in flight by state",
        &x_label(sc),
        "lines",
        Style::Stacked,
    );
    let layers: [Layer; 3] = [
        ("talking", "#1f77b4", |s| s.lines_talking),
        ("waiting", "#d62728", |s| s.lines_waiting),
        ("dialing", "#bcbd22", |s| s.lines_dialing),
    ];
    for (name, color, f) in layers {
        c.series.push(Series {
            name: name.into(),
            color: color.into(),
            points: points(tl, |s| Some(f64::from(f(s)))),
        });
    }
    c
}

fn scenario_line(sc: &Scenario) -> String {
    format!(
        "<p>Scenario <b>{}</b>: {}. {} agents, {:.1} simulated hours, abandonment cap {:.1}% of live answers per legal period ({}).</p>",
        esc(&sc.name),
        esc(&sc.description),
        sc.agents.count,
        sc.hours,
        100.0 * sc.campaign.abandon_cap,
        match sc.campaign.abandon_window {
            crate::scenario::WindowSpec::ThirtyDays => "successive 30-day periods",
            crate::scenario::WindowSpec::CalendarDay => "each calendar day",
        }
    )
}

fn verdict(r: &Report) -> String {
    if r.violating {
        format!(
            "<span class=\"bad\">VIOLATING: worst period {:.3}% &gt; cap</span>",
            100.0 * r.max_period_rate
        )
    } else {
        "<span class=\"ok\">within the cap</span>".into()
    }
}

/// The report of one run; `run` must carry a timeline.
pub fn simulate_report(sc: &Scenario, run: &Run) -> String {
    let r = &run.report;
    let empty = Timeline {
        step_s: 60.0,
        samples: Vec::new(),
    };
    let tl = run.timeline.as_ref().unwrap_or(&empty);
    let mut b = scenario_line(sc);
    let _ = write!(
        b,
        "<table><tr><th class=\"l\">pacer</th><th>seed</th><th>dials</th><th>live answers</th><th>abandoned</th><th>abandonment</th><th>worst period</th><th>occupancy</th><th>talk min / agent-h</th><th>mean wait s</th><th class=\"l\">verdict</th></tr>\
<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}%</td><td>{:.3}%</td><td>{:.3}</td><td>{:.2}</td><td>{:.2}</td><td class=\"l\">{}</td></tr></table>",
        esc(&r.pacer),
        r.seed,
        r.dials,
        r.live_answers,
        r.abandoned,
        100.0 * r.abandonment_rate,
        100.0 * r.max_period_rate,
        r.occupancy,
        r.talk_minutes_per_agent_hour,
        r.mean_wait_s,
        verdict(r)
    );
    let runs = [(r.pacer.clone(), tl)];
    let mut charts = time_charts(sc, &runs);
    charts.push(lines_chart(sc, tl));
    charts.push(agents_chart(sc, "agents", "Agents by state", tl));
    for c in charts {
        b.push_str(&c.render());
    }
    page(&format!("{} — {} (seed {})", sc.name, r.pacer, r.seed), &b)
}

fn ci_cell(ci: &Option<MeanCi>, scale: f64, decimals: usize) -> String {
    ci.map_or_else(|| "—".into(), |c| esc(&c.show(scale, decimals)))
}

/// The report of a comparison over seeds: the table of means and intervals, who beat whom,
/// the intervals side by side, and the first seed's timelines of every pacer.
pub fn compare_report(sc: &Scenario, cmp: &SeedsComparison) -> String {
    let mut b = scenario_line(sc);
    let seeds = &cmp.seeds;
    let _ = write!(
        b,
        "<p>{} seed{} ({}..={}); means with 95% confidence intervals (Student t over seeds). Every pacer faces the same callees on a seed.</p>",
        seeds.len(),
        if seeds.len() == 1 { "" } else { "s" },
        seeds.first().copied().unwrap_or(0),
        seeds.last().copied().unwrap_or(0)
    );
    b.push_str("<table><tr><th class=\"l\">pacer</th><th>runs</th><th>occupancy</th><th>talk min / agent-h</th><th>abandonment %</th><th>worst period % (seed)</th><th>occupancy − first</th><th class=\"l\">verdict</th></tr>");
    for s in &cmp.summaries {
        let verdict = if !s.untunable.is_empty() {
            format!(
                "<span class=\"bad\">cannot be tuned on {} seed(s): {}</span>",
                s.untunable.len(),
                esc(&s.untunable[0].1)
            )
        } else if !s.violating_seeds.is_empty() {
            format!(
                "<span class=\"bad\">VIOLATING on {} seed(s)</span>",
                s.violating_seeds.len()
            )
        } else {
            "<span class=\"ok\">within the cap on every seed</span>".into()
        };
        let _ = write!(
            b,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3} ({})</td><td>{}</td><td class=\"l\">{}</td></tr>",
            esc(&s.spec),
            s.runs,
            ci_cell(&s.occupancy, 1.0, 3),
            ci_cell(&s.talk_minutes_per_agent_hour, 1.0, 2),
            ci_cell(&s.abandonment_rate, 100.0, 3),
            100.0 * s.worst_period_rate,
            s.worst_seed,
            ci_cell(&s.occupancy_vs_first, 1.0, 3),
            verdict
        );
    }
    b.push_str("</table>");
    let _ = write!(
        b,
        "<h2>Wins on the same callees</h2><p class=\"note\">Seeds (of {}) on which the row's pacer beat the column's: it kept every period within the cap and the other did not, or both did and it had the higher occupancy.</p><table><tr><th></th>",
        seeds.len()
    );
    for p in &cmp.pacers {
        let _ = write!(b, "<th>{}</th>", esc(p));
    }
    b.push_str("</tr>");
    for (a, row) in cmp.wins.iter().enumerate() {
        let _ = write!(b, "<tr><th class=\"l\">{}</th>", esc(&cmp.pacers[a]));
        for (c, w) in row.iter().enumerate() {
            if a == c {
                b.push_str("<td>—</td>");
            } else {
                let _ = write!(b, "<td>{w}</td>");
            }
        }
        b.push_str("</tr>");
    }
    b.push_str("</table><h2>Means and intervals side by side</h2>");
    let rows = |f: fn(&crate::runs::PacerSummary) -> Option<MeanCi>, scale: f64| {
        cmp.summaries
            .iter()
            .filter_map(|s| {
                f(s).map(|c| {
                    (
                        s.spec.clone(),
                        c.mean * scale,
                        c.half_width.map(|h| h * scale),
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    b.push_str(&interval_chart(
        "occupancy-intervals",
        "Occupancy: mean and 95% interval over seeds",
        "occupancy",
        &rows(|s| s.occupancy, 1.0),
    ));
    b.push_str(&interval_chart(
        "talk-intervals",
        "Talk minutes per agent-hour: mean and 95% interval",
        "minutes",
        &rows(|s| s.talk_minutes_per_agent_hour, 1.0),
    ));
    b.push_str(&interval_chart(
        "abandonment-intervals",
        "Abandonment over the run: mean and 95% interval",
        "% of live answers",
        &rows(|s| s.abandonment_rate, 100.0),
    ));
    let traced: Vec<(String, &Timeline)> = cmp
        .pacers
        .iter()
        .zip(&cmp.runs)
        .filter_map(|(p, runs)| {
            let t = runs.first()?.as_ref()?.timeline.as_ref()?;
            Some((p.clone(), t))
        })
        .collect();
    if !traced.is_empty() {
        let _ = write!(
            b,
            "<h2>Over the run, seed {}: pacers side by side</h2>",
            seeds.first().copied().unwrap_or(0)
        );
        for c in time_charts(sc, &traced) {
            b.push_str(&c.render());
        }
        b.push_str("<h2>Agents by state</h2>");
        for (k, (p, tl)) in traced.iter().enumerate() {
            b.push_str(
                &agents_chart(
                    sc,
                    &format!("agents-{k}"),
                    &format!("Agents by state: {p}"),
                    tl,
                )
                .render(),
            );
        }
    }
    page(&format!("{}: pacers compared", sc.name), &b)
}
