//! A record's own life through the `Dialer` handle (issue 11): its UCCX status (C1), the
//! changes an outside system may ask for (C3), with a real SQLite spool file and the
//! simulated telephone system on an accelerated clock. Each test is named after its row of
//! `docs/seed-operations.md`.

mod common;

use common::*;
use dialer_core::{AgentId, CallState, RecordId, RecordStatus, RejectReason};
use dialer_runtime::OpError;
use spool_store::{CallbackStatus, RecordChange, SpoolStore, StoreError};
use std::time::Duration;

/// The records the ledger has an attempt for.
fn dialed(dir: &tempfile::TempDir, campaign: &str) -> Vec<RecordId> {
    let reader = SpoolStore::open_read_only(path(dir)).expect("reader");
    let mut ids: Vec<RecordId> = reader
        .attempts(campaign)
        .expect("ledger")
        .into_iter()
        .map(|a| a.record)
        .collect();
    ids.dedup();
    ids
}

#[tokio::test]
async fn c1_an_inactive_record_is_never_dialed_until_it_is_reactivated() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let mut store = spool(&dir, &c, 4);
    let inactive = RecordId(2);
    // Deactivated before the dialer starts: the spool never offers it.
    store
        .change_record(&inactive, &RecordChange::Deactivate, start_time())
        .expect("deactivated");
    let run = start(store, &c, world(vec![c.id.clone()], 2, 31), 100.0).await;
    let d = &run.dialer;
    let view = d.record_status(inactive.clone()).await.expect("status");
    assert_eq!(
        view.status,
        CallbackStatus::Inactive {
            since: start_time()
        }
    );
    // Every other record is dialed; the inactive one is not touched.
    let others = [RecordId(1), RecordId(3), RecordId(4)];
    for _ in 0..800 {
        let done = dialed(&dir, "spring");
        if others.iter().all(|r| done.contains(r)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let done = dialed(&dir, "spring");
    assert!(others.iter().all(|r| done.contains(r)), "{done:?}");
    assert!(
        !done.contains(&inactive),
        "an inactive record is never dialed"
    );
    let rec = d.record(inactive.clone()).await.expect("record");
    assert_eq!(rec.attempts, 0);
    assert!(matches!(rec.status, RecordStatus::Inactive { .. }));
    // The campaign's list is not spent while a record may come back.
    let reader = SpoolStore::open_read_only(path(&dir)).expect("reader");
    assert!(!reader.campaign_spent("spring").expect("spent?"));
    assert_eq!(
        reader.campaign_status("spring").expect("counters").inactive,
        1
    );

    // Reactivated: pending again, as it was, then dialed.
    let view = d
        .change_record(inactive.clone(), RecordChange::Reactivate)
        .await
        .expect("reactivated");
    assert!(
        matches!(
            view.status,
            CallbackStatus::New
                | CallbackStatus::Processing { .. }
                | CallbackStatus::DialingTarget { .. }
        ),
        "{view:?}"
    );
    for _ in 0..800 {
        if dialed(&dir, "spring").contains(&inactive) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        dialed(&dir, "spring").contains(&inactive),
        "dialed once active"
    );
    run.stop().await;
}

#[tokio::test]
async fn c1_status_follows_the_call_in_progress_and_a_stopped_spool_answers_from_the_ledger() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 12);
    // Before anything is dialed: NEW, from a running dialer and from the spool alone.
    assert_eq!(
        store.record_status(&RecordId(1)).expect("status").status,
        CallbackStatus::New
    );
    let run = start(store, &c, world(vec![c.id.clone()], 1, 32), 20.0).await;
    let d = &run.dialer;
    // A call linked to the agent: its record is AGENTACKNOWLEDGED with that call and agent,
    // and the ledger (read without the dialer) says the same.
    let s = run
        .until("a call linked", |s| {
            s.engine.calls.iter().any(|c| c.state == CallState::Linked)
        })
        .await;
    let call = s
        .engine
        .calls
        .iter()
        .find(|c| c.state == CallState::Linked)
        .expect("linked")
        .clone();
    let view = d.record_status(call.record.clone()).await.expect("status");
    let agent = call.agent.as_ref().map(|a| a.to_string());
    assert_eq!(
        view.status,
        CallbackStatus::AgentAcknowledged {
            call: call.call,
            agent: agent.clone()
        }
    );
    let reader = SpoolStore::open_read_only(path(&dir)).expect("reader");
    assert_eq!(
        reader
            .record_status(&call.record)
            .expect("from the ledger")
            .status,
        view.status
    );
    // Another record is waiting (NEW, or RETRY after an attempt) or on its own call; an
    // unknown one is named in the refusal.
    let waiting = (1..=12)
        .map(RecordId)
        .find(|r| *r != call.record)
        .expect("another record");
    let w = d.record_status(waiting.clone()).await.expect("status");
    assert!(
        matches!(
            w.status,
            CallbackStatus::New
                | CallbackStatus::Retry { .. }
                | CallbackStatus::AgentAbandoned { .. }
                | CallbackStatus::Processing { .. }
                | CallbackStatus::DialingTarget { .. }
                | CallbackStatus::Queued { .. }
        ),
        "{w:?}"
    );
    let err = d
        .record_status(RecordId(999_999))
        .await
        .expect_err("unknown");
    assert!(
        matches!(
            err,
            OpError::Store(StoreError::UnknownRecord(RecordId(999_999)))
        ),
        "{err}"
    );
    assert!(err.to_string().contains("999999"), "{err}");
    run.until("the call ended", |s| {
        s.engine.calls.iter().all(|c| c.call != call.call)
    })
    .await;
    run.stop().await;
    // The finished conversation: COMPLETED (or RETRY if the callee hung up too early to count).
    let store = SpoolStore::open_at(path(&dir), start_time())
        .expect("reopen")
        .0;
    let after = store.record_status(&call.record).expect("status").status;
    let row = store.attempt(call.call).expect("ledger row");
    match row.outcome {
        Some(dialer_core::CallOutcome::Connected { .. }) => {
            assert_eq!(after, CallbackStatus::Completed)
        }
        other => assert!(
            matches!(after, CallbackStatus::Retry { .. }),
            "{other:?} → {after:?}"
        ),
    }
}

