-- Clients, users and signing keys. Times are Unix seconds.
CREATE TABLE clients (
    client_id   TEXT PRIMARY KEY NOT NULL,
    secret_hash TEXT,
    source      TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    email         TEXT,
    name          TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY NOT NULL,
    purpose      TEXT NOT NULL,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    sealed       INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    activates_at INTEGER NOT NULL
);
CREATE INDEX signing_keys_slot ON signing_keys (purpose, alg, activates_at);
