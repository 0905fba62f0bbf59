//! A campaign's lifecycle (ECCP `getcampaignlist` status): active, inactive (an operator
//! stopped it for good), finished (its list is spent: no pending record, none in flight). A
//! finished campaign is re-opened when records are added or on request. Listing filters by
//! status, dial mode, name and dates, with offset and limit.

use crate::codes::{from_ms, ms};
use crate::error::{Result, StoreError};
use crate::records;
use crate::store::SpoolStore;
use chrono::{DateTime, NaiveDate, Utc};
use dialer_core::{Campaign, DialMode};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Most campaigns one listing returns.
pub const MAX_LIST: u32 = 1_000;

/// Where a campaign is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Dialing when started; takes records and callbacks.
    Active,
    /// Stopped for good by an operator until activated again; refuses callbacks.
    Inactive,
    /// Its list is spent; refuses callbacks; re-opened when records are added.
    Finished,
}

impl CampaignState {
    /// `campaign.status` (`CHECK (status BETWEEN 0 AND 2)`).
    pub fn code(self) -> i64 {
        match self {
            CampaignState::Active => 0,
            CampaignState::Inactive => 1,
            CampaignState::Finished => 2,
        }
    }

    fn from_code(v: i64) -> Result<CampaignState> {
        Ok(match v {
            0 => CampaignState::Active,
            1 => CampaignState::Inactive,
            2 => CampaignState::Finished,
            other => return Err(StoreError::Corrupt(format!("campaign status {other}"))),
        })
    }

    /// As people and the API read it.
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Active => "active",
            CampaignState::Inactive => "inactive",
            CampaignState::Finished => "finished",
        }
    }
}

impl std::fmt::Display for CampaignState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The dial mode's name (`preview`, `progressive`, `power`, `predictive`).
pub fn dial_mode_name(m: &DialMode) -> &'static str {
    match m {
        DialMode::Preview => "preview",
        DialMode::Progressive => "progressive",
        DialMode::Power { .. } => "power",
        DialMode::Predictive => "predictive",
    }
}

/// One campaign of a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignListing {
    pub name: String,
    pub state: CampaignState,
    /// When the state last changed (`None`: active since it was created).
    pub state_since: Option<DateTime<Utc>>,
    /// `preview`, `progressive`, `power`, `predictive`.
    pub dial_mode: &'static str,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
}

/// What a listing keeps (every field optional; all given must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFilter {
    pub state: Option<CampaignState>,
    /// A dial mode name.
    pub dial_mode: Option<String>,
    /// Part of the name, any case.
    pub name: Option<String>,
    /// Campaigns whose dates reach this day or later (no end date: always).
    pub from: Option<NaiveDate>,
    /// Campaigns whose dates begin this day or earlier (no start date: always).
    pub to: Option<NaiveDate>,
    #[serde(default)]
    pub offset: u32,
    /// At most this many (default 100, at most [`MAX_LIST`]).
    pub limit: Option<u32>,
}

/// A page of campaigns and how many matched in all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignPage {
    pub total: u64,
    pub campaigns: Vec<CampaignListing>,
}

impl CampaignFilter {
    fn check(&self) -> Result<u32> {
        let bad = |problem: String| StoreError::InvalidFilter { problem };
        if let Some(m) = &self.dial_mode {
            if !["preview", "progressive", "power", "predictive"].contains(&m.as_str()) {
                return Err(bad(format!(
                    "dial mode {m:?} is none of preview, progressive, power, predictive"
                )));
            }
        }
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if t < f {
                return Err(bad(format!("`to` {t} is before `from` {f}")));
            }
        }
        let limit = self.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_LIST {
            return Err(bad(format!("limit must be 1 to {MAX_LIST}")));
        }
        Ok(limit)
    }

    fn keeps(&self, state: CampaignState, c: &Campaign) -> bool {
        self.state.is_none_or(|s| s == state)
            && self
                .dial_mode
                .as_deref()
                .is_none_or(|m| m == dial_mode_name(&c.dial_mode))
            && self
                .name
                .as_deref()
                .is_none_or(|n| c.id.as_str().to_lowercase().contains(&n.to_lowercase()))
            && self
                .from
                .is_none_or(|f| c.end_date.is_none_or(|end| end >= f))
            && self
                .to
                .is_none_or(|t| c.start_date.is_none_or(|start| start <= t))
    }
}

