//! The operations against a real SQLite store and a clock the test moves: no HTTP, no sleeps.

use std::sync::Arc;

use super::{Authority, Failure, HashLimits, Login, Settings};
use crate::clients::lifecycle;
use crate::clients::registration::{self, ClientDraft};
use crate::clock::{Clock, ManualClock};
use crate::forms::FormKey;
use crate::keys::{KeyManager, Policy};
use crate::model::{
    AuthMethod, ClientRecord, ClientSource, GrantType, Resource, TokenFormat, User,
};
use crate::oauth::client_auth::{Credential, Presented};
use crate::oauth::introspect::Introspection;
use crate::oauth::token::{TokenRequest, TokenResponse};
use crate::oauth::{ErrorCode, Params};
use crate::oauth::{authorize, pkce};
use crate::oidc::logout::LogoutRequest;
use crate::{password, store};

const ISSUER: &str = "https://auth.example.com";
const API: &str = "https://photos.example.com";

/// An authority on a fresh SQLite file, its clock stopped at a fixed time.
struct Fixture {
    authority: Authority,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let store = store::connect(&url, store::Options::default()).await.unwrap();
    store.migrate().await.unwrap();
    // In the past: every expiry check must follow this clock, none the system's.
    let clock = Arc::new(ManualClock::at(1_600_000_000));
    let policy = Policy { prepublication: 3600, retention: 7200, rotation_period: 90 * 86400 };
    let keys = KeyManager::start(store.clone(), None, policy, clock.now()).await.unwrap();
    let forms = FormKey::load(store.as_ref(), None).await.unwrap();
    let resource = Resource {
        identifier: API.into(),
        scopes: vec!["read:photos".into()],
        client_id: Some("photo-api".into()),
        descriptions: Default::default(),
    };
    let settings = Settings {
        issuer: ISSUER.into(),
        access_token_ttl: 300,
        refresh_token_ttl: 86_400,
        code_ttl: 60,
        id_token_ttl: 300,
        session_ttl: 3_600,
        refresh_grace_secs: 0,
        resources: vec![resource],
        access_token_format: TokenFormat::Jwt,
        assertion_audiences: vec![ISSUER.into()],
    };
    let limits = HashLimits { users: 1, queue: 4 };
    let authority =
        Authority::new(store, Arc::new(keys), settings, forms, clock.clone(), limits).unwrap();
    Fixture { authority, clock, _dir: dir }
}

/// Registers a confidential client with a generated secret, through the registration rules.
async fn client(authority: &Authority, id: &str, grants: &[GrantType], scopes: &[&str]) {
    let draft = ClientDraft {
        client_id: id.into(),
        has_secret: true,
        grant_types: Some(grants.to_vec()),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..ClientDraft::default()
    };
    let client = registration::validate(draft, &authority.settings.resources).unwrap();
    let secret_hash = Some(password::hash_generated_secret(&format!("{id}-secret")));
    let record = ClientRecord::new(client, secret_hash, ClientSource::Cli);
    authority.store.upsert_client(&record, authority.now()).await.unwrap();
}

async fn token(authority: &Authority, id: &str, form: &str) -> Result<TokenResponse, Failure> {
    let record = authority.client(id).await.unwrap().unwrap();
    let params = Params::from_form(form).unwrap();
    let request = TokenRequest::parse(&record.client, &params)?;
    authority.token(&record, &request, None, authority.now()).await
}

/// alice, with a password, for the password grant.
async fn alice(authority: &Authority) {
    let hash = authority.hasher.hash("alice-password".into()).await.unwrap();
    let user = User {
        id: "alice-id".into(),
        username: "alice".into(),
        password_hash: hash,
        email: None,
        name: None,
        email_verified: true,
        disabled: false,
    };
    authority.store.upsert_user(&user, authority.now()).await.unwrap();
}

async fn introspect(authority: &Authority, caller: &str, token: &str) -> Introspection {
    let caller = authority.client(caller).await.unwrap().unwrap();
    let params = Params::from_form(&format!("token={token}")).unwrap();
    authority.introspect(&caller.client, &params, authority.now()).await.unwrap()
}

