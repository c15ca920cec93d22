-- Repère sync server, schema 8: the erasure workflow (issue 10, point 5).

-- An erasure asked for in the coordinators' pages, decided by a second person (an
-- administrator or the data-protection officer), then executed. Ids, fixed words and dates
-- only: the record's content is never copied here, and stays erased once executed.
CREATE TABLE erasure_requests (
    id               BLOB PRIMARY KEY,
    organisation_id  BLOB NOT NULL REFERENCES organisations (id),
    team_id          BLOB NOT NULL,
    record_id        BLOB NOT NULL,
    record_kind      TEXT NOT NULL,
    reason           TEXT NOT NULL,
    requested_by     BLOB NOT NULL,
    requested_at     INTEGER NOT NULL,
    -- 'approved' or 'refused', with who and when
    decision         TEXT,
    decided_by       BLOB,
    decided_at       INTEGER,
    -- once executed: when, the tombstone's log position, what went with it
    executed_at      INTEGER,
    tombstone_seq    INTEGER,
    also_erased      INTEGER,
    removed_from     INTEGER
);
CREATE INDEX erasure_requests_org ON erasure_requests (organisation_id, requested_at);
CREATE INDEX erasure_requests_record ON erasure_requests (record_id);

-- The log position up to which a device has applied everything (the cursor it sends: it
-- stores it in the same transaction as the erasures it pulled). An erasure at a position
-- at or below it is confirmed by that tablet.
ALTER TABLE devices ADD COLUMN applied_seq INTEGER NOT NULL DEFAULT 0;

-- A revocation may order the tablet to wipe its store at its next contact: 'after_push'
-- (its unsent changes are taken first) or 'urgent' (nothing more is taken). When the
-- order was delivered.
ALTER TABLE devices ADD COLUMN wipe TEXT CHECK (wipe IN ('after_push', 'urgent'));
ALTER TABLE devices ADD COLUMN wipe_sent_at INTEGER;
