//! The supervisor page in a real headless Chromium (Debian's `chromium`, installed by
//! `.ci/run`): it loads, shows live agent and call counts while a simulated campaign runs,
//! and a screenshot is saved to `target/artifacts/supervisor.png`; its "today" counts
//! (dials, answers, abandons since the campaign's local midnight, which the run crosses) are
//! the spool's own count.

mod common;

use chrono::{TimeZone, Utc};
use common::{Harness, Setup, RO};
use dialer_core::CallOutcome;
use spool_store::SpoolStore;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Runs headless Chromium on `url` with extra flags; returns standard output. Killed after
/// 60 s (a hung browser fails the test instead of hanging it).
fn browse(browser: &PathBuf, profile: &std::path::Path, url: &str, flags: &[&str]) -> String {
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--window-size=1400,1000",
            // Let the page fetch, render and follow the stream for 4 s of (virtual) time.
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(flags)
        .arg(url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(_status) = child.try_wait().expect("wait for chromium") {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read chromium output");
    out
}

/// The number shown in the element with this id.
fn shown(dom: &str, id: &str) -> Option<u64> {
    let at = dom.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let rest = &dom[at..];
    rest[..rest.find('<')?].trim().parse().ok()
}

#[test]
fn supervisor_page_shows_live_agent_and_call_counts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!(
            "SKIPPED: no chromium on PATH (apt-get install -y chromium; .ci/run installs it)"
        );
        return;
    };
    // 23:57 in New York (EDT, UTC-4): the campaign dials across its local midnight.
    let midnight = Utc
        .with_ymd_and_hms(2026, 6, 2, 4, 0, 0)
        .single()
        .expect("time");
    let h = Harness::start(Setup {
        records: 600,
        agents: 60,
        start: midnight - chrono::Duration::minutes(3),
        ..Setup::default()
    });
    h.until("/api/status", "calls in flight after midnight", |v| {
        let after = v["at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .is_some_and(|t| t > midnight + chrono::Duration::minutes(2));
        after
            && v["engine"]["calls"]
                .as_array()
                .is_some_and(|c| c.len() >= 3)
    });
    let profile = tempfile::tempdir().expect("profile dir");
    let url = format!("http://{}/#token={RO}", h.addr);
    let dom = browse(&browser, profile.path(), &url, &["--dump-dom"]);
    let agents = shown(&dom, "agents-spring")
        .unwrap_or_else(|| panic!("no agent count in the page:\n{dom}"));
    let calls =
        shown(&dom, "calls-spring").unwrap_or_else(|| panic!("no call count in the page:\n{dom}"));
    assert!(
        agents >= 30,
        "the page shows {agents} agents logged in; the simulation has 60"
    );
    assert!(
        calls >= 1,
        "the page shows {calls} calls in flight while the campaign dials"
    );
    assert!(
        dom.contains("events: live"),
        "the page follows the event stream"
    );
    assert!(
        dom.contains("Abandonment"),
        "the abandonment position is shown"
    );

    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("artifacts");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    let png = dir.join("supervisor.png");
    let _ = std::fs::remove_file(&png);
    browse(
        &browser,
        profile.path(),
        &url,
        &[&format!("--screenshot={}", png.display())],
    );
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real PNG"
    );
    eprintln!("screenshot: {}", png.display());

    // Today's counts: stop the campaign and let its calls end, so the page and the spool are
    // read in the same state, then compare with the spool's own ledger.
    h.rw.call("POST", "/api/campaigns/spring/stop", None)
        .expect("stop the campaign");
    h.until("/api/status", "the campaign's calls to end", |v| {
        v["engine"]["calls"]
            .as_array()
            .is_some_and(|c| c.is_empty())
    });
    let dom = browse(&browser, profile.path(), &url, &["--dump-dom"]);
    let page = |id: &str| {
        shown(&dom, &format!("{id}-today-spring"))
            .unwrap_or_else(|| panic!("no {id} today in the page:\n{dom}"))
    };
    let (dials, answers, abandons) = (page("dials"), page("answers"), page("abandons"));
    let spool = SpoolStore::open_read_only(h.dir.path().join("spool.db")).expect("open spool");
    let attempts = spool.attempts("spring").expect("ledger");
    assert!(
        attempts.iter().all(|a| a.outcome.is_some()),
        "every call has ended"
    );
    assert!(
        attempts.iter().any(|a| a.started_at < midnight),
        "calls were placed before midnight (yesterday's), so today is not the total"
    );
    let today: Vec<_> = attempts
        .iter()
        .filter(|a| a.started_at >= midnight)
        .collect();
    let count = |f: fn(&CallOutcome) -> bool| {
        today
            .iter()
            .filter(|a| a.outcome.as_ref().is_some_and(f))
            .count() as u64
    };
    let want_dials = count(|o| !matches!(o, CallOutcome::NotPlaced));
    let want_answers = count(|o| {
        matches!(
            o,
            CallOutcome::Connected { .. }
                | CallOutcome::ShortCall { .. }
                | CallOutcome::Machine
                | CallOutcome::Abandoned
        )
    });
    let want_abandons = count(|o| matches!(o, CallOutcome::Abandoned));
    assert!(
        want_dials > 0 && want_answers > 0,
        "calls were placed and answered today"
    );
    assert_eq!(
        (dials, answers, abandons),
        (want_dials, want_answers, want_abandons),
        "the page's dials, answers and abandons today against the spool's ledger"
    );
}
