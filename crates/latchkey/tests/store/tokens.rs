//! Opaque access tokens, revocation, client-assertion ids and the purge of expired records.

use latchkey::model::{AccessTokenRecord, Issued, OpaqueAccess, RefreshRevocation};

use crate::flow::{NOW, access, code, grant, issue, live, refresh, session};
use crate::{TestDb, scopes};

fn opaque(jti: &str, hash: &str) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: jti.into(),
        grant_id: None,
        client_id: "machine".into(),
        expires_at: NOW + 900,
        opaque: Some(OpaqueAccess {
            token_hash: hash.into(),
            subject: "machine".into(),
            scopes: scopes("read:photos"),
            audience: vec!["https://photos.example.com".into()],
            issued_at: NOW,
            auth_time: None,
        }),
    }
}

async fn opaque_tokens_are_found_by_hash_until_they_expire(db: TestDb) {
    let store = &db.store;
    store.insert_access_token(&opaque("o1", "hash-1")).await.unwrap();
    let found = store.access_token_by_hash("hash-1", NOW).await.unwrap().unwrap();
    assert_eq!(found.record, opaque("o1", "hash-1"));
    assert!(!found.revoked);
    assert_eq!(found.username, None);
    assert!(store.access_token_by_hash("hash-2", NOW).await.unwrap().is_none());
    assert!(store.access_token_by_hash("hash-1", NOW + 900).await.unwrap().is_none(), "expired");
    store.revoke_access_token(&opaque("o1", "hash-1"), NOW + 1).await.unwrap();
    assert!(store.access_token_by_hash("hash-1", NOW + 1).await.unwrap().unwrap().revoked);
}

async fn revoking_an_unrecorded_jwt_records_it_revoked(db: TestDb) {
    let store = &db.store;
    let jwt = AccessTokenRecord { grant_id: None, ..access("cc-jti", "unused") };
    assert!(store.access_token_by_jti("cc-jti", NOW).await.unwrap().is_none());
    store.revoke_access_token(&jwt, NOW).await.unwrap();
    store.revoke_access_token(&jwt, NOW + 5).await.unwrap();
    let stored = store.access_token_by_jti("cc-jti", NOW).await.unwrap().unwrap();
    assert!(stored.revoked);
}

async fn revoking_a_refresh_token_checks_its_client_and_revokes_its_grant(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    assert_eq!(store.issue(&issue("g1", "r1", "j1", None)).await.unwrap(), Issued::Done);
    let outcome = store.revoke_refresh_token("r1", "someone-else", NOW).await.unwrap();
    assert_eq!(outcome, RefreshRevocation::OtherClient);
    assert!(live(store, "j1", NOW).await, "another client changed nothing");
    assert_eq!(
        store.revoke_refresh_token("nope", "app", NOW).await.unwrap(),
        RefreshRevocation::Unknown
    );
    assert_eq!(
        store.revoke_refresh_token("r1", "app", NOW).await.unwrap(),
        RefreshRevocation::Revoked
    );
    assert!(!live(store, "j1", NOW).await, "the family's access token went with it");
    let grant = store.refresh_token("r1", NOW).await.unwrap().unwrap().grant;
    assert!(grant.revoked_at.is_some());
}

async fn a_users_jwt_lives_with_its_grant_unless_revoked_itself(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    let mut first = issue("g1", "r1", "j1", None);
    first.access = None; // a JWT: nothing recorded at issuance
    first.grant.scopes = scopes("openid"); // session-bound: logout revokes it
    assert_eq!(store.issue(&first).await.unwrap(), Issued::Done);
    assert_eq!(store.jwt_status("j1", "g1", NOW).await.unwrap(), (false, None));
    assert!(store.jwt_status("j1", "unknown-grant", NOW).await.unwrap().0, "no such grant");
    assert!(store.jwt_status("j1", "g1", NOW + 86_400).await.unwrap().0, "grant expired");
    // Revoking the token itself records it.
    let jwt = AccessTokenRecord { grant_id: Some("g1".into()), ..access("j1", "g1") };
    store.revoke_access_token(&jwt, NOW).await.unwrap();
    assert!(store.jwt_status("j1", "g1", NOW).await.unwrap().0);
    assert!(
        !store.jwt_status("j2", "g1", NOW).await.unwrap().0,
        "another token of the grant lives"
    );
    // Revoking the grant (logout here) takes every token of it.
    store.end_session("s1", NOW).await.unwrap();
    assert!(store.jwt_status("j2", "g1", NOW).await.unwrap().0);
}

