-- The schedule of password and client-secret attempts (throttle.rs): one row per throttled
-- account or client, keyed by a SHA-256 of its normalised name, shared by every node.
--
-- Times are milliseconds. next_at: no attempt is checked before it. busy_until: an attempt is
-- being checked until then (a lease, so that a node that dies mid-check does not lock the
-- account for good). Rows whose last attempt is older than the window are purged.
CREATE TABLE login_attempts (
    key        TEXT PRIMARY KEY,
    failures   BIGINT NOT NULL,
    next_at    BIGINT NOT NULL,
    busy_until BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX login_attempts_updated ON login_attempts (updated_at);
