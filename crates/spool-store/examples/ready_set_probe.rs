//! Times `SpoolStore::ready_set` on an existing spool (e.g. the benchmark's cached
//! `spool-bench-10000000.db`): `cargo run --release -p spool-store --example ready_set_probe -- PATH [CALLS]`.
//! Times each call on its own and prints the median (p50), p99 and best of `CALLS` calls
//! (default 5,000) of 100 due records, after a warm-up.

use chrono::{TimeZone, Utc};
use spool_store::SpoolStore;
use std::time::Instant;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: ready_set_probe PATH [CALLS]");
    let calls: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5_000)
        .max(1);
    let store = SpoolStore::open_read_only(&path).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap();
    for _ in 0..200 {
        std::hint::black_box(store.ready_set("c", now, 100).unwrap());
    }
    let mut us = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let batch = std::hint::black_box(store.ready_set("c", now, 100).unwrap());
        us.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(batch.len(), 100);
    }
    us.sort_by(f64::total_cmp);
    let at = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
    println!(
        "ready_set 100 ({calls} calls): p50 {:.0} us, p99 {:.0} us, best {:.0} us",
        at(0.5),
        at(0.99),
        us[0]
    );
}
