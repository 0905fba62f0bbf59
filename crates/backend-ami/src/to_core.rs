//! The one place where this crate meets `dialer_core`'s types, so the core's changes stay here.
//!
//! - [`originate_from_intent`]: the core's [`OriginateIntent`] → [`AmiOriginate`]. The channel is
//!   `routing.channel_prefix + dial_string + routing.channel_suffix`; the core's dial string already
//!   carries the routing dial prefix and is digits only (the tracker checks again).
//! - [`call_event`]: [`CallProgress`] → the core's [`CallEvent`] (some progress has no core
//!   counterpart and maps to `None`).
//! - [`agent_event`]: queue member updates → the core's [`AgentEvent`], conservatively: only pauses,
//!   unpauses and logouts. Device-state changes during and after calls are not agent decisions
//!   (mapping "not in use" to `Ready` would end an agent's wrap-up early).

use std::time::Duration;

use dialer_core::{
    AgentEvent, AgentId, AnswerKind as CoreAnswer, CallEvent, CallId, FailureClass,
    OriginateIntent, PbxFault, RefusalCause,
};

use crate::tracker::{
    AgentRef, AgentUpdate, AmiOriginate, AnswerKind, CallProgress, CallRef, CallerId, LegOrder,
    Outcome, RefusalReason, Routing,
};

/// Channel variables the backend adds so the dialplan can route and report.
pub const VAR_CALL: &str = "DIALER_CALL";
pub const VAR_AGENT: &str = "DIALER_AGENT";
pub const VAR_QUEUE: &str = "DIALER_QUEUE";
/// `1` when the dialplan should run AMD on this call, `0` when it must not (the campaign's
/// abandonment budget cannot absorb another false positive): the AMD extension then goes
/// straight to the queue (`GotoIf($["${DIALER_AMD}" = "0"]?queue)`).
pub const VAR_AMD: &str = "DIALER_AMD";

/// Which AMI field names an agent in the core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AgentNaming {
    /// The queue member's `MemberName` (as configured in queues.conf / QueueAdd).
    #[default]
    MemberName,
    /// The member's interface (`PJSIP/agent1`), for deployments that log agents in by device.
    Interface,
}

/// The core's call id as the tracker's.
pub fn call_ref(call: CallId) -> CallRef {
    CallRef(call.0)
}

/// The tracker's call id as the core's.
pub fn call_id(call: CallRef) -> CallId {
    CallId(call.0)
}

/// Splits `"Name" <number>` (or `Name <number>`, or a bare number) into its parts.
pub fn parse_caller_id(raw: &str) -> CallerId {
    match raw.rsplit_once('<') {
        Some((name, rest)) => CallerId {
            name: name.trim().trim_matches('"').trim().to_owned(),
            number: rest.trim_end().trim_end_matches('>').trim().to_owned(),
        },
        None => CallerId {
            name: String::new(),
            number: raw.trim().to_owned(),
        },
    }
}

/// Builds the backend request for an intent. `amd` says whether the campaign's dialplan runs AMD;
/// the intent may forbid it for this call ([`OriginateIntent::amd`]), and then the answer does
/// not wait for a verdict and the dialplan is told to skip AMD ([`VAR_AMD`]).
pub fn originate_from_intent(intent: &OriginateIntent, amd: bool) -> AmiOriginate {
    let amd = amd && intent.amd;
    let r = &intent.routing;
    let mut variables = intent.variables.clone();
    variables.push((VAR_CALL.into(), intent.call.0.to_string()));
    variables.push((VAR_AMD.into(), if amd { "1" } else { "0" }.into()));
    if let Some(agent) = &intent.agent {
        variables.push((VAR_AGENT.into(), agent.to_string()));
    }
    if !r.queue.is_empty() {
        variables.push((VAR_QUEUE.into(), r.queue.clone()));
    }
    AmiOriginate {
        call: call_ref(intent.call),
        number: intent.dial_string.clone(),
        caller_id: parse_caller_id(&intent.caller_id),
        ring_timeout: Duration::from_secs(u64::from(intent.ring_timeout_s)),
        variables,
        routing: Routing {
            channel: format!("{}{{number}}{}", r.channel_prefix, r.channel_suffix),
            context: r.context.clone(),
            exten: r.exten.clone(),
            priority: 1,
        },
        amd,
        // Set by the telephone system, which knows the agent's phone
        // ([`crate::AmiTelephony`]).
        order: LegOrder::CalleeFirst,
    }
}

