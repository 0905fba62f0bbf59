//! The store handle: opening, campaigns, reading records, the ready set.

use crate::codes::ms;
use crate::error::{Result, StoreError};
use crate::records::{self, complete, RowMapper, RECORD_COLUMNS};
use chrono::{DateTime, Utc};
use dialer_core::{Campaign, CampaignId, RecordId, SpoolRecord};
use rusqlite::{params, Connection};
use std::path::Path;

/// The durable side of the dialer: spool, bases, blacklist, attempt ledger, campaign log.
///
/// Synchronous and owned by one thread (the driver). Every method that changes anything does
/// so in one transaction.
pub struct SpoolStore {
    pub(crate) conn: Connection,
}

impl std::fmt::Debug for SpoolStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpoolStore")
            .field("path", &self.conn.path())
            .finish()
    }
}

impl SpoolStore {
    /// Opens (creating or upgrading) the database at `path`, then reconciles attempts a
    /// crash left open, with the system clock as "now". See [`SpoolStore::open_at`].
    pub fn open(path: impl AsRef<Path>) -> Result<SpoolStore> {
        SpoolStore::open_at(path, Utc::now()).map(|(s, _)| s)
    }

    /// Opens the database and reconciles the attempt ledger as of `now` (see
    /// [`SpoolStore::reconcile`]), returning what was reconciled.
    pub fn open_at(
        path: impl AsRef<Path>,
        now: DateTime<Utc>,
    ) -> Result<(SpoolStore, crate::ReconcileReport)> {
        let mut store = SpoolStore::open_unreconciled(path)?;
        let report = store.reconcile(now)?;
        Ok((store, report))
    }

    /// Opens (creating or upgrading) without reconciling. Only for callers that must read
    /// the store before they know "now" (simulated clocks); they must call
    /// [`SpoolStore::reconcile`] before dialing.
    pub fn open_unreconciled(path: impl AsRef<Path>) -> Result<SpoolStore> {
        let mut conn = Connection::open(path)?;
        crate::schema::configure(&mut conn, true)?;
        crate::schema::migrate(&mut conn)?;
        Ok(SpoolStore { conn })
    }

