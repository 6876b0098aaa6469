//! Sessions, consents, codes, grants and refresh-token rotation: the atomic operations the
//! authorization code flow relies on.

use std::sync::Arc;

use latchkey::model::{
    AccessTokenRecord, AuthorizationCode, CodeLookup, Grant, Issue, Issued, RefreshRevocation,
    RefreshToken, Rotation, Session, StoredRefresh, User,
};
use latchkey::store::{RotationPlan, RotationRequest, Store};

use crate::{TestDb, scopes};

pub(crate) const NOW: i64 = 1_800_000_000;

/// Whether the access token `jti` is recorded, unexpired and not revoked.
pub(crate) async fn live(store: &Arc<dyn Store>, jti: &str, now: i64) -> bool {
    store.access_token_by_jti(jti, now).await.unwrap().is_some_and(|stored| !stored.revoked)
}

pub(crate) fn session(id: &str) -> Session {
    Session {
        id_hash: id.into(),
        user_id: "u1".into(),
        auth_time: NOW,
        created_at: NOW,
        expires_at: NOW + 3600,
    }
}

pub(crate) fn code(hash: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash.into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        session_id_hash: "s1".into(),
        redirect_uri: "https://app.example.com/cb".into(),
        scopes: scopes("openid offline_access"),
        audience: vec!["https://api.example.com".into()],
        nonce: Some("n-1".into()),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        auth_time: NOW - 5,
        created_at: NOW,
        expires_at: NOW + 60,
    }
}

pub(crate) fn grant(id: &str) -> Grant {
    Grant {
        id: id.into(),
        client_id: "app".into(),
        user_id: "u1".into(),
        session_id_hash: Some("s1".into()),
        scopes: scopes("openid offline_access"),
        audience: vec!["https://api.example.com".into()],
        auth_time: NOW - 5,
        created_at: NOW,
        expires_at: NOW + 86_400,
        revoked_at: None,
    }
}

pub(crate) fn refresh(hash: &str, grant_id: &str) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        grant_id: grant_id.into(),
        created_at: NOW,
        expires_at: NOW + 86_400,
        rotated_at: None,
    }
}

pub(crate) fn access(jti: &str, grant_id: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: jti.into(),
        grant_id: Some(grant_id.into()),
        client_id: "app".into(),
        expires_at: NOW + 900,
        opaque: None,
    }
}

pub(crate) fn issue(
    grant_id: &str,
    refresh_hash: &str,
    jti: &str,
    code_hash: Option<&str>,
) -> Issue {
    Issue {
        grant: grant(grant_id),
        refresh: Some(refresh(refresh_hash, grant_id)),
        access: Some(access(jti, grant_id)),
        code_hash: code_hash.map(str::to_owned),
    }
}

/// Presents `token_hash` for rotation under a plan that admits `request`; `None`: no such
/// token is stored.
async fn rotate(
    store: &Arc<dyn Store>,
    token_hash: &str,
    request: RotationRequest,
    now: i64,
) -> Option<Rotation> {
    let plan: RotationPlan = Box::new(move |_| Some(request));
    store.rotate_refresh_token(token_hash, now, plan).await.unwrap().map(|(_, rotation)| rotation)
}

fn rotation(successor: &str, jti: &str, grace_secs: i64) -> RotationRequest {
    RotationRequest {
        successor: refresh(successor, "g1"),
        successor_sealed: (grace_secs > 0).then(|| successor.as_bytes().to_vec()),
        access: Some(access(jti, "g1")),
        grace_secs,
    }
}

async fn sessions_expire_and_logout_revokes_their_grants(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    store.create_session(&session("s1")).await.unwrap();
    assert_eq!(store.session("s1", NOW).await.unwrap(), Some(session("s1")));
    assert_eq!(store.session("s1", NOW + 3600).await.unwrap(), None, "expired");
    assert_eq!(store.session("other", NOW).await.unwrap(), None);

    // A session-bound grant (no offline_access) and an offline one from the same session.
    let mut bound = issue("g1", "r1", "j1", None);
    bound.grant.scopes = scopes("openid profile");
    assert_eq!(store.issue(&bound).await.unwrap(), Issued::Done);
    assert_eq!(store.issue(&issue("g2", "r9", "j9", None)).await.unwrap(), Issued::Done);
    assert!(live(store, "j1", NOW).await);
    store.end_session("s1", NOW + 1).await.unwrap();
    assert_eq!(store.session("s1", NOW + 1).await.unwrap(), None);
    assert!(!live(store, "j1", NOW + 1).await, "logout revokes the session-bound grant");
    let rotated = rotate(store, "r1", rotation("r2", "j2", 0), NOW + 2).await;
    assert_eq!(rotated, Some(Rotation::Invalid));
    assert!(live(store, "j9", NOW + 1).await, "an offline_access grant outlives the session");
}

