-- Schema 3: app versions side by side, merged records that need a decision.

-- Validation problems of a record as merged: two valid edits can merge into an invalid
-- record; it is kept whole and shown to the field worker to resolve. NULL when valid.
ALTER TABLE documents ADD COLUMN problems TEXT;

-- Documents this version cannot read (a record kind from a newer app version, damaged
-- bytes) or that left the tablet's scope with unsent changes (re-enrolment into another
-- team). Kept byte for byte, never sent, retried after every upgrade of the app.
CREATE TABLE set_aside (
    id       BLOB PRIMARY KEY,
    kind     TEXT NOT NULL,    -- the kind as received (a name or a wire code)
    doc      BLOB NOT NULL,
    reason   TEXT NOT NULL,    -- newer_kind | unreadable | left_team
    team_id  BLOB,
    set_at   TEXT NOT NULL
) WITHOUT ROWID;