#[tokio::test]
async fn c3_changes_that_cannot_apply_are_refused_with_their_reason_and_change_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 4);
    // One agent, slow clock: a call stays in flight long enough to be refused.
    let run = start(store, &c, world(vec![c.id.clone()], 1, 33), 5.0).await;
    let d = &run.dialer;
    let before = |r: u64| async move { d.record(RecordId(r)).await.expect("record") };

    // Unknown record: named.
    let err = d
        .change_record(RecordId(999_999), RecordChange::Deactivate)
        .await
        .expect_err("unknown record");
    assert!(
        matches!(
            err,
            OpError::Store(StoreError::UnknownRecord(RecordId(999_999)))
        ),
        "{err}"
    );

    // In flight: refused by the engine, nothing changed.
    let s = run
        .until("a call in flight", |s| !s.engine.calls.is_empty())
        .await;
    let busy = s.engine.calls[0].record.clone();
    let was = d.record(busy.clone()).await.expect("record");
    for change in [
        RecordChange::Deactivate,
        RecordChange::Assign {
            agent: Some("agent1".into()),
        },
    ] {
        let err = d
            .change_record(busy.clone(), change)
            .await
            .expect_err("in flight");
        assert!(
            matches!(&err, OpError::Rejected(RejectReason::RecordInFlight(r)) if *r == busy)
                || matches!(&err, OpError::Store(StoreError::RecordInFlight(r)) if *r == busy),
            "{err}"
        );
    }
    let now = d.record(busy.clone()).await.expect("record");
    assert_eq!(now.owner_agent, was.owner_agent);
    assert!(!matches!(now.status, RecordStatus::Inactive { .. }));

    // A pending record: reactivating it does not apply; an unknown agent is named.
    let pending = (1..=4)
        .map(RecordId)
        .rev()
        .find(|r| *r != busy)
        .expect("another record");
    let was = before(pending.0).await;
    let err = d
        .change_record(pending.clone(), RecordChange::Reactivate)
        .await
        .expect_err("not inactive");
    assert!(
        matches!(err, OpError::Store(StoreError::RecordState { .. })),
        "{err}"
    );
    let err = d
        .change_record(
            pending.clone(),
            RecordChange::Assign {
                agent: Some("nobody".into()),
            },
        )
        .await
        .expect_err("unknown agent");
    assert!(
        matches!(&err, OpError::Store(StoreError::UnknownAgent(a)) if a == "nobody"),
        "{err}"
    );
    assert!(err.to_string().contains("nobody"), "{err}");
    assert_eq!(before(pending.0).await, was, "nothing changed");

    // Deactivated, then deactivating again does not apply.
    let view = d
        .change_record(pending.clone(), RecordChange::Deactivate)
        .await
        .expect("deactivated");
    assert!(
        matches!(view.status, CallbackStatus::Inactive { .. }),
        "{view:?}"
    );
    let was = before(pending.0).await;
    let err = d
        .change_record(pending.clone(), RecordChange::Deactivate)
        .await
        .expect_err("already inactive");
    assert!(
        matches!(err, OpError::Store(StoreError::RecordState { .. })),
        "{err}"
    );
    assert_eq!(before(pending.0).await, was, "nothing changed");

    // Assigned to an agent the spool knows (the simulated agent logged in): a same-agent
    // record, still inactive; then back to anyone.
    let view = d
        .change_record(
            pending.clone(),
            RecordChange::Assign {
                agent: Some("agent1".into()),
            },
        )
        .await
        .expect("assigned");
    assert_eq!(view.agent.as_deref(), Some("agent1"));
    assert_eq!(
        before(pending.0).await.owner_agent,
        Some(AgentId::from("agent1"))
    );
    let view = d
        .change_record(pending.clone(), RecordChange::Assign { agent: None })
        .await
        .expect("anyone");
    assert_eq!(view.agent, None);

    // A finished record changes no more.
    assert!(d.remove_record(pending.clone()).await.expect("removed"));
    let was = before(pending.0).await;
    let err = d
        .change_record(pending.clone(), RecordChange::Reactivate)
        .await
        .expect_err("finished");
    assert!(
        matches!(
            &err,
            OpError::Store(StoreError::RecordFinished { record, .. }) if *record == pending
        ),
        "{err}"
    );
    assert!(err.to_string().contains("removed"), "{err}");
    assert_eq!(before(pending.0).await, was, "nothing changed");
    assert_eq!(
        d.record_status(pending.clone())
            .await
            .expect("status")
            .status,
        CallbackStatus::Removed
    );
    run.stop().await;
}

