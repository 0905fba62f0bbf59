//! The running dialer with a real SQLite spool file and the simulated telephone system
//! (`backend_sim::live::SimTelephony`, a real implementation of the Telephony seam) on an
//! accelerated clock. Regression tests are named after the defect they fix (issue 9).

mod common;

use backend_sim::live::SimTelephony;
use backend_sim::world::{self, FaultSpec, WorldSpec};
use backend_sim::Scenario;
use common::{spool, start_time};
use dialer_core::{
    AgentEvent, AgentId, BlacklistEntry, BlacklistScope, CallingHours, Campaign, CampaignId,
    DialMode, Direction, PhoneNumber, RecordStatus,
};
use dialer_runtime::{Clock, Dialer, DialerConfig, DialerStatus, OpError, RunSummary};
use spool_store::{Callback, ImportOptions, NewRecord, SpoolStore};
use std::time::Duration;

/// Simulated time runs this many times faster than real time.
const SPEED: f64 = 200.0;

fn campaign(id: &str) -> Campaign {
    let mut c = Campaign::new(id, "America/New_York");
    c.calling_hours = CallingHours::always();
    c.dial_mode = DialMode::Progressive;
    c.max_lines = 10;
    c
}

fn world(campaigns: Vec<CampaignId>, agents: u32, faults: FaultSpec, seed: u64) -> WorldSpec {
    let scenario = Scenario::builtin("small-team").expect("built-in scenario");
    let mut spec = world::spec_from_scenario(&scenario, campaigns, seed);
    spec.agents.count = agents;
    spec.faults = faults;
    spec
}

struct Run {
    dialer: Dialer,
    task: tokio::task::JoinHandle<Result<RunSummary, dialer_runtime::RuntimeError>>,
}

async fn start(store: SpoolStore, campaigns: Vec<Campaign>, spec: WorldSpec) -> Run {
    let clock = Clock::accelerated(start_time(), SPEED);
    let telephony = Box::new(SimTelephony::new(spec, clock));
    let config = DialerConfig {
        campaigns,
        ..Default::default()
    };
    let (dialer, task) = Dialer::start(config, store, telephony, clock)
        .await
        .expect("dialer starts");
    Run { dialer, task }
}

impl Run {
    async fn stop(self) -> RunSummary {
        match self.dialer.shutdown(Duration::from_secs(120)).await {
            Ok(s) => {
                self.task.await.expect("task").expect("run ends cleanly");
                s
            }
            Err(e) => {
                let run = self.task.await.expect("task");
                panic!("shutdown refused ({e}); the run ended with {run:?}");
            }
        }
    }

    /// Waits (bounded, real time) until the status satisfies `done`.
    async fn until(&mut self, what: &str, done: impl Fn(&DialerStatus) -> bool) -> DialerStatus {
        for _ in 0..400 {
            let s = match self.dialer.status().await {
                Ok(s) => s,
                Err(e) => {
                    let run = (&mut self.task).await.expect("task");
                    panic!("{what}: the dialer stopped ({e}); the run ended with {run:?}");
                }
            };
            if done(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let s = self.dialer.status().await.expect("status");
        panic!("{what}: not reached within 10 s; status {s:#?}");
    }
}

fn reopen(dir: &tempfile::TempDir) -> SpoolStore {
    SpoolStore::open_at(dir.path().join("spool.db"), start_time())
        .expect("reopen")
        .0
}

#[tokio::test]
async fn a_campaign_dials_through_the_runtime_and_the_ledger_matches() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 40);
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 3, FaultSpec::default(), 1),
    )
    .await;
    run.until("ten calls ended", |s| s.counters.calls_ended >= 10)
        .await;
    let summary = run.stop().await;
    let store = reopen(&dir);
    let attempts = store.attempts("spring").expect("attempts");
    assert_eq!(
        attempts.len() as u64,
        summary.counters.originates,
        "{summary:?}"
    );
}

