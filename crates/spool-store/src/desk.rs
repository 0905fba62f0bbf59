//! What happens around a dial, as the spool keeps it: each campaign's catalogues (result codes
//! with uContact's levels, breaks), the agent's conclusion of a record (who, which code, a
//! comment and tags, beside the dialer action), a record's data changed by an operator
//! (VICIdial `update_fields`), the breaks agents take and their sessions, and an agent's
//! activity summary (ECCP `getagentactivitysummary`).
//!
//! Catalogue entries are never deleted: setting a catalogue deactivates the entries it leaves
//! out, so conclusions and breaks recorded earlier keep their meaning.

use crate::codes::{from_ms, id_from_sql, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::records::{self, load_record, update_record};
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentId, CallId, CampaignId, Disposition, RecordId, RecordStatus, SpoolRecord, VariableName,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// Longest code, id, label, name or tag of a catalogue or a conclusion.
pub const MAX_LABEL: usize = 128;
/// Longest comment of a conclusion.
pub const MAX_COMMENT: usize = 4_000;
/// Most tags on one conclusion.
pub const MAX_TAGS: usize = 32;

/// One result code of a campaign's catalogue (VICIdial status, uContact's levels l1/l2/l3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultCode {
    /// What the agent sends (`SALE`, `NI`, `CB`).
    pub code: String,
    /// What people read.
    pub label: String,
    /// uContact's first level (a category), if the catalogue uses levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l3: Option<String>,
    /// An inactive code is kept for history and refused in new conclusions.
    #[serde(default = "yes")]
    pub active: bool,
}

/// One break of a campaign's catalogue (ECCP `getpauses`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakType {
    /// What a pause names (`lunch`, `training`).
    pub id: String,
    /// What people read.
    pub name: String,
    /// An inactive break is kept for history and refused in new pauses.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What the agent concluded about a record, beside the dialer action.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conclusion {
    /// Who concluded (the agent on the call, or an operator).
    #[serde(default)]
    pub agent: Option<AgentId>,
    /// A code of the campaign's catalogue; unknown and inactive codes are refused.
    #[serde(default)]
    pub result_code: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A conclusion as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispositionRow {
    pub id: u64,
    pub record: RecordId,
    /// The attempt it concludes (the record's latest when it was recorded).
    pub call: Option<CallId>,
    pub agent: Option<String>,
    pub result_code: Option<String>,
    /// The code's label and levels as the catalogue had them when read.
    pub result: Option<ResultCode>,
    pub comment: Option<String>,
    pub tags: Vec<String>,
    /// `done`, `respool`, `respool_alternative`, `blacklist`, `schedule`, `reschedule`.
    pub action: String,
    pub at: DateTime<Utc>,
}

/// A break an agent took (or is taking).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakRow {
    pub agent: String,
    pub break_id: String,
    pub name: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the break goes on.
    pub ended_at: Option<DateTime<Utc>>,
    /// Whole seconds, when it ended.
    pub duration_s: Option<i64>,
}

/// Calls an agent took in one campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CampaignCalls {
    pub campaign: String,
    /// Calls linked to the agent.
    pub calls: u64,
    /// Seconds talked on those that ended connected or short.
    pub talk_s: u64,
}

/// ECCP `getagentactivitysummary` for one agent over a time range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentActivity {
    pub agent: String,
    /// Start of the latest session that began in the range (the agent's login).
    pub session_start: Option<DateTime<Utc>>,
    /// Its end, if it ended.
    pub session_end: Option<DateTime<Utc>>,
    /// Sessions that began in the range.
    pub sessions: u64,
    /// Breaks that began in the range, oldest first.
    pub breaks: Vec<BreakRow>,
    /// Seconds of the breaks that ended.
    pub break_s: i64,
    /// Calls and talk seconds per campaign, by campaign name.
    pub campaigns: Vec<CampaignCalls>,
}

fn check_text(what: &str, value: &str, max: usize) -> std::result::Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("{what} cannot be empty"));
    }
    if value.chars().count() > max {
        return Err(format!("{what} {value:?} is longer than {max} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} {value:?} contains a control character"));
    }
    Ok(())
}

