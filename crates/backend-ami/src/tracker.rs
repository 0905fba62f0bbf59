//! Sans-IO call tracker: follows originated calls through AMI events and classifies them.
//!
//! The tracker never touches a socket or a clock. Inputs are the `handle_*` methods (an Originate
//! reply, a parsed event, a lost connection, a reconciliation snapshot, a timer firing at `now`);
//! outputs are drained with [`CallTracker::poll_output`], and [`CallTracker::poll_timeout`] says when
//! [`CallTracker::handle_timeout`] must be called next. Calls are recognised by the ids the dialer
//! chose: `ChannelId` (the originated leg's Uniqueid, also the Linkedid of every channel of the call)
//! and `OtherChannelId` (the `;2` half of a Local channel).
//!
//! The outcome comes from the Hangup `Cause` of the dialed leg, whatever the order in which
//! `OriginateResponse` and the Hangups arrive; `Reason` only breaks ties when no cause tells (cause 0
//! or 16 before answer). On a Local channel the dialed leg is `;2` (`;1` often reports 0).

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use crate::codec::{Action, EncodeError, Message};

/// The core's identifier of one call attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef(pub u64);

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where and how a campaign's calls are placed (from the campaign's routing settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Dial string with a `{number}` placeholder, e.g. `PJSIP/{number}@trunk` or `Local/{number}@out`.
    pub channel: String,
    /// Dialplan context, extension and priority the answered call continues in.
    pub context: String,
    pub exten: String,
    pub priority: u32,
}

/// Caller id presented to the callee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerId {
    pub name: String,
    pub number: String,
}

/// One call to place, in the backend's own terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmiOriginate {
    pub call: CallRef,
    /// Digits to dial (`0-9`, `+`, `*`, `#`); anything else is refused, so the number cannot alter
    /// the dial string.
    pub number: String,
    pub caller_id: CallerId,
    pub ring_timeout: Duration,
    /// Channel variables, in order; names are whitelisted and values escaped on encoding.
    pub variables: Vec<(String, String)>,
    pub routing: Routing,
    /// Wait for an `AMDSTATUS` before reporting the answer.
    pub amd: bool,
    /// Which leg rings first.
    pub order: LegOrder,
}

/// Which leg of a call rings first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LegOrder {
    /// `Channel` is the callee (the routing's channel); the answered call continues in the
    /// routing's context and extension.
    #[default]
    CalleeFirst,
    /// uContact's two-step call: `Channel` is the agent's phone, rung for `ring_agent`; once it
    /// answers, it runs `Dial(<callee channel>,<ring timeout s>)`. The Originate's result is
    /// the agent's answer; the callee's is the `Dial`'s `DialEnd` on the agent's channel.
    AgentFirst {
        /// The agent, as its queue membership names it (its interface is rung).
        agent: AgentRef,
        /// How long the agent's phone may ring.
        ring_agent: Duration,
    },
}

/// Who answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Human,
    Machine,
    /// No answering-machine detection, or it could not tell.
    Unknown,
}

/// Final classification of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Answered, then ended; `cause` is the hangup cause when it was seen.
    Answered {
        kind: AnswerKind,
        cause: Option<u16>,
    },
    Busy,
    NoAnswer,
    Rejected,
    Congestion,
    InvalidNumber,
    /// The dialer hung up before the callee answered.
    Cancelled,
    /// Asterisk could not place the call (routing error, unexpected cause) after its channel
    /// was created.
    Failed {
        reason: Option<u8>,
        cause: Option<u16>,
    },
    /// Asterisk could not create the call's channel at all (an unknown channel technology, a
    /// missing or unreachable endpoint): `OriginateResponse` failed and no channel of the call
    /// ever existed, so nothing was dialed. The telephone system's fault, never the callee's.
    NoChannel {
        reason: Option<u8>,
    },
    /// A two-step call whose agent did not answer or could not be reached: the callee was
    /// never dialed.
    AgentUnreachable {
        reason: Option<u8>,
        cause: Option<u16>,
    },
    /// Events were lost (connection cut) and reconciliation could not tell what happened.
    Unknown,
}

/// Why an Originate was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefusalReason {
    #[error("campaign line limit of {limit} reached")]
    LineLimit { limit: usize },
    #[error("call {call} is already being tracked")]
    DuplicateCall { call: CallRef },
    #[error("number `{number}` contains characters other than digits, `+`, `*`, `#`")]
    InvalidNumber { number: String },
    #[error("routing channel `{channel}` has no `{{number}}` placeholder")]
    InvalidRouting { channel: String },
    #[error("a two-step call cannot dial `{channel}`: a `,` would end Dial's channel argument")]
    InvalidDialChannel { channel: String },
    #[error("agent `{agent}` has no phone interface to ring")]
    NoAgentInterface { agent: String },
    #[error("caller id name contains `\"`, `<` or `>`")]
    InvalidCallerId,
    #[error("originate refused before sending: {0}")]
    Encode(#[from] EncodeError),
    #[error("Asterisk refused the originate ({action_id}): {message}")]
    Asterisk { action_id: String, message: String },
    #[error("originate ({action_id}) not sent: {detail}")]
    NotSent { action_id: String, detail: String },
}

/// What became of an Originate action at the client level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginateReply {
    /// `Response: Success` ("Originate successfully queued").
    Queued,
    /// `Response: Error` (e.g. `Extension does not exist.`): no call exists.
    Refused { message: String },
    /// Never written; no call exists.
    NotSent { detail: String },
    /// Written but unanswered (deadline or cut connection): the call may exist; never re-sent.
    FateUnknown,
}

/// A queue member as identified by AMI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AgentRef {
    /// `Interface` / `Location`, e.g. `PJSIP/agent1` or `Local/agent1@agents/n`.
    pub interface: String,
    /// `MemberName` / `Name`.
    pub name: String,
}

/// Progress of one call, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallProgress {
    OriginateAccepted,
    /// Not placed; the line is released and no other progress follows.
    OriginateRefused(RefusalReason),
    Ringing,
    Answered(AnswerKind),
    /// Answering-machine detection result (`AMDSTATUS`, `AMDCAUSE`).
    AmdResult {
        status: String,
        cause: String,
    },
    Queued {
        queue: String,
    },
    LeftQueue {
        queue: String,
        abandoned: bool,
    },
    LinkedToAgent {
        queue: String,
        agent: AgentRef,
    },
    /// A channel of the call was put on hold (`Hold`: a phone's hold, not queue music).
    Held,
    /// Taken off hold (`Unhold`).
    Resumed,
    AgentCompleted {
        queue: String,
        agent: AgentRef,
        talk_time_s: Option<u64>,
    },
    /// Final; the line is released.
    Finished {
        outcome: Outcome,
        cause_text: Option<String>,
    },
}

/// Queue member state, as `QueueMemberStatus`/`QueueMember` report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentState {
    pub queue: String,
    pub agent: AgentRef,
    /// Asterisk device state code (1 not in use, 2 in use, 3 busy, 5 unavailable, 6 ringing, ...).
    pub status: u8,
    pub paused: bool,
    pub in_call: bool,
}

/// Agent inputs for the core, from QueueMember* events and QueueStatus snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentUpdate {
    /// Device state of a member (`QueueMemberStatus`, or a `QueueMember` snapshot item).
    State(AgentState),
    /// A member joined a queue (`QueueMemberAdded`).
    Added(AgentState),
    /// A member left a queue (`QueueMemberRemoved`).
    Removed { queue: String, agent: AgentRef },
    /// A member was paused or unpaused (`QueueMemberPause`), with the reason given.
    Paused {
        queue: String,
        agent: AgentRef,
        paused: bool,
        reason: String,
    },
}