async fn consent_is_remembered_per_user_and_client(db: TestDb) {
    let store = &db.store;
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    store.save_consent("u1", "app", &scopes("openid"), NOW).await.unwrap();
    store.save_consent("u1", "app", &scopes("openid profile"), NOW).await.unwrap();
    store.save_consent("u2", "app", &scopes("email"), NOW).await.unwrap();
    assert_eq!(store.consent("u1", "app").await.unwrap(), Some(scopes("openid profile")));
    assert_eq!(store.consent("u1", "other").await.unwrap(), None);
}

async fn a_session_is_read_with_its_users_consent_for_one_client(db: TestDb) {
    let store = &db.store;
    store.create_session(&session("s1")).await.unwrap();
    store
        .save_consent(&session("s1").user_id, "app", &scopes("openid profile"), NOW)
        .await
        .unwrap();
    store.save_consent("someone-else", "other", &scopes("email"), NOW).await.unwrap();
    assert_eq!(
        store.session_and_consent("s1", "app", NOW).await.unwrap(),
        Some((session("s1"), Some(scopes("openid profile"))))
    );
    assert_eq!(
        store.session_and_consent("s1", "other", NOW).await.unwrap(),
        Some((session("s1"), None)),
        "another user's consent for the client is not this user's"
    );
    assert_eq!(store.session_and_consent("s1", "app", NOW + 3600).await.unwrap(), None, "expired");
    assert_eq!(store.session_and_consent("nope", "app", NOW).await.unwrap(), None);
}

async fn a_code_is_spent_by_the_issue_that_stores_its_grant(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    store.insert_code(&code("c1")).await.unwrap();
    let unspent = CodeLookup::Unspent(Box::new(code("c1")));
    assert_eq!(store.code("c1", NOW + 1).await.unwrap(), unspent);
    assert_eq!(store.code("c1", NOW + 1).await.unwrap(), unspent, "reading does not spend");
    assert_eq!(store.issue(&issue("g1", "r1", "j1", Some("c1"))).await.unwrap(), Issued::Done);
    assert_eq!(
        store.code("c1", NOW + 2).await.unwrap(),
        CodeLookup::Spent { client_id: "app".into() }
    );
    assert!(live(store, "j1", NOW + 2).await);

    assert_eq!(store.replay_code("c1", NOW + 3).await.unwrap().as_deref(), Some("g1"));
    assert!(!live(store, "j1", NOW + 3).await, "a replay revokes the access token");
    let rotated = rotate(store, "r1", rotation("r2", "j2", 0), NOW + 4).await;
    assert_eq!(rotated, Some(Rotation::Invalid), "and the refresh token");
    assert_eq!(store.code("unknown", NOW).await.unwrap(), CodeLookup::Invalid);
    assert_eq!(store.replay_code("unknown", NOW).await.unwrap(), None);
}

async fn a_second_issue_with_one_code_is_a_replay(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    store.insert_code(&code("c1")).await.unwrap();
    assert_eq!(store.issue(&issue("g1", "r1", "j1", Some("c1"))).await.unwrap(), Issued::Done);
    assert_eq!(
        store.issue(&issue("g2", "r2", "j2", Some("c1"))).await.unwrap(),
        Issued::CodeSpent { family: Some("g1".into()) }
    );
    assert!(store.refresh_token("r2", NOW).await.unwrap().is_none(), "nothing of it is stored");
    assert!(!live(store, "j2", NOW).await);
    assert!(!live(store, "j1", NOW).await, "the first exchange's grant is revoked");
}

async fn expired_codes_are_invalid(db: TestDb) {
    db.store.insert_code(&code("c1")).await.unwrap();
    assert_eq!(
        db.store.code("c1", NOW + 59).await.unwrap(),
        CodeLookup::Unspent(Box::new(code("c1")))
    );
    assert_eq!(db.store.code("c1", NOW + 60).await.unwrap(), CodeLookup::Invalid);
}

