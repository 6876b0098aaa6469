//! The SQLite engine: signing keys and the other server secrets every node shares ([`KeyStore`]).

use async_trait::async_trait;

use super::{KeyRecord, Result, Row, SqliteStore, StoredKey, backend, params};
use crate::store::KeyStore;

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<StoredKey> {
    Ok(StoredKey {
        kid: row.get(0)?,
        purpose: row.get(1)?,
        alg: row.get(2)?,
        private_key: row.get(3)?,
        sealed: row.get(4)?,
        created_at: row.get(5)?,
        activates_at: row.get(6)?,
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = self
            .read(|c| {
                let mut s = c
                    .prepare_cached(
                        "SELECT kid, purpose, alg, private_key, sealed, created_at, activates_at
                         FROM signing_keys ORDER BY activates_at, kid",
                    )
                    .map_err(backend)?;
                let rows = s.query_map([], key_from_row).map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await?;
        rows.into_iter().map(StoredKey::into_record).collect()
    }

    async fn add_signing_key(&self, key: &KeyRecord, expected_latest: Option<i64>) -> Result<bool> {
        let key = key.clone();
        self.write(move |c| {
            let latest: Option<i64> = c
                .query_row(
                    "SELECT MAX(activates_at) FROM signing_keys WHERE purpose = ?1 AND alg = ?2",
                    params![key.purpose.as_str(), key.alg.as_str()],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            if latest != expected_latest {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO signing_keys (kid, purpose, alg, private_key, sealed, created_at, activates_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    key.kid,
                    key.purpose.as_str(),
                    key.alg.as_str(),
                    key.private_key,
                    key.sealed,
                    key.created_at,
                    key.activates_at
                ],
            )
            .map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn replace_private_key(&self, kid: &str, private_key: &[u8], sealed: bool) -> Result<()> {
        let (kid, private_key) = (kid.to_owned(), private_key.to_vec());
        self.write(move |c| {
            c.execute(
                "UPDATE signing_keys SET private_key = ?1, sealed = ?2 WHERE kid = ?3",
                params![private_key, sealed, kid],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<()> {
        let kid = kid.to_owned();
        self.write(move |c| {
            c.execute("DELETE FROM signing_keys WHERE kid = ?1", [kid]).map(drop).map_err(backend)
        })
        .await
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        sealed: bool,
    ) -> Result<(Vec<u8>, bool)> {
        let (name, candidate) = (name.to_owned(), candidate.to_vec());
        self.write(move |c| {
            c.execute(
                "INSERT INTO server_secrets (name, value, sealed) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
                params![name, candidate, sealed],
            )
            .map_err(backend)?;
            c.query_row("SELECT value, sealed FROM server_secrets WHERE name = ?1", [&name], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .map_err(backend)
        })
        .await
    }

    async fn replace_server_secret(&self, name: &str, value: &[u8], sealed: bool) -> Result<()> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |c| {
            c.execute(
                "UPDATE server_secrets SET value = ?2, sealed = ?3 WHERE name = ?1",
                params![name, value, sealed],
            )
            .map(drop)
            .map_err(backend)
        })
        .await
    }
}
