use rusqlite::Connection;
use spool_store::{schema, SpoolStore, StoreError};

/// Everything that defines the schema, table by table, independent of how it was reached.
fn describe(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let objects: Vec<(String, String, Option<String>)> = conn
        .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (kind, name, sql) in objects {
        if kind == "index" {
            out.push(format!("index {name}: {}", sql.unwrap_or_default()));
            continue;
        }
        out.push(format!("{kind} {name}"));
        let mut st = conn
            .prepare("SELECT * FROM pragma_table_xinfo(?1)")
            .unwrap();
        let cols: Vec<String> = st
            .query_map([&name], |r| {
                Ok(format!(
                    "  col {} {} notnull={} default={:?} pk={}",
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.extend(cols);
        let mut st = conn
            .prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1)")
            .unwrap();
        let fks: Vec<String> = st
            .query_map([&name], |r| {
                Ok(format!(
                    "  fk {} -> {}({:?})",
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(2)?
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        out.extend(fks);
        // CHECK constraints live only in the CREATE text: compare the parts of it that are
        // constraints (ALTER TABLE ADD COLUMN appends columns, never constraints).
        let sql = sql.unwrap_or_default();
        let checks = sql.matches("CHECK").count();
        out.push(format!("  checks {checks}"));
    }
    out
}

#[test]
fn migrations_validate_on_an_in_memory_database() {
    schema::migrations().validate().unwrap();
}

#[test]
fn database_upgraded_from_the_first_migration_matches_a_fresh_one() {
    let mut old = Connection::open_in_memory().unwrap();
    schema::migrations_up_to(1).to_latest(&mut old).unwrap();
    old.execute(
        "INSERT INTO campaign (name, time_zone, settings, created_ms) VALUES ('c', 'UTC', '{}', 0)",
        [],
    )
    .unwrap();
    schema::migrate(&mut old).unwrap();

    let mut fresh = Connection::open_in_memory().unwrap();
    schema::migrate(&mut fresh).unwrap();

    assert_eq!(describe(&old), describe(&fresh));
    let version: i64 = old
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::latest_version());
    let kept: i64 = old
        .query_row("SELECT COUNT(*) FROM campaign", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 1, "the upgrade keeps existing rows");
}

#[test]
fn database_written_by_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.db");
    drop(SpoolStore::open(&path).unwrap());
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", schema::latest_version() + 1)
        .unwrap();
    drop(conn);
    match SpoolStore::open(&path) {
        Err(StoreError::DatabaseTooNew { found, known }) => {
            assert_eq!(
                (found, known),
                (schema::latest_version() + 1, schema::latest_version())
            );
        }
        other => panic!("expected DatabaseTooNew, got {other:?}"),
    }
}

#[test]
fn file_database_uses_wal_and_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = SpoolStore::open(dir.path().join("spool.db")).unwrap();
    let conn = store.connection();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), fk), ("wal", 1));
}

#[test]
fn enum_columns_refuse_codes_outside_their_set() {
    let s = super::common::store();
    let err = s
        .connection()
        .execute(
            "INSERT INTO blacklist (e164, scope, direction, added_ms) VALUES ('+1', '*', 'X', 0)",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
}

/// The database `examples/write_fixture.rs` wrote with the build of schema version 2, and
/// what that build read back from it through the public API.
const FIXTURE: &[u8] = include_bytes!("../fixtures/spool-v2.db");
const FIXTURE_EXPECTED: &str = include_str!("../fixtures/spool-v2.expected.json");

fn fixture_copy(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("spool.db");
    std::fs::write(&path, FIXTURE).unwrap();
    path
}

fn fixture_t0() -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    chrono::Utc.with_ymd_and_hms(2026, 3, 2, 15, 0, 0).unwrap()
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap()
}

/// `got` has every field of `want` with the same value (objects may have more fields).
fn assert_contains(got: &serde_json::Value, want: &serde_json::Value, path: &str) {
    match (got, want) {
        (serde_json::Value::Object(g), serde_json::Value::Object(w)) => {
            for (k, v) in w {
                let p = format!("{path}.{k}");
                match g.get(k) {
                    Some(gv) => assert_contains(gv, v, &p),
                    None => panic!("{p}: missing after the upgrade"),
                }
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

#[test]
fn database_of_schema_2_upgrades_in_place_and_reads_back_what_that_release_read() {
    use chrono::Duration;
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let before: i64 = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(before, 2, "the fixture is of schema version 2");
    let s = SpoolStore::open_unreconciled(&path).unwrap();
    let expected: serde_json::Value = serde_json::from_str(FIXTURE_EXPECTED).unwrap();
    let t0 = fixture_t0();
    for name in ["ventas", "soporte"] {
        let want = &expected[name];
        // Every setting the old release read is read back the same; settings added since
        // then read with their defaults.
        assert_contains(&json(&s.campaign(name).unwrap()), &want["campaign"], name);
        assert_eq!(json(&s.records(name).unwrap()), want["records"], "{name}");
        assert_eq!(
            json(&s.campaign_status(name).unwrap()),
            want["status"],
            "{name}"
        );
        let ready: Vec<u64> = s
            .ready_set(name, t0 + Duration::hours(4), 100)
            .unwrap()
            .iter()
            .map(|r| r.id.0)
            .collect();
        assert_eq!(json(&ready), want["ready"], "{name}");
        let log = s
            .campaign_log(&name.into(), t0 - Duration::days(1), t0 + Duration::days(1))
            .unwrap();
        assert_eq!(json(&log), want["log"], "{name}");
    }
    let bases: Vec<_> = (1..=2).map(|id| s.base(id).unwrap()).collect();
    assert_eq!(json(&bases), expected["bases"]);
    assert_eq!(json(&s.rejects(1).unwrap()), expected["rejects"]);
    assert_eq!(json(&s.blacklist(t0).unwrap()), expected["blacklist"]);

    // The schema is the one a fresh database gets.
    let mut fresh = Connection::open_in_memory().unwrap();
    schema::migrate(&mut fresh).unwrap();
    assert_eq!(describe(s.connection()), describe(&fresh));
    let problems: i64 = s
        .connection()
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(problems, 0);
}

#[test]
fn a_spool_has_one_id_of_its_own_kept_across_opens_and_given_to_an_upgraded_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let first = SpoolStore::open_unreconciled(&a)
        .unwrap()
        .spool_id()
        .unwrap();
    assert_eq!(first.len(), 8, "{first}");
    assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
    let again = SpoolStore::open_unreconciled(&a)
        .unwrap()
        .spool_id()
        .unwrap();
    assert_eq!(first, again);
    let other = SpoolStore::open_unreconciled(dir.path().join("b.db"))
        .unwrap()
        .spool_id()
        .unwrap();
    assert_ne!(first, other, "two spools drew the same id");
    let upgraded = SpoolStore::open_unreconciled(fixture_copy(&dir))
        .unwrap()
        .spool_id()
        .unwrap();
    assert_eq!(upgraded.len(), 8, "{upgraded}");
}

#[test]
fn upgraded_database_reconciles_its_open_attempt_and_resumes_its_cut_upload() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let t0 = fixture_t0();
    let (mut s, report) = SpoolStore::open_at(&path, t0 + chrono::Duration::hours(1)).unwrap();
    assert_eq!(report.attempts_closed, [dialer_core::CallId(3)]);
    let row = s.attempt(dialer_core::CallId(3)).unwrap();
    assert_eq!(row.outcome, Some(dialer_core::CallOutcome::Unknown));
    assert!(row.reconciled);

    // The upload the fixture's build was cut short on resumes where it stopped.
    let mut text = String::new();
    for i in 0..30u32 {
        text.push_str(&format!("ventas;098{:06};id=c{i};;\n", 200_000 + i));
    }
    let cut = s
        .unfinished_base("ventas", "base-cortada.txt")
        .unwrap()
        .expect("the fixture has a cut upload");
    let mut opts = spool_store::ImportOptions::new("ventas", "base-cortada.txt", t0);
    opts.batch_lines = 10;
    let sum = s.import_base(text.as_bytes(), &opts, &mut |_| {}).unwrap();
    assert_eq!(sum.base_id, cut.id);
    assert_eq!(sum.resumed_at_line, Some(cut.lines + 1));
    assert_eq!((sum.lines, sum.imported, sum.rejected), (30, 30, 0));
    let ids: Vec<String> = s
        .records("ventas")
        .unwrap()
        .iter()
        .filter(|r| r.base_id == Some(cut.id))
        .map(|r| r.data[0].1.clone())
        .collect();
    assert_eq!(ids, (0..30).map(|i| format!("c{i}")).collect::<Vec<_>>());
}

/// Issue 10 defect: settings were stored as bare JSON of the struct, so the first setting
/// added to `Campaign` made every existing database fail to open as "corrupt". A database
/// written before a setting existed is one whose stored settings lack it.
#[test]
fn settings_stored_before_a_setting_was_added_read_with_its_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE campaign SET settings = json_remove(settings, '$.routing', '$.machine',
             '$.max_attempts_per_record', '$.retry.unknown_s', '$.abandon.window')
         WHERE name = 'ventas'",
        [],
    )
    .unwrap();
    drop(conn);
    let expected: serde_json::Value = serde_json::from_str(FIXTURE_EXPECTED).unwrap();
    let mut want: dialer_core::Campaign =
        serde_json::from_value(expected["ventas"]["campaign"].clone()).unwrap();
    let defaults = dialer_core::Campaign::new("ventas", "America/Montevideo");
    want.routing = defaults.routing.clone();
    want.machine = defaults.machine;
    want.max_attempts_per_record = defaults.max_attempts_per_record;
    want.retry.unknown_s = defaults.retry.unknown_s;
    want.abandon.window = defaults.abandon.window;

    let mut s = SpoolStore::open_unreconciled(&path).unwrap();
    assert_eq!(s.campaign("ventas").unwrap(), want);
    // Every path that reads settings works: import, ready set, the ledger.
    let t0 = fixture_t0();
    let sum = s
        .import_base(
            &b"ventas;098777001;;\n"[..],
            &spool_store::ImportOptions::new("ventas", "nueva.txt", t0),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(sum.imported, 1);
    assert!(!s.ready_set("ventas", t0, 10).unwrap().is_empty());
    s.reconcile(t0).unwrap();
    // Written back, the settings carry their version.
    s.upsert_campaign(&want, t0).unwrap();
    let stored: String = s
        .connection()
        .query_row(
            "SELECT settings FROM campaign WHERE name = 'ventas'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["v"], 1, "{stored}");
}

#[test]
fn settings_written_by_a_newer_format_are_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture_copy(&dir);
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE campaign SET settings = json_set(settings, '$.v', 99) WHERE name = 'soporte'",
        [],
    )
    .unwrap();
    drop(conn);
    let s = SpoolStore::open_unreconciled(&path).unwrap();
    let err = s.campaign("soporte").unwrap_err();
    assert!(
        matches!(err, StoreError::FormatTooNew { found: 99, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "campaign \"soporte\" settings: format version 99 is newer than this program knows (1); use a newer build"
    );
}

#[test]
fn c1_u17_e3_the_latest_upgrade_keeps_records_blacklist_and_ledger_rows() {
    // A database from before the step that added the inactive status (found by its text:
    // steps appended since must not change what this checks), with a record of each status,
    // a blacklist entry and an attempt, upgraded: every row kept, the new columns empty, and
    // a record can then be inactive (status 3 with its time, refused without it).
    let inactive_step = schema::MIGRATIONS
        .iter()
        .position(|sql| sql.contains("CREATE TABLE record_v8"))
        .expect("a step adds the inactive status");
    let mut old = Connection::open_in_memory().unwrap();
    schema::migrations_up_to(inactive_step)
        .to_latest(&mut old)
        .unwrap();
    old.execute_batch(
        "INSERT INTO campaign (id, name, time_zone, settings, created_ms) VALUES (1, 'c', 'UTC', '{\"v\":1}', 0);
         INSERT INTO record (id, campaign_id, status, call_id, finish_reason, current_slot, priority,
             attempts, origin, created_ms, numbers, due_class, order_priority, due_ms, has_task,
             external_id)
         VALUES (1, 1, 0, NULL, NULL, 0, 2, 0, 0, 0, '+12125550100,2125550100,0,0', 2, 2, 0, 0, 'cb-1'),
                (2, 1, 1, 9, NULL, 0, 2, 1, 0, 0, '+12125550101,2125550101,1,0', 2, 2, 0, 0, NULL),
                (3, 1, 2, NULL, 0, 0, 2, 1, 0, 0, '+12125550102,2125550102,1,1', 2, 2, 0, 0, NULL);
         INSERT INTO attempt (call_id, campaign_id, record_id, e164, dial, started_ms, progress)
         VALUES (9, 1, 2, '+12125550101', '2125550101', 0, 'ringing');
         INSERT INTO blacklist (e164, scope, direction, added_ms) VALUES ('+12125550199', '*', 'O', 0);",
    )
    .unwrap();
    schema::migrate(&mut old).unwrap();
    let mut fresh = Connection::open_in_memory().unwrap();
    schema::migrate(&mut fresh).unwrap();
    assert_eq!(describe(&old), describe(&fresh));
    let records: Vec<(i64, i64, Option<i64>, Option<String>)> = old
        .prepare("SELECT id, status, inactive_ms, external_id FROM record ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        records,
        vec![
            (1, 0, None, Some("cb-1".into())),
            (2, 1, None, None),
            (3, 2, None, None)
        ]
    );
    let identity: (Option<String>, Option<String>, Option<String>) = old
        .query_row(
            "SELECT unique_id, channel, queue FROM attempt WHERE call_id = 9",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(identity, (None, None, None));
    let name: Option<String> = old
        .query_row("SELECT name FROM blacklist", [], |r| r.get(0))
        .unwrap();
    assert_eq!(name, None);
    assert!(old
        .execute("UPDATE record SET status = 3 WHERE id = 1", [])
        .is_err());
    old.execute(
        "UPDATE record SET status = 3, inactive_ms = 5 WHERE id = 1",
        [],
    )
    .unwrap();
    // The ready index no longer sees it.
    let ready: i64 = old
        .query_row(
            "SELECT COUNT(*) FROM record INDEXED BY record_ready WHERE campaign_id = 1 AND status = 0",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ready, 0);
}

/// The step that added `destination_recent` (found by its text, not its index: steps appended
/// later must not change what this test checks).
fn recent_destinations_step() -> usize {
    schema::MIGRATIONS
        .iter()
        .position(|sql| sql.contains("CREATE TABLE destination_recent"))
        .expect("a step creates destination_recent")
}

#[test]
fn upgrade_to_the_recent_destination_index_keeps_every_destination() {
    let mut old = Connection::open_in_memory().unwrap();
    schema::migrations_up_to(recent_destinations_step())
        .to_latest(&mut old)
        .unwrap();
    old.execute_batch(
        "INSERT INTO campaign (id, name, time_zone, settings, created_ms)
             VALUES (1, 'c', 'America/Montevideo', '{\"v\":1,\"default_country\":\"UY\"}', 0);
         INSERT INTO record (id, campaign_id, status, current_slot, priority, attempts, origin,
             created_ms, numbers, due_class, order_priority, due_ms, has_task)
         VALUES (1, 1, 0, 0, 2, 0, 0, 0,
             '+59898000001,098000001,0,0;+59898000002,098000002,0,0', 2, 2, 0, 0);
         INSERT INTO destination (campaign_id, number, record_id)
         VALUES (1, 59898000001, 1), (1, 59898000002, 1);",
    )
    .unwrap();
    schema::migrate(&mut old).unwrap();
    let mut fresh = Connection::open_in_memory().unwrap();
    schema::migrate(&mut fresh).unwrap();
    assert_eq!(describe(&old), describe(&fresh));
    let rows: Vec<(i64, i64)> = old
        .prepare("SELECT number, record_id FROM destination ORDER BY number")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(59898000001, 1), (59898000002, 1)]);
    let recent: i64 = old
        .query_row("SELECT COUNT(*) FROM destination_recent", [], |r| r.get(0))
        .unwrap();
    assert_eq!(recent, 0);
}
