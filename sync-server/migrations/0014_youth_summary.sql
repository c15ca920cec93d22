-- Repère sync server, schema 13: derived rows per young person (issue 13: pages and
-- exports at scale).

-- One row per young person of record_view, derived from the view rows of their records
-- (theirs, the visits naming them, their actions and outcomes): what the youth list
-- shows, filters and orders by, what the exports read, and the indicators' joined facts.
-- So no page or export reads every record of an organisation.
CREATE TABLE youth_summary (
    youth_id       BLOB PRIMARY KEY,
    team_id        BLOB NOT NULL,
    -- YouthStatus's serde id
    status         TEXT NOT NULL,
    -- folded names, alias and home commune name, for the list's search
    search         TEXT NOT NULL,
    first_contact  TEXT NOT NULL,   -- YYYY-MM-DD
    -- the day (as entered) of the latest visit naming them; NULL before any
    last_visit     TEXT,
    visits         INTEGER NOT NULL,
    actions        INTEGER NOT NULL,
    outcomes       INTEGER NOT NULL,
    -- repere_core::indicators::Reached as JSON; NULL when never visited (not counted)
    reached        TEXT
) WITHOUT ROWID;
-- Stored in id order: an export reads it page by page from there. A list sorts the
-- summaries of its teams (small rows) and joins only its page to the view.
CREATE INDEX youth_summary_team ON youth_summary (team_id);

-- Young people whose facts must be computed again: a view row naming them was written or
-- deleted (in that transaction); the view refresh recomputes them.
CREATE TABLE youth_summary_dirty (
    youth_id  BLOB PRIMARY KEY
);
INSERT INTO youth_summary_dirty (youth_id) SELECT id FROM record_view WHERE kind = 'youth';
