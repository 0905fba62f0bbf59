//! Async glue: one task owns the [`CallTracker`] and an [`AmiClient`], turns intents into actions and
//! AMI events into call progress, and reconciles after every reconnect or lost event.

use crate::far_future;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

use crate::client::{ActionError, AmiClient, ClientConfig, ClientError, ClientEvent};
use crate::codec::Action;
use crate::tracker::{
    AgentUpdate, AmiOriginate, CallProgress, CallRef, CallTracker, OriginateReply, TrackerConfig,
    TrackerOutput,
};

/// Configuration of the backend.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    pub client: ClientConfig,
    pub tracker: TrackerConfig,
    /// Queues to snapshot with `QueueStatus` after a reconnect; empty means all queues.
    pub reconcile_queues: Vec<String>,
    /// Deadline for Asterisk's reply to an Originate (the "successfully queued" response).
    pub originate_timeout: Duration,
    /// Reconcile on the first connection too, so channels left by a previous run of the dialer
    /// count against the line limit.
    pub reconcile_on_start: bool,
    /// Capacity of the intent queue and of the progress queue.
    pub command_queue: usize,
    pub event_queue: usize,
}

impl BackendConfig {
    /// Defaults: reconcile all queues, 10 s originate deadline, reconcile on start.
    pub fn new(client: ClientConfig, tracker: TrackerConfig) -> BackendConfig {
        BackendConfig {
            client,
            tracker,
            reconcile_queues: Vec::new(),
            originate_timeout: Duration::from_secs(10),
            reconcile_on_start: true,
            command_queue: 256,
            event_queue: 4096,
        }
    }
}

/// Connection milestones the core may want to show or act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    Up {
        generation: u64,
    },
    Down {
        error: String,
    },
    /// Reconciliation done; `lines_in_use` is the number of calls Asterisk really has for us.
    Reconciled {
        lines_in_use: usize,
    },
    /// Reconciliation could not run; unresolved calls keep their lines until the next attempt.
    ReconcileFailed {
        error: String,
        lines_in_use: usize,
    },
    /// The client stopped reconnecting; no further calls can be placed.
    GaveUp {
        error: String,
    },
}

/// What the backend reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    Call {
        call: CallRef,
        progress: CallProgress,
    },
    Agent(AgentUpdate),
    Connection(ConnectionState),
    /// What Asterisk calls a call (see [`TrackerOutput::Identity`]).
    Identity {
        call: CallRef,
        unique_id: String,
        channel: String,
    },
}

/// Why a request to the backend was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("the AMI backend has stopped")]
    Stopped,
    /// The backend's queue is full (its consumer is not reading events): never block the caller,
    /// who may be that very consumer.
    #[error("the AMI backend is busy (request queue full)")]
    Busy,
}

/// Longest wait for the backend to answer a query.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

enum Command {
    Originate(Box<AmiOriginate>),
    Hangup(CallRef),
    /// An action whose reply only matters for the log (queue pause, member add/remove).
    Action(Action),
    LinesInUse(oneshot::Sender<usize>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the running backend.
#[derive(Debug, Clone)]
pub struct AmiBackend {
    tx: mpsc::Sender<Command>,
}

impl AmiBackend {
    /// Connects and logs in (login errors are returned here), then runs the backend task.
    pub async fn start(
        config: BackendConfig,
    ) -> Result<(AmiBackend, mpsc::Receiver<BackendEvent>), ClientError> {
        let (client, client_events) = AmiClient::connect(config.client.clone()).await?;
        let (tx, rx) = mpsc::channel(config.command_queue.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(config.event_queue.max(1));
        let task = Task {
            tracker: CallTracker::new(config.tracker.clone()),
            config,
            client,
            events: ev_tx,
        };
        tokio::spawn(task.run(rx, client_events));
        Ok((AmiBackend { tx }, ev_rx))
    }

    fn submit(&self, cmd: Command) -> Result<(), BackendError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BackendError::Busy,
            mpsc::error::TrySendError::Closed(_) => BackendError::Stopped,
        })
    }

