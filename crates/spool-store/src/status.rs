//! Campaign status counters (ECCP getcampaignstatus), queue-wait histogram
//! (getcampaignqueuewait) and the campaign progress log (campaignlog).

use crate::codes::{self, from_ms, id_from_sql, id_to_sql, ms};
use crate::error::Result;
use crate::records;
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::{CallId, CampaignId, Event, Progress, RecordId};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// ECCP `getcampaignstatus` counters of an outgoing campaign, from the spool and the ledger.
///
/// - `total`: records in the campaign; `pending`: pending records never attempted.
/// - `placing`, `ringing`, `onqueue`: attempts in flight, by how far they got (`dialing`
///   counts as placing, an attempt linked to an agent but not ended counts as success, or as
///   `onhold` while its callee is on hold).
/// - the rest count ended attempts by outcome: `success` = connected, `shortcall`,
///   `abandoned`, `noanswer` = no answer or answering machine, `failure` = busy, rejected,
///   congestion, invalid number or Originate refused, `unknown` = lost track (crash,
///   backend reset; ECCP's `losttrack`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CampaignStatus {
    pub total: u64,
    pub pending: u64,
    pub placing: u64,
    pub ringing: u64,
    pub onqueue: u64,
    pub success: u64,
    pub onhold: u64,
    pub failure: u64,
    pub shortcall: u64,
    pub noanswer: u64,
    pub abandoned: u64,
    pub unknown: u64,
    /// Records finished (any reason) and records in flight, for operators.
    pub finished: u64,
    pub in_flight: u64,
    /// Records taken out of dialing by an operator, not finished (UCCX INACTIVE).
    pub inactive: u64,
}

/// ECCP `getcampaignqueuewait`: seconds from entering the queue to an agent, in 5-second
/// buckets `[0,4] [5,9] … [25,29]` and `≥30`, plus abandoned calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QueueWaitHistogram {
    pub buckets: [u64; 7],
    pub abandoned: u64,
}

/// One campaign log entry (ECCP campaignlog `logentry`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    pub id: u64,
    pub at: DateTime<Utc>,
    pub campaign: String,
    pub call: Option<CallId>,
    pub record: Option<RecordId>,
    /// `placing`, `dialing`, `ringing`, `on_queue`, `success`, `on_hold`, `off_hold`,
    /// `hangup`, `short_call`,
    /// `failure`, `no_answer`, `abandoned`, `machine`, `unknown`.
    pub status: String,
    /// Attempt number of the record for this call (1 = first).
    pub retry: Option<u32>,
    pub phone: Option<String>,
    /// The agent who talked (else the one the call was placed for).
    pub agent: Option<String>,
    pub detail: Option<String>,
    /// On `hangup` and `short_call`: the conversation's seconds; on `off_hold`: the hold's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u32>,
    /// The telephone system's unique id of the call (Asterisk `Uniqueid` of the originated
    /// channel), once it reported one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    /// The channel the call went out on (its trunk), once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The queue the answered call entered, once reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

impl SpoolStore {
    /// The counters of one campaign.
    pub fn campaign_status(&self, campaign: &str) -> Result<CampaignStatus> {
        self.campaign_status_since(campaign, None)
    }