    /// Opens an existing database read-only (status tools next to a running dialer). Nothing
    /// is migrated or reconciled; a schema older or newer than this build's is refused.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<SpoolStore> {
        use rusqlite::OpenFlags;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        crate::schema::wait_for_writers(&conn)?;
        conn.set_prepared_statement_cache_capacity(128);
        conn.pragma_update(None, "cache_size", -65_536)?;
        crate::schema::stable_plans(&conn)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = crate::schema::latest_version();
        if found > known {
            return Err(StoreError::DatabaseTooNew { found, known });
        }
        if found < known {
            return Err(StoreError::NeedsUpgrade { found, known });
        }
        Ok(SpoolStore { conn })
    }

    /// A private in-memory database (tests, examples, dry runs).
    pub fn open_in_memory() -> Result<SpoolStore> {
        let mut conn = Connection::open_in_memory()?;
        crate::schema::configure(&mut conn, false)?;
        crate::schema::migrate(&mut conn)?;
        Ok(SpoolStore { conn })
    }

    /// The underlying connection, read-only use intended (diagnostics, `EXPLAIN`).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Adds a campaign, or replaces the settings of an existing one. Settings are validated.
    pub fn upsert_campaign(&mut self, c: &Campaign, now: DateTime<Utc>) -> Result<()> {
        c.validate().map_err(|e| StoreError::InvalidCampaign {
            name: c.id.to_string(),
            problem: e.to_string(),
        })?;
        if c.id.as_str() == "*" {
            return Err(StoreError::InvalidCampaign {
                name: c.id.to_string(),
                problem: "`*` means every campaign in the blacklist".into(),
            });
        }
        let settings = crate::formats::encode_campaign(c)?;
        self.conn
            .prepare_cached(
                "INSERT INTO campaign (name, time_zone, settings, created_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(name) DO UPDATE SET time_zone = excluded.time_zone,
                     settings = excluded.settings",
            )?
            .execute(params![c.id.0, c.time_zone, settings, ms(now)])?;
        Ok(())
    }

    /// A campaign's settings.
    pub fn campaign(&self, name: &str) -> Result<Campaign> {
        records::campaign_row(&self.conn, name).map(|(_, c)| c)
    }

    /// Whether a campaign exists.
    pub fn has_campaign(&self, name: &str) -> Result<bool> {
        match records::campaign_id(&self.conn, name) {
            Ok(_) => Ok(true),
            Err(StoreError::UnknownCampaign(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Names of all campaigns, sorted.
    pub fn campaign_names(&self) -> Result<Vec<CampaignId>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM campaign ORDER BY name")?;
        let names = st
            .query_map([], |r| r.get::<_, String>(0))?
            .map(|n| n.map(CampaignId::from))
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// One record, complete.
    pub fn record(&self, id: &RecordId) -> Result<SpoolRecord> {
        records::load_record(&self.conn, id)
    }

    /// Every record of a campaign (finished ones too), by id. For tools and tests: it reads
    /// the whole campaign.
    pub fn records(&self, campaign: &str) -> Result<Vec<SpoolRecord>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM record r JOIN campaign c ON c.id = r.campaign_id
             WHERE r.campaign_id = ?1 ORDER BY r.id"
        ))?;
        let mut mapper = RowMapper::default();
        let rows: Vec<_> = st
            .query_map([cid], |r| mapper.map(r))?
            .collect::<rusqlite::Result<_>>()?;
        rows.into_iter()
            .map(|r| r.and_then(|r| complete(&self.conn, r)))
            .collect()
    }

    /// The records of `campaign` that may be offered to the core at `now`: pending (so not
    /// in flight, not finished), not held back by a retry delay, a future exact schedule or a
    /// future dated task, at most `limit`, in the core's dial order
    /// (`dialer_core::rules::ordering::order_key`). The core still checks each one
    /// (calling window, blacklist, caps) before dialing.
    ///
    /// Reads the `record_ready` index in order; cost grows with `limit` and with the number
    /// of not-yet-due records that sort ahead of the due ones, not with the spool size.
    pub fn ready_set(
        &self,
        campaign: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<SpoolRecord>> {
        // One read transaction: a consistent snapshot, and one lock instead of one per query.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )?;
        let cid = records::campaign_id(&tx, campaign)?;
        let mut mapper = RowMapper::default();
        let rows: Vec<_> = tx
            .prepare_cached(READY_SET_SQL)?
            .query_map(params![cid, ms(now), i64::from(limit), campaign], |r| {
                mapper.map(r)
            })?
            .collect::<rusqlite::Result<_>>()?;
        let out = rows
            .into_iter()
            .map(|r| r.and_then(|r| complete(&tx, r)))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        Ok(out)
    }

    /// Record ids of live (not finished) records of a campaign holding this E.164 number.
    pub fn live_record_with_number(&self, campaign: &str, e164: &str) -> Result<Option<RecordId>> {
        let cid = records::campaign_id(&self.conn, campaign)?;
        records::live_record_with_number(&self.conn, cid, e164)
    }
}

/// The ready-set query (`?4` is the campaign's name, echoed). `status = 0` (pending) selects
/// the partial index `record_ready`, whose column order is the ORDER BY, so SQLite walks it
/// without sorting; `due_ms` is in the index too, so rows that are not due are skipped
/// without touching the table. The numbers come with the row; a pending record has no
/// `inactive_ms` (the last column).
pub const READY_SET_SQL: &str = "SELECT r.id, ?4, r.status, r.call_id, r.finish_reason, \
    r.current_slot, r.priority, r.attempts, r.owner_agent, r.contact_id, r.base_id, \
    r.time_zone, r.next_eligible_ms, r.created_ms, r.data, r.history, r.due_class, r.has_task, \
    r.numbers, NULL \
    FROM record r INDEXED BY record_ready \
    WHERE r.campaign_id = ?1 AND r.status = 0 AND r.due_ms <= ?2 \
    ORDER BY r.due_class, r.order_priority, r.attempts, r.created_ms, r.id \
    LIMIT ?3";
