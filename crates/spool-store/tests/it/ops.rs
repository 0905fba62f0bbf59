use super::common::*;
use chrono::{Duration, NaiveTime};
use dialer_core::{
    AgentId, BlacklistEntry, BlacklistScope, Direction, Disposition, FinishReason, RecordStatus,
    Respool, Schedule, ScheduleId, ScheduleWhen, TaskKind, TaskTiming,
};
use spool_store::{Callback, NewRecord, StoreError};

fn new(nums: &[u32]) -> NewRecord {
    NewRecord::new("c", nums.iter().map(|&i| phone(i)).collect())
}

fn entry(
    i: u32,
    scope: BlacklistScope,
    expires: Option<chrono::DateTime<chrono::Utc>>,
    d: Direction,
) -> BlacklistEntry {
    BlacklistEntry {
        number: uy_e164(i),
        scope,
        expires_at: expires,
        direction: d,
    }
}

#[test]
fn respool_never_spools_a_destination_already_live_in_the_campaign() {
    let mut s = store();
    let first = s.respool(&new(&[1, 2]), t0()).unwrap();
    match s.respool(&new(&[3, 2]), t0()) {
        Err(StoreError::DuplicateDestination { number, record, .. }) => {
            assert_eq!(
                (number.as_str(), record),
                (uy_e164(2).as_str(), first.clone())
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.respool(&new(&[4, 4]), t0()),
        Err(StoreError::DuplicateDestination { .. })
    ));
    s.remove_contact("c", &uy_e164(1)).unwrap();
    s.respool(&new(&[3, 2]), t0()).unwrap();
}

#[test]
fn respool_refuses_the_priority_reserved_for_schedules() {
    let mut s = store();
    let mut r = new(&[1]);
    r.priority = Some(1);
    assert!(matches!(
        s.respool(&r, t0()),
        Err(StoreError::ReservedPriority(1))
    ));
}

#[test]
fn e16d_same_number_scheduled_twice_at_the_same_time_is_refused_and_another_time_needs_a_reschedule(
) {
    let mut s = store();
    let at = ScheduleWhen::At {
        at: t0() + Duration::hours(2),
    };
    let (rid, _) = s
        .schedule_call(&new(&[1]), &Callback::at(at.clone()), t0())
        .unwrap();
    assert!(matches!(
        s.schedule_call(&new(&[1]), &Callback::at(at.clone()), t0()),
        Err(StoreError::DuplicateSchedule { record, .. }) if record == rid
    ));
    let later = ScheduleWhen::At {
        at: t0() + Duration::hours(3),
    };
    // A second callback at another time does not silently replace the first.
    assert!(matches!(
        s.schedule_call(&new(&[1]), &Callback::at(later.clone()), t0()),
        Err(StoreError::InvalidSchedule(
            dialer_core::ScheduleError::AlreadyScheduled
        ))
    ));
    assert_eq!(s.record(&rid).unwrap().schedule.unwrap().when, at);
    let moved = Callback {
        reschedule: true,
        ..Callback::at(later.clone())
    };
    let (again, _) = s.schedule_call(&new(&[1]), &moved, t0()).unwrap();
    assert_eq!(
        again, rid,
        "a reschedule moves the callback of the live record"
    );
    assert_eq!(s.record(&rid).unwrap().schedule.unwrap().when, later);
}

#[test]
fn e16e_a_callback_in_the_past_or_outside_the_campaign_dates_is_refused_and_changes_nothing() {
    let mut s = store();
    s.respool(&new(&[1]), t0()).unwrap();
    let mut c = s.campaign("c").unwrap();
    c.end_date = Some(t0().date_naive() + Duration::days(3));
    s.upsert_campaign(&c, t0()).unwrap();
    let before = s.records("c").unwrap();
    let refused = [
        (
            ScheduleWhen::At {
                at: t0() - Duration::minutes(1),
            },
            "in_past",
        ),
        (
            ScheduleWhen::At {
                at: t0() + Duration::days(5),
            },
            "after_campaign",
        ),
    ];
    for (when, what) in refused {
        for number in [1, 2] {
            let got = s.schedule_call(&new(&[number]), &Callback::at(when.clone()), t0());
            let kind = match &got {
                Err(StoreError::InvalidSchedule(dialer_core::ScheduleError::InPast { .. })) => {
                    "in_past"
                }
                Err(StoreError::InvalidSchedule(dialer_core::ScheduleError::AfterCampaign {
                    ..
                })) => "after_campaign",
                _ => "other",
            };
            assert_eq!(kind, what, "number {number}: {got:?}");
        }
    }
    assert_eq!(
        s.records("c").unwrap(),
        before,
        "neither the live record nor a new one changed"
    );
}

#[test]
fn e16f_new_contact_name_overwrites_the_first_data_field_or_adds_a_name() {
    let mut s = store();
    let mut with_data = new(&[1]);
    with_data.data = vec![
        ("customer".into(), "Ana".into()),
        ("plan".into(), "gold".into()),
    ];
    s.respool(&with_data, t0()).unwrap();
    let renamed = |name: &str| Callback {
        contact_name: Some(name.into()),
        ..Callback::at(ScheduleWhen::At {
            at: t0() + Duration::hours(1),
        })
    };
    let (rid, _) = s
        .schedule_call(&new(&[1]), &renamed("Ana María"), t0())
        .unwrap();
    assert_eq!(
        s.record(&rid).unwrap().data,
        vec![
            ("customer".to_owned(), "Ana María".to_owned()),
            ("plan".to_owned(), "gold".to_owned())
        ]
    );
    let (fresh, _) = s.schedule_call(&new(&[2]), &renamed("Bo"), t0()).unwrap();
    assert_eq!(
        s.record(&fresh).unwrap().data,
        vec![("name".to_owned(), "Bo".to_owned())]
    );
    // A name with a line break never reaches the record (nor, later, the PBX).
    let before = s.records("c").unwrap();
    for bad in ["", "   ", "Eve\r\nAction: Originate", &"x".repeat(201)] {
        assert!(
            matches!(
                s.schedule_call(&new(&[3]), &renamed(bad), t0()),
                Err(StoreError::InvalidSchedule(
                    dialer_core::ScheduleError::BadContactName { .. }
                ))
            ),
            "{bad:?}"
        );
    }
    assert_eq!(s.records("c").unwrap(), before);
}

#[test]
fn range_schedule_is_validated_like_eccp_schedulecall() {
    let mut s = store();
    let d = t0().date_naive();
    let t = |h| NaiveTime::from_hms_opt(h, 0, 0).unwrap();
    let range = |sd, ed, st, et| ScheduleWhen::Range {
        start_date: sd,
        end_date: ed,
        start_time: st,
        end_time: et,
    };
    let bad = [
        range(d + Duration::days(2), d + Duration::days(1), t(9), t(17)),
        range(d, d, t(17), t(9)),
        range(d - Duration::days(1), d, t(9), t(17)),
    ];
    for when in bad {
        assert!(matches!(
            s.schedule_call(&new(&[1]), &Callback::at(when), t0()),
            Err(StoreError::InvalidSchedule(_))
        ));
    }
    let agent = Some(AgentId("Agent/9000".into()));
    let (rid, sid) = s
        .schedule_call(
            &new(&[1]),
            &Callback {
                when: range(d, d + Duration::days(2), t(9), t(17)),
                agent: agent.clone(),
                new_phone: Some(phone(9)),
                contact_name: None,
                reschedule: false,
            },
            t0(),
        )
        .unwrap();
    let sched = s.record(&rid).unwrap().schedule.unwrap();
    assert_eq!(
        (sched.id, sched.agent, sched.number),
        (sid, agent, Some(phone(9)))
    );
}

#[test]
fn removing_schedules_in_a_date_range_keeps_the_others() {
    let mut s = store();
    let base = s.respool(&new(&[1]), t0()).unwrap();
    s.schedule_call(
        &new(&[1]),
        &Callback::at(ScheduleWhen::At {
            at: t0() + Duration::days(1),
        }),
        t0(),
    )
    .unwrap();
    let (cb, _) = s
        .schedule_call(
            &new(&[2]),
            &Callback::at(ScheduleWhen::At {
                at: t0() + Duration::days(1),
            }),
            t0(),
        )
        .unwrap();
    let (far, _) = s
        .schedule_call(
            &new(&[3]),
            &Callback::at(ScheduleWhen::At {
                at: t0() + Duration::days(9),
            }),
            t0(),
        )
        .unwrap();
    let (from, to) = (t0(), t0() + Duration::days(2));
    assert_eq!(s.remove_schedules("c", &uy_e164(1), from, to).unwrap(), 1);
    assert_eq!(s.remove_schedules("c", &uy_e164(2), from, to).unwrap(), 1);
    assert_eq!(s.remove_schedules("c", &uy_e164(3), from, to).unwrap(), 0);
    let kept = s.record(&base).unwrap();
    assert_eq!(
        (kept.schedule, kept.status),
        (None, RecordStatus::Pending),
        "an imported record stays without its callback"
    );
    let gone = s.record(&cb).unwrap();
    assert_eq!(
        gone.status,
        RecordStatus::Finished {
            reason: FinishReason::Removed
        },
        "a callback-only record goes"
    );
    assert!(s.record(&far).unwrap().schedule.is_some());
}

#[test]
fn dialer_task_modes_map_to_their_dial_order() {
    let mut s = store();
    let now = t0();
    let (manual, _) = s
        .add_task(&new(&[1]), TaskTiming::WhenFree, TaskKind::Manual, now)
        .unwrap();
    let (dated, _) = s
        .add_task(&new(&[2]), TaskTiming::At { at: now }, TaskKind::Bulk, now)
        .unwrap();
    let (free, _) = s
        .add_task(&new(&[3]), TaskTiming::WhenFree, TaskKind::Bulk, now)
        .unwrap();
    let (auto, _) = s
        .add_task(&new(&[4]), TaskTiming::WhenFree, TaskKind::Automatic, now)
        .unwrap();
    let ids: Vec<_> = s
        .ready_set("c", now, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, [auto, dated, manual, free.clone()]);
    let (again, _) = s
        .add_task(&new(&[3]), TaskTiming::WhenFree, TaskKind::Automatic, now)
        .unwrap();
    assert_eq!(again, free, "a task for a live number goes on its record");
    assert_eq!(
        s.record(&free).unwrap().task.unwrap().kind,
        TaskKind::Automatic
    );
}

#[test]
fn removed_contact_leaves_the_spool_and_frees_its_numbers() {
    let mut s = store();
    let id = s.respool(&new(&[1, 2]), t0()).unwrap();
    assert_eq!(
        s.remove_contact("c", &uy_e164(2)).unwrap(),
        std::slice::from_ref(&id)
    );
    assert_eq!(
        s.record(&id).unwrap().status,
        RecordStatus::Finished {
            reason: FinishReason::Removed
        }
    );
    assert_eq!(s.live_record_with_number("c", &uy_e164(1)).unwrap(), None);
    assert!(s.ready_set("c", t0(), 10).unwrap().is_empty());
}

#[test]
fn blacklist_add_bulk_delete_and_expiry() {
    let mut s = store();
    let now = t0();
    let exp = now + Duration::days(1);
    s.blacklist_add(&entry(1, BlacklistScope::All, None, Direction::Both), now)
        .unwrap();
    s.blacklist_add_bulk(
        &[
            entry(
                2,
                BlacklistScope::Campaign("c".into()),
                Some(exp),
                Direction::Outbound,
            ),
            entry(
                3,
                BlacklistScope::Campaign("other".into()),
                None,
                Direction::Outbound,
            ),
            entry(4, BlacklistScope::All, None, Direction::Inbound),
        ],
        now,
    )
    .unwrap();
    let blocked =
        |s: &spool_store::SpoolStore, i, t| s.is_blacklisted(&uy_e164(i), "c", t).unwrap();
    assert_eq!(
        [1, 2, 3, 4].map(|i| blocked(&s, i, now)),
        [true, true, false, false]
    );
    assert!(!blocked(&s, 2, exp), "expired at its expiry");
    assert_eq!(s.blacklist(now).unwrap().len(), 4);
    assert_eq!(s.blacklist(exp).unwrap().len(), 3);
    assert_eq!(s.blacklist_purge_expired(exp).unwrap(), 1);
    assert_eq!(
        s.blacklist_remove(&uy_e164(1), &BlacklistScope::Campaign("c".into()))
            .unwrap(),
        0
    );
    assert_eq!(
        s.blacklist_remove(&uy_e164(1), &BlacklistScope::All)
            .unwrap(),
        1
    );
    assert_eq!(
        s.blacklist_remove_bulk(&[
            (uy_e164(3), BlacklistScope::Campaign("other".into())),
            (uy_e164(4), BlacklistScope::All)
        ])
        .unwrap(),
        2
    );
    assert!(s.blacklist(now).unwrap().is_empty());
    assert!(matches!(
        s.blacklist_add(
            &BlacklistEntry {
                number: "098\n".into(),
                ..entry(1, BlacklistScope::All, None, Direction::Both)
            },
            now
        ),
        Err(StoreError::BadBlacklistNumber(_))
    ));
}

#[test]
fn blacklist_disposition_finishes_the_record_and_adds_the_number() {
    let mut s = store();
    let id = s.respool(&new(&[1, 2]), t0()).unwrap();
    let d = Disposition::Blacklist {
        scope: BlacklistScope::All,
        expires_at: None,
    };
    let rec = s.apply_disposition(&id, &d, t0()).unwrap();
    assert_eq!(
        rec.status,
        RecordStatus::Finished {
            reason: FinishReason::Blacklisted
        }
    );
    assert!(s.is_blacklisted(&uy_e164(1), "c", t0()).unwrap());
    assert!(!s.is_blacklisted(&uy_e164(2), "c", t0()).unwrap());
}

#[test]
fn respool_disposition_to_a_number_of_another_live_record_is_refused() {
    let mut s = store();
    let a = s.respool(&new(&[1]), t0()).unwrap();
    s.respool(&new(&[2]), t0()).unwrap();
    let d = Disposition::Respool(Respool {
        numbers: Some(vec![phone(1), phone(2)]),
        ..Respool::default()
    });
    assert!(matches!(
        s.apply_disposition(&a, &d, t0()),
        Err(StoreError::DuplicateDestination { .. })
    ));
    let d = Disposition::Respool(Respool {
        numbers: Some(vec![phone(3), phone(1)]),
        priority: Some(9),
        ..Respool::default()
    });
    let rec = s.apply_disposition(&a, &d, t0()).unwrap();
    assert_eq!((rec.numbers[0].number.clone(), rec.priority), (phone(3), 9));
    assert_eq!(
        s.live_record_with_number("c", &uy_e164(3)).unwrap(),
        Some(a)
    );
}

#[test]
fn schedule_disposition_gets_a_fresh_schedule_id() {
    let mut s = store();
    let a = s.respool(&new(&[1]), t0()).unwrap();
    let sched = Schedule {
        id: ScheduleId(0),
        when: ScheduleWhen::At { at: t0() },
        agent: None,
        number: None,
    };
    let rec = s
        .apply_disposition(
            &a,
            &Disposition::Schedule {
                schedule: sched,
                campaign: None,
                contact_name: None,
            },
            t0(),
        )
        .unwrap();
    assert_ne!(rec.schedule.as_ref().unwrap().id, ScheduleId(0));
    assert_eq!(s.record(&a).unwrap(), rec);
}

#[test]
fn u14_a_range_callback_is_matched_by_its_start_in_the_callees_zone() {
    let mut s = store();
    // 10:00 to 12:00 in Montevideo (UTC-3) on the day after t0: 13:00 UTC.
    let day = (t0() + Duration::days(1)).date_naive();
    let when = ScheduleWhen::Range {
        start_date: day,
        end_date: day,
        start_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
        end_time: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
    };
    let (cb, _) = s
        .schedule_call(&new(&[4]), &Callback::at(when), t0())
        .unwrap();
    let at = |h: u32, m: u32| day.and_hms_opt(h, m, 0).unwrap().and_utc();
    // 10:00 read as UTC would fall here; the callback starts three hours later.
    assert_eq!(
        s.remove_schedules("c", &uy_e164(4), at(9, 30), at(10, 30))
            .unwrap(),
        0
    );
    assert_eq!(
        s.remove_schedules("c", &uy_e164(4), at(12, 30), at(13, 30))
            .unwrap(),
        1
    );
    assert_eq!(
        s.record(&cb).unwrap().status,
        RecordStatus::Finished {
            reason: FinishReason::Removed
        }
    );
}
