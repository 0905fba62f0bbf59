//! Asterisk behind the runtime's `Telephony` seam: [`AmiTelephony`] places the runtime's calls
//! through [`AmiBackend`] and turns what Asterisk reports into the core's inputs, in bursts.
//!
//! All of Asterisk's peculiarities stay here:
//! - which refusals are Asterisk's fault (shutting down, permission, bad request, connection
//!   down): reported as `RefusalCause::Pbx`, so no attempt is charged and dialing pauses;
//! - queue member events: a member of a campaign's queue seen at start (or joining) is logged
//!   in, paused if the queue says so, **in one burst** so the engine never dials for it in
//!   between; a member whose device is "not in use" again is ready, whatever order
//!   `QueueMemberStatus`, `AgentComplete` and `Hangup` arrive in (the core treats a ready seen
//!   during the call as "ready when it ends");
//! - talk time: when `AgentComplete` reported how long the agent talked, the call's end time
//!   is the link time plus that talk time, even if the hangup itself was learned late; a call
//!   whose end was lost in an event gap ends as `Lost` (outcome unknown, never "connected");
//! - agent control: pause, unpause, join and leave become `QueuePause`, `QueueAdd` and
//!   `QueueRemove` on the campaign's queue.

use crate::backend::{AmiBackend, BackendConfig, BackendEvent, ConnectionState};
use crate::client::ClientError;
use crate::codec::Action;
use crate::to_core::{self, AgentNaming};
use crate::tracker::{
    AgentRef, AgentUpdate, CallProgress, CallRef, LegOrder, Outcome, RefusalReason,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentEvent, AgentId, CallEvent, CampaignId, DialOrder, InputKind, PbxFault, RefusalCause,
};
use dialer_runtime::telephony::{
    AgentControl, CallIdentity, Health, Telephony, TelephonyCommand, TelephonyError, TelephonyEvent,
};
use std::collections::{BTreeMap, HashMap};
use tokio::sync::mpsc;

/// Asterisk device state "not in use": the member is free again after a call.
const DEVICE_NOT_IN_USE: u8 = 1;
/// Device states meaning the member cannot take calls at all (invalid, unavailable).
const DEVICE_GONE: [u8; 2] = [4, 5];
/// Most events taken into one burst.
const MAX_BURST: usize = 256;
/// How long an agent's phone rings for a two-step (agent-first) call before the call is given
/// up as the agent's (not the callee's) failure.
const AGENT_RING: std::time::Duration = std::time::Duration::from_secs(30);

/// How one Asterisk server is used.
#[derive(Debug, Clone)]
pub struct AmiSettings {
    /// A name for logs and status.
    pub name: String,
    pub backend: BackendConfig,
    pub naming: AgentNaming,
    /// Asterisk queue → the campaigns whose agents are its members.
    pub queues: BTreeMap<String, Vec<CampaignId>>,
    /// Whether the dialplan runs AMD (answers wait for its verdict).
    pub amd: bool,
}

/// Turns backend events into core inputs. Pure, so it is tested event by event.
#[derive(Debug, Clone)]
pub struct AmiBridge {
    naming: AgentNaming,
    queues: BTreeMap<String, Vec<CampaignId>>,
    /// Each agent's interface, as last seen (queue member actions need it).
    interfaces: HashMap<AgentId, String>,
    /// Calls linked to an agent: when, for the end time from `AgentComplete`.
    linked_at: HashMap<CallRef, DateTime<Utc>>,
    /// Calls whose talk time Asterisk reported: when they really ended.
    ended_at: HashMap<CallRef, DateTime<Utc>>,
}

impl AmiBridge {
    pub fn new(naming: AgentNaming, queues: BTreeMap<String, Vec<CampaignId>>) -> AmiBridge {
        AmiBridge {
            naming,
            queues,
            interfaces: HashMap::new(),
            linked_at: HashMap::new(),
            ended_at: HashMap::new(),
        }
    }

