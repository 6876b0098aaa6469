//! The SQLite engine: registered clients ([`ClientStore`]), and the ids (`jti`) of the `private_key_jwt`
//! assertions they have used.

use async_trait::async_trait;

use super::{
    ClientRecord, Connection, Error, OptionalExtension, Result, Row, SqliteStore, backend,
    client_record, params,
};
use crate::store::{ClientRow, ClientStore, changed_meanwhile};

fn client_from_row(row: &Row<'_>) -> rusqlite::Result<ClientRow> {
    Ok(ClientRow {
        metadata: row.get(0)?,
        secret_hash: row.get(1)?,
        source: row.get(2)?,
        previous_secret_hash: row.get(3)?,
        previous_secret_expires_at: row.get(4)?,
        revision: row.get(5)?,
    })
}

/// The values a client write stores, prepared before the writer job.
struct ClientWrite {
    id: String,
    metadata: String,
    secret: Option<String>,
    source: &'static str,
    previous_hash: Option<String>,
    previous_expires_at: Option<i64>,
    revision: i64,
    origins: Vec<String>,
}

impl ClientWrite {
    fn of(record: &ClientRecord) -> Result<Self> {
        let metadata = serde_json::to_string(&record.client)
            .map_err(|error| Error::Backend(error.to_string()))?;
        let previous = record.previous_secret.as_ref();
        Ok(ClientWrite {
            id: record.client.client_id.clone(),
            metadata,
            secret: record.secret_hash.clone(),
            source: record.source.as_str(),
            previous_hash: previous.map(|p| p.hash.clone()),
            previous_expires_at: previous.map(|p| p.expires_at),
            revision: record.revision,
            origins: record.client.origins(),
        })
    }
}

/// Counts one client change, in the transaction that makes it.
fn count_change(c: &Connection) -> Result<()> {
    c.prepare_cached("UPDATE client_changes SET epoch = epoch + 1 WHERE id = 1")
        .and_then(|mut s| s.execute([]))
        .map_err(backend)?;
    Ok(())
}

/// Replaces a client's rows in `client_origins`.
pub(super) fn write_origins(c: &Connection, client_id: &str, origins: &[String]) -> Result<()> {
    c.prepare_cached("DELETE FROM client_origins WHERE client_id = ?1")
        .and_then(|mut s| s.execute([client_id]))
        .map_err(backend)?;
    let mut insert = c
        .prepare_cached("INSERT INTO client_origins (origin, client_id) VALUES (?1, ?2)")
        .map_err(backend)?;
    for origin in origins {
        insert.execute([origin, client_id]).map_err(backend)?;
    }
    Ok(())
}