fn check_catalogue<'a>(
    campaign: &str,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
    what: &str,
) -> Result<()> {
    let bad = |problem: String| StoreError::InvalidCatalogue {
        campaign: campaign.to_owned(),
        problem,
    };
    let mut seen: Vec<&str> = Vec::new();
    for (key, label) in entries {
        check_text(what, key, MAX_LABEL).map_err(bad)?;
        check_text(&format!("the label of {what} {key:?}"), label, MAX_LABEL).map_err(bad)?;
        if seen.contains(&key) {
            return Err(bad(format!("{what} {key:?} is listed twice")));
        }
        seen.push(key);
    }
    Ok(())
}

/// The action's name as stored.
pub fn action_name(d: &Disposition) -> &'static str {
    match d {
        Disposition::Done => "done",
        Disposition::Respool(_) => "respool",
        Disposition::RespoolAlternative => "respool_alternative",
        Disposition::Blacklist { .. } => "blacklist",
        Disposition::Schedule { .. } => "schedule",
        Disposition::Reschedule { .. } => "reschedule",
    }
}

fn result_code_in(conn: &Connection, cid: i64, campaign: &str, code: &str) -> Result<ResultCode> {
    let row = conn
        .prepare_cached(
            "SELECT label, l1, l2, l3, active FROM result_code WHERE campaign_id = ?1 AND code = ?2",
        )?
        .query_row(params![cid, code], |r| {
            Ok(ResultCode {
                code: code.to_owned(),
                label: r.get(0)?,
                l1: r.get(1)?,
                l2: r.get(2)?,
                l3: r.get(3)?,
                active: r.get::<_, i64>(4)? != 0,
            })
        })
        .optional()?;
    match row {
        None => Err(StoreError::UnknownResultCode {
            campaign: campaign.to_owned(),
            code: code.to_owned(),
        }),
        Some(rc) if !rc.active => Err(StoreError::InactiveResultCode {
            campaign: campaign.to_owned(),
            code: code.to_owned(),
        }),
        Some(rc) => Ok(rc),
    }
}

/// Checks a conclusion against the campaign: its code in the catalogue and active, its
/// comment and tags within bounds.
fn check_conclusion(conn: &Connection, cid: i64, campaign: &str, c: &Conclusion) -> Result<()> {
    let bad = |problem: String| StoreError::InvalidConclusion { problem };
    if let Some(code) = &c.result_code {
        result_code_in(conn, cid, campaign, code)?;
    }
    if let Some(comment) = &c.comment {
        if comment.chars().count() > MAX_COMMENT {
            return Err(bad(format!(
                "the comment is longer than {MAX_COMMENT} characters"
            )));
        }
        if comment.contains('\0') {
            return Err(bad("the comment contains a NUL character".into()));
        }
    }
    if c.tags.len() > MAX_TAGS {
        return Err(bad(format!("more than {MAX_TAGS} tags")));
    }
    for t in &c.tags {
        check_text("a tag", t, MAX_LABEL).map_err(bad)?;
    }
    if let Some(a) = &c.agent {
        check_text("the agent", a.as_str(), MAX_LABEL).map_err(bad)?;
    }
    Ok(())
}

