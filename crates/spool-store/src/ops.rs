//! Operations the seed APIs describe: respool, schedule call, dialer task, remove contact,
//! remove schedules, blacklist maintenance, dispositions.

use crate::codes::{self, from_ms, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::records::{self, insert_record, load_record, update_record, Origin, Provenance};
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::rules::{disposition, schedule};
use dialer_core::{
    AgentId, Blacklist, BlacklistEntry, BlacklistScope, CallOptions, CampaignId, Disposition,
    FinishReason, NumberState, PhoneNumber, RecordId, RecordStatus, Schedule, ScheduleContext,
    ScheduleError, ScheduleId, ScheduleWhen, SpoolRecord, TaskId, TaskKind, TaskTiming,
    SCHEDULE_PRIORITY,
};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// A record to put into the spool (uContact Respool / ScheduleDialerCall / DialerTask body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub campaign: CampaignId,
    /// Main number first, then the alternatives.
    pub numbers: Vec<PhoneNumber>,
    pub data: Vec<(String, String)>,
    /// `None` = 2, the first priority open to normal records.
    pub priority: Option<u32>,
    pub owner_agent: Option<AgentId>,
    pub contact_id: Option<String>,
    /// Callee's IANA zone; `None` = the campaign's.
    pub time_zone: Option<String>,
    /// The id the caller knows the record by (UCCX `addrecord`'s id): unique in the campaign
    /// among all its records, at most [`MAX_EXTERNAL_ID`] bytes, no control characters.
    pub external_id: Option<String>,
    /// When the contact entered the queue (UCCX `queuestarttime`), if earlier than now: a
    /// callback re-entered with its original queue start keeps its place, because records
    /// of the same class, priority and attempts are dialed oldest queue start first. It is
    /// the record's `created_at`.
    pub queue_start: Option<DateTime<Utc>>,
}

/// A manual dial for an agent, queued with [`SpoolStore::manual_dial`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManualDial {
    /// The campaign it is dialed for (uContact `outqueue`).
    pub campaign: CampaignId,
    /// The agent it is for: the call is held for this agent and goes to no one else.
    pub agent: AgentId,
    /// What to dial.
    pub target: ManualTarget,
    /// Caller id, dial prefix, which leg rings first, preview.
    pub call: CallOptions,
}

/// What a manual dial calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManualTarget {
    /// A number with its record's fields (`new.campaign` must be the dial's campaign): the
    /// campaign's live record holding `numbers[0]`, else a new record.
    Number(NewRecord),
    /// An existing record (VICIdial `lead_id`); `number` picks one of its numbers
    /// (`alt_dial`), else the one it would dial next.
    Record {
        /// The record.
        record: RecordId,
        /// One of its numbers, to dial instead of its current one.
        number: Option<PhoneNumber>,
    },
}

/// What a task asks for, before the store gives it an id.
struct TaskRequest {
    timing: TaskTiming,
    kind: TaskKind,
    agent: Option<AgentId>,
    call: CallOptions,
}

/// Where a task goes.
enum TaskTarget<'a> {
    Number(&'a NewRecord),
    Record {
        record: &'a RecordId,
        number: Option<&'a PhoneNumber>,
    },
}

/// A callback to book with [`SpoolStore::schedule_call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// When it is due: an exact moment, or a date range and daily hours in the callee's zone.
    pub when: ScheduleWhen,
    /// Only this agent may take it (ECCP `sameagent`); `None`: anyone.
    pub agent: Option<AgentId>,
    /// Dial this number instead of the record's (ECCP `newphone`).
    pub new_phone: Option<PhoneNumber>,
    /// A new name for the contact (ECCP `newcontactname`): it overwrites the record's first
    /// data field.
    pub contact_name: Option<String>,
    /// Move a callback the record already has to this one (otherwise a second callback at
    /// another time is refused).
    pub reschedule: bool,
}

impl Callback {
    /// A callback for anyone at `when`, on the record's own number.
    pub fn at(when: ScheduleWhen) -> Callback {
        Callback {
            when,
            agent: None,
            new_phone: None,
            contact_name: None,
            reschedule: false,
        }
    }
}

/// Longest external id accepted, in bytes.
pub const MAX_EXTERNAL_ID: usize = 128;

