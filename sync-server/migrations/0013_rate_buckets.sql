-- Rate limits kept in the database, so that every server instance on it counts the same
-- requests: a token bucket per key (a device's syncs; enrolment attempts from an address,
-- known only by an HMAC). `full_at` is when the bucket is full again: it can then go.
CREATE TABLE rate_buckets (
    key BLOB PRIMARY KEY,
    tokens REAL NOT NULL,
    at INTEGER NOT NULL,
    full_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
