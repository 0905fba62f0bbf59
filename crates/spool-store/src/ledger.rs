//! The attempt ledger and the core's store updates.
//!
//! An attempt row is written (and committed) by `StoreUpdate::AttemptStarted` before the
//! driver lets the Originate leave, and closed by `StoreUpdate::AttemptEnded`. Each of the two
//! also moves the record with the core's own rules (`begin_attempt` / `finish_attempt`) in the
//! same transaction, so the record and the ledger agree after every commit even if the
//! engine's following `StoreUpdate::Record` snapshot never arrives (crash). When the snapshot
//! does arrive it simply overwrites the record with the engine's view.
//!
//! After a crash, [`SpoolStore::reconcile`] closes every attempt without an outcome as
//! `unknown` and reschedules its record after a safety delay: the call may have reached the
//! callee, so it is neither redialed at once nor forgotten.

use crate::codes::{self, from_ms, id_from_sql, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::records::{self, load_record, update_record};
use crate::store::SpoolStore;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use dialer_core::rules::next_step::{begin_attempt, finish_attempt};
use dialer_core::{AbandonPeriod, CallId, CallOutcome, RecordId, RecordStatus, StoreUpdate};
use rusqlite::{params, Connection, OptionalExtension};

/// The longest unique id, channel or queue name the ledger keeps.
pub const MAX_IDENTITY_LEN: usize = 256;

/// The shortest delay before a record whose call was lost in a crash may be dialed again,
/// whatever the campaign's `retry.unknown_s` says.
pub const MIN_RECONCILE_DELAY_S: i64 = 300;

/// How long a record whose attempt was left open by a crash waits before it may be dialed again.
fn reconcile_delay(camp: &dialer_core::Campaign) -> Duration {
    Duration::seconds(i64::from(camp.retry.unknown_s).max(MIN_RECONCILE_DELAY_S))
}

/// What [`SpoolStore::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Attempts that had no outcome, now closed as `unknown`.
    pub attempts_closed: Vec<CallId>,
    /// Records moved out of "in flight" (or held back) after a safety delay.
    pub records_rescheduled: Vec<RecordId>,
}

/// One row of the attempt ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub call: CallId,
    pub campaign: String,
    pub record: RecordId,
    pub e164: String,
    pub agent: Option<String>,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub outcome: Option<CallOutcome>,
    /// Closed by reconciliation after a crash, not by a report from the backend.
    pub reconciled: bool,
    /// When the answered call entered the queue.
    pub queued_at: Option<DateTime<Utc>>,
    /// When an agent took it.
    pub linked_at: Option<DateTime<Utc>>,
    /// The agent it was linked to (`agent` is the one it was reserved for, if any).
    pub linked_agent: Option<String>,
    /// Time the callee spent on hold, milliseconds (a hold still open counts up to now only
    /// once it closes: see `on_hold_since`).
    pub hold_ms: u64,
    /// Since when the callee is on hold, if the call is up and on hold.
    pub on_hold_since: Option<DateTime<Utc>>,
    /// The telephone system's unique id of the call (Asterisk: the originated channel's
    /// `Uniqueid`), once reported.
    pub unique_id: Option<String>,
    /// The channel the call went out on (its trunk), once reported.
    pub channel: Option<String>,
    /// The queue the answered call entered, once reported.
    pub queue: Option<String>,
}

fn count_to_sql(what: &'static str, v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::IdOutOfRange { what, value: v })
}

impl SpoolStore {
    /// The abandonment books the engine persisted for a campaign, oldest period first: what
    /// a restarted engine is handed back ([`dialer_core::Command::RestoreAbandonBooks`]).
    pub fn abandon_books(&self, campaign: &str) -> Result<Vec<AbandonPeriod>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut stmt = self.conn.prepare_cached(
            "SELECT period_start, live, abandoned, machines FROM abandon_period
             WHERE campaign_id = ?1 ORDER BY period_start",
        )?;
        let rows = stmt.query_map([cid], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut periods = Vec::new();
        for row in rows {
            let (start, live, abandoned, machines) = row?;
            let count = |v: i64| {
                u64::try_from(v).map_err(|_| {
                    StoreError::Corrupt(format!("abandonment count {v} of {campaign} is negative"))
                })
            };
            periods.push(AbandonPeriod {
                start: NaiveDate::parse_from_str(&start, "%Y-%m-%d").map_err(|e| {
                    StoreError::Corrupt(format!(
                        "abandonment period start {start:?} of {campaign}: {e}"
                    ))
                })?,
                live: count(live)?,
                abandoned: count(abandoned)?,
                machines: count(machines)?,
            });
        }
        Ok(periods)
    }