#[tokio::test]
async fn u17_blacklist_entries_keep_name_company_and_username_through_the_handle() {
    use dialer_core::{BlacklistEntry, BlacklistScope, Direction};
    use spool_store::{DncDetails, DncEntry, DncFilter};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 0, 34), 1.0).await;
    let d = &run.dialer;
    let entry = |number: &str, scope: BlacklistScope, name: Option<&str>| DncEntry {
        entry: BlacklistEntry {
            number: number.into(),
            scope,
            expires_at: None,
            direction: Direction::Outbound,
        },
        details: DncDetails {
            name: name.map(str::to_owned),
            company: Some("ACME".into()),
            username: Some("supervisor1".into()),
        },
    };
    // A bulk with one bad entry adds none, and names the field.
    let mut bad = entry("+12125550111", BlacklistScope::All, Some("Ana"));
    bad.details.company = Some("line\nbreak".into());
    let err = d
        .blacklist_add_entries(vec![
            entry("+12125550110", BlacklistScope::All, Some("Luis")),
            bad,
        ])
        .await
        .expect_err("a control character");
    assert!(
        matches!(&err, OpError::Store(StoreError::InvalidField { field, .. }) if field == "company"),
        "{err}"
    );
    assert!(d
        .blacklist_entries(DncFilter::default())
        .await
        .expect("list")
        .is_empty());
    // A bulk: both kept with their fields, listed by number, and in force.
    d.blacklist_add_entries(vec![
        entry("+12125550111", BlacklistScope::All, Some("Ana")),
        entry(
            "+12125550110",
            BlacklistScope::Campaign(c.id.clone()),
            Some("Luis"),
        ),
    ])
    .await
    .expect("added");
    let rows = d
        .blacklist_entries(DncFilter::default())
        .await
        .expect("list");
    type Fields<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let names: Vec<Fields> = rows
        .iter()
        .map(|r| {
            (
                r.entry.entry.number.as_str(),
                r.entry.details.name.as_deref(),
                r.entry.details.company.as_deref(),
                r.entry.details.username.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![
            (
                "+12125550110",
                Some("Luis"),
                Some("ACME"),
                Some("supervisor1")
            ),
            (
                "+12125550111",
                Some("Ana"),
                Some("ACME"),
                Some("supervisor1")
            ),
        ]
    );
    // Re-adding without a name keeps the name; a new username replaces the old one.
    let mut again = entry("+12125550111", BlacklistScope::All, None);
    again.details.username = Some("supervisor2".into());
    d.blacklist_add_entries(vec![again]).await.expect("again");
    let one = d
        .blacklist_entries(DncFilter {
            number: Some("+12125550111".into()),
            ..DncFilter::default()
        })
        .await
        .expect("one");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].entry.details.name.as_deref(), Some("Ana"));
    assert_eq!(
        one[0].entry.details.username.as_deref(),
        Some("supervisor2")
    );
    run.stop().await;
    // Persisted, and the entries are in force for the engine after a restart.
    let store = SpoolStore::open_at(path(&dir), start_time())
        .expect("reopen")
        .0;
    assert!(store
        .is_blacklisted("+12125550111", "spring", start_time())
        .expect("check"));
    let rows = store
        .blacklist_entries(&DncFilter {
            scope: Some(BlacklistScope::Campaign(c.id.clone())),
            ..DncFilter::default()
        })
        .expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].entry.details.name.as_deref(), Some("Luis"));
}

