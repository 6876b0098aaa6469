//! Password and client-secret hashing.
//!
//! User passwords and human-chosen client secrets are hashed with argon2id at the OWASP
//! parameters (m = 19 MiB, t = 2, p = 1). Generated client secrets already carry 256 bits of
//! entropy, so a plain SHA-256 is as strong and costs microseconds instead of ~40 ms.
//!
//! Hashing is CPU-heavy: [`Hasher`] runs it on tokio's blocking pool with a bounded number in
//! flight, so a flood of logins cannot starve the async runtime, and a bounded number waiting,
//! so a flood cannot grow memory: beyond the queue it answers [`Error::Busy`] at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::secret;

/// Prefix of a stored SHA-256 hash of a generated secret.
const SHA256_PREFIX: &str = "sha256:";

/// Errors of hashing itself (never "wrong password": that is `Ok(false)`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// argon2 refused the input or parameters.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task was cancelled or panicked.
    #[error("password hashing task failed")]
    Task,
    /// Every hashing slot is taken and the queue behind them is full: shed the request.
    #[error("too many password checks are waiting")]
    Busy,
}

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

/// The largest memory cost accepted from a stored hash (64 MiB), so a tampered row cannot make
/// one login allocate gigabytes.
const MAX_STORED_M_COST: u32 = 64 * 1024;

/// Work memory for one hash, in 1 KiB blocks: at least what the parameters need and always
/// more than glibc's largest dynamic mmap threshold (32 MiB). Smaller buffers, once freed,
/// raise that threshold so the next ones come from the heap and stay resident (~20 MiB of an
/// idle server); above it every buffer is its own mapping, returned to the system when freed.
fn work_memory(params: &Params) -> Vec<Block> {
    const ABOVE_MMAP_THRESHOLD_MAX: usize = 32 * 1024 + 1;
    vec![Block::new(); params.block_count().max(ABOVE_MMAP_THRESHOLD_MAX)]
}

fn raw_hash(params: Params, password: &str, salt: &[u8], out: &mut [u8]) -> Result<(), Error> {
    let memory = work_memory(&params);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
        .map_err(|error| Error::Hash(error.to_string()))
}

/// argon2id PHC string of `password` with a fresh random salt. Blocking: ~40 ms of CPU.
pub fn hash_password(password: &str) -> Result<String, Error> {
    let salt = secret::random_bytes::<16>().map_err(|error| Error::Hash(error.to_string()))?;
    let params = owasp_params();
    let mut out = [0u8; 32];
    raw_hash(params.clone(), password, &salt, &mut out)?;
    let failed = |error: argon2::password_hash::phc::Error| Error::Hash(error.to_string());
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| Error::Hash(e.to_string()))?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(hash.to_string())
}

/// Whether `presented` matches `stored`, a PHC argon2id string or `sha256:<hex>`. Blocking.
///
/// A malformed stored hash never matches.
pub fn verify(presented: &str, stored: &str) -> bool {
    if let Some(expected) = stored.strip_prefix(SHA256_PREFIX) {
        return secret::constant_time_eq(secret::hash(presented).as_bytes(), expected.as_bytes());
    }
    let Ok(hash) = PasswordHash::new(stored) else { return false };
    let argon2id = hash.algorithm == Algorithm::Argon2id.ident();
    let v13 = hash.version.is_none_or(|v| v == u32::from(Version::V0x13));
    let (Ok(params), Some(salt), Some(expected)) = (Params::try_from(&hash), hash.salt, hash.hash)
    else {
        return false;
    };
    if !argon2id || !v13 || params.m_cost() > MAX_STORED_M_COST || expected.len() > 64 {
        return false;
    }
    let mut out = vec![0u8; expected.len()];
    raw_hash(params, presented, salt.as_ref(), &mut out).is_ok()
        && secret::constant_time_eq(&out, expected.as_bytes())
}

/// Stored form of a generated, high-entropy client secret.
pub fn hash_generated_secret(secret: &str) -> String {
    format!("{SHA256_PREFIX}{}", secret::hash(secret))
}

/// A hash that no password matches, verified in place of a missing user's so that an unknown
/// username costs the same time as a wrong password.
pub fn dummy_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$bGF0Y2hrZXlkdW1teXNhbHQ$0Tz7W5m9S4Ec5gQ0gdpbYeJx1fB0bR9xB6ydBq1Hk0o"
}

/// Runs password hashing off the async runtime with at most `limit` hashes at once and at
/// most `queue` more waiting for a slot.
///
/// A hash holds its slot until argon2 returns, not until its caller stops waiting: the permit
/// moves into the blocking job, so a client that disconnects mid-login cannot start another
/// hash beside the one still running (each needs 32 MiB of work memory). Requests beyond the
/// queue get [`Error::Busy`] without waiting, so the number of hashes running or waiting, and
/// the memory they hold, never exceeds `limit + queue`.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

