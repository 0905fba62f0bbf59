//! Uploads of base files (uContact format), streamed, validated line by line, committed in
//! batches, resumable after a crash.
//!
//! # Format
//!
//! One record a line: `campaign;number;k1=v1:k2=v2;alt1:alt2;priority;agentphone`, the last
//! two fields optional (4 to 6 fields). A field may be wrapped in double quotes to hold `;`
//! (`"a;b"`, a doubled `""` is a quote); a record never spans lines.
//!
//! # Policies
//!
//! - **Encoding**: UTF-8, with or without a byte-order mark, LF or CRLF line ends. A line that
//!   is not valid UTF-8 is *rejected* (reason `invalid_utf8`, with the byte column), never
//!   transcoded: guessing a legacy encoding could silently change names in the data. Its raw
//!   text is kept with the bad bytes shown as U+FFFD.
//! - **Blank lines** (empty or only spaces) are skipped and counted, not rejected.
//! - **Numbers** are validated and normalized with `dialer_core::PhoneNumber::parse`, national
//!   forms read with the upload's country (default: the campaign's `default_country`).
//!   Identical number strings are validated once per upload (a bounded cache).
//! - **Duplicates**: a line with a number already on a live record of the campaign is
//!   rejected: `duplicate_in_file` when that record came from an earlier line of the same
//!   upload, `duplicate_in_spool` otherwise. A number twice in one line is
//!   `number_repeated_in_line`.
//! - **Blacklist**: a line with a number the campaign may not dial now is `blacklisted`.
//! - **Priority**: empty = 2; otherwise an integer of at least 2 (1 is reserved for schedules).
//! - **Time zone**: the upload's IANA zone (if given) is stored on every record it creates; an
//!   unknown zone refuses the whole upload before anything is read.
//! - **Limits**: a line longer than 64 KiB is rejected (`line_too_long`) without being held.
//!
//! # Crash safety
//!
//! Lines are committed in batches: a batch's records, its rejects and the upload's progress
//! (bytes and lines consumed, plus a hash of the consumed prefix) in one transaction. A crash
//! loses at most the batch in progress, which rolls back whole. Importing the same file name
//! into the same campaign again resumes after the last committed batch, after checking that
//! the file starts with the same bytes. The upload is marked done only once the end of the
//! file is written: an error or a panic in either thread leaves it resumable
//! ([`ImportError::ParserPanicked`] for the parsing thread).
//!
//! # Sharing the database with a running dialer
//!
//! A batch is sized by time, not lines: it commits once it has been open
//! [`ImportOptions::commit_after`] (250 ms by default) or holds
//! [`ImportOptions::commit_bytes`] of the file, whichever comes first, and the writer then
//! leaves the lock free for 2 ms. Every `SpoolStore` connection waiting for the lock tries
//! again every millisecond (`schema::wait_for_writers`), so a dialer's ledger write waits at
//! most about one batch: **`commit_after`, plus the end of the 1,024-line chunk in progress,
//! plus the batch's commit** (writing its pages to the WAL). Measured with the `store` bench
//! (`SPOOL_BENCH_ONLY=ledger`: an attempt start every 10 ms on a second connection during a
//! 1 M-line shuffled import, 2 shared cores, load average about 3): p50 44 ms, p99 313 ms,
//! max 319 ms with the default 250 ms, against p99 0.5–5 ms without an import (at load 8–9:
//! p99 320–344 ms, and once a max of 887 ms: a waiting connection whose thread wakes too
//! late for the 2 ms gap waits for the next transaction too). The import that still checkpointed on its writing thread, measured in
//! the same minutes: p50 23 ms, p99 270 ms, max 271 ms; it left the lock free for the length
//! of each checkpoint, where the writer now begins its next transaction after the 2 ms gap,
//! so a ledger write more often waits for one. A smaller `commit_after`
//! lowers the bound and slows unsorted imports (more commits). A thread of the import's own,
//! on a second connection, checkpoints the WAL after each of the import's commits
//! (`PASSIVE`: it takes no lock a writer needs), so neither the import's writing thread nor a
//! dialer's commit copies the import's pages into the database file; once the WAL holds
//! more than 64 MiB the writer waits, before its next transaction, for the pages of its last
//! commit to be copied, so the WAL starts over (it stays under about 64 MiB plus a
//! transaction or two) and the upload ends with the WAL copied whole. Between two transactions the
//! writer may merge the small destination index into the big one (below): a slice of 32,768
//! numbers per transaction, the lock left free between slices, so a dialer waits for one
//! slice at most, less than for one batch.
//!
//! # How it is fast
//!
//! A second thread reads and checks lines (numbers through `PhoneNumber::parse`'s fast path)
//! and computes each new record's row, numbers text included; the writer only checks what
//! needs the database and binds values. Its first transaction reads the campaign's numbers
//! in one walk of the `destination` index (up to 8 million of them); while no other
//! connection commits (`PRAGMA data_version` unchanged) that list plus the upload's own
//! numbers is exact, and only a chunk's numbers found in it are looked up (none for a new
//! list, no random index probe per line into a pre-filled spool). Once another connection
//! has committed, every number of a chunk is looked up, in one query. The writer checks
//! duplicates within the chunk in memory, in line order, and inserts records and destinations with multi-row statements; ids are the ones
//! inserting line by line gives. SQLite's per-row foreign-key checks are off during an upload
//! (the parents, campaign and upload, are checked once per batch; the records are the
//! batch's own), and statement journals stay in memory. None of this changes the results.
//!
//! A commit writes every page its rows fall on. Records and the ready index take
//! near-appends (ids ascend), but shuffled numbers fall all over the de-dup index: written
//! into `destination` directly, each commit rewrote most of its pages (into a spool of 1 M
//! records, a 1 M-line shuffled upload wrote 3.0 GB to disk, 1.4 GB since). Shuffled
//! numbers go to `destination_recent` instead (same key, every reader looks in both), merged
//! into
//! `destination` once it holds more than [`ImportOptions::recent_rows`] rows or an eighth of
//! the campaign's numbers: in key order, so a merge writes each page of `destination` about
//! once, however many commits the numbers came in. Numbers that ascend through a chunk of
//! lines (a list sorted by number) are near-appends and go to `destination` directly.

use crate::codes::{id_from_sql, ms};
use crate::error::{ImportError, Result, StoreError};
use crate::ops::is_blacklisted;
use crate::records::{self, NewRow, Origin, Provenance};
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::{AgentId, CampaignId, PhoneNumber, RecordId, SpoolRecord, SCHEDULE_PRIORITY};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rustc_hash::{FxHashMap, FxHashSet};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc;
use std::time::Instant;

/// Longest line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most distinct number strings remembered per upload (the cache is cleared when full).
const PHONE_CACHE_MAX: usize = 100_000;
/// Batches parsed ahead of the writer.
const PIPELINE_DEPTH: usize = 4;
/// Raw text kept for a rejected line.
const MAX_RAW_KEPT: usize = 1024;
/// Lines the parsing thread hands over at a time; a transaction takes as many of these as
/// its time and size allow.
const CHUNK_LINES: usize = 1_024;
/// See [`ImportOptions::commit_after`].
pub const DEFAULT_COMMIT_AFTER: std::time::Duration = std::time::Duration::from_millis(250);
/// See [`ImportOptions::commit_bytes`].
pub const DEFAULT_COMMIT_BYTES: u64 = 32 << 20;
/// See [`ImportOptions::recent_rows`].
pub const DEFAULT_RECENT_ROWS: u64 = 65_536;
/// See [`ImportOptions::wal_restart_bytes`].
pub const DEFAULT_WAL_RESTART_BYTES: u64 = 64 << 20;
/// Time the writer leaves the database unlocked between two transactions, so that another
/// connection waiting for the lock (polling every `schema::BUSY_POLL`) gets it.
const LOCK_GAP: std::time::Duration = std::time::Duration::from_millis(2);

/// Why a line was not imported. Stored as its [`RejectReason::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    InvalidUtf8,
    LineTooLong,
    UnterminatedQuote,
    TooFewFields,
    TooManyFields,
    CampaignMismatch,
    InvalidNumber,
    InvalidAlternative,
    NumberRepeatedInLine,
    BadData,
    BadPriority,
    BadAgent,
    DuplicateInFile,
    DuplicateInSpool,
    Blacklisted,
}