/// What the tracker asks of its driver.
#[derive(Debug, Clone, PartialEq)]
pub enum TrackerOutput {
    Call {
        call: CallRef,
        progress: CallProgress,
    },
    Agent(AgentUpdate),
    /// What Asterisk calls the call, learned from the originated channel's `Newchannel`: its
    /// `Uniqueid` and channel name (which names the trunk it went out on). Once per call,
    /// before the call's next progress.
    Identity {
        call: CallRef,
        unique_id: String,
        channel: String,
    },
    /// An action the tracker needs sent (a hangup requested before the channel existed).
    Transmit(Action),
}

/// Tunables of the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Most calls in progress at once (the campaign's line limit).
    pub line_limit: usize,
    /// Prefix of the ChannelIds we generate; channels carrying it after a restart are ours.
    pub channel_id_prefix: String,
    /// Prefix of Originate ActionIDs.
    pub action_id_prefix: String,
    /// After the legs hung up, how long to wait for `OriginateResponse` (or, after a failed
    /// `OriginateResponse`, for the Hangups) before classifying with what is known.
    pub settle_grace: Duration,
    /// How long to wait for `AMDSTATUS` after answer before reporting `Unknown`.
    pub amd_timeout: Duration,
    /// Most tracked orphan channels (ours, found after a restart) and queued outputs.
    pub max_orphans: usize,
    pub max_outputs: usize,
}

impl Default for TrackerConfig {
    fn default() -> TrackerConfig {
        TrackerConfig {
            line_limit: 30,
            channel_id_prefix: "dlr-".into(),
            action_id_prefix: "orig-".into(),
            settle_grace: Duration::from_secs(5),
            amd_timeout: Duration::from_secs(10),
            max_orphans: 10_000,
            max_outputs: 100_000,
        }
    }
}

/// Timers of a call (one at a time is enough: each replaces the previous).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Stop waiting for the missing half of (OriginateResponse, Hangups).
    Settle,
    /// Stop waiting for AMDSTATUS.
    Amd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LegRole {
    /// Uniqueid == ChannelId: the originated channel (`;1` of a Local channel).
    Primary,
    /// Uniqueid == OtherChannelId, or the `;2` sibling: the callee side of a Local channel.
    Other,
    /// A two-step call's callee, created by `Dial` on the agent's channel (its `DestUniqueid`).
    Callee,
}

/// Where a call stands, by which leg rings first.
#[derive(Debug, Clone)]
enum Order {
    CalleeFirst,
    AgentFirst {
        agent: AgentRef,
        /// The agent's phone answered (OriginateResponse Success, or its DialEnd ANSWER).
        agent_answered: bool,
        /// The callee's `DialEnd` status when it was not ANSWER (BUSY, NOANSWER, CANCEL…).
        callee_status: Option<String>,
    },
}

#[derive(Debug, Clone)]
struct Leg {
    role: LegRole,
    name: Option<String>,
    cause: Option<(u16, String)>,
}

#[derive(Debug, Clone)]
struct Call {
    action_id: String,
    channel_id: String,
    /// The `;2` leg of a Local channel; `None` for other technologies.
    other_channel_id: Option<String>,
    amd: bool,
    /// Acceptance seen (Originate response or an event of the call) and reported.
    accepted: bool,
    result: Option<(bool, u8)>,
    legs: HashMap<String, Leg>,
    rang: bool,
    answered: bool,
    answer_reported: bool,
    amd_kind: Option<AnswerKind>,
    queue: Option<String>,
    cancel_requested: bool,
    cancel_sent: bool,
    /// Events for this call may have been lost; cleared by a channel snapshot.
    gap: bool,
    timer: Option<(Instant, Timer)>,
    order: Order,
}

impl Call {
    /// The role of channel `uid` if it is one of the two channels we originated.
    fn id_role(&self, uid: &str) -> Option<LegRole> {
        if uid == self.channel_id {
            Some(LegRole::Primary)
        } else if self.other_channel_id.as_deref() == Some(uid) {
            Some(LegRole::Other)
        } else {
            None
        }
    }

    fn all_legs_down(&self) -> bool {
        !self.legs.is_empty() && self.legs.values().all(|l| l.cause.is_some())
    }

    fn primary_name(&self) -> Option<&str> {
        self.legs
            .values()
            .find(|l| l.role == LegRole::Primary)
            .and_then(|l| l.name.as_deref())
    }

    /// Cause of the dialed leg: `;2` on Local channels, the originated channel otherwise; the other
    /// leg's cause only when the preferred one says nothing (0). A two-step call's dialed leg
    /// is its callee, once `Dial` created it; before that, its agent's channels.
    fn dialed_cause(&self) -> Option<(u16, String)> {
        if matches!(self.order, Order::AgentFirst { .. }) {
            let callee = self
                .legs
                .values()
                .filter(|l| l.role == LegRole::Callee)
                .find_map(|l| l.cause.clone().filter(|(c, _)| *c != 0));
            if callee.is_some() || self.legs.values().any(|l| l.role == LegRole::Callee) {
                return callee;
            }
        }
        let preferred = if self.other_channel_id.is_some() {
            LegRole::Other
        } else {
            LegRole::Primary
        };
        let of = |role| {
            self.legs
                .values()
                .filter(|l| l.role == role)
                .find_map(|l| l.cause.clone().filter(|(c, _)| *c != 0))
        };
        let fallback = if preferred == LegRole::Other {
            LegRole::Primary
        } else {
            LegRole::Other
        };
        of(preferred).or_else(|| of(fallback))
    }
}

/// Maps a hangup cause to the outcome it proves before answer (Q.850 codes as Asterisk reports them).
pub fn outcome_from_cause(cause: u16) -> Option<Outcome> {
    match cause {
        17 => Some(Outcome::Busy),
        18 | 19 => Some(Outcome::NoAnswer),
        21 => Some(Outcome::Rejected),
        27 | 34 | 38 | 41 | 42 | 44 | 102 => Some(Outcome::Congestion),
        1 | 3 | 22 | 28 => Some(Outcome::InvalidNumber),
        _ => None,
    }
}

/// `OriginateResponse` Reason, used only when no hangup cause decides.
fn outcome_from_reason(reason: u8) -> Option<Outcome> {
    match reason {
        3 => Some(Outcome::NoAnswer),
        5 => Some(Outcome::Busy),
        8 => Some(Outcome::Congestion),
        _ => None,
    }
}

/// The sans-IO call tracker. See the module documentation for the input/output contract.
///
/// The driver's loop: `begin_originate` → send the action → `handle_originate_reply`; then for each
/// event `handle_message(&event, now)`; whenever `poll_timeout` is due, `handle_timeout(now)`; after
/// each input, drain `poll_output` until `None`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use backend_ami::codec::Message;
/// use backend_ami::tracker::*;
///
/// let mut tracker = CallTracker::new(TrackerConfig::default());
/// let call = CallRef(7);
/// let action = tracker
///     .begin_originate(&AmiOriginate {
///         call,
///         number: "2001".into(),
///         caller_id: CallerId { name: "Dialer".into(), number: "5550100".into() },
///         ring_timeout: Duration::from_secs(15),
///         variables: vec![("CAMPAIGN".into(), "demo".into())],
///         routing: Routing {
///             channel: "Local/{number}@callees".into(),
///             context: "dialer".into(),
///             exten: "answered".into(),
///             priority: 1,
///         },
///         amd: false,
///         order: LegOrder::CalleeFirst,
///     })
///     .expect("within the line limit");
/// assert_eq!(action.get("ChannelId"), Some("dlr-7"));
/// tracker.handle_originate_reply(call, OriginateReply::Queued);
///
/// // As in the recording `orig_busy`: the callee leg (`;2`) hangs up with cause 17, the
/// // OriginateResponse says Reason 5, the originated leg (`;1`) hangs up with cause 0.
/// let now = Instant::now();
/// for event in [
///     vec![("Event", "Newchannel"), ("Channel", "Local/2001@callees-02;1"), ("Uniqueid", "dlr-7")],
///     vec![("Event", "Hangup"), ("Uniqueid", "dlr-7-o"), ("Cause", "17"), ("Cause-txt", "User busy")],
///     vec![("Event", "OriginateResponse"), ("Response", "Failure"), ("Reason", "5"), ("Uniqueid", "dlr-7")],
///     vec![("Event", "Hangup"), ("Uniqueid", "dlr-7"), ("Cause", "0")],
/// ] {
///     tracker.handle_message(&Message::from_pairs(event), now);
/// }
/// let last = std::iter::from_fn(|| tracker.poll_output()).last();
/// assert_eq!(
///     last,
///     Some(TrackerOutput::Call {
///         call,
///         progress: CallProgress::Finished {
///             outcome: Outcome::Busy,
///             cause_text: Some("User busy".into()),
///         },
///     })
/// );
/// assert_eq!(tracker.lines_in_use(), 0);
/// ```
#[derive(Debug)]
pub struct CallTracker {
    config: TrackerConfig,
    calls: HashMap<CallRef, Call>,
    /// Uniqueid (and ChannelId/OtherChannelId) → call.
    by_uniqueid: HashMap<String, CallRef>,
    by_action: HashMap<String, CallRef>,
    /// Channels of ours found in a snapshot but not tracked (e.g. placed before a restart), by
    /// Linkedid; they hold lines until they hang up.
    orphans: HashMap<String, HashSet<String>>,
    outputs: VecDeque<TrackerOutput>,
    dropped_outputs: u64,
}

