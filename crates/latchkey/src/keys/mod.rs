//! Signing keys and their lifecycle.
//!
//! Keys live in the store, so every node of a cluster signs with the same ones. A key's state
//! is derived from time alone, never written, so nodes cannot disagree about it:
//!
//! - **next**: created with an activation time in the future. It is already published in the
//!   JWKS, so that verifiers that cache the key set know it before they see a token it signed.
//! - **current**: the latest key of its slot whose activation time has passed; it signs.
//! - **retiring**: superseded by a newer current key, still published until every token it
//!   signed has expired (`retention` after its successor's activation).
//! - **expired**: no longer published; it is deleted at the next refresh.
//!
//! Each *slot* (what the key signs, and with which algorithm) rotates on its own.

mod seal;
mod signer;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use latchkey_resource::JwkSet;

pub use seal::{MasterKey, SealError};
pub use signer::{KeyError, Signer, generate};

use crate::model::SigningAlg;
pub use crate::model::key::{KeyPurpose, KeyRecord, SLOTS, Slot};
use crate::secret;
use crate::store::{self, Store};

/// Timing of the lifecycle, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long a new key is published before it signs. Longer than the JWKS cache max-age
    /// plus the refresh interval, so no verifier meets a token signed by a key it cannot know.
    pub prepublication: i64,
    /// How long a key stays published after it stopped signing: the longest token lifetime
    /// plus slack for nodes that have not refreshed yet.
    pub retention: i64,
    /// Age of the current key at which a successor is made automatically.
    pub rotation_period: i64,
}

/// A key's place in its lifecycle at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Published, signs from `activates_at`.
    Next,
    /// Published and signing.
    Current,
    /// Published until `until`, no longer signing.
    Retiring {
        /// When it disappears from the JWKS, Unix seconds.
        until: i64,
    },
    /// Gone from the JWKS; deleted at the next refresh.
    Expired,
}

impl KeyState {
    /// Whether the key belongs in the JWKS.
    pub fn is_published(self) -> bool {
        !matches!(self, KeyState::Expired)
    }

    /// A short lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retiring { .. } => "retiring",
            KeyState::Expired => "expired",
        }
    }
}

/// The state of every record at `now`, in the order given.
pub fn classify(records: &[KeyRecord], now: i64, policy: &Policy) -> Vec<KeyState> {
    records
        .iter()
        .map(|record| {
            if record.activates_at > now {
                return KeyState::Next;
            }
            // The successor is the earliest later key of the slot that has activated.
            let successor = records
                .iter()
                .filter(|other| other.slot() == record.slot())
                .filter(|other| {
                    other.activates_at > record.activates_at && other.activates_at <= now
                })
                .map(|other| other.activates_at)
                .min();
            match successor {
                None => KeyState::Current,
                Some(at) if now < at + policy.retention => {
                    KeyState::Retiring { until: at + policy.retention }
                }
                Some(_) => KeyState::Expired,
            }
        })
        .collect()
}

/// Errors of the key manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key could not be made, parsed or used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Sealing or opening under the master key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Stored keys are sealed but no master key is configured.
    #[error("signing key {0} is encrypted: set LATCHKEY_MASTER_KEY to the key it was sealed with")]
    MissingMasterKey(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// No current key for a slot (cannot happen after [`KeyManager::start`]).
    #[error("no current {0:?} key")]
    NoCurrentKey(Slot),
    /// The random generator failed.
    #[error(transparent)]
    Random(#[from] secret::RandomError),
}

/// What a node signs with and publishes, rebuilt at each refresh.
#[derive(Debug, Default)]
pub struct Snapshot {
    signers: HashMap<Slot, Arc<Signer>>,
    verifiers: HashMap<String, Verifier>,
    jwks: JwkSet,
    jwks_json: Bytes,
}

impl Snapshot {
    /// The current signer of a slot.
    pub fn signer(&self, slot: Slot) -> Option<&Arc<Signer>> {
        self.signers.get(&slot)
    }

    /// The verification key and algorithm of a published key for `purpose`, by `kid`: tokens
    /// signed by a retiring key still verify, and a key of the other purpose never does (an
    /// id_token key cannot vouch for an access token, nor the reverse).
    pub fn verifier(
        &self,
        kid: &str,
        purpose: KeyPurpose,
    ) -> Option<(&jsonwebtoken::Algorithm, &jsonwebtoken::DecodingKey)> {
        let verifier = self.verifiers.get(kid).filter(|v| v.purpose == purpose)?;
        Some((&verifier.algorithm, verifier.key.as_ref()))
    }

    /// The published key set.
    pub fn jwks(&self) -> &JwkSet {
        &self.jwks
    }

    /// The published key set, serialized once per refresh (cloning is a reference count).
    pub fn jwks_json(&self) -> Bytes {
        self.jwks_json.clone()
    }
}

/// A published key, for checking what it signed.
#[derive(Debug, Clone)]
struct Verifier {
    purpose: KeyPurpose,
    algorithm: jsonwebtoken::Algorithm,
    key: Arc<jsonwebtoken::DecodingKey>,
}

/// A key and its state, for `latchkey keys list`.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    /// The stored key.
    pub record: KeyRecord,
    /// Its state at the time asked.
    pub state: KeyState,
}

