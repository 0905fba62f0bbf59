//! # backend-sim
//!
//! A deterministic, seeded discrete-event simulator that drives [`dialer_core`]'s sans-IO
//! engine in simulated time, to measure pacing policies before they dial real people.
//!
//! Like str0m's network emulator, the simulator is itself sans-IO: it never reads a clock or
//! touches a socket. It plays everything around the engine — the telephone network and the
//! callees (outcomes, ring and answer times, answering machines and AMD, patience, talk),
//! the agents' desktops (logins, breaks, wrap-up), and the store (an in-memory spool) — and
//! jumps from one event to the next.
//!
//! [`swarm`] runs seeded campaigns with faults (PBX refusals, lost calls, outages, the
//! dialer process killed and restarted) through the production driver on a real SQLite spool
//! file, and [`oracle`] judges each from the simulated PBX's ground truth: the one part of
//! this crate that does I/O.
//!
//! Every random quantity comes from a ChaCha stream named by the seed and what it is about;
//! the fate of attempt `k` on record `r` comes from the stream of `(seed, r, k)`, so two
//! pacers run on one seed face the same callees (common random numbers), and a seed
//! reproduces a run byte for byte. Print the seed with every failure.
//!
//! ```
//! use backend_sim::{pacer_by_name, Scenario, Simulator};
//!
//! // The reference Markov model of pacing-reference.md, 5 agents, one simulated hour.
//! let scenario = Scenario::reference(5, 1.0);
//! let (pacer, guard) = pacer_by_name("progressive", &scenario, 42).unwrap();
//! let report = Simulator::new(&scenario, 42, pacer, guard).run(&mut |_| {});
//! assert!(report.dials > 0);
//! assert_eq!(report.abandoned, 0); // progressive never abandons
//! println!("occupancy {:.3} (seed {})", report.occupancy, report.seed);
//! ```
//!
//! Over many seeds, on all cores, with 95% intervals and wins paired by seed
//! ([`runs::compare_seeds`]); [`html`] charts the result and [`plan`] answers staffing
//! questions:
//!
//! ```
//! use backend_sim::{compare_seeds, Scenario};
//!
//! let scenario = Scenario::reference(5, 1.0);
//! let pacers = ["predictive".to_owned(), "progressive".to_owned()];
//! let cmp = compare_seeds(&scenario, &pacers, &[1, 2, 3], 0, None, &mut |_| {}).unwrap();
//! let occupancy = cmp.summaries[0].occupancy.unwrap();
//! println!("predictive occupancy {}", occupancy.show(1.0, 3)); // "0.7xx ± 0.0xx"
//! assert_eq!(occupancy.n, 3);
//! assert!(cmp.wins[0][1] + cmp.wins[1][0] <= 3);
//! ```

pub mod alloc;
pub mod dist;
pub mod erlang;
pub mod html;
#[cfg(feature = "live")]
pub mod live;
pub mod oracle;
pub mod pacers;
pub mod plan;
pub mod report;
pub mod rng;
pub mod runs;
pub mod scenario;
pub mod sim;
pub mod spool;
pub mod stats;
pub mod svg;
pub mod swarm;
pub mod timeline;
pub mod world;

pub use dist::Dist;
pub use pacers::{pacer_by_name, Issabel, PoissonOpenLoop, Vicidial};
pub use report::{PeriodReport, Report};
pub use runs::{
    compare, compare_seeds, run_one, run_seeds, run_spec, tune_baselines, PacerSummary, Run,
    RunError, SeedSummary, SeedsComparison,
};
pub use scenario::{Scenario, ScenarioError, BUILTINS, DEFAULT_SCENARIO};
pub use sim::Simulator;
pub use stats::MeanCi;
pub use timeline::{Sample, Timeline};