async fn concurrent_exchanges_of_one_code_store_one_grant(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    db.store.insert_code(&code("c1")).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store: Arc<dyn Store> = db.store.clone();
        tasks.spawn(async move {
            let issue = issue(&format!("g{i}"), &format!("r{i}"), &format!("j{i}"), Some("c1"));
            (i, store.issue(&issue).await.unwrap())
        });
    }
    let outcomes = tasks.join_all().await;
    let winners: Vec<usize> =
        outcomes.iter().filter(|(_, o)| *o == Issued::Done).map(|(i, _)| *i).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let family = Some(format!("g{}", winners[0]));
    for (i, outcome) in &outcomes {
        if *i != winners[0] {
            assert_eq!(*outcome, Issued::CodeSpent { family: family.clone() });
            assert!(db.store.refresh_token(&format!("r{i}"), NOW).await.unwrap().is_none());
        }
    }
}

/// Concurrent writes may share a transaction (SQLite's group commit): one that fails halfway
/// must leave nothing behind, and must not take the others down with it.
async fn a_failing_write_among_concurrent_ones_undoes_only_itself(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..30 {
        let store: Arc<dyn Store> = db.store.clone();
        // The first ten share one access-token id: the grant and refresh token go in first,
        // then the access token collides for all but one of them.
        let jti = if i < 10 { "j-shared".to_owned() } else { format!("j{i}") };
        tasks.spawn(async move {
            let outcome = store.issue(&issue(&format!("g{i}"), &format!("r{i}"), &jti, None)).await;
            (i, outcome)
        });
    }
    let mut shared_winners = 0;
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.unwrap();
        let stored = db.store.refresh_token(&format!("r{i}"), NOW).await.unwrap();
        match outcome {
            Ok(issued) => {
                assert_eq!(issued, Issued::Done);
                assert!(stored.is_some(), "write {i} succeeded but its refresh token is missing");
                if i < 10 {
                    shared_winners += 1;
                }
            }
            Err(error) => {
                assert!(i < 10, "write {i} had nothing to collide with: {error}");
                assert!(matches!(error, latchkey::store::Error::Conflict(_)), "{error}");
                assert!(stored.is_none(), "failed write {i} left its refresh token behind");
            }
        }
    }
    assert_eq!(shared_winners, 1);
}

async fn strict_rotation_revokes_the_family_on_reuse(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    let StoredRefresh { token, grant, .. } = store.refresh_token("r1", NOW).await.unwrap().unwrap();
    assert_eq!((token.grant_id.as_str(), grant.audience.len()), ("g1", 1));
    assert_eq!(
        rotate(store, "r1", rotation("r2", "j2", 0), NOW + 1).await,
        Some(Rotation::Rotated)
    );
    assert!(live(store, "j2", NOW + 1).await);
    // The rotated token comes back: the whole family dies, successor and access tokens too.
    assert_eq!(rotate(store, "r1", rotation("r3", "j3", 0), NOW + 2).await, Some(Rotation::Reused));
    assert_eq!(
        rotate(store, "r2", rotation("r4", "j4", 0), NOW + 3).await,
        Some(Rotation::Invalid)
    );
    assert!(!live(store, "j2", NOW + 3).await);
    assert!(store.refresh_token("r1", NOW).await.unwrap().unwrap().grant.revoked_at.is_some());
}

/// The plan sees the token as `refresh_token` reads it; one that declines changes nothing,
/// so a rotated token presented under a declining plan (another client, an ended sign-in) is
/// no reuse. An unknown token reaches no plan.
async fn a_declined_rotation_changes_nothing(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    let read = store.refresh_token("r1", NOW).await.unwrap().unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let declined = |seen: Arc<std::sync::Mutex<Option<StoredRefresh>>>| -> RotationPlan {
        Box::new(move |stored: &StoredRefresh| {
            *seen.lock().unwrap() = Some(stored.clone());
            None
        })
    };
    let (stored, outcome) =
        store.rotate_refresh_token("r1", NOW, declined(seen.clone())).await.unwrap().unwrap();
    assert_eq!((&stored, &outcome), (&read, &Rotation::Declined));
    assert_eq!(seen.lock().unwrap().take(), Some(read), "the plan saw the stored token");
    assert_eq!(
        rotate(store, "r1", rotation("r2", "j2", 0), NOW + 1).await,
        Some(Rotation::Rotated)
    );

    let (_, outcome) =
        store.rotate_refresh_token("r1", NOW + 2, declined(seen.clone())).await.unwrap().unwrap();
    assert_eq!(outcome, Rotation::Declined);
    assert!(seen.lock().unwrap().take().is_some_and(|s| s.token.rotated_at == Some(NOW + 1)));
    assert!(live(store, "j2", NOW + 2).await, "a declined reuse revokes nothing");
    assert_eq!(
        rotate(store, "r2", rotation("r3", "j3", 0), NOW + 3).await,
        Some(Rotation::Rotated)
    );

    let unknown = store.rotate_refresh_token("r9", NOW, declined(seen.clone())).await.unwrap();
    assert_eq!(unknown, None);
    assert_eq!(*seen.lock().unwrap(), None, "no plan runs for an unknown token");
}

