//! backend-sim integration tests: one binary, one module per concern.

/// The simulator reproduces the closed forms of the reference model.
mod calibration;
/// Same seed, same bytes; and the simulator agrees with the engine's ledger.
mod determinism;
/// The abandonment cap holds in every run and every period, over many seeds.
mod hard_cap;
/// The predictive pacer against the bound and the baselines.
mod pacing;
/// Staffing answers, checked by direct runs.
mod plan;
/// HTML reports, checked in a headless browser.
mod report;
/// Shipped scenario files parse and match the built-ins.
mod scenarios;
/// Many seeds, baseline targets and tuning.
mod seeds;
/// Seeded campaigns with faults through the production driver and the SQLite spool, judged
/// by the independent oracle.
mod swarm;