impl CallTracker {
    /// A tracker with no calls; it holds no line until [`CallTracker::begin_originate`].
    pub fn new(config: TrackerConfig) -> CallTracker {
        CallTracker {
            config,
            calls: HashMap::new(),
            by_uniqueid: HashMap::new(),
            by_action: HashMap::new(),
            orphans: HashMap::new(),
            outputs: VecDeque::new(),
            dropped_outputs: 0,
        }
    }

    // ---- getters ----

    /// Lines held: calls in progress (including those whose fate is not yet known) plus orphan
    /// calls found alive by reconciliation.
    pub fn lines_in_use(&self) -> usize {
        self.calls.len() + self.orphans.len()
    }

    /// Calls being tracked.
    pub fn live_calls(&self) -> impl Iterator<Item = CallRef> + '_ {
        self.calls.keys().copied()
    }

    /// Outputs dropped because the output queue was full (the driver is not draining).
    pub fn dropped_outputs(&self) -> u64 {
        self.dropped_outputs
    }

    /// The ChannelId and OtherChannelId the tracker derives for a call.
    pub fn channel_ids(&self, call: CallRef) -> (String, String) {
        let base = format!("{}{}", self.config.channel_id_prefix, call.0);
        let other = format!("{base}-o");
        (base, other)
    }

    // ---- inputs ----

    /// Registers a call and returns the Originate action to send, or refuses it (line limit, invalid
    /// number or routing, bytes the encoder refuses). A refused call holds no line.
    pub fn begin_originate(&mut self, req: &AmiOriginate) -> Result<Action, RefusalReason> {
        if self.calls.contains_key(&req.call) {
            return Err(RefusalReason::DuplicateCall { call: req.call });
        }
        if self.lines_in_use() >= self.config.line_limit {
            return Err(RefusalReason::LineLimit {
                limit: self.config.line_limit,
            });
        }
        let number_ok = !req.number.is_empty()
            && req.number.len() <= 32
            && req
                .number
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'*' | b'#'));
        if !number_ok {
            return Err(RefusalReason::InvalidNumber {
                number: req.number.escape_debug().to_string(),
            });
        }
        if !req.routing.channel.contains("{number}") {
            return Err(RefusalReason::InvalidRouting {
                channel: req.routing.channel.escape_debug().to_string(),
            });
        }
        if req.caller_id.name.contains(['"', '<', '>']) {
            return Err(RefusalReason::InvalidCallerId);
        }
        let callee = req.routing.channel.replace("{number}", &req.number);
        let (channel_id, other_id) = self.channel_ids(req.call);
        let action_id = format!("{}{}", self.config.action_id_prefix, req.call.0);
        let (mut action, channel, order) = match &req.order {
            LegOrder::CalleeFirst => (
                Action::new("Originate")
                    .header("Channel", callee.as_str())
                    .header("Context", req.routing.context.as_str())
                    .header("Exten", req.routing.exten.as_str())
                    .header("Priority", req.routing.priority.to_string())
                    .header("Timeout", req.ring_timeout.as_millis().to_string()),
                callee.clone(),
                Order::CalleeFirst,
            ),
            LegOrder::AgentFirst { agent, ring_agent } => {
                if agent.interface.trim().is_empty() {
                    return Err(RefusalReason::NoAgentInterface {
                        agent: agent.name.escape_debug().to_string(),
                    });
                }
                // Dial's arguments are separated by commas: the callee's channel must hold none.
                if callee.contains(',') {
                    return Err(RefusalReason::InvalidDialChannel {
                        channel: callee.escape_debug().to_string(),
                    });
                }
                (
                    Action::new("Originate")
                        .header("Channel", agent.interface.as_str())
                        .header("Application", "Dial")
                        .header(
                            "Data",
                            format!("{callee},{}", req.ring_timeout.as_secs().max(1)),
                        )
                        .header("Timeout", ring_agent.as_millis().to_string()),
                    agent.interface.clone(),
                    Order::AgentFirst {
                        agent: agent.clone(),
                        agent_answered: false,
                        callee_status: None,
                    },
                )
            }
        };
        let local = channel
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("Local/"));
        action = action.header("CallerID", caller_id_header(&req.caller_id));
        for (name, value) in &req.variables {
            action = action.variable(name.as_str(), value.as_str());
        }
        action = action
            .header("Async", "true")
            .header("ChannelId", channel_id.as_str());
        if local {
            action = action.header("OtherChannelId", other_id.as_str());
        }
        action.set_action_id(action_id.clone());
        // Validate here so a refused action never holds a line; the client validates again when
        // writing (it is the gate for every action).
        action.encode(&mut Vec::new())?;
        self.by_uniqueid.insert(channel_id.clone(), req.call);
        if local {
            self.by_uniqueid.insert(other_id.clone(), req.call);
        }
        self.by_action.insert(action_id.clone(), req.call);
        self.calls.insert(
            req.call,
            Call {
                action_id,
                channel_id,
                other_channel_id: local.then_some(other_id),
                amd: req.amd,
                accepted: false,
                result: None,
                legs: HashMap::new(),
                rang: false,
                answered: false,
                answer_reported: false,
                amd_kind: None,
                queue: None,
                cancel_requested: false,
                cancel_sent: false,
                gap: false,
                timer: None,
                order,
            },
        );
        Ok(action)
    }

    /// The client's verdict on the Originate action.
    pub fn handle_originate_reply(&mut self, call: CallRef, reply: OriginateReply) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match reply {
            OriginateReply::Queued => self.mark_accepted(call),
            OriginateReply::Refused { message } => {
                let action_id = c.action_id.clone();
                self.remove(call);
                self.emit(
                    call,
                    CallProgress::OriginateRefused(RefusalReason::Asterisk { action_id, message }),
                );
            }
            OriginateReply::NotSent { detail } => {
                let action_id = c.action_id.clone();
                self.remove(call);
                self.emit(
                    call,
                    CallProgress::OriginateRefused(RefusalReason::NotSent { action_id, detail }),
                );
            }
            OriginateReply::FateUnknown => {
                // It may be ringing right now: keep the line, never resend, let events or the next
                // reconciliation decide. Events already seen prove it was accepted.
                if !c.accepted {
                    c.gap = true;
                }
            }
        }
    }

    /// Asks to hang a call up. Returns the Hangup action when the channel is known; otherwise the
    /// action is emitted as [`TrackerOutput::Transmit`] once the channel appears.
    pub fn begin_hangup(&mut self, call: CallRef) -> Option<Action> {
        let c = self.calls.get_mut(&call)?;
        c.cancel_requested = true;
        let target = c.primary_name().map(str::to_owned)?;
        c.cancel_sent = true;
        Some(hangup_action(&target))
    }

    /// One event from Asterisk.
    pub fn handle_message(&mut self, msg: &Message, now: Instant) {
        let Some(event) = msg.event() else {
            return;
        };
        let event = event.to_ascii_lowercase();
        match event.as_str() {
            "queuememberstatus" | "queuemember" => {
                if let Some(state) = agent_state(msg) {
                    self.push(TrackerOutput::Agent(AgentUpdate::State(state)));
                }
                return;
            }
            "queuememberadded" => {
                if let Some(state) = agent_state(msg) {
                    self.push(TrackerOutput::Agent(AgentUpdate::Added(state)));
                }
                return;
            }
            "queuememberpause" => {
                if let Some(state) = agent_state(msg) {
                    let reason = msg
                        .get("PausedReason")
                        .or_else(|| msg.get("Reason"))
                        .unwrap_or("")
                        .to_owned();
                    self.push(TrackerOutput::Agent(AgentUpdate::Paused {
                        queue: state.queue,
                        agent: state.agent,
                        paused: state.paused,
                        reason,
                    }));
                }
                return;
            }
            "queuememberremoved" => {
                if let Some(state) = agent_state(msg) {
                    self.push(TrackerOutput::Agent(AgentUpdate::Removed {
                        queue: state.queue,
                        agent: state.agent,
                    }));
                }
                return;
            }
            _ => {}
        }
        if event == "hangup" {
            self.orphan_hangup(msg);
        }
        if event == "originateresponse" {
            self.on_originate_response(msg, now);
            return;
        }
        let Some(call) = self.call_of(msg, &event) else {
            return;
        };
        match event.as_str() {
            "newchannel" => self.on_newchannel(call, msg),
            // A two-step call's own channel is the agent's: its states are not the callee's.
            "newstate" | "dialbegin" | "dialstate" | "dialend" if self.agent_first(call) => {
                self.on_agent_first_dial(call, &event, msg, now)
            }
            "newstate" => {
                let on_primary = self.role_of(call, msg.get("Uniqueid")) == Some(LegRole::Primary);
                match msg.get("ChannelState") {
                    Some("5") if on_primary => self.ringing(call),
                    Some("6") if on_primary => self.answered(call, now),
                    _ => {}
                }
            }
            "dialstate" | "dialend" => {
                if self.is_our_dest(call, msg) {
                    match msg.get("DialStatus") {
                        Some(s) if s.eq_ignore_ascii_case("RINGING") => self.ringing(call),
                        Some(s) if s.eq_ignore_ascii_case("ANSWER") => self.answered(call, now),
                        _ => {}
                    }
                }
            }
            "hangup" => self.on_hangup(call, msg, now),
            "userevent" | "varset" => self.on_amd(call, msg, now),
            "queuecallerjoin" | "queueentry" => {
                let queue = msg.get("Queue").unwrap_or("").to_owned();
                let Some(c) = self.calls.get_mut(&call) else {
                    return;
                };
                if c.queue.as_deref() != Some(queue.as_str()) {
                    c.queue = Some(queue.clone());
                    self.emit(call, CallProgress::Queued { queue });
                }
            }
            "queuecallerleave" | "queuecallerabandon" => {
                let queue = msg.get("Queue").unwrap_or("").to_owned();
                if let Some(c) = self.calls.get_mut(&call) {
                    c.queue = None;
                }
                self.emit(
                    call,
                    CallProgress::LeftQueue {
                        queue,
                        abandoned: event == "queuecallerabandon",
                    },
                );
            }
            "hold" => self.emit(call, CallProgress::Held),
            "unhold" => self.emit(call, CallProgress::Resumed),
            "agentconnect" => {
                if let Some(agent) = agent_ref(msg) {
                    let queue = msg.get("Queue").unwrap_or("").to_owned();
                    self.emit(call, CallProgress::LinkedToAgent { queue, agent });
                }
            }
            "agentcomplete" => {
                if let Some(agent) = agent_ref(msg) {
                    let queue = msg.get("Queue").unwrap_or("").to_owned();
                    let talk_time_s = msg.get("TalkTime").and_then(|t| t.parse().ok());
                    self.emit(
                        call,
                        CallProgress::AgentCompleted {
                            queue,
                            agent,
                            talk_time_s,
                        },
                    );
                }
            }
            _ => {
                // Any event may carry `ChanVariable: AMDSTATUS=...` when manager.conf asks for it.
                self.on_amd(call, msg, now);
            }
        }
    }

    /// Events may have been lost (connection dropped, consumer lagged): every call is suspect until
    /// the next [`CallTracker::handle_channel_snapshot`].
    pub fn handle_events_lost(&mut self) {
        for c in self.calls.values_mut() {
            c.gap = true;
        }
    }

    /// A `CoreShowChannels` snapshot taken after reconnecting (its `CoreShowChannel` items).
    ///
    /// Calls that went through a gap and have no channel left ended unseen: they finish as
    /// answered (cause unknown) if the answer had been seen, as already classified if the
    /// `OriginateResponse` said so, and as [`Outcome::Unknown`] otherwise. Channels of ours that
    /// nobody tracks (placed before a restart) hold lines as orphans until they hang up.
    pub fn handle_channel_snapshot(&mut self, channels: &[Message], now: Instant) {
        // A call lives while one of its own legs does; channels merely linked to it (an agent's)
        // do not keep it open, or it could never be closed.
        let alive: HashSet<&str> = channels
            .iter()
            .filter_map(|ch| ch.get("Uniqueid"))
            .collect();
        let gapped: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| c.gap)
            .map(|(k, _)| *k)
            .collect();
        for call in gapped {
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            let own_ids: Vec<String> = std::iter::once(c.channel_id.clone())
                .chain(c.other_channel_id.clone())
                .chain(c.legs.keys().cloned())
                .collect();
            let is_alive = own_ids.iter().any(|id| alive.contains(id.as_str()));
            if is_alive {
                c.gap = false;
                // Legs created during the gap are learnt from the snapshot, so the call ends only
                // when they too hang up.
                for ch in channels {
                    let Some(uid) = ch.get("Uniqueid") else {
                        continue;
                    };
                    let Some(role) = c.id_role(uid) else {
                        continue;
                    };
                    c.legs.entry(uid.to_owned()).or_insert_with(|| Leg {
                        role,
                        name: ch.get("Channel").map(str::to_owned),
                        cause: None,
                    });
                }
                // Legs that hung up during the gap are gone from the snapshot; legs still listed
                // keep the call alive.
                for (id, leg) in c.legs.iter_mut() {
                    if leg.cause.is_none() && !alive.contains(id.as_str()) {
                        leg.cause = Some((0, "lost during disconnect".into()));
                    }
                }
                let up = channels.iter().any(|ch| {
                    ch.get("Uniqueid") == Some(c.channel_id.as_str())
                        && ch.get("ChannelState") == Some("6")
                });
                self.mark_accepted(call);
                if up {
                    self.answered(call, now);
                }
            } else {
                self.finish_lost(call);
            }
        }
        let tracked: HashSet<String> = self.calls.values().map(|c| c.channel_id.clone()).collect();
        self.orphans.clear();
        for ch in channels {
            let (Some(uid), Some(linked)) = (ch.get("Uniqueid"), ch.get("Linkedid")) else {
                continue;
            };
            // Our own legs only (ids we generated); channels merely linked to a call of ours,
            // such as an agent's, use no outbound line.
            let prefix = self.config.channel_id_prefix.as_str();
            if uid.starts_with(prefix)
                && linked.starts_with(prefix)
                && !tracked.contains(linked)
                && (self.orphans.len() < self.config.max_orphans
                    || self.orphans.contains_key(linked))
            {
                self.orphans
                    .entry(linked.to_owned())
                    .or_default()
                    .insert(uid.to_owned());
            }
        }
    }

    /// `QueueStatus` items after reconnecting: members become agent updates, entries re-mark
    /// queued calls.
    pub fn handle_queue_snapshot(&mut self, items: &[Message], now: Instant) {
        for item in items {
            self.handle_message(item, now);
        }
    }

    /// Timers due at `now` fire.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<(CallRef, Timer)> = self
            .calls
            .iter()
            .filter_map(|(k, c)| c.timer.filter(|(at, _)| *at <= now).map(|(_, t)| (*k, t)))
            .collect();
        for (call, timer) in due {
            let Some(c) = self.calls.get_mut(&call) else {
                continue;
            };
            c.timer = None;
            match timer {
                Timer::Amd => {
                    c.amd_kind = Some(AnswerKind::Unknown);
                    self.report_answer(call);
                }
                Timer::Settle => self.finish(call),
            }
        }
    }

    // ---- outputs ----

    /// Next output, in the order produced.
    pub fn poll_output(&mut self) -> Option<TrackerOutput> {
        self.outputs.pop_front()
    }

    /// When [`CallTracker::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| c.timer.map(|(t, _)| t))
            .min()
    }

    // ---- internals ----

    fn push(&mut self, out: TrackerOutput) {
        if self.outputs.len() >= self.config.max_outputs {
            self.dropped_outputs += 1;
            return;
        }
        self.outputs.push_back(out);
    }

    fn emit(&mut self, call: CallRef, progress: CallProgress) {
        self.push(TrackerOutput::Call { call, progress });
    }

    fn call_of(&self, msg: &Message, event: &str) -> Option<CallRef> {
        let by = |h: &str| msg.get(h).and_then(|id| self.by_uniqueid.get(id)).copied();
        if matches!(event, "dialbegin" | "dialstate" | "dialend") {
            return by("DestUniqueid").or_else(|| by("Uniqueid"));
        }
        if let Some(call) = by("Uniqueid") {
            return Some(call);
        }
        if event == "newchannel" {
            // `;2` of a Local channel originated without OtherChannelId: same Linkedid.
            return by("Linkedid");
        }
        None
    }

    fn role_of(&self, call: CallRef, uniqueid: Option<&str>) -> Option<LegRole> {
        let c = self.calls.get(&call)?;
        let uid = uniqueid?;
        c.id_role(uid)
            .or_else(|| c.legs.contains_key(uid).then_some(LegRole::Other))
    }

    fn is_our_dest(&self, call: CallRef, msg: &Message) -> bool {
        self.role_of(call, msg.get("DestUniqueid")).is_some()
    }

    fn on_newchannel(&mut self, call: CallRef, msg: &Message) {
        let Some(uid) = msg.get("Uniqueid") else {
            return;
        };
        let name = msg.get("Channel").map(str::to_owned);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let role = if let Some(role) = c.id_role(uid) {
            role
        } else {
            // Adopt only the `;2` sibling of our Local `;1`, not agent or other linked channels.
            let sibling = c
                .primary_name()
                .and_then(|p| p.strip_suffix(";1"))
                .zip(name.as_deref().and_then(|n| n.strip_suffix(";2")))
                .is_some_and(|(a, b)| a == b);
            if !sibling {
                return;
            }
            self.by_uniqueid.insert(uid.to_owned(), call);
            LegRole::Other
        };
        c.legs.insert(
            uid.to_owned(),
            Leg {
                role,
                name: name.clone(),
                cause: None,
            },
        );
        let cancel = role == LegRole::Primary && c.cancel_requested && !c.cancel_sent;
        if cancel && name.is_some() {
            c.cancel_sent = true;
        }
        if let (LegRole::Primary, Some(channel)) = (role, name.as_ref()) {
            self.push(TrackerOutput::Identity {
                call,
                unique_id: uid.to_owned(),
                channel: channel.clone(),
            });
        }
        self.mark_accepted(call);
        if let (true, Some(n)) = (cancel, name) {
            self.push(TrackerOutput::Transmit(hangup_action(&n)));
        }
    }

    /// Acceptance is reported once, whichever comes first: the Originate response or an event of the
    /// call (they race, as they travel through different queues).
    fn mark_accepted(&mut self, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.accepted {
            c.accepted = true;
            self.emit(call, CallProgress::OriginateAccepted);
        }
    }

    fn ringing(&mut self, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.rang && !c.answered {
            c.rang = true;
            self.emit(call, CallProgress::Ringing);
        }
    }

    fn answered(&mut self, call: CallRef, now: Instant) {
        let amd_timeout = self.config.amd_timeout;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.answered {
            return;
        }
        c.answered = true;
        if c.amd && c.amd_kind.is_none() {
            c.timer = Some((now + amd_timeout, Timer::Amd));
        } else {
            self.report_answer(call);
        }
    }

    fn report_answer(&mut self, call: CallRef) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.answer_reported || !c.answered {
            return;
        }
        c.answer_reported = true;
        if matches!(c.timer, Some((_, Timer::Amd))) {
            c.timer = None;
        }
        let kind = c.amd_kind.unwrap_or(AnswerKind::Unknown);
        self.emit(call, CallProgress::Answered(kind));
    }

    fn on_amd(&mut self, call: CallRef, msg: &Message, now: Instant) {
        let status = msg
            .get("AMDSTATUS")
            .or_else(|| msg.chan_variable("AMDSTATUS"))
            .or_else(|| {
                (msg.get("Variable") == Some("AMDSTATUS"))
                    .then(|| msg.get("Value"))
                    .flatten()
            });
        let Some(status) = status.map(str::to_owned) else {
            return;
        };
        let cause = msg
            .get("AMDCAUSE")
            .or_else(|| msg.chan_variable("AMDCAUSE"))
            .unwrap_or("")
            .to_owned();
        let kind = match status.to_ascii_uppercase().as_str() {
            "HUMAN" => AnswerKind::Human,
            "MACHINE" => AnswerKind::Machine,
            _ => AnswerKind::Unknown,
        };
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.amd_kind.is_some() && c.answer_reported {
            return;
        }
        c.amd_kind = Some(kind);
        self.emit(call, CallProgress::AmdResult { status, cause });
        // AMD runs on an answered channel even if its answer event was not seen.
        self.answered(call, now);
        self.report_answer(call);
    }

    fn agent_first(&self, call: CallRef) -> bool {
        self.calls
            .get(&call)
            .is_some_and(|c| matches!(c.order, Order::AgentFirst { .. }))
    }

    /// A two-step call's channel and dial events. Two `Dial` pairs carry it: the Originate's
    /// own dial of the agent (`DestUniqueid` = ChannelId, no caller), whose `ANSWER` is the
    /// agent's; and the `Dial` application on the agent's channel (`Uniqueid` = ChannelId),
    /// whose destination is the callee: its `RINGING` and `ANSWER` are the callee's, its other
    /// statuses the callee's outcome. The agent's channel states say nothing of the callee.
    fn on_agent_first_dial(&mut self, call: CallRef, event: &str, msg: &Message, now: Instant) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Order::AgentFirst { agent_answered, .. } = &mut c.order else {
            return;
        };
        let status = msg.get("DialStatus").map(str::to_ascii_uppercase);
        let from_agent = msg.get("Uniqueid") == Some(c.channel_id.as_str());
        let to_agent = !from_agent && msg.get("DestUniqueid") == Some(c.channel_id.as_str());
        if to_agent {
            if event == "dialend" && status.as_deref() == Some("ANSWER") {
                *agent_answered = true;
            }
            return;
        }
        if !from_agent || event == "newstate" {
            return;
        }
        if let Some(dest) = msg.get("DestUniqueid") {
            if !c.legs.contains_key(dest) {
                c.legs.insert(
                    dest.to_owned(),
                    Leg {
                        role: LegRole::Callee,
                        name: msg.get("DestChannel").map(str::to_owned),
                        cause: None,
                    },
                );
                self.by_uniqueid.insert(dest.to_owned(), call);
            }
        }
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        let Order::AgentFirst {
            agent,
            callee_status,
            ..
        } = &mut c.order
        else {
            return;
        };
        match (event, status.as_deref()) {
            (_, Some("RINGING")) => self.ringing(call),
            ("dialend", Some("ANSWER")) => {
                let agent = agent.clone();
                self.answered(call, now);
                self.report_answer(call);
                self.emit(
                    call,
                    CallProgress::LinkedToAgent {
                        queue: String::new(),
                        agent,
                    },
                );
            }
            ("dialend", Some(other)) => *callee_status = Some(other.to_owned()),
            _ => {}
        }
    }

    fn on_originate_response(&mut self, msg: &Message, now: Instant) {
        let call = msg
            .get("Uniqueid")
            .and_then(|u| self.by_uniqueid.get(u))
            .or_else(|| msg.action_id().and_then(|a| self.by_action.get(a)))
            .copied();
        let Some(call) = call else {
            return;
        };
        let success = msg
            .get("Response")
            .is_some_and(|r| r.eq_ignore_ascii_case("Success"));
        let reason = msg.get("Reason").and_then(|r| r.parse().ok()).unwrap_or(0);
        let grace = self.config.settle_grace;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        c.result = Some((success, reason));
        self.mark_accepted(call);
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if success {
            match &mut c.order {
                // A two-step call's Originate succeeds when the agent answers.
                Order::AgentFirst { agent_answered, .. } => *agent_answered = true,
                Order::CalleeFirst => self.answered(call, now),
            }
            self.check_done(call, now);
            return;
        }
        if c.legs.is_empty() || c.all_legs_down() {
            // No channel was ever created (e.g. unknown technology), or all hung up already.
            self.finish(call);
        } else {
            c.timer = Some((now + grace, Timer::Settle));
        }
    }

    fn on_hangup(&mut self, call: CallRef, msg: &Message, now: Instant) {
        let Some(uid) = msg.get("Uniqueid") else {
            return;
        };
        let cause: u16 = msg.get("Cause").and_then(|c| c.parse().ok()).unwrap_or(0);
        let text = msg.get("Cause-txt").unwrap_or("").to_owned();
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        match c.legs.get_mut(uid) {
            Some(leg) => leg.cause = Some((cause, text)),
            None => {
                // A Hangup for a leg whose Newchannel was lost (gap): record it anyway.
                let role = c.id_role(uid).unwrap_or(LegRole::Other);
                c.legs.insert(
                    uid.to_owned(),
                    Leg {
                        role,
                        name: msg.get("Channel").map(str::to_owned),
                        cause: Some((cause, text)),
                    },
                );
            }
        }
        self.check_done(call, now);
    }

    /// Finishes the call when both halves are in, or arms the settle timer when one is missing.
    fn check_done(&mut self, call: CallRef, now: Instant) {
        let grace = self.config.settle_grace;
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.all_legs_down() {
            return;
        }
        // An answered call's OriginateResponse adds nothing once every leg is down.
        if c.result.is_some() || c.answered {
            self.finish(call);
        } else {
            c.timer = Some((now + grace, Timer::Settle));
        }
    }

    fn classify(c: &Call) -> (Outcome, Option<String>) {
        let cause = c.dialed_cause();
        let cause_text = cause.as_ref().map(|(_, t)| t.clone());
        let code = cause.as_ref().map(|(n, _)| *n);
        if c.answered {
            let kind = c.amd_kind.unwrap_or(AnswerKind::Unknown);
            return (Outcome::Answered { kind, cause: code }, cause_text);
        }
        let reason = c.result.map(|(_, r)| r);
        if let Order::AgentFirst { agent_answered, .. } = &c.order {
            // The callee was never dialed, whoever ended it: not the callee's attempt.
            let callee_dialed = c.legs.values().any(|l| l.role == LegRole::Callee);
            if !agent_answered && !callee_dialed {
                return (
                    Outcome::AgentUnreachable {
                        reason,
                        cause: code,
                    },
                    cause_text,
                );
            }
        }
        if c.cancel_requested {
            return (Outcome::Cancelled, cause_text);
        }
        if let Order::AgentFirst { callee_status, .. } = &c.order {
            if let Some(o) = code.and_then(outcome_from_cause) {
                return (o, cause_text);
            }
            let by_status = match callee_status.as_deref() {
                Some("BUSY") => Some(Outcome::Busy),
                Some("NOANSWER") => Some(Outcome::NoAnswer),
                Some("CONGESTION") | Some("CHANUNAVAIL") => Some(Outcome::Congestion),
                // The agent hung up while the callee's phone rang.
                Some("CANCEL") => Some(Outcome::Cancelled),
                _ => None,
            };
            if let Some(o) = by_status {
                return (o, cause_text);
            }
            return (
                Outcome::Failed {
                    reason,
                    cause: code,
                },
                cause_text,
            );
        }
        if let Some(o) = code.and_then(outcome_from_cause) {
            return (o, cause_text);
        }
        if let Some(o) = reason.and_then(outcome_from_reason) {
            return (o, cause_text);
        }
        if c.legs.is_empty() && code.is_none() && c.result.is_some() {
            return (Outcome::NoChannel { reason }, cause_text);
        }
        (
            Outcome::Failed {
                reason,
                cause: code,
            },
            cause_text,
        )
    }

    fn finish(&mut self, call: CallRef) {
        self.end(call, false);
    }

    /// A call that ended while we were not listening.
    fn finish_lost(&mut self, call: CallRef) {
        self.end(call, true);
    }

    /// Reports a call's end. A `lost` call is classified only if something was seen of its
    /// fate (an answer, the Originate result, every leg's hangup); otherwise it is unknown.
    fn end(&mut self, call: CallRef, lost: bool) {
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let seen = !lost || c.answered || c.result.is_some() || c.all_legs_down();
        let (outcome, cause_text) = if seen {
            Self::classify(c)
        } else {
            (Outcome::Unknown, None)
        };
        if c.answered && !c.answer_reported {
            // Hung up while AMD was still listening: report the answer before the end.
            self.report_answer(call);
        }
        self.remove(call);
        self.emit(
            call,
            CallProgress::Finished {
                outcome,
                cause_text,
            },
        );
    }

    fn remove(&mut self, call: CallRef) {
        if let Some(c) = self.calls.remove(&call) {
            self.by_action.remove(&c.action_id);
            self.by_uniqueid.retain(|_, v| *v != call);
        }
    }

    fn orphan_hangup(&mut self, msg: &Message) {
        let (Some(uid), Some(linked)) = (msg.get("Uniqueid"), msg.get("Linkedid")) else {
            return;
        };
        if let Some(set) = self.orphans.get_mut(linked) {
            set.remove(uid);
            if set.is_empty() {
                self.orphans.remove(linked);
            }
        }
    }
}

