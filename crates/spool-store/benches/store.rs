//! Benchmarks of the two hot paths of the store.
//!
//! 1. Import of a base file, compared in the same run with the `sqlite3` shell's `.import`
//!    of the same rows into a plain table (`apt-get install -y sqlite3`); also the cost of
//!    phone-number validation alone, and the *schema floor*: the shell moving those rows into
//!    the spool's own tables with set-based SQL (no parsing, validation or duplicate checks),
//!    the least SQLite charges any importer of this schema.
//! 2. The ready-set query (a batch of 100 due records, in dial order) on a large spool.
//!
//! Sizes default small so `cargo bench -p spool-store` stays quick; the figures in the
//! reports come from:
//!
//! ```text
//! SPOOL_BENCH_IMPORT_LINES=1000000 SPOOL_BENCH_SPOOL_RECORDS=10000000 \
//!     cargo bench -p spool-store --bench store
//! ```
//!
//! The big spool is built once with plain SQL (not through `import_base`, which would take
//! minutes) and cached as `spool-bench-<N>.db` in `$SPOOL_BENCH_DIR` (default: the system
//! temp dir; the 10M spool takes about 2.8 GB, 4 to 7 minutes to build).
//! `SPOOL_BENCH_ONLY=import` runs the import comparison alone. To time the ready set quickly on
//! the cached spool: `cargo run --release -p spool-store --example ready_set_probe -- PATH`.
//!
//! Both threads of the import are busy (parsing, writing) while the `sqlite3` shell uses one:
//! on a machine whose cores are taken by other work the import's figure suffers more.

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{black_box, Criterion};
use dialer_core::{CallingHours, Campaign, PhoneNumber};
use spool_store::{ImportOptions, SpoolStore};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn campaign() -> Campaign {
    let mut c = Campaign::new("c", "America/Montevideo");
    c.default_country = "UY".into();
    c.calling_hours = CallingHours::always();
    c
}

/// The i-th distinct valid Uruguayan mobile number (09[1-9] + 6 digits).
fn number(i: usize) -> String {
    format!("09{}{:06}", 1 + (i / 1_000_000) % 9, i % 1_000_000)
}

/// Scratch space for bench files (system temp dir, never the repository).
fn scratch_dir() -> PathBuf {
    std::env::var_os("SPOOL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn write_base(path: &Path, lines: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..lines {
        // Every line has all six fields (the sqlite3 shell wants a fixed column count);
        // one in four has an alternative number.
        let alt = if i % 4 == 0 {
            number(i + 5_000_000)
        } else {
            String::new()
        };
        writeln!(
            f,
            "c;{};id={i}:name=Customer {i};{alt};{};{}",
            number(i),
            2 + i % 7,
            1000 + i % 50
        )
        .unwrap();
    }
    f.flush().unwrap();
}

fn import_vs_sqlite3() {
    let lines = env_usize("SPOOL_BENCH_IMPORT_LINES", 100_000);
    let dir = tempfile::tempdir_in(scratch_dir()).unwrap();
    let base = dir.path().join("base.txt");
    write_base(&base, lines);

    // Phone validation alone, distinct numbers (no cache hits).
    let n = lines.min(200_000);
    let start = Instant::now();
    for i in 0..n {
        black_box(PhoneNumber::parse(&number(i), "UY").unwrap());
    }
    let parse_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

    let db = dir.path().join("store.db");
    let mut store = SpoolStore::open(&db).unwrap();
    store.upsert_campaign(&campaign(), t0()).unwrap();
    let start = Instant::now();
    let sum = store
        .import_base(
            std::fs::File::open(&base).unwrap(),
            &ImportOptions::new("c", "base.txt", t0()),
            &mut |_| {},
        )
        .unwrap();
    let ours = start.elapsed().as_secs_f64();
    assert_eq!(sum.imported as usize, lines, "{sum:?}");
    drop(store);

    let shell = sqlite3(&dir.path().join("shell.db"), &import_script(&base));
    let floor = schema_floor(dir.path(), &base);
    println!("import of {lines} lines:");
    println!("  phone validation alone: {parse_us:.2} us/number");
    println!(
        "  spool-store import_base: {ours:.2} s ({:.0} lines/s)",
        lines as f64 / ours
    );
    match shell {
        Some(shell) => {
            println!("  sqlite3 .import (plain table): {shell:.2} s");
            println!(
                "  ratio import_base / sqlite3 .import: {:.2}x",
                ours / shell
            );
            if let Some(floor) = floor {
                println!(
                    "  schema floor: set-based SQL writing the same rows into the spool schema \
                     (after its own .import): {floor:.2} s, {:.2}x sqlite3 .import",
                    floor / shell
                );
            }
        }
        None => {
            println!("  sqlite3 shell not available (apt-get install -y sqlite3): no comparison")
        }
    }
}