impl RejectReason {
    pub const ALL: [RejectReason; 15] = [
        RejectReason::InvalidUtf8,
        RejectReason::LineTooLong,
        RejectReason::UnterminatedQuote,
        RejectReason::TooFewFields,
        RejectReason::TooManyFields,
        RejectReason::CampaignMismatch,
        RejectReason::InvalidNumber,
        RejectReason::InvalidAlternative,
        RejectReason::NumberRepeatedInLine,
        RejectReason::BadData,
        RejectReason::BadPriority,
        RejectReason::BadAgent,
        RejectReason::DuplicateInFile,
        RejectReason::DuplicateInSpool,
        RejectReason::Blacklisted,
    ];

    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::LineTooLong => "line_too_long",
            RejectReason::UnterminatedQuote => "unterminated_quote",
            RejectReason::TooFewFields => "too_few_fields",
            RejectReason::TooManyFields => "too_many_fields",
            RejectReason::CampaignMismatch => "campaign_mismatch",
            RejectReason::InvalidNumber => "invalid_number",
            RejectReason::InvalidAlternative => "invalid_alternative",
            RejectReason::NumberRepeatedInLine => "number_repeated_in_line",
            RejectReason::BadData => "bad_data",
            RejectReason::BadPriority => "bad_priority",
            RejectReason::BadAgent => "bad_agent",
            RejectReason::DuplicateInFile => "duplicate_in_file",
            RejectReason::DuplicateInSpool => "duplicate_in_spool",
            RejectReason::Blacklisted => "blacklisted",
        }
    }

    pub fn from_code(s: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.code() == s)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reject {
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: RejectReason,
    /// Human-readable explanation (the bad value, the duplicate's line...).
    pub detail: String,
    /// The line as read, without its line end (bad UTF-8 shown as U+FFFD, long lines cut).
    pub raw: String,
}

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub campaign: String,
    /// Name of the uploaded file; with the campaign, identifies an upload to resume.
    pub file_name: String,
    pub user: String,
    /// File-wide IANA zone of the callees (`uploadbasewithtimezone`); `None` = campaign's.
    pub time_zone: Option<String>,
    /// ISO alpha-2 country for national numbers; `None` = the campaign's `default_country`.
    pub country: Option<String>,
    /// Most lines in one transaction (default: no limit but time and size).
    pub batch_lines: usize,
    /// A transaction commits once it has been open this long (default 250 ms): how long a
    /// running dialer's ledger write may have to wait for the import (see the module docs).
    pub commit_after: std::time::Duration,
    /// A transaction commits once it holds this many bytes of the file (default 32 MiB).
    pub commit_bytes: u64,
    /// The numbers an upload adds wait in a small index, merged into the big one once it
    /// holds more than this many rows or an eighth of the campaign's numbers, whichever is
    /// more (default [`DEFAULT_RECENT_ROWS`]; see the module docs).
    pub recent_rows: u64,
    /// Once the WAL holds more than this many bytes, the writer waits, before its next
    /// transaction, for the import's checkpointing thread to copy its last commit, so the
    /// WAL starts over (default [`DEFAULT_WAL_RESTART_BYTES`]; see the module docs).
    pub wal_restart_bytes: u64,
    /// Resume an interrupted upload of the same file name (default true).
    pub resume: bool,
    /// Creation time of the records.
    pub now: DateTime<Utc>,
}

impl ImportOptions {
    pub fn new(
        campaign: impl Into<String>,
        file_name: impl Into<String>,
        now: DateTime<Utc>,
    ) -> ImportOptions {
        ImportOptions {
            campaign: campaign.into(),
            file_name: file_name.into(),
            user: String::new(),
            time_zone: None,
            country: None,
            batch_lines: usize::MAX,
            commit_after: DEFAULT_COMMIT_AFTER,
            commit_bytes: DEFAULT_COMMIT_BYTES,
            recent_rows: DEFAULT_RECENT_ROWS,
            wal_restart_bytes: DEFAULT_WAL_RESTART_BYTES,
            resume: true,
            now,
        }
    }
}

/// Progress reported after each committed batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportProgress {
    pub bytes_read: u64,
    pub lines: u64,
    pub imported: u64,
    pub rejected: u64,
}

/// The result of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportSummary {
    pub base_id: u64,
    /// Lines read in the whole file (including those of an earlier interrupted run).
    pub lines: u64,
    pub blank_lines: u64,
    pub imported: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<RejectReason, u64>,
    /// Set when an interrupted upload was resumed: the first line read by this run.
    pub resumed_at_line: Option<u64>,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BaseInfo {
    pub id: u64,
    pub campaign: String,
    pub file_name: String,
    pub user: String,
    pub time_zone: Option<String>,
    pub country: String,
    /// `importing` (in progress or interrupted), `done` or `failed`.
    pub state: String,
    pub lines: u64,
    pub blank_lines: u64,
    pub imported: u64,
    pub rejected: u64,
}

/// A line after parsing, before the checks that need the database.
#[allow(clippy::large_enum_variant)] // most lines are good: boxing would cost an allocation
enum Parsed {
    Blank,
    Rejected(Reject),
    Good(GoodLine),
}

/// A line that passed the checks that need no database, with its record's row computed (in
/// the parsing thread, so the writer only binds values).
struct GoodLine {
    line: u64,
    /// Where the line's text is in [`Batch::text`] (only a rejection needs it).
    raw: std::ops::Range<usize>,
    row: NewRow,
}

struct Batch {
    lines: Vec<Parsed>,
    /// The text of the batch's good lines (see [`GoodLine::raw`]).
    text: String,
    end_offset: u64,
    end_hash: u64,
    end_line: u64,
    /// The file ends with this batch.
    last: bool,
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Reads one line (up to and including `\n`) into `buf`, holding at most `MAX_LINE_BYTES`.
/// Returns (bytes consumed, whether the line was cut).
fn read_line<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    hash: &mut u64,
) -> std::io::Result<(usize, bool)> {
    buf.clear();
    let mut consumed = 0;
    let mut cut = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((consumed, cut));
        }
        let (chunk, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (&avail[..=i], true),
            None => (avail, false),
        };
        let room = (MAX_LINE_BYTES + 2).saturating_sub(buf.len());
        if chunk.len() > room {
            cut = true;
        }
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        *hash = fnv(*hash, chunk);
        let n = chunk.len();
        consumed += n;
        r.consume(n);
        if done {
            return Ok((consumed, cut));
        }
    }
}

/// Splits on `;`, honouring double-quoted fields. `None` = a quote left open.
pub fn split_fields(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(6);
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_quotes = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cur.push('"');
                } else {
                    in_quotes = false;
                }
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            ';' => {
                out.push(std::mem::take(&mut cur));
                at_start = true;
                continue;
            }
            '"' if at_start && cur.trim().is_empty() => {
                cur.clear();
                in_quotes = true;
            }
            _ => cur.push(c),
        }
        at_start = false;
    }
    if in_quotes {
        return None;
    }
    out.push(cur);
    Some(out)
}

/// [`split_fields`], borrowing the fields when the line has no quote at all (then the fields
/// are exactly the `;`-separated pieces).
fn split_fields_borrowed(line: &str) -> Option<Vec<Cow<'_, str>>> {
    if line.contains('"') {
        split_fields(line).map(|f| f.into_iter().map(Cow::Owned).collect())
    } else {
        Some(line.split(';').map(Cow::Borrowed).collect())
    }
}

struct Parser<'a> {
    campaign: &'a str,
    country: &'a str,
    cache: HashMap<String, std::result::Result<PhoneNumber, String>>,
    rows: &'a RowCtx,
}

/// What every record of an upload shares.
struct RowCtx {
    campaign_id: i64,
    base_id: i64,
    time_zone: Option<String>,
    now: DateTime<Utc>,
}

