//! Schema and migrations.
//!
//! Migrations are a const list applied with `rusqlite_migration`, which tracks the version in
//! `PRAGMA user_version` and applies pending steps in one transaction. A released step is
//! never edited: change the schema by appending a step. Pragmas (WAL, foreign keys, busy
//! timeout) are connection settings and are set in [`configure`], outside migrations.
//!
//! Enums are stored as codes guarded by `CHECK` constraints (see `codes.rs`): small integers
//! in the spool's own tables since migration 3, short text elsewhere. Times are integer
//! milliseconds since the Unix epoch (UTC). The JSON documents (settings, record data,
//! history) carry their own format version (see `formats.rs`).
//!
//! A step that rebuilds a table (create the new one, copy, drop the old, rename) runs with
//! foreign-key enforcement off, as SQLite's procedure for such changes requires; every step
//! checks all foreign keys before it commits and fails (rolled back) if one is broken.

use crate::error::{Result, StoreError};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};

/// The migration steps, oldest first. Never edit a released step; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: campaigns, spool, schedules, tasks, blacklist, bases, rejects, attempt ledger.
    r#"
CREATE TABLE campaign (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE CHECK (name <> '' AND name <> '*'),
    time_zone   TEXT NOT NULL,
    settings    TEXT NOT NULL,            -- JSON of dialer_core::Campaign
    created_ms  INTEGER NOT NULL
);

CREATE TABLE base (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    file_name    TEXT NOT NULL,
    user_name    TEXT NOT NULL,
    time_zone    TEXT,                    -- file-wide IANA zone, NULL = campaign's
    country      TEXT NOT NULL,           -- default country for national numbers
    state        TEXT NOT NULL CHECK (state IN ('importing', 'done', 'failed')),
    started_ms   INTEGER NOT NULL,
    finished_ms  INTEGER,
    lines_read   INTEGER NOT NULL DEFAULT 0,
    blank_lines  INTEGER NOT NULL DEFAULT 0,
    imported     INTEGER NOT NULL DEFAULT 0,
    rejected     INTEGER NOT NULL DEFAULT 0,
    bytes_read   INTEGER NOT NULL DEFAULT 0,   -- committed prefix of the file
    prefix_hash  INTEGER NOT NULL DEFAULT 0    -- FNV-1a of that prefix, checked on resume
);
CREATE INDEX base_unfinished ON base(campaign_id, file_name) WHERE state = 'importing';

CREATE TABLE import_reject (
    base_id  INTEGER NOT NULL REFERENCES base(id),
    line_no  INTEGER NOT NULL,
    reason   TEXT NOT NULL CHECK (reason IN (
        'invalid_utf8', 'line_too_long', 'unterminated_quote', 'too_few_fields',
        'too_many_fields', 'campaign_mismatch', 'invalid_number', 'invalid_alternative',
        'number_repeated_in_line', 'bad_data', 'bad_priority', 'bad_agent',
        'duplicate_in_file', 'duplicate_in_spool', 'blacklisted')),
    detail   TEXT NOT NULL,
    raw      TEXT NOT NULL,
    PRIMARY KEY (base_id, line_no)
) WITHOUT ROWID;

CREATE TABLE record (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaign(id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'in_flight', 'finished')),
    call_id          INTEGER,
    finish_reason    TEXT CHECK (finish_reason IN (
        'completed', 'attempts_exhausted', 'no_dialable_number', 'blacklisted', 'removed')),
    current_slot     INTEGER NOT NULL CHECK (current_slot >= 0),
    priority         INTEGER NOT NULL CHECK (priority >= 0),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    owner_agent      TEXT,
    contact_id       TEXT,
    base_id          INTEGER REFERENCES base(id),
    source_line      INTEGER,
    origin           TEXT NOT NULL CHECK (origin IN ('import', 'respool', 'schedule', 'task')),
    time_zone        TEXT,
    next_eligible_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    data             TEXT NOT NULL,       -- JSON [[key, value], ...], order kept
    history          TEXT NOT NULL,       -- JSON of dialer_core::AttemptHistory
    -- Denormalized dial order (dialer_core::rules::ordering::order_key) and due time.
    due_class        INTEGER NOT NULL CHECK (due_class BETWEEN 0 AND 3),
    order_priority   INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,
    has_task         INTEGER NOT NULL CHECK (has_task IN (0, 1)),
    CHECK ((status = 'in_flight') = (call_id IS NOT NULL)),
    CHECK ((status = 'finished') = (finish_reason IS NOT NULL))
);
-- The ready set: due records of a campaign in dial order, read straight off this index.
CREATE INDEX record_ready ON record(
    campaign_id, due_class, order_priority, attempts, created_ms, id, due_ms)
    WHERE status = 'pending';