async fn grace_window_returns_the_same_successor_then_revokes(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    assert_eq!(rotate(store, "r1", rotation("r2", "j2", 10), NOW).await, Some(Rotation::Rotated));
    let retry = rotate(store, "r1", rotation("r9", "j9", 10), NOW + 10).await;
    assert_eq!(retry, Some(Rotation::Retry { successor_sealed: b"r2".to_vec() }));
    let late = rotate(store, "r1", rotation("r9", "j9", 10), NOW + 11).await;
    assert_eq!(late, Some(Rotation::Reused));
    assert_eq!(
        rotate(store, "r2", rotation("r5", "j5", 10), NOW + 12).await,
        Some(Rotation::Invalid)
    );
}

async fn expired_refresh_tokens_do_not_rotate(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    assert_eq!(db.store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    let outcome = rotate(&db.store, "r1", rotation("r2", "j2", 0), NOW + 86_400).await;
    assert_eq!(outcome, Some(Rotation::Invalid));
    assert!(!live(&db.store, "j1", NOW + 900).await, "access token expired");
}

async fn concurrent_strict_rotations_have_one_winner(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    assert_eq!(db.store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store: Arc<dyn Store> = db.store.clone();
        tasks.spawn(async move {
            rotate(&store, "r1", rotation(&format!("s{n}"), &format!("k{n}"), 0), NOW + 1).await
        });
    }
    let mut rotated = 0;
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Some(Rotation::Rotated) => rotated += 1,
            other => {
                assert!(matches!(other, Some(Rotation::Reused | Rotation::Invalid)), "{other:?}")
            }
        }
    }
    assert_eq!(rotated, 1);
}

/// Removing a client takes everything it holds with it, in one step.
async fn removing_a_client_ends_its_codes_grants_tokens_and_consents(db: TestDb) {
    let store = &db.store;
    crate::conformance::register(&db, "app").await;
    store.insert_code(&code("c1")).await.unwrap();
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    store.save_consent("u1", "app", &scopes("openid"), NOW).await.unwrap();

    store.remove_client("app", NOW + 1).await.unwrap();

    assert_eq!(store.code("c1", NOW + 2).await.unwrap(), CodeLookup::Invalid);
    let family = store.refresh_token("r1", NOW).await.unwrap().unwrap().grant;
    assert_eq!(family.revoked_at, Some(NOW + 1));
    let rotated = rotate(store, "r1", rotation("r2", "j2", 0), NOW + 2).await;
    assert_ne!(rotated, Some(Rotation::Rotated));
    assert!(!live(store, "j1", NOW + 2).await);
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    assert_eq!(
        store.issue(&issue("g2", "r3", "j3", None)).await.unwrap(),
        Issued::ClientRemoved,
        "no new grant for a removed client"
    );
    assert!(store.refresh_token("r3", NOW).await.unwrap().is_none());
}

/// Grants issued while a client is being removed are either refused or revoked by the
/// removal: none is live afterwards.
async fn grants_issued_during_a_client_removal_do_not_survive_it(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    // Four writers issue grants until they are refused; the client goes away meanwhile.
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let store: Arc<dyn Store> = db.store.clone();
        let progress = progress.clone();
        writers.spawn(async move {
            let mut issued = Vec::new();
            for n in 0.. {
                let id = format!("{w}-{n}");
                let issue = issue(&format!("g{id}"), &format!("r{id}"), &format!("j{id}"), None);
                match store.issue(&issue).await.unwrap() {
                    Issued::Done => {
                        issued.push(id);
                        progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Issued::ClientRemoved => return (issued, id),
                    Issued::CodeSpent { .. } => panic!("no code in this grant"),
                    Issued::UserDisabled => panic!("no user is disabled here"),
                }
            }
            unreachable!()
        });
    }
    while progress.load(std::sync::atomic::Ordering::Relaxed) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    db.store.remove_client("app", NOW + 1).await.unwrap();
    let mut total = 0;
    for (issued, refused) in writers.join_all().await {
        for id in &issued {
            let family =
                db.store.refresh_token(&format!("r{id}"), NOW).await.unwrap().unwrap().grant;
            assert!(family.revoked_at.is_some(), "grant {id} outlived the client's removal");
        }
        assert!(db.store.refresh_token(&format!("r{refused}"), NOW).await.unwrap().is_none());
        total += issued.len();
    }
    eprintln!("{total} grants issued before the removal, all revoked by it");
}

