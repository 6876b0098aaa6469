-- Client and user lifecycle (issue 15). Clients: a rotated-out secret is accepted until its
-- overlap ends, and every write of a client counts a revision, so that an update made from a
-- stale read fails instead of undoing another.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE clients ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;

-- Users: whether their email is verified (the users created before vouched for by the operator,
-- as latchkey said so in every id_token), and whether the account is disabled (when).
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- Listing and revoking by user and by client (`latchkey sessions …`, `latchkey grants …`, a
-- user's password change or disabling, a client's removal) without a scan of the big tables.
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_client ON grants (client_id);
CREATE INDEX sessions_user ON sessions (user_id);
