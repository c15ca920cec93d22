-- Sync state kept on the device (schema 2).

-- Records erased on the server: their ids stay so no stale copy can come back.
CREATE TABLE erased (
    id        BLOB PRIMARY KEY,
    erased_at TEXT NOT NULL
) WITHOUT ROWID;
