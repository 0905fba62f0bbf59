//! The simulated store's call spool: records in memory, indexed so a refill costs
//! O(limit · log n) rather than a scan of the list.

use crate::rng::{self, Topic};
use crate::scenario::ListSpec;
use chrono::{DateTime, Utc};
use dialer_core::rules::ordering::order_key;
use dialer_core::{CampaignId, PhoneNumber, RecordId, RecordStatus, SpoolRecord};
use rand::Rng;
use rustc_hash::FxHashMap;
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Weak};

/// The core's dial order ([`order_key`]) as plain integers: class, priority, attempts,
/// creation (seconds, nanoseconds), id. The same order, compared without calendar types (the
/// ready index is searched on every update of a record).
type ReadyKey = (u8, u32, u32, i64, u32, u64);

fn ready_key(rec: &SpoolRecord) -> ReadyKey {
    let (class, priority, attempts, created, id) = order_key(rec);
    (
        class as u8,
        priority,
        attempts,
        created.timestamp(),
        created.timestamp_subsec_nanos(),
        id.0,
    )
}

/// A record id of the fresh band.
struct FreshSlot {
    /// Not updated since it was made (a record updated leaves the band).
    untouched: bool,
    /// The copy a page handed out, while somebody holds it.
    copy: Weak<SpoolRecord>,
}

/// Records of one campaign, as a store would hold them.
pub struct Spool {
    campaign: CampaignId,
    seed: u64,
    list: ListSpec,
    created_at: DateTime<Utc>,
    /// Every record that is neither finished nor in flight, but for those of the fresh band,
    /// shared with the engine (its snapshots arrive so, and a page hands out these copies).
    records: FxHashMap<u64, Arc<SpoolRecord>>,
    /// Records in flight: the attempt and number slot of their call, all the simulator reads
    /// of them. The engine's snapshot is not kept (the snapshot that ends the call replaces
    /// it), so the engine holds the only copy and changes it at the end without a copy.
    flying: FxHashMap<u64, (u32, usize)>,
    /// Pending and due (or due once their time comes, see `waiting`), in dial order, except
    /// the records of the fresh band.
    ready: BTreeSet<ReadyKey>,
    /// The fresh band: records as made, never updated since (ids `fresh_lo..next_id`). They
    /// are pending and due, and share one order key but for the id (`fresh_prefix`), so they
    /// are in dial order by id: a page merges them with `ready` instead of indexing each
    /// record made (one is made per dial of an unlimited list).
    ///
    /// A record of the band is what [`Spool::build_record`] makes of its id, so the spool
    /// keeps no copy of it: a page hands out the copy the engine still holds from an earlier
    /// page (the `Weak`), or a new one. The engine's copy is then the only one, and the engine
    /// changes it at the dial without copying the record (`Arc::make_mut`).
    fresh: VecDeque<FreshSlot>,
    fresh_lo: u64,
    /// Untouched records in the band.
    fresh_count: usize,
    /// The order key of every record made, but for its id (`None` before the first).
    fresh_prefix: Option<(u8, u32, u32, i64, u32)>,
    /// Pending with a next eligible time not reached yet: (time, id).
    waiting: BTreeSet<(DateTime<Utc>, u64)>,
    next_id: u64,
    /// Records made so far.
    pub made: u64,
    /// Records that reached a finished state.
    pub finished: u64,
}

impl Spool {
    pub fn new(
        campaign: CampaignId,
        seed: u64,
        list: ListSpec,
        created_at: DateTime<Utc>,
    ) -> Spool {
        let mut s = Spool {
            campaign,
            seed,
            list,
            created_at,
            records: FxHashMap::default(),
            flying: FxHashMap::default(),
            ready: BTreeSet::new(),
            waiting: BTreeSet::new(),
            fresh: VecDeque::new(),
            fresh_lo: 1,
            fresh_count: 0,
            fresh_prefix: None,
            next_id: 1,
            made: 0,
            finished: 0,
        };
        if s.list.size > 0 {
            for _ in 0..s.list.size {
                s.make_record();
            }
        }
        s
    }

