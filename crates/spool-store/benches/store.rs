//! Benchmarks of the hot paths of the store.
//!
//! 1. **Import** of a base file, fairly: shuffled numbers (real lists are not sorted by number),
//!    an alternative number on about a quarter of the lines, `key=value` data of four fields.
//!    Three cases: numbers in file order into an empty spool, shuffled into an empty spool,
//!    shuffled into a spool already holding as many records of another upload of the same
//!    campaign. In the same run, interleaved, for each case: the `sqlite3` shell's `.import`
//!    of the same rows into a plain table (the baseline; `apt-get install -y sqlite3`), and
//!    the *schema floor*: the shell moving those rows (already `.import`ed, not timed) into
//!    the spool's own tables with set-based `INSERT … SELECT`s in one transaction (the
//!    numbers into `destination_recent`, where the importer writes them), with the
//!    importer's foreign-key policy (parents checked once, not per row) and the store's page
//!    cache (64 MiB). No parsing, validation or duplicate checks: the least SQLite charges
//!    any importer of this schema. Medians of `SPOOL_BENCH_RUNS` runs
//!    (default 3), as ratios to `.import`, of wall time and of CPU time (user + system; on
//!    a busy machine the wall time of the two-thread import suffers more than the shell's).
//!    The size of the WAL file each import leaves is printed as it ends.
//!    `SPOOL_BENCH_CASES=0,2` runs only those cases (table rows from 0);
//!    `SPOOL_BENCH_COMMIT_MS` sets the import's transaction time bound.
//! 2. **The ready set** (a batch of 100 due records, in dial order) on a large spool: the
//!    criterion mean, then p50 / p99 / max of 1,000 single calls (`SPOOL_BENCH_READY_CALLS`),
//!    by wall clock and by the thread's CPU time.
//! 3. **A dialer's ledger writes during an import** (`SPOOL_BENCH_ONLY=ledger`): a second
//!    connection starts (and ends) an attempt every 10 ms while a base is imported; the
//!    delay of each `apply(AttemptStarted)` is reported (p50, p99, max), with the same loop
//!    measured without an import as the baseline.
//!
//! Sizes default small so `cargo bench -p spool-store` stays quick; the figures in the
//! reports come from:
//!
//! ```text
//! SPOOL_BENCH_IMPORT_LINES=1000000 SPOOL_BENCH_ONLY=import cargo bench -p spool-store --bench store
//! SPOOL_BENCH_IMPORT_LINES=1000000 SPOOL_BENCH_ONLY=ledger cargo bench -p spool-store --bench store
//! SPOOL_BENCH_SPOOL_RECORDS=10000000 SPOOL_BENCH_ONLY=ready cargo bench -p spool-store --bench store
//! ```
//!
//! The big spool is built once with plain SQL (not through `import_base`, which would take
//! minutes) and cached as `spool-bench-<N>.db` in `$SPOOL_BENCH_DIR` (default: the system
//! temp dir). To time the ready set quickly on the cached spool:
//! `cargo run --release -p spool-store --example ready_set_probe -- PATH`.
//!
//! Both threads of the import are busy (parsing, writing) while the `sqlite3` shell uses one:
//! on a machine whose cores are taken by other work the import's figure suffers more.

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{black_box, Criterion};
use dialer_core::{CallId, CallOutcome, CallingHours, Campaign, FailureClass, StoreUpdate};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use spool_store::{ImportOptions, SpoolStore};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The import options of the bench: the defaults, with `SPOOL_BENCH_COMMIT_MS` (if set) as
/// the transaction time bound.
fn import_options(file: &str) -> ImportOptions {
    let mut opts = ImportOptions::new("c", file, t0());
    if let Ok(ms) = std::env::var("SPOOL_BENCH_COMMIT_MS") {
        opts.commit_after = std::time::Duration::from_millis(
            ms.parse().expect("SPOOL_BENCH_COMMIT_MS: milliseconds"),
        );
    }
    opts
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn campaign(name: &str) -> Campaign {
    let mut c = Campaign::new(name, "America/Montevideo");
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

/// A base of `lines` lines whose numbers are `number(first..)` (alternatives from
/// `number(first + 4_000_000..)`), in ascending order or shuffled (seeded).
fn write_base(path: &Path, lines: usize, first: usize, shuffled: bool) {
    let mut order: Vec<usize> = (0..lines).collect();
    if shuffled {
        order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(14));
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in order {
        // Every line has all six fields (the sqlite3 shell wants a fixed column count);
        // one in four has an alternative number.
        let alt = if i % 4 == 0 {
            number(first + i + 4_000_000)
        } else {
            String::new()
        };
        writeln!(
            f,
            "c;{};id={i}:name=Customer {i}:plan={}:city=Montevideo;{alt};{};{}",
            number(first + i),
            ["gold", "silver", "basic"][i % 3],
            2 + i % 7,
            if i % 5 == 0 {
                String::new()
            } else {
                (1000 + i % 50).to_string()
            }
        )
        .unwrap();
    }
    f.flush().unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Case {
    name: &'static str,
    base: PathBuf,
    /// A spool to start from (copied for each run), or an empty one.
    prefilled: Option<PathBuf>,
}

fn import_vs_sqlite3() {
    let lines = env_usize("SPOOL_BENCH_IMPORT_LINES", 100_000);
    let runs = env_usize("SPOOL_BENCH_RUNS", 3).max(1);
    let dir = tempfile::tempdir_in(scratch_dir()).unwrap();
    let ordered = dir.path().join("ordered.txt");
    let shuffled = dir.path().join("shuffled.txt");
    let other = dir.path().join("other.txt");
    write_base(&ordered, lines, 0, false);
    write_base(&shuffled, lines, 0, true);
    write_base(&other, lines, 10_000_000, true);
    if sqlite3(&dir.path().join("probe.db"), "SELECT 1;").is_none() {
        println!("sqlite3 shell not available (apt-get install -y sqlite3): no comparison");
        return;
    }
    // The pre-filled spool: another upload of as many lines into the same campaign.
    let prefilled = dir.path().join("prefilled.db");
    {
        let mut store = SpoolStore::open(&prefilled).unwrap();
        store.upsert_campaign(&campaign("c"), t0()).unwrap();
        let sum = store
            .import_base(
                std::fs::File::open(&other).unwrap(),
                &ImportOptions::new("c", "other.txt", t0()),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(sum.imported as usize, lines);
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let cases = [
        Case {
            name: "file order, empty spool",
            base: ordered,
            prefilled: None,
        },
        Case {
            name: "shuffled, empty spool",
            base: shuffled.clone(),
            prefilled: None,
        },
        Case {
            name: "shuffled, pre-filled spool",
            base: shuffled,
            prefilled: Some(prefilled),
        },
    ];
    // [case][run] = (.import, floor, ours), interleaved run by run.
    let mut times: Vec<Vec<(Took, Took, Took)>> = vec![Vec::new(); cases.len()];
    // `SPOOL_BENCH_CASES=2` (or `0,2`...): only those cases (indexes in the table).
    let only_cases: Option<Vec<usize>> = std::env::var("SPOOL_BENCH_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|k| k.trim().parse().ok()).collect());
    let wanted = |k: usize| only_cases.as_ref().is_none_or(|c| c.contains(&k));
    for run in 0..runs {
        for (k, case) in cases.iter().enumerate().filter(|(k, _)| wanted(*k)) {
            let work = dir.path().join(format!("run-{run}-{k}"));
            std::fs::create_dir_all(&work).unwrap();
            let shell = sqlite3(&work.join("shell.db"), &import_script(&case.base)).unwrap();
            let floor = schema_floor(&work, case);
            let ours = ours(&work, case, lines);
            times[k].push((shell, floor, ours));
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
    // Wall time is the acceptance; CPU time (user + system, both threads of the import) is
    // printed too: on a machine whose cores are busy with other work, it shows what the
    // work itself costs.
    for (what, get) in [
        ("wall", (|t: &Took| t.wall) as fn(&Took) -> f64),
        ("CPU (all threads)", |t: &Took| t.cpu),
        (
            "CPU of the critical path (the import's writing thread)",
            |t: &Took| t.path,
        ),
    ] {
        println!("import of {lines} lines, {what} seconds, medians of {runs} runs (x = ratio to .import in the same run):");
        println!("| case | `.import` | schema floor | `import_base` | floor × | ours × |");
        println!("|---|---|---|---|---|---|");
        for (case, t) in cases.iter().zip(&times).filter(|(_, t)| !t.is_empty()) {
            let shell = median(t.iter().map(|x| get(&x.0)).collect());
            let floor = median(t.iter().map(|x| get(&x.1)).collect());
            let ours = median(t.iter().map(|x| get(&x.2)).collect());
            let floor_x = median(t.iter().map(|x| get(&x.1) / get(&x.0)).collect());
            let ours_x = median(t.iter().map(|x| get(&x.2) / get(&x.0)).collect());
            println!(
                "| {} | {shell:.2} | {floor:.2} | {ours:.2} | {floor_x:.2} | {ours_x:.2} |",
                case.name
            );
        }
        for (case, t) in cases.iter().zip(&times).filter(|(_, t)| !t.is_empty()) {
            let runs: Vec<String> = t
                .iter()
                .map(|(s, f, o)| format!("{:.2}/{:.2}/{:.2}", get(s), get(f), get(o)))
                .collect();
            println!("  {} (.import/floor/ours): {}", case.name, runs.join("  "));
        }
    }
}

/// Wall and CPU (user + system) seconds of one measurement.
#[derive(Clone, Copy)]
struct Took {
    wall: f64,
    cpu: f64,
    /// CPU seconds of the calling thread: for `import_base`, its writing thread (the
    /// parsing runs in parallel, on the other core of a quiet machine), the import's
    /// critical path; the shell has one thread (`cpu`).
    path: f64,
}

/// CPU seconds (user + system) used so far by this process, or by its waited-for children.
fn cpu_s(children: bool) -> f64 {
    // SAFETY: an all-zero `rusage` is valid; getrusage writes into the one we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let who = if children {
        libc::RUSAGE_CHILDREN
    } else {
        libc::RUSAGE_SELF
    };
    // SAFETY: `ru` is a valid, writable rusage.
    let rc = unsafe { libc::getrusage(who, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

/// A spool for a case: a copy of its pre-filled spool, or a fresh one with the campaign.
fn start_spool(work: &Path, case: &Case, name: &str) -> PathBuf {
    let db = work.join(name);
    match &case.prefilled {
        Some(p) => {
            std::fs::copy(p, &db).unwrap();
        }
        None => {
            let mut store = SpoolStore::open(&db).unwrap();
            store.upsert_campaign(&campaign("c"), t0()).unwrap();
        }
    }
    db
}

/// Time `import_base` takes on the case.
fn ours(work: &Path, case: &Case, lines: usize) -> Took {
    let db = start_spool(work, case, "ours.db");
    let mut store = SpoolStore::open(&db).unwrap();
    let (start, cpu, path) = (Instant::now(), cpu_s(false), thread_cpu_us());
    let sum = store
        .import_base(
            std::fs::File::open(&case.base).unwrap(),
            &import_options("base.txt"),
            &mut |_| {},
        )
        .unwrap();
    let took = Took {
        wall: start.elapsed().as_secs_f64(),
        cpu: cpu_s(false) - cpu,
        path: (thread_cpu_us() - path) / 1e6,
    };
    assert_eq!(sum.imported as usize, lines, "{sum:?}");
    // The WAL the import leaves (its file keeps the longest length it reached).
    let wal = std::fs::metadata(work.join("ours.db-wal")).map_or(0, |m| m.len());
    println!(
        "  {}: the import left a WAL file of {:.1} MiB",
        case.name,
        wal as f64 / f64::from(1 << 20)
    );
    took
}

/// Time the `sqlite3` shell takes to move the rows of the case's base (already
/// `.import`ed into a plain table, not timed) into the case's spool: a record (numbers
/// inline) and its numbers (into `destination_recent`, as the import writes them) per line,
/// as set-based `INSERT … SELECT`s in one
/// transaction, with the spool's constraints and indexes, and the import's page cache.
fn schema_floor(work: &Path, case: &Case) -> Took {
    let db = start_spool(work, case, "floor.db");
    sqlite3(&db, &import_script(&case.base)).unwrap();
    let created = t0().timestamp_millis();
    // The page cache every store connection has (`schema::configure`: 64 MiB).
    let cache_kib: i64 = 64 << 10;
    sqlite3(
        &db,
        &format!(
            "PRAGMA foreign_keys = OFF;
PRAGMA cache_size = -{cache_kib};
INSERT INTO base (campaign_id, file_name, user_name, country, state, started_ms)
  VALUES (1, 'floor', '', 'UY', 'importing', {created});
CREATE TEMP TABLE k AS SELECT (SELECT MAX(id) FROM base) AS base_id,
  COALESCE((SELECT MAX(id) FROM record), 0) AS first;
BEGIN;
INSERT INTO record (id, campaign_id, status, current_slot, priority, attempts, owner_agent,
    base_id, source_line, origin, created_ms, numbers, data, history, due_class,
    order_priority, due_ms, has_task)
  SELECT k.first + t.rowid, 1, 0, 0, CAST(priority AS INTEGER), 0, NULLIF(agent, ''),
    k.base_id, t.rowid, 0, {created},
    '+598' || substr(number, 2) || ',' || number || ',0,0' ||
      CASE WHEN alts <> '' THEN ';+598' || substr(alts, 2) || ',' || alts || ',0,0' ELSE '' END,
    '[1,[\"' || replace(replace(data, '=', '\",\"'), ':', '\"],[\"') || '\"]]', NULL,
    2, CAST(priority AS INTEGER), 0, 0 FROM t, k;
INSERT INTO destination_recent (campaign_id, number, record_id)
  SELECT 1, CAST('598' || substr(number, 2) AS INTEGER), k.first + t.rowid FROM t, k;
INSERT INTO destination_recent (campaign_id, number, record_id)
  SELECT 1, CAST('598' || substr(alts, 2) AS INTEGER), k.first + t.rowid FROM t, k
  WHERE alts <> '';
COMMIT;
"
        ),
    )
    .unwrap()
}

/// The shell script that `.import`s `base` into a plain six-column table `t`.
fn import_script(base: &Path) -> String {
    format!(
        ".mode csv\n.separator ;\nCREATE TABLE t(campaign TEXT, number TEXT, data TEXT, alts TEXT, priority TEXT, agent TEXT);\n.import {} t\n",
        base.display()
    )
}

/// Time the `sqlite3` shell takes to run `script` on `db`; `None` if the shell is missing
/// or fails.
fn sqlite3(db: &Path, script: &str) -> Option<Took> {
    let (start, cpu) = (Instant::now(), cpu_s(true));
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
    let cpu = cpu_s(true) - cpu;
    ok.then(|| Took {
        wall: start.elapsed().as_secs_f64(),
        cpu,
        path: cpu,
    })
}

/// Percentile `p` (0..=100) of sorted `v`.
fn pct(v: &[f64], p: f64) -> f64 {
    let i = ((v.len() - 1) as f64 * p / 100.0).round() as usize;
    v[i]
}

/// Delays (ms) of `apply(AttemptStarted)` on campaign `d`, one every 10 ms, until `stop`.
fn attempt_delays(db: &Path, first_call: u64, stop: &dyn Fn(usize) -> bool) -> Vec<f64> {
    let mut store = SpoolStore::open_unreconciled(db).unwrap();
    let mut delays = Vec::new();
    let mut call = first_call;
    while !stop(delays.len()) {
        let rec = store.ready_set("d", t0(), 1).unwrap().remove(0);
        call += 1;
        let start = Instant::now();
        store
            .apply(&StoreUpdate::AttemptStarted {
                call: CallId(call),
                campaign: "d".into(),
                record: rec.id.clone(),
                number: rec.numbers[rec.current].number.clone(),
                agent: None,
                at: t0(),
            })
            .unwrap();
        delays.push(start.elapsed().as_secs_f64() * 1e3);
        store
            .apply(&StoreUpdate::AttemptEnded {
                call: CallId(call),
                record: rec.id.clone(),
                outcome: CallOutcome::Failed {
                    class: FailureClass::Busy,
                },
                at: t0(),
            })
            .unwrap();
        // Back in the ready set at once: the record is rewritten as never tried.
        let mut again = store.record(&rec.id).unwrap();
        again.next_eligible_at = None;
        store
            .apply(&StoreUpdate::Record(std::sync::Arc::new(again)))
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    delays
}

fn report(name: &str, mut d: Vec<f64>) {
    d.sort_by(f64::total_cmp);
    println!(
        "  {name}: {} attempt starts, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        d.len(),
        pct(&d, 50.0),
        pct(&d, 99.0),
        d[d.len() - 1]
    );
}

fn ledger_during_import() {
    let lines = env_usize("SPOOL_BENCH_IMPORT_LINES", 100_000);
    let dir = tempfile::tempdir_in(scratch_dir()).unwrap();
    let base = dir.path().join("shuffled.txt");
    write_base(&base, lines, 0, true);
    let db = dir.path().join("spool.db");
    {
        let mut store = SpoolStore::open(&db).unwrap();
        store.upsert_campaign(&campaign("c"), t0()).unwrap();
        store.upsert_campaign(&campaign("d"), t0()).unwrap();
        let mut d = String::new();
        for i in 0..5000 {
            d.push_str(&format!("d;{};;\n", number(9_000_000 + i)));
        }
        store
            .import_base(
                d.as_bytes(),
                &ImportOptions::new("d", "d.txt", t0()),
                &mut |_| {},
            )
            .unwrap();
    }
    let quiet = attempt_delays(&db, 0, &|n| n >= 300);
    let done = std::sync::atomic::AtomicBool::new(false);
    let (busy, import_s) = std::thread::scope(|scope| {
        let importer = scope.spawn(|| {
            let mut store = SpoolStore::open_unreconciled(&db).unwrap();
            let start = Instant::now();
            store
                .import_base(
                    std::fs::File::open(&base).unwrap(),
                    &import_options("base.txt"),
                    &mut |_| {},
                )
                .unwrap();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            start.elapsed().as_secs_f64()
        });
        let busy = attempt_delays(&db, 1_000_000, &|_| {
            done.load(std::sync::atomic::Ordering::SeqCst)
        });
        (busy, importer.join().unwrap())
    });
    println!(
        "ledger writes of a dialer (one attempt start every 10 ms) while {lines} shuffled lines \
         are imported ({import_s:.1} s, transactions of at most {} ms):",
        import_options("base.txt").commit_after.as_millis()
    );
    report("no import", quiet);
    report("during the import", busy);
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
    store.upsert_campaign(&campaign("c"), t0()).unwrap();
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
             attempts, origin, next_eligible_ms, created_ms, numbers, data, history, due_class,
             order_priority, due_ms, has_task)
         SELECT i + 1, 1,
             CASE WHEN i % 10 = 9 THEN 2 ELSE 0 END, NULL,
             CASE WHEN i % 10 = 9 THEN 0 END,
             0, 2 + (i * 7919) % 8, (i * 104729) % 4, 0,
             CASE WHEN i % 10 IN (3, 6) THEN ?3 END,
             ?2 - (i % 86400) * 1000,
             '+5989' || (10000000 + i) || ',09' || (10000000 + i) || ',' || ((i * 104729) % 4) || ',0',
             '[1,[\"id\",\"' || i || '\"]]', NULL,
             2, 2 + (i * 7919) % 8,
             CASE WHEN i % 10 IN (3, 6) THEN ?3 ELSE 0 END, 0
         FROM s",
        rusqlite::params![n as i64, now_ms, later_ms],
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
    // Criterion reports a mean and its interval; the acceptance is on the distribution of
    // single calls: each of `SPOOL_BENCH_READY_CALLS` calls (default 1,000) timed alone, by
    // the wall clock and by the CPU time of this thread (which leaves out the time the
    // thread waited for a core on a busy machine).
    let calls = env_usize("SPOOL_BENCH_READY_CALLS", 1_000).max(1);
    let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..calls)
        .map(|_| {
            let (w, c) = (Instant::now(), thread_cpu_us());
            let batch = black_box(store.ready_set("c", t0(), 100).unwrap());
            let t = (w.elapsed().as_secs_f64() * 1e6, thread_cpu_us() - c);
            assert_eq!(batch.len(), 100);
            t
        })
        .unzip();
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!("ready_set 100 of {n} records, {calls} calls timed one by one:");
    for (name, v) in [("wall", &wall), ("thread CPU", &cpu)] {
        println!(
            "  {name}: p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs",
            pct(v, 50.0),
            pct(v, 99.0),
            v[v.len() - 1]
        );
    }
}

/// CPU time of the calling thread, µs.
fn thread_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

fn main() {
    let only = std::env::var("SPOOL_BENCH_ONLY").unwrap_or_default();
    if only.is_empty() || only == "import" {
        import_vs_sqlite3();
    }
    if only == "ledger" {
        ledger_during_import();
    }
    if only.is_empty() || only == "ready" {
        let mut c = Criterion::default().configure_from_args();
        ready_set(&mut c);
        c.final_summary();
    }
}
