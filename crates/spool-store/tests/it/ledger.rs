use super::common::*;
use chrono::Duration;
use dialer_core::rules::next_step::{begin_attempt, finish_attempt};
use dialer_core::{CallId, CallOutcome, FailureClass, RecordStatus, StoreUpdate};
use spool_store::{NewRecord, SpoolStore, StoreError, MIN_RECONCILE_DELAY_S};

fn started(s: &SpoolStore, call: u64) -> StoreUpdate {
    let rec = &s.records("c").unwrap()[0];
    StoreUpdate::AttemptStarted {
        call: CallId(call),
        campaign: "c".into(),
        record: rec.id.clone(),
        number: rec.numbers[rec.current].number.clone(),
        agent: None,
        at: t0(),
    }
}

fn one_record() -> SpoolStore {
    let mut s = store();
    s.respool(&NewRecord::new("c", vec![phone(1), phone(2)]), t0())
        .unwrap();
    s
}

#[test]
fn attempt_start_is_committed_with_the_record_in_flight_and_counted() {
    let mut s = one_record();
    let before = s.records("c").unwrap()[0].clone();
    s.apply(&started(&s, 7)).unwrap();
    let rec = s.record(&before.id).unwrap();
    let mut want = before.clone();
    begin_attempt(&mut want, &campaign("c"), CallId(7), t0());
    assert_eq!(rec, want);
    let row = s.attempt(CallId(7)).unwrap();
    assert_eq!(
        (row.outcome, row.ended_at, row.e164.as_str()),
        (None, None, uy_e164(1).as_str())
    );
    assert!(s
        .ready_set("c", t0() + Duration::days(1), 10)
        .unwrap()
        .is_empty());
}

#[test]
fn engine_snapshot_after_attempt_start_does_not_count_the_attempt_twice() {
    let mut s = one_record();
    let mut rec = s.records("c").unwrap()[0].clone();
    s.apply(&started(&s, 7)).unwrap();
    begin_attempt(&mut rec, &campaign("c"), CallId(7), t0());
    s.apply(&StoreUpdate::Record(std::sync::Arc::new(rec.clone())))
        .unwrap();
    assert_eq!(s.record(&rec.id).unwrap().attempts, 1);
}

#[test]
fn attempt_end_closes_the_row_and_moves_the_record_by_the_core_rules() {
    let mut s = one_record();
    let mut want = s.records("c").unwrap()[0].clone();
    s.apply(&started(&s, 7)).unwrap();
    let busy = CallOutcome::Failed {
        class: FailureClass::Busy,
    };
    let end = t0() + Duration::seconds(30);
    s.apply(&StoreUpdate::AttemptEnded {
        call: CallId(7),
        record: want.id.clone(),
        outcome: busy,
        at: end,
    })
    .unwrap();
    begin_attempt(&mut want, &campaign("c"), CallId(7), t0());
    finish_attempt(&mut want, &campaign("c"), busy, end);
    assert_eq!(s.record(&want.id).unwrap(), want);
    assert_eq!(want.next_eligible_at, Some(end + Duration::seconds(600)));
    let row = s.attempt(CallId(7)).unwrap();
    assert_eq!(
        (row.outcome, row.ended_at, row.reconciled),
        (Some(busy), Some(end), false)
    );
}

#[test]
fn replayed_attempt_end_is_harmless_but_a_conflicting_one_is_refused() {
    let mut s = one_record();
    let id = s.records("c").unwrap()[0].id.clone();
    s.apply(&started(&s, 7)).unwrap();
    let end = |o| StoreUpdate::AttemptEnded {
        call: CallId(7),
        record: id.clone(),
        outcome: o,
        at: t0(),
    };
    s.apply(&end(CallOutcome::Machine)).unwrap();
    let rec = s.record(&id).unwrap();
    s.apply(&end(CallOutcome::Machine)).unwrap();
    assert_eq!(s.record(&id).unwrap(), rec);
    assert!(s.apply(&end(CallOutcome::Abandoned)).is_err());
}

#[test]
fn the_same_call_id_cannot_start_twice() {
    let mut s = one_record();
    s.apply(&started(&s, 7)).unwrap();
    assert!(matches!(
        s.apply(&started(&s, 7)),
        Err(StoreError::DuplicateAttempt(CallId(7)))
    ));
}

#[test]
fn attempt_left_open_by_a_crash_is_closed_unknown_and_held_back_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let id;
    {
        let mut s = SpoolStore::open_at(&path, t0()).unwrap().0;
        s.upsert_campaign(&campaign("c"), t0()).unwrap();
        id = s
            .respool(&NewRecord::new("c", vec![phone(1)]), t0())
            .unwrap();
        s.apply(&started(&s, 7)).unwrap();
        // The process dies here: no AttemptEnded.
    }
    let restart = t0() + Duration::minutes(2);
    let (s, report) = SpoolStore::open_at(&path, restart).unwrap();
    assert_eq!(report.attempts_closed, [CallId(7)]);
    assert_eq!(report.records_rescheduled, std::slice::from_ref(&id));
    let row = s.attempt(CallId(7)).unwrap();
    assert_eq!(
        (row.outcome, row.ended_at, row.reconciled),
        (Some(CallOutcome::Unknown), Some(restart), true)
    );
    let rec = s.record(&id).unwrap();
    assert_eq!(rec.status, RecordStatus::Pending);
    assert_eq!(rec.attempts, 1, "the lost attempt still counts");
    let until = rec.next_eligible_at.unwrap();
    assert!(
        until >= restart + Duration::seconds(MIN_RECONCILE_DELAY_S),
        "{until}"
    );
    assert!(
        s.ready_set("c", restart, 10).unwrap().is_empty(),
        "never redialed at once"
    );
    assert_eq!(s.ready_set("c", until, 10).unwrap().len(), 1, "never lost");
    drop(s);
    let (_, again) = SpoolStore::open_at(&path, restart).unwrap();
    assert!(again.attempts_closed.is_empty() && again.records_rescheduled.is_empty());
}

