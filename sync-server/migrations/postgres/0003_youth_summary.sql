-- Derived rows per young person (see the SQLite migration 0014): what the youth list shows,
-- filters and orders by, what the exports read, and the indicators' joined facts.
CREATE TABLE youth_summary (
    youth_id       UUID PRIMARY KEY,
    team_id        UUID NOT NULL,
    status         TEXT NOT NULL,
    search         TEXT NOT NULL,
    first_contact  TEXT COLLATE "C" NOT NULL,
    last_visit     TEXT COLLATE "C",
    visits         BIGINT NOT NULL,
    actions        BIGINT NOT NULL,
    outcomes       BIGINT NOT NULL,
    reached        TEXT
);
CREATE INDEX youth_summary_team ON youth_summary (team_id);

CREATE TABLE youth_summary_dirty (
    youth_id  UUID PRIMARY KEY
);
INSERT INTO youth_summary_dirty (youth_id) SELECT id FROM record_view WHERE kind = 'youth';
