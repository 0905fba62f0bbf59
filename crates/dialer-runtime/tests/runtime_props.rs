//! Property: random interleavings of operations through the `Dialer` handle, agent events,
//! simulated calls and restarts of the runtime, against a real SQLite spool file. After every
//! step the engine's view and the spool agree: the calls in flight are exactly the open rows
//! of the attempt ledger, no blacklisted number is ever dialed after its entry was accepted,
//! a removed contact is never dialed, and every accepted operation survives a restart.
//!
//! Time is tokio's paused clock, so a case runs in virtual time and is deterministic.

use backend_sim::live::SimTelephony;
use backend_sim::world::{self, FaultSpec};
use backend_sim::Scenario;
use chrono::{TimeZone, Utc};
use dialer_core::{
    AgentEvent, AgentId, BlacklistEntry, BlacklistScope, CallingHours, Campaign, CampaignId,
    DialMode, Direction,
};
use dialer_runtime::{Clock, Dialer, DialerConfig};
use proptest::prelude::*;
use spool_store::{ImportOptions, SpoolStore};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const RECORDS: usize = 30;

#[derive(Debug, Clone)]
enum Step {
    Login(u8),
    Pause(u8),
    Ready(u8),
    Logout(u8),
    Blacklist(u8),
    Unblacklist(u8),
    Remove(u8),
    Wait(u16),
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..3).prop_map(Step::Login),
        1 => (0u8..3).prop_map(Step::Pause),
        1 => (0u8..3).prop_map(Step::Ready),
        1 => (0u8..3).prop_map(Step::Logout),
        2 => (0u8..RECORDS as u8).prop_map(Step::Blacklist),
        1 => (0u8..RECORDS as u8).prop_map(Step::Unblacklist),
        2 => (0u8..RECORDS as u8).prop_map(Step::Remove),
        4 => (1u16..120).prop_map(Step::Wait),
        1 => Just(Step::Restart),
    ]
}

fn number(i: u8) -> String {
    format!("+1212555{:04}", 1000 + u32::from(i))
}

fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 14, 0, 0)
        .single()
        .expect("valid time")
}