impl Parser<'_> {
    fn phone(&mut self, raw: &str) -> std::result::Result<PhoneNumber, String> {
        if let Some(r) = self.cache.get(raw) {
            return r.clone();
        }
        if self.cache.len() >= PHONE_CACHE_MAX {
            self.cache.clear();
        }
        let r = PhoneNumber::parse(raw, self.country).map_err(|e| e.to_string());
        self.cache.insert(raw.to_owned(), r.clone());
        r
    }

    fn parse(
        &mut self,
        line_no: u64,
        bytes: &[u8],
        cut: bool,
        text: &mut String,
    ) -> Result<Parsed> {
        let (numbers, data, priority, agent, raw) = match self.check(line_no, bytes, cut) {
            Checked::Blank => return Ok(Parsed::Blank),
            Checked::Rejected(r) => return Ok(Parsed::Rejected(r)),
            Checked::Good {
                raw,
                numbers,
                data,
                priority,
                agent,
            } => {
                let start = text.len();
                text.push_str(raw);
                (numbers, data, priority, agent, start..text.len())
            }
        };
        let mut numbers = numbers.into_iter();
        let main = numbers.next().expect("a good line has its main number");
        let mut rec = SpoolRecord::new(
            RecordId(0),
            CampaignId::from(self.campaign),
            main,
            numbers.collect(),
            self.rows.now,
        );
        rec.data = data;
        if let Some(p) = priority {
            rec.priority = p;
        }
        rec.owner_agent = agent.map(AgentId::from);
        rec.time_zone = self.rows.time_zone.clone();
        rec.base_id = Some(self.rows.base_id as u64);
        let row = NewRow::new(
            self.rows.campaign_id,
            &rec,
            Some(self.rows.base_id),
            Provenance {
                origin: Origin::Import,
                source_line: Some(line_no),
            },
        )?;
        Ok(Parsed::Good(GoodLine {
            line: line_no,
            raw,
            row,
        }))
    }

    fn check<'t>(&mut self, line_no: u64, bytes: &'t [u8], cut: bool) -> Checked<'t> {
        let reject = |reason, detail: String, raw: String| {
            Checked::Rejected(Reject {
                line: line_no,
                reason,
                detail,
                raw: truncate(raw),
            })
        };
        if cut {
            return reject(
                RejectReason::LineTooLong,
                format!("line longer than {MAX_LINE_BYTES} bytes"),
                String::from_utf8_lossy(bytes).into_owned(),
            );
        }
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                return reject(
                    RejectReason::InvalidUtf8,
                    format!("invalid UTF-8 at byte {}", e.valid_up_to() + 1),
                    String::from_utf8_lossy(bytes).into_owned(),
                )
            }
        };
        if text.trim().is_empty() {
            return Checked::Blank;
        }
        let raw = || text.to_owned();
        let Some(fields) = split_fields_borrowed(text) else {
            return reject(
                RejectReason::UnterminatedQuote,
                "a quoted field is not closed".into(),
                raw(),
            );
        };
        if fields.len() < 4 {
            return reject(
                RejectReason::TooFewFields,
                format!(
                    "{} fields, expected campaign;number;data;alternatives[;priority[;agentphone]]",
                    fields.len()
                ),
                raw(),
            );
        }
        if fields.len() > 6 {
            return reject(
                RejectReason::TooManyFields,
                format!("{} fields, at most 6 expected", fields.len()),
                raw(),
            );
        }
        let camp = fields[0].trim();
        if camp != self.campaign {
            return reject(
                RejectReason::CampaignMismatch,
                format!("campaign {camp:?}, the upload is for {:?}", self.campaign),
                raw(),
            );
        }
        let main = match self.phone(fields[1].trim()) {
            Ok(n) => n,
            Err(e) => return reject(RejectReason::InvalidNumber, e, raw()),
        };
        let mut data = Vec::new();
        for pair in fields[2].split(':').filter(|p| !p.trim().is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return reject(
                    RejectReason::BadData,
                    format!("{pair:?} is not key=value"),
                    raw(),
                );
            };
            let k = k.trim();
            if k.is_empty() {
                return reject(
                    RejectReason::BadData,
                    format!("{pair:?} has an empty key"),
                    raw(),
                );
            }
            if pair.chars().any(char::is_control) {
                return reject(
                    RejectReason::BadData,
                    format!("{pair:?} contains a control character"),
                    raw(),
                );
            }
            data.push((k.to_owned(), v.to_owned()));
        }
        let mut numbers = vec![main];
        for alt in fields[3]
            .split(':')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match self.phone(alt) {
                Ok(n) => {
                    if numbers.iter().any(|m| m.e164() == n.e164()) {
                        return reject(
                            RejectReason::NumberRepeatedInLine,
                            format!("{} appears twice in the line", n.e164()),
                            raw(),
                        );
                    }
                    numbers.push(n);
                }
                Err(e) => return reject(RejectReason::InvalidAlternative, e, raw()),
            }
        }
        let priority = match fields.get(4).map(|p| p.trim()).filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match p.parse::<u32>() {
                Ok(v) if v > SCHEDULE_PRIORITY => Some(v),
                Ok(v) => {
                    return reject(
                        RejectReason::BadPriority,
                        format!("priority {v} is reserved for schedules; use 2 or more"),
                        raw(),
                    )
                }
                Err(_) => {
                    return reject(
                        RejectReason::BadPriority,
                        format!("priority {p:?} is not a whole number"),
                        raw(),
                    )
                }
            },
        };
        let agent = match fields.get(5).map(|a| a.trim()).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => {
                let ok = a.len() <= 64
                    && a.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '/')
                    });
                if !ok {
                    return reject(
                        RejectReason::BadAgent,
                        format!("agent {a:?} is not a valid agent or extension"),
                        raw(),
                    );
                }
                Some(a.to_owned())
            }
        };
        Checked::Good {
            raw: text,
            numbers,
            data,
            priority,
            agent,
        }
    }
}

