//! Which due record dials first.
//!
//! Due exact schedules, then automatic tasks, then priority (lower first), then fewer
//! attempts, then oldest. Undated ("when free") tasks come last, so they only take lines that
//! nothing dated wants.

use crate::model::ids::RecordId;
use crate::model::record::{SpoolRecord, TaskKind, TaskTiming, SCHEDULE_PRIORITY};
use chrono::{DateTime, Utc};

/// The coarse class of a due record; lower dials first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DueClass {
    /// A schedule (callback) that is due now.
    Schedule = 0,
    /// A dialer task with `automatic`.
    AutomaticTask = 1,
    /// Everything dated: the normal spool, bulk and dated tasks.
    Normal = 2,
    /// A task with no date: only when the line is free.
    WhenFreeTask = 3,
}

/// The sort key of a record at `now`; smaller dials first.
pub type OrderKey = (DueClass, u32, u32, DateTime<Utc>, RecordId);

/// The class of `rec` at `now`.
pub fn due_class(rec: &SpoolRecord) -> DueClass {
    // Range schedules rank as schedules too; whether one is due is eligibility's job.
    if rec.schedule.is_some() {
        return DueClass::Schedule;
    }
    match &rec.task {
        Some(t) if t.kind == TaskKind::Automatic => DueClass::AutomaticTask,
        Some(t) if t.timing == TaskTiming::WhenFree => DueClass::WhenFreeTask,
        _ => DueClass::Normal,
    }
}

/// The full ordering key of `rec`.
pub fn order_key(rec: &SpoolRecord) -> OrderKey {
    let class = due_class(rec);
    let priority = if class == DueClass::Schedule {
        SCHEDULE_PRIORITY
    } else {
        rec.priority
    };
    (
        class,
        priority,
        rec.attempts,
        rec.created_at,
        rec.id.clone(),
    )
}

/// Sorts records into dial order.
pub fn sort_for_dialing(records: &mut [SpoolRecord]) {
    records.sort_by_cached_key(order_key);
}
