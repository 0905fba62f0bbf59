//! The seed operations around a dial (issue 11), through the `Dialer` handle, with a real
//! SQLite spool file and the simulated telephone system on an accelerated clock. Each test is
//! named after its row of `docs/seed-operations.md`.

mod common;

use chrono::{DateTime, Utc};
use common::*;
use dialer_core::{AgentId, BlacklistScope, CampaignId, DialMode, Disposition, RecordId};
use dialer_runtime::{AgentControl, DialerEvent, DialerStatus, OpError, TelephonyCommand};
use spool_store::{BreakType, Callback, Conclusion, SpoolStore, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn sale(agent: &str) -> Conclusion {
    Conclusion {
        agent: Some(AgentId::from(agent)),
        result_code: Some("SALE".into()),
        comment: Some("wants the gold plan".into()),
        tags: vec!["gold".into(), "upsell".into()],
    }
}

// ---- U3 / V2: what the agent concluded -----------------------------------------------------

#[tokio::test]
async fn u3_disposition_records_result_code_comment_and_agent() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    // No agent: nothing is dialed, the records stay pending.
    let run = start(store, &c, world(vec![c.id.clone()], 0, 1), 50.0).await;
    let record = RecordId(1);
    run.dialer
        .conclude(record.clone(), sale("alice"), Disposition::Done)
        .await
        .expect("concluded");
    let rows = run.dialer.conclusions(record.clone()).await.expect("read");
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.agent.as_deref(), Some("alice"));
    assert_eq!(row.result_code.as_deref(), Some("SALE"));
    let result = row.result.as_ref().expect("the code's catalogue entry");
    assert_eq!(
        (result.label.as_str(), result.l1.as_deref()),
        ("Sale", Some("positive"))
    );
    assert_eq!(row.comment.as_deref(), Some("wants the gold plan"));
    assert_eq!(row.tags, vec!["gold".to_string(), "upsell".to_string()]);
    assert_eq!(row.action, "done");
    assert_eq!(row.call, None, "the record was never dialed");
    run.stop().await;
    // Persisted: the file has it after the run.
    let store = reopen(&dir);
    assert_eq!(store.conclusions(&record).expect("read").len(), 1);
    let mut expected = codes();
    expected.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(
        store.result_codes("spring").expect("codes"),
        expected,
        "by code"
    );
}

#[tokio::test]
async fn u3_disposition_is_tied_to_the_attempt_it_concludes() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 2), 200.0).await;
    run.until("a call ended", |s| s.counters.calls_ended >= 1)
        .await;
    let summary = run.stop().await;
    assert!(summary.counters.calls_ended >= 1);
    let store = reopen(&dir);
    let first = store.attempts("spring").expect("attempts")[0].clone();
    // The record the first call was for, disposed of after the run (spool path).
    let run = start(store, &c, world(vec![c.id.clone()], 0, 2), 50.0).await;
    let mut conclusion = sale("agent1");
    conclusion.result_code = Some("NI".into());
    run.dialer
        .conclude(
            first.record.clone(),
            conclusion,
            Disposition::Blacklist {
                scope: BlacklistScope::Campaign(c.id.clone()),
                expires_at: None,
            },
        )
        .await
        .expect("concluded");
    let rows = run
        .dialer
        .conclusions(first.record.clone())
        .await
        .expect("read");
    let last_call = reopen(&dir)
        .attempts("spring")
        .expect("attempts")
        .into_iter()
        .filter(|a| a.record == first.record)
        .map(|a| a.call)
        .max();
    assert_eq!(rows[0].call, last_call);
    assert_eq!(
        (rows[0].action.as_str(), rows[0].result_code.as_deref()),
        ("blacklist", Some("NI"))
    );
    run.stop().await;
}

#[tokio::test]
async fn u3_unknown_or_inactive_result_code_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 3), 50.0).await;
    let record = RecordId(2);
    let before = run.dialer.record(record.clone()).await.expect("record");
    let blacklist = Disposition::Blacklist {
        scope: BlacklistScope::All,
        expires_at: None,
    };
    for (code, inactive) in [("NOPE", false), ("OLD", true)] {
        let mut conclusion = sale("alice");
        conclusion.result_code = Some(code.into());
        let e = run
            .dialer
            .conclude(record.clone(), conclusion, blacklist.clone())
            .await
            .expect_err("refused");
        match (&e, inactive) {
            (OpError::Store(StoreError::UnknownResultCode { code: c, .. }), false)
            | (OpError::Store(StoreError::InactiveResultCode { code: c, .. }), true) => {
                assert_eq!(c, code)
            }
            _ => panic!("{code}: unexpected error {e:?}"),
        }
        assert!(
            e.to_string().contains(code),
            "the error names the code: {e}"
        );
    }
    assert_eq!(
        run.dialer.record(record.clone()).await.expect("record"),
        before
    );
    assert!(run
        .dialer
        .conclusions(record.clone())
        .await
        .expect("read")
        .is_empty());
    run.stop().await;
    let store = reopen(&dir);
    assert!(
        store.blacklist(start_time()).expect("blacklist").is_empty(),
        "a refused BLACKLIST disposition added nothing"
    );
}

// ---- V8: update_fields -------------------------------------------------------------------

#[tokio::test]
async fn v8_update_fields_changes_data_not_retries_or_state() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 2);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 4), 50.0).await;
    let record = RecordId(1);
    let before = run.dialer.record(record.clone()).await.expect("record");
    let after = run
        .dialer
        .update_fields(
            record.clone(),
            vec![
                ("n".into(), "changed".into()),
                ("plan".into(), "gold".into()),
            ],
        )
        .await
        .expect("updated");
    assert_eq!(
        after.data,
        vec![
            ("n".to_string(), "changed".to_string()),
            ("plan".to_string(), "gold".to_string())
        ]
    );
    assert_eq!(
        (
            after.attempts,
            &after.status,
            &after.numbers,
            after.priority
        ),
        (
            before.attempts,
            &before.status,
            &before.numbers,
            before.priority
        )
    );
    // A name outside Asterisk's grammar is refused naming it, and nothing changes.
    let e = run
        .dialer
        .update_fields(
            record.clone(),
            vec![("ok".into(), "1".into()), ("1bad".into(), "x".into())],
        )
        .await
        .expect_err("refused");
    assert!(
        matches!(&e, OpError::Store(StoreError::InvalidField { field, .. }) if field == "1bad"),
        "{e:?}"
    );
    let e = run
        .dialer
        .update_fields(
            record.clone(),
            vec![("note".into(), "a\r\nAction: Originate".into())],
        )
        .await
        .expect_err("refused");
    assert!(e.to_string().contains("CR, LF"), "{e}");
    run.stop().await;
    let store = reopen(&dir);
    assert_eq!(store.record(&record).expect("record").data, after.data);
}

#[tokio::test]
async fn v8_update_fields_is_refused_while_the_record_is_in_flight() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 3);
    // Slow enough that the call is still up when the request arrives.
    let run = start(store, &c, world(vec![c.id.clone()], 1, 5), 2.0).await;
    let s = run
        .until("a call in flight", |s| !s.engine.calls.is_empty())
        .await;
    let record = s.engine.calls[0].record.clone();
    let e = run
        .dialer
        .update_fields(record.clone(), vec![("n".into(), "x".into())])
        .await
        .expect_err("refused");
    assert!(e.to_string().contains(&record.to_string()), "{e}");
    assert!(
        matches!(
            e,
            OpError::Rejected(dialer_core::RejectReason::RecordInFlight(_))
        ),
        "{e:?}"
    );
    run.stop().await;
    let data = reopen(&dir).record(&record).expect("record").data;
    assert!(!data.iter().any(|(_, v)| v == "x"), "{data:?}");
}

// ---- E14: breaks -------------------------------------------------------------------------