/// `"Name" <number>`, or the bare number when there is no name.
fn caller_id_header(id: &CallerId) -> String {
    if id.name.is_empty() {
        id.number.clone()
    } else {
        format!("\"{}\" <{}>", id.name, id.number)
    }
}

fn hangup_action(channel: &str) -> Action {
    Action::new("Hangup")
        .header("Channel", channel)
        .header("Cause", "16")
}

fn agent_ref(msg: &Message) -> Option<AgentRef> {
    let interface = msg.get("Interface").or_else(|| msg.get("Location"))?;
    let name = msg
        .get("MemberName")
        .or_else(|| msg.get("Name"))
        .unwrap_or(interface);
    Some(AgentRef {
        interface: interface.to_owned(),
        name: name.to_owned(),
    })
}

fn agent_state(msg: &Message) -> Option<AgentState> {
    Some(AgentState {
        queue: msg.get("Queue")?.to_owned(),
        agent: agent_ref(msg)?,
        status: msg.get("Status").and_then(|s| s.parse().ok()).unwrap_or(0),
        paused: msg.get("Paused") == Some("1"),
        in_call: msg.get("InCall") == Some("1"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(call: u64, amd: bool) -> AmiOriginate {
        AmiOriginate {
            call: CallRef(call),
            number: "15550001".into(),
            caller_id: CallerId {
                name: String::new(),
                number: "5550100".into(),
            },
            ring_timeout: Duration::from_secs(20),
            variables: vec![],
            routing: Routing {
                channel: "PJSIP/{number}@trunk".into(),
                context: "dialer".into(),
                exten: "s".into(),
                priority: 1,
            },
            amd,
            order: LegOrder::CalleeFirst,
        }
    }

    #[test]
    fn u1_a_two_step_call_without_an_agent_phone_or_with_a_comma_in_the_callee_is_refused() {
        let mut t = CallTracker::new(TrackerConfig::default());
        let two_step = |interface: &str, channel: &str| {
            let mut req = trunk(1, false);
            req.routing.channel = channel.into();
            req.order = LegOrder::AgentFirst {
                agent: AgentRef {
                    interface: interface.into(),
                    name: "ana".into(),
                },
                ring_agent: Duration::from_secs(30),
            };
            req
        };
        assert!(matches!(
            t.begin_originate(&two_step("", "PJSIP/{number}@trunk")),
            Err(RefusalReason::NoAgentInterface { .. })
        ));
        assert!(matches!(
            t.begin_originate(&two_step("PJSIP/ana", "PJSIP/{number}@trunk,,r")),
            Err(RefusalReason::InvalidDialChannel { .. })
        ));
        assert_eq!(t.lines_in_use(), 0, "a refused call holds no line");
        let action = t
            .begin_originate(&two_step("PJSIP/ana", "PJSIP/{number}@trunk"))
            .expect("valid");
        let mut bytes = Vec::new();
        action.encode(&mut bytes).expect("encodes");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(
            text.contains(
                "Channel: PJSIP/ana\r\nApplication: Dial\r\nData: PJSIP/15550001@trunk,20\r\nTimeout: 30000\r\n"
            ),
            "{text}"
        );
    }

    fn ev(pairs: &[(&str, &str)]) -> Message {
        Message::from_pairs(pairs.iter().copied())
    }

    fn drain(t: &mut CallTracker) -> Vec<CallProgress> {
        std::iter::from_fn(|| t.poll_output())
            .filter_map(|o| match o {
                TrackerOutput::Call { progress, .. } => Some(progress),
                _ => None,
            })
            .collect()
    }

    fn outcome(progress: &[CallProgress]) -> Option<&Outcome> {
        progress.iter().find_map(|p| match p {
            CallProgress::Finished { outcome, .. } => Some(outcome),
            _ => None,
        })
    }

    fn placed(call: u64, amd: bool) -> (CallTracker, Instant) {
        let mut t = CallTracker::new(TrackerConfig::default());
        t.begin_originate(&trunk(call, amd)).unwrap();
        t.handle_originate_reply(CallRef(call), OriginateReply::Queued);
        let now = Instant::now();
        t.handle_message(
            &ev(&[
                ("Event", "Newchannel"),
                ("Channel", "PJSIP/trunk-1"),
                ("Uniqueid", &format!("dlr-{call}")),
                ("Linkedid", &format!("dlr-{call}")),
            ]),
            now,
        );
        (t, now)
    }

    fn hangup(call: u64, cause: &str) -> Message {
        ev(&[
            ("Event", "Hangup"),
            ("Uniqueid", &format!("dlr-{call}")),
            ("Cause", cause),
            ("Cause-txt", "x"),
        ])
    }

    fn originate_response(call: u64, response: &str, reason: &str) -> Message {
        ev(&[
            ("Event", "OriginateResponse"),
            ("Response", response),
            ("Reason", reason),
            ("Uniqueid", &format!("dlr-{call}")),
        ])
    }

    #[test]
    fn e13_hold_and_unhold_of_a_channel_of_the_call_are_reported_and_queue_music_is_not() {
        let (mut t, now) = placed(31, false);
        drain(&mut t);
        let on = |event: &str| {
            ev(&[
                ("Event", event),
                ("Channel", "PJSIP/trunk-1"),
                ("Uniqueid", "dlr-31"),
                ("Linkedid", "dlr-31"),
            ])
        };
        // Music while the caller waits in the queue is the queue's, not a hold.
        t.handle_message(&on("MusicOnHoldStart"), now);
        assert_eq!(drain(&mut t), vec![]);
        t.handle_message(&on("Hold"), now);
        t.handle_message(&on("Unhold"), now);
        assert_eq!(
            drain(&mut t),
            vec![CallProgress::Held, CallProgress::Resumed]
        );
    }

    #[test]
    fn every_documented_cause_maps_to_its_outcome() {
        let table: [(&[u16], Outcome); 5] = [
            (&[17], Outcome::Busy),
            (&[18, 19], Outcome::NoAnswer),
            (&[21], Outcome::Rejected),
            (&[27, 34, 38, 41, 42, 44, 102], Outcome::Congestion),
            (&[1, 3, 22, 28], Outcome::InvalidNumber),
        ];
        for (causes, expected) in table {
            for c in causes {
                assert_eq!(outcome_from_cause(*c), Some(expected.clone()), "cause {c}");
            }
        }
        assert_eq!(outcome_from_cause(16), None);
        assert_eq!(outcome_from_cause(0), None);
    }

    #[test]
    fn trunk_rejection_reported_with_reason_0_is_classified_from_cause_21() {
        // A SIP 603 can arrive as Reason 0: the cause on the originated channel decides.
        for first_response in [true, false] {
            let (mut t, now) = placed(1, false);
            if first_response {
                t.handle_message(&originate_response(1, "Failure", "0"), now);
                t.handle_message(&hangup(1, "21"), now);
            } else {
                t.handle_message(&hangup(1, "21"), now);
                t.handle_message(&originate_response(1, "Failure", "0"), now);
            }
            assert_eq!(outcome(&drain(&mut t)), Some(&Outcome::Rejected));
            assert_eq!(t.lines_in_use(), 0);
        }
    }

    #[test]
    fn missing_originate_response_is_waited_for_only_until_the_settle_timer() {
        let (mut t, now) = placed(1, false);
        t.handle_message(&hangup(1, "17"), now);
        assert_eq!(outcome(&drain(&mut t)), None, "waits for OriginateResponse");
        let at = t.poll_timeout().expect("settle timer armed");
        t.handle_timeout(at - Duration::from_millis(1));
        assert_eq!(outcome(&drain(&mut t)), None, "not before its time");
        t.handle_timeout(at);
        assert_eq!(outcome(&drain(&mut t)), Some(&Outcome::Busy));
        assert_eq!(t.poll_timeout(), None);
    }

    #[test]
    fn normal_clearing_before_answer_falls_back_to_the_reason() {
        let (mut t, now) = placed(1, false);
        t.handle_message(&hangup(1, "16"), now);
        t.handle_message(&originate_response(1, "Failure", "3"), now);
        assert_eq!(outcome(&drain(&mut t)), Some(&Outcome::NoAnswer));
    }

    #[test]
    fn amd_that_never_reports_yields_an_unknown_answer_after_its_timeout() {
        let (mut t, now) = placed(1, true);
        t.handle_message(&originate_response(1, "Success", "4"), now);
        assert!(!drain(&mut t)
            .iter()
            .any(|p| matches!(p, CallProgress::Answered(_))));
        let at = t.poll_timeout().expect("amd timer");
        t.handle_timeout(at);
        assert!(drain(&mut t).contains(&CallProgress::Answered(AnswerKind::Unknown)));
    }

    #[test]
    fn amd_status_from_a_channel_variable_sets_the_answer_kind() {
        let (mut t, now) = placed(1, true);
        t.handle_message(&originate_response(1, "Success", "4"), now);
        t.handle_message(
            &ev(&[
                ("Event", "Newexten"),
                ("Uniqueid", "dlr-1"),
                ("ChanVariable", "AMDSTATUS=MACHINE"),
                ("ChanVariable", "AMDCAUSE=LONGGREETING"),
            ]),
            now,
        );
        t.handle_message(&hangup(1, "16"), now);
        let p = drain(&mut t);
        assert!(p.contains(&CallProgress::Answered(AnswerKind::Machine)));
        assert_eq!(
            outcome(&p),
            Some(&Outcome::Answered {
                kind: AnswerKind::Machine,
                cause: Some(16)
            })
        );
    }

    #[test]
    fn hangup_requested_before_the_channel_exists_is_sent_once_it_appears() {
        let mut t = CallTracker::new(TrackerConfig::default());
        t.begin_originate(&trunk(1, false)).unwrap();
        assert!(t.begin_hangup(CallRef(1)).is_none());
        t.handle_message(
            &ev(&[
                ("Event", "Newchannel"),
                ("Channel", "PJSIP/trunk-9"),
                ("Uniqueid", "dlr-1"),
                ("Linkedid", "dlr-1"),
            ]),
            Instant::now(),
        );
        let sent: Vec<Action> = std::iter::from_fn(|| t.poll_output())
            .filter_map(|o| match o {
                TrackerOutput::Transmit(a) => Some(a),
                _ => None,
            })
            .collect();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].get("Channel"), Some("PJSIP/trunk-9"));
    }

    #[test]
    fn fate_unknown_originate_is_settled_by_the_channel_snapshot() {
        let now = Instant::now();
        let mut t = CallTracker::new(TrackerConfig::default());
        t.begin_originate(&trunk(1, false)).unwrap();
        t.begin_originate(&trunk(2, false)).unwrap();
        t.handle_originate_reply(CallRef(1), OriginateReply::FateUnknown);
        t.handle_originate_reply(CallRef(2), OriginateReply::FateUnknown);
        assert_eq!(t.lines_in_use(), 2);
        // Only call 2 exists in Asterisk, and it is up.
        let snapshot = [ev(&[
            ("Event", "CoreShowChannel"),
            ("Uniqueid", "dlr-2"),
            ("Linkedid", "dlr-2"),
            ("ChannelState", "6"),
        ])];
        t.handle_channel_snapshot(&snapshot, now);
        let out: Vec<_> = std::iter::from_fn(|| t.poll_output()).collect();
        assert!(out.contains(&TrackerOutput::Call {
            call: CallRef(1),
            progress: CallProgress::Finished {
                outcome: Outcome::Unknown,
                cause_text: None
            }
        }));
        assert!(out.contains(&TrackerOutput::Call {
            call: CallRef(2),
            progress: CallProgress::Answered(AnswerKind::Unknown)
        }));
        assert_eq!(t.lines_in_use(), 1);
    }

    #[test]
    fn only_the_calls_own_legs_keep_it_alive_after_a_gap() {
        let now = Instant::now();
        let mut t = CallTracker::new(TrackerConfig::default());
        t.begin_originate(&trunk(1, false)).unwrap();
        t.begin_originate(&trunk(2, false)).unwrap();
        for call in [1, 2] {
            t.handle_originate_reply(CallRef(call), OriginateReply::Queued);
        }
        t.handle_events_lost();
        let snapshot = [
            // Call 1: only an agent channel linked to it survives.
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Uniqueid", "1795.7"),
                ("Linkedid", "dlr-1"),
            ]),
            // Call 2: its own channel, created during the gap.
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Channel", "PJSIP/trunk-2"),
                ("Uniqueid", "dlr-2"),
                ("Linkedid", "dlr-2"),
                ("ChannelState", "6"),
            ]),
        ];
        t.handle_channel_snapshot(&snapshot, now);
        let p = drain(&mut t);
        assert!(p.contains(&CallProgress::Finished {
            outcome: Outcome::Unknown,
            cause_text: None
        }));
        assert_eq!(t.lines_in_use(), 1);
        // The leg learnt from the snapshot ends the call when it hangs up, and is hung up by name.
        assert_eq!(
            t.begin_hangup(CallRef(2))
                .and_then(|a| a.get("Channel").map(str::to_owned))
                .as_deref(),
            Some("PJSIP/trunk-2")
        );
        t.handle_message(&hangup(2, "16"), now);
        assert_eq!(
            outcome(&drain(&mut t)),
            Some(&Outcome::Answered {
                kind: AnswerKind::Unknown,
                cause: Some(16)
            })
        );
        assert_eq!(t.lines_in_use(), 0);
    }

    #[test]
    fn channels_of_another_dialer_on_the_same_pbx_are_not_taken_for_ours() {
        let now = Instant::now();
        let mut t = CallTracker::new(TrackerConfig {
            channel_id_prefix: "dlr-0a1b2c3d-".into(),
            ..TrackerConfig::default()
        });
        let originate = t.begin_originate(&trunk(7, false)).unwrap();
        assert_eq!(originate.get("ChannelId"), Some("dlr-0a1b2c3d-7"));
        t.handle_originate_reply(CallRef(7), OriginateReply::Queued);
        let channel = |uid: &str| {
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Uniqueid", uid),
                ("Linkedid", uid),
            ])
        };
        // Another spool's call 7 and call 8, and an untracked call 9 of ours (an earlier run).
        let snapshot = [
            channel("dlr-ffffffff-7"),
            channel("dlr-ffffffff-8"),
            channel("dlr-0a1b2c3d-7"),
            channel("dlr-0a1b2c3d-9"),
        ];
        t.handle_channel_snapshot(&snapshot, now);
        assert_eq!(t.lines_in_use(), 2, "our call 7 and our orphan 9 only");
    }

    #[test]
    fn our_untracked_channels_hold_lines_until_they_hang_up() {
        let now = Instant::now();
        let mut t = CallTracker::new(TrackerConfig {
            line_limit: 1,
            ..TrackerConfig::default()
        });
        let snapshot = [
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Uniqueid", "dlr-99"),
                ("Linkedid", "dlr-99"),
            ]),
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Uniqueid", "dlr-99-o"),
                ("Linkedid", "dlr-99"),
            ]),
            ev(&[
                ("Event", "CoreShowChannel"),
                ("Uniqueid", "1795.1"),
                ("Linkedid", "1795.1"),
            ]),
        ];
        t.handle_channel_snapshot(&snapshot, now);
        assert_eq!(
            t.lines_in_use(),
            1,
            "one call of ours, whatever its leg count; foreign ones ignored"
        );
        assert!(matches!(
            t.begin_originate(&trunk(1, false)),
            Err(RefusalReason::LineLimit { limit: 1 })
        ));
        for uid in ["dlr-99", "dlr-99-o"] {
            t.handle_message(
                &ev(&[
                    ("Event", "Hangup"),
                    ("Uniqueid", uid),
                    ("Linkedid", "dlr-99"),
                    ("Cause", "16"),
                ]),
                now,
            );
        }
        assert_eq!(t.lines_in_use(), 0);
        assert!(t.begin_originate(&trunk(1, false)).is_ok());
    }

    #[test]
    fn invalid_numbers_and_routings_are_refused_without_holding_a_line() {
        let mut t = CallTracker::new(TrackerConfig::default());
        for bad in ["", "123&PJSIP/999", "555 0100", "5550100@other", "12\r\n"] {
            let mut o = trunk(1, false);
            o.number = bad.into();
            assert!(
                matches!(
                    t.begin_originate(&o),
                    Err(RefusalReason::InvalidNumber { .. })
                ),
                "{bad:?}"
            );
        }
        let mut o = trunk(1, false);
        o.routing.channel = "PJSIP/fixed".into();
        assert!(matches!(
            t.begin_originate(&o),
            Err(RefusalReason::InvalidRouting { .. })
        ));
        assert_eq!(t.lines_in_use(), 0);
    }
}
