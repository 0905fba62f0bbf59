//! Properties of the records themselves, over generated worlds (random campaigns, records in
//! zones with DST changes and an unknown zone, agents, calls ending every way, blacklists
//! changing, and agents disposing of records):
//!
//! - no two live records share a destination: a disposition the engine accepts (RESPOOL,
//!   RESPOOLALTERNATIVE, SCHEDULE on a new phone, DONE) never gives its record a number live
//!   on another record the engine holds. Records the engine does not hold (not due, or taken
//!   out of the hopper) are the store's to protect: its destination index refuses them on the
//!   import, respool, schedule and task paths (the spool's own tests).
//! - every pending record the engine holds has a future or a reason: it is dialable at some
//!   later instant (its window, caps and schedule allow it), or it carries a reason a person
//!   can act on (an unknown zone, campaign dates that are over), or it ends when the engine
//!   next looks at it (attempts spent, no number left, blacklisted). A range callback that
//!   is over is dropped by whoever looks at the record next (`rules::schedule::drop_if_over`,
//!   on the store's offer and on the engine's skip), so the walk applies the same rule.
//!
//! 1,000 cases each (`PROPTEST_CASES` overrides it). The seed is fixed and printed on
//! failure; set `PROPTEST_RNG_SEED=<u64>` to explore other worlds.

use dialer_core::rules::calling_window::CallingWindow;
use dialer_core::rules::eligibility::{self, EligibilityContext};
use dialer_core::rules::schedule;
use dialer_core::testing::{run_observed, strategies, Step};
use dialer_core::{
    Blacklist, Campaign, CampaignId, Engine, NumberState, RecordId, RecordStatus, SkipReason,
    SpoolRecord,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

const SEED: u64 = 20_261_130;

fn config() -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(SEED);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

/// The numbers a record may still dial: its active slots and a callback's own number.
fn live_numbers(r: &SpoolRecord) -> BTreeSet<String> {
    r.numbers
        .iter()
        .filter(|s| s.state == NumberState::Active)
        .map(|s| s.number.e164().to_owned())
        .chain(
            r.schedule
                .as_ref()
                .and_then(|s| s.number.as_ref())
                .map(|n| n.e164().to_owned()),
        )
        .collect()
}

/// The live numbers of every live record the engine holds for `campaign`.
fn held_live(engine: &Engine, campaign: &CampaignId) -> BTreeMap<RecordId, BTreeSet<String>> {
    engine
        .held_records(campaign)
        .into_iter()
        .filter(|r| !r.is_finished())
        .map(|r| (r.id.clone(), live_numbers(r)))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_two_live_records_share_a_destination(world in strategies::world_with_dispositions()) {
        let cid = world.campaign.id.clone();
        // What the engine held, and what the store had, after the previous step.
        let mut held: BTreeMap<RecordId, BTreeSet<String>> = BTreeMap::new();
        let mut stored: BTreeMap<RecordId, SpoolRecord> = BTreeMap::new();
        let mut broken = Vec::new();
        run_observed(&world, |engine, spool, step, now| {
            if let Step::Dispose { pick, action } = step {
                let record = &world.records[pick % world.records.len()].id;
                // An accepted disposition hands the record back to the store.
                let before = stored.get(record);
                let after = spool.records.get(record);
                if let Some(after) = after.filter(|r| Some(*r) != before && !r.is_finished()) {
                    let old = before.map(live_numbers).unwrap_or_default();
                    for number in live_numbers(after).difference(&old) {
                        for (other, numbers) in &held {
                            if other != record && numbers.contains(number) {
                                broken.push(format!(
                                    "{action:?} at {now} gave record {record} number {number}, live on record {other}"
                                ));
                            }
                        }
                    }
                }
            }
            held = held_live(engine, &cid);
            stored = spool.records.clone();
        });
        prop_assert!(broken.is_empty(), "seed {}: {:?}", SEED, broken);
    }

    #[test]
    fn every_pending_record_has_a_future_or_a_reason(world in strategies::world_with_dispositions()) {
        let cid = world.campaign.id.clone();
        let last = world.steps.len().saturating_sub(1);
        let mut index = 0;
        let mut stranded = Vec::new();
        run_observed(&world, |engine, _spool, _step, now| {
            if index == last {
                for r in engine.held_records(&cid) {
                    if r.status != RecordStatus::Pending {
                        continue;
                    }
                    if let Err(why) = future_or_reason(r, &world.campaign, engine.blacklist(), now) {
                        stranded.push(format!("record {} at {now}: {why} (schedule {:?}, zone {:?}, next eligible {:?})", r.id, r.schedule, r.time_zone, r.next_eligible_at));
                    }
                }
            }
            index += 1;
        });
        prop_assert!(stranded.is_empty(), "seed {}: {:?}", SEED, stranded);
    }
}

/// Whether a skip reason at `at` is one a person can act on, or one on which the engine ends
/// the record the next time it meets it.
fn ends_or_actionable(
    reason: &SkipReason,
    rec: &SpoolRecord,
    campaign: &Campaign,
    at: chrono::DateTime<chrono::Utc>,
) -> bool {
    match reason {
        // A person fixes the zone.
        SkipReason::UnknownTimeZone { .. } => true,
        // The engine marks the number and moves on, or finishes the record.
        SkipReason::Blacklisted { .. }
        | SkipReason::AttemptCapReached
        | SkipReason::NoDialableNumber => true,
        // Actionable only if the campaign's own window never opens again (its dates are
        // over: a person extends them). If the campaign still dials, something of the
        // record's own (a callback range that is over) strands it.
        SkipReason::OutsideCallingWindow { next: None } => eligibility::callee_zone(rec, campaign)
            .is_ok_and(|zone| {
                CallingWindow::for_campaign(campaign, zone)
                    .next_allowed(at)
                    .is_none()
            }),
        _ => false,
    }
}

/// Walks the record's future from `now`: each reason about time moves the clock to when it
/// lifts, until the record is dialable (with every agent free and no number in flight) or
/// stops on a reason a person can act on. A reason that neither lifts nor can be acted on,
/// or a future that keeps moving away, strands the record.
fn future_or_reason(
    rec: &SpoolRecord,
    campaign: &Campaign,
    blacklist: &Blacklist,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let no_call = |_: &str| false;
    let free = |_: &dialer_core::AgentId| true;
    let mut at = now;
    let mut path = Vec::new();
    let mut rec = rec.clone();
    for _ in 0..64 {
        // Whoever looks at the record next (the store's offer, or the engine's skip of a
        // record waiting in its hopper) drops a range callback that is over.
        schedule::drop_if_over(&mut rec, campaign, at);
        let rec = &rec;
        let ctx = EligibilityContext {
            campaign,
            blacklist,
            now: at,
            number_in_flight: &no_call,
            agent_free: &free,
            windows: None,
        };
        match eligibility::check(rec, &ctx) {
            Ok(_) => return Ok(()),
            Err(reason) if ends_or_actionable(&reason, rec, campaign, at) => return Ok(()),
            Err(reason) => match reason.retry_at() {
                Some(next) if next > at => {
                    path.push(reason.to_string());
                    at = next;
                }
                _ => {
                    path.push(reason.to_string());
                    return Err(format!("stuck: {}", path.join("; then ")));
                }
            },
        }
    }
    Err(format!("no future in 64 steps: {}", path.join("; then ")))
}
