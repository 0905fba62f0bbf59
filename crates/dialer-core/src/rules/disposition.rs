//! Dispositions: what an agent (or an operator) decides about a record after a call.

use super::next_step::advance_if_current_unusable;
use super::schedule::{self, ScheduleContext, ScheduleError};
use crate::model::blacklist::{BlacklistEntry, BlacklistScope, Direction};
use crate::model::campaign::Campaign;
use crate::model::ids::{AgentId, CampaignId};
use crate::model::phone::PhoneNumber;
use crate::model::record::{
    FinishReason, NumberSlot, NumberState, RecordStatus, Schedule, SpoolRecord, SCHEDULE_PRIORITY,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// New values for a respooled record (uContact Respool): anything left `None` is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Respool {
    /// New number order, main first. Attempts of numbers already on the record are kept.
    pub numbers: Option<Vec<PhoneNumber>>,
    /// Attempts to set on the main number (e.g. 0 when an alternative becomes main).
    pub main_attempts: Option<u32>,
    /// New priority (2 or more: 1 is reserved for scheduled calls).
    pub priority: Option<u32>,
    /// New `key=value` data, replacing the record's.
    pub data: Option<Vec<(String, String)>>,
    /// Give the record to another agent (progressive ownership); `Some(None)` frees it.
    pub owner_agent: Option<Option<AgentId>>,
}

/// What to do with a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Disposition {
    /// Nothing more to do: the record stays as the call left it.
    Done,
    /// Put the record back in the spool with changes (retries reset as given).
    Respool(Respool),
    /// Dial the next alternative number.
    RespoolAlternative,
    /// Never call this number again (from this campaign or all).
    Blacklist {
        /// The campaigns the entry covers.
        scope: BlacklistScope,
        /// When the entry lapses; `None`: never.
        expires_at: Option<DateTime<Utc>>,
    },
    /// Call back later, optionally only by the same agent and from another campaign. Refused
    /// if the record already has a callback (see [`Disposition::Reschedule`]).
    Schedule {
        /// The callback.
        schedule: Schedule,
        /// Dial it from this campaign instead of the record's own.
        campaign: Option<CampaignId>,
        /// A new name for the contact (ECCP `newcontactname`): it overwrites the record's
        /// first data field ([`crate::rules::schedule::rename_contact`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_name: Option<String>,
    },
    /// Like [`Disposition::Schedule`], replacing the callback the record already has.
    Reschedule {
        /// The new callback.
        schedule: Schedule,
        /// Dial it from this campaign instead of the record's own.
        campaign: Option<CampaignId>,
        /// A new name for the contact, as for [`Disposition::Schedule`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contact_name: Option<String>,
    },
}

/// A disposition that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "problem", content = "detail", rename_all = "snake_case")]
pub enum DispositionError {
    /// The priority asked for is the one reserved for scheduled calls.
    #[error("priority {0} is reserved for scheduled calls; use 2 or more")]
    ReservedPriority(u32),
    /// A respool with an empty number list.
    #[error("a respool needs at least one number")]
    NoNumbers,
    /// A respool listing the same number twice.
    #[error("number {0} appears twice in the respool")]
    DuplicateNumber(String),
    /// RESPOOLALTERNATIVE on a record with no alternative number left.
    #[error("record has no alternative number left to respool to")]
    NoAlternative,
    /// The record has a call in flight.
    #[error("a call on this record is in flight; dispose of it after the call")]
    InFlight,
    /// The callback breaks a schedule rule ([`crate::rules::schedule::validate`]).
    #[error("{0}")]
    Schedule(ScheduleError),
}

/// What applying a disposition produced besides the record change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DispositionEffect {
    /// A do-not-call entry the disposition adds (BLACKLIST).
    pub blacklist: Option<BlacklistEntry>,
}

