//! The running dialer: one task owns the driver (engine + SQLite spool) and the telephone
//! system; embedders hold a cheap [`Dialer`] handle that talks to it by typed messages, each
//! with a typed reply (Alice Ryhl's actor pattern, quinn's driver over quinn-proto).
//!
//! The task is the **one writer** of durable state: every operation, from the engine or from an
//! operator, is applied by it, persisted before it takes effect, and the engine's memory is
//! brought in line at once, so memory and SQLite never disagree and a restart resumes exactly.

use crate::clock::Clock;
use crate::driver::{Action, Driver, RELOAD_LIMIT};
use crate::error::{OpError, RuntimeError};
use crate::telephony::{Health, Telephony, TelephonyCommand, TelephonyError, TelephonyEvent};
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentEvent, AgentId, BlacklistEntry, BlacklistScope, CallEvent, CallId, Campaign, CampaignId,
    Command, Disposition, Engine, EngineConfig, EngineStatus, Event, InputKind, PbxFault, RecordId,
    RefusalCause, RejectReason, Respool, ScheduleId, SpoolRecord, TaskId, TaskKind, TaskTiming,
    TelephonyHealth,
};
use serde::Serialize;
use spool_store::{
    AgentActivity, BreakRow, BreakType, Callback, CampaignFilter, CampaignPage, CampaignState,
    Conclusion, DispositionRow, DncEntry, DncFilter, DncRow, InCall, ManualDial, ManualTarget,
    NewRecord, RecordChange, RecordStatusView, ResultCode, SpoolStore, StoreError,
};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Settings of a running dialer.
#[derive(Debug, Clone)]
pub struct DialerConfig {
    /// Campaigns to start with (validated, persisted, then started).
    pub campaigns: Vec<Campaign>,
    pub engine: EngineConfig,
    /// Capacity of the request queue of the handle (a full queue answers [`OpError::Busy`]).
    pub request_queue: usize,
    /// Capacity of the event broadcast; a subscriber further behind is told it lagged.
    pub event_buffer: usize,
    /// After a telephone-system refusal that is the system's own fault, how long dialing
    /// waits before trying again (unless the system reports itself up first).
    pub refusal_pause: Duration,
    /// Result-code and break catalogues of the campaigns (a `[[campaign]]` section's
    /// `result_codes` and `breaks`), persisted at start. A campaign not listed keeps the
    /// catalogues its spool has.
    pub catalogues: Vec<crate::config::CampaignCatalogue>,
}

impl Default for DialerConfig {
    fn default() -> Self {
        DialerConfig {
            campaigns: Vec::new(),
            engine: EngineConfig::default(),
            request_queue: 1024,
            event_buffer: 4096,
            refusal_pause: Duration::from_secs(30),
            catalogues: Vec::new(),
        }
    }
}

/// Something a subscriber sees, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DialerEvent {
    /// An engine event: progress, dialed, skipped with its reason, preview offered, agent
    /// linked/unlinked, rejections... A call's progress carries what the telephone system
    /// calls the call (unique id, channel, queue) as far as it reported it.
    Engine {
        event: Event,
        #[serde(skip_serializing_if = "Option::is_none")]
        call: Option<crate::telephony::CallIdentity>,
    },
    /// The telephone system's health changed.
    Telephony { system: String, health: HealthView },
    /// The dialer is draining: no new dials; calls in flight finish.
    Draining { at: DateTime<Utc> },
    /// An agent's break began (ECCP `pausestart`); `break_id` is the catalogue's id (or the
    /// reason given, for a campaign without a break catalogue or a pause made on the PBX).
    BreakStarted {
        at: DateTime<Utc>,
        agent: AgentId,
        break_id: String,
        name: String,
    },
    /// A campaign's list is spent (no pending record, none in flight): it is finished and
    /// takes no callbacks until records are added or it is activated again.
    CampaignFinished {
        at: DateTime<Utc>,
        campaign: CampaignId,
    },
    /// A finished campaign took new records (or was activated): it is active again.
    CampaignReopened {
        at: DateTime<Utc>,
        campaign: CampaignId,
    },
    /// An agent's session began (ECCP `agentloggedin`): logged in through the handle or seen
    /// on the PBX. A session carried across a restart does not begin again.
    AgentLoggedIn { at: DateTime<Utc>, agent: AgentId },
    /// An agent's session ended (ECCP `agentloggedout`).
    AgentLoggedOut { at: DateTime<Utc>, agent: AgentId },
    /// An agent's break ended (ECCP `pauseend`), with its length.
    BreakEnded {
        at: DateTime<Utc>,
        agent: AgentId,
        break_id: String,
        name: String,
        started_at: DateTime<Utc>,
        duration_s: i64,
    },
}

/// [`Health`] as subscribers and status see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealthView {
    Up,
    Down { fault: String, detail: String },
    Reconciled { lines_in_use: usize },
}

impl From<&Health> for HealthView {
    fn from(h: &Health) -> Self {
        match h {
            Health::Up => HealthView::Up,
            Health::Down { fault, detail } => HealthView::Down {
                fault: fault_text(*fault).to_owned(),
                detail: detail.clone(),
            },
            Health::Reconciled { lines_in_use } => HealthView::Reconciled {
                lines_in_use: *lines_in_use,
            },
        }
    }
}

/// Counters of a run. Local refusals, telephone-system refusals and callee outcomes are
/// counted apart: only the last are the callee's doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RunCounters {
    /// Originates handed to the telephone system.
    pub originates: u64,
    /// Originates the dialer could not hand over (queue full, system stopped): not charged.
    pub refused_locally: u64,
    /// Originates the telephone system refused (down, shutting down, permission, bad
    /// request): not charged.
    pub refused_by_pbx: u64,
    /// Calls answered (by a person, a machine, or unknown).
    pub answered: u64,
    /// Calls the telephone system placed and reported an end for (the callee's outcomes).
    pub calls_ended: u64,
    pub commands_applied: u64,
    pub commands_rejected: u64,
    /// Events subscribers could not keep up with (counted once per dropped event).
    pub events_sent: u64,
    /// Bursts of inputs from the telephone system or the clock the engine decided on, each
    /// timed in the `dialer_decision_seconds` histogram. // latency
    pub decisions: u64, // latency
}

/// What the dialer is doing now.
#[derive(Debug, Clone, Serialize)]
pub struct DialerStatus {
    pub at: DateTime<Utc>,
    pub telephony: String,
    pub health: HealthView,
    pub draining: bool,
    pub counters: RunCounters,
    pub engine: EngineStatus,
}

/// What a run did, returned when it ends.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub counters: RunCounters,
    /// Calls still in flight when the run ended (left to reconciliation at the next start).
    pub calls_left_in_flight: usize,
}

type Reply<T> = oneshot::Sender<Result<T, OpError>>;

/// The typed messages a handle sends the dialer task.
enum Request {
    Agent {
        agent: AgentId,
        event: AgentEvent,
        reply: Reply<()>,
    },
    Command {
        command: Command,
        reply: Reply<()>,
    },
    Dispose {
        record: RecordId,
        conclusion: Box<Conclusion>,
        disposition: Disposition,
        reply: Reply<()>,
    },
    UpdateFields {
        record: RecordId,
        fields: Vec<(String, String)>,
        reply: Reply<SpoolRecord>,
    },
    SetResultCodes {
        campaign: CampaignId,
        codes: Vec<ResultCode>,
        reply: Reply<()>,
    },
    ResultCodes {
        campaign: CampaignId,
        reply: Reply<Vec<ResultCode>>,
    },
    SetBreaks {
        campaign: CampaignId,
        breaks: Vec<BreakType>,
        reply: Reply<()>,
    },
    Breaks {
        campaign: CampaignId,
        reply: Reply<Vec<BreakType>>,
    },
    Conclusions {
        record: RecordId,
        reply: Reply<Vec<DispositionRow>>,
    },
    SetCampaignState {
        campaign: CampaignId,
        state: CampaignState,
        reply: Reply<()>,
    },
    ListCampaigns {
        filter: CampaignFilter,
        reply: Reply<CampaignPage>,
    },
    Activity {
        agent: AgentId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reply: Reply<AgentActivity>,
    },
    UpsertCampaign {
        campaign: Box<Campaign>,
        reply: Reply<()>,
    },
    StopCampaign {
        campaign: CampaignId,
        reply: Reply<()>,
    },
    Respool {
        new: Box<NewRecord>,
        checks: spool_store::DncChecks,
        reply: Reply<RecordId>,
    },
    ScheduleCall {
        new: Box<NewRecord>,
        callback: Box<Callback>,
        reply: Reply<(RecordId, ScheduleId)>,
    },
    AddTask {
        new: Box<NewRecord>,
        timing: TaskTiming,
        kind: TaskKind,
        reply: Reply<(RecordId, TaskId)>,
    },
    ManualDial {
        dial: Box<ManualDial>,
        reply: Reply<(RecordId, TaskId)>,
    },
    RemoveContact {
        campaign: CampaignId,
        number: String,
        reply: Reply<Vec<RecordId>>,
    },
    RemoveSchedules {
        campaign: CampaignId,
        number: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reply: Reply<usize>,
    },
    BlacklistAdd {
        entries: Vec<DncEntry>,
        reply: Reply<()>,
    },
    BlacklistRemove {
        items: Vec<(String, BlacklistScope)>,
        reply: Reply<usize>,
    },
    BlacklistEntries {
        filter: DncFilter,
        reply: Reply<Vec<DncRow>>,
    },
    Record {
        record: RecordId,
        reply: Reply<SpoolRecord>,
    },
    RecordByExternalId {
        campaign: CampaignId,
        external_id: String,
        reply: Reply<SpoolRecord>,
    },
    RemoveRecord {
        record: RecordId,
        reply: Reply<bool>,
    },
    RecordStatus {
        record: RecordId,
        reply: Reply<RecordStatusView>,
    },
    ChangeRecord {
        record: RecordId,
        change: RecordChange,
        reply: Reply<RecordStatusView>,
    },
    Supervision {
        campaign: CampaignId,
        since: Option<DateTime<Utc>>,
        service_level_s: u32,
        reply: Reply<crate::supervision::Supervision>,
    },
    QueuePosition {
        record: RecordId,
        reply: Reply<spool_store::QueuePosition>,
    },
    Refresh {
        campaign: CampaignId,
        reply: Reply<()>,
    },
    Status {
        reply: Reply<DialerStatus>,
    },
    Shutdown {
        grace: Duration,
        reply: oneshot::Sender<RunSummary>,
    },
}

