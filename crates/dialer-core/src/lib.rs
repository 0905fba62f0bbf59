//! # dialer-core
//!
//! The pure scheduling and pacing core of the outbound dialer: whom to call, when, and how
//! many lines to open per agent. No I/O, no clock, no unseeded randomness — the same inputs
//! always give the same outputs, so the core runs unchanged under a simulator, a test, or a
//! real telephone system.
//!
//! One way in, one way out: [`Engine::handle_input`] takes an [`Input`] carrying its time;
//! [`Engine::poll_output`] yields [`Output`]s until [`Output::Timeout`], which says when to
//! tick next. Store updates come before the Originate they belong to, so a driver that
//! persists each [`Output::Store`] before acting on later outputs keeps a crash-safe ledger.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dialer_core::*;
//!
//! let now = Utc.with_ymd_and_hms(2026, 6, 1, 15, 0, 0).unwrap(); // 11:00 in New York
//! let mut engine = Engine::new(EngineConfig::default());
//! let campaign = Campaign::new("spring", "America/New_York"); // progressive, 08:00-21:00
//! let cid = campaign.id.clone();
//! let record = SpoolRecord::new(
//!     RecordId(1),
//!     cid.clone(),
//!     PhoneNumber::parse("212 555 0123", "US").unwrap(),
//!     vec![],
//!     now,
//! );
//!
//! engine.handle_input(Input::new(now, InputKind::Campaign(Box::new(campaign))));
//! engine.handle_input(Input::new(now, InputKind::Agent {
//!     agent: AgentId::from("alice"),
//!     event: AgentEvent::LoggedIn { campaigns: vec![cid.clone()], inactivity_timeout_s: None },
//! }));
//! let mut originated = Vec::new();
//! let mut pending = vec![];
//! loop {
//!     match engine.poll_output() {
//!         // The store answers with the due records, in dial order.
//!         Output::NeedRecords { campaign, .. } => pending.push(InputKind::RecordsOffered {
//!             campaign,
//!             records: vec![std::sync::Arc::new(record.clone())],
//!         }),
//!         Output::Originate(intent) => originated.push(intent),
//!         Output::Timeout(_) => match pending.pop() {
//!             Some(kind) => engine.handle_input(Input::new(now, kind)),
//!             None => break,
//!         },
//!         _ => {} // persist store updates, log events
//!     }
//! }
//! assert_eq!(originated.len(), 1);
//! assert_eq!(originated[0].dial_string, "2125550123");
//! ```
//!
//! Operators' commands are answered at once with a typed reason, and a refused one changes
//! nothing ([`Engine::status`] is the snapshot a runtime shows):
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dialer_core::*;
//!
//! let now = Utc.with_ymd_and_hms(2026, 6, 1, 15, 0, 0).unwrap();
//! let mut engine = Engine::new(EngineConfig::default());
//! let before = engine.status();
//! let refused = engine.apply_command(now, Command::Hangup { call: CallId(7) });
//! assert_eq!(refused, Err(RejectReason::UnknownCall(CallId(7))));
//! assert_eq!(refused.unwrap_err().to_string(), "call-7 is not a call in flight");
//! assert_eq!(engine.status(), before);
//! ```
//!
//! Where the rules live: [`rules::calling_window`] (callee-local hours, DST),
//! [`rules::eligibility`] (every reason not to dial), [`rules::next_step`] (retries and
//! alternatives), [`rules::disposition`], [`rules::schedule`] (callbacks), [`rules::ordering`],
//! [`pacing`] (pacers and the abandonment guard). The `proptest` feature exports [`testing`]:
//! strategies, an in-memory spool and an independent trace checker for users' own property
//! tests.

#![warn(missing_docs)]

pub mod model;
pub mod rules;

pub use model::blacklist::{Blacklist, BlacklistEntry, BlacklistScope, Direction};
pub use model::campaign::*;
pub use model::ids::*;
pub use model::outcome::*;
pub use model::phone::{PhoneError, PhoneNumber};
pub use model::record::*;
pub mod engine;
pub mod pacing;
pub use pacing::AbandonPeriod;
#[cfg(feature = "proptest")]
pub mod testing;

pub use engine::*;
pub use model::variable::{VariableName, VariableNameError};
pub use rules::disposition::{Disposition, DispositionError, Respool};
pub use rules::eligibility::SkipReason;
pub use rules::schedule::{ScheduleContext, ScheduleError};