async fn a_client_assertion_id_is_used_once_per_client(db: TestDb) {
    let store = &db.store;
    assert!(store.use_client_assertion("signed", "jti-1", NOW + 60).await.unwrap());
    assert!(!store.use_client_assertion("signed", "jti-1", NOW + 60).await.unwrap());
    assert!(store.use_client_assertion("other", "jti-1", NOW + 60).await.unwrap());
}

async fn the_purge_removes_what_expired_and_nothing_else(db: TestDb) {
    crate::conformance::register(&db, "app").await;
    let store = &db.store;
    // Expired: a code, a session, a whole grant with its tokens, a revocation record, an
    // assertion id.
    store.insert_code(&code("old-code")).await.unwrap();
    store.create_session(&session("old-session")).await.unwrap();
    let mut old = issue("old-grant", "old-refresh", "old-jti", None);
    old.grant.expires_at = NOW + 10;
    // The refresh token itself would live on: it goes with its grant.
    old.refresh = Some(latchkey::model::RefreshToken {
        expires_at: NOW + 200_000,
        ..refresh("old-refresh", "old-grant")
    });
    if let Some(access) = old.access.as_mut() {
        access.expires_at = NOW + 10;
    }
    assert_eq!(store.issue(&old).await.unwrap(), Issued::Done);
    store.use_client_assertion("signed", "old-assertion", NOW + 10).await.unwrap();
    // Live at the time of the purge.
    let later = NOW + 100_000;
    let mut young = issue("young-grant", "young-refresh", "young-jti", None);
    young.grant = latchkey::model::Grant { expires_at: later + 86_400, ..grant("young-grant") };
    young.refresh = Some(latchkey::model::RefreshToken {
        expires_at: later + 86_400,
        ..refresh("young-refresh", "young-grant")
    });
    if let Some(access) = young.access.as_mut() {
        access.expires_at = later + 900;
    }
    assert_eq!(store.issue(&young).await.unwrap(), Issued::Done);
    store.use_client_assertion("signed", "young-assertion", later + 60).await.unwrap();
    let mut live_session = session("young-session");
    live_session.expires_at = later + 3600;
    store.create_session(&live_session).await.unwrap();

    let purged = store.purge(later).await.unwrap();
    assert_eq!(
        (
            purged.codes,
            purged.sessions,
            purged.grants,
            purged.refresh_tokens,
            purged.access_tokens,
            purged.client_assertions
        ),
        (1, 1, 1, 1, 1, 1),
        "{purged:?}"
    );
    assert!(store.refresh_token("old-refresh", NOW).await.unwrap().is_none());
    assert!(store.refresh_token("young-refresh", NOW).await.unwrap().is_some());
    assert!(live(store, "young-jti", later).await);
    assert!(store.session("young-session", later).await.unwrap().is_some());
    assert!(
        !store.use_client_assertion("signed", "young-assertion", later + 60).await.unwrap(),
        "kept"
    );
    assert!(
        store.use_client_assertion("signed", "old-assertion", later + 60).await.unwrap(),
        "forgotten"
    );
    assert_eq!(store.purge(later).await.unwrap().total(), 0, "nothing left to purge");
}

/// Every purge statement finds its rows through an index: none scans a whole table, however
/// large it grows (the refresh-token statement once did, and held the SQLite writer for 30 s
/// of every minute on a large database).
async fn every_purge_statement_finds_its_rows_through_an_index(db: TestDb) {
    let plans = db.store.purge_plans().await.unwrap();
    assert!(plans.len() >= 9, "{plans:?}");
    for plan in plans {
        let scans: Vec<&str> = plan
            .plan
            .lines()
            .map(str::trim_start)
            .filter(|step| step.starts_with("SCAN ") || step.contains("Seq Scan"))
            .collect();
        assert!(scans.is_empty(), "{}\n{}", plan.statement, plan.plan);
    }
}

/// A backlog larger than a batch is worked off in several batches, all in one purge.
async fn the_purge_works_off_a_backlog_in_batches(db: TestDb) {
    for n in 0..600 {
        db.store.create_session(&session(&format!("expired-{n}"))).await.unwrap();
    }
    let purged = db.store.purge(NOW + 100_000).await.unwrap();
    assert_eq!(purged.sessions, 600);
    assert_eq!(db.store.purge(NOW + 100_000).await.unwrap().total(), 0);
}

crate::on_both_engines!(
    every_purge_statement_finds_its_rows_through_an_index,
    the_purge_works_off_a_backlog_in_batches,
    opaque_tokens_are_found_by_hash_until_they_expire,
    revoking_an_unrecorded_jwt_records_it_revoked,
    revoking_a_refresh_token_checks_its_client_and_revokes_its_grant,
    a_client_assertion_id_is_used_once_per_client,
    a_users_jwt_lives_with_its_grant_unless_revoked_itself,
    the_purge_removes_what_expired_and_nothing_else,
);
