//! Crash-safety at scale: SIGKILLs a real process at random points of base imports, dialing
//! bookkeeping and operator operations on one SQLite spool, and audits the spool after every
//! restart.
//!
//! ```text
//! spool-crash run [--kills N] [--seed S] [--dir D]
//! ```
//!
//! runs rounds until `N` kills (default 1,000) have landed and prints, as sentences, what it
//! found: records lost, calls dialed twice, counter mismatches and other broken invariants.
//! Every count must be 0; the exit status is non-zero otherwise. The seed is printed so a run
//! can be replayed (`--seed`). The workspace's test suite runs it with 50 kills.
//!
//! The same binary is the child it kills (`spool-crash child import|dial|ops …`): the child
//! does store work in a loop and reports what it committed on an append-only log, one
//! `write(2)` per line, so a kill never leaves half a line.
//!
//! - `child import DB BASE`: imports BASE into campaign `c` in small batches (resuming an
//!   interrupted upload of the same file).
//! - `child dial DB LOG SEED`: plays a driver: takes the first ready record, commits
//!   `AttemptStarted`, appends `call N` to LOG (the "Originate"), then commits `AttemptEnded`
//!   with a pseudo-random outcome and the engine's record snapshot. Time is simulated from the
//!   ledger, so restarts continue the same clock.
//! - `child ops DB LOG SEED`: plays an operator: blacklist additions and removals, contact
//!   removals and respools, logging each one's intent before and its completion after.

