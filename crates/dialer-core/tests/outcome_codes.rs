//! The outcome and progress codes have one definition, in the core, and the store's SQL
//! `CHECK` lists accept exactly those codes. The lists are read from the spool's migrations
//! (its source text), the latest definition of each table: a code added on either side
//! without the other fails here.

use dialer_core::{AgentId, CallOutcome, FailureClass, Progress};
use std::collections::BTreeSet;

/// The spool's migrations, as its source states them.
const SCHEMA: &str = include_str!("../../spool-store/src/schema.rs");

/// The quoted codes of `CHECK (<column> IN (...))` in the latest definition of `table` in
/// the migrations (`CREATE TABLE <table>` or a rebuilt `<table>_vN`).
fn latest_check_list(table: &str, column: &str) -> BTreeSet<String> {
    let body_start = SCHEMA
        .match_indices("CREATE TABLE ")
        .map(|(i, m)| i + m.len())
        .filter(|&i| {
            let name: String = SCHEMA[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            name == table
                || name
                    .strip_prefix(table)
                    .and_then(|v| v.strip_prefix("_v"))
                    .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
        .last()
        .unwrap_or_else(|| panic!("no table `{table}` in the spool's migrations"));
    let body_end = body_start
        + SCHEMA[body_start..]
            .find("\n);")
            .unwrap_or_else(|| panic!("table `{table}` is not closed"));
    let body = &SCHEMA[body_start..body_end];
    let marker = format!("CHECK ({column} IN (");
    let start = body
        .find(&marker)
        .unwrap_or_else(|| panic!("no CHECK list for `{table}.{column}`"))
        + marker.len();
    let end = start
        + body[start..]
            .find("))")
            .unwrap_or_else(|| panic!("the CHECK list for `{table}.{column}` is not closed"));
    body[start..end]
        .split(',')
        .map(|c| c.trim().trim_matches('\'').to_owned())
        .collect()
}

/// One outcome of every kind. The match makes a new variant a compile error here until it
/// is listed.
fn every_outcome() -> Vec<CallOutcome> {
    let classes = [
        FailureClass::Busy,
        FailureClass::NoAnswer,
        FailureClass::Rejected,
        FailureClass::Congestion,
        FailureClass::InvalidNumber,
        FailureClass::OriginateFailed,
    ];
    for c in classes {
        match c {
            FailureClass::Busy
            | FailureClass::NoAnswer
            | FailureClass::Rejected
            | FailureClass::Congestion
            | FailureClass::InvalidNumber
            | FailureClass::OriginateFailed => {}
        }
    }
    let mut all = vec![
        CallOutcome::Connected { talk_s: 95 },
        CallOutcome::ShortCall { talk_s: 3 },
        CallOutcome::Abandoned,
        CallOutcome::Machine,
        CallOutcome::Unknown,
        CallOutcome::NotPlaced,
    ];
    all.extend(classes.map(|class| CallOutcome::Failed { class }));
    for o in &all {
        match o {
            CallOutcome::Connected { .. }
            | CallOutcome::ShortCall { .. }
            | CallOutcome::Abandoned
            | CallOutcome::Machine
            | CallOutcome::Failed { .. }
            | CallOutcome::Unknown
            | CallOutcome::NotPlaced => {}
        }
    }
    all
}

/// One progress state of every kind (the match makes a new variant a compile error here).
fn every_progress() -> Vec<Progress> {
    let all = vec![
        Progress::Placing,
        Progress::Dialing,
        Progress::Ringing,
        Progress::OnQueue,
        Progress::Success {
            agent: AgentId::from("ana"),
        },
        Progress::OnHold,
        Progress::OffHold,
        Progress::Hangup,
        Progress::ShortCall,
        Progress::Failure {
            class: FailureClass::Busy,
        },
        Progress::NoAnswer,
        Progress::Abandoned,
        Progress::Machine,
        Progress::Unknown,
        Progress::NotPlaced,
    ];
    for p in &all {
        match p {
            Progress::Placing
            | Progress::Dialing
            | Progress::Ringing
            | Progress::OnQueue
            | Progress::Success { .. }
            | Progress::OnHold
            | Progress::OffHold
            | Progress::Hangup
            | Progress::ShortCall
            | Progress::Failure { .. }
            | Progress::NoAnswer
            | Progress::Abandoned
            | Progress::Machine
            | Progress::Unknown
            | Progress::NotPlaced => {}
        }
    }
    all
}

#[test]
fn every_outcome_round_trips_through_its_code() {
    let outcomes = every_outcome();
    let codes: BTreeSet<&str> = outcomes.iter().map(CallOutcome::code).collect();
    assert_eq!(codes.len(), outcomes.len(), "two outcomes share a code");
    assert_eq!(codes, CallOutcome::CODES.into_iter().collect());
    for o in outcomes {
        assert_eq!(CallOutcome::from_code(o.code(), o.talk_s()), Some(o));
    }
    assert_eq!(CallOutcome::from_code("hung_up", None), None);
}

#[test]
fn the_ledger_accepts_exactly_the_outcome_codes() {
    let sql = latest_check_list("attempt", "outcome");
    let core: BTreeSet<String> = CallOutcome::CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        sql, core,
        "the attempt ledger's CHECK list and the core's outcome codes differ"
    );
}

#[test]
fn the_campaign_log_accepts_exactly_the_progress_codes() {
    let progress = every_progress();
    let codes: BTreeSet<&str> = progress.iter().map(Progress::code).collect();
    assert_eq!(
        codes.len(),
        progress.len(),
        "two progress states share a code"
    );
    assert_eq!(codes, Progress::CODES.into_iter().collect());
    let sql = latest_check_list("campaign_log", "status");
    let core: BTreeSet<String> = Progress::CODES.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        sql, core,
        "the campaign log's CHECK list and the core's progress codes differ"
    );
}