/// Regression: while the PBX refused every Originate ("Asterisk is shutting down"), each
/// refused record was charged an attempt; the refusal reason was logged nowhere.
#[tokio::test]
async fn pbx_refusing_every_originate_charges_no_record() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 30);
    let faults = FaultSpec {
        refuse: 1.0,
        ..Default::default()
    };
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 3, faults, 2),
    )
    .await;
    let s = run
        .until("refusals seen and dialing paused", |s| {
            s.counters.refused_by_pbx >= 1
                && matches!(s.health, dialer_runtime::HealthView::Down { .. })
        })
        .await;
    assert_eq!(s.counters.calls_ended, 0);
    let summary = run.stop().await;
    assert!(summary.counters.refused_by_pbx >= 1);
    let store = reopen(&dir);
    for r in store.records("spring").expect("records") {
        assert_eq!(r.attempts, 0, "record {} was charged: {r:?}", r.id);
        assert_eq!(r.status, RecordStatus::Pending, "{r:?}");
    }
}

/// Regression: a refusal burst used to leak lines (inputs dropped after 64 rounds).
#[tokio::test]
async fn a_burst_of_refusals_leaks_no_line() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.dial_mode = DialMode::Power { ratio: 3.0 };
    let store = spool(&dir, &c, 200);
    let faults = FaultSpec {
        refuse: 0.5,
        ..Default::default()
    };
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 8, faults, 3),
    )
    .await;
    run.until("refusals and calls", |s| {
        s.counters.refused_by_pbx >= 5 && s.counters.calls_ended >= 5
    })
    .await;
    let summary = run.stop().await;
    assert_eq!(summary.calls_left_in_flight, 0, "{summary:?}");
}

/// Regression: a call that ended while events were lost was booked as connected for the
/// whole gap and finished as completed.
#[tokio::test]
async fn a_call_whose_end_was_lost_ends_unknown_not_connected() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 10);
    let faults = FaultSpec {
        lose: 1.0,
        lost_after_s: 60.0,
        ..Default::default()
    };
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 2, faults, 4),
    )
    .await;
    run.until("lost calls reported", |s| s.counters.calls_ended >= 2)
        .await;
    run.stop().await;
    let store = reopen(&dir);
    let attempts = store.attempts("spring").expect("attempts");
    let closed: Vec<_> = attempts.iter().filter_map(|a| a.outcome).collect();
    assert!(!closed.is_empty());
    for o in closed {
        assert_eq!(o.code(), "unknown", "{attempts:?}");
    }
}

/// Regression: the timed stop left an attempt booked but never sent.
#[tokio::test]
async fn a_stop_leaves_no_attempt_booked_but_unsent() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.dial_mode = DialMode::Power { ratio: 2.0 };
    let store = spool(&dir, &c, 100);
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 5, FaultSpec::default(), 5),
    )
    .await;
    run.until("calls in flight", |s| s.engine.calls.len() >= 3)
        .await;
    let s = run.dialer.shutdown(Duration::ZERO).await.expect("shutdown");
    run.task.await.expect("task").expect("run");
    let store = reopen(&dir);
    let attempts = store.attempts("spring").expect("attempts");
    // Every ledger row belongs to an Originate that was handed over (or refused, not charged).
    assert_eq!(
        attempts.len() as u64,
        s.counters.originates + s.counters.refused_locally,
        "{s:?}"
    );
}

/// Regression: a do-not-call entry added through the handle changed engine memory only and
/// was forgotten on restart.
#[tokio::test]
async fn a_blacklist_entry_added_through_the_handle_survives_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 5);
    let run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 0, FaultSpec::default(), 6),
    )
    .await;
    let entry = BlacklistEntry {
        number: "+12125551003".into(),
        scope: BlacklistScope::All,
        expires_at: None,
        direction: Direction::Outbound,
    };
    run.dialer
        .blacklist_add(vec![entry.clone()])
        .await
        .expect("blacklist add");
    run.stop().await;
    let store = reopen(&dir);
    assert!(store
        .is_blacklisted("+12125551003", "spring", start_time())
        .expect("lookup"));
}

