//! Persistence behind one [`Store`], with an implementation per engine.
//!
//! SQL lives only in [`sqlite`] and [`postgres`]. Each method is one atomic domain operation:
//! where a rule needs a read and a write together (say, "add a key unless another node just
//! did"), the implementation does both in one transaction, so callers cannot race.
//!
//! The operations are grouped by what they keep ([`ClientStore`], [`UserStore`],
//! [`KeyStore`], [`FlowStore`], [`TokenStore`]), one file each per engine; the decisions both
//! engines make alike (rotation, code lookup, revocation by owner) are pure functions in
//! `rules`, so only the SQL and the transaction style differ between them.

pub mod postgres;
pub mod purge;
mod rules;
pub mod sqlite;
pub mod timed;

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::key::{KeyPurpose, KeyRecord};
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, ClientRecord, ClientSource,
    CodeLookup, Issue, Issued, Purged, RefreshRevocation, RefreshToken, Rotation, Session,
    SigningAlg, StoredAccess, StoredRefresh, User,
};

/// How a password change is applied by [`UserStore::set_password_hash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordChange {
    /// End the user's sessions and revoke their grants (a changed password is usually a
    /// response to a compromise, so this is the default; the CLI has `--keep-sessions`).
    pub end_sessions: bool,
    /// The password comes from the config file: also record it as the config's password.
    pub from_config: bool,
}

/// A change of a user's profile by [`UserStore::update_user`]: each `Some` sets a field
/// (`Some(None)` clears it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// Email address.
    pub email: Option<Option<String>>,
    /// Display name.
    pub name: Option<Option<String>>,
    /// Whether the email is verified.
    pub email_verified: Option<bool>,
}

/// Which grants a listing or revocation covers: those of a user, of a client, or of both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// The user's subject.
    pub user_id: Option<String>,
    /// The client.
    pub client_id: Option<String>,
}

/// A login session as listed: the session and how many live grants were made through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// The session.
    pub session: Session,
    /// Live grants made through it.
    pub grants: u64,
}

/// Store errors, kept to what callers can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database URL is not usable.
    #[error("invalid database url: {0}")]
    Url(String),
    /// Stored data or the store's own machinery is broken; the message is for logs, not for
    /// clients.
    #[error("database error: {0}")]
    Backend(String),
    /// The database engine failed; its error is kept as the source, for logs.
    #[error("database error: {0}")]
    Engine(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Scopes read back from a row: corrupt data is an error, never "no scopes".
pub(crate) fn stored_scopes(value: &str) -> Result<Scopes, Error> {
    Scopes::from_stored(value)
        .ok_or_else(|| Error::Backend(format!("stored scopes are invalid: {value:?}")))
}

/// Result of store operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Durability of SQLite commits (`PRAGMA synchronous`), see the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// WAL + NORMAL: a commit survives a process crash; a power loss may drop the last few.
    #[default]
    Normal,
    /// WAL + FULL: a commit also survives a power loss, at an fsync per commit.
    Full,
}

/// Everything latchkey keeps, in one database: the operations are grouped by what they keep
/// (one trait and one file per engine each), and a store is all of them.
#[async_trait]
pub trait Store:
    ClientStore + UserStore + KeyStore + FlowStore + TokenStore + Send + Sync + 'static
{
    /// Applies pending migrations; safe when several processes start at once.
    async fn migrate(&self) -> Result<()>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<()>;

    /// The database server's clock, Unix milliseconds (every node's expiry checks compare
    /// times that other nodes wrote).
    async fn clock_millis(&self) -> Result<i64>;

    /// Deletes what expired before `now`: codes, sessions, grants and their tokens, access-token
    /// and revocation records, client-assertion ids. Every statement uses an index and runs in
    /// small batches ([`purge`]), so that requests are not held up.
    async fn purge(&self, now: i64) -> Result<Purged>;

    /// How the database runs each statement of [`Store::purge`]: what the store suite checks
    /// for full scans.
    async fn purge_plans(&self) -> Result<Vec<purge::PurgePlan>>;

    /// Closes the store at shutdown (SQLite: the WAL is copied into the database and emptied).
    async fn close(&self) -> Result<()>;
}

