-- Schema 4: the lists a screen needs (issue 11). Everything here is derived from the
-- documents and rebuilt by Store::rebuild_index (run once when a store older than this
-- schema is opened, so existing stores get the rows too).

-- Fields of a record that hold several values after concurrent edits (", "-joined schema
-- names), and when this tablet first saw it so; NULL when there is none. Kept beside
-- `problems` and written wherever the document is, so « à faire » lists conflicts without
-- loading any document.
ALTER TABLE documents ADD COLUMN conflicts TEXT;
ALTER TABLE documents ADD COLUMN conflicts_at TEXT;
CREATE INDEX documents_in_conflict ON documents(local_seq) WHERE conflicts IS NOT NULL;
CREATE INDEX documents_with_problems ON documents(local_seq) WHERE problems IS NOT NULL;
CREATE INDEX documents_rejected ON documents(local_seq) WHERE sync_state = 3;

-- A tour's communes in route order (INSEE codes, ","-joined), for the list of tours.
ALTER TABLE tour_index ADD COLUMN communes TEXT NOT NULL DEFAULT '';
CREATE INDEX tour_by_date_id ON tour_index(date, id);

-- Next steps with a due date. `open_due` is the due date while none of the visit's young
-- people has been seen again since the visit, NULL once one was: the later visit carries
-- the current next step. Kept up to date by every visit written or removed.
CREATE TABLE next_step_index (
    contact_id  BLOB PRIMARY KEY,
    next_step   TEXT NOT NULL,
    due         TEXT NOT NULL,   -- YYYY-MM-DD
    occurred_at TEXT NOT NULL,   -- the visit's, UTC RFC 3339 as in contact_index
    open_due    TEXT
) WITHOUT ROWID;
CREATE INDEX next_step_open ON next_step_index(open_due, contact_id) WHERE open_due IS NOT NULL;

-- A young person's file: their actions and outcomes by date, the questions on their visits.
CREATE INDEX action_by_youth_date ON action_index(youth_id, start_date);
CREATE INDEX outcome_by_youth_date ON outcome_index(youth_id, date);
CREATE INDEX review_task_by_contact ON review_task_index(contact_id, status);