/// A refresh chain racing a revocation of its family: no rotation sent after the revocation
/// returned succeeds, and afterwards no token of the family is live.
async fn a_revocation_racing_rotations_leaves_nothing_live(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    assert_eq!(db.store.issue(&issue("g1", "r0", "j0", None)).await.unwrap(), Issued::Done);
    let revoked_at: Arc<std::sync::OnceLock<std::time::Instant>> = Arc::default();
    let store = db.store.clone();
    let seen = revoked_at.clone();
    let progress = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let rotations = progress.clone();
    let chain = tokio::spawn(async move {
        let mut rotated = Vec::new();
        let mut current = "r0".to_owned();
        for n in 1.. {
            let sent = std::time::Instant::now();
            let request = rotation(&format!("r{n}"), &format!("j{n}"), 0);
            match rotate(&store, &current, request, NOW + 1).await {
                Some(Rotation::Rotated) => {
                    let after_revocation = seen.get().is_some_and(|at| sent > *at);
                    assert!(!after_revocation, "rotation {n} was sent after the revocation");
                    rotated.push(n);
                    rotations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    current = format!("r{n}");
                }
                _ => return (rotated, current),
            }
        }
        unreachable!()
    });
    // Revoke once the chain is under way, however slow the machine.
    while progress.load(std::sync::atomic::Ordering::Relaxed) < 3 && !chain.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let outcome = db.store.revoke_refresh_token("r0", "app", NOW + 1).await.unwrap();
    revoked_at.set(std::time::Instant::now()).unwrap();
    assert_eq!(outcome, RefreshRevocation::Revoked);
    let (rotated, last) = chain.await.unwrap();
    assert!(!rotated.is_empty(), "the chain ran before the revocation");
    let again = rotate(&db.store, &last, rotation("x", "jx", 0), NOW + 2).await;
    assert_ne!(again, Some(Rotation::Rotated));
    for n in std::iter::once(0).chain(rotated.iter().copied()) {
        assert!(!live(&db.store, &format!("j{n}"), NOW + 2).await, "access token j{n} is live");
    }
    let (revoked, _) = db.store.jwt_status("j-unrecorded", "g1", NOW + 2).await.unwrap();
    assert!(revoked, "a JWT of the family is dead with its grant");
    eprintln!("{} rotations before the revocation", rotated.len());
}

/// A password change ends the user's sessions and revokes their grants in its transaction,
/// unless told to keep them; consents stay. The config's password is recorded only when the
/// change comes from the config.
async fn a_password_change_ends_sessions_and_grants_unless_kept(db: TestDb) {
    use latchkey::store::PasswordChange;
    let store = &db.store;
    crate::conformance::register(&db, "app").await;
    let user = latchkey::model::User {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$old".into(),
        email: None,
        name: None,
        email_verified: true,
        disabled: false,
    };
    store.upsert_user(&user, NOW).await.unwrap();
    assert_eq!(
        store.config_password_hash("alice").await.unwrap(),
        Some(Some("$argon2id$old".into()))
    );
    assert_eq!(store.config_password_hash("nobody").await.unwrap(), None);
    store.create_session(&session("s1")).await.unwrap();
    store.save_consent("u1", "app", &scopes("openid"), NOW).await.unwrap();
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);

    let keep = PasswordChange { end_sessions: false, from_config: false };
    store.set_password_hash("alice", "$argon2id$kept", keep, NOW + 1).await.unwrap();
    assert!(store.session("s1", NOW + 2).await.unwrap().is_some(), "kept on request");
    assert!(live(store, "j1", NOW + 2).await);
    assert_eq!(
        store.config_password_hash("alice").await.unwrap(),
        Some(Some("$argon2id$old".into()))
    );

    let end = PasswordChange { end_sessions: true, from_config: true };
    store.set_password_hash("alice", "$argon2id$new", end, NOW + 3).await.unwrap();
    assert!(store.session("s1", NOW + 4).await.unwrap().is_none());
    let grant = store.refresh_token("r1", NOW).await.unwrap().unwrap().grant;
    assert_eq!(grant.revoked_at, Some(NOW + 3));
    assert!(!live(store, "j1", NOW + 4).await);
    assert_eq!(store.consent("u1", "app").await.unwrap(), Some(scopes("openid")));
    assert_eq!(
        store.config_password_hash("alice").await.unwrap(),
        Some(Some("$argon2id$new".into()))
    );
    // A restart's upsert keeps the password and its record.
    store
        .upsert_user(&User { password_hash: "$argon2id$other".into(), ..user }, NOW + 5)
        .await
        .unwrap();
    let stored = store.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$argon2id$new");
    store.record_config_password("alice", "$argon2id$cfg").await.unwrap();
    assert_eq!(
        store.config_password_hash("alice").await.unwrap(),
        Some(Some("$argon2id$cfg".into()))
    );
}