#[tokio::test]
async fn e14_pause_with_an_unknown_or_inactive_break_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 6), 50.0).await;
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let agent = AgentId::from("agent1");
    let e = run
        .dialer
        .pause(agent.clone(), "siesta")
        .await
        .expect_err("unknown");
    assert!(
        matches!(&e, OpError::Store(StoreError::UnknownBreak { break_id, .. }) if break_id == "siesta"),
        "{e:?}"
    );
    let e = run
        .dialer
        .pause(agent.clone(), "training")
        .await
        .expect_err("inactive");
    assert!(
        matches!(&e, OpError::Store(StoreError::InactiveBreak { break_id, .. }) if break_id == "training"),
        "{e:?}"
    );
    let s = run.dialer.status().await.expect("status");
    assert_eq!(
        agent_state(&s, "agent1"),
        Some(dialer_core::AgentState::Ready)
    );
    assert!(
        !run.sent
            .lock()
            .expect("lock")
            .iter()
            .any(|c| matches!(c, TelephonyCommand::Agent { .. })),
        "a refused pause sent nothing to the PBX"
    );
    run.stop().await;
    assert!(reopen(&dir).open_breaks().expect("breaks").is_empty());
}

#[tokio::test]
async fn e14_pause_while_in_another_break_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 7), 50.0).await;
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let agent = AgentId::from("agent1");
    run.dialer
        .pause(agent.clone(), "lunch")
        .await
        .expect("paused");
    let e = run
        .dialer
        .pause(agent.clone(), "coffee")
        .await
        .expect_err("in lunch");
    assert!(
        matches!(&e, OpError::Store(StoreError::AlreadyInBreak { current, asked, .. }) if current == "lunch" && asked == "coffee"),
        "{e:?}"
    );
    // The same break again changes nothing.
    run.dialer
        .pause(agent.clone(), "lunch")
        .await
        .expect("same break");
    run.stop().await;
    let open = reopen(&dir).open_breaks().expect("breaks");
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0].break_id, "lunch");
}

#[tokio::test]
async fn e14_break_start_and_end_are_events_persisted_with_their_duration_and_reach_the_pbx() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 8), 100.0).await;
    let mut events = run.dialer.subscribe();
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let agent = AgentId::from("agent1");
    run.dialer
        .pause(agent.clone(), "lunch")
        .await
        .expect("paused");
    // About three simulated minutes.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    run.dialer
        .agent(agent.clone(), dialer_core::AgentEvent::Ready)
        .await
        .expect("back");
    let mut started = None;
    let mut ended = None;
    while ended.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(DialerEvent::BreakStarted {
                agent,
                break_id,
                name,
                at,
            })) => {
                assert_eq!(
                    (agent.as_str(), break_id.as_str(), name.as_str()),
                    ("agent1", "lunch", "Lunch")
                );
                started = Some(at);
            }
            Ok(Ok(DialerEvent::BreakEnded {
                break_id,
                started_at,
                at,
                duration_s,
                ..
            })) => {
                assert_eq!(break_id, "lunch");
                assert_eq!(Some(started_at), started);
                assert_eq!(duration_s, (at - started_at).num_seconds());
                ended = Some((at, duration_s));
            }
            Ok(Ok(_)) => {}
            other => panic!("no break end event: {other:?}"),
        }
    }
    let (_, duration_s) = ended.expect("ended");
    assert!(
        duration_s >= 120,
        "about three simulated minutes, got {duration_s} s"
    );
    {
        let sent = run.sent.lock().expect("lock");
        let pauses: Vec<_> = sent
            .iter()
            .filter_map(|c| match c {
                TelephonyCommand::Agent { agent, control } => {
                    Some((agent.to_string(), control.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            pauses,
            vec![
                (
                    "agent1".to_string(),
                    AgentControl::Pause {
                        reason: "lunch".into()
                    }
                ),
                ("agent1".to_string(), AgentControl::Unpause),
            ],
            "the queue pause and unpause reached the PBX"
        );
    }
    run.stop().await;
    let a = reopen(&dir)
        .agent_activity(
            "agent1",
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("activity");
    assert_eq!(a.breaks.len(), 1, "{a:?}");
    assert_eq!(a.breaks[0].duration_s, Some(duration_s));
    assert_eq!(a.break_s, duration_s);
}

// ---- E18: agent activity summary -----------------------------------------------------------

#[tokio::test]
async fn e18_agent_activity_summarizes_session_breaks_calls_and_talk() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 30);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 9), 200.0).await;
    run.until("calls ended", |s| s.counters.calls_ended >= 6)
        .await;
    let agent = AgentId::from("agent1");
    // A pause during a call is kept for its end: wait for the break to be in effect.
    run.dialer
        .agent(
            agent.clone(),
            dialer_core::AgentEvent::PauseAfterCall {
                reason: "coffee".into(),
            },
        )
        .await
        .expect("pause after call");
    run.until("agent1 paused", |s| {
        matches!(
            agent_state(s, "agent1"),
            Some(dialer_core::AgentState::Paused { .. })
        )
    })
    .await;
    run.dialer
        .agent(agent.clone(), dialer_core::AgentEvent::LoggedOut)
        .await
        .expect("logout");
    run.stop().await;
    let store = reopen(&dir);
    let day = start_time() + chrono::Duration::days(1);
    let a = store
        .agent_activity("agent1", start_time(), day)
        .expect("activity");
    // By hand from the ledger and the campaign log: calls linked to agent1, their talk.
    let log = store.campaign_log(&c.id, start_time(), day).expect("log");
    let linked: Vec<_> = log
        .iter()
        .filter(|e| e.status == "success" && e.agent.as_deref() == Some("agent1"))
        .filter_map(|e| e.call)
        .collect();
    assert!(!linked.is_empty(), "agent1 took calls");
    let talk: u64 = linked
        .iter()
        .map(
            |call| match store.attempt(*call).expect("attempt").outcome {
                Some(dialer_core::CallOutcome::Connected { talk_s })
                | Some(dialer_core::CallOutcome::ShortCall { talk_s }) => u64::from(talk_s),
                _ => 0,
            },
        )
        .sum();
    assert_eq!(a.campaigns.len(), 1, "{a:?}");
    assert_eq!(
        (
            a.campaigns[0].campaign.as_str(),
            a.campaigns[0].calls,
            a.campaigns[0].talk_s
        ),
        ("spring", linked.len() as u64, talk)
    );
    assert_eq!(a.sessions, 1);
    assert!(
        a.session_start
            .is_some_and(|t| t >= start_time() && t < start_time() + chrono::Duration::seconds(30)),
        "the world logs its agents in at the start: {a:?}"
    );
    assert!(a.session_end.is_some(), "logged out");
    assert_eq!(a.breaks.len(), 1, "{a:?}");
    assert_eq!(a.breaks[0].break_id, "coffee");
    assert!(a.breaks[0].ended_at.is_some(), "the logout ended the break");
}

#[tokio::test]
async fn e18_the_break_catalogue_is_read_and_set_through_the_handle() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 10), 50.0).await;
    let mut expected = breaks();
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        run.dialer.breaks(c.id.clone()).await.expect("breaks"),
        expected,
        "by id"
    );
    // Setting a catalogue deactivates what it leaves out.
    run.dialer
        .set_breaks(
            c.id.clone(),
            vec![BreakType {
                id: "lunch".into(),
                name: "Long lunch".into(),
                active: true,
            }],
        )
        .await
        .expect("set");
    let now = run.dialer.breaks(c.id.clone()).await.expect("breaks");
    let find = |id: &str| now.iter().find(|b| b.id == id).cloned().expect("kept");
    assert_eq!(
        (find("lunch").name.as_str(), find("lunch").active),
        ("Long lunch", true)
    );
    assert!(!find("coffee").active);
    let e = run
        .dialer
        .set_breaks(
            c.id.clone(),
            vec![
                BreakType {
                    id: "a".into(),
                    name: "A".into(),
                    active: true,
                },
                BreakType {
                    id: "a".into(),
                    name: "B".into(),
                    active: true,
                },
            ],
        )
        .await
        .expect_err("twice");
    assert!(e.to_string().contains("listed twice"), "{e}");
    let e = run
        .dialer
        .set_result_codes(CampaignId::from("nope"), codes())
        .await
        .expect_err("unknown campaign");
    assert!(e.to_string().contains("nope"), "{e}");
    run.stop().await;
}