impl SpoolStore {
    /// When a base file of this name was last imported to the end into the campaign, if it
    /// ever was (its upload id and when it finished). `dialer run` reads it so a restart
    /// does not import its configured bases again: that would give the numbers of records
    /// already finished (dialed to their attempt cap, found invalid) fresh records.
    pub fn imported_base(
        &self,
        campaign: &str,
        file_name: &str,
    ) -> Result<Option<(u64, DateTime<Utc>)>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let row: Option<(i64, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT id, finished_ms FROM base
                 WHERE campaign_id = ?1 AND file_name = ?2 AND state = 'done'
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![cid, file_name], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((id, Some(at))) => Ok(Some((id as u64, from_ms(at)?))),
            Some((id, None)) => Err(StoreError::Corrupt(format!(
                "upload {id} is done but has no finishing time"
            ))),
            None => Ok(None),
        }
    }

    /// A campaign's state and since when.
    pub fn campaign_state(&self, name: &str) -> Result<(CampaignState, Option<DateTime<Utc>>)> {
        let cid = records::campaign_id(&self.conn, name)?;
        let (code, at): (i64, Option<i64>) = self
            .conn
            .prepare_cached("SELECT status, status_ms FROM campaign WHERE id = ?1")?
            .query_row([cid], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok((
            CampaignState::from_code(code)?,
            at.map(from_ms).transpose()?,
        ))
    }

    /// Sets a campaign's state; returns the one it had.
    pub fn set_campaign_state(
        &mut self,
        name: &str,
        state: CampaignState,
        at: DateTime<Utc>,
    ) -> Result<CampaignState> {
        let (old, _) = self.campaign_state(name)?;
        if old != state {
            self.conn
                .prepare_cached("UPDATE campaign SET status = ?2, status_ms = ?3 WHERE name = ?1")?
                .execute(params![name, state.code(), ms(at)])?;
        }
        Ok(old)
    }

    /// Whether a campaign's list is spent: no pending record, none in flight and none
    /// inactive (an inactive record may come back; read off the ready index and the index of
    /// the rest).
    pub fn campaign_spent(&self, name: &str) -> Result<bool> {
        let cid = records::campaign_id(&self.conn, name)?;
        let live: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS(SELECT 1 FROM record INDEXED BY record_ready
                     WHERE campaign_id = ?1 AND status = 0)
                 OR EXISTS(SELECT 1 FROM record INDEXED BY record_not_pending
                     WHERE status <> 0 AND status IN (1, 3) AND campaign_id = ?1)",
            )?
            .query_row([cid], |r| r.get(0))?;
        Ok(!live)
    }

    /// Campaigns by name that pass the filter, `offset` and `limit` applied after filtering.
    pub fn list_campaigns(&self, filter: &CampaignFilter) -> Result<CampaignPage> {
        let limit = filter.check()?;
        let mut st = self.conn.prepare_cached(
            "SELECT name, status, status_ms, created_ms FROM campaign ORDER BY name",
        )?;
        let rows: Vec<(String, i64, Option<i64>, i64)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut total = 0u64;
        let mut out = Vec::new();
        for (name, code, at, created) in rows {
            let state = CampaignState::from_code(code)?;
            let c = self.campaign(&name)?;
            if !filter.keeps(state, &c) {
                continue;
            }
            total += 1;
            if total <= u64::from(filter.offset) || out.len() >= limit as usize {
                continue;
            }
            out.push(CampaignListing {
                dial_mode: dial_mode_name(&c.dial_mode),
                start_date: c.start_date,
                end_date: c.end_date,
                name,
                state,
                state_since: at.map(from_ms).transpose()?,
                created_at: from_ms(created)?,
            });
        }
        Ok(CampaignPage {
            total,
            campaigns: out,
        })
    }
}
