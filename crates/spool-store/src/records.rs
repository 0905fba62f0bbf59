//! Reading and writing spool records (one row with its numbers inline, plus schedule and
//! task rows) and the denormalized columns the ready-set index is built on. Every live
//! number is also in `destination`, keyed by [`number_key`]: that is the de-dup lookup.

use crate::codes::{self, from_ms, id_from_sql, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::formats;
use chrono::{Duration, NaiveDate, NaiveTime};
use dialer_core::rules::ordering::{due_class, DueClass};
use dialer_core::{
    AgentId, AttemptHistory, CallId, CallOptions, Campaign, CampaignId, DialOrder, DialerTask,
    ManualStart, NumberSlot, PhoneNumber, RecordId, RecordStatus, Schedule, ScheduleId,
    ScheduleWhen, SpoolRecord, TaskId, TaskTiming, SCHEDULE_PRIORITY,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// How a record came into the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Import,
    Respool,
    Schedule,
    Task,
}

impl Origin {
    /// `record.origin` (`CHECK (origin BETWEEN 0 AND 3)`).
    pub fn code(self) -> i64 {
        match self {
            Origin::Import => 0,
            Origin::Respool => 1,
            Origin::Schedule => 2,
            Origin::Task => 3,
        }
    }
}

/// Where a new record came from, beyond what `SpoolRecord` holds.
#[derive(Debug, Clone, Copy)]
pub struct Provenance {
    pub origin: Origin,
    pub source_line: Option<u64>,
}

/// Earliest UTC offset in use (+14:00): a range schedule's local start can be no earlier
/// than its naive start minus this, whatever the callee's zone.
const MAX_ZONE_AHEAD_H: i64 = 14;

/// The moment before which the record cannot be due, from the rules that are pure time:
/// retry delay, exact schedule, dated task, start of a range schedule. The ready set offers
/// records at or after it; the core's eligibility still has the last word. 0 = due now (no
/// time before 1970 is ever "not yet").
pub fn due_ms(rec: &SpoolRecord) -> i64 {
    let mut due = rec.next_eligible_at.map_or(0, ms);
    if let Some(s) = &rec.schedule {
        let t = match &s.when {
            ScheduleWhen::At { at } => ms(*at),
            ScheduleWhen::Range {
                start_date,
                start_time,
                ..
            } => ms(start_date.and_time(*start_time).and_utc() - Duration::hours(MAX_ZONE_AHEAD_H)),
        };
        due = due.max(t);
    }
    if let Some(DialerTask {
        timing: TaskTiming::At { at },
        ..
    }) = &rec.task
    {
        due = due.max(ms(*at));
    }
    due.max(0)
}

/// `(due_class, order_priority)` of the core's `order_key`.
pub fn order_columns(rec: &SpoolRecord) -> (i64, i64) {
    let class = due_class(rec);
    let prio = if class == DueClass::Schedule {
        SCHEDULE_PRIORITY
    } else {
        rec.priority
    };
    (class as i64, i64::from(prio))
}

/// `(status, call_id, finish_reason, inactive_ms)`.
type StatusColumns = (i64, Option<i64>, Option<i64>, Option<i64>);

fn status_columns(rec: &SpoolRecord) -> Result<StatusColumns> {
    Ok(match &rec.status {
        RecordStatus::Pending => (codes::STATUS_PENDING, None, None, None),
        RecordStatus::InFlight { call } => (
            codes::STATUS_IN_FLIGHT,
            Some(id_to_sql("call id", call.0)?),
            None,
            None,
        ),
        RecordStatus::Finished { reason } => (
            codes::STATUS_FINISHED,
            None,
            Some(codes::finish_reason(*reason)),
            None,
        ),
        RecordStatus::Inactive { since } => (codes::STATUS_INACTIVE, None, None, Some(ms(*since))),
    })
}

fn check_shape(rec: &SpoolRecord) -> Result<()> {
    if rec.numbers.is_empty() {
        return Err(StoreError::InvalidRecord {
            record: rec.id.clone(),
            problem: "a record needs at least one number".into(),
        });
    }
    if rec.current >= rec.numbers.len() {
        return Err(StoreError::InvalidRecord {
            record: rec.id.clone(),
            problem: format!("current number {} of {}", rec.current, rec.numbers.len()),
        });
    }
    Ok(())
}

/// The `numbers` column: `e164,dial,attempts,state` per number, `;` between them.
pub fn numbers_text(numbers: &[NumberSlot]) -> String {
    let mut out = String::with_capacity(numbers.len() * 28);
    for (i, s) in numbers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(s.number.e164());
        out.push(',');
        out.push_str(s.number.dial_string());
        out.push(',');
        out.push_str(itoa(s.attempts).as_str());
        out.push(',');
        out.push(codes::number_state(s.state));
    }
    out
}