/// Registered clients, and the assertion ids (`jti`) their `private_key_jwt` assertions have used.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Inserts or replaces a client, keyed by `client_id` (whatever its stored revision).
    async fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()>;

    /// Replaces a client with `record` if it is still at `record.revision`, the revision
    /// the change was made from; the stored revision goes one up. `NotFound` if there is no
    /// such client, `Conflict` if another write came first (read it again and redo the change).
    /// Nothing the client holds is revoked: the protocol applies the new registration to
    /// every later request.
    async fn replace_client(&self, record: &ClientRecord, now: i64) -> Result<()>;

    /// One client.
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>>;

    /// All clients, ordered by `client_id`.
    async fn clients(&self) -> Result<Vec<ClientRecord>>;

    /// Whether `origin` is the browser origin of some client's redirect URI (one indexed
    /// lookup, kept with every client write).
    async fn origin_registered(&self, origin: &str) -> Result<bool>;

    /// Removes a client and, in the same transaction, everything it holds: its codes and
    /// consents go, its grants and stored access tokens are revoked at `now`. `NotFound` if
    /// there was none.
    async fn remove_client(&self, client_id: &str, now: i64) -> Result<()>;

    /// Removes clients that came from the config and are not in `keep`, as
    /// [`ClientStore::remove_client`] does; returns how many.
    async fn remove_config_clients_except(&self, keep: &[String], now: i64) -> Result<u64>;

    /// Records the `jti` of a client assertion; `false` if this client used it before.
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool>;

    /// How many client changes have committed: each write above that changes a client adds one
    /// in its own transaction.
    async fn client_epoch(&self) -> Result<i64>;

    /// One round of node `node_id`'s cache sync: records, on the database's clock, that its
    /// client cache holds nothing older than epoch `caught_up` (`None`: not yet), and returns
    /// the current epoch, read in the same transaction and ordered against client changes, so
    /// that a change either is seen here or commits after this node's row.
    async fn sync_node(&self, node_id: &str, caught_up: Option<i64>) -> Result<i64>;

    /// How many nodes may still serve a client as it was before `epoch`: those that have not
    /// caught up with it and synced within the last `window_ms` on the database's clock.
    async fn nodes_behind(&self, epoch: i64, window_ms: i64) -> Result<u64>;

    /// Forgets node `node_id` (at its shutdown).
    async fn leave_node(&self, node_id: &str) -> Result<()>;
}

/// Users, their passwords, and the attempt schedules that throttle password and secret checks.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user, or updates the one with the same username (keeping its id).
    async fn upsert_user(&self, user: &User, now: i64) -> Result<User>;

    /// One user by login name.
    async fn user_by_username(&self, username: &str) -> Result<Option<User>>;

    /// One user by subject identifier.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>>;

    /// All users, ordered by username.
    async fn users(&self) -> Result<Vec<User>>;

    /// Replaces a user's password hash and, unless `change` keeps them, ends the user's
    /// sessions, revokes their grants and drops their pending codes, in one transaction;
    /// `NotFound` if there is no such user.
    async fn set_password_hash(
        &self,
        username: &str,
        hash: &str,
        change: PasswordChange,
        now: i64,
    ) -> Result<()>;

    /// Changes a user's profile; the user as stored after. `NotFound` if there is no such user.
    async fn update_user(&self, username: &str, update: &UserUpdate, now: i64) -> Result<User>;

    /// Disables a user, ending their sessions, dropping their pending codes and revoking their
    /// grants in the same transaction, or enables them again (they may sign in; what was
    /// revoked stays revoked); the user as stored after. `NotFound` if there is no such user.
    async fn set_user_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<User>;

    /// Replaces the password hash of user `user_id` with `new` if it is still `old` (a hash
    /// upgraded to the current parameters after a successful sign-in, which must not undo a
    /// password change made meanwhile); whether it did. Sessions and grants stay.
    async fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool>;

    /// Inserts new users, all or none, in one transaction; `Conflict` naming the first whose
    /// username or id is taken.
    async fn insert_users(&self, users: &[User], now: i64) -> Result<()>;

    /// The hash recorded for the config file's password of a user: `None` when there is no
    /// such user, `Some(None)` when nothing is recorded.
    async fn config_password_hash(&self, username: &str) -> Result<Option<Option<String>>>;

    /// Records `hash` as the config file's password of a user, leaving the password as it is.
    async fn record_config_password(&self, username: &str, hash: &str) -> Result<()>;

    /// Removes a user and, in the same transaction, what they hold: their sessions, consents
    /// and codes go, their grants (with every token issued in them) are revoked at `now`.
    /// `NotFound` if there was none.
    async fn remove_user(&self, username: &str, now: i64) -> Result<()>;

    /// Takes the slot of the attempt schedule `key` for one check unless another check holds
    /// it or its back-off runs, in one atomic statement so that concurrent attempts on any node
    /// get at most one [`AttemptSlot::Granted`]. The slot is held until [`UserStore::end_attempt`]
    /// or, if that never comes, for `lease` seconds. Failures recorded before `now - window`
    /// are forgotten.
    async fn begin_attempt(
        &self,
        key: &str,
        now: i64,
        lease: i64,
        window: i64,
    ) -> Result<AttemptSlot>;

    /// Releases the slot taken by [`UserStore::begin_attempt`] and records the outcome.
    async fn end_attempt(&self, key: &str, end: AttemptEnd, now: i64) -> Result<()>;
}