fn answer_kind(kind: AnswerKind) -> CoreAnswer {
    match kind {
        AnswerKind::Human => CoreAnswer::Human,
        AnswerKind::Machine => CoreAnswer::Machine,
        AnswerKind::Unknown => CoreAnswer::Unknown,
    }
}

/// The agent id of a queue member.
pub fn agent_id(agent: &AgentRef, naming: AgentNaming) -> AgentId {
    match naming {
        AgentNaming::MemberName => AgentId::from(agent.name.as_str()),
        AgentNaming::Interface => AgentId::from(agent.interface.as_str()),
    }
}

/// The core's event for a piece of call progress, if it has one.
pub fn call_event(progress: &CallProgress, naming: AgentNaming) -> Option<CallEvent> {
    Some(match progress {
        CallProgress::OriginateAccepted => CallEvent::OriginateAccepted,
        CallProgress::OriginateRefused(reason) => CallEvent::OriginateRefused {
            cause: refusal_cause(reason),
        },
        CallProgress::Ringing => CallEvent::Ringing,
        CallProgress::Answered(kind) => CallEvent::Answered {
            kind: answer_kind(*kind),
        },
        CallProgress::Queued { .. } => CallEvent::Queued,
        CallProgress::Held => CallEvent::Held,
        CallProgress::Resumed => CallEvent::Resumed,
        CallProgress::LinkedToAgent { agent, .. } => CallEvent::Linked {
            agent: agent_id(agent, naming),
        },
        CallProgress::Finished { outcome, .. } => match outcome {
            Outcome::Answered { .. } => CallEvent::HungUp {
                failure: None,
                ended_at: None,
            },
            Outcome::Busy => failed(FailureClass::Busy),
            Outcome::NoAnswer => failed(FailureClass::NoAnswer),
            Outcome::Rejected => failed(FailureClass::Rejected),
            Outcome::Congestion => failed(FailureClass::Congestion),
            Outcome::InvalidNumber => failed(FailureClass::InvalidNumber),
            // Hung up by the dialer before answer (ring limit, supervisor): not answered.
            Outcome::Cancelled => failed(FailureClass::NoAnswer),
            // No channel of the call ever existed: nothing was dialed, the telephone system
            // is at fault (a missing endpoint or channel technology fails every call alike).
            // Not charged; dialing pauses until the PBX is retried.
            Outcome::NoChannel { reason } => CallEvent::OriginateRefused {
                cause: RefusalCause::Pbx {
                    fault: PbxFault::RequestRefused,
                    detail: format!(
                        "Asterisk could not create the call's channel (Originate reason {}): check the channel template and the endpoint",
                        reason.map_or_else(|| "unknown".to_owned(), |r| r.to_string())
                    ),
                },
            },
            // The channel existed and Asterisk gave up on it (no extension for the number in
            // the callee's context, a cause with nothing more precise): charged as a failed
            // attempt and retried after the congestion delay, so a number the PBX cannot route
            // reaches its attempt cap instead of being retried for ever.
            Outcome::Failed { .. } => failed(FailureClass::OriginateFailed),
            // The agent of a two-step call never answered: the callee was never dialed.
            Outcome::AgentUnreachable { reason, cause } => CallEvent::OriginateRefused {
                cause: RefusalCause::AgentUnreachable {
                    detail: match (reason, cause) {
                        (Some(r), Some(c)) => format!("Originate reason {r}, hangup cause {c}"),
                        (Some(r), None) => format!("Originate reason {r}"),
                        (None, Some(c)) => format!("hangup cause {c}"),
                        (None, None) => "no answer from the agent's phone".to_owned(),
                    },
                },
            },
            Outcome::Unknown => CallEvent::Lost,
        },
        CallProgress::AmdResult { .. }
        | CallProgress::LeftQueue { .. }
        | CallProgress::AgentCompleted { .. } => return None,
    })
}

/// Who pays for a refused Originate: Asterisk's own refusal or an unsent request is the
/// telephone system's fault, a refusal before sending is local; neither charges the callee.
fn refusal_cause(reason: &RefusalReason) -> RefusalCause {
    let detail = reason.to_string();
    match reason {
        RefusalReason::Asterisk { .. } => RefusalCause::Pbx {
            fault: PbxFault::RequestRefused,
            detail,
        },
        RefusalReason::NotSent { .. } => RefusalCause::Pbx {
            fault: PbxFault::Unreachable,
            detail,
        },
        _ => RefusalCause::Local { detail },
    }
}

