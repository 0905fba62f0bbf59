//! Tokio AMI client: one driver task owns the socket, reads continuously, correlates replies by
//! ActionID, enforces per-action deadlines, pings, and reconnects with seeded jittered backoff.
//!
//! Asterisk drops a client that does not read fast enough, so the driver never waits on the
//! consumer: events go to a bounded queue with `try_send`, and when it is full they are counted and
//! reported as [`ClientEvent::Lagged`] (the consumer must then reconcile, as after a reconnect).
//!
//! An action written to the socket whose reply never arrives (deadline, cut connection) has an
//! unknown fate: it is reported as such ([`ActionError::fate_unknown`]) and never sent again.

use crate::far_future;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

use crate::codec::{
    Action, Banner, DecodeLimits, Decoder, EncodeError, Frame, Message, ParseError,
};

/// Login name and secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    secret: String,
}

impl Credentials {
    /// Credentials of an AMI user from `manager.conf`.
    pub fn new(username: impl Into<String>, secret: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            secret: secret.into(),
        }
    }

    /// The AMI user name.
    pub fn username(&self) -> &str {
        &self.username
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Send the secret in clear (`Secret:`).
    Plain,
    /// Use the MD5 challenge when Asterisk offers it, else fall back to plain.
    Md5Preferred,
    /// Use the MD5 challenge or fail: the secret never crosses the wire.
    Md5Required,
}

/// Reconnection backoff: exponential from `initial` to `max`, each delay drawn uniformly in its upper
/// half from a generator seeded with `rng_seed` (reproducible runs, no thundering herd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Give up after this many failed attempts in a row; `None` retries until closed.
    pub max_attempts: Option<u32>,
    pub rng_seed: u64,
}

impl Default for ReconnectPolicy {
    fn default() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            max_attempts: None,
            rng_seed: 0x5eed,
        }
    }
}

impl ReconnectPolicy {
    /// Delay before attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32, rng: &mut ChaCha8Rng) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self
            .initial_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(rng.gen_range(0..=jitter_ms))
    }
}

/// Everything the client needs; every wait and queue has a bound here.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port` of the AMI listener.
    pub addr: String,
    pub credentials: Credentials,
    pub auth: AuthMode,
    /// Event classes to receive, sent as the Login `Events:` header (e.g. `call,agent,user`); `None`
    /// leaves Asterisk's default (all the user may read).
    pub events: Option<String>,
    pub connect_timeout: Duration,
    /// Bound on banner + challenge + login; Asterisk answers a failed login after about 1 s.
    pub login_timeout: Duration,
    /// Deadline for actions sent without an explicit one.
    pub action_timeout: Duration,
    /// Bound on one socket write; a peer that stops reading is treated as gone.
    pub write_timeout: Duration,
    /// Send `Ping` this often; its reply must come within `action_timeout`. `None` disables.
    pub keepalive_interval: Option<Duration>,
    pub reconnect: ReconnectPolicy,
    /// Capacity of the event queue towards the consumer.
    pub event_queue: usize,
    /// Capacity of the request queue towards the driver.
    pub request_queue: usize,
    /// Most actions awaiting a reply at once; further requests wait in the request queue.
    pub max_pending_actions: usize,
    /// Most events collected for one list reply.
    pub max_list_items: usize,
    pub decode_limits: DecodeLimits,
    /// Prefix of generated ActionIDs.
    pub action_id_prefix: String,
}

impl ClientConfig {
    /// Defaults suited to a production dialer; adjust the fields as needed.
    pub fn new(addr: impl Into<String>, credentials: Credentials) -> ClientConfig {
        ClientConfig {
            addr: addr.into(),
            credentials,
            auth: AuthMode::Md5Preferred,
            events: Some("call,agent,user".into()),
            connect_timeout: Duration::from_secs(5),
            login_timeout: Duration::from_secs(5),
            action_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(5),
            keepalive_interval: Some(Duration::from_secs(20)),
            reconnect: ReconnectPolicy::default(),
            event_queue: 4096,
            request_queue: 256,
            max_pending_actions: 1024,
            max_list_items: 10_000,
            decode_limits: DecodeLimits::default(),
            action_id_prefix: "ami".into(),
        }
    }
}

