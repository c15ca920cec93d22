-- Schema 6: what the indicators count, kept next to the lists' columns, so the tablet
-- counts from these tables without parsing a document (docs/indicators.md). Existing rows
-- are filled by the rebuild that follows any migration of an existing store.

ALTER TABLE youth_index ADD COLUMN invisible INTEGER;      -- Youth::is_invisible(): 0 or 1
ALTER TABLE youth_index ADD COLUMN sex TEXT;               -- serde id, NULL when not given
ALTER TABLE youth_index ADD COLUMN referral_source TEXT;   -- serde id
ALTER TABLE youth_index ADD COLUMN profile_flags TEXT;     -- serde ids joined by spaces

-- The visit's day as entered on the device (its own UTC offset, unlike occurred_at), and
-- its exact instant (occurred_at drops the fraction of a second) to order two of one day.
ALTER TABLE contact_index ADD COLUMN local_day TEXT;       -- YYYY-MM-DD
ALTER TABLE contact_index ADD COLUMN at_secs INTEGER;      -- Unix seconds
ALTER TABLE contact_index ADD COLUMN at_nanos INTEGER;     -- nanoseconds within the second
