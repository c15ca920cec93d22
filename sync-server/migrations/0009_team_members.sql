-- Repère sync server, schema 9: the teams' rosters and the decisions tablets are sent
-- (issue 11, protocol version 5).

-- The members of a team (the binômes' workers): the id records name and a display name,
-- personal data shown on the team's tablets and the coordinators' pages, never logged.
-- `seq` is the roster change that last touched the row: a team's roster version is the
-- highest `seq` of its members.
CREATE TABLE team_members (
    id            BLOB PRIMARY KEY,
    team_id       BLOB NOT NULL REFERENCES teams (id),
    display_name  TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    changed_at    INTEGER NOT NULL,
    seq           INTEGER NOT NULL
);
CREATE INDEX team_members_team ON team_members (team_id, seq);

-- Positions of the roster changes and of the visit decisions: counters that never go back,
-- even when the row holding the highest one is gone (an erased visit's decision).
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('roster', 0), ('decisions', 0);

-- The decision position of each visit's latest decision: tablets pull the decisions of
-- their team's visits after the position they hold. Decisions made before this schema get
-- positions in the order they were made.
ALTER TABLE visit_reviews ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
UPDATE visit_reviews SET seq = (
    SELECT count(*) FROM visit_reviews o
     WHERE o.at < visit_reviews.at OR (o.at = visit_reviews.at AND o.contact_id <= visit_reviews.contact_id)
);
UPDATE counters SET value = (SELECT count(*) FROM visit_reviews) WHERE name = 'decisions';
CREATE INDEX visit_reviews_seq ON visit_reviews (seq);