/// Regression: a contact removed (through a second connection) while the engine held it
/// stopped the dialer. Through the handle it is removed, never dialed, and nothing stops.
#[tokio::test]
async fn a_contact_removed_while_held_is_never_dialed_and_nothing_stops() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 20);
    // No agents yet: the engine holds the records in its hopper without dialing.
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 0, FaultSpec::default(), 7),
    )
    .await;
    run.until("hopper filled", |s| {
        s.engine.campaigns.iter().any(|c| c.hopper > 0)
    })
    .await;
    let removed = run
        .dialer
        .remove_contact(c.id.clone(), "+12125551000".into())
        .await
        .expect("removed");
    assert_eq!(removed.len(), 1);
    run.dialer
        .login(AgentId::from("alice"), vec![c.id.clone()])
        .await
        .expect("login");
    run.until("calls placed", |s| s.counters.originates >= 3)
        .await;
    let summary = run.stop().await;
    assert!(summary.counters.originates >= 3);
    let store = reopen(&dir);
    for a in store.attempts("spring").expect("attempts") {
        assert_ne!(
            a.record, removed[0],
            "the removed contact was dialed: {a:?}"
        );
    }
}

/// Regression: a campaign added at run time made the runtime exit when it asked the store
/// for records.
#[tokio::test]
async fn a_campaign_added_at_run_time_dials() {
    let dir = tempfile::tempdir().expect("dir");
    let first = campaign("spring");
    let mut store = spool(&dir, &first, 1);
    let second = campaign("autumn");
    store
        .upsert_campaign(&second, start_time())
        .expect("campaign");
    let base: String = (0..10)
        .map(|i| format!("autumn;312555{:04};;;;\n", 2000 + i))
        .collect();
    store
        .import_base(
            base.as_bytes(),
            &ImportOptions::new("autumn", "autumn.txt", start_time()),
            &mut |_| {},
        )
        .expect("import");
    let mut run = start(
        store,
        vec![first.clone()],
        world(vec![], 0, FaultSpec::default(), 8),
    )
    .await;
    run.dialer
        .upsert_campaign(second.clone())
        .await
        .expect("added");
    run.dialer
        .login(AgentId::from("bob"), vec![second.id.clone()])
        .await
        .expect("login");
    run.until("the new campaign dials", |s| s.counters.originates >= 2)
        .await;
    run.stop().await;
}

#[tokio::test]
async fn an_invalid_campaign_is_refused_with_the_field_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 1);
    let run = start(
        store,
        vec![c.clone()],
        world(vec![], 0, FaultSpec::default(), 9),
    )
    .await;
    let mut bad = campaign("winter");
    bad.ring_timeout_s = 3;
    let e = run.dialer.upsert_campaign(bad).await.unwrap_err();
    assert!(
        matches!(e, OpError::InvalidCampaign(ref c) if c.field == "ring_timeout_s"),
        "{e}"
    );
    assert!(e.to_string().contains("ring_timeout_s"), "{e}");
    let s = run.dialer.status().await.expect("status");
    assert_eq!(s.engine.campaigns.len(), 1);
    run.stop().await;
    assert!(!reopen(&dir).has_campaign("winter").expect("lookup"));
}

#[tokio::test]
async fn a_respool_of_a_live_number_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    let run = start(
        store,
        vec![c.clone()],
        world(vec![], 0, FaultSpec::default(), 10),
    )
    .await;
    let n = PhoneNumber::parse("212 555 1001", "US").expect("number");
    let e = run
        .dialer
        .respool(NewRecord::new("spring", vec![n]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            OpError::Store(spool_store::StoreError::DuplicateDestination { .. })
        ),
        "{e}"
    );
    run.stop().await;
    assert_eq!(reopen(&dir).records("spring").expect("records").len(), 3);
}

/// Found reviewing the engine split: the engine checks a RESPOOL's numbers only against the
/// records it holds, so a number live on a record it did not hold (a callback due tomorrow)
/// was accepted and two live records shared a destination.
#[tokio::test]
async fn a_respool_disposition_to_a_number_live_on_a_record_the_engine_does_not_hold_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let mut store = spool(&dir, &c, 3);
    let taken = PhoneNumber::parse("212 555 1002", "US").expect("number");
    let tomorrow = start_time() + chrono::Duration::days(1);
    let (held_back, _) = store
        .schedule_call(
            &NewRecord::new("spring", vec![taken.clone()]),
            &Callback::at(dialer_core::ScheduleWhen::At { at: tomorrow }),
            start_time(),
        )
        .expect("callback");
    let run = start(
        store,
        vec![c.clone()],
        world(vec![], 0, FaultSpec::default(), 11),
    )
    .await;
    let first = dialer_core::RecordId(1);
    assert_ne!(first, held_back);
    let before = run.dialer.record(first.clone()).await.expect("record");
    let respool = dialer_core::Respool {
        numbers: Some(vec![taken]),
        ..Default::default()
    };
    let e = run
        .dialer
        .dispose(
            None,
            first.clone(),
            dialer_core::Disposition::Respool(respool),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            OpError::Store(spool_store::StoreError::DuplicateDestination { .. })
        ),
        "{e}"
    );
    let after = run.dialer.record(first.clone()).await.expect("record");
    assert_eq!(before.numbers, after.numbers, "nothing changed");
    run.stop().await;
    let store = reopen(&dir);
    let live: Vec<_> = store
        .records("spring")
        .expect("records")
        .into_iter()
        .filter(|r| !r.is_finished() && r.numbers.iter().any(|n| n.number.e164() == "+12125551002"))
        .collect();
    assert_eq!(live.len(), 1, "one live record holds the number: {live:?}");
}