    /// The queue of a campaign, if it has one.
    pub fn queue_of(&self, campaign: &CampaignId) -> Option<&str> {
        self.queues
            .iter()
            .find(|(_, cs)| cs.contains(campaign))
            .map(|(q, _)| q.as_str())
    }

    /// An agent's interface, as last seen in a queue member event.
    pub fn interface_of(&self, agent: &AgentId) -> Option<&str> {
        self.interfaces.get(agent).map(String::as_str)
    }

    /// The telephony events for one backend event, at `now` (wall clock).
    pub fn events(&mut self, event: &BackendEvent, now: DateTime<Utc>) -> Vec<TelephonyEvent> {
        match event {
            BackendEvent::Call { call, progress } => {
                let id = to_core::call_id(*call);
                // The queue the answered call entered is part of what the PBX calls it.
                let queue = match progress {
                    CallProgress::Queued { queue } if !queue.is_empty() => {
                        Some(TelephonyEvent::Identity {
                            call: id,
                            identity: CallIdentity {
                                queue: Some(queue.clone()),
                                ..CallIdentity::default()
                            },
                        })
                    }
                    _ => None,
                };
                queue
                    .into_iter()
                    .chain(
                        self.call(*call, progress, now).into_iter().map(|event| {
                            TelephonyEvent::Input(InputKind::Call { call: id, event })
                        }),
                    )
                    .collect()
            }
            BackendEvent::Identity {
                call,
                unique_id,
                channel,
            } => vec![TelephonyEvent::Identity {
                call: to_core::call_id(*call),
                identity: CallIdentity {
                    unique_id: Some(unique_id.clone()),
                    channel: Some(channel.clone()),
                    queue: None,
                },
            }],
            BackendEvent::Agent(update) => self
                .agent_inputs(update)
                .into_iter()
                .map(TelephonyEvent::Input)
                .collect(),
            BackendEvent::Connection(state) => health(state)
                .into_iter()
                .map(TelephonyEvent::Health)
                .collect(),
        }
    }

    fn call(
        &mut self,
        call: CallRef,
        progress: &CallProgress,
        now: DateTime<Utc>,
    ) -> Option<CallEvent> {
        match progress {
            CallProgress::OriginateRefused(reason) => {
                return Some(CallEvent::OriginateRefused {
                    cause: refusal_cause(reason),
                })
            }
            CallProgress::LinkedToAgent { .. } => {
                self.linked_at.insert(call, now);
            }
            CallProgress::AgentCompleted {
                talk_time_s: Some(talk),
                ..
            } => {
                let linked = self.linked_at.get(&call).copied().unwrap_or(now);
                let talk =
                    chrono::Duration::seconds(i64::try_from(*talk).unwrap_or(i64::MAX / 2_000));
                self.ended_at.insert(call, (linked + talk).min(now));
                return None;
            }
            CallProgress::Finished { outcome, .. } => {
                self.linked_at.remove(&call);
                let ended_at = self.ended_at.remove(&call);
                if let (Outcome::Answered { .. }, Some(at)) = (outcome, ended_at) {
                    return Some(CallEvent::HungUp {
                        failure: None,
                        ended_at: Some(at),
                    });
                }
            }
            _ => {}
        }
        to_core::call_event(progress, self.naming)
    }

