-- Repère sync server, schema 1.
-- Identifiers are 16-byte UUID blobs; times are Unix milliseconds (server clock).

CREATE TABLE organisations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE teams (
    id               BLOB PRIMARY KEY,
    organisation_id  BLOB NOT NULL REFERENCES organisations (id),
    name             TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX teams_organisation ON teams (organisation_id);

-- People with access to the coordinators' pages (credentials come later).
CREATE TABLE users (
    id               BLOB PRIMARY KEY,
    organisation_id  BLOB NOT NULL REFERENCES organisations (id),
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('coordinator', 'admin', 'field')),
    created_at       INTEGER NOT NULL
);

-- Tablets. Only the SHA-256 of their bearer token is kept.
CREATE TABLE devices (
    id            BLOB PRIMARY KEY,
    team_id       BLOB NOT NULL REFERENCES teams (id),
    label         TEXT NOT NULL,
    token_hash    BLOB NOT NULL UNIQUE,
    enrolled_at   INTEGER NOT NULL,
    revoked_at    INTEGER,
    last_sync_at  INTEGER
);
CREATE INDEX devices_team ON devices (team_id);

-- One-time enrolment codes. Only the SHA-256 of the code is kept.
CREATE TABLE enrolment_codes (
    code_hash   BLOB PRIMARY KEY,
    team_id     BLOB NOT NULL REFERENCES teams (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    device_id   BLOB
);

-- The log: one increasing position per stored change or erasure. AUTOINCREMENT so a
-- position is never given twice, even after the last row is deleted.
CREATE TABLE change_log (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id       BLOB NOT NULL,
    op           TEXT NOT NULL CHECK (op IN ('change', 'erase')),
    device_id    BLOB,
    received_at  INTEGER NOT NULL
);

-- Each record's document, compact, at its latest log position.
CREATE TABLE documents (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL,
    team_id      BLOB NOT NULL,
    doc          BLOB NOT NULL,
    heads        BLOB NOT NULL,
    seq          INTEGER NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL
);
CREATE INDEX documents_team_seq ON documents (team_id, seq);

-- Erased records: no content, only their place in the log.
CREATE TABLE tombstones (
    id         BLOB PRIMARY KEY,
    team_id    BLOB NOT NULL,
    seq        INTEGER NOT NULL UNIQUE,
    erased_at  INTEGER NOT NULL
);
CREATE INDEX tombstones_team_seq ON tombstones (team_id, seq);