/// A handle to a running dialer. Cheap to clone; every method sends a typed message to the
/// dialer task and waits for its typed reply.
#[derive(Debug, Clone)]
pub struct Dialer {
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<DialerEvent>,
    clock: Clock,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request")
    }
}

impl Dialer {
    /// Starts a dialer: reconciles the spool's ledger, validates, persists and starts the
    /// configured campaigns, then runs until [`Dialer::shutdown`] (or until every handle is
    /// dropped). Returns the handle and the task, whose result is the run's summary.
    pub async fn start(
        config: DialerConfig,
        store: SpoolStore,
        telephony: Box<dyn Telephony>,
        clock: Clock,
    ) -> Result<(Dialer, JoinHandle<Result<RunSummary, RuntimeError>>), RuntimeError> {
        if !config.engine.abandon_guard {
            return Err(RuntimeError::GuardDisabled);
        }
        let now = clock.now();
        let mut store = store;
        let mut engine_cfg = config.engine.clone();
        // Call ids continue after the ledger's last one: channel ids derive from them.
        if let Some(last) = store.max_call_id()? {
            engine_cfg.first_call_id = engine_cfg.first_call_id.max(last.0 + 1);
        }
        let mut engine = Engine::new(engine_cfg);
        engine.load_blacklist(store.blacklist(now)?);
        for c in &config.campaigns {
            c.validate().map_err(|source| RuntimeError::Campaign {
                campaign: c.id.to_string(),
                source,
            })?;
            store.upsert_campaign(c, now)?;
        }
        for cat in &config.catalogues {
            if let Some(codes) = &cat.result_codes {
                store.set_result_codes(&cat.campaign.0, codes)?;
            }
            if let Some(breaks) = &cat.breaks {
                store.set_breaks(&cat.campaign.0, breaks)?;
            }
        }
        // Breaks and sessions a previous run left open go on (the agents' states come back
        // from the telephone system; a state that disagrees ends them at the first sync).
        let open_breaks = store
            .open_breaks()?
            .into_iter()
            .map(|b| (AgentId::from(b.agent.clone()), b))
            .collect();
        // A campaign an operator made inactive stays stopped across restarts.
        let mut starting = Vec::new();
        for c in &config.campaigns {
            if store.campaign_state(&c.id.0)?.0 != CampaignState::Inactive {
                let books = store.abandon_books(&c.id.0)?;
                starting.extend(crate::driver::load_campaign(c.clone(), books));
            }
        }
        // Calls an earlier run left up on the PBX (closed `unknown` by the reconciliation)
        // still hold their lines until the PBX reports their end or they cannot be up any more.
        let unknown = store.calls_of_unknown_fate(
            now - chrono::Duration::seconds(crate::driver::UNKNOWN_FATE_HOLD_S),
        )?;
        let mut driver = Driver::new(engine, store);
        driver.handle(now, starting)?;
        for command in crate::driver::hold_lines(unknown) {
            // A campaign not started in this run has no lines to hold: nothing to do.
            let _ = driver.command(now, command)?;
        }
        let (tx, rx) = mpsc::channel(config.request_queue.max(1));
        let (ev_tx, _) = broadcast::channel(config.event_buffer.max(16));
        let name = telephony.name().to_owned();
        let task = Task {
            driver,
            telephony,
            telephony_name: name,
            health: Health::Up,
            clock,
            events: ev_tx.clone(),
            counters: RunCounters::default(),
            refusal_pause: config.refusal_pause,
            paused_until: None,
            draining: None,
            pending: VecDeque::new(),
            controls: VecDeque::new(),
            open_breaks,
            agent_campaigns: HashMap::new(),
            identities: HashMap::new(),
        };
        let join = tokio::spawn(task.run(rx));
        Ok((
            Dialer {
                requests: tx,
                events: ev_tx,
                clock,
            },
            join,
        ))
    }

