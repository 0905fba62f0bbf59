use super::common::*;
use chrono::Duration;
use dialer_core::rules::ordering::sort_for_dialing;
use dialer_core::{CallId, RecordStatus, ScheduleWhen, StoreUpdate, TaskKind, TaskTiming};
use spool_store::{Callback, NewRecord, READY_SET_SQL};

fn new(i: u32) -> NewRecord {
    NewRecord::new("c", vec![phone(i)])
}

#[test]
fn ready_set_follows_the_core_dial_order() {
    let mut s = store();
    let now = t0();
    // Created at increasing times so "oldest first" is visible.
    let mut prio = new(1);
    prio.priority = Some(50);
    s.respool(&prio, now - Duration::minutes(10)).unwrap(); // normal, priority 50
    s.respool(&new(2), now - Duration::minutes(9)).unwrap(); // normal, priority 2, older
    s.respool(&new(3), now - Duration::minutes(8)).unwrap(); // normal, priority 2, newer
    s.add_task(
        &new(4),
        TaskTiming::WhenFree,
        TaskKind::Bulk,
        now - Duration::minutes(7),
    )
    .unwrap();
    s.add_task(
        &new(5),
        TaskTiming::WhenFree,
        TaskKind::Automatic,
        now - Duration::minutes(6),
    )
    .unwrap();
    s.schedule_call(
        &new(6),
        &Callback::at(ScheduleWhen::At {
            at: now - Duration::minutes(1),
        }),
        now - Duration::minutes(5),
    )
    .unwrap();
    // One more attempt makes record 2 sort after record 3.
    let mut r2 = s
        .records("c")
        .unwrap()
        .into_iter()
        .find(|r| r.numbers[0].number == phone(2))
        .unwrap();
    r2.attempts = 1;
    s.apply(&StoreUpdate::Record(std::sync::Arc::new(r2)))
        .unwrap();

    let ready = s.ready_set("c", now, 100).unwrap();
    let order: Vec<_> = ready.iter().map(|r| r.numbers[0].number.clone()).collect();
    assert_eq!(
        order,
        [phone(6), phone(5), phone(3), phone(2), phone(1), phone(4)]
    );

    let mut by_core = ready.clone();
    sort_for_dialing(&mut by_core);
    assert_eq!(by_core, ready, "the store's order is the core's order_key");
}

#[test]
fn ready_set_leaves_out_records_that_are_not_due_in_flight_or_finished() {
    let mut s = store();
    let now = t0();
    for i in 1..=6 {
        s.respool(&new(i), now - Duration::hours(1)).unwrap();
    }
    let recs = s.records("c").unwrap();
    let mut later = recs[0].clone();
    later.next_eligible_at = Some(now + Duration::seconds(1));
    let mut due_now = recs[1].clone();
    due_now.next_eligible_at = Some(now);
    let mut flying = recs[2].clone();
    flying.status = RecordStatus::InFlight { call: CallId(9) };
    s.apply_all(&[
        StoreUpdate::Record(std::sync::Arc::new(later)),
        StoreUpdate::Record(std::sync::Arc::new(due_now)),
        StoreUpdate::Record(std::sync::Arc::new(flying)),
    ])
    .unwrap();
    s.remove_contact("c", &uy_e164(4)).unwrap();
    s.schedule_call(
        &new(5),
        &Callback::at(ScheduleWhen::At {
            at: now + Duration::hours(1),
        }),
        now,
    )
    .unwrap();
    s.add_task(
        &new(6),
        TaskTiming::At {
            at: now + Duration::hours(1),
        },
        TaskKind::Bulk,
        now,
    )
    .unwrap();

    let ready: Vec<_> = s
        .ready_set("c", now, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.numbers[0].number.clone())
        .collect();
    assert_eq!(ready, [phone(2)]);
    let later: Vec<_> = s
        .ready_set("c", now + Duration::hours(2), 100)
        .unwrap()
        .into_iter()
        .map(|r| r.numbers[0].number.clone())
        .collect();
    assert_eq!(later, [phone(5), phone(1), phone(2), phone(6)]);
}

