//! Feeds each recorded call straight into the sans-IO tracker: no sockets, no clock.

use std::time::{Duration, Instant};

use backend_ami::tracker::{
    AgentUpdate, AnswerKind, CallProgress, CallRef, CallTracker, OriginateReply, Outcome,
    RefusalReason, TrackerConfig, TrackerOutput,
};

use crate::support::{originate_from, rewrite_ids, Transcript};

const CALL: u64 = 7;

struct Replayed {
    progress: Vec<CallProgress>,
    /// `(unique id, channel)` reported for the call, in order.
    identities: Vec<(String, String)>,
    agents: Vec<AgentUpdate>,
    sent: Vec<u8>,
    tracker: CallTracker,
}

/// Replays `name` through a tracker; `hangup_before` names the ActionID whose response is preceded
/// by a hangup intent (the cancel recording).
fn replay(name: &str, amd: bool, hangup_before: Option<&str>) -> Replayed {
    let t = Transcript::load(name);
    let mut tracker = CallTracker::new(TrackerConfig::default());
    let action = tracker
        .begin_originate(&originate_from(&t, CALL, amd))
        .expect("the recorded originate is valid");
    let mut sent = Vec::new();
    action.encode(&mut sent).unwrap();
    let t0 = Instant::now();
    let mut now = t0;
    let bytes = rewrite_ids(
        &t,
        &std::fs::read(crate::support::fixture(&format!("{name}.ami"))).unwrap(),
        CALL,
    );
    let our_id = format!("orig-{CALL}");
    for msg in crate::support::decode_all(&bytes, true) {
        now += Duration::from_millis(1);
        if hangup_before.is_some() && msg.action_id() == hangup_before {
            let hangup = tracker
                .begin_hangup(CallRef(CALL))
                .expect("channel known by now");
            hangup.encode(&mut sent).unwrap();
        }
        if msg.response().is_some() && msg.action_id() == Some(our_id.as_str()) {
            let reply = if msg.response() == Some("Success") {
                OriginateReply::Queued
            } else {
                OriginateReply::Refused {
                    message: msg.get("Message").unwrap_or("").into(),
                }
            };
            tracker.handle_originate_reply(CallRef(CALL), reply);
        } else {
            tracker.handle_message(&msg, now);
        }
        if let Some(at) = tracker.poll_timeout() {
            assert!(at > now, "timers are in the future when set");
        }
    }
    // Let every grace timer run out.
    tracker.handle_timeout(now + Duration::from_secs(3600));
    let mut progress = Vec::new();
    let mut agents = Vec::new();
    let mut identities = Vec::new();
    while let Some(out) = tracker.poll_output() {
        match out {
            TrackerOutput::Call { call, progress: p } => {
                assert_eq!(call, CallRef(CALL));
                progress.push(p);
            }
            TrackerOutput::Agent(a) => agents.push(a),
            TrackerOutput::Identity {
                call,
                unique_id,
                channel,
            } => {
                assert_eq!(call, CallRef(CALL));
                identities.push((unique_id, channel));
            }
            TrackerOutput::Transmit(a) => {
                a.encode(&mut sent).unwrap();
            }
        }
    }
    Replayed {
        progress,
        identities,
        agents,
        sent,
        tracker,
    }
}

fn finished(r: &Replayed) -> &Outcome {
    match r.progress.last() {
        Some(CallProgress::Finished { outcome, .. }) => outcome,
        other => panic!("call not finished: {other:?} in {:?}", r.progress),
    }
}

/// The Originate the tracker builds for the recorded call `name`, and the bytes the recorder
/// sent, with the recorded ids mapped to the tracker's.
fn ours_and_recorded(name: &str) -> (String, String) {
    let t = Transcript::load(name);
    let mut tracker = CallTracker::new(TrackerConfig::default());
    let action = tracker
        .begin_originate(&originate_from(&t, CALL, false))
        .unwrap();
    let mut ours = Vec::new();
    action.encode(&mut ours).unwrap();
    let recorded = std::fs::read(crate::support::fixture(&format!("{name}.actions"))).unwrap();
    let recorded = rewrite_ids(&t, &recorded, CALL);
    (
        String::from_utf8(ours).unwrap(),
        String::from_utf8(recorded).unwrap(),
    )
}

