//! The seed rows of `docs/seed-operations.md` that were marked done without a test, each
//! re-checked through the `Dialer` handle: a real SQLite spool file, the simulated telephone
//! system on an accelerated clock. Each test is named after its row.

mod common;

use common::*;
use dialer_core::{
    AgentId, BlacklistScope, CallOutcome, CallState, CampaignId, Disposition, DispositionError,
    Event, FinishReason, PhoneNumber, Progress, RecordId, RecordStatus, Respool, ScheduleWhen,
};
use dialer_runtime::{DialerEvent, OpError, TelephonyCommand};
use spool_store::{Callback, ImportOptions, NewRecord, SpoolStore, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn us(national: &str) -> PhoneNumber {
    PhoneNumber::parse(national, "US").expect("a US number")
}

fn new_record(campaign: &str, numbers: &[&str]) -> NewRecord {
    NewRecord::new(campaign, numbers.iter().map(|n| us(n)).collect())
}

/// A spool file with the campaign and the base-file lines given (one record each).
fn spool_with(dir: &tempfile::TempDir, c: &dialer_core::Campaign, base: &str) -> SpoolStore {
    let mut store = spool(dir, c, 0);
    let opts = ImportOptions::new(c.id.to_string(), "base.txt", start_time());
    let lines = base.lines().count() as u64;
    let s = store
        .import_base(base.as_bytes(), &opts, &mut |_| {})
        .expect("import");
    assert_eq!(s.imported, lines, "{s:?}");
    store
}

/// Every event the dialer publishes from now on.
fn collect(run: &Run) -> Arc<Mutex<Vec<DialerEvent>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut rx = run.dialer.subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => out.lock().expect("not poisoned").push(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    panic!("the test lost {n} events")
                }
                Err(_) => return,
            }
        }
    });
    seen
}

fn engine_events(seen: &Arc<Mutex<Vec<DialerEvent>>>) -> Vec<Event> {
    seen.lock()
        .expect("not poisoned")
        .iter()
        .filter_map(|e| match e {
            DialerEvent::Engine { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect()
}

fn ledger(dir: &tempfile::TempDir, campaign: &str) -> Vec<spool_store::AttemptRow> {
    SpoolStore::open_read_only(path(dir))
        .expect("reader")
        .attempts(campaign)
        .expect("ledger")
}

/// Waits (bounded, real time) until the ledger satisfies `done`.
async fn until_ledger(
    dir: &tempfile::TempDir,
    campaign: &str,
    what: &str,
    done: impl Fn(&[spool_store::AttemptRow]) -> bool,
) -> Vec<spool_store::AttemptRow> {
    for _ in 0..800 {
        let rows = ledger(dir, campaign);
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{what}: not reached within 20 s; ledger {:#?}",
        ledger(dir, campaign)
    );
}

// ---- E1: the campaign model --------------------------------------------------------------

#[tokio::test]
async fn e1_a_campaign_dials_with_its_trunk_context_queue_and_line_limit_within_its_dates() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.routing.channel_prefix = "SIP/carrier-a/".into();
    c.routing.context = "dialer-out".into();
    c.routing.exten = "s".into();
    c.routing.queue = "sales".into();
    c.max_lines = 1;
    c.max_attempts_per_record = 2;
    c.start_date = Some(start_time().date_naive());
    c.end_date = Some(start_time().date_naive());
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 101), 50.0).await;
    run.until("a call placed", |s| s.counters.originates >= 1)
        .await;
    let page = run
        .dialer
        .list_campaigns(Default::default())
        .await
        .expect("list");
    assert_eq!(
        page.campaigns
            .iter()
            .map(|l| l.name.as_str())
            .collect::<Vec<_>>(),
        ["spring"]
    );
    let listed = SpoolStore::open_read_only(path(&dir))
        .expect("reader")
        .campaign("spring")
        .expect("the campaign's settings");
    assert_eq!(listed.routing, c.routing, "trunk, context and queue kept");
    assert_eq!(
        (listed.start_date, listed.end_date, listed.max_lines),
        (c.start_date, c.end_date, 1)
    );
    assert_eq!(listed.max_attempts_per_record, 2);
    let sent = run.sent.lock().expect("not poisoned").clone();
    let first = sent
        .iter()
        .find_map(|c| match c {
            TelephonyCommand::Originate(o) => Some(o.clone()),
            _ => None,
        })
        .expect("an originate");
    assert_eq!(first.routing.channel_prefix, "SIP/carrier-a/");
    assert_eq!(first.routing.context, "dialer-out");
    assert_eq!(first.routing.queue, "sales");
    run.stop().await;
}

#[tokio::test]
async fn e1_a_campaign_past_its_end_date_dials_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.start_date = Some(start_time().date_naive() - chrono::Duration::days(10));
    c.end_date = Some(start_time().date_naive() - chrono::Duration::days(1));
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 102), 100.0).await;
    // Two simulated minutes with two free agents.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let s = run.dialer.status().await.expect("status");
    assert_eq!(s.counters.originates, 0, "no dial after the last day");
    run.stop().await;
    assert!(ledger(&dir, "spring").is_empty());
}

// ---- U4 / U9 / U10: respool --------------------------------------------------------------

