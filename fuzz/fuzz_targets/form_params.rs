//! The form and query decoding every endpoint starts with, then the authorization request's
//! validation for a registered web and a native client: the longest chain of checks that raw
//! input reaches before any store is involved.
//!
//! Invariants: no panic; an accepted request redirects only to a registered URI (or, for the
//! native client, its loopback form); every redirect built is one line of visible ASCII.
#![no_main]

use latchkey::model::{ApplicationType, AuthMethod, Client, GrantType, Resource};
use latchkey::oauth::authorize::{self, RequestError};
use latchkey::oauth::{Params, client_auth, redirect_uri};
use libfuzzer_sys::fuzz_target;

fn client(application_type: ApplicationType, redirect_uris: &[&str]) -> Client {
    Client {
        client_id: "app".into(),
        client_name: None,
        application_type,
        redirect_uris: redirect_uris.iter().map(|uri| (*uri).to_owned()).collect(),
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "profile".into(), "offline_access".into(), "read".into()],
        token_endpoint_auth_method: AuthMethod::None,
        require_consent: true,
        require_pkce: true,
        jwks_uri: None,
        jwks: None,
        access_token_format: None,
        id_token_signed_response_alg: None,
        refresh_grace_period_secs: None,
        remember_consent: None,
        legacy_assertion_audience: false,
        id_token_on_refresh: true,
        claims_in_id_token: true,
            session_refresh_tokens: true,
    }
}

fn one_visible_line(location: &str) -> bool {
    location.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(params) = Params::from_form(text) else { return };
    for name in ["client_id", "redirect_uri", "scope", "state", "nonce", "grant_type", "token"] {
        let _ = params.get(name);
    }
    let _ = params.all("resource").count();
    let _ = params.first_repeat(&["resource"]);
    let _ = client_auth::presented(None, &params);

    if authorize::client_id(&params).is_err() {
        return;
    }
    let resources = [Resource {
        identifier: "https://api.example.com".into(),
        scopes: vec!["read".into()],
        client_id: None,
        descriptions: Default::default(),
    }];
    let clients = [
        client(ApplicationType::Web, &["https://app.example.com/cb"]),
        client(ApplicationType::Native, &["http://127.0.0.1/cb", "com.example.app:/cb"]),
    ];
    for client in clients {
        match authorize::validate(&params, Some(client.clone()), &resources) {
            Ok(request) => {
                assert!(
                    redirect_uri::find_match(
                        &client.redirect_uris,
                        &request.redirect_uri,
                        client.application_type
                    )
                    .is_some(),
                    "accepted an unregistered redirect URI {:?}",
                    request.redirect_uri
                );
                let location = authorize::redirect_with(
                    &request.redirect_uri,
                    &[("code", "c"), ("state", request.state.as_deref().unwrap_or(""))],
                );
                assert!(one_visible_line(&location), "{location:?}");
            }
            Err(RequestError::Redirect { redirect_uri, state, error }) => {
                let location = authorize::error_redirect(
                    &redirect_uri,
                    state.as_deref(),
                    &error,
                    "https://issuer.example.com",
                );
                assert!(one_visible_line(&location), "{location:?}");
            }
            Err(RequestError::NoRedirect(_)) => {}
        }
    }
});
