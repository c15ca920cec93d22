-- Repère sync server, schema 12: break-the-glass (issue 12, protocol version 8).

-- Read access to one young person's file outside the reader's scope, granted at once for
-- a limited time to a coordinator on the pages or to a tablet (for the member it names),
-- journaled in both organisations and shown to the coordination of the team holding the
-- file. The reason may name people: it is deleted with the file when the file is erased
-- (the journal keeps ids only).
CREATE TABLE access_grants (
    id          BLOB PRIMARY KEY,
    youth_id    BLOB NOT NULL,
    -- The team holding the file when access was granted.
    team_id     BLOB NOT NULL REFERENCES teams (id),
    -- Exactly one of: a user of the pages, or a tablet (with the member it declared).
    user_id     BLOB REFERENCES users (id),
    device_id   BLOB REFERENCES devices (id),
    member_id   BLOB,
    reason      TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- Ended before its time by the holding team's coordination or by the reader.
    ended_at    INTEGER,
    ended_by    BLOB,
    CHECK ((user_id IS NULL) <> (device_id IS NULL))
);
CREATE INDEX access_grants_youth ON access_grants (youth_id);
CREATE INDEX access_grants_team ON access_grants (team_id, granted_at);
CREATE INDEX access_grants_user ON access_grants (user_id, expires_at);
CREATE INDEX access_grants_device ON access_grants (device_id, expires_at);