CREATE INDEX record_campaign_status ON record(campaign_id, status, attempts);

CREATE TABLE record_number (
    record_id  INTEGER NOT NULL REFERENCES record(id),
    pos        INTEGER NOT NULL,
    e164       TEXT NOT NULL,
    dial       TEXT NOT NULL,
    attempts   INTEGER NOT NULL CHECK (attempts >= 0),
    state      TEXT NOT NULL CHECK (state IN ('active', 'spent', 'invalid', 'blacklisted')),
    PRIMARY KEY (record_id, pos)
) WITHOUT ROWID;

-- Every number of every live (not finished) record: "never spool a destination twice".
CREATE TABLE destination (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    e164         TEXT NOT NULL,
    record_id    INTEGER NOT NULL REFERENCES record(id),
    PRIMARY KEY (campaign_id, e164, record_id)
) WITHOUT ROWID;

CREATE TABLE schedule (
    record_id    INTEGER PRIMARY KEY REFERENCES record(id),
    schedule_id  INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('at', 'range')),
    at_ms        INTEGER,
    start_date   TEXT,
    end_date     TEXT,
    start_time   TEXT,
    end_time     TEXT,
    agent        TEXT,
    number_e164  TEXT,
    number_dial  TEXT,
    CHECK ((kind = 'at') = (at_ms IS NOT NULL)),
    CHECK ((kind = 'range') = (start_date IS NOT NULL AND end_date IS NOT NULL
                               AND start_time IS NOT NULL AND end_time IS NOT NULL)),
    CHECK ((number_e164 IS NULL) = (number_dial IS NULL))
);
CREATE INDEX schedule_id ON schedule(schedule_id);

CREATE TABLE task (
    record_id  INTEGER PRIMARY KEY REFERENCES record(id),
    task_id    INTEGER NOT NULL,
    timing     TEXT NOT NULL CHECK (timing IN ('at', 'when_free')),
    at_ms      INTEGER,
    kind       TEXT NOT NULL CHECK (kind IN ('automatic', 'bulk', 'manual')),
    CHECK ((timing = 'at') = (at_ms IS NOT NULL))
);
CREATE INDEX task_id ON task(task_id);

CREATE TABLE blacklist (
    e164        TEXT NOT NULL,
    scope       TEXT NOT NULL,            -- campaign name, or '*' for every campaign
    direction   TEXT NOT NULL CHECK (direction IN ('I', 'O', 'B')),
    expires_ms  INTEGER,
    added_ms    INTEGER NOT NULL,
    PRIMARY KEY (e164, scope, direction)
) WITHOUT ROWID;
CREATE INDEX blacklist_expiry ON blacklist(expires_ms) WHERE expires_ms IS NOT NULL;

-- The attempt ledger: a row is committed before its Originate leaves.
CREATE TABLE attempt (
    call_id      INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    record_id    INTEGER NOT NULL REFERENCES record(id),
    e164         TEXT NOT NULL,
    dial         TEXT NOT NULL,
    agent        TEXT,
    started_ms   INTEGER NOT NULL,
    progress     TEXT NOT NULL CHECK (progress IN (
        'placing', 'dialing', 'ringing', 'on_queue', 'linked', 'ended')),
    ended_ms     INTEGER,
    outcome      TEXT CHECK (outcome IN (
        'connected', 'short_call', 'abandoned', 'machine', 'busy', 'no_answer', 'rejected',
        'congestion', 'invalid_number', 'originate_failed', 'unknown')),
    talk_s       INTEGER,
    reconciled   INTEGER NOT NULL DEFAULT 0 CHECK (reconciled IN (0, 1)),
    CHECK ((outcome IS NULL) = (ended_ms IS NULL)),
    CHECK ((outcome IS NULL) = (progress <> 'ended'))
);
CREATE INDEX attempt_open ON attempt(campaign_id, progress) WHERE outcome IS NULL;
CREATE INDEX attempt_outcome ON attempt(campaign_id, outcome);
CREATE INDEX attempt_record ON attempt(record_id);
"#,
    // 2: campaign progress log (ECCP campaignlog) and queue-wait times (getcampaignqueuewait).
    r#"