#[tokio::test]
async fn e3_e12_e19_unique_id_channel_and_queue_reach_the_ledger_log_and_progress_events() {
    use dialer_core::{Event, Progress};
    use dialer_runtime::DialerEvent;
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.routing.queue = "sales".into();
    let store = spool(&dir, &c, 12);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 35), 20.0).await;
    let mut events = run.dialer.subscribe();
    // A call taken by the agent: its progress events carry the simulator's identity.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let linked = loop {
        let ev = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("a call linked within 20 s")
            .expect("events");
        if let DialerEvent::Engine {
            event: Event::Progress { call, progress, .. },
            call: identity,
        } = ev
        {
            seen.push((call, progress.clone(), identity.clone()));
            if matches!(progress, Progress::Success { .. }) {
                break call;
            }
        }
    };
    let identity = seen
        .iter()
        .rev()
        .find(|(c, ..)| *c == linked)
        .and_then(|(_, _, i)| i.clone())
        .expect("the linked call's progress carries its identity");
    assert_eq!(identity.unique_id, Some(format!("sim-{}", linked.0)));
    assert_eq!(identity.queue.as_deref(), Some("sales"));
    let channel = identity.channel.clone().expect("channel");
    assert!(
        channel.starts_with("SIM/") && channel.ends_with(&format!("-{}", linked.0)),
        "{channel}"
    );
    run.until("the call ended", |s| {
        s.engine.calls.iter().all(|c| c.call != linked)
    })
    .await;
    run.stop().await;
    // The ledger (getcallinfo) and every log entry after each fact was reported carry it.
    let store = SpoolStore::open_at(path(&dir), start_time())
        .expect("reopen")
        .0;
    let row = store.attempt(linked).expect("ledger row");
    assert_eq!(row.unique_id, identity.unique_id);
    assert_eq!(row.channel.as_deref(), Some(channel.as_str()));
    assert_eq!(row.queue.as_deref(), Some("sales"));
    let log = store
        .campaign_log(
            &c.id,
            start_time(),
            start_time() + chrono::Duration::days(1),
        )
        .expect("log");
    let mine: Vec<_> = log.iter().filter(|e| e.call == Some(linked)).collect();
    let entry = |status: &str| {
        mine.iter()
            .find(|e| e.status == status)
            .unwrap_or_else(|| panic!("no {status} entry: {mine:#?}"))
    };
    let success = entry("success");
    assert_eq!(success.unique_id, identity.unique_id);
    assert_eq!(success.channel.as_deref(), Some(channel.as_str()));
    assert_eq!(success.queue.as_deref(), Some("sales"));
    let placing = entry("placing");
    assert_eq!(
        placing.unique_id, None,
        "not known when the call was placed"
    );
}