// ---- E2 / C7: campaign lifecycle ----------------------------------------------------------

fn new_number(n: u32) -> spool_store::NewRecord {
    spool_store::NewRecord::new(
        "spring",
        vec![dialer_core::PhoneNumber::parse(&format!("21255590{n:02}"), "US").expect("number")],
    )
}

fn in_an_hour() -> dialer_core::ScheduleWhen {
    dialer_core::ScheduleWhen::At {
        at: start_time() + chrono::Duration::hours(1),
    }
}

#[tokio::test]
async fn e2_campaign_finishes_when_its_list_is_spent_and_reopens_when_records_are_added() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.max_attempts_per_record = 1;
    c.max_attempts_per_number = 1;
    let store = spool(&dir, &c, 3);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 11), 200.0).await;
    let mut events = run.dialer.subscribe();
    let finished_at = loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Ok(DialerEvent::CampaignFinished { campaign, at })) => {
                assert_eq!(campaign, c.id);
                break at;
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("the campaign did not finish: {other:?}"),
        }
    };
    let page = run
        .dialer
        .list_campaigns(spool_store::CampaignFilter {
            state: Some(spool_store::CampaignState::Finished),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(page.total, 1, "{page:?}");
    assert_eq!(
        page.campaigns[0].state_since.map(|t| t.timestamp_millis()),
        Some(finished_at.timestamp_millis())
    );
    // C7: a finished campaign takes no callback...
    let e = run
        .dialer
        .schedule_call(new_number(1), Callback::at(in_an_hour()))
        .await
        .expect_err("finished");
    assert!(
        matches!(&e, OpError::Store(StoreError::CampaignNotAccepting { state, .. }) if state == "finished"),
        "{e:?}"
    );
    // ...but a new record re-opens it.
    run.dialer.respool(new_number(2)).await.expect("respooled");
    loop {
        match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
            Ok(Ok(DialerEvent::CampaignReopened { campaign, .. })) => {
                assert_eq!(campaign, c.id);
                break;
            }
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("the campaign was not re-opened: {other:?}"),
        }
    }
    run.stop().await;
    let store = reopen(&dir);
    let (state, _) = store.campaign_state("spring").expect("state");
    // The new record may have been dialed and spent again meanwhile.
    assert!(
        state == spool_store::CampaignState::Active
            || store.campaign_spent("spring").expect("spent"),
        "{state:?}"
    );
}

#[tokio::test]
async fn e2_list_campaigns_filters_by_state_dial_mode_name_and_dates_with_offset_and_limit() {
    use chrono::NaiveDate;
    use spool_store::{CampaignFilter, CampaignState};
    let dir = tempfile::tempdir().expect("dir");
    let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let mut spring = campaign("spring");
    (spring.start_date, spring.end_date) = (Some(day(6, 1)), Some(day(6, 30)));
    let mut store = spool(&dir, &spring, 0);
    let mut summer = campaign("summer");
    summer.dial_mode = DialMode::Predictive;
    (summer.start_date, summer.end_date) = (Some(day(7, 1)), Some(day(8, 31)));
    let mut autumn = campaign("autumn");
    autumn.dial_mode = DialMode::Preview;
    for c in [&summer, &autumn] {
        store.upsert_campaign(c, start_time()).expect("campaign");
    }
    let run = start(store, &spring, world(vec![spring.id.clone()], 0, 12), 50.0).await;
    run.dialer
        .set_campaign_state(summer.id.clone(), CampaignState::Inactive)
        .await
        .expect("inactive");
    let names = |f: CampaignFilter| {
        let d = run.dialer.clone();
        async move {
            let p = d.list_campaigns(f).await.expect("list");
            (
                p.total,
                p.campaigns.into_iter().map(|c| c.name).collect::<Vec<_>>(),
            )
        }
    };
    let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(CampaignFilter::default()).await,
        (3, all(&["autumn", "spring", "summer"]))
    );
    assert_eq!(
        names(CampaignFilter {
            state: Some(CampaignState::Inactive),
            ..Default::default()
        })
        .await,
        (1, all(&["summer"]))
    );
    assert_eq!(
        names(CampaignFilter {
            dial_mode: Some("preview".into()),
            ..Default::default()
        })
        .await,
        (1, all(&["autumn"]))
    );
    assert_eq!(
        names(CampaignFilter {
            name: Some("SPR".into()),
            ..Default::default()
        })
        .await,
        (1, all(&["spring"]))
    );
    // Dates: a campaign without dates is in every range.
    assert_eq!(
        names(CampaignFilter {
            from: Some(day(7, 15)),
            ..Default::default()
        })
        .await,
        (2, all(&["autumn", "summer"]))
    );
    assert_eq!(
        names(CampaignFilter {
            to: Some(day(6, 15)),
            ..Default::default()
        })
        .await,
        (2, all(&["autumn", "spring"]))
    );
    assert_eq!(
        names(CampaignFilter {
            offset: 1,
            limit: Some(1),
            ..Default::default()
        })
        .await,
        (3, all(&["spring"]))
    );
    let e = run
        .dialer
        .list_campaigns(CampaignFilter {
            dial_mode: Some("robocall".into()),
            ..Default::default()
        })
        .await
        .expect_err("bad mode");
    assert!(e.to_string().contains("robocall"), "{e}");
    let e = run
        .dialer
        .set_campaign_state(spring.id.clone(), CampaignState::Finished)
        .await
        .expect_err("finishing is the list's doing");
    assert!(e.to_string().contains("spent"), "{e}");
    run.stop().await;
    let store = reopen(&dir);
    assert_eq!(
        store.campaign_state("summer").expect("state").0,
        CampaignState::Inactive
    );
    assert_eq!(
        store.campaign_state("spring").expect("state").0,
        CampaignState::Active
    );
}

#[tokio::test]
async fn c7_an_inactive_or_stopped_campaign_refuses_new_callbacks() {
    use spool_store::CampaignState;
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 1);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 13), 50.0).await;
    let refused = |e: OpError| match e {
        OpError::Store(StoreError::CampaignNotAccepting { state, .. }) => state,
        other => panic!("unexpected {other:?}"),
    };
    run.dialer
        .stop_campaign(c.id.clone())
        .await
        .expect("stopped");
    let e = run
        .dialer
        .schedule_call(new_number(1), Callback::at(in_an_hour()))
        .await
        .expect_err("stopped");
    assert_eq!(refused(e), "stopped");
    run.dialer
        .set_campaign_state(c.id.clone(), CampaignState::Inactive)
        .await
        .expect("inactive");
    let e = run
        .dialer
        .schedule_call(new_number(1), Callback::at(in_an_hour()))
        .await
        .expect_err("inactive");
    assert_eq!(refused(e), "inactive");
    // A SCHEDULE disposition into it is refused too, and the record is unchanged.
    let before = run.dialer.record(RecordId(1)).await.expect("record");
    let schedule = dialer_core::Schedule {
        id: dialer_core::ScheduleId(0),
        when: in_an_hour(),
        agent: None,
        number: None,
    };
    let e = run
        .dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Schedule {
                schedule,
                campaign: None,
                contact_name: None,
            },
        )
        .await
        .expect_err("inactive");
    assert_eq!(refused(e), "inactive");
    assert_eq!(
        run.dialer.record(RecordId(1)).await.expect("record"),
        before
    );
    run.dialer
        .set_campaign_state(c.id.clone(), CampaignState::Active)
        .await
        .expect("active");
    run.dialer
        .schedule_call(new_number(1), Callback::at(in_an_hour()))
        .await
        .expect("an active, running campaign takes callbacks");
    run.stop().await;
}