    /// Places a call; its progress arrives as [`BackendEvent::Call`] (a refusal included).
    pub async fn originate(&self, req: AmiOriginate) -> Result<(), BackendError> {
        self.submit(Command::Originate(Box::new(req)))
    }

    /// Hangs a call up (before answer this yields [`crate::tracker::Outcome::Cancelled`]).
    pub async fn hangup(&self, call: CallRef) -> Result<(), BackendError> {
        self.submit(Command::Hangup(call))
    }

    /// Sends an action whose reply only matters for the log (queue member control). The
    /// action is encoded by the codec, which refuses CR, LF and NUL in any header.
    pub async fn send_action(&self, action: Action) -> Result<(), BackendError> {
        self.submit(Command::Action(action))
    }

    /// Lines currently held (live or unresolved calls, plus orphans found by reconciliation).
    pub async fn lines_in_use(&self) -> Result<usize, BackendError> {
        let (tx, rx) = oneshot::channel();
        self.submit(Command::LinesInUse(tx))?;
        match timeout(QUERY_TIMEOUT, rx).await {
            Ok(Ok(n)) => Ok(n),
            Ok(Err(_)) => Err(BackendError::Stopped),
            Err(_) => Err(BackendError::Busy),
        }
    }

    /// Logs off and stops the task (waits at most a few seconds).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.submit(Command::Shutdown(tx)).is_ok() {
            let _ = timeout(QUERY_TIMEOUT, rx).await;
        }
    }
}

struct Task {
    config: BackendConfig,
    tracker: CallTracker,
    client: AmiClient,
    events: mpsc::Sender<BackendEvent>,
}