/// Applies `d` to `rec` at `now`.
pub fn apply(
    rec: &mut SpoolRecord,
    campaign: &Campaign,
    d: &Disposition,
    now: DateTime<Utc>,
) -> Result<DispositionEffect, DispositionError> {
    if matches!(rec.status, RecordStatus::InFlight { .. }) {
        return Err(DispositionError::InFlight);
    }
    let mut effect = DispositionEffect::default();
    match d {
        Disposition::Done => {}
        Disposition::Respool(r) => {
            if let Some(p) = r.priority {
                if p <= SCHEDULE_PRIORITY {
                    return Err(DispositionError::ReservedPriority(p));
                }
            }
            if let Some(nums) = &r.numbers {
                if nums.is_empty() {
                    return Err(DispositionError::NoNumbers);
                }
                let mut slots = Vec::with_capacity(nums.len());
                for n in nums {
                    if slots
                        .iter()
                        .any(|s: &NumberSlot| s.number.e164() == n.e164())
                    {
                        return Err(DispositionError::DuplicateNumber(n.e164().to_owned()));
                    }
                    let old = rec.numbers.iter().find(|s| s.number.e164() == n.e164());
                    // A number the network said does not exist stays dead when listed again.
                    let state = match old.map(|s| s.state) {
                        Some(NumberState::Invalid) => NumberState::Invalid,
                        _ => NumberState::Active,
                    };
                    slots.push(NumberSlot {
                        number: n.clone(),
                        attempts: old.map_or(0, |s| s.attempts),
                        state,
                    });
                }
                rec.numbers = slots;
                // The first number that may still be dialed.
                rec.current = rec
                    .numbers
                    .iter()
                    .position(|s| s.state != NumberState::Invalid)
                    .unwrap_or(0);
            }
            if let Some(a) = r.main_attempts {
                rec.numbers[0].attempts = a;
                rec.current = 0;
            }
            for s in &mut rec.numbers {
                // A respool revives spent numbers within their cap; invalid numbers stay dead.
                if s.state == NumberState::Spent && s.attempts < campaign.max_attempts_per_number {
                    s.state = NumberState::Active;
                }
                if s.state == NumberState::Active && s.attempts >= campaign.max_attempts_per_number
                {
                    s.state = NumberState::Spent;
                }
            }
            // Retry budgets restart from the numbers' counts; the legal history (frequency
            // caps, lockouts) is never reset.
            rec.attempts = rec.numbers.iter().map(|s| s.attempts).sum();
            if let Some(p) = r.priority {
                rec.priority = p;
            }
            if let Some(data) = &r.data {
                rec.data = data.clone();
            }
            if let Some(owner) = &r.owner_agent {
                rec.owner_agent = owner.clone();
            }
            rec.status = RecordStatus::Pending;
            rec.next_eligible_at = None;
            advance_if_current_unusable(rec);
        }
        Disposition::RespoolAlternative => {
            let n = rec.numbers.len();
            let next = (1..n)
                .map(|k| (rec.current + k) % n)
                .find(|&i| rec.numbers[i].state == NumberState::Active)
                .ok_or(DispositionError::NoAlternative)?;
            rec.current = next;
            rec.status = RecordStatus::Pending;
            rec.next_eligible_at = None;
        }
        Disposition::Blacklist { scope, expires_at } => {
            let number = rec
                .numbers
                .get(rec.current)
                .map(|s| s.number.e164().to_owned())
                .unwrap_or_default();
            effect.blacklist = Some(BlacklistEntry {
                number,
                scope: scope.clone(),
                expires_at: *expires_at,
                direction: Direction::Outbound,
            });
            rec.status = RecordStatus::Finished {
                reason: FinishReason::Blacklisted,
            };
            rec.next_eligible_at = None;
        }
        Disposition::Schedule {
            schedule,
            campaign: target,
            contact_name,
        }
        | Disposition::Reschedule {
            schedule,
            campaign: target,
            contact_name,
        } => {
            let ctx = ScheduleContext {
                campaign,
                callee_zone: rec.time_zone.as_deref(),
                existing: rec.schedule.as_ref(),
                reschedule: matches!(d, Disposition::Reschedule { .. }),
            };
            schedule::validate(schedule, &ctx, now).map_err(DispositionError::Schedule)?;
            if let Some(name) = contact_name {
                schedule::check_contact_name(name).map_err(DispositionError::Schedule)?;
            }
            // Every check passed: now the change.
            if let Some(name) = contact_name {
                schedule::rename_contact(rec, name);
            }
            if let Some(c) = target {
                rec.campaign = c.clone();
            }
            rec.schedule = Some(schedule.clone());
            rec.status = RecordStatus::Pending;
            rec.next_eligible_at = None;
        }
    }
    Ok(effect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::RecordId;

    fn number(n: &str) -> PhoneNumber {
        PhoneNumber::parse(n, "US").expect("number")
    }

    #[test]
    fn u10_a_respool_keeps_a_number_found_invalid_dead() {
        // Regression: a RESPOOL listing a number again rebuilt it as Active, so a number the
        // network had said does not exist was dialed again.
        let campaign = Campaign::new("c", "UTC");
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 1, 12, 0, 0).unwrap();
        let mut rec = SpoolRecord::new(
            RecordId(1),
            "c".into(),
            number("2125550101"),
            vec![number("2125550102")],
            now,
        );
        rec.numbers[0].attempts = 1;
        rec.numbers[0].state = NumberState::Invalid;
        rec.current = 1;
        let d = Disposition::Respool(Respool {
            numbers: Some(vec![number("2125550101"), number("2125550102")]),
            ..Respool::default()
        });
        apply(&mut rec, &campaign, &d, now).expect("applies");
        assert_eq!(rec.numbers[0].state, NumberState::Invalid);
        assert_eq!(rec.numbers[0].attempts, 1, "its attempts are kept");
        assert_eq!(rec.numbers[1].state, NumberState::Active);
        assert_eq!(
            rec.current, 1,
            "the next dial is the number that may be dialed"
        );
    }
}
