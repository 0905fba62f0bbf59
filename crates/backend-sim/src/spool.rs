//! The simulated store's call spool: records in memory, indexed so a refill costs
//! O(limit · log n) rather than a scan of the list.

use crate::rng::{self, Topic};
use crate::scenario::ListSpec;
use chrono::{DateTime, Utc};
use dialer_core::rules::ordering::order_key;
use dialer_core::{CampaignId, PhoneNumber, RecordId, RecordStatus, SpoolRecord};
use rand::Rng;
use rustc_hash::FxHashMap;
use std::collections::BTreeSet;

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

/// Records of one campaign, as a store would hold them.
pub struct Spool {
    campaign: CampaignId,
    seed: u64,
    list: ListSpec,
    created_at: DateTime<Utc>,
    /// Every record that is not finished (boxed, as the engine's snapshots arrive).
    records: FxHashMap<u64, Box<SpoolRecord>>,
    /// Pending and due (or due once their time comes, see `waiting`), in dial order.
    ready: BTreeSet<ReadyKey>,
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
            ready: BTreeSet::new(),
            waiting: BTreeSet::new(),
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

    /// A fresh record: a unique synthetic number, alternatives and zone from its own stream.
    fn make_record(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        self.made += 1;
        let mut r = rng::stream(self.seed, Topic::Record, id, 0);
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
            let e164 = std::str::from_utf8(&text).expect("ASCII digits");
            PhoneNumber::from_trusted(e164, &e164[1..]).expect("digits only")
        };
        let alternatives =
            if self.list.max_alternatives > 0 && r.gen::<f64>() < self.list.alternatives_prob {
                r.gen_range(1..=self.list.max_alternatives)
            } else {
                let _ = r.gen::<u32>();
                0
            };
        let alts = (1..=u64::from(alternatives)).map(number).collect();
        let mut rec = SpoolRecord::new(
            RecordId(id),
            self.campaign.clone(),
            number(0),
            alts,
            self.created_at,
        );
        if !self.list.time_zones.is_empty() {
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
        self.insert(Box::new(rec));
    }

    fn insert(&mut self, rec: Box<SpoolRecord>) {
        let id = rec.id.0;
        match (&rec.status, rec.next_eligible_at) {
            (RecordStatus::Finished { .. }, _) => {
                self.finished += 1;
                self.records.remove(&id);
                return;
            }
            (RecordStatus::Pending, Some(t)) => {
                self.waiting.insert((t, id));
            }
            (RecordStatus::Pending, None) => {
                self.ready.insert(ready_key(&rec));
            }
            (RecordStatus::InFlight { .. } | RecordStatus::Inactive { .. }, _) => {}
        }
        self.records.insert(id, rec);
    }

    /// Takes a record out of the ready and waiting indexes (it stays in `records`). Only a
    /// pending copy is in them (`insert` indexes nothing else), so a record in flight, whose
    /// end is most of the updates, costs no search.
    fn unindex(&mut self, id: u64) {
        if let Some(old) = self.records.get(&id) {
            if !matches!(old.status, RecordStatus::Pending) {
                return;
            }
            self.ready.remove(&ready_key(old));
            if let Some(t) = old.next_eligible_at {
                self.waiting.remove(&(t, id));
            }
        }
    }

    /// The store persists the engine's new copy of a record.
    pub fn update(&mut self, rec: Box<SpoolRecord>) {
        self.unindex(rec.id.0);
        self.insert(rec);
    }

    /// The first `limit` due records in dial order. An unlimited list makes fresh records
    /// when the due ones run short.
    pub fn due(&mut self, now: DateTime<Utc>, limit: usize) -> Vec<SpoolRecord> {
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
            while self.ready.len() < limit {
                self.make_record();
            }
        }
        // Sized up front: a page is about a hundred records, grown by doubling it was copied
        // about seven times.
        let mut page = Vec::with_capacity(limit.min(self.ready.len()));
        page.extend(
            self.ready
                .iter()
                .take(limit)
                .filter_map(|k| self.records.get(&k.5).map(|r| SpoolRecord::clone(r))),
        );
        page
    }

    /// Records neither finished nor in flight.
    pub fn pending(&self) -> usize {
        self.ready.len() + self.waiting.len()
    }

    /// A record's current copy.
    pub fn get(&self, id: &RecordId) -> Option<&SpoolRecord> {
        self.records.get(&id.0).map(|r| &**r)
    }
}
