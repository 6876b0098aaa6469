use super::*;
use crate::model::{ApplicationType, AuthMethod};

const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(public: bool) -> Client {
    Client {
        client_id: "app".into(),
        client_name: None,
        application_type: ApplicationType::Web,
        redirect_uris: vec![
            "https://app.example.com/cb".into(),
            "https://app.example.com/cb2".into(),
        ],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec!["openid".into(), "profile".into(), "read:photos".into()],
        token_endpoint_auth_method: if public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        },
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

fn resources() -> Vec<Resource> {
    vec![Resource {
        identifier: "https://photos".into(),
        scopes: vec!["read:photos".into(), "write:photos".into()],
        client_id: None,
        descriptions: Default::default(),
    }]
}

fn params(extra: &[(&str, &str)]) -> Params {
    let mut pairs = vec![
        ("client_id", "app"),
        ("redirect_uri", "https://app.example.com/cb"),
        ("response_type", "code"),
        ("scope", "openid read:photos"),
        ("state", "xyz"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        pairs.retain(|(n, _)| n != name);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    Params::new(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
}

fn redirect_error(extra: &[(&str, &str)]) -> (ErrorCode, String) {
    match validate(&params(extra), Some(client(true)), &resources()) {
        Err(RequestError::Redirect { error, state, redirect_uri }) => {
            assert_eq!(redirect_uri, "https://app.example.com/cb");
            assert_eq!(
                state.as_deref(),
                extra.iter().find(|(n, _)| *n == "state").map_or(Some("xyz"), |(_, v)| Some(*v))
            );
            (error.code, error.description)
        }
        other => panic!("expected a redirected error for {extra:?}, got {other:?}"),
    }
}

#[test]
fn a_good_request_validates() {
    let request = validate(&params(&[]), Some(client(true)), &resources()).unwrap();
    assert_eq!(request.redirect_uri, "https://app.example.com/cb");
    assert_eq!(request.target.scopes.to_param(), "openid read:photos");
    assert_eq!(request.target.audience, ["https://photos"]);
    assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(request.state.as_deref(), Some("xyz"));
}

#[test]
fn bad_client_or_redirect_uri_never_redirects() {
    let cases: Vec<(Params, Option<Client>)> = vec![
        (params(&[]), None),
        (params(&[("redirect_uri", "https://evil.example.com/cb")]), Some(client(true))),
        (params(&[("redirect_uri", "https://app.example.com/cb/")]), Some(client(true))),
        (params(&[("redirect_uri", "")]), Some(client(true))),
    ];
    for (params, client) in cases {
        let outcome = validate(&params, client, &resources());
        assert!(matches!(outcome, Err(RequestError::NoRedirect(_))), "{outcome:?}");
    }
    let twice = Params::new(
        [
            ("client_id", "app"),
            ("redirect_uri", "https://app.example.com/cb"),
            ("redirect_uri", "https://app.example.com/cb"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    );
    assert!(matches!(
        validate(&twice, Some(client(true)), &resources()),
        Err(RequestError::NoRedirect(_))
    ));
}

#[test]
fn redirect_uri_may_be_omitted_only_with_one_registered() {
    let mut single = client(true);
    single.redirect_uris.truncate(1);
    let request = validate(&params(&[("redirect_uri", "")]), Some(single), &resources()).unwrap();
    assert_eq!(request.redirect_uri, "https://app.example.com/cb");
    assert_eq!(request.redirect_uri_param, None);
}

#[test]
fn errors_after_the_redirect_uri_go_back_to_the_client() {
    let cases: &[(&[(&str, &str)], ErrorCode)] = &[
        (&[("response_type", "token")], ErrorCode::UnsupportedResponseType),
        (&[("response_type", "code id_token")], ErrorCode::UnsupportedResponseType),
        (&[("response_type", "")], ErrorCode::InvalidRequest),
        (&[("scope", "openid admin")], ErrorCode::InvalidScope),
        (&[("scope", "openid write:photos")], ErrorCode::InvalidScope),
        (&[("code_challenge", ""), ("code_challenge_method", "")], ErrorCode::InvalidRequest),
        (&[("code_challenge_method", "plain")], ErrorCode::InvalidRequest),
        (&[("code_challenge_method", "")], ErrorCode::InvalidRequest),
        (&[("code_challenge", "short")], ErrorCode::InvalidRequest),
        (&[("prompt", "none login")], ErrorCode::InvalidRequest),
        (&[("max_age", "-1")], ErrorCode::InvalidRequest),
        (&[("resource", "https://elsewhere")], ErrorCode::InvalidTarget),
        (&[("response_mode", "fragment")], ErrorCode::InvalidRequest),
        (&[("request", "eyJ")], ErrorCode::RequestNotSupported),
    ];
    for (extra, code) in cases {
        assert_eq!(redirect_error(extra).0, *code, "{extra:?}");
    }
    let (_, description) = redirect_error(&[("response_type", "token")]);
    assert!(description.contains("use response_type=code with PKCE"), "{description}");
}

#[test]
fn a_repeated_parameter_is_invalid_request() {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in [
        ("client_id", "app"),
        ("redirect_uri", "https://app.example.com/cb"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("scope", "profile"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ] {
        pairs.push((k.into(), v.into()));
    }
    match validate(&Params::new(pairs), Some(client(true)), &resources()) {
        Err(RequestError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::InvalidRequest)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn clients_without_the_code_grant_are_unauthorized() {
    let mut machine = client(false);
    machine.grant_types = vec![GrantType::ClientCredentials];
    match validate(&params(&[]), Some(machine), &resources()) {
        Err(RequestError::Redirect { error, .. }) => {
            assert_eq!(error.code, ErrorCode::UnauthorizedClient)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn confidential_clients_may_skip_pkce_only_when_allowed() {
    let no_pkce = params(&[("code_challenge", ""), ("code_challenge_method", "")]);
    assert!(validate(&no_pkce, Some(client(false)), &resources()).is_err());
    let mut relaxed = client(false);
    relaxed.require_pkce = false;
    assert_eq!(validate(&no_pkce, Some(relaxed), &resources()).unwrap().code_challenge, None);
}

fn session(auth_time: i64) -> Session {
    Session {
        id_hash: "s".into(),
        user_id: "u".into(),
        auth_time,
        created_at: auth_time,
        expires_at: auth_time + 3600,
    }
}

#[test]
fn decisions_follow_session_prompt_max_age_and_consent() {
    let request = validate(&params(&[]), Some(client(true)), &resources()).unwrap();
    let s = session(1000);
    let signed_in = Progress { session: Some(&s), ..Progress::default() };
    let granted = Scopes::parse("openid read:photos profile").unwrap();
    assert_eq!(decide(&request, Progress::default(), None, 1000), Decision::NeedsLogin);
    assert_eq!(decide(&request, signed_in, None, 1000), Decision::NeedsConsent);
    assert_eq!(decide(&request, signed_in, Some(&granted), 1000), Decision::Approved);
    let narrower = Scopes::parse("openid").unwrap();
    assert_eq!(decide(&request, signed_in, Some(&narrower), 1000), Decision::NeedsConsent);

    let none = validate(&params(&[("prompt", "none")]), Some(client(true)), &resources()).unwrap();
    assert!(
        matches!(decide(&none, Progress::default(), None, 1000), Decision::Refused(e) if e.code == ErrorCode::LoginRequired)
    );
    assert!(
        matches!(decide(&none, signed_in, None, 1000), Decision::Refused(e) if e.code == ErrorCode::ConsentRequired)
    );

    let login =
        validate(&params(&[("prompt", "login")]), Some(client(true)), &resources()).unwrap();
    assert_eq!(decide(&login, signed_in, Some(&granted), 1000), Decision::NeedsLogin);
    let fresh = Progress { fresh_login: true, ..signed_in };
    assert_eq!(decide(&login, fresh, Some(&granted), 1000), Decision::Approved);

    let aged = validate(&params(&[("max_age", "60")]), Some(client(true)), &resources()).unwrap();
    assert_eq!(decide(&aged, signed_in, Some(&granted), 1060), Decision::Approved);
    assert_eq!(decide(&aged, signed_in, Some(&granted), 1061), Decision::NeedsLogin);

    let mut first_party = client(true);
    first_party.require_consent = false;
    let request = validate(&params(&[]), Some(first_party), &resources()).unwrap();
    assert_eq!(decide(&request, signed_in, None, 1000), Decision::Approved);
}

fn native(redirect_uri: &str, remember_consent: Option<bool>) -> AuthorizationRequest {
    let mut app = client(true);
    app.application_type = ApplicationType::Native;
    app.redirect_uris = vec![redirect_uri.into()];
    app.remember_consent = remember_consent;
    validate(&params(&[("redirect_uri", redirect_uri)]), Some(app), &resources()).unwrap()
}

#[test]
fn remembered_consent_does_not_answer_for_a_public_client_on_loopback_or_a_custom_scheme() {
    // RFC 8252 §8.6: any local program can claim such a redirect URI.
    let s = session(1000);
    let signed_in = Progress { session: Some(&s), ..Progress::default() };
    let granted = Scopes::parse("openid read:photos profile").unwrap();
    for uri in ["http://127.0.0.1/cb", "http://[::1]/cb", "com.example.app:/cb"] {
        let request = native(uri, None);
        assert_eq!(
            decide(&request, signed_in, Some(&granted), 1000),
            Decision::NeedsConsent,
            "{uri}"
        );
        let mut none = request.clone();
        none.prompt = Prompt::None;
        assert!(
            matches!(decide(&none, signed_in, Some(&granted), 1000), Decision::Refused(e) if e.code == ErrorCode::ConsentRequired),
            "{uri}"
        );
        let fresh = Progress { fresh_consent: true, ..signed_in };
        assert_eq!(decide(&request, fresh, Some(&granted), 1000), Decision::Approved, "{uri}");
        // The registration may say otherwise (and `latchkey check` reports it).
        let trusted = native(uri, Some(true));
        assert_eq!(decide(&trusted, signed_in, Some(&granted), 1000), Decision::Approved, "{uri}");
    }
    // A public client whose code can only reach its https host, and any confidential client,
    // keep their remembered consent.
    let web = validate(&params(&[]), Some(client(true)), &resources()).unwrap();
    assert_eq!(decide(&web, signed_in, Some(&granted), 1000), Decision::Approved);
    let mut confidential = client(false);
    confidential.redirect_uris = vec!["http://127.0.0.1:9000/cb".into()];
    let loopback = params(&[("redirect_uri", "http://127.0.0.1:9000/cb")]);
    let request = validate(&loopback, Some(confidential), &resources()).unwrap();
    assert_eq!(decide(&request, signed_in, Some(&granted), 1000), Decision::Approved);
}

#[test]
fn a_hint_for_another_user_is_not_answered_by_the_session() {
    // OIDC Core §3.1.2.1: id_token_hint names the user the client expects.
    let granted = Scopes::parse("openid read:photos profile").unwrap();
    let s = session(1000);
    let request = validate(&params(&[]), Some(client(false)), &resources()).unwrap();
    let other =
        Progress { session: Some(&s), hinted_subject: Some("someone-else"), ..Progress::default() };
    assert_eq!(decide(&request, other, Some(&granted), 1000), Decision::NeedsLogin);
    let mut none = request.clone();
    none.prompt = Prompt::None;
    assert!(
        matches!(decide(&none, other, Some(&granted), 1000), Decision::Refused(e) if e.code == ErrorCode::LoginRequired)
    );
    let fresh_but_other = Progress { fresh_login: true, ..other };
    assert!(
        matches!(decide(&request, fresh_but_other, Some(&granted), 1000), Decision::Refused(e) if e.code == ErrorCode::LoginRequired)
    );
    let same = Progress { hinted_subject: Some("u"), ..other };
    assert_eq!(decide(&none, same, Some(&granted), 1000), Decision::Approved);
}

#[test]
fn error_redirects_carry_state_and_iss() {
    let error = OAuthError::new(ErrorCode::AccessDenied, "the user said no");
    let url = error_redirect(
        "https://app.example.com/cb?keep=1",
        Some("a b&c"),
        &error,
        "https://id.example.com",
    );
    assert_eq!(
        url,
        "https://app.example.com/cb?keep=1&error=access_denied&error_description=the+user+said+no&state=a+b%26c&iss=https%3A%2F%2Fid.example.com"
    );
}

#[test]
fn prompt_values_parse_into_what_they_ask() {
    assert_eq!(Prompt::parse(None), Ok(Prompt::Unspecified));
    assert!(Prompt::parse(Some("none")).unwrap().is_none());
    let both = Prompt::parse(Some("login consent")).unwrap();
    assert!(both.login() && both.consent() && !both.is_none());
    assert!(Prompt::parse(Some("select_account")).unwrap().login());
    for bad in ["none login", "none consent", "", "login  consent", "create"] {
        assert!(Prompt::parse(Some(bad)).is_err(), "{bad:?}");
    }
}
