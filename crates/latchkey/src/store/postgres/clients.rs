//! The PostgreSQL engine: registered clients ([`ClientStore`]), and the ids (`jti`) of the `private_key_jwt`
//! assertions they have used.

use async_trait::async_trait;

use super::{ClientRecord, Error, PgRow, PgStore, Result, Row, backend, client_record};
use crate::store::{ClientRow, ClientStore, changed_meanwhile};

fn client_from_row(row: &PgRow) -> Result<ClientRecord> {
    client_record(ClientRow {
        metadata: row.try_get("metadata").map_err(backend)?,
        secret_hash: row.try_get("secret_hash").map_err(backend)?,
        source: row.try_get("source").map_err(backend)?,
        previous_secret_hash: row.try_get("previous_secret_hash").map_err(backend)?,
        previous_secret_expires_at: row.try_get("previous_secret_expires_at").map_err(backend)?,
        revision: row.try_get("revision").map_err(backend)?,
    })
}

/// Counts one client change, in the transaction that makes it. The row lock it takes orders
/// the change against [`ClientStore::sync_node`]'s `FOR SHARE` read.
async fn count_change(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
    sqlx::query("UPDATE client_changes SET epoch = epoch + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Replaces a client's rows in `client_origins`.
pub(super) async fn write_origins(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    client_id: &str,
    origins: &[String],
) -> Result<()> {
    sqlx::query("DELETE FROM client_origins WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    sqlx::query(
        "INSERT INTO client_origins (origin, client_id) SELECT o, $2 FROM UNNEST($1::text[]) AS o",
    )
    .bind(origins)
    .bind(client_id)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Deletes the codes and consents of just-deleted clients and revokes their grants and stored
/// access tokens. Each statement runs after the client rows' DELETE, so under READ COMMITTED
/// it sees any grant that a concurrent [`TokenStore::issue`] committed while holding the client row
/// (`FOR KEY SHARE`); a later `issue` finds no client.
async fn revoke_client_holdings(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    client_ids: &[String],
    now: i64,
) -> Result<()> {
    count_change(tx).await?;
    for statement in [
        "DELETE FROM authorization_codes WHERE client_id = ANY($1)",
        "DELETE FROM consents WHERE client_id = ANY($1)",
    ] {
        sqlx::query(statement).bind(client_ids).execute(&mut **tx).await.map_err(backend)?;
    }
    for statement in [
        "UPDATE grants SET revoked_at = $2 WHERE client_id = ANY($1) AND revoked_at IS NULL",
        "UPDATE access_tokens SET revoked_at = $2 WHERE client_id = ANY($1) AND revoked_at IS NULL",
    ] {
        sqlx::query(statement)
            .bind(client_ids)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl ClientStore for PgStore {
    async fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let metadata = serde_json::to_string(&record.client)
            .map_err(|error| Error::Backend(error.to_string()))?;
        let previous = record.previous_secret.as_ref();
        // RFC 9068 §5: a client-credentials token's `sub` is the client_id, so no client may
        // share its id with a user's subject.
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let written = sqlx::query(
            "INSERT INTO clients (client_id, secret_hash, source, metadata, created_at, updated_at,
                 previous_secret_hash, previous_secret_expires_at)
             SELECT $1, $2, $3, $4, $5, $5, $6, $7 WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = $1)
             ON CONFLICT (client_id) DO UPDATE SET secret_hash = excluded.secret_hash,
                 source = excluded.source, metadata = excluded.metadata, updated_at = excluded.updated_at,
                 previous_secret_hash = excluded.previous_secret_hash,
                 previous_secret_expires_at = excluded.previous_secret_expires_at,
                 revision = clients.revision + 1",
        )
        .bind(&record.client.client_id)
        .bind(&record.secret_hash)
        .bind(record.source.as_str())
        .bind(metadata)
        .bind(now)
        .bind(previous.map(|p| &p.hash))
        .bind(previous.map(|p| p.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if written.rows_affected() == 0 {
            return Err(crate::store::subject_taken(&record.client.client_id));
        }
        count_change(&mut tx).await?;
        write_origins(&mut tx, &record.client.client_id, &record.client.origins()).await?;
        tx.commit().await.map_err(backend)
    }

    async fn replace_client(&self, record: &ClientRecord, now: i64) -> Result<()> {
        let metadata = serde_json::to_string(&record.client)
            .map_err(|error| Error::Backend(error.to_string()))?;
        let previous = record.previous_secret.as_ref();
        let id = &record.client.client_id;
        if id.contains('\0') {
            return Err(Error::NotFound);
        }
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let written = sqlx::query(
            "UPDATE clients SET secret_hash = $2, source = $3, metadata = $4, updated_at = $5,
                 previous_secret_hash = $6, previous_secret_expires_at = $7,
                 revision = revision + 1
             WHERE client_id = $1 AND revision = $8",
        )
        .bind(id)
        .bind(&record.secret_hash)
        .bind(record.source.as_str())
        .bind(metadata)
        .bind(now)
        .bind(previous.map(|p| &p.hash))
        .bind(previous.map(|p| p.expires_at))
        .bind(record.revision)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if written.rows_affected() == 0 {
            let exists: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM clients WHERE client_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?;
            return Err(if exists.is_some() { changed_meanwhile(id) } else { Error::NotFound });
        }
        count_change(&mut tx).await?;
        write_origins(&mut tx, id, &record.client.origins()).await?;
        tx.commit().await.map_err(backend)
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        // PostgreSQL text cannot hold NUL and refuses such a parameter: no row can match.
        if client_id.contains('\0') {
            return Ok(None);
        }
        sqlx::query(
            "SELECT metadata, secret_hash, source, previous_secret_hash, previous_secret_expires_at,
                 revision FROM clients WHERE client_id = $1",
        )
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn clients(&self) -> Result<Vec<ClientRecord>> {
        sqlx::query(
            "SELECT metadata, secret_hash, source, previous_secret_hash, previous_secret_expires_at,
                 revision FROM clients ORDER BY client_id",
        )
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn origin_registered(&self, origin: &str) -> Result<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM client_origins WHERE origin = $1)")
            .bind(origin)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let removed: Vec<String> =
            sqlx::query_scalar("DELETE FROM clients WHERE client_id = $1 RETURNING client_id")
                .bind(client_id)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
        if removed.is_empty() {
            return Err(Error::NotFound);
        }
        revoke_client_holdings(&mut tx, &removed, now).await?;
        tx.commit().await.map_err(backend)
    }

    async fn remove_config_clients_except(&self, keep: &[String], now: i64) -> Result<u64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let removed: Vec<String> = sqlx::query_scalar(
            "DELETE FROM clients WHERE source = 'config' AND NOT (client_id = ANY($1))
             RETURNING client_id",
        )
        .bind(keep)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        if !removed.is_empty() {
            revoke_client_holdings(&mut tx, &removed, now).await?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(removed.len() as u64)
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO client_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client_id)
        .bind(jti)
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn client_epoch(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT epoch FROM client_changes WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(backend)
    }

    async fn sync_node(&self, node_id: &str, caught_up: Option<i64>) -> Result<i64> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // FOR SHARE waits for a change in flight and then reads its epoch, or makes a change
        // that comes later wait until this node's row has committed.
        let epoch: i64 =
            sqlx::query_scalar("SELECT epoch FROM client_changes WHERE id = 1 FOR SHARE")
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
        sqlx::query(concat!(
            "INSERT INTO nodes (node_id, client_epoch, synced_at) VALUES ($1, $2, ",
            db_now_ms!(),
            ") ON CONFLICT (node_id) DO UPDATE SET client_epoch = excluded.client_epoch,
                 synced_at = excluded.synced_at"
        ))
        .bind(node_id)
        .bind(caught_up.unwrap_or(-1))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(epoch)
    }

    async fn nodes_behind(&self, epoch: i64, window_ms: i64) -> Result<u64> {
        let behind: i64 = sqlx::query_scalar(concat!(
            "SELECT count(*) FROM nodes WHERE client_epoch < $1 AND synced_at + $2 >= ",
            db_now_ms!()
        ))
        .bind(epoch)
        .bind(window_ms)
        .fetch_one(&self.pool)
        .await
        .map_err(backend)?;
        Ok(u64::try_from(behind).unwrap_or(0))
    }

    async fn leave_node(&self, node_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM nodes WHERE node_id = $1")
            .bind(node_id)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