/// A line after the checks that need no database.
enum Checked<'t> {
    Blank,
    Rejected(Reject),
    Good {
        raw: &'t str,
        numbers: Vec<PhoneNumber>,
        data: Vec<(String, String)>,
        priority: Option<u32>,
        agent: Option<String>,
    },
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_RAW_KEPT {
        let mut cut = MAX_RAW_KEPT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Where an interrupted upload stopped.
struct ResumePoint {
    base_id: i64,
    bytes: u64,
    hash: u64,
    lines: u64,
    summary: ImportSummary,
}

impl SpoolStore {
    /// Imports a base file. See the [module docs](crate::import) for the format and policies.
    /// `progress` is called after every committed batch.
    pub fn import_base<R: Read + Send>(
        &mut self,
        reader: R,
        opts: &ImportOptions,
        progress: &mut dyn FnMut(&ImportProgress),
    ) -> Result<ImportSummary> {
        if let Some(z) = &opts.time_zone {
            if z.parse::<chrono_tz::Tz>().is_err() {
                return Err(ImportError::UnknownTimeZone(z.clone()).into());
            }
        }
        let (cid, camp) = records::campaign_row(&self.conn, &opts.campaign)?;
        let country = opts
            .country
            .clone()
            .unwrap_or_else(|| camp.default_country.clone());
        if let Err(dialer_core::PhoneError::UnknownCountry(c)) =
            PhoneNumber::parse("+12125550123", &country)
        {
            return Err(ImportError::UnknownCountry(c).into());
        }
        let resume = if opts.resume {
            self.find_resume(cid, &opts.file_name)?
        } else {
            None
        };
        let (base_id, start_bytes, start_hash, start_line, mut summary) = match resume {
            Some(r) => {
                let mut s = r.summary;
                s.resumed_at_line = Some(r.lines + 1);
                (r.base_id, r.bytes, r.hash, r.lines, s)
            }
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO base (campaign_id, file_name, user_name, time_zone, country, state,
                             started_ms, prefix_hash)
                         VALUES (?1, ?2, ?3, ?4, ?5, 'importing', ?6, ?7)",
                    )?
                    .execute(params![cid, opts.file_name, opts.user, opts.time_zone, country, ms(opts.now), FNV_OFFSET as i64])?;
                let id = self.conn.last_insert_rowid();
                (id, 0, FNV_OFFSET, 0, ImportSummary::default())
            }
        };
        summary.base_id = id_from_sql(base_id)?;
        let batch_lines = opts.batch_lines.max(1);
        // The statement journals of the multi-row inserts stay in memory rather than spill
        // to temporary files (only while importing: large sorts elsewhere may spill).
        let temp_store: i64 = self
            .conn
            .pragma_query_value(None, "temp_store", |r| r.get(0))?;
        self.conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Foreign keys: the parents of every row the import writes are the campaign, the
        // upload and the records it writes itself; the writer checks the first two once per
        // transaction instead of SQLite once per row (the setting is per connection, restored
        // after).
        let foreign_keys: bool = self
            .conn
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
        self.conn.pragma_update(None, "foreign_keys", false)?;
        // Checkpoints: a thread of the import's own does them (see `Checkpointer`), never
        // the writing thread at its commits.
        let autocheckpoint: i64 =
            self.conn
                .pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0))?;
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let result = self.import_batches(
            reader,
            opts,
            progress,
            (base_id, cid, &country),
            (start_bytes, start_hash, start_line),
            batch_lines,
            summary,
        );
        let restored = self
            .conn
            .pragma_update(None, "temp_store", temp_store)
            .and(self.conn.pragma_update(None, "foreign_keys", foreign_keys))
            .and(
                self.conn
                    .pragma_update(None, "wal_autocheckpoint", autocheckpoint),
            );
        if result.is_ok() {
            restored?;
        }
        result
    }

    /// The reading, parsing and writing threads of [`SpoolStore::import_base`].
    #[allow(clippy::too_many_arguments)]
    fn import_batches<R: Read + Send>(
        &mut self,
        reader: R,
        opts: &ImportOptions,
        progress: &mut dyn FnMut(&ImportProgress),
        (base_id, cid, country): (i64, i64, &str),
        (start_bytes, start_hash, start_line): (u64, u64, u64),
        batch_lines: usize,
        mut summary: ImportSummary,
    ) -> Result<ImportSummary> {
        let conn = &mut self.conn;
        let campaign_name = opts.campaign.as_str();

        std::thread::scope(|scope| -> Result<ImportSummary> {
            let (tx, rx) =
                mpsc::sync_channel::<std::result::Result<Batch, StoreError>>(PIPELINE_DEPTH);
            // Written batches go back to the parsing thread to be freed there: freeing memory
            // another thread allocated is slow, and the writer is the busier thread.
            let (done_tx, done_rx) = mpsc::channel::<Batch>();
            let parser = scope.spawn(move || {
                let mut reader = BufReader::with_capacity(256 * 1024, reader);
                let mut hash = FNV_OFFSET;
                // Skip the committed prefix, checking it is the same file.
                if start_bytes > 0 {
                    let mut left = start_bytes;
                    while left > 0 {
                        let buf = match reader.fill_buf() {
                            Ok(b) => b,
                            Err(e) => {
                                let _ = tx.send(Err(ImportError::Io {
                                    line: start_line,
                                    source: e,
                                }
                                .into()));
                                return;
                            }
                        };
                        if buf.is_empty() {
                            break;
                        }
                        let n = buf.len().min(left as usize);
                        hash = fnv(hash, &buf[..n]);
                        reader.consume(n);
                        left -= n as u64;
                    }
                    if left > 0 || hash != start_hash {
                        let _ = tx.send(Err(ImportError::ResumeMismatch {
                            base: base_id as u64,
                            file: opts.file_name.clone(),
                            bytes: start_bytes,
                        }
                        .into()));
                        return;
                    }
                }
                let row_ctx = RowCtx {
                    campaign_id: cid,
                    base_id,
                    time_zone: opts.time_zone.clone(),
                    now: opts.now,
                };
                let mut parser = Parser {
                    campaign: campaign_name,
                    country,
                    cache: HashMap::new(),
                    rows: &row_ctx,
                };
                let mut offset = start_bytes;
                let mut line_no = start_line;
                let mut buf = Vec::with_capacity(256);
                loop {
                    while let Ok(done) = done_rx.try_recv() {
                        drop(done);
                    }
                    let chunk = batch_lines.min(CHUNK_LINES);
                    let mut lines = Vec::with_capacity(chunk);
                    let mut text = String::new();
                    let mut eof = false;
                    while lines.len() < chunk {
                        let (n, cut) = match read_line(&mut reader, &mut buf, &mut hash) {
                            Ok(x) => x,
                            Err(e) => {
                                let _ = tx.send(Err(ImportError::Io {
                                    line: line_no,
                                    source: e,
                                }
                                .into()));
                                return;
                            }
                        };
                        if n == 0 {
                            eof = true;
                            break;
                        }
                        let at_start = offset == 0;
                        offset += n as u64;
                        line_no += 1;
                        let mut body: &[u8] = &buf;
                        if let Some(b) = body.strip_suffix(b"\n") {
                            body = b;
                        }
                        if let Some(b) = body.strip_suffix(b"\r") {
                            body = b;
                        }
                        if at_start {
                            if let Some(b) = body.strip_prefix(b"\xEF\xBB\xBF") {
                                body = b;
                            }
                        }
                        match parser.parse(line_no, body, cut, &mut text) {
                            Ok(p) => lines.push(p),
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    let batch = Batch {
                        lines,
                        text,
                        end_offset: offset,
                        end_hash: hash,
                        end_line: line_no,
                        last: eof,
                    };
                    if tx.send(Ok(batch)).is_err() || eof {
                        return;
                    }
                }
            });

            let mut checkpointer = match conn.path().filter(|p| !p.is_empty()) {
                Some(path) => Some(Checkpointer::spawn(scope, path, opts.wal_restart_bytes)?),
                None => None,
            };
            let mut ctx = WriteCtx {
                campaign_id: cid,
                campaign: campaign_name,
                base_id,
                now: opts.now,
                known: Known::Undecided,
                recent: Recent {
                    min: opts.recent_rows,
                    ..Recent::default()
                },
            };
            // The upload is done only when the parsing thread has delivered the end of the
            // file: if it stops any other way (an error it sends, a panic), the batches
            // committed so far stay and the upload stays resumable.
            let written = (|| -> Result<bool> {
                // End of the committed prefix of the file.
                let mut committed = start_bytes;
                let mut next = rx.recv().ok();
                while let Some(first) = next.take() {
                    let mut batch = first?;
                    if let Some(c) = &mut checkpointer {
                        c.before_begin()?;
                    }
                    // Immediate: the write lock from the start, so the duplicate lookups at
                    // the start of each chunk see the state its inserts go into.
                    let t = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let opened = Instant::now();
                    ctx.check_parents(&t)?;
                    let mut bytes_read;
                    let mut lines = 0;
                    let last = loop {
                        ctx.write_batch(&t, &batch, &mut summary)?;
                        lines += batch.lines.len();
                        let last = batch.last;
                        bytes_read = batch.end_offset;
                        let _ = done_tx.send(batch);
                        let left = opts.commit_after.saturating_sub(opened.elapsed());
                        if last
                            || lines >= batch_lines
                            || left.is_zero()
                            || bytes_read - committed >= opts.commit_bytes
                        {
                            break last;
                        }
                        // Wait for the next chunk only as long as the transaction may last.
                        match rx.recv_timeout(left) {
                            Ok(b) => batch = b?,
                            Err(mpsc::RecvTimeoutError::Timeout) => break false,
                            Err(mpsc::RecvTimeoutError::Disconnected) => break false,
                        }
                    };
                    t.commit()?;
                    committed = bytes_read;
                    if let Some(c) = &mut checkpointer {
                        c.after_commit()?;
                    }
                    if ctx.recent.merge_due() {
                        std::thread::sleep(LOCK_GAP);
                        merge_recent(conn, MERGE_SLICE, checkpointer.as_mut())?;
                        ctx.recent.merged();
                    }
                    progress(&ImportProgress {
                        bytes_read,
                        lines: summary.lines,
                        imported: summary.imported,
                        rejected: summary.rejected,
                    });
                    if last {
                        if let Some(c) = &mut checkpointer {
                            c.finish()?;
                        }
                        return Ok(true);
                    }
                    std::thread::sleep(LOCK_GAP);
                    next = rx.recv().ok();
                }
                Ok(false)
            })();
            // Ends the checkpointing thread (its channel closes).
            drop(checkpointer);
            if let Err(panic) = parser.join() {
                return Err(ImportError::ParserPanicked {
                    after_line: summary.lines,
                    message: panic_message(&*panic),
                }
                .into());
            }
            if !written? {
                return Err(ImportError::ParserPanicked {
                    after_line: summary.lines,
                    message: "stopped before the end of the file".into(),
                }
                .into());
            }
            conn.prepare_cached("UPDATE base SET state = 'done', finished_ms = ?2 WHERE id = ?1")?
                .execute(params![base_id, ms(opts.now)])?;
            Ok(summary)
        })
    }

    fn find_resume(&self, cid: i64, file_name: &str) -> Result<Option<ResumePoint>> {
        let row: Option<(i64, i64, i64, i64, i64, i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT id, bytes_read, prefix_hash, lines_read, blank_lines, imported, rejected FROM base
                 WHERE campaign_id = ?1 AND file_name = ?2 AND state = 'importing'
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![cid, file_name], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })
            .optional()?;
        let Some((id, bytes, hash, lines, blank, imported, rejected)) = row else {
            return Ok(None);
        };
        let mut summary = ImportSummary {
            base_id: id_from_sql(id)?,
            lines: lines as u64,
            blank_lines: blank as u64,
            imported: imported as u64,
            rejected: rejected as u64,
            ..ImportSummary::default()
        };
        let mut st = self.conn.prepare_cached(
            "SELECT reason, COUNT(*) FROM import_reject WHERE base_id = ?1 GROUP BY reason",
        )?;
        for row in st.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (reason, n) = row?;
            if let Some(r) = RejectReason::from_code(&reason) {
                summary.rejected_by_reason.insert(r, n as u64);
            }
        }
        Ok(Some(ResumePoint {
            base_id: id,
            bytes: bytes as u64,
            hash: hash as u64,
            lines: lines as u64,
            summary,
        }))
    }

    /// Marks an interrupted upload failed, so the same file name starts afresh next time.
    pub fn abandon_base(&mut self, base_id: u64, now: DateTime<Utc>) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE base SET state = 'failed', finished_ms = ?2 WHERE id = ?1 AND state = 'importing'")?
            .execute(params![base_id as i64, ms(now)])?;
        Ok(())
    }

    /// The interrupted upload of this file name into this campaign, if any.
    pub fn unfinished_base(&self, campaign: &str, file_name: &str) -> Result<Option<BaseInfo>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        match self.find_resume(cid, file_name)? {
            Some(r) => self.base(id_from_sql(r.base_id)?),
            None => Ok(None),
        }
    }

    /// An upload's record.
    pub fn base(&self, base_id: u64) -> Result<Option<BaseInfo>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT b.id, c.name, b.file_name, b.user_name, b.time_zone, b.country, b.state,
                     b.lines_read, b.blank_lines, b.imported, b.rejected
                 FROM base b JOIN campaign c ON c.id = b.campaign_id WHERE b.id = ?1",
            )?
            .query_row([base_id as i64], |r| {
                Ok(BaseInfo {
                    id: r.get::<_, i64>(0)? as u64,
                    campaign: r.get(1)?,
                    file_name: r.get(2)?,
                    user: r.get(3)?,
                    time_zone: r.get(4)?,
                    country: r.get(5)?,
                    state: r.get(6)?,
                    lines: r.get::<_, i64>(7)? as u64,
                    blank_lines: r.get::<_, i64>(8)? as u64,
                    imported: r.get::<_, i64>(9)? as u64,
                    rejected: r.get::<_, i64>(10)? as u64,
                })
            })
            .optional()?)
    }

    /// Calls `f` with each rejected line of an upload, in line order (streamed).
    pub fn for_each_reject(
        &self,
        base_id: u64,
        f: &mut dyn FnMut(Reject) -> Result<()>,
    ) -> Result<()> {
        let mut st = self
            .conn
            .prepare_cached("SELECT line_no, reason, detail, raw FROM import_reject WHERE base_id = ?1 ORDER BY line_no")?;
        let mut rows = st.query([base_id as i64])?;
        while let Some(r) = rows.next()? {
            let reason: String = r.get(1)?;
            f(Reject {
                line: r.get::<_, i64>(0)? as u64,
                reason: RejectReason::from_code(&reason)
                    .ok_or_else(|| StoreError::Corrupt(format!("reject reason {reason:?}")))?,
                detail: r.get(2)?,
                raw: r.get(3)?,
            })?;
        }
        Ok(())
    }

    /// Every rejected line of an upload, in line order.
    pub fn rejects(&self, base_id: u64) -> Result<Vec<Reject>> {
        let mut out = Vec::new();
        self.for_each_reject(base_id, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }
}

