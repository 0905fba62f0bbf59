//! The sans-IO driver: owns the [`Engine`] and a [`Spool`], applies bursts of inputs, persists
//! every store update of a burst before any later output can be acted on, and answers the
//! engine's record requests. It does no I/O of its own and reads no clock, so the tokio runtime
//! ([`crate::Dialer`]) and the simulator (`backend_sim`) run the very same code.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dialer_core::*;
//! use dialer_runtime::driver::{Action, Driver, Spool};
//! use std::sync::Arc;
//!
//! /// A spool in memory: enough to show the contract.
//! #[derive(Default)]
//! struct Memory { records: Vec<SpoolRecord>, updates: Vec<StoreUpdate> }
//! impl Spool for Memory {
//!     type Error = std::convert::Infallible;
//!     fn persist(&mut self, u: StoreUpdate) -> Result<(), Self::Error> { self.updates.push(u); Ok(()) }
//!     fn ready_set(&mut self, _: &CampaignId, _: chrono::DateTime<Utc>, _: u32) -> Result<Vec<Arc<SpoolRecord>>, Self::Error> {
//!         Ok(std::mem::take(&mut self.records).into_iter().map(Arc::new).collect())
//!     }
//! }
//!
//! let now = Utc.with_ymd_and_hms(2026, 6, 1, 15, 0, 0).unwrap(); // 11:00 in New York
//! let campaign = Campaign::new("spring", "America/New_York");
//! let record = SpoolRecord::new(RecordId(1), campaign.id.clone(),
//!     PhoneNumber::parse("212 555 0123", "US").unwrap(), vec![], now);
//! let mut driver = Driver::new(Engine::new(EngineConfig::default()),
//!     Memory { records: vec![record], ..Default::default() });
//! driver.handle(now, [
//!     InputKind::Campaign(Box::new(campaign.clone())),
//!     InputKind::Agent { agent: AgentId::from("alice"),
//!         event: AgentEvent::LoggedIn { campaigns: vec![campaign.id.clone()], inactivity_timeout_s: None } },
//! ]).unwrap();
//! // The ledger row was persisted before the Originate became available.
//! assert!(matches!(driver.spool().updates[0], StoreUpdate::AttemptStarted { .. }));
//! // Then the call to place, among the events (Dialed, progress), in the engine's order.
//! let mut originates = 0;
//! while let Some(action) = driver.poll_action() {
//!     if let Action::Originate(_) = action {
//!         originates += 1;
//!     }
//! }
//! assert_eq!(originates, 1);
//! ```

