//! A loopback AMI server that replays byte streams recorded from a real Asterisk 22.
//!
//! Each accepted connection plays one [`Script`]: the recorded banner, then for every action the
//! client sends, the next recorded exchange for that action name (the recorded reply and the events
//! that followed it), in recorded order. Ids are rewritten so the client may choose its own: the
//! recorded ActionID becomes the client's, and the recorded ChannelId/OtherChannelId become the ones
//! the client put in its Originate (across connections too, so a reconnect sees the same call). A
//! Login with an MD5 `Key` must equal the recorded key (the recorded challenge is replayed).
//!
//! Every byte received is recorded so tests can prove what did, and did not, reach the socket.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use backend_ami::codec::{DecodeLimits, Decoder, Frame, Message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One recorded exchange: the action the client sent and the bytes Asterisk sent until the next one.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub action: Message,
    pub reply: Vec<u8>,
    pub then_close: bool,
}

/// A transcript split into banner and exchanges.
#[derive(Debug, Clone)]
pub struct Transcript {
    pub name: String,
    pub banner: Vec<u8>,
    pub exchanges: Vec<Exchange>,
    pub ids: Option<serde_json::Value>,
}

pub fn fixture(name: &str) -> PathBuf {
    // Also used by the root package's runtime tests, whose manifest dir is the workspace root.
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let own = here.join("tests/fixtures");
    let dir = if own.is_dir() {
        own
    } else {
        here.join("crates/backend-ami/tests/fixtures")
    };
    dir.join(name)
}

/// Every message in `bytes` (after the greeting line when `banner`). A frame that does not
/// parse fails the test: a damaged fixture must not quietly shorten a replay.
pub fn decode_all(bytes: &[u8], banner: bool) -> Vec<Message> {
    let limits = DecodeLimits::default();
    let mut d = if banner {
        Decoder::new(limits)
    } else {
        Decoder::without_banner(limits)
    };
    d.feed(bytes);
    let mut out = Vec::new();
    loop {
        match d.decode() {
            Ok(Some(Frame::Message(m))) => out.push(m),
            Ok(Some(_)) => {}
            Ok(None) => return out,
            Err(e) => panic!("bytes that do not parse: {e}"),
        }
    }
}

/// Waits for the next item on `rx`, failing the test after [`HANG_GUARD`] or if the sender
/// has gone.
pub async fn recv<T>(rx: &mut tokio::sync::mpsc::Receiver<T>) -> T {
    tokio::time::timeout(HANG_GUARD, rx.recv())
        .await
        .expect("event within the hang guard")
        .expect("sender alive")
}

/// No test waits longer than this for anything.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(20);