fn itoa(v: u32) -> String {
    if v == 0 {
        "0".into()
    } else {
        v.to_string()
    }
}

/// The `destination` key of an E.164 number: its digits as an integer (E.164 has at most
/// 15 digits and never starts with 0, so nothing is lost).
pub fn number_key(e164: &str) -> Result<i64> {
    let digits = e164.strip_prefix('+').unwrap_or("");
    if digits.is_empty()
        || digits.len() > 15
        || digits.starts_with('0')
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(StoreError::Corrupt(format!(
            "number {e164:?} is not in E.164 form"
        )));
    }
    digits
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("number {e164:?} is not in E.164 form")))
}

/// The campaign's row id and settings.
pub fn campaign_row(conn: &Connection, name: &str) -> Result<(i64, Campaign)> {
    let row: Option<(i64, String, String)> = conn
        .prepare_cached("SELECT id, time_zone, settings FROM campaign WHERE name = ?1")?
        .query_row([name], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (id, zone, settings) = row.ok_or_else(|| StoreError::UnknownCampaign(name.to_owned()))?;
    Ok((id, formats::decode_campaign(name, &zone, &settings)?))
}

pub fn campaign_id(conn: &Connection, name: &str) -> Result<i64> {
    conn.prepare_cached("SELECT id FROM campaign WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownCampaign(name.to_owned()))
}

/// The column values of a new record: its `record` row (without the id, which the store
/// assigns), its `destination` keys, and whether it is live (then its numbers go to
/// `destination`). Pure: the import computes it off the writer thread.
#[derive(Debug, Clone)]
pub struct NewRow {
    pub campaign_id: i64,
    pub status: i64,
    pub call: Option<i64>,
    pub reason: Option<i64>,
    /// Since when an inactive record is inactive (`None` for every other status).
    pub inactive_ms: Option<i64>,
    pub current: i64,
    pub priority: i64,
    pub attempts: i64,
    pub owner_agent: Option<String>,
    pub contact_id: Option<String>,
    pub base_id: Option<i64>,
    pub source_line: Option<i64>,
    pub origin: i64,
    pub time_zone: Option<String>,
    pub next_eligible_ms: Option<i64>,
    pub created_ms: i64,
    pub numbers: String,
    pub data: Option<String>,
    pub history: Option<String>,
    pub due_class: i64,
    pub order_priority: i64,
    pub due_ms: i64,
    pub has_task: i64,
    /// The `destination` keys of the numbers ([`number_key`]), in order.
    pub keys: Vec<i64>,
    pub live: bool,
}

impl NewRow {
    /// The row of a new record (schedule and task are written separately).
    pub fn new(
        campaign_id: i64,
        rec: &SpoolRecord,
        base_id: Option<i64>,
        prov: Provenance,
    ) -> Result<NewRow> {
        check_shape(rec)?;
        let (status, call, reason, inactive_ms) = status_columns(rec)?;
        let (class, prio) = order_columns(rec);
        Ok(NewRow {
            campaign_id,
            status,
            call,
            reason,
            inactive_ms,
            current: rec.current as i64,
            priority: i64::from(rec.priority),
            attempts: i64::from(rec.attempts),
            owner_agent: rec.owner_agent.as_ref().map(|a| a.to_string()),
            contact_id: rec.contact_id.clone(),
            base_id,
            source_line: prov.source_line.map(|l| l as i64),
            origin: prov.origin.code(),
            time_zone: rec.time_zone.clone(),
            next_eligible_ms: rec.next_eligible_at.map(ms),
            created_ms: ms(rec.created_at),
            numbers: numbers_text(&rec.numbers),
            data: formats::encode_data(&rec.data)?,
            history: formats::encode_history(&rec.history)?,
            due_class: class,
            order_priority: prio,
            due_ms: due_ms(rec),
            has_task: rec.task.is_some() as i64,
            keys: rec
                .numbers
                .iter()
                .map(|s| number_key(s.number.e164()))
                .collect::<Result<_>>()?,
            live: !rec.is_finished(),
        })
    }
}

/// Inserts a new record; the store assigns its id (the one in `rec` is ignored).
pub fn insert_record(
    conn: &Connection,
    campaign_id: i64,
    rec: &SpoolRecord,
    base_id: Option<i64>,
    prov: Provenance,
) -> Result<RecordId> {
    let row = NewRow::new(campaign_id, rec, base_id, prov)?;
    conn.prepare_cached(
        "INSERT INTO record (campaign_id, status, call_id, finish_reason, current_slot, priority,
             attempts, owner_agent, contact_id, base_id, source_line, origin, time_zone,
             next_eligible_ms, created_ms, numbers, data, history, due_class, order_priority,
             due_ms, has_task, inactive_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
             ?18, ?19, ?20, ?21, ?22, ?23)",
    )?
    .execute(params![
        row.campaign_id,
        row.status,
        row.call,
        row.reason,
        row.current,
        row.priority,
        row.attempts,
        row.owner_agent,
        row.contact_id,
        row.base_id,
        row.source_line,
        row.origin,
        row.time_zone,
        row.next_eligible_ms,
        row.created_ms,
        row.numbers,
        row.data,
        row.history,
        row.due_class,
        row.order_priority,
        row.due_ms,
        row.has_task,
        row.inactive_ms,
    ])?;
    let id = conn.last_insert_rowid();
    let rid = RecordId(id_from_sql(id)?);
    if row.live {
        add_destinations(conn, campaign_id, id, &row.keys)?;
    }
    if rec.schedule.is_some() {
        write_schedule(conn, id, rec.schedule.as_ref())?;
    }
    if rec.task.is_some() {
        write_task(conn, id, rec.task.as_ref())?;
    }
    Ok(rid)
}

/// The tables a live number may be in: `destination`, and `destination_recent` where an
/// import puts the numbers it adds until it merges them (`import.rs`). A number is in one of
/// them, never both.
pub const DESTINATION_TABLES: [&str; 2] = ["destination", "destination_recent"];

/// SQL selecting `columns` of every live destination matching `condition`, from both
/// [`DESTINATION_TABLES`] (`UNION ALL` with the condition in each arm, so each is a search of
/// that table's key: SQLite does not push an `IN` into a compound subquery). The one way
/// destinations are read.
pub fn destinations_where(columns: &str, condition: &str) -> String {
    DESTINATION_TABLES
        .iter()
        .map(|t| format!("SELECT {columns} FROM {t} WHERE {condition}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Removes a record's numbers from the destinations (from whichever table holds them).
fn remove_destinations(conn: &Connection, campaign_id: i64, id: i64, keys: &[i64]) -> Result<()> {
    for table in DESTINATION_TABLES {
        let mut st = conn.prepare_cached(&format!(
            "DELETE FROM {table} WHERE campaign_id = ?1 AND number = ?2 AND record_id = ?3"
        ))?;
        for k in keys {
            st.execute(params![campaign_id, k, id])?;
        }
    }
    Ok(())
}

fn add_destinations(conn: &Connection, campaign_id: i64, id: i64, keys: &[i64]) -> Result<()> {
    let mut st = conn.prepare_cached(
        "INSERT OR IGNORE INTO destination (campaign_id, number, record_id) VALUES (?1, ?2, ?3)",
    )?;
    for k in keys {
        st.execute(params![campaign_id, k, id])?;
    }
    Ok(())
}

fn write_schedule(conn: &Connection, id: i64, s: Option<&Schedule>) -> Result<()> {
    conn.prepare_cached("DELETE FROM schedule WHERE record_id = ?1")?
        .execute([id])?;
    let Some(s) = s else { return Ok(()) };
    let (kind, at, sd, ed, st, et) = match &s.when {
        ScheduleWhen::At { at } => ("at", Some(ms(*at)), None, None, None, None),
        ScheduleWhen::Range {
            start_date,
            end_date,
            start_time,
            end_time,
        } => (
            "range",
            None,
            Some(start_date.to_string()),
            Some(end_date.to_string()),
            Some(start_time.format("%H:%M:%S%.f").to_string()),
            Some(end_time.format("%H:%M:%S%.f").to_string()),
        ),
    };
    conn.prepare_cached(
        "INSERT INTO schedule (record_id, schedule_id, kind, at_ms, start_date, end_date,
             start_time, end_time, agent, number_e164, number_dial)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        id,
        id_to_sql("schedule id", s.id.0)?,
        kind,
        at,
        sd,
        ed,
        st,
        et,
        s.agent.as_ref().map(|a| a.as_str()),
        s.number.as_ref().map(|n| n.e164()),
        s.number.as_ref().map(|n| n.dial_string()),
    ])?;
    Ok(())
}

fn write_task(conn: &Connection, id: i64, t: Option<&DialerTask>) -> Result<()> {
    conn.prepare_cached("DELETE FROM task WHERE record_id = ?1")?
        .execute([id])?;
    let Some(t) = t else { return Ok(()) };
    let (timing, at) = match t.timing {
        TaskTiming::At { at } => ("at", Some(ms(at))),
        TaskTiming::WhenFree => ("when_free", None),
    };
    conn.prepare_cached(
        "INSERT INTO task (record_id, task_id, timing, at_ms, kind, agent, caller_id, \
         dial_prefix, agent_first, preview) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id,
        id_to_sql("task id", t.id.0)?,
        timing,
        at,
        codes::task_kind(t.kind),
        t.agent.as_ref().map(|a| a.to_string()),
        t.call.caller_id,
        t.call.dial_prefix,
        (t.call.order == DialOrder::AgentFirst) as i64,
        (t.call.start == ManualStart::Preview) as i64,
    ])?;
    Ok(())
}

/// A fresh schedule id (ids are unique across the store's lifetime of current rows).
pub fn next_schedule_id(conn: &Connection) -> Result<ScheduleId> {
    let v: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(schedule_id), 0) + 1 FROM schedule")?
        .query_row([], |r| r.get(0))?;
    Ok(ScheduleId(id_from_sql(v)?))
}