#[tokio::test]
async fn v1_a_manual_dial_of_a_number_already_queued_for_the_agent_is_refused() {
    use dialer_core::{PhoneNumber, TaskKind, TaskTiming};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    // No agent on the floor: the manual dial waits for its agent.
    let run = start(store, &c, world(vec![c.id.clone()], 0, 36), 1.0).await;
    let d = &run.dialer;
    let manual = |agent: &str| {
        let mut n = spool_store::NewRecord::new(
            "spring",
            vec![PhoneNumber::parse("2125550177", "US").expect("number")],
        );
        n.owner_agent = Some(AgentId::from(agent));
        n
    };
    let (record, _) = d
        .add_task(manual("agent1"), TaskTiming::WhenFree, TaskKind::Manual)
        .await
        .expect("queued");
    let was = d.record(record.clone()).await.expect("record");
    let err = d
        .add_task(manual("agent1"), TaskTiming::WhenFree, TaskKind::Manual)
        .await
        .expect_err("already queued for agent1");
    assert!(
        matches!(
            &err,
            OpError::Store(StoreError::ManualDialQueued { record: r, agent, .. })
                if *r == record && agent == "agent1"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("+12125550177"), "{err}");
    assert_eq!(
        d.record(record.clone()).await.expect("record"),
        was,
        "nothing changed"
    );
    // An inactive record is not dialed by hand either.
    d.change_record(record.clone(), RecordChange::Deactivate)
        .await
        .expect("deactivated");
    let err = d
        .add_task(manual("agent2"), TaskTiming::WhenFree, TaskKind::Manual)
        .await
        .expect_err("inactive");
    assert!(
        matches!(err, OpError::Store(StoreError::RecordState { .. })),
        "{err}"
    );
    run.stop().await;
}

/// The Originates the dialer sent for `record`.
fn originates_of(run: &Run, record: &RecordId) -> Vec<dialer_core::OriginateIntent> {
    run.sent
        .lock()
        .expect("lock")
        .iter()
        .filter_map(|c| match c {
            dialer_runtime::TelephonyCommand::Originate(i) if i.record == *record => {
                Some(i.clone())
            }
            _ => None,
        })
        .collect()
}

/// Waits (bounded, real time) for an Originate of `record`.
async fn originate_of(run: &Run, record: &RecordId) -> dialer_core::OriginateIntent {
    for _ in 0..800 {
        if let Some(i) = originates_of(run, record).pop() {
            return i;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no Originate for record {record} within 20 s");
}

fn us(n: &str) -> dialer_core::PhoneNumber {
    dialer_core::PhoneNumber::parse(n, "US").expect("number")
}

fn options(
    caller_id: Option<&str>,
    dial_prefix: Option<&str>,
    order: dialer_core::DialOrder,
    start: dialer_core::ManualStart,
) -> dialer_core::CallOptions {
    dialer_core::CallOptions {
        caller_id: caller_id.map(str::to_owned),
        dial_prefix: dial_prefix.map(str::to_owned),
        order,
        start,
    }
}

#[tokio::test]
async fn u1_v1_a_manual_dial_goes_out_for_its_agent_with_its_own_caller_id_prefix_and_leg_order() {
    use dialer_core::{DialOrder, ManualStart};
    use spool_store::{ManualDial, ManualTarget, NewRecord};
    let dir = tempfile::tempdir().expect("dir");
    let mut c = campaign("spring");
    c.caller_id = "\"Spring\" <2125550100>".into();
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 41), 50.0).await;
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let d = &run.dialer;
    let mut new = NewRecord::new("spring", vec![us("2125550188")]);
    new.data = vec![("name".into(), "Ana".into())];
    let (record, _task) = d
        .manual_dial(ManualDial {
            campaign: c.id.clone(),
            agent: AgentId::from("agent1"),
            target: ManualTarget::Number(new),
            call: options(
                Some("\"Desk 7\" <2125550199>"),
                Some("88"),
                DialOrder::AgentFirst,
                ManualStart::DialNow,
            ),
        })
        .await
        .expect("queued");
    let sent = originate_of(&run, &record).await;
    assert_eq!(sent.caller_id, "\"Desk 7\" <2125550199>");
    assert_eq!(
        sent.dial_string,
        format!("88{}", c.routing.dial_string(&us("2125550188")))
    );
    assert_eq!(sent.agent, Some(AgentId::from("agent1")));
    assert_eq!(sent.order, DialOrder::AgentFirst);
    assert!(
        !sent.amd,
        "the agent is on the line before the callee: no AMD"
    );
    assert!(sent.variables.contains(&("name".into(), "Ana".into())));
    // The campaign's own calls keep the campaign's caller id, prefix and order.
    let lead = d
        .add_lead(
            NewRecord::new("spring", vec![us("2125550177")]),
            spool_store::DncChecks::default(),
        )
        .await
        .expect("lead");
    let plain = originate_of(&run, &lead).await;
    assert_eq!(plain.caller_id, c.caller_id);
    assert_eq!(plain.dial_string, c.routing.dial_string(&us("2125550177")));
    assert_eq!(plain.order, DialOrder::CalleeFirst);
    run.stop().await;
    // The task with its options was persisted with the record, and is gone once dialed.
    let attempts = SpoolStore::open_read_only(path(&dir))
        .expect("reader")
        .attempts("spring")
        .expect("ledger");
    let first = attempts
        .iter()
        .find(|a| a.record == record)
        .expect("the manual call is in the ledger");
    assert_eq!(first.agent.as_deref(), Some("agent1"));
}

#[tokio::test]
async fn v1_a_manual_dial_by_record_dials_the_alternative_number_asked_for_its_agent() {
    use dialer_core::{DialOrder, ManualStart};
    use spool_store::{ManualDial, ManualTarget, NewRecord};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 42), 50.0).await;
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let d = &run.dialer;
    // Owned by an agent who is not here: the pacer holds it for them.
    let mut lead = NewRecord::new("spring", vec![us("2125550160"), us("2125550161")]);
    lead.owner_agent = Some(AgentId::from("agent9"));
    let record = d
        .add_lead(lead, spool_store::DncChecks::default())
        .await
        .expect("lead");
    let dial = |number: &str| ManualDial {
        campaign: c.id.clone(),
        agent: AgentId::from("agent1"),
        target: ManualTarget::Record {
            record: record.clone(),
            number: Some(us(number)),
        },
        call: options(None, None, DialOrder::CalleeFirst, ManualStart::DialNow),
    };
    // A number that is not the record's is refused, nothing changed.
    let was = d.record(record.clone()).await.expect("record");
    let e = d
        .manual_dial(dial("2125550199"))
        .await
        .expect_err("not its number");
    assert!(
        matches!(&e, OpError::Store(StoreError::RecordState { record: r, problem }) if *r == record && problem.contains("+12125550199")),
        "{e}"
    );
    assert_eq!(d.record(record.clone()).await.expect("record"), was);
    d.manual_dial(dial("2125550161")).await.expect("queued");
    let sent = originate_of(&run, &record).await;
    assert_eq!(
        sent.number.e164(),
        "+12125550161",
        "the alternative asked for"
    );
    assert_eq!(
        sent.agent,
        Some(AgentId::from("agent1")),
        "for the asking agent"
    );
    run.stop().await;
}