#[tokio::test]
async fn u4_a_respool_disposition_onto_a_number_live_on_another_record_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 103), 1.0).await;
    let before = run.dialer.record(RecordId(1)).await.expect("record");
    // Record 2's number is +12125551001.
    let e = run
        .dialer
        .dispose(
            Some(AgentId::from("agent1")),
            RecordId(1),
            Disposition::Respool(Respool {
                numbers: Some(vec![us("2125551001")]),
                ..Respool::default()
            }),
        )
        .await
        .expect_err("a live number");
    match &e {
        OpError::Store(StoreError::DuplicateDestination { number, record, .. }) => {
            assert_eq!((number.as_str(), record), ("+12125551001", &RecordId(2)))
        }
        other => panic!("unexpected refusal {other:?}"),
    }
    assert!(e.to_string().contains("+12125551001"), "{e}");
    assert_eq!(
        run.dialer.record(RecordId(1)).await.expect("record"),
        before
    );
    // A free number is taken: the record dials it, main first.
    run.dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Respool(Respool {
                numbers: Some(vec![us("2125559999"), us("2125551000")]),
                ..Respool::default()
            }),
        )
        .await
        .expect("respooled");
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    let numbers: Vec<&str> = rec.numbers.iter().map(|s| s.number.e164()).collect();
    assert_eq!(numbers, ["+12125559999", "+12125551000"]);
    assert_eq!(
        (rec.current, rec.status.clone()),
        (0, RecordStatus::Pending)
    );
    run.stop().await;
}

#[tokio::test]
async fn u9_a_respool_of_a_destination_live_in_the_spool_is_refused_and_a_new_one_is_added() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 2);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 104), 1.0).await;
    for numbers in [&["2125551000"][..], &["2125557777", "2125551001"][..]] {
        let e = run
            .dialer
            .respool(new_record("spring", numbers))
            .await
            .expect_err("live destination");
        assert!(
            matches!(e, OpError::Store(StoreError::DuplicateDestination { .. })),
            "{e:?}"
        );
    }
    let id = run
        .dialer
        .respool(new_record("spring", &["2125557777"]))
        .await
        .expect("a new destination");
    assert_eq!(id, RecordId(3));
    let rec = run.dialer.record(id).await.expect("record");
    assert_eq!(rec.numbers[0].number.e164(), "+12125557777");
    run.stop().await;
    let store = reopen(&dir);
    assert_eq!(store.records("spring").expect("records").len(), 3);
}

#[tokio::test]
async fn u10_a_respool_resets_numbers_main_retries_priority_data_and_owner_and_keeps_the_rest() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool_with(
        &dir,
        &c,
        "spring;2125551000;name=Ana:plan=gold;2125552000;5;\n",
    );
    let run = start(store, &c, world(vec![c.id.clone()], 0, 105), 1.0).await;
    let before = run.dialer.record(RecordId(1)).await.expect("record");
    assert_eq!(before.priority, 5);
    run.dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Respool(Respool {
                numbers: Some(vec![us("2125552000"), us("2125553000")]),
                main_attempts: Some(1),
                priority: Some(7),
                data: Some(vec![("plan".into(), "silver".into())]),
                owner_agent: Some(Some(AgentId::from("agent2"))),
            }),
        )
        .await
        .expect("respooled");
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    let numbers: Vec<&str> = rec.numbers.iter().map(|s| s.number.e164()).collect();
    assert_eq!(numbers, ["+12125552000", "+12125553000"]);
    assert_eq!(
        rec.numbers.iter().map(|s| s.attempts).collect::<Vec<_>>(),
        [1, 0]
    );
    assert_eq!(
        rec.attempts, 1,
        "the record's count restarts from its numbers'"
    );
    assert_eq!(rec.priority, 7);
    // Data is replaced wholesale, not merged.
    assert_eq!(rec.data, vec![("plan".to_owned(), "silver".to_owned())]);
    assert_eq!(rec.owner_agent, Some(AgentId::from("agent2")));
    assert_eq!(
        (&rec.campaign, &rec.contact_id, rec.base_id, rec.created_at),
        (
            &before.campaign,
            &before.contact_id,
            before.base_id,
            before.created_at
        )
    );
    assert_eq!(rec.status, RecordStatus::Pending);
    // Priority 1 is the schedules'.
    let e = run
        .dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Respool(Respool {
                priority: Some(1),
                ..Respool::default()
            }),
        )
        .await
        .expect_err("reserved");
    assert!(e.to_string().contains("reserved"), "{e}");
    assert_eq!(run.dialer.record(RecordId(1)).await.expect("record"), rec);
    run.stop().await;
}

// ---- U5 / U21: alternatives ---------------------------------------------------------------

#[tokio::test]
async fn u5_respool_alternative_moves_to_the_next_number_and_refuses_when_none_is_left() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool_with(
        &dir,
        &c,
        "spring;2125551000;;2125552000:2125553000;;\nspring;2125551001;;;;\n",
    );
    let run = start(store, &c, world(vec![c.id.clone()], 0, 106), 1.0).await;
    for expected in ["+12125552000", "+12125553000", "+12125551000"] {
        run.dialer
            .dispose(None, RecordId(1), Disposition::RespoolAlternative)
            .await
            .expect("next alternative");
        let rec = run.dialer.record(RecordId(1)).await.expect("record");
        assert_eq!(rec.numbers[rec.current].number.e164(), expected);
        assert_eq!(rec.status, RecordStatus::Pending);
    }
    let before = run.dialer.record(RecordId(2)).await.expect("record");
    let e = run
        .dialer
        .dispose(None, RecordId(2), Disposition::RespoolAlternative)
        .await
        .expect_err("no alternative");
    assert!(
        matches!(
            &e,
            OpError::Store(StoreError::Disposition {
                source: DispositionError::NoAlternative,
                ..
            }) | OpError::Rejected(dialer_core::RejectReason::Disposition(
                DispositionError::NoAlternative
            ))
        ),
        "{e:?}"
    );
    assert_eq!(
        run.dialer.record(RecordId(2)).await.expect("record"),
        before
    );
    run.stop().await;
}