// ---- V7: DNC checks on add ----------------------------------------------------------------

#[tokio::test]
async fn v7_add_lead_refuses_the_global_and_the_campaign_dnc_lists_as_two_errors() {
    use dialer_core::{BlacklistEntry, Direction};
    use spool_store::DncChecks;
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 14), 50.0).await;
    let global = new_number(1);
    let local = new_number(2);
    let entry = |n: &spool_store::NewRecord, scope| BlacklistEntry {
        number: n.numbers[0].e164().to_owned(),
        scope,
        expires_at: None,
        direction: Direction::Outbound,
    };
    run.dialer
        .blacklist_add(vec![
            entry(&global, BlacklistScope::All),
            entry(&local, BlacklistScope::Campaign(c.id.clone())),
        ])
        .await
        .expect("blacklisted");
    let both = DncChecks {
        dnc_check: true,
        campaign_dnc_check: true,
    };
    let e = run
        .dialer
        .add_lead(global.clone(), both)
        .await
        .expect_err("global");
    assert!(
        matches!(&e, OpError::Store(StoreError::OnGlobalDnc { number }) if number == global.numbers[0].e164()),
        "{e:?}"
    );
    let e = run
        .dialer
        .add_lead(local.clone(), both)
        .await
        .expect_err("campaign");
    assert!(
        matches!(&e, OpError::Store(StoreError::OnCampaignDnc { campaign, .. }) if campaign == "spring"),
        "{e:?}"
    );
    assert!(e.to_string().contains("spring"), "{e}");
    // Each check covers its own list only.
    let only_global = DncChecks {
        dnc_check: true,
        campaign_dnc_check: false,
    };
    let id = run
        .dialer
        .add_lead(local.clone(), only_global)
        .await
        .expect("the campaign's list was not asked about");
    run.stop().await;
    let records = reopen(&dir).records("spring").expect("records");
    assert_eq!(records.len(), 1, "refused leads added nothing: {records:?}");
    assert_eq!(records[0].id, id);
}

// ---- E13: hold and unhold ------------------------------------------------------------------

fn linked_call(s: &DialerStatus) -> Option<dialer_core::CallStatus> {
    s.engine
        .calls
        .iter()
        .find(|c| {
            matches!(
                c.state,
                dialer_core::CallState::Linked | dialer_core::CallState::OnHold
            )
        })
        .cloned()
}

#[tokio::test]
async fn e13_hold_and_unhold_through_the_handle_reach_the_pbx_status_ledger_and_log() {
    use dialer_core::{CallId, CallState, RejectReason};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 6);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 21), 10.0).await;
    // Nothing to hold yet: an unknown call is named in the refusal.
    let err = run.dialer.hold(CallId(999_999)).await.expect_err("unknown");
    assert!(
        matches!(
            err,
            OpError::Rejected(RejectReason::UnknownCall(CallId(999_999)))
        ),
        "{err}"
    );
    let s = run
        .until("a call linked", |s| linked_call(s).is_some())
        .await;
    let call = linked_call(&s).expect("linked").call;
    let err = run.dialer.unhold(call).await.expect_err("not on hold");
    assert!(
        matches!(
            err,
            OpError::Rejected(RejectReason::HoldState { on_hold: false, .. })
        ),
        "{err}"
    );
    run.dialer.hold(call).await.expect("hold");
    let s = run
        .until("the PBX reported the hold", |s| {
            s.engine
                .calls
                .iter()
                .any(|c| c.call == call && c.state == CallState::OnHold)
        })
        .await;
    let held = s
        .engine
        .calls
        .iter()
        .find(|c| c.call == call)
        .expect("call");
    assert!(held.on_hold_since.is_some());
    let err = run.dialer.hold(call).await.expect_err("already on hold");
    assert!(
        matches!(
            err,
            OpError::Rejected(RejectReason::HoldState { on_hold: true, .. })
        ),
        "{err}"
    );
    // The campaign status counts it on hold, not as a conversation.
    let reader = SpoolStore::open_read_only(dir.path().join("spool.db")).expect("reader");
    let counters = reader.campaign_status("spring").expect("status");
    assert_eq!((counters.onhold, counters.success), (1, 0), "{counters:?}");
    // About twenty simulated seconds on hold.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    run.dialer.unhold(call).await.expect("unhold");
    run.until("the PBX reported the end of the hold", |s| {
        s.engine
            .calls
            .iter()
            .all(|c| c.call != call || c.state == CallState::Linked)
    })
    .await;
    run.until("the call ended", |s| {
        s.engine.calls.iter().all(|c| c.call != call)
    })
    .await;
    let sent = run.sent.lock().expect("not poisoned").clone();
    let holds: Vec<bool> = sent
        .iter()
        .filter_map(|c| match c {
            TelephonyCommand::Hold { call: id, hold } if *id == call => Some(*hold),
            _ => None,
        })
        .collect();
    assert_eq!(
        holds,
        vec![true, false],
        "one hold and one unhold reached the PBX"
    );
    run.stop().await;

    let store = reopen(&dir);
    let row = store.attempt(call).expect("ledger row");
    assert!(row.on_hold_since.is_none(), "the hold closed");
    let log = store
        .campaign_log(
            &c.id,
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("log");
    let mine: Vec<_> = log.iter().filter(|e| e.call == Some(call)).collect();
    let at = |status: &str| {
        mine.iter()
            .find(|e| e.status == status)
            .unwrap_or_else(|| panic!("no {status} entry: {mine:#?}"))
    };
    let (on, off) = (at("on_hold"), at("off_hold"));
    // The ledger's hold time is the time between the two reports, to the millisecond.
    assert_eq!(
        row.hold_ms as i64,
        (off.at - on.at).num_milliseconds(),
        "{row:?}"
    );
    assert!(
        row.hold_ms >= 10_000,
        "about twenty simulated seconds: {row:?}"
    );
    // Every entry after the link names the agent who talked; the end carries its length.
    let agent = row.linked_agent.clone().expect("linked agent");
    assert_eq!(on.agent.as_deref(), Some(agent.as_str()));
    assert_eq!(off.agent.as_deref(), Some(agent.as_str()));
    let end = mine
        .iter()
        .find(|e| e.status == "hangup" || e.status == "short_call")
        .expect("the conversation's end");
    assert_eq!(end.agent.as_deref(), Some(agent.as_str()));
    let linked = row.linked_at.expect("linked at");
    assert_eq!(
        end.duration_s.map(i64::from),
        Some(((end.at - linked).num_milliseconds() as f64 / 1000.0).round() as i64)
    );
    let counters = store.campaign_status("spring").expect("status");
    assert_eq!(counters.onhold, 0);
}

// ---- C2 / C4 / C8 / C10: callback records as the UCCX server knows them --------------------

fn callback(n: u32, external_id: &str, entered: Option<DateTime<Utc>>) -> spool_store::NewRecord {
    let mut r = new_number(n);
    r.external_id = Some(external_id.into());
    r.queue_start = entered;
    r
}

