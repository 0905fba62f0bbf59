//! Prometheus metrics (`metrics` facade, `metrics-exporter-prometheus` renderer).
//!
//! Counters come from the event stream (dials, answers, abandons per campaign); gauges from
//! the status snapshot the server takes every second (abandonment rate against the cap,
//! remaining budget, lines in use, agents by state, telephone system up); the histogram
//! `dialer_handle_seconds` is the round trip of an operation through the dialer task (queue
//! wait + the engine's decision + the spool's commit); `dialer_decision_seconds` is recorded by
//! the dialer task itself around the engine (one burst of inputs from the telephone system or
//! the clock: decision, store updates, actions queued), in buckets from 5 µs to 100 ms. The
//! recorder is process-wide: install it ([`install`]) before starting the dialer to count its
//! first decisions too.

use dialer_runtime::DialerStatus;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; `None` when an embedder installed its own
/// (its exporter then renders these metrics).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 0.5, 1.0,
                ])
                .ok()?
                // The engine decides in microseconds; a decision that persists to SQLite
                // takes a millisecond or more.
                .set_buckets_for_metric(
                    Matcher::Full("dialer_decision_seconds".into()),
                    &[
                        0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
                        0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1,
                    ],
                )
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!("dialer_dials_total", "Calls dialed, per campaign.");
    describe_counter!(
        "dialer_answers_total",
        "Calls answered (linked to an agent, abandoned or reached a machine), per campaign."
    );
    describe_counter!(
        "dialer_abandons_total",
        "Answered calls no agent took, per campaign."
    );
    describe_counter!("dialer_skips_total", "Records skipped, per campaign.");
    describe_counter!("dialer_rejections_total", "Inputs the engine refused.");
    describe_gauge!(
        "dialer_abandonment_rate",
        "Abandoned / live answers over the legal window, per campaign."
    );
    describe_gauge!(
        "dialer_abandonment_cap",
        "The abandonment cap, per campaign."
    );
    describe_gauge!(
        "dialer_abandonment_budget_remaining",
        "Abandons still allowed in the window, per campaign."
    );
    describe_gauge!("dialer_lines_in_use", "Calls in flight, per campaign.");
    describe_gauge!(
        "dialer_calls_waiting",
        "Answered calls waiting for an agent, per campaign."
    );
    describe_gauge!("dialer_agents", "Agents by state.");
    describe_gauge!(
        "dialer_telephony_up",
        "1 when the telephone system takes calls."
    );
    describe_histogram!(
        "dialer_handle_seconds",
        "Round trip of an operation through the dialer task."
    );
    describe_histogram!(
        "dialer_decision_seconds",
        "Time the dialer task spends on one burst of inputs from the telephone system or the \
         clock: the engine's decision, its store updates committed and its actions queued."
    );
    describe_counter!("dialer_api_requests_total", "API requests by status class.");
}

/// Counts an event (as serialized by the runtime).
pub fn on_event(value: &Value) {
    let Some(ev) = value.get("event") else { return };
    let name = ev.get("event").and_then(Value::as_str).unwrap_or("");
    let campaign = ev
        .get("campaign")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    match name {
        "dialed" => metrics::counter!("dialer_dials_total", "campaign" => campaign).increment(1),
        "skipped" => metrics::counter!("dialer_skips_total", "campaign" => campaign).increment(1),
        "rejected" => metrics::counter!("dialer_rejections_total").increment(1),
        "progress" => {
            let state = ev
                .get("progress")
                .and_then(|p| p.get("state"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if matches!(state, "success" | "abandoned" | "machine") {
                metrics::counter!("dialer_answers_total", "campaign" => campaign.clone())
                    .increment(1);
            }
            if state == "abandoned" {
                metrics::counter!("dialer_abandons_total", "campaign" => campaign).increment(1);
            }
        }
        _ => {}
    }
}

/// Sets the gauges from a status snapshot.
pub fn on_status(s: &DialerStatus) {
    for c in &s.engine.campaigns {
        let id = c.campaign.to_string();
        let a = &c.abandonment;
        let rate = if a.live_answers == 0 {
            0.0
        } else {
            a.abandoned as f64 / a.live_answers as f64
        };
        metrics::gauge!("dialer_abandonment_rate", "campaign" => id.clone()).set(rate);
        metrics::gauge!("dialer_abandonment_cap", "campaign" => id.clone()).set(a.cap);
        metrics::gauge!("dialer_abandonment_budget_remaining", "campaign" => id.clone())
            .set(a.remaining_budget);
        metrics::gauge!("dialer_lines_in_use", "campaign" => id.clone())
            .set(c.calls_in_flight as f64);
        metrics::gauge!("dialer_calls_waiting", "campaign" => id).set(f64::from(c.waiting));
    }
    let mut by_state: BTreeMap<&'static str, u64> = [
        "logged_out",
        "ready",
        "reserved",
        "previewing",
        "on_call",
        "wrap_up",
        "paused",
    ]
    .into_iter()
    .map(|k| (k, 0))
    .collect();
    for a in &s.engine.agents {
        *by_state
            .entry(crate::agent_state_name(&a.state))
            .or_default() += 1;
    }
    for (state, n) in by_state {
        metrics::gauge!("dialer_agents", "state" => state).set(n as f64);
    }
    let up = matches!(s.health, dialer_runtime::HealthView::Down { .. });
    metrics::gauge!("dialer_telephony_up", "system" => s.telephony.clone()).set(if up {
        0.0
    } else {
        1.0
    });
}

/// Records the round trip of one operation through the handle.
pub fn observe_handle(seconds: f64) {
    metrics::histogram!("dialer_handle_seconds").record(seconds);
}