ALTER TABLE attempt ADD COLUMN queued_ms INTEGER;
ALTER TABLE attempt ADD COLUMN linked_ms INTEGER;

CREATE TABLE campaign_log (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    at_ms        INTEGER NOT NULL,
    call_id      INTEGER,
    record_id    INTEGER,
    status       TEXT NOT NULL CHECK (status IN (
        'placing', 'dialing', 'ringing', 'on_queue', 'success', 'hangup', 'short_call',
        'failure', 'no_answer', 'abandoned', 'machine', 'unknown')),
    retry        INTEGER,
    phone        TEXT,
    agent        TEXT,
    detail       TEXT
);
CREATE INDEX campaign_log_at ON campaign_log(campaign_id, at_ms);
"#,
    // 3: the lean spool (issue 14), a rebuild of `record` and `destination`: integer codes
    //    under CHECK ranges (see `codes.rs`), the numbers inline in the record row (the
    //    per-number table is dropped), destinations keyed by the E.164 digits as an integer,
    //    NULL for no data and for an empty history, 0 for "due now", and the status index
    //    partial (pending records are counted off the ready index). Settings, data and
    //    history documents get their format version (see `formats.rs`).
    r#"
CREATE TABLE record_v3 (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaign(id),
    status           INTEGER NOT NULL CHECK (status BETWEEN 0 AND 2), -- pending, in flight, finished
    call_id          INTEGER,
    finish_reason    INTEGER CHECK (finish_reason BETWEEN 0 AND 4),
    current_slot     INTEGER NOT NULL CHECK (current_slot >= 0),
    priority         INTEGER NOT NULL CHECK (priority >= 0),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    owner_agent      TEXT,
    contact_id       TEXT,
    base_id          INTEGER REFERENCES base(id),
    source_line      INTEGER,
    origin           INTEGER NOT NULL CHECK (origin BETWEEN 0 AND 3), -- import, respool, schedule, task
    time_zone        TEXT,
    next_eligible_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    -- `e164,dial,attempts,state` per number (state 0 active, 1 spent, 2 invalid,
    -- 3 blacklisted), `;` between numbers, main number first.
    numbers          TEXT NOT NULL,
    data             TEXT,                -- JSON [1, [key, value], ...]; NULL = none
    history          TEXT,                -- JSON {"v":1, ...AttemptHistory}; NULL = empty
    due_class        INTEGER NOT NULL CHECK (due_class BETWEEN 0 AND 3),
    order_priority   INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,    -- 0 = due now
    has_task         INTEGER NOT NULL CHECK (has_task IN (0, 1)),
    CHECK ((status = 1) = (call_id IS NOT NULL)),
    CHECK ((status = 2) = (finish_reason IS NOT NULL))
);
INSERT INTO record_v3 (id, campaign_id, status, call_id, finish_reason, current_slot, priority,
    attempts, owner_agent, contact_id, base_id, source_line, origin, time_zone,
    next_eligible_ms, created_ms, numbers, data, history, due_class, order_priority, due_ms,
    has_task)
