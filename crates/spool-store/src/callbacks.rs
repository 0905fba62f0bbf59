//! Callback records as the UCCX callback server knows them (seed rows C2, C4, C8, C10): a
//! record found by the id its caller gave it, removed by id, and its position in the queue.

use crate::codes::{id_from_sql, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::records::{self, load_record, update_record};
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::{RecordId, RecordStatus, SpoolRecord};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

/// Where a pending record stands in its campaign's queue (UCCX `getcontactpositionoffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QueuePosition {
    /// Pending records of the campaign the dialer takes before this one: those before it in
    /// dial order (due class, priority, attempts, queue start, id), due or not yet due.
    pub ahead: u64,
    /// Of those, the ones due now.
    pub ahead_due: u64,
}

impl SpoolStore {
    /// The record a campaign knows by `external_id` (UCCX `getrecord`).
    pub fn record_by_external_id(&self, campaign: &str, external_id: &str) -> Result<SpoolRecord> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT id FROM record WHERE campaign_id = ?1 AND external_id = ?2")?
            .query_row(params![cid, external_id], |r| r.get(0))
            .optional()?;
        let id = id.ok_or_else(|| StoreError::UnknownExternalId {
            campaign: campaign.to_owned(),
            external_id: external_id.to_owned(),
        })?;
        load_record(&self.conn, &RecordId(id_from_sql(id)?))
    }

    /// The external id of a record, if its caller gave one.
    pub fn external_id(&self, record: &RecordId) -> Result<Option<String>> {
        let id = id_to_sql("record id", record.0)?;
        self.conn
            .prepare_cached("SELECT external_id FROM record WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .ok_or_else(|| StoreError::UnknownRecord(record.clone()))
    }

    /// Finishes one record as removed (UCCX `removerecord`): it is never dialed again and
    /// its callback and task go with it. A record with a call in flight is refused
    /// ([`StoreError::RecordInFlight`]); a finished one stays as it is (removing it again
    /// changes nothing). Returns whether the record was live.
    pub fn remove_record(&mut self, record: &RecordId) -> Result<bool> {
        let tx = self.conn.transaction()?;
        let mut rec = load_record(&tx, record)?;
        match rec.status {
            RecordStatus::InFlight { .. } => {
                return Err(StoreError::RecordInFlight(record.clone()))
            }
            RecordStatus::Finished { .. } => return Ok(false),
            RecordStatus::Pending => {}
        }
        crate::ops::finish_removed(&mut rec);
        update_record(&tx, &rec)?;
        tx.commit()?;
        Ok(true)
    }

    /// How many pending records of its campaign the dialer takes before `record` (UCCX
    /// `getcontactpositionoffset`), counted off the ready index. A record that is not
    /// pending has no place in the queue ([`StoreError::InvalidRecord`]).
    pub fn queue_position(&self, record: &RecordId, now: DateTime<Utc>) -> Result<QueuePosition> {
        let id = id_to_sql("record id", record.0)?;
        type Key = (i64, i64, i64, i64, i64, i64);
        let key: Option<Key> = self
            .conn
            .prepare_cached(
                "SELECT campaign_id, status, due_class, order_priority, attempts, created_ms
                 FROM record WHERE id = ?1",
            )?
            .query_row([id], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .optional()?;
        let (cid, status, class, prio, attempts, created) =
            key.ok_or_else(|| StoreError::UnknownRecord(record.clone()))?;
        if status != 0 {
            return Err(StoreError::InvalidRecord {
                record: record.clone(),
                problem: "it is not waiting in the queue (it is in flight or finished)".into(),
            });
        }
        let (ahead, due): (i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), COALESCE(SUM(due_ms <= ?7), 0) FROM record INDEXED BY record_ready
                 WHERE campaign_id = ?1 AND status = 0
                   AND (due_class, order_priority, attempts, created_ms, id) < (?2, ?3, ?4, ?5, ?6)",
            )?
            .query_row(
                params![cid, class, prio, attempts, created, id, ms(now)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
        Ok(QueuePosition {
            ahead: u64::try_from(ahead).unwrap_or(0),
            ahead_due: u64::try_from(due).unwrap_or(0),
        })
    }
}
