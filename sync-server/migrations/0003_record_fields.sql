-- The record's fields as JSON, kept with each document when it is written, so a pull can
-- hand them to a tablet that does not have the record yet: the tablet indexes it without
-- parsing the Automerge document (the document stays the truth).
ALTER TABLE documents ADD COLUMN fields TEXT;
