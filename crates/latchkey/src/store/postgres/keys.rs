//! The PostgreSQL engine: signing keys and the other server secrets every node shares ([`KeyStore`]).

use async_trait::async_trait;

use super::{KeyRecord, PgRow, PgStore, Result, Row, StoredKey, backend};
use crate::store::KeyStore;

/// Serializes signing-key inserts across nodes (an arbitrary constant: "latchkey keys").
const KEY_LOCK: i64 = 0x6c61_7463_686b_6579;

fn key_from_row(row: &PgRow) -> Result<KeyRecord> {
    let get = |error| backend(error);
    StoredKey {
        kid: row.try_get("kid").map_err(get)?,
        purpose: row.try_get("purpose").map_err(get)?,
        alg: row.try_get("alg").map_err(get)?,
        private_key: row.try_get("private_key").map_err(get)?,
        sealed: row.try_get("sealed").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
        activates_at: row.try_get("activates_at").map_err(get)?,
    }
    .into_record()
}

#[async_trait]
impl KeyStore for PgStore {
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>> {
        sqlx::query(
            "SELECT kid, purpose, alg, private_key, sealed, created_at, activates_at
             FROM signing_keys ORDER BY activates_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn add_signing_key(&self, key: &KeyRecord, expected_latest: Option<i64>) -> Result<bool> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        // The lock makes check-then-insert atomic across nodes; it ends with the transaction.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(KEY_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(activates_at) FROM signing_keys WHERE purpose = $1 AND alg = $2",
        )
        .bind(key.purpose.as_str())
        .bind(key.alg.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        if latest != expected_latest {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO signing_keys (kid, purpose, alg, private_key, sealed, created_at, activates_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(key.purpose.as_str())
        .bind(key.alg.as_str())
        .bind(&key.private_key)
        .bind(key.sealed)
        .bind(key.created_at)
        .bind(key.activates_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn replace_private_key(&self, kid: &str, private_key: &[u8], sealed: bool) -> Result<()> {
        sqlx::query("UPDATE signing_keys SET private_key = $1, sealed = $2 WHERE kid = $3")
            .bind(private_key)
            .bind(sealed)
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        sealed: bool,
    ) -> Result<(Vec<u8>, bool)> {
        // The first node to start stores its candidate; every node reads back the one stored.
        sqlx::query("INSERT INTO server_secrets (name, value, sealed) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(candidate)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        let row = sqlx::query("SELECT value, sealed FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok((row.try_get("value").map_err(backend)?, row.try_get("sealed").map_err(backend)?))
    }

    async fn replace_server_secret(&self, name: &str, value: &[u8], sealed: bool) -> Result<()> {
        sqlx::query("UPDATE server_secrets SET value = $2, sealed = $3 WHERE name = $1")
            .bind(name)
            .bind(value)
            .bind(sealed)
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(backend)
    }
}