struct WriteCtx<'a> {
    campaign_id: i64,
    campaign: &'a str,
    base_id: i64,
    now: DateTime<Utc>,
    known: Known,
    recent: Recent,
}

/// What the writer knows of `destination_recent`, to merge it into `destination` when due.
///
/// A commit of shuffled numbers writes every page of an index its numbers fall on: into the
/// big `destination` index that was most of its pages at every commit. They go to
/// `destination_recent` instead, kept small, and that is merged into `destination` once it
/// holds more than [`ImportOptions::recent_rows`] rows or a [`RECENT_SHARE`]th of the
/// campaign's numbers:
/// in key order, so each merge writes a page of `destination` about once, in slices of
/// [`MERGE_SLICE`] rows, each its own short transaction (a dialer waits for one slice at
/// most, as for one import transaction).
#[derive(Debug, Default)]
struct Recent {
    /// [`ImportOptions::recent_rows`].
    min: u64,
    /// Rows in `destination_recent` (every campaign's), counted in the first transaction.
    rows: u64,
    /// The campaign's numbers in both tables (the size of its part of `destination`).
    campaign_numbers: u64,
}

/// See [`Recent`].
const RECENT_SHARE: u64 = 8;
/// Rows moved from `destination_recent` to `destination` per transaction.
const MERGE_SLICE: i64 = 32_768;

impl Recent {
    fn merge_due(&self) -> bool {
        self.rows > self.min.max(self.campaign_numbers / RECENT_SHARE)
    }

    /// `recent` of the `all` numbers the batch added went to `destination_recent`.
    fn added(&mut self, recent: u64, all: u64) {
        self.rows += recent;
        self.campaign_numbers += all;
    }

    fn merged(&mut self) {
        self.rows = 0;
    }
}