    fn agent_inputs(&mut self, update: &AgentUpdate) -> Vec<InputKind> {
        let naming = self.naming;
        let agent = |a: &AgentRef| to_core::agent_id(a, naming);
        match update {
            // A member of a campaign's queue is an agent of that campaign; joining (or being
            // seen in a snapshot, not paused and reachable) logs it in. One burst: login and
            // pause together, so the engine never dials for a paused member in between.
            AgentUpdate::Added(s) | AgentUpdate::State(s)
                if !DEVICE_GONE.contains(&s.status) && self.queues.contains_key(&s.queue) =>
            {
                let id = agent(&s.agent);
                self.interfaces
                    .insert(id.clone(), s.agent.interface.clone());
                let mut out = vec![InputKind::Agent {
                    agent: id.clone(),
                    event: AgentEvent::LoggedIn {
                        campaigns: self.queues[&s.queue].clone(),
                        inactivity_timeout_s: None,
                    },
                }];
                if s.paused {
                    out.push(InputKind::Agent {
                        agent: id,
                        event: AgentEvent::Paused {
                            reason: "paused in queue".into(),
                        },
                    });
                } else if s.status == DEVICE_NOT_IN_USE && !s.in_call {
                    // Free again. During the call's last moments (Asterisk sends this before
                    // the caller's Hangup) the engine keeps it for the call's end.
                    out.push(InputKind::Agent {
                        agent: id,
                        event: AgentEvent::Ready,
                    });
                }
                out
            }
            other => to_core::agent_event(other, self.naming)
                .map(|(agent, event)| InputKind::Agent { agent, event })
                .into_iter()
                .collect(),
        }
    }
}

/// Whose fault an Originate refusal is. None of these is the callee's: Asterisk never got to
/// dial (the network's refusals arrive as a Hangup cause, classified by the tracker).
pub fn refusal_cause(reason: &RefusalReason) -> RefusalCause {
    let detail = reason.to_string();
    match reason {
        // Our own limit or a duplicate: nothing wrong with Asterisk or the callee.
        RefusalReason::LineLimit { .. } | RefusalReason::DuplicateCall { .. } => {
            RefusalCause::Local { detail }
        }
        // A two-step call for an agent whose phone is not known.
        RefusalReason::NoAgentInterface { .. } => RefusalCause::AgentUnreachable { detail },
        // Configuration Asterisk would refuse every time: pause and say so.
        RefusalReason::InvalidRouting { .. }
        | RefusalReason::InvalidDialChannel { .. }
        | RefusalReason::InvalidCallerId
        | RefusalReason::InvalidNumber { .. }
        | RefusalReason::Encode(_) => RefusalCause::Pbx {
            fault: PbxFault::RequestRefused,
            detail,
        },
        RefusalReason::Asterisk { message, .. } => RefusalCause::Pbx {
            fault: if message.to_ascii_lowercase().contains("shutting down") {
                PbxFault::ShuttingDown
            } else {
                PbxFault::RequestRefused
            },
            detail,
        },
        RefusalReason::NotSent { .. } => RefusalCause::Pbx {
            fault: PbxFault::Unreachable,
            detail,
        },
    }
}

fn health(state: &ConnectionState) -> Option<Health> {
    match state {
        // Up is not enough: the calls that went through the gap are settled first.
        ConnectionState::Up { .. } => None,
        ConnectionState::Reconciled { lines_in_use }
        | ConnectionState::ReconcileFailed { lines_in_use, .. } => Some(Health::Reconciled {
            lines_in_use: *lines_in_use,
        }),
        ConnectionState::Down { error } | ConnectionState::GaveUp { error } => Some(Health::Down {
            fault: PbxFault::Unreachable,
            detail: error.clone(),
        }),
    }
}

/// Asterisk as a telephone system.
pub struct AmiTelephony {
    name: String,
    backend: AmiBackend,
    events: mpsc::Receiver<BackendEvent>,
    bridge: AmiBridge,
    amd: bool,
}

impl AmiTelephony {
    /// Connects and logs in (a login error is returned here), then runs the backend.
    pub async fn start(settings: AmiSettings) -> Result<AmiTelephony, ClientError> {
        let (backend, events) = AmiBackend::start(settings.backend).await?;
        Ok(AmiTelephony {
            name: settings.name,
            backend,
            events,
            bridge: AmiBridge::new(settings.naming, settings.queues),
            amd: settings.amd,
        })
    }

    /// The AMI backend (lines in use, for tests and status).
    pub fn backend(&self) -> &AmiBackend {
        &self.backend
    }

