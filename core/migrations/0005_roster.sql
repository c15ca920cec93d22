-- Schema 5: the team's roster and the coordinators' decisions on its visits, as the sync
-- brings them (protocol version 5). Derived from the server, never edited here: a store
-- that leaves the team or is wiped loses them, an erased visit takes its decision along.

-- Team members: the ids records name and a display name (personal data).
CREATE TABLE team_members (
    id      BLOB PRIMARY KEY,
    name    TEXT NOT NULL,
    active  INTEGER NOT NULL
) WITHOUT ROWID;

-- A coordinator's latest decision on a visit: approved | flagged | question. The reason
-- (flagged only) may name someone.
CREATE TABLE visit_decisions (
    contact_id  BLOB PRIMARY KEY,
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX visit_decisions_state ON visit_decisions (state, at_ms);
