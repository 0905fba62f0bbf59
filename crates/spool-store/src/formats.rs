//! The JSON the store persists, each document with its format version, read tolerantly.
//!
//! Three kinds of JSON live in the database; each carries a version, so a later build can tell
//! what it reads, and each is read with defaults for what it does not hold, so adding a
//! setting or a field never turns an existing database "corrupt":
//!
//! | what | column | form (version 1) | read from older rows |
//! |---|---|---|---|
//! | campaign settings | `campaign.settings` | the fields of `dialer_core::Campaign` plus `"v": 1` | a missing top-level field takes its value from `Campaign::new(name, zone)`; a missing field of a nested settings struct takes that struct's `Default` (`#[serde(default)]` in the core) |
//! | record data | `record.data` | `[1, [key, value], …]`; `NULL` when there is none | version 0 (`[[key, value], …]`, before migration 3) |
//! | attempt history | `record.history` | the fields of `dialer_core::AttemptHistory` plus `"v": 1`; `NULL` while empty | version 0 (no `"v"`); every field defaults |
//!
//! A version newer than this build knows is refused ([`StoreError::FormatTooNew`]) rather
//! than guessed at. The key `"v"` is the store's: no persisted core type may name a field `v`.

use crate::error::{Result, StoreError};
use dialer_core::{AttemptHistory, Campaign};
use serde_json::Value;

/// Version of the campaign settings documents this build writes.
pub const CAMPAIGN_FORMAT: u64 = 1;
/// Version of the record data documents this build writes.
pub const DATA_FORMAT: u64 = 1;
/// Version of the attempt history documents this build writes.
pub const HISTORY_FORMAT: u64 = 1;

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

/// Takes the `"v"` member out of a stored object: 0 when absent (written before versions).
fn take_version(what: &str, obj: &mut serde_json::Map<String, Value>, known: u64) -> Result<u64> {
    let v = match obj.remove("v") {
        None => 0,
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| corrupt(what, format!("format version {n}")))?,
        Some(other) => return Err(corrupt(what, format!("format version {other}"))),
    };
    if v > known {
        return Err(StoreError::FormatTooNew {
            what: what.to_owned(),
            found: v,
            known,
        });
    }
    Ok(v)
}

/// A versioned object: `{"v": version, …fields of value}`.
fn versioned_object<T: serde::Serialize>(what: &str, value: &T, version: u64) -> Result<String> {
    let mut obj = match serde_json::to_value(value).map_err(|e| corrupt(what, e))? {
        Value::Object(obj) => obj,
        other => return Err(corrupt(what, format!("not an object: {other}"))),
    };
    obj.insert("v".into(), Value::from(version));
    serde_json::to_string(&Value::Object(obj)).map_err(|e| corrupt(what, e))
}

/// The settings document of a campaign.
pub fn encode_campaign(c: &Campaign) -> Result<String> {
    versioned_object("campaign settings", c, CAMPAIGN_FORMAT)
}

/// Reads a campaign's settings. `name` and `time_zone` are the row's own columns: the
/// defaults of fields the document lacks are those of `Campaign::new(name, time_zone)`.
pub fn decode_campaign(name: &str, time_zone: &str, text: &str) -> Result<Campaign> {
    let what = format!("campaign {name:?} settings");
    let mut stored = match serde_json::from_str::<Value>(text).map_err(|e| corrupt(&what, e))? {
        Value::Object(obj) => obj,
        other => return Err(corrupt(&what, format!("not an object: {other}"))),
    };
    take_version(&what, &mut stored, CAMPAIGN_FORMAT)?;
    let mut merged = match serde_json::to_value(Campaign::new(name, time_zone))
        .map_err(|e| corrupt(&what, e))?
    {
        Value::Object(obj) => obj,
        other => {
            return Err(corrupt(
                &what,
                format!("defaults are not an object: {other}"),
            ))
        }
    };
    for (k, v) in stored {
        merged.insert(k, v);
    }
    serde_json::from_value(Value::Object(merged)).map_err(|e| corrupt(&what, e))
}

/// The data document of a record; `None` (SQL `NULL`) when it has no data.
pub fn encode_data(data: &[(String, String)]) -> Result<Option<String>> {
    if data.is_empty() {
        return Ok(None);
    }
    let mut out = String::with_capacity(8 + data.len() * 24);
    out.push('[');
    out.push_str(&DATA_FORMAT.to_string());
    for (k, v) in data {
        out.push_str(",[");
        push_json_string(&mut out, k);
        out.push(',');
        push_json_string(&mut out, v);
        out.push(']');
    }
    out.push(']');
    Ok(Some(out))
}

/// `s` as a JSON string literal (what `serde_json` writes for it).
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Escapes are rare in base files; the general path is serde's.
        out.push_str(&serde_json::to_string(s).expect("a string always encodes"));
    }
}