impl NewRecord {
    /// A record with just numbers (main first).
    pub fn new(campaign: impl Into<String>, numbers: Vec<PhoneNumber>) -> NewRecord {
        NewRecord {
            campaign: CampaignId::from(Into::<String>::into(campaign)),
            numbers,
            data: Vec::new(),
            priority: None,
            owner_agent: None,
            contact_id: None,
            time_zone: None,
            external_id: None,
            queue_start: None,
        }
    }

    fn to_record(&self, now: DateTime<Utc>) -> Result<SpoolRecord> {
        let (main, alts) = self
            .numbers
            .split_first()
            .ok_or_else(|| StoreError::InvalidRecord {
                record: RecordId(0),
                problem: "a record needs at least one number".into(),
            })?;
        if let Some(id) = &self.external_id {
            if id.is_empty() || id.len() > MAX_EXTERNAL_ID || id.chars().any(char::is_control) {
                return Err(StoreError::InvalidRecord {
                    record: RecordId(0),
                    problem: format!(
                        "external id {id:?} must be 1 to {MAX_EXTERNAL_ID} bytes without control characters"
                    ),
                });
            }
        }
        let created = match self.queue_start {
            Some(t) if t > now => {
                return Err(StoreError::InvalidRecord {
                    record: RecordId(0),
                    problem: format!("queue start time {t} is in the future"),
                })
            }
            Some(t) => t,
            None => now,
        };
        let mut rec = SpoolRecord::new(
            RecordId(0),
            self.campaign.clone(),
            main.clone(),
            alts.to_vec(),
            created,
        );
        rec.data = self.data.clone();
        if let Some(p) = self.priority {
            if p <= SCHEDULE_PRIORITY {
                return Err(StoreError::ReservedPriority(p));
            }
            rec.priority = p;
        }
        rec.owner_agent = self.owner_agent.clone();
        rec.contact_id = self.contact_id.clone();
        rec.time_zone = self.time_zone.clone();
        Ok(rec)
    }
}

/// Refuses numbers repeated in the list or already live in the campaign's spool (other than
/// on `except`).
fn check_numbers_free(
    conn: &Connection,
    campaign_id: i64,
    campaign: &str,
    numbers: impl IntoIterator<Item = impl AsRef<str>>,
    except: Option<&RecordId>,
) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    for n in numbers {
        let n = n.as_ref();
        if seen.iter().any(|s| s == n) {
            return Err(StoreError::DuplicateDestination {
                campaign: campaign.to_owned(),
                number: n.to_owned(),
                record: except.cloned().unwrap_or(RecordId(0)),
            });
        }
        seen.push(n.to_owned());
        for o in records::live_records_with_number(conn, campaign_id, n)? {
            if Some(&o) != except {
                return Err(StoreError::DuplicateDestination {
                    campaign: campaign.to_owned(),
                    number: n.to_owned(),
                    record: o,
                });
            }
        }
    }
    Ok(())
}