pub fn next_task_id(conn: &Connection) -> Result<TaskId> {
    let v: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(task_id), 0) + 1 FROM task")?
        .query_row([], |r| r.get(0))?;
    Ok(TaskId(id_from_sql(v)?))
}

/// Overwrites a record with a snapshot (the core's `StoreUpdate::Record`).
pub fn update_record(conn: &Connection, rec: &SpoolRecord) -> Result<()> {
    check_shape(rec)?;
    let id = id_to_sql("record id", rec.id.0)?;
    let old: Option<(i64, i64, String)> = conn
        .prepare_cached("SELECT campaign_id, status, numbers FROM record WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((old_campaign, old_status, old_numbers)) = old else {
        return Err(StoreError::UnknownRecord(rec.id.clone()));
    };
    let campaign_id = campaign_id(conn, &rec.campaign.0)?;
    let (status, call, reason, inactive_ms) = status_columns(rec)?;
    let (class, prio) = order_columns(rec);
    conn.prepare_cached(
        "UPDATE record SET campaign_id = ?2, status = ?3, call_id = ?4, finish_reason = ?5,
             current_slot = ?6, priority = ?7, attempts = ?8, owner_agent = ?9, contact_id = ?10,
             time_zone = ?11, next_eligible_ms = ?12, numbers = ?13, data = ?14, history = ?15,
             due_class = ?16, order_priority = ?17, due_ms = ?18, has_task = ?19,
             inactive_ms = ?20
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        campaign_id,
        status,
        call,
        reason,
        rec.current as i64,
        i64::from(rec.priority),
        i64::from(rec.attempts),
        rec.owner_agent.as_ref().map(|a| a.as_str()),
        rec.contact_id,
        rec.time_zone,
        rec.next_eligible_at.map(ms),
        numbers_text(&rec.numbers),
        formats::encode_data(&rec.data)?,
        formats::encode_history(&rec.history)?,
        class,
        prio,
        due_ms(rec),
        rec.task.is_some() as i64,
        inactive_ms,
    ])?;
    // The destination index follows the live numbers.
    let old_keys: Vec<i64> = parse_numbers(id, Some(&old_numbers))?
        .iter()
        .map(|s| number_key(s.number.e164()))
        .collect::<Result<_>>()?;
    let keys: Vec<i64> = rec
        .numbers
        .iter()
        .map(|s| number_key(s.number.e164()))
        .collect::<Result<_>>()?;
    let was_live = old_status != codes::STATUS_FINISHED;
    let live = !rec.is_finished();
    if !(old_keys == keys && was_live == live && old_campaign == campaign_id) {
        if was_live {
            remove_destinations(conn, old_campaign, id, &old_keys)?;
        }
        if live {
            add_destinations(conn, campaign_id, id, &keys)?;
        }
    }
    write_schedule(conn, id, rec.schedule.as_ref())?;
    write_task(conn, id, rec.task.as_ref())?;
    Ok(())
}

