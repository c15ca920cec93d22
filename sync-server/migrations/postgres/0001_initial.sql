-- Repère sync server on PostgreSQL, schema 1: the SQLite schema 12 (migrations/00NN_*.sql)
-- in one step. Ids are UUID columns (compared byte by byte, as SQLite compares its id
-- blobs); times are Unix milliseconds (server clock) in BIGINT, as in SQLite, so that
-- ordering and round trips are the same on both. Text compared or sorted by the server
-- uses the "C" collation (byte order, SQLite's BINARY).

CREATE TABLE organisations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE teams (
    id               UUID PRIMARY KEY,
    organisation_id  UUID NOT NULL REFERENCES organisations (id),
    name             TEXT NOT NULL,
    created_at       BIGINT NOT NULL
);
CREATE INDEX teams_organisation ON teams (organisation_id);

-- People with access to the coordinators' pages. `login` is stored lowercased;
-- `password_hash` is an Argon2id PHC string.
CREATE TABLE users (
    id               UUID PRIMARY KEY,
    organisation_id  UUID NOT NULL REFERENCES organisations (id),
    name             TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('coordinator', 'admin', 'field')),
    created_at       BIGINT NOT NULL,
    login            TEXT COLLATE "C" UNIQUE,
    password_hash    TEXT,
    password_set_at  BIGINT,
    disabled_at      BIGINT
);

