//! What a supervisor reads from the ledger about a campaign (seed rows E10, U23, U24): talk
//! and hold time, the longest conversation, and the service level of answered calls.

use crate::codes::ms;
use crate::error::Result;
use crate::records;
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;

/// A campaign's conversations and queue service since a moment (ECCP `getcampaignstatus`
/// `stats` with `datetime_start`, uContact `campaignstatus`, UCCX `stats?CSQ`). Counted over
/// attempts placed at or after `since`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CampaignStats {
    /// Attempts placed.
    pub attempts: u64,
    /// Conversations that ended (connected or short).
    pub conversations: u64,
    /// Their talk seconds (ECCP `total_sec`).
    pub talk_s: u64,
    /// The longest of them (ECCP `max_duration`).
    pub max_talk_s: u64,
    /// Seconds callees spent on hold, closed holds of every attempt.
    pub hold_s: u64,
    /// Answered calls that entered the queue.
    pub queued: u64,
    /// Of those, taken by an agent within the service-level threshold.
    pub answered_in_time: u64,
    /// Of those queued, abandoned (hung up waiting or taken too late).
    pub abandoned: u64,
    /// `answered_in_time / (queued calls that ended or were taken)`; `None` before any.
    pub service_level: Option<f64>,
    /// The threshold the service level is measured against, seconds.
    pub service_level_s: u32,
}

impl SpoolStore {
    /// The campaign's conversation and queue figures for attempts placed at or after `since`
    /// (all attempts when `None`); the service level counts queued calls taken by an agent
    /// within `service_level_s` seconds of entering the queue, over the queued calls that
    /// were taken or ended.
    pub fn campaign_stats(
        &self,
        campaign: &str,
        since: Option<DateTime<Utc>>,
        service_level_s: u32,
    ) -> Result<CampaignStats> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let since = since.map_or(i64::MIN, ms);
        let row = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*),
                    COALESCE(SUM(outcome IN ('connected', 'short_call')), 0),
                    COALESCE(SUM(CASE WHEN outcome IN ('connected', 'short_call') THEN talk_s END), 0),
                    COALESCE(MAX(CASE WHEN outcome IN ('connected', 'short_call') THEN talk_s END), 0),
                    COALESCE(SUM(hold_ms), 0) / 1000,
                    COALESCE(SUM(queued_ms IS NOT NULL), 0),
                    COALESCE(SUM(queued_ms IS NOT NULL AND linked_ms IS NOT NULL
                        AND linked_ms - queued_ms <= ?3 * 1000), 0),
                    COALESCE(SUM(queued_ms IS NOT NULL AND outcome = 'abandoned'), 0),
                    COALESCE(SUM(queued_ms IS NOT NULL
                        AND (linked_ms IS NOT NULL OR outcome IS NOT NULL)), 0)
                 FROM attempt WHERE campaign_id = ?1 AND started_ms >= ?2",
            )?
            .query_row(params![cid, since, service_level_s], |r| {
                Ok([
                    r.get::<_, i64>(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                ])
            })?;
        let n = |i: usize| u64::try_from(row[i]).unwrap_or(0);
        let settled = n(8);
        Ok(CampaignStats {
            attempts: n(0),
            conversations: n(1),
            talk_s: n(2),
            max_talk_s: n(3),
            hold_s: n(4),
            queued: n(5),
            answered_in_time: n(6),
            abandoned: n(7),
            service_level: (settled > 0).then(|| n(6) as f64 / settled as f64),
            service_level_s,
        })
    }
}