    fn agent_action(&self, agent: &AgentId, control: &AgentControl) -> Option<Action> {
        let interface = self.bridge.interface_of(agent)?.to_owned();
        Some(match control {
            AgentControl::Pause { reason } => Action::new("QueuePause")
                .header("Interface", interface)
                .header("Paused", "true")
                .header("Reason", reason.clone()),
            AgentControl::Unpause => Action::new("QueuePause")
                .header("Interface", interface)
                .header("Paused", "false"),
            AgentControl::Join { campaign } => Action::new("QueueAdd")
                .header("Queue", self.bridge.queue_of(campaign)?.to_owned())
                .header("Interface", interface)
                .header("MemberName", agent.to_string()),
            AgentControl::Leave { campaign } => Action::new("QueueRemove")
                .header("Queue", self.bridge.queue_of(campaign)?.to_owned())
                .header("Interface", interface),
        })
    }
}

fn backend_error(e: crate::backend::BackendError) -> TelephonyError {
    match e {
        crate::backend::BackendError::Busy => TelephonyError::Busy,
        crate::backend::BackendError::Stopped => TelephonyError::Stopped,
    }
}

#[async_trait]
impl Telephony for AmiTelephony {
    fn name(&self) -> &str {
        &self.name
    }

    async fn submit(&mut self, command: TelephonyCommand) -> Result<(), TelephonyError> {
        match command {
            TelephonyCommand::Originate(intent) => {
                let mut req = to_core::originate_from_intent(&intent, self.amd);
                if let (DialOrder::AgentFirst, Some(agent)) = (intent.order, &intent.agent) {
                    // The agent's phone is its queue member interface, as last seen. One not
                    // seen yet is refused by the tracker (the agent cannot be rung), not
                    // charged to the callee.
                    req.order = LegOrder::AgentFirst {
                        agent: AgentRef {
                            interface: self
                                .bridge
                                .interface_of(agent)
                                .unwrap_or_default()
                                .to_owned(),
                            name: agent.to_string(),
                        },
                        ring_agent: AGENT_RING,
                    };
                }
                self.backend.originate(req).await.map_err(backend_error)
            }
            TelephonyCommand::Hangup(call) => self
                .backend
                .hangup(to_core::call_ref(call))
                .await
                .map_err(backend_error),
            // Asterisk's manager has no hold action: a hold is the agent phone's (its
            // `Hold`/`Unhold` events are reported). Parking or redirecting the callee would
            // need a recorded flow from a live PBX first.
            TelephonyCommand::Hold { .. } => Err(TelephonyError::Unsupported("hold a call")),
            TelephonyCommand::Agent { agent, control } => match self.agent_action(&agent, &control)
            {
                Some(action) => self
                    .backend
                    .send_action(action)
                    .await
                    .map_err(backend_error),
                None => {
                    tracing::debug!(%agent, "no queue member known for agent control");
                    Ok(())
                }
            },
        }
    }

