-- Repère sync server on PostgreSQL, schema 2: the SQLite schema 13. Rate limits kept in
-- the database, so that every server instance on it counts the same requests: a token
-- bucket per key (a device's syncs; enrolment attempts from an address, known only by an
-- HMAC). `full_at` is when the bucket is full again (ms): it can then go.
CREATE TABLE rate_buckets (
    key      BYTEA PRIMARY KEY,
    tokens   DOUBLE PRECISION NOT NULL,
    at       BIGINT NOT NULL,
    full_at  DOUBLE PRECISION NOT NULL
);
CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