pub const RECORD_COLUMNS: &str = "r.id, c.name, r.status, r.call_id, r.finish_reason, \
    r.current_slot, r.priority, r.attempts, r.owner_agent, r.contact_id, r.base_id, \
    r.time_zone, r.next_eligible_ms, r.created_ms, r.data, r.history, r.due_class, r.has_task, \
    r.numbers, r.inactive_ms";

/// A record row before its numbers, schedule and task are attached.
pub struct RowRecord {
    rec: SpoolRecord,
    row_id: i64,
    has_schedule: bool,
    has_task: bool,
}

/// Maps one row of [`RECORD_COLUMNS`] (or the ready-set query).
pub fn map_record_row(r: &Row<'_>) -> rusqlite::Result<Result<RowRecord>> {
    RowMapper::default().map(r)
}

/// Maps rows of [`RECORD_COLUMNS`] (or the ready-set query). Remembers the last history it
/// decoded: records dialed in the same way often share one.
#[derive(Default)]
pub struct RowMapper {
    history: Option<(String, AttemptHistory)>,
}

impl RowMapper {
    pub fn map(&mut self, r: &Row<'_>) -> rusqlite::Result<Result<RowRecord>> {
        let id: i64 = r.get(0)?;
        let campaign: String = r.get(1)?;
        let status: i64 = r.get(2)?;
        let call: Option<i64> = r.get(3)?;
        let reason: Option<i64> = r.get(4)?;
        let current: i64 = r.get(5)?;
        let priority: i64 = r.get(6)?;
        let attempts: i64 = r.get(7)?;
        let owner: Option<String> = r.get(8)?;
        let contact: Option<String> = r.get(9)?;
        let base: Option<i64> = r.get(10)?;
        let tz: Option<String> = r.get(11)?;
        let next: Option<i64> = r.get(12)?;
        let created: i64 = r.get(13)?;
        let data = r.get_ref(14)?.as_str_or_null()?;
        let history = r.get_ref(15)?.as_str_or_null()?;
        let class: i64 = r.get(16)?;
        let has_task: i64 = r.get(17)?;
        let numbers = r.get_ref(18)?.as_str_or_null()?;
        let inactive: Option<i64> = r.get(19)?;
        Ok((|| {
            let numbers = parse_numbers(id, numbers)?;
            let status = match (status, call, reason, inactive) {
                (codes::STATUS_PENDING, None, None, None) => RecordStatus::Pending,
                (codes::STATUS_IN_FLIGHT, Some(c), None, None) => RecordStatus::InFlight {
                    call: CallId(id_from_sql(c)?),
                },
                (codes::STATUS_FINISHED, None, Some(r), None) => RecordStatus::Finished {
                    reason: codes::parse_finish_reason(r)?,
                },
                (codes::STATUS_INACTIVE, None, None, Some(t)) => {
                    RecordStatus::Inactive { since: from_ms(t)? }
                }
                (s, ..) => return Err(StoreError::Corrupt(format!("record {id}: status {s}"))),
            };
            let data = formats::decode_data(id, data)?;
            let history = match (history, &self.history) {
                (None, _) => AttemptHistory::default(),
                (Some(text), Some((last, h))) if text == last => h.clone(),
                (Some(text), _) => {
                    let h = formats::decode_history(id, Some(text))?;
                    self.history = Some((text.to_owned(), h.clone()));
                    h
                }
            };
            let to_u32 = |v: i64, what: &str| {
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("record {id} {what} {v}")))
            };
            Ok(RowRecord {
                rec: SpoolRecord {
                    id: RecordId(id_from_sql(id)?),
                    campaign: CampaignId::from(campaign),
                    numbers,
                    current: usize::try_from(current).map_err(|_| {
                        StoreError::Corrupt(format!("record {id} current {current}"))
                    })?,
                    data,
                    priority: to_u32(priority, "priority")?,
                    owner_agent: owner.map(AgentId::from),
                    contact_id: contact,
                    base_id: base.map(id_from_sql).transpose()?,
                    time_zone: tz,
                    attempts: to_u32(attempts, "attempts")?,
                    status,
                    next_eligible_at: next.map(from_ms).transpose()?,
                    created_at: from_ms(created)?,
                    history,
                    schedule: None,
                    task: None,
                },
                row_id: id,
                has_schedule: class == DueClass::Schedule as i64,
                has_task: has_task != 0,
            })
        })())
    }
}