impl SpoolStore {
    /// Puts a new record into the spool (uContact Respool). Never spools a destination that
    /// is already live in the campaign: any of its numbers on a pending or in-flight record
    /// is refused with [`StoreError::DuplicateDestination`].
    pub fn respool(&mut self, new: &NewRecord, now: DateTime<Utc>) -> Result<RecordId> {
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, &new.campaign.0)?;
        let rec = new.to_record(now)?;
        check_numbers_free(
            &tx,
            cid,
            &new.campaign.0,
            new.numbers.iter().map(|n| n.e164()),
            None,
        )?;
        let id = insert_record(
            &tx,
            cid,
            &rec,
            None,
            Provenance {
                origin: Origin::Respool,
                source_line: None,
            },
        )?;
        set_external_id(&tx, cid, &id, new)?;
        tx.commit()?;
        Ok(id)
    }

    /// Schedules a callback to `new.numbers[0]` (uContact ScheduleDialerCall with an exact
    /// `At`, ECCP schedulecall with a `Range`). If a live record of the campaign already has
    /// that number, the callback is put on it; otherwise a record is created from `new`.
    ///
    /// The callback passes the core's one set of schedule rules
    /// ([`dialer_core::rules::schedule::validate`], the same the engine applies to an agent's
    /// disposition): not in the past, a range that is not inverted, not empty and does not
    /// start before the callee's today, inside the campaign's dates; the same callback twice
    /// is refused ([`StoreError::DuplicateSchedule`], ECCP 417), and a record that already has
    /// a callback at another time keeps it unless `callback.reschedule` asks to move it. A
    /// new contact name overwrites the record's first data field. Refused: nothing changes.
    pub fn schedule_call(
        &mut self,
        new: &NewRecord,
        callback: &Callback,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, ScheduleId)> {
        let tx = self.conn.transaction()?;
        let (cid, camp) = records::campaign_row(&tx, &new.campaign.0)?;
        let main = new
            .numbers
            .first()
            .ok_or_else(|| StoreError::InvalidField {
                field: "numbers".into(),
                problem: "a callback needs a number to call".into(),
            })?;
        if let Some(name) = &callback.contact_name {
            schedule::check_contact_name(name).map_err(StoreError::InvalidSchedule)?;
        }
        let sid = records::next_schedule_id(&tx)?;
        let sched = Schedule {
            id: sid.clone(),
            when: callback.when.clone(),
            agent: callback.agent.clone(),
            number: callback.new_phone.clone(),
        };
        let check = |zone: Option<&str>, existing: Option<&Schedule>, rid: Option<&RecordId>| {
            let ctx = ScheduleContext {
                campaign: &camp,
                callee_zone: zone,
                existing,
                reschedule: callback.reschedule,
            };
            schedule::validate(&sched, &ctx, now).map_err(|e| match (e, rid) {
                (ScheduleError::Duplicate, Some(rid)) => StoreError::DuplicateSchedule {
                    number: main.e164().to_owned(),
                    record: rid.clone(),
                },
                (e, _) => StoreError::InvalidSchedule(e),
            })
        };
        let rid = match records::live_record_with_number(&tx, cid, main.e164())? {
            Some(rid) => {
                let mut rec = load_record(&tx, &rid)?;
                if matches!(rec.status, RecordStatus::InFlight { .. }) {
                    return Err(StoreError::RecordInFlight(rid));
                }
                check(rec.time_zone.as_deref(), rec.schedule.as_ref(), Some(&rid))?;
                if let Some(name) = &callback.contact_name {
                    schedule::rename_contact(&mut rec, name);
                }
                rec.schedule = Some(sched.clone());
                update_record(&tx, &rec)?;
                rid
            }
            None => {
                check(new.time_zone.as_deref(), None, None)?;
                insert_new(&tx, cid, new, now, Origin::Schedule, |rec| {
                    if let Some(name) = &callback.contact_name {
                        schedule::rename_contact(rec, name);
                    }
                    rec.schedule = Some(sched.clone())
                })?
            }
        };
        tx.commit()?;
        Ok((rid, sid))
    }

    /// Adds a dialer task (uContact DialerTask): `timing` At = `calldate` set, WhenFree =
    /// `calldate` null; `kind` from the `automatic` / `bulk` flags. Attached to the live record
    /// holding `new.numbers[0]` (replacing its task), or to a new record. A manual task is
    /// for `new.owner_agent` (uContact `agentphone`), on an existing record too.
    pub fn add_task(
        &mut self,
        new: &NewRecord,
        timing: TaskTiming,
        kind: TaskKind,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, TaskId)> {
        let agent = if kind == TaskKind::Manual {
            new.owner_agent.clone()
        } else {
            None
        };
        let request = TaskRequest {
            timing,
            kind,
            agent,
            call: CallOptions::default(),
        };
        self.place_task(&new.campaign, TaskTarget::Number(new), request, now)
    }

    /// Queues a manual dial for an agent (VICIdial `external_dial`, uContact `AgentCall`):
    /// by number (the campaign's live record holding it, else a new record: the `search`
    /// of `external_dial` is always on, since a campaign holds one live record per number)
    /// or by record id (`lead_id`), on one of the record's numbers (`alt_dial`). Dialed at
    /// once when the agent is free, within every compliance rule, with the call's own
    /// options; refused, changing nothing, when the options are invalid, the record is in
    /// flight, inactive or finished, the number is not the record's or no longer dialable,
    /// or the same number is already queued for the agent.
    pub fn manual_dial(
        &mut self,
        dial: &ManualDial,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, TaskId)> {
        dial.call
            .validate(TaskKind::Manual, Some(&dial.agent))
            .map_err(StoreError::InvalidCallOptions)?;
        let request = TaskRequest {
            timing: TaskTiming::WhenFree,
            kind: TaskKind::Manual,
            agent: Some(dial.agent.clone()),
            call: dial.call.clone(),
        };
        let target = match &dial.target {
            ManualTarget::Number(new) => TaskTarget::Number(new),
            ManualTarget::Record { record, number } => TaskTarget::Record {
                record,
                number: number.as_ref(),
            },
        };
        self.place_task(&dial.campaign, target, request, now)
    }

    /// One path for every task: finds or makes the record, checks it may take the task,
    /// and attaches it (replacing the task it had), in one transaction.
    fn place_task(
        &mut self,
        campaign: &CampaignId,
        target: TaskTarget<'_>,
        request: TaskRequest,
        now: DateTime<Utc>,
    ) -> Result<(RecordId, TaskId)> {
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, &campaign.0)?;
        let tid = records::next_task_id(&tx)?;
        let TaskRequest {
            timing,
            kind,
            agent,
            call,
        } = request;
        let task = dialer_core::DialerTask {
            id: tid.clone(),
            timing,
            kind,
            agent,
            call,
        };
        let (mut rec, number) = match target {
            TaskTarget::Number(new) => {
                let main = new
                    .numbers
                    .first()
                    .ok_or_else(|| StoreError::InvalidRecord {
                        record: RecordId(0),
                        problem: "a dialer task needs a number".into(),
                    })?;
                match records::live_record_with_number(&tx, cid, main.e164())? {
                    Some(rid) => (load_record(&tx, &rid)?, None),
                    None => {
                        let rid = insert_new(&tx, cid, new, now, Origin::Task, |rec| {
                            rec.task = Some(task)
                        })?;
                        tx.commit()?;
                        return Ok((rid, tid));
                    }
                }
            }
            TaskTarget::Record { record, number } => {
                let rec = load_record(&tx, record)?;
                if rec.campaign != *campaign {
                    return Err(StoreError::RecordState {
                        record: record.clone(),
                        problem: format!("it belongs to campaign {}, not {campaign}", rec.campaign),
                    });
                }
                (rec, number)
            }
        };
        let rid = rec.id.clone();
        match rec.status {
            RecordStatus::InFlight { .. } => return Err(StoreError::RecordInFlight(rid)),
            RecordStatus::Inactive { .. } => {
                return Err(StoreError::RecordState {
                    record: rid,
                    problem: "it is inactive; reactivate it before dialing it".into(),
                })
            }
            RecordStatus::Finished { reason } => {
                return Err(StoreError::RecordFinished {
                    record: rid,
                    reason,
                })
            }
            RecordStatus::Pending => {}
        }
        if let Some(n) = number {
            let slot = rec
                .numbers
                .iter()
                .position(|s| s.number == *n)
                .ok_or_else(|| StoreError::RecordState {
                    record: rid.clone(),
                    problem: format!("{} is not one of its numbers", n.e164()),
                })?;
            if rec.numbers[slot].state != NumberState::Active {
                return Err(StoreError::RecordState {
                    record: rid,
                    problem: format!("its number {} may no longer be dialed", n.e164()),
                });
            }
            rec.current = slot;
        }
        // VICIdial external_dial: a number already queued for the agent's manual dial is
        // refused, not queued twice.
        if task.kind == TaskKind::Manual {
            if let Some(queued) = rec.task.as_ref().filter(|t| t.kind == TaskKind::Manual) {
                let queued_for = queued.agent.as_ref().or(rec.owner_agent.as_ref());
                if queued_for == task.agent.as_ref() {
                    return Err(StoreError::ManualDialQueued {
                        number: rec
                            .number_to_dial()
                            .map_or_else(String::new, |n| n.e164().to_owned()),
                        agent: task
                            .agent
                            .as_ref()
                            .map_or_else(String::new, |a| a.to_string()),
                        record: rid,
                    });
                }
            }
        }
        rec.task = Some(task);
        update_record(&tx, &rec)?;
        tx.commit()?;
        Ok((rid, tid))
    }

    /// Takes every live record of the campaign holding `e164` out of the spool (uContact
    /// RemoveContact): finished as `removed`, schedule and task dropped. Refused while a call
    /// is in flight on one of them (nothing changes then).
    pub fn remove_contact(&mut self, campaign: &str, e164: &str) -> Result<Vec<RecordId>> {
        let tx = self.conn.transaction()?;
        let cid = records::campaign_id(&tx, campaign)?;
        let ids = records::live_records_with_number(&tx, cid, e164)?;
        let mut recs = Vec::new();
        for id in &ids {
            let rec = load_record(&tx, id)?;
            if matches!(rec.status, RecordStatus::InFlight { .. }) {
                return Err(StoreError::RecordInFlight(id.clone()));
            }
            recs.push(rec);
        }
        for mut rec in recs {
            finish_removed(&mut rec);
            update_record(&tx, &rec)?;
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Drops the schedules of `e164` in the campaign whose time falls in `[from, to]`
    /// (uContact RemoveScheduleDialerCall). An exact schedule is matched by its moment; a
    /// range schedule by its first day and start time read as UTC. A record that existed only
    /// for its callback (created by [`SpoolStore::schedule_call`]) is finished as `removed`;
    /// any other record stays in the spool without the schedule. Returns how many schedules
    /// were dropped.
    pub fn remove_schedules(
        &mut self,
        campaign: &str,
        e164: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let (cid, camp) = records::campaign_row(&tx, campaign)?;
        let mut removed = 0;
        for id in records::live_records_with_number(&tx, cid, e164)? {
            let mut rec = load_record(&tx, &id)?;
            let Some(s) = &rec.schedule else { continue };
            // A range's first local day and hour, read in the callee's zone (the campaign's
            // when the record has none), as the dialer reads it.
            let zone = dialer_core::rules::schedule::callee_zone(&camp, rec.time_zone.as_deref())
                .unwrap_or_else(|_| camp.tz());
            let start = dialer_core::rules::schedule::bounds(&s.when, zone).0;
            if start < from || start > to {
                continue;
            }
            if matches!(rec.status, RecordStatus::InFlight { .. }) {
                return Err(StoreError::RecordInFlight(id));
            }
            let origin: i64 = tx
                .prepare_cached("SELECT origin FROM record WHERE id = ?1")?
                .query_row([id_to_sql("record id", id.0)?], |r| r.get(0))?;
            rec.schedule = None;
            if origin == Origin::Schedule.code() {
                finish_removed(&mut rec);
            }
            update_record(&tx, &rec)?;
            removed += 1;
        }
        tx.commit()?;
        Ok(removed)
    }

    /// Applies an agent's or operator's disposition with the core's rules, in one
    /// transaction with its blacklist effect. A respool to numbers live on another record of
    /// the campaign is refused.
    pub fn apply_disposition(
        &mut self,
        record: &RecordId,
        d: &Disposition,
        now: DateTime<Utc>,
    ) -> Result<SpoolRecord> {
        let tx = self.conn.transaction()?;
        let mut rec = load_record(&tx, record)?;
        let (cid, camp) = records::campaign_row(&tx, &rec.campaign.0)?;
        let mut d = d.clone();
        if let Disposition::Schedule { schedule, .. } | Disposition::Reschedule { schedule, .. } =
            &mut d
        {
            if schedule.id.0 == 0 {
                schedule.id = records::next_schedule_id(&tx)?;
            }
        }
        let effect =
            disposition::apply(&mut rec, &camp, &d, now).map_err(|e| StoreError::Disposition {
                record: record.clone(),
                source: e,
            })?;
        if !rec.is_finished() {
            check_numbers_free(
                &tx,
                cid,
                &rec.campaign.0,
                rec.numbers.iter().map(|s| s.number.e164()),
                Some(record),
            )?;
        }
        update_record(&tx, &rec)?;
        if let Some(entry) = &effect.blacklist {
            blacklist_upsert(&tx, entry, now)?;
        }
        tx.commit()?;
        Ok(rec)
    }

    /// Refuses numbers that a live record of the campaign other than `except` already holds
    /// ([`StoreError::DuplicateDestination`]), or that repeat: the one destination rule of
    /// import, respool, schedule, task and disposition, for callers that change a record
    /// elsewhere first (the runtime asks before the engine applies a RESPOOL).
    pub fn check_numbers_free<'a>(
        &self,
        campaign: &str,
        numbers: impl IntoIterator<Item = &'a str>,
        except: Option<&RecordId>,
    ) -> Result<()> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        check_numbers_free(&self.conn, cid, campaign, numbers, except)
    }

    /// Adds a do-not-call entry (uContact addblack). As in the core's `Blacklist::add`,
    /// adding never shortens a block: re-adding keeps the later expiry, no expiry wins; use
    /// [`SpoolStore::blacklist_remove`] to lift one.
    pub fn blacklist_add(&mut self, entry: &BlacklistEntry, now: DateTime<Utc>) -> Result<()> {
        blacklist_upsert(&self.conn, entry, now)
    }

    /// Adds many entries in one transaction (uContact addblackbulk): all or none.
    pub fn blacklist_add_bulk(
        &mut self,
        entries: &[BlacklistEntry],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        let tx = self.conn.transaction()?;
        for e in entries {
            blacklist_upsert(&tx, e, now)?;
        }
        tx.commit()?;
        Ok(entries.len())
    }

    /// Adds entries with uContact's fields (name, company, username) in one transaction:
    /// every entry is checked first, and one bad entry adds none. Re-adding an entry keeps
    /// the longer block and takes the fields given (a field left out keeps its value).
    pub fn blacklist_add_detailed(
        &mut self,
        entries: &[DncEntry],
        now: DateTime<Utc>,
    ) -> Result<usize> {
        for e in entries {
            check_e164(&e.entry.number)?;
            e.details.check()?;
        }
        let tx = self.conn.transaction()?;
        for e in entries {
            blacklist_upsert(&tx, &e.entry, now)?;
            tx.prepare_cached(
                "UPDATE blacklist SET name = COALESCE(?4, name), company = COALESCE(?5, company),
                     username = COALESCE(?6, username)
                 WHERE e164 = ?1 AND scope = ?2 AND direction = ?3",
            )?
            .execute(params![
                e.entry.number,
                scope_sql(&e.entry.scope),
                codes::direction(e.entry.direction),
                e.details.name,
                e.details.company,
                e.details.username
            ])?;
        }
        tx.commit()?;
        Ok(entries.len())
    }

    /// The do-not-call entries with their fields, by number, scope and direction, expired
    /// ones included (they show their expiry); `number` and `scope` narrow the list.
    pub fn blacklist_entries(&self, filter: &DncFilter) -> Result<Vec<DncRow>> {
        if filter.limit == 0 || filter.limit > MAX_DNC_PAGE {
            return Err(StoreError::InvalidFilter {
                problem: format!("limit {} is not between 1 and {MAX_DNC_PAGE}", filter.limit),
            });
        }
        let scope = filter.scope.as_ref().map(|s| scope_sql(s).to_owned());
        let mut st = self.conn.prepare_cached(
            "SELECT e164, scope, direction, expires_ms, added_ms, name, company, username
             FROM blacklist WHERE (?1 IS NULL OR e164 = ?1) AND (?2 IS NULL OR scope = ?2)
             ORDER BY e164, scope, direction LIMIT ?3 OFFSET ?4",
        )?;
        type Raw = (
            String,
            String,
            String,
            Option<i64>,
            i64,
            [Option<String>; 3],
        );
        let rows: Vec<Raw> = st
            .query_map(
                params![
                    filter.number,
                    scope,
                    filter.limit as i64,
                    filter.offset as i64
                ],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        [r.get(5)?, r.get(6)?, r.get(7)?],
                    ))
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(
                |(number, scope, dir, exp, added, [name, company, username])| {
                    Ok(DncRow {
                        entry: DncEntry {
                            entry: BlacklistEntry {
                                number,
                                scope: scope_from_sql(scope),
                                expires_at: exp.map(from_ms).transpose()?,
                                direction: codes::parse_direction(&dir)?,
                            },
                            details: DncDetails {
                                name,
                                company,
                                username,
                            },
                        },
                        added_at: from_ms(added)?,
                    })
                },
            )
            .collect()
    }

    /// Removes the entries of a number in a scope, every direction (uContact deleteblack).
    pub fn blacklist_remove(&mut self, e164: &str, scope: &BlacklistScope) -> Result<usize> {
        blacklist_delete(&self.conn, e164, scope)
    }

    /// Removes many in one transaction (uContact deleteblackbulk); returns entries removed.
    pub fn blacklist_remove_bulk(&mut self, items: &[(String, BlacklistScope)]) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let mut n = 0;
        for (num, scope) in items {
            n += blacklist_delete(&tx, num, scope)?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Deletes entries whose expiry is at or before `now`; returns how many.
    pub fn blacklist_purge_expired(&mut self, now: DateTime<Utc>) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "DELETE FROM blacklist WHERE expires_ms IS NOT NULL AND expires_ms <= ?1",
            )?
            .execute([ms(now)])?)
    }

    /// The entries in force at `now`, for the core.
    pub fn blacklist(&self, now: DateTime<Utc>) -> Result<Blacklist> {
        let mut st = self.conn.prepare_cached(
            "SELECT e164, scope, direction, expires_ms FROM blacklist
             WHERE expires_ms IS NULL OR expires_ms > ?1",
        )?;
        let rows: Vec<(String, String, String, Option<i64>)> = st
            .query_map([ms(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut b = Blacklist::default();
        for (number, scope, dir, exp) in rows {
            b.add(BlacklistEntry {
                number,
                scope: scope_from_sql(scope),
                expires_at: exp.map(from_ms).transpose()?,
                direction: codes::parse_direction(&dir)?,
            });
        }
        Ok(b)
    }

    /// Whether `campaign` may not dial `e164` at `now`.
    pub fn is_blacklisted(&self, e164: &str, campaign: &str, now: DateTime<Utc>) -> Result<bool> {
        is_blacklisted(&self.conn, e164, campaign, now)
    }
}

/// The most entries one page of [`SpoolStore::blacklist_entries`] lists.
pub const MAX_DNC_PAGE: usize = 10_000;
/// The longest name, company or username of a do-not-call entry, in characters.
pub const MAX_DNC_FIELD: usize = 200;

/// uContact's fields of a do-not-call entry: who the number belongs to and who added it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DncDetails {
    /// The callee's name.
    pub name: Option<String>,
    /// The callee's company.
    pub company: Option<String>,
    /// The user who added the entry.
    pub username: Option<String>,
}

impl DncDetails {
    /// Each field at most [`MAX_DNC_FIELD`] characters, not empty, no control characters.
    pub fn check(&self) -> Result<()> {
        for (field, v) in [
            ("name", &self.name),
            ("company", &self.company),
            ("username", &self.username),
        ] {
            let Some(v) = v else { continue };
            let problem = if v.trim().is_empty() {
                "is empty (leave it out instead)".to_owned()
            } else if v.chars().count() > MAX_DNC_FIELD {
                format!("is longer than {MAX_DNC_FIELD} characters")
            } else if v.chars().any(char::is_control) {
                "holds a control character (CR, LF, NUL...)".to_owned()
            } else {
                continue;
            };
            return Err(StoreError::InvalidField {
                field: field.into(),
                problem,
            });
        }
        Ok(())
    }
}

/// A do-not-call entry with uContact's fields (`addblack`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DncEntry {
    #[serde(flatten)]
    pub entry: BlacklistEntry,
    #[serde(flatten)]
    pub details: DncDetails,
}