#[tokio::test]
async fn u21_each_number_of_a_record_has_its_own_attempts_and_alternatives_are_dialed() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.max_attempts_per_number = 1;
    c.max_attempts_per_record = 3;
    c.retry = dialer_core::RetryDelays {
        busy_s: 1,
        no_answer_s: 1,
        congestion_s: 1,
        machine_s: 1,
        abandoned_s: 1,
        short_call_s: 1,
        unknown_s: 1,
    };
    let store = spool_with(&dir, &c, "spring;2125551000;;2125552000:2125553000;;\n");
    let run = start(store, &c, world(vec![c.id.clone()], 1, 107), 100.0).await;
    let rows = until_ledger(&dir, "spring", "the record finished", |rows| {
        rows.iter().all(|r| r.outcome.is_some())
            && (rows.len() == 3
                || rows
                    .iter()
                    .any(|r| matches!(r.outcome, Some(CallOutcome::Connected { .. }))))
    })
    .await;
    run.until("the record is no longer in flight", |s| {
        s.engine.calls.is_empty()
    })
    .await;
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    run.stop().await;
    // Each number was dialed at most once (its own cap), in order, until one connected.
    let dialed: Vec<&str> = rows.iter().map(|r| r.e164.as_str()).collect();
    let all = ["+12125551000", "+12125552000", "+12125553000"];
    assert_eq!(dialed, all[..dialed.len()], "{rows:#?}");
    for slot in &rec.numbers {
        let n = dialed.iter().filter(|d| **d == slot.number.e164()).count() as u32;
        assert_eq!(slot.attempts, n, "{}", slot.number.e164());
    }
    assert_eq!(rec.attempts as usize, dialed.len());
}

// ---- U6: BLACKLIST -----------------------------------------------------------------------

#[tokio::test]
async fn u6_a_blacklist_disposition_finishes_the_record_and_blocks_its_number() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 2);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 108), 1.0).await;
    run.dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Blacklist {
                scope: BlacklistScope::Campaign(c.id.clone()),
                expires_at: None,
            },
        )
        .await
        .expect("blacklisted");
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    assert_eq!(
        rec.status,
        RecordStatus::Finished {
            reason: FinishReason::Blacklisted
        }
    );
    // The number may not come back as a new lead of the campaign.
    let e = run
        .dialer
        .add_lead(
            new_record("spring", &["2125551000"]),
            spool_store::DncChecks {
                dnc_check: false,
                campaign_dnc_check: true,
            },
        )
        .await
        .expect_err("on the campaign's list");
    assert!(e.to_string().contains("2125551000"), "{e}");
    run.stop().await;
    let store = reopen(&dir);
    let list = store.blacklist(start_time()).expect("blacklist");
    let entries: Vec<_> = list.entries().cloned().collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].number, "+12125551000");
    assert_eq!(entries[0].scope, BlacklistScope::Campaign(c.id.clone()));
}

// ---- U7 / U11 / E16c: schedules ----------------------------------------------------------

#[tokio::test]
async fn u7_a_schedule_disposition_books_a_callback_in_another_campaign() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 1);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 109), 1.0).await;
    run.dialer
        .upsert_campaign(campaign("autumn"))
        .await
        .expect("a second campaign");
    let at = start_time() + chrono::Duration::hours(2);
    let schedule = dialer_core::Schedule {
        id: dialer_core::ScheduleId(0),
        when: ScheduleWhen::At { at },
        agent: Some(AgentId::from("agent1")),
        number: None,
    };
    // In the past: refused, nothing changes (the rule of E16e).
    let before = run.dialer.record(RecordId(1)).await.expect("record");
    let mut past = schedule.clone();
    past.when = ScheduleWhen::At {
        at: start_time() - chrono::Duration::hours(1),
    };
    run.dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Schedule {
                schedule: past,
                campaign: Some(CampaignId::from("autumn")),
                contact_name: None,
            },
        )
        .await
        .expect_err("in the past");
    assert_eq!(
        run.dialer.record(RecordId(1)).await.expect("record"),
        before
    );
    run.dialer
        .dispose(
            Some(AgentId::from("agent1")),
            RecordId(1),
            Disposition::Schedule {
                schedule,
                campaign: Some(CampaignId::from("autumn")),
                contact_name: None,
            },
        )
        .await
        .expect("scheduled");
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    assert_eq!(rec.campaign, CampaignId::from("autumn"));
    let booked = rec.schedule.expect("a callback");
    assert_eq!(booked.when, ScheduleWhen::At { at });
    assert_eq!(booked.agent, Some(AgentId::from("agent1")));
    assert_eq!(rec.status, RecordStatus::Pending);
    run.stop().await;
}

