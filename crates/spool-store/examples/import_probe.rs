//! Times one import of a base file into a fresh spool (or a copy of a given one):
//! `cargo run --release -p spool-store --example import_probe -- BASE [SPOOL_TO_COPY [KEEP_AS]]`.
//! Prints the seconds and the summary; for quick checks next to the `store` bench. With
//! `KEEP_AS` (pass `-` as `SPOOL_TO_COPY` for a fresh spool) the resulting spool is kept
//! there, checkpointed, e.g. as the pre-filled spool of a next probe.

use chrono::{TimeZone, Utc};
use dialer_core::{CallingHours, Campaign};
use spool_store::{ImportOptions, SpoolStore};
use std::time::Instant;

fn main() {
    let base = std::env::args()
        .nth(1)
        .expect("usage: import_probe BASE [SPOOL]");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spool.db");
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap();
    if let Some(spool) = std::env::args().nth(2).filter(|s| s != "-") {
        std::fs::copy(spool, &db).unwrap();
    }
    let mut store = SpoolStore::open_unreconciled(&db).unwrap();
    if !store.has_campaign("c").unwrap() {
        let mut c = Campaign::new("c", "America/Montevideo");
        c.default_country = "UY".into();
        c.calling_hours = CallingHours::always();
        store.upsert_campaign(&c, now).unwrap();
    }
    let name = std::path::Path::new(&base)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let start = Instant::now();
    let sum = store
        .import_base(
            std::fs::File::open(&base).unwrap(),
            &ImportOptions::new("c", name, now),
            &mut |_| {},
        )
        .unwrap();
    println!(
        "{:.2} s: {} lines, {} imported, {} rejected",
        start.elapsed().as_secs_f64(),
        sum.lines,
        sum.imported,
        sum.rejected
    );
    if let Some(keep) = std::env::args().nth(3) {
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
        drop(store);
        std::fs::copy(&db, keep).unwrap();
    }
}