/// The numbers column ([`numbers_text`]): `e164,dial,attempts,state` per number, `;` between
/// numbers, the state a one-digit code. Digits, `+`, integers and state codes never hold
/// either separator, and anything else is refused as corrupt.
fn parse_numbers(id: i64, text: Option<&str>) -> Result<Vec<NumberSlot>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let corrupt = |item: &str| StoreError::Corrupt(format!("record {id} numbers: {item:?}"));
    text.split(';')
        .map(|item| {
            let mut f = item.split(',');
            let (Some(e164), Some(dial), Some(attempts), Some(state), None) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return Err(corrupt(item));
            };
            Ok(NumberSlot {
                number: phone(e164, dial)?,
                attempts: attempts.parse().map_err(|_| corrupt(item))?,
                state: codes::parse_number_state(state)?,
            })
        })
        .collect()
}

fn phone(e164: &str, dial: &str) -> Result<PhoneNumber> {
    PhoneNumber::from_trusted(e164, dial).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_date(s: &str) -> Result<NaiveDate> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("date {s:?}")))
}

fn parse_time(s: &str) -> Result<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .map_err(|_| StoreError::Corrupt(format!("time {s:?}")))
}

fn load_schedule(conn: &Connection, id: i64) -> Result<Option<Schedule>> {
    type Raw = (
        i64,
        String,
        Option<i64>,
        [Option<String>; 4],
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let raw: Option<Raw> = conn
        .prepare_cached(
            "SELECT schedule_id, kind, at_ms, start_date, end_date, start_time, end_time, agent,
                 number_e164, number_dial FROM schedule WHERE record_id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?],
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
            ))
        })
        .optional()?;
    let Some((sid, kind, at, [sd, ed, st, et], agent, e164, dial)) = raw else {
        return Ok(None);
    };
    let when = match (kind.as_str(), at, sd, ed, st, et) {
        ("at", Some(at), ..) => ScheduleWhen::At { at: from_ms(at)? },
        ("range", None, Some(sd), Some(ed), Some(st), Some(et)) => ScheduleWhen::Range {
            start_date: parse_date(&sd)?,
            end_date: parse_date(&ed)?,
            start_time: parse_time(&st)?,
            end_time: parse_time(&et)?,
        },
        _ => return Err(StoreError::Corrupt(format!("schedule of record {id}"))),
    };
    let number = match (e164, dial) {
        (Some(e), Some(d)) => Some(phone(&e, &d)?),
        _ => None,
    };
    Ok(Some(Schedule {
        id: ScheduleId(id_from_sql(sid)?),
        when,
        agent: agent.map(AgentId::from),
        number,
    }))
}

