//! Callback records as the UCCX callback server knows them (seed rows C1–C4, C8, C10): a
//! record found by the id its caller gave it, removed by id, its position in the queue, its
//! status in UCCX's terms ([`callback_status`], the one function that derives it), and the
//! changes an outside system may ask for (`updaterecord`: deactivate, reactivate, assign to
//! an agent).

use crate::codes::{self, id_from_sql, id_to_sql, ms};
use crate::error::{Result, StoreError};
use crate::records::{self, load_record, update_record};
use crate::store::SpoolStore;
use chrono::{DateTime, Utc};
use dialer_core::{
    AgentId, CallId, CallOutcome, CampaignId, FinishReason, RecordId, RecordStatus, SpoolRecord,
};
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

/// How far the call in progress on a record has got: what the running engine knows of it
/// (its calls in flight and its preview offers), or, for a spool read without a dialer, the
/// ledger's progress of the record's open attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum InCall {
    /// Offered to an agent in preview; the agent has not dialed or skipped it yet (only a
    /// running dialer knows this: preview offers are not persisted).
    Offered { agent: String },
    /// Booked: the ledger row exists, the telephone system has not reported dialing yet.
    Placing { call: CallId },
    /// Dialing or ringing the callee.
    Dialing { call: CallId },
    /// Answered, waiting in the queue for an agent (or being judged by AMD).
    Queued { call: CallId },
    /// An agent has the call (talking, or the callee on hold).
    Linked { call: CallId, agent: Option<String> },
}

/// A record's status in the UCCX callback server's terms (seed row C1).
///
/// UCCX places the agent first (the agent acknowledges, then the target is dialed); this
/// dialer dials the callee first and queues the answered call, so the in-call states come in
/// the order PROCESSING → DIALINGTARGET → QUEUED → AGENTACKNOWLEDGED. `REMOVED` is not a
/// UCCX status (UCCX deletes a removed record; the spool keeps it). UCCX's `IVR_FAILURE`
/// has no counterpart: the dialer runs no IVR, and a call the telephone system failed to
/// place charges nothing and leaves the record `NEW` or `RETRY`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status")]
pub enum CallbackStatus {
    /// Pending, never attempted.
    #[serde(rename = "NEW")]
    New,
    /// Pending after attempts that did not finish it.
    #[serde(rename = "RETRY")]
    Retry { attempts: u32 },
    /// Pending after its latest call was answered and no agent took it in time (the
    /// callee was abandoned: the closest this dialer has to an agent abandoning it).
    #[serde(rename = "AGENTABANDONED")]
    AgentAbandoned { attempts: u32 },
    /// Taken out of dialing by an operator; reactivating makes it pending again.
    #[serde(rename = "INACTIVE")]
    Inactive { since: DateTime<Utc> },
    /// Offered to an agent in preview, waiting for the agent to dial or skip it.
    #[serde(rename = "REQUESTED")]
    Requested { agent: String },
    /// Booked for a call that the telephone system has not started dialing yet.
    #[serde(rename = "PROCESSING")]
    Processing { call: CallId },
    /// The callee's number is being dialed or rings.
    #[serde(rename = "DIALINGTARGET")]
    DialingTarget { call: CallId },
    /// Answered, waiting in the queue for an agent.
    #[serde(rename = "QUEUED")]
    Queued { call: CallId },
    /// An agent has the call.
    #[serde(rename = "AGENTACKNOWLEDGED")]
    AgentAcknowledged { call: CallId, agent: Option<String> },
    /// Finished: connected to an agent.
    #[serde(rename = "COMPLETED")]
    Completed,
    /// Finished: every number used its attempts, or the record's cap was hit.
    #[serde(rename = "EXCEEDEDNUMBEROFATTEMPTS")]
    ExceededNumberOfAttempts { attempts: u32 },
    /// Finished: no number left that may be dialed (invalid, or blacklisted).
    #[serde(rename = "INVALID")]
    Invalid { reason: FinishReason },
    /// Finished: removed by an operator (not a UCCX status).
    #[serde(rename = "REMOVED")]
    Removed,
}