#[tokio::test]
async fn u11_a_due_callback_is_dialed_first_when_the_dialer_starts_with_its_own_number_and_data() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let mut store = spool(&dir, &c, 4);
    // Booked an hour before the dialer starts, due half an hour before.
    let mut new = new_record("spring", &["2125558000", "2125558001"]);
    new.data = vec![("ticket".into(), "T-77".into())];
    let booked_at = start_time() - chrono::Duration::hours(1);
    let (callback, _) = store
        .schedule_call(
            &new,
            &Callback::at(ScheduleWhen::At {
                at: start_time() - chrono::Duration::minutes(30),
            }),
            booked_at,
        )
        .expect("callback");
    assert_eq!(callback, RecordId(5));
    let run = start(store, &c, world(vec![c.id.clone()], 1, 110), 50.0).await;
    let rows = until_ledger(&dir, "spring", "a dial", |rows| !rows.is_empty()).await;
    assert_eq!(rows[0].record, callback, "the due callback goes first");
    assert_eq!(rows[0].e164, "+12125558000");
    let sent = run.sent.lock().expect("not poisoned").clone();
    let first = sent
        .iter()
        .find_map(|c| match c {
            TelephonyCommand::Originate(o) => Some(o.clone()),
            _ => None,
        })
        .expect("an originate");
    assert_eq!(first.record, callback);
    assert!(
        first
            .variables
            .iter()
            .any(|(k, v)| k == "ticket" && v == "T-77"),
        "{:?}",
        first.variables
    );
    let rec = run.dialer.record(callback).await.expect("record");
    assert_eq!(rec.numbers.len(), 2, "the alternative is kept");
    run.stop().await;
}

#[tokio::test]
async fn e16c_a_callback_with_a_new_phone_dials_that_number() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let mut store = spool(&dir, &c, 3);
    // Record 2 (+12125551001) is called back on another phone, due as the dialer starts.
    store
        .schedule_call(
            &new_record("spring", &["2125551001"]),
            &Callback {
                new_phone: Some(us("2125556543")),
                ..Callback::at(ScheduleWhen::At {
                    at: start_time() - chrono::Duration::minutes(5),
                })
            },
            start_time() - chrono::Duration::hours(1),
        )
        .expect("callback");
    let run = start(store, &c, world(vec![c.id.clone()], 1, 111), 50.0).await;
    let rec = run.dialer.record(RecordId(2)).await.expect("record");
    let callback = rec.schedule.expect("the callback");
    assert_eq!(
        callback.number.as_ref().map(|n| n.e164()),
        Some("+12125556543")
    );
    let rows = until_ledger(&dir, "spring", "a dial", |rows| !rows.is_empty()).await;
    assert_eq!(
        (rows[0].record.clone(), rows[0].e164.as_str()),
        (RecordId(2), "+12125556543")
    );
    run.stop().await;
}

// ---- U13: remove a contact during a run ---------------------------------------------------

#[tokio::test]
async fn u13_remove_contact_during_a_run_refuses_a_call_in_flight_and_the_removed_record_is_never_dialed(
) {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 4);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 112), 50.0).await;
    let s = run
        .until("a call in flight", |s| !s.engine.calls.is_empty())
        .await;
    let busy = s.engine.calls[0].clone();
    let number = run
        .dialer
        .record(busy.record.clone())
        .await
        .expect("record")
        .numbers[0]
        .number
        .e164()
        .to_owned();
    let e = run
        .dialer
        .remove_contact(c.id.clone(), number.clone())
        .await
        .expect_err("in flight");
    assert!(e.to_string().contains("flight"), "{e}");
    // The last record, not dialed yet, is removed and never dialed.
    let last = RecordId(4);
    assert!(ledger(&dir, "spring").iter().all(|r| r.record != last));
    let removed = run
        .dialer
        .remove_contact(c.id.clone(), "+12125551003".into())
        .await
        .expect("removed");
    assert_eq!(removed, vec![last.clone()]);
    assert_eq!(
        run.dialer
            .record(last.clone())
            .await
            .expect("record")
            .status,
        RecordStatus::Finished {
            reason: FinishReason::Removed
        }
    );
    let others: Vec<RecordId> = (1..=3).map(RecordId).collect();
    until_ledger(&dir, "spring", "the three others dialed", |rows| {
        others.iter().all(|o| rows.iter().any(|r| &r.record == o))
    })
    .await;
    run.stop().await;
    assert!(
        ledger(&dir, "spring").iter().all(|r| r.record != last),
        "a removed contact is never dialed"
    );
}

// ---- U15 / U16 / U22: bases ---------------------------------------------------------------

