//! # dialer-runtime
//!
//! The running dialer around the pure core: a sans-IO [`driver`] that owns the engine and its
//! spool (shared with the simulator, so every simulation exercises the production path), the
//! Telephony seam for telephone systems ([`telephony`]: Asterisk in `backend-ami`, simulated
//! callees and agents in `backend-sim`), and the `Dialer` handle embedders use: typed async
//! operations with typed errors, event subscriptions, a status snapshot and a graceful
//! shutdown.
//!
//! The dialer task is the **one writer** of the spool: operator operations and engine
//! decisions are persisted by it before they take effect, so the engine's memory and SQLite
//! never disagree and a restart resumes exactly.
//!
//! Without the default `runtime` feature only the driver and the seam's types are built (the
//! simulator's case: no tokio, no SQLite).
//!
//! ```
//! # #[cfg(feature = "runtime")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use backend_sim::{live::SimTelephony, world, Scenario};
//! use dialer_core::{AgentId, Campaign, CallingHours, PhoneNumber};
//! use dialer_runtime::{Clock, Dialer, DialerConfig};
//! use std::time::Duration;
//!
//! let dir = tempfile::tempdir()?;
//! let mut store = spool_store::SpoolStore::open(dir.path().join("spool.db"))?;
//! let mut campaign = Campaign::new("spring", "America/New_York");
//! campaign.calling_hours = CallingHours::always();
//! store.upsert_campaign(&campaign, chrono::Utc::now())?;
//! // A base file: campaign;number;data;alternatives;priority;agentphone
//! let base = "spring;2125550101;name=Ann;;;\nspring;2125550102;name=Bob;;;\n";
//! let opts = spool_store::ImportOptions::new("spring", "base.txt", chrono::Utc::now());
//! let summary = store.import_base(base.as_bytes(), &opts, &mut |_| {})?;
//! assert_eq!(summary.imported, 2);
//!
//! // Simulated callees and one agent, at 50× real time.
//! let clock = Clock::accelerated(chrono::Utc::now(), 50.0);
//! let mut spec = world::spec_from_scenario(&Scenario::builtin("small-team")?, vec![], 7);
//! spec.agents.count = 0; // the agent logs in through the handle below
//! let telephony = Box::new(SimTelephony::new(spec, clock));
//! let config = DialerConfig { campaigns: vec![campaign.clone()], ..Default::default() };
//! let (dialer, task) = Dialer::start(config, store, telephony, clock).await?;
//!
//! dialer.login(AgentId::from("alice"), vec![campaign.id.clone()]).await?;
//! tokio::time::sleep(Duration::from_millis(200)).await;
//! let status = dialer.status().await?;
//! println!("{} agents, {} calls in flight", status.engine.agents.len(), status.engine.calls.len());
//! let summary = dialer.shutdown(Duration::from_secs(60)).await?;
//! assert!(summary.counters.originates >= 1);
//! task.await??;
//! # Ok(()) }
//! # #[cfg(not(feature = "runtime"))]
//! # fn main() {}
//! ```

#[cfg(feature = "runtime")]
pub mod clock;
#[cfg(feature = "runtime")]
pub mod config;
#[cfg(feature = "runtime")]
pub mod dialer;
pub mod driver;
#[cfg(feature = "runtime")]
pub mod error;
#[cfg(feature = "runtime")]
pub mod supervision;
pub mod telephony;

#[cfg(feature = "runtime")]
pub use clock::Clock;
#[cfg(feature = "runtime")]
pub use dialer::{
    fault_text, Dialer, DialerConfig, DialerEvent, DialerStatus, HealthView, RunCounters,
    RunSummary,
};
pub use driver::{Action, Driver, DriverError, Spool};
#[cfg(feature = "runtime")]
pub use error::{OpError, RuntimeError};
#[cfg(feature = "runtime")]
pub use telephony::Telephony;
pub use telephony::{
    AgentControl, CallIdentity, Health, TelephonyCommand, TelephonyError, TelephonyEvent,
};