fn reply_of(result: Result<crate::codec::Message, ActionError>) -> OriginateReply {
    match result {
        Ok(_) => OriginateReply::Queued,
        Err(ActionError::Refused { message, .. }) => OriginateReply::Refused { message },
        Err(e @ (ActionError::Encode { .. } | ActionError::NotSent { .. })) => {
            OriginateReply::NotSent {
                detail: e.to_string(),
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "originate fate unknown; it will not be re-sent");
            OriginateReply::FateUnknown
        }
    }
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut client_events: mpsc::Receiver<ClientEvent>,
    ) {
        // Originate replies come back from short-lived tasks, at most one per line.
        let (reply_tx, mut replies) =
            mpsc::channel::<(CallRef, OriginateReply)>(self.config.tracker.line_limit.max(1));
        loop {
            if !self.flush().await {
                return;
            }
            let wake = self.tracker.poll_timeout();
            tokio::select! {
                ev = client_events.recv() => match ev {
                    None => {
                        self.send(BackendEvent::Connection(ConnectionState::GaveUp {
                            error: "client stopped".into(),
                        })).await;
                        return;
                    }
                    Some(ev) => self.on_client_event(ev).await,
                },
                cmd = commands.recv() => match cmd {
                    None => {
                        self.client.close().await;
                        return;
                    }
                    Some(Command::Shutdown(done)) => {
                        self.client.close().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(Command::LinesInUse(tx)) => {
                        let _ = tx.send(self.tracker.lines_in_use());
                    }
                    Some(Command::Action(action)) => self.send_detached(action),
                    Some(Command::Hangup(call)) => {
                        if let Some(action) = self.tracker.begin_hangup(call) {
                            self.send_detached(action);
                        }
                    }
                    Some(Command::Originate(req)) => {
                        let call = req.call;
                        match self.tracker.begin_originate(&req) {
                            Err(reason) => {
                                self.send(BackendEvent::Call {
                                    call,
                                    progress: CallProgress::OriginateRefused(reason),
                                }).await;
                            }
                            Ok(action) => {
                                let client = self.client.clone();
                                let tx = reply_tx.clone();
                                let deadline = self.config.originate_timeout;
                                tokio::spawn(async move {
                                    let result = client.send_with_deadline(action, deadline).await;
                                    let _ = tx.send((call, reply_of(result))).await;
                                });
                            }
                        }
                    }
                },
                Some((call, reply)) = replies.recv() => {
                    let unknown = reply == OriginateReply::FateUnknown;
                    self.tracker.handle_originate_reply(call, reply);
                    if unknown {
                        // Ask Asterisk what exists now rather than guess or resend.
                        self.reconcile().await;
                    }
                }
                _ = sleep_until(wake.map(Instant::from_std).unwrap_or_else(far_future)), if wake.is_some() => {
                    self.tracker.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    async fn on_client_event(&mut self, ev: ClientEvent) {
        let now = Instant::now().into_std();
        match ev {
            ClientEvent::Message(m) => self.tracker.handle_message(&m, now),
            ClientEvent::Connected { generation, .. } => {
                self.send(BackendEvent::Connection(ConnectionState::Up { generation }))
                    .await;
                if generation > 1 || self.config.reconcile_on_start {
                    self.reconcile().await;
                }
            }
            ClientEvent::Disconnected { error, .. } => {
                self.tracker.handle_events_lost();
                self.send(BackendEvent::Connection(ConnectionState::Down { error }))
                    .await;
            }
            ClientEvent::Lagged { dropped } => {
                tracing::warn!(dropped, "AMI events dropped; reconciling");
                self.tracker.handle_events_lost();
                self.reconcile().await;
            }
            ClientEvent::Malformed(e) => {
                tracing::warn!(error = %e, "malformed AMI frame skipped");
            }
            ClientEvent::ReconnectFailed { attempt, error, .. } => {
                tracing::warn!(attempt, %error, "AMI reconnection failed");
            }
            ClientEvent::GaveUp { error } => {
                self.send(BackendEvent::Connection(ConnectionState::GaveUp { error }))
                    .await;
            }
        }
    }

    /// Snapshots channels (and queues) and lets the tracker settle every call that went through a
    /// gap. On failure the gap stays and the next reconnect tries again.
    async fn reconcile(&mut self) {
        let channels = match self.client.send_list(Action::new("CoreShowChannels")).await {
            Ok(list) => list.items,
            Err(e) => {
                tracing::warn!(error = %e, "reconciliation failed");
                let lines_in_use = self.tracker.lines_in_use();
                self.send(BackendEvent::Connection(ConnectionState::ReconcileFailed {
                    error: e.to_string(),
                    lines_in_use,
                }))
                .await;
                return;
            }
        };
        self.tracker
            .handle_channel_snapshot(&channels, Instant::now().into_std());
        let queues: Vec<Option<String>> = if self.config.reconcile_queues.is_empty() {
            vec![None]
        } else {
            self.config
                .reconcile_queues
                .iter()
                .cloned()
                .map(Some)
                .collect()
        };
        for queue in queues {
            let mut action = Action::new("QueueStatus");
            if let Some(q) = queue {
                action = action.header("Queue", q);
            }
            match self.client.send_list(action).await {
                Ok(list) => self
                    .tracker
                    .handle_queue_snapshot(&list.items, Instant::now().into_std()),
                Err(e) => tracing::warn!(error = %e, "queue reconciliation failed"),
            }
        }
        let lines_in_use = self.tracker.lines_in_use();
        self.send(BackendEvent::Connection(ConnectionState::Reconciled {
            lines_in_use,
        }))
        .await;
    }

    fn send_detached(&self, action: Action) {
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.send(action).await {
                tracing::warn!(error = %e, "AMI action failed");
            }
        });
    }

    /// Drains the tracker's outputs. Returns false when the consumer is gone.
    async fn flush(&mut self) -> bool {
        while let Some(out) = self.tracker.poll_output() {
            let ev = match out {
                TrackerOutput::Call { call, progress } => BackendEvent::Call { call, progress },
                TrackerOutput::Agent(a) => BackendEvent::Agent(a),
                TrackerOutput::Identity {
                    call,
                    unique_id,
                    channel,
                } => BackendEvent::Identity {
                    call,
                    unique_id,
                    channel,
                },
                TrackerOutput::Transmit(action) => {
                    self.send_detached(action);
                    continue;
                }
            };
            if self.events.send(ev).await.is_err() {
                self.client.close().await;
                return false;
            }
        }
        true
    }

    async fn send(&mut self, ev: BackendEvent) {
        // Tracker outputs produced before this event go first, to keep the order.
        let _ = self.flush().await;
        let _ = self.events.send(ev).await;
    }
}