/// Moves every row of `destination_recent` into `destination`, in key order, a slice of
/// `slice` rows per transaction with the lock left free between them (see [`Recent`]). A
/// crash between slices leaves each number in one of the two tables.
fn merge_recent(
    conn: &mut Connection,
    slice: i64,
    mut checkpointer: Option<&mut Checkpointer>,
) -> Result<()> {
    loop {
        if let Some(c) = checkpointer.as_deref_mut() {
            c.before_begin()?;
        }
        let t = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // The last key of the slice; none: what is left fits in one.
        let last: Option<(i64, i64, i64)> = t
            .prepare_cached(
                "SELECT campaign_id, number, record_id FROM destination_recent
                 ORDER BY campaign_id, number, record_id LIMIT 1 OFFSET ?1",
            )?
            .query_row([slice.max(1) - 1], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let (c, n, r) = last.unwrap_or((i64::MAX, i64::MAX, i64::MAX));
        t.prepare_cached(
            "INSERT OR IGNORE INTO destination (campaign_id, number, record_id)
             SELECT campaign_id, number, record_id FROM destination_recent
             WHERE (campaign_id, number, record_id) <= (?1, ?2, ?3)
             ORDER BY campaign_id, number, record_id",
        )?
        .execute(params![c, n, r])?;
        t.prepare_cached(
            "DELETE FROM destination_recent WHERE (campaign_id, number, record_id) <= (?1, ?2, ?3)",
        )?
        .execute(params![c, n, r])?;
        t.commit()?;
        if let Some(c) = checkpointer.as_deref_mut() {
            c.after_commit()?;
        }
        if last.is_none() {
            return Ok(());
        }
        std::thread::sleep(LOCK_GAP);
    }
}

/// A thread that checkpoints the WAL while the import writes, so the writing thread never
/// copies pages into the database file nor waits for the file system to sync them.
///
/// The import's connection runs with `wal_autocheckpoint` off; after each of its commits it
/// asks this thread (on a second connection) for a `PASSIVE` checkpoint, which copies the
/// committed pages while the next transaction is being written (it takes no lock a writer
/// needs). The WAL starts over from its beginning only at a transaction that begins with
/// every frame copied: once it holds more than [`ImportOptions::wal_restart_bytes`], the writer waits,
/// before its next transaction, for a checkpoint of everything (the frames of its last
/// commit; the ones before were copied meanwhile). The WAL so stays under about that size
/// plus a transaction or two (one may begin while the checkpoint of the one before is still
/// under way), and the import ends with it copied whole.
struct Checkpointer {
    /// A request for one checkpoint; at most one is waiting.
    ask: mpsc::SyncSender<()>,
    /// Each checkpoint's result.
    done: mpsc::Receiver<Result<WalState>>,
    /// A checkpoint was asked for and its result not yet read.
    in_flight: bool,
    /// What the last checkpoint found.
    last: WalState,
    /// The database's page size (a frame holds one page).
    page_size: u64,
    /// [`ImportOptions::wal_restart_bytes`].
    restart_bytes: u64,
}

/// `PRAGMA wal_checkpoint`'s answer: frames in the WAL, frames copied into the database.
#[derive(Debug, Clone, Copy, Default)]
struct WalState {
    frames: u64,
    copied: u64,
}

impl Checkpointer {
    fn spawn<'scope>(
        scope: &'scope std::thread::Scope<'scope, '_>,
        path: &str,
        restart_bytes: u64,
    ) -> Result<Checkpointer> {
        let conn = Connection::open(path)?;
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let (ask, asked) = mpsc::sync_channel::<()>(1);
        let (report, done) = mpsc::channel();
        scope.spawn(move || {
            while asked.recv().is_ok() {
                let state = conn
                    .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok(WalState {
                            frames: r.get::<_, i64>(1)?.max(0) as u64,
                            copied: r.get::<_, i64>(2)?.max(0) as u64,
                        })
                    })
                    .map_err(StoreError::from);
                if report.send(state).is_err() {
                    return;
                }
            }
        });
        Ok(Checkpointer {
            ask,
            done,
            in_flight: false,
            last: WalState::default(),
            page_size: page_size.max(512) as u64,
            restart_bytes,
        })
    }

    /// After a commit: asks for a checkpoint unless one is under way (it will be asked
    /// again after the next commit).
    fn after_commit(&mut self) -> Result<()> {
        self.collect(false)?;
        if !self.in_flight {
            self.ask()?;
        }
        Ok(())
    }

    /// Before a transaction: if the WAL has grown past [`ImportOptions::wal_restart_bytes`], waits until
    /// every frame is copied, so this transaction writes the WAL from its start.
    fn before_begin(&mut self) -> Result<()> {
        self.collect(false)?;
        if self.last.frames.saturating_mul(self.page_size) <= self.restart_bytes {
            return Ok(());
        }
        self.finish()
    }

    /// Waits until a checkpoint has copied every frame committed so far.
    fn finish(&mut self) -> Result<()> {
        // A checkpoint under way may have started before the last commit.
        self.collect(true)?;
        self.ask()?;
        self.collect(true)?;
        if self.last.copied >= self.last.frames {
            // The next transaction writes the WAL from its start.
            self.last = WalState::default();
        }
        Ok(())
    }

    fn ask(&mut self) -> Result<()> {
        self.ask.send(()).map_err(|_| Self::gone())?;
        self.in_flight = true;
        Ok(())
    }

    /// Reads the result of the checkpoint under way, waiting for it if `wait`.
    fn collect(&mut self, wait: bool) -> Result<()> {
        if !self.in_flight {
            return Ok(());
        }
        let state = if wait {
            self.done.recv().map_err(|_| Self::gone())?
        } else {
            match self.done.try_recv() {
                Ok(s) => s,
                Err(mpsc::TryRecvError::Empty) => return Ok(()),
                Err(mpsc::TryRecvError::Disconnected) => return Err(Self::gone()),
            }
        };
        self.in_flight = false;
        self.last = state?;
        Ok(())
    }

    fn gone() -> StoreError {
        ImportError::CheckpointerStopped.into()
    }
}

/// What the writer knows of the campaign's `destination` rows, to skip looking up numbers
/// that cannot be there.
enum Known {
    /// Before the first batch.
    Undecided,
    /// `numbers` holds every number of the campaign's `destination` rows (and maybe numbers
    /// since removed by others): read in one scan of the campaign's part of the index in the
    /// upload's first transaction, plus every number the upload wrote since. It stays exact
    /// while no other connection commits (`PRAGMA data_version` unchanged since the scan): a
    /// number outside it cannot be in the spool, so only the numbers in it are looked up.
    Listed {
        data_version: i64,
        numbers: FxHashSet<i64>,
    },
    /// Another connection committed since the scan, or the campaign has more than
    /// [`KNOWN_MAX`] numbers: every number is looked up.
    Unknown,
}

/// Most numbers `Known::Listed` holds (about 16 bytes each) before falling back to looking
/// every number up.
const KNOWN_MAX: usize = 8_000_000;

/// Records per multi-row `INSERT` into `record` and `destination`.
const RECORD_CHUNK: usize = 64;
const DESTINATION_CHUNK: usize = 256;