    /// A fresh record at the end of the band: its id taken, the record itself made when a
    /// page hands it out ([`Spool::fresh_copy`]).
    fn make_record(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        self.made += 1;
        if self.fresh_prefix.is_none() {
            // Every record made is keyed alike but for its id: the first one's key says how.
            let (class, priority, attempts, secs, nanos, _) = ready_key(&self.build_record(id));
            self.fresh_prefix = Some((class, priority, attempts, secs, nanos));
        }
        self.fresh.push_back(FreshSlot {
            untouched: true,
            copy: Weak::new(),
        });
        self.fresh_count += 1;
    }

    /// Record `id` as made: a unique synthetic number, alternatives and zone from its own
    /// stream. The same record every time for the same id.
    fn build_record(&self, id: u64) -> SpoolRecord {
        // The record's stream draws its alternatives and its zone only; a list with neither
        // (the reference model's) reads nothing from it, so it is not made (its ChaCha block
        // was a third of the cost of a fresh record). Streams are per record: skipping one
        // changes no other draw.
        let draws = self.list.max_alternatives > 0 || !self.list.time_zones.is_empty();
        let mut r = draws.then(|| rng::stream(self.seed, Topic::Record, id, 0));
        let number = |k: u64| {
            // Unique per (record, slot): `+1` and 10 digits, written without formatting
            // machinery (one record is made per dial of an unlimited list).
            let mut text = [b'0'; 12];
            text[0] = b'+';
            text[1] = b'1';
            let mut v = (2_000_000_000 + id * 8 + k) % 10_000_000_000;
            for b in text[2..].iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
            PhoneNumber::from_trusted_bytes(&text, &text[1..]).expect("digits only")
        };
        let alternatives = match r.as_mut() {
            Some(r) => {
                if self.list.max_alternatives > 0 && r.gen::<f64>() < self.list.alternatives_prob {
                    r.gen_range(1..=self.list.max_alternatives)
                } else {
                    let _ = r.gen::<u32>();
                    0
                }
            }
            None => 0,
        };
        let alts = (1..=u64::from(alternatives)).map(number).collect();
        let mut rec = SpoolRecord::new(
            RecordId(id),
            self.campaign.clone(),
            number(0),
            alts,
            self.created_at,
        );
        if let (false, Some(r)) = (self.list.time_zones.is_empty(), r.as_mut()) {
            let total: f64 = self.list.time_zones.iter().map(|z| z.weight).sum();
            let mut u = r.gen::<f64>() * total;
            let mut zone = &self.list.time_zones[self.list.time_zones.len() - 1].zone;
            for z in &self.list.time_zones {
                if u < z.weight {
                    zone = &z.zone;
                    break;
                }
                u -= z.weight;
            }
            rec.time_zone = Some(zone.clone());
        }
        debug_assert!(rec.status == RecordStatus::Pending && rec.next_eligible_at.is_none());
        rec
    }

    /// The copy of record `id` of the fresh band to hand out: the one handed out before if
    /// somebody still holds it, else a new one (kept track of, not kept).
    fn fresh_copy(&mut self, id: u64) -> Option<Arc<SpoolRecord>> {
        let i = usize::try_from(id.checked_sub(self.fresh_lo)?).ok()?;
        if !self.fresh.get(i)?.untouched {
            return None;
        }
        if let Some(rec) = self.fresh[i].copy.upgrade() {
            return Some(rec);
        }
        let rec = Arc::new(self.build_record(id));
        self.fresh[i].copy = Arc::downgrade(&rec);
        Some(rec)
    }

    /// The order key of record `id` of the fresh band.
    fn fresh_key(&self, id: u64) -> ReadyKey {
        let (class, priority, attempts, secs, nanos) =
            self.fresh_prefix.expect("a record of the band was made");
        (class, priority, attempts, secs, nanos, id)
    }

    /// Takes record `id` out of the fresh band; whether it was in it.
    fn leave_band(&mut self, id: u64) -> bool {
        let Some(i) = id.checked_sub(self.fresh_lo) else {
            return false;
        };
        let Some(slot) = self.fresh.get_mut(i as usize) else {
            return false;
        };
        if !std::mem::replace(&mut slot.untouched, false) {
            return false;
        }
        // The engine's copy replaces the one made here (if it kept that one, it is the same).
        slot.copy = Weak::new();
        self.fresh_count -= 1;
        while self.fresh.front().is_some_and(|slot| !slot.untouched) {
            self.fresh.pop_front();
            self.fresh_lo += 1;
        }
        true
    }

