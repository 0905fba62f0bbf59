use super::common::*;
use dialer_core::{BlacklistEntry, BlacklistScope, Direction, PhoneNumber, RecordId};
use spool_store::{ImportError, ImportOptions, NewRecord, RejectReason, SpoolStore, StoreError};
use std::collections::BTreeMap;
use std::io::Read;

fn hostile_file() -> Vec<u8> {
    let mut f: Vec<u8> = Vec::new();
    f.extend_from_slice(b"\xEF\xBB\xBF");
    f.extend_from_slice(b"c;098000001;name=Ana:plan=gold;098000002;9999;1001\r\n"); // 1 good
    f.extend_from_slice(b"c;098000003;;;;\n"); // 2 good, 6 fields
    f.extend_from_slice(b"\r\n"); // 3 blank
    f.extend_from_slice(b"c;098000004;name=Jos\xe9;;\r\n"); // 4 Latin-1
    f.extend_from_slice(b"c;098000005;;;5;1001;extra\n"); // 5
    f.extend_from_slice(b"c;098000006;name=x\n"); // 6
    f.extend_from_slice(b"c;098000007;;;abc\n"); // 7
    f.extend_from_slice(b"c;098000008;;;1\n"); // 8
    f.extend_from_slice(b"c;12;;\n"); // 9
    f.extend_from_slice(b"c;098000010;;12345678901234567890\n"); // 10
    f.extend_from_slice(b"c;098000001;;\n"); // 11 dup of line 1 main
    f.extend_from_slice(b"c;098000012;;098000002\n"); // 12 dup of line 1 alternative
    f.extend_from_slice(b"c;098000013;;\n"); // 13 already in spool
    f.extend_from_slice(b"c;098000014;;\n"); // 14 blacklisted
    f.extend_from_slice(b"other;098000015;;\n"); // 15
    f.extend_from_slice(b"c;\"098000016\";\"note=a;b\";;7\n"); // 16 good, quoted
    f.extend_from_slice(b"c;098000017;\"unterminated;;\n"); // 17
    f.extend_from_slice(b"c;098000018;novalue;;\n"); // 18
    f.extend_from_slice(b"c;098000019;;;;agent with space\n"); // 19
    f.extend_from_slice(b"c;098000020;;098000020\n"); // 20
    f.extend_from_slice(b"   \n"); // 21 blank
    f.extend_from_slice(b"c;+598 98 000 022;k=v;;"); // 22 good, no final newline
    f
}

#[test]
fn hostile_file_imports_every_good_line_and_reports_every_bad_one() {
    let mut s = store();
    s.respool(&NewRecord::new("c", vec![phone(13)]), t0())
        .unwrap();
    s.blacklist_add(
        &BlacklistEntry {
            number: uy_e164(14),
            scope: BlacklistScope::All,
            expires_at: None,
            direction: Direction::Both,
        },
        t0(),
    )
    .unwrap();
    let opts = ImportOptions::new("c", "hostile.txt", t0());
    let sum = s
        .import_base(&hostile_file()[..], &opts, &mut |_| {})
        .unwrap();

    assert_eq!(
        (sum.lines, sum.blank_lines, sum.imported, sum.rejected),
        (22, 2, 4, 16)
    );
    let got: BTreeMap<u64, RejectReason> = s
        .rejects(sum.base_id)
        .unwrap()
        .into_iter()
        .map(|r| (r.line, r.reason))
        .collect();
    use RejectReason::*;
    let want: BTreeMap<u64, RejectReason> = [
        (4, InvalidUtf8),
        (5, TooManyFields),
        (6, TooFewFields),
        (7, BadPriority),
        (8, BadPriority),
        (9, InvalidNumber),
        (10, InvalidAlternative),
        (11, DuplicateInFile),
        (12, DuplicateInFile),
        (13, DuplicateInSpool),
        (14, Blacklisted),
        (15, CampaignMismatch),
        (17, UnterminatedQuote),
        (18, BadData),
        (19, BadAgent),
        (20, NumberRepeatedInLine),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let rejects = s.rejects(sum.base_id).unwrap();
    let latin1 = rejects.iter().find(|r| r.line == 4).unwrap();
    assert_eq!(latin1.raw, "c;098000004;name=Jos\u{FFFD};;");
    assert!(latin1.detail.contains("byte 21"), "{}", latin1.detail);
    let dup = rejects.iter().find(|r| r.line == 11).unwrap();
    assert!(dup.detail.contains("line 1"), "{}", dup.detail);

    let recs = s.records("c").unwrap();
    let mains: Vec<&str> = recs.iter().map(|r| r.numbers[0].number.e164()).collect();
    assert_eq!(
        mains,
        [
            uy_e164(13),
            uy_e164(1),
            uy_e164(3),
            uy_e164(16),
            uy_e164(22)
        ]
    );
    let first = &recs[1];
    assert_eq!(first.numbers[1].number.e164(), uy_e164(2));
    assert_eq!(
        first.data,
        [
            ("name".into(), "Ana".into()),
            ("plan".into(), "gold".into())
        ]
    );
    assert_eq!(first.priority, 9999);
    assert_eq!(first.owner_agent.as_ref().map(|a| a.as_str()), Some("1001"));
    assert_eq!(recs[3].data, [("note".into(), "a;b".into())]);
    assert_eq!(recs[3].priority, 7);
    assert_eq!(recs[4].numbers[0].number.dial_string(), "+59898000022");
    let base = s.base(sum.base_id).unwrap().unwrap();
    assert_eq!(
        (base.state.as_str(), base.imported, base.rejected),
        ("done", 4, 16)
    );
}

#[test]
fn unknown_file_time_zone_refuses_the_upload_before_reading_it() {
    let mut s = store();
    let mut opts = ImportOptions::new("c", "b.txt", t0());
    opts.time_zone = Some("Mars/Olympus".into());
    let err = s
        .import_base(&b"c;098000001;;\n"[..], &opts, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Import(ImportError::UnknownTimeZone(ref z)) if z == "Mars/Olympus"),
        "{err}"
    );
    assert!(s.base(1).unwrap().is_none());
    assert!(s.records("c").unwrap().is_empty());
}

