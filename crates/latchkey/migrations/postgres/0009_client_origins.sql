-- The browser origins of every client's redirect URIs, one row each (issue 14): CORS asks
-- whether an origin is registered with one indexed lookup, so neither start-up nor a client
-- change reads every registration. Rows go with their client. The rows of the clients that
-- exist already are written by the server after this migration (the `upkeep` task), since
-- an origin is computed from a URL by the same code that computes it for a new client.
CREATE TABLE client_origins (
    origin    TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    PRIMARY KEY (origin, client_id)
);
CREATE INDEX client_origins_client ON client_origins (client_id);

-- One-time work the server does after the migrations, in Rust; a task's row goes when done.
CREATE TABLE upkeep (task TEXT PRIMARY KEY);
INSERT INTO upkeep (task) VALUES ('client_origins');