impl WriteCtx<'_> {
    /// The parents of the rows the import writes, checked once per transaction (the import
    /// runs with SQLite's per-row foreign-key checks off): the campaign and the upload exist.
    fn check_parents(&self, conn: &Connection) -> Result<()> {
        let ok: bool = conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM campaign WHERE id = ?1)
                     AND EXISTS(SELECT 1 FROM base WHERE id = ?2 AND campaign_id = ?1)",
            )?
            .query_row(params![self.campaign_id, self.base_id], |r| r.get(0))?;
        if !ok {
            return Err(StoreError::UnknownCampaign(self.campaign.to_owned()));
        }
        Ok(())
    }

    /// Checks and writes one batch, in its caller's transaction.
    ///
    /// The batch's numbers are looked up in `destination` in one query before anything is
    /// written; a line's numbers are then checked against those hits and against the records
    /// of earlier lines of the batch (kept in memory), in line order, so the result is what
    /// checking and inserting line by line would give. The new records get the ids SQLite
    /// would give them one by one (`MAX(id) + 1` onwards) and are written at the end of the
    /// batch with multi-row statements.
    fn write_batch(
        &mut self,
        conn: &Connection,
        batch: &Batch,
        summary: &mut ImportSummary,
    ) -> Result<()> {
        // An empty blacklist (the common case) needs no lookups.
        let any_blacklist: bool = conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM blacklist)")?
            .query_row([], |r| r.get(0))?;
        self.update_known(conn)?;
        let in_spool = self.lookup_numbers(conn, &batch.lines)?;
        let mut next_id: i64 = conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM record")?
            .query_row([], |r| r.get(0))?;
        // Numbers of this batch's new records: key -> (record id, line).
        let mut in_batch: FxHashMap<i64, (i64, u64)> = FxHashMap::default();
        let mut rows: Vec<(i64, &GoodLine)> = Vec::new();
        for parsed in &batch.lines {
            summary.lines += 1;
            let good = match parsed {
                Parsed::Blank => {
                    summary.blank_lines += 1;
                    continue;
                }
                Parsed::Rejected(r) => {
                    store_reject(conn, self.base_id, r, summary)?;
                    continue;
                }
                Parsed::Good(g) => g,
            };
            let raw = &batch.text[good.raw.clone()];
            if let Some(r) = self.db_check(conn, good, raw, any_blacklist, &in_spool, &in_batch)? {
                store_reject(conn, self.base_id, &r, summary)?;
                continue;
            }
            next_id = next_id
                .checked_add(1)
                .ok_or_else(|| StoreError::Corrupt("record ids exhausted".into()))?;
            for &k in &good.row.keys {
                in_batch.entry(k).or_insert((next_id, good.line));
            }
            rows.push((next_id, good));
            summary.imported += 1;
        }
        insert_records(conn, &rows)?;
        let (recent, all) = insert_destinations(conn, self.campaign_id, &rows)?;
        self.recent.added(recent, all);
        if let Known::Listed { numbers, .. } = &mut self.known {
            for (_, g) in rows.iter().filter(|(_, g)| g.row.live) {
                numbers.extend(g.row.keys.iter().copied());
            }
            if numbers.len() > KNOWN_MAX {
                self.known = Known::Unknown;
            }
        }
        conn.prepare_cached(
            "UPDATE base SET lines_read = ?2, blank_lines = ?3, imported = ?4, rejected = ?5,
                 bytes_read = ?6, prefix_hash = ?7 WHERE id = ?1",
        )?
        .execute(params![
            self.base_id,
            batch.end_line as i64,
            summary.blank_lines as i64,
            summary.imported as i64,
            summary.rejected as i64,
            batch.end_offset as i64,
            batch.end_hash as i64
        ])?;
        debug_assert_eq!(summary.lines, batch.end_line);
        Ok(())
    }

    /// Updates [`Known`] at the start of a batch, in its (immediate) transaction.
    fn update_known(&mut self, conn: &Connection) -> Result<()> {
        let data_version: i64 = conn.pragma_query_value(None, "data_version", |r| r.get(0))?;
        match &self.known {
            Known::Undecided => {
                // One sequential walk of the campaign's part of the index costs about what
                // a few thousand random lookups do; a pre-filled spool saves one lookup a
                // number.
                let mut numbers = FxHashSet::default();
                let mut st = conn
                    .prepare_cached(&records::destinations_where("number", "campaign_id = ?1"))?;
                let mut rows = st.query([self.campaign_id])?;
                let mut over = false;
                let mut campaign_numbers: u64 = 0;
                while let Some(r) = rows.next()? {
                    if numbers.len() >= KNOWN_MAX {
                        over = true;
                        break;
                    }
                    campaign_numbers += 1;
                    numbers.insert(r.get::<_, i64>(0)?);
                }
                let recent: i64 = conn
                    .prepare_cached("SELECT COUNT(*) FROM destination_recent")?
                    .query_row([], |r| r.get(0))?;
                self.recent.rows = recent as u64;
                self.recent.campaign_numbers = campaign_numbers;
                self.known = if over {
                    Known::Unknown
                } else {
                    Known::Listed {
                        data_version,
                        numbers,
                    }
                };
            }
            Known::Listed {
                data_version: v, ..
            } if *v != data_version => self.known = Known::Unknown,
            Known::Listed { .. } | Known::Unknown => {}
        }
        Ok(())
    }

    /// The live record of the campaign (the lowest id, as an index walk finds it first) for
    /// each number of the batch already in the spool.
    fn lookup_numbers(&self, conn: &Connection, lines: &[Parsed]) -> Result<FxHashMap<i64, i64>> {
        let mut list = String::from("[");
        for k in lines
            .iter()
            .filter_map(|p| match p {
                Parsed::Good(g) => Some(g),
                _ => None,
            })
            .flat_map(|g| g.row.keys.iter().copied())
            .filter(|k| match &self.known {
                Known::Listed { numbers, .. } => numbers.contains(k),
                Known::Undecided | Known::Unknown => true,
            })
        {
            if list.len() > 1 {
                list.push(',');
            }
            list.push_str(&k.to_string());
        }
        list.push(']');
        let mut hits = FxHashMap::default();
        if list.len() == 2 {
            return Ok(hits);
        }
        let sql = format!(
            "SELECT number, MIN(record_id) FROM ({}) GROUP BY number",
            records::destinations_where(
                "number, record_id",
                "campaign_id = ?1 AND number IN (SELECT value FROM json_each(?2))"
            )
        );
        let mut st = conn.prepare_cached(&sql)?;
        let mut q = st.query(params![self.campaign_id, list])?;
        while let Some(r) = q.next()? {
            hits.insert(r.get::<_, i64>(0)?, r.get::<_, i64>(1)?);
        }
        Ok(hits)
    }

    fn db_check(
        &self,
        conn: &Connection,
        g: &GoodLine,
        raw: &str,
        any_blacklist: bool,
        in_spool: &FxHashMap<i64, i64>,
        in_batch: &FxHashMap<i64, (i64, u64)>,
    ) -> Result<Option<Reject>> {
        let reject = |reason, detail| {
            Some(Reject {
                line: g.line,
                reason,
                detail,
                raw: truncate(raw.to_owned()),
            })
        };
        // The number as text only where a check needs it (a blacklist lookup, a reject).
        let e164 = |k: i64| format!("+{k}");
        for &k in &g.row.keys {
            if any_blacklist && is_blacklisted(conn, &e164(k), self.campaign, self.now)? {
                let e164 = e164(k);
                return Ok(reject(
                    RejectReason::Blacklisted,
                    format!("{e164} is on the do-not-call list"),
                ));
            }
            // Records from before this batch have lower ids than the batch's own.
            if let Some(&rid) = in_spool.get(&k) {
                let e164 = e164(k);
                let (base, line): (Option<i64>, Option<i64>) = conn
                    .prepare_cached("SELECT base_id, source_line FROM record WHERE id = ?1")?
                    .query_row([rid], |r| Ok((r.get(0)?, r.get(1)?)))?;
                return Ok(if base == Some(self.base_id) {
                    reject(
                        RejectReason::DuplicateInFile,
                        format!(
                            "{e164} already on line {} (record {rid})",
                            line.unwrap_or(0)
                        ),
                    )
                } else {
                    reject(
                        RejectReason::DuplicateInSpool,
                        format!("{e164} already in the spool (record {rid})"),
                    )
                });
            }
            if let Some(&(rid, line)) = in_batch.get(&k) {
                let e164 = e164(k);
                return Ok(reject(
                    RejectReason::DuplicateInFile,
                    format!("{e164} already on line {line} (record {rid})"),
                ));
            }
        }
        Ok(None)
    }
}

/// `?1, ?2, ...` style placeholders: `(first..first + n)`.
fn placeholders(out: &mut String, params: impl IntoIterator<Item = usize>) {
    out.push('(');
    for (i, p) in params.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('?');
        out.push_str(&p.to_string());
    }
    out.push(')');
}

/// Runs `sql_for(k)` for full chunks of `chunk` items and once for the rest, binding each
/// chunk with `bind`.
fn chunked<T>(
    conn: &Connection,
    items: &[T],
    chunk: usize,
    sql_for: impl Fn(usize) -> String,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, &[T]) -> rusqlite::Result<()>,
) -> Result<()> {
    let mut full = None;
    for part in items.chunks(chunk) {
        if part.len() == chunk {
            let st = match &mut full {
                Some(st) => st,
                None => full.insert(conn.prepare_cached(&sql_for(chunk))?),
            };
            bind(st, part)?;
            st.raw_execute()?;
        } else {
            let mut st = conn.prepare(&sql_for(part.len()))?;
            bind(&mut st, part)?;
            st.raw_execute()?;
        }
    }
    Ok(())
}

/// The `record` columns shared by every record of an upload (checked, not assumed).
#[derive(PartialEq)]
struct Shared<'a> {
    campaign_id: i64,
    status: i64,
    call: Option<i64>,
    reason: Option<i64>,
    current: i64,
    attempts: i64,
    contact_id: Option<&'a str>,
    base_id: Option<i64>,
    origin: i64,
    time_zone: Option<&'a str>,
    next_eligible_ms: Option<i64>,
    created_ms: i64,
    history: Option<&'a str>,
    has_task: i64,
}

fn shared_columns(r: &NewRow) -> Shared<'_> {
    Shared {
        campaign_id: r.campaign_id,
        status: r.status,
        call: r.call,
        reason: r.reason,
        current: r.current,
        attempts: r.attempts,
        contact_id: r.contact_id.as_deref(),
        base_id: r.base_id,
        origin: r.origin,
        time_zone: r.time_zone.as_deref(),
        next_eligible_ms: r.next_eligible_ms,
        created_ms: r.created_ms,
        history: r.history.as_deref(),
        has_task: r.has_task,
    }
}

