-- Schema 7: each visit's time beside its young people, so that a young person's latest
-- visit is one index look-up: the next steps of « à faire » close and open again by it,
-- and writing a visit no longer reads all of the person's earlier visits.
ALTER TABLE contact_youth ADD COLUMN occurred_at TEXT NOT NULL DEFAULT '';
UPDATE contact_youth SET occurred_at = coalesce(
    (SELECT c.occurred_at FROM contact_index c WHERE c.id = contact_youth.contact_id), '');
DROP INDEX contact_youth_by_youth;
CREATE INDEX contact_youth_by_youth ON contact_youth(youth_id, occurred_at);
