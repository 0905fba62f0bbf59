//! A load run of the API (not a test): a dialer with simulated agents on an accelerated clock
//! and a real SQLite spool, the API on loopback, event subscribers that check they lose no
//! event (ids consecutive, no `lost`), and client threads issuing a mix of reads and writes
//! at a target rate. Prints request latency percentiles, errors, and events per subscriber.
//!
//! ```text
//! cargo run -p dialer-api --example load --profile test -- [seconds] [requests/s] [agents] [subscribers]
//! ```
//! Defaults: 600 s, 1000 requests/s, 200 agents, 20 subscribers.

use backend_sim::live::SimTelephony;
use backend_sim::{world, Scenario};
use chrono::{TimeZone, Utc};
use dialer_api::client::Client;
use dialer_core::{CallingHours, Campaign, DialMode};
use dialer_runtime::config::{ApiConfig, Secret};
use dialer_runtime::{Clock, Dialer, DialerConfig};
use serde_json::json;
use spool_store::{ImportOptions, SpoolStore};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "load-run-token-0123456789abcdef";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let secs = args.first().copied().unwrap_or(600);
    let rate = args.get(1).copied().unwrap_or(1000);
    let agents = args.get(2).copied().unwrap_or(200) as u32;
    let subscribers = args.get(3).copied().unwrap_or(20);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("spool.db");
    let start = Utc
        .with_ymd_and_hms(2026, 6, 1, 14, 0, 0)
        .single()
        .expect("time");
    let mut c = Campaign::new("load", "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Progressive;
    c.max_lines = agents;
    let mut store = SpoolStore::open_at(&path, start)?.0;
    store.upsert_campaign(&c, start)?;
    let base: String = (0..50_000)
        .map(|i| format!("load;2{:09};n={i};;;\n", 125_000_000 + i))
        .collect();
    store.import_base(
        base.as_bytes(),
        &ImportOptions::new("load", "base.txt", start),
        &mut |_| {},
    )?;
    let (dialer, task, addr) = rt.block_on(async {
        let clock = Clock::accelerated(start, 5.0);
        let mut spec = world::spec_from_scenario(
            &Scenario::builtin("small-team").expect("scenario"),
            vec![c.id.clone()],
            11,
        );
        spec.agents.count = agents;
        let config = DialerConfig {
            campaigns: vec![c.clone()],
            ..Default::default()
        };
        let (dialer, task) = Dialer::start(
            config,
            store,
            Box::new(SimTelephony::new(spec, clock)),
            clock,
        )
        .await
        .expect("dialer");
        let mut api = ApiConfig::new("127.0.0.1:0");
        api.tokens.push(Secret::from(TOKEN.to_owned()));
        api.event_buffer = 100_000;
        let server = dialer_api::ApiServer::bind(&api, dialer.clone(), path.clone())
            .await
            .expect("server");
        let addr = server.local_addr();
        tokio::spawn(server.serve());
        (dialer, task, addr)
    });
    let server = format!("http://{addr}");
    let stop = Arc::new(AtomicBool::new(false));

    // Subscribers: each checks that ids are consecutive and that no `lost` arrives.
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let client = Client::new(&server, Some(TOKEN.into()));
        let stop = stop.clone();
        subs.push(std::thread::spawn(move || {
            let (mut n, mut gaps, mut last) = (0u64, 0u64, None::<u64>);
            let _ = client.events("", None, |id, name, _| {
                if name == "lost" || name == "lagged" {
                    gaps += 1;
                }
                if let (Some(prev), Some(id)) = (last, id) {
                    if id != prev + 1 {
                        gaps += 1;
                    }
                }
                last = id.or(last);
                n += 1;
                !stop.load(Ordering::Relaxed)
            });
            (n, gaps)
        }));
    }

    // Requesters: 16 threads share the rate; 70 % reads, 30 % writes.
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let threads = 16u64;
    let per_thread = Duration::from_secs_f64(threads as f64 / rate as f64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for t in 0..threads {
        let client = Client::new(&server, Some(TOKEN.into()));
        let (latencies, errors) = (latencies.clone(), errors.clone());
        workers.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            let mut next = Instant::now();
            let mut i: u64 = 0;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let n = t * 10_000_000 + i;
                let r = match i % 10 {
                    0..=3 => client.send("GET", "/api/status", None),
                    4 => client.send("GET", "/api/agents", None),
                    5 => client.send("GET", "/api/campaigns/load/counters", None),
                    6 => client.send("GET", "/api/campaigns/load", None),
                    7 => client.send(
                        "POST",
                        "/api/campaigns/load/records",
                        Some(&json!({ "numbers": [format!("+1646{:07}", n % 10_000_000)] })),
                    ),
                    8 => client.send(
                        "POST",
                        "/api/blacklist",
                        Some(&json!({ "entries": [{ "number": format!("+1917{:07}", n % 10_000_000) }] })),
                    ),
                    _ => client.send(
                        "DELETE",
                        &format!("/api/blacklist/%2B1917{:07}", (n - 1) % 10_000_000),
                        None,
                    ),
                };
                mine.push(t0.elapsed().as_micros() as u32);
                match r {
                    Ok(r) if r.status < 500 && r.status != 401 => {}
                    Ok(r) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error {}: {}", r.status, r.body);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error: {e}");
                    }
                }
                i += 1;
                next += per_thread;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            latencies.lock().expect("latencies").extend(mine);
        }));
    }
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(true, Ordering::Relaxed);
    let status = rt.block_on(dialer.status())?;
    // Subscribers end at their next event.
    let mut total_events = Vec::new();
    let mut gaps = 0;
    for s in subs {
        let (n, g) = s.join().expect("subscriber");
        total_events.push(n);
        gaps += g;
    }
    let mut l = latencies.lock().expect("latencies").clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 * p) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{} requests in {secs} s ({:.0}/s), {} errors; latency p50 {} µs, p99 {} µs, max {} µs",
        l.len(),
        l.len() as f64 / secs as f64,
        errors.load(Ordering::Relaxed),
        pct(0.50),
        pct(0.99),
        l.last().copied().unwrap_or(0)
    );
    println!(
        "{subscribers} subscribers: events each min {} max {}; gaps or lost events: {gaps}",
        total_events.iter().min().unwrap_or(&0),
        total_events.iter().max().unwrap_or(&0)
    );
    println!(
        "dialer: {} originates, {} answered, {} agents, {} calls in flight",
        status.counters.originates,
        status.counters.answered,
        status.engine.agents.len(),
        status.engine.calls.len()
    );
    rt.block_on(async {
        let _ = dialer.shutdown(Duration::from_secs(5)).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    });
    Ok(())
}
