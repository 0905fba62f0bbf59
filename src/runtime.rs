//! The runtime: one task owns the engine, the SQLite spool and the Asterisk backend, and moves
//! data between them. The engine decides; the store persists every update *before* any later
//! output is acted on (so the attempt ledger row exists before its Originate leaves); the
//! backend places calls and reports what happened.

use backend_ami::to_core::{self, AgentNaming};
use backend_ami::tracker::AgentUpdate;
use backend_ami::{AmiBackend, BackendEvent, ConnectionState};
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentEvent, AgentId, CallEvent, Campaign, CampaignId, Engine, EngineConfig, Input, InputKind,
    Output,
};
use spool_store::SpoolStore;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// Asterisk device state "not in use": the member is free again after a call.
const DEVICE_NOT_IN_USE: u8 = 1;
/// Device states meaning the member cannot take calls at all (invalid, unavailable).
const DEVICE_GONE: [u8; 2] = [4, 5];
/// Longest sleep between two engine ticks, so a stalled timer can never freeze the loop.
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// Why the runtime stopped or refused to start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("spool store: {0}")]
    Store(#[from] spool_store::StoreError),
    #[error("campaign {campaign}: {problem}")]
    Campaign { campaign: String, problem: String },
    #[error("the abandonment guard cannot be turned off outside simulations")]
    GuardDisabled,
    #[error("the AMI backend stopped")]
    BackendStopped,
}

/// Turns AMI backend events into engine inputs. Pure: no I/O, so it is tested directly.
#[derive(Debug, Clone)]
pub struct AmiBridge {
    naming: AgentNaming,
    /// Asterisk queue name → the campaigns whose agents are its members.
    queues: BTreeMap<String, Vec<CampaignId>>,
}

impl AmiBridge {
    pub fn new(campaigns: &[Campaign], naming: AgentNaming) -> AmiBridge {
        let mut queues: BTreeMap<String, Vec<CampaignId>> = BTreeMap::new();
        for c in campaigns {
            if !c.routing.queue.is_empty() {
                queues
                    .entry(c.routing.queue.clone())
                    .or_default()
                    .push(c.id.clone());
            }
        }
        AmiBridge { naming, queues }
    }

    /// The engine inputs for one backend event (none, one or two).
    pub fn inputs(&self, event: &BackendEvent) -> Vec<InputKind> {
        match event {
            BackendEvent::Call { call, progress } => to_core::call_event(progress, self.naming)
                .map(|event| InputKind::Call {
                    call: to_core::call_id(*call),
                    event,
                })
                .into_iter()
                .collect(),
            BackendEvent::Agent(update) => self.agent_inputs(update),
            BackendEvent::Connection(_) => Vec::new(),
        }
    }