#[test]
fn file_time_zone_is_stored_on_every_record_it_creates() {
    let mut s = store();
    let mut opts = ImportOptions::new("c", "b.txt", t0());
    opts.time_zone = Some("Europe/Madrid".into());
    s.import_base(&b"c;098000001;;\nc;098000002;;\n"[..], &opts, &mut |_| {})
        .unwrap();
    let zones: Vec<_> = s
        .records("c")
        .unwrap()
        .into_iter()
        .map(|r| r.time_zone)
        .collect();
    assert_eq!(
        zones,
        [
            Some("Europe/Madrid".to_string()),
            Some("Europe/Madrid".to_string())
        ]
    );
}

#[test]
fn national_numbers_use_the_upload_country() {
    let mut s = store();
    let mut opts = ImportOptions::new("c", "b.txt", t0());
    opts.country = Some("US".into());
    let sum = s
        .import_base(
            &b"c;(212) 555-0123;;\nc;098000001;;\n"[..],
            &opts,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((sum.imported, sum.rejected), (1, 1));
    assert_eq!(
        s.records("c").unwrap()[0].numbers[0].number.e164(),
        "+12125550123"
    );
}

#[test]
fn overlong_line_is_rejected_without_stopping_the_upload() {
    let mut s = store();
    let mut text = format!("c;098000001;note={};;\n", "x".repeat(100_000));
    text.push_str("c;098000002;;\n");
    let sum = import(&mut s, &text);
    assert_eq!((sum.imported, sum.rejected), (1, 1));
    let r = &s.rejects(sum.base_id).unwrap()[0];
    assert_eq!((r.line, r.reason), (1, RejectReason::LineTooLong));
    assert!(r.raw.len() < 2000);
}

/// A reader that fails (like a dying process or disk) after `fail_at` bytes.
struct FailAfter {
    data: Vec<u8>,
    pos: usize,
    fail_at: usize,
}

impl Read for FailAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.fail_at {
            return Err(std::io::Error::other("disk gone"));
        }
        let n = buf.len().min(self.fail_at - self.pos).min(7);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn numbered_file(n: u32) -> Vec<u8> {
    let mut t = String::new();
    for i in 1..=n {
        if i % 5 == 0 {
            t.push_str(&format!("c;bad{i};;\n"));
        } else {
            t.push_str(&format!("c;{};id={i};;\n", uy(i)));
        }
    }
    t.into_bytes()
}

#[test]
fn interrupted_upload_resumes_after_its_last_batch_without_duplicates() {
    let mut s = store();
    let file = numbered_file(40);
    let mut opts = ImportOptions::new("c", "big.txt", t0());
    opts.batch_lines = 6;
    let cut = file.len() / 2;
    let err = s
        .import_base(
            FailAfter {
                data: file.clone(),
                pos: 0,
                fail_at: cut,
            },
            &opts,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Import(ImportError::Io { .. })),
        "{err}"
    );
    let partial = s.records("c").unwrap().len();
    assert!(partial > 0 && partial < 32, "{partial}");
    assert_eq!(partial % 5, 0, "whole batches only (6 lines, 5 good each)");

    let sum = s.import_base(&file[..], &opts, &mut |_| {}).unwrap();
    assert_eq!(sum.resumed_at_line, Some(partial as u64 / 5 * 6 + 1));
    assert_eq!((sum.lines, sum.imported, sum.rejected), (40, 32, 8));
    let recs = s.records("c").unwrap();
    let ids: Vec<String> = recs.iter().map(|r| r.data[0].1.clone()).collect();
    let want: Vec<String> = (1..=40)
        .filter(|i| i % 5 != 0)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(ids, want);
    assert_eq!(s.rejects(sum.base_id).unwrap().len(), 8);
}