/// Publishes the age of each slot's signing key and how many keys are in each state, as of
/// this refresh (every node refreshes every 60 s): a rotation that stopped happening shows as
/// an age that keeps growing past the rotation period.
fn record_key_ages(records: &[KeyRecord], states: &[KeyState], now: i64) {
    let mut counts = [("next", 0u32), ("current", 0), ("retiring", 0)];
    for (record, state) in records.iter().zip(states) {
        if let Some((_, count)) = counts.iter_mut().find(|(name, _)| *name == state.name()) {
            *count += 1;
        }
        if *state == KeyState::Current {
            metrics::gauge!(
                "latchkey_signing_key_age_seconds",
                "purpose" => record.purpose.as_str(),
                "alg" => record.alg.as_str()
            )
            .set((now - record.activates_at) as f64);
        }
    }
    for (state, count) in counts {
        metrics::gauge!("latchkey_signing_keys", "state" => state).set(f64::from(count));
    }
}

/// Creates, rotates, prunes and loads signing keys.
pub struct KeyManager {
    store: Arc<dyn Store>,
    master: Option<MasterKey>,
    policy: Policy,
    snapshot: RwLock<Arc<Snapshot>>,
}

impl KeyManager {
    /// Makes sure every slot has a key (the first start creates them), then loads them.
    pub async fn start(
        store: Arc<dyn Store>,
        master: Option<MasterKey>,
        policy: Policy,
        now: i64,
    ) -> Result<Self, Error> {
        let manager = KeyManager { store, master, policy, snapshot: RwLock::default() };
        manager.refresh(now).await?;
        Ok(manager)
    }

    /// The keys in force; cheap (one `Arc` clone), never blocks on I/O.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Creates missing keys, rotates those due, deletes expired ones and reloads the snapshot.
    /// Every node runs this periodically; the store's compare-and-insert keeps concurrent
    /// nodes from creating two successors.
    pub async fn refresh(&self, now: i64) -> Result<(), Error> {
        let mut records = self.store.signing_keys().await?;
        // Reload after any attempt, successful or not: a refused insert means another node
        // added a key this one has not read yet.
        let mut attempted = false;
        for slot in SLOTS {
            let latest = latest_activation(&records, slot);
            let due = match latest {
                None => Some(now),
                Some(at)
                    if at <= now
                        && now >= at + self.policy.rotation_period - self.policy.prepublication =>
                {
                    Some((at + self.policy.rotation_period).max(now + self.policy.prepublication))
                }
                Some(_) => None,
            };
            if let Some(activates_at) = due {
                let record = self.new_record(slot, now, activates_at)?;
                self.store.add_signing_key(&record, latest).await?;
                attempted = true;
            }
        }
        if attempted {
            records = self.store.signing_keys().await?;
        }
        let states = classify(&records, now, &self.policy);
        for (record, state) in records.iter_mut().zip(&states) {
            if *state == KeyState::Expired {
                self.store.remove_signing_key(&record.kid).await?;
            } else if let (false, Some(master)) = (record.sealed, &self.master) {
                // Keys made before a master key was configured are sealed now.
                let sealed = master.seal(&record.kid, &record.private_key)?;
                self.store.replace_private_key(&record.kid, &sealed, true).await?;
                (record.private_key, record.sealed) = (sealed, true);
            }
        }
        record_key_ages(&records, &states, now);
        let snapshot = self.build_snapshot(&records, &states)?;
        match self.snapshot.write() {
            Ok(mut guard) => *guard = Arc::new(snapshot),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(snapshot),
        }
        Ok(())
    }

    /// Adds a successor to every slot, published now and signing after the pre-publication
    /// period. Returns the new keys.
    pub async fn rotate(&self, now: i64) -> Result<Vec<KeyRecord>, Error> {
        let records = self.store.signing_keys().await?;
        let mut added = Vec::new();
        for slot in SLOTS {
            let latest = latest_activation(&records, slot);
            let activates_at = (now + self.policy.prepublication).max(latest.unwrap_or(now) + 1);
            let record = self.new_record(slot, now, activates_at)?;
            if self.store.add_signing_key(&record, latest).await? {
                added.push(record);
            }
        }
        self.refresh(now).await?;
        Ok(added)
    }

