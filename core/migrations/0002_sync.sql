-- Sync state kept on the device (schema 2).

-- Records erased on the server: their ids stay so no stale copy can come back.
CREATE TABLE erased (
    id        BLOB PRIMARY KEY,
    erased_at TEXT NOT NULL
) WITHOUT ROWID;

-- Coordinators' questions about visits, answered on the tablet (derived, rebuildable).
CREATE TABLE review_task_index (
    id         BLOB PRIMARY KEY,
    contact_id BLOB NOT NULL,
    status     TEXT NOT NULL,
    asked_at   TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX review_task_by_status ON review_task_index(status, asked_at);
