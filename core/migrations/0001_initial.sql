-- Repère device store, schema 1.
-- `documents` is the truth (one Automerge document per record). Every other table is
-- derived from the documents and can be dropped and rebuilt (Store::rebuild_index).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE documents (
    id            BLOB PRIMARY KEY,      -- UUID v7 made on the device, 16 bytes
    kind          TEXT NOT NULL,         -- youth | contact | tour | action | outcome
    team_id       BLOB NOT NULL,         -- sync scope
    doc           BLOB NOT NULL,         -- Automerge document, saved whole
    sync_state    INTEGER NOT NULL,      -- 0 never synced, 1 pending, 2 synced, 3 rejected
    reject_reason TEXT,                  -- the server's reason when sync_state = 3
    synced_heads  BLOB,                  -- document heads the server has acknowledged
    local_seq     INTEGER NOT NULL       -- store-wide counter bumped at every write
) WITHOUT ROWID;
CREATE INDEX documents_unsynced ON documents(sync_state) WHERE sync_state <> 2;
CREATE INDEX documents_by_seq ON documents(local_seq);

CREATE TABLE youth_index (
    rowid              INTEGER PRIMARY KEY,  -- also the youth_fts rowid
    id                 BLOB NOT NULL UNIQUE,
    team_id            BLOB NOT NULL,
    display_name       TEXT NOT NULL,
    first_folded       TEXT,
    alias_folded       TEXT,
    last_folded        TEXT,
    phon_first         TEXT,
    phon_alias         TEXT,
    phon_last          TEXT,
    birth_date         TEXT,
    birth_year         INTEGER,
    age_band           TEXT,
    home_commune       TEXT,
    status             TEXT NOT NULL,
    first_contact_date TEXT NOT NULL
);
-- Duplicate check: phonetic key, then birth year (a range within the key). Covering, so
-- the hundreds of same-sounding candidates are read from contiguous index pages.
CREATE INDEX youth_by_phon_first ON youth_index(
    phon_first, birth_year, id, first_folded, alias_folded, last_folded, home_commune);
CREATE INDEX youth_by_phon_alias ON youth_index(
    phon_alias, birth_year, id, first_folded, alias_folded, last_folded, home_commune);
CREATE INDEX youth_by_phon_last ON youth_index(
    phon_last, birth_year, id, first_folded, alias_folded, last_folded, home_commune);
CREATE INDEX youth_by_commune_year ON youth_index(home_commune, birth_year);

-- Names and home commune, folded; contentless so no plaintext copy is kept twice.
CREATE VIRTUAL TABLE youth_fts USING fts5(
    names, place,
    content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '2'
);

CREATE TABLE contact_index (
    id          BLOB PRIMARY KEY,
    team_id     BLOB NOT NULL,
    occurred_at TEXT NOT NULL,   -- UTC, RFC 3339: sorts as text
    commune     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    tour_id     BLOB
) WITHOUT ROWID;
CREATE INDEX contact_by_time ON contact_index(occurred_at DESC, id);
CREATE INDEX contact_by_tour ON contact_index(tour_id) WHERE tour_id IS NOT NULL;

CREATE TABLE contact_youth (
    contact_id BLOB NOT NULL,
    youth_id   BLOB NOT NULL,
    PRIMARY KEY (contact_id, youth_id)
) WITHOUT ROWID;
CREATE INDEX contact_youth_by_youth ON contact_youth(youth_id);

CREATE TABLE tour_index (
    id      BLOB PRIMARY KEY,
    team_id BLOB NOT NULL,
    date    TEXT NOT NULL,
    status  TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX tour_by_date ON tour_index(date);

CREATE TABLE action_index (
    id         BLOB PRIMARY KEY,
    youth_id   BLOB NOT NULL,
    team_id    BLOB NOT NULL,
    kind       TEXT NOT NULL,
    start_date TEXT NOT NULL,
    status     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX action_by_youth ON action_index(youth_id);

CREATE TABLE outcome_index (
    id       BLOB PRIMARY KEY,
    youth_id BLOB NOT NULL,
    team_id  BLOB NOT NULL,
    kind     TEXT NOT NULL,
    date     TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX outcome_by_youth ON outcome_index(youth_id);