#[tokio::test]
async fn u15_u22_a_base_line_gives_numbers_data_alternatives_priority_and_owner_and_the_data_reaches_the_call(
) {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let mut store = spool(&dir, &c, 0);
    let base = "spring;2125551000;name=Ana:plan=gold;2125552000:2125553000;4;agent1\n\
                spring;not-a-number;;;;\n\
                spring;2125551001;;;1;\n";
    let opts = ImportOptions::new("spring", "base.txt", start_time());
    let summary = store
        .import_base(base.as_bytes(), &opts, &mut |_| {})
        .expect("import");
    assert_eq!(
        (summary.lines, summary.imported, summary.rejected),
        (3, 1, 2),
        "{summary:?}"
    );
    let run = start(store, &c, world(vec![c.id.clone()], 1, 113), 50.0).await;
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    let numbers: Vec<&str> = rec.numbers.iter().map(|s| s.number.e164()).collect();
    assert_eq!(numbers, ["+12125551000", "+12125552000", "+12125553000"]);
    assert_eq!(
        rec.data,
        vec![
            ("name".to_owned(), "Ana".to_owned()),
            ("plan".to_owned(), "gold".to_owned())
        ]
    );
    assert_eq!(
        (rec.priority, rec.owner_agent.clone()),
        (4, Some(AgentId::from("agent1")))
    );
    run.until("a call placed", |s| s.counters.originates >= 1)
        .await;
    let sent = run.sent.lock().expect("not poisoned").clone();
    let o = sent
        .iter()
        .find_map(|c| match c {
            TelephonyCommand::Originate(o) => Some(o.clone()),
            _ => None,
        })
        .expect("an originate");
    assert_eq!(o.record, RecordId(1));
    for (k, v) in [("name", "Ana"), ("plan", "gold")] {
        assert!(
            o.variables.iter().any(|(a, b)| a == k && b == v),
            "{k}={v} in {:?}",
            o.variables
        );
    }
    run.stop().await;
}

#[tokio::test]
async fn u16_a_file_wide_zone_is_each_record_s_and_its_calling_hours_follow_it() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    // 08:00-21:00 callee time; the run starts at 14:00 UTC: 10:00 in New York, 07:00 in
    // Los Angeles.
    c.calling_hours = dialer_core::CallingHours::us_tsr();
    let mut store = spool(&dir, &c, 0);
    let mut west = ImportOptions::new("spring", "west.txt", start_time());
    west.time_zone = Some("America/Los_Angeles".into());
    store
        .import_base(&b"spring;2125551000;;;;\n"[..], &west, &mut |_| {})
        .expect("west");
    let mut east = ImportOptions::new("spring", "east.txt", start_time());
    east.time_zone = Some("America/New_York".into());
    store
        .import_base(&b"spring;2125551001;;;;\n"[..], &east, &mut |_| {})
        .expect("east");
    let mut bad = ImportOptions::new("spring", "bad.txt", start_time());
    bad.time_zone = Some("Mars/Olympus".into());
    assert!(store
        .import_base(&b"spring;2125551002;;;;\n"[..], &bad, &mut |_| {})
        .is_err());
    let run = start(store, &c, world(vec![c.id.clone()], 2, 114), 20.0).await;
    let west_rec = run.dialer.record(RecordId(1)).await.expect("record");
    assert_eq!(west_rec.time_zone.as_deref(), Some("America/Los_Angeles"));
    let rows = until_ledger(&dir, "spring", "the east record dialed", |rows| {
        rows.iter().any(|r| r.record == RecordId(2))
    })
    .await;
    // Ten simulated minutes more: still before 08:00 in Los Angeles.
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.stop().await;
    assert!(rows.iter().all(|r| r.record == RecordId(2)), "{rows:#?}");
    assert!(ledger(&dir, "spring")
        .iter()
        .all(|r| r.record != RecordId(1)));
}

// ---- U19 / U20: order and ownership -------------------------------------------------------

#[tokio::test]
async fn u19_records_are_dialed_by_priority_and_the_schedules_priority_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool_with(
        &dir,
        &c,
        "spring;2125551000;;;9;\nspring;2125551001;;;3;\nspring;2125551002;;;5;\n",
    );
    let run = start(store, &c, world(vec![c.id.clone()], 1, 115), 100.0).await;
    let mut new = new_record("spring", &["2125551009"]);
    new.priority = Some(1);
    let e = run.dialer.respool(new).await.expect_err("reserved");
    assert!(
        matches!(e, OpError::Store(StoreError::ReservedPriority(1))),
        "{e:?}"
    );
    let rows = until_ledger(&dir, "spring", "three dials", |rows| {
        let mut seen: Vec<RecordId> = rows.iter().map(|r| r.record.clone()).collect();
        seen.dedup();
        seen.len() >= 3
    })
    .await;
    run.stop().await;
    let mut order: Vec<RecordId> = rows.iter().map(|r| r.record.clone()).collect();
    order.dedup();
    assert_eq!(
        order[..3],
        [RecordId(2), RecordId(3), RecordId(1)],
        "{rows:#?}"
    );
}

#[tokio::test]
async fn u20_an_owned_record_goes_only_to_its_owner_when_that_agent_is_free() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool_with(
        &dir,
        &c,
        "spring;2125551000;;;;agent2\nspring;2125551001;;;;agent2\nspring;2125551002;;;;\nspring;2125551003;;;;\n",
    );
    let run = start(store, &c, world(vec![c.id.clone()], 2, 116), 50.0).await;
    let rows = until_ledger(&dir, "spring", "every record dialed", |rows| {
        (1..=4).all(|i| rows.iter().any(|r| r.record == RecordId(i)))
    })
    .await;
    run.stop().await;
    for r in rows.iter().filter(|r| r.record.0 <= 2) {
        assert_eq!(r.agent.as_deref(), Some("agent2"), "{r:#?}");
        if let Some(linked) = &r.linked_agent {
            assert_eq!(linked, "agent2", "{r:#?}");
        }
    }
    // The two owned records never went out together: agent2 takes one call at a time.
    let owned: Vec<_> = rows.iter().filter(|r| r.record.0 <= 2).collect();
    for a in &owned {
        for b in &owned {
            if a.call != b.call && a.started_at <= b.started_at {
                let end = a.ended_at.expect("ended");
                assert!(end <= b.started_at, "{a:#?} overlaps {b:#?}");
            }
        }
    }
}

