//! Faults: cut connections, stalled servers, garbage frames, injection attempts, reconciliation.

use std::time::Duration;

use backend_ami::backend::{AmiBackend, BackendConfig, BackendEvent, ConnectionState};
use backend_ami::client::{ActionError, AmiClient, AuthMode, ClientEvent};
use backend_ami::codec::{Action, EncodeError, ParseError};
use backend_ami::tracker::{
    AgentUpdate, AnswerKind, CallProgress, CallRef, Outcome, RefusalReason, TrackerConfig,
};
use tokio::sync::mpsc;

use crate::backend_replay::{follow, next, start};
use crate::client_replay::{config, connect, next_event};
use crate::support::{originate_from, ReplayServer, Script, Transcript};

fn count_actions(server: &ReplayServer, name: &str) -> usize {
    (0..server.connections())
        .flat_map(|i| server.log(i).actions)
        .filter(|a| a.get("Action") == Some(name))
        .count()
}

/// Events until the first reconciliation result, with the call progress seen on the way.
async fn until_reconciled(rx: &mut mpsc::Receiver<BackendEvent>) -> (Vec<BackendEvent>, usize) {
    let mut seen = Vec::new();
    loop {
        let ev = next(rx).await;
        if let BackendEvent::Connection(ConnectionState::Reconciled { lines_in_use }) = ev {
            return (seen, lines_in_use);
        }
        seen.push(ev);
    }
}

#[tokio::test]
async fn cut_mid_message_during_a_queue_call_is_reconciled_as_still_live_and_holds_its_line() {
    let mut first = Script::replay("queue_live");
    // Ends the connection in the middle of the AgentConnect event.
    first.cut_after =
        Some("Event: AgentConnect\r\nPrivilege: agent,all\r\nChannel: Local/60".into());
    let server =
        ReplayServer::start(vec![first, Script::replay("live_lists_during_queue_call")]).await;
    let (backend, mut rx) = start(&server, AuthMode::Md5Preferred, 1).await;
    let t = Transcript::load("queue_live");
    backend
        .originate(originate_from(&t, 1, false))
        .await
        .unwrap();
    let (seen, lines) = until_reconciled(&mut rx).await;
    assert_eq!(lines, 1, "the call's channels are still up in Asterisk");
    let progress: Vec<&CallProgress> = seen
        .iter()
        .filter_map(|e| match e {
            BackendEvent::Call { progress, .. } => Some(progress),
            _ => None,
        })
        .collect();
    assert!(progress.contains(&&CallProgress::Answered(AnswerKind::Unknown)));
    assert!(!progress
        .iter()
        .any(|p| matches!(p, CallProgress::Finished { .. })));
    assert!(seen
        .iter()
        .any(|e| matches!(e, BackendEvent::Connection(ConnectionState::Down { .. }))));
    assert!(
        seen.contains(&BackendEvent::Connection(ConnectionState::Up {
            generation: 2
        }))
    );
    // The QueueStatus snapshot turned into agent state: Agent Three is on this call.
    // (The cut came before the live QueueMemberStatus, so only the snapshot can tell this.)
    let agent_three_on_call = seen.iter().any(|e| {
        matches!(e, BackendEvent::Agent(AgentUpdate::State(s))
            if s.agent.name == "Agent Three" && s.in_call)
    });
    assert!(agent_three_on_call, "{seen:?}");
    // The line limit (1) still counts the live call after the reconnect.
    backend
        .originate(originate_from(&t, 2, false))
        .await
        .unwrap();
    let (refused, _) = follow(&mut rx, CallRef(2)).await;
    assert_eq!(
        refused,
        [CallProgress::OriginateRefused(RefusalReason::LineLimit {
            limit: 1
        })]
    );
    assert_eq!(backend.lines_in_use().await.unwrap(), 1);
    assert_eq!(
        count_actions(&server, "Originate"),
        1,
        "never re-sent after the reconnect"
    );
    assert!(server.log(1).mismatches.is_empty());
    backend.shutdown().await;
}