#[tokio::test]
async fn c2_c4_c8_c10_external_ids_removal_by_id_queue_start_and_position() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    // No agent: nothing is dialed, so the queue stays as built.
    let run = start(store, &c, world(vec![c.id.clone()], 0, 5), 1.0).await;
    let d = &run.dialer;
    let minutes = |m: i64| start_time() - chrono::Duration::minutes(m);
    let a = d
        .respool(callback(1, "cb-1", Some(minutes(10))))
        .await
        .expect("a");
    let b = d.respool(callback(2, "cb-2", None)).await.expect("b");
    let c3 = d
        .respool(callback(3, "cb-3", Some(minutes(5))))
        .await
        .expect("c");

    // C2: the caller's id is unique in the campaign; a second use is refused by name and
    // adds nothing.
    let err = d
        .respool(callback(4, "cb-1", None))
        .await
        .expect_err("duplicate external id");
    assert!(
        matches!(&err, OpError::Store(StoreError::DuplicateExternalId { record, .. }) if *record == a),
        "{err}"
    );
    assert!(err.to_string().contains("cb-1"), "{err}");
    let reader = SpoolStore::open_read_only(dir.path().join("spool.db")).expect("reader");
    assert_eq!(reader.records("spring").expect("records").len(), 3);
    // ... and finds the record again.
    assert_eq!(
        d.record_by_external_id(c.id.clone(), "cb-2".into())
            .await
            .expect("found")
            .id,
        b
    );
    let err = d
        .record_by_external_id(c.id.clone(), "nobody".into())
        .await
        .expect_err("unknown id");
    assert!(
        matches!(err, OpError::Store(StoreError::UnknownExternalId { .. })),
        "{err}"
    );
    for bad in ["", "line\nbreak"] {
        let err = d.respool(callback(5, bad, None)).await.expect_err("bad id");
        assert!(
            matches!(err, OpError::Store(StoreError::InvalidRecord { .. })),
            "{err}"
        );
    }

    // C8 / C10: the queue is in order of queue start; the position counts who is ahead.
    let ahead = |r: RecordId| async move { d.queue_position(r).await.expect("position").ahead };
    assert_eq!(
        (
            ahead(a.clone()).await,
            ahead(c3.clone()).await,
            ahead(b.clone()).await
        ),
        (0, 1, 2)
    );
    let err = d
        .respool(callback(
            6,
            "cb-6",
            Some(start_time() + chrono::Duration::hours(1)),
        ))
        .await
        .expect_err("a queue start in the future");
    assert!(err.to_string().contains("future"), "{err}");

    // C4: removal by id finishes the record and takes it out of the queue; again is a no-op.
    assert!(d.remove_record(a.clone()).await.expect("removed"));
    assert!(!d.remove_record(a.clone()).await.expect("already removed"));
    assert_eq!(
        d.record(a.clone()).await.expect("a").status,
        dialer_core::RecordStatus::Finished {
            reason: dialer_core::FinishReason::Removed
        }
    );
    let err = d.queue_position(a.clone()).await.expect_err("not queued");
    assert!(
        matches!(err, OpError::Store(StoreError::InvalidRecord { .. })),
        "{err}"
    );
    assert_eq!(ahead(c3.clone()).await, 0);
    let err = d
        .remove_record(RecordId(999_999))
        .await
        .expect_err("unknown");
    assert!(
        matches!(err, OpError::Store(StoreError::UnknownRecord(_))),
        "{err}"
    );

    // C8: the same callback re-entered with its original queue start is first again.
    let again = d
        .respool(callback(1, "cb-1-again", Some(minutes(10))))
        .await
        .expect("re-entered");
    assert_eq!(
        (ahead(again).await, ahead(c3).await, ahead(b).await),
        (0, 1, 2)
    );
    run.stop().await;
}

// ---- E10 / U23 / U24: what a supervisor reads ------------------------------------------------

#[tokio::test]
async fn e10_u23_u24_supervision_agrees_with_the_status_and_the_ledger() {
    use dialer_core::{AgentState, CallOutcome, CallState, RejectReason};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 40);
    let run = start(store, &c, world(vec![c.id.clone()], 3, 13), 40.0).await;
    run.until("an agent on a call", |s| {
        s.engine
            .agents
            .iter()
            .any(|a| matches!(a.state, AgentState::OnCall { .. }))
    })
    .await;
    let sup = run
        .dialer
        .supervision(c.id.clone(), None, 20)
        .await
        .expect("supervision");
    let n = sup.agent_counts;
    assert_eq!(n.logged_in as usize, sup.agents.len());
    assert_eq!(n.logged_in, 3, "{sup:#?}");
    assert_eq!(
        n.available + n.reserved + n.previewing + n.on_call + n.wrap_up + n.paused,
        n.logged_in
    );
    assert!(n.on_call >= 1);
    for a in &sup.agents {
        if let AgentState::OnCall { call } = a.state {
            assert_eq!(a.call, Some(call));
            let call = sup.calls.iter().find(|c| c.call == call).expect("its call");
            assert!(call.linked_at.is_some() && Some(&call.record) == a.record.as_ref());
        }
    }
    let linked =
        |c: &&dialer_core::CallStatus| matches!(c.state, CallState::Linked | CallState::OnHold);
    assert_eq!(
        sup.calls_not_linked as usize,
        sup.calls.iter().filter(|c| !linked(c)).count()
    );
    let waiting: Vec<_> = sup
        .calls
        .iter()
        .filter(|c| matches!(c.state, CallState::Waiting | CallState::Abandoned))
        .collect();
    assert_eq!(sup.callers_waiting as usize, waiting.len());
    assert_eq!(sup.longest_wait_s.is_some(), !waiting.is_empty());
    let err = run
        .dialer
        .supervision(CampaignId::from("nope"), None, 20)
        .await
        .expect_err("unknown campaign");
    assert!(
        matches!(err, OpError::Rejected(RejectReason::UnknownCampaign(_))),
        "{err}"
    );
    // A few simulated minutes more, then the ledger's figures by hand.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let at_stop = run.dialer.clock().now();
    run.stop().await;
    let store = reopen(&dir);
    let stats = store.campaign_stats("spring", None, 20).expect("stats");
    let rows = store.attempts("spring").expect("ledger");
    let talks: Vec<u64> =
        rows.iter()
            .filter_map(|r| match r.outcome {
                Some(CallOutcome::Connected { talk_s })
                | Some(CallOutcome::ShortCall { talk_s }) => Some(u64::from(talk_s)),
                _ => None,
            })
            .collect();
    assert!(!talks.is_empty(), "some conversations ended");
    assert_eq!(stats.attempts as usize, rows.len());
    assert_eq!(stats.conversations as usize, talks.len());
    assert_eq!(stats.talk_s, talks.iter().sum::<u64>());
    assert_eq!(stats.max_talk_s, talks.iter().copied().max().unwrap_or(0));
    let queued: Vec<_> = rows.iter().filter(|r| r.queued_at.is_some()).collect();
    let in_time = queued
        .iter()
        .filter(|r| {
            r.linked_at
                .zip(r.queued_at)
                .is_some_and(|(l, q)| (l - q).num_milliseconds() <= 20_000)
        })
        .count();
    let settled = queued
        .iter()
        .filter(|r| r.linked_at.is_some() || r.outcome.is_some())
        .count();
    assert_eq!(stats.queued as usize, queued.len());
    assert_eq!(stats.answered_in_time as usize, in_time);
    assert_eq!(
        stats.service_level,
        (settled > 0).then(|| in_time as f64 / settled as f64)
    );
    // ECCP `datetime_start`: nothing was placed after the stop.
    let later = store
        .campaign_stats("spring", Some(at_stop + chrono::Duration::minutes(5)), 20)
        .expect("stats since");
    assert_eq!((later.attempts, later.talk_s), (0, 0));
}

// ---- E5: login and logout events -----------------------------------------------------------

#[tokio::test]
async fn e5_login_and_logout_are_events_after_the_session_is_persisted() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 3), 10.0).await;
    let mut events = run.dialer.subscribe();
    let agent = AgentId::from("ana");
    run.dialer
        .login(agent.clone(), vec![c.id.clone()])
        .await
        .expect("login");
    run.dialer
        .agent(agent.clone(), dialer_core::AgentEvent::LoggedOut)
        .await
        .expect("logout");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(DialerEvent::AgentLoggedIn { agent: a, at })) => seen.push(("in", a, at)),
            Ok(Ok(DialerEvent::AgentLoggedOut { agent: a, at })) => seen.push(("out", a, at)),
            Ok(Ok(_)) => {}
            other => panic!("no session event: {other:?}; seen {seen:?}"),
        }
    }
    assert_eq!((seen[0].0, seen[1].0), ("in", "out"));
    assert!(seen.iter().all(|s| s.1 == agent));
    // The spool holds the same session, with the same start and end.
    let reader = SpoolStore::open_read_only(dir.path().join("spool.db")).expect("reader");
    let summary = reader
        .agent_activity(
            "ana",
            start_time() - chrono::Duration::hours(1),
            start_time() + chrono::Duration::days(1),
        )
        .expect("activity");
    assert_eq!(summary.sessions, 1);
    assert_eq!(summary.session_start, Some(seen[0].2));
    assert_eq!(summary.session_end, Some(seen[1].2));
    run.stop().await;
}