SELECT r.id, r.campaign_id,
    CASE r.status WHEN 'pending' THEN 0 WHEN 'in_flight' THEN 1 ELSE 2 END,
    r.call_id,
    CASE r.finish_reason WHEN 'completed' THEN 0 WHEN 'attempts_exhausted' THEN 1
        WHEN 'no_dialable_number' THEN 2 WHEN 'blacklisted' THEN 3 WHEN 'removed' THEN 4 END,
    r.current_slot, r.priority, r.attempts, r.owner_agent, r.contact_id, r.base_id,
    r.source_line,
    CASE r.origin WHEN 'import' THEN 0 WHEN 'respool' THEN 1 WHEN 'schedule' THEN 2 ELSE 3 END,
    r.time_zone, r.next_eligible_ms, r.created_ms,
    COALESCE((SELECT group_concat(n.e164 || ',' || n.dial || ',' || n.attempts || ',' ||
            CASE n.state WHEN 'active' THEN 0 WHEN 'spent' THEN 1 WHEN 'invalid' THEN 2
                ELSE 3 END, ';' ORDER BY n.pos)
        FROM record_number n WHERE n.record_id = r.id), ''),
    CASE WHEN COALESCE(json_array_length(r.data), 0) = 0 OR r.data = '[1]' THEN NULL
        WHEN json_type(r.data, '$[0]') = 'integer' THEN r.data
        ELSE '[1,' || substr(r.data, 2) END,
    CASE WHEN COALESCE(json_array_length(r.history, '$.recent'), 0) = 0
            AND json_extract(r.history, '$.last_abandoned_at') IS NULL
            AND json_extract(r.history, '$.last_machine_at') IS NULL
            AND json_extract(r.history, '$.last_conversation_at') IS NULL THEN NULL
        WHEN json_extract(r.history, '$.v') IS NOT NULL THEN r.history
        ELSE '{"v":1,' || substr(r.history, 2) END,
    r.due_class, r.order_priority, MAX(r.due_ms, 0), r.has_task
FROM record r;

-- Every number of every live (not finished) record: "never spool a destination twice".
CREATE TABLE destination_v3 (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    number       INTEGER NOT NULL,        -- the E.164 number's digits (no '+')
    record_id    INTEGER NOT NULL REFERENCES record(id),
    PRIMARY KEY (campaign_id, number, record_id)
) WITHOUT ROWID;
INSERT INTO destination_v3 (campaign_id, number, record_id)
SELECT campaign_id, CAST(substr(e164, 2) AS INTEGER), record_id FROM destination;

DROP TABLE destination;
DROP TABLE record_number;
DROP TABLE record;
ALTER TABLE record_v3 RENAME TO record;
ALTER TABLE destination_v3 RENAME TO destination;
-- The ready set: due records of a campaign in dial order, read straight off this index.
CREATE INDEX record_ready ON record(
    campaign_id, due_class, order_priority, attempts, created_ms, id, due_ms)
    WHERE status = 0;
-- Records in flight (crash reconciliation) and finished (counters); pending ones are
-- counted off `record_ready`.
CREATE INDEX record_not_pending ON record(status, campaign_id) WHERE status <> 0;

UPDATE campaign SET settings = CASE
    WHEN json_extract(settings, '$.v') IS NOT NULL THEN settings
    WHEN trim(settings) = '{}' THEN '{"v":1}'
    ELSE '{"v":1,' || substr(trim(settings), 2) END;
"#,
    // 4: an Originate the telephone system refused for its own reasons is `not_placed`: in
    //    the ledger (no attempt is charged for it) and in the campaign log. SQLite cannot
    //    change a CHECK in place, so both tables are rebuilt with nothing lost.
    r#"
CREATE TABLE attempt_v4 (
    call_id      INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    record_id    INTEGER NOT NULL REFERENCES record(id),
    e164         TEXT NOT NULL,
    dial         TEXT NOT NULL,
    agent        TEXT,
    started_ms   INTEGER NOT NULL,
    progress     TEXT NOT NULL CHECK (progress IN (
        'placing', 'dialing', 'ringing', 'on_queue', 'linked', 'ended')),
    ended_ms     INTEGER,
    outcome      TEXT CHECK (outcome IN (
        'connected', 'short_call', 'abandoned', 'machine', 'busy', 'no_answer', 'rejected',
        'congestion', 'invalid_number', 'originate_failed', 'unknown', 'not_placed')),
    talk_s       INTEGER,
    reconciled   INTEGER NOT NULL DEFAULT 0 CHECK (reconciled IN (0, 1)),
    queued_ms    INTEGER,
    linked_ms    INTEGER,
    CHECK ((outcome IS NULL) = (ended_ms IS NULL)),
    CHECK ((outcome IS NULL) = (progress <> 'ended'))
);
INSERT INTO attempt_v4 (call_id, campaign_id, record_id, e164, dial, agent, started_ms,
    progress, ended_ms, outcome, talk_s, reconciled, queued_ms, linked_ms)