/// Disabling a user ends their sessions and revokes their grants in one transaction, and no
/// grant is issued to them while disabled; enabling lets new ones be issued, revives nothing.
async fn a_disabled_user_holds_nothing_and_gets_no_new_grant(db: TestDb) {
    let store = &db.store;
    crate::conformance::register(&db, "app").await;
    store.upsert_user(&latchkey_testkit::fixtures::user("alice", "u1"), NOW).await.unwrap();
    store.create_session(&session("s1")).await.unwrap();
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);

    let disabled = store.set_user_disabled("alice", true, NOW + 1).await.unwrap();
    assert!(disabled.disabled);
    assert!(store.user_by_id("u1").await.unwrap().unwrap().disabled);
    assert!(store.session("s1", NOW + 2).await.unwrap().is_none());
    assert!(!live(store, "j1", NOW + 2).await);
    let grant = store.refresh_token("r1", NOW).await.unwrap().unwrap().grant;
    assert_eq!(grant.revoked_at, Some(NOW + 1));
    assert_eq!(store.issue(&issue("g2", "r2", "j2", None)).await.unwrap(), Issued::UserDisabled);
    assert!(store.refresh_token("r2", NOW).await.unwrap().is_none(), "nothing stored");
    // Disabling again keeps the first time.
    store.set_user_disabled("alice", true, NOW + 5).await.unwrap();

    let enabled = store.set_user_disabled("alice", false, NOW + 6).await.unwrap();
    assert!(!enabled.disabled);
    assert!(!live(store, "j1", NOW + 7).await, "what was revoked stays revoked");
    assert_eq!(store.issue(&issue("g3", "r3", "j3", None)).await.unwrap(), Issued::Done);
    assert!(matches!(
        store.set_user_disabled("nobody", true, NOW).await,
        Err(latchkey::store::Error::NotFound)
    ));
}

/// Profile updates change only what they name; imported users are stored all or none; an
/// upgraded password hash replaces only the hash it was computed from.
async fn profiles_imports_and_hash_upgrades(db: TestDb) {
    use latchkey::store::UserUpdate;
    let store = &db.store;
    let alice = latchkey_testkit::fixtures::user("alice", "u1");
    store.upsert_user(&alice, NOW).await.unwrap();
    let update = UserUpdate { name: Some(Some("Alice".into())), ..UserUpdate::default() };
    let updated = store.update_user("alice", &update, NOW + 1).await.unwrap();
    assert_eq!(updated.name.as_deref(), Some("Alice"));
    assert_eq!(updated.email, alice.email, "unnamed fields stay");
    let update =
        UserUpdate { email: Some(None), email_verified: Some(false), ..UserUpdate::default() };
    let updated = store.update_user("alice", &update, NOW + 2).await.unwrap();
    assert_eq!((updated.email, updated.email_verified), (None, false));
    assert_eq!(updated.name.as_deref(), Some("Alice"));
    assert!(matches!(
        store.update_user("nobody", &update, NOW).await,
        Err(latchkey::store::Error::NotFound)
    ));

    let new = |name: &str, id: &str| latchkey::model::User {
        password_hash: "$2b$04$imported".into(),
        disabled: name == "carl",
        ..latchkey_testkit::fixtures::user(name, id)
    };
    let clash = [new("bob", "u2"), new("alice", "u3")];
    assert!(matches!(
        store.insert_users(&clash, NOW).await,
        Err(latchkey::store::Error::Conflict(_))
    ));
    assert!(store.user_by_username("bob").await.unwrap().is_none(), "none of a failed import");
    store.insert_users(&[new("bob", "u2"), new("carl", "u3")], NOW).await.unwrap();
    assert!(store.user_by_username("carl").await.unwrap().unwrap().disabled);

    assert!(store.upgrade_password_hash("u2", "$2b$04$imported", "$argon2id$new").await.unwrap());
    assert!(!store.upgrade_password_hash("u2", "$2b$04$imported", "$argon2id$late").await.unwrap());
    assert_eq!(store.user_by_id("u2").await.unwrap().unwrap().password_hash, "$argon2id$new");
}