    /// Applies one output of the core in one transaction.
    pub fn apply(&mut self, update: &StoreUpdate) -> Result<()> {
        let tx = self.conn.transaction()?;
        apply_in(&tx, update)?;
        tx.commit()?;
        Ok(())
    }

    /// Applies several outputs in one transaction (all or none).
    pub fn apply_all<'a>(
        &mut self,
        updates: impl IntoIterator<Item = &'a StoreUpdate>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        for u in updates {
            apply_in(&tx, u)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Closes the attempts a crash left open and makes their records consistent with the
    /// ledger. Run by [`SpoolStore::open`]; safe to run again (it finds nothing to do).
    pub fn reconcile(&mut self, now: DateTime<Utc>) -> Result<ReconcileReport> {
        let tx = self.conn.transaction()?;
        let report = reconcile_in(&tx, now)?;
        tx.commit()?;
        if !report.attempts_closed.is_empty() || !report.records_rescheduled.is_empty() {
            tracing::warn!(
                attempts = report.attempts_closed.len(),
                records = report.records_rescheduled.len(),
                "reconciled attempts left open by a crash"
            );
        }
        Ok(report)
    }

    /// A ledger row.
    pub fn attempt(&self, call: CallId) -> Result<AttemptRow> {
        let id = id_to_sql("call id", call.0)?;
        self.conn
            .prepare_cached(&format!("{ATTEMPT_SELECT} WHERE a.call_id = ?1"))?
            .query_row([id], map_attempt)
            .optional()?
            .ok_or(StoreError::UnknownAttempt(call))?
    }

    /// Every ledger row of a campaign, oldest call first.
    pub fn attempts(&self, campaign: &str) -> Result<Vec<AttemptRow>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut st = self.conn.prepare_cached(&format!(
            "{ATTEMPT_SELECT} WHERE a.campaign_id = ?1 ORDER BY a.call_id"
        ))?;
        let rows: Vec<_> = st
            .query_map([cid], map_attempt)?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().collect()
    }

    /// Calls of unknown fate placed at or after `since`: their rows were closed by a
    /// restart's reconciliation, so the calls may still be up on the PBX. A restarted engine
    /// holds a line for each ([`dialer_core::Command::HoldLines`]). Oldest first, as
    /// `(campaign, call, placed at)`.
    pub fn calls_of_unknown_fate(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, CallId, DateTime<Utc>)>> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.name, a.call_id, a.started_ms FROM attempt a \
             JOIN campaign c ON c.id = a.campaign_id \
             WHERE a.reconciled = 1 AND a.started_ms >= ?1 ORDER BY a.call_id",
        )?;
        let rows: Vec<(String, i64, i64)> = st
            .query_map([ms(since)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(c, call, at)| Ok((c, CallId(id_from_sql(call)?), from_ms(at)?)))
            .collect()
    }

    /// Records what the telephone system calls a call (seed rows E3, E12, E19): its unique
    /// id, the channel (trunk) it went out on, the queue it entered. A value not given keeps
    /// what is there; each is at most [`MAX_IDENTITY_LEN`] characters without control
    /// characters. Answers whether the ledger has the call.
    pub fn set_call_identity(
        &mut self,
        call: CallId,
        unique_id: Option<&str>,
        channel: Option<&str>,
        queue: Option<&str>,
    ) -> Result<bool> {
        for (field, v) in [
            ("unique_id", unique_id),
            ("channel", channel),
            ("queue", queue),
        ] {
            if let Some(v) = v {
                if v.is_empty()
                    || v.chars().count() > MAX_IDENTITY_LEN
                    || v.chars().any(char::is_control)
                {
                    return Err(StoreError::InvalidField {
                        field: field.into(),
                        problem: format!(
                            "{v:?} is empty, longer than {MAX_IDENTITY_LEN} characters or holds a \
                             control character"
                        ),
                    });
                }
            }
        }
        let n = self
            .conn
            .prepare_cached(
                "UPDATE attempt SET unique_id = COALESCE(?2, unique_id),
                     channel = COALESCE(?3, channel), queue = COALESCE(?4, queue)
                 WHERE call_id = ?1",
            )?
            .execute(params![
                id_to_sql("call id", call.0)?,
                unique_id,
                channel,
                queue
            ])?;
        Ok(n > 0)
    }

    /// The largest call id in the ledger, so a restarted engine mints fresh ones.
    pub fn max_call_id(&self) -> Result<Option<CallId>> {
        let v: Option<i64> = self
            .conn
            .prepare_cached("SELECT MAX(call_id) FROM attempt")?
            .query_row([], |r| r.get(0))?;
        v.map(|v| id_from_sql(v).map(CallId)).transpose()
    }

    /// The spool's own id: eight hex digits drawn once when the spool was created (or
    /// upgraded to the schema that has it), the same on every open. The Asterisk backend
    /// names its channels after it, so call ids of two spools never meet on one PBX.
    pub fn spool_id(&self) -> Result<String> {
        let id: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM spool_meta WHERE key = 'spool_id'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        match id {
            Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()) => Ok(id),
            Some(id) => Err(StoreError::Corrupt(format!(
                "spool id {id:?} is not alphanumeric"
            ))),
            None => Err(StoreError::Corrupt("the spool has no spool id".into())),
        }
    }
}