/// Signing keys and the other server secrets every node shares.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// All signing keys, ordered by activation time.
    async fn signing_keys(&self) -> Result<Vec<KeyRecord>>;

    /// Inserts `key` only if the latest activation time in its slot is still `expected_latest`
    /// (`None`: the slot is empty). Returns whether it was inserted.
    async fn add_signing_key(&self, key: &KeyRecord, expected_latest: Option<i64>) -> Result<bool>;

    /// Replaces a key's stored private key, e.g. with its sealed form once a master key is set.
    async fn replace_private_key(&self, kid: &str, private_key: &[u8], sealed: bool) -> Result<()>;

    /// Deletes a key (expired ones); absent keys are ignored.
    async fn remove_signing_key(&self, kid: &str) -> Result<()>;

    /// The server secret `name` (its value and whether it is sealed): the one stored, or
    /// `candidate` when none is, stored now. Every node gets the same one.
    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        sealed: bool,
    ) -> Result<(Vec<u8>, bool)>;

    /// Replaces a server secret's stored form (sealing it once a master key is configured).
    async fn replace_server_secret(&self, name: &str, value: &[u8], sealed: bool) -> Result<()>;
}

/// The authorization code flow: login sessions, remembered consent, authorization codes.
#[async_trait]
pub trait FlowStore: Send + Sync {
    /// Stores a new login session.
    async fn create_session(&self, session: &Session) -> Result<()>;

    /// A session that has not expired, found by its public id (the id_token's `sid`).
    async fn session_by_sid(&self, sid: &str, now: i64) -> Result<Option<Session>>;

    /// A session that has not expired.
    async fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>>;

    /// A session that has not expired, with the scopes its user consented to for
    /// `client_id`: what an authorization request needs, in one read.
    async fn session_and_consent(
        &self,
        id_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<(Session, Option<Scopes>)>>;

    /// A user's live sessions, newest first, at most `limit`.
    async fn user_sessions(
        &self,
        user_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<SessionSummary>>;

    /// Ends a user's sessions and revokes every grant made through them (offline ones too),
    /// in one transaction; with `client_id`, revokes only that client's grants made through
    /// them and ends no session. Returns (sessions ended, grants revoked).
    async fn end_user_sessions(
        &self,
        user_id: &str,
        client_id: Option<&str>,
        now: i64,
    ) -> Result<(u64, u64)>;

    /// Ends a session and revokes every session-bound grant issued through it (those without
    /// `offline_access`; offline grants live on).
    async fn end_session(&self, id_hash: &str, now: i64) -> Result<()>;

    /// The scopes a user consented to for a client.
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>>;

    /// Forgets a consent (the user denied the client).
    async fn forget_consent(&self, user_id: &str, client_id: &str) -> Result<()>;

    /// Remembers a consent, replacing the previous one.
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scopes: &Scopes,
        now: i64,
    ) -> Result<()>;

    /// Stores an authorization code.
    async fn insert_code(&self, code: &AuthorizationCode) -> Result<()>;

    /// A presented code, read without changing it: spending it is [`TokenStore::issue`]'s job, so
    /// that a code is never spent without what it granted (a crash in between would lose it).
    async fn code(&self, code_hash: &str, now: i64) -> Result<CodeLookup>;

    /// Records a replay of a spent code and revokes the grant its exchange stored (RFC 6749
    /// §4.1.2), returning that grant's id. One transaction.
    async fn replay_code(&self, code_hash: &str, now: i64) -> Result<Option<String>>;
}

/// Grants and the tokens issued in them: issuing, refresh-token rotation, revocation, status.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a grant with its first tokens and spends the code being exchanged, if any, in
    /// one transaction. Of concurrent exchanges of one code exactly one stores its grant; the
    /// others are replays and revoke it ([`Issued::CodeSpent`]). Ordered against a
    /// concurrent [`ClientStore::remove_client`]: a grant is either refused or revoked by the
    /// removal.
    async fn issue(&self, issue: &Issue) -> Result<Issued>;