SELECT call_id, campaign_id, record_id, e164, dial, agent, started_ms, progress, ended_ms,
    outcome, talk_s, reconciled, queued_ms, linked_ms
FROM attempt;
DROP TABLE attempt;
ALTER TABLE attempt_v4 RENAME TO attempt;
CREATE INDEX attempt_open ON attempt(campaign_id, progress) WHERE outcome IS NULL;
CREATE INDEX attempt_outcome ON attempt(campaign_id, outcome);
CREATE INDEX attempt_record ON attempt(record_id);

CREATE TABLE campaign_log_v4 (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    at_ms        INTEGER NOT NULL,
    call_id      INTEGER,
    record_id    INTEGER,
    status       TEXT NOT NULL CHECK (status IN (
        'placing', 'dialing', 'ringing', 'on_queue', 'success', 'hangup', 'short_call',
        'failure', 'no_answer', 'abandoned', 'machine', 'unknown', 'not_placed')),
    retry        INTEGER,
    phone        TEXT,
    agent        TEXT,
    detail       TEXT
);
INSERT INTO campaign_log_v4 (id, campaign_id, at_ms, call_id, record_id, status, retry, phone,
    agent, detail)
SELECT id, campaign_id, at_ms, call_id, record_id, status, retry, phone, agent, detail
FROM campaign_log;
DROP TABLE campaign_log;
ALTER TABLE campaign_log_v4 RENAME TO campaign_log;
CREATE INDEX campaign_log_at ON campaign_log(campaign_id, at_ms);
"#,
    // 5: what happens around a dial (issue 11): each campaign's result-code catalogue and
    //    the agent's conclusion of a record (agent, code, comment, tags beside the dialer
    //    action, tied to the record's latest attempt); each campaign's break catalogue, the
    //    breaks agents took with their start and end, and agent sessions (login to logout).
    r#"
CREATE TABLE result_code (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    code         TEXT NOT NULL CHECK (code <> ''),
    label        TEXT NOT NULL,
    l1           TEXT,
    l2           TEXT,
    l3           TEXT,
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (campaign_id, code)
) WITHOUT ROWID;

CREATE TABLE disposition (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    record_id    INTEGER NOT NULL REFERENCES record(id),
    call_id      INTEGER,                 -- the record's latest attempt; NULL: never dialed
    agent        TEXT,
    result_code  TEXT,
    comment      TEXT,
    tags         TEXT,                    -- JSON array of strings; NULL = none
    action       TEXT NOT NULL CHECK (action IN (
        'done', 'respool', 'respool_alternative', 'blacklist', 'schedule', 'reschedule')),
    at_ms        INTEGER NOT NULL
);
CREATE INDEX disposition_record ON disposition(record_id, id);

CREATE TABLE break_type (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    break_id     TEXT NOT NULL CHECK (break_id <> ''),
    name         TEXT NOT NULL,
    active       INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (campaign_id, break_id)
) WITHOUT ROWID;

CREATE TABLE agent_break (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    break_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    CHECK (ended_ms IS NULL OR ended_ms >= started_ms)
);
-- At most one open break per agent.
CREATE UNIQUE INDEX agent_break_open ON agent_break(agent) WHERE ended_ms IS NULL;
CREATE INDEX agent_break_agent ON agent_break(agent, started_ms);

CREATE TABLE agent_session (
    id          INTEGER PRIMARY KEY,
    agent       TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    CHECK (ended_ms IS NULL OR ended_ms >= started_ms)
);
CREATE UNIQUE INDEX agent_session_open ON agent_session(agent) WHERE ended_ms IS NULL;
CREATE INDEX agent_session_agent ON agent_session(agent, started_ms);
"#,
    // 6: a campaign's lifecycle (ECCP campaign status): 0 active, 1 inactive, 2 finished (its
    //    list spent), and when it last changed.
    r#"