impl CallbackStatus {
    /// The status name (UCCX's, and `REMOVED`).
    pub fn name(&self) -> &'static str {
        match self {
            CallbackStatus::New => "NEW",
            CallbackStatus::Retry { .. } => "RETRY",
            CallbackStatus::AgentAbandoned { .. } => "AGENTABANDONED",
            CallbackStatus::Inactive { .. } => "INACTIVE",
            CallbackStatus::Requested { .. } => "REQUESTED",
            CallbackStatus::Processing { .. } => "PROCESSING",
            CallbackStatus::DialingTarget { .. } => "DIALINGTARGET",
            CallbackStatus::Queued { .. } => "QUEUED",
            CallbackStatus::AgentAcknowledged { .. } => "AGENTACKNOWLEDGED",
            CallbackStatus::Completed => "COMPLETED",
            CallbackStatus::ExceededNumberOfAttempts { .. } => "EXCEEDEDNUMBEROFATTEMPTS",
            CallbackStatus::Invalid { .. } => "INVALID",
            CallbackStatus::Removed => "REMOVED",
        }
    }
}

/// The one function that derives a record's [`CallbackStatus`]: from the record, the call in
/// progress on it (if any), and the outcome of its latest ended attempt that was placed (a
/// call never placed is not the callee's doing and does not count).
pub fn callback_status(
    rec: &SpoolRecord,
    in_call: Option<&InCall>,
    last_outcome: Option<&CallOutcome>,
) -> CallbackStatus {
    match &rec.status {
        RecordStatus::Inactive { since } => CallbackStatus::Inactive { since: *since },
        RecordStatus::Finished { reason } => match reason {
            FinishReason::Completed => CallbackStatus::Completed,
            FinishReason::AttemptsExhausted => CallbackStatus::ExceededNumberOfAttempts {
                attempts: rec.attempts,
            },
            FinishReason::NoDialableNumber | FinishReason::Blacklisted => {
                CallbackStatus::Invalid { reason: *reason }
            }
            FinishReason::Removed => CallbackStatus::Removed,
        },
        RecordStatus::InFlight { call } => match in_call {
            Some(InCall::Dialing { .. }) => CallbackStatus::DialingTarget { call: *call },
            Some(InCall::Queued { .. }) => CallbackStatus::Queued { call: *call },
            Some(InCall::Linked { agent, .. }) => CallbackStatus::AgentAcknowledged {
                call: *call,
                agent: agent.clone(),
            },
            Some(InCall::Placing { .. } | InCall::Offered { .. }) | None => {
                CallbackStatus::Processing { call: *call }
            }
        },
        RecordStatus::Pending => match (in_call, last_outcome) {
            (Some(InCall::Offered { agent }), _) => CallbackStatus::Requested {
                agent: agent.clone(),
            },
            _ if rec.attempts == 0 => CallbackStatus::New,
            (_, Some(CallOutcome::Abandoned)) => CallbackStatus::AgentAbandoned {
                attempts: rec.attempts,
            },
            _ => CallbackStatus::Retry {
                attempts: rec.attempts,
            },
        },
    }
}

/// One record's status, as `GET /api/records/{id}/status` answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordStatusView {
    pub record: RecordId,
    pub campaign: CampaignId,
    /// The caller's id of the record (UCCX `id`), if it has one.
    pub external_id: Option<String>,
    #[serde(flatten)]
    pub status: CallbackStatus,
    /// The agent the record is reserved for (its callback's agent, else its owner).
    pub agent: Option<String>,
}

/// A change of a record's status asked from outside (UCCX `updaterecord`, seed row C3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RecordChange {
    /// Take a pending record out of dialing without finishing it (UCCX `INACTIVE`).
    Deactivate,
    /// Bring an inactive record back: pending, as it was (UCCX `NEW` / `RETRY`).
    Reactivate,
    /// Reserve the record for one agent (a same-agent callback: its callback's agent, or the
    /// record's owner when it has no callback), or for anyone with `None`. The agent must be
    /// known to the spool (it has had a session).
    Assign { agent: Option<String> },
}

/// The agent a record is reserved for: its callback's agent, else its owner.
fn reserved_agent(rec: &SpoolRecord) -> Option<String> {
    rec.schedule
        .as_ref()
        .and_then(|s| s.agent.as_ref())
        .or(rec.owner_agent.as_ref())
        .map(|a| a.to_string())
}

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
            RecordStatus::Pending | RecordStatus::Inactive { .. } => {}
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
                problem: "it is not waiting in the queue (it is in flight, inactive or finished)"
                    .into(),
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

impl SpoolStore {
    /// A record's UCCX status as the spool alone knows it (no dialer running): the call in
    /// progress is read off the ledger's open attempt, and a preview offer is not known.
    pub fn record_status(&self, record: &RecordId) -> Result<RecordStatusView> {
        let rec = load_record(&self.conn, record)?;
        let in_call = match &rec.status {
            RecordStatus::InFlight { call } => self.in_call_from_ledger(*call)?,
            _ => None,
        };
        self.status_view(rec, in_call.as_ref())
    }