fn code_of(result: Result<TokenResponse, Failure>) -> ErrorCode {
    match result {
        Err(Failure::OAuth(error)) => error.code,
        other => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_credentials_token_lives_exactly_its_lifetime() {
    let Fixture { authority, clock, _dir } = fixture().await;
    client(&authority, "machine", &[GrantType::ClientCredentials], &["read:photos"]).await;
    let issued = token(&authority, "machine", "grant_type=client_credentials").await.unwrap();
    assert_eq!((issued.expires_in, issued.scope.as_str()), (300, "read:photos"));
    let live = authority.verify_access_token(&issued.access_token, clock.now()).await.unwrap();
    assert_eq!((live.sub.as_str(), live.aud.to_vec()), ("machine", vec![API.to_owned()]));

    clock.advance(299);
    assert!(authority.verify_access_token(&issued.access_token, clock.now()).await.is_ok());
    clock.advance(1);
    let expired = authority.verify_access_token(&issued.access_token, clock.now()).await;
    assert!(matches!(expired, Err(Failure::OAuth(e)) if e.code == ErrorCode::InvalidToken));
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_its_whole_family() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let grants = [GrantType::Password, GrantType::RefreshToken];
    client(&authority, "first-party", &grants, &["read:photos"]).await;
    alice(&authority).await;

    let login = "grant_type=password&username=alice&password=alice-password";
    let first = token(&authority, "first-party", login).await.unwrap();
    let old = first.refresh_token.unwrap();
    clock.advance(10);
    let refresh = |token: &str| format!("grant_type=refresh_token&refresh_token={token}");
    let second = token(&authority, "first-party", &refresh(&old)).await.unwrap();
    let new = second.refresh_token.unwrap();
    assert_ne!(new, old, "rotated");

    // The rotated token again: a reuse (RFC 9700 §4.14.2). Refused, and the successor too.
    clock.advance(10);
    assert_eq!(
        code_of(token(&authority, "first-party", &refresh(&old)).await),
        ErrorCode::InvalidGrant
    );
    assert_eq!(
        code_of(token(&authority, "first-party", &refresh(&new)).await),
        ErrorCode::InvalidGrant
    );
    // And the access token of the family is revoked with it.
    let revoked = authority.verify_access_token(&second.access_token, clock.now()).await;
    assert!(revoked.is_err(), "the family's access token died with it");
}

#[tokio::test]
async fn a_grant_the_client_is_not_registered_for_is_unauthorized_client() {
    let Fixture { authority, _dir, .. } = fixture().await;
    client(&authority, "machine", &[GrantType::ClientCredentials], &["read:photos"]).await;
    let result = token(&authority, "machine", "grant_type=password&username=a&password=b").await;
    assert_eq!(code_of(result), ErrorCode::UnauthorizedClient);
}

#[tokio::test]
async fn introspection_answers_the_token_s_client_and_its_api_and_no_one_else() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let cc = [GrantType::ClientCredentials];
    client(&authority, "machine", &cc, &["read:photos"]).await;
    client(&authority, "photo-api", &cc, &[]).await;
    client(&authority, "other", &cc, &["read:photos"]).await;
    let issued = token(&authority, "machine", "grant_type=client_credentials").await.unwrap();
    let token = issued.access_token;
    for caller in ["machine", "photo-api"] {
        let seen = introspect(&authority, caller, &token).await;
        assert!(seen.active, "{caller} may see it");
        assert_eq!(
            (seen.client_id.as_deref(), seen.scope.as_deref()),
            (Some("machine"), Some("read:photos"))
        );
    }
    // RFC 7662 §4: to anyone else a live token is just inactive.
    assert_eq!(introspect(&authority, "other", &token).await, Introspection::inactive());
    clock.advance(300);
    assert_eq!(introspect(&authority, "photo-api", &token).await, Introspection::inactive());
}

#[tokio::test]
async fn an_id_token_hint_names_its_user_after_expiry_and_an_access_token_is_no_hint() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let grants = [GrantType::Password];
    client(&authority, "first-party", &grants, &["openid", "read:photos"]).await;
    alice(&authority).await;
    let login = "grant_type=password&username=alice&password=alice-password&scope=openid";
    let issued = token(&authority, "first-party", login).await.unwrap();
    let id_token = issued.id_token.expect("openid was granted");

    let hint = authority.verify_id_token_hint(&id_token).expect("our own id_token");
    assert_eq!((hint.sub.as_str(), hint.aud.as_str()), ("alice-id", "first-party"));
    assert!(hint.is_live(clock.now()));
    // Past its lifetime it still says who asks, but proves no recent sign-in.
    clock.advance(300);
    let expired = authority.verify_id_token_hint(&id_token).expect("still ours");
    assert!(!expired.is_live(clock.now()));
    // An access token is not an id_token, whatever key signed it.
    assert!(authority.verify_id_token_hint(&issued.access_token).is_none());
}