/// A user's sessions are listed with their grants and ended with them (or only one client's
/// grants made through them); grants are listed and revoked by user, client or both.
async fn sessions_and_grants_by_user_and_client(db: TestDb) {
    use latchkey::store::GrantFilter;
    let store = &db.store;
    crate::conformance::register(&db, "app").await;
    crate::conformance::register(&db, "other").await;
    store.create_session(&session("s1")).await.unwrap();
    store
        .create_session(&Session { id_hash: "s2".into(), user_id: "u2".into(), ..session("s1") })
        .await
        .unwrap();
    let issue_for = |id: &str, client: &str, user: &str, session: Option<&str>| {
        let mut issue = issue(&format!("g{id}"), &format!("r{id}"), &format!("j{id}"), None);
        issue.grant.client_id = client.into();
        issue.grant.user_id = user.into();
        issue.grant.session_id_hash = session.map(str::to_owned);
        issue.access.as_mut().unwrap().client_id = client.into();
        issue
    };
    for issue in [
        issue_for("1", "app", "u1", Some("s1")),
        issue_for("2", "other", "u1", Some("s1")),
        issue_for("3", "app", "u1", None),
        issue_for("4", "app", "u2", Some("s2")),
    ] {
        assert_eq!(store.issue(&issue).await.unwrap(), Issued::Done);
    }
    let listed = store.user_sessions("u1", NOW, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].session.id_hash.as_str(), listed[0].grants), ("s1", 2));
    assert!(store.user_sessions("u1", NOW + 3600, 10).await.unwrap().is_empty(), "expired");

    let ids = |grants: Vec<latchkey::model::Grant>| {
        let mut ids: Vec<String> = grants.into_iter().map(|g| g.id).collect();
        ids.sort();
        ids
    };
    let user = GrantFilter { user_id: Some("u1".into()), client_id: None };
    let client = GrantFilter { user_id: None, client_id: Some("app".into()) };
    let both = GrantFilter { user_id: Some("u1".into()), client_id: Some("app".into()) };
    assert_eq!(ids(store.grants(&user, NOW, 10).await.unwrap()), ["g1", "g2", "g3"]);
    assert_eq!(ids(store.grants(&client, NOW, 10).await.unwrap()), ["g1", "g3", "g4"]);
    assert_eq!(ids(store.grants(&both, NOW, 10).await.unwrap()), ["g1", "g3"]);
    assert_eq!(store.grants(&both, NOW, 1).await.unwrap().len(), 1, "limited");
    assert!(store.grants(&GrantFilter::default(), NOW, 10).await.unwrap().is_empty());

    // One client's grants through the sessions: the session stays.
    assert_eq!(store.end_user_sessions("u1", Some("other"), NOW + 1).await.unwrap(), (0, 1));
    assert!(store.session("s1", NOW + 2).await.unwrap().is_some());
    assert!(!live(store, "j2", NOW + 2).await && live(store, "j1", NOW + 2).await);
    // All of them: sessions end, and what came through them, offline or not; g3 came
    // through no session.
    assert_eq!(store.end_user_sessions("u1", None, NOW + 3).await.unwrap(), (1, 1));
    assert!(store.session("s1", NOW + 4).await.unwrap().is_none());
    assert!(!live(store, "j1", NOW + 4).await && live(store, "j3", NOW + 4).await);
    assert!(live(store, "j4", NOW + 4).await, "another user's");

    assert_eq!(store.revoke_grants(&GrantFilter::default(), NOW + 5).await.unwrap(), 0);
    assert_eq!(store.revoke_grants(&client, NOW + 5).await.unwrap(), 2);
    assert!(!live(store, "j3", NOW + 6).await && !live(store, "j4", NOW + 6).await);
    assert!(store.grants(&client, NOW + 6, 10).await.unwrap().is_empty());
}

/// Sessions are found by their public id (`sid`), and server secrets are created once.
async fn sessions_by_sid_and_server_secrets(db: TestDb) {
    let store = &db.store;
    let s = session("s1");
    store.create_session(&s).await.unwrap();
    assert_eq!(store.session_by_sid(&s.sid(), NOW).await.unwrap(), Some(s.clone()));
    assert_eq!(store.session_by_sid(&s.sid(), NOW + 3600).await.unwrap(), None, "expired");
    assert_eq!(store.session_by_sid("s1", NOW).await.unwrap(), None, "the sid is not the key");
    let first = store.server_secret("form", b"one", false).await.unwrap();
    assert_eq!(first, (b"one".to_vec(), false));
    let second = store.server_secret("form", b"two", true).await.unwrap();
    assert_eq!(second, first, "every node gets the one stored first");
    store.replace_server_secret("form", b"sealed", true).await.unwrap();
    assert_eq!(store.server_secret("form", b"x", false).await.unwrap(), (b"sealed".to_vec(), true));
    store.save_consent("u1", "app", &scopes("openid"), NOW).await.unwrap();
    store.forget_consent("u1", "app").await.unwrap();
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
}