const ATTEMPT_SELECT: &str =
    "SELECT a.call_id, c.name, a.record_id, a.e164, a.agent, a.started_ms, \
    a.ended_ms, a.outcome, a.talk_s, a.reconciled, a.queued_ms, a.linked_ms, a.linked_agent, \
    a.hold_ms, a.hold_since_ms, a.unique_id, a.channel, a.queue FROM attempt a JOIN campaign c ON c.id = a.campaign_id";

fn map_attempt(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AttemptRow>> {
    let call: i64 = r.get(0)?;
    let campaign: String = r.get(1)?;
    let record: i64 = r.get(2)?;
    let e164: String = r.get(3)?;
    let agent: Option<String> = r.get(4)?;
    let started: i64 = r.get(5)?;
    let ended: Option<i64> = r.get(6)?;
    let outcome: Option<String> = r.get(7)?;
    let talk: Option<i64> = r.get(8)?;
    let reconciled: i64 = r.get(9)?;
    let queued: Option<i64> = r.get(10)?;
    let linked: Option<i64> = r.get(11)?;
    let linked_agent: Option<String> = r.get(12)?;
    let hold_ms: i64 = r.get(13)?;
    let hold_since: Option<i64> = r.get(14)?;
    let unique_id: Option<String> = r.get(15)?;
    let channel: Option<String> = r.get(16)?;
    let queue: Option<String> = r.get(17)?;
    Ok((|| {
        Ok(AttemptRow {
            call: CallId(id_from_sql(call)?),
            campaign,
            record: RecordId(id_from_sql(record)?),
            e164,
            agent,
            started_at: from_ms(started)?,
            ended_at: ended.map(from_ms).transpose()?,
            outcome: outcome
                .map(|o| codes::parse_outcome(&o, talk.and_then(|t| u32::try_from(t).ok())))
                .transpose()?,
            reconciled: reconciled != 0,
            queued_at: queued.map(from_ms).transpose()?,
            linked_at: linked.map(from_ms).transpose()?,
            linked_agent,
            hold_ms: u64::try_from(hold_ms).unwrap_or(0),
            on_hold_since: hold_since.map(from_ms).transpose()?,
            unique_id,
            channel,
            queue,
        })
    })())
}

pub(crate) fn apply_in(conn: &Connection, update: &StoreUpdate) -> Result<()> {
    match update {
        StoreUpdate::AttemptStarted {
            call,
            campaign,
            record,
            number,
            agent,
            at,
        } => {
            let (cid, camp) = records::campaign_row(conn, &campaign.0)?;
            let call_sql = id_to_sql("call id", call.0)?;
            let exists: bool = conn
                .prepare_cached("SELECT EXISTS(SELECT 1 FROM attempt WHERE call_id = ?1)")?
                .query_row([call_sql], |r| r.get(0))?;
            if exists {
                return Err(StoreError::DuplicateAttempt(*call));
            }
            let mut rec = load_record(conn, record)?;
            match &rec.status {
                RecordStatus::Pending => {
                    begin_attempt(&mut rec, &camp, *call, *at);
                    update_record(conn, &rec)?;
                }
                RecordStatus::InFlight { call: c } if c == call => {}
                RecordStatus::InFlight { .. } => {
                    return Err(StoreError::RecordInFlight(record.clone()))
                }
                RecordStatus::Finished { .. } => {
                    return Err(StoreError::InvalidRecord {
                        record: record.clone(),
                        problem: format!("{call} started on a finished record"),
                    })
                }
                RecordStatus::Inactive { .. } => {
                    return Err(StoreError::InvalidRecord {
                        record: record.clone(),
                        problem: format!("{call} started on an inactive record"),
                    })
                }
            }
            conn.prepare_cached(
                "INSERT INTO attempt (call_id, campaign_id, record_id, e164, dial, agent, started_ms,
                     progress)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'placing')",
            )?
            .execute(params![
                call_sql,
                cid,
                id_to_sql("record id", record.0)?,
                number.e164(),
                number.dial_string(),
                agent.as_ref().map(|a| a.as_str()),
                ms(*at)
            ])?;
        }
        StoreUpdate::AttemptEnded {
            call,
            record,
            outcome,
            at,
        } => {
            let call_sql = id_to_sql("call id", call.0)?;
            let row: Option<(i64, Option<String>)> = conn
                .prepare_cached("SELECT record_id, outcome FROM attempt WHERE call_id = ?1")?
                .query_row([call_sql], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((rid, old)) = row else {
                return Err(StoreError::UnknownAttempt(*call));
            };
            if id_from_sql(rid)? != record.0 {
                return Err(StoreError::InvalidRecord {
                    record: record.clone(),
                    problem: format!("{call} belongs to record {rid}"),
                });
            }
            if let Some(old) = old {
                // Replayed after a restart: the same outcome is a no-op, another is a conflict.
                if old == codes::outcome(outcome) {
                    return Ok(());
                }
                return Err(StoreError::InvalidRecord {
                    record: record.clone(),
                    problem: format!("{call} already ended as {old}"),
                });
            }
            // A hold still open when the call ends closes with it.
            let _ = close_hold(conn, call_sql, *at)?;
            conn.prepare_cached(
                "UPDATE attempt SET outcome = ?2, ended_ms = ?3, talk_s = ?4, progress = 'ended'
                 WHERE call_id = ?1",
            )?
            .execute(params![
                call_sql,
                codes::outcome(outcome),
                ms(*at),
                codes::talk_s(outcome).map(i64::from)
            ])?;
            let mut rec = load_record(conn, record)?;
            if rec.status == (RecordStatus::InFlight { call: *call }) {
                let (_, camp) = records::campaign_row(conn, &rec.campaign.0)?;
                finish_attempt(&mut rec, &camp, *outcome, *at);
                update_record(conn, &rec)?;
            }
        }
        StoreUpdate::Record(rec) => update_record(conn, rec)?,
        StoreUpdate::AbandonBooks { campaign, period } => {
            let cid = records::campaign_id(conn, &campaign.0)?;
            conn.prepare_cached(
                "INSERT INTO abandon_period (campaign_id, period_start, live, abandoned, machines)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (campaign_id, period_start) DO UPDATE SET
                     live = excluded.live, abandoned = excluded.abandoned,
                     machines = excluded.machines",
            )?
            .execute(params![
                cid,
                period.start.format("%Y-%m-%d").to_string(),
                count_to_sql("live answers", period.live)?,
                count_to_sql("abandons", period.abandoned)?,
                count_to_sql("machine verdicts", period.machines)?,
            ])?;
        }
        // The update carries no time; `added_ms` is informational, the wall clock will do.
        StoreUpdate::BlacklistAdded(entry) => {
            crate::ops::blacklist_upsert(conn, entry, Utc::now())?
        }
        StoreUpdate::BlacklistRemoved { number, scope } => {
            crate::ops::blacklist_delete(conn, number, scope)?;
        }
    }
    Ok(())
}