#[test]
fn resuming_with_a_different_file_under_the_same_name_is_refused() {
    let mut s = store();
    let file = numbered_file(40);
    let mut opts = ImportOptions::new("c", "big.txt", t0());
    opts.batch_lines = 6;
    let _ = s.import_base(
        FailAfter {
            data: file.clone(),
            pos: 0,
            fail_at: file.len() / 2,
        },
        &opts,
        &mut |_| {},
    );
    let mut other = file.clone();
    other[3] = b'7';
    let err = s.import_base(&other[..], &opts, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, StoreError::Import(ImportError::ResumeMismatch { .. })),
        "{err}"
    );
}

#[test]
fn reimporting_a_finished_file_reports_every_line_as_already_in_the_spool() {
    let mut s = store();
    import(&mut s, "c;098000001;;\nc;098000002;;\n");
    let sum = import(&mut s, "c;098000001;;\nc;098000002;;\n");
    assert_eq!((sum.imported, sum.rejected), (0, 2));
    assert_eq!(
        sum.rejected_by_reason.get(&RejectReason::DuplicateInSpool),
        Some(&2)
    );
}

#[test]
fn upload_into_an_unknown_campaign_is_an_error() {
    let mut s = SpoolStore::open_in_memory().unwrap();
    let err = s
        .import_base(
            &b"x;098000001;;\n"[..],
            &ImportOptions::new("x", "b", t0()),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownCampaign(ref c) if c == "x"));
}

/// A file whose numbers repeat within a batch, across batches and against the spool.
fn repeating_file(lines: u32) -> String {
    let mut t = String::new();
    for i in 0..lines {
        // 7 and 450 are coprime: mains repeat only from line 450 on (an earlier batch).
        let main = uy(1000 + (i * 7) % 450);
        let alt = match i % 10 {
            3 | 6 => uy(5000 + i),
            // The main number of a line shortly before: a duplicate in the same batch (or
            // the previous one), unless that line was refused.
            9 => uy(1000 + ((i - 4) * 7) % 450),
            _ => String::new(),
        };
        let prio = if i % 4 == 0 {
            String::new()
        } else {
            (2 + i % 5).to_string()
        };
        let agent = if i % 6 == 0 { "1001" } else { "" };
        t.push_str(&format!("c;{main};id={i}:n=x{i};{alt};{prio};{agent}\n"));
    }
    t
}