    /// A refresh token (in any state), its grant, and whether the grant's session is live at
    /// `now`.
    async fn refresh_token(&self, token_hash: &str, now: i64) -> Result<Option<StoredRefresh>>;

    /// Presents a refresh token for rotation, in one transaction: reads it as
    /// [`TokenStore::refresh_token`] does (under the lock concurrent rotations of it queue
    /// on), asks `plan` whether and with what it rotates, and carries out the [`Rotation`].
    /// `None` when no such token is stored. A plan that declines leaves everything as it was
    /// ([`Rotation::Declined`]); otherwise inside `grace_secs` after a rotation the same token
    /// gets `Retry` with the stored sealed successor (and the plan's access token is
    /// recorded), and after it the family is revoked.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        now: i64,
        plan: RotationPlan,
    ) -> Result<Option<(StoredRefresh, Rotation)>>;

    /// The live grants (neither revoked nor expired) that `filter` covers, newest first, at
    /// most `limit`. A filter that names nothing covers nothing.
    async fn grants(
        &self,
        filter: &GrantFilter,
        now: i64,
        limit: usize,
    ) -> Result<Vec<crate::model::Grant>>;

    /// Revokes the live grants that `filter` covers, with every token issued in them, in one
    /// transaction; how many. A filter that names nothing covers nothing.
    async fn revoke_grants(&self, filter: &GrantFilter, now: i64) -> Result<u64>;

    /// Records an access token issued outside [`TokenStore::issue`] and rotation.
    async fn insert_access_token(&self, access: &AccessTokenRecord) -> Result<()>;

    /// Whether a JWT access token issued within grant `grant_id` is revoked (itself, with its
    /// grant, or because the grant is gone or expired), and the login name of its user.
    async fn jwt_status(
        &self,
        jti: &str,
        grant_id: &str,
        now: i64,
    ) -> Result<(bool, Option<String>)>;

    /// The recorded access token with this `jti`, unless it has expired.
    async fn access_token_by_jti(&self, jti: &str, now: i64) -> Result<Option<StoredAccess>>;

    /// The opaque access token with this hash, unless it has expired.
    async fn access_token_by_hash(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<StoredAccess>>;

    /// Revokes one access token, recording it first if it was not (a client-credentials JWT).
    async fn revoke_access_token(&self, access: &AccessTokenRecord, now: i64) -> Result<()>;

    /// Revokes the grant of a refresh token of `client_id`: its family and access tokens.
    async fn revoke_refresh_token(
        &self,
        token_hash: &str,
        client_id: &str,
        now: i64,
    ) -> Result<RefreshRevocation>;
}

/// Which count of [`Purged`] a purge statement adds to.
type PurgeCounter = fn(&mut Purged) -> &mut u64;

/// Decides, from a presented refresh token as stored, whether this request rotates it and
/// with what; `None` declines. It runs inside the rotation's transaction (on SQLite on the
/// writer thread), so it only computes: no I/O, no waiting.
pub type RotationPlan = Box<dyn FnOnce(&StoredRefresh) -> Option<RotationRequest> + Send>;

/// The new state a refresh-token rotation stores.
#[derive(Debug, Clone)]
pub struct RotationRequest {
    /// The successor refresh token.
    pub successor: RefreshToken,
    /// The successor sealed for retries inside the grace window (`None` without one).
    pub successor_sealed: Option<Vec<u8>>,
    /// The record of the access token issued with it, if it has one (opaque tokens).
    pub access: Option<AccessTokenRecord>,
    /// The grace window in seconds (0: strict rotation).
    pub grace_secs: i64,
}

/// Audience lists are stored as JSON arrays.
/// The conflict of an update made from a read that another write has overtaken.
fn changed_meanwhile(client_id: &str) -> Error {
    Error::Conflict(format!(
        "client {client_id:?} was changed by someone else since it was read: read it again and redo the change"
    ))
}

/// The conflict of a client_id that is a user's subject (RFC 9068 §5).
fn subject_taken(client_id: &str) -> Error {
    Error::Conflict(format!(
        "client_id {client_id:?} is the subject (sub) of a user: access tokens of the two could not be told apart (RFC 9068 section 5); choose another client_id"
    ))
}

