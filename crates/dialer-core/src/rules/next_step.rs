//! What happens to a record when an attempt starts and when it ends.

use super::eligibility::next_time_allowed;
use crate::model::campaign::Campaign;
use crate::model::ids::CallId;
use crate::model::outcome::{CallOutcome, FailureClass};
use crate::model::record::{FinishReason, NumberState, RecordStatus, ScheduleWhen, SpoolRecord};
use chrono::{DateTime, Duration, Utc};

/// Attempt starts older than this are dropped from the history (the longest cap we honour).
const HISTORY_DAYS: i64 = 400;

/// Books the start of an attempt: counts it against the number and the record, marks the
/// record in flight. Counting at the start (not the end) means a crash mid-call can never
/// give a record a free attempt.
pub fn begin_attempt(rec: &mut SpoolRecord, campaign: &Campaign, call: CallId, now: DateTime<Utc>) {
    let uses_slot = rec
        .schedule
        .as_ref()
        .and_then(|s| s.number.as_ref())
        .is_none();
    if uses_slot {
        if let Some(slot) = rec.numbers.get_mut(rec.current) {
            slot.attempts += 1;
        }
    }
    rec.attempts += 1;
    rec.history.recent.push(now);
    rec.status = RecordStatus::InFlight { call };
    // Nothing else changes here, so `undo_attempt` can reverse it exactly; old history is
    // pruned when the attempt ends.
    let _ = campaign;
}

/// Reverses [`begin_attempt`] exactly: the attempt never happened (the call was never
/// placed, through no fault of the callee). Counters, frequency-cap history, schedule, task
/// and next eligible time are as before the dial.
pub fn undo_attempt(rec: &mut SpoolRecord) {
    let uses_slot = rec
        .schedule
        .as_ref()
        .and_then(|s| s.number.as_ref())
        .is_none();
    if uses_slot {
        if let Some(slot) = rec.numbers.get_mut(rec.current) {
            slot.attempts = slot.attempts.saturating_sub(1);
        }
    }
    rec.attempts = rec.attempts.saturating_sub(1);
    rec.history.recent.pop();
    rec.status = RecordStatus::Pending;
}

/// Drops attempt starts no frequency cap of the campaign looks at any more.
fn prune_history(rec: &mut SpoolRecord, campaign: &Campaign, now: DateTime<Utc>) {
    let keep_days = campaign
        .frequency
        .per_record
        .map_or(1, |c| i64::from(c.days))
        .clamp(1, HISTORY_DAYS);
    let horizon = now - Duration::days(keep_days);
    rec.history.recent.retain(|&t| t > horizon);
}

/// Applies the outcome of the attempt in flight and decides the record's next step: retry the
/// same number after its delay, move to the next alternative, or finish. The next eligible
/// time is moved into the callee's calling window.
pub fn finish_attempt(
    rec: &mut SpoolRecord,
    campaign: &Campaign,
    outcome: CallOutcome,
    now: DateTime<Utc>,
) {
    if outcome == CallOutcome::NotPlaced {
        undo_attempt(rec);
        return;
    }
    prune_history(rec, campaign, now);
    let r = &campaign.retry;
    // A schedule's own number replaces the slot only for that call.
    let slot_dialed = rec
        .schedule
        .as_ref()
        .and_then(|s| s.number.as_ref())
        .is_none();
    // A one-shot schedule or task is used up by the attempt; a range schedule stays while it lasts.
    if !matches!(
        rec.schedule.as_ref().map(|s| &s.when),
        Some(ScheduleWhen::Range { .. })
    ) {
        rec.schedule = None;
    }
    rec.task = None;

    let (delay_s, number_dead) = match outcome {
        CallOutcome::Connected { .. } => {
            rec.history.last_conversation_at = Some(now);
            rec.schedule = None;
            rec.status = RecordStatus::Finished {
                reason: FinishReason::Completed,
            };
            rec.next_eligible_at = None;
            return;
        }
        CallOutcome::ShortCall { .. } => {
            rec.history.last_conversation_at = Some(now);
            (r.short_call_s, false)
        }
        CallOutcome::Abandoned => {
            rec.history.last_abandoned_at = Some(now);
            (r.abandoned_s, false)
        }
        CallOutcome::Machine => {
            rec.history.last_machine_at = Some(now);
            (r.machine_s, false)
        }
        CallOutcome::Failed { class } => match class {
            FailureClass::Busy => (r.busy_s, false),
            FailureClass::NoAnswer => (r.no_answer_s, false),
            FailureClass::Congestion | FailureClass::OriginateFailed => (r.congestion_s, false),
            FailureClass::Rejected | FailureClass::InvalidNumber => (0, true),
        },
        CallOutcome::Unknown => (r.unknown_s, false),
        // Reversed by `undo_attempt` at the top, before anything changed.
        CallOutcome::NotPlaced => return,
    };

    if slot_dialed {
        if let Some(slot) = rec.numbers.get_mut(rec.current) {
            if number_dead {
                slot.state = NumberState::Invalid;
            } else if slot.attempts >= campaign.max_attempts_per_number {
                slot.state = NumberState::Spent;
            }
        }
    }
    rec.status = RecordStatus::Pending;
    if rec.attempts >= campaign.max_attempts_per_record {
        rec.status = RecordStatus::Finished {
            reason: FinishReason::AttemptsExhausted,
        };
        rec.next_eligible_at = None;
        return;
    }
    let moved = advance_if_current_unusable(rec);
    if rec.is_finished() {
        return;
    }
    // Moving to a fresh alternative dials it without the old number's delay.
    let delay = if moved { 0 } else { delay_s };
    let due = now + Duration::seconds(i64::from(delay));
    rec.next_eligible_at = Some(next_time_allowed(rec, campaign, due).unwrap_or(due));
}