/// The `(campaign, number, record)` rows of `destination` and of `destination_recent`.
fn destination_rows(s: &SpoolStore) -> [Vec<(i64, i64, i64)>; 2] {
    ["destination", "destination_recent"].map(|table| {
        s.connection()
            .prepare(&format!(
                "SELECT campaign_id, number, record_id FROM {table} ORDER BY 1, 2, 3"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    })
}

/// Records and rejects do not depend on how lines are grouped into batches (the writer checks
/// a batch's numbers against the spool in one query and against the batch in memory), nor
/// on when the numbers an upload adds are merged from the small destination index into the
/// big one, and the duplicate reasons and details are those of checking line by line.
#[test]
fn batching_does_not_change_records_or_rejects() {
    let text = repeating_file(520);
    let mut results = Vec::new();
    let default_recent = spool_store::import::DEFAULT_RECENT_ROWS;
    for (batch_lines, recent_rows) in [
        (1, default_recent),
        (37, 50),
        (10_000, default_recent),
        (1, 10),
    ] {
        let mut s = store();
        // Already in the spool, from elsewhere: lines 0 and 1 (their mains) and their repeats.
        let mut spool_ids = Vec::new();
        for n in [1000, 1007] {
            spool_ids.push(
                s.respool(&NewRecord::new("c", vec![phone(n)]), t0())
                    .unwrap(),
            );
        }
        let mut opts = ImportOptions::new("c", "rep.txt", t0());
        opts.batch_lines = batch_lines;
        opts.recent_rows = recent_rows;
        let sum = s.import_base(text.as_bytes(), &opts, &mut |_| {}).unwrap();
        // Every number of every live record is in one of the destination indexes, once;
        // the small one was merged into the big one whenever it outgrew `recent_rows`.
        let [merged, recent] = destination_rows(&s);
        let mut all: Vec<_> = merged.iter().chain(&recent).copied().collect();
        all.sort_unstable();
        let mut want_all: Vec<_> = s
            .records("c")
            .unwrap()
            .iter()
            .flat_map(|r| {
                r.numbers.iter().map(|n| {
                    (
                        1,
                        n.number.e164()[1..].parse::<i64>().unwrap(),
                        r.id.0 as i64,
                    )
                })
            })
            .collect();
        want_all.sort_unstable();
        assert_eq!(all, want_all, "batches of {batch_lines}");
        assert!(
            recent.len() as u64 <= recent_rows.max(all.len() as u64 / 8),
            "{} rows left in destination_recent",
            recent.len()
        );
        if recent_rows < 100 {
            assert!(merged.len() > 300, "merged {}", merged.len());
        }
        let rejects: Vec<_> = s
            .rejects(sum.base_id)
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.reason, r.detail))
            .collect();
        let records = s.records("c").unwrap();

        // Line by line, by hand: e164 -> (record id, line in this file if from it).
        let mut known: std::collections::HashMap<String, (u64, Option<u64>)> = spool_ids
            .iter()
            .zip([1000, 1007])
            .map(|(id, n)| (uy_e164(n), (id.0, None)))
            .collect();
        let mut next_id = spool_ids.iter().map(|id| id.0).max().unwrap() + 1;
        let mut want_rejects = Vec::new();
        let mut want_lines = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i as u64 + 1;
            let fields: Vec<&str> = line.split(';').collect();
            let mut numbers = vec![PhoneNumber::parse(fields[1], "UY").unwrap()];
            if !fields[3].is_empty() {
                numbers.push(PhoneNumber::parse(fields[3], "UY").unwrap());
            }
            let dup = numbers.iter().find_map(|n| {
                known
                    .get(n.e164())
                    .map(|&(rid, l)| (n.e164().to_owned(), rid, l))
            });
            match dup {
                Some((e164, rid, Some(l))) => want_rejects.push((
                    line_no,
                    RejectReason::DuplicateInFile,
                    format!("{e164} already on line {l} (record {})", RecordId(rid)),
                )),
                Some((e164, rid, None)) => want_rejects.push((
                    line_no,
                    RejectReason::DuplicateInSpool,
                    format!("{e164} already in the spool (record {})", RecordId(rid)),
                )),
                None => {
                    for n in &numbers {
                        known.insert(n.e164().to_owned(), (next_id, Some(line_no)));
                    }
                    want_lines.push((next_id, line_no, numbers));
                    next_id += 1;
                }
            }
        }
        assert!(want_rejects.len() > 60, "{}", want_rejects.len());
        assert!(want_rejects
            .iter()
            .any(|r| r.1 == RejectReason::DuplicateInSpool));
        assert_eq!(rejects, want_rejects, "batches of {batch_lines}");
        let imported: Vec<_> = records.iter().filter(|r| r.base_id.is_some()).collect();
        assert_eq!(imported.len(), want_lines.len());
        for (rec, (id, line_no, numbers)) in imported.iter().zip(&want_lines) {
            assert_eq!(rec.id, RecordId(*id));
            let i = line_no - 1;
            assert_eq!(rec.data[0], ("id".to_string(), i.to_string()));
            let got: Vec<&PhoneNumber> = rec.numbers.iter().map(|n| &n.number).collect();
            assert_eq!(got, numbers.iter().collect::<Vec<_>>());
        }
        results.push((rejects, records));
    }
    for other in &results[1..] {
        assert_eq!(&results[0], other);
    }
}