#[tokio::test]
async fn v1_a_manual_dial_with_preview_is_offered_to_its_agent_and_dialed_only_when_asked() {
    use dialer_core::{AgentState, Command, DialOrder, ManualStart};
    use spool_store::{ManualDial, ManualTarget, NewRecord};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 43), 50.0).await;
    run.until("agent1 logged in", |s| {
        agent_state(s, "agent1") == Some(AgentState::Ready)
    })
    .await;
    let d = &run.dialer;
    let agent = AgentId::from("agent1");
    let preview = |n: &str| ManualDial {
        campaign: c.id.clone(),
        agent: agent.clone(),
        target: ManualTarget::Number(NewRecord::new("spring", vec![us(n)])),
        call: options(
            Some("2125550142"),
            None,
            DialOrder::CalleeFirst,
            ManualStart::Preview,
        ),
    };
    // Skipped: the manual dial is dropped, nothing dialed, the record stays.
    let (skipped, _) = d.manual_dial(preview("2125550150")).await.expect("queued");
    run.until("offered", |s| {
        matches!(agent_state(s, "agent1"), Some(AgentState::Previewing { record, .. }) if record == skipped)
    })
    .await;
    assert!(
        originates_of(&run, &skipped).is_empty(),
        "nothing dialed on offer"
    );
    d.command(Command::PreviewSkip {
        agent: agent.clone(),
        record: skipped.clone(),
    })
    .await
    .expect("skipped");
    // Dialed when asked, with the dial's own caller id.
    let (wanted, _) = d.manual_dial(preview("2125550151")).await.expect("queued");
    run.until("offered", |s| {
        matches!(agent_state(s, "agent1"), Some(AgentState::Previewing { record, .. }) if record == wanted)
    })
    .await;
    assert!(
        originates_of(&run, &wanted).is_empty(),
        "nothing dialed on offer"
    );
    d.command(Command::PreviewDial {
        agent: agent.clone(),
        record: wanted.clone(),
    })
    .await
    .expect("dialed");
    let sent = originate_of(&run, &wanted).await;
    assert_eq!(sent.caller_id, "2125550142");
    assert_eq!(sent.agent, Some(agent.clone()));
    let rec = d.record(skipped.clone()).await.expect("record");
    assert_eq!(rec.task, None, "the skipped manual dial is dropped");
    assert!(originates_of(&run, &skipped).is_empty());
    run.stop().await;
}