    /// The counters of one campaign with the attempt counts (placing … unknown) limited to
    /// attempts placed at or after `since` (ECCP `getcampaignstatus` `datetime_start`); the
    /// record counts (total, pending, finished, in flight) are the campaign's now.
    pub fn campaign_status_since(
        &self,
        campaign: &str,
        since: Option<DateTime<Utc>>,
    ) -> Result<CampaignStatus> {
        let since = since.map_or(i64::MIN, ms);
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut s = CampaignStatus::default();
        // Pending records off the ready index, the others off the index of the rest.
        let (pending, fresh): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(attempts = 0), 0) FROM record INDEXED BY record_ready
                 WHERE campaign_id = ?1 AND status = 0",
            )?
            .query_row([cid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        s.total += pending as u64;
        s.pending = fresh as u64;
        let mut st = self.conn.prepare_cached(
            "SELECT status, COUNT(*) FROM record INDEXED BY record_not_pending
             WHERE status <> 0 AND status IN (1, 2, 3) AND campaign_id = ?1 GROUP BY status",
        )?;
        let rows = st.query_map([cid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            let n = n as u64;
            s.total += n;
            match status {
                codes::STATUS_IN_FLIGHT => s.in_flight += n,
                codes::STATUS_FINISHED => s.finished += n,
                codes::STATUS_INACTIVE => s.inactive += n,
                _ => {}
            }
        }
        let mut st = self.conn.prepare_cached(
            "SELECT progress, hold_since_ms IS NOT NULL, COUNT(*) FROM attempt
             WHERE campaign_id = ?1 AND outcome IS NULL AND started_ms >= ?2 GROUP BY 1, 2",
        )?;
        let rows = st.query_map(params![cid, since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (p, on_hold, n) = row?;
            let n = n as u64;
            match p.as_str() {
                "placing" | "dialing" => s.placing += n,
                "ringing" => s.ringing += n,
                "on_queue" => s.onqueue += n,
                "linked" if on_hold => s.onhold += n,
                "linked" => s.success += n,
                _ => {}
            }
        }
        let mut st = self.conn.prepare_cached(
            "SELECT outcome, COUNT(*) FROM attempt WHERE campaign_id = ?1 AND outcome IS NOT NULL
                 AND started_ms >= ?2
             GROUP BY outcome",
        )?;
        let rows = st.query_map(params![cid, since], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (o, n) = row?;
            let n = n as u64;
            match o.as_str() {
                "connected" => s.success += n,
                "short_call" => s.shortcall += n,
                "abandoned" => s.abandoned += n,
                "no_answer" | "machine" => s.noanswer += n,
                "unknown" => s.unknown += n,
                _ => s.failure += n,
            }
        }
        Ok(s)
    }

    /// The queue-wait histogram of a campaign's attempts.
    pub fn queue_wait(&self, campaign: &str) -> Result<QueueWaitHistogram> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut h = QueueWaitHistogram::default();
        let mut st = self.conn.prepare_cached(
            "SELECT MIN((linked_ms - queued_ms) / 5000, 6), COUNT(*) FROM attempt
             WHERE campaign_id = ?1 AND queued_ms IS NOT NULL AND linked_ms IS NOT NULL
                 AND linked_ms >= queued_ms
             GROUP BY 1",
        )?;
        let rows = st.query_map([cid], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (b, n) = row?;
            h.buckets[b.clamp(0, 6) as usize] += n as u64;
        }
        h.abandoned = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM attempt WHERE campaign_id = ?1 AND outcome = 'abandoned'",
            )?
            .query_row([cid], |r| r.get::<_, i64>(0))? as u64;
        Ok(h)
    }

    /// Records a call-progress report: moves the ledger's in-call state (and queue/agent
    /// times) and appends to the campaign log.
    pub fn log_progress(
        &mut self,
        campaign: &str,
        call: CallId,
        record: &RecordId,
        progress: &Progress,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, campaign)?;
        let call_sql = id_to_sql("call id", call.0)?;
        // The number, the reserved agent, the linked agent and the link time, as before
        // this report.
        // The call's identity on the telephone system (unique id, channel, queue) as far as
        // it was reported.
        type Ledger = (
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            [Option<String>; 3],
        );
        let ledger: Option<Ledger> = tx
            .prepare_cached(
                "SELECT e164, agent, linked_agent, linked_ms, unique_id, channel, queue
                 FROM attempt WHERE call_id = ?1",
            )?
            .query_row([call_sql], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    [r.get(4)?, r.get(5)?, r.get(6)?],
                ))
            })
            .optional()?;
        if let Some(state) = codes::progress_ledger_state(progress) {
            let linked_agent = match progress {
                Progress::Success { agent } => Some(agent.as_str()),
                _ => None,
            };
            tx.prepare_cached(
                "UPDATE attempt SET progress = ?2,
                     queued_ms = CASE WHEN ?2 = 'on_queue' THEN ?3 ELSE queued_ms END,
                     linked_ms = CASE WHEN ?2 = 'linked' THEN ?3 ELSE linked_ms END,
                     linked_agent = COALESCE(?4, linked_agent)
                 WHERE call_id = ?1 AND outcome IS NULL",
            )?
            .execute(params![call_sql, state, ms(at), linked_agent])?;
        }
        let mut held_ms = None;
        match progress {
            Progress::OnHold => {
                tx.prepare_cached(
                    "UPDATE attempt SET hold_since_ms = COALESCE(hold_since_ms, ?2)
                     WHERE call_id = ?1 AND outcome IS NULL",
                )?
                .execute(params![call_sql, ms(at)])?;
            }
            Progress::OffHold => held_ms = crate::ledger::close_hold(&tx, call_sql, at)?,
            _ => {}
        }
        let retry: Option<i64> = tx
            .prepare_cached("SELECT COUNT(*) FROM attempt WHERE record_id = ?1 AND call_id <= ?2")?
            .query_row(params![id_to_sql("record id", record.0)?, call_sql], |r| {
                r.get(0)
            })
            .optional()?;
        let (agent, detail) = match progress {
            Progress::Success { agent } => (Some(agent.to_string()), None),
            Progress::Failure { class } => (None, Some(format!("{class:?}").to_lowercase())),
            // The agent who talked, else the one the call was placed for.
            _ => (
                ledger
                    .as_ref()
                    .and_then(|l| l.2.clone().or_else(|| l.1.clone())),
                None,
            ),
        };
        // A conversation's end carries its length: link to the report of the end, rounded
        // to the second as the ledger's talk time is.
        let duration_s = match progress {
            Progress::Hangup | Progress::ShortCall => ledger
                .as_ref()
                .and_then(|l| l.3)
                .map(|linked| ((ms(at) - linked).max(0) as f64 / 1000.0).round() as i64),
            // A hold's end carries the hold's length (ECCP `pauseend` of a hold).
            Progress::OffHold => held_ms.map(|h| (h as f64 / 1000.0).round() as i64),
            _ => None,
        };
        let [unique_id, channel, queue] = ledger.as_ref().map(|l| l.4.clone()).unwrap_or_default();
        tx.prepare_cached(
            "INSERT INTO campaign_log (campaign_id, at_ms, call_id, record_id, status, retry, phone,
                 agent, detail, duration_s, unique_id, channel, queue)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            cid,
            ms(at),
            call_sql,
            id_to_sql("record id", record.0)?,
            codes::progress_log_status(progress),
            retry,
            ledger.map(|l| l.0),
            agent,
            detail,
            duration_s,
            unique_id,
            channel,
            queue
        ])?;
        tx.commit()?;
        Ok(())
    }

    /// Feeds an engine event to the log: `Event::Progress` is recorded, other events are
    /// ignored. Returns whether it was recorded.
    pub fn log_event(&mut self, event: &Event) -> Result<bool> {
        match event {
            Event::Progress {
                at,
                campaign,
                call,
                record,
                progress,
            } => {
                self.log_progress(&campaign.0, *call, record, progress, *at)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The log of a campaign between two moments, inclusive, oldest first.
    pub fn campaign_log(
        &self,
        campaign: &CampaignId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LogEntry>> {
        let cid = records::campaign_id(&self.conn, &campaign.0)?;
        let mut st = self.conn.prepare_cached(
            "SELECT id, at_ms, call_id, record_id, status, retry, phone, agent, detail, duration_s,
                 unique_id, channel, queue
             FROM campaign_log WHERE campaign_id = ?1 AND at_ms BETWEEN ?2 AND ?3 ORDER BY at_ms, id",
        )?;
        type Raw = (
            i64,
            i64,
            Option<i64>,
            Option<i64>,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<i64>,
            [Option<String>; 3],
        );
        let rows: Vec<Raw> = st
            .query_map(params![cid, ms(from), ms(to)], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    [r.get(10)?, r.get(11)?, r.get(12)?],
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(
                |(id, at, call, rec, status, retry, phone, agent, detail, duration, ident)| {
                    let [unique_id, channel, queue] = ident;
                    Ok(LogEntry {
                        id: id_from_sql(id)?,
                        at: from_ms(at)?,
                        campaign: campaign.to_string(),
                        call: call.map(id_from_sql).transpose()?.map(CallId),
                        record: rec.map(id_from_sql).transpose()?.map(RecordId),
                        status,
                        retry: retry.and_then(|r| u32::try_from(r).ok()),
                        phone,
                        agent,
                        detail,
                        duration_s: duration.and_then(|d| u32::try_from(d).ok()),
                        unique_id,
                        channel,
                        queue,
                    })
                },
            )
            .collect()
    }
}