/// Registers `signed`, a `private_key_jwt` client for client credentials with one P-256 key,
/// and returns that key.
async fn signed_client(authority: &Authority) -> jsonwebtoken::EncodingKey {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    // The uncompressed point: 0x04, then x and y.
    let point = pair.public_key().as_ref().to_vec();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = serde_json::from_value(serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": b64(&point[1..33]), "y": b64(&point[33..]),
    }]}))
    .unwrap();
    let draft = ClientDraft {
        client_id: "signed".into(),
        token_endpoint_auth_method: Some(AuthMethod::PrivateKeyJwt),
        jwks: Some(jwks),
        grant_types: Some(vec![GrantType::ClientCredentials]),
        scopes: vec!["read:photos".into()],
        ..ClientDraft::default()
    };
    let client = registration::validate(draft, &authority.settings.resources).unwrap();
    let record = ClientRecord::new(client, None, ClientSource::Cli);
    authority.store.upsert_client(&record, authority.now()).await.unwrap();
    jsonwebtoken::EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref())
}

/// Authenticates `signed` with an assertion signed by `key` that carries `claims`.
async fn with_assertion(
    authority: &Authority,
    key: &jsonwebtoken::EncodingKey,
    claims: serde_json::Value,
) -> Result<(), ErrorCode> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let assertion = jsonwebtoken::encode(&header, &claims, key).unwrap();
    let presented =
        Presented { client_id: "signed".into(), credential: Credential::Assertion(assertion) };
    match authority.authenticate_client(&presented, None, authority.now()).await {
        Ok(record) => {
            assert_eq!(record.client.client_id, "signed");
            Ok(())
        }
        Err(Failure::OAuth(error)) => Err(error.code),
        Err(other) => panic!("expected an OAuth error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_assertion_counts_once_and_expires_on_the_authority_s_clock() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let key = signed_client(&authority).await;
    let claims = |jti: &str, aud: &str, exp: i64| serde_json::json!({"iss": "signed", "sub": "signed", "aud": aud, "jti": jti, "exp": exp});
    // Valid on this clock, which is years behind the system's: no check may use the latter.
    let exp = clock.now() + 60;
    assert_eq!(with_assertion(&authority, &key, claims("j1", ISSUER, exp)).await, Ok(()));
    // RFC 7523 §3 item 7: a jti is used once.
    let replay = with_assertion(&authority, &key, claims("j1", ISSUER, exp)).await;
    assert_eq!(replay, Err(ErrorCode::InvalidClient));
    // The audience is the issuer, not the token endpoint (draft-ietf-oauth-rfc7523bis).
    let endpoint = format!("{ISSUER}/oauth/token");
    let wrong_audience = with_assertion(&authority, &key, claims("j2", &endpoint, exp)).await;
    assert_eq!(wrong_audience, Err(ErrorCode::InvalidClient));
    // Still valid at its last second, refused once the authority's clock passes exp.
    clock.advance(59);
    assert_eq!(with_assertion(&authority, &key, claims("j3", ISSUER, exp)).await, Ok(()));
    clock.advance(1);
    let expired = with_assertion(&authority, &key, claims("j4", ISSUER, exp)).await;
    assert_eq!(expired, Err(ErrorCode::InvalidClient));
}

#[tokio::test]
async fn logout_ends_the_session_its_refresh_tokens_and_its_hint() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let draft = ClientDraft {
        client_id: "web".into(),
        has_secret: true,
        redirect_uris: vec!["https://app.example.com/cb".into()],
        post_logout_redirect_uris: vec!["https://app.example.com/".into()],
        grant_types: Some(vec![GrantType::AuthorizationCode, GrantType::RefreshToken]),
        scopes: vec!["openid".into()],
        ..ClientDraft::default()
    };
    let web = registration::validate(draft, &authority.settings.resources).unwrap();
    let record = ClientRecord::new(web.clone(), None, ClientSource::Cli);
    authority.store.upsert_client(&record, clock.now()).await.unwrap();
    alice(&authority).await;
    let Login::Success { session, cookie } =
        authority.login("alice", "alice-password", None, clock.now()).await.unwrap()
    else {
        panic!("alice's password is right");
    };

    // A code through the session, exchanged for tokens bound to it.
    let verifier = "a-verifier-of-at-least-forty-three-characters-long";
    let redirect = "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb";
    let params = Params::from_form(&format!(
        "response_type=code&client_id=web&{redirect}&scope=openid&code_challenge={}&code_challenge_method=S256",
        pkce::s256(verifier)
    ))
    .unwrap();
    let request = authorize::validate(&params, Some(web), &authority.settings.resources).unwrap();
    let code = authority.issue_code(&request, &session, clock.now()).await.unwrap();
    let exchange =
        format!("grant_type=authorization_code&code={code}&{redirect}&code_verifier={verifier}");
    let issued = token(&authority, "web", &exchange).await.unwrap();
    let refresh =
        format!("grant_type=refresh_token&refresh_token={}", issued.refresh_token.unwrap());
    let id_token = issued.id_token.unwrap();
    let hint = authority.verify_id_token_hint(&id_token).unwrap();
    assert!(authority.hinted_session(&hint, clock.now()).await.unwrap().is_some());

    // The request's rules: the hint's client only, registered destinations only.
    let ask = |query: &str| Params::from_form(query).unwrap();
    let message = |result: Result<LogoutRequest, Result<String, Failure>>| match result {
        Err(Ok(message)) => message,
        other => panic!("expected a message for the user, got {other:?}"),
    };
    let foreign = ask(&format!("id_token_hint={id_token}&client_id=other"));
    let other = authority.logout_request(&foreign).await;
    assert!(message(other).contains("does not match"));
    let unregistered = "client_id=web&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F";
    assert!(message(authority.logout_request(&ask(unregistered)).await).contains("not registered"));
    let registered = "client_id=web&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F";
    let request = authority.logout_request(&ask(registered)).await.unwrap();
    assert_eq!(request.post_logout_redirect_uri.as_deref(), Some("https://app.example.com/"));

    authority.logout(&session.id_hash, clock.now()).await.unwrap();
    assert!(authority.session(&cookie, clock.now()).await.unwrap().is_none(), "session ended");
    assert!(authority.hinted_session(&hint, clock.now()).await.unwrap().is_none());
    // A refresh token bound to the session dies with it.
    assert_eq!(code_of(token(&authority, "web", &refresh).await), ErrorCode::InvalidGrant);
}