    /// Files the engine's copy of a record; `kept` says whether the spool may hold an older
    /// copy in `records` (not for a record of the fresh band or in flight).
    fn insert(&mut self, rec: Arc<SpoolRecord>, kept: bool) {
        let id = rec.id.0;
        match (&rec.status, rec.next_eligible_at) {
            (RecordStatus::Finished { .. }, _) => {
                self.finished += 1;
                if kept {
                    self.records.remove(&id);
                }
                return;
            }
            (RecordStatus::Pending, Some(t)) => {
                self.waiting.insert((t, id));
            }
            (RecordStatus::Pending, None) => {
                self.ready.insert(ready_key(&rec));
            }
            (RecordStatus::InFlight { .. }, _) => {
                if kept {
                    self.records.remove(&id);
                }
                self.flying.insert(id, (rec.attempts, rec.current));
                return;
            }
            (RecordStatus::Inactive { .. }, _) => {}
        }
        self.records.insert(id, rec);
    }

    /// Takes a record out of the ready and waiting indexes (it stays in `records`). Only a
    /// pending copy is in them (`insert` indexes nothing else), so a record in flight, whose
    /// end is most of the updates, costs no search. Whether `records` may hold a copy of it
    /// (a record of the fresh band or in flight has none there).
    fn unindex(&mut self, id: u64) -> bool {
        if self.leave_band(id) || self.flying.remove(&id).is_some() {
            return false;
        }
        if let Some(old) = self.records.get(&id) {
            if !matches!(old.status, RecordStatus::Pending) {
                return true;
            }
            self.ready.remove(&ready_key(old));
            if let Some(t) = old.next_eligible_at {
                self.waiting.remove(&(t, id));
            }
        }
        true
    }

    /// The store persists the engine's new copy of a record.
    pub fn update(&mut self, rec: Arc<SpoolRecord>) {
        let kept = self.unindex(rec.id.0);
        self.insert(rec, kept);
    }

    /// The first `limit` due records in dial order. An unlimited list makes fresh records
    /// when the due ones run short.
    pub fn due(&mut self, now: DateTime<Utc>, limit: usize) -> Vec<Arc<SpoolRecord>> {
        while let Some(&(t, id)) = self.waiting.first() {
            if t > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(rec) = self.records.get(&id) {
                self.ready.insert(ready_key(rec));
            }
        }
        if self.list.size == 0 {
            while self.ready.len() + self.fresh_count < limit {
                self.make_record();
            }
        }
        // The ids of the page: the ready index and the fresh band, merged in dial order.
        let mut ids = Vec::with_capacity(limit.min(self.ready.len() + self.fresh_count));
        let mut ready = self.ready.iter().peekable();
        let mut fresh = (self.fresh_lo..)
            .zip(self.fresh.iter())
            .filter_map(|(id, slot)| slot.untouched.then_some(id))
            .peekable();
        for _ in 0..limit {
            let id = match (ready.peek(), fresh.peek()) {
                (Some(k), Some(&id)) if self.fresh_key(id) < **k => {
                    fresh.next().map(|id| (id, true))
                }
                (Some(_), _) => ready.next().map(|k| (k.5, false)),
                (None, _) => fresh.next().map(|id| (id, true)),
            };
            let Some(id) = id else {
                break;
            };
            ids.push(id);
        }
        // Sized up front: a page is about a hundred records, grown by doubling it was copied
        // about seven times.
        let mut page = Vec::with_capacity(ids.len());
        for (id, fresh) in ids {
            let rec = if fresh {
                self.fresh_copy(id)
            } else {
                self.records.get(&id).cloned()
            };
            page.extend(rec);
        }
        page
    }

    /// Records neither finished nor in flight.
    pub fn pending(&self) -> usize {
        self.ready.len() + self.waiting.len() + self.fresh_count
    }

