//! Test helper for the crash test (`tests/it/crash.rs`): does store work until it is killed.
//!
//! - `spool-crash-child import DB BASE`: imports BASE into campaign `c` in small batches
//!   (resuming an interrupted upload of the same file).
//! - `spool-crash-child dial DB ORIGINATE_LOG SEED`: plays a driver: takes the first ready
//!   record, commits `AttemptStarted`, appends the call id to ORIGINATE_LOG (the "Originate"),
//!   then commits `AttemptEnded` with a pseudo-random outcome and the engine's record
//!   snapshot. Time is simulated from the ledger so restarts continue the same clock.
//!
//! Not a user tool; it exists so a test can SIGKILL a real process at random points.

use chrono::{DateTime, Duration, TimeZone, Utc};
use dialer_core::rules::next_step::{begin_attempt, finish_attempt};
use dialer_core::{CallId, CallOutcome, CallingHours, Campaign, FailureClass, StoreUpdate};
use spool_store::{ImportOptions, SpoolStore};
use std::io::Write;

/// The simulated clock: ten minutes per call placed so far.
fn sim_now(store: &SpoolStore) -> DateTime<Utc> {
    let calls = store
        .max_call_id()
        .expect("ledger readable")
        .map_or(0, |c| c.0);
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap() + Duration::minutes(10 * (calls as i64 + 1))
}

fn campaign() -> Campaign {
    let mut c = Campaign::new("c", "America/Montevideo");
    c.default_country = "UY".into();
    c.calling_hours = CallingHours::always();
    c
}

fn open(db: &str) -> SpoolStore {
    let mut store = SpoolStore::open_unreconciled(db).expect("open store");
    let now = sim_now(&store);
    store.reconcile(now).expect("reconcile");
    store
}

/// Tells the parent that start-up is over and the work begins.
fn ready() {
    println!("ready");
    std::io::stdout().flush().unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("import") => {
            let (db, base) = (&args[2], &args[3]);
            let mut store = open(db);
            let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
            if !store.has_campaign("c").unwrap() {
                store.upsert_campaign(&campaign(), now).unwrap();
            }
            let name = std::path::Path::new(base)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut opts = ImportOptions::new("c", name, now);
            opts.batch_lines = 40;
            let file = std::fs::File::open(base).unwrap();
            // Load the phone metadata before saying ready, so kills land in the import.
            let _ = dialer_core::PhoneNumber::parse("098344484", "UY");
            ready();
            let sum = store.import_base(file, &opts, &mut |_| {}).unwrap();
            println!("imported {} rejected {}", sum.imported, sum.rejected);
        }
        Some("dial") => {
            let (db, log, seed) = (&args[2], &args[3], args[4].parse::<u64>().unwrap());
            let mut store = open(db);
            let camp = store.campaign("c").unwrap();
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            let mut x = seed | 1;
            ready();
            let mut rand = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            loop {
                let now = sim_now(&store);
                let Some(rec) = store.ready_set("c", now, 1).unwrap().pop() else {
                    println!("idle");
                    return;
                };
                let call = CallId(store.max_call_id().unwrap().map_or(0, |c| c.0) + 1);
                let number = rec.numbers[rec.current].number.clone();
                store
                    .apply(&StoreUpdate::AttemptStarted {
                        call,
                        campaign: "c".into(),
                        record: rec.id.clone(),
                        number,
                        agent: None,
                        at: now,
                    })
                    .unwrap();
                // The Originate leaves only after the ledger row is committed.
                // One write(2), so a kill cannot leave half a line.
                log.write_all(format!("{}\n", call.0).as_bytes()).unwrap();
                let outcome = match rand() % 5 {
                    0 => CallOutcome::Connected { talk_s: 30 },
                    1 => CallOutcome::Failed {
                        class: FailureClass::Busy,
                    },
                    2 => CallOutcome::Failed {
                        class: FailureClass::NoAnswer,
                    },
                    3 => CallOutcome::Machine,
                    _ => CallOutcome::Abandoned,
                };
                let end = now + Duration::seconds(40);
                store
                    .apply(&StoreUpdate::AttemptEnded {
                        call,
                        record: rec.id.clone(),
                        outcome,
                        at: end,
                    })
                    .unwrap();
                // The engine's own snapshot follows in its own transaction.
                let mut snap = rec.clone();
                begin_attempt(&mut snap, &camp, call, now);
                finish_attempt(&mut snap, &camp, outcome, end);
                store.apply(&StoreUpdate::Record(Box::new(snap))).unwrap();
            }
        }
        _ => {
            eprintln!("usage: spool-crash-child import DB BASE | dial DB LOG SEED");
            std::process::exit(2);
        }
    }
}
