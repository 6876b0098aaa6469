-- Opaque access tokens, revocation of single access tokens, client assertions (RFC 7523), and
-- the indexes the background purge walks.
--
-- An opaque access token's row holds what introspection reports; a JWT's row (only for tokens
-- issued for a user, or once revoked) holds just enough to revoke it.
ALTER TABLE access_tokens ADD COLUMN token_hash TEXT;
ALTER TABLE access_tokens ADD COLUMN subject TEXT;
ALTER TABLE access_tokens ADD COLUMN scopes TEXT;
ALTER TABLE access_tokens ADD COLUMN audience TEXT;
ALTER TABLE access_tokens ADD COLUMN issued_at INTEGER;
ALTER TABLE access_tokens ADD COLUMN auth_time INTEGER;
CREATE UNIQUE INDEX access_tokens_hash ON access_tokens (token_hash);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
CREATE INDEX grants_expiry ON grants (expires_at);

-- The jti of every client assertion seen, until it expires: each may be used once.
CREATE TABLE client_assertions (
    client_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