fn linked(s: &dialer_runtime::DialerStatus) -> Option<dialer_core::CallStatus> {
    s.engine
        .calls
        .iter()
        .find(|c| c.state == CallState::Linked)
        .cloned()
}

// ---- E15: hang up the agent's call --------------------------------------------------------

#[tokio::test]
async fn e15_hangup_by_call_id_ends_the_agent_s_call_and_an_unknown_call_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 117), 20.0).await;
    let e = run
        .dialer
        .hangup(dialer_core::CallId(424_242))
        .await
        .expect_err("unknown");
    assert!(e.to_string().contains("424242"), "{e}");
    let s = run.until("a call linked", |s| linked(s).is_some()).await;
    let call = linked(&s).expect("linked");
    run.dialer.hangup(call.call).await.expect("hung up");
    run.until("the call ended", |s| {
        s.engine.calls.iter().all(|c| c.call != call.call)
    })
    .await;
    let sent = run.sent.lock().expect("not poisoned").clone();
    assert_eq!(
        sent.iter()
            .filter(|c| matches!(c, TelephonyCommand::Hangup(id) if *id == call.call))
            .count(),
        1
    );
    run.stop().await;
    let row = reopen(&dir).attempt(call.call).expect("ledger row");
    assert!(row.ended_at.is_some());
    assert!(
        matches!(
            row.outcome,
            Some(CallOutcome::Connected { .. } | CallOutcome::ShortCall { .. })
        ),
        "{row:#?}"
    );
}

// ---- E20: short calls ---------------------------------------------------------------------

#[tokio::test]
async fn e20_a_linked_call_shorter_than_the_threshold_is_a_short_call_in_ledger_log_and_status() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    // Every conversation of the simulated callees is shorter than an hour.
    c.short_call_s = 3600;
    let store = spool(&dir, &c, 16);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 118), 100.0).await;
    until_ledger(&dir, "spring", "a linked call ended", |rows| {
        rows.iter()
            .any(|r| r.linked_at.is_some() && r.ended_at.is_some())
    })
    .await;
    run.stop().await;
    let reader = SpoolStore::open_read_only(path(&dir)).expect("reader");
    let rows = reader.attempts("spring").expect("ledger");
    let talked: Vec<_> = rows
        .iter()
        .filter(|r| r.linked_at.is_some() && r.ended_at.is_some())
        .collect();
    assert!(!talked.is_empty(), "{rows:#?}");
    for r in &talked {
        assert!(
            matches!(r.outcome, Some(CallOutcome::ShortCall { .. })),
            "{r:#?}"
        );
    }
    let log = reader
        .campaign_log(
            &CampaignId::from("spring"),
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("log");
    let short: Vec<_> = log.iter().filter(|e| e.status == "short_call").collect();
    assert_eq!(short.len(), talked.len(), "{log:#?}");
    assert!(log.iter().all(|e| e.status != "hangup"));
    let status = reader.campaign_status("spring").expect("status");
    assert_eq!(status.shortcall as usize, talked.len(), "{status:?}");
}

// ---- E21: maxchan --------------------------------------------------------------------------