/// A task row as stored.
struct TaskRow {
    tid: i64,
    timing: String,
    at: Option<i64>,
    kind: String,
    agent: Option<String>,
    caller_id: Option<String>,
    dial_prefix: Option<String>,
    agent_first: bool,
    preview: bool,
}

fn load_task(conn: &Connection, id: i64) -> Result<Option<DialerTask>> {
    let raw = conn
        .prepare_cached(
            "SELECT task_id, timing, at_ms, kind, agent, caller_id, dial_prefix, agent_first, \
             preview FROM task WHERE record_id = ?1",
        )?
        .query_row([id], |r| {
            Ok(TaskRow {
                tid: r.get(0)?,
                timing: r.get(1)?,
                at: r.get(2)?,
                kind: r.get(3)?,
                agent: r.get(4)?,
                caller_id: r.get(5)?,
                dial_prefix: r.get(6)?,
                agent_first: r.get(7)?,
                preview: r.get(8)?,
            })
        })
        .optional()?;
    let Some(TaskRow {
        tid,
        timing,
        at,
        kind,
        agent,
        caller_id,
        dial_prefix,
        agent_first,
        preview,
    }) = raw
    else {
        return Ok(None);
    };
    let timing = match (timing.as_str(), at) {
        ("at", Some(at)) => TaskTiming::At { at: from_ms(at)? },
        ("when_free", None) => TaskTiming::WhenFree,
        _ => return Err(StoreError::Corrupt(format!("task of record {id}"))),
    };
    Ok(Some(DialerTask {
        id: TaskId(id_from_sql(tid)?),
        timing,
        kind: codes::parse_task_kind(&kind)?,
        agent: agent.map(AgentId::from),
        call: CallOptions {
            caller_id,
            dial_prefix,
            order: if agent_first {
                DialOrder::AgentFirst
            } else {
                DialOrder::CalleeFirst
            },
            start: if preview {
                ManualStart::Preview
            } else {
                ManualStart::DialNow
            },
        },
    }))
}

