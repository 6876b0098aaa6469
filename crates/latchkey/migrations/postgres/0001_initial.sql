-- Clients, users and signing keys. Times are Unix seconds.
CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY,
    secret_hash TEXT,
    source      TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email         TEXT,
    name          TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,
    alg          TEXT NOT NULL,
    private_key  BYTEA NOT NULL,
    sealed       BOOLEAN NOT NULL,
    created_at   BIGINT NOT NULL,
    activates_at BIGINT NOT NULL
);
CREATE INDEX signing_keys_slot ON signing_keys (purpose, alg, activates_at);
