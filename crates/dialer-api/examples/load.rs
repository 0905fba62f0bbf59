//! A load run of the API (not a test): a dialer with simulated agents on an accelerated clock
//! and a real SQLite spool, the API on loopback, event subscribers that check they lose no
//! event (ids consecutive, no `lost`), and client threads issuing a mix of reads and writes
//! at a target rate. Prints request latency percentiles, errors, events per subscriber, the
//! load average, and the CPU time of the server against that of the clients (they share the
//! machine: the clients only read the bytes of a response, they do not parse them).
//!
//! ```text
//! cargo run --release -p dialer-api --example load -- [seconds] [requests/s] [agents] [subscribers]
//! ```
//! Defaults: 600 s, 1000 requests/s, 200 agents, 20 subscribers.
//!
//! Measured on 2 cores shared with other builds (load average 5.7–8.0 during the run), the
//! defaults: 600,000 requests in 600 s (1000/s), no error, every subscriber got all 60,063
//! events with no gap; latency p50 2.3 ms, p99 11.2 ms, max 348 ms; the server and dialer used
//! 277 µs of CPU per request (the clients 87 s of the 253 s). Before the status and counters
//! were shared between pollers and events framed once, a 60 s run of the same mix cost 767 µs
//! per request (half of it the counters' scan of a 50,000-record campaign) with p99 85 ms.

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
    let load_before = loadavg();
    let cpu_before = process_cpu_s();

    // Subscribers: each checks that ids are consecutive and that no `lost` arrives.
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let client = Client::new(&server, Some(TOKEN.into()));
        let stop = stop.clone();
        subs.push(std::thread::spawn(move || {
            let (mut n, mut gaps, mut last) = (0u64, 0u64, None::<u64>);
            let cpu0 = thread_cpu_s();
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
            (n, gaps, thread_cpu_s() - cpu0)
        }));
    }

    // Requesters: 16 threads share the rate; 70 % reads, 30 % writes. Each reads the
    // response's bytes (the server did all its work) without parsing them.
    let latencies = Arc::new(Mutex::new(Vec::<u32>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let client_cpu = Arc::new(Mutex::new(0.0f64));
    let threads = 16u64;
    let per_thread = Duration::from_secs_f64(threads as f64 / rate as f64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut workers = Vec::new();
    for t in 0..threads {
        let server = server.clone();
        let (latencies, errors, client_cpu) =
            (latencies.clone(), errors.clone(), client_cpu.clone());
        workers.push(std::thread::spawn(move || {
            let cpu0 = thread_cpu_s();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .new_agent();
            let auth = format!("Bearer {TOKEN}");
            let mut mine = Vec::new();
            let mut next = Instant::now();
            let mut i: u64 = 0;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                let n = t * 10_000_000 + i;
                let url = |p: &str| format!("{server}{p}");
                let get = |p: &str| agent.get(&url(p)).header("Authorization", &auth).call();
                let post = |p: &str, body: serde_json::Value| {
                    agent
                        .post(&url(p))
                        .header("Authorization", &auth)
                        .header("Content-Type", "application/json")
                        .send(body.to_string().as_bytes())
                };
                let r = match i % 10 {
                    0..=3 => get("/api/status"),
                    4 => get("/api/agents"),
                    5 => get("/api/campaigns/load/counters"),
                    6 => get("/api/campaigns/load"),
                    7 => post(
                        "/api/campaigns/load/records",
                        json!({ "numbers": [format!("+1646{:07}", n % 10_000_000)] }),
                    ),
                    8 => post(
                        "/api/blacklist",
                        json!({ "entries": [{ "number": format!("+1917{:07}", n % 10_000_000) }] }),
                    ),
                    _ => agent
                        .delete(&url(&format!(
                            "/api/blacklist/%2B1917{:07}",
                            (n - 1) % 10_000_000
                        )))
                        .header("Authorization", &auth)
                        .call(),
                };
                let r = r.and_then(|resp| {
                    let status = resp.status().as_u16();
                    let body = resp
                        .into_body()
                        .with_config()
                        .limit(64 << 20)
                        .read_to_vec()?;
                    Ok((status, body))
                });
                mine.push(t0.elapsed().as_micros() as u32);
                match r {
                    Ok((status, _)) if status < 500 && status != 401 => {}
                    Ok((status, body)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        eprintln!("error {status}: {}", String::from_utf8_lossy(&body));
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
            *client_cpu.lock().expect("cpu") += thread_cpu_s() - cpu0;
        }));
    }
    for w in workers {
        w.join().expect("worker");
    }
    stop.store(true, Ordering::Relaxed);
    let load_after = loadavg();
    let cpu_total = process_cpu_s() - cpu_before;
    let status = rt.block_on(dialer.status())?;
    // Subscribers end at their next event.
    let mut total_events = Vec::new();
    let mut gaps = 0;
    let mut sub_cpu = 0.0;
    for s in subs {
        let (n, g, cpu) = s.join().expect("subscriber");
        total_events.push(n);
        gaps += g;
        sub_cpu += cpu;
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
    let req_cpu = *client_cpu.lock().expect("cpu");
    println!(
        "CPU over the run: {cpu_total:.1} s in all ({:.0} % of one core); requesters {req_cpu:.1} s, \
         subscribers {sub_cpu:.1} s, server and dialer {:.1} s ({:.0} µs per request)",
        100.0 * cpu_total / secs as f64,
        cpu_total - req_cpu - sub_cpu,
        1e6 * (cpu_total - req_cpu - sub_cpu) / l.len().max(1) as f64
    );
    println!("load average before: {load_before}; after: {load_after}");
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

/// `/proc/loadavg`'s three averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// User + system CPU seconds from a `/proc/.../stat` line (fields 14 and 15, in ticks of
/// 1/100 s on Linux).
fn stat_cpu_s(path: &str) -> f64 {
    let Ok(s) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // The command name (field 2) may hold spaces; fields count from after its `)`.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn process_cpu_s() -> f64 {
    stat_cpu_s("/proc/self/stat")
}

fn thread_cpu_s() -> f64 {
    stat_cpu_s("/proc/thread-self/stat")
}