ALTER TABLE campaign ADD COLUMN status INTEGER NOT NULL DEFAULT 0 CHECK (status BETWEEN 0 AND 2);
ALTER TABLE campaign ADD COLUMN status_ms INTEGER;
"#,
    // 7: hold and the fuller campaign log (issue 11). The ledger keeps since when a call's
    //    callee is on hold, the hold time so far, and the agent the call was linked to (the
    //    reserved agent stays in `agent`); the log takes `on_hold`/`off_hold` entries and the
    //    talk seconds of a conversation's end (a table rebuild: SQLite cannot change a CHECK in
    //    place). A record may carry the id its caller knows it by (UCCX `addrecord`), unique
    //    per campaign.
    r#"
ALTER TABLE attempt ADD COLUMN hold_since_ms INTEGER;
ALTER TABLE attempt ADD COLUMN hold_ms INTEGER NOT NULL DEFAULT 0 CHECK (hold_ms >= 0);
ALTER TABLE attempt ADD COLUMN linked_agent TEXT;
UPDATE attempt SET linked_agent = agent WHERE linked_ms IS NOT NULL;

CREATE TABLE campaign_log_v7 (
    id           INTEGER PRIMARY KEY,
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    at_ms        INTEGER NOT NULL,
    call_id      INTEGER,
    record_id    INTEGER,
    status       TEXT NOT NULL CHECK (status IN (
        'placing', 'dialing', 'ringing', 'on_queue', 'success', 'on_hold', 'off_hold', 'hangup',
        'short_call', 'failure', 'no_answer', 'abandoned', 'machine', 'unknown', 'not_placed')),
    retry        INTEGER,
    phone        TEXT,
    agent        TEXT,
    detail       TEXT,
    duration_s   INTEGER CHECK (duration_s >= 0)
);
INSERT INTO campaign_log_v7 (id, campaign_id, at_ms, call_id, record_id, status, retry, phone,
    agent, detail, duration_s)
SELECT l.id, l.campaign_id, l.at_ms, l.call_id, l.record_id, l.status, l.retry, l.phone,
    l.agent, l.detail,
    CASE WHEN l.status IN ('hangup', 'short_call')
        THEN (SELECT a.talk_s FROM attempt a WHERE a.call_id = l.call_id) END
FROM campaign_log l;
DROP TABLE campaign_log;
ALTER TABLE campaign_log_v7 RENAME TO campaign_log;
CREATE INDEX campaign_log_at ON campaign_log(campaign_id, at_ms);

ALTER TABLE record ADD COLUMN external_id TEXT CHECK (external_id <> '');
CREATE UNIQUE INDEX record_external_id ON record(campaign_id, external_id)
    WHERE external_id IS NOT NULL;
"#,
    // 8: a record taken out of dialing without being finished (UCCX INACTIVE): status 3 with
    //    since when (`inactive_ms`); its numbers stay in `destination` (it may come back). A
    //    rebuild of `record` (SQLite cannot change a CHECK in place), every column and index
    //    kept. The blacklist keeps uContact's entry fields (name, company, username), and the
    //    ledger what the PBX calls the call: its unique id, the channel (trunk) and the queue.
    r#"
CREATE TABLE record_v8 (
    id               INTEGER PRIMARY KEY,
    campaign_id      INTEGER NOT NULL REFERENCES campaign(id),
    status           INTEGER NOT NULL CHECK (status BETWEEN 0 AND 3), -- pending, in flight, finished, inactive
    call_id          INTEGER,
    finish_reason    INTEGER CHECK (finish_reason BETWEEN 0 AND 4),
    current_slot     INTEGER NOT NULL CHECK (current_slot >= 0),
    priority         INTEGER NOT NULL CHECK (priority >= 0),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    owner_agent      TEXT,
    contact_id       TEXT,
    base_id          INTEGER REFERENCES base(id),
    source_line      INTEGER,
    origin           INTEGER NOT NULL CHECK (origin BETWEEN 0 AND 3), -- import, respool, schedule, task
    time_zone        TEXT,
    next_eligible_ms INTEGER,
    created_ms       INTEGER NOT NULL,
    numbers          TEXT NOT NULL,
    data             TEXT,
    history          TEXT,
    due_class        INTEGER NOT NULL CHECK (due_class BETWEEN 0 AND 3),
    order_priority   INTEGER NOT NULL,
    due_ms           INTEGER NOT NULL,
    has_task         INTEGER NOT NULL CHECK (has_task IN (0, 1)),
    external_id      TEXT CHECK (external_id <> ''),
    inactive_ms      INTEGER,
    CHECK ((status = 1) = (call_id IS NOT NULL)),
    CHECK ((status = 2) = (finish_reason IS NOT NULL)),
    CHECK ((status = 3) = (inactive_ms IS NOT NULL))
);
INSERT INTO record_v8 (id, campaign_id, status, call_id, finish_reason, current_slot, priority,
    attempts, owner_agent, contact_id, base_id, source_line, origin, time_zone,
    next_eligible_ms, created_ms, numbers, data, history, due_class, order_priority, due_ms,
    has_task, external_id, inactive_ms)
