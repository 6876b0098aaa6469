-- Confirming that every node has seen a client change (issue 13, item 8).
--
-- client_changes.epoch counts the committed client changes: every insert, update and removal
-- of a client adds one in its own transaction.
CREATE TABLE client_changes (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    epoch BIGINT NOT NULL
);
INSERT INTO client_changes (id, epoch) VALUES (1, 0);

-- One row per running node: the client epoch its cache has caught up with (-1: not yet), and
-- when it last said so, in milliseconds on the database's clock. A node serves cached clients
-- only for CLIENT_CACHE_TTL after its last sync, so a row older than that is no longer a
-- concern even if the node still runs.
CREATE TABLE nodes (
    node_id      TEXT PRIMARY KEY NOT NULL,
    client_epoch BIGINT NOT NULL,
    synced_at    BIGINT NOT NULL
);
CREATE INDEX nodes_synced ON nodes (synced_at);