fn audience_json(audience: &[String]) -> String {
    serde_json::to_string(audience).unwrap_or_else(|_| "[]".into())
}

fn audience_from_json(value: &str) -> Result<Vec<String>> {
    serde_json::from_str(value)
        .map_err(|error| Error::Backend(format!("stored audience is invalid: {error}")))
}

/// A signing-key row as both engines read it, before its strings become enums.
struct StoredKey {
    kid: String,
    purpose: String,
    alg: String,
    private_key: Vec<u8>,
    sealed: bool,
    created_at: i64,
    activates_at: i64,
}

impl StoredKey {
    /// Refuses rows this version does not understand rather than guessing.
    fn into_record(self) -> Result<KeyRecord> {
        let purpose = KeyPurpose::parse(&self.purpose).ok_or_else(|| {
            Error::Backend(format!("key {} has unknown purpose {:?}", self.kid, self.purpose))
        })?;
        let alg = SigningAlg::parse(&self.alg).ok_or_else(|| {
            Error::Backend(format!("key {} has unknown alg {:?}", self.kid, self.alg))
        })?;
        Ok(KeyRecord {
            kid: self.kid,
            purpose,
            alg,
            private_key: self.private_key,
            sealed: self.sealed,
            created_at: self.created_at,
            activates_at: self.activates_at,
        })
    }
}

/// The one-time work a migration leaves for the server (a row of `upkeep`): the browser
/// origins of the clients registered before `client_origins` existed (migration 0009).
const UPKEEP_CLIENT_ORIGINS: &str = "client_origins";

/// The browser origins of a client from its stored metadata, for that upkeep.
fn stored_origins(metadata: &str) -> Result<Vec<String>> {
    Ok(stored_client(metadata)?.origins())
}

/// Stored client metadata back into a client.
fn stored_client(metadata: &str) -> Result<crate::model::Client> {
    serde_json::from_str(metadata)
        .map_err(|error| Error::Backend(format!("stored client metadata is invalid: {error}")))
}

/// A client row as read: `metadata, secret_hash, source, previous_secret_hash,
/// previous_secret_expires_at, revision`.
struct ClientRow {
    metadata: String,
    secret_hash: Option<String>,
    source: String,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    revision: i64,
}

/// A stored client row back into a record.
fn client_record(row: ClientRow) -> Result<ClientRecord> {
    let client = stored_client(&row.metadata)?;
    let previous_secret = match (row.previous_secret_hash, row.previous_secret_expires_at) {
        (Some(hash), Some(expires_at)) => Some(crate::model::PreviousSecret { hash, expires_at }),
        _ => None,
    };
    Ok(ClientRecord {
        client,
        secret_hash: row.secret_hash,
        source: ClientSource::parse(&row.source),
        previous_secret,
        revision: row.revision,
    })
}

/// Options that apply to one engine only.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// SQLite commit durability.
    pub synchronous: Synchronous,
    /// The size past which SQLite's WAL is emptied into the database at the next checkpoint,
    /// even while readers keep it busy; the file is also cut back to this size then.
    pub wal_limit_bytes: u64,
}

/// The default [`Options::wal_limit_bytes`]: 64 MiB.
pub const WAL_LIMIT_BYTES: u64 = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Options { synchronous: Synchronous::default(), wal_limit_bytes: WAL_LIMIT_BYTES }
    }
}

/// The SQLite database files of `url` that users other than the owner may read or write, with
/// their modes (none for PostgreSQL).
pub fn exposed_files(url: &str) -> Vec<(String, u32)> {
    url.strip_prefix("sqlite://").map(sqlite::exposed_files).unwrap_or_default()
}

/// Where `url` points, for logs and messages, never with its credentials: the SQLite file, or
/// PostgreSQL's host, port, database and user.
pub fn describe(url: &str) -> String {
    if let Some(path) = url.strip_prefix("sqlite://") {
        return format!("SQLite file {path}");
    }
    postgres::PgStore::describe_url(url).unwrap_or_else(|| "an invalid database URL".into())
}

/// Opens the store named by `url` (`sqlite://PATH` or `postgres://...`) without migrating.
pub async fn connect(url: &str, options: Options) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(path, options).await?;
        Ok(Arc::new(store))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else {
        Err(Error::Url(format!(
            "{url:?}: use sqlite://PATH (one node) or postgres://USER@HOST/DB (several nodes)"
        )))
    }
}
