-- Client lifecycle (issue 15): a rotated-out secret is accepted until its overlap ends, and
-- every write of a client counts a revision, so that an update made from a stale read fails
-- instead of undoing another.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;
ALTER TABLE clients ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