use chrono::{DateTime, Utc};
use dialer_core::{
    AbandonPeriod, CallId, Campaign, CampaignId, Command, Engine, Event, Input, InputKind,
    OriginateIntent, Output, RejectReason, SpoolRecord, StoreUpdate,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// Records offered when the hopper is reloaded after an operation changed the spool (the
/// engine asks for more at its next refill if it needs them).
pub const RELOAD_LIMIT: u32 = 200;

/// How long a call of unknown fate (left up on the PBX by an earlier run that stopped without
/// seeing its end) is taken to be possibly still up, from when it was placed: a restarted
/// engine holds a line for it until the PBX reports its end or this passes.
pub const UNKNOWN_FATE_HOLD_S: i64 = 3600;

/// The commands that make a restarted engine hold a line for each call of unknown fate
/// (`(campaign, call, placed at)`, as `SpoolStore::calls_of_unknown_fate` lists them), until
/// [`UNKNOWN_FATE_HOLD_S`] after it was placed.
pub fn hold_lines(calls: Vec<(String, CallId, DateTime<Utc>)>) -> Vec<Command> {
    calls
        .into_iter()
        .map(|(campaign, call, placed_at)| Command::HoldLines {
            campaign: CampaignId::from(campaign),
            calls: vec![call],
            until: placed_at + chrono::Duration::seconds(UNKNOWN_FATE_HOLD_S),
        })
        .collect()
}

/// The inputs that load a campaign into an engine that does not run it yet: its settings,
/// then the abandonment books an earlier run persisted (`SpoolStore::abandon_books`), so the
/// budget of a legal period counts what was booked before a restart. Every path that starts
/// a campaign (start-up, a restart, an activation, a campaign added while running) uses it.
pub fn load_campaign(campaign: Campaign, books: Vec<AbandonPeriod>) -> Vec<InputKind> {
    let id = campaign.id.clone();
    let mut inputs = vec![InputKind::Campaign(Box::new(campaign))];
    if !books.is_empty() {
        inputs.push(InputKind::Command(Box::new(Command::RestoreAbandonBooks {
            campaign: id,
            periods: books,
        })));
    }
    inputs
}

/// Where the driver persists what the engine decides and finds the records it asks for.
///
/// Two implementations: the SQLite spool (`spool_store::SpoolStore`, used by the runtime) and
/// the simulator's in-memory spool.
pub trait Spool {
    /// Why the spool could not do what was asked.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Persists one update; when this returns `Ok` the update survives a crash.
    fn persist(&mut self, update: StoreUpdate) -> Result<(), Self::Error>;

    /// Up to `limit` records of the campaign due at `now`, in the core's dial order, shared
    /// (`Arc`): a spool that keeps its records in memory hands out its own copies.
    fn ready_set(
        &mut self,
        campaign: &CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Arc<SpoolRecord>>, Self::Error>;

    /// Records an event in the campaign log (call progress); the default keeps nothing.
    fn record_event(&mut self, _event: &Event) -> Result<(), Self::Error> {
        Ok(())
    }

    /// Whether to answer a record request later rather than now (a simulator paging its
    /// list like a slow store); the owner then calls [`Driver::answer_deferred`]. The
    /// default answers at once.
    fn defer_records(&mut self, _campaign: &CampaignId, _now: DateTime<Utc>, _limit: u32) -> bool {
        false
    }
}

/// What the driver's owner must carry out (on the telephone system) or pass on (to
/// subscribers), in the engine's order. Store updates never appear here: the driver has
/// persisted them already.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Place this call; its ledger row is already persisted.
    Originate(Box<OriginateIntent>),
    /// Hang this call up.
    Hangup(CallId),
    /// Hold this call's callee (`hold`), or take it off hold.
    Hold { call: CallId, hold: bool },
    /// Something that happened (progress, dialed, skipped, rejected...).
    Event(Event),
}

/// Why the driver stopped applying a burst.
#[derive(Debug, thiserror::Error)]
pub enum DriverError<E: std::error::Error + 'static> {
    /// The spool failed; the engine's state is ahead of the spool by the failed update, so the
    /// owner must stop dialing and restart from the spool (which reconciles the ledger).
    #[error("the spool failed: {0}")]
    Spool(#[source] E),
    /// The engine kept asking for records within one instant: a bug, reported rather than
    /// looped on or swallowed.
    #[error("the engine asked for records {rounds} times in one instant")]
    RecordLoop { rounds: usize },
    /// More actions are waiting than the bound allows: the owner is not carrying them out.
    #[error("{waiting} actions are waiting to be carried out (bound {bound})")]
    ActionsBacklog { waiting: usize, bound: usize },
}

/// Counters of what the driver did, for status and run summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DriverCounters {
    pub bursts: u64,
    pub store_updates: u64,
    pub originates: u64,
    pub hangups: u64,
    pub record_requests: u64,
    pub events: u64,
}

/// Bounds of the driver's queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverLimits {
    /// Most actions waiting to be polled before [`DriverError::ActionsBacklog`].
    pub max_actions: usize,
    /// Most events queued among the actions; further ones are dropped and counted.
    pub max_events: usize,
}

impl Default for DriverLimits {
    fn default() -> Self {
        DriverLimits {
            max_actions: 100_000,
            max_events: 100_000,
        }
    }
}

/// The engine and its spool, driven by bursts of inputs.
pub struct Driver<S: Spool> {
    engine: Engine,
    spool: S,
    actions: VecDeque<Action>,
    /// Events queued among the actions, for the bound.
    events_queued: usize,
    /// Events dropped because nobody polled them (bounded queue).
    events_dropped: u64,
    keep_events: bool,
    /// When set, only the events it accepts are queued with the actions.
    event_filter: Option<fn(&Event) -> bool>,
    /// Record requests the spool deferred, answered by [`Driver::answer_deferred`].
    deferred: Vec<(CampaignId, u32)>,
    wake: Option<DateTime<Utc>>,
    limits: DriverLimits,
    counters: DriverCounters,
    /// The engine's last rejection within the current burst.
    last_rejection: Option<RejectReason>,
}

