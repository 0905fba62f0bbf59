//! The whole backend against recorded calls over loopback TCP, one scenario per recording.

use backend_ami::backend::{AmiBackend, BackendConfig, BackendEvent, ConnectionState};
use backend_ami::client::AuthMode;
use backend_ami::tracker::{
    AgentUpdate, AnswerKind, CallProgress, CallRef, Outcome, RefusalReason, TrackerConfig,
};
use tokio::sync::mpsc;

use crate::client_replay::config;
use crate::support::{originate_from, ReplayServer, Script, Transcript};

/// MD5 when the recording logged in with a challenge, plain otherwise.
pub fn auth_for(name: &str) -> AuthMode {
    let t = Transcript::load(name);
    if t.exchanges
        .iter()
        .any(|x| x.action.get("Action") == Some("Challenge"))
    {
        AuthMode::Md5Required
    } else {
        AuthMode::Plain
    }
}

pub async fn start(
    server: &ReplayServer,
    auth: AuthMode,
    line_limit: usize,
) -> (AmiBackend, mpsc::Receiver<BackendEvent>) {
    let tracker = TrackerConfig {
        line_limit,
        ..TrackerConfig::default()
    };
    let mut cfg = BackendConfig::new(
        config(&server.addr, "dialer", "dialersecret", auth),
        tracker,
    );
    cfg.reconcile_queues = vec!["sales".into()];
    // The call recordings start with no list exchange; reconnections reconcile all the same.
    cfg.reconcile_on_start = false;
    AmiBackend::start(cfg).await.expect("backend starts")
}

pub async fn next(rx: &mut mpsc::Receiver<BackendEvent>) -> BackendEvent {
    crate::support::recv(rx).await
}

/// Progress of `call` until it finishes (or is refused), plus agent updates seen meanwhile.
pub async fn follow(
    rx: &mut mpsc::Receiver<BackendEvent>,
    call: CallRef,
) -> (Vec<CallProgress>, Vec<AgentUpdate>) {
    let mut progress = Vec::new();
    let mut agents = Vec::new();
    loop {
        match next(rx).await {
            BackendEvent::Call {
                call: c,
                progress: p,
            } if c == call => {
                let last = matches!(
                    p,
                    CallProgress::Finished { .. } | CallProgress::OriginateRefused(_)
                );
                progress.push(p);
                if last {
                    return (progress, agents);
                }
            }
            BackendEvent::Agent(a) => agents.push(a),
            _ => {}
        }
    }
}

async fn run_recorded_call(
    name: &str,
    amd: bool,
) -> (Vec<CallProgress>, Vec<AgentUpdate>, ReplayServer) {
    let server = ReplayServer::start(vec![Script::replay(name)]).await;
    let (backend, mut rx) = start(&server, auth_for(name), 4).await;
    assert_eq!(
        next(&mut rx).await,
        BackendEvent::Connection(ConnectionState::Up { generation: 1 })
    );
    let t = Transcript::load(name);
    backend.originate(originate_from(&t, 1, amd)).await.unwrap();
    let (progress, agents) = follow(&mut rx, CallRef(1)).await;
    assert_eq!(
        backend.lines_in_use().await.unwrap(),
        0,
        "{name}: line released"
    );
    backend.shutdown().await;
    (progress, agents, server)
}

fn outcome(progress: &[CallProgress]) -> &Outcome {
    match progress.last() {
        Some(CallProgress::Finished { outcome, .. }) => outcome,
        other => panic!("not finished: {other:?}"),
    }
}

