//! # spool-store
//!
//! The durable side of the outbound dialer, on SQLite: the call spool (records, their numbers
//! and per-number attempts, schedules, dialer tasks), uploads of base files with every
//! rejected line kept, the do-not-call list, the attempt ledger that makes dialing
//! crash-safe, and the counters and log operators read.
//!
//! The store is synchronous and owned by one thread, the driver that runs the
//! `dialer-core` engine. The driver feeds it the engine's outputs:
//!
//! - `Output::NeedRecords { campaign, limit }` → [`SpoolStore::ready_set`], whose answer goes
//!   back as `InputKind::RecordsOffered`;
//! - `Output::Store(update)` → [`SpoolStore::apply`], committed before the driver acts on any
//!   later output (an Originate never leaves before its ledger row is on disk);
//! - `Event::Progress` → [`SpoolStore::log_event`] (campaign log, queue waits).
//!
//! On open, attempts a crash left without an outcome are reconciled: closed as `unknown` and
//! their records held back for a safety delay ([`SpoolStore::reconcile`]).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dialer_core::Campaign;
//! use spool_store::{ImportOptions, SpoolStore};
//!
//! let now = Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap();
//! let mut store = SpoolStore::open_in_memory()?;
//! let mut campaign = Campaign::new("ventas", "America/Montevideo");
//! campaign.default_country = "UY".into();
//! store.upsert_campaign(&campaign, now)?;
//!
//! let base = "ventas;098344484;name=Ana:plan=gold;099124484;9999;1001\n\
//!             ventas;098344485;name=Luis;;5\n";
//! let summary = store.import_base(base.as_bytes(), &ImportOptions::new("ventas", "base.txt", now), &mut |_| {})?;
//! assert_eq!((summary.imported, summary.rejected), (2, 0));
//!
//! let ready = store.ready_set("ventas", now, 100)?;
//! assert_eq!(ready.len(), 2);
//! assert_eq!(ready[0].numbers[0].number.e164(), "+59898344485"); // priority 5 before 9999
//! assert_eq!(ready[1].data[0], ("name".to_string(), "Ana".to_string()));
//! # Ok::<(), spool_store::StoreError>(())
//! ```

mod callbacks;
mod codes;
pub mod desk;
mod error;
pub mod formats;
pub mod import;
mod ledger;
pub mod lifecycle;
mod ops;
mod records;
pub mod schema;
mod status;
mod store;
mod supervision;

pub use callbacks::{
    callback_status, CallbackStatus, InCall, QueuePosition, RecordChange, RecordStatusView,
};
pub use desk::{
    AgentActivity, BreakRow, BreakType, CampaignCalls, Conclusion, DispositionRow, DncChecks,
    ResultCode,
};
pub use error::{ImportError, Result, StoreError};
pub use import::{BaseInfo, ImportOptions, ImportProgress, ImportSummary, Reject, RejectReason};
pub use ledger::{AttemptRow, ReconcileReport, MIN_RECONCILE_DELAY_S};
pub use lifecycle::{CampaignFilter, CampaignListing, CampaignPage, CampaignState};
pub use ops::{
    Callback, DncDetails, DncEntry, DncFilter, DncRow, ManualDial, ManualTarget, NewRecord,
    MAX_DNC_FIELD, MAX_DNC_PAGE, MAX_EXTERNAL_ID,
};
pub use status::{CampaignStatus, LogEntry, QueueWaitHistogram};
pub use store::{SpoolStore, READY_SET_SQL};
pub use supervision::CampaignStats;
