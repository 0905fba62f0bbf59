use super::common::*;
use chrono::Duration;
use dialer_core::{AgentId, CallId, CallOutcome, FailureClass, Progress, StoreUpdate};
use spool_store::SpoolStore;

fn start(s: &mut SpoolStore, i: u32, call: u64) -> dialer_core::RecordId {
    let rec = s
        .records("c")
        .unwrap()
        .into_iter()
        .find(|r| r.numbers[0].number == phone(i))
        .unwrap();
    s.apply(&StoreUpdate::AttemptStarted {
        call: CallId(call),
        campaign: "c".into(),
        record: rec.id.clone(),
        number: phone(i),
        agent: None,
        at: t0(),
    })
    .unwrap();
    rec.id
}

fn end(s: &mut SpoolStore, rec: &dialer_core::RecordId, call: u64, outcome: CallOutcome) {
    s.apply(&StoreUpdate::AttemptEnded {
        call: CallId(call),
        record: rec.clone(),
        outcome,
        at: t0() + Duration::minutes(1),
    })
    .unwrap();
}

#[test]
fn status_counters_follow_the_spool_and_the_ledger() {
    let mut s = store();
    let text: String = (1..=10).map(|i| format!("c;{};;\n", uy(i))).collect();
    import(&mut s, &text);
    let r1 = start(&mut s, 1, 1);
    end(&mut s, &r1, 1, CallOutcome::Connected { talk_s: 90 });
    let r2 = start(&mut s, 2, 2);
    end(
        &mut s,
        &r2,
        2,
        CallOutcome::Failed {
            class: FailureClass::Busy,
        },
    );
    let r3 = start(&mut s, 3, 3);
    end(
        &mut s,
        &r3,
        3,
        CallOutcome::Failed {
            class: FailureClass::NoAnswer,
        },
    );
    let r4 = start(&mut s, 4, 4);
    end(&mut s, &r4, 4, CallOutcome::Abandoned);
    let r5 = start(&mut s, 5, 5);
    end(&mut s, &r5, 5, CallOutcome::ShortCall { talk_s: 3 });
    start(&mut s, 6, 6);
    let r7 = start(&mut s, 7, 7);
    s.log_progress("c", CallId(7), &r7, &Progress::Ringing, t0())
        .unwrap();
    let r8 = start(&mut s, 8, 8);
    s.log_progress("c", CallId(8), &r8, &Progress::OnQueue, t0())
        .unwrap();

    let st = s.campaign_status("c").unwrap();
    assert_eq!(
        (st.total, st.pending, st.placing, st.ringing, st.onqueue),
        (10, 2, 1, 1, 1)
    );
    assert_eq!(
        (
            st.success,
            st.failure,
            st.noanswer,
            st.abandoned,
            st.shortcall,
            st.unknown
        ),
        (1, 1, 1, 1, 1, 0)
    );
    assert_eq!((st.in_flight, st.finished), (3, 1));
}

#[test]
fn queue_wait_histogram_counts_five_second_buckets_and_abandons() {
    let mut s = store();
    let text: String = (1..=5).map(|i| format!("c;{};;\n", uy(i))).collect();
    import(&mut s, &text);
    for (i, wait_s) in [(1u32, 0i64), (2, 4), (3, 5), (4, 31)] {
        let r = start(&mut s, i, u64::from(i));
        s.log_progress("c", CallId(u64::from(i)), &r, &Progress::OnQueue, t0())
            .unwrap();
        let agent = Progress::Success {
            agent: AgentId("a".into()),
        };
        s.log_progress(
            "c",
            CallId(u64::from(i)),
            &r,
            &agent,
            t0() + Duration::seconds(wait_s),
        )
        .unwrap();
    }
    let r5 = start(&mut s, 5, 5);
    end(&mut s, &r5, 5, CallOutcome::Abandoned);
    let h = s.queue_wait("c").unwrap();
    assert_eq!(h.buckets, [2, 1, 0, 0, 0, 0, 1]);
    assert_eq!(h.abandoned, 1);
}

#[test]
fn campaign_log_lists_progress_in_a_date_range() {
    let mut s = store();
    import(&mut s, &format!("c;{};;\n", uy(1)));
    let r = start(&mut s, 1, 1);
    let steps = [
        Progress::Placing,
        Progress::Ringing,
        Progress::OnQueue,
        Progress::Success {
            agent: AgentId("SIP/1064".into()),
        },
    ];
    for (k, p) in steps.iter().enumerate() {
        s.log_progress("c", CallId(1), &r, p, t0() + Duration::seconds(k as i64))
            .unwrap();
    }
    let log = s
        .campaign_log(
            &"c".into(),
            t0() + Duration::seconds(1),
            t0() + Duration::seconds(3),
        )
        .unwrap();
    let states: Vec<_> = log.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(states, ["ringing", "on_queue", "success"]);
    assert_eq!(log[2].agent.as_deref(), Some("SIP/1064"));
    assert_eq!(log[0].phone.as_deref(), Some(uy_e164(1).as_str()));
    assert_eq!(log[0].retry, Some(1));
}

#[test]
fn e13_hold_time_adds_up_over_holds_and_a_hold_open_at_the_end_closes_with_the_call() {
    let mut s = store();
    import(&mut s, &format!("c;{};;\n", uy(1)));
    let r = start(&mut s, 1, 1);
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let agent = AgentId("SIP/1064".into());
    let steps = [
        (0, Progress::Success { agent }),
        (5, Progress::OnHold),
        (15, Progress::OffHold),
        (20, Progress::OnHold),
        // A repeated report does not restart the hold.
        (25, Progress::OnHold),
    ];
    for (t, p) in &steps {
        s.log_progress("c", CallId(1), &r, p, at(*t)).unwrap();
    }
    let counters = s.campaign_status("c").unwrap();
    assert_eq!((counters.onhold, counters.success), (1, 0));
    // The call ends on hold one minute after t0 (see `end`): 10 s + 40 s.
    end(&mut s, &r, 1, CallOutcome::Connected { talk_s: 60 });
    let row = s.attempt(CallId(1)).unwrap();
    assert_eq!((row.hold_ms, row.on_hold_since), (50_000, None));
    assert_eq!(s.campaign_status("c").unwrap().onhold, 0);
}

#[test]
fn e6_a_hold_end_carries_the_hold_length_like_a_pause_end() {
    let mut s = store();
    import(&mut s, &format!("c;{};;\n", uy(1)));
    let r = start(&mut s, 1, 1);
    let at = |secs: i64| t0() + Duration::seconds(secs);
    let agent = AgentId("SIP/1064".into());
    for (t, p) in [
        (0, Progress::Success { agent }),
        (5, Progress::OnHold),
        (17, Progress::OffHold),
        // An unhold with no hold open says nothing about a length.
        (18, Progress::OffHold),
    ] {
        s.log_progress("c", CallId(1), &r, &p, at(t)).unwrap();
    }
    let log = s.campaign_log(&"c".into(), t0(), at(60)).unwrap();
    let holds: Vec<(&str, Option<u32>)> = log
        .iter()
        .filter(|e| e.status.ends_with("hold"))
        .map(|e| (e.status.as_str(), e.duration_s))
        .collect();
    assert_eq!(
        holds,
        vec![
            ("on_hold", None),
            ("off_hold", Some(12)),
            ("off_hold", None)
        ]
    );
}
