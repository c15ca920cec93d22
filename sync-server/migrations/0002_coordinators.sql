-- Repère sync server, schema 2: the coordinators' workspace.
-- Identifiers are 16-byte UUID blobs; times are Unix milliseconds (server clock).

-- Credentials. `login` is stored lowercased; only coordinators and admins may sign in.
-- `password_hash` is an Argon2id PHC string.
ALTER TABLE users ADD COLUMN login TEXT;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN password_set_at INTEGER;
CREATE UNIQUE INDEX users_login ON users (login);

-- Signed-in browsers. Only the SHA-256 of the cookie's random token is kept.
CREATE TABLE sessions (
    token_hash    BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Who did what, when: ids and fixed words only, never personal data.
CREATE TABLE audit_log (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    at               INTEGER NOT NULL,
    organisation_id  BLOB,
    user_id          BLOB,
    action           TEXT NOT NULL,
    target_id        BLOB,
    detail           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_organisation ON audit_log (organisation_id, id);
CREATE INDEX audit_log_target ON audit_log (target_id);

-- A coordinator's decision on a visit (contact). No row: still to review.
-- Deleted with the visit when it is erased (the reason may name someone).
CREATE TABLE visit_reviews (
    contact_id  BLOB PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('approved', 'flagged', 'question')),
    reason      TEXT,
    user_id     BLOB NOT NULL,
    at          INTEGER NOT NULL
);

-- The convention's targets of an organisation (docs/indicators.md, "Targets and pace").
CREATE TABLE targets (
    organisation_id  BLOB PRIMARY KEY REFERENCES organisations (id),
    identified       INTEGER,
    mobilised        INTEGER,
    from_day         TEXT NOT NULL,
    to_day           TEXT NOT NULL,
    updated_at       INTEGER NOT NULL
);

-- Server-wide random keys (e.g. the key of the pseudonyms in exports).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Derived from `documents` (the truth) for the coordinators' lists: each record's fields
-- as JSON plus the columns the pages filter on. Kept up to date by following the log
-- (`view_state.seq`); an erasure deletes the rows in the same transaction. Setting
-- `view_state.seq` to 0 rebuilds it.
CREATE TABLE record_view (
    id           BLOB PRIMARY KEY,
    kind         TEXT NOT NULL,
    team_id      BLOB NOT NULL,
    seq          INTEGER NOT NULL,
    received_at  INTEGER NOT NULL,
    fields       TEXT NOT NULL,
    -- contact: the day as entered on the device (YYYY-MM-DD) and the instant (ms)
    day          TEXT,
    at_ms        INTEGER,
    -- contact: its commune; youth: the home commune (INSEE codes)
    commune      TEXT,
    -- action, outcome: the young person; review_task: the contact
    ref_id       BLOB
);
CREATE INDEX record_view_kind_team ON record_view (kind, team_id, at_ms);
CREATE INDEX record_view_ref ON record_view (ref_id);

-- contact → young people met (a group meeting lists several).
CREATE TABLE record_view_youth (
    contact_id  BLOB NOT NULL,
    youth_id    BLOB NOT NULL,
    PRIMARY KEY (youth_id, contact_id)
);
CREATE INDEX record_view_youth_contact ON record_view_youth (contact_id);

CREATE TABLE view_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL
);
INSERT INTO view_state (id, seq) VALUES (1, 0);