impl<S: Spool> Driver<S> {
    /// A driver around an engine and its spool.
    pub fn new(engine: Engine, spool: S) -> Driver<S> {
        Driver {
            engine,
            spool,
            actions: VecDeque::new(),
            events_queued: 0,
            events_dropped: 0,
            deferred: Vec::new(),
            keep_events: true,
            event_filter: None,
            wake: None,
            limits: DriverLimits::default(),
            counters: DriverCounters::default(),
            last_rejection: None,
        }
    }

    /// Sets the queue bounds.
    pub fn with_limits(mut self, limits: DriverLimits) -> Driver<S> {
        self.limits = limits;
        self
    }

    /// Whether events are queued with the actions (they always reach
    /// [`Spool::record_event`]).
    pub fn keep_events(&mut self, keep: bool) {
        self.keep_events = keep;
        self.event_filter = None;
    }

    /// Queues only the events `keep` accepts (the others still reach
    /// [`Spool::record_event`]): an owner that acts on few events spares the queue the rest.
    pub fn keep_events_where(&mut self, keep: fn(&Event) -> bool) {
        self.keep_events = true;
        self.event_filter = Some(keep);
    }

    /// The engine, for getters (status, abandonment position).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for setters that are not inputs (a simulator's pacer).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// The spool.
    pub fn spool(&self) -> &S {
        &self.spool
    }

    /// The spool, for operations the owner applies itself (the one writer).
    pub fn spool_mut(&mut self) -> &mut S {
        &mut self.spool
    }

    /// Takes the driver apart.
    pub fn into_parts(self) -> (Engine, S) {
        (self.engine, self.spool)
    }

    /// What the driver did so far.
    pub fn counters(&self) -> DriverCounters {
        self.counters
    }