    /// The clock the dialer runs on.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Events from now on. A subscriber that falls more than the buffer behind gets
    /// `RecvError::Lagged(n)` and continues; it never slows dialing.
    pub fn subscribe(&self) -> broadcast::Receiver<DialerEvent> {
        self.events.subscribe()
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, OpError> {
        let (tx, rx) = oneshot::channel();
        self.requests.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => OpError::Busy,
            mpsc::error::TrySendError::Closed(_) => OpError::Stopped,
        })?;
        rx.await.map_err(|_| OpError::Stopped)?
    }

    /// An agent event: login (with campaigns), ready, pause with reason, pause or logout after
    /// the call, wrap-up, logout.
    pub async fn agent(&self, agent: AgentId, event: AgentEvent) -> Result<(), OpError> {
        self.ask(|reply| Request::Agent {
            agent,
            event,
            reply,
        })
        .await
    }

    /// Logs an agent in to campaigns; the agent is ready at once.
    pub async fn login(&self, agent: AgentId, campaigns: Vec<CampaignId>) -> Result<(), OpError> {
        self.agent(
            agent,
            AgentEvent::LoggedIn {
                campaigns,
                inactivity_timeout_s: None,
            },
        )
        .await
    }

    /// A command to the engine: preview dial/skip, hang up a call, and the others of
    /// [`Command`]. Validated in full before anything changes.
    pub async fn command(&self, command: Command) -> Result<(), OpError> {
        self.ask(|reply| Request::Command { command, reply }).await
    }

    /// The agent's disposition of a record (RESPOOL, RESPOOLALTERNATIVE, BLACKLIST,
    /// SCHEDULE). Applied by the engine when it holds the record, by the spool otherwise.
    /// Recorded as a conclusion with only the agent (see [`Dialer::conclude`]).
    pub async fn dispose(
        &self,
        agent: Option<AgentId>,
        record: RecordId,
        disposition: Disposition,
    ) -> Result<(), OpError> {
        let conclusion = Conclusion {
            agent,
            ..Conclusion::default()
        };
        self.conclude(record, conclusion, disposition).await
    }

    /// What the agent concluded about a record (uContact DispositionCall, VICIdial
    /// external_status): the conclusion (agent, a result code of the campaign's catalogue,
    /// comment, tags) is checked first (an unknown or inactive code is refused and nothing
    /// changes), then the dialer action is applied, then the conclusion is recorded with the
    /// record's latest attempt ([`Dialer::conclusions`] reads them back).
    pub async fn conclude(
        &self,
        record: RecordId,
        conclusion: Conclusion,
        disposition: Disposition,
    ) -> Result<(), OpError> {
        self.ask(|reply| Request::Dispose {
            record,
            conclusion: Box::new(conclusion),
            disposition,
            reply,
        })
        .await
    }

    /// A record's conclusions, oldest first.
    pub async fn conclusions(&self, record: RecordId) -> Result<Vec<DispositionRow>, OpError> {
        self.ask(|reply| Request::Conclusions { record, reply })
            .await
    }

    /// Changes a record's data (VICIdial `update_fields`) without touching its numbers,
    /// retries or state; names are checked with Asterisk's variable grammar. Refused while a
    /// call on the record is in flight (unlike VICIdial, which changes the current lead: here
    /// the call already carries its variables, and its end writes the record back); the
    /// next dial of the record carries the new values.
    pub async fn update_fields(
        &self,
        record: RecordId,
        fields: Vec<(String, String)>,
    ) -> Result<SpoolRecord, OpError> {
        self.ask(|reply| Request::UpdateFields {
            record,
            fields,
            reply,
        })
        .await
    }

    /// Sets a campaign's result-code catalogue (codes left out become inactive).
    pub async fn set_result_codes(
        &self,
        campaign: CampaignId,
        codes: Vec<ResultCode>,
    ) -> Result<(), OpError> {
        self.ask(|reply| Request::SetResultCodes {
            campaign,
            codes,
            reply,
        })
        .await
    }

    /// A campaign's result codes, active and inactive.
    pub async fn result_codes(&self, campaign: CampaignId) -> Result<Vec<ResultCode>, OpError> {
        self.ask(|reply| Request::ResultCodes { campaign, reply })
            .await
    }

    /// Sets a campaign's break catalogue (breaks left out become inactive).
    pub async fn set_breaks(
        &self,
        campaign: CampaignId,
        breaks: Vec<BreakType>,
    ) -> Result<(), OpError> {
        self.ask(|reply| Request::SetBreaks {
            campaign,
            breaks,
            reply,
        })
        .await
    }

    /// A campaign's breaks, active and inactive.
    pub async fn breaks(&self, campaign: CampaignId) -> Result<Vec<BreakType>, OpError> {
        self.ask(|reply| Request::Breaks { campaign, reply }).await
    }

    /// Puts an agent on a break of its campaigns' catalogue (ECCP pauseagent). An unknown or
    /// inactive break is refused, and so is a pause while the agent is in another break; the
    /// queue stops offering calls to the agent on the telephone system too. A campaign
    /// without a break catalogue takes any reason.
    pub async fn pause(&self, agent: AgentId, break_id: impl Into<String>) -> Result<(), OpError> {
        self.agent(
            agent,
            AgentEvent::Paused {
                reason: break_id.into(),
            },
        )
        .await
    }

    /// ECCP `getagentactivitysummary`: sessions, breaks with their lengths, calls and talk
    /// seconds per campaign, for what began in `[from, to]`.
    pub async fn agent_activity(
        &self,
        agent: AgentId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AgentActivity, OpError> {
        self.ask(|reply| Request::Activity {
            agent,
            from,
            to,
            reply,
        })
        .await
    }

    /// Hangs a call up.
    pub async fn hangup(&self, call: CallId) -> Result<(), OpError> {
        self.command(Command::Hangup { call }).await
    }

    /// Puts the callee of a linked call on hold (ECCP `hold`). Refused when the call is not
    /// linked or already on hold; the call counts as held (status, `onhold`, the ledger's hold
    /// time) once the telephone system reports it.
    pub async fn hold(&self, call: CallId) -> Result<(), OpError> {
        self.command(Command::Hold { call }).await
    }

    /// Takes the callee of a held call off hold (ECCP `unhold`).
    pub async fn unhold(&self, call: CallId) -> Result<(), OpError> {
        self.command(Command::Unhold { call }).await
    }

    /// Creates or updates a campaign: validated (the field at fault is named), persisted,
    /// then started or updated in the engine.
    pub async fn upsert_campaign(&self, campaign: Campaign) -> Result<(), OpError> {
        self.ask(|reply| Request::UpsertCampaign {
            campaign: Box::new(campaign),
            reply,
        })
        .await
    }

    /// Stops dialing a campaign; its calls in flight finish.
    pub async fn stop_campaign(&self, campaign: CampaignId) -> Result<(), OpError> {
        self.ask(|reply| Request::StopCampaign { campaign, reply })
            .await
    }

    /// Puts a new record into the spool (uContact Respool); a number live on another record
    /// of the campaign is refused.
    pub async fn respool(&self, new: NewRecord) -> Result<RecordId, OpError> {
        self.add_lead(new, spool_store::DncChecks::default()).await
    }

    /// Adds a lead (VICIdial `external_add_lead`): a respool that, as asked, first refuses a
    /// number on the do-not-call list of every campaign (`dnc_check`) or of the campaign
    /// (`campaign_dnc_check`), two distinct errors; nothing is added then.
    pub async fn add_lead(
        &self,
        new: NewRecord,
        checks: spool_store::DncChecks,
    ) -> Result<RecordId, OpError> {
        self.ask(|reply| Request::Respool {
            new: Box::new(new),
            checks,
            reply,
        })
        .await
    }

    /// Schedules a callback (exact time, or date range and daily time range; same agent;
    /// new phone; new contact name; moving an existing callback only when
    /// `callback.reschedule` says so). The callback passes the core's schedule rules, the
    /// same an agent's disposition does; refused, nothing changes.
    pub async fn schedule_call(
        &self,
        new: NewRecord,
        callback: Callback,
    ) -> Result<(RecordId, ScheduleId), OpError> {
        self.ask(|reply| Request::ScheduleCall {
            new: Box::new(new),
            callback: Box::new(callback),
            reply,
        })
        .await
    }

    /// Adds a dialer task (uContact DialerTask, its four modes).
    pub async fn add_task(
        &self,
        new: NewRecord,
        timing: TaskTiming,
        kind: TaskKind,
    ) -> Result<(RecordId, TaskId), OpError> {
        self.ask(|reply| Request::AddTask {
            new: Box::new(new),
            timing,
            kind,
            reply,
        })
        .await
    }

    /// Queues a manual dial for a logged-in agent (VICIdial `external_dial`, uContact
    /// `AgentCall`): by number or by record (`lead_id`, `alt_dial`), with its own caller id,
    /// dial prefix, leg order (agent first: uContact's two-step call) and preview. It is
    /// placed as soon as the agent is free, outside pacing but within every compliance rule;
    /// the call it makes is reported by `Dialed` (and the agent's state) with the record and
    /// task returned here. Refused, nothing changed, when the agent is not logged in, the
    /// options are invalid, the record cannot take it or the number is already queued for
    /// the agent.
    pub async fn manual_dial(&self, dial: ManualDial) -> Result<(RecordId, TaskId), OpError> {
        self.ask(|reply| Request::ManualDial {
            dial: Box::new(dial),
            reply,
        })
        .await
    }

    /// Takes a number out of the campaign's spool (uContact RemoveContact). A record with a
    /// call in flight is refused and nothing is removed.
    pub async fn remove_contact(
        &self,
        campaign: CampaignId,
        number: String,
    ) -> Result<Vec<RecordId>, OpError> {
        self.ask(|reply| Request::RemoveContact {
            campaign,
            number,
            reply,
        })
        .await
    }

    /// Drops the callbacks of a number within a time range (uContact
    /// RemoveScheduleDialerCall).
    pub async fn remove_schedules(
        &self,
        campaign: CampaignId,
        number: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<usize, OpError> {
        self.ask(|reply| Request::RemoveSchedules {
            campaign,
            number,
            from,
            to,
            reply,
        })
        .await
    }

    /// Adds do-not-call entries (one or a bulk), persisted before they take effect.
    pub async fn blacklist_add(&self, entries: Vec<BlacklistEntry>) -> Result<(), OpError> {
        let entries = entries.into_iter().map(DncEntry::from).collect();
        self.ask(|reply| Request::BlacklistAdd { entries, reply })
            .await
    }

    /// Adds do-not-call entries with uContact's fields (name, company, username; seed row
    /// U17), one or a bulk: every entry is checked first and a bad one adds none; persisted
    /// before they take effect.
    pub async fn blacklist_add_entries(&self, entries: Vec<DncEntry>) -> Result<(), OpError> {
        self.ask(|reply| Request::BlacklistAdd { entries, reply })
            .await
    }

    /// The do-not-call entries with their fields (by number, scope, direction).
    pub async fn blacklist_entries(&self, filter: DncFilter) -> Result<Vec<DncRow>, OpError> {
        self.ask(|reply| Request::BlacklistEntries { filter, reply })
            .await
    }

    /// Removes do-not-call entries; answers how many existed.
    pub async fn blacklist_remove(
        &self,
        items: Vec<(String, BlacklistScope)>,
    ) -> Result<usize, OpError> {
        self.ask(|reply| Request::BlacklistRemove { items, reply })
            .await
    }

    /// Activates a campaign (started in the engine, re-opened if it was finished) or makes it
    /// inactive (stopped until activated; refuses callbacks). A campaign finishes by itself
    /// when its list is spent; asking for `Finished` is refused.
    pub async fn set_campaign_state(
        &self,
        campaign: CampaignId,
        state: CampaignState,
    ) -> Result<(), OpError> {
        self.ask(|reply| Request::SetCampaignState {
            campaign,
            state,
            reply,
        })
        .await
    }

    /// Campaigns by name with their state, filtered by state, dial mode, name and dates, with
    /// offset and limit (ECCP `getcampaignlist`).
    pub async fn list_campaigns(&self, filter: CampaignFilter) -> Result<CampaignPage, OpError> {
        self.ask(|reply| Request::ListCampaigns { filter, reply })
            .await
    }

    /// A record as the spool has it.
    pub async fn record(&self, record: RecordId) -> Result<SpoolRecord, OpError> {
        self.ask(|reply| Request::Record { record, reply }).await
    }

    /// The record a campaign knows by the id its caller gave it (UCCX `getrecord`).
    pub async fn record_by_external_id(
        &self,
        campaign: CampaignId,
        external_id: String,
    ) -> Result<SpoolRecord, OpError> {
        self.ask(|reply| Request::RecordByExternalId {
            campaign,
            external_id,
            reply,
        })
        .await
    }

    /// Removes one record (UCCX `removerecord`): finished as removed in the spool, then
    /// forgotten by the engine. A record with a call in flight is refused and nothing
    /// changes. Answers whether the record was live (removing a finished one is a no-op).
    pub async fn remove_record(&self, record: RecordId) -> Result<bool, OpError> {
        self.ask(|reply| Request::RemoveRecord { record, reply })
            .await
    }

    /// A record's status in the UCCX callback server's terms (seed row C1: NEW, RETRY,
    /// INACTIVE, REQUESTED, PROCESSING, DIALINGTARGET, QUEUED, AGENTACKNOWLEDGED, COMPLETED…),
    /// derived by [`spool_store::callback_status`] from the spool's record and the call in
    /// progress as the engine knows it (its calls in flight and preview offers).
    pub async fn record_status(&self, record: RecordId) -> Result<RecordStatusView, OpError> {
        self.ask(|reply| Request::RecordStatus { record, reply })
            .await
    }

    /// Changes a record's status from outside (UCCX `updaterecord`, seed row C3): deactivate
    /// (never offered nor dialed until reactivated), reactivate, or assign to an agent (a
    /// same-agent callback). Refused with a typed reason, nothing changed, when the record's
    /// call is in flight, the record is finished, the change does not apply to its state,
    /// or the agent is unknown. Answers the record's status after the change.
    pub async fn change_record(
        &self,
        record: RecordId,
        change: RecordChange,
    ) -> Result<RecordStatusView, OpError> {
        self.ask(|reply| Request::ChangeRecord {
            record,
            change,
            reply,
        })
        .await
    }

    /// How many records of its campaign the dialer takes before this pending one (UCCX
    /// `getcontactpositionoffset`).
    pub async fn queue_position(
        &self,
        record: RecordId,
    ) -> Result<spool_store::QueuePosition, OpError> {
        self.ask(|reply| Request::QueuePosition { record, reply })
            .await
    }

    /// One campaign as a supervisor reads it (ECCP `getcampaignstatus` agents, active calls
    /// and stats; uContact `campaignstatus`, `queuesummary`): agents by state with their
    /// call and record, calls in flight with their times, callers waiting and the longest
    /// wait, the abandonment position, and the ledger's talk, hold and service-level
    /// figures for attempts placed since `since` (ECCP `datetime_start`; all when `None`),
    /// the service level counting calls taken within `service_level_s` seconds of queueing.
    pub async fn supervision(
        &self,
        campaign: CampaignId,
        since: Option<DateTime<Utc>>,
        service_level_s: u32,
    ) -> Result<crate::supervision::Supervision, OpError> {
        self.ask(|reply| Request::Supervision {
            campaign,
            since,
            service_level_s,
            reply,
        })
        .await
    }

    /// Tells the dialer that records of a campaign changed outside it (an upload finished):
    /// the engine's hopper is reloaded from the spool.
    pub async fn refresh(&self, campaign: CampaignId) -> Result<(), OpError> {
        self.ask(|reply| Request::Refresh { campaign, reply }).await
    }

    /// Agents, calls in flight, campaign counters, abandonment position, telephone health.
    pub async fn status(&self) -> Result<DialerStatus, OpError> {
        self.ask(|reply| Request::Status { reply }).await
    }

    /// Stops new dials, waits up to `grace` (on the dialer's clock) for calls in flight, then
    /// stops. Calls still in flight are left to reconciliation at the next start; nothing is
    /// booked but unsent.
    pub async fn shutdown(&self, grace: Duration) -> Result<RunSummary, OpError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(Request::Shutdown { grace, reply: tx })
            .await
            .map_err(|_| OpError::Stopped)?;
        rx.await.map_err(|_| OpError::Stopped)
    }
}