#[test]
fn ready_set_returns_at_most_the_limit_and_only_its_campaign() {
    let mut s = store();
    s.upsert_campaign(&campaign("other"), t0()).unwrap();
    for i in 1..=10 {
        s.respool(&new(i), t0()).unwrap();
        s.respool(&NewRecord::new("other", vec![phone(i)]), t0())
            .unwrap();
    }
    let ready = s.ready_set("c", t0(), 3).unwrap();
    assert_eq!(ready.len(), 3);
    assert!(ready.iter().all(|r| r.campaign.as_str() == "c"));
}

#[test]
fn ready_set_query_reads_the_ready_index_without_sorting_or_scanning() {
    let mut s = store();
    for i in 1..=50 {
        s.respool(&new(i), t0()).unwrap();
    }
    s.connection().execute_batch("ANALYZE").unwrap();
    let mut st = s
        .connection()
        .prepare(&format!("EXPLAIN QUERY PLAN {READY_SET_SQL}"))
        .unwrap();
    let plan: Vec<String> = st
        .query_map(rusqlite::params![1, 0, 100, "c"], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let text = plan.join("\n");
    assert!(
        text.contains("USING INDEX record_ready")
            || text.contains("USING COVERING INDEX record_ready"),
        "{text}"
    );
    assert!(
        !text.contains("TEMP B-TREE"),
        "sorts instead of reading in index order:\n{text}"
    );
    assert!(!text.contains("SCAN r"), "scans the record table:\n{text}");
}

#[test]
fn range_schedule_is_offered_from_the_earliest_zone_start_of_its_first_day() {
    let mut s = store();
    let now = t0(); // 2026-03-02 15:00 UTC
    let when = ScheduleWhen::Range {
        start_date: now.date_naive() + Duration::days(1),
        end_date: now.date_naive() + Duration::days(2),
        start_time: chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
        end_time: chrono::NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
    };
    s.schedule_call(&new(1), &Callback::at(when), now).unwrap();
    assert!(s.ready_set("c", now, 10).unwrap().is_empty());
    // 2026-03-03 09:00 at UTC+14 is 2026-03-02 19:00 UTC.
    assert!(s
        .ready_set("c", now + Duration::hours(4) - Duration::seconds(1), 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        s.ready_set("c", now + Duration::hours(4), 10)
            .unwrap()
            .len(),
        1
    );
}

/// Rows are mapped with the last decoded history remembered (most records share one): a
/// record with another history, between two with the common one, keeps its own.
#[test]
fn each_record_keeps_its_own_history_and_numbers() {
    let mut s = store();
    for i in 1..=3 {
        let mut r = NewRecord::new("c", vec![phone(i), phone(100 + i)]);
        r.data = vec![("id".into(), i.to_string())];
        s.respool(&r, t0()).unwrap();
    }
    let plain = s.records("c").unwrap()[0].history.clone();
    let mut other = plain.clone();
    other.last_machine_at = Some(t0() - Duration::hours(1));
    other.recent = vec![t0() - Duration::hours(2), t0() - Duration::hours(1)];
    s.connection()
        .execute(
            "UPDATE record SET history = ?1 WHERE id = 2",
            [serde_json::to_string(&other).unwrap()],
        )
        .unwrap();
    for recs in [s.records("c").unwrap(), s.ready_set("c", t0(), 10).unwrap()] {
        let by_id: std::collections::BTreeMap<u64, _> = recs.iter().map(|r| (r.id.0, r)).collect();
        assert_eq!(by_id.len(), 3);
        for (id, r) in by_id {
            let want = if id == 2 { &other } else { &plain };
            assert_eq!(&r.history, want, "record {id}");
            let numbers: Vec<&str> = r.numbers.iter().map(|n| n.number.e164()).collect();
            let i = id as u32;
            assert_eq!(numbers, [uy_e164(i).as_str(), uy_e164(100 + i).as_str()]);
            assert_eq!(r.data, [("id".to_string(), id.to_string())]);
        }
    }
}