/// Why a connection could not be set up or was lost.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no connection to {addr} within {timeout_ms} ms")]
    ConnectTimeout { addr: String, timeout_ms: u64 },
    #[error("login as `{username}` not completed within {timeout_ms} ms")]
    LoginTimeout { username: String, timeout_ms: u64 },
    #[error("login as `{username}` refused: {message}")]
    AuthenticationFailed { username: String, message: String },
    #[error("MD5 login required but the challenge was refused: {message}")]
    Md5Unavailable { message: String },
    #[error("the peer is not an AMI server: {0}")]
    NotAmi(ParseError),
    #[error("connection closed by the peer")]
    Closed,
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("write not accepted within {timeout_ms} ms (peer not reading)")]
    WriteTimeout { timeout_ms: u64 },
    #[error("keep-alive Ping ({action_id}) unanswered within {timeout_ms} ms")]
    KeepaliveTimeout { action_id: String, timeout_ms: u64 },
    #[error("login action refused before sending: {0}")]
    Encode(#[from] EncodeError),
}

impl ClientError {
    /// Errors that retrying will not fix (bad credentials, policy refusal, not an AMI peer).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::AuthenticationFailed { .. }
                | ClientError::Md5Unavailable { .. }
                | ClientError::NotAmi(_)
                | ClientError::Encode(_)
        )
    }
}

/// Why an action was not written at all (safe for the caller to retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSentReason {
    NotConnected,
    /// The request queue stayed full for the whole deadline.
    QueueFull,
    ClientClosed,
    DuplicateActionId,
    DeadlinePassedBeforeSending,
}

impl fmt::Display for NotSentReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSentReason::NotConnected => "not connected",
            NotSentReason::QueueFull => "request queue full",
            NotSentReason::ClientClosed => "client closed",
            NotSentReason::DuplicateActionId => "ActionID already in use",
            NotSentReason::DeadlinePassedBeforeSending => "deadline passed before sending",
        })
    }
}

/// Failure of one action; every variant names the action and its ActionID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{action} ({action_id}) refused before sending: {source}")]
    Encode {
        action_id: String,
        action: String,
        #[source]
        source: EncodeError,
    },
    #[error("{action} ({action_id}) not sent: {reason}")]
    NotSent {
        action_id: String,
        action: String,
        reason: NotSentReason,
    },
    #[error("Asterisk refused {action} ({action_id}): {message}")]
    Refused {
        action_id: String,
        action: String,
        message: String,
    },
    #[error("{action} ({action_id}) unanswered within {deadline_ms} ms; its fate is unknown")]
    DeadlineExceeded {
        action_id: String,
        action: String,
        deadline_ms: u64,
    },
    #[error("connection lost before {action} ({action_id}) was answered; its fate is unknown")]
    ConnectionLost { action_id: String, action: String },
    #[error("list reply to {action} ({action_id}) exceeded {limit} items")]
    ListTooLong {
        action_id: String,
        action: String,
        limit: usize,
    },
}

impl ActionError {
    /// True when the action reached Asterisk (or may have) and no answer came: it may have run.
    pub fn fate_unknown(&self) -> bool {
        matches!(
            self,
            ActionError::DeadlineExceeded { .. } | ActionError::ConnectionLost { .. }
        )
    }

    /// The ActionID concerned.
    pub fn action_id(&self) -> &str {
        match self {
            ActionError::Encode { action_id, .. }
            | ActionError::NotSent { action_id, .. }
            | ActionError::Refused { action_id, .. }
            | ActionError::DeadlineExceeded { action_id, .. }
            | ActionError::ConnectionLost { action_id, .. }
            | ActionError::ListTooLong { action_id, .. } => action_id,
        }
    }
}

/// A list reply: the `EventList: start` response and the events up to the `*Complete` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListReply {
    pub response: Message,
    /// The items, without the closing `*Complete` event.
    pub items: Vec<Message>,
    pub complete: Message,
}

/// Output of an AMI `Command` action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// False when Asterisk answered `Response: Error` with output (e.g. unknown CLI command).
    pub succeeded: bool,
    pub lines: Vec<String>,
}