    /// Events dropped because the event queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// When to call [`Driver::handle`] again (with no inputs, a tick) if nothing happens.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.wake
    }

    /// Applies everything that happened at `now` as one burst (the engine decides once, with
    /// all of it known), then carries out the engine's outputs: store updates are persisted at
    /// once and in order, record requests are answered from the spool in the same instant,
    /// Originates and Hangups queue up for [`Driver::poll_action`].
    pub fn handle(
        &mut self,
        now: DateTime<Utc>,
        inputs: impl IntoIterator<Item = InputKind>,
    ) -> Result<(), DriverError<S::Error>> {
        self.counters.bursts += 1;
        self.last_rejection = None;
        let mut burst = inputs.into_iter().map(|k| Input::new(now, k)).peekable();
        if burst.peek().is_none() {
            self.engine.handle_input(Input::tick(now));
        } else {
            self.engine.handle_inputs(burst);
        }
        self.drain(now)
    }

    /// Applies an operator or agent command, validated in full before anything changes: a
    /// rejection leaves the engine as it was. Its outputs are carried out like a burst's.
    pub fn command(
        &mut self,
        now: DateTime<Utc>,
        command: Command,
    ) -> Result<Result<(), RejectReason>, DriverError<S::Error>> {
        self.counters.bursts += 1;
        self.last_rejection = None;
        let verdict = self.engine.apply_command(now, command);
        self.drain(now)?;
        Ok(verdict)
    }

    /// The reason the engine rejected an input of the last burst, if it rejected one.
    pub fn last_rejection(&self) -> Option<RejectReason> {
        self.last_rejection.clone()
    }

    /// The next thing to carry out or pass on, in the engine's order.
    pub fn poll_action(&mut self) -> Option<Action> {
        let a = self.actions.pop_front();
        if let Some(Action::Event(_)) = &a {
            self.events_queued -= 1;
        }
        a
    }

    /// Whether the spool deferred a record request that is still unanswered.
    pub fn has_deferred_requests(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Applies a burst that starts with the answers to the record requests the spool
    /// deferred (from the spool, now), followed by `inputs`: one decision with all of it known.
    pub fn handle_with_deferred(
        &mut self,
        now: DateTime<Utc>,
        inputs: impl IntoIterator<Item = InputKind>,
    ) -> Result<(), DriverError<S::Error>> {
        let requests = std::mem::take(&mut self.deferred);
        let mut burst = self.offers(now, requests)?;
        burst.extend(inputs);
        self.handle(now, burst)
    }

    /// The spool's answers to record requests, as the engine's inputs.
    fn offers(
        &mut self,
        now: DateTime<Utc>,
        requests: Vec<(CampaignId, u32)>,
    ) -> Result<Vec<InputKind>, DriverError<S::Error>> {
        let mut offers = Vec::with_capacity(requests.len());
        for (campaign, limit) in requests {
            self.counters.record_requests += 1;
            let records = self
                .spool
                .ready_set(&campaign, now, limit)
                .map_err(DriverError::Spool)?;
            offers.push(InputKind::RecordsOffered { campaign, records });
        }
        Ok(offers)
    }

    fn drain(&mut self, now: DateTime<Utc>) -> Result<(), DriverError<S::Error>> {
        // A campaign asks at most once an instant (the engine holds further requests until an
        // answer), so the rounds are bounded by the campaigns; the bound is a guard against a
        // bug, reported as an error.
        let max_rounds = self.engine.campaign_ids().count() + 2;
        let mut rounds = 0;
        loop {
            let mut requests: Vec<(CampaignId, u32)> = Vec::new();
            loop {
                match self.engine.poll_output() {
                    Output::Store(update) => {
                        self.spool.persist(update).map_err(DriverError::Spool)?;
                        self.counters.store_updates += 1;
                    }
                    Output::Originate(intent) => {
                        self.counters.originates += 1;
                        self.push_action(Action::Originate(intent))?;
                    }
                    Output::Hangup { call } => {
                        self.counters.hangups += 1;
                        self.push_action(Action::Hangup(call))?;
                    }
                    Output::Hold { call, hold } => self.push_action(Action::Hold { call, hold })?,
                    Output::NeedRecords { campaign, limit } => {
                        if self.spool.defer_records(&campaign, now, limit) {
                            self.deferred.push((campaign, limit));
                        } else {
                            requests.push((campaign, limit));
                        }
                    }
                    Output::Event(event) => {
                        self.counters.events += 1;
                        if let Event::Rejected { reason, .. } = &event {
                            self.last_rejection = Some(reason.clone());
                        }
                        self.spool
                            .record_event(&event)
                            .map_err(DriverError::Spool)?;
                        if self.keep_events && self.event_filter.is_none_or(|keep| keep(&event)) {
                            if self.events_queued >= self.limits.max_events {
                                self.events_dropped += 1;
                            } else {
                                self.events_queued += 1;
                                self.actions.push_back(Action::Event(event));
                            }
                        }
                    }
                    Output::Timeout(at) => {
                        self.wake = at;
                        break;
                    }
                }
            }
            if requests.is_empty() {
                return Ok(());
            }
            rounds += 1;
            if rounds > max_rounds {
                return Err(DriverError::RecordLoop { rounds });
            }
            let offers = self.offers(now, requests)?;
            self.engine
                .handle_inputs(offers.into_iter().map(|kind| Input::new(now, kind)));
        }
    }

    fn push_action(&mut self, action: Action) -> Result<(), DriverError<S::Error>> {
        if self.actions.len() - self.events_queued >= self.limits.max_actions {
            return Err(DriverError::ActionsBacklog {
                waiting: self.actions.len(),
                bound: self.limits.max_actions,
            });
        }
        self.actions.push_back(action);
        Ok(())
    }
}

/// The SQLite spool is the runtime's spool.
#[cfg(feature = "runtime")]
impl Spool for spool_store::SpoolStore {
    type Error = spool_store::StoreError;

    fn persist(&mut self, update: StoreUpdate) -> Result<(), Self::Error> {
        self.apply(&update)
    }

    fn ready_set(
        &mut self,
        campaign: &CampaignId,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<Arc<SpoolRecord>>, Self::Error> {
        spool_store::SpoolStore::ready_set(self, &campaign.0, now, limit)
            .map(|records| records.into_iter().map(Arc::new).collect())
    }

    fn record_event(&mut self, event: &Event) -> Result<(), Self::Error> {
        self.log_event(event).map(|_| ())
    }
}