/// Removing a user takes their sessions, consents, codes and grants with them.
async fn removing_a_user_ends_their_sessions_grants_and_consents(db: TestDb) {
    let store = &db.store;
    crate::conformance::register(&db, "app").await;
    let user = latchkey::model::User {
        id: "u1".into(),
        username: "alice".into(),
        password_hash: "$argon2id$x".into(),
        email: None,
        name: None,
        email_verified: true,
        disabled: false,
    };
    store.upsert_user(&user, NOW).await.unwrap();
    store.create_session(&session("s1")).await.unwrap();
    store.save_consent("u1", "app", &scopes("openid"), NOW).await.unwrap();
    store.insert_code(&code("c1")).await.unwrap();
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);

    store.remove_user("alice", NOW + 1).await.unwrap();

    assert!(store.session("s1", NOW + 2).await.unwrap().is_none());
    assert_eq!(store.consent("u1", "app").await.unwrap(), None);
    assert_eq!(store.code("c1", NOW + 2).await.unwrap(), CodeLookup::Invalid);
    let grant = store.refresh_token("r1", NOW).await.unwrap().unwrap().grant;
    assert_eq!(grant.revoked_at, Some(NOW + 1));
    assert!(!live(store, "j1", NOW + 2).await);
    assert!(store.jwt_status("j-other", "g1", NOW + 2).await.unwrap().0, "its JWTs are dead");
}

/// A refresh token is read with its grant and whether the grant's session lives (one query,
/// where the refresh grant once read the session separately): live while the session is,
/// not once it expires or ends; an offline grant holds either way.
async fn a_refresh_token_is_read_with_its_sessions_liveness(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    store.create_session(&session("s1")).await.unwrap();
    let mut bound = issue("g1", "r1", "j1", None);
    bound.grant.scopes = scopes("openid");
    assert_eq!(store.issue(&bound).await.unwrap(), Issued::Done);
    assert_eq!(store.issue(&issue("g2", "r2", "j2", None)).await.unwrap(), Issued::Done);
    let read = |token: &'static str, now: i64| async move {
        store.refresh_token(token, now).await.unwrap().unwrap()
    };
    let fresh = read("r1", NOW).await;
    assert!(fresh.session_live && fresh.session_holds(), "{fresh:?}");
    let expired = read("r1", NOW + 3600).await;
    assert!(!expired.session_live && !expired.session_holds(), "the session expired");
    let offline = read("r2", NOW + 3600).await;
    assert!(!offline.session_live && offline.session_holds(), "offline_access outlives it");
    store.end_session("s1", NOW + 1).await.unwrap();
    let ended = read("r1", NOW + 2).await;
    assert!(!ended.session_live && !ended.session_holds(), "the session ended");
}

crate::on_both_engines!(
    a_refresh_token_is_read_with_its_sessions_liveness,
    sessions_expire_and_logout_revokes_their_grants,
    consent_is_remembered_per_user_and_client,
    a_session_is_read_with_its_users_consent_for_one_client,
    a_code_is_spent_by_the_issue_that_stores_its_grant,
    a_second_issue_with_one_code_is_a_replay,
    expired_codes_are_invalid,
    concurrent_exchanges_of_one_code_store_one_grant,
    a_failing_write_among_concurrent_ones_undoes_only_itself,
    strict_rotation_revokes_the_family_on_reuse,
    a_declined_rotation_changes_nothing,
    grace_window_returns_the_same_successor_then_revokes,
    expired_refresh_tokens_do_not_rotate,
    concurrent_strict_rotations_have_one_winner,
    removing_a_client_ends_its_codes_grants_tokens_and_consents,
    grants_issued_during_a_client_removal_do_not_survive_it,
    a_revocation_racing_rotations_leaves_nothing_live,
    removing_a_user_ends_their_sessions_grants_and_consents,
    a_password_change_ends_sessions_and_grants_unless_kept,
    a_disabled_user_holds_nothing_and_gets_no_new_grant,
    profiles_imports_and_hash_upgrades,
    sessions_and_grants_by_user_and_client,
    sessions_by_sid_and_server_secrets,
);