impl From<BlacklistEntry> for DncEntry {
    fn from(entry: BlacklistEntry) -> Self {
        DncEntry {
            entry,
            details: DncDetails::default(),
        }
    }
}

/// One listed do-not-call entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DncRow {
    #[serde(flatten)]
    pub entry: DncEntry,
    /// When it was first added.
    pub added_at: DateTime<Utc>,
}

/// Which entries [`SpoolStore::blacklist_entries`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DncFilter {
    /// Only this number (E.164).
    pub number: Option<String>,
    /// Only this scope.
    pub scope: Option<BlacklistScope>,
    pub offset: usize,
    /// 1 to [`MAX_DNC_PAGE`].
    pub limit: usize,
}

impl Default for DncFilter {
    fn default() -> Self {
        DncFilter {
            number: None,
            scope: None,
            offset: 0,
            limit: 1000,
        }
    }
}

pub(crate) fn is_blacklisted(
    conn: &Connection,
    e164: &str,
    campaign: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS(SELECT 1 FROM blacklist WHERE e164 = ?1 AND scope IN ('*', ?2)
                 AND direction IN ('O', 'B') AND (expires_ms IS NULL OR expires_ms > ?3))",
        )?
        .query_row(params![e164, campaign, ms(now)], |r| r.get(0))?)
}

