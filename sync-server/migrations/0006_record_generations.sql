-- Repère sync server, schema 6: records rewritten as a new generation (issue 10, rectification).

-- How many times coordination rewrote the record: its document then starts again from one
-- change holding only the current values, and pushes built on an older generation are
-- refused. 0 for a record never rewritten.
ALTER TABLE documents ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
