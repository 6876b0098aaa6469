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

/// The kinds of stored hash latchkey verifies: its own, and those imported from other systems
/// (`latchkey users import`), which are replaced by latchkey's argon2id at the next successful
/// sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// `sha256:<hex>` of a generated secret.
    Sha256,
    /// argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    Argon2id,
    /// bcrypt modular crypt format (`$2a$`, `$2b$`, `$2y$`).
    Bcrypt,
    /// scrypt PHC string (`$scrypt$ln=…,r=…,p=…$salt$hash`).
    ScryptPhc,
    /// scrypt modular crypt format (`$7$`, libsodium and crypt(5)).
    ScryptMcf,
}

/// The largest bcrypt cost accepted from a stored hash (2^14 rounds, about a second here).
const MAX_BCRYPT_COST: u32 = 14;

/// The largest scrypt work memory accepted from a stored hash, `128 · r · N` bytes (128 MiB:
/// the scrypt crate's recommended N = 2^17 with r = 8), and parallelism.
const MAX_SCRYPT_MEMORY: u64 = 128 << 20;
const MAX_SCRYPT_P: u32 = 4;

impl HashKind {
    /// What `stored` is, if latchkey can verify it within its cost limits; else why not.
    pub fn of(stored: &str) -> Result<HashKind, String> {
        if stored.starts_with(SHA256_PREFIX) {
            return Ok(HashKind::Sha256);
        }
        if stored.starts_with("$argon2id$") {
            let hash =
                PasswordHash::new(stored).map_err(|e| format!("invalid argon2id hash: {e}"))?;
            let params =
                Params::try_from(&hash).map_err(|e| format!("invalid argon2id parameters: {e}"))?;
            if params.m_cost() > MAX_STORED_M_COST {
                return Err(format!(
                    "argon2id memory {} KiB is over the limit of {MAX_STORED_M_COST} KiB",
                    params.m_cost()
                ));
            }
            return Ok(HashKind::Argon2id);
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| stored.starts_with(prefix)) {
            let parts: bcrypt::HashParts =
                stored.parse().map_err(|e| format!("invalid bcrypt hash: {e}"))?;
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(format!(
                    "bcrypt cost {} is over the limit of {MAX_BCRYPT_COST}",
                    parts.get_cost()
                ));
            }
            return Ok(HashKind::Bcrypt);
        }
        if stored.starts_with("$scrypt$") {
            let hash =
                PasswordHash::new(stored).map_err(|e| format!("invalid scrypt hash: {e}"))?;
            let params = scrypt::Params::try_from(&hash)
                .map_err(|e| format!("invalid scrypt parameters: {e}"))?;
            scrypt_within_limits(params.log_n(), params.r(), params.p())?;
            return Ok(HashKind::ScryptPhc);
        }
        if stored.starts_with("$7$") {
            let (log_n, r, p) = scrypt_mcf_params(stored).ok_or("invalid scrypt ($7$) hash")?;
            scrypt_within_limits(log_n, r, p)?;
            return Ok(HashKind::ScryptMcf);
        }
        Err("not a hash latchkey reads: use argon2id (PHC), bcrypt ($2b$) or scrypt ($scrypt$ or $7$)".into())
    }
}

fn scrypt_within_limits(log_n: u8, r: u32, p: u32) -> Result<(), String> {
    let memory = 128u64.saturating_mul(u64::from(r)).saturating_mul(1u64 << log_n.min(63));
    if memory > MAX_SCRYPT_MEMORY || p > MAX_SCRYPT_P {
        return Err(format!(
            "scrypt parameters ln={log_n}, r={r}, p={p} are over the limits (128 MiB, p <= {MAX_SCRYPT_P})"
        ));
    }
    Ok(())
}

/// The cost parameters of a `$7$` hash, for the limit check only (the scrypt crate verifies):
/// after the prefix, one character for log2(N) and five each for r and p, little-endian in
/// crypt(3)'s base-64 alphabet.
fn scrypt_mcf_params(stored: &str) -> Option<(u8, u32, u32)> {
    const ALPHABET: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let digit = |c: u8| ALPHABET.iter().position(|&a| a == c).map(|v| v as u32);
    let field = stored.as_bytes().get(3..14)?;
    let number = |chars: &[u8]| {
        chars.iter().enumerate().try_fold(0u32, |acc, (i, &c)| Some(acc | digit(c)? << (6 * i)))
    };
    let log_n = u8::try_from(digit(field[0])?).ok()?;
    Some((log_n, number(&field[1..6])?, number(&field[6..11])?))
}

