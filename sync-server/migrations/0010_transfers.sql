-- Repère sync server, schema 10: young people transferred to another team (issue 12,
-- protocol version 6).

-- A transfer asked by a coordinator of the young person's team, to a team that may be of
-- another organisation; accepted or refused by a coordinator of that team, cancelled by
-- either side while pending. Ids and states only.
CREATE TABLE transfers (
    id            BLOB PRIMARY KEY,
    youth_id      BLOB NOT NULL,
    from_team     BLOB NOT NULL REFERENCES teams (id),
    to_team       BLOB NOT NULL REFERENCES teams (id),
    requested_by  BLOB NOT NULL,
    requested_at  INTEGER NOT NULL,
    -- pending, accepted, refused, cancelled
    state         TEXT NOT NULL,
    decided_by    BLOB,
    decided_at    INTEGER
);
CREATE INDEX transfers_youth ON transfers (youth_id);
CREATE INDEX transfers_from ON transfers (from_team, requested_at);
CREATE INDEX transfers_to ON transfers (to_team, requested_at);

-- Records that left a team (moved with a transferred young person), at a log position of
-- their own: that team's tablets pull it after their cursor and drop their copy. Content
-- free, like a tombstone, but not an erasure: the record lives on in its new team.
CREATE TABLE departures (
    id       BLOB NOT NULL,
    team_id  BLOB NOT NULL,
    seq      INTEGER NOT NULL,
    left_at  INTEGER NOT NULL,
    PRIMARY KEY (id, team_id)
);
CREATE INDEX departures_team ON departures (team_id, seq);

-- A departure takes a log position of its own: the log learns the `leave` operation. SQLite
-- cannot change a CHECK constraint in place, so the log is copied into a new table that
-- keeps the highest position ever given (AUTOINCREMENT's counter, even when the row that
-- held it is gone), so no position is ever given twice.
CREATE TABLE change_log_new (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id       BLOB NOT NULL,
    op           TEXT NOT NULL CHECK (op IN ('change', 'erase', 'leave')),
    device_id    BLOB,
    received_at  INTEGER NOT NULL
);
INSERT INTO change_log_new (seq, doc_id, op, device_id, received_at)
    SELECT seq, doc_id, op, device_id, received_at FROM change_log;
DELETE FROM sqlite_sequence WHERE name = 'change_log_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'change_log_new', seq FROM sqlite_sequence WHERE name = 'change_log';
DROP TABLE change_log;
ALTER TABLE change_log_new RENAME TO change_log;
