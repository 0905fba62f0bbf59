//! A running dialer (real SQLite spool file, simulated telephone system on an accelerated
//! clock) with the API served on a loopback port, and clients for it.

#![allow(dead_code)]

use backend_sim::live::SimTelephony;
use backend_sim::{world, Scenario};
use chrono::{TimeZone, Utc};
use dialer_api::client::{Client, Reply};
use dialer_api::ApiServer;
use dialer_core::{CallingHours, Campaign, DialMode};
use dialer_runtime::config::{ApiConfig, Secret};
use dialer_runtime::{Clock, Dialer, DialerConfig};
use serde_json::Value;
use spool_store::{ImportOptions, SpoolStore};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub const RW: &str = "rw-token-0123456789abcdef";
pub const RO: &str = "ro-token-0123456789abcdef";
pub const SPEED: f64 = 100.0;

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 14, 0, 0)
        .single()
        .expect("valid time")
}

pub fn campaign(id: &str) -> Campaign {
    let mut c = Campaign::new(id, "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Progressive;
    c.max_lines = 6;
    c
}

/// The number of record `i` of the test spool (national form, US).
pub fn number(i: usize) -> String {
    format!("212555{:04}", 1000 + i)
}

pub struct Harness {
    pub rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub dialer: Dialer,
    pub addr: SocketAddr,
    /// Read-write client.
    pub rw: Client,
    /// Read-only (supervisor) client.
    pub ro: Client,
    pub task: Option<
        tokio::task::JoinHandle<Result<dialer_runtime::RunSummary, dialer_runtime::RuntimeError>>,
    >,
}

pub struct Setup {
    pub records: usize,
    /// Simulated agents (they log in by themselves).
    pub agents: u32,
    pub seed: u64,
    pub config: ApiConfig,
    /// When the dialer's (accelerated) clock starts.
    pub start: chrono::DateTime<Utc>,
}

impl Default for Setup {
    fn default() -> Self {
        let mut config = ApiConfig::new("127.0.0.1:0");
        config.tokens.push(Secret::from(RW.to_owned()));
        config.read_tokens.push(Secret::from(RO.to_owned()));
        Setup {
            records: 40,
            agents: 3,
            seed: 7,
            config,
            start: start_time(),
        }
    }
}

impl Harness {
    pub fn start(setup: Setup) -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spool.db");
        let c = campaign("spring");
        let mut store = SpoolStore::open_at(&path, setup.start)
            .expect("open spool")
            .0;
        store.upsert_campaign(&c, setup.start).expect("campaign");
        let base: String = (0..setup.records)
            .map(|i| format!("spring;{};n={i};;;\n", number(i)))
            .collect();
        let opts = ImportOptions::new("spring", "seed.txt", setup.start);
        store
            .import_base(base.as_bytes(), &opts, &mut |_| {})
            .expect("import");
        let (dialer, task, addr) = rt.block_on(async {
            let clock = Clock::accelerated(setup.start, SPEED);
            let scenario = Scenario::builtin("small-team").expect("built-in scenario");
            let mut spec = world::spec_from_scenario(&scenario, vec![c.id.clone()], setup.seed);
            spec.agents.count = setup.agents;
            let telephony = Box::new(SimTelephony::new(spec, clock));
            let config = DialerConfig {
                campaigns: vec![c.clone()],
                ..Default::default()
            };
            let (dialer, task) = Dialer::start(config, store, telephony, clock)
                .await
                .expect("dialer starts");
            let server = ApiServer::bind(&setup.config, dialer.clone(), path.clone())
                .await
                .expect("server binds");
            let addr = server.local_addr();
            tokio::spawn(server.serve());
            (dialer, task, addr)
        });
        let server = format!("http://{addr}");
        Harness {
            rw: Client::new(&server, Some(RW.into())),
            ro: Client::new(&server, Some(RO.into())),
            rt,
            dir,
            dialer,
            addr,
            task: Some(task),
        }
    }

    pub fn server(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(&self.server(), token.map(str::to_owned))
    }

    /// Polls `GET path` (bounded, real time) until `done` holds; returns the last body.
    pub fn until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.rw.call("GET", path, None).expect(path);
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {v}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Follows the event stream (with a query) until `want` matches an event; returns it.
    /// Fails after 20 s.
    pub fn wait_event(
        &self,
        query: &str,
        last: Option<u64>,
        want: impl Fn(&str, &Value) -> bool + Send + 'static,
    ) -> (Option<u64>, String, Value) {
        let client = self.rw.clone();
        let query = query.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = client.events(&query, last, |id, name, data| {
                let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                if want(name, &v) {
                    let _ = tx.send((id, name.to_owned(), v));
                    return false;
                }
                true
            });
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("the awaited event did not come within 20 s")
    }
}

impl Harness {
    /// Events of the stream (with a query) that arrive within `window`.
    pub fn collect_events(
        &self,
        query: &str,
        last: Option<u64>,
        window: Duration,
    ) -> Vec<(Option<u64>, String, Value)> {
        let client = self.rw.clone();
        let query = query.to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = client.events(&query, last, |id, name, data| {
                let v: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                tx.send((id, name.to_owned(), v)).is_ok()
            });
        });
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(e) => out.push(e),
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let dialer = self.dialer.clone();
        let task = self.task.take();
        self.rt.block_on(async move {
            let _ = dialer.shutdown(Duration::from_secs(5)).await;
            if let Some(t) = task {
                let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
            }
        });
    }
}

/// Asserts a problem response: status and code, and returns it.
pub fn problem(r: &Reply, status: u16, code: &str) -> Value {
    assert_eq!(r.status, status, "expected {status} {code}, got {}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert!(
        r.body["detail"].as_str().is_some_and(|d| d.len() > 10),
        "a problem has a sentence: {}",
        r.body
    );
    r.body.clone()
}