SELECT id, campaign_id, status, call_id, finish_reason, current_slot, priority,
    attempts, owner_agent, contact_id, base_id, source_line, origin, time_zone,
    next_eligible_ms, created_ms, numbers, data, history, due_class, order_priority, due_ms,
    has_task, external_id, NULL
FROM record;
DROP TABLE record;
ALTER TABLE record_v8 RENAME TO record;
CREATE INDEX record_ready ON record(
    campaign_id, due_class, order_priority, attempts, created_ms, id, due_ms)
    WHERE status = 0;
CREATE INDEX record_not_pending ON record(status, campaign_id) WHERE status <> 0;
CREATE UNIQUE INDEX record_external_id ON record(campaign_id, external_id)
    WHERE external_id IS NOT NULL;

ALTER TABLE blacklist ADD COLUMN name TEXT;
ALTER TABLE blacklist ADD COLUMN company TEXT;
ALTER TABLE blacklist ADD COLUMN username TEXT;

ALTER TABLE attempt ADD COLUMN unique_id TEXT;
ALTER TABLE attempt ADD COLUMN channel TEXT;
ALTER TABLE attempt ADD COLUMN queue TEXT;
ALTER TABLE campaign_log ADD COLUMN unique_id TEXT;
ALTER TABLE campaign_log ADD COLUMN channel TEXT;
ALTER TABLE campaign_log ADD COLUMN queue TEXT;
"#,
    // 9: a manual dial's agent and per-call options (VICIdial external_dial, uContact
    // AgentCall): caller id, dial prefix, which leg rings first, preview before dialing.
    r#"
ALTER TABLE task ADD COLUMN agent TEXT;
ALTER TABLE task ADD COLUMN caller_id TEXT;
ALTER TABLE task ADD COLUMN dial_prefix TEXT;
ALTER TABLE task ADD COLUMN agent_first INTEGER NOT NULL DEFAULT 0 CHECK (agent_first IN (0, 1));
ALTER TABLE task ADD COLUMN preview INTEGER NOT NULL DEFAULT 0 CHECK (preview IN (0, 1));
"#,
    // 10: numbers an import adds wait in `destination_recent` (same columns and key as
    //     `destination`), a small index that stays in the page cache, and are merged into
    //     `destination` in key-ordered slices (issue 14): a commit of shuffled numbers then
    //     rewrites the small index's pages, not most of the big one's. A live number is in
    //     exactly one of the two; every reader looks in both (`records::destinations_where`).
    r#"
CREATE TABLE destination_recent (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    number       INTEGER NOT NULL,        -- the E.164 number's digits (no '+')
    record_id    INTEGER NOT NULL REFERENCES record(id),
    PRIMARY KEY (campaign_id, number, record_id)
) WITHOUT ROWID;
"#,
    // 11: the engine's abandonment books, one row per legal period of a campaign (the
    //     engine's `StoreUpdate::AbandonBooks`), handed back to a restarted engine so a
    //     period's cap holds across restarts. A late link counts as abandoned in the books
    //     while its attempt ends `connected`/`short_call`, so the attempt ledger cannot
    //     rebuild them.
    r#"
