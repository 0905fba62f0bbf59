//! Writes the upgrade-test fixture: a small spool database holding one of everything the store
//! persists (campaign settings, imported records with data and alternatives, rejects, an
//! interrupted upload, respooled, scheduled and task records, a removed contact, blacklist
//! entries, closed and open attempts, the campaign log).
//!
//! `cargo run -p spool-store --example write_fixture -- OUT.db`
//!
//! Beside the database it writes `OUT.expected.json`: what that build reads back from it
//! through the public API (campaigns, records, counters, ready sets, log, uploads, rejects,
//! blacklist).
//!
//! `tests/fixtures/spool-v2.db` and its `.expected.json` were written by this program as of
//! schema version 2 (commit 0b9cf33, before the lean spool schema of migration 3), and are
//! never regenerated: the migration tests open the database with today's build and compare
//! what it reads with what that release read. When a release changes the schema again, write
//! a new fixture next to it with that release's build.

use chrono::{Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use dialer_core::{
    BlacklistEntry, BlacklistScope, CallId, CallOutcome, CallingHours, Campaign, DialMode,
    Direction, FailureClass, PhoneNumber, Progress, ScheduleWhen, StoreUpdate, TaskKind,
    TaskTiming,
};
use spool_store::{Callback, ImportOptions, NewRecord, SpoolStore};
use std::io::Read;

/// A reader that fails after `left` bytes (an upload cut short).
struct Cut<'a> {
    data: &'a [u8],
    left: usize,
}

impl Read for Cut<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("connection lost"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}