#[tokio::test]
async fn a_verified_jwt_is_remembered_but_revocation_is_checked_every_time() {
    let Fixture { authority, clock, _dir } = fixture().await;
    let cc = [GrantType::ClientCredentials];
    client(&authority, "machine", &cc, &["read:photos"]).await;
    client(&authority, "photo-api", &cc, &[]).await;
    let issued = token(&authority, "machine", "grant_type=client_credentials").await.unwrap();
    let jwt = issued.access_token;

    // Only a token whose signature verified is remembered: garbage and a forged token are not.
    let (head, rest) = jwt.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let forged_claims = format!("{head}.eyJzdWIiOiJtYWxsb3J5In0.{signature}");
    for bad in ["not-a-token", "a.b.c", forged_claims.as_str()] {
        assert!(authority.verify_jwt(bad, clock.now()).is_err(), "{bad}");
    }
    assert!(authority.verified_tokens.is_empty());
    assert!(introspect(&authority, "photo-api", &jwt).await.active);
    assert_eq!(authority.verified_tokens.len(), 1, "remembered after it verified");
    assert!(introspect(&authority, "photo-api", &jwt).await.active, "answered from memory");

    // Revoked: inactive at once, although its signature is remembered.
    let machine = authority.client("machine").await.unwrap().unwrap();
    let revoke = Params::from_form(&format!("token={jwt}")).unwrap();
    authority.revoke(&machine.client, &revoke, clock.now()).await.unwrap();
    assert_eq!(introspect(&authority, "photo-api", &jwt).await, Introspection::inactive());

    // A remembered token still dies at its exp.
    let other = token(&authority, "machine", "grant_type=client_credentials").await.unwrap();
    assert!(introspect(&authority, "photo-api", &other.access_token).await.active);
    clock.advance(300);
    let expired = authority.verify_jwt(&other.access_token, clock.now());
    assert!(matches!(expired, Err(crate::oauth::introspect::Dead::Expired)), "{expired:?}");
}

