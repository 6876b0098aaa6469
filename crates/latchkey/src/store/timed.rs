//! A [`Store`] that times every operation into the `latchkey_store_operation_duration_seconds`
//! histogram, labelled by operation: store latency on `/metrics`, for either engine.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;

use super::{
    ClientStore, FlowStore, GrantFilter, KeyStore, PasswordChange, Result, RotationPlan,
    SessionSummary, Store, TokenStore, UserStore, UserUpdate,
};
use crate::model::key::KeyRecord;
use crate::model::scope::Scopes;
use crate::model::{
    AccessTokenRecord, AttemptEnd, AttemptSlot, AuthorizationCode, ClientRecord, CodeLookup, Grant,
    Issue, Issued, Purged, RefreshRevocation, Rotation, Session, StoredAccess, StoredRefresh, User,
};

/// Wraps a store and times each call; errors are timed too.
pub struct TimedStore {
    inner: Arc<dyn Store>,
}

impl TimedStore {
    /// Times `inner`.
    pub fn new(inner: Arc<dyn Store>) -> Self {
        TimedStore { inner }
    }
}

fn record(operation: &'static str, started: Instant) {
    metrics::histogram!("latchkey_store_operation_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
}

/// Writes the trait's methods, each forwarding to `inner` between a clock read and a record.
macro_rules! timed {
    ($($trait:ident { $(fn $name:ident(&self $(, $param:ident: $ty:ty)*) -> $ret:ty;)* })*) => {
        $(
            #[async_trait]
            impl $trait for TimedStore {
                $(
                    async fn $name(&self $(, $param: $ty)*) -> $ret {
                        let started = Instant::now();
                        let result = self.inner.$name($($param),*).await;
                        record(stringify!($name), started);
                        result
                    }
                )*
            }
        )*
    };
}

timed! {
    Store {
        fn migrate(&self) -> Result<()>;
        fn ping(&self) -> Result<()>;
        fn clock_millis(&self) -> Result<i64>;
        fn purge(&self, now: i64) -> Result<Purged>;
        fn purge_plans(&self) -> Result<Vec<super::purge::PurgePlan>>;
        fn close(&self) -> Result<()>;
    }
    ClientStore {
        fn upsert_client(&self, record: &ClientRecord, now: i64) -> Result<()>;
        fn replace_client(&self, record: &ClientRecord, now: i64) -> Result<()>;
        fn client(&self, client_id: &str) -> Result<Option<ClientRecord>>;
        fn clients(&self) -> Result<Vec<ClientRecord>>;
        fn origin_registered(&self, origin: &str) -> Result<bool>;
        fn remove_client(&self, client_id: &str, now: i64) -> Result<()>;
        fn remove_config_clients_except(&self, keep: &[String], now: i64) -> Result<u64>;
        fn use_client_assertion(&self, client_id: &str, jti: &str, expires_at: i64) -> Result<bool>;
        fn client_epoch(&self) -> Result<i64>;
        fn sync_node(&self, node_id: &str, caught_up: Option<i64>) -> Result<i64>;
        fn nodes_behind(&self, epoch: i64, window_ms: i64) -> Result<u64>;
        fn leave_node(&self, node_id: &str) -> Result<()>;
    }
    UserStore {
        fn upsert_user(&self, user: &User, now: i64) -> Result<User>;
        fn user_by_username(&self, username: &str) -> Result<Option<User>>;
        fn user_by_id(&self, id: &str) -> Result<Option<User>>;
        fn users(&self) -> Result<Vec<User>>;
        fn update_user(&self, username: &str, update: &UserUpdate, now: i64) -> Result<User>;
        fn set_user_disabled(&self, username: &str, disabled: bool, now: i64) -> Result<User>;
        fn upgrade_password_hash(&self, user_id: &str, old: &str, new: &str) -> Result<bool>;
        fn insert_users(&self, users: &[User], now: i64) -> Result<()>;
        fn set_password_hash(&self, username: &str, hash: &str, change: PasswordChange, now: i64) -> Result<()>;
        fn config_password_hash(&self, username: &str) -> Result<Option<Option<String>>>;
        fn record_config_password(&self, username: &str, hash: &str) -> Result<()>;
        fn remove_user(&self, username: &str, now: i64) -> Result<()>;
        fn begin_attempt(&self, key: &str, now: i64, lease: i64, window: i64) -> Result<AttemptSlot>;
        fn end_attempt(&self, key: &str, end: AttemptEnd, now: i64) -> Result<()>;
    }
    KeyStore {
        fn signing_keys(&self) -> Result<Vec<KeyRecord>>;
        fn add_signing_key(&self, key: &KeyRecord, expected_latest: Option<i64>) -> Result<bool>;
        fn replace_private_key(&self, kid: &str, private_key: &[u8], sealed: bool) -> Result<()>;
        fn remove_signing_key(&self, kid: &str) -> Result<()>;
        fn server_secret(&self, name: &str, candidate: &[u8], sealed: bool) -> Result<(Vec<u8>, bool)>;
        fn replace_server_secret(&self, name: &str, value: &[u8], sealed: bool) -> Result<()>;
    }
    FlowStore {
        fn create_session(&self, session: &Session) -> Result<()>;
        fn session_by_sid(&self, sid: &str, now: i64) -> Result<Option<Session>>;
        fn session(&self, id_hash: &str, now: i64) -> Result<Option<Session>>;
        fn session_and_consent(&self, id_hash: &str, client_id: &str, now: i64) -> Result<Option<(Session, Option<Scopes>)>>;
        fn end_session(&self, id_hash: &str, now: i64) -> Result<()>;
        fn user_sessions(&self, user_id: &str, now: i64, limit: usize) -> Result<Vec<SessionSummary>>;
        fn end_user_sessions(&self, user_id: &str, client_id: Option<&str>, now: i64) -> Result<(u64, u64)>;
        fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<Scopes>>;
        fn forget_consent(&self, user_id: &str, client_id: &str) -> Result<()>;
        fn save_consent(&self, user_id: &str, client_id: &str, scopes: &Scopes, now: i64) -> Result<()>;
        fn insert_code(&self, code: &AuthorizationCode) -> Result<()>;
        fn code(&self, code_hash: &str, now: i64) -> Result<CodeLookup>;
        fn replay_code(&self, code_hash: &str, now: i64) -> Result<Option<String>>;
    }
    TokenStore {
        fn issue(&self, issue: &Issue) -> Result<Issued>;
        fn refresh_token(&self, token_hash: &str, now: i64) -> Result<Option<StoredRefresh>>;
        fn rotate_refresh_token(&self, token_hash: &str, now: i64, plan: RotationPlan) -> Result<Option<(StoredRefresh, Rotation)>>;
        fn grants(&self, filter: &GrantFilter, now: i64, limit: usize) -> Result<Vec<Grant>>;
        fn revoke_grants(&self, filter: &GrantFilter, now: i64) -> Result<u64>;
        fn insert_access_token(&self, access: &AccessTokenRecord) -> Result<()>;
        fn jwt_status(&self, jti: &str, grant_id: &str, now: i64) -> Result<(bool, Option<String>)>;
        fn access_token_by_jti(&self, jti: &str, now: i64) -> Result<Option<StoredAccess>>;
        fn access_token_by_hash(&self, token_hash: &str, now: i64) -> Result<Option<StoredAccess>>;
        fn revoke_access_token(&self, access: &AccessTokenRecord, now: i64) -> Result<()>;
        fn revoke_refresh_token(&self, token_hash: &str, client_id: &str, now: i64) -> Result<RefreshRevocation>;
    }
}
