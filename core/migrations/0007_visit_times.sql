-- Schema 7: visits read by their young people's latest time, and the indicators without a
-- join. Both columns are filled by the re-index that follows this migration.

-- Each visit's time beside its young people, so that a young person's latest visit is one
-- index look-up: the next steps of « à faire » close and open again by it, and writing a
-- visit no longer reads all of the person's earlier visits.
ALTER TABLE contact_youth ADD COLUMN occurred_at TEXT NOT NULL DEFAULT '';
DROP INDEX contact_youth_by_youth;
CREATE INDEX contact_youth_by_youth ON contact_youth(youth_id, occurred_at);

-- The visit's young people in the visit's row (their 16-byte ids, in order): the tablet's
-- indicators read the visits in one scan instead of joining every `contact_youth` row.
ALTER TABLE contact_index ADD COLUMN youth_ids BLOB NOT NULL DEFAULT x'';