/// The writer skips looking up numbers it knows cannot be in the spool (a campaign that had
/// none when the upload started); a record another connection adds between two batches must
/// still be found.
#[test]
fn number_added_by_another_connection_during_an_upload_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let mut s = SpoolStore::open(&path).unwrap();
    s.upsert_campaign(&campaign("c"), t0()).unwrap();
    let text: String = (0..40).map(|i| format!("c;{};;\n", uy(i))).collect();
    let mut opts = ImportOptions::new("c", "f.txt", t0());
    opts.batch_lines = 10;
    let mut other = SpoolStore::open(&path).unwrap();
    let mut batches = 0;
    let sum = s
        .import_base(text.as_bytes(), &opts, &mut |_| {
            batches += 1;
            if batches == 2 {
                // Line 36 is in the fourth batch.
                other
                    .respool(&NewRecord::new("c", vec![phone(35)]), t0())
                    .unwrap();
            }
        })
        .unwrap();
    assert_eq!((sum.imported, sum.rejected), (39, 1));
    let rejects = s.rejects(sum.base_id).unwrap();
    assert_eq!(
        (rejects[0].line, rejects[0].reason),
        (36, RejectReason::DuplicateInSpool)
    );
}

/// The connection settings an upload changes for its duration are restored, also when it
/// fails half-way.
#[test]
fn upload_restores_the_connection_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SpoolStore::open(dir.path().join("spool.db")).unwrap();
    s.upsert_campaign(&campaign("c"), t0()).unwrap();
    let settings = |s: &SpoolStore| -> (i64, i64, i64) {
        let c = s.connection();
        (
            c.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))
                .unwrap(),
            c.pragma_query_value(None, "temp_store", |r| r.get(0))
                .unwrap(),
            c.pragma_query_value(None, "foreign_keys", |r| r.get(0))
                .unwrap(),
        )
    };
    let before = settings(&s);
    assert_eq!(before.2, 1, "foreign keys enforced outside imports");
    let file = numbered_file(40);
    let mut opts = ImportOptions::new("c", "f.txt", t0());
    opts.batch_lines = 6;
    let failing = FailAfter {
        data: file.clone(),
        pos: 0,
        fail_at: file.len() / 2,
    };
    assert!(s.import_base(failing, &opts, &mut |_| {}).is_err());
    assert_eq!(settings(&s), before);
    s.import_base(&file[..], &opts, &mut |_| {}).unwrap();
    assert_eq!(settings(&s), before);
}

/// A reader that panics (a bug in a decoder, say) after `panic_at` bytes. The reader runs
/// in the import's parsing thread, so this injects a panic there.
struct PanicAfter {
    data: Vec<u8>,
    pos: usize,
    panic_at: usize,
}