#[tokio::test]
async fn v1_u1_a_bad_manual_dial_is_refused_with_its_reason_and_changes_nothing() {
    use dialer_core::{CallOptionsError, DialOrder, ManualStart};
    use spool_store::{ManualDial, ManualTarget, NewRecord};
    let dir = tempfile::tempdir().expect("dir");
    let c = campaign("spring");
    let store = spool(&dir, &c, 0);
    let run = start(store, &c, world(vec![c.id.clone()], 1, 44), 50.0).await;
    run.until("agent1 logged in", |s| agent_state(s, "agent1").is_some())
        .await;
    let d = &run.dialer;
    let dial = |agent: &str, call: dialer_core::CallOptions| ManualDial {
        campaign: c.id.clone(),
        agent: AgentId::from(agent),
        target: ManualTarget::Number(NewRecord::new("spring", vec![us("2125550170")])),
        call,
    };
    let plain = options(None, None, DialOrder::CalleeFirst, ManualStart::DialNow);
    let e = d
        .manual_dial(dial("nobody", plain.clone()))
        .await
        .expect_err("unknown agent");
    assert!(
        matches!(&e, OpError::Rejected(RejectReason::UnknownAgent(a)) if a.as_str() == "nobody"),
        "{e}"
    );
    let injected = "\"x\" <1>\r\nAction: Command";
    let e = d
        .manual_dial(dial(
            "agent1",
            options(
                Some(injected),
                None,
                DialOrder::CalleeFirst,
                ManualStart::DialNow,
            ),
        ))
        .await
        .expect_err("control characters");
    assert!(
        matches!(
            &e,
            OpError::Store(StoreError::InvalidCallOptions(
                CallOptionsError::CallerId { .. }
            ))
        ),
        "{e}"
    );
    assert!(e.to_string().contains("control character"), "{e}");
    for bad in ["8a", "", "12345678901234567"] {
        let e = d
            .manual_dial(dial(
                "agent1",
                options(
                    None,
                    Some(bad),
                    DialOrder::CalleeFirst,
                    ManualStart::DialNow,
                ),
            ))
            .await
            .expect_err("bad prefix");
        assert!(
            matches!(&e, OpError::Store(StoreError::InvalidCallOptions(CallOptionsError::DialPrefix(p))) if p == bad),
            "{e}"
        );
    }
    // Nothing was stored or dialed.
    let e = d.record(RecordId(1)).await.expect_err("no record");
    assert!(
        matches!(e, OpError::Store(StoreError::UnknownRecord(_))),
        "{e}"
    );
    assert!(!run
        .sent
        .lock()
        .expect("lock")
        .iter()
        .any(|c| matches!(c, dialer_runtime::TelephonyCommand::Originate(_))));
    run.stop().await;
}