fn failed(class: FailureClass) -> CallEvent {
    CallEvent::HungUp {
        failure: Some(class),
        ended_at: None,
    }
}

/// The core's agent input for a queue member update, if it is one the core models.
pub fn agent_event(update: &AgentUpdate, naming: AgentNaming) -> Option<(AgentId, AgentEvent)> {
    /// Asterisk device states meaning the member cannot take calls at all.
    const INVALID: u8 = 4;
    const UNAVAILABLE: u8 = 5;
    match update {
        AgentUpdate::Paused {
            agent,
            paused: true,
            reason,
            ..
        } => Some((
            agent_id(agent, naming),
            AgentEvent::Paused {
                reason: reason.clone(),
            },
        )),
        AgentUpdate::Paused {
            agent,
            paused: false,
            ..
        } => Some((agent_id(agent, naming), AgentEvent::Ready)),
        AgentUpdate::Removed { agent, .. } => {
            Some((agent_id(agent, naming), AgentEvent::LoggedOut))
        }
        AgentUpdate::State(s) if matches!(s.status, INVALID | UNAVAILABLE) => {
            Some((agent_id(&s.agent, naming), AgentEvent::LoggedOut))
        }
        AgentUpdate::State(_) | AgentUpdate::Added(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::{AgentState, RefusalReason};
    use dialer_core::{CampaignId, PhoneNumber, RecordId};

    fn intent() -> OriginateIntent {
        OriginateIntent {
            call: CallId(42),
            campaign: CampaignId("demo".into()),
            record: RecordId(7),
            number: PhoneNumber::from_trusted("+15550001001", "1001").expect("valid number"),
            dial_string: "91001".into(),
            caller_id: "\"Dialer\" <5550100>".into(),
            ring_timeout_s: 25,
            agent: Some(AgentId("alice".into())),
            order: dialer_core::DialOrder::CalleeFirst,
            variables: vec![("LEADID".into(), "7".into())],
            routing: std::sync::Arc::new(dialer_core::Routing {
                channel_prefix: "Local/".into(),
                channel_suffix: "@callees".into(),
                context: "dialer".into(),
                exten: "amd".into(),
                dial_prefix: "9".into(),
                queue: "sales".into(),
                ..dialer_core::Routing::default()
            }),
            amd: true,
        }
    }

    #[test]
    fn u1_a_two_step_call_whose_agent_never_answered_is_refused_not_charged() {
        let ended = CallProgress::Finished {
            outcome: Outcome::AgentUnreachable {
                reason: Some(3),
                cause: Some(19),
            },
            cause_text: Some("User alerting, no answer".into()),
        };
        match call_event(&ended, AgentNaming::MemberName) {
            Some(CallEvent::OriginateRefused {
                cause: RefusalCause::AgentUnreachable { detail },
            }) => assert_eq!(detail, "Originate reason 3, hangup cause 19"),
            other => panic!("{other:?}"),
        }
        // The callee's own outcomes of a two-step call are charged as usual.
        assert_eq!(
            call_event(
                &CallProgress::Finished {
                    outcome: Outcome::Busy,
                    cause_text: None
                },
                AgentNaming::MemberName
            ),
            Some(failed(FailureClass::Busy))
        );
    }

    #[test]
    fn intent_becomes_a_local_originate_with_the_core_call_id_in_its_channel_ids() {
        let req = originate_from_intent(&intent(), true);
        assert_eq!(req.call, CallRef(42));
        assert_eq!(req.number, "91001");
        assert_eq!(
            req.caller_id,
            CallerId {
                name: "Dialer".into(),
                number: "5550100".into()
            }
        );
        assert_eq!(req.ring_timeout, Duration::from_secs(25));
        assert_eq!(req.routing.channel, "Local/{number}@callees");
        assert_eq!(req.variables[0], ("LEADID".into(), "7".into()));
        assert!(req.variables.contains(&(VAR_AGENT.into(), "alice".into())));
        let mut tracker = crate::tracker::CallTracker::new(Default::default());
        let action = tracker.begin_originate(&req).expect("valid");
        assert_eq!(action.get("Channel"), Some("Local/91001@callees"));
        assert_eq!(action.get("ChannelId"), Some("dlr-42"));
        assert_eq!(action.get("OtherChannelId"), Some("dlr-42-o"));
        assert_eq!(action.get("Timeout"), Some("25000"));
    }

    #[test]
    fn a_call_the_engine_places_without_amd_skips_it_in_the_dialplan_and_the_tracker() {
        let mut intent = intent();
        let req = originate_from_intent(&intent, true);
        assert!(req.amd);
        assert!(req.variables.contains(&(VAR_AMD.into(), "1".into())));
        intent.amd = false;
        let req = originate_from_intent(&intent, true);
        assert!(!req.amd, "the answer does not wait for a verdict");
        assert!(req.variables.contains(&(VAR_AMD.into(), "0".into())));
        let mut tracker = crate::tracker::CallTracker::new(Default::default());
        let action = tracker.begin_originate(&req).expect("valid");
        let vars: Vec<(&str, &str)> = action.variables().collect();
        assert!(vars.contains(&(VAR_AMD, "0")), "{vars:?}");
        // A PBX without AMD never runs it, whatever the engine allows.
        intent.amd = true;
        assert!(!originate_from_intent(&intent, false).amd);
    }

    #[test]
    fn bare_number_caller_id_has_no_name() {
        assert_eq!(
            parse_caller_id("5550100"),
            CallerId {
                name: String::new(),
                number: "5550100".into()
            }
        );
    }

    #[test]
    fn outcomes_map_to_the_core_failure_classes() {
        let fin = |outcome| CallProgress::Finished {
            outcome,
            cause_text: None,
        };
        let n = AgentNaming::MemberName;
        assert_eq!(
            call_event(&fin(Outcome::Busy), n),
            Some(failed(FailureClass::Busy))
        );
        assert_eq!(
            call_event(&fin(Outcome::InvalidNumber), n),
            Some(failed(FailureClass::InvalidNumber))
        );
        assert_eq!(call_event(&fin(Outcome::Unknown), n), Some(CallEvent::Lost));
        assert_eq!(
            call_event(
                &fin(Outcome::Answered {
                    kind: AnswerKind::Machine,
                    cause: Some(16)
                }),
                n
            ),
            Some(CallEvent::HungUp {
                failure: None,
                ended_at: None
            })
        );
        assert_eq!(
            call_event(&CallProgress::Answered(AnswerKind::Machine), n),
            Some(CallEvent::Answered {
                kind: CoreAnswer::Machine
            })
        );
        // No channel ever existed: the PBX's fault, not charged.
        assert!(matches!(
            call_event(&fin(Outcome::NoChannel { reason: Some(0) }), n),
            Some(CallEvent::OriginateRefused {
                cause: RefusalCause::Pbx { fault: PbxFault::RequestRefused, detail }
            }) if detail.contains("reason 0")
        ));
        assert_eq!(
            call_event(
                &fin(Outcome::Failed {
                    reason: Some(0),
                    cause: None
                }),
                n
            ),
            Some(failed(FailureClass::OriginateFailed))
        );
        let refused = CallProgress::OriginateRefused(RefusalReason::LineLimit { limit: 3 });
        assert!(
            matches!(call_event(&refused, n), Some(CallEvent::OriginateRefused { cause: RefusalCause::Local { detail } }) if detail.contains("line limit"))
        );
        let agent = AgentRef {
            interface: "PJSIP/agent1".into(),
            name: "Agent One".into(),
        };
        let linked = CallProgress::LinkedToAgent {
            queue: "sales".into(),
            agent,
        };
        assert_eq!(
            call_event(&linked, AgentNaming::Interface),
            Some(CallEvent::Linked {
                agent: AgentId("PJSIP/agent1".into())
            })
        );
    }

    #[test]
    fn only_pauses_and_logouts_become_agent_events() {
        let agent = AgentRef {
            interface: "PJSIP/a".into(),
            name: "a".into(),
        };
        let n = AgentNaming::MemberName;
        let pause = AgentUpdate::Paused {
            queue: "q".into(),
            agent: agent.clone(),
            paused: true,
            reason: "lunch".into(),
        };
        assert_eq!(
            agent_event(&pause, n),
            Some((
                AgentId("a".into()),
                AgentEvent::Paused {
                    reason: "lunch".into()
                }
            ))
        );
        let state = |status| {
            AgentUpdate::State(AgentState {
                queue: "q".into(),
                agent: agent.clone(),
                status,
                paused: false,
                in_call: false,
            })
        };
        assert_eq!(
            agent_event(&state(1), n),
            None,
            "not in use after a call is not Ready"
        );
        assert_eq!(
            agent_event(&state(5), n),
            Some((AgentId("a".into()), AgentEvent::LoggedOut))
        );
    }
}