CREATE TABLE abandon_period (
    campaign_id  INTEGER NOT NULL REFERENCES campaign(id),
    period_start TEXT NOT NULL
        CHECK (period_start GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    live         INTEGER NOT NULL CHECK (live >= 0),
    abandoned    INTEGER NOT NULL CHECK (abandoned >= 0),
    machines     INTEGER NOT NULL CHECK (machines >= 0),
    PRIMARY KEY (campaign_id, period_start)
) WITHOUT ROWID;

-- Facts about the spool itself. `spool_id`: drawn once, when the spool is created or
-- upgraded; the Asterisk backend names its channels after it (`dlr-<spool_id>-<call>`), so
-- two dialers on one PBX, or a fresh spool while an old one's calls are still up, never
-- share a channel id, and a restart still recognizes its own channels.
CREATE TABLE spool_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO spool_meta (key, value) VALUES ('spool_id', lower(hex(randomblob(4))));
"#,
];

/// The migration set of this build.
pub fn migrations() -> Migrations<'static> {
    migrations_up_to(MIGRATIONS.len())
}

/// The first `n` steps only: how an older build's database looked (used by upgrade tests).
pub fn migrations_up_to(n: usize) -> Migrations<'static> {
    // Each step fails (and rolls back) if it leaves a foreign key broken.
    Migrations::new(
        MIGRATIONS[..n]
            .iter()
            .map(|sql| M::up(sql).foreign_key_check())
            .collect(),
    )
}

/// The schema version this build writes.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Connection settings; not part of the schema, so set on every open.
pub fn configure(conn: &mut Connection, file_backed: bool) -> Result<()> {
    if file_backed {
        // WAL: readers (status) do not block the dialer's writer; NORMAL sync is durable
        // across process crashes (the case the ledger guards), at most the last commits can
        // be lost on power failure.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 64 MiB of page cache: the spool's indexes stay in memory during imports.
        conn.pragma_update(None, "cache_size", -65_536)?;
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    stable_plans(conn)?;
    wait_for_writers(conn)?;
    // A transaction takes the write lock when it begins, waiting for it like any write. A
    // deferred one would read first and then ask for the lock, and SQLite refuses that
    // upgrade at once ("database is locked", no waiting) whenever another connection, an
    // import say, holds it. Read-only transactions ask for deferred explicitly.
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    // Every statement is prepared once and cached; the default cache (16) is smaller than
    // the store's working set, and re-preparing dominated imports.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

/// Most time a write waits for another connection's transaction before failing with "database
/// is locked" (about: the handler sleeps at least [`BUSY_POLL`] between tries).
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a waiting connection tries the lock again.
pub const BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Waits for a busy database by trying again every millisecond, for up to [`BUSY_TIMEOUT`].
///
/// SQLite's own busy timeout backs off to 100 ms between tries; next to an import, which
/// leaves the lock free for only a few milliseconds between its transactions (see
/// `import.rs`), a writer polling that slowly could miss every gap and wait out its whole
/// timeout. Polling every millisecond, a dialer's ledger write waits about one import
/// transaction at most.
pub fn wait_for_writers(conn: &Connection) -> Result<()> {
    fn retry(tries: i32) -> bool {
        let max = (BUSY_TIMEOUT.as_micros() / BUSY_POLL.as_micros()) as i32;
        if tries >= max {
            return false;
        }
        std::thread::sleep(BUSY_POLL);
        true
    }
    conn.busy_handler(Some(retry))?;
    Ok(())
}

/// Query plans that do not depend on bound values (the query planner stability guarantee).
///
/// With `ANALYZE` statistics, SQLite otherwise marks a statement whose plan could change with
/// the value bound to a parameter as expired each time a new value is bound, and prepares it
/// again on its next step: the ready-set query was re-prepared on every call. The store's
/// queries name their index where it matters, so the values never should change a plan.
pub fn stable_plans(conn: &Connection) -> Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Brings the schema to the latest version, refusing a database written by a newer build.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > latest_version() {
        return Err(StoreError::DatabaseTooNew {
            found,
            known: latest_version(),
        });
    }
    if found == latest_version() {
        return Ok(());
    }
    // Table rebuilds need enforcement off (it cannot change inside the migration's
    // transaction); every key is checked before it is turned back on.
    let enforced: bool = conn.pragma_query_value(None, "foreign_keys", |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = migrations().to_latest(conn);
    conn.pragma_update(None, "foreign_keys", enforced)?;
    result?;
    Ok(())
}