/// Whether a stored hash should be replaced by latchkey's own after `presented` verified:
/// every imported kind, and argon2id at other parameters than latchkey's.
pub fn needs_upgrade(stored: &str) -> bool {
    match HashKind::of(stored) {
        Ok(HashKind::Sha256) => false,
        Ok(HashKind::Argon2id) => {
            PasswordHash::new(stored).ok().and_then(|hash| {
                let params = Params::try_from(&hash).ok()?;
                let ours = owasp_params();
                Some(
                    hash.version != Some(Version::V0x13.into())
                        || params.m_cost() != ours.m_cost()
                        || params.t_cost() != ours.t_cost()
                        || params.p_cost() != ours.p_cost(),
                )
            }) != Some(false)
        }
        _ => true,
    }
}

/// Whether `presented` matches `stored`, any [`HashKind`] within its cost limits. Blocking.
///
/// A malformed stored hash never matches.
pub fn verify(presented: &str, stored: &str) -> bool {
    use scrypt::password_hash::PasswordVerifier as _;
    match HashKind::of(stored) {
        Ok(HashKind::Sha256) => {
            let expected = &stored[SHA256_PREFIX.len()..];
            secret::constant_time_eq(secret::hash(presented).as_bytes(), expected.as_bytes())
        }
        Ok(HashKind::Argon2id) => verify_argon2id(presented, stored),
        // Truncated at 72 bytes, as the systems that made these hashes did.
        Ok(HashKind::Bcrypt) => bcrypt::verify(presented, stored).unwrap_or(false),
        Ok(HashKind::ScryptPhc) => PasswordHash::new(stored).is_ok_and(|hash| {
            scrypt::Scrypt::default().verify_password(presented.as_bytes(), &hash).is_ok()
        }),
        Ok(HashKind::ScryptMcf) => scrypt::mcf::PasswordHash::new(stored).is_ok_and(|hash| {
            scrypt::Scrypt::default().verify_password(presented.as_bytes(), &hash).is_ok()
        }),
        Err(_) => false,
    }
}

fn verify_argon2id(presented: &str, stored: &str) -> bool {
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
    fn imported_bcrypt_and_scrypt_hashes_verify_within_their_cost_limits() {
        use scrypt::password_hash::{CustomizedPasswordHasher as _, PasswordHasher as _};
        let bcrypt = bcrypt::hash("hunter2 hunter2", 4).unwrap();
        assert_eq!(HashKind::of(&bcrypt), Ok(HashKind::Bcrypt));
        assert!(verify("hunter2 hunter2", &bcrypt) && !verify("hunter3 hunter2", &bcrypt));
        let costly = bcrypt::hash("x", 4).unwrap().replacen("$04$", "$15$", 1);
        assert!(HashKind::of(&costly).unwrap_err().contains("bcrypt cost 15"));

        let params = scrypt::Params::new(10, 8, 1).unwrap();
        let salt = b"0123456789abcdef";
        let phc: PasswordHash = scrypt::Scrypt::default()
            .hash_password_customized(b"pw one", salt, None, None, params)
            .unwrap();
        let phc = phc.to_string();
        assert!(phc.starts_with("$scrypt$ln=10,r=8,p=1$"), "{phc}");
        assert!(verify("pw one", &phc) && !verify("pw two", &phc));
        let mcf: scrypt::mcf::PasswordHash =
            scrypt::Scrypt::from(params).hash_password_with_salt(b"pw one", salt).unwrap();
        let mcf = mcf.to_string();
        assert_eq!(HashKind::of(&mcf), Ok(HashKind::ScryptMcf), "{mcf}");
        assert_eq!(scrypt_mcf_params(&mcf), Some((10, 8, 1)));
        assert!(verify("pw one", &mcf) && !verify("pw two", &mcf));
        let huge = phc.replacen("ln=10", "ln=20", 1);
        assert!(HashKind::of(&huge).unwrap_err().contains("over the limits"));
        assert!(!verify("pw one", &huge), "refused, not computed");
    }

    #[test]
    fn only_latchkeys_own_argon2id_parameters_need_no_upgrade() {
        use argon2::password_hash::PasswordHasher as _;
        assert!(!needs_upgrade(&hash_password("pw").unwrap()));
        assert!(!needs_upgrade(&hash_generated_secret("s")));
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8192, 3, 1, None).unwrap(),
        );
        assert!(needs_upgrade(&other.hash_password(b"pw").unwrap().to_string()));
        assert!(needs_upgrade(&bcrypt::hash("pw", 4).unwrap()));
        assert!(needs_upgrade("garbage"));
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
