-- Rate limits shared by every instance (see the SQLite migration 0013): a token bucket per
-- key; `full_at` is when the bucket is full again and can go.
CREATE TABLE rate_buckets (
    key BYTEA PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    at BIGINT NOT NULL,
    full_at BIGINT NOT NULL
);
CREATE INDEX rate_buckets_full_at ON rate_buckets (full_at);