#[test]
fn originate_action_matches_the_recorded_one_byte_for_byte_once_ids_are_mapped() {
    for name in [
        "orig_busy",
        "orig_answered_human",
        "orig_amd_human",
        "orig_cancel_by_hangup_action",
    ] {
        let (ours, recorded) = ours_and_recorded(name);
        assert!(
            recorded.contains(&ours),
            "{name}: ours\n{ours}\nnot in recorded\n{recorded}"
        );
    }
}

#[test]
fn answered_call_ends_as_answered_with_normal_clearing() {
    let r = replay("orig_answered_human", false, None);
    assert_eq!(r.progress[0], CallProgress::OriginateAccepted);
    assert!(r
        .progress
        .contains(&CallProgress::Answered(AnswerKind::Unknown)));
    assert_eq!(
        finished(&r),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
    assert_eq!(r.tracker.lines_in_use(), 0);
}

#[test]
fn busy_number_is_classified_from_hangup_cause_17() {
    let r = replay("orig_busy", false, None);
    assert_eq!(finished(&r), &Outcome::Busy);
    assert!(!r
        .progress
        .iter()
        .any(|p| matches!(p, CallProgress::Answered(_))));
    assert_eq!(r.tracker.lines_in_use(), 0);
}

#[test]
fn busy_is_found_when_both_hangups_precede_the_originate_response() {
    assert_eq!(
        finished(&replay("orig_busy_with_failed_exten", false, None)),
        &Outcome::Busy
    );
}

#[test]
fn ring_timeout_is_no_answer_from_cause_19() {
    let r = replay("orig_noanswer_timeout", false, None);
    assert!(r.progress.contains(&CallProgress::Ringing));
    assert_eq!(finished(&r), &Outcome::NoAnswer);
}

#[test]
fn ring_timeout_is_no_answer_when_the_originate_response_comes_last() {
    assert_eq!(
        finished(&replay("orig_noanswer_with_failed_exten", false, None)),
        &Outcome::NoAnswer
    );
}

#[test]
fn congestion_is_classified_from_cause_34_on_the_local_second_leg() {
    assert_eq!(
        finished(&replay("orig_congestion", false, None)),
        &Outcome::Congestion
    );
}

#[test]
fn unallocated_number_is_invalid_from_cause_1_although_reason_is_0() {
    assert_eq!(
        finished(&replay("orig_unallocated", false, None)),
        &Outcome::InvalidNumber
    );
}

#[test]
fn missing_extension_with_cause_0_is_a_failure_carrying_reason_0() {
    assert_eq!(
        finished(&replay("orig_invalid_extension", false, None)),
        &Outcome::Failed {
            reason: Some(0),
            cause: None
        }
    );
}

#[test]
fn unknown_channel_technology_fails_without_any_channel() {
    let r = replay("orig_unknown_channel_tech", false, None);
    assert_eq!(finished(&r), &Outcome::NoChannel { reason: Some(0) });
}

#[test]
fn bad_context_is_refused_synchronously_and_holds_no_line() {
    let r = replay("orig_bad_context", false, None);
    assert!(
        matches!(
            r.progress.as_slice(),
            [CallProgress::OriginateRefused(RefusalReason::Asterisk { message, action_id })]
                if message == "Extension does not exist." && action_id == "orig-7"
        ),
        "{:?}",
        r.progress
    );
    assert_eq!(r.tracker.lines_in_use(), 0);
}

#[test]
fn amd_human_machine_and_notsure_set_the_answer_kind() {
    for (name, kind, status) in [
        ("orig_amd_human", AnswerKind::Human, "HUMAN"),
        ("orig_amd_machine", AnswerKind::Machine, "MACHINE"),
        ("orig_amd_silence", AnswerKind::Unknown, "NOTSURE"),
    ] {
        let r = replay(name, true, None);
        let answers: Vec<_> = r
            .progress
            .iter()
            .filter(|p| matches!(p, CallProgress::Answered(_)))
            .collect();
        assert_eq!(
            answers,
            [&CallProgress::Answered(kind)],
            "{name}: answer reported once, after AMD"
        );
        assert!(r
            .progress
            .iter()
            .any(|p| matches!(p, CallProgress::AmdResult { status: s, .. } if s == status)));
        assert_eq!(
            finished(&r),
            &Outcome::Answered {
                kind,
                cause: Some(16)
            },
            "{name}"
        );
    }
}

#[test]
fn queue_call_is_queued_then_linked_to_the_agent_who_took_it() {
    let r = replay("orig_queue_agent", false, None);
    let expect_agent = |p: &CallProgress| {
        matches!(p, CallProgress::LinkedToAgent { queue, agent }
        if queue == "sales" && agent.name == "Agent One" && agent.interface == "Local/agent1@agents/n")
    };
    let queued = r
        .progress
        .iter()
        .position(|p| {
            *p == CallProgress::Queued {
                queue: "sales".into(),
            }
        })
        .unwrap();
    let linked = r.progress.iter().position(expect_agent).unwrap();
    assert!(queued < linked);
    assert!(r.progress.contains(&CallProgress::LeftQueue {
        queue: "sales".into(),
        abandoned: false
    }));
    assert!(r.progress.iter().any(|p| matches!(
        p,
        CallProgress::AgentCompleted {
            talk_time_s: Some(6),
            ..
        }
    )));
    assert_eq!(
        finished(&r),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
    // QueueMemberStatus events become agent state inputs: in use, then free.
    let states: Vec<(u8, bool)> = r
        .agents
        .iter()
        .filter_map(|a| match a {
            AgentUpdate::State(s) if s.agent.name == "Agent One" => Some((s.status, s.in_call)),
            _ => None,
        })
        .collect();
    assert_eq!(states, [(2, false), (1, false)]);
}

#[test]
fn originated_leg_entering_the_queue_itself_is_followed_too() {
    let r = replay("orig_answered_to_queue", false, None);
    assert!(r.progress.iter().any(
        |p| matches!(p, CallProgress::LinkedToAgent { agent, .. } if agent.name == "Agent Two")
    ));
    assert!(matches!(finished(&r), Outcome::Answered { .. }));
}

#[test]
fn second_local_leg_is_found_by_linkedid_without_other_channel_id() {
    let r = replay("orig_no_otherchannelid", false, None);
    assert_eq!(
        finished(&r),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
}

#[test]
fn hangup_intent_cancels_a_ringing_call_by_its_channel_name() {
    let r = replay("orig_cancel_by_hangup_action", false, Some("hangup-1"));
    assert_eq!(finished(&r), &Outcome::Cancelled);
    let sent = String::from_utf8(r.sent).unwrap();
    assert!(
        sent.contains(
            "Action: Hangup\r\nChannel: Local/3003@callees-00000020;1\r\nCause: 16\r\n\r\n"
        ),
        "{sent}"
    );
}

#[test]
fn e3_e12_e19_the_originated_channel_s_uniqueid_and_name_are_the_call_s_identity() {
    // Recorded from Asterisk: the originated leg `Local/6001@callees-00000007;1` has the
    // Uniqueid we chose as ChannelId (rewritten to ours, `dlr-7`); the callee's `;2` and the
    // agent's channels are not the call's identity. The queue comes with `Queued`.
    let r = replay("orig_queue_agent", false, None);
    assert_eq!(
        r.identities,
        vec![(
            format!("dlr-{CALL}"),
            "Local/6001@callees-00000007;1".to_string()
        )],
        "one identity, the originated channel's"
    );
    assert!(r.progress.contains(&CallProgress::Queued {
        queue: "sales".into()
    }));
    // A call Asterisk never created a channel for has no identity.
    let r = replay("orig_bad_context", false, None);
    assert!(r.identities.is_empty(), "{:?}", r.identities);
}

// ---- two-step (agent-first) calls, uContact AgentCall (seed row U1) ----

fn agent1() -> backend_ami::tracker::AgentRef {
    backend_ami::tracker::AgentRef {
        interface: "Local/agent1@agents".into(),
        name: "agent1".into(),
    }
}

#[test]
fn u1_agent_first_originate_matches_the_recorded_action_byte_for_byte() {
    for name in [
        "agent_first_answered",
        "agent_first_busy",
        "agent_first_cancel",
    ] {
        let (ours, recorded) = ours_and_recorded(name);
        assert!(
            ours.contains("Channel: Local/agent1@agents\r\nApplication: Dial\r\nData: Local/"),
            "{ours}"
        );
        assert!(
            recorded.contains(&ours),
            "{name}: ours\n{ours}\nnot in recorded\n{recorded}"
        );
    }
}

#[test]
fn u1_agent_first_answer_is_the_callees_and_links_the_call_to_its_agent() {
    let r = replay("agent_first_answered", false, None);
    assert_eq!(r.progress[0], CallProgress::OriginateAccepted);
    let answered = r
        .progress
        .iter()
        .position(|p| *p == CallProgress::Answered(AnswerKind::Unknown))
        .expect("the callee's answer is reported");
    assert_eq!(
        r.progress[answered + 1],
        CallProgress::LinkedToAgent {
            queue: String::new(),
            agent: agent1(),
        },
        "the callee is on the agent's line: linked at once"
    );
    assert_eq!(
        r.progress
            .iter()
            .filter(|p| matches!(p, CallProgress::Answered(_)))
            .count(),
        1,
        "the agent's answer is not reported as the callee's: {:?}",
        r.progress
    );
    assert_eq!(
        finished(&r),
        &Outcome::Answered {
            kind: AnswerKind::Unknown,
            cause: Some(16)
        }
    );
    assert_eq!(r.tracker.lines_in_use(), 0);
}

#[test]
fn u1_agent_first_callee_outcomes_come_from_the_dial_on_the_agents_channel() {
    for (name, want, rang) in [
        ("agent_first_busy", Outcome::Busy, false),
        ("agent_first_noanswer", Outcome::NoAnswer, true),
        ("agent_first_congestion", Outcome::Congestion, false),
        // DialEnd says NOANSWER; the callee leg's cause 1 says why.
        ("agent_first_unallocated", Outcome::InvalidNumber, false),
    ] {
        let r = replay(name, false, None);
        assert_eq!(finished(&r), &want, "{name}: {:?}", r.progress);
        assert!(
            !r.progress.iter().any(|p| matches!(
                p,
                CallProgress::Answered(_) | CallProgress::LinkedToAgent { .. }
            )),
            "{name}: the agent's answer is not the callee's: {:?}",
            r.progress
        );
        assert_eq!(
            r.progress.contains(&CallProgress::Ringing),
            rang,
            "{name}: {:?}",
            r.progress
        );
        assert_eq!(r.tracker.lines_in_use(), 0, "{name}");
    }
}

#[test]
fn u1_agent_first_whose_agent_never_answers_is_not_the_callees_attempt() {
    for name in [
        "agent_first_agent_unreachable",
        "agent_first_agent_noanswer",
    ] {
        let r = replay(name, false, None);
        assert!(
            matches!(finished(&r), Outcome::AgentUnreachable { .. }),
            "{name}: {:?}",
            r.progress
        );
        assert!(
            !r.progress
                .iter()
                .any(|p| matches!(p, CallProgress::Ringing | CallProgress::Answered(_))),
            "{name}: {:?}",
            r.progress
        );
    }
    // Hung up by the dialer while the agent's phone rang: the callee was never dialed either.
    let r = replay("agent_first_cancel_agent_ringing", false, Some("hangup-1"));
    assert!(
        matches!(finished(&r), Outcome::AgentUnreachable { .. }),
        "{:?}",
        r.progress
    );
}

#[test]
fn u1_agent_first_cancelled_while_the_callee_rings_is_cancelled() {
    let r = replay("agent_first_cancel", false, Some("hangup-1"));
    assert!(
        r.progress.contains(&CallProgress::Ringing),
        "{:?}",
        r.progress
    );
    assert_eq!(finished(&r), &Outcome::Cancelled);
    assert_eq!(r.tracker.lines_in_use(), 0);
}