#[tokio::test]
async fn recorded_calls_are_classified_from_their_hangup_causes_over_tcp() {
    let table = [
        (
            "orig_answered_human",
            Outcome::Answered {
                kind: AnswerKind::Unknown,
                cause: Some(16),
            },
        ),
        ("orig_busy", Outcome::Busy),
        ("orig_noanswer_timeout", Outcome::NoAnswer),
        ("orig_congestion", Outcome::Congestion),
        ("orig_unallocated", Outcome::InvalidNumber),
        (
            "orig_invalid_extension",
            Outcome::Failed {
                reason: Some(0),
                cause: None,
            },
        ),
    ];
    for (name, expected) in table {
        let (progress, _, server) = run_recorded_call(name, false).await;
        assert_eq!(progress[0], CallProgress::OriginateAccepted, "{name}");
        assert_eq!(outcome(&progress), &expected, "{name}: {progress:?}");
        let log = server.log(0);
        assert!(
            log.mismatches.is_empty() && log.unexpected.is_empty(),
            "{name}: {log:?}"
        );
        assert_eq!(
            log.actions
                .iter()
                .filter(|a| a.get("Action") == Some("Originate"))
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn busy_number_is_classified_from_hangup_cause_17_with_md5_login() {
    let (progress, _, server) = run_recorded_call("orig_busy", false).await;
    assert_eq!(outcome(&progress), &Outcome::Busy);
    assert!(
        matches!(progress.last(), Some(CallProgress::Finished { cause_text: Some(t), .. }) if t == "User busy")
    );
    assert!(
        server.log(0).mismatches.is_empty(),
        "MD5 key equals the recorded one"
    );
}

#[tokio::test]
async fn answered_call_into_a_queue_is_linked_to_its_agent_and_agents_are_tracked() {
    let (progress, agents, _server) = run_recorded_call("orig_queue_agent", false).await;
    assert!(progress.contains(&CallProgress::Answered(AnswerKind::Unknown)));
    assert!(progress.contains(&CallProgress::Queued {
        queue: "sales".into()
    }));
    assert!(progress.iter().any(
        |p| matches!(p, CallProgress::LinkedToAgent { agent, .. } if agent.name == "Agent One")
    ));
    assert_eq!(
        outcome(&progress),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
    assert!(agents.iter().any(
        |a| matches!(a, AgentUpdate::State(s) if s.agent.name == "Agent One" && s.status == 2)
    ));
}

#[tokio::test]
async fn machine_detected_by_amd_is_reported_as_a_machine_answer() {
    let (progress, _, _server) = run_recorded_call("orig_amd_machine", true).await;
    assert!(progress.contains(&CallProgress::Answered(AnswerKind::Machine)));
    assert_eq!(
        outcome(&progress),
        &Outcome::Answered {
            kind: AnswerKind::Machine,
            cause: Some(16)
        }
    );
}

#[tokio::test]
async fn nonexistent_context_is_refused_by_asterisk_and_releases_the_line() {
    let (progress, _, _server) = run_recorded_call("orig_bad_context", false).await;
    assert!(
        matches!(progress.as_slice(), [CallProgress::OriginateRefused(RefusalReason::Asterisk { message, .. })]
        if message == "Extension does not exist."),
        "{progress:?}"
    );
}

#[tokio::test]
async fn hangup_intent_on_a_ringing_call_sends_hangup_and_ends_cancelled() {
    let name = "orig_cancel_by_hangup_action";
    let server = ReplayServer::start(vec![Script::replay(name)]).await;
    let (backend, mut rx) = start(&server, AuthMode::Plain, 4).await;
    let t = Transcript::load(name);
    backend
        .originate(originate_from(&t, 9, false))
        .await
        .unwrap();
    let mut progress = Vec::new();
    loop {
        match next(&mut rx).await {
            BackendEvent::Call {
                progress: CallProgress::Ringing,
                ..
            } => {
                progress.push(CallProgress::Ringing);
                backend.hangup(CallRef(9)).await.unwrap();
            }
            BackendEvent::Call {
                progress: p @ CallProgress::Finished { .. },
                ..
            } => {
                progress.push(p);
                break;
            }
            BackendEvent::Call { progress: p, .. } => progress.push(p),
            _ => {}
        }
    }
    assert_eq!(outcome(&progress), &Outcome::Cancelled);
    let hangup = server
        .log(0)
        .actions
        .into_iter()
        .find(|a| a.get("Action") == Some("Hangup"))
        .expect("hangup sent");
    assert_eq!(hangup.get("Channel"), Some("Local/3003@callees-00000020;1"));
    backend.shutdown().await;
}

#[tokio::test]
async fn line_limit_refuses_the_call_beyond_it() {
    let name = "orig_answered_human";
    let server = ReplayServer::start(vec![Script::replay(name)]).await;
    let (backend, mut rx) = start(&server, AuthMode::Plain, 1).await;
    let t = Transcript::load(name);
    backend
        .originate(originate_from(&t, 1, false))
        .await
        .unwrap();
    backend
        .originate(originate_from(&t, 2, false))
        .await
        .unwrap();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    while !matches!(first.last(), Some(CallProgress::Finished { .. })) || second.is_empty() {
        if let BackendEvent::Call { call, progress } = next(&mut rx).await {
            if call == CallRef(1) {
                first.push(progress)
            } else {
                second.push(progress)
            }
        }
    }
    assert_eq!(
        second,
        [CallProgress::OriginateRefused(RefusalReason::LineLimit {
            limit: 1
        })]
    );
    assert_eq!(
        outcome(&first),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
    let originates = server
        .log(0)
        .actions
        .iter()
        .filter(|a| a.get("Action") == Some("Originate"))
        .count();
    assert_eq!(originates, 1, "the refused call never reached Asterisk");
    backend.shutdown().await;
}
