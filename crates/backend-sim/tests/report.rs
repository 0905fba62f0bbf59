//! HTML reports: one self-contained file whose charts a real browser renders with no network.

use backend_sim::timeline::Timeline;
use backend_sim::{compare_seeds, html, run_spec, Scenario};
use std::path::Path;
use std::process::Command;

fn team(hours: f64) -> Scenario {
    let mut sc = Scenario::builtin("small-team").unwrap();
    sc.hours = hours;
    sc
}

const COMPARE_CHARTS: &[&str] = &[
    "occupancy-intervals",
    "talk-intervals",
    "abandonment-intervals",
    "occupancy",
    "abandonment",
    "budget",
    "lines",
    "agents-0",
    "agents-1",
];

fn compare_html() -> String {
    let sc = team(2.0);
    let pacers = vec!["predictive".to_owned(), "vicidial".to_owned()];
    let step = Timeline::step_for(sc.hours, html::REPORT_POINTS);
    let cmp = compare_seeds(&sc, &pacers, &[1, 2, 3], 2, Some(step), &mut |_| {}).unwrap();
    html::compare_report(&sc, &cmp)
}

/// Nothing in the page reaches out: no script, no stylesheet or image by address.
fn assert_self_contained(page: &str) {
    for needle in ["<script", "<link", "src=", "href=", "url(", "@import"] {
        assert!(!page.contains(needle), "the report contains {needle:?}");
    }
}

#[test]
fn simulate_report_holds_every_chart_and_reaches_nothing_outside() {
    let sc = team(2.0);
    let seed = 3;
    let step = Timeline::step_for(sc.hours, html::REPORT_POINTS);
    let run = run_spec(&sc, "predictive", seed, Some(step), &mut |_| {}).unwrap();
    let page = html::simulate_report(&sc, &run);
    assert_self_contained(&page);
    for id in [
        "occupancy",
        "abandonment",
        "budget",
        "lines",
        "lines-by-state",
        "agents",
    ] {
        assert!(
            page.contains(&format!("data-chart=\"{id}\"")),
            "seed {seed}: no {id} chart"
        );
    }
    assert!(page.contains("cap 3.0%"), "the cap line is labelled");
    assert!(
        page.contains("legal period from 2026-"),
        "the legal window is shown"
    );
    // Same run, same bytes.
    let again = run_spec(&sc, "predictive", seed, Some(step), &mut |_| {}).unwrap();
    assert_eq!(page, html::simulate_report(&sc, &again), "seed {seed}");
}

#[test]
fn compare_report_shows_pacers_side_by_side() {
    let page = compare_html();
    assert_self_contained(&page);
    for id in COMPARE_CHARTS {
        assert!(
            page.contains(&format!("data-chart=\"{id}\"")),
            "no {id} chart"
        );
    }
    // Both pacers are drawn on the shared time charts.
    let occupancy = page
        .split("data-chart=\"occupancy\"")
        .nth(1)
        .unwrap()
        .split("</svg>")
        .next()
        .unwrap();
    for p in ["predictive", "vicidial"] {
        assert!(
            occupancy.contains(&format!("data-series=\"{p}\"")),
            "{p} not drawn"
        );
    }
    assert!(page.contains("Wins on the same callees"));
}

/// Headless Chromium, cut off from any network, loads the file and dumps its DOM.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

fn browser(bin: &str, file: &Path, dir: &Path, screenshot: &Path) -> String {
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            // No network: every host resolves to nothing and any proxy use fails.
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--window-size=1200,3000",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", file.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn compare_report_opens_in_a_headless_browser_without_a_network_with_its_charts() {
    let Some(bin) = chromium() else {
        eprintln!(
            "SKIPPED compare_report_opens_in_a_headless_browser…: no chromium on PATH \
             (Debian: apt-get install -y chromium)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("compare.html");
    std::fs::write(&file, compare_html()).unwrap();
    let shot = dir.path().join("compare.png");
    let dom = browser(bin, &file, dir.path(), &shot);
    assert!(
        dom.contains("pacers compared"),
        "the page did not load: {dom:.400}"
    );
    // The DOM the browser built (not the file) holds every chart with its drawn series.
    for id in COMPARE_CHARTS {
        let chart = dom
            .split(&format!("data-chart=\"{id}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {id} chart in the browser's DOM"));
        let svg = chart.split("</svg>").next().unwrap();
        assert!(svg.contains("class=\"series\""), "{id}: nothing drawn");
    }
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(png.len() > 20_000, "a blank page? {} bytes", png.len());
}