impl Transcript {
    /// Loads `tests/fixtures/<name>.timeline.jsonl` (and `.ids.json` when present).
    pub fn load(name: &str) -> Transcript {
        let text = std::fs::read_to_string(fixture(&format!("{name}.timeline.jsonl")))
            .unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        let mut banner = Vec::new();
        let mut exchanges: Vec<Exchange> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).expect("timeline line is JSON");
            let bytes = v["bytes"].as_str().unwrap_or("").as_bytes().to_vec();
            match v["dir"].as_str() {
                Some("in") => match exchanges.last_mut() {
                    Some(x) => x.reply.extend_from_slice(&bytes),
                    None => banner.extend_from_slice(&bytes),
                },
                Some("out") => {
                    // A chunk may hold several actions (the injection recordings do).
                    for action in decode_all(&bytes, false) {
                        exchanges.push(Exchange {
                            action,
                            reply: Vec::new(),
                            then_close: false,
                        });
                    }
                }
                Some("close") => {
                    if let Some(x) = exchanges.last_mut() {
                        x.then_close = true;
                    }
                }
                other => panic!("unknown timeline direction {other:?}"),
            }
        }
        let ids = std::fs::read_to_string(fixture(&format!("{name}.ids.json")))
            .ok()
            .map(|t| serde_json::from_str(&t).expect("ids.json is JSON"));
        Transcript {
            name: name.into(),
            banner,
            exchanges,
            ids,
        }
    }

    /// The recorded action named `action` (first one).
    pub fn recorded_action(&self, action: &str) -> &Message {
        &self
            .exchanges
            .iter()
            .find(|x| {
                x.action
                    .get("Action")
                    .is_some_and(|a| a.eq_ignore_ascii_case(action))
            })
            .unwrap_or_else(|| panic!("{} has no {action}", self.name))
            .action
    }

    /// The callee's channel in the recorded Originate: its `Channel`, or for a two-step call
    /// (`Application: Dial`) the first argument of its `Data`.
    pub fn callee_channel(&self) -> String {
        let rec = self.recorded_action("Originate");
        match rec.get("Application") {
            Some(app) if app.eq_ignore_ascii_case("Dial") => rec
                .get("Data")
                .unwrap_or("")
                .split(',')
                .next()
                .unwrap_or("")
                .to_owned(),
            _ => rec.get("Channel").unwrap_or("").to_owned(),
        }
    }

    /// The number dialed in the recorded Originate (`Local/2001@callees` → `2001`).
    pub fn dialed_number(&self) -> String {
        let ch = self.callee_channel();
        let ch = ch.as_str();
        let rest = ch.split_once('/').map(|(_, r)| r).unwrap_or(ch);
        rest.split('@').next().unwrap_or(rest).to_owned()
    }
}

/// What a connection does besides replaying.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub transcript: Option<Transcript>,
    /// Close the socket right after these bytes appear in what is being sent (may be mid-message).
    pub cut_after: Option<String>,
    /// Write these bytes just before the first occurrence of the pattern in a recorded reply.
    pub inject_before: Option<(String, Vec<u8>)>,
    /// Never answer actions after this many were answered (a stalled server); bytes are still read.
    pub stall_after_actions: Option<usize>,
    /// Id rewrites known in advance (recorded id → id the test wants Asterisk to report).
    pub preset_rewrites: Vec<(String, String)>,
}

impl Script {
    pub fn replay(name: &str) -> Script {
        Script {
            transcript: Some(Transcript::load(name)),
            ..Script::default()
        }
    }
}

/// What the server saw on one connection.
#[derive(Debug, Clone, Default)]
pub struct ConnLog {
    pub received: Vec<u8>,
    pub actions: Vec<Message>,
    /// Actions with no recorded exchange left (answered with an error).
    pub unexpected: Vec<Message>,
    /// Disagreements with the recording (e.g. a wrong MD5 key).
    pub mismatches: Vec<String>,
}

#[derive(Default)]
struct Shared {
    logs: Vec<ConnLog>,
    /// recorded id → id chosen by the client, applied to every connection.
    rewrites: Vec<(String, String)>,
}

pub struct ReplayServer {
    pub addr: String,
    shared: Arc<Mutex<Shared>>,
}

impl ReplayServer {
    /// Starts a server whose n-th connection plays `scripts[n]`; further connections are closed.
    pub async fn start(scripts: Vec<Script>) -> ReplayServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr").to_string();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s2 = shared.clone();
        tokio::spawn(async move {
            let mut scripts = scripts.into_iter();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                let index = {
                    let mut g = s2.lock().unwrap();
                    g.logs.push(ConnLog::default());
                    g.logs.len() - 1
                };
                match scripts.next() {
                    Some(script) => {
                        tokio::spawn(serve(sock, script, s2.clone(), index));
                    }
                    None => drop(sock),
                }
            }
        });
        ReplayServer { addr, shared }
    }

    pub fn log(&self, connection: usize) -> ConnLog {
        self.shared
            .lock()
            .unwrap()
            .logs
            .get(connection)
            .cloned()
            .unwrap_or_default()
    }

    pub fn connections(&self) -> usize {
        self.shared.lock().unwrap().logs.len()
    }

    /// Every byte received on every connection.
    pub fn all_received(&self) -> Vec<u8> {
        let g = self.shared.lock().unwrap();
        g.logs.iter().flat_map(|l| l.received.clone()).collect()
    }
}

