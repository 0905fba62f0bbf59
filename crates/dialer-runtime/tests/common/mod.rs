//! The harness the runtime's operation tests share: a spool file with a campaign, the
//! simulated telephone system (recording every command the dialer sent it) on an
//! accelerated clock, and a started `Dialer`.
#![allow(dead_code)] // each test file uses its own part of the harness

use async_trait::async_trait;
use backend_sim::live::SimTelephony;
use backend_sim::world::{self, FaultSpec, WorldSpec};
use backend_sim::Scenario;
use chrono::{DateTime, TimeZone, Utc};
use dialer_core::{CallingHours, Campaign, CampaignId, DialMode};
use dialer_runtime::config::CampaignCatalogue;
use dialer_runtime::{
    Clock, Dialer, DialerConfig, DialerStatus, RunSummary, Telephony, TelephonyCommand,
    TelephonyError, TelephonyEvent,
};
use spool_store::{BreakType, ImportOptions, ResultCode, SpoolStore};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The spool file of a test's directory.
pub fn path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("spool.db")
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 14, 0, 0)
        .single()
        .expect("valid time")
}

pub fn campaign(id: &str) -> Campaign {
    let mut c = Campaign::new(id, "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Progressive;
    c.max_lines = 4;
    c
}

pub fn codes() -> Vec<ResultCode> {
    let code = |code: &str, label: &str, l1: &str, active: bool| ResultCode {
        code: code.into(),
        label: label.into(),
        l1: Some(l1.into()),
        l2: None,
        l3: None,
        active,
    };
    vec![
        code("SALE", "Sale", "positive", true),
        code("NI", "Not interested", "negative", true),
        code("OLD", "Retired code", "negative", false),
    ]
}

pub fn breaks() -> Vec<BreakType> {
    let b = |id: &str, name: &str, active: bool| BreakType {
        id: id.into(),
        name: name.into(),
        active,
    };
    vec![
        b("lunch", "Lunch", true),
        b("coffee", "Coffee", true),
        b("training", "Training", false),
    ]
}

pub fn world(campaigns: Vec<CampaignId>, agents: u32, seed: u64) -> WorldSpec {
    let scenario = Scenario::builtin("small-team").expect("built-in scenario");
    let mut spec = world::spec_from_scenario(&scenario, campaigns, seed);
    spec.agents.count = agents;
    spec.faults = FaultSpec::default();
    spec
}

/// A spool file with the campaign and `n` records imported through the base-file importer.
pub fn spool(dir: &tempfile::TempDir, c: &Campaign, n: usize) -> SpoolStore {
    let mut store = SpoolStore::open_at(dir.path().join("spool.db"), start_time())
        .expect("open spool")
        .0;
    store.upsert_campaign(c, start_time()).expect("campaign");
    if n > 0 {
        let base: String = (0..n)
            .map(|i| format!("{};212555{:04};n={i};;;\n", c.id, 1000 + i))
            .collect();
        let opts = ImportOptions::new(c.id.to_string(), "base.txt", start_time());
        let s = store
            .import_base(base.as_bytes(), &opts, &mut |_| {})
            .expect("import");
        assert_eq!(s.imported as usize, n, "{s:?}");
    }
    store
}

pub fn reopen(dir: &tempfile::TempDir) -> SpoolStore {
    SpoolStore::open_at(dir.path().join("spool.db"), start_time())
        .expect("reopen")
        .0
}

/// The simulated telephone system, with a copy of every command the dialer sent it.
pub struct Recording {
    pub inner: SimTelephony,
    pub sent: Arc<Mutex<Vec<TelephonyCommand>>>,
}

#[async_trait]
impl Telephony for Recording {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn submit(&mut self, command: TelephonyCommand) -> Result<(), TelephonyError> {
        self.sent
            .lock()
            .expect("not poisoned")
            .push(command.clone());
        self.inner.submit(command).await
    }
    async fn next_burst(&mut self) -> Option<Vec<TelephonyEvent>> {
        self.inner.next_burst().await
    }
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

pub struct Run {
    pub dialer: Dialer,
    pub task: tokio::task::JoinHandle<Result<RunSummary, dialer_runtime::RuntimeError>>,
    pub sent: Arc<Mutex<Vec<TelephonyCommand>>>,
}

pub async fn start(store: SpoolStore, c: &Campaign, spec: WorldSpec, speed: f64) -> Run {
    let clock = Clock::accelerated(start_time(), speed);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let telephony = Box::new(Recording {
        inner: SimTelephony::new(spec, clock),
        sent: sent.clone(),
    });
    let config = DialerConfig {
        campaigns: vec![c.clone()],
        catalogues: vec![CampaignCatalogue {
            campaign: c.id.clone(),
            result_codes: Some(codes()),
            breaks: Some(breaks()),
        }],
        ..Default::default()
    };
    let (dialer, task) = Dialer::start(config, store, telephony, clock)
        .await
        .expect("dialer starts");
    Run { dialer, task, sent }
}

impl Run {
    pub async fn stop(self) -> RunSummary {
        let s = self
            .dialer
            .shutdown(Duration::from_secs(600))
            .await
            .expect("shutdown");
        self.task.await.expect("task").expect("run ends cleanly");
        s
    }

    /// Waits (bounded, real time) until the status satisfies `done`.
    pub async fn until(&self, what: &str, done: impl Fn(&DialerStatus) -> bool) -> DialerStatus {
        for _ in 0..800 {
            let s = self.dialer.status().await.expect("status");
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let s = self.dialer.status().await.expect("status");
        panic!("{what}: not reached within 20 s; status {s:#?}");
    }
}

pub fn agent_state(s: &DialerStatus, agent: &str) -> Option<dialer_core::AgentState> {
    s.engine
        .agents
        .iter()
        .find(|a| a.agent.as_str() == agent)
        .map(|a| a.state.clone())
}