fn map_break(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(String, String, String, i64, Option<i64>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn break_row(raw: (String, String, String, i64, Option<i64>)) -> Result<BreakRow> {
    let (agent, break_id, name, started, ended) = raw;
    Ok(BreakRow {
        agent,
        break_id,
        name,
        started_at: from_ms(started)?,
        ended_at: ended.map(from_ms).transpose()?,
        duration_s: ended.map(|e| (e - started) / 1000),
    })
}

impl SpoolStore {
    /// Sets a campaign's result-code catalogue: the codes given are added or updated, codes
    /// it had that are not given become inactive (kept for the conclusions that used them).
    /// Refused whole (nothing changes) if a code or label is empty, too long, has a control
    /// character, or a code is listed twice.
    pub fn set_result_codes(&mut self, campaign: &str, codes: &[ResultCode]) -> Result<()> {
        check_catalogue(
            campaign,
            codes.iter().map(|c| (c.code.as_str(), c.label.as_str())),
            "result code",
        )?;
        for c in codes {
            for level in [&c.l1, &c.l2, &c.l3].into_iter().flatten() {
                check_text(&format!("a level of code {:?}", c.code), level, MAX_LABEL).map_err(
                    |problem| StoreError::InvalidCatalogue {
                        campaign: campaign.to_owned(),
                        problem,
                    },
                )?;
            }
        }
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, campaign)?;
        tx.prepare_cached("UPDATE result_code SET active = 0 WHERE campaign_id = ?1")?
            .execute([cid])?;
        for c in codes {
            tx.prepare_cached(
                "INSERT INTO result_code (campaign_id, code, label, l1, l2, l3, active)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(campaign_id, code) DO UPDATE SET label = excluded.label,
                     l1 = excluded.l1, l2 = excluded.l2, l3 = excluded.l3,
                     active = excluded.active",
            )?
            .execute(params![
                cid,
                c.code,
                c.label,
                c.l1,
                c.l2,
                c.l3,
                i64::from(c.active)
            ])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A campaign's result codes, active and inactive, by code.
    pub fn result_codes(&self, campaign: &str) -> Result<Vec<ResultCode>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut st = self.conn.prepare_cached(
            "SELECT code, label, l1, l2, l3, active FROM result_code WHERE campaign_id = ?1
             ORDER BY code",
        )?;
        let rows = st
            .query_map([cid], |r| {
                Ok(ResultCode {
                    code: r.get(0)?,
                    label: r.get(1)?,
                    l1: r.get(2)?,
                    l2: r.get(3)?,
                    l3: r.get(4)?,
                    active: r.get::<_, i64>(5)? != 0,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Checks a conclusion for a record without recording anything: the record exists, its
    /// campaign's catalogue has the code and it is active, comment and tags are in bounds.
    pub fn check_conclusion(&self, record: &RecordId, c: &Conclusion) -> Result<()> {
        let rec = load_record(&self.conn, record)?;
        let cid = records::campaign_id(&self.conn, &rec.campaign.0)?;
        check_conclusion(&self.conn, cid, &rec.campaign.0, c)
    }

    /// Records what the agent concluded about a record with the dialer action it took, tied
    /// to the record's latest attempt. Checked as [`SpoolStore::check_conclusion`] first.
    pub fn record_conclusion(
        &mut self,
        record: &RecordId,
        c: &Conclusion,
        action: &Disposition,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let rec = load_record(&tx, record)?;
        let cid = records::campaign_id(&tx, &rec.campaign.0)?;
        check_conclusion(&tx, cid, &rec.campaign.0, c)?;
        let rid = id_to_sql("record id", record.0)?;
        let call: Option<i64> = tx
            .prepare_cached("SELECT MAX(call_id) FROM attempt WHERE record_id = ?1")?
            .query_row([rid], |r| r.get(0))?;
        let tags = if c.tags.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&c.tags).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        };
        tx.prepare_cached(
            "INSERT INTO disposition (campaign_id, record_id, call_id, agent, result_code, comment,
                 tags, action, at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            cid,
            rid,
            call,
            c.agent.as_ref().map(|a| a.as_str()),
            c.result_code,
            c.comment,
            tags,
            action_name(action),
            ms(now)
        ])?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        id_from_sql(id)
    }

    /// A record's conclusions, oldest first, each with its code as the catalogue has it.
    pub fn conclusions(&self, record: &RecordId) -> Result<Vec<DispositionRow>> {
        let rid = id_to_sql("record id", record.0)?;
        type Raw = (
            i64,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            String,
            i64,
            i64,
        );
        let rows: Vec<Raw> = self
            .conn
            .prepare_cached(
                "SELECT id, call_id, agent, result_code, comment, tags, action, at_ms, campaign_id
                 FROM disposition WHERE record_id = ?1 ORDER BY id",
            )?
            .query_map([rid], |r| {
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
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|(id, call, agent, code, comment, tags, action, at, cid)| {
                let result = match &code {
                    Some(code) => self
                        .conn
                        .prepare_cached(
                            "SELECT label, l1, l2, l3, active FROM result_code
                             WHERE campaign_id = ?1 AND code = ?2",
                        )?
                        .query_row(params![cid, code], |r| {
                            Ok(ResultCode {
                                code: code.clone(),
                                label: r.get(0)?,
                                l1: r.get(1)?,
                                l2: r.get(2)?,
                                l3: r.get(3)?,
                                active: r.get::<_, i64>(4)? != 0,
                            })
                        })
                        .optional()?,
                    None => None,
                };
                Ok(DispositionRow {
                    id: id_from_sql(id)?,
                    record: record.clone(),
                    call: call.map(id_from_sql).transpose()?.map(CallId),
                    agent,
                    result_code: code,
                    result,
                    comment,
                    tags: match tags {
                        Some(t) => serde_json::from_str(&t)
                            .map_err(|e| StoreError::Corrupt(format!("disposition tags: {e}")))?,
                        None => Vec::new(),
                    },
                    action,
                    at: from_ms(at)?,
                })
            })
            .collect()
    }

    /// Changes a record's data (VICIdial `update_fields`): each field given replaces the value
    /// of that name, or is added after the others; the rest of the record (numbers, retries,
    /// state, schedule) is untouched. Names follow Asterisk's variable grammar; values may
    /// not hold CR, LF or NUL. Refused while a call on the record is in flight: that call
    /// already carries the old values, and the end of the call writes the record back.
    pub fn update_fields(
        &mut self,
        record: &RecordId,
        fields: &[(String, String)],
    ) -> Result<SpoolRecord> {
        if fields.is_empty() {
            return Err(StoreError::InvalidField {
                field: String::new(),
                problem: "no field to update".into(),
            });
        }
        for (name, value) in fields {
            VariableName::parse(name).map_err(|e| StoreError::InvalidField {
                field: name.clone(),
                problem: e.to_string(),
            })?;
            if value.contains(['\r', '\n', '\0']) {
                return Err(StoreError::InvalidField {
                    field: name.clone(),
                    problem: format!("the value of {name:?} contains CR, LF or NUL"),
                });
            }
        }
        let tx = self.conn.transaction()?;
        let mut rec = load_record(&tx, record)?;
        if matches!(rec.status, RecordStatus::InFlight { .. }) {
            return Err(StoreError::RecordInFlight(record.clone()));
        }
        for (name, value) in fields {
            match rec.data.iter_mut().find(|(k, _)| k == name) {
                Some(slot) => slot.1 = value.clone(),
                None => rec.data.push((name.clone(), value.clone())),
            }
        }
        update_record(&tx, &rec)?;
        tx.commit()?;
        Ok(rec)
    }

    /// Sets a campaign's break catalogue, as [`SpoolStore::set_result_codes`] does codes.
    pub fn set_breaks(&mut self, campaign: &str, breaks: &[BreakType]) -> Result<()> {
        check_catalogue(
            campaign,
            breaks.iter().map(|b| (b.id.as_str(), b.name.as_str())),
            "break",
        )?;
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, campaign)?;
        tx.prepare_cached("UPDATE break_type SET active = 0 WHERE campaign_id = ?1")?
            .execute([cid])?;
        for b in breaks {
            tx.prepare_cached(
                "INSERT INTO break_type (campaign_id, break_id, name, active) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(campaign_id, break_id) DO UPDATE SET name = excluded.name,
                     active = excluded.active",
            )?
            .execute(params![cid, b.id, b.name, i64::from(b.active)])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A campaign's breaks, active and inactive, by id.
    pub fn breaks(&self, campaign: &str) -> Result<Vec<BreakType>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut st = self.conn.prepare_cached(
            "SELECT break_id, name, active FROM break_type WHERE campaign_id = ?1 ORDER BY break_id",
        )?;
        let rows = st
            .query_map([cid], |r| {
                Ok(BreakType {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    active: r.get::<_, i64>(2)? != 0,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Whether any of these campaigns has a break catalogue (then pauses must name one).
    pub fn has_break_catalogue(&self, campaigns: &[CampaignId]) -> Result<bool> {
        for c in campaigns {
            let Ok(cid) = records::campaign_id(&self.conn, &c.0) else {
                continue;
            };
            let n: i64 = self
                .conn
                .prepare_cached("SELECT COUNT(*) FROM break_type WHERE campaign_id = ?1")?
                .query_row([cid], |r| r.get(0))?;
            if n > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The break `id` in the catalogue of one of `campaigns` (an agent's): unknown in all of
    /// them, or inactive in every one that has it, is refused.
    pub fn find_break(&self, campaigns: &[CampaignId], id: &str) -> Result<BreakType> {
        let mut inactive = false;
        for c in campaigns {
            let Ok(cid) = records::campaign_id(&self.conn, &c.0) else {
                continue;
            };
            let row: Option<(String, i64)> = self
                .conn
                .prepare_cached(
                    "SELECT name, active FROM break_type WHERE campaign_id = ?1 AND break_id = ?2",
                )?
                .query_row(params![cid, id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match row {
                Some((name, 1)) => {
                    return Ok(BreakType {
                        id: id.to_owned(),
                        name,
                        active: true,
                    })
                }
                Some(_) => inactive = true,
                None => {}
            }
        }
        let campaigns = campaigns
            .iter()
            .map(|c| c.0.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Err(if inactive {
            StoreError::InactiveBreak {
                break_id: id.to_owned(),
                campaigns,
            }
        } else {
            StoreError::UnknownBreak {
                break_id: id.to_owned(),
                campaigns,
            }
        })
    }

    /// Starts a break for an agent. Refused if the agent is already in a break.
    pub fn start_break(
        &mut self,
        agent: &str,
        break_id: &str,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<BreakRow> {
        let tx = self.conn.transaction()?;
        if let Some(open) = open_break_in(&tx, agent)? {
            return Err(StoreError::AlreadyInBreak {
                agent: agent.to_owned(),
                current: open.break_id,
                asked: break_id.to_owned(),
            });
        }
        tx.prepare_cached(
            "INSERT INTO agent_break (agent, break_id, name, started_ms) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![agent, break_id, name, ms(at)])?;
        tx.commit()?;
        Ok(BreakRow {
            agent: agent.to_owned(),
            break_id: break_id.to_owned(),
            name: name.to_owned(),
            started_at: at,
            ended_at: None,
            duration_s: None,
        })
    }

    /// Ends the agent's open break at `at` (never before it started); `None` if there was none.
    pub fn end_break(&mut self, agent: &str, at: DateTime<Utc>) -> Result<Option<BreakRow>> {
        let tx = self.conn.transaction()?;
        let Some(open) = open_break_in(&tx, agent)? else {
            return Ok(None);
        };
        let end = at.max(open.started_at);
        tx.prepare_cached(
            "UPDATE agent_break SET ended_ms = ?2 WHERE agent = ?1 AND ended_ms IS NULL",
        )?
        .execute(params![agent, ms(end)])?;
        tx.commit()?;
        Ok(Some(BreakRow {
            ended_at: Some(end),
            duration_s: Some((ms(end) - ms(open.started_at)) / 1000),
            ..open
        }))
    }

    /// The agent's break in progress.
    pub fn open_break(&self, agent: &str) -> Result<Option<BreakRow>> {
        open_break_in(&self.conn, agent)
    }

    /// Every break in progress (to carry them across a restart).
    pub fn open_breaks(&self) -> Result<Vec<BreakRow>> {
        let rows: Vec<_> = self
            .conn
            .prepare_cached(
                "SELECT agent, break_id, name, started_ms, ended_ms FROM agent_break
                 WHERE ended_ms IS NULL ORDER BY agent",
            )?
            .query_map([], map_break)?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter().map(break_row).collect()
    }

    /// Opens a session for the agent (its login) unless one is open.
    pub fn start_session(&mut self, agent: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "INSERT INTO agent_session (agent, started_ms)
                 SELECT ?1, ?2 WHERE NOT EXISTS
                     (SELECT 1 FROM agent_session WHERE agent = ?1 AND ended_ms IS NULL)",
            )?
            .execute(params![agent, ms(at)])?;
        Ok(n == 1)
    }

    /// Closes the agent's open session (its logout); false if none was open.
    pub fn end_session(&mut self, agent: &str, at: DateTime<Utc>) -> Result<bool> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE agent_session SET ended_ms = MAX(?2, started_ms)
                 WHERE agent = ?1 AND ended_ms IS NULL",
            )?
            .execute(params![agent, ms(at)])?;
        Ok(n == 1)
    }

    /// Agents with a session open (to carry them across a restart).
    pub fn open_sessions(&self) -> Result<Vec<String>> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT agent FROM agent_session WHERE ended_ms IS NULL ORDER BY agent",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// ECCP `getagentactivitysummary`: the agent's sessions, breaks, and calls with talk
    /// seconds per campaign, for what began in `[from, to]`. A call counts for the agent it
    /// was linked to (the campaign log's success entry); its talk seconds come from the
    /// attempt ledger.
    pub fn agent_activity(
        &self,
        agent: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<AgentActivity> {
        let (lo, hi) = (ms(from), ms(to));
        let (sessions, last): (i64, Option<(i64, Option<i64>)>) = {
            let n: i64 = self
                .conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM agent_session
                     WHERE agent = ?1 AND started_ms BETWEEN ?2 AND ?3",
                )?
                .query_row(params![agent, lo, hi], |r| r.get(0))?;
            let last = self
                .conn
                .prepare_cached(
                    "SELECT started_ms, ended_ms FROM agent_session
                     WHERE agent = ?1 AND started_ms BETWEEN ?2 AND ?3
                     ORDER BY started_ms DESC, id DESC LIMIT 1",
                )?
                .query_row(params![agent, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            (n, last)
        };
        let raw: Vec<_> = self
            .conn
            .prepare_cached(
                "SELECT agent, break_id, name, started_ms, ended_ms FROM agent_break
                 WHERE agent = ?1 AND started_ms BETWEEN ?2 AND ?3 ORDER BY started_ms, id",
            )?
            .query_map(params![agent, lo, hi], map_break)?
            .collect::<rusqlite::Result<_>>()?;
        let breaks = raw.into_iter().map(break_row).collect::<Result<Vec<_>>>()?;
        let break_s = breaks.iter().filter_map(|b| b.duration_s).sum();
        let campaigns = self
            .conn
            .prepare_cached(
                "SELECT c.name, COUNT(*), COALESCE(SUM(a.talk_s), 0)
                 FROM attempt a JOIN campaign c ON c.id = a.campaign_id
                 WHERE a.started_ms BETWEEN ?2 AND ?3 AND a.call_id IN (
                     SELECT call_id FROM campaign_log
                     WHERE status = 'success' AND agent = ?1 AND call_id IS NOT NULL)
                 GROUP BY c.name ORDER BY c.name",
            )?
            .query_map(params![agent, lo, hi], |r| {
                Ok(CampaignCalls {
                    campaign: r.get(0)?,
                    calls: r.get::<_, i64>(1)? as u64,
                    talk_s: r.get::<_, i64>(2)?.max(0) as u64,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(AgentActivity {
            agent: agent.to_owned(),
            session_start: last.map(|l| from_ms(l.0)).transpose()?,
            session_end: last.and_then(|l| l.1).map(from_ms).transpose()?,
            sessions: sessions as u64,
            breaks,
            break_s,
            campaigns,
        })
    }
}

fn open_break_in(conn: &Connection, agent: &str) -> Result<Option<BreakRow>> {
    let raw = conn
        .prepare_cached(
            "SELECT agent, break_id, name, started_ms, ended_ms FROM agent_break
             WHERE agent = ?1 AND ended_ms IS NULL",
        )?
        .query_row([agent], map_break)
        .optional()?;
    raw.map(break_row).transpose()
}

/// VICIdial `external_add_lead`'s do-not-call checks, asked per added lead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DncChecks {
    /// Refuse a number on the list of every campaign (`*`).
    #[serde(default)]
    pub dnc_check: bool,
    /// Refuse a number on the campaign's own list.
    #[serde(default)]
    pub campaign_dnc_check: bool,
}

impl SpoolStore {
    /// Refuses any of `numbers` (E.164) that an outbound entry in force at `now` blocks, on
    /// the list of every campaign ([`StoreError::OnGlobalDnc`]) and/or the campaign's own
    /// ([`StoreError::OnCampaignDnc`]), as `checks` asks.
    pub fn check_dnc<'a>(
        &self,
        campaign: &str,
        numbers: impl IntoIterator<Item = &'a str>,
        checks: DncChecks,
        now: DateTime<Utc>,
    ) -> Result<()> {
        records::campaign_id(&self.conn, campaign)?;
        let mut st = self.conn.prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM blacklist WHERE e164 = ?1 AND scope = ?2
                 AND direction IN ('O', 'B') AND (expires_ms IS NULL OR expires_ms > ?3))",
        )?;
        for n in numbers {
            if checks.dnc_check
                && st.query_row(params![n, "*", ms(now)], |r| r.get::<_, bool>(0))?
            {
                return Err(StoreError::OnGlobalDnc {
                    number: n.to_owned(),
                });
            }
            if checks.campaign_dnc_check
                && st.query_row(params![n, campaign, ms(now)], |r| r.get::<_, bool>(0))?
            {
                return Err(StoreError::OnCampaignDnc {
                    number: n.to_owned(),
                    campaign: campaign.to_owned(),
                });
            }
        }
        Ok(())
    }
}