#[tokio::test]
async fn an_agent_event_for_an_unknown_campaign_is_a_typed_rejection() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 1);
    let run = start(
        store,
        vec![c.clone()],
        world(vec![], 0, FaultSpec::default(), 11),
    )
    .await;
    let e = run
        .dialer
        .agent(
            AgentId::from("carol"),
            AgentEvent::LoggedIn {
                campaigns: vec![CampaignId::from("nope")],
                inactivity_timeout_s: None,
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OpError::Rejected(_)), "{e}");
    run.stop().await;
}

/// Regression: a queue member seen paused at start became `LoggedIn`, was dialed for, then
/// `Paused`, because inputs were fed one at a time. Fed as one burst (as the AMI bridge does),
/// the engine decides once, with the pause known: no call.
#[test]
fn a_member_paused_at_start_gets_no_call() {
    use dialer_core::{Engine, EngineConfig, InputKind};
    use dialer_runtime::driver::{Action, Driver};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 5);
    let mut driver = Driver::new(Engine::new(EngineConfig::default()), store);
    driver
        .handle(start_time(), [InputKind::Campaign(Box::new(c.clone()))])
        .expect("campaign");
    let agent = AgentId::from("Agent One");
    driver
        .handle(
            start_time(),
            [
                InputKind::Agent {
                    agent: agent.clone(),
                    event: AgentEvent::LoggedIn {
                        campaigns: vec![c.id.clone()],
                        inactivity_timeout_s: None,
                    },
                },
                InputKind::Agent {
                    agent,
                    event: AgentEvent::Paused {
                        reason: "paused in queue".into(),
                    },
                },
            ],
        )
        .expect("login and pause");
    while let Some(a) = driver.poll_action() {
        assert!(
            !matches!(a, Action::Originate(_)),
            "a paused member was dialed for: {a:?}"
        );
    }
}

/// Regression: a restart began the legal period's abandonment books at zero (live 0, abandoned
/// 0), so a period already over its cap got a fresh budget. The books are persisted as they
/// change and handed back to the restarted engine.
#[tokio::test]
async fn the_abandonment_books_of_a_period_survive_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 40);
    let mut run = start(
        store,
        vec![c.clone()],
        world(vec![c.id.clone()], 3, FaultSpec::default(), 11),
    )
    .await;
    let before = run
        .until("three live answers booked", |s| {
            s.engine.campaigns[0].abandonment.live_answers >= 3
        })
        .await;
    run.stop().await;
    let books = reopen(&dir).abandon_books("spring").expect("books");
    let last = *books.last().expect("the period was persisted");
    assert!(
        last.live >= before.engine.campaigns[0].abandonment.live_answers,
        "{books:?} {before:?}"
    );

    // Restarted with no agent: nothing is dialed, the books are the first run's.
    let mut run = start(
        reopen(&dir),
        vec![c.clone()],
        world(vec![c.id.clone()], 0, FaultSpec::default(), 12),
    )
    .await;
    let after = run
        .until("the campaign is loaded", |s| !s.engine.campaigns.is_empty())
        .await;
    let position = &after.engine.campaigns[0].abandonment;
    assert_eq!(position.period_start, Some(last.start));
    assert_eq!(
        (position.live_answers, position.abandoned),
        (last.live, last.abandoned),
        "{position:?}"
    );
    run.stop().await;
}