#[tokio::test]
async fn e21_the_line_limit_is_never_exceeded_and_is_reached() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.dial_mode = dialer_core::DialMode::Predictive;
    c.max_lines = 2;
    let store = spool(&dir, &c, 24);
    let run = start(store, &c, world(vec![c.id.clone()], 6, 119), 100.0).await;
    let mut most = 0;
    for _ in 0..120 {
        let s = run.dialer.status().await.expect("status");
        most = most.max(s.engine.calls.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.stop().await;
    assert!(most <= 2, "{most} calls at once");
    // The ledger: never more than two calls between their start and end.
    let rows = ledger(&dir, "spring");
    assert!(rows.len() > 2, "{rows:#?}");
    let mut edges: Vec<(chrono::DateTime<chrono::Utc>, i32)> = Vec::new();
    for r in &rows {
        edges.push((r.started_at, 1));
        edges.push((
            r.ended_at
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
            -1,
        ));
    }
    // Ends before starts at the same instant: a line freed is a line free.
    edges.sort_by_key(|(t, d)| (*t, *d));
    let (mut open, mut peak) = (0, 0);
    for (_, d) in edges {
        open += d;
        peak = peak.max(open);
    }
    assert_eq!(peak, 2, "the limit is used and never passed");
}

// ---- E4 / E11: link and unlink, queue wait -------------------------------------------------

#[tokio::test]
async fn e4_agent_linked_and_unlinked_carry_agent_call_times_duration_and_short_call() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.short_call_s = 20;
    let store = spool(&dir, &c, 20);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 120), 100.0).await;
    let seen = collect(&run);
    until_ledger(&dir, "spring", "two conversations ended", |rows| {
        rows.iter()
            .filter(|r| r.linked_at.is_some() && r.ended_at.is_some())
            .count()
            >= 2
    })
    .await;
    run.stop().await;
    let events = engine_events(&seen);
    let reader = SpoolStore::open_read_only(path(&dir)).expect("reader");
    let log = reader
        .campaign_log(
            &CampaignId::from("spring"),
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("log");
    let mut checked = 0;
    for e in &events {
        let Event::AgentUnlinked {
            at,
            agent,
            call,
            talk_s,
            short_call,
        } = e
        else {
            continue;
        };
        let (linked_at, linked_agent) = events
            .iter()
            .find_map(|l| match l {
                Event::AgentLinked { at, agent, call: c } if c == call => {
                    Some((*at, agent.clone()))
                }
                _ => None,
            })
            .expect("every unlink follows its link");
        assert_eq!(&linked_agent, agent);
        let row = reader.attempt(*call).expect("ledger row");
        // (The spool keeps whole milliseconds.)
        assert_eq!(
            row.linked_at.map(|t| t.timestamp_millis()),
            Some(linked_at.timestamp_millis())
        );
        assert_eq!(row.linked_agent.as_deref(), Some(agent.as_str()));
        // The log's end of the conversation: its agent, its seconds, short or not.
        let end = log
            .iter()
            .find(|l| l.call == Some(*call) && (l.status == "hangup" || l.status == "short_call"))
            .expect("the conversation's end is logged");
        assert_eq!(end.agent.as_deref(), Some(agent.as_str()));
        let talk = (*at - linked_at).num_seconds();
        let logged = i64::from(end.duration_s.expect("duration"));
        assert!(
            (logged - talk).abs() <= 1,
            "log {logged} s, events {talk} s"
        );
        assert_eq!(end.status == "short_call", logged < 20, "{end:?}");
        // The unlink event says what the ledger's outcome says (the same rounded seconds,
        // short or not), and the log within its rounding of whole milliseconds.
        let (ledger_talk, ledger_short) = match row.outcome {
            Some(dialer_core::CallOutcome::Connected { talk_s }) => (talk_s, false),
            Some(dialer_core::CallOutcome::ShortCall { talk_s }) => (talk_s, true),
            other => panic!("a linked call ends connected or short: {other:?}"),
        };
        assert_eq!(*talk_s, Some(ledger_talk), "{e:?}");
        assert_eq!(*short_call, ledger_short, "{e:?}");
        assert_eq!(*short_call, end.status == "short_call", "{e:?}");
        assert!(
            (logged - i64::from(ledger_talk)).abs() <= 1,
            "{e:?} {end:?}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "{checked} conversations");
}

#[tokio::test]
async fn e11_the_queue_wait_histogram_counts_each_linked_call_in_its_5_s_bucket_and_the_abandoned()
{
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    // Predictive with few agents: callers wait in the queue before an agent takes them.
    c.dial_mode = dialer_core::DialMode::Predictive;
    c.max_lines = 6;
    let store = spool(&dir, &c, 40);
    let run = start(store, &c, world(vec![c.id.clone()], 3, 121), 200.0).await;
    let seen = collect(&run);
    until_ledger(&dir, "spring", "eight linked calls", |rows| {
        rows.iter().filter(|r| r.linked_at.is_some()).count() >= 8
    })
    .await;
    run.stop().await;
    // From the events alone: each call's queue entry and link.
    let events = engine_events(&seen);
    let mut buckets = [0u64; 7];
    let mut abandoned = 0;
    for e in &events {
        match e {
            Event::AgentLinked { at, call, .. } => {
                let queued = events.iter().find_map(|q| match q {
                    Event::Progress {
                        at,
                        call: c,
                        progress: Progress::OnQueue,
                        ..
                    } if c == call => Some(*at),
                    _ => None,
                });
                if let Some(q) = queued {
                    let ms = (*at - q).num_milliseconds();
                    buckets[((ms / 5000).min(6)) as usize] += 1;
                }
            }
            Event::Progress {
                progress: Progress::Abandoned,
                ..
            } => abandoned += 1,
            _ => {}
        }
    }
    assert!(buckets.iter().sum::<u64>() >= 8, "{buckets:?}");
    let wait = reopen(&dir).queue_wait("spring").expect("queue wait");
    assert_eq!(wait.buckets, buckets);
    assert_eq!(wait.abandoned, abandoned);
}

// ---- V5: logout after the live call -------------------------------------------------------

#[tokio::test]
async fn v5_a_logout_on_a_call_takes_effect_when_the_call_is_over() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 4);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 122), 20.0).await;
    let seen = collect(&run);
    let s = run.until("a call linked", |s| linked(s).is_some()).await;
    let call = linked(&s).expect("linked");
    let agent = call.agent.clone().expect("its agent");
    run.dialer
        .agent(agent.clone(), dialer_core::AgentEvent::LoggedOut)
        .await
        .expect("logout asked");
    // Still on the call: the logout waits.
    let s = run.dialer.status().await.expect("status");
    assert!(s.engine.calls.iter().any(|c| c.call == call.call));
    assert!(
        !matches!(
            agent_state(&s, agent.as_str()),
            None | Some(dialer_core::AgentState::LoggedOut)
        ),
        "still logged in"
    );
    run.until("the agent left", |s| {
        matches!(
            agent_state(s, agent.as_str()),
            None | Some(dialer_core::AgentState::LoggedOut)
        )
    })
    .await;
    let dials_before = ledger(&dir, "spring").len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.stop().await;
    let row = reopen(&dir).attempt(call.call).expect("ledger row");
    let ended = row.ended_at.expect("the call ended");
    let away = engine_events(&seen)
        .into_iter()
        .find_map(|e| match e {
            Event::AgentAway {
                at,
                agent: a,
                paused: None,
            } if a == agent => Some(at),
            _ => None,
        })
        .expect("the logout took effect");
    assert!(away >= ended, "logged out at {away}, call ended at {ended}");
    assert_eq!(
        ledger(&dir, "spring").len(),
        dials_before,
        "nothing dialed for it"
    );
}