// ---- E7 / E17 / U8 / V9: an agent's call, number, record and campaign -------------------------

#[tokio::test]
async fn e7_e17_u8_v9_an_agent_on_a_call_leads_to_its_campaign_call_number_and_record() {
    use dialer_core::AgentState;
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 20);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 17), 40.0).await;
    run.until("an agent on a call", |s| {
        s.engine
            .agents
            .iter()
            .any(|a| matches!(a.state, AgentState::OnCall { .. }))
    })
    .await;
    let sup = run
        .dialer
        .supervision(c.id.clone(), None, 20)
        .await
        .expect("supervision");
    let on_call = sup
        .agents
        .iter()
        .find(|a| matches!(a.state, AgentState::OnCall { .. }))
        .or_else(|| sup.agents.iter().find(|a| a.call.is_some()))
        .expect("the agent is still on its call in the same status");
    // E17: the campaign the agent works.
    assert_eq!(on_call.campaign.as_ref(), Some(&c.id));
    // E7 / V9: its call with the number dialed and the times.
    let call = sup
        .calls
        .iter()
        .find(|k| Some(k.call) == on_call.call)
        .expect("its call");
    assert!(call.linked_at.is_some() && call.placed_at <= call.linked_at.unwrap());
    // U8: the record behind the call, with the number dialed among its numbers and its data.
    let record = run
        .dialer
        .record(on_call.record.clone().expect("its record"))
        .await
        .expect("record");
    assert_eq!(record.id, call.record);
    assert!(
        record
            .numbers
            .iter()
            .any(|n| n.number.e164() == call.number),
        "{record:?} {call:?}"
    );
    assert!(
        record.data.iter().any(|(k, _)| k == "n"),
        "{:?}",
        record.data
    );
    run.stop().await;
}

// ---- A day of a small campaign, checked against what happened ------------------------------

/// Everything subscribers saw, collected by a task until the dialer stops.
fn collect(run: &Run) -> Arc<Mutex<(Vec<DialerEvent>, bool)>> {
    let seen = Arc::new(Mutex::new((Vec::new(), false)));
    let mut rx = run.dialer.subscribe();
    let out = seen.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => out.lock().expect("not poisoned").0.push(e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    out.lock().expect("not poisoned").1 = true
                }
                Err(_) => return,
            }
        }
    });
    seen
}