impl Read for PanicAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.panic_at {
            panic!("injected panic in the reader");
        }
        let n = buf.len().min(self.panic_at - self.pos).min(11);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Issue 10 defect: a panic in the parsing thread marked the upload done (the writer's
/// end-of-upload update ran before the panic was re-raised), so it could not be resumed.
#[test]
fn panic_in_the_parsing_thread_leaves_the_upload_resumable() {
    let mut s = store();
    let file = numbered_file(40);
    let mut opts = ImportOptions::new("c", "big.txt", t0());
    opts.batch_lines = 6;
    let err = s
        .import_base(
            PanicAfter {
                data: file.clone(),
                pos: 0,
                panic_at: file.len() / 2,
            },
            &opts,
            &mut |_| {},
        )
        .unwrap_err();
    let StoreError::Import(ImportError::ParserPanicked {
        after_line,
        message,
    }) = &err
    else {
        panic!("expected ParserPanicked, got {err}");
    };
    assert!(message.contains("injected panic"), "{err}");
    assert_eq!(after_line % 6, 0, "whole batches committed: {err}");
    let base = s
        .unfinished_base("c", "big.txt")
        .unwrap()
        .expect("resumable");
    assert_eq!(base.state, "importing");
    assert_eq!(base.lines, *after_line);

    let sum = s.import_base(&file[..], &opts, &mut |_| {}).unwrap();
    assert_eq!(sum.resumed_at_line, Some(after_line + 1));
    assert_eq!((sum.lines, sum.imported, sum.rejected), (40, 32, 8));
    assert_eq!(s.records("c").unwrap().len(), 32);
    assert_eq!(s.base(sum.base_id).unwrap().unwrap().state, "done");
}

/// The writer side: a panic on the importing thread (here in the progress callback, after a
/// commit) unwinds out of `import_base` with the uncommitted batch rolled back and the
/// upload resumable.
#[test]
fn panic_in_the_writing_thread_rolls_back_and_leaves_the_upload_resumable() {
    let mut s = store();
    let file = numbered_file(40);
    let mut opts = ImportOptions::new("c", "big.txt", t0());
    opts.batch_lines = 6;
    let mut batches = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        s.import_base(&file[..], &opts, &mut |_| {
            batches += 1;
            if batches == 3 {
                panic!("injected panic in the writer");
            }
        })
    }));
    assert!(caught.is_err(), "the panic reaches the caller");
    let base = s
        .unfinished_base("c", "big.txt")
        .unwrap()
        .expect("resumable");
    assert_eq!(base.lines, 18, "three batches of six lines committed");
    let sum = s.import_base(&file[..], &opts, &mut |_| {}).unwrap();
    assert_eq!(sum.resumed_at_line, Some(19));
    assert_eq!((sum.lines, sum.imported, sum.rejected), (40, 32, 8));
}

/// Transactions are sized by time and bytes (chunks of 1,024 lines): a generous time bound
/// writes the whole file in one transaction, none at all commits every chunk, and so does a
/// small byte bound. The records are the same whichever way.
#[test]
fn transactions_are_sized_by_time_and_bytes_not_by_a_line_count() {
    let text: String = (0..5000u32)
        .map(|i| format!("c;{};id={i};;\n", uy(i)))
        .collect();
    let commits = |opts: &ImportOptions| {
        let mut s = store();
        let mut n = 0;
        let sum = s
            .import_base(text.as_bytes(), opts, &mut |_| n += 1)
            .unwrap();
        assert_eq!((sum.lines, sum.imported), (5000, 5000));
        let ids: Vec<String> = s
            .records("c")
            .unwrap()
            .iter()
            .map(|r| r.data[0].1.clone())
            .collect();
        (n, ids)
    };
    let mut opts = ImportOptions::new("c", "f.txt", t0());
    opts.commit_after = std::time::Duration::from_secs(3600);
    let (one, ids) = commits(&opts);
    assert_eq!(one, 1, "one transaction for the whole file");
    opts.commit_after = std::time::Duration::ZERO;
    let (per_chunk, ids_per_chunk) = commits(&opts);
    assert_eq!(per_chunk, 5, "4 × 1,024 + 904 lines");
    opts.commit_after = std::time::Duration::from_secs(3600);
    opts.commit_bytes = 1;
    let (per_chunk_bytes, _) = commits(&opts);
    assert_eq!(per_chunk_bytes, 5);
    assert_eq!(ids, ids_per_chunk);
}

/// Into a spool already holding another upload of the campaign, only the lines whose numbers
/// are new are imported, however the upload is cut into transactions: the campaign's numbers
/// are read once at the start and the upload's own are added as it goes.
#[test]
fn upload_into_a_prefilled_spool_rejects_exactly_the_numbers_already_there() {
    let first: String = (0..3000u32)
        .map(|i| format!("c;{};id={i};;\n", uy(i)))
        .collect();
    // Numbers 2000..5000 in a scrambled order (7919 is prime to 3000); the last 100 lines
    // repeat the first 100.
    let mut order: Vec<u32> = (2000..5000).map(|i| 2000 + (i * 7919) % 3000).collect();
    order.extend(order[..100].to_vec());
    let second: String = order
        .iter()
        .map(|i| format!("c;{};id={i};;\n", uy(*i)))
        .collect();
    for commit_after in [
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(60),
    ] {
        let mut s = store();
        s.import_base(
            first.as_bytes(),
            &ImportOptions::new("c", "a.txt", t0()),
            &mut |_| {},
        )
        .unwrap();
        let mut opts = ImportOptions::new("c", "b.txt", t0());
        opts.commit_after = commit_after;
        let sum = s
            .import_base(second.as_bytes(), &opts, &mut |_| {})
            .unwrap();
        assert_eq!(sum.imported, 2000, "{commit_after:?}");
        // A repeated line whose number came with the first upload is a duplicate in the
        // spool; one whose number is new, a duplicate in the file.
        let repeats_of_new = order[..100].iter().filter(|&&i| i >= 3000).count() as u64;
        assert!(repeats_of_new > 0 && repeats_of_new < 100);
        assert_eq!(
            sum.rejected_by_reason,
            BTreeMap::from([
                (RejectReason::DuplicateInSpool, 1100 - repeats_of_new),
                (RejectReason::DuplicateInFile, repeats_of_new)
            ]),
            "{commit_after:?}"
        );
        let rejects = s.rejects(sum.base_id).unwrap();
        assert!(rejects
            .iter()
            .filter(|r| r.reason == RejectReason::DuplicateInSpool)
            .all(|r| order[r.line as usize - 1] < 3000));
        assert_eq!(s.campaign_status("c").unwrap().total, 5000);
    }
}