#[test]
fn record_left_in_flight_after_its_attempt_ended_is_finished_from_the_ledger() {
    let mut s = one_record();
    let mut rec = s.records("c").unwrap()[0].clone();
    s.apply(&started(&s, 7)).unwrap();
    s.apply(&StoreUpdate::AttemptEnded {
        call: CallId(7),
        record: rec.id.clone(),
        outcome: CallOutcome::Connected { talk_s: 60 },
        at: t0(),
    })
    .unwrap();
    // A stale snapshot (written before the end) puts the record back in flight.
    begin_attempt(&mut rec, &campaign("c"), CallId(7), t0());
    s.apply(&StoreUpdate::Record(std::sync::Arc::new(rec.clone())))
        .unwrap();
    s.reconcile(t0() + Duration::minutes(1)).unwrap();
    assert!(s.record(&rec.id).unwrap().is_finished());
}

/// A dialer's ledger write next to a running import waited for nothing: its transaction read
/// first and then asked for the write lock, which SQLite refuses at once while the import
/// holds it ("database is locked"). It must wait for the import's transaction instead.
#[test]
fn ledger_write_during_an_import_waits_for_the_lock_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let mut s = SpoolStore::open(&path).unwrap();
    s.upsert_campaign(&campaign("c"), t0()).unwrap();
    s.upsert_campaign(&campaign("d"), t0()).unwrap();
    let text: String = (0..30_000u32)
        .map(|i| format!("c;{};id={i};;\n", uy(i)))
        .collect();
    let dialer_numbers: Vec<_> = (0..2000).map(|i| phone(500_000 + i)).collect();
    for n in &dialer_numbers {
        s.respool(&NewRecord::new("d", vec![n.clone()]), t0())
            .unwrap();
    }
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    let (started, done) = (AtomicBool::new(false), AtomicBool::new(false));
    let writes = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut opts = spool_store::ImportOptions::new("c", "f.txt", t0());
            opts.commit_after = std::time::Duration::from_millis(50);
            s.import_base(text.as_bytes(), &opts, &mut |_| started.store(true, SeqCst))
                .unwrap();
            done.store(true, SeqCst);
        });
        let mut dialer = SpoolStore::open_unreconciled(&path).unwrap();
        while !started.load(SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let mut call = 0;
        while !done.load(SeqCst) && call < 2000 {
            let rec = dialer.ready_set("d", t0(), 1).unwrap().remove(0);
            call += 1;
            dialer
                .apply(&StoreUpdate::AttemptStarted {
                    call: CallId(call),
                    campaign: "d".into(),
                    record: rec.id.clone(),
                    number: rec.numbers[0].number.clone(),
                    agent: None,
                    at: t0(),
                })
                .unwrap_or_else(|e| panic!("attempt start {call} during the import: {e}"));
        }
        call
    });
    assert!(writes > 0);
}

#[test]
fn abandonment_books_survive_a_reopen_one_row_per_period_the_latest_totals() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let day = t0().date_naive();
    let books = |start, live, abandoned, machines| StoreUpdate::AbandonBooks {
        campaign: "c".into(),
        period: dialer_core::AbandonPeriod {
            start,
            live,
            abandoned,
            machines,
        },
    };
    {
        let mut s = SpoolStore::open_at(&path, t0()).unwrap().0;
        s.upsert_campaign(&campaign("c"), t0()).unwrap();
        s.apply(&books(day, 1, 0, 0)).unwrap();
        s.apply(&books(day, 2, 0, 1)).unwrap();
        s.apply(&books(day - Duration::days(1), 40, 2, 0)).unwrap();
        // A late abandon booked in the earlier period.
        s.apply(&books(day - Duration::days(1), 40, 3, 0)).unwrap();
    }
    let s = SpoolStore::open_at(&path, t0()).unwrap().0;
    let period = |start, live, abandoned, machines| dialer_core::AbandonPeriod {
        start,
        live,
        abandoned,
        machines,
    };
    assert_eq!(
        s.abandon_books("c").unwrap(),
        vec![
            period(day - Duration::days(1), 40, 3, 0),
            period(day, 2, 0, 1)
        ]
    );
    assert!(matches!(
        s.abandon_books("nope"),
        Err(StoreError::UnknownCampaign(_))
    ));
}

#[test]
fn abandonment_books_of_an_unknown_campaign_are_refused_and_change_nothing() {
    let mut s = store();
    let update = StoreUpdate::AbandonBooks {
        campaign: "nope".into(),
        period: dialer_core::AbandonPeriod {
            start: t0().date_naive(),
            live: 1,
            abandoned: 0,
            machines: 0,
        },
    };
    assert!(matches!(
        s.apply(&update),
        Err(StoreError::UnknownCampaign(_))
    ));
    assert_eq!(s.abandon_books("c").unwrap(), vec![]);
}