/// The dialer task's state.
struct Task {
    driver: Driver<SpoolStore>,
    telephony: Box<dyn Telephony>,
    telephony_name: String,
    health: Health,
    clock: Clock,
    events: broadcast::Sender<DialerEvent>,
    counters: RunCounters,
    refusal_pause: Duration,
    /// Dialing paused after a refusal that was the telephone system's fault, until then.
    paused_until: Option<DateTime<Utc>>,
    /// Shutting down: the deadline and who to tell.
    draining: Option<(DateTime<Utc>, oneshot::Sender<RunSummary>)>,
    /// Inputs produced by carrying out actions (refusals), fed as the next burst.
    pending: VecDeque<InputKind>,
    /// Agent control for the telephone system, sent before the next actions.
    controls: VecDeque<TelephonyCommand>,
    /// Breaks in progress, as persisted (`agent_break`).
    open_breaks: HashMap<AgentId, BreakRow>,
    /// The campaigns each agent logged in to (whose break catalogues its pauses use).
    agent_campaigns: HashMap<AgentId, Vec<CampaignId>>,
    /// What the telephone system calls each call in flight (as far as it said), attached to
    /// the call's progress events; dropped with the call's last progress.
    identities: HashMap<CallId, crate::telephony::CallIdentity>,
}

/// Longest sleep between two engine ticks.
const MAX_SLEEP: Duration = Duration::from_secs(5);