/// Seconds the `sqlite3` shell takes to move the rows of `base` (already `.import`ed into a
/// plain table, not timed) into a fresh spool: a record, its numbers and their destinations
/// per line, as set-based `INSERT ... SELECT`s in one transaction, with the spool's
/// constraints, foreign keys and indexes. No parsing, validation or duplicate checks: the
/// least any importer writing this schema has to pay SQLite.
fn schema_floor(dir: &Path, base: &Path) -> Option<f64> {
    let db = dir.join("floor.db");
    let mut store = SpoolStore::open(&db).unwrap();
    store.upsert_campaign(&campaign(), t0()).unwrap();
    drop(store);
    sqlite3(&db, &import_script(base))?;
    let history = r#"{"recent":[],"last_abandoned_at":null,"last_machine_at":null,"last_conversation_at":null}"#;
    let created = t0().timestamp_millis();
    sqlite3(
        &db,
        &format!(
            "PRAGMA foreign_keys = ON;
BEGIN;
INSERT INTO record (id, campaign_id, status, current_slot, priority, attempts, owner_agent,
    origin, created_ms, data, history, due_class, order_priority, due_ms, has_task)
  SELECT rowid, (SELECT id FROM campaign WHERE name = 'c'), 'pending', 0,
    CAST(priority AS INTEGER), 0, agent, 'import', {created}, '[[\"id\",\"' || rowid || '\"]]',
    '{history}', 2, CAST(priority AS INTEGER), -9223372036854775808, 0 FROM t;
INSERT INTO record_number (record_id, pos, e164, dial, attempts, state)
  SELECT rowid, 0, '+598' || substr(number, 2), number, 0, 'active' FROM t;
INSERT INTO record_number (record_id, pos, e164, dial, attempts, state)
  SELECT rowid, 1, '+598' || substr(alts, 2), alts, 0, 'active' FROM t WHERE alts <> '';
INSERT INTO destination (campaign_id, e164, record_id)
  SELECT (SELECT id FROM campaign WHERE name = 'c'), '+598' || substr(number, 2), rowid FROM t;
INSERT INTO destination (campaign_id, e164, record_id)
  SELECT (SELECT id FROM campaign WHERE name = 'c'), '+598' || substr(alts, 2), rowid FROM t
  WHERE alts <> '';
COMMIT;
"
        ),
    )
}

/// The shell script that `.import`s `base` into a plain six-column table `t`.
fn import_script(base: &Path) -> String {
    format!(
        ".mode csv\n.separator ;\nCREATE TABLE t(campaign TEXT, number TEXT, data TEXT, alts TEXT, priority TEXT, agent TEXT);\n.import {} t\n",
        base.display()
    )
}

/// Seconds the `sqlite3` shell takes to run `script` on `db`; `None` if the shell is missing
/// or fails.
fn sqlite3(db: &Path, script: &str) -> Option<f64> {
    let start = Instant::now();
    let ok = std::process::Command::new("sqlite3")
        .arg(db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(script.as_bytes())?;
            c.wait()
        })
        .is_ok_and(|s| s.success());
    ok.then(|| start.elapsed().as_secs_f64())
}

/// A spool of `n` records in campaign `c`: 70% due now, 20% waiting on a retry delay, 10%
/// finished; priorities 2..9, attempts 0..3, one number each.
fn big_spool(n: usize) -> PathBuf {
    let path = scratch_dir().join(format!("spool-bench-{n}.db"));
    if let Ok(s) = SpoolStore::open_read_only(&path) {
        if s.campaign_status("c").ok().map(|st| st.total as usize) == Some(n) {
            return path;
        }
    }
    let _ = std::fs::remove_file(&path);
    let mut store = SpoolStore::open(&path).unwrap();
    store.upsert_campaign(&campaign(), t0()).unwrap();
    drop(store);
    let start = Instant::now();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -400000;",
    )
    .unwrap();
    let now_ms = t0().timestamp_millis();
    let later_ms = (t0() + Duration::hours(6)).timestamp_millis();
    conn.execute(
        "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?1)
         INSERT INTO record (id, campaign_id, status, call_id, finish_reason, current_slot, priority,
             attempts, origin, next_eligible_ms, created_ms, data, history, due_class, order_priority,
             due_ms, has_task)
         SELECT i + 1, 1,
             CASE WHEN i % 10 = 9 THEN 'finished' ELSE 'pending' END, NULL,
             CASE WHEN i % 10 = 9 THEN 'completed' END,
             0, 2 + (i * 7919) % 8, (i * 104729) % 4, 'import',
             CASE WHEN i % 10 IN (3, 6) THEN ?3 END,
             ?2 - (i % 86400) * 1000, '[[\"id\",\"' || i || '\"]]', '{\"recent\":[],\"last_abandoned_at\":null,\"last_machine_at\":null,\"last_conversation_at\":null}',
             2, 2 + (i * 7919) % 8,
             CASE WHEN i % 10 IN (3, 6) THEN ?3 ELSE -9223372036854775808 END, 0
         FROM s",
        rusqlite::params![n as i64, now_ms, later_ms],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO record_number (record_id, pos, e164, dial, attempts, state)
         SELECT id, 0, '+5989' || (10000000 + id), '09' || (10000000 + id), attempts, 'active' FROM record",
        [],
    )
    .unwrap();
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    println!(
        "built a {n}-record spool in {:.0} s: {}",
        start.elapsed().as_secs_f64(),
        path.display()
    );
    path
}

fn ready_set(c: &mut Criterion) {
    let n = env_usize("SPOOL_BENCH_SPOOL_RECORDS", 200_000);
    let path = big_spool(n);
    let store = SpoolStore::open_read_only(&path).unwrap();
    let batch = store.ready_set("c", t0(), 100).unwrap();
    assert_eq!(batch.len(), 100);
    c.bench_function(&format!("ready_set 100 of {n} records"), |b| {
        b.iter(|| black_box(store.ready_set("c", t0(), 100).unwrap()))
    });
}

fn main() {
    import_vs_sqlite3();
    if std::env::var("SPOOL_BENCH_ONLY").as_deref() == Ok("import") {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    ready_set(&mut c);
    c.final_summary();
}