fn scope_sql(scope: &BlacklistScope) -> &str {
    match scope {
        BlacklistScope::All => "*",
        BlacklistScope::Campaign(c) => &c.0,
    }
}

fn scope_from_sql(s: String) -> BlacklistScope {
    if s == "*" {
        BlacklistScope::All
    } else {
        BlacklistScope::Campaign(CampaignId::from(s))
    }
}

fn check_e164(n: &str) -> Result<()> {
    let digits = n.strip_prefix('+').unwrap_or("");
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::BadBlacklistNumber(n.to_owned()));
    }
    Ok(())
}

pub(crate) fn blacklist_upsert(
    conn: &Connection,
    e: &BlacklistEntry,
    now: DateTime<Utc>,
) -> Result<()> {
    check_e164(&e.number)?;
    conn.prepare_cached(
        "INSERT INTO blacklist (e164, scope, direction, expires_ms, added_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (e164, scope, direction) DO UPDATE SET expires_ms =
             CASE WHEN expires_ms IS NULL OR excluded.expires_ms IS NULL THEN NULL
                  ELSE MAX(expires_ms, excluded.expires_ms) END",
    )?
    .execute(params![
        e.number,
        scope_sql(&e.scope),
        codes::direction(e.direction),
        e.expires_at.map(ms),
        ms(now)
    ])?;
    Ok(())
}