    /// Every stored key with its state at `now`.
    pub async fn status(&self, now: i64) -> Result<Vec<KeyStatus>, Error> {
        let records = self.store.signing_keys().await?;
        let states = classify(&records, now, &self.policy);
        Ok(records
            .into_iter()
            .zip(states)
            .map(|(record, state)| KeyStatus { record, state })
            .collect())
    }

    fn new_record(&self, slot: Slot, now: i64, activates_at: i64) -> Result<KeyRecord, Error> {
        let (purpose, alg) = slot;
        let kid = format!("{}-{}", alg.as_str().to_ascii_lowercase(), short_id()?);
        let pkcs8 = generate(alg)?;
        let (private_key, sealed) = match &self.master {
            Some(master) => (master.seal(&kid, &pkcs8)?, true),
            None => (pkcs8, false),
        };
        Ok(KeyRecord { kid, purpose, alg, private_key, sealed, created_at: now, activates_at })
    }

    fn signer(&self, record: &KeyRecord) -> Result<Signer, Error> {
        let pkcs8 = match (record.sealed, &self.master) {
            (false, _) => record.private_key.clone(),
            (true, Some(master)) => master.open(&record.kid, &record.private_key)?,
            (true, None) => return Err(Error::MissingMasterKey(record.kid.clone())),
        };
        Ok(Signer::from_pkcs8(&record.kid, record.alg, &pkcs8)?)
    }

    fn build_snapshot(
        &self,
        records: &[KeyRecord],
        states: &[KeyState],
    ) -> Result<Snapshot, Error> {
        let mut snapshot = Snapshot::default();
        for (record, state) in records.iter().zip(states) {
            if !state.is_published() {
                continue;
            }
            let signer = self.signer(record)?;
            let jwk = signer.public_jwk();
            if let Some(key) = decoding_key(&jwk) {
                let verifier = Verifier {
                    purpose: record.purpose,
                    algorithm: jws_algorithm(record.alg),
                    key: Arc::new(key),
                };
                snapshot.verifiers.insert(record.kid.clone(), verifier);
            }
            snapshot.jwks.keys.push(jwk);
            if *state == KeyState::Current {
                snapshot.signers.insert(record.slot(), Arc::new(signer));
            }
        }
        for slot in SLOTS {
            if !snapshot.signers.contains_key(&slot) {
                return Err(Error::NoCurrentKey(slot));
            }
        }
        snapshot.jwks_json = serde_json::to_vec(&snapshot.jwks)
            .map_err(|error| KeyError::Serialize(error.to_string()))?
            .into();
        Ok(snapshot)
    }
}

/// The jsonwebtoken name of an algorithm latchkey signs with.
fn jws_algorithm(alg: SigningAlg) -> jsonwebtoken::Algorithm {
    match alg {
        SigningAlg::ES256 => jsonwebtoken::Algorithm::ES256,
        SigningAlg::RS256 => jsonwebtoken::Algorithm::RS256,
        SigningAlg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// The public key as jsonwebtoken reads it, parsed once per refresh.
fn decoding_key(jwk: &latchkey_resource::Jwk) -> Option<jsonwebtoken::DecodingKey> {
    let json = serde_json::to_value(jwk).ok()?;
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(json).ok()?;
    jsonwebtoken::DecodingKey::from_jwk(&parsed).ok()
}

fn latest_activation(records: &[KeyRecord], slot: Slot) -> Option<i64> {
    records.iter().filter(|r| r.slot() == slot).map(|r| r.activates_at).max()
}

fn short_id() -> Result<String, secret::RandomError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret::random_bytes::<9>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy =
        Policy { prepublication: 3600, retention: 1000, rotation_period: 90 * 86400 };

    fn record(kid: &str, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            purpose: KeyPurpose::AccessToken,
            alg: SigningAlg::ES256,
            private_key: Vec::new(),
            sealed: false,
            created_at: activates_at - 3600,
            activates_at,
        }
    }

    #[test]
    fn states_follow_activation_times() {
        let records = [record("a", 0), record("b", 10_000)];
        let at = |now| classify(&records, now, &POLICY);
        assert_eq!(at(5_000), [KeyState::Current, KeyState::Next]);
        assert_eq!(at(10_000), [KeyState::Retiring { until: 11_000 }, KeyState::Current]);
        assert_eq!(at(10_999), [KeyState::Retiring { until: 11_000 }, KeyState::Current]);
        assert_eq!(at(11_000), [KeyState::Expired, KeyState::Current]);
    }

    #[test]
    fn slots_rotate_independently() {
        let mut id_key = record("id", 10_000);
        id_key.purpose = KeyPurpose::IdToken;
        id_key.alg = SigningAlg::RS256;
        let records = [record("a", 0), id_key];
        assert_eq!(classify(&records, 20_000, &POLICY), [KeyState::Current, KeyState::Current]);
    }
}