/// Deletes a client with its codes and consents and revokes its grants and stored access
/// tokens; whether there was such a client. Runs inside the writer's transaction, so no
/// [`TokenStore::issue`] interleaves with it.
fn delete_client(c: &Connection, client_id: &str, now: i64) -> Result<bool> {
    let removed =
        c.execute("DELETE FROM clients WHERE client_id = ?1", [client_id]).map_err(backend)?;
    if removed == 0 {
        return Ok(false);
    }
    count_change(c)?;
    for statement in [
        "DELETE FROM authorization_codes WHERE client_id = ?1",
        "DELETE FROM consents WHERE client_id = ?1",
    ] {
        c.execute(statement, [client_id]).map_err(backend)?;
    }
    for statement in [
        "UPDATE grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
        "UPDATE access_tokens SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
    ] {
        c.execute(statement, params![client_id, now]).map_err(backend)?;
    }
    Ok(true)
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let w = ClientWrite::of(record)?;
        let written = self
            .write(move |c| {
                // RFC 9068 §5: a client-credentials token's `sub` is the client_id, so no client
                // may share its id with a user's subject.
                c.prepare_cached(
                    "INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at,
                         previous_secret_hash, previous_secret_expires_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?5, ?6, ?7 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = ?1)
                     ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                         source = excluded.source, metadata = excluded.metadata, updated_at = excluded.updated_at,
                         previous_secret_hash = excluded.previous_secret_hash,
                         previous_secret_expires_at = excluded.previous_secret_expires_at,
                         revision = clients.revision + 1",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        w.id,
                        w.secret,
                        w.source,
                        w.metadata,
                        now,
                        w.previous_hash,
                        w.previous_expires_at
                    ])
                })
                .map_err(backend)
                .and_then(|written| {
                    if written > 0 {
                        count_change(c)?;
                        write_origins(c, &w.id, &w.origins)?;
                    }
                    Ok(written)
                })
            })
            .await?;
        if written == 0 {
            Err(crate::store::subject_taken(&record.client.client_id))
        } else {
            Ok(())
        }
    }

    async fn replace_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let w = ClientWrite::of(record)?;
        self.write(move |c| {
            let written = c
                .prepare_cached(
                    "UPDATE clients SET secret_hash = ?2, source = ?3, metadata = ?4, updated_at = ?5,
                         previous_secret_hash = ?6, previous_secret_expires_at = ?7,
                         revision = revision + 1
                     WHERE client_id = ?1 AND revision = ?8",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        w.id,
                        w.secret,
                        w.source,
                        w.metadata,
                        now,
                        w.previous_hash,
                        w.previous_expires_at,
                        w.revision
                    ])
                })
                .map_err(backend)?;
            if written == 0 {
                let exists = c
                    .prepare_cached("SELECT 1 FROM clients WHERE client_id = ?1")
                    .and_then(|mut s| s.exists([&w.id]))
                    .map_err(backend)?;
                return Err(if exists { changed_meanwhile(&w.id) } else { Error::NotFound });
            }
            count_change(c)?;
            write_origins(c, &w.id, &w.origins)
        })
        .await
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let id = client_id.to_owned();
        let row = self
            .read(move |c| {
                c.prepare_cached(
                    "SELECT metadata, secret_hash, source, previous_secret_hash,
                         previous_secret_expires_at, revision FROM clients WHERE client_id = ?1",
                )
                .and_then(|mut s| s.query_row([id], client_from_row).optional())
                .map_err(backend)
            })
            .await?;
        row.map(client_record).transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>> {
        let rows = self
            .read(|c| {
                let mut s = c
                    .prepare_cached(
                        "SELECT metadata, secret_hash, source, previous_secret_hash,
                             previous_secret_expires_at, revision FROM clients ORDER BY client_id",
                    )
                    .map_err(backend)?;
                let rows = s.query_map([], client_from_row).map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await?;
        rows.into_iter().map(client_record).collect()
    }

    async fn origin_registered(&self, origin: &str) -> Result<bool> {
        let origin = origin.to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT EXISTS (SELECT 1 FROM client_origins WHERE origin = ?1)")
                .and_then(|mut s| s.query_row([origin], |row| row.get(0)))
                .map_err(backend)
        })
        .await
    }

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<()> {
        let id = client_id.to_owned();
        let removed = self.write(move |c| delete_client(c, &id, now)).await?;
        if removed { Ok(()) } else { Err(Error::NotFound) }
    }

    async fn remove_config_clients_except(&self, keep: &[String], now: i64) -> Result<u64> {
        let keep = keep.to_vec();
        self.write(move |c| {
            let ids: Vec<String> = {
                let mut s = c
                    .prepare("SELECT client_id FROM clients WHERE source = 'config'")
                    .map_err(backend)?;
                let rows = s.query_map([], |row| row.get(0)).map_err(backend)?;
                rows.collect::<rusqlite::Result<_>>().map_err(backend)?
            };
            let mut removed = 0;
            for id in ids.iter().filter(|id| !keep.contains(id)) {
                removed += u64::from(delete_client(c, id, now)?);
            }
            Ok(removed)
        })
        .await
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let (client_id, jti) = (client_id.to_owned(), jti.to_owned());
        self.write(move |c| {
            c.prepare_cached(
                "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (client_id, jti) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![client_id, jti, expires_at]))
            .map(|inserted| inserted == 1)
            .map_err(backend)
        })
        .await
    }

    async fn client_epoch(&self) -> Result<i64> {
        self.read(|c| {
            c.query_row("SELECT epoch FROM client_changes WHERE id = 1", [], |row| row.get(0))
                .map_err(backend)
        })
        .await
    }

    async fn sync_node(&self, node_id: &str, caught_up: Option<i64>) -> Result<i64> {
        let node_id = node_id.to_owned();
        // The writer's transaction orders this against every client change.
        self.write(move |c| {
            let epoch = c
                .query_row("SELECT epoch FROM client_changes WHERE id = 1", [], |row| row.get(0))
                .map_err(backend)?;
            c.prepare_cached(concat!(
                "INSERT INTO nodes (node_id, client_epoch, synced_at) VALUES (?1, ?2, ",
                db_now_ms!(),
                ") ON CONFLICT (node_id) DO UPDATE SET client_epoch = excluded.client_epoch,
                     synced_at = excluded.synced_at"
            ))
            .and_then(|mut s| s.execute(params![node_id, caught_up.unwrap_or(-1)]))
            .map_err(backend)?;
            Ok(epoch)
        })
        .await
    }

    async fn nodes_behind(&self, epoch: i64, window_ms: i64) -> Result<u64> {
        self.read(move |c| {
            c.prepare_cached(concat!(
                "SELECT count(*) FROM nodes WHERE client_epoch < ?1 AND synced_at + ?2 >= ",
                db_now_ms!()
            ))
            .and_then(|mut s| s.query_row(params![epoch, window_ms], |row| row.get(0)))
            .map_err(backend)
        })
        .await
    }

    async fn leave_node(&self, node_id: &str) -> Result<()> {
        let node_id = node_id.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM nodes WHERE node_id = ?1", [node_id]).map_err(backend)?;
            Ok(())
        })
        .await
    }
}
