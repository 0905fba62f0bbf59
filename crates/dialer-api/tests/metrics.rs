//! The engine's decision-latency histogram in `/metrics`: after a simulated run it has
//! counted exactly the decisions the dialer task made. One test in its own binary, because
//! the metrics recorder is process-wide (other tests' dialers would add their decisions).

mod common;

use common::{Harness, Setup, RO};
use std::time::Duration;

/// The value of a sample line `name{labels} value` (or `name value`).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_decision_histogram_counts_every_decision_of_a_simulated_run() {
    // Installed before the dialer starts, so its first decisions are recorded too.
    dialer_api::metrics::install().expect("this test binary installs the recorder");
    let h = Harness::start(Setup {
        records: 200,
        agents: 20,
        ..Setup::default()
    });
    h.until("/api/status", "calls answered", |v| {
        v["counters"]["answered"].as_u64().is_some_and(|n| n >= 10)
    });
    let summary =
        h.rt.block_on(h.dialer.shutdown(Duration::from_secs(5)))
            .expect("the dialer drains");
    let decisions = summary.counters.decisions;
    assert!(
        decisions >= summary.counters.originates.max(1),
        "{decisions} decisions for {} originates",
        summary.counters.originates
    );

    // The server outlives the dialer: scrape it (a read-only token may).
    let r = h
        .client(Some(RO))
        .send("GET", "/metrics", None)
        .expect("scrape");
    assert_eq!(r.status, 200);
    let text = r.body.as_str().expect("Prometheus text").to_owned();
    assert!(
        text.contains("# TYPE dialer_decision_seconds histogram"),
        "{text}"
    );
    let count = sample(&text, "dialer_decision_seconds_count").expect("a count");
    let sum = sample(&text, "dialer_decision_seconds_sum").expect("a sum");
    assert_eq!(
        count as u64, decisions,
        "the histogram counted every decision the dialer task made"
    );
    assert!(
        sum > 0.0 && sum / count < 0.1,
        "a decision takes time, and less than 100 ms on average: sum {sum} s over {count}"
    );
    // Cumulative buckets from microseconds up, ending with every observation in +Inf.
    let buckets: Vec<(String, f64)> = text
        .lines()
        .filter(|l| l.starts_with("dialer_decision_seconds_bucket{"))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?.to_owned();
            Some((le, l.rsplit(' ').next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(
        buckets.first().map(|b| b.0.as_str()),
        Some("0.000005"),
        "{text}"
    );
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&("+Inf".to_owned(), count)));
}