#[tokio::test]
async fn answered_call_that_ended_during_the_cut_finishes_as_answered_with_unknown_cause() {
    let mut first = Script::replay("orig_answered_human");
    first.cut_after = Some("UserEvent: DialerConnected\r\n".into());
    let server = ReplayServer::start(vec![first, Script::replay("lists_idle")]).await;
    let (backend, mut rx) = start(&server, AuthMode::Plain, 2).await;
    backend
        .originate(originate_from(
            &Transcript::load("orig_answered_human"),
            1,
            false,
        ))
        .await
        .unwrap();
    let (progress, _) = follow(&mut rx, CallRef(1)).await;
    assert!(
        matches!(
            progress.last(),
            Some(CallProgress::Finished {
                outcome: Outcome::Answered {
                    kind: AnswerKind::Unknown,
                    cause: None
                },
                ..
            })
        ),
        "{progress:?}"
    );
    let (_, lines) = until_reconciled(&mut rx).await;
    assert_eq!(lines, 0, "no channel left in Asterisk");
    assert_eq!(backend.lines_in_use().await.unwrap(), 0);
    backend.shutdown().await;
}

#[tokio::test]
async fn ringing_call_lost_in_the_cut_is_reported_unknown_and_its_line_released() {
    let mut first = Script::replay("orig_noanswer_timeout");
    first.cut_after = Some("Event: DialBegin\r\n".into());
    let server = ReplayServer::start(vec![first, Script::replay("lists_idle")]).await;
    let (backend, mut rx) = start(&server, AuthMode::Plain, 2).await;
    backend
        .originate(originate_from(
            &Transcript::load("orig_noanswer_timeout"),
            1,
            false,
        ))
        .await
        .unwrap();
    let (progress, _) = follow(&mut rx, CallRef(1)).await;
    assert!(
        matches!(
            progress.last(),
            Some(CallProgress::Finished {
                outcome: Outcome::Unknown,
                ..
            })
        ),
        "{progress:?}"
    );
    assert_eq!(backend.lines_in_use().await.unwrap(), 0);
    assert_eq!(count_actions(&server, "Originate"), 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn stalled_server_makes_the_deadline_fire_with_a_typed_unknown_fate_error() {
    let mut script = Script::replay("login_plain");
    script.stall_after_actions = Some(1);
    let server = ReplayServer::start(vec![script]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .unwrap();
    let err = client
        .send_with_deadline(Action::new("Ping"), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::DeadlineExceeded { action, deadline_ms: 100, action_id }
        if action == "Ping" && !action_id.is_empty()),
        "{err:?}"
    );
    assert!(err.fate_unknown());
    client.close().await;
}

#[tokio::test]
async fn originate_unanswered_by_a_stalled_server_keeps_its_line_and_is_never_resent() {
    let mut script = Script::replay("orig_answered_human");
    script.stall_after_actions = Some(1);
    let server = ReplayServer::start(vec![script]).await;
    let mut client = config(&server.addr, "dialer", "dialersecret", AuthMode::Plain);
    client.action_timeout = Duration::from_millis(150);
    let mut cfg = BackendConfig::new(
        client,
        TrackerConfig {
            line_limit: 1,
            ..TrackerConfig::default()
        },
    );
    cfg.originate_timeout = Duration::from_millis(150);
    cfg.reconcile_on_start = false;
    let (backend, mut rx) = AmiBackend::start(cfg).await.unwrap();
    backend
        .originate(originate_from(
            &Transcript::load("orig_answered_human"),
            1,
            false,
        ))
        .await
        .unwrap();
    let lines = loop {
        if let BackendEvent::Connection(ConnectionState::ReconcileFailed {
            lines_in_use,
            error,
        }) = next(&mut rx).await
        {
            assert!(error.contains("CoreShowChannels"), "{error}");
            break lines_in_use;
        }
    };
    assert_eq!(lines, 1, "a call of unknown fate holds its line");
    assert_eq!(count_actions(&server, "Originate"), 1);
    backend.shutdown().await;
}

#[tokio::test]
async fn unanswered_keepalive_drops_the_connection_and_reconnection_gives_up() {
    let mut script = Script::replay("login_plain");
    script.stall_after_actions = Some(1);
    let server = ReplayServer::start(vec![script]).await;
    let mut cfg = config(&server.addr, "dialer", "dialersecret", AuthMode::Plain);
    cfg.keepalive_interval = Some(Duration::from_millis(50));
    cfg.action_timeout = Duration::from_millis(100);
    cfg.reconnect.max_attempts = Some(2);
    let (_client, mut events) = AmiClient::connect(cfg).await.unwrap();
    let mut saw_keepalive_loss = false;
    loop {
        match next_event(&mut events).await {
            ClientEvent::Disconnected { error, .. } => {
                saw_keepalive_loss |= error.contains("keep-alive Ping")
            }
            ClientEvent::GaveUp { .. } => break,
            _ => {}
        }
    }
    assert!(saw_keepalive_loss);
    assert!(count_actions(&server, "Ping") >= 1);
}

#[tokio::test]
async fn garbage_frames_are_reported_skipped_and_the_connection_survives() {
    let mut script = Script::replay("login_plain");
    let mut garbage = b"this line has no colon\r\nSome: header\r\n\r\n".to_vec();
    garbage.extend(std::iter::repeat_n(b'x', 20_000));
    garbage.extend_from_slice(b"\r\n\r\n");
    script.inject_before = Some(("Response: Success\r\nActionID: ping-1".into(), garbage));
    let server = ReplayServer::start(vec![script]).await;
    let (client, mut events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .unwrap();
    let pong = client
        .send(Action::new("Ping"))
        .await
        .expect("connection survived the garbage");
    assert_eq!(pong.get("Ping"), Some("Pong"));
    let mut errors = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ClientEvent::Malformed(e) = ev {
            errors.push(e);
        }
    }
    assert!(
        errors.contains(&ParseError::MissingColon { line: 1 }),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, ParseError::LineTooLong { .. })),
        "{errors:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn garbage_inside_a_call_stream_does_not_change_its_classification() {
    let mut script = Script::replay("orig_busy");
    script.inject_before = Some((
        "Event: Hangup\r\n".into(),
        b"\x00\xff garbage\r\n\r\n".to_vec(),
    ));
    let server = ReplayServer::start(vec![script]).await;
    let (backend, mut rx) = start(&server, AuthMode::Md5Required, 2).await;
    backend
        .originate(originate_from(&Transcript::load("orig_busy"), 1, false))
        .await
        .unwrap();
    let (progress, _) = follow(&mut rx, CallRef(1)).await;
    assert!(matches!(
        progress.last(),
        Some(CallProgress::Finished {
            outcome: Outcome::Busy,
            ..
        })
    ));
    backend.shutdown().await;
}

#[tokio::test]
async fn injection_in_number_variable_or_caller_id_is_refused_before_any_byte_is_written() {
    let server = ReplayServer::start(vec![Script::replay("orig_busy")]).await;
    let (backend, mut rx) = start(&server, AuthMode::Md5Required, 4).await;
    let t = Transcript::load("orig_busy");
    let evil = "\r\nAction: Command\r\nCommand: core stop now\r\n";

    let mut by_number = originate_from(&t, 1, false);
    by_number.number = format!("2001{evil}");
    backend.originate(by_number).await.unwrap();
    let (p, _) = follow(&mut rx, CallRef(1)).await;
    assert!(
        matches!(
            p.as_slice(),
            [CallProgress::OriginateRefused(
                RefusalReason::InvalidNumber { .. }
            )]
        ),
        "{p:?}"
    );

    let mut by_variable = originate_from(&t, 2, false);
    by_variable
        .variables
        .push(("NOTE".into(), format!("hi{evil}")));
    backend.originate(by_variable).await.unwrap();
    let (p, _) = follow(&mut rx, CallRef(2)).await;
    assert!(
        matches!(p.as_slice(), [CallProgress::OriginateRefused(RefusalReason::Encode(EncodeError::ForbiddenByte { header, .. }))] if header == "Variable"),
        "{p:?}"
    );

    let mut by_caller_id = originate_from(&t, 3, false);
    by_caller_id.caller_id.name = format!("Dialer{evil}");
    backend.originate(by_caller_id).await.unwrap();
    let (p, _) = follow(&mut rx, CallRef(3)).await;
    assert!(
        matches!(p.as_slice(), [CallProgress::OriginateRefused(RefusalReason::Encode(EncodeError::ForbiddenByte { header, .. }))] if header == "CallerID"),
        "{p:?}"
    );

    // The connection is intact and the honest call goes through.
    backend
        .originate(originate_from(&t, 4, false))
        .await
        .unwrap();
    let (p, _) = follow(&mut rx, CallRef(4)).await;
    assert!(matches!(
        p.last(),
        Some(CallProgress::Finished {
            outcome: Outcome::Busy,
            ..
        })
    ));
    backend.shutdown().await;

    let received = String::from_utf8_lossy(&server.all_received()).into_owned();
    assert!(
        !received.contains("Command"),
        "injected bytes reached the socket: {received}"
    );
    assert!(!received.contains("core stop"));
    assert_eq!(count_actions(&server, "Originate"), 1);
}

#[tokio::test]
async fn client_refuses_an_injected_header_with_the_action_id_and_writes_nothing() {
    let server = ReplayServer::start(vec![Script::replay("login_plain")]).await;
    let (client, _events) = connect(&server, "dialer", "dialersecret", AuthMode::Plain)
        .await
        .unwrap();
    let before = server.log(0).received.len();
    let err = client
        .send(Action::new("Originate").header(
            "CallerID",
            "\"x\" <1>\nAction: Command\nCommand: core stop now",
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ActionError::Encode { action, source: EncodeError::ForbiddenByte { byte: b'\n', .. }, .. } if action == "Originate"),
        "{err:?}"
    );
    assert!(!err.fate_unknown());
    assert!(err.to_string().contains(err.action_id()));
    // A later Ping proves the connection is fine and is the only thing written since.
    client.send(Action::new("Ping")).await.unwrap();
    let log = server.log(0);
    let after = String::from_utf8_lossy(&log.received[before..]).into_owned();
    assert!(
        after.starts_with("Action: Ping\r\n") && !after.contains("Command"),
        "{after}"
    );
    client.close().await;
}

#[tokio::test]
async fn channels_left_by_a_previous_run_count_against_the_line_limit_at_start() {
    // The recorded call's channels carry ids of ours, as after a dialer restart mid-call.
    let mut script = Script::replay("live_lists_during_queue_call");
    script.preset_rewrites = vec![
        (
            "94cd3da9-9a73-4a66-b677-c90da2d7039b".into(),
            "dlr-77".into(),
        ),
        (
            "428e7493-b86f-40f8-b99d-e321503d7003".into(),
            "dlr-77-o".into(),
        ),
    ];
    let server = ReplayServer::start(vec![script]).await;
    let client = config(
        &server.addr,
        "dialer",
        "dialersecret",
        AuthMode::Md5Required,
    );
    let mut cfg = BackendConfig::new(
        client,
        TrackerConfig {
            line_limit: 1,
            ..TrackerConfig::default()
        },
    );
    cfg.reconcile_queues = vec!["sales".into()];
    let (backend, mut rx) = AmiBackend::start(cfg).await.unwrap();
    let (_, lines) = until_reconciled(&mut rx).await;
    assert_eq!(lines, 1, "four channels, one call of ours");
    let t = Transcript::load("queue_live");
    backend
        .originate(originate_from(&t, 1, false))
        .await
        .unwrap();
    let (refused, _) = follow(&mut rx, CallRef(1)).await;
    assert_eq!(
        refused,
        [CallProgress::OriginateRefused(RefusalReason::LineLimit {
            limit: 1
        })]
    );
    backend.shutdown().await;
    assert!(server.log(0).mismatches.is_empty());
}

#[test]
fn header_values_that_made_asterisk_run_a_second_action_are_refused_by_the_encoder() {
    for name in [
        "injection_crlf_originate",
        "injection_crlf_ping",
        "injection_lf_ping",
        "injection_cr_only",
    ] {
        let text =
            std::fs::read_to_string(crate::support::fixture(&format!("{name}.timeline.jsonl")))
                .unwrap();
        // The recorded client wrote the whole injected CallerID in one chunk.
        let chunk = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["dir"] == "out")
            .filter_map(|v| v["bytes"].as_str().map(str::to_owned))
            .find(|b| b.contains("CallerID: "))
            .expect("an originate with a CallerID");
        let start = chunk.find("CallerID: ").unwrap() + "CallerID: ".len();
        let value = chunk[start..].trim_end_matches("\r\n\r\n").to_owned();
        assert!(
            value.contains(['\r', '\n']),
            "{name}: payload carries line breaks"
        );
        let mut out = Vec::new();
        let err = Action::new("Originate")
            .header("CallerID", value)
            .encode(&mut out)
            .unwrap_err();
        assert!(
            matches!(err, EncodeError::ForbiddenByte { ref header, .. } if header == "CallerID"),
            "{name}: {err:?}"
        );
        assert!(out.is_empty());
    }
}