/// Attaches schedule and task to a row (numbers come with the row).
pub fn complete(conn: &Connection, row: RowRecord) -> Result<SpoolRecord> {
    let mut rec = row.rec;
    if rec.numbers.is_empty() || rec.current >= rec.numbers.len() {
        return Err(StoreError::Corrupt(format!(
            "record {} numbers",
            row.row_id
        )));
    }
    if row.has_schedule {
        rec.schedule = load_schedule(conn, row.row_id)?;
    }
    if row.has_task {
        rec.task = load_task(conn, row.row_id)?;
    }
    Ok(rec)
}

pub fn load_record(conn: &Connection, id: &RecordId) -> Result<SpoolRecord> {
    let rid = id_to_sql("record id", id.0)?;
    let row = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM record r JOIN campaign c ON c.id = r.campaign_id
             WHERE r.id = ?1"
        ))?
        .query_row([rid], map_record_row)
        .optional()?
        .ok_or_else(|| StoreError::UnknownRecord(id.clone()))??;
    complete(conn, row)
}

/// The live record of a campaign that has `e164` among its numbers (the oldest, if several).
pub fn live_record_with_number(
    conn: &Connection,
    campaign_id: i64,
    e164: &str,
) -> Result<Option<RecordId>> {
    Ok(live_records_with_number(conn, campaign_id, e164)?
        .into_iter()
        .next())
}

/// Every live record of a campaign that has `e164` among its numbers, oldest first.
pub fn live_records_with_number(
    conn: &Connection,
    campaign_id: i64,
    e164: &str,
) -> Result<Vec<RecordId>> {
    let sql = format!(
        "{} ORDER BY record_id",
        destinations_where("record_id", "campaign_id = ?1 AND number = ?2")
    );
    let ids: Vec<i64> = conn
        .prepare_cached(&sql)?
        .query_map(params![campaign_id, number_key(e164)?], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter()
        .map(|i| id_from_sql(i).map(RecordId))
        .collect()
}