impl Hasher {
    /// A hasher that runs at most `limit` hashes concurrently (at least one) with at most
    /// `queue` more waiting.
    pub fn new(limit: usize, queue: usize) -> Self {
        let limit = limit.max(1);
        Hasher {
            permits: Arc::new(Semaphore::new(limit)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: limit + queue,
        }
    }

    /// [`hash_password`] on the blocking pool.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        self.run(move || hash_password(&password)).await?
    }

    /// [`verify`] on the blocking pool; `stored = None` verifies against [`dummy_hash`].
    pub async fn verify(&self, presented: String, stored: Option<String>) -> Result<bool, Error> {
        self.run(move || {
            let matched = verify(&presented, stored.as_deref().unwrap_or(dummy_hash()));
            matched && stored.is_some()
        })
        .await
    }

    /// Hashes running or waiting now.
    pub fn in_use(&self) -> usize {
        self.admitted.load(Ordering::Relaxed)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let admission = Admission::enter(&self.admitted, self.capacity).ok_or(Error::Busy)?;
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Error::Task)?;
        tokio::task::spawn_blocking(move || {
            // Both are released when the hash is done, whether or not anyone still waits for it.
            let _held = (permit, admission);
            work()
        })
        .await
        .map_err(|_| Error::Task)
    }
}

/// One place among the hashes running or waiting; given back on drop.
struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn enter(admitted: &Arc<AtomicUsize>, capacity: usize) -> Option<Admission> {
        admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < capacity).then_some(n + 1))
            .ok()
            .map(|_| Admission(admitted.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hash_verifies_only_the_same_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse", &hash));
        assert!(!verify("correct horse!", &hash));
    }

    #[test]
    fn generated_secret_hash_is_sha256() {
        let stored = hash_generated_secret("abc");
        assert!(stored.starts_with("sha256:ba7816bf"));
        assert!(verify("abc", &stored));
        assert!(!verify("abd", &stored));
    }

    #[test]
    fn hashes_from_the_reference_api_verify() {
        // A PHC string made by argon2's own PasswordHasher verifies here, and ours there.
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, owasp_params());
        let theirs = reference.hash_password(b"pw").unwrap().to_string();
        assert!(verify("pw", &theirs));
        assert!(!verify("pw2", &theirs));
        let ours = PasswordHash::new(&hash_password("pw").unwrap()).unwrap();
        assert!(reference.verify_password(b"pw", &ours).is_ok());
    }

    #[test]
    fn other_algorithms_and_huge_costs_are_refused() {
        use argon2::password_hash::PasswordHasher as _;
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, owasp_params());
        assert!(!verify("pw", &argon2i.hash_password(b"pw").unwrap().to_string()));
        let huge = "$argon2id$v=19$m=4194304,t=2,p=1$bGF0Y2hrZXlkdW1teXNhbHQ$0Tz7W5m9S4Ec5gQ0gdpbYeJx1fB0bR9xB6ydBq1Hk0o";
        assert!(!verify("pw", huge));
    }

    #[test]
    fn malformed_stored_hash_never_matches() {
        assert!(!verify("", ""));
        assert!(!verify("x", "$argon2id$garbage"));
    }

    #[test]
    fn dummy_hash_parses_and_matches_nothing_common() {
        assert!(PasswordHash::new(dummy_hash()).is_ok());
        assert!(!verify("", dummy_hash()));
        assert!(!verify("password", dummy_hash()));
    }

    #[tokio::test]
    async fn hasher_runs_on_the_blocking_pool() {
        let hasher = Hasher::new(2, 0);
        let hash = hasher.hash("pw".into()).await.unwrap();
        assert!(hasher.verify("pw".into(), Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify("nope".into(), Some(hash)).await.unwrap());
        assert!(!hasher.verify("pw".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn an_abandoned_hash_keeps_its_slot_until_it_finishes() {
        let hasher = Hasher::new(1, 1);
        // Start a hash and drop its future as soon as it is running, as a disconnecting
        // client's request is dropped.
        let first = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify("pw".into(), None).await }
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        first.abort();
        let _ = first.await;
        assert_eq!(hasher.in_use(), 1, "the running hash still holds its place");
        // One may wait behind it; a third is shed at once.
        let second = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.verify("pw".into(), None).await }
        });
        while hasher.in_use() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.verify("pw".into(), None).await, Err(Error::Busy)));
        assert!(!second.await.unwrap().unwrap());
        while hasher.in_use() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(!hasher.verify("pw".into(), None).await.unwrap(), "free again afterwards");
    }
}
