//! spool-store integration tests: one binary (one link), one module per area.

#[path = "it/common.rs"]
mod common;
/// SIGKILL of a child process during import and dialing, at least 50 times.
#[path = "it/crash.rs"]
mod crash;
/// Base uploads: hostile input, rejects, time zones, resume after a crash.
#[path = "it/import.rs"]
mod import;
/// Attempt ledger, store updates and crash reconciliation.
#[path = "it/ledger.rs"]
mod ledger;
/// Migrations validate, upgrade to the fresh schema, refuse newer databases.
#[path = "it/migrations.rs"]
mod migrations;
/// Random operations against an in-memory model of the same rules.
#[path = "it/model.rs"]
mod model;
/// Respool, schedules, dialer tasks, removals, blacklist, dispositions.
#[path = "it/ops.rs"]
mod ops;
/// The ready set: due records only, core dial order, index use.
#[path = "it/ready_set.rs"]
mod ready_set;
/// Status counters, queue-wait histogram, campaign log.
#[path = "it/status.rs"]
mod status;