fn phone(national: &str) -> PhoneNumber {
    PhoneNumber::parse(national, "UY").expect("valid fixture number")
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .expect("usage: write_fixture OUT.db");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("spool.db");
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap();
    let mut s = SpoolStore::open_unreconciled(&db).expect("open");

    let mut ventas = Campaign::new("ventas", "America/Montevideo");
    ventas.default_country = "UY".into();
    ventas.calling_hours = CallingHours::always();
    ventas.dial_mode = DialMode::Power { ratio: 1.5 };
    ventas.retry.busy_s = 900;
    ventas.max_lines = 12;
    ventas.caller_id = "+59829000000".into();
    ventas.holidays = vec![NaiveDate::from_ymd_opt(2026, 3, 16).unwrap()];
    s.upsert_campaign(&ventas, t0).unwrap();
    let mut soporte = Campaign::new("soporte", "America/New_York");
    soporte.dial_mode = DialMode::Predictive;
    s.upsert_campaign(&soporte, t0).unwrap();

    // A base with data, alternatives, priorities, agents and rejects.
    let mut base = String::new();
    for i in 0..40u32 {
        let alt = if i % 4 == 0 {
            format!("099{:06}", 500_000 + i)
        } else {
            String::new()
        };
        let prio = if i % 3 == 0 {
            String::new()
        } else {
            (2 + i % 5).to_string()
        };
        let agent = if i % 7 == 0 { "1001" } else { "" };
        base.push_str(&format!(
            "ventas;098{:06};id={i}:name=Cliente {i}:plan=gold;{alt};{prio};{agent}\n",
            100_000 + i
        ));
    }
    base.push_str("ventas;12;;\n"); // invalid number
    base.push_str("ventas;098100003;id=dup;;\n"); // duplicate in file
    base.push_str("otra;098100999;;\n"); // campaign mismatch
    base.push_str("ventas;098100998;a=1;099;\n"); // invalid alternative
    base.push('\n'); // a blank line
    let mut opts = ImportOptions::new("ventas", "base-marzo.txt", t0);
    opts.user = "ana".into();
    opts.batch_lines = 16;
    let sum = s
        .import_base(base.as_bytes(), &opts, &mut |_| {})
        .expect("import");
    assert_eq!((sum.imported, sum.rejected), (40, 4), "{sum:?}");

    // An upload cut short after two committed batches: resumable after the upgrade.
    let mut cut = String::new();
    for i in 0..30u32 {
        cut.push_str(&format!("ventas;098{:06};id=c{i};;\n", 200_000 + i));
    }
    let mut opts = ImportOptions::new("ventas", "base-cortada.txt", t0);
    opts.batch_lines = 10;
    let half = cut.len() / 2 + 5;
    let err = s.import_base(
        Cut {
            data: cut.as_bytes(),
            left: half,
        },
        &opts,
        &mut |_| {},
    );
    assert!(err.is_err());

    // Operations of the seeds.
    let mut r = NewRecord::new("ventas", vec![phone("098300001"), phone("099300001")]);
    r.data = vec![("origen".into(), "respool".into())];
    r.priority = Some(4);
    r.contact_id = Some("crm-77".into());
    r.time_zone = Some("America/Argentina/Buenos_Aires".into());
    s.respool(&r, t0).unwrap();
    s.schedule_call(
        &NewRecord::new("ventas", vec![phone("098300002")]),
        &Callback {
            when: ScheduleWhen::At {
                at: t0 + Duration::hours(3),
            },
            agent: Some("1002".into()),
            new_phone: Some(phone("099300002")),
            contact_name: None,
            reschedule: false,
        },
        t0,
    )
    .unwrap();
    s.schedule_call(
        &NewRecord::new("ventas", vec![phone("098100005")]),
        &Callback::at(ScheduleWhen::Range {
            start_date: NaiveDate::from_ymd_opt(2026, 3, 3).unwrap(),
            end_date: NaiveDate::from_ymd_opt(2026, 3, 5).unwrap(),
            start_time: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            end_time: NaiveTime::from_hms_opt(12, 30, 0).unwrap(),
        }),
        t0,
    )
    .unwrap();
    s.add_task(
        &NewRecord::new("ventas", vec![phone("098300003")]),
        TaskTiming::At {
            at: t0 + Duration::minutes(30),
        },
        TaskKind::Automatic,
        t0,
    )
    .unwrap();
    s.add_task(
        &NewRecord::new("ventas", vec![phone("098100006")]),
        TaskTiming::WhenFree,
        TaskKind::Bulk,
        t0,
    )
    .unwrap();
    s.remove_contact("ventas", "+59898100007").unwrap();
    s.blacklist_add(
        &BlacklistEntry {
            number: "+59898999999".into(),
            scope: BlacklistScope::All,
            expires_at: None,
            direction: Direction::Both,
        },
        t0,
    )
    .unwrap();
    s.blacklist_add(
        &BlacklistEntry {
            number: "+59898999998".into(),
            scope: BlacklistScope::Campaign("ventas".into()),
            expires_at: Some(t0 + Duration::days(30)),
            direction: Direction::Outbound,
        },
        t0,
    )
    .unwrap();
    s.respool(&NewRecord::new("soporte", vec![phone("098400001")]), t0)
        .unwrap();

    // The ledger: two calls ended (busy, connected), one left open as by a crash.
    let ready = s.ready_set("ventas", t0, 3).unwrap();
    for (k, (rec, outcome)) in ready
        .iter()
        .zip([
            Some(CallOutcome::Failed {
                class: FailureClass::Busy,
            }),
            Some(CallOutcome::Connected { talk_s: 95 }),
            None,
        ])
        .enumerate()
    {
        let call = CallId(k as u64 + 1);
        let at = t0 + Duration::minutes(k as i64);
        s.apply(&StoreUpdate::AttemptStarted {
            call,
            campaign: "ventas".into(),
            record: rec.id.clone(),
            number: rec.numbers[rec.current].number.clone(),
            agent: None,
            at,
        })
        .unwrap();
        s.log_progress("ventas", call, &rec.id, &Progress::Ringing, at)
            .unwrap();
        if let Some(outcome) = outcome {
            if matches!(outcome, CallOutcome::Connected { .. }) {
                s.log_progress(
                    "ventas",
                    call,
                    &rec.id,
                    &Progress::OnQueue,
                    at + Duration::seconds(10),
                )
                .unwrap();
                s.log_progress(
                    "ventas",
                    call,
                    &rec.id,
                    &Progress::Success {
                        agent: "1001".into(),
                    },
                    at + Duration::seconds(17),
                )
                .unwrap();
            }
            s.apply(&StoreUpdate::AttemptEnded {
                call,
                record: rec.id.clone(),
                outcome,
                at: at + Duration::minutes(2),
            })
            .unwrap();
        }
    }
    // What this build reads back, for the upgrade test to compare with.
    let mut expected = serde_json::Map::new();
    for name in ["ventas", "soporte"] {
        let b = t0 - Duration::days(1);
        let e = t0 + Duration::days(1);
        expected.insert(
            name.into(),
            serde_json::json!({
                "campaign": s.campaign(name).unwrap(),
                "records": s.records(name).unwrap(),
                "status": s.campaign_status(name).unwrap(),
                "ready": s.ready_set(name, t0 + Duration::hours(4), 100).unwrap()
                    .iter().map(|r| r.id.0).collect::<Vec<_>>(),
                "log": s.campaign_log(&name.into(), b, e).unwrap(),
            }),
        );
    }
    let bases: Vec<_> = (1..=2).map(|id| s.base(id).unwrap()).collect();
    expected.insert("bases".into(), serde_json::json!(bases));
    expected.insert("rejects".into(), serde_json::json!(s.rejects(1).unwrap()));
    expected.insert(
        "blacklist".into(),
        serde_json::json!(s.blacklist(t0).unwrap()),
    );
    drop(s);
    let json_path = format!("{}.expected.json", out.trim_end_matches(".db"));
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&serde_json::Value::Object(expected)).unwrap() + "\n",
    )
    .unwrap();

    // One self-contained file (no WAL beside it).
    let conn = rusqlite::Connection::open(&db).unwrap();
    let _ = std::fs::remove_file(&out);
    conn.execute("VACUUM INTO ?1", [&out]).unwrap();
    drop(conn);
    let conn = rusqlite::Connection::open(&out).unwrap();
    conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    println!("wrote {out} and {json_path}");
}