#[tokio::test]
async fn a_day_of_a_small_campaign_agrees_with_what_happened_in_status_activity_log_and_queue_wait()
{
    use dialer_core::{AgentState, CallId, Event, Progress, ScheduleWhen};
    use std::collections::BTreeMap;
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    // One attempt a record: the list is spent within the day.
    c.max_attempts_per_record = 1;
    c.max_attempts_per_number = 1;
    let store = spool(&dir, &c, 10);
    let run = start(store, &c, world(vec![c.id.clone()], 2, 29), 60.0).await;
    let seen = collect(&run);
    let (ana, ben) = (AgentId::from("agent1"), AgentId::from("agent2"));
    run.until("both agents in", |s| {
        agent_state(s, "agent1").is_some() && agent_state(s, "agent2").is_some()
    })
    .await;
    // Callbacks: one for the same agent, one for anyone, a couple of minutes ahead.
    let soon = |m: i64| ScheduleWhen::At {
        at: run.dialer.clock().now() + chrono::Duration::minutes(m),
    };
    let (same_agent, _) = run
        .dialer
        .schedule_call(
            new_number(51),
            Callback {
                when: soon(2),
                agent: Some(ben.clone()),
                new_phone: None,
                contact_name: None,
                reschedule: false,
            },
        )
        .await
        .expect("same-agent callback");
    let (anyone, _) = run
        .dialer
        .schedule_call(new_number(52), Callback::at(soon(3)))
        .await
        .expect("callback for anyone");
    // A break from the catalogue (it starts after ana's call, if she is on one).
    run.dialer
        .pause(ana.clone(), "coffee")
        .await
        .expect("pause");
    // A hold on the first conversation that lasts long enough.
    let mut held = None;
    for _ in 0..5 {
        let s = run
            .until("a linked call", |s| linked_call(s).is_some())
            .await;
        let call = linked_call(&s).expect("linked").call;
        if run.dialer.hold(call).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if run.dialer.unhold(call).await.is_ok() {
                held = Some(call);
                break;
            }
        }
    }
    let held = held.expect("a call was held and resumed");
    run.until("ana on her break", |s| {
        matches!(agent_state(s, "agent1"), Some(AgentState::Paused { .. }))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    run.dialer
        .agent(ana.clone(), dialer_core::AgentEvent::Ready)
        .await
        .expect("back from the break");
    // The list is spent (the callbacks too): the campaign finishes by itself.
    let mut finished = false;
    for _ in 0..1200 {
        if seen
            .lock()
            .expect("not poisoned")
            .0
            .iter()
            .any(|e| matches!(e, DialerEvent::CampaignFinished { .. }))
        {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(finished, "the campaign did not finish within 60 s");
    // A conclusion with a result code on the first conversation.
    let (events, lagged) = seen.lock().expect("not poisoned").clone();
    assert!(!lagged, "the collector fell behind");
    let progress: Vec<(DateTime<Utc>, CallId, RecordId, Progress)> = events
        .iter()
        .filter_map(|e| match e {
            DialerEvent::Engine {
                event:
                    Event::Progress {
                        at,
                        call,
                        record,
                        progress,
                        ..
                    },
                ..
            } => Some((*at, *call, record.clone(), progress.clone())),
            _ => None,
        })
        .collect();
    let talked = progress
        .iter()
        .find(|p| p.3 == Progress::Hangup)
        .expect("a conversation ended");
    run.dialer
        .conclude(talked.2.clone(), sale("agent1"), Disposition::Done)
        .await
        .expect("concluded");
    run.stop().await;

    // ---- by hand, from what subscribers saw ----
    let store = reopen(&dir);
    let mut last: BTreeMap<CallId, &Progress> = BTreeMap::new();
    let mut per_code: BTreeMap<&str, usize> = BTreeMap::new();
    let mut queued_at: BTreeMap<CallId, DateTime<Utc>> = BTreeMap::new();
    let mut buckets = [0u64; 7];
    for (at, call, _, p) in &progress {
        last.insert(*call, p);
        *per_code.entry(p.code()).or_default() += 1;
        match p {
            Progress::OnQueue => {
                queued_at.insert(*call, *at);
            }
            Progress::Success { .. } => {
                if let Some(q) = queued_at.get(call) {
                    let b = ((at.timestamp_millis() - q.timestamp_millis()) / 5000).clamp(0, 6);
                    buckets[b as usize] += 1;
                }
            }
            _ => {}
        }
    }
    let ended = |codes: &[&str]| last.values().filter(|p| codes.contains(&p.code())).count() as u64;
    let status = store.campaign_status("spring").expect("status");
    assert_eq!(
        status.total, 12,
        "ten records and two callbacks: {status:?}"
    );
    assert_eq!((status.pending, status.in_flight, status.onhold), (0, 0, 0));
    assert_eq!(status.success, ended(&["hangup"]), "{status:?}");
    assert_eq!(status.shortcall, ended(&["short_call"]));
    assert_eq!(status.abandoned, ended(&["abandoned"]));
    assert_eq!(status.noanswer, ended(&["no_answer", "machine"]));
    assert_eq!(status.failure, ended(&["failure", "not_placed"]));
    assert_eq!(status.unknown, ended(&["unknown"]));
    // E9 `datetime_start`: the attempt counts since a moment; the record counts stay.
    assert_eq!(
        store
            .campaign_status_since("spring", Some(start_time()))
            .expect("since the start"),
        status
    );
    let later = store
        .campaign_status_since("spring", Some(start_time() + chrono::Duration::days(1)))
        .expect("since tomorrow");
    assert_eq!(
        (later.total, later.finished),
        (status.total, status.finished)
    );
    assert_eq!(
        later.success + later.shortcall + later.abandoned + later.noanswer + later.failure,
        0
    );
    // The campaign log has every progress report, status by status.
    let log = store
        .campaign_log(
            &c.id,
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("log");
    let mut logged: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &log {
        *logged.entry(e.status.as_str()).or_default() += 1;
    }
    assert_eq!(logged, per_code);
    assert_eq!(
        (per_code.get("on_hold"), per_code.get("off_hold")),
        (Some(&1), Some(&1))
    );
    // The queue-wait histogram, bucket by bucket.
    let wait = store.queue_wait("spring").expect("queue wait");
    assert_eq!(wait.buckets, buckets);
    assert_eq!(wait.abandoned, ended(&["abandoned"]));
    // The hold's length is the time between its two reports.
    let on = progress
        .iter()
        .find(|p| p.1 == held && p.3 == Progress::OnHold)
        .expect("on");
    let off = progress
        .iter()
        .find(|p| p.1 == held && p.3 == Progress::OffHold)
        .expect("off");
    // (The spool keeps whole milliseconds.)
    assert_eq!(
        store.attempt(held).expect("ledger").hold_ms as i64,
        off.0.timestamp_millis() - on.0.timestamp_millis()
    );
    // Each agent's activity: its calls and its breaks as the events told them.
    for agent in [&ana, &ben] {
        let activity = store
            .agent_activity(
                agent.as_str(),
                start_time() - chrono::Duration::hours(1),
                start_time() + chrono::Duration::days(1),
            )
            .expect("activity");
        let linked = events
            .iter()
            .filter(|e| {
                matches!(e, DialerEvent::Engine { event: Event::AgentLinked { agent: a, .. }, .. } if a == agent)
            })
            .count() as u64;
        let calls: u64 = activity.campaigns.iter().map(|c| c.calls).sum();
        assert_eq!(calls, linked, "{agent}: {activity:?}");
        let breaks: Vec<(String, i64)> = events
            .iter()
            .filter_map(|e| match e {
                DialerEvent::BreakEnded {
                    agent: a,
                    break_id,
                    duration_s,
                    ..
                } if a == agent => Some((break_id.clone(), *duration_s)),
                _ => None,
            })
            .collect();
        let stored: Vec<(String, i64)> = activity
            .breaks
            .iter()
            .filter_map(|b| b.duration_s.map(|d| (b.break_id.clone(), d)))
            .collect();
        assert_eq!(stored, breaks, "{agent}");
        assert_eq!(activity.break_s, breaks.iter().map(|b| b.1).sum::<i64>());
    }
    assert!(
        events.iter().any(|e| matches!(e, DialerEvent::BreakEnded { agent, break_id, .. } if *agent == ana && break_id == "coffee")),
        "ana's coffee break began and ended"
    );
    // The callbacks were dialed; the same-agent one only for ben.
    for rec in [&same_agent, &anyone] {
        assert!(
            progress.iter().any(|p| &p.2 == rec),
            "callback {rec} dialed"
        );
    }
    for (_, call, rec, p) in &progress {
        if rec == &same_agent {
            if let Progress::Success { agent } = p {
                assert_eq!(agent, &ben, "call {call}");
            }
        }
    }
    // The conclusion is with the record, tied to its attempt.
    let rows = store.conclusions(&talked.2).expect("conclusions");
    assert_eq!(
        rows.last().and_then(|r| r.result_code.as_deref()),
        Some("SALE")
    );
}

// ---- E8: session inactivity timeout -------------------------------------------------------

#[tokio::test]
async fn e8_an_agent_that_stops_pinging_is_logged_out_its_session_closed_and_announced() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 3), 20.0).await;
    let mut events = run.dialer.subscribe();
    let (ana, bo) = (AgentId::from("ana"), AgentId::from("bo"));
    for a in [&ana, &bo] {
        run.dialer
            .agent(
                a.clone(),
                dialer_core::AgentEvent::LoggedIn {
                    campaigns: vec![c.id.clone()],
                    inactivity_timeout_s: Some(120),
                },
            )
            .await
            .expect("login");
    }
    // Bo's desktop keeps pinging; Ana's goes silent.
    let pinger = {
        let dialer = run.dialer.clone();
        let bo = bo.clone();
        tokio::spawn(async move {
            // Every 50 simulated seconds (2.5 s of real time at 20x).
            loop {
                tokio::time::sleep(Duration::from_millis(2500)).await;
                if dialer
                    .agent(bo.clone(), dialer_core::AgentEvent::Ping)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    let s = run
        .until("ana is logged out", |s| {
            agent_state(s, "ana") == Some(dialer_core::AgentState::LoggedOut)
        })
        .await;
    assert_eq!(agent_state(&s, "bo"), Some(dialer_core::AgentState::Ready));
    let (mut timed_out, mut logged_out) = (None, None);
    while timed_out.is_none() || logged_out.is_none() {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Ok(DialerEvent::Engine {
                event:
                    dialer_core::Event::AgentTimedOut {
                        agent,
                        timeout_s,
                        at,
                    },
                ..
            })) if agent == ana => timed_out = Some((timeout_s, at)),
            Ok(Ok(DialerEvent::AgentLoggedOut { agent, at })) if agent == ana => {
                logged_out = Some(at)
            }
            Ok(Ok(_)) => {}
            other => panic!("no timeout events: {other:?}"),
        }
    }
    let (timeout_s, at) = timed_out.expect("timed out");
    assert_eq!(timeout_s, 120);
    // The session ends when the timeout ran out, in the spool as in the event.
    let activity = run
        .dialer
        .agent_activity(
            ana.clone(),
            start_time() - chrono::Duration::hours(1),
            start_time() + chrono::Duration::days(1),
        )
        .await
        .expect("activity");
    assert_eq!(activity.session_end, logged_out);
    // Closed as the dialer task applied the timeout (the clock runs on between the engine's
    // decision and the spool's write: a few simulated milliseconds).
    let ended = activity.session_end.expect("session end");
    assert!(
        ended >= at && ended - at < chrono::Duration::seconds(5),
        "timed out at {at}, session closed at {ended}"
    );
    let started = activity.session_start.expect("session start");
    assert!(
        at - started >= chrono::Duration::seconds(120),
        "{started} {at}"
    );
    // A ping after the logout is refused; the agent must log in again.
    let e = run
        .dialer
        .agent(ana.clone(), dialer_core::AgentEvent::Ping)
        .await
        .expect_err("logged out");
    assert!(
        matches!(e, OpError::Rejected(dialer_core::RejectReason::AgentLoggedOut(ref a)) if *a == ana),
        "{e}"
    );
    // A zero timeout is refused with its reason, and the agent stays logged out.
    let e = run
        .dialer
        .agent(
            ana.clone(),
            dialer_core::AgentEvent::LoggedIn {
                campaigns: vec![c.id.clone()],
                inactivity_timeout_s: Some(0),
            },
        )
        .await
        .expect_err("zero timeout");
    assert!(e.to_string().contains("at least 1 second"), "{e}");
    pinger.abort();
    run.stop().await;
}

// ---- E16: callbacks -----------------------------------------------------------------------

/// The schedule rule a refusal names, whichever path (engine or spool) applied it.
fn schedule_refusal(e: &OpError) -> Option<dialer_core::ScheduleError> {
    use dialer_core::{DispositionError, RejectReason, ScheduleError};
    match e {
        OpError::Rejected(RejectReason::InvalidSchedule(s))
        | OpError::Store(StoreError::InvalidSchedule(s))
        | OpError::Store(StoreError::Disposition {
            source: DispositionError::Schedule(s),
            ..
        }) => Some(s.clone()),
        OpError::Store(StoreError::DuplicateSchedule { .. }) => Some(ScheduleError::Duplicate),
        _ => None,
    }
}

fn callback_at(hours: i64) -> dialer_core::Schedule {
    dialer_core::Schedule {
        id: dialer_core::ScheduleId(0),
        when: dialer_core::ScheduleWhen::At {
            at: start_time() + chrono::Duration::hours(hours),
        },
        agent: None,
        number: None,
    }
}

#[tokio::test]
async fn e16d_e16e_an_agent_disposition_and_the_schedule_operation_apply_the_same_callback_rules() {
    use dialer_core::ScheduleError as E;
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.end_date = Some((start_time() + chrono::Duration::days(3)).date_naive());
    let store = spool(&dir, &c, 1);
    // No agent and real time: nothing is dialed, "in an hour" stays ahead.
    let run = start(store, &c, world(vec![c.id.clone()], 0, 13), 1.0).await;
    let record = RecordId(1);
    let number = || {
        spool_store::NewRecord::new(
            "spring",
            vec![dialer_core::PhoneNumber::parse("2125551000", "US").expect("number")],
        )
    };
    let dispose = |schedule, reschedule: bool| {
        let d = if reschedule {
            Disposition::Reschedule {
                schedule,
                campaign: None,
                contact_name: None,
            }
        } else {
            Disposition::Schedule {
                schedule,
                campaign: None,
                contact_name: None,
            }
        };
        run.dialer.dispose(None, record.clone(), d)
    };
    dispose(callback_at(1), false).await.expect("a callback");
    let booked = run.dialer.record(record.clone()).await.expect("record");
    // The same callback again, by the agent and by the operation: duplicate (ECCP 417).
    let e = dispose(callback_at(1), false).await.expect_err("duplicate");
    assert_eq!(schedule_refusal(&e), Some(E::Duplicate), "{e}");
    let e = run
        .dialer
        .schedule_call(number(), Callback::at(callback_at(1).when))
        .await
        .expect_err("duplicate");
    assert_eq!(schedule_refusal(&e), Some(E::Duplicate), "{e}");
    // Another time does not silently replace it, on either path.
    let e = dispose(callback_at(2), false).await.expect_err("already");
    assert_eq!(schedule_refusal(&e), Some(E::AlreadyScheduled), "{e}");
    let e = run
        .dialer
        .schedule_call(number(), Callback::at(callback_at(2).when))
        .await
        .expect_err("already");
    assert_eq!(schedule_refusal(&e), Some(E::AlreadyScheduled), "{e}");
    // In the past, or after the campaign's last day: refused on both paths.
    for (hours, what) in [(-1, "in the past"), (24 * 5, "after the campaign")] {
        let e = dispose(callback_at(hours), true).await.expect_err(what);
        let rule = schedule_refusal(&e);
        assert!(
            matches!(rule, Some(E::InPast { .. } | E::AfterCampaign { .. })),
            "{what}: {e}"
        );
        let e = run
            .dialer
            .schedule_call(
                number(),
                Callback {
                    reschedule: true,
                    ..Callback::at(callback_at(hours).when)
                },
            )
            .await
            .expect_err(what);
        assert_eq!(schedule_refusal(&e), rule, "{what}: {e}");
    }
    assert_eq!(
        run.dialer.record(record.clone()).await.expect("record"),
        booked,
        "no refusal changed the record"
    );
    // A reschedule moves it.
    run.dialer
        .schedule_call(
            number(),
            Callback {
                reschedule: true,
                ..Callback::at(callback_at(2).when)
            },
        )
        .await
        .expect("moved");
    let moved = run.dialer.record(record.clone()).await.expect("record");
    assert_eq!(
        moved.schedule.map(|s| s.when),
        Some(callback_at(2).when),
        "the reschedule moved the callback"
    );
    run.stop().await;
}

#[tokio::test]
async fn e16f_new_contact_name_overwrites_the_first_attribute_by_disposition_and_by_operation() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    // The base gives record 1 the data `n=0`.
    let store = spool(&dir, &c, 1);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 13), 1.0).await;
    run.dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Schedule {
                schedule: callback_at(1),
                campaign: None,
                contact_name: Some("Ana Pérez".into()),
            },
        )
        .await
        .expect("callback with a new name");
    let rec = run.dialer.record(RecordId(1)).await.expect("record");
    assert_eq!(rec.data, vec![("n".to_owned(), "Ana Pérez".to_owned())]);
    let (fresh, _) = run
        .dialer
        .schedule_call(
            new_number(7),
            Callback {
                contact_name: Some("Bo".into()),
                ..Callback::at(callback_at(1).when)
            },
        )
        .await
        .expect("a new callback record with a name");
    let rec = run.dialer.record(fresh).await.expect("record");
    assert_eq!(rec.data, vec![("name".to_owned(), "Bo".to_owned())]);
    // A name that would break a line is refused, and nothing changes.
    let before = run.dialer.record(RecordId(1)).await.expect("record");
    let e = run
        .dialer
        .dispose(
            None,
            RecordId(1),
            Disposition::Reschedule {
                schedule: callback_at(3),
                campaign: None,
                contact_name: Some("Eve\r\nAction: Originate".into()),
            },
        )
        .await
        .expect_err("control characters");
    assert!(
        matches!(
            schedule_refusal(&e),
            Some(dialer_core::ScheduleError::BadContactName { .. })
        ),
        "{e}"
    );
    assert_eq!(
        run.dialer.record(RecordId(1)).await.expect("record"),
        before
    );
    run.stop().await;
}