use chrono::{DateTime, Duration, TimeZone, Utc};
use dialer_core::rules::next_step::{begin_attempt, finish_attempt};
use dialer_core::{
    BlacklistEntry, BlacklistScope, CallId, CallOutcome, CallingHours, Campaign, Direction,
    FailureClass, FinishReason, PhoneNumber, RecordStatus, StoreUpdate,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use spool_store::{ImportOptions, NewRecord, SpoolStore, MIN_RECONCILE_DELAY_S};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Lines in each generated base file.
const LINES: u32 = 2000;

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

/// The i-th valid Uruguayan mobile number in national form.
fn uy(i: u32) -> String {
    format!("098{i:06}")
}

/// Opens the spool the way the dialer does at start-up: reconciling calls left open.
fn open(db: &Path) -> SpoolStore {
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

fn append(log: &mut std::fs::File, line: &str) {
    log.write_all(format!("{line}\n").as_bytes()).unwrap();
}

fn open_log(path: &str) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn child(args: &[String]) -> ExitCode {
    match args.first().map(String::as_str) {
        Some("import") => {
            let (db, base) = (Path::new(&args[1]), &args[2]);
            let mut store = open(db);
            let now = Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap();
            if !store.has_campaign("c").unwrap() {
                store.upsert_campaign(&campaign(), now).unwrap();
            }
            let name = Path::new(base)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut opts = ImportOptions::new("c", name, now);
            opts.batch_lines = 40;
            let file = std::fs::File::open(base).unwrap();
            // Load the phone metadata before saying ready, so kills land in the import.
            let _ = PhoneNumber::parse("098344484", "UY");
            ready();
            let sum = store.import_base(file, &opts, &mut |_| {}).unwrap();
            println!("imported {} rejected {}", sum.imported, sum.rejected);
        }
        Some("dial") => {
            let (db, seed) = (Path::new(&args[1]), args[3].parse::<u64>().unwrap());
            let mut store = open(db);
            let camp = store.campaign("c").unwrap();
            let mut log = open_log(&args[2]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            ready();
            loop {
                let now = sim_now(&store);
                let Some(rec) = store.ready_set("c", now, 1).unwrap().pop() else {
                    println!("idle");
                    break;
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
                append(&mut log, &format!("call {}", call.0));
                let outcome = match rng.gen_range(0..5) {
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
                store
                    .apply(&StoreUpdate::Record(std::sync::Arc::new(snap)))
                    .unwrap();
            }
        }
        Some("ops") => {
            let (db, seed) = (Path::new(&args[1]), args[3].parse::<u64>().unwrap());
            let mut store = open(db);
            let mut log = open_log(&args[2]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let numbers: Vec<String> = store
                .records("c")
                .unwrap()
                .iter()
                .map(|r| r.numbers[0].number.e164().to_owned())
                .collect();
            ready();
            if numbers.is_empty() {
                println!("idle");
                return ExitCode::SUCCESS;
            }
            for _ in 0..200 {
                let now = sim_now(&store);
                let number = &numbers[rng.gen_range(0..numbers.len())];
                match rng.gen_range(0..4) {
                    0 => {
                        append(&mut log, &format!("bl+? {number}"));
                        let entry = BlacklistEntry {
                            number: number.clone(),
                            scope: BlacklistScope::All,
                            expires_at: None,
                            direction: Direction::Outbound,
                        };
                        store.blacklist_add(&entry, now).unwrap();
                        append(&mut log, &format!("bl+ {number}"));
                    }
                    1 => {
                        append(&mut log, &format!("bl-? {number}"));
                        store
                            .blacklist_remove(number, &BlacklistScope::All)
                            .unwrap();
                        append(&mut log, &format!("bl- {number}"));
                    }
                    2 => {
                        append(&mut log, &format!("rm? {number}"));
                        match store.remove_contact("c", number) {
                            Ok(ids) => {
                                for id in ids {
                                    append(&mut log, &format!("rm {} {number}", id.0));
                                }
                            }
                            Err(spool_store::StoreError::RecordInFlight(_)) => {}
                            Err(e) => panic!("remove contact: {e}"),
                        }
                    }
                    _ => {
                        append(&mut log, &format!("rp? {number}"));
                        let phone = PhoneNumber::parse(number, "UY").unwrap();
                        match store.respool(&NewRecord::new("c", vec![phone]), now) {
                            Ok(id) => append(&mut log, &format!("rp {} {number}", id.0)),
                            Err(spool_store::StoreError::DuplicateDestination { .. }) => {}
                            Err(e) => panic!("respool: {e}"),
                        }
                    }
                }
            }
            println!("done");
        }
        _ => {
            eprintln!(
                "usage: spool-crash child import DB BASE | dial DB LOG SEED | ops DB LOG SEED"
            );
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// What the audits found, by kind. Every count must stay 0.
#[derive(Default)]
struct Findings {
    /// Records that vanished, or that came back after an operator removed them.
    records_lost: u64,
    /// Calls originated twice, or originated without their ledger row.
    dialed_twice: u64,
    /// Status counters or per-record attempt counts that disagree with the ledger.
    counter_mismatches: u64,
    /// Everything else: half records, upload progress, open attempts, lost operations.
    other: u64,
    /// The first few findings, as sentences.
    first: Vec<String>,
}

impl Findings {
    fn add(&mut self, kind: fn(&mut Findings) -> &mut u64, what: String) {
        *kind(self) += 1;
        if self.first.len() < 20 {
            self.first.push(what);
        }
    }
    fn total(&self) -> u64 {
        self.records_lost + self.dialed_twice + self.counter_mismatches + self.other
    }
}

fn lost(f: &mut Findings) -> &mut u64 {
    &mut f.records_lost
}
fn twice(f: &mut Findings) -> &mut u64 {
    &mut f.dialed_twice
}
fn mismatch(f: &mut Findings) -> &mut u64 {
    &mut f.counter_mismatches
}
fn other(f: &mut Findings) -> &mut u64 {
    &mut f.other
}

/// What the children said they committed, read back from their logs.
#[derive(Default)]
struct Journal {
    originated: Vec<u64>,
    /// Per number: the operator's operations in order, `(op, completed)`.
    ops: HashMap<String, Vec<(String, bool)>>,
    removed: HashSet<u64>,
    respooled: u64,
    respool_intents: u64,
}

fn read_journal(log: &Path) -> Journal {
    let mut j = Journal::default();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["call", n] => j.originated.push(n.parse().unwrap()),
            [op, number] if op.ends_with('?') => {
                if *op == "rp?" {
                    j.respool_intents += 1;
                }
                j.ops
                    .entry((*number).to_owned())
                    .or_default()
                    .push((op.trim_end_matches('?').to_owned(), false));
            }
            ["bl+" | "bl-", number] => {
                if let Some(last) = j.ops.get_mut(*number).and_then(|v| v.last_mut()) {
                    last.1 = true;
                }
            }
            ["rm", id, number] | ["rp", id, number] => {
                if parts[0] == "rm" {
                    j.removed.insert(id.parse().unwrap());
                } else {
                    j.respooled += 1;
                }
                if let Some(last) = j.ops.get_mut(*number).and_then(|v| v.last_mut()) {
                    last.1 = true;
                }
            }
            _ => {}
        }
    }
    j
}

/// Audits an import after a crash: no record imported twice or in half, upload progress equal
/// to what was committed.
fn audit_import(s: &SpoolStore, f: &mut Findings) {
    if !s.has_campaign("c").unwrap() {
        return;
    }
    let recs = s.records("c").unwrap();
    let mut seen = HashSet::new();
    for r in &recs {
        if r.base_id.is_some() && !seen.insert(r.numbers[0].number.e164().to_owned()) {
            f.add(
                other,
                format!("number {} imported twice", r.numbers[0].number.e164()),
            );
        }
        if r.numbers.len() != 1 {
            f.add(
                other,
                format!("record {} has {} numbers", r.id, r.numbers.len()),
            );
        }
    }
    let mut id = 1;
    while let Some(b) = s.base(id).unwrap() {
        let mine = recs.iter().filter(|r| r.base_id == Some(id)).count() as u64;
        if b.imported != mine || b.rejected != s.rejects(id).unwrap().len() as u64 {
            f.add(
                mismatch,
                format!(
                    "upload {id} reports {} imported, {mine} are in the spool",
                    b.imported
                ),
            );
        }
        if b.imported + b.rejected + b.blank_lines != b.lines {
            f.add(mismatch, format!("upload {id}'s line counts do not add up"));
        }
        id += 1;
    }
}

/// Audits dialing bookkeeping and operations after a crash, once reconciled.
fn audit_spool(s: &SpoolStore, log: &Path, imported: u64, f: &mut Findings) {
    let j = read_journal(log);
    let recs = s.records("c").unwrap();
    let expected = imported + j.respooled;
    let possible = imported + j.respool_intents;
    let n = recs.len() as u64;
    if n < expected || n > possible {
        f.add(
            lost,
            format!("the spool holds {n} records, {expected}..={possible} expected"),
        );
    }
    let ledger = s.attempts("c").unwrap();
    let in_ledger: HashSet<u64> = ledger.iter().map(|a| a.call.0).collect();
    let mut once = HashSet::new();
    for c in &j.originated {
        if !once.insert(*c) {
            f.add(twice, format!("call {c} was originated twice"));
        }
        if !in_ledger.contains(c) {
            f.add(
                twice,
                format!("call {c} was originated without its ledger row"),
            );
        }
    }
    let mut per_record: BTreeMap<u64, Vec<&spool_store::AttemptRow>> = BTreeMap::new();
    for a in &ledger {
        if a.outcome.is_none() {
            f.add(
                other,
                format!("call {} is still open after reconciling", a.call.0),
            );
        }
        per_record.entry(a.record.0).or_default().push(a);
    }
    for r in &recs {
        if matches!(r.status, RecordStatus::InFlight { .. }) {
            f.add(
                other,
                format!("record {} is in flight after reconciling", r.id),
            );
        }
        if j.removed.contains(&r.id.0)
            && !matches!(
                r.status,
                RecordStatus::Finished {
                    reason: FinishReason::Removed
                }
            )
        {
            f.add(lost, format!("record {} came back after its removal", r.id));
        }
        let rows = per_record.get(&r.id.0).map_or(&[][..], |v| &v[..]);
        if r.attempts as usize != rows.len() {
            f.add(
                mismatch,
                format!(
                    "record {} counts {} attempts, the ledger {}",
                    r.id,
                    r.attempts,
                    rows.len()
                ),
            );
        }
        for w in rows.windows(2) {
            let (Some(end), start) = (w[0].ended_at, w[1].started_at) else {
                continue;
            };
            if start < end {
                f.add(
                    twice,
                    format!("calls {} and {} overlap", w[0].call.0, w[1].call.0),
                );
            } else if w[0].reconciled && start < end + Duration::seconds(MIN_RECONCILE_DELAY_S) {
                f.add(
                    twice,
                    format!(
                        "call {} redialed right after lost call {}",
                        w[1].call.0, w[0].call.0
                    ),
                );
            }
        }
    }
    let st = s.campaign_status("c").unwrap();
    if (st.placing, st.ringing, st.onqueue, st.in_flight) != (0, 0, 0, 0) {
        f.add(
            mismatch,
            "calls in progress counted after reconciling".into(),
        );
    }
    let ended = st.success + st.failure + st.noanswer + st.abandoned + st.shortcall + st.unknown;
    if ended != ledger.len() as u64 {
        f.add(
            mismatch,
            format!(
                "the counters end {ended} calls, the ledger holds {}",
                ledger.len()
            ),
        );
    }
    // The blacklist holds what the last completed operation on each number left.
    let now = sim_now(s);
    for (number, ops) in &j.ops {
        let Some(last) = ops.iter().rev().find(|(op, _)| op.starts_with("bl")) else {
            continue;
        };
        if !last.1 {
            continue; // interrupted: either state is right
        }
        let listed = s.is_blacklisted(number, "c", now).unwrap();
        if listed != (last.0 == "bl+") {
            f.add(
                other,
                format!(
                    "{number} should {}be blacklisted",
                    if listed { "not " } else { "" }
                ),
            );
        }
    }
}

/// Writes a base file of `LINES` lines (some malformed, some repeated numbers); returns the
/// lines that import and the lines rejected.
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

/// Runs a child and SIGKILLs it `after_us` microseconds after it reports that its start-up
/// is over, unless it finishes first: then the microseconds it worked.
fn run_child(me: &Path, args: &[&str], after_us: u64) -> Result<Option<u64>, String> {
    let mut child = Command::new(me)
        .arg("child")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the child did not start ({args:?})"));
    }
    let started = std::time::Instant::now();
    let deadline = started + std::time::Duration::from_micros(after_us);
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return if status.success() {
                Ok(Some(started.elapsed().as_micros() as u64))
            } else {
                Err(format!("the child failed with {status} ({args:?})"))
            };
        }
        if std::time::Instant::now() >= deadline {
            child.kill().map_err(|e| e.to_string())?; // SIGKILL
            child.wait().map_err(|e| e.to_string())?;
            return Ok(None);
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

/// Where kills land, per kind of work: uniformly up to 1.5 × the time the last finished
/// round of that kind worked, so about a third of the rounds finish and the kills spread over
/// the whole work whatever the machine's speed (the count is not a timing).
struct Window {
    longest_us: u64,
}

impl Window {
    fn draw(&self, rng: &mut ChaCha8Rng) -> u64 {
        rng.gen_range(1..=self.longest_us)
    }
    fn finished(&mut self, worked_us: u64) {
        self.longest_us = (worked_us * 3 / 2).max(1_000);
    }
}

struct Args {
    kills: u64,
    seed: u64,
    dir: Option<PathBuf>,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let mut a = Args {
        kills: 1000,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        dir: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--kills" => {
                a.kills = value("--kills")?
                    .parse()
                    .map_err(|_| "--kills takes a whole number".to_owned())?
            }
            "--seed" => {
                a.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed takes a whole number".to_owned())?
            }
            "--dir" => a.dir = Some(PathBuf::from(value("--dir")?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(a)
}

fn run(args: Args) -> Result<Findings, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            d.clone()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("spool-crash-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
            tmp.clone()
        }
    };
    let db = dir.join("spool.db");
    let log = dir.join("journal.log");
    let _ = std::fs::remove_file(&db);
    let _ = std::fs::remove_file(&log);
    let (db_s, log_s) = (db.to_str().unwrap(), log.to_str().unwrap());
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut f = Findings::default();
    // Generous first guesses; the first finished round of each kind calibrates it.
    let (mut import_w, mut dial_w, mut ops_w) = (
        Window {
            longest_us: 3_000_000,
        },
        Window {
            longest_us: 3_000_000,
        },
        Window {
            longest_us: 1_000_000,
        },
    );
    let (mut kills, mut by_kind) = (0u64, [0u64; 3]);
    let (mut imported, mut file, mut pending_base) = (0u64, 0u32, None::<(PathBuf, u64)>);
    let mut rounds = 0u64;
    // Past the kills asked for, rounds go on only for a kind of work no kill has landed in
    // yet, and go to that kind: every kind is covered whatever the draws.
    while kills < args.kills || by_kind.contains(&0) {
        rounds += 1;
        if rounds > args.kills * 20 + 100 {
            return Err(format!(
                "{kills} of {} kills landed in {rounds} rounds ({} in imports, {} in dialing, \
                 {} in operations): every kind needs at least one",
                args.kills, by_kind[0], by_kind[1], by_kind[2]
            ));
        }
        // An upload in progress is resumed first; otherwise a new base now and then (the
        // dialing needs records), else dialing or operations.
        let missing = if kills >= args.kills {
            by_kind.iter().position(|&n| n == 0)
        } else {
            None
        };
        let kind = if pending_base.is_some() {
            0
        } else if imported == 0
            || missing == Some(0)
            || (missing.is_none() && rng.gen_ratio(1, 5) && file < 60)
        {
            let base = dir.join(format!("base{file}.txt"));
            let (good, _) = base_file(&base, file * LINES);
            file += 1;
            pending_base = Some((base, good));
            0
        } else if let Some(k) = missing {
            k
        } else if rng.gen_ratio(2, 3) {
            1
        } else {
            2
        };
        let round_seed = rng.gen::<u64>().to_string();
        let (window, done) = match kind {
            0 => {
                let (base, _) = pending_base.as_ref().unwrap();
                let base_s = base.to_str().unwrap().to_owned();
                let d = run_child(&me, &["import", db_s, &base_s], import_w.draw(&mut rng))?;
                (&mut import_w, d)
            }
            1 => {
                let d = run_child(
                    &me,
                    &["dial", db_s, log_s, &round_seed],
                    dial_w.draw(&mut rng),
                )?;
                (&mut dial_w, d)
            }
            _ => {
                let d = run_child(
                    &me,
                    &["ops", db_s, log_s, &round_seed],
                    ops_w.draw(&mut rng),
                )?;
                (&mut ops_w, d)
            }
        };
        if let Some(worked_us) = done {
            window.finished(worked_us);
        } else {
            kills += 1;
            by_kind[kind] += 1;
        }
        let s = open(&db);
        if kind == 0 {
            audit_import(&s, &mut f);
            let id = u64::from(file);
            if let Some(b) = s.base(id).unwrap().filter(|b| b.state == "done") {
                let (_, good) = pending_base.take().unwrap();
                if b.imported != good || b.lines != u64::from(LINES) {
                    f.add(
                        mismatch,
                        format!(
                            "upload {id} imported {} of {} lines, the file has {good} good lines \
                             of {LINES}",
                            b.imported, b.lines
                        ),
                    );
                }
                imported += good;
            }
        }
        if pending_base.is_none() {
            audit_spool(&s, &log, imported, &mut f);
        }
        if f.total() > 0 {
            break;
        }
        if kills > 0 && kills % 100 == 0 && done.is_none() {
            eprintln!("{kills} kills, {} records, no finding so far", imported);
        }
    }
    let s = open(&db);
    let calls = s.max_call_id().unwrap().map_or(0, |c| c.0);
    println!(
        "seed {}: {kills} kills landed in {rounds} rounds ({} in imports, {} in dialing, {} in \
         operations); {file} uploads, {imported} records imported, {calls} calls placed.",
        args.seed, by_kind[0], by_kind[1], by_kind[2]
    );
    Ok(f)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some("run") => {
            let parsed = match parse_args(&args[1..]) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("spool-crash: {e}.");
                    return ExitCode::from(2);
                }
            };
            let seed = parsed.seed;
            println!("spool-crash seed {seed} (replay with --seed {seed})");
            match run(parsed) {
                Ok(f) => {
                    println!(
                        "records lost: {}; calls dialed twice: {}; counter mismatches: {}; other \
                         broken invariants: {}.",
                        f.records_lost, f.dialed_twice, f.counter_mismatches, f.other
                    );
                    for what in &f.first {
                        println!("  {what}");
                    }
                    if f.total() == 0 {
                        ExitCode::SUCCESS
                    } else {
                        println!("FAILED with seed {seed}.");
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("spool-crash: {e} (seed {seed}).");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: spool-crash run [--kills N] [--seed S] [--dir D]");
            ExitCode::from(2)
        }
    }
}
