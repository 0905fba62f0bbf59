//! Tools for property-based tests of dialing rules (feature `proptest`): strategies that
//! generate campaigns, records and event scripts, an in-memory spool, a harness that runs a
//! script through the engine, and an independent checker of the output trace.
//!
//! ```
//! use dialer_core::testing::{run, strategies};
//! use proptest::strategy::{Strategy, ValueTree};
//! use proptest::test_runner::TestRunner;
//!
//! let mut runner = TestRunner::deterministic();
//! let world = strategies::world().new_tree(&mut runner).unwrap().current();
//! let report = run(&world);
//! assert!(report.checker.violations.is_empty(), "{:?}", report.checker.violations);
//! ```

mod memory_spool;
mod scripted_run;
pub mod strategies;
mod trace_checker;

pub use memory_spool::MemorySpool;
pub use scripted_run::{
    run, run_observed, RunReport, ScriptAgent, ScriptCall, ScriptDisposition, Step, World,
};
pub use trace_checker::{TraceChecker, Violation};