    /// A record's UCCX status with the call in progress as the running engine knows it.
    pub fn record_status_given(
        &self,
        record: &RecordId,
        in_call: Option<&InCall>,
    ) -> Result<RecordStatusView> {
        let rec = load_record(&self.conn, record)?;
        self.status_view(rec, in_call)
    }

    fn status_view(&self, rec: SpoolRecord, in_call: Option<&InCall>) -> Result<RecordStatusView> {
        let last = if rec.attempts > 0 && rec.status == RecordStatus::Pending {
            self.last_outcome(&rec.id)?
        } else {
            None
        };
        Ok(RecordStatusView {
            status: callback_status(&rec, in_call, last.as_ref()),
            external_id: self.external_id(&rec.id)?,
            agent: reserved_agent(&rec),
            record: rec.id,
            campaign: rec.campaign,
        })
    }

    /// The ledger's progress of an open attempt, if it is open.
    fn in_call_from_ledger(&self, call: CallId) -> Result<Option<InCall>> {
        let row: Option<(String, Option<String>, Option<String>)> = self
            .conn
            .prepare_cached(
                "SELECT progress, linked_agent, agent FROM attempt
                 WHERE call_id = ?1 AND outcome IS NULL",
            )?
            .query_row([id_to_sql("call id", call.0)?], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        Ok(
            row.map(|(progress, linked, reserved)| match progress.as_str() {
                "dialing" | "ringing" => InCall::Dialing { call },
                "on_queue" => InCall::Queued { call },
                "linked" => InCall::Linked {
                    call,
                    agent: linked.or(reserved),
                },
                _ => InCall::Placing { call },
            }),
        )
    }

    /// The outcome of the record's latest ended attempt that was placed.
    fn last_outcome(&self, record: &RecordId) -> Result<Option<CallOutcome>> {
        let row: Option<(String, Option<i64>)> = self
            .conn
            .prepare_cached(
                "SELECT outcome, talk_s FROM attempt
                 WHERE record_id = ?1 AND outcome IS NOT NULL AND outcome <> 'not_placed'
                 ORDER BY call_id DESC LIMIT 1",
            )?
            .query_row([id_to_sql("record id", record.0)?], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        row.map(|(o, talk)| codes::parse_outcome(&o, talk.and_then(|t| u32::try_from(t).ok())))
            .transpose()
    }

    /// Whether the spool knows an agent: it has had a session (logged in through the
    /// dialer, or seen on the telephone system).
    pub fn agent_known(&self, agent: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS(SELECT 1 FROM agent_session WHERE agent = ?1)")?
            .query_row([agent], |r| r.get(0))?)
    }

    /// Applies a change asked from outside (UCCX `updaterecord`, seed row C3) in one
    /// transaction, and answers the record as it is now. Every check runs first and a
    /// refusal changes nothing: a record in flight ([`StoreError::RecordInFlight`]), a
    /// finished one ([`StoreError::RecordFinished`]), deactivating an inactive record or
    /// reactivating one that is not inactive ([`StoreError::RecordState`]), an agent the
    /// spool does not know ([`StoreError::UnknownAgent`]).
    pub fn change_record(
        &mut self,
        record: &RecordId,
        change: &RecordChange,
        now: DateTime<Utc>,
    ) -> Result<SpoolRecord> {
        let tx = self.conn.transaction()?;
        let mut rec = load_record(&tx, record)?;
        match &rec.status {
            RecordStatus::InFlight { .. } => {
                return Err(StoreError::RecordInFlight(record.clone()))
            }
            RecordStatus::Finished { reason } => {
                return Err(StoreError::RecordFinished {
                    record: record.clone(),
                    reason: *reason,
                })
            }
            RecordStatus::Pending | RecordStatus::Inactive { .. } => {}
        }
        let inactive = matches!(rec.status, RecordStatus::Inactive { .. });
        match change {
            RecordChange::Deactivate if inactive => {
                return Err(StoreError::RecordState {
                    record: record.clone(),
                    problem: "it is already inactive".into(),
                })
            }
            RecordChange::Deactivate => rec.status = RecordStatus::Inactive { since: now },
            RecordChange::Reactivate if !inactive => {
                return Err(StoreError::RecordState {
                    record: record.clone(),
                    problem: "it is not inactive (only an inactive record is reactivated)".into(),
                })
            }
            RecordChange::Reactivate => rec.status = RecordStatus::Pending,
            RecordChange::Assign { agent } => {
                if let Some(a) = agent {
                    let known: bool = tx
                        .prepare_cached(
                            "SELECT EXISTS(SELECT 1 FROM agent_session WHERE agent = ?1)",
                        )?
                        .query_row([a], |r| r.get(0))?;
                    if !known {
                        return Err(StoreError::UnknownAgent(a.clone()));
                    }
                }
                let agent = agent.as_deref().map(AgentId::from);
                match rec.schedule.as_mut() {
                    Some(s) => s.agent = agent,
                    None => rec.owner_agent = agent,
                }
            }
        }
        update_record(&tx, &rec)?;
        tx.commit()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use dialer_core::{FailureClass, PhoneNumber};

    fn record(attempts: u32, status: RecordStatus) -> SpoolRecord {
        let at = Utc.with_ymd_and_hms(2026, 6, 1, 14, 0, 0).unwrap();
        let mut r = SpoolRecord::new(
            RecordId(1),
            CampaignId::from("spring"),
            PhoneNumber::parse("2125550100", "US").unwrap(),
            Vec::new(),
            at,
        );
        r.attempts = attempts;
        r.status = status;
        r
    }

    #[test]
    fn c1_every_record_state_maps_to_its_uccx_status() {
        let call = CallId(9);
        let since = Utc.with_ymd_and_hms(2026, 6, 1, 15, 0, 0).unwrap();
        let pending = record(0, RecordStatus::Pending);
        let retried = record(2, RecordStatus::Pending);
        let flying = record(1, RecordStatus::InFlight { call });
        let offered = InCall::Offered {
            agent: "agent1".into(),
        };
        let linked = InCall::Linked {
            call,
            agent: Some("agent1".into()),
        };
        let (placing, dialing, queued) = (
            InCall::Placing { call },
            InCall::Dialing { call },
            InCall::Queued { call },
        );
        let busy = CallOutcome::Failed {
            class: FailureClass::Busy,
        };
        let cases: Vec<(&SpoolRecord, Option<&InCall>, Option<&CallOutcome>, &str)> = vec![
            (&pending, None, None, "NEW"),
            (&pending, Some(&offered), None, "REQUESTED"),
            (&retried, None, Some(&busy), "RETRY"),
            (
                &retried,
                None,
                Some(&CallOutcome::Abandoned),
                "AGENTABANDONED",
            ),
            (&retried, Some(&offered), Some(&busy), "REQUESTED"),
            (&flying, None, None, "PROCESSING"),
            (&flying, Some(&placing), None, "PROCESSING"),
            (&flying, Some(&dialing), None, "DIALINGTARGET"),
            (&flying, Some(&queued), None, "QUEUED"),
            (&flying, Some(&linked), None, "AGENTACKNOWLEDGED"),
        ];
        for (rec, in_call, last, want) in cases {
            assert_eq!(
                callback_status(rec, in_call, last).name(),
                want,
                "{:?} {in_call:?} {last:?}",
                rec.status
            );
        }
        assert_eq!(
            callback_status(&flying, Some(&linked), None),
            CallbackStatus::AgentAcknowledged {
                call,
                agent: Some("agent1".into())
            }
        );
        let finished = |reason| record(3, RecordStatus::Finished { reason });
        for (reason, want) in [
            (FinishReason::Completed, "COMPLETED"),
            (FinishReason::AttemptsExhausted, "EXCEEDEDNUMBEROFATTEMPTS"),
            (FinishReason::NoDialableNumber, "INVALID"),
            (FinishReason::Blacklisted, "INVALID"),
            (FinishReason::Removed, "REMOVED"),
        ] {
            // What the last call did does not change a finished record's status.
            let last = CallOutcome::Connected { talk_s: 30 };
            assert_eq!(
                callback_status(&finished(reason), None, Some(&last)).name(),
                want
            );
        }
        let inactive = record(1, RecordStatus::Inactive { since });
        assert_eq!(
            callback_status(&inactive, None, Some(&CallOutcome::Machine)),
            CallbackStatus::Inactive { since }
        );
        // The name is the serialized status.
        let json = serde_json::to_value(callback_status(&flying, Some(&linked), None)).unwrap();
        assert_eq!(json["status"], "AGENTACKNOWLEDGED");
    }
}