    async fn next_burst(&mut self) -> Option<Vec<TelephonyEvent>> {
        let first = self.events.recv().await?;
        let now = Utc::now();
        let mut burst = self.bridge.events(&first, now);
        let mut taken = 1;
        while taken < MAX_BURST {
            match self.events.try_recv() {
                Ok(ev) => {
                    burst.extend(self.bridge.events(&ev, now));
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        Some(burst)
    }

    async fn shutdown(&mut self) {
        self.backend.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracker::AgentState;

    fn bridge() -> AmiBridge {
        let mut queues = BTreeMap::new();
        queues.insert("sales".to_owned(), vec![CampaignId::from("spring")]);
        AmiBridge::new(AgentNaming::MemberName, queues)
    }

    fn member(status: u8, paused: bool, in_call: bool) -> AgentState {
        AgentState {
            queue: "sales".into(),
            agent: AgentRef {
                interface: "PJSIP/agent1".into(),
                name: "Agent One".into(),
            },
            status,
            paused,
            in_call,
        }
    }

    fn inputs(events: Vec<TelephonyEvent>) -> Vec<InputKind> {
        events
            .into_iter()
            .filter_map(|e| match e {
                TelephonyEvent::Input(k) => Some(k),
                TelephonyEvent::Health(_) | TelephonyEvent::Identity { .. } => None,
            })
            .collect()
    }

    #[test]
    fn a_member_of_the_campaign_queue_logs_in_and_is_ready() {
        let got = inputs(bridge().events(
            &BackendEvent::Agent(AgentUpdate::Added(member(1, false, false))),
            Utc::now(),
        ));
        assert_eq!(
            got,
            vec![
                InputKind::Agent {
                    agent: AgentId::from("Agent One"),
                    event: AgentEvent::LoggedIn {
                        campaigns: vec![CampaignId::from("spring")],
                        inactivity_timeout_s: None
                    }
                },
                InputKind::Agent {
                    agent: AgentId::from("Agent One"),
                    event: AgentEvent::Ready
                },
            ]
        );
    }

    #[test]
    fn a_paused_member_seen_at_start_logs_in_paused_in_one_burst() {
        let got = inputs(bridge().events(
            &BackendEvent::Agent(AgentUpdate::State(member(1, true, false))),
            Utc::now(),
        ));
        assert_eq!(got.len(), 2);
        assert!(matches!(
            got.last(),
            Some(InputKind::Agent {
                event: AgentEvent::Paused { .. },
                ..
            })
        ));
    }

    #[test]
    fn members_of_other_queues_are_ignored() {
        let mut m = member(1, false, false);
        m.queue = "support".into();
        assert!(bridge()
            .events(&BackendEvent::Agent(AgentUpdate::Added(m)), Utc::now())
            .is_empty());
    }

    #[test]
    fn asterisk_shutting_down_is_the_pbx_fault() {
        let cause = refusal_cause(&RefusalReason::Asterisk {
            action_id: "dlr-1".into(),
            message: "Asterisk is shutting down".into(),
        });
        assert!(matches!(
            cause,
            RefusalCause::Pbx {
                fault: PbxFault::ShuttingDown,
                ..
            }
        ));
    }

    #[test]
    fn a_connection_cut_is_unreachable_and_up_waits_for_reconciliation() {
        assert_eq!(health(&ConnectionState::Up { generation: 2 }), None);
        assert!(matches!(
            health(&ConnectionState::Down {
                error: "reset".into()
            }),
            Some(Health::Down {
                fault: PbxFault::Unreachable,
                ..
            })
        ));
    }

    #[test]
    fn talk_time_from_agent_complete_sets_the_end_of_a_call_learned_late() {
        let mut b = bridge();
        let t0 = Utc::now();
        let agent = member(2, false, true).agent;
        b.events(
            &BackendEvent::Call {
                call: CallRef(9),
                progress: CallProgress::LinkedToAgent {
                    queue: "sales".into(),
                    agent: agent.clone(),
                },
            },
            t0,
        );
        b.events(
            &BackendEvent::Call {
                call: CallRef(9),
                progress: CallProgress::AgentCompleted {
                    queue: "sales".into(),
                    agent,
                    talk_time_s: Some(5),
                },
            },
            t0 + chrono::Duration::seconds(45),
        );
        let got = inputs(b.events(
            &BackendEvent::Call {
                call: CallRef(9),
                progress: CallProgress::Finished {
                    outcome: Outcome::Answered {
                        kind: crate::tracker::AnswerKind::Human,
                        cause: Some(16),
                    },
                    cause_text: None,
                },
            },
            t0 + chrono::Duration::seconds(45),
        ));
        assert_eq!(
            got,
            vec![InputKind::Call {
                call: dialer_core::CallId(9),
                event: CallEvent::HungUp {
                    failure: None,
                    ended_at: Some(t0 + chrono::Duration::seconds(5)),
                }
            }]
        );
    }
}