/// If the current number can no longer be dialed, moves to the next active one (wrapping
/// around the list), or finishes the record. Returns whether it moved.
pub fn advance_if_current_unusable(rec: &mut SpoolRecord) -> bool {
    if rec
        .numbers
        .get(rec.current)
        .is_some_and(|s| s.state == NumberState::Active)
    {
        return false;
    }
    let n = rec.numbers.len();
    if let Some(next) = (1..=n)
        .map(|k| (rec.current + k) % n)
        .find(|&i| rec.numbers[i].state == NumberState::Active)
    {
        rec.current = next;
        return true;
    }
    let any_spent = rec.numbers.iter().any(|s| s.state == NumberState::Spent);
    rec.status = RecordStatus::Finished {
        reason: if any_spent {
            FinishReason::AttemptsExhausted
        } else {
            FinishReason::NoDialableNumber
        },
    };
    rec.next_eligible_at = None;
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::campaign::CallingHours;
    use crate::model::ids::{CampaignId, RecordId};
    use crate::model::phone::PhoneNumber;
    use chrono::TimeZone;

    fn record() -> (SpoolRecord, Campaign) {
        let mut c = Campaign::new("c", "America/New_York");
        c.calling_hours = CallingHours::us_tsr();
        c.max_attempts_per_number = 2;
        c.max_attempts_per_record = 5;
        let t0 = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
        let main = PhoneNumber::parse("2125550123", "US").unwrap();
        let alt = PhoneNumber::parse("2125550124", "US").unwrap();
        (
            SpoolRecord::new(RecordId(1), CampaignId("c".into()), main, vec![alt], t0),
            c,
        )
    }

    #[test]
    fn busy_number_is_retried_after_its_delay() {
        let (mut rec, c) = record();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
        begin_attempt(&mut rec, &c, CallId(1), now);
        finish_attempt(
            &mut rec,
            &c,
            CallOutcome::Failed {
                class: FailureClass::Busy,
            },
            now,
        );
        assert_eq!(rec.current, 0);
        assert_eq!(rec.next_eligible_at, Some(now + Duration::seconds(600)));
        assert_eq!(rec.status, RecordStatus::Pending);
    }

    #[test]
    fn invalid_number_moves_to_the_alternative_at_once_and_is_never_retried() {
        let (mut rec, c) = record();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
        begin_attempt(&mut rec, &c, CallId(1), now);
        finish_attempt(
            &mut rec,
            &c,
            CallOutcome::Failed {
                class: FailureClass::InvalidNumber,
            },
            now,
        );
        assert_eq!(rec.current, 1);
        assert_eq!(rec.numbers[0].state, NumberState::Invalid);
        assert_eq!(rec.next_eligible_at, Some(now));
    }

    #[test]
    fn spent_numbers_finish_the_record_as_attempts_exhausted() {
        let (mut rec, c) = record();
        let mut now = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
        for i in 0..4 {
            begin_attempt(&mut rec, &c, CallId(i), now);
            finish_attempt(
                &mut rec,
                &c,
                CallOutcome::Failed {
                    class: FailureClass::NoAnswer,
                },
                now,
            );
            now += Duration::hours(1);
        }
        assert_eq!(
            rec.status,
            RecordStatus::Finished {
                reason: FinishReason::AttemptsExhausted
            }
        );
    }

    #[test]
    fn retry_falling_after_close_moves_to_next_morning() {
        let (mut rec, c) = record();
        // 20:40 EST; busy delay 10 min -> 20:50, inside the 2-minute margin? No: 20:50 + 2 min
        // < 21:00 so allowed. Use no-answer (1 h) -> 21:40 -> next day 08:00 EST = 13:00 UTC.
        let now = Utc.with_ymd_and_hms(2026, 1, 16, 1, 40, 0).unwrap();
        begin_attempt(&mut rec, &c, CallId(1), now);
        finish_attempt(
            &mut rec,
            &c,
            CallOutcome::Failed {
                class: FailureClass::NoAnswer,
            },
            now,
        );
        assert_eq!(
            rec.next_eligible_at,
            Some(Utc.with_ymd_and_hms(2026, 1, 16, 13, 0, 0).unwrap())
        );
    }

    #[test]
    fn connected_call_completes_the_record() {
        let (mut rec, c) = record();
        let now = Utc.with_ymd_and_hms(2026, 1, 15, 15, 0, 0).unwrap();
        begin_attempt(&mut rec, &c, CallId(1), now);
        finish_attempt(&mut rec, &c, CallOutcome::Connected { talk_s: 90 }, now);
        assert_eq!(
            rec.status,
            RecordStatus::Finished {
                reason: FinishReason::Completed
            }
        );
        assert_eq!(rec.history.last_conversation_at, Some(now));
    }
}