// ---- C5 / C6 / C9 ----------------------------------------------------------------------------

#[tokio::test]
async fn c5_every_record_of_a_campaign_is_listed_with_its_status() {
    use spool_store::{CallbackStatus, RecordChange};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 4);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 123), 1.0).await;
    let d = &run.dialer;
    d.change_record(RecordId(2), RecordChange::Deactivate)
        .await
        .expect("deactivated");
    assert!(d.remove_record(RecordId(3)).await.expect("removed"));
    d.dispose(
        None,
        RecordId(4),
        Disposition::Blacklist {
            scope: BlacklistScope::All,
            expires_at: None,
        },
    )
    .await
    .expect("blacklisted");
    let since = match d.record(RecordId(2)).await.expect("record").status {
        RecordStatus::Inactive { since } => since,
        other => panic!("{other:?}"),
    };
    assert!(since >= start_time() && since <= d.clock().now());
    let records = SpoolStore::open_read_only(path(&dir))
        .expect("reader")
        .records("spring")
        .expect("records");
    let mut listed = Vec::new();
    for r in &records {
        listed.push((
            r.id.clone(),
            d.record_status(r.id.clone()).await.expect("status").status,
        ));
    }
    assert_eq!(
        listed,
        vec![
            (RecordId(1), CallbackStatus::New),
            (RecordId(2), CallbackStatus::Inactive { since }),
            (RecordId(3), CallbackStatus::Removed),
            (
                RecordId(4),
                CallbackStatus::Invalid {
                    reason: FinishReason::Blacklisted
                }
            ),
        ]
    );
    run.stop().await;
}

#[tokio::test]
async fn c6_a_number_live_in_a_campaign_is_in_use_there_only_until_its_record_finishes() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 1);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 124), 1.0).await;
    let d = &run.dialer;
    d.upsert_campaign(campaign("autumn")).await.expect("autumn");
    // In use in spring: a callback for it is the same record, a new record is refused.
    let (same, _) = d
        .schedule_call(
            new_record("spring", &["2125551000"]),
            Callback::at(ScheduleWhen::At {
                at: start_time() + chrono::Duration::hours(3),
            }),
        )
        .await
        .expect("callback");
    assert_eq!(same, RecordId(1));
    let e = d
        .respool(new_record("spring", &["2125551000"]))
        .await
        .expect_err("in use");
    assert!(
        matches!(&e, OpError::Store(StoreError::DuplicateDestination { record, .. }) if *record == RecordId(1)),
        "{e:?}"
    );
    // Per campaign: autumn may take it.
    let other = d
        .respool(new_record("autumn", &["2125551000"]))
        .await
        .expect("another campaign");
    assert_eq!(other, RecordId(2));
    // Once its record is finished, spring may take it again.
    assert!(d.remove_record(RecordId(1)).await.expect("removed"));
    let again = d
        .respool(new_record("spring", &["2125551000"]))
        .await
        .expect("free again");
    assert_eq!(again, RecordId(3));
    run.stop().await;
}

#[tokio::test]
async fn c9_campaign_settings_set_through_the_handle_are_checked_kept_and_used_by_the_next_dial() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 125), 20.0).await;
    let d = &run.dialer;
    let mut changed = c.clone();
    changed.max_lines = 2;
    changed.ring_timeout_s = 25;
    changed.routing.queue = "retention".into();
    d.upsert_campaign(changed.clone()).await.expect("settings");
    let mut bad = changed.clone();
    bad.ring_timeout_s = 3;
    let e = d.upsert_campaign(bad).await.expect_err("too short a ring");
    assert!(matches!(e, OpError::InvalidCampaign(_)), "{e:?}");
    assert!(e.to_string().contains("ring"), "{e}");
    let kept = SpoolStore::open_read_only(path(&dir))
        .expect("reader")
        .campaign("spring")
        .expect("settings");
    assert_eq!(kept, changed, "the refused change changed nothing");
    let page = d.list_campaigns(Default::default()).await.expect("list");
    assert_eq!(page.total, 1);
    // The next dial uses them.
    d.respool(new_record("spring", &["2125551000"]))
        .await
        .expect("a record");
    run.until("a call placed", |s| s.counters.originates >= 1)
        .await;
    let sent = run.sent.lock().expect("not poisoned").clone();
    let o = sent
        .iter()
        .find_map(|c| match c {
            TelephonyCommand::Originate(o) => Some(o.clone()),
            _ => None,
        })
        .expect("an originate");
    assert_eq!(
        (o.ring_timeout_s, o.routing.queue.as_str()),
        (25, "retention")
    );
    run.stop().await;
}