pub(crate) fn blacklist_delete(
    conn: &Connection,
    e164: &str,
    scope: &BlacklistScope,
) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM blacklist WHERE e164 = ?1 AND scope = ?2")?
        .execute(params![e164, scope_sql(scope)])?)
}

/// Inserts `new` as a fresh record (its numbers must not be live in the campaign), after
/// `attach` has set what the operation adds (a schedule, a task).
fn insert_new(
    tx: &rusqlite::Transaction<'_>,
    cid: i64,
    new: &NewRecord,
    now: DateTime<Utc>,
    origin: Origin,
    attach: impl FnOnce(&mut SpoolRecord),
) -> Result<RecordId> {
    check_numbers_free(
        tx,
        cid,
        &new.campaign.0,
        new.numbers.iter().map(|n| n.e164()),
        None,
    )?;
    let mut rec = new.to_record(now)?;
    attach(&mut rec);
    let id = insert_record(
        tx,
        cid,
        &rec,
        None,
        Provenance {
            origin,
            source_line: None,
        },
    )?;
    set_external_id(tx, cid, &id, new)?;
    Ok(id)
}

/// An operator removed the record: finished as `removed`, with its callback and task, never
/// due again. The one rule every removal path applies.
pub(crate) fn finish_removed(rec: &mut SpoolRecord) {
    rec.status = RecordStatus::Finished {
        reason: FinishReason::Removed,
    };
    rec.schedule = None;
    rec.task = None;
    rec.next_eligible_at = None;
}

/// Gives a new record the id its caller knows it by; another record of the campaign with
/// that id is [`StoreError::DuplicateExternalId`] (the caller's transaction then rolls back).
fn set_external_id(conn: &Connection, cid: i64, id: &RecordId, new: &NewRecord) -> Result<()> {
    let Some(ext) = &new.external_id else {
        return Ok(());
    };
    let taken: Option<i64> = conn
        .prepare_cached("SELECT id FROM record WHERE campaign_id = ?1 AND external_id = ?2")?
        .query_row(params![cid, ext], |r| r.get(0))
        .optional()?;
    if let Some(other) = taken {
        return Err(StoreError::DuplicateExternalId {
            campaign: new.campaign.to_string(),
            external_id: ext.clone(),
            record: RecordId(crate::codes::id_from_sql(other)?),
        });
    }
    conn.prepare_cached("UPDATE record SET external_id = ?2 WHERE id = ?1")?
        .execute(params![crate::codes::id_to_sql("record id", id.0)?, ext])?;
    Ok(())
}