/// Inserts the batch's records with their ids: the shared columns bound once per statement,
/// nine per record.
fn insert_records(conn: &Connection, rows: &[(i64, &GoodLine)]) -> Result<()> {
    const SHARED: usize = 14;
    const OWN: usize = 9;
    let Some((_, first)) = rows.first() else {
        return Ok(());
    };
    let shared = shared_columns(&first.row);
    if rows.iter().any(|(_, g)| shared_columns(&g.row) != shared) {
        // Never the case for an upload; kept exact anyway.
        for (id, g) in rows {
            insert_record_row(conn, *id, &g.row)?;
        }
        return Ok(());
    }
    let sql_for = |k: usize| {
        // OR ROLLBACK: a constraint that fails ends the transaction (the import fails with
        // the error and the batch is rolled back whole, as with ABORT), so SQLite keeps no
        // statement journal (a copy of every page the statement changes) to undo one
        // statement alone.
        let mut sql = String::from(
            "INSERT OR ROLLBACK INTO record (id, campaign_id, status, call_id, finish_reason, current_slot,
                 priority, attempts, owner_agent, contact_id, base_id, source_line, origin,
                 time_zone, next_eligible_ms, created_ms, numbers, data, history, due_class,
                 order_priority, due_ms, has_task) VALUES ",
        );
        for i in 0..k {
            if i > 0 {
                sql.push_str(", ");
            }
            let o = SHARED + 1 + i * OWN;
            // Shared ?1..?14: campaign_id, status, call_id, finish_reason, current_slot,
            // attempts, contact_id, base_id, origin, time_zone, next_eligible_ms, created_ms,
            // history, has_task. Own: id, priority, owner_agent, source_line, numbers, data,
            // due_class, order_priority, due_ms.
            placeholders(
                &mut sql,
                [
                    o,
                    1,
                    2,
                    3,
                    4,
                    5,
                    o + 1,
                    6,
                    o + 2,
                    7,
                    8,
                    o + 3,
                    9,
                    10,
                    11,
                    12,
                    o + 4,
                    o + 5,
                    13,
                    o + 6,
                    o + 7,
                    o + 8,
                    14,
                ],
            );
        }
        sql
    };
    let r = &first.row;
    chunked(conn, rows, RECORD_CHUNK, sql_for, |st, part| {
        st.raw_bind_parameter(1, r.campaign_id)?;
        st.raw_bind_parameter(2, r.status)?;
        st.raw_bind_parameter(3, r.call)?;
        st.raw_bind_parameter(4, r.reason)?;
        st.raw_bind_parameter(5, r.current)?;
        st.raw_bind_parameter(6, r.attempts)?;
        st.raw_bind_parameter(7, &r.contact_id)?;
        st.raw_bind_parameter(8, r.base_id)?;
        st.raw_bind_parameter(9, r.origin)?;
        st.raw_bind_parameter(10, &r.time_zone)?;
        st.raw_bind_parameter(11, r.next_eligible_ms)?;
        st.raw_bind_parameter(12, r.created_ms)?;
        st.raw_bind_parameter(13, &r.history)?;
        st.raw_bind_parameter(14, r.has_task)?;
        for (i, (id, g)) in part.iter().enumerate() {
            let o = SHARED + 1 + i * OWN;
            st.raw_bind_parameter(o, id)?;
            st.raw_bind_parameter(o + 1, g.row.priority)?;
            st.raw_bind_parameter(o + 2, &g.row.owner_agent)?;
            st.raw_bind_parameter(o + 3, g.row.source_line)?;
            st.raw_bind_parameter(o + 4, &g.row.numbers)?;
            st.raw_bind_parameter(o + 5, &g.row.data)?;
            st.raw_bind_parameter(o + 6, g.row.due_class)?;
            st.raw_bind_parameter(o + 7, g.row.order_priority)?;
            st.raw_bind_parameter(o + 8, g.row.due_ms)?;
        }
        Ok(())
    })
}

/// One record row with its id, every column bound.
fn insert_record_row(conn: &Connection, id: i64, r: &NewRow) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO record (id, campaign_id, status, call_id, finish_reason, current_slot,
             priority, attempts, owner_agent, contact_id, base_id, source_line, origin,
             time_zone, next_eligible_ms, created_ms, numbers, data, history, due_class,
             order_priority, due_ms, has_task)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        id,
        r.campaign_id,
        r.status,
        r.call,
        r.reason,
        r.current,
        r.priority,
        r.attempts,
        r.owner_agent,
        r.contact_id,
        r.base_id,
        r.source_line,
        r.origin,
        r.time_zone,
        r.next_eligible_ms,
        r.created_ms,
        r.numbers,
        r.data,
        r.history,
        r.due_class,
        r.order_priority,
        r.due_ms,
        r.has_task,
    ])?;
    Ok(())
}

/// Where a chunk's numbers go: a column of numbers (the main numbers, the alternatives)
/// that ascends through the chunk (9 in 10 of them above the one before, as in a list sorted
/// by number) falls on a few neighbouring pages of `destination` and goes there directly; a
/// column that does not (shuffled numbers) goes to `destination_recent` (see [`Recent`]).
/// Either way each number is in one of the two tables.
fn ascends(keys: &[i64]) -> bool {
    let pairs = keys.len().saturating_sub(1);
    let up = keys.windows(2).filter(|w| w[1] > w[0]).count();
    pairs > 0 && up * 10 >= pairs * 9
}

/// Writes the numbers of the batch's live records, each column where [`ascends`] sends it;
/// returns how many went to `destination_recent`, and how many in all.
fn insert_destinations(
    conn: &Connection,
    campaign_id: i64,
    rows: &[(i64, &GoodLine)],
) -> Result<(u64, u64)> {
    let live = || rows.iter().filter(|(_, g)| g.row.live);
    let mains: Vec<(i64, i64)> = live()
        .filter_map(|(id, g)| g.row.keys.first().map(|k| (*id, *k)))
        .collect();
    let alternatives: Vec<(i64, i64)> = live()
        .flat_map(|(id, g)| g.row.keys.iter().skip(1).map(move |k| (*id, *k)))
        .collect();
    let (mut recent, all) = (0, (mains.len() + alternatives.len()) as u64);
    for column in [mains, alternatives] {
        let keys: Vec<i64> = column.iter().map(|(_, k)| *k).collect();
        let table = if ascends(&keys) {
            "destination"
        } else {
            recent += column.len() as u64;
            "destination_recent"
        };
        insert_destination_rows(conn, table, campaign_id, &column)?;
    }
    Ok((recent, all))
}

/// Multi-row inserts of `(record id, number)` rows into `table`.
fn insert_destination_rows(
    conn: &Connection,
    table: &str,
    campaign_id: i64,
    numbers: &[(i64, i64)],
) -> Result<()> {
    let sql_for = |k: usize| {
        let mut sql =
            format!("INSERT OR IGNORE INTO {table} (campaign_id, number, record_id) VALUES ");
        for i in 0..k {
            if i > 0 {
                sql.push_str(", ");
            }
            placeholders(&mut sql, [1, 2 + i * 2, 3 + i * 2]);
        }
        sql
    };
    chunked(conn, numbers, DESTINATION_CHUNK, sql_for, |st, part| {
        st.raw_bind_parameter(1, campaign_id)?;
        for (i, (id, k)) in part.iter().enumerate() {
            st.raw_bind_parameter(2 + i * 2, *k)?;
            st.raw_bind_parameter(3 + i * 2, id)?;
        }
        Ok(())
    })
}

fn store_reject(
    conn: &Connection,
    base_id: i64,
    r: &Reject,
    summary: &mut ImportSummary,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO import_reject (base_id, line_no, reason, detail, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![base_id, r.line as i64, r.reason.code(), r.detail, r.raw])?;
    summary.rejected += 1;
    *summary.rejected_by_reason.entry(r.reason).or_insert(0) += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent_rows(conn: &Connection, table: &str) -> Vec<(i64, i64, i64)> {
        conn.prepare(&format!(
            "SELECT campaign_id, number, record_id FROM {table} ORDER BY 1, 2, 3"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
    }

    #[test]
    fn merging_recent_destinations_moves_every_row_once_in_slices() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SpoolStore::open(dir.path().join("spool.db")).unwrap();
        let conn = &mut store.conn;
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO destination VALUES (1, 59890000005, 1), (2, 59890000001, 2);
             INSERT INTO destination_recent VALUES (1, 59890000009, 3), (1, 59890000001, 4),
                 (2, 59890000001, 5), (1, 59890000001, 3), (1, 59890000007, 6),
                 (1, 59890000002, 7), (3, 1, 8);",
        )
        .unwrap();
        let mut want = recent_rows(conn, "destination");
        want.extend(recent_rows(conn, "destination_recent"));
        want.sort_unstable();
        // Slices of 3 rows: three transactions, the last one partial.
        merge_recent(conn, 3, None).unwrap();
        assert_eq!(recent_rows(conn, "destination"), want);
        assert!(recent_rows(conn, "destination_recent").is_empty());
        // Nothing to move: nothing changes.
        merge_recent(conn, 3, None).unwrap();
        assert_eq!(recent_rows(conn, "destination"), want);
    }
}