    /// The attempt and number slot of a record's call in flight.
    pub fn in_flight(&self, id: &RecordId) -> Option<(u32, usize)> {
        self.flying.get(&id.0).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use dialer_core::CallId;
    use rand::{Rng, SeedableRng};

    /// Every pending record: those the spool keeps, and those of the fresh band as made.
    fn pending_records(s: &Spool) -> Vec<SpoolRecord> {
        let kept = s.records.values().map(|r| SpoolRecord::clone(r));
        let band = (s.fresh_lo..)
            .zip(s.fresh.iter())
            .filter(|(_, slot)| slot.untouched)
            .map(|(id, _)| s.build_record(id));
        kept.chain(band)
            .filter(|r| r.status == RecordStatus::Pending)
            .collect()
    }

    /// What a page must be: the first `limit` pending and due records, in the core's order.
    fn expected_page(s: &Spool, now: DateTime<Utc>, limit: usize) -> Vec<u64> {
        let pending = pending_records(s);
        let mut due: Vec<&SpoolRecord> = pending
            .iter()
            .filter(|r| r.next_eligible_at.is_none_or(|t| t <= now))
            .collect();
        due.sort_by_key(|r| ready_key(r));
        due.iter().take(limit).map(|r| r.id.0).collect()
    }

    #[test]
    fn a_fresh_record_is_the_copy_still_held_or_the_same_record_made_again() {
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        let list = ListSpec {
            size: 0,
            max_alternatives: 2,
            alternatives_prob: 0.5,
            ..ListSpec::default()
        };
        let mut s = Spool::new(CampaignId::from("c"), 7, list, t0);
        let first = s.due(t0, 30);
        let again = s.due(t0, 30);
        assert_eq!(first.len(), 30);
        for (a, b) in first.iter().zip(&again) {
            assert!(Arc::ptr_eq(a, b), "a held copy is handed out again");
        }
        let kept: Vec<SpoolRecord> = first.iter().map(|r| SpoolRecord::clone(r)).collect();
        drop((first, again));
        let made_again = s.due(t0, 30);
        for (a, b) in kept.iter().zip(&made_again) {
            assert_eq!(a, &**b, "made again, the same record");
            assert_eq!(
                Arc::strong_count(b),
                1,
                "the spool keeps no copy of a fresh record"
            );
        }
    }

    #[test]
    fn a_page_merges_the_fresh_band_with_the_ready_index_in_dial_order() {
        let t0 = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
        for seed in 0..60u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let list = ListSpec {
                size: if seed % 2 == 0 { 0 } else { 40 },
                ..ListSpec::default()
            };
            let mut s = Spool::new(CampaignId::from("c"), seed, list, t0);
            let mut now = t0;
            let mut call = 0;
            let mut flying: Vec<SpoolRecord> = Vec::new();
            for step in 0..200 {
                now += Duration::seconds(rng.gen_range(0..30));
                let limit = rng.gen_range(1..25);
                let page = s.due(now, limit);
                let ids: Vec<u64> = page.iter().map(|r| r.id.0).collect();
                assert_eq!(
                    ids,
                    expected_page(&s, now, limit),
                    "seed {seed}, step {step}"
                );
                assert_eq!(
                    s.pending(),
                    pending_records(&s).len(),
                    "seed {seed}, step {step}"
                );
                // The engine's snapshots of some records of the page, as a run sends them.
                for r in &page {
                    if !rng.gen_bool(0.4) {
                        continue;
                    }
                    let mut next = SpoolRecord::clone(r);
                    match rng.gen_range(0..5) {
                        0 => {
                            call += 1;
                            next.status = RecordStatus::InFlight { call: CallId(call) };
                            flying.push(next.clone());
                        }
                        1 => {
                            next.attempts += 1;
                            next.next_eligible_at =
                                Some(now + Duration::seconds(rng.gen_range(1..120)));
                        }
                        2 => {
                            next.status = RecordStatus::Finished {
                                reason: dialer_core::FinishReason::Completed,
                            }
                        }
                        3 => next.attempts += 1,
                        _ => {}
                    }
                    s.update(Arc::new(next));
                }
                for r in &flying {
                    assert_eq!(
                        s.in_flight(&r.id),
                        Some((r.attempts, r.current)),
                        "seed {seed}, step {step}"
                    );
                    assert!(!s.records.contains_key(&r.id.0), "seed {seed}, step {step}");
                }
                // Calls in flight end: back to pending, due later or now.
                let (ended, still): (Vec<_>, Vec<_>) =
                    flying.drain(..).partition(|_| rng.gen_bool(0.5));
                flying = still;
                for mut next in ended {
                    next.status = RecordStatus::Pending;
                    next.attempts += 1;
                    if rng.gen_bool(0.5) {
                        next.next_eligible_at = Some(now + Duration::seconds(60));
                    }
                    s.update(Arc::new(next));
                }
            }
        }
    }
}