/// What the client reports to its consumer, in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// Logged in; `generation` is 1 for the first connection and grows on each reconnect.
    Connected { generation: u64, banner: Banner },
    /// An event (or a response nobody waits for).
    Message(Message),
    /// A malformed frame was skipped; the connection goes on.
    Malformed(ParseError),
    /// This many messages were dropped because the consumer was slow: state must be reconciled.
    Lagged { dropped: u64 },
    /// The connection was lost; actions awaiting replies failed with unknown fate.
    Disconnected { generation: u64, error: String },
    /// A reconnection attempt failed; another follows after `retry_in`.
    ReconnectFailed {
        attempt: u32,
        error: String,
        retry_in: Duration,
    },
    /// The client stopped reconnecting (fatal error or attempts exhausted).
    GaveUp { error: String },
}

enum ReplyKind {
    Single,
    List,
}

struct Request {
    action: Action,
    deadline: Duration,
    kind: ReplyKind,
    reply: oneshot::Sender<Result<Reply, ActionError>>,
}

enum Reply {
    Single(Message),
    List(ListReply),
}

enum ToDriver {
    Send(Request),
    Close,
}

/// Handle to a running client. Cheap to clone; the connection closes when [`AmiClient::close`] is
/// called or every handle is dropped.
#[derive(Clone)]
pub struct AmiClient {
    tx: mpsc::Sender<ToDriver>,
    action_timeout: Duration,
    /// ActionIDs are assigned here, before queueing, so every error can name its action.
    next_id: Arc<AtomicU64>,
    id_prefix: Arc<str>,
}

impl fmt::Debug for AmiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmiClient").finish_non_exhaustive()
    }
}

/// Slack over an action's own deadline before the caller stops waiting for the driver itself.
const DRIVER_GRACE: Duration = Duration::from_secs(2);