/// Numbers in ascending order fall on neighbouring pages of the big destination index and go
/// there directly; shuffled ones wait in the small one (`destination_recent`) until it is
/// merged. Either way each number is in exactly one of the two, and found as a duplicate.
#[test]
fn sorted_numbers_go_to_the_big_destination_index_and_shuffled_ones_to_the_small_one() {
    let ascending: String = (0..3000).map(|i| format!("c;{};;\n", uy(i))).collect();
    // A fixed permutation of 3000..6000 (1103 is prime to 3000), up from one line to the
    // next in fewer than 2 cases in 3.
    let shuffled: String = (0..3000)
        .map(|i| format!("c;{};;\n", uy(3000 + (i * 1103 % 3000))))
        .collect();
    let mut s = store();
    import(&mut s, &ascending);
    let [merged, recent] = destination_rows(&s);
    assert_eq!((merged.len(), recent.len()), (3000, 0));
    let sum = s
        .import_base(
            shuffled.as_bytes(),
            &ImportOptions::new("c", "shuffled.txt", t0()),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(sum.imported, 3000);
    let [merged, recent] = destination_rows(&s);
    assert_eq!((merged.len(), recent.len()), (3000, 3000));
    // Both kinds are duplicates of what is in the spool.
    let again: String = [0, 3001, 2999, 5999]
        .iter()
        .map(|i| format!("c;{};;\n", uy(*i)))
        .collect();
    let sum = s
        .import_base(
            again.as_bytes(),
            &ImportOptions::new("c", "again.txt", t0()),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(
        sum.rejected_by_reason.get(&RejectReason::DuplicateInSpool),
        Some(&4)
    );
    // And a respool of either kind is refused.
    for i in [1, 3002] {
        assert!(matches!(
            s.respool(&NewRecord::new("c", vec![phone(i)]), t0()),
            Err(StoreError::DuplicateDestination { .. })
        ));
    }
}

/// The import's own thread checkpoints the WAL (the import's connection never does, and
/// nothing else runs here): with `wal_restart_bytes` at 0 the writer lets the WAL start over
/// before (nearly) every transaction, so the WAL file stays a few transactions long, where
/// without checkpoints it would hold every page the upload wrote (more than the database
/// file: each page at least once, the small destination index's at every commit).
#[test]
fn the_wal_an_upload_writes_starts_over_past_its_bound() {
    let lines = 20_000u32;
    let text: String = (0..lines)
        .map(|i| format!("c;{};id={i}:name=Customer {i};;\n", uy((i * 7919) % lines)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    let mut s = SpoolStore::open(&path).unwrap();
    s.upsert_campaign(&campaign("c"), t0()).unwrap();
    let mut opts = ImportOptions::new("c", "f.txt", t0());
    // A transaction per chunk of 1,024 lines: twenty of them.
    opts.commit_after = std::time::Duration::ZERO;
    opts.wal_restart_bytes = 0;
    let mut commits = 0;
    let sum = s
        .import_base(text.as_bytes(), &opts, &mut |_| commits += 1)
        .unwrap();
    assert_eq!((sum.imported, commits), (u64::from(lines), 20));
    let size = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
    let (wal, db) = (size("spool.db-wal"), size("spool.db"));
    assert!(wal < db, "a WAL of {wal} bytes next to a database of {db}");
}
