-- Schema 11: fewer B-trees written per record (issue 14). Every commit writes each page it
-- changed, and each B-tree a record touches costs at least a page: a visit wrote nine.
-- `documents` keeps every byte (copied over); the visits' tables are derived, emptied here
-- and filled again by the re-index that follows this migration.

-- The write counter is the row's key: `documents` is an ordinary rowid table appended at
-- its end, which needs no index of its own for the counter, and its ~540-byte rows are no
-- longer copied into interior pages as a WITHOUT ROWID key's are. Renumbered in the same
-- order (any duplicate value would otherwise refuse the key).
CREATE TABLE documents_by_rowid (
    local_seq     INTEGER PRIMARY KEY,   -- store-wide counter bumped at every write
    id            BLOB NOT NULL UNIQUE,  -- UUID v7 made on the device, 16 bytes
    kind          TEXT NOT NULL,
    team_id       BLOB NOT NULL,
    doc           BLOB NOT NULL,
    sync_state    INTEGER NOT NULL,
    reject_reason TEXT,
    synced_heads  BLOB,
    problems      TEXT,
    conflicts     TEXT,
    conflicts_at  TEXT,
    -- Where the record's derived row is when it is not keyed by the record's id (a visit's
    -- time: `contact_index` is keyed by it), so that it can be found from the id. Written
    -- with the derived rows, in the row just written: it costs no page of its own.
    derived_key   TEXT
);
INSERT INTO documents_by_rowid (local_seq, id, kind, team_id, doc, sync_state, reject_reason,
        synced_heads, problems, conflicts, conflicts_at)
    SELECT row_number() OVER (ORDER BY local_seq, id), id, kind, team_id, doc, sync_state,
           reject_reason, synced_heads, problems, conflicts, conflicts_at
      FROM documents;
DROP TABLE documents;
ALTER TABLE documents_by_rowid RENAME TO documents;
CREATE INDEX documents_unsynced ON documents(sync_state) WHERE sync_state <> 2;
CREATE INDEX documents_in_conflict ON documents(local_seq) WHERE conflicts IS NOT NULL;
CREATE INDEX documents_with_problems ON documents(local_seq) WHERE problems IS NOT NULL;
CREATE INDEX documents_rejected ON documents(local_seq) WHERE sync_state = 3;

-- One row per visit carries its next step; the open ones alone are indexed (« à faire »).
DROP TABLE next_step_index;
DROP TABLE contact_youth;
DROP TABLE contact_index;
-- Keyed by time: the recent visits, and a day's (a day entered at any UTC offset lies within
-- the UTC days before, of and after it), are read in key order, with no index of their own.
-- From an id, the time is its document's `derived_key`.
CREATE TABLE contact_index (
    occurred_at   TEXT NOT NULL,   -- UTC, RFC 3339: sorts as text
    id            BLOB NOT NULL,
    team_id       BLOB NOT NULL,
    commune       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    tour_id       BLOB,
    local_day     TEXT NOT NULL,   -- YYYY-MM-DD, as entered (its own UTC offset)
    at_secs       INTEGER NOT NULL,
    at_nanos      INTEGER NOT NULL,
    youth_ids     BLOB NOT NULL,   -- the visit's young people: 16-byte ids, in order
    next_step     TEXT,            -- both NULL unless the visit has a step and a due date
    next_step_due TEXT,            -- YYYY-MM-DD
    -- The due date while none of the visit's young people has been seen again since the
    -- visit, NULL once one was: the later visit carries the current next step.
    open_due      TEXT,
    PRIMARY KEY (occurred_at DESC, id)
) WITHOUT ROWID;
CREATE INDEX contact_by_tour ON contact_index(tour_id) WHERE tour_id IS NOT NULL;
CREATE INDEX next_step_open ON contact_index(open_due, id) WHERE open_due IS NOT NULL;

-- A young person's visits, latest first; a visit's young people are its `youth_ids`.
CREATE TABLE contact_youth (
    youth_id    BLOB NOT NULL,
    occurred_at TEXT NOT NULL,
    contact_id  BLOB NOT NULL,
    PRIMARY KEY (youth_id, occurred_at DESC, contact_id)
) WITHOUT ROWID;
