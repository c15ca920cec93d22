-- Repère sync server, schema 11: what a tablet says of itself at each sync (protocol
-- version 7), for the administrators' tablets page.

-- The app version it runs (a short version string, checked by the hub) and how many of
-- its records had changes the server had not acknowledged, both as of its last accepted
-- sync. NULL: never said (never synced since, or an app older than protocol 7).
ALTER TABLE devices ADD COLUMN app_version TEXT;
ALTER TABLE devices ADD COLUMN unsent INTEGER;