fn campaign() -> Campaign {
    let mut c = Campaign::new("spring", "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Power { ratio: 2.0 };
    c.max_lines = 6;
    c
}

async fn start(
    path: &std::path::Path,
    seed: u64,
) -> (
    Dialer,
    tokio::task::JoinHandle<Result<dialer_runtime::RunSummary, dialer_runtime::RuntimeError>>,
) {
    let clock = Clock::accelerated(start_time(), 1.0);
    let (store, _) = SpoolStore::open_at(path, clock.now()).expect("open spool");
    let scenario = Scenario::builtin("small-team").expect("scenario");
    let mut spec = world::spec_from_scenario(&scenario, vec![], seed);
    spec.agents.count = 0;
    spec.faults = FaultSpec {
        refuse: 0.1,
        lose: 0.05,
        lost_after_s: 30.0,
        outages: vec![],
    };
    let config = DialerConfig {
        campaigns: vec![campaign()],
        ..Default::default()
    };
    Dialer::start(
        config,
        store,
        Box::new(SimTelephony::new(spec, clock)),
        clock,
    )
    .await
    .expect("dialer starts")
}

fn last_call(path: &std::path::Path) -> u64 {
    SpoolStore::open_read_only(path)
        .expect("read-only spool")
        .max_call_id()
        .expect("max call id")
        .map_or(0, |c| c.0)
}

/// The calls the engine has in flight are exactly the ledger's open rows. The dialer task
/// keeps working between the status reply and the read of the spool, so the comparison is
/// made on a snapshot that held still across the read (bounded retries).
async fn agree(dialer: &Dialer, path: &std::path::Path) -> Result<(), TestCaseError> {
    let calls = |s: &dialer_runtime::DialerStatus| -> BTreeSet<u64> {
        s.engine.calls.iter().map(|c| c.call.0).collect()
    };
    for _ in 0..50 {
        let before = calls(&dialer.status().await.expect("status"));
        let store = SpoolStore::open_read_only(path).expect("read-only spool");
        let open: BTreeSet<u64> = store
            .attempts("spring")
            .expect("attempts")
            .iter()
            .filter(|a| a.outcome.is_none())
            .map(|a| a.call.0)
            .collect();
        let after = calls(&dialer.status().await.expect("status"));
        if before == after {
            prop_assert_eq!(before, open, "calls in flight vs open ledger rows");
            return Ok(());
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

fn run_case(steps: Vec<Step>, seed: u64) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("spool.db");
        {
            let mut store = SpoolStore::open_at(&path, start_time()).expect("spool").0;
            store
                .upsert_campaign(&campaign(), start_time())
                .expect("campaign");
            let base: String = (0..RECORDS as u8)
                .map(|i| format!("spring;{};;;;\n", number(i)))
                .collect();
            store
                .import_base(
                    base.as_bytes(),
                    &ImportOptions::new("spring", "base.txt", start_time()),
                    &mut |_| {},
                )
                .expect("import");
        }
        let cid = CampaignId::from("spring");
        let (mut dialer, mut task) = start(&path, seed).await;
        let mut logged: BTreeSet<u8> = BTreeSet::new();
        // Numbers whose blacklisting was accepted (and not lifted), and removed contacts,
        // with the last call id booked when that was accepted: no later call may dial them.
        let mut blocked: BTreeMap<String, u64> = BTreeMap::new();
        let mut removed: BTreeMap<String, u64> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Login(a) => {
                    if dialer
                        .login(AgentId::from(format!("a{a}")), vec![cid.clone()])
                        .await
                        .is_ok()
                    {
                        logged.insert(a);
                    }
                }
                Step::Pause(a) => {
                    let _ = dialer
                        .agent(
                            AgentId::from(format!("a{a}")),
                            AgentEvent::Paused {
                                reason: "break".into(),
                            },
                        )
                        .await;
                }
                Step::Ready(a) => {
                    let _ = dialer
                        .agent(AgentId::from(format!("a{a}")), AgentEvent::Ready)
                        .await;
                }
                Step::Logout(a) => {
                    let _ = dialer
                        .agent(AgentId::from(format!("a{a}")), AgentEvent::LoggedOut)
                        .await;
                    logged.remove(&a);
                }
                Step::Blacklist(i) => {
                    let entry = BlacklistEntry {
                        number: number(i),
                        scope: BlacklistScope::All,
                        expires_at: None,
                        direction: Direction::Outbound,
                    };
                    if dialer.blacklist_add(vec![entry]).await.is_ok() {
                        blocked.entry(number(i)).or_insert(last_call(&path));
                    }
                }
                Step::Unblacklist(i) => {
                    if dialer
                        .blacklist_remove(vec![(number(i), BlacklistScope::All)])
                        .await
                        .is_ok()
                    {
                        blocked.remove(&number(i));
                    }
                }
                Step::Remove(i) => {
                    if let Ok(ids) = dialer.remove_contact(cid.clone(), number(i)).await {
                        if !ids.is_empty() {
                            removed.entry(number(i)).or_insert(last_call(&path));
                        }
                    }
                }
                Step::Wait(s) => tokio::time::sleep(Duration::from_secs(u64::from(s))).await,
                Step::Restart => {
                    dialer.shutdown(Duration::ZERO).await.expect("shutdown");
                    task.await.expect("task").expect("run");
                    let (d, t) = start(&path, seed).await;
                    dialer = d;
                    task = t;
                    for a in &logged {
                        let _ = dialer
                            .login(AgentId::from(format!("a{a}")), vec![cid.clone()])
                            .await;
                    }
                }
            }
            agree(&dialer, &path).await?;
            // A call booked after a number was blacklisted or removed is a violation.
            let store = SpoolStore::open_read_only(&path).expect("read-only");
            for a in store.attempts("spring").expect("attempts") {
                let n = a.e164.clone();
                for (what, map) in [("blacklisted", &blocked), ("removed", &removed)] {
                    if let Some(after) = map.get(&n) {
                        prop_assert!(
                            a.call.0 <= *after,
                            "{} dialed by call {} after it was {}",
                            n,
                            a.call,
                            what
                        );
                    }
                }
            }
        }
        dialer
            .shutdown(Duration::from_secs(600))
            .await
            .expect("shutdown");
        task.await.expect("task").expect("run");
        // After a full drain nothing is in flight and nothing stays open in the ledger.
        let store = SpoolStore::open_read_only(&path).expect("read-only");
        let open = store
            .attempts("spring")
            .expect("attempts")
            .into_iter()
            .filter(|a| a.outcome.is_none())
            .count();
        prop_assert_eq!(open, 0);
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn engine_and_spool_agree_through_operations_calls_and_restarts(
        steps in proptest::collection::vec(step(), 1..25),
        seed in 0u64..1_000,
    ) {
        run_case(steps, seed)?;
    }
}