fn replace_all(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve(mut sock: TcpStream, script: Script, shared: Arc<Mutex<Shared>>, index: usize) {
    let Some(transcript) = script.transcript.clone() else {
        return;
    };
    let mut out = Output {
        cut_after: script.cut_after.clone(),
        closed: false,
    };
    let mut inject = script.inject_before.clone();
    shared
        .lock()
        .unwrap()
        .rewrites
        .extend(script.preset_rewrites.iter().cloned());
    if out.write(&mut sock, &transcript.banner).await.is_err() {
        return;
    }
    let mut cursor = 0;
    let mut used = vec![false; transcript.exchanges.len()];
    let mut answered = 0;
    let mut decoder = Decoder::without_banner(DecodeLimits::default());
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        shared.lock().unwrap().logs[index]
            .received
            .extend_from_slice(&buf[..n]);
        decoder.feed(&buf[..n]);
        while let Ok(Some(frame)) = decoder.decode() {
            let Frame::Message(action) = frame else {
                continue;
            };
            shared.lock().unwrap().logs[index]
                .actions
                .push(action.clone());
            if script.stall_after_actions.is_some_and(|k| answered >= k) {
                continue;
            }
            answered += 1;
            let name = action.get("Action").unwrap_or("").to_owned();
            // The next unused recorded exchange for this action, preferring recorded order; a
            // client may ask for the same lists in another order (reconciliation does).
            let matches = |i: &usize| {
                !used[*i]
                    && transcript.exchanges[*i]
                        .action
                        .get("Action")
                        .is_some_and(|a| a.eq_ignore_ascii_case(&name))
            };
            let found = (cursor..used.len())
                .find(|i| matches(i))
                .or_else(|| (0..used.len()).find(|i| matches(i)));
            let Some(at) = found else {
                let id = action.action_id().unwrap_or("");
                let reply = format!(
                    "Response: Error\r\nActionID: {id}\r\nMessage: Invalid/unknown command\r\n\r\n"
                );
                shared.lock().unwrap().logs[index]
                    .unexpected
                    .push(action.clone());
                if out.write(&mut sock, reply.as_bytes()).await.is_err() {
                    return;
                }
                continue;
            };
            let x = &transcript.exchanges[at];
            used[at] = true;
            cursor = cursor.max(at + 1);
            let reply = {
                let mut g = shared.lock().unwrap();
                learn(&mut g, &x.action, &action);
                if let (Some(want), Some(got)) = (x.action.get("Key"), action.get("Key")) {
                    if want != got {
                        g.logs[index]
                            .mismatches
                            .push(format!("MD5 key {got} differs from recorded {want}"));
                    }
                }
                let mut reply = x.reply.clone();
                // Garbage goes in at its recorded place, before ids are rewritten.
                if let Some((pattern, garbage)) = inject.take() {
                    match find(&reply, pattern.as_bytes()) {
                        Some(at) => {
                            let mut with = reply[..at].to_vec();
                            with.extend_from_slice(&garbage);
                            with.extend_from_slice(&reply[at..]);
                            reply = with;
                        }
                        None => inject = Some((pattern, garbage)),
                    }
                }
                if let (Some(rec), Some(now)) = (x.action.action_id(), action.action_id()) {
                    reply = replace_all(
                        &reply,
                        format!("ActionID: {rec}\r\n").as_bytes(),
                        format!("ActionID: {now}\r\n").as_bytes(),
                    );
                }
                for (from, to) in &g.rewrites {
                    reply = replace_all(&reply, from.as_bytes(), to.as_bytes());
                }
                reply
            };
            if out.write(&mut sock, &reply).await.is_err() || out.closed {
                return;
            }
            if x.then_close {
                let _ = sock.shutdown().await;
                return;
            }
        }
    }
}

