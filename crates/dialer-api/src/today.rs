//! "Today" on the supervisor page: per campaign, the calls placed since the campaign's local
//! midnight (its IANA zone, so a day is 23 or 25 hours long across a DST change), and of those
//! the calls answered and the calls abandoned, read from the spool's attempt ledger.
//!
//! The ledger is read through the API's read-only connection. Call ids grow with time (the
//! engine numbers calls in the order it places them and a restart continues after the
//! ledger's last id), so the day's calls are the ledger's tail: its first id is found by a
//! binary search on the primary key and only the day's rows are read, however long the
//! ledger has grown. What a row's outcome means (answered? placed at all?) is the core's
//! [`CallOutcome`], read from its code.

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use dialer_core::CallOutcome;
use rusqlite::OptionalExtension;
use spool_store::{SpoolStore, StoreError};

/// Dials, answers and abandons of one campaign since its local midnight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Today {
    pub campaign: String,
    /// The campaign's local midnight (the start of its day), as a UTC instant.
    pub since: DateTime<Utc>,
    /// Calls placed since then (a call the telephone system never placed is not one).
    pub dials: u64,
    /// Of those, calls answered: by a person (taken by an agent, waiting in the queue, or
    /// abandoned) or by a machine.
    pub answers: u64,
    /// Of those, live answers no agent took in time.
    pub abandons: u64,
}

/// The first instant of the local day that contains `now` in `tz`. A zone whose clocks skip
/// midnight (a DST change at 00:00, e.g. America/Havana or America/Santiago in some years)
/// starts its day at the end of the gap; a repeated midnight counts from its first occurrence.
pub fn local_midnight(tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let date = now.with_timezone(&tz).date_naive();
    // Gaps are at most a few hours: step forward a quarter hour at a time until the local
    // time exists (24 h bounds the loop; a zone cannot skip a whole day's midnight to noon).
    let mut local = date.and_time(NaiveTime::MIN);
    for _ in 0..96 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.with_timezone(&Utc);
        }
        local += chrono::Duration::minutes(15);
    }
    // Unreachable for real zone data; the UTC midnight of that date is the honest fallback.
    Utc.from_utc_datetime(&date.and_time(NaiveTime::MIN))
}

/// The campaign's counts for the day containing `now` (the dialer's clock).
pub fn today(store: &SpoolStore, campaign: &str, now: DateTime<Utc>) -> Result<Today, StoreError> {
    let settings = store.campaign(campaign)?;
    let since = local_midnight(settings.tz(), now);
    let conn = store.connection();
    let cid: i64 = conn
        .prepare_cached("SELECT id FROM campaign WHERE name = ?1")?
        .query_row([campaign], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownCampaign(campaign.to_owned()))?;
    let (from_ms, to_ms) = (since.timestamp_millis(), now.timestamp_millis());
    let first = first_call_at_or_after(conn, from_ms)?;
    let mut st = conn.prepare_cached(
        "SELECT progress, outcome, COUNT(*) FROM attempt
         WHERE call_id >= ?1 AND campaign_id = ?2 AND started_ms BETWEEN ?3 AND ?4
         GROUP BY progress, outcome",
    )?;
    let rows = st.query_map(rusqlite::params![first, cid, from_ms, to_ms], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<String>>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut t = Today {
        campaign: campaign.to_owned(),
        since,
        dials: 0,
        answers: 0,
        abandons: 0,
    };
    for row in rows {
        let (progress, outcome, n) = row?;
        let n = n.max(0) as u64;
        let (dialed, answered, abandoned) = match outcome.as_deref() {
            // In flight: answered once it reached the queue or an agent.
            None => (
                true,
                matches!(progress.as_str(), "on_queue" | "linked"),
                false,
            ),
            Some(code) => match CallOutcome::from_code(code, Some(0)) {
                Some(CallOutcome::NotPlaced) => (false, false, false),
                Some(
                    CallOutcome::Connected { .. }
                    | CallOutcome::ShortCall { .. }
                    | CallOutcome::Machine,
                ) => (true, true, false),
                Some(CallOutcome::Abandoned) => (true, true, true),
                Some(CallOutcome::Failed { .. } | CallOutcome::Unknown) => (true, false, false),
                None => {
                    return Err(StoreError::Corrupt(format!(
                        "attempt outcome `{code}` is not one the dialer writes"
                    )))
                }
            },
        };
        if dialed {
            t.dials += n;
        }
        if answered {
            t.answers += n;
        }
        if abandoned {
            t.abandons += n;
        }
    }
    Ok(t)
}

/// The smallest call id whose call (or a later one) started at or after `from_ms`: a binary
/// search on the primary key, each probe one B-tree seek. One past the last id when none did.
fn first_call_at_or_after(conn: &rusqlite::Connection, from_ms: i64) -> Result<i64, StoreError> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .prepare_cached("SELECT MIN(call_id), MAX(call_id) FROM attempt")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (Some(mut lo), Some(hi)) = (lo, hi) else {
        return Ok(0);
    };
    let mut probe = conn.prepare_cached(
        "SELECT started_ms FROM attempt WHERE call_id >= ?1 ORDER BY call_id LIMIT 1",
    )?;
    // Invariant: every call before `lo` started before `from_ms`; the answer is in lo..=end.
    let mut end = hi + 1;
    while lo < end {
        let mid = lo + (end - lo) / 2;
        let started: i64 = probe.query_row([mid], |r| r.get(0))?;
        if started >= from_ms {
            end = mid;
        } else {
            lo = mid + 1;
        }
    }
    Ok(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn midnight_is_local_and_follows_daylight_saving_time() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // Summer (EDT, UTC-4) and winter (EST, UTC-5).
        assert_eq!(
            local_midnight(ny, utc("2026-06-01T14:00:00Z")),
            utc("2026-06-01T04:00:00Z")
        );
        assert_eq!(
            local_midnight(ny, utc("2026-01-15T14:00:00Z")),
            utc("2026-01-15T05:00:00Z")
        );
        // Just before local midnight it is still the previous day.
        assert_eq!(
            local_midnight(ny, utc("2026-06-02T03:59:59Z")),
            utc("2026-06-01T04:00:00Z")
        );
        // The day DST starts (8 March 2026) began at 00:00 EST; the next day at 00:00 EDT.
        assert_eq!(
            local_midnight(ny, utc("2026-03-08T20:00:00Z")),
            utc("2026-03-08T05:00:00Z")
        );
        assert_eq!(
            local_midnight(ny, utc("2026-03-09T20:00:00Z")),
            utc("2026-03-09T04:00:00Z")
        );
    }

    #[test]
    fn a_zone_that_skips_midnight_starts_its_day_when_the_gap_ends() {
        // Cuba moved its clocks from 00:00 to 01:00 on 8 March 2026 (UTC-5 → UTC-4).
        let havana: Tz = "America/Havana".parse().unwrap();
        let start = local_midnight(havana, utc("2026-03-08T18:00:00Z"));
        assert_eq!(start, utc("2026-03-08T05:00:00Z"), "01:00 CDT = 05:00 UTC");
        assert_eq!(
            start.with_timezone(&havana).format("%H:%M").to_string(),
            "01:00"
        );
    }
}
