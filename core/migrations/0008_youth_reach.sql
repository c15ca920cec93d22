-- Schema 8: what the indicators count of a young person's records, joined into their row
-- as each record is written (core/src/records/reach.rs), so that the tablet's indicators
-- read one row per young person instead of every visit, action and outcome. Filled by the
-- re-index that follows this migration.

-- The earliest visit (by the day entered, then its instant, then its id): its day counts
-- as the first contact when earlier than the field, its commune stands in for a missing
-- home commune. NULL while the young person has no visit on this tablet.
ALTER TABLE youth_index ADD COLUMN first_visit_day TEXT;       -- YYYY-MM-DD, as entered
ALTER TABLE youth_index ADD COLUMN first_visit_secs INTEGER;   -- Unix seconds
ALTER TABLE youth_index ADD COLUMN first_visit_nanos INTEGER;
ALTER TABLE youth_index ADD COLUMN first_visit_id BLOB;
ALTER TABLE youth_index ADD COLUMN first_visit_commune TEXT;
-- Done actions: the earliest start (« mobilisé ») and the starts of done chantiers.
ALTER TABLE youth_index ADD COLUMN first_done TEXT;            -- YYYY-MM-DD or NULL
ALTER TABLE youth_index ADD COLUMN chantier_days TEXT NOT NULL DEFAULT '';  -- days, by spaces
-- Outcomes: `kind@YYYY-MM-DD`, by spaces.
ALTER TABLE youth_index ADD COLUMN outcomes TEXT NOT NULL DEFAULT '';