/// Ends an open hold of a call still in progress at `at`: its length joins the attempt's
/// `hold_ms` and is returned (`None`: the call was not on hold). The one rule for the unhold
/// report and for a call that ends on hold.
pub(crate) fn close_hold(
    conn: &Connection,
    call_sql: i64,
    at: DateTime<Utc>,
) -> Result<Option<i64>> {
    let since: Option<i64> = conn
        .prepare_cached(
            "SELECT hold_since_ms FROM attempt
             WHERE call_id = ?1 AND outcome IS NULL AND hold_since_ms IS NOT NULL",
        )?
        .query_row(params![call_sql], |r| r.get(0))
        .optional()?;
    let Some(since) = since else {
        return Ok(None);
    };
    let held = (ms(at) - since).max(0);
    conn.prepare_cached(
        "UPDATE attempt SET hold_ms = hold_ms + ?2, hold_since_ms = NULL WHERE call_id = ?1",
    )?
    .execute(params![call_sql, held])?;
    Ok(Some(held))
}

fn hold_back(rec: &mut dialer_core::SpoolRecord, until: DateTime<Utc>) {
    if rec.status == RecordStatus::Pending && rec.next_eligible_at.is_none_or(|t| t < until) {
        rec.next_eligible_at = Some(until);
    }
}

