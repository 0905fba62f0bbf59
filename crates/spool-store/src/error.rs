//! Typed errors. Every error carries what is needed to find the culprit: a record id, a call
//! id, a campaign name, a line number.

use dialer_core::{CallId, DispositionError, FinishReason, RecordId};

/// Why a record finished, as a sentence's words.
pub fn finish_text(r: FinishReason) -> &'static str {
    match r {
        FinishReason::Completed => "completed",
        FinishReason::AttemptsExhausted => "its attempts are used up",
        FinishReason::NoDialableNumber => "no number may be dialed",
        FinishReason::Blacklisted => "blacklisted",
        FinishReason::Removed => "removed",
    }
}

/// Everything the store can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("schema migration: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error(
        "database schema version {found} is newer than this program knows ({known}); \
         refusing to open it, use a newer build"
    )]
    DatabaseTooNew { found: i64, known: i64 },
    #[error(
        "database schema version {found} is older than this program's ({known}); open it once \
         read-write (import, or start the dialer) to upgrade it"
    )]
    NeedsUpgrade { found: i64, known: i64 },
    #[error("campaign {0:?} does not exist")]
    UnknownCampaign(String),
    #[error("campaign {name:?} is invalid: {problem}")]
    InvalidCampaign { name: String, problem: String },
    #[error("record {0} does not exist")]
    UnknownRecord(RecordId),
    #[error("call {0} has no row in the attempt ledger")]
    UnknownAttempt(CallId),
    #[error("call {0} is already in the attempt ledger")]
    DuplicateAttempt(CallId),
    #[error("number {number} is already in the spool of campaign {campaign:?} (record {record})")]
    DuplicateDestination {
        campaign: String,
        number: String,
        record: RecordId,
    },
    #[error("external id {external_id:?} is already record {record} of campaign {campaign:?}")]
    DuplicateExternalId {
        campaign: String,
        external_id: String,
        record: RecordId,
    },
    #[error("campaign {campaign:?} has no record with external id {external_id:?}")]
    UnknownExternalId {
        campaign: String,
        external_id: String,
    },
    #[error("found duplicate scheduled call for {number} at the same time (record {record})")]
    DuplicateSchedule { number: String, record: RecordId },
    #[error("invalid callback: {0}")]
    InvalidSchedule(dialer_core::ScheduleError),
    #[error("record {0} has a call in flight; try again after the call")]
    RecordInFlight(RecordId),
    #[error("record {record} is finished ({}) and cannot change", finish_text(*.reason))]
    RecordFinished {
        record: RecordId,
        reason: FinishReason,
    },
    #[error("record {record} cannot change so: {problem}")]
    RecordState { record: RecordId, problem: String },
    #[error("agent {0:?} is unknown: it has never had a session")]
    UnknownAgent(String),
    #[error(
        "number {number} is already queued for a manual dial{} (record {record})",
        if agent.is_empty() { String::new() } else { format!(" by agent {agent:?}") }
    )]
    ManualDialQueued {
        number: String,
        agent: String,
        record: RecordId,
    },
    #[error("invalid manual dial: {0}")]
    InvalidCallOptions(dialer_core::CallOptionsError),
    #[error("priority {0} is reserved for scheduled calls; use 2 or more")]
    ReservedPriority(u32),
    #[error("record {record}: {source}")]
    Disposition {
        record: RecordId,
        #[source]
        source: DispositionError,
    },
    #[error("{what} {value} does not fit in SQLite's signed 64-bit integer")]
    IdOutOfRange { what: &'static str, value: u64 },
    #[error("record {record}: {problem}")]
    InvalidRecord { record: RecordId, problem: String },
    #[error(
        "{what}: format version {found} is newer than this program knows ({known}); \
         use a newer build"
    )]
    FormatTooNew {
        what: String,
        found: u64,
        known: u64,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("blacklist number {0:?} is not in E.164 form (+ and digits)")]
    BadBlacklistNumber(String),
    #[error("campaign {campaign:?} has no result code {code:?}")]
    UnknownResultCode { campaign: String, code: String },
    #[error("result code {code:?} of campaign {campaign:?} is inactive")]
    InactiveResultCode { campaign: String, code: String },
    #[error("campaign {campaign:?}: {problem}")]
    InvalidCatalogue { campaign: String, problem: String },
    #[error("the conclusion is invalid: {problem}")]
    InvalidConclusion { problem: String },
    #[error("field {field:?}: {problem}")]
    InvalidField { field: String, problem: String },
    #[error("no break {break_id:?} in the catalogue of campaign(s) {campaigns}")]
    UnknownBreak { break_id: String, campaigns: String },
    #[error("break {break_id:?} is inactive in campaign(s) {campaigns}")]
    InactiveBreak { break_id: String, campaigns: String },
    #[error("agent {agent:?} is already in break {current:?}; end it before starting {asked:?}")]
    AlreadyInBreak {
        agent: String,
        current: String,
        asked: String,
    },
    #[error("campaign {campaign:?} is {state} and takes no new callbacks")]
    CampaignNotAccepting { campaign: String, state: String },
    #[error("campaign {campaign:?} cannot be set {state}: {why}")]
    CampaignState {
        campaign: String,
        state: String,
        why: String,
    },
    #[error("number {number} is on the do-not-call list of every campaign")]
    OnGlobalDnc { number: String },
    #[error("number {number} is on the do-not-call list of campaign {campaign:?}")]
    OnCampaignDnc { number: String, campaign: String },
    #[error("invalid filter: {problem}")]
    InvalidFilter { problem: String },
    #[error(transparent)]
    Import(#[from] ImportError),
}

/// Why an upload as a whole was refused (single bad lines are rejects, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("unknown time zone {0:?}: expected an IANA name such as America/Montevideo")]
    UnknownTimeZone(String),
    #[error("unknown country {0:?}: expected an ISO 3166 alpha-2 code such as UY")]
    UnknownCountry(String),
    #[error("reading the base after line {line}: {source}")]
    Io {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "base {base} ({file:?}) was interrupted after {bytes} bytes, but the file given now \
         starts differently; import it under another name or mark the old upload failed"
    )]
    ResumeMismatch { base: u64, file: String, bytes: u64 },
    #[error(
        "the import's reading thread failed after line {after_line} ({message}); the lines \
         committed before it are kept and importing the same file again resumes after them"
    )]
    ParserPanicked { after_line: u64, message: String },
    #[error(
        "the import's checkpointing thread stopped; the lines committed before are kept and \
         importing the same file again resumes after them"
    )]
    CheckpointerStopped,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
