//! The SQLite engine's schema: the migrations, applied in one IMMEDIATE transaction, and the
//! one-time upkeep they leave for Rust code.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Result, backend, clients};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../../../migrations/sqlite/0001_initial.sql")),
    (2, "code flow", include_str!("../../../migrations/sqlite/0002_code_flow.sql")),
    (3, "tokens", include_str!("../../../migrations/sqlite/0003_tokens.sql")),
    (4, "attempts", include_str!("../../../migrations/sqlite/0004_attempts.sql")),
    (5, "browser", include_str!("../../../migrations/sqlite/0005_browser.sql")),
    (6, "nodes", include_str!("../../../migrations/sqlite/0006_nodes.sql")),
    (7, "scale", include_str!("../../../migrations/sqlite/0007_scale.sql")),
    (8, "rotation", include_str!("../../../migrations/sqlite/0008_rotation.sql")),
    (9, "client origins", include_str!("../../../migrations/sqlite/0009_client_origins.sql")),
    (10, "lifecycle", include_str!("../../../migrations/sqlite/0010_lifecycle.sql")),
];

/// Applies the migrations not yet recorded, then the upkeep they left.
pub(super) fn migrate(connection: &mut Connection) -> Result<()> {
    // IMMEDIATE takes the write lock first, so two processes starting at once apply each
    // migration exactly once: the second waits, then finds nothing left to do.
    let tx =
        connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version INTEGER PRIMARY KEY NOT NULL,
             description TEXT NOT NULL,
             applied_at INTEGER NOT NULL)",
    )
    .map_err(backend)?;
    for (version, description, sql) in MIGRATIONS {
        let applied: Option<i64> = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE version = ?1",
                [version],
                |row| row.get(0),
            )
            .optional()
            .map_err(backend)?;
        if applied.is_none() {
            tx.execute_batch(sql).map_err(backend)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?1, ?2, unixepoch())",
                params![version, description],
            )
            .map_err(backend)?;
        }
    }
    run_upkeep(&tx)?;
    tx.commit().map_err(backend)
}

/// Does what the migrations left for Rust code ([`crate::store::UPKEEP_CLIENT_ORIGINS`]), once: in
/// the migrations' transaction, so a second process starting at once finds it done.
fn run_upkeep(c: &Connection) -> Result<()> {
    let pending: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM upkeep WHERE task = ?1)",
            [crate::store::UPKEEP_CLIENT_ORIGINS],
            |row| row.get(0),
        )
        .map_err(backend)?;
    if !pending {
        return Ok(());
    }
    let clients: Vec<(String, String)> = {
        let mut s = c.prepare("SELECT client_id, metadata FROM clients").map_err(backend)?;
        let rows = s.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(backend)?;
        rows.collect::<rusqlite::Result<_>>().map_err(backend)?
    };
    for (client_id, metadata) in clients {
        clients::write_origins(c, &client_id, &crate::store::stored_origins(&metadata)?)?;
    }
    c.execute("DELETE FROM upkeep WHERE task = ?1", [crate::store::UPKEEP_CLIENT_ORIGINS])
        .map_err(backend)?;
    Ok(())
}