fn reconcile_in(conn: &Connection, now: DateTime<Utc>) -> Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let open: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT call_id, record_id FROM attempt WHERE outcome IS NULL ORDER BY call_id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (call_sql, rid) in open {
        let call = CallId(id_from_sql(call_sql)?);
        conn.prepare_cached(
            "UPDATE attempt SET outcome = 'unknown', ended_ms = ?2, progress = 'ended',
                 reconciled = 1 WHERE call_id = ?1",
        )?
        .execute(params![call_sql, ms(now)])?;
        report.attempts_closed.push(call);
        let rid = RecordId(id_from_sql(rid)?);
        let mut rec = load_record(conn, &rid)?;
        let (_, camp) = records::campaign_row(conn, &rec.campaign.0)?;
        if rec.status == (RecordStatus::InFlight { call }) {
            finish_attempt(&mut rec, &camp, CallOutcome::Unknown, now);
        }
        hold_back(&mut rec, now + reconcile_delay(&camp));
        update_record(conn, &rec)?;
        report.records_rescheduled.push(rid);
    }
    // Records left in flight whose ledger row is closed (or missing): finish them from the
    // ledger, or as unknown.
    let stuck: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT id, call_id FROM record INDEXED BY record_not_pending
             WHERE status <> 0 AND status = 1",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (rid, call_sql) in stuck {
        let rid = RecordId(id_from_sql(rid)?);
        let call = CallId(id_from_sql(call_sql)?);
        let mut rec = load_record(conn, &rid)?;
        let (cid, camp) = records::campaign_row(conn, &rec.campaign.0)?;
        let ended: Option<(String, Option<i64>, i64)> = conn
            .prepare_cached("SELECT outcome, talk_s, ended_ms FROM attempt WHERE call_id = ?1")?
            .query_row([call_sql], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match ended {
            Some((o, talk, at)) => {
                let outcome = codes::parse_outcome(&o, talk.and_then(|t| u32::try_from(t).ok()))?;
                finish_attempt(&mut rec, &camp, outcome, from_ms(at)?);
            }
            None => {
                let number = rec.number_to_dial().cloned();
                let (e164, dial) = number
                    .as_ref()
                    .map_or(("", ""), |n| (n.e164(), n.dial_string()));
                conn.prepare_cached(
                    "INSERT INTO attempt (call_id, campaign_id, record_id, e164, dial, started_ms,
                         progress, ended_ms, outcome, reconciled)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'ended', ?6, 'unknown', 1)",
                )?
                .execute(params![
                    call_sql,
                    cid,
                    id_to_sql("record id", rid.0)?,
                    e164,
                    dial,
                    ms(now)
                ])?;
                report.attempts_closed.push(call);
                finish_attempt(&mut rec, &camp, CallOutcome::Unknown, now);
                hold_back(&mut rec, now + reconcile_delay(&camp));
            }
        }
        update_record(conn, &rec)?;
        report.records_rescheduled.push(rid);
    }
    Ok(report)
}