impl Task {
    async fn run(
        mut self,
        mut requests: mpsc::Receiver<Request>,
    ) -> Result<RunSummary, RuntimeError> {
        let result = self.run_loop(&mut requests).await;
        self.telephony.shutdown().await;
        let summary = self.summary();
        if let Some((_, reply)) = self.draining.take() {
            let _ = reply.send(summary.clone());
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "the dialer stopped");
        }
        result.map(|()| summary)
    }

    fn summary(&self) -> RunSummary {
        RunSummary {
            counters: self.counters,
            calls_left_in_flight: self.driver.engine().calls_in_flight(),
        }
    }

    async fn run_loop(
        &mut self,
        requests: &mut mpsc::Receiver<Request>,
    ) -> Result<(), RuntimeError> {
        let mut requests_open = true;
        loop {
            self.carry_out().await?;
            if let Some((deadline, _)) = &self.draining {
                if self.driver.engine().calls_in_flight() == 0 || self.clock.now() >= *deadline {
                    return Ok(());
                }
            }
            let wake = self.next_wake();
            tokio::select! {
                burst = self.telephony.next_burst() => match burst {
                    Some(burst) => {
                        let started = std::time::Instant::now(); // latency
                        self.on_telephony(burst)?;
                        decided(&mut self.counters, started); // latency
                    }
                    None => {
                        tracing::error!(system = %self.telephony_name, "the telephone system stopped for good");
                        return Ok(());
                    }
                },
                req = requests.recv(), if requests_open => match req {
                    Some(req) => self.on_request(req)?,
                    None => {
                        // Every handle is gone: drain like a shutdown without anyone to tell.
                        requests_open = false;
                        self.begin_drain(Duration::from_secs(30), None)?;
                    }
                },
                _ = tokio::time::sleep(wake) => {
                    let started = std::time::Instant::now(); // latency
                    let now = self.clock.now();
                    if self.paused_until.is_some_and(|t| now >= t) {
                        self.paused_until = None;
                        self.set_health(Health::Up)?;
                    } else {
                        self.driver.handle(now, [])?;
                    }
                    decided(&mut self.counters, started); // latency
                }
            }
        }
    }

    fn next_wake(&self) -> Duration {
        let mut wait = MAX_SLEEP;
        if !self.pending.is_empty() {
            return Duration::ZERO;
        }
        for t in [self.driver.next_wake(), self.paused_until]
            .into_iter()
            .flatten()
            .chain(self.draining.as_ref().map(|d| d.0))
        {
            wait = wait.min(self.clock.real_wait_until(t));
        }
        wait
    }

    /// Carries out the driver's actions in order, then publishes its events. A refusal to
    /// take an Originate becomes the engine's next input (nothing is booked but unsent).
    async fn carry_out(&mut self) -> Result<(), RuntimeError> {
        while let Some(cmd) = self.controls.pop_front() {
            if let Err(e) = self.telephony.submit(cmd).await {
                tracing::warn!(error = %e, "agent control not taken by the telephone system");
            }
        }
        loop {
            while let Some(action) = self.driver.poll_action() {
                match action {
                    Action::Originate(intent) => {
                        let call = intent.call;
                        match self
                            .telephony
                            .submit(TelephonyCommand::Originate(*intent))
                            .await
                        {
                            Ok(()) => self.counters.originates += 1,
                            Err(e) => {
                                self.counters.refused_locally += 1;
                                tracing::warn!(%call, error = %e, "originate not handed over; no attempt is charged");
                                self.pending.push_back(InputKind::Call {
                                    call,
                                    event: CallEvent::OriginateRefused {
                                        cause: local_refusal(&e),
                                    },
                                });
                            }
                        }
                    }
                    Action::Hangup(call) => {
                        if let Err(e) = self.telephony.submit(TelephonyCommand::Hangup(call)).await
                        {
                            tracing::warn!(%call, error = %e, "hangup not taken");
                        }
                    }
                    Action::Hold { call, hold } => {
                        let command = TelephonyCommand::Hold { call, hold };
                        if let Err(e) = self.telephony.submit(command).await {
                            tracing::warn!(%call, hold, error = %e, "hold not taken");
                        }
                    }
                    Action::Event(event) => {
                        if let Event::RecordFinished { record, .. } = &event {
                            let record = record.clone();
                            self.finish_if_spent(&record)?;
                        }
                        // A pause or logout that took effect later than asked (after a call,
                        // or once dials in flight no longer needed the agent).
                        if let Event::AgentAway { agent, .. } = &event {
                            let agent = agent.clone();
                            self.publish(event);
                            self.sync_agent(&agent)?;
                        } else {
                            self.publish(event);
                        }
                    }
                }
            }
            if self.pending.is_empty() {
                return Ok(());
            }
            let burst: Vec<InputKind> = self.pending.drain(..).collect();
            let started = std::time::Instant::now(); // latency
            self.driver.handle(self.clock.now(), burst)?;
            decided(&mut self.counters, started); // latency
        }
    }

    fn publish(&mut self, event: Event) {
        if let Event::Rejected { input, reason, .. } = &event {
            tracing::info!(%input, %reason, "input rejected");
        }
        self.counters.events_sent += 1;
        let call = match &event {
            Event::Progress { call, progress, .. } => {
                let identity = self.identities.get(call).cloned();
                if progress_ends_call(progress) {
                    self.identities.remove(call);
                }
                identity
            }
            _ => None,
        };
        // No subscriber is fine: events are also in the spool's campaign log.
        let _ = self.events.send(DialerEvent::Engine { event, call });
    }

    fn on_telephony(&mut self, burst: Vec<TelephonyEvent>) -> Result<(), RuntimeError> {
        let mut inputs = Vec::with_capacity(burst.len());
        for ev in burst {
            match ev {
                TelephonyEvent::Input(kind) => {
                    if let InputKind::Call { event, call } = &kind {
                        match event {
                            CallEvent::OriginateRefused { cause } => {
                                self.on_refusal(*call, cause, &mut inputs)?;
                            }
                            CallEvent::HungUp { .. } | CallEvent::Lost => {
                                self.counters.calls_ended += 1
                            }
                            CallEvent::Answered { .. } => self.counters.answered += 1,
                            _ => {}
                        }
                    }
                    inputs.push(kind);
                }
                TelephonyEvent::Identity { call, identity } => {
                    // Persisted at once: the progress that follows in this burst is logged
                    // with it. A value the ledger refuses (too long, control characters) is
                    // the telephone system's problem, not the call's: logged and dropped.
                    match self.driver.spool_mut().set_call_identity(
                        call,
                        identity.unique_id.as_deref(),
                        identity.channel.as_deref(),
                        identity.queue.as_deref(),
                    ) {
                        Ok(true) => self.identities.entry(call).or_default().merge(identity),
                        Ok(false) => tracing::debug!(%call, "identity of a call not in the ledger"),
                        Err(StoreError::InvalidField { field, problem }) => {
                            tracing::warn!(%call, field, problem, "call identity not kept")
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                TelephonyEvent::Health(h) => {
                    // Apply what came before the change first, in order.
                    if !inputs.is_empty() {
                        self.driver
                            .handle(self.clock.now(), std::mem::take(&mut inputs))?;
                    }
                    self.set_health(h)?;
                }
            }
        }
        let agents: Vec<AgentId> = inputs
            .iter()
            .filter_map(|k| match k {
                InputKind::Agent { agent, event } => {
                    if let AgentEvent::LoggedIn { campaigns, .. } = event {
                        self.agent_campaigns
                            .insert(agent.clone(), campaigns.clone());
                    }
                    Some(agent.clone())
                }
                _ => None,
            })
            .collect();
        if !inputs.is_empty() {
            self.driver.handle(self.clock.now(), inputs)?;
        }
        for agent in agents {
            self.sync_agent(&agent)?;
        }
        Ok(())
    }

    /// A refusal by the telephone system for its own reasons pauses dialing on it: the
    /// engine is told it is down (no attempt is charged for the refusal), and dialing resumes
    /// when it reports itself up, or after the refusal pause.
    fn on_refusal(
        &mut self,
        call: CallId,
        cause: &RefusalCause,
        inputs: &mut Vec<InputKind>,
    ) -> Result<(), RuntimeError> {
        if let RefusalCause::Pbx { fault, detail } = cause {
            self.counters.refused_by_pbx += 1;
            tracing::warn!(%call, system = %self.telephony_name, fault = fault_text(*fault), %detail,
                "the telephone system refused an originate; no attempt is charged, dialing pauses");
            if matches!(self.health, Health::Up | Health::Reconciled { .. }) {
                let now = self.clock.now();
                self.paused_until = Some(
                    now + chrono::Duration::from_std(self.clock_scaled(self.refusal_pause))
                        .unwrap_or_else(|_| chrono::Duration::seconds(30)),
                );
                // The refusal itself goes to the engine first, then the pause.
                inputs.push(InputKind::Telephony(TelephonyHealth::Down {
                    reason: format!("{}: {detail}", fault_text(*fault)),
                }));
                self.health = Health::Down {
                    fault: *fault,
                    detail: detail.clone(),
                };
                let _ = self.events.send(DialerEvent::Telephony {
                    system: self.telephony_name.clone(),
                    health: HealthView::from(&self.health),
                });
            }
        }
        Ok(())
    }

    /// The refusal pause is in real seconds; the engine's clock may run faster.
    fn clock_scaled(&self, real: Duration) -> Duration {
        real.mul_f64(self.clock.speed())
    }

    fn set_health(&mut self, health: Health) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        match &health {
            Health::Up | Health::Reconciled { .. } => {
                tracing::info!(system = %self.telephony_name, health = ?health, "telephone system up; dialing resumes");
                self.paused_until = None;
                self.driver
                    .handle(now, [InputKind::Telephony(TelephonyHealth::Up)])?;
            }
            Health::Down { fault, detail } => {
                tracing::warn!(system = %self.telephony_name, fault = fault_text(*fault), %detail, "telephone system down; dialing paused");
                self.driver.handle(
                    now,
                    [InputKind::Telephony(TelephonyHealth::Down {
                        reason: format!("{}: {detail}", fault_text(*fault)),
                    })],
                )?;
            }
        }
        self.health = health;
        let _ = self.events.send(DialerEvent::Telephony {
            system: self.telephony_name.clone(),
            health: HealthView::from(&self.health),
        });
        Ok(())
    }

    fn begin_drain(
        &mut self,
        grace: Duration,
        reply: Option<oneshot::Sender<RunSummary>>,
    ) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        let stops: Vec<InputKind> = self
            .driver
            .engine()
            .campaign_ids()
            .map(|campaign| InputKind::StopCampaign {
                campaign: campaign.clone(),
            })
            .collect();
        self.driver.handle(now, stops)?;
        let deadline = now
            + chrono::Duration::from_std(self.clock_scaled(grace))
                .unwrap_or_else(|_| chrono::Duration::seconds(30));
        let (tx, _rx) = oneshot::channel();
        self.draining = Some((deadline, reply.unwrap_or(tx)));
        let _ = self.events.send(DialerEvent::Draining { at: now });
        tracing::info!(
            calls_in_flight = self.driver.engine().calls_in_flight(),
            "draining: no new dials"
        );
        Ok(())
    }

    /// Applies an input and answers with the engine's rejection, if it made one.
    fn input_verdict(&mut self, kind: InputKind) -> Result<Result<(), RejectReason>, RuntimeError> {
        self.driver.handle(self.clock.now(), [kind])?;
        Ok(self.last_rejection())
    }

    /// The rejection among the events of the last burst, if any (events stay queued for
    /// subscribers).
    fn last_rejection(&mut self) -> Result<(), RejectReason> {
        match self.driver.last_rejection() {
            Some(reason) => Err(reason),
            None => Ok(()),
        }
    }

    fn count<T>(&mut self, r: &Result<T, OpError>) {
        if r.is_ok() {
            self.counters.commands_applied += 1;
        } else {
            self.counters.commands_rejected += 1;
        }
    }

    /// Brings the engine's hopper for a campaign in line with the spool after the spool
    /// changed (the records it held are replaced; records in flight are kept).
    fn reload(&mut self, campaign: &CampaignId) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        if !self.driver.engine().campaign_ids().any(|c| c == campaign) {
            return Ok(());
        }
        let limit = RELOAD_LIMIT;
        let records = self.driver.spool_mut().ready_set(&campaign.0, now, limit)?;
        self.driver.handle(
            now,
            [InputKind::RecordsOffered {
                campaign: campaign.clone(),
                records: records.into_iter().map(std::sync::Arc::new).collect(),
            }],
        )?;
        Ok(())
    }

    fn on_request(&mut self, req: Request) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        if self.draining.is_some() {
            if let Request::Status { reply } = req {
                let _ = reply.send(Ok(self.status()));
            } else if let Request::Shutdown { reply, .. } = req {
                let _ = reply.send(self.summary());
            } else {
                reject_stopped(req);
            }
            return Ok(());
        }
        match req {
            Request::Agent {
                agent,
                event,
                reply,
            } => {
                let control = agent_control(&event);
                let r = match self.check_agent_event(&agent, &event) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        if let AgentEvent::LoggedIn { campaigns, .. } = &event {
                            self.agent_campaigns
                                .insert(agent.clone(), campaigns.clone());
                        }
                        let r = self
                            .input_verdict(InputKind::Agent {
                                agent: agent.clone(),
                                event,
                            })?
                            .map_err(OpError::from);
                        self.sync_agent(&agent)?;
                        r
                    }
                };
                // A pause or a return reaches the PBX too, so its queue stops (or resumes)
                // offering calls to the agent.
                if let (Ok(()), Some(control)) = (&r, control) {
                    self.controls
                        .push_back(TelephonyCommand::Agent { agent, control });
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Command { command, reply } => {
                let r = self.driver.command(now, command)?.map_err(OpError::from);
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Dispose {
                record,
                conclusion,
                disposition,
                reply,
            } => {
                let r = match self
                    .driver
                    .spool()
                    .check_conclusion(&record, &conclusion)
                    .map_err(OpError::from)
                    .and_then(|()| self.callback_target_accepts(&record, &disposition))
                {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let r =
                            self.dispose(now, conclusion.agent.clone(), &record, &disposition)?;
                        match r {
                            Ok(()) => self
                                .driver
                                .spool_mut()
                                .record_conclusion(&record, &conclusion, &disposition, now)
                                .map(|_| ())
                                .map_err(OpError::from),
                            Err(e) => Err(e),
                        }
                    }
                };
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::UpdateFields {
                record,
                fields,
                reply,
            } => {
                let r = if self.driver.engine().record_in_flight(&record) {
                    Err(OpError::Rejected(RejectReason::RecordInFlight(record)))
                } else {
                    self.driver
                        .spool_mut()
                        .update_fields(&record, &fields)
                        .map_err(OpError::from)
                };
                if let Ok(rec) = &r {
                    let campaign = rec.campaign.clone();
                    self.reload(&campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::SetResultCodes {
                campaign,
                codes,
                reply,
            } => {
                let r = self
                    .driver
                    .spool_mut()
                    .set_result_codes(&campaign.0, &codes)
                    .map_err(OpError::from);
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::ResultCodes { campaign, reply } => {
                let _ = reply.send(
                    self.driver
                        .spool()
                        .result_codes(&campaign.0)
                        .map_err(OpError::from),
                );
            }
            Request::SetBreaks {
                campaign,
                breaks,
                reply,
            } => {
                let r = self
                    .driver
                    .spool_mut()
                    .set_breaks(&campaign.0, &breaks)
                    .map_err(OpError::from);
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Breaks { campaign, reply } => {
                let _ = reply.send(
                    self.driver
                        .spool()
                        .breaks(&campaign.0)
                        .map_err(OpError::from),
                );
            }
            Request::SetCampaignState {
                campaign,
                state,
                reply,
            } => {
                let r = self.set_campaign_state(now, &campaign, state)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::ListCampaigns { filter, reply } => {
                let _ = reply.send(
                    self.driver
                        .spool()
                        .list_campaigns(&filter)
                        .map_err(OpError::from),
                );
            }
            Request::Conclusions { record, reply } => {
                let _ = reply.send(
                    self.driver
                        .spool()
                        .conclusions(&record)
                        .map_err(OpError::from),
                );
            }
            Request::Activity {
                agent,
                from,
                to,
                reply,
            } => {
                let r = if to < from {
                    Err(OpError::Invalid(format!(
                        "the range ends ({to}) before it starts ({from})"
                    )))
                } else {
                    self.driver
                        .spool()
                        .agent_activity(agent.as_str(), from, to)
                        .map_err(OpError::from)
                };
                let _ = reply.send(r);
            }
            Request::UpsertCampaign { campaign, reply } => {
                let r = self.upsert_campaign(now, *campaign)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::StopCampaign { campaign, reply } => {
                let r = if self.driver.engine().campaign_ids().any(|c| *c == campaign) {
                    self.driver
                        .handle(now, [InputKind::StopCampaign { campaign }])?;
                    Ok(())
                } else {
                    Err(OpError::Rejected(RejectReason::UnknownCampaign(campaign)))
                };
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Respool { new, checks, reply } => {
                let campaign = new.campaign.clone();
                let r = self
                    .driver
                    .spool()
                    .check_dnc(
                        &campaign.0,
                        new.numbers.iter().map(|n| n.e164()),
                        checks,
                        now,
                    )
                    .and_then(|()| self.driver.spool_mut().respool(&new, now))
                    .map_err(OpError::from);
                if r.is_ok() {
                    self.reopen(&campaign)?;
                    self.reload(&campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::ScheduleCall {
                new,
                callback,
                reply,
            } => {
                let campaign = new.campaign.clone();
                let r = self
                    .accepts_callbacks(&campaign)
                    .and_then(|()| self.guard_live_number(&new))
                    .and_then(|()| {
                        self.driver
                            .spool_mut()
                            .schedule_call(&new, &callback, now)
                            .map_err(OpError::from)
                    });
                if r.is_ok() {
                    self.reload(&campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::AddTask {
                new,
                timing,
                kind,
                reply,
            } => {
                let campaign = new.campaign.clone();
                let r = self.guard_live_number(&new).and_then(|()| {
                    self.driver
                        .spool_mut()
                        .add_task(&new, timing, kind, now)
                        .map_err(OpError::from)
                });
                if r.is_ok() {
                    self.reopen(&campaign)?;
                    self.reload(&campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::ManualDial { dial, reply } => {
                let r = self.manual_dial(&dial, now);
                if r.is_ok() {
                    self.reopen(&dial.campaign)?;
                    self.reload(&dial.campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::RemoveContact {
                campaign,
                number,
                reply,
            } => {
                let r = self.remove_contact(now, &campaign, &number)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::RemoveSchedules {
                campaign,
                number,
                from,
                to,
                reply,
            } => {
                let r = self.in_flight_number(&campaign, &number).and_then(|()| {
                    self.driver
                        .spool_mut()
                        .remove_schedules(&campaign.0, &number, from, to)
                        .map_err(OpError::from)
                });
                if r.is_ok() {
                    self.reload(&campaign)?;
                }
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::BlacklistAdd { entries, reply } => {
                let r = self.blacklist_add(now, entries)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::BlacklistEntries { filter, reply } => {
                let r = self
                    .driver
                    .spool()
                    .blacklist_entries(&filter)
                    .map_err(OpError::from);
                let _ = reply.send(r);
            }
            Request::BlacklistRemove { items, reply } => {
                let r = self.blacklist_remove(now, items)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Record { record, reply } => {
                let _ = reply.send(self.driver.spool().record(&record).map_err(OpError::from));
            }
            Request::RecordByExternalId {
                campaign,
                external_id,
                reply,
            } => {
                let r = self
                    .driver
                    .spool()
                    .record_by_external_id(&campaign.0, &external_id)
                    .map_err(OpError::from);
                let _ = reply.send(r);
            }
            Request::Supervision {
                campaign,
                since,
                service_level_s,
                reply,
            } => {
                // The engine's status and the ledger's figures of the same instant: nothing
                // runs between the two reads.
                let status = self.status();
                let r = if status
                    .engine
                    .campaigns
                    .iter()
                    .any(|c| c.campaign == campaign)
                {
                    self.driver
                        .spool()
                        .campaign_stats(&campaign.0, since, service_level_s)
                        .map_err(OpError::from)
                        .and_then(|stats| {
                            crate::supervision::supervision(&status, &campaign, stats)
                        })
                } else {
                    Err(dialer_core::RejectReason::UnknownCampaign(campaign).into())
                };
                let _ = reply.send(r);
            }
            Request::QueuePosition { record, reply } => {
                let r = self
                    .driver
                    .spool()
                    .queue_position(&record, now)
                    .map_err(OpError::from);
                let _ = reply.send(r);
            }
            Request::RemoveRecord { record, reply } => {
                let r = self.remove_record(now, &record)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::RecordStatus { record, reply } => {
                let in_call = self.in_call(&record);
                let r = self
                    .driver
                    .spool()
                    .record_status_given(&record, in_call.as_ref())
                    .map_err(OpError::from);
                let _ = reply.send(r);
            }
            Request::ChangeRecord {
                record,
                change,
                reply,
            } => {
                let r = self.change_record(now, &record, &change)?;
                self.count(&r);
                let _ = reply.send(r);
            }
            Request::Refresh { campaign, reply } => {
                let r = if self.driver.engine().campaign_ids().any(|c| *c == campaign) {
                    self.reopen(&campaign)?;
                    self.reload(&campaign)?;
                    Ok(())
                } else {
                    Err(OpError::Rejected(RejectReason::UnknownCampaign(campaign)))
                };
                let _ = reply.send(r);
            }
            Request::Status { reply } => {
                let _ = reply.send(Ok(self.status()));
            }
            Request::Shutdown { grace, reply } => {
                self.begin_drain(grace, Some(reply))?;
            }
        }
        Ok(())
    }

    fn status(&self) -> DialerStatus {
        DialerStatus {
            at: self.clock.now(),
            telephony: self.telephony_name.clone(),
            health: HealthView::from(&self.health),
            draining: self.draining.is_some(),
            counters: self.counters,
            engine: self.driver.engine().status(),
        }
    }

    /// A schedule or task that lands on a live record must not change a record whose call is
    /// in flight.
    /// A manual dial: its agent must be logged in, and the record it dials must not be in
    /// flight in the engine (the spool learns of a call only once it is placed).
    fn manual_dial(
        &mut self,
        dial: &ManualDial,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, TaskId), OpError> {
        match self.driver.engine().agent_state(&dial.agent) {
            None => {
                return Err(OpError::Rejected(RejectReason::UnknownAgent(
                    dial.agent.clone(),
                )))
            }
            Some(dialer_core::AgentState::LoggedOut) => {
                return Err(OpError::Rejected(RejectReason::AgentLoggedOut(
                    dial.agent.clone(),
                )))
            }
            Some(_) => {}
        }
        match &dial.target {
            ManualTarget::Number(new) => {
                if new.campaign != dial.campaign {
                    return Err(OpError::Store(StoreError::InvalidRecord {
                        record: RecordId(0),
                        problem: format!(
                            "the record is for campaign {}, the dial for {}",
                            new.campaign, dial.campaign
                        ),
                    }));
                }
                self.guard_live_number(new)?
            }
            ManualTarget::Record { record, .. } => {
                if self.driver.engine().record_in_flight(record) {
                    return Err(OpError::Rejected(RejectReason::RecordInFlight(
                        record.clone(),
                    )));
                }
            }
        }
        Ok(self.driver.spool_mut().manual_dial(dial, now)?)
    }

    fn guard_live_number(&self, new: &NewRecord) -> Result<(), OpError> {
        match new.numbers.first() {
            Some(n) => self.in_flight_number(&new.campaign, n.e164()),
            None => Ok(()),
        }
    }

    fn in_flight_number(&self, campaign: &CampaignId, e164: &str) -> Result<(), OpError> {
        if let Some(id) = self
            .driver
            .spool()
            .live_record_with_number(&campaign.0, e164)?
        {
            if self.driver.engine().record_in_flight(&id) {
                return Err(OpError::Rejected(RejectReason::RecordInFlight(id)));
            }
        }
        Ok(())
    }

    /// C7 (UCCX `checkcsqstatus`): a campaign takes new callbacks only while it is active and
    /// running (not stopped).
    fn accepts_callbacks(&self, campaign: &CampaignId) -> Result<(), OpError> {
        let (state, _) = self.driver.spool().campaign_state(&campaign.0)?;
        let refuse = |state: &str| {
            Err(OpError::Store(StoreError::CampaignNotAccepting {
                campaign: campaign.to_string(),
                state: state.to_owned(),
            }))
        };
        if state != CampaignState::Active {
            return refuse(state.as_str());
        }
        let running = self
            .driver
            .engine()
            .status()
            .campaigns
            .into_iter()
            .find(|c| c.campaign == *campaign)
            .is_some_and(|c| c.dialing_paused != Some(dialer_core::DialingPaused::Stopped));
        if !running {
            return refuse("stopped");
        }
        Ok(())
    }

    /// The campaign a SCHEDULE or RESCHEDULE disposition puts its callback in must take it.
    fn callback_target_accepts(
        &self,
        record: &RecordId,
        disposition: &Disposition,
    ) -> Result<(), OpError> {
        let target = match disposition {
            Disposition::Schedule { campaign, .. } | Disposition::Reschedule { campaign, .. } => {
                campaign.clone()
            }
            _ => return Ok(()),
        };
        let target = match target {
            Some(c) => c,
            None => self.driver.spool().record(record)?.campaign,
        };
        self.accepts_callbacks(&target)
    }

    /// A finished campaign that takes records again is active again (and says so).
    fn reopen(&mut self, campaign: &CampaignId) -> Result<(), RuntimeError> {
        let now = self.clock.now();
        if self.driver.spool().campaign_state(&campaign.0)?.0 == CampaignState::Finished
            && !self.driver.spool().campaign_spent(&campaign.0)?
        {
            self.driver
                .spool_mut()
                .set_campaign_state(&campaign.0, CampaignState::Active, now)?;
            let _ = self.events.send(DialerEvent::CampaignReopened {
                at: now,
                campaign: campaign.clone(),
            });
        }
        Ok(())
    }

    /// After a record finished: an active campaign whose list is now spent is finished.
    fn finish_if_spent(&mut self, record: &RecordId) -> Result<(), RuntimeError> {
        let campaign = match self.driver.spool().record(record) {
            Ok(r) => r.campaign,
            Err(StoreError::UnknownRecord(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let spool = self.driver.spool();
        if spool.campaign_state(&campaign.0)?.0 == CampaignState::Active
            && spool.campaign_spent(&campaign.0)?
        {
            let now = self.clock.now();
            self.driver.spool_mut().set_campaign_state(
                &campaign.0,
                CampaignState::Finished,
                now,
            )?;
            tracing::info!(%campaign, "the campaign's list is spent: finished");
            let _ = self
                .events
                .send(DialerEvent::CampaignFinished { at: now, campaign });
        }
        Ok(())
    }

    /// Activates or deactivates a campaign, in the spool and then the engine.
    fn set_campaign_state(
        &mut self,
        now: DateTime<Utc>,
        campaign: &CampaignId,
        state: CampaignState,
    ) -> Result<Result<(), OpError>, RuntimeError> {
        if state == CampaignState::Finished {
            return Ok(Err(OpError::Store(StoreError::CampaignState {
                campaign: campaign.to_string(),
                state: state.to_string(),
                why: "a campaign finishes by itself when its list is spent".into(),
            })));
        }
        let settings = match self.driver.spool().campaign(&campaign.0) {
            Ok(c) => c,
            Err(e) => return Ok(Err(e.into())),
        };
        let old = self
            .driver
            .spool_mut()
            .set_campaign_state(&campaign.0, state, now)?;
        match state {
            CampaignState::Inactive => {
                if self.driver.engine().campaign_ids().any(|c| c == campaign) {
                    self.driver.handle(
                        now,
                        [InputKind::StopCampaign {
                            campaign: campaign.clone(),
                        }],
                    )?;
                }
            }
            _ => {
                let inputs = self.campaign_inputs(settings)?;
                self.driver.handle(now, inputs)?;
                if old == CampaignState::Finished {
                    let _ = self.events.send(DialerEvent::CampaignReopened {
                        at: now,
                        campaign: campaign.clone(),
                    });
                }
            }
        }
        Ok(Ok(()))
    }

    /// The campaigns whose break catalogues an agent's pause is checked against: those it
    /// logged in to, or every running campaign when the dialer has not seen its login.
    fn campaigns_of(&self, agent: &AgentId) -> Vec<CampaignId> {
        match self.agent_campaigns.get(agent) {
            Some(c) => c.clone(),
            None => self.driver.engine().campaign_ids().cloned().collect(),
        }
    }

    /// A pause through the handle names a break of the agent's campaigns' catalogue (when
    /// they have one), and an agent in a break cannot start another one before it ends.
    fn check_agent_event(&self, agent: &AgentId, event: &AgentEvent) -> Result<(), OpError> {
        let (AgentEvent::Paused { reason } | AgentEvent::PauseAfterCall { reason }) = event else {
            return Ok(());
        };
        let campaigns = self.campaigns_of(agent);
        let spool = self.driver.spool();
        if spool.has_break_catalogue(&campaigns)? {
            spool.find_break(&campaigns, reason)?;
        }
        if let Some(open) = self.open_breaks.get(agent) {
            if open.break_id != *reason {
                return Err(OpError::Store(spool_store::StoreError::AlreadyInBreak {
                    agent: agent.to_string(),
                    current: open.break_id.clone(),
                    asked: reason.clone(),
                }));
            }
        }
        Ok(())
    }

    /// Brings the persisted break and session of an agent in line with the engine's state:
    /// a pause in effect opens a break (ending one under another name), anything else ends
    /// the open break; a logged-in agent has a session open, a logged-out one none. Each
    /// break start and end is published.
    fn sync_agent(&mut self, agent: &AgentId) -> Result<(), RuntimeError> {
        // The spool keeps milliseconds: the events say the same times.
        let now = self.clock.now();
        let now = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        let state = self.driver.engine().agent_state(agent).cloned();
        let paused = match &state {
            Some(dialer_core::AgentState::Paused { reason }) => Some(reason.clone()),
            _ => None,
        };
        let open_id = self.open_breaks.get(agent).map(|b| b.break_id.clone());
        if open_id.is_some() && open_id != paused {
            if let Some(ended) = self.driver.spool_mut().end_break(agent.as_str(), now)? {
                self.open_breaks.remove(agent);
                let _ = self.events.send(DialerEvent::BreakEnded {
                    at: now,
                    agent: agent.clone(),
                    break_id: ended.break_id,
                    name: ended.name,
                    started_at: ended.started_at,
                    duration_s: ended.duration_s.unwrap_or(0),
                });
            }
        }
        if let Some(reason) = paused {
            if !self.open_breaks.contains_key(agent) {
                let campaigns = self.campaigns_of(agent);
                let name = match self.driver.spool().find_break(&campaigns, &reason) {
                    Ok(b) => b.name,
                    Err(_) => reason.clone(),
                };
                let row =
                    self.driver
                        .spool_mut()
                        .start_break(agent.as_str(), &reason, &name, now)?;
                let _ = self.events.send(DialerEvent::BreakStarted {
                    at: now,
                    agent: agent.clone(),
                    break_id: row.break_id.clone(),
                    name: row.name.clone(),
                });
                self.open_breaks.insert(agent.clone(), row);
            }
        }
        // The session is persisted first; the event says what the spool now holds.
        let agent = agent.clone();
        match state {
            None | Some(dialer_core::AgentState::LoggedOut) => {
                if self.driver.spool_mut().end_session(agent.as_str(), now)? {
                    let _ = self
                        .events
                        .send(DialerEvent::AgentLoggedOut { at: now, agent });
                }
            }
            Some(_) => {
                if self.driver.spool_mut().start_session(agent.as_str(), now)? {
                    let _ = self
                        .events
                        .send(DialerEvent::AgentLoggedIn { at: now, agent });
                }
            }
        }
        Ok(())
    }

    fn dispose(
        &mut self,
        now: DateTime<Utc>,
        agent: Option<AgentId>,
        record: &RecordId,
        disposition: &Disposition,
    ) -> Result<Result<(), OpError>, RuntimeError> {
        // The engine sees only the records it holds: numbers a RESPOOL gives the record are
        // checked against every live record of the spool first (nothing changes if refused).
        if let Disposition::Respool(Respool {
            numbers: Some(numbers),
            ..
        }) = disposition
        {
            if let Ok(rec) = self.driver.spool().record(record) {
                let free = self.driver.spool().check_numbers_free(
                    &rec.campaign.0,
                    numbers.iter().map(|n| n.e164()),
                    Some(record),
                );
                if let Err(e) = free {
                    return Ok(Err(e.into()));
                }
            }
        }
        let verdict = self.driver.command(
            now,
            Command::Dispose {
                agent,
                record: record.clone(),
                disposition: disposition.clone(),
            },
        )?;
        match verdict {
            Ok(()) => Ok(Ok(())),
            // The engine no longer holds the record (a restart, an old call): the spool
            // applies it, then the engine's hopper is brought in line.
            Err(RejectReason::UnknownRecord(_)) => {
                let r = self
                    .driver
                    .spool_mut()
                    .apply_disposition(record, disposition, now)
                    .map_err(OpError::from);
                if let Ok(rec) = &r {
                    let campaign = rec.campaign.clone();
                    self.reload(&campaign)?;
                }
                Ok(r.map(|_| ()))
            }
            Err(other) => Ok(Err(other.into())),
        }
    }

    fn upsert_campaign(
        &mut self,
        now: DateTime<Utc>,
        campaign: Campaign,
    ) -> Result<Result<(), OpError>, RuntimeError> {
        if let Err(e) = campaign.validate() {
            return Ok(Err(e.into()));
        }
        if let Err(e) = self.driver.spool_mut().upsert_campaign(&campaign, now) {
            return Ok(Err(e.into()));
        }
        // An inactive campaign's settings change; it stays stopped until activated.
        if self.driver.spool().campaign_state(&campaign.id.0)?.0 == CampaignState::Inactive {
            return Ok(Ok(()));
        }
        let inputs = self.campaign_inputs(campaign)?;
        self.driver.handle(now, inputs)?;
        Ok(self.last_rejection().map_err(OpError::from))
    }

    /// The inputs that start or update a campaign: a campaign the engine does not run yet
    /// comes with the abandonment books the spool holds for it (an earlier run's, or this
    /// one's before it was made inactive at start-up).
    fn campaign_inputs(&self, campaign: Campaign) -> Result<Vec<InputKind>, RuntimeError> {
        if self
            .driver
            .engine()
            .campaign_ids()
            .any(|c| c == &campaign.id)
        {
            return Ok(vec![InputKind::Campaign(Box::new(campaign))]);
        }
        let books = self.driver.spool().abandon_books(&campaign.id.0)?;
        Ok(crate::driver::load_campaign(campaign, books))
    }

    /// The call in progress on a record as the engine knows it: a call in flight, or a
    /// preview offer to an agent.
    fn in_call(&self, record: &RecordId) -> Option<InCall> {
        use dialer_core::{AgentState, CallState};
        let status = self.driver.engine().status();
        if let Some(c) = status.calls.iter().find(|c| &c.record == record) {
            let call = c.call;
            return Some(match c.state {
                CallState::Dialing => InCall::Dialing { call },
                CallState::Machine | CallState::Waiting | CallState::Abandoned => {
                    InCall::Queued { call }
                }
                CallState::Linked | CallState::OnHold => InCall::Linked {
                    call,
                    agent: c.agent.as_ref().map(|a| a.to_string()),
                },
            });
        }
        status
            .agents
            .iter()
            .find(|a| matches!(&a.state, AgentState::Previewing { record: r, .. } if r == record))
            .map(|a| InCall::Offered {
                agent: a.agent.to_string(),
            })
    }

    /// Seed row C3: the engine refuses a record in flight, the spool applies the change (or
    /// refuses it, nothing changed), then the engine drops its copy and takes the campaign's
    /// ready records again (an inactive record is not among them; a reactivated one is, and
    /// re-opens a finished campaign).
    fn change_record(
        &mut self,
        now: DateTime<Utc>,
        record: &RecordId,
        change: &RecordChange,
    ) -> Result<Result<RecordStatusView, OpError>, RuntimeError> {
        if self.driver.engine().record_in_flight(record) {
            return Ok(Err(OpError::Rejected(RejectReason::RecordInFlight(
                record.clone(),
            ))));
        }
        let rec = match self.driver.spool_mut().change_record(record, change, now) {
            Ok(rec) => rec,
            Err(e) => return Ok(Err(e.into())),
        };
        // Not in flight (checked above): the engine forgets its copy (hopper, preview, the
        // records kept for late dispositions) and reloads the campaign's ready records.
        let _ = self.driver.command(
            now,
            Command::Forget {
                record: record.clone(),
            },
        )?;
        if *change == RecordChange::Reactivate {
            self.reopen(&rec.campaign)?;
        }
        self.reload(&rec.campaign)?;
        Ok(self
            .driver
            .spool()
            .record_status_given(record, None)
            .map_err(OpError::from))
    }

    fn remove_record(
        &mut self,
        now: DateTime<Utc>,
        record: &RecordId,
    ) -> Result<Result<bool, OpError>, RuntimeError> {
        // The spool knows a record in flight (its ledger row exists before the Originate
        // leaves) and refuses it; nothing has changed then.
        let campaign = match self.driver.spool().record(record) {
            Ok(rec) => rec.campaign,
            Err(e) => return Ok(Err(e.into())),
        };
        let live = match self.driver.spool_mut().remove_record(record) {
            Ok(live) => live,
            Err(e) => return Ok(Err(e.into())),
        };
        if live {
            let _ = self.driver.command(
                now,
                Command::Forget {
                    record: record.clone(),
                },
            )?;
            if self.driver.engine().campaign_ids().any(|c| *c == campaign) {
                self.reload(&campaign)?;
            }
        }
        Ok(Ok(live))
    }

    fn remove_contact(
        &mut self,
        now: DateTime<Utc>,
        campaign: &CampaignId,
        number: &str,
    ) -> Result<Result<Vec<RecordId>, OpError>, RuntimeError> {
        if let Err(e) = self.in_flight_number(campaign, number) {
            return Ok(Err(e));
        }
        let removed = match self.driver.spool_mut().remove_contact(&campaign.0, number) {
            Ok(ids) => ids,
            Err(e) => return Ok(Err(e.into())),
        };
        for id in &removed {
            // The engine forgets it (it is not in flight: checked above).
            let _ = self
                .driver
                .command(now, Command::Forget { record: id.clone() })?;
        }
        self.reload(campaign)?;
        Ok(Ok(removed))
    }

    fn blacklist_add(
        &mut self,
        now: DateTime<Utc>,
        entries: Vec<DncEntry>,
    ) -> Result<Result<(), OpError>, RuntimeError> {
        // Persist first, in one transaction: a restart keeps every entry.
        if let Err(e) = self
            .driver
            .spool_mut()
            .blacklist_add_detailed(&entries, now)
        {
            return Ok(Err(e.into()));
        }
        for e in entries {
            let _ = self.driver.command(now, Command::BlacklistAdd(e.entry))?;
        }
        Ok(Ok(()))
    }

    fn blacklist_remove(
        &mut self,
        now: DateTime<Utc>,
        items: Vec<(String, BlacklistScope)>,
    ) -> Result<Result<usize, OpError>, RuntimeError> {
        let removed = match self.driver.spool_mut().blacklist_remove_bulk(&items) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e.into())),
        };
        for (number, scope) in items {
            let _ = self
                .driver
                .command(now, Command::BlacklistRemove { number, scope })?;
        }
        Ok(Ok(removed))
    }
}

// latency: one definition of a decision's measurement, called by every place that times one.
/// Counts a decision (a burst of inputs from the telephone system or the clock, handled
/// through the engine: its outputs persisted to the spool and queued) and records how long it
/// took in the `dialer_decision_seconds` histogram of the `metrics` facade (a no-op unless a
/// recorder is installed, as `dialer-api` does). Operator requests are timed by the API
/// (`dialer_handle_seconds`), queue wait included.
fn decided(counters: &mut RunCounters, started: std::time::Instant) {
    counters.decisions += 1; // latency
    metrics::histogram!("dialer_decision_seconds").record(started.elapsed().as_secs_f64());
    // latency
}

/// Whether a call's progress is its last (the call's identity is no longer needed after it).
fn progress_ends_call(p: &dialer_core::Progress) -> bool {
    use dialer_core::Progress as P;
    matches!(
        p,
        P::Hangup
            | P::ShortCall
            | P::Failure { .. }
            | P::NoAnswer
            | P::Machine
            | P::Unknown
            | P::NotPlaced
    )
}

/// What the telephone system must do for an agent event, if anything.
fn agent_control(event: &AgentEvent) -> Option<crate::telephony::AgentControl> {
    use crate::telephony::AgentControl;
    match event {
        AgentEvent::Paused { reason } => Some(AgentControl::Pause {
            reason: reason.clone(),
        }),
        AgentEvent::Ready => Some(AgentControl::Unpause),
        _ => None,
    }
}

fn reject_stopped(req: Request) {
    macro_rules! stop {
        ($r:expr) => {{
            let _ = $r.send(Err(OpError::Stopped));
        }};
    }
    match req {
        Request::Agent { reply, .. }
        | Request::Command { reply, .. }
        | Request::Dispose { reply, .. }
        | Request::SetResultCodes { reply, .. }
        | Request::SetBreaks { reply, .. }
        | Request::UpsertCampaign { reply, .. }
        | Request::StopCampaign { reply, .. }
        | Request::BlacklistAdd { reply, .. }
        | Request::Refresh { reply, .. } => stop!(reply),
        Request::Respool { reply, .. } => stop!(reply),
        Request::ScheduleCall { reply, .. } => stop!(reply),
        Request::AddTask { reply, .. } | Request::ManualDial { reply, .. } => stop!(reply),
        Request::RemoveContact { reply, .. } => stop!(reply),
        Request::RecordByExternalId { reply, .. } => stop!(reply),
        Request::RemoveRecord { reply, .. } => stop!(reply),
        Request::BlacklistEntries { reply, .. } => stop!(reply),
        Request::RecordStatus { reply, .. } | Request::ChangeRecord { reply, .. } => {
            stop!(reply)
        }
        Request::Supervision { reply, .. } => stop!(reply),
        Request::QueuePosition { reply, .. } => stop!(reply),
        Request::RemoveSchedules { reply, .. } | Request::BlacklistRemove { reply, .. } => {
            stop!(reply)
        }
        Request::Record { reply, .. } | Request::UpdateFields { reply, .. } => stop!(reply),
        Request::ResultCodes { reply, .. } => stop!(reply),
        Request::Breaks { reply, .. } => stop!(reply),
        Request::Conclusions { reply, .. } => stop!(reply),
        Request::SetCampaignState { reply, .. } => stop!(reply),
        Request::ListCampaigns { reply, .. } => stop!(reply),
        Request::Activity { reply, .. } => stop!(reply),
        Request::Status { reply } => stop!(reply),
        Request::Shutdown { .. } => {}
    }
}

/// A command the dialer could not hand to the telephone system is not the callee's doing.
fn local_refusal(e: &TelephonyError) -> RefusalCause {
    match e {
        TelephonyError::Busy | TelephonyError::Unsupported(_) => RefusalCause::Local {
            detail: e.to_string(),
        },
        TelephonyError::Stopped => RefusalCause::Pbx {
            fault: PbxFault::Unreachable,
            detail: e.to_string(),
        },
    }
}

/// A fault as people read it.
pub fn fault_text(fault: PbxFault) -> &'static str {
    match fault {
        PbxFault::Unreachable => "unreachable",
        PbxFault::ShuttingDown => "shutting down",
        PbxFault::RequestRefused => "refused the request",
    }
}
