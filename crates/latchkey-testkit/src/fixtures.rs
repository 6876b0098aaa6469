//! The clients and users most tests need, and the requests made with them.
//!
//! The TOML fragments are macros that expand to string literals, so that a suite's `const`
//! configuration can be assembled with `concat!` around them.

use latchkey::model::{
    ApplicationType, AuthMethod, Client, ClientRecord, ClientSource, GrantType, User,
};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// The password of [`user_alice!`].
pub const ALICE_PASSWORD: &str = "alice-password";

/// The user `alice`, whose password is [`ALICE_PASSWORD`].
#[macro_export]
macro_rules! user_alice {
    () => {
        "\n[[users]]\nusername = \"alice\"\npassword = \"alice-password\"\n"
    };
}

/// The secret of [`client_machine!`].
pub const MACHINE_SECRET: &str = "machine-secret";

/// The confidential client `machine` (secret [`MACHINE_SECRET`]): client credentials for
/// `read:photos`, which the including config must declare on a resource.
#[macro_export]
macro_rules! client_machine {
    () => {
        "\n[[clients]]\nclient_id = \"machine\"\nclient_secret = \"machine-secret\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read:photos\"]\n"
    };
}

/// A form POST to `url`, with HTTP Basic credentials when `basic` is given: the status, the
/// headers and the JSON body (`Value::Null` when the body is not JSON).
pub async fn post_form(
    url: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Value) {
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut request = http.post(url).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// An access token for `client` by the client-credentials grant at the server `base`, with
/// `scope` when it is not empty; fails the test unless the server answers 200.
pub async fn client_credentials(base: &str, (id, secret): (&str, &str), scope: &str) -> String {
    let mut form = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", scope));
    }
    let (status, _, body) =
        post_form(&format!("{base}/oauth/token"), Some((id, secret)), &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

/// A confidential web client `id` for the code flow with refresh, as a store holds it.
pub fn client_record(id: &str, source: ClientSource) -> ClientRecord {
    ClientRecord {
        client: Client {
            client_id: id.into(),
            client_name: Some(format!("{id} app")),
            application_type: ApplicationType::Web,
            redirect_uris: vec!["https://app.example.com/cb".into()],
            post_logout_redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: vec!["openid".into()],
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            require_consent: true,
            require_pkce: true,
            jwks_uri: None,
            jwks: None,
            access_token_format: None,
            id_token_signed_response_alg: None,
            refresh_grace_period_secs: Some(10),
            remember_consent: None,
            legacy_assertion_audience: false,
            id_token_on_refresh: true,
            claims_in_id_token: true,
            session_refresh_tokens: true,
        },
        secret_hash: Some("sha256:abc".into()),
        source,
        previous_secret: None,
        revision: 0,
    }
}

/// A user as a store holds it (the password hash is a placeholder: no one signs in).
pub fn user(username: &str, id: &str) -> User {
    User {
        id: id.into(),
        username: username.into(),
        password_hash: "$argon2id$x".into(),
        email: Some(format!("{username}@example.com")),
        name: None,
        email_verified: true,
        disabled: false,
    }
}