/// Learns the ids the client chose for the recorded Originate.
fn learn(g: &mut Shared, recorded: &Message, got: &Message) {
    for h in ["ChannelId", "OtherChannelId"] {
        if let (Some(rec), Some(now)) = (recorded.get(h), got.get(h)) {
            if !g.rewrites.iter().any(|(f, _)| f == rec) {
                g.rewrites.push((rec.to_owned(), now.to_owned()));
            }
        }
    }
}

struct Output {
    cut_after: Option<String>,
    closed: bool,
}

impl Output {
    async fn write(&mut self, sock: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        if let Some(pattern) = self.cut_after.clone() {
            if let Some(at) = find(bytes, pattern.as_bytes()) {
                sock.write_all(&bytes[..at + pattern.len()]).await?;
                sock.flush().await?;
                let _ = sock.shutdown().await;
                self.closed = true;
                return Ok(());
            }
        }
        sock.write_all(bytes).await
    }
}

/// The call a recorded Originate placed, expressed as a backend request.
pub fn originate_from(t: &Transcript, call: u64, amd: bool) -> backend_ami::tracker::AmiOriginate {
    use backend_ami::tracker::{AgentRef, AmiOriginate, CallRef, CallerId, LegOrder, Routing};
    let rec = t.recorded_action("Originate");
    let number = t.dialed_number();
    let channel = t.callee_channel().replacen(&number, "{number}", 1);
    let timeout = |ms: Option<&str>| {
        std::time::Duration::from_millis(ms.and_then(|t| t.parse().ok()).unwrap_or(15_000))
    };
    // A two-step call rings `Channel` (the agent) for `Timeout`, then dials the callee for
    // the seconds after the comma in `Data`.
    let (order, ring_timeout) = match rec.get("Application") {
        Some(app) if app.eq_ignore_ascii_case("Dial") => {
            let interface = rec.get("Channel").unwrap_or("").to_owned();
            let name = interface
                .split_once('/')
                .map_or(interface.as_str(), |(_, r)| r)
                .split('@')
                .next()
                .unwrap_or("")
                .to_owned();
            let ring_s: u64 = rec
                .get("Data")
                .and_then(|d| d.split(',').nth(1))
                .and_then(|s| s.parse().ok())
                .unwrap_or(15);
            (
                LegOrder::AgentFirst {
                    agent: AgentRef { interface, name },
                    ring_agent: timeout(rec.get("Timeout")),
                },
                std::time::Duration::from_secs(ring_s),
            )
        }
        _ => (LegOrder::CalleeFirst, timeout(rec.get("Timeout"))),
    };
    let variables = rec
        .get_all("Variable")
        .filter_map(|v| v.split_once('='))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    AmiOriginate {
        call: CallRef(call),
        number,
        caller_id: CallerId {
            name: "Dialer".into(),
            number: "5550100".into(),
        },
        ring_timeout,
        variables,
        routing: Routing {
            channel,
            context: rec.get("Context").unwrap_or("").into(),
            exten: rec.get("Exten").unwrap_or("").into(),
            priority: rec
                .get("Priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1),
        },
        amd,
        order,
    }
}

/// The recorded server bytes with the recorded ids replaced by those the tracker derives for
/// `call` (`dlr-<call>`, `dlr-<call>-o`, `orig-<call>`).
pub fn rewrite_ids(t: &Transcript, bytes: &[u8], call: u64) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let rec_action = t.recorded_action("Originate");
    let pairs = [
        ("ChannelId", format!("dlr-{call}")),
        ("OtherChannelId", format!("dlr-{call}-o")),
        ("ActionID", format!("orig-{call}")),
    ];
    for (key, ours) in pairs {
        if let Some(rec) = rec_action.get(key) {
            let from = if key == "ActionID" {
                format!("ActionID: {rec}\r\n")
            } else {
                rec.to_owned()
            };
            let to = if key == "ActionID" {
                format!("ActionID: {ours}\r\n")
            } else {
                ours
            };
            out = replace_all(&out, from.as_bytes(), to.as_bytes());
        }
    }
    out
}
