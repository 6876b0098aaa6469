-- What the browser flows need to bind their forms and sessions (issue 11, items 5, 6 and 9),
-- and the record of a static user's configured password (item 12).
--
-- server_secrets: random keys the nodes share, created once by whichever node starts first;
-- `form` signs the anti-CSRF value of the login, consent and logout forms. Sealed under the
-- master key when one is configured.
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    value  BYTEA NOT NULL,
    sealed BOOLEAN NOT NULL
);

-- The session's public id, the `sid` claim of its id_tokens (OpenID Connect Front-/Back-Channel
-- Logout §2.1): a hash of id_hash, so a logout with an id_token_hint finds the session without
-- its cookie. Sessions made before this migration have none and end only through their cookie.
ALTER TABLE sessions ADD COLUMN sid TEXT;
CREATE UNIQUE INDEX sessions_sid ON sessions (sid);

-- The argon2 hash of the password the config file last gave a static user: a restart applies
-- the config's password only when it differs from this one, so a password set with
-- `latchkey users set-password` is not silently reverted.
ALTER TABLE users ADD COLUMN config_password_hash TEXT;
