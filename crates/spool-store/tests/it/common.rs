#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use dialer_core::{CallingHours, Campaign, PhoneNumber};
use spool_store::{ImportOptions, ImportSummary, SpoolStore};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

/// A Uruguayan campaign dialing around the clock (so retry times are not moved by windows).
pub fn campaign(name: &str) -> Campaign {
    let mut c = Campaign::new(name, "America/Montevideo");
    c.default_country = "UY".into();
    c.calling_hours = CallingHours::always();
    c
}

pub fn store() -> SpoolStore {
    let mut s = SpoolStore::open_in_memory().unwrap();
    s.upsert_campaign(&campaign("c"), t0()).unwrap();
    s
}

/// The i-th valid Uruguayan mobile number in national form.
pub fn uy(i: u32) -> String {
    format!("098{:06}", i)
}

pub fn uy_e164(i: u32) -> String {
    format!("+59898{:06}", i)
}

pub fn phone(i: u32) -> PhoneNumber {
    PhoneNumber::parse(&uy(i), "UY").unwrap()
}

pub fn import(s: &mut SpoolStore, text: &str) -> ImportSummary {
    s.import_base(
        text.as_bytes(),
        &ImportOptions::new("c", "base.txt", t0()),
        &mut |_| {},
    )
    .unwrap()
}
