//! The do-not-call list: numbers a campaign (or every campaign) must never dial.

use super::ids::CampaignId;
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

/// Which campaigns an entry covers (`*` in the seeds is `All`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "scope", content = "campaign", rename_all = "snake_case")]
pub enum BlacklistScope {
    /// Every campaign.
    All,
    /// One campaign only.
    Campaign(CampaignId),
}

/// Which calls an entry blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Calls from the number (the dialer never dials it for this entry).
    Inbound,
    /// Calls to the number.
    Outbound,
    /// Both ways.
    Both,
}

impl Direction {
    /// Whether the entry forbids dialing the number.
    pub fn blocks_outbound(self) -> bool {
        matches!(self, Direction::Outbound | Direction::Both)
    }
}

/// One do-not-call entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlacklistEntry {
    /// E.164 form of the number.
    pub number: String,
    /// The campaigns it covers.
    pub scope: BlacklistScope,
    /// The entry stops blocking at this moment; `None` = forever.
    pub expires_at: Option<DateTime<Utc>>,
    /// The calls it blocks.
    pub direction: Direction,
}

impl BlacklistEntry {
    /// Whether this entry forbids `campaign` to dial out at `now`.
    pub fn blocks(&self, campaign: &CampaignId, now: DateTime<Utc>) -> bool {
        let in_scope = match &self.scope {
            BlacklistScope::All => true,
            BlacklistScope::Campaign(c) => c == campaign,
        };
        let live = self.expires_at.is_none_or(|e| now < e);
        in_scope && live && self.direction.blocks_outbound()
    }
}

/// All entries, indexed by number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blacklist {
    by_number: HashMap<String, Vec<BlacklistEntry>>,
}

impl Blacklist {
    /// Adds an entry. Adding never shortens a block: an existing entry with the same number,
    /// scope and direction keeps the later expiry (no expiry wins). Use [`Blacklist::remove`]
    /// to lift a block.
    pub fn add(&mut self, entry: BlacklistEntry) {
        let list = self.by_number.entry(entry.number.clone()).or_default();
        if let Some(old) = list
            .iter_mut()
            .find(|e| e.scope == entry.scope && e.direction == entry.direction)
        {
            old.expires_at = match (old.expires_at, entry.expires_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
            return;
        }
        list.push(entry);
    }

    /// Removes the entries of a number in a scope; returns how many were removed.
    pub fn remove(&mut self, number: &str, scope: &BlacklistScope) -> usize {
        let Some(list) = self.by_number.get_mut(number) else {
            return 0;
        };
        let before = list.len();
        list.retain(|e| &e.scope != scope);
        let removed = before - list.len();
        if list.is_empty() {
            self.by_number.remove(number);
        }
        removed
    }

    /// Whether `campaign` may not dial `e164` at `now`.
    pub fn blocks(&self, e164: &str, campaign: &CampaignId, now: DateTime<Utc>) -> bool {
        self.by_number
            .get(e164)
            .is_some_and(|l| l.iter().any(|e| e.blocks(campaign, now)))
    }

    /// How many entries there are (a number may have several, one per scope).
    pub fn len(&self) -> usize {
        self.by_number.values().map(Vec::len).sum()
    }

    /// Whether there is no entry at all.
    pub fn is_empty(&self) -> bool {
        self.by_number.is_empty()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &BlacklistEntry> {
        self.by_number.values().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn entry(
        scope: BlacklistScope,
        expires: Option<DateTime<Utc>>,
        d: Direction,
    ) -> BlacklistEntry {
        BlacklistEntry {
            number: "+12125550123".into(),
            scope,
            expires_at: expires,
            direction: d,
        }
    }

    #[test]
    fn entry_for_all_campaigns_blocks_every_campaign() {
        let mut b = Blacklist::default();
        b.add(entry(BlacklistScope::All, None, Direction::Both));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(b.blocks("+12125550123", &"x".into(), now));
        assert!(!b.blocks("+12125550124", &"x".into(), now));
    }

    #[test]
    fn campaign_entry_blocks_only_its_campaign_and_expires() {
        let mut b = Blacklist::default();
        let exp = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        b.add(entry(
            BlacklistScope::Campaign("a".into()),
            Some(exp),
            Direction::Outbound,
        ));
        let before = Utc.with_ymd_and_hms(2026, 1, 31, 23, 59, 59).unwrap();
        assert!(b.blocks("+12125550123", &"a".into(), before));
        assert!(!b.blocks("+12125550123", &"b".into(), before));
        assert!(!b.blocks("+12125550123", &"a".into(), exp));
    }

    #[test]
    fn re_adding_with_an_expiry_never_shortens_a_permanent_block() {
        let mut b = Blacklist::default();
        b.add(entry(BlacklistScope::All, None, Direction::Both));
        let exp = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
        b.add(entry(BlacklistScope::All, Some(exp), Direction::Both));
        let later = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert!(b.blocks("+12125550123", &"x".into(), later));
    }

    #[test]
    fn inbound_only_entry_does_not_block_dialing() {
        let mut b = Blacklist::default();
        b.add(entry(BlacklistScope::All, None, Direction::Inbound));
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        assert!(!b.blocks("+12125550123", &"a".into(), now));
    }
}
