-- Repère sync server, schema 4: coordinator accounts (issue 9).
-- Identifiers are 16-byte UUID blobs; times are Unix milliseconds (server clock).

-- An administrator disabled the account (`admin disable-user`): no sign-in, no session.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- When the session's sign-in was confirmed with a second factor (TOTP or recovery code),
-- or the second factor was set up in it. NULL: a password alone.
ALTER TABLE sessions ADD COLUMN second_factor_at INTEGER;

-- Sign-in attempts, stored before the password (or code) is checked so that concurrent
-- attempts cannot exceed the limits. Keys are HMAC-SHA256 (server key `login_throttle_key`)
-- of the typed login and of the client address: neither is kept in clear. A successful
-- sign-in deletes that login's attempts from that address; rows older than the window are
-- pruned at each attempt.
CREATE TABLE login_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    account_key  BLOB NOT NULL,
    address_key  BLOB NOT NULL
);
CREATE INDEX login_attempts_account ON login_attempts (account_key, at);
CREATE INDEX login_attempts_address ON login_attempts (address_key, at);
CREATE INDEX login_attempts_at ON login_attempts (at);

-- One audit line per throttled window: a key (account or address) refused until `until`
-- is not audited again before then.
CREATE TABLE login_throttle_notices (
    key    BLOB PRIMARY KEY,
    until  INTEGER NOT NULL
);

-- A password accepted for an account with a second factor: the browser holds the token
-- (its SHA-256 here) for a few minutes while the code is asked.
CREATE TABLE login_challenges (
    token_hash  BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX login_challenges_user ON login_challenges (user_id);

-- TOTP (RFC 6238, SHA-1, 30 s, 6 digits). `confirmed_at` NULL: set up but not confirmed
-- with a code yet. `last_step`: the latest time step accepted (a code is used once).
CREATE TABLE user_totp (
    user_id       BLOB PRIMARY KEY REFERENCES users (id),
    secret        BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0
);

-- Single-use recovery codes, known only by their SHA-256.
CREATE TABLE recovery_codes (
    user_id     BLOB NOT NULL REFERENCES users (id),
    code_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
