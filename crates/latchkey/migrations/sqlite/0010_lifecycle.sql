-- Client and user lifecycle (issue 15). Clients: a rotated-out secret is accepted until its
-- overlap ends, and every write of a client counts a revision, so that an update made from a
-- stale read fails instead of undoing another.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
ALTER TABLE clients ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;

-- Users: whether their email is verified (the users created before vouched for by the operator,
-- as latchkey said so in every id_token), and whether the account is disabled (when).
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
