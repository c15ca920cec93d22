-- Schema 10: break-the-glass (protocol version 8, core/src/lending.rs). A team member asks
-- to read one file of another team for a while; the server lends it whole at the end of
-- each sync while the grant lasts. Nothing here is a record: no document, no index, never
-- pushed. Times are Unix milliseconds.

-- The requests made on this tablet: sent at each sync while pending. The reason is personal
-- data (shown, never logged). `expires_at` is the grant's end (server clock), `answered_at`
-- when the answer came (tablet clock). A granted request goes with its file, a refusal a day
-- after it came.
CREATE TABLE access_requests (
    id           BLOB PRIMARY KEY,
    youth_id     BLOB NOT NULL,
    member_id    BLOB NOT NULL,
    reason       TEXT NOT NULL,
    minutes      INTEGER NOT NULL,
    asked_at     INTEGER NOT NULL,
    state        TEXT NOT NULL,      -- pending | granted | refused
    refusal      TEXT,               -- the refusal's code, when refused
    expires_at   INTEGER,
    answered_at  INTEGER
) WITHOUT ROWID;
CREATE INDEX access_requests_by_state ON access_requests (state, asked_at);

-- The files lent now, each by its grant (the grant's id is its request's), deleted at
-- `expires_at` by the tablet's clock or as soon as a final answer no longer lends them.
CREATE TABLE lent_files (
    grant_id    BLOB PRIMARY KEY,
    youth_id    BLOB NOT NULL,
    team_name   TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX lent_files_by_youth ON lent_files (youth_id, expires_at);
CREATE INDEX lent_files_by_expiry ON lent_files (expires_at);

-- Their records' fields as JSON (the young person, their visits, actions and outcomes),
-- as the team holding the file has them; they go with their file.
CREATE TABLE lent_records (
    grant_id  BLOB NOT NULL REFERENCES lent_files (grant_id) ON DELETE CASCADE,
    id        BLOB NOT NULL,
    kind      TEXT NOT NULL,
    fields    TEXT NOT NULL,
    PRIMARY KEY (grant_id, id)
) WITHOUT ROWID;