    fn agent_inputs(&self, update: &AgentUpdate) -> Vec<InputKind> {
        let agent = |a| to_core::agent_id(a, self.naming);
        match update {
            // A member of a campaign's queue is an agent of that campaign; joining (or being
            // seen in a snapshot, not paused and reachable) logs it in.
            AgentUpdate::Added(s) | AgentUpdate::State(s)
                if !DEVICE_GONE.contains(&s.status) && self.queues.contains_key(&s.queue) =>
            {
                let id: AgentId = agent(&s.agent);
                let mut out = vec![InputKind::Agent {
                    agent: id.clone(),
                    event: AgentEvent::LoggedIn {
                        campaigns: self.queues[&s.queue].clone(),
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
                    // Free again: ends wrap-up (the engine ignores it during a call).
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

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub campaigns: Vec<Campaign>,
    pub naming: AgentNaming,
    /// Whether the campaigns' dialplan runs AMD (the backend then waits for its verdict).
    pub amd: bool,
    pub engine: EngineConfig,
    /// Stop after this long (examples, smoke runs); `None` runs until the backend stops.
    pub run_for: Option<Duration>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub originates: u64,
    pub refused_by_backend: u64,
    pub store_updates: u64,
}

/// Runs campaigns against Asterisk until `run_for` elapses or the backend stops.
///
/// `commands` carries what the embedding application says: agent logins from its desktop,
/// dispositions, blacklist changes, previews. Each is applied at the moment it arrives.
pub async fn run(
    cfg: RuntimeConfig,
    store: &mut SpoolStore,
    backend: &AmiBackend,
    events: &mut mpsc::Receiver<BackendEvent>,
    commands: &mut mpsc::Receiver<InputKind>,
) -> Result<RunSummary, RuntimeError> {
    if !cfg.engine.abandon_guard {
        return Err(RuntimeError::GuardDisabled);
    }
    let now = Utc::now();
    let mut engine_cfg = cfg.engine.clone();
    // Call ids continue after the ledger's last one: channel ids derive from them.
    if let Some(last) = store.max_call_id()? {
        engine_cfg.first_call_id = engine_cfg.first_call_id.max(last.0 + 1);
    }
    let mut engine = Engine::new(engine_cfg);
    engine.load_blacklist(store.blacklist(now)?);
    let bridge = AmiBridge::new(&cfg.campaigns, cfg.naming);
    let mut summary = RunSummary::default();
    let mut driver = Driver {
        engine: &mut engine,
        store,
        backend,
        amd: cfg.amd,
        summary: &mut summary,
    };
    for c in &cfg.campaigns {
        c.validate().map_err(|e| RuntimeError::Campaign {
            campaign: c.id.to_string(),
            problem: e.to_string(),
        })?;
        driver.store.upsert_campaign(c, now)?;
        driver
            .feed(now, InputKind::Campaign(Box::new(c.clone())))
            .await?;
    }
    let started = tokio::time::Instant::now();
    loop {
        if cfg.run_for.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let wake = driver.next_wake(Utc::now());
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { return Err(RuntimeError::BackendStopped) };
                if let BackendEvent::Connection(state) = &ev {
                    log_connection(state);
                }
                for kind in bridge.inputs(&ev) {
                    driver.feed(Utc::now(), kind).await?;
                }
            }
            Some(kind) = commands.recv() => {
                driver.feed(Utc::now(), kind).await?;
            }
            _ = tokio::time::sleep(wake) => {
                driver.feed(Utc::now(), InputKind::Tick).await?;
            }
        }
    }
    Ok(summary)
}

fn log_connection(state: &ConnectionState) {
    tracing::info!(?state, "AMI connection");
}

struct Driver<'a> {
    engine: &'a mut Engine,
    store: &'a mut SpoolStore,
    backend: &'a AmiBackend,
    amd: bool,
    summary: &'a mut RunSummary,
}

impl Driver<'_> {
    /// Feeds one input and carries out every output, in order.
    async fn feed(&mut self, now: DateTime<Utc>, kind: InputKind) -> Result<(), RuntimeError> {
        let mut queue = vec![kind];
        // Bounded: each round can only add the store's answer to a record request.
        for _ in 0..64 {
            let Some(kind) = queue.pop() else { break };
            self.engine.handle_input(Input::new(now, kind));
            loop {
                match self.engine.poll_output() {
                    Output::Timeout(_) => break,
                    Output::Store(update) => {
                        self.store.apply(&update)?;
                        self.summary.store_updates += 1;
                    }
                    Output::NeedRecords { campaign, limit } => {
                        let records = self.store.ready_set(&campaign.0, now, limit)?;
                        queue.push(InputKind::RecordsOffered { campaign, records });
                    }
                    Output::Originate(intent) => {
                        let request = to_core::originate_from_intent(&intent, self.amd);
                        if let Err(e) = self.backend.originate(request).await {
                            self.summary.refused_by_backend += 1;
                            queue.push(InputKind::Call {
                                call: intent.call,
                                event: CallEvent::OriginateRefused {
                                    cause: dialer_core::RefusalCause::Pbx {
                                        fault: dialer_core::PbxFault::Unreachable,
                                        detail: e.to_string(),
                                    },
                                },
                            });
                        } else {
                            self.summary.originates += 1;
                        }
                    }
                    Output::Hangup { call } => {
                        if self.backend.hangup(to_core::call_ref(call)).await.is_err() {
                            tracing::warn!(%call, "hangup not taken: backend stopped or busy");
                        }
                    }
                    Output::Event(event) => {
                        tracing::debug!(?event, "engine event");
                        self.store.log_event(&event)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn next_wake(&mut self, now: DateTime<Utc>) -> Duration {
        match self.engine.poll_output() {
            Output::Timeout(Some(t)) => (t - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP),
            _ => MAX_SLEEP,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_ami::tracker::{AgentRef, AgentState, CallProgress, CallRef, Outcome};

    fn bridge() -> AmiBridge {
        let mut c = Campaign::new("spring", "UTC");
        c.routing.queue = "sales".into();
        AmiBridge::new(&[c], AgentNaming::MemberName)
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

    #[test]
    fn a_member_of_the_campaign_queue_logs_in_and_is_ready() {
        let inputs = bridge().inputs(&BackendEvent::Agent(AgentUpdate::Added(member(
            1, false, false,
        ))));
        assert_eq!(
            inputs,
            vec![
                InputKind::Agent {
                    agent: AgentId::from("Agent One"),
                    event: AgentEvent::LoggedIn {
                        campaigns: vec![CampaignId::from("spring")]
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
    fn a_paused_member_logs_in_paused() {
        let inputs = bridge().inputs(&BackendEvent::Agent(AgentUpdate::State(member(
            1, true, false,
        ))));
        assert!(matches!(
            inputs.last(),
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
            .inputs(&BackendEvent::Agent(AgentUpdate::Added(m)))
            .is_empty());
    }

    #[test]
    fn an_unavailable_member_logs_out() {
        let inputs = bridge().inputs(&BackendEvent::Agent(AgentUpdate::State(member(
            5, false, false,
        ))));
        assert!(matches!(
            inputs.as_slice(),
            [InputKind::Agent {
                event: AgentEvent::LoggedOut,
                ..
            }]
        ));
    }

    #[test]
    fn a_busy_hangup_becomes_a_busy_failure() {
        let ev = BackendEvent::Call {
            call: CallRef(7),
            progress: CallProgress::Finished {
                outcome: Outcome::Busy,
                cause_text: Some("User busy".into()),
            },
        };
        assert_eq!(
            bridge().inputs(&ev),
            vec![InputKind::Call {
                call: dialer_core::CallId(7),
                event: CallEvent::HungUp {
                    failure: Some(dialer_core::FailureClass::Busy),
                    ended_at: None
                }
            }]
        );
    }
}
