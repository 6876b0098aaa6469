//! The whole flow driven by the `openidconnect` crate, a strict third-party OIDC client with
//! its own JOSE implementation: discovery, PKCE, id_token validation with nonce and at_hash,
//! userinfo, refresh.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};

use crate::TestDb;
use crate::code_flow::{SPA_REDIRECT, browser, decide, hidden, location_params, server, sign_in};

async fn openidconnect_crate_completes_the_flow(db: TestDb) {
    let server = server(&db, "").await;
    for (client_id, alg) in [
        ("spa", CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256),
        ("spa-es256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("spa-eddsa", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        flow(&server, client_id, alg).await;
    }
}

async fn flow(server: &crate::TestServer, client_id: &str, alg: CoreJwsSigningAlgorithm) {
    let provider = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.base.clone()).unwrap(),
        &crate::oauth_http,
    )
    .await
    .expect("discovery");
    let client =
        CoreClient::from_provider_metadata(provider, ClientId::new(client_id.into()), None)
            .set_redirect_uri(RedirectUrl::new(SPA_REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let page = browser.get(url.as_str()).send().await.unwrap().text().await.unwrap();
    let consent = sign_in(&browser, server, &page, "alice-password").await.text().await.unwrap();
    assert!(!hidden(&consent, "csrf_token").is_empty());
    let (_, params) = location_params(&decide(&browser, server, &consent, "allow").await);
    assert_eq!(&params["state"], csrf.secret());
    assert_eq!(params["iss"], server.base);

    let tokens = client
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&crate::oauth_http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier().set_allowed_algs(vec![alg.clone()]);
    assert_eq!(id_token.signing_alg().unwrap(), &alg);
    let claims = id_token.claims(&verifier, &nonce).expect("id_token validates");
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert!(claims.auth_time().is_some());

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&crate::oauth_http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    let refreshed = client
        .exchange_refresh_token(tokens.refresh_token().expect("refresh token"))
        .unwrap()
        .request_async(&crate::oauth_http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    // OIDC Core §12.2: the refresh's id_token validates, for the same sign-in, without a nonce
    // (the crate's nonce check is skipped for it, as for any refresh).
    let fresh = refreshed.id_token().expect("a fresh id_token on refresh");
    let fresh_claims = fresh
        .claims(&verifier, |nonce: Option<&openidconnect::Nonce>| match nonce {
            None => Ok(()),
            Some(_) => Err("a refresh id_token carries no nonce".to_owned()),
        })
        .expect("refresh id_token validates");
    assert_eq!(fresh_claims.subject(), claims.subject());
    assert_eq!(fresh_claims.auth_time(), claims.auth_time());
    assert_eq!(fresh_claims.audiences(), claims.audiences());
    assert_eq!(fresh_claims.email().map(|e| e.as_str()), Some("alice@example.com"));
}

crate::on_both_engines!(openidconnect_crate_completes_the_flow, pyoidc_completes_the_flow);

/// pyoidc (the Python `oic` package, a certified RP library) runs discovery, the code flow with
/// PKCE and consent, checks the id_token, makes its default userinfo call (POST with the token
/// in the body) and refreshes.
async fn pyoidc_completes_the_flow(db: TestDb) {
    let python = std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let available = std::process::Command::new(&python)
        .args(["-c", "import oic"])
        .output()
        .is_ok_and(|output| output.status.success());
    if !latchkey_testkit::tool_available(available, "pyoidc", "pip install oic") {
        return;
    }
    let extra = r#"
[[clients]]
client_id = "pyoidc"
client_secret = "pyoidc-secret-pyoidc-secret-pyoidc-secret"
redirect_uris = ["http://127.0.0.1:9000/callback"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access"]
"#;
    let server = crate::code_flow::server(&db, extra).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/pyoidc_rp.py");
    let issuer = server.base.clone();
    // A blocking child process: off the async workers, so the server keeps serving it.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args([
                script,
                &issuer,
                "pyoidc",
                "pyoidc-secret-pyoidc-secret-pyoidc-secret",
                "http://127.0.0.1:9000/callback",
                "alice",
                "alice-password",
            ])
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "pyoidc failed:\n{stdout}\n{stderr}");
    for step in ["discovery ok", "code ok", "tokens ok", "userinfo ok", "refresh ok"] {
        assert!(stdout.contains(step), "missing {step:?}:\n{stdout}\n{stderr}");
    }
}
