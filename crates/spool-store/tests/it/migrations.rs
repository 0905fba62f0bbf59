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