async fn authenticates(authority: &Authority, id: &str, secret: &str) -> bool {
    let presented =
        Presented { client_id: id.into(), credential: Credential::Basic(secret.into()) };
    authority.authenticate_client(&presented, None, authority.now()).await.is_ok()
}

#[tokio::test]
async fn a_rotated_out_secret_works_until_its_overlap_ends_on_the_authority_s_clock() {
    let Fixture { authority, clock, _dir } = fixture().await;
    client(&authority, "batch", &[GrantType::ClientCredentials], &["read:photos"]).await;
    let store = authority.store.as_ref();
    let rotated = lifecycle::rotate_secret(store, "batch", 600, clock.now()).await.unwrap();
    let second = rotated.secret.unwrap();
    assert!(authenticates(&authority, "batch", "batch-secret").await, "old, in the overlap");
    assert!(authenticates(&authority, "batch", &second).await, "new");
    assert!(!authenticates(&authority, "batch", "wrong").await);
    clock.advance(599);
    assert!(authenticates(&authority, "batch", "batch-secret").await, "last second of overlap");
    clock.advance(1);
    assert!(!authenticates(&authority, "batch", "batch-secret").await, "overlap over");
    assert!(authenticates(&authority, "batch", &second).await);

    // A rotation without overlap ends the current secret and one still in its overlap at once.
    let fresh = fixture().await;
    let (authority, clock) = (fresh.authority, fresh.clock);
    client(&authority, "batch", &[GrantType::ClientCredentials], &["read:photos"]).await;
    let store = authority.store.as_ref();
    let second = lifecycle::rotate_secret(store, "batch", 600, clock.now()).await.unwrap();
    let third = lifecycle::rotate_secret(store, "batch", 0, clock.now()).await.unwrap();
    assert!(third.record.previous_secret.is_none());
    assert!(!authenticates(&authority, "batch", "batch-secret").await);
    assert!(!authenticates(&authority, "batch", &second.secret.unwrap()).await);
    assert!(authenticates(&authority, "batch", &third.secret.unwrap()).await);
}

#[tokio::test]
async fn an_update_from_a_stale_read_fails_instead_of_undoing_another() {
    let Fixture { authority, clock, _dir } = fixture().await;
    client(&authority, "batch", &[GrantType::ClientCredentials], &["read:photos"]).await;
    let store = authority.store.as_ref();
    let stale = store.client("batch").await.unwrap().unwrap();
    let changes =
        lifecycle::ClientChanges { client_name: Some(Some("Batch".into())), ..Default::default() };
    let resources = &authority.settings.resources;
    lifecycle::update(store, resources, "batch", changes, clock.now()).await.unwrap();
    let overwrite = ClientRecord { secret_hash: None, ..stale };
    let error = store.replace_client(&overwrite, clock.now()).await.unwrap_err();
    assert!(matches!(error, store::Error::Conflict(_)), "{error:?}");
    let now = store.client("batch").await.unwrap().unwrap();
    assert_eq!(now.client.client_name.as_deref(), Some("Batch"));
    assert!(now.secret_hash.is_some());
    let mut gone = now;
    gone.client.client_id = "nobody".into();
    let error = store.replace_client(&gone, clock.now()).await.unwrap_err();
    assert!(matches!(error, store::Error::NotFound), "{error:?}");
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in_with_the_right_password() {
    let Fixture { authority, clock, _dir } = fixture().await;
    alice(&authority).await;
    authority.store.set_user_disabled("alice", true, clock.now()).await.unwrap();
    let login = authority.login("alice", "alice-password", None, clock.now()).await.unwrap();
    assert!(matches!(login, Login::Disabled));
    let wrong = authority.login("alice", "wrong", None, clock.now()).await.unwrap();
    assert!(matches!(wrong, Login::Failed), "a wrong password says nothing of the account");
    authority.store.set_user_disabled("alice", false, clock.now()).await.unwrap();
    clock.advance(60);
    let login = authority.login("alice", "alice-password", None, clock.now()).await.unwrap();
    assert!(matches!(login, Login::Success { .. }));
}