/// Reads a record's data (`None` = SQL `NULL` = no data).
pub fn decode_data(record: i64, text: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let what = format!("record {record} data");
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| corrupt(&what, e))?;
    let mut items = items.into_iter().peekable();
    // Version 0 is a bare list of pairs; later versions start with their number.
    if let Some(Value::Number(n)) = items.peek() {
        let v = n
            .as_u64()
            .ok_or_else(|| corrupt(&what, format!("format version {n}")))?;
        if v > DATA_FORMAT {
            return Err(StoreError::FormatTooNew {
                what,
                found: v,
                known: DATA_FORMAT,
            });
        }
        items.next();
    }
    items
        .map(|pair| serde_json::from_value(pair).map_err(|e| corrupt(&what, e)))
        .collect()
}

/// The history document of a record; `None` (SQL `NULL`) while it is empty.
pub fn encode_history(h: &AttemptHistory) -> Result<Option<String>> {
    if *h == AttemptHistory::default() {
        return Ok(None);
    }
    versioned_object("attempt history", h, HISTORY_FORMAT).map(Some)
}

/// Reads a record's attempt history (`None` = SQL `NULL` = empty).
pub fn decode_history(record: i64, text: Option<&str>) -> Result<AttemptHistory> {
    let Some(text) = text else {
        return Ok(AttemptHistory::default());
    };
    let what = format!("record {record} history");
    let mut obj = match serde_json::from_str::<Value>(text).map_err(|e| corrupt(&what, e))? {
        Value::Object(obj) => obj,
        other => return Err(corrupt(&what, format!("not an object: {other}"))),
    };
    take_version(&what, &mut obj, HISTORY_FORMAT)?;
    serde_json::from_value(Value::Object(obj)).map_err(|e| corrupt(&what, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn campaign_settings_round_trip_with_their_version() {
        let mut c = Campaign::new("ventas", "America/Montevideo");
        c.max_lines = 7;
        let text = encode_campaign(&c).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["v"],
            1,
            "{text}"
        );
        assert_eq!(
            decode_campaign("ventas", "America/Montevideo", &text).unwrap(),
            c
        );
    }

    #[test]
    fn settings_missing_from_an_older_document_take_their_defaults() {
        let mut c = Campaign::new("ventas", "UTC");
        c.max_lines = 7;
        let mut v = serde_json::to_value(&c).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.remove("routing");
        obj.remove("max_attempts_per_record");
        obj["retry"].as_object_mut().unwrap().remove("unknown_s");
        let back = decode_campaign("ventas", "UTC", &v.to_string()).unwrap();
        assert_eq!(back, c, "defaults fill what the document lacks");
    }

    #[test]
    fn a_settings_format_newer_than_this_build_is_refused_by_name() {
        let err = decode_campaign("ventas", "UTC", r#"{"v":9,"max_lines":3}"#).unwrap_err();
        assert!(
            matches!(err, StoreError::FormatTooNew { found: 9, .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("campaign \"ventas\" settings"),
            "{err}"
        );
    }

    #[test]
    fn data_round_trips_through_both_paths_of_the_encoder() {
        for data in [
            vec![],
            vec![("id".to_string(), "1".to_string())],
            vec![
                ("name".to_string(), "José \"Pepe\" Núñez".to_string()),
                ("nota".to_string(), "a\\b\u{7f}".to_string()),
            ],
        ] {
            let text = encode_data(&data).unwrap();
            if let Some(t) = &text {
                // What serde writes, with the version first.
                let serde = serde_json::to_string(&data).unwrap();
                assert_eq!(t, &format!("[1,{}", &serde[1..]));
            }
            assert_eq!(decode_data(1, text.as_deref()).unwrap(), data);
        }
        assert_eq!(
            decode_data(1, Some(r#"[["k","v"]]"#)).unwrap(),
            [("k".to_string(), "v".to_string())],
            "version 0"
        );
    }

    #[test]
    fn history_is_null_while_empty_and_versioned_otherwise() {
        assert_eq!(encode_history(&AttemptHistory::default()).unwrap(), None);
        let h = AttemptHistory {
            last_machine_at: Some(Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()),
            ..AttemptHistory::default()
        };
        let text = encode_history(&h).unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap()["v"],
            1,
            "{text}"
        );
        assert_eq!(decode_history(1, Some(&text)).unwrap(), h);
        let legacy = serde_json::to_string(&h).unwrap();
        assert_eq!(decode_history(1, Some(&legacy)).unwrap(), h, "version 0");
        assert_eq!(
            decode_history(
                1,
                Some(r#"{"v":1,"last_machine_at":"2026-03-02T15:00:00Z"}"#)
            )
            .unwrap(),
            h,
            "missing fields default"
        );
    }
}
