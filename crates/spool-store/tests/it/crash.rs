//! SIGKILL a real process at random points of an import and of dialing bookkeeping, then
//! check after every restart that nothing was lost, duplicated or dialed twice. The seed is
//! printed; set `SPOOL_CRASH_SEED` to replay.

use super::common::*;
use chrono::{Duration, TimeZone, Utc};
use dialer_core::{CallId, CallOutcome, RecordStatus};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spool_store::{SpoolStore, MIN_RECONCILE_DELAY_S};
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const CHILD: &str = env!("CARGO_BIN_EXE_spool-crash-child");

fn seed() -> u64 {
    let seed = std::env::var("SPOOL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash test seed: SPOOL_CRASH_SEED={seed}");
    seed
}

/// Runs the child and SIGKILLs it `after_ms` after it reports that its start-up is over
/// (unless it finished); true if it finished.
fn run_child(args: &[&str], after_ms: u64) -> bool {
    let mut child = Command::new(CHILD)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "child did not start");
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(after_ms);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "child failed: {status}");
            return true;
        }
        if std::time::Instant::now() >= deadline {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// A store opened the way the child opens it (reconciling at the simulated time).
fn reopen(db: &Path) -> SpoolStore {
    let mut s = SpoolStore::open_unreconciled(db).unwrap();
    let calls = s.max_call_id().unwrap().map_or(0, |c| c.0);
    let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()
        + Duration::minutes(10 * (calls as i64 + 1));
    s.reconcile(now).unwrap();
    s
}

const LINES: u32 = 2000;

fn base_file(path: &Path, offset: u32) -> (u64, u64) {
    let mut text = String::new();
    let mut seen = HashSet::new();
    let (mut good, mut bad) = (0, 0);
    for i in 1..=LINES {
        let number = if i % 17 == 0 {
            None
        } else if i % 10 == 0 {
            Some(i - 1) // the previous line's number again
        } else {
            Some(i)
        };
        match number {
            None => text.push_str("c;not-a-number;;\n"),
            Some(n) => text.push_str(&format!("c;{};id={i};;\n", uy(offset + n))),
        }
        if number.is_some_and(|n| seen.insert(n)) {
            good += 1;
        } else {
            bad += 1;
        }
    }
    std::fs::write(path, text).unwrap();
    (good, bad)
}

/// Invariants that hold after any crash during an import.
fn check_import(s: &SpoolStore) {
    if !s.has_campaign("c").unwrap() {
        return;
    }
    let recs = s.records("c").unwrap();
    let mut seen = HashSet::new();
    for r in &recs {
        assert!(
            seen.insert(r.numbers[0].number.e164().to_owned()),
            "number imported twice: {r:?}"
        );
        assert_eq!(r.numbers.len(), 1, "never half a record");
    }
    let mut id = 1;
    while let Some(b) = s.base(id).unwrap() {
        let mine = recs.iter().filter(|r| r.base_id == Some(id)).count() as u64;
        assert_eq!(b.imported, mine, "upload {id} progress matches its records");
        assert_eq!(
            b.rejected,
            s.rejects(id).unwrap().len() as u64,
            "upload {id} progress matches its rejects"
        );
        assert_eq!(b.imported + b.rejected + b.blank_lines, b.lines);
        id += 1;
    }
}

/// Milliseconds the child works (after start-up) to import `base` into a scratch database.
fn time_import(dir: &Path, base: &Path) -> u64 {
    let db = dir.join(format!(
        "scratch-{}.db",
        base.file_name().unwrap().to_string_lossy()
    ));
    let mut child = Command::new(CHILD)
        .args(["import", db.to_str().unwrap(), base.to_str().unwrap()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let start = std::time::Instant::now();
    assert!(child.wait().unwrap().success());
    start.elapsed().as_millis() as u64
}

/// Invariants that hold after any crash during dialing, once reconciled.
fn check_dialing(s: &SpoolStore, originated: &[u64], records: u64) {
    let recs = s.records("c").unwrap();
    assert_eq!(recs.len() as u64, records, "no record lost or duplicated");
    let ledger = s.attempts("c").unwrap();
    let in_ledger: HashSet<u64> = ledger.iter().map(|a| a.call.0).collect();
    let mut once = HashSet::new();
    for c in originated {
        assert!(once.insert(*c), "call {c} originated twice");
        assert!(
            in_ledger.contains(c),
            "call {c} left without its ledger row"
        );
    }
    let mut per_record: BTreeMap<u64, Vec<&spool_store::AttemptRow>> = BTreeMap::new();
    for a in &ledger {
        assert!(a.outcome.is_some(), "open attempt after reconcile: {a:?}");
        per_record.entry(a.record.0).or_default().push(a);
    }
    for r in &recs {
        assert!(
            !matches!(r.status, RecordStatus::InFlight { .. }),
            "record in flight after reconcile: {r:?}"
        );
        let rows = per_record.get(&r.id.0).map_or(&[][..], |v| &v[..]);
        assert_eq!(
            r.attempts as usize,
            rows.len(),
            "attempts of record {} match the ledger",
            r.id
        );
        for w in rows.windows(2) {
            assert!(
                w[1].started_at >= w[0].ended_at.unwrap(),
                "overlapping attempts: {w:?}"
            );
            if w[0].reconciled {
                assert!(
                    w[1].started_at
                        >= w[0].ended_at.unwrap() + Duration::seconds(MIN_RECONCILE_DELAY_S),
                    "redialed right after a lost call: {w:?}"
                );
            }
        }
    }
    let st = s.campaign_status("c").unwrap();
    assert_eq!(
        (st.placing, st.ringing, st.onqueue, st.in_flight),
        (0, 0, 0, 0)
    );
    let ended = st.success + st.failure + st.noanswer + st.abandoned + st.shortcall + st.unknown;
    assert_eq!(ended, ledger.len() as u64, "counters match the ledger");
    let unknown = ledger
        .iter()
        .filter(|a| a.outcome == Some(CallOutcome::Unknown))
        .count() as u64;
    assert_eq!(st.unknown, unknown);
}

#[test]
fn sigkill_during_import_and_dialing_loses_nothing_and_dials_nothing_twice() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("spool.db");
    let log = dir.path().join("originated.log");
    let (db_s, log_s) = (db.to_str().unwrap(), log.to_str().unwrap());

    // Calibrate how long the child works on one base after its start-up.
    let probe = dir.path().join("probe.txt");
    base_file(&probe, 900_000);
    let work_ms = time_import(dir.path(), &probe).max(4);

    // Import several bases, each killed at random points until it completes.
    let mut kills = 0;
    let mut committed_lines = Vec::new();
    let (mut good, mut bad) = (0, 0);
    let mut file = 0;
    // Kill delays are drawn up to 1.5 × the calibrated work, so most kills land between two
    // batch commits (drawing only in the first half hit the start every time). An upload that
    // finishes before its kill shortens the window, so a machine faster than the probe still
    // gets its kills.
    let mut window_ms = work_ms * 3 / 2;
    while kills < 15 && file < 20 {
        let base = dir.path().join(format!("base{file}.txt"));
        let (g, b) = base_file(&base, file * LINES);
        good += g;
        bad += b;
        let mut tries = 0;
        loop {
            if run_child(
                &["import", db_s, base.to_str().unwrap()],
                rng.gen_range(0..window_ms),
            ) {
                window_ms = (window_ms * 3 / 4).max(2);
                break;
            }
            kills += 1;
            tries += 1;
            let s = reopen(&db);
            check_import(&s);
            let progress = s.base(u64::from(file) + 1).unwrap();
            committed_lines.push(progress.as_ref().map_or(0, |b| b.lines));
            if progress.is_some_and(|b| b.state == "done") {
                break; // killed after the last commit: uploading it again would be a new upload
            }
            if tries > 30 {
                assert!(run_child(
                    &["import", db_s, base.to_str().unwrap()],
                    120_000
                ));
                break;
            }
        }
        file += 1;
    }
    let s = reopen(&db);
    check_import(&s);
    for id in 1..=u64::from(file) {
        let b = s.base(id).unwrap().unwrap();
        assert_eq!((b.state.as_str(), b.lines), ("done", u64::from(LINES)));
    }
    let sum = |f: &dyn Fn(&spool_store::BaseInfo) -> u64| {
        (1..=u64::from(file))
            .map(|id| f(&s.base(id).unwrap().unwrap()))
            .sum::<u64>()
    };
    assert_eq!((sum(&|b| b.imported), sum(&|b| b.rejected)), (good, bad));
    drop(s);

    // Dialing rounds until 40 kills have landed (and 50 in all). The kill delay adapts to the machine: a round
    // that finished before its kill halves the longest delay, a landed kill lets it grow back,
    // so a fast machine is not a reason for the kills to miss (and the count is not a timing).
    let mut dial_kills = 0;
    let mut longest_ms = 60;
    let mut round = 0u64;
    while (dial_kills < 40 || kills + dial_kills < 50) && round < 400 {
        round += 1;
        let done = run_child(
            &["dial", db_s, log_s, &round.to_string()],
            rng.gen_range(1..=longest_ms),
        );
        if done {
            longest_ms = (longest_ms / 2).max(2);
        } else {
            dial_kills += 1;
            longest_ms = (longest_ms + longest_ms / 4).min(60);
        }
        let s = reopen(&db);
        let originated: Vec<u64> = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect();
        check_dialing(&s, &originated, good);
    }
    let total = kills + dial_kills;
    eprintln!(
        "import work {work_ms} ms; import kills {kills} (committed lines after each: \
         {committed_lines:?}), dialing kills {dial_kills}"
    );
    assert!(total >= 50, "only {total} kills landed");
    let s = reopen(&db);
    assert!(s.attempts("c").unwrap().len() > 20, "dialing made progress");
    assert!(s.max_call_id().unwrap() > Some(CallId(20)));
}