-- Tablets. Only the SHA-256 of their bearer token is kept. `n` keeps the enrolment order
-- of devices enrolled in the same millisecond (SQLite's rowid).
CREATE TABLE devices (
    id            UUID PRIMARY KEY,
    n             BIGINT GENERATED ALWAYS AS IDENTITY,
    team_id       UUID NOT NULL REFERENCES teams (id),
    label         TEXT NOT NULL,
    token_hash    BYTEA NOT NULL UNIQUE,
    enrolled_at   BIGINT NOT NULL,
    revoked_at    BIGINT,
    last_sync_at  BIGINT,
    writer        UUID,
    applied_seq   BIGINT NOT NULL DEFAULT 0,
    wipe          TEXT CHECK (wipe IN ('after_push', 'urgent')),
    wipe_sent_at  BIGINT,
    app_version   TEXT,
    unsent        BIGINT
);
CREATE INDEX devices_team ON devices (team_id);
CREATE INDEX devices_writer ON devices (writer);

-- One-time enrolment codes. Only the SHA-256 of the code is kept.
CREATE TABLE enrolment_codes (
    code_hash   BYTEA PRIMARY KEY,
    team_id     UUID NOT NULL REFERENCES teams (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    device_id   UUID
);

-- Positions that never go back, even when the row holding the highest one is gone: the log
-- (documents, tombstones, departures), the roster changes, the visit decisions. They are
-- read in the transaction's snapshot and taken under the log lock (see postgres/mod.rs).
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('log', 0), ('roster', 0), ('decisions', 0);

-- The log: one increasing position per stored change, erasure or departure.
CREATE TABLE change_log (
    seq          BIGINT PRIMARY KEY,
    doc_id       UUID NOT NULL,
    op           TEXT NOT NULL CHECK (op IN ('change', 'erase', 'leave')),
    device_id    UUID,
    received_at  BIGINT NOT NULL
);
CREATE INDEX change_log_doc ON change_log (doc_id, seq);

-- Each record's document, compact, at its latest log position.
CREATE TABLE documents (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    team_id      UUID NOT NULL,
    doc          BYTEA NOT NULL,
    heads        BYTEA NOT NULL,
    seq          BIGINT NOT NULL UNIQUE,
    received_at  BIGINT NOT NULL,
    fields       TEXT,
    generation   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX documents_team_seq ON documents (team_id, seq);
CREATE INDEX documents_kind ON documents (kind);

-- Erased records: no content, only their place in the log.
CREATE TABLE tombstones (
    id         UUID PRIMARY KEY,
    team_id    UUID NOT NULL,
    seq        BIGINT NOT NULL UNIQUE,
    erased_at  BIGINT NOT NULL
);
CREATE INDEX tombstones_team_seq ON tombstones (team_id, seq);

-- Signed-in browsers. Only the SHA-256 of the cookie's random token is kept.
CREATE TABLE sessions (
    token_hash        BYTEA PRIMARY KEY,
    user_id           UUID NOT NULL REFERENCES users (id),
    csrf_token        TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    second_factor_at  BIGINT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Who did what, when: ids and fixed words only, never personal data.
CREATE TABLE audit_log (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at               BIGINT NOT NULL,
    organisation_id  UUID,
    user_id          UUID,
    action           TEXT NOT NULL,
    target_id        UUID,
    detail           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_organisation ON audit_log (organisation_id, id);
CREATE INDEX audit_log_target ON audit_log (target_id);

-- A coordinator's latest decision on a visit (contact), at its decision position. No row:
-- still to review. Deleted with the visit when it is erased (the reason may name someone).
CREATE TABLE visit_reviews (
    contact_id  UUID PRIMARY KEY,
    state       TEXT NOT NULL CHECK (state IN ('approved', 'flagged', 'question')),
    reason      TEXT,
    user_id     UUID NOT NULL,
    at          BIGINT NOT NULL,
    seq         BIGINT NOT NULL
);
CREATE INDEX visit_reviews_seq ON visit_reviews (seq);

-- The convention's targets of an organisation (docs/indicators.md, "Targets and pace").
CREATE TABLE targets (
    organisation_id  UUID PRIMARY KEY REFERENCES organisations (id),
    identified       BIGINT,
    mobilised        BIGINT,
    from_day         TEXT NOT NULL,
    to_day           TEXT NOT NULL,
    updated_at       BIGINT NOT NULL
);

-- Server-wide random keys (e.g. the key of the pseudonyms in exports).
CREATE TABLE server_secrets (
    name        TEXT PRIMARY KEY,
    value       BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Derived from `documents` for the coordinators' lists (see the SQLite schema 2).
CREATE TABLE record_view (
    id           UUID PRIMARY KEY,
    kind         TEXT NOT NULL,
    team_id      UUID NOT NULL,
    seq          BIGINT NOT NULL,
    received_at  BIGINT NOT NULL,
    fields       TEXT NOT NULL,
    -- contact: the day as entered on the device (YYYY-MM-DD) and the instant (ms)
    day          TEXT COLLATE "C",
    at_ms        BIGINT,
    -- contact: its commune; youth: the home commune (INSEE codes)
    commune      TEXT COLLATE "C",
    -- action, outcome: the young person; review_task: the contact
    ref_id       UUID
);
CREATE INDEX record_view_kind_team ON record_view (kind, team_id, at_ms);
CREATE INDEX record_view_ref ON record_view (ref_id);

-- contact → young people met (a group meeting lists several).
CREATE TABLE record_view_youth (
    contact_id  UUID NOT NULL,
    youth_id    UUID NOT NULL,
    PRIMARY KEY (youth_id, contact_id)
);
CREATE INDEX record_view_youth_contact ON record_view_youth (contact_id);

CREATE TABLE view_state (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL
);
INSERT INTO view_state (id, seq) VALUES (1, 0);

-- Sign-in attempts (keys are HMAC-SHA256 of the typed login and of the client address).
CREATE TABLE login_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           BIGINT NOT NULL,
    account_key  BYTEA NOT NULL,
    address_key  BYTEA NOT NULL
);
CREATE INDEX login_attempts_account ON login_attempts (account_key, at);
CREATE INDEX login_attempts_address ON login_attempts (address_key, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

-- One audit line per throttled window.
CREATE TABLE login_throttle_notices (
    key    BYTEA PRIMARY KEY,
    until  BIGINT NOT NULL
);

-- A password accepted for an account with a second factor, waiting for the code.
CREATE TABLE login_challenges (
    token_hash  BYTEA PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX login_challenges_user ON login_challenges (user_id);

-- TOTP (RFC 6238). `confirmed_at` NULL: set up but not confirmed with a code yet.
CREATE TABLE user_totp (
    user_id       UUID PRIMARY KEY REFERENCES users (id),
    secret        BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT NOT NULL DEFAULT 0
);

-- Single-use recovery codes, known only by their SHA-256.
CREATE TABLE recovery_codes (
    user_id     UUID NOT NULL REFERENCES users (id),
    code_hash   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- How long an organisation keeps a young person's file after the last contact, in months.
CREATE TABLE retention_rules (
    organisation_id  UUID PRIMARY KEY REFERENCES organisations (id),
    months           BIGINT NOT NULL CHECK (months BETWEEN 1 AND 120),
    updated_at       BIGINT NOT NULL
);

-- Erasures asked for in the coordinators' pages (four eyes), then executed.
CREATE TABLE erasure_requests (
    id               UUID PRIMARY KEY,
    organisation_id  UUID NOT NULL REFERENCES organisations (id),
    team_id          UUID NOT NULL,
    record_id        UUID NOT NULL,
    record_kind      TEXT NOT NULL,
    reason           TEXT NOT NULL,
    requested_by     UUID NOT NULL,
    requested_at     BIGINT NOT NULL,
    decision         TEXT,
    decided_by       UUID,
    decided_at       BIGINT,
    executed_at      BIGINT,
    tombstone_seq    BIGINT,
    also_erased      BIGINT,
    removed_from     BIGINT
);
CREATE INDEX erasure_requests_org ON erasure_requests (organisation_id, requested_at);
CREATE INDEX erasure_requests_record ON erasure_requests (record_id);

-- The members of a team: personal data shown on the team's tablets and the pages.
CREATE TABLE team_members (
    id            UUID PRIMARY KEY,
    team_id       UUID NOT NULL REFERENCES teams (id),
    display_name  TEXT COLLATE "C" NOT NULL,
    active        BOOLEAN NOT NULL DEFAULT TRUE,
    changed_at    BIGINT NOT NULL,
    seq           BIGINT NOT NULL
);
CREATE INDEX team_members_team ON team_members (team_id, seq);

-- Young people transferred to another team.
CREATE TABLE transfers (
    id            UUID PRIMARY KEY,
    youth_id      UUID NOT NULL,
    from_team     UUID NOT NULL REFERENCES teams (id),
    to_team       UUID NOT NULL REFERENCES teams (id),
    requested_by  UUID NOT NULL,
    requested_at  BIGINT NOT NULL,
    state         TEXT NOT NULL,
    decided_by    UUID,
    decided_at    BIGINT
);
CREATE INDEX transfers_youth ON transfers (youth_id);
CREATE INDEX transfers_from ON transfers (from_team, requested_at);
CREATE INDEX transfers_to ON transfers (to_team, requested_at);

-- Records that left a team, at a log position of their own.
CREATE TABLE departures (
    id       UUID NOT NULL,
    team_id  UUID NOT NULL,
    seq      BIGINT NOT NULL,
    left_at  BIGINT NOT NULL,
    PRIMARY KEY (id, team_id)
);
CREATE INDEX departures_team ON departures (team_id, seq);

-- Break-the-glass: read access to one young person's file outside the reader's scope.
CREATE TABLE access_grants (
    id          UUID PRIMARY KEY,
    youth_id    UUID NOT NULL,
    team_id     UUID NOT NULL REFERENCES teams (id),
    user_id     UUID REFERENCES users (id),
    device_id   UUID REFERENCES devices (id),
    member_id   UUID,
    reason      TEXT NOT NULL,
    granted_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    ended_by    UUID,
    CHECK ((user_id IS NULL) <> (device_id IS NULL))
);
CREATE INDEX access_grants_youth ON access_grants (youth_id);
CREATE INDEX access_grants_team ON access_grants (team_id, granted_at);
CREATE INDEX access_grants_user ON access_grants (user_id, expires_at);
CREATE INDEX access_grants_device ON access_grants (device_id, expires_at);