impl AmiClient {
    /// Connects and logs in (errors such as a refused login are returned here), then hands the
    /// connection to a driver task. Events arrive on the returned receiver, starting with
    /// [`ClientEvent::Connected`].
    pub async fn connect(
        config: ClientConfig,
    ) -> Result<(AmiClient, mpsc::Receiver<ClientEvent>), ClientError> {
        let (stream, decoder, banner) = establish(&config).await?;
        let (tx, rx) = mpsc::channel(config.request_queue.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(config.event_queue.max(1));
        let client = AmiClient {
            tx,
            action_timeout: config.action_timeout,
            next_id: Arc::new(AtomicU64::new(0)),
            id_prefix: config.action_id_prefix.as_str().into(),
        };
        let driver = Driver::new(config, rx, ev_tx);
        tokio::spawn(driver.run(stream, decoder, banner));
        Ok((client, ev_rx))
    }

    /// Sends an action and waits for its response, within the configured action deadline.
    pub async fn send(&self, action: Action) -> Result<Message, ActionError> {
        self.send_with_deadline(action, self.action_timeout).await
    }

    /// Sends an action and waits for its response, within `deadline`.
    pub async fn send_with_deadline(
        &self,
        action: Action,
        deadline: Duration,
    ) -> Result<Message, ActionError> {
        match self.request(action, deadline, ReplyKind::Single).await? {
            Reply::Single(m) => Ok(m),
            Reply::List(l) => Ok(l.response),
        }
    }

    /// Sends a list action (`QueueStatus`, `CoreShowChannels`, ...) and collects its events.
    pub async fn send_list(&self, action: Action) -> Result<ListReply, ActionError> {
        match self
            .request(action, self.action_timeout, ReplyKind::List)
            .await?
        {
            Reply::List(l) => Ok(l),
            Reply::Single(m) => Ok(ListReply {
                response: m.clone(),
                items: Vec::new(),
                complete: m,
            }),
        }
    }

    /// Runs a CLI command (needs the `command` write permission) and returns its output lines.
    pub async fn command(&self, command: &str) -> Result<CommandOutput, ActionError> {
        let action = Action::new("Command").header("Command", command);
        let result = self
            .request(action, self.action_timeout, ReplyKind::Single)
            .await;
        match result {
            Ok(Reply::Single(m)) | Ok(Reply::List(ListReply { response: m, .. })) => {
                Ok(CommandOutput {
                    succeeded: is_success(&m),
                    lines: m.command_output().into_iter().map(str::to_owned).collect(),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Logs off and stops the driver. Pending actions fail with [`NotSentReason::ClientClosed`] or an
    /// unknown fate.
    pub async fn close(&self) {
        let _ = self.tx.send(ToDriver::Close).await;
    }

    async fn request(
        &self,
        mut action: Action,
        deadline: Duration,
        kind: ReplyKind,
    ) -> Result<Reply, ActionError> {
        let (reply, rx) = oneshot::channel();
        let id_hint = match action.action_id() {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let id = format!("{}-{n}", self.id_prefix);
                action.set_action_id(id.clone());
                id
            }
        };
        let name = action.name().to_owned();
        let closed = |reason| ActionError::NotSent {
            action_id: id_hint.clone(),
            action: name.clone(),
            reason,
        };
        let request = ToDriver::Send(Request {
            action,
            deadline,
            kind,
            reply,
        });
        // The request queue is bounded; waiting for room counts against the action's deadline.
        match timeout(deadline, self.tx.send(request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(closed(NotSentReason::ClientClosed)),
            Err(_) => return Err(closed(NotSentReason::QueueFull)),
        }
        match timeout(deadline + DRIVER_GRACE, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(closed(NotSentReason::ClientClosed)),
            Err(_) => Err(ActionError::DeadlineExceeded {
                action_id: id_hint.clone(),
                action: name.clone(),
                deadline_ms: millis(deadline),
            }),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Connects, reads the banner and logs in, all within the configured bounds.
async fn establish(config: &ClientConfig) -> Result<(TcpStream, Decoder, Banner), ClientError> {
    let mut stream = match timeout(config.connect_timeout, TcpStream::connect(&config.addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            return Err(ClientError::Connect {
                addr: config.addr.clone(),
                source,
            })
        }
        Err(_) => {
            return Err(ClientError::ConnectTimeout {
                addr: config.addr.clone(),
                timeout_ms: millis(config.connect_timeout),
            })
        }
    };
    let _ = stream.set_nodelay(true);
    let mut decoder = Decoder::new(config.decode_limits);
    let login = async {
        let banner = match read_frame(&mut stream, &mut decoder).await? {
            Frame::Banner(b) => b,
            Frame::Message(_) => return Err(ClientError::NotAmi(ParseError::BadBanner)),
        };
        login(config, &mut stream, &mut decoder).await?;
        Ok(banner)
    };
    match timeout(config.login_timeout, login).await {
        Ok(Ok(banner)) => Ok((stream, decoder, banner)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(ClientError::LoginTimeout {
            username: config.credentials.username.clone(),
            timeout_ms: millis(config.login_timeout),
        }),
    }
}

async fn read_frame(stream: &mut TcpStream, decoder: &mut Decoder) -> Result<Frame, ClientError> {
    let mut buf = [0u8; 4096];
    loop {
        match decoder.decode() {
            Ok(Some(frame)) => return Ok(frame),
            Ok(None) => {}
            Err(ParseError::BadBanner) => return Err(ClientError::NotAmi(ParseError::BadBanner)),
            Err(e) => tracing::warn!(error = %e, "skipping malformed AMI frame during login"),
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        decoder.feed(&buf[..n]);
    }
}

/// Sends one login-phase action and waits for the response carrying its ActionID (events that
/// arrive meanwhile, such as `FullyBooted`, are not needed and are skipped).
async fn login_exchange(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    action: Action,
) -> Result<Message, ClientError> {
    let mut out = Vec::new();
    action.encode(&mut out)?;
    stream.write_all(&out).await?;
    let id = action.action_id().unwrap_or_default().to_owned();
    loop {
        if let Frame::Message(m) = read_frame(stream, decoder).await? {
            if m.response().is_some() && m.action_id() == Some(id.as_str()) {
                return Ok(m);
            }
        }
    }
}

async fn login(
    config: &ClientConfig,
    stream: &mut TcpStream,
    decoder: &mut Decoder,
) -> Result<(), ClientError> {
    let creds = &config.credentials;
    let prefix = &config.action_id_prefix;
    let mut login = Action::new("Login");
    let mut use_md5 = false;
    if config.auth != AuthMode::Plain {
        let mut challenge = Action::new("Challenge").header("AuthType", "MD5");
        challenge.set_action_id(format!("{prefix}-challenge"));
        let reply = login_exchange(stream, decoder, challenge).await?;
        match (is_success(&reply), reply.get("Challenge")) {
            (true, Some(ch)) => {
                let key = md5_key(ch, &creds.secret);
                login = login
                    .header("AuthType", "MD5")
                    .header("Username", creds.username.as_str())
                    .header("Key", key);
                use_md5 = true;
            }
            _ if config.auth == AuthMode::Md5Required => {
                return Err(ClientError::Md5Unavailable {
                    message: reply.get("Message").unwrap_or("no challenge").to_owned(),
                })
            }
            _ => {}
        }
    }
    if !use_md5 {
        login = login
            .header("Username", creds.username.as_str())
            .header("Secret", creds.secret.as_str());
    }
    if let Some(events) = &config.events {
        login = login.header("Events", events.as_str());
    }
    login.set_action_id(format!("{prefix}-login"));
    let reply = login_exchange(stream, decoder, login).await?;
    if is_success(&reply) {
        tracing::info!(username = %creds.username, md5 = use_md5, "AMI login accepted");
        Ok(())
    } else {
        Err(ClientError::AuthenticationFailed {
            username: creds.username.clone(),
            message: reply.get("Message").unwrap_or("").to_owned(),
        })
    }
}

/// The MD5 login key: hex of md5(challenge ‖ secret), as Asterisk's `manager.c` computes it.
pub fn md5_key(challenge: &str, secret: &str) -> String {
    let mut h = Md5::new();
    h.update(challenge.as_bytes());
    h.update(secret.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn is_success(m: &Message) -> bool {
    m.response()
        .is_some_and(|r| r.eq_ignore_ascii_case("Success") || r.eq_ignore_ascii_case("Follows"))
}

struct Pending {
    action: String,
    deadline_at: Instant,
    deadline: Duration,
    kind: PendingKind,
}

enum PendingKind {
    Caller {
        list: Option<ListState>,
        reply: oneshot::Sender<Result<Reply, ActionError>>,
    },
    KeepAlive,
}

struct ListState {
    response: Option<Message>,
    items: Vec<Message>,
}

/// How a session ended.
enum SessionEnd {
    Closed,
    Lost(ClientError),
}

struct Driver {
    config: ClientConfig,
    rx: mpsc::Receiver<ToDriver>,
    events: mpsc::Sender<ClientEvent>,
    dropped: u64,
    next_id: u64,
    generation: u64,
    rng: ChaCha8Rng,
}

impl Driver {
    fn new(
        config: ClientConfig,
        rx: mpsc::Receiver<ToDriver>,
        events: mpsc::Sender<ClientEvent>,
    ) -> Driver {
        let rng = ChaCha8Rng::seed_from_u64(config.reconnect.rng_seed);
        Driver {
            config,
            rx,
            events,
            dropped: 0,
            next_id: 0,
            generation: 0,
            rng,
        }
    }

    /// Delivers an event without ever blocking the socket reader.
    fn emit(&mut self, event: ClientEvent) {
        if self.dropped > 0 {
            match self.events.try_send(ClientEvent::Lagged {
                dropped: self.dropped,
            }) {
                Ok(()) => self.dropped = 0,
                Err(_) => {
                    self.dropped += 1;
                    return;
                }
            }
        }
        if self.events.try_send(event).is_err() {
            self.dropped += 1;
        }
    }

    async fn run(mut self, stream: TcpStream, decoder: Decoder, banner: Banner) {
        let mut conn = Some((stream, decoder, banner));
        let mut attempt: u32 = 0;
        loop {
            if let Some((stream, decoder, banner)) = conn.take() {
                attempt = 0;
                self.generation += 1;
                self.emit(ClientEvent::Connected {
                    generation: self.generation,
                    banner,
                });
                match self.session(stream, decoder).await {
                    SessionEnd::Closed => return,
                    SessionEnd::Lost(e) => {
                        tracing::warn!(error = %e, generation = self.generation, "AMI connection lost");
                        self.emit(ClientEvent::Disconnected {
                            generation: self.generation,
                            error: e.to_string(),
                        });
                    }
                }
            }
            attempt += 1;
            if self
                .config
                .reconnect
                .max_attempts
                .is_some_and(|max| attempt > max)
            {
                self.emit(ClientEvent::GaveUp {
                    error: format!("{} reconnection attempts failed", attempt - 1),
                });
                self.refuse_all(NotSentReason::NotConnected);
                return;
            }
            let delay = self.config.reconnect.delay(attempt, &mut self.rng);
            if !self.wait_refusing(delay).await {
                return;
            }
            match establish(&self.config).await {
                Ok(c) => conn = Some(c),
                Err(e) if e.is_fatal() => {
                    tracing::error!(error = %e, "AMI reconnection impossible");
                    self.emit(ClientEvent::GaveUp {
                        error: e.to_string(),
                    });
                    self.refuse_all(NotSentReason::NotConnected);
                    return;
                }
                Err(e) => {
                    let retry_in = self
                        .config
                        .reconnect
                        .delay(attempt + 1, &mut self.rng.clone());
                    self.emit(ClientEvent::ReconnectFailed {
                        attempt,
                        error: e.to_string(),
                        retry_in,
                    });
                }
            }
        }
    }

    /// Waits out a backoff delay, refusing requests meanwhile (nothing is queued for a later
    /// connection: the caller decides). Returns false when the client was closed.
    async fn wait_refusing(&mut self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return true,
                msg = self.rx.recv() => match msg {
                    None | Some(ToDriver::Close) => return false,
                    Some(ToDriver::Send(req)) => refuse(req, NotSentReason::NotConnected),
                },
            }
        }
    }

    fn refuse_all(&mut self, reason: NotSentReason) {
        self.rx.close();
        while let Ok(msg) = self.rx.try_recv() {
            if let ToDriver::Send(req) = msg {
                refuse(req, reason);
            }
        }
    }

    async fn session(&mut self, mut stream: TcpStream, mut decoder: Decoder) -> SessionEnd {
        let mut pending: HashMap<String, Pending> = HashMap::new();
        let mut buf = vec![0u8; 16 * 1024];
        let keepalive = self.config.keepalive_interval;
        let mut next_ping = keepalive.map(|k| Instant::now() + k);
        // Frames already buffered during login (FullyBooted, early events) come first.
        let end = loop {
            if let Err(e) = self.drain_frames(&mut decoder, &mut pending) {
                break SessionEnd::Lost(e);
            }
            let next_deadline = pending.values().map(|p| p.deadline_at).min();
            let wake = [next_deadline, next_ping].into_iter().flatten().min();
            let can_take = pending.len() < self.config.max_pending_actions;
            // Tells a consumer that fell behind as soon as it has room, even if no event follows.
            let lag_sender = self.events.clone();
            let lagged = self.dropped > 0;
            // Unbiased: a flood of events must not starve requests, nor requests the reader.
            tokio::select! {
                permit = lag_sender.reserve(), if lagged => {
                    if let Ok(permit) = permit {
                        permit.send(ClientEvent::Lagged { dropped: self.dropped });
                        self.dropped = 0;
                    }
                },
                read = stream.read(&mut buf) => match read {
                    Ok(0) => break SessionEnd::Lost(ClientError::Closed),
                    Ok(n) => decoder.feed(&buf[..n]),
                    Err(e) => break SessionEnd::Lost(ClientError::Io(e)),
                },
                msg = self.rx.recv(), if can_take => match msg {
                    None | Some(ToDriver::Close) => {
                        let mut logoff = Action::new("Logoff");
                        logoff.set_action_id(self.fresh_id());
                        let mut out = Vec::new();
                        if logoff.encode(&mut out).is_ok() {
                            let _ = timeout(self.config.write_timeout, stream.write_all(&out)).await;
                        }
                        break SessionEnd::Closed;
                    }
                    Some(ToDriver::Send(req)) => {
                        if let Err(e) = self.submit(&mut stream, &mut pending, req).await {
                            break SessionEnd::Lost(e);
                        }
                    }
                },
                _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                    let now = Instant::now();
                    if let Some(e) = expire(&mut pending, now) {
                        break SessionEnd::Lost(e);
                    }
                    if next_ping.is_some_and(|t| t <= now) {
                        next_ping = keepalive.map(|k| now + k);
                        if let Err(e) = self.ping(&mut stream, &mut pending).await {
                            break SessionEnd::Lost(e);
                        }
                    }
                },
            }
        };
        // Whatever was written and not answered may have run: report it as unknown, never resend.
        for (action_id, p) in pending.drain() {
            if let PendingKind::Caller { reply, .. } = p.kind {
                let err = match &end {
                    SessionEnd::Closed => ActionError::NotSent {
                        action_id,
                        action: p.action,
                        reason: NotSentReason::ClientClosed,
                    },
                    SessionEnd::Lost(_) => ActionError::ConnectionLost {
                        action_id,
                        action: p.action,
                    },
                };
                let _ = reply.send(Err(err));
            }
        }
        if matches!(end, SessionEnd::Closed) {
            self.refuse_all(NotSentReason::ClientClosed);
        }
        end
    }

    /// ActionIDs of the driver's own actions (Ping, Logoff), apart from the callers' ones.
    fn fresh_id(&mut self) -> String {
        self.next_id += 1;
        format!("{}-internal-{}", self.config.action_id_prefix, self.next_id)
    }

    async fn ping(
        &mut self,
        stream: &mut TcpStream,
        pending: &mut HashMap<String, Pending>,
    ) -> Result<(), ClientError> {
        if pending
            .values()
            .any(|p| matches!(p.kind, PendingKind::KeepAlive))
        {
            return Ok(());
        }
        let id = self.fresh_id();
        let mut ping = Action::new("Ping");
        ping.set_action_id(id.clone());
        let mut out = Vec::new();
        ping.encode(&mut out)?;
        write(stream, &out, self.config.write_timeout).await?;
        let deadline = self.config.action_timeout;
        pending.insert(
            id,
            Pending {
                action: "Ping".into(),
                deadline_at: Instant::now() + deadline,
                deadline,
                kind: PendingKind::KeepAlive,
            },
        );
        Ok(())
    }

    async fn submit(
        &mut self,
        stream: &mut TcpStream,
        pending: &mut HashMap<String, Pending>,
        req: Request,
    ) -> Result<(), ClientError> {
        if req.reply.is_closed() {
            // The caller gave up while the request was queued: writing it now would act on a
            // request its owner already reported as failed.
            return Ok(());
        }
        let id = req.action.action_id().unwrap_or("").to_owned();
        let name = req.action.name().to_owned();
        if pending.contains_key(&id) {
            let _ = req.reply.send(Err(ActionError::NotSent {
                action_id: id,
                action: name,
                reason: NotSentReason::DuplicateActionId,
            }));
            return Ok(());
        }
        let mut out = Vec::new();
        if let Err(source) = req.action.encode(&mut out) {
            tracing::warn!(action = %name, action_id = %id, error = %source, "action refused before sending");
            let _ = req.reply.send(Err(ActionError::Encode {
                action_id: id,
                action: name,
                source,
            }));
            return Ok(());
        }
        tracing::debug!(action = ?req.action, "sending AMI action");
        let list = matches!(req.kind, ReplyKind::List).then(|| ListState {
            response: None,
            items: Vec::new(),
        });
        pending.insert(
            id.clone(),
            Pending {
                action: name,
                deadline_at: Instant::now() + req.deadline,
                deadline: req.deadline,
                kind: PendingKind::Caller {
                    list,
                    reply: req.reply,
                },
            },
        );
        write(stream, &out, self.config.write_timeout).await
    }

    fn drain_frames(
        &mut self,
        decoder: &mut Decoder,
        pending: &mut HashMap<String, Pending>,
    ) -> Result<(), ClientError> {
        loop {
            match decoder.decode() {
                Ok(None) => return Ok(()),
                Ok(Some(Frame::Banner(_))) => {}
                Ok(Some(Frame::Message(m))) => self.dispatch(m, pending),
                Err(e) => {
                    tracing::warn!(error = %e, "skipping malformed AMI frame");
                    self.emit(ClientEvent::Malformed(e));
                }
            }
        }
    }

    fn dispatch(&mut self, msg: Message, pending: &mut HashMap<String, Pending>) {
        let Some(id) = msg.action_id().map(str::to_owned) else {
            self.emit(ClientEvent::Message(msg));
            return;
        };
        let is_response = msg.response().is_some();
        let Some(p) = pending.get_mut(&id) else {
            self.emit(ClientEvent::Message(msg));
            return;
        };
        let limit = self.config.max_list_items;
        let done = match &mut p.kind {
            PendingKind::KeepAlive | PendingKind::Caller { list: None, .. } if !is_response => {
                // An event carrying the ActionID of a plain action (OriginateResponse may race
                // ahead of the Originate's own response) is an ordinary event.
                self.emit(ClientEvent::Message(msg));
                return;
            }
            PendingKind::KeepAlive | PendingKind::Caller { list: None, .. } => true,
            PendingKind::Caller {
                list: Some(state), ..
            } => {
                if is_response {
                    let ok = is_success(&msg);
                    state.response = Some(msg.clone());
                    !ok
                } else if msg.event().is_some() && state.response.is_some() {
                    msg.is_list_complete() || state.items.len() >= limit
                } else {
                    // An event carrying this ActionID before the response (e.g. OriginateResponse
                    // racing ahead) is not a list item.
                    self.emit(ClientEvent::Message(msg));
                    return;
                }
            }
        };
        if !done {
            if let PendingKind::Caller {
                list: Some(state), ..
            } = &mut p.kind
            {
                if !is_response {
                    state.items.push(msg);
                }
            }
            return;
        }
        let Some(p) = pending.remove(&id) else {
            return;
        };
        let PendingKind::Caller { list, reply } = p.kind else {
            return;
        };
        let result = match list {
            None => single_result(id, p.action, msg),
            Some(state) => {
                let response = state.response.unwrap_or_else(|| msg.clone());
                if !is_success(&response) {
                    Err(ActionError::Refused {
                        action_id: id,
                        action: p.action,
                        message: response.get("Message").unwrap_or("").to_owned(),
                    })
                } else if !msg.is_list_complete() {
                    Err(ActionError::ListTooLong {
                        action_id: id,
                        action: p.action,
                        limit,
                    })
                } else {
                    Ok(Reply::List(ListReply {
                        response,
                        items: state.items,
                        complete: msg,
                    }))
                }
            }
        };
        let _ = reply.send(result);
    }
}

fn single_result(action_id: String, action: String, msg: Message) -> Result<Reply, ActionError> {
    let failed = msg
        .response()
        .is_some_and(|r| r.eq_ignore_ascii_case("Error"));
    if failed && msg.command_output().is_empty() {
        Err(ActionError::Refused {
            action_id,
            action,
            message: msg.get("Message").unwrap_or("").to_owned(),
        })
    } else {
        Ok(Reply::Single(msg))
    }
}

/// Fails every action whose deadline has passed; a late keep-alive means the link is dead.
fn expire(pending: &mut HashMap<String, Pending>, now: Instant) -> Option<ClientError> {
    let expired: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.deadline_at <= now)
        .map(|(id, _)| id.clone())
        .collect();
    let mut lost = None;
    for id in expired {
        let Some(p) = pending.remove(&id) else {
            continue;
        };
        match p.kind {
            PendingKind::KeepAlive => {
                lost = Some(ClientError::KeepaliveTimeout {
                    action_id: id,
                    timeout_ms: millis(p.deadline),
                });
            }
            PendingKind::Caller { reply, .. } => {
                tracing::warn!(action = %p.action, action_id = %id, "AMI action deadline exceeded");
                let _ = reply.send(Err(ActionError::DeadlineExceeded {
                    action_id: id,
                    action: p.action,
                    deadline_ms: millis(p.deadline),
                }));
            }
        }
    }
    lost
}

fn refuse(req: Request, reason: NotSentReason) {
    let _ = req.reply.send(Err(ActionError::NotSent {
        action_id: req.action.action_id().unwrap_or("").to_owned(),
        action: req.action.name().to_owned(),
        reason,
    }));
}

async fn write(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> Result<(), ClientError> {
    match timeout(limit, stream.write_all(bytes)).await {
        Ok(r) => r.map_err(ClientError::Io),
        Err(_) => Err(ClientError::WriteTimeout {
            timeout_ms: millis(limit),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_key_matches_the_key_asterisk_accepted_in_the_recording() {
        // login_md5 transcript: Challenge 178575358, secret dialersecret.
        assert_eq!(
            md5_key("178575358", "dialersecret"),
            "0979a79693c660b3605a95133b7dee33"
        );
    }

    #[test]
    fn credentials_debug_redacts_the_secret() {
        let shown = format!("{:?}", Credentials::new("dialer", "dialersecret"));
        assert!(shown.contains("dialer"));
        assert!(!shown.contains("dialersecret"), "{shown}");
    }

    #[test]
    fn backoff_grows_is_capped_and_is_reproducible_from_its_seed() {
        let policy = ReconnectPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_attempts: None,
            rng_seed: 7,
        };
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (1..=8)
                .map(|a| policy.delay(a, &mut rng))
                .collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        for (i, d) in a.iter().enumerate() {
            let full = Duration::from_millis(100 * (1u64 << i)).min(Duration::from_millis(1000));
            assert!(*d >= full / 2 && *d <= full, "attempt {}: {d:?}", i + 1);
        }
    }
}