#[tokio::test]
async fn e16a_a_range_callback_that_ends_undialed_returns_its_record_to_normal_dialing() {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    // The callback waits for its agent, who never comes: only the end of its range frees it.
    c.same_agent_callbacks = dialer_core::SameAgentCallbacks::WaitForAgent;
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 21), 100.0).await;
    // 14:00 UTC is 10:00 in New York: the range is 10:00-10:20 today, callee local time.
    let today = (start_time() - chrono::Duration::hours(4)).date_naive();
    let t = |h, m| chrono::NaiveTime::from_hms_opt(h, m, 0).expect("time");
    let (record, _) = run
        .dialer
        .schedule_call(
            new_number(3),
            Callback {
                agent: Some(AgentId::from("ghost")),
                ..Callback::at(dialer_core::ScheduleWhen::Range {
                    start_date: today,
                    end_date: today,
                    start_time: t(10, 0),
                    end_time: t(10, 20),
                })
            },
        )
        .await
        .expect("callback");
    run.until("the record is dialed after its range ended", |s| {
        s.counters.originates > 0
    })
    .await;
    let reader = SpoolStore::open_read_only(dir.path().join("spool.db")).expect("reader");
    let attempts = reader.attempts("spring").expect("attempts");
    let first = attempts.first().expect("an attempt");
    assert_eq!(first.record, record);
    let range_end = start_time() + chrono::Duration::minutes(20);
    assert!(
        first.started_at >= range_end,
        "dialed at {}, before its range ended at {range_end}",
        first.started_at
    );
    assert_ne!(
        first.agent.as_deref(),
        Some("ghost"),
        "dialed for anyone, not for the ghost"
    );
    let rec = run.dialer.record(record).await.expect("record");
    assert_eq!(rec.schedule, None, "the range that ended was dropped");
    run.stop().await;
}
