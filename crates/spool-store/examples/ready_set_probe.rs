//! Times `SpoolStore::ready_set` on an existing spool (e.g. the benchmark's cached
//! `spool-bench-10000000.db`): `cargo run --release -p spool-store --example ready_set_probe -- PATH`.
//! Prints the median and the best of several rounds of calls.

use chrono::{TimeZone, Utc};
use spool_store::SpoolStore;
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: ready_set_probe PATH [ROUNDS]");
    let rounds: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(20);
    let store = SpoolStore::open_read_only(&path).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap();
    for _ in 0..200 {
        std::hint::black_box(store.ready_set("c", now, 100).unwrap());
    }
    let mut per_call = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..200 {
            std::hint::black_box(store.ready_set("c", now, 100).unwrap());
        }
        per_call.push(start.elapsed().as_secs_f64() * 1e6 / 200.0);
    }
    per_call.sort_by(f64::total_cmp);
    println!(
        "ready_set 100: median {:.0} us, best {:.0} us",
        per_call[per_call.len() / 2],
        per_call[0]
    );
}
