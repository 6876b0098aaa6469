use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_parts(text, &[])
}

fn error_of(text: &str) -> String {
    load(text).expect_err("config should be refused").to_string()
}

const CLIENT_HEAD: &str = "[[clients]]\nclient_id = \"app\"\n";

#[test]
fn defaults_are_safe_and_complete() {
    let config = load("").unwrap();
    assert_eq!(config.issuer, "http://127.0.0.1:8080");
    assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database.url.expose(), "sqlite://latchkey.db");
    assert_eq!(config.tokens.access_token_ttl, Duration::from_secs(15 * 60));
    assert_eq!(config.tokens.refresh_token_ttl, Duration::from_secs(14 * 86400));
    assert_eq!(config.tokens.authorization_code_ttl, Duration::from_secs(60));
    assert_eq!(config.keys.rotation_period, Duration::from_secs(90 * 86400));
    assert_eq!(config.database.synchronous, Synchronous::Normal);
}

#[test]
fn bad_configurations_are_refused_with_the_key_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "colour = \"blue\"",
            "config: colour: unknown field `colour`, expected one of `issuer`, `listen`, `master_key`, `master_key_file`, `database`, `tls`, `tokens`, `keys`, `log`, `limits`, `http`, `passwords`, `metrics`, `resources`, `clients`, `users`",
        ),
        (
            "[tokens]\nlifetime = \"1h\"",
            "config: tokens.lifetime: unknown field `lifetime`, expected one of `access_token_ttl`, `refresh_token_ttl`, `authorization_code_ttl`, `id_token_ttl`, `session_ttl`, `refresh_grace_period`, `access_token_format`",
        ),
        (
            "[tokens]\naccess_token_ttl = \"soon\"",
            "config: tokens.access_token_ttl: invalid duration \"soon\": write it like \"60s\", \"15m\", \"1h30m\" or \"14d\"",
        ),
        (
            "[tokens]\naccess_token_ttl = \"0s\"",
            "config: tokens.access_token_ttl: must be longer than zero",
        ),
        (
            "issuer = \"not a url\"",
            "config: issuer: \"not a url\" is not a URL (relative URL without a base): use e.g. \"https://auth.example.com\"",
        ),
        (
            "issuer = \"http://auth.example.com\"",
            "config: issuer: \"http://auth.example.com\" uses http on a non-loopback host: use https (http is only for 127.0.0.1, [::1] or localhost)",
        ),
        (
            "issuer = \"https://a.example.com/?x=1\"",
            "config: issuer: must not have a query or fragment (RFC 8414 §2)",
        ),
        (
            "listen = \"8080\"",
            "config: listen: \"8080\" is not an address: write IP:PORT, e.g. \"0.0.0.0:8080\"",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\njwks_uri = \"http://keys.example.com/jwks.json\"",
            "config: clients[0].jwks_uri: \"http://keys.example.com/jwks.json\": jwks_uri must use https",
        ),
        (
            "issuer = \"https://auth.example.com\"\nmaster_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n[[clients]]\nclient_id = \"app\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\ngrant_types = [\"client_credentials\"]\njwks_uri = \"http://127.0.0.1:9/jwks.json\"",
            "config: clients[0].jwks_uri: \"http://127.0.0.1:9/jwks.json\": jwks_uri must use https: http is allowed only on loopback with a loopback issuer",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nclient_secret = \"s\"\ngrant_types = [\"client_credentials\", \"refresh_token\"]",
            "config: clients[0].grant_types: refresh_token needs a grant that issues refresh tokens (authorization_code or password); client_credentials gets none (RFC 6749 §4.4.3)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nclient_secret = \"s\"\ngrant_types = [\"client_credentials\"]\nredirect_uris = [\"https://a.example.com/cb\"]",
            "config: clients[0].redirect_uris: are used only by the authorization_code grant, which this client does not have: remove them or add the grant",
        ),
        (
            "issuer = \"https://auth.example.com/\"",
            "config: issuer: \"https://auth.example.com/\" ends with a slash: write it without one (\"https://auth.example.com\"); clients compare it character for character",
        ),
        (
            "issuer = \"https://auth.example.com/a//b\"",
            "config: issuer: \"https://auth.example.com/a//b\" has a path the discovery URLs cannot be built on: use the bare origin or a plain path such as /auth",
        ),
        (
            "[database]\nurl = \"mysql://localhost/db\"",
            "config: database.url: must be sqlite://PATH (one node) or postgres://USER@HOST/DB (several nodes)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = []\n",
            "config: clients[0].redirect_uris: a client with the authorization_code grant needs at least one redirect URI",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://app.example.com/cb#frag\"]",
            "config: clients[0].redirect_uris[0]: \"https://app.example.com/cb#frag\" must not contain a fragment (RFC 6749 §3.1.2)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nclient_secret = \"s\"\ntoken_endpoint_auth_method = \"none\"\nredirect_uris = [\"https://a.example.com/cb\"]",
            "config: clients[0].client_secret: a public client (token_endpoint_auth_method = \"none\") must not have a secret: remove client_secret or choose client_secret_basic",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\ngrant_types = [\"implicit\"]",
            "config: clients[0].grant_types[0]: unknown variant `implicit`, expected one of `authorization_code`, `refresh_token`, `client_credentials`, `password`",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\ntoken_endpoint_auth_method = \"client_secret_jwt\"",
            "config: clients[0].token_endpoint_auth_method: unknown variant `client_secret_jwt`, expected one of `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `none`",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\ntoken_endpoint_auth_method = \"client_secret_basic\"\ngrant_types = [\"client_credentials\"]",
            "config: clients[0].client_secret: is required for token_endpoint_auth_method = \"client_secret_basic\"; or use \"none\" for a public client",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\ngrant_types = [\"client_credentials\"]",
            "config: clients[0].grant_types: a public client cannot use client_credentials: give it a secret or remove the grant",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://a.example.com/cb\"]\nscopes = [\"openid\", \"read:nothing\"]",
            "config: clients[0].scopes[1]: \"read:nothing\" is neither an OpenID scope (openid, profile, email, offline_access) nor defined by a [[resources]] entry: add it to the scopes of the API that owns it",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://a.example.com/cb\"]\nrequire_pkce = false",
            "config: clients[0].require_pkce: PKCE cannot be switched off for a public client (RFC 9700 §2.1.1)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"http://app.example.com/cb\"]",
            "config: clients[0].redirect_uris[0]: \"http://app.example.com/cb\" must use https (http is allowed only on 127.0.0.1, [::1] or localhost)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://a.example.com/cb\"]\nscopes = [\"two words\"]",
            "config: clients[0].scopes[0]: \"two words\" is not a valid scope: printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)",
        ),
        (
            "[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://a.example.com/cb\"]\n[[clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://a.example.com/cb\"]",
            "config: clients[1].client_id: \"app\" is listed twice",
        ),
        (
            "[keys]\nprepublication = \"1m\"",
            "config: keys.prepublication: must be longer than 360s (JWKS cache max-age plus key refresh interval), or verifiers may see a key before they can fetch it",
        ),
        (
            "[keys]\nrefresh_interval = \"2h\"",
            "config: keys.refresh_interval: must be between 1s and 1h",
        ),
        (
            "[keys]\nrefresh_interval = \"59m\"",
            "config: keys.prepublication: must be longer than 3840s (JWKS cache max-age plus key refresh interval), or verifiers may see a key before they can fetch it",
        ),
        (
            "master_key = \"too-short\"",
            "config: master_key: master key must be 32 random bytes in base64 (for example from `openssl rand -base64 32`)",
        ),
        (
            "[[resources]]\nidentifier = \"photos\"",
            "config: resources[0].identifier: \"photos\" must be an absolute URI without a fragment (RFC 8707 §2)",
        ),
        (
            "[[users]]\nusername = \"alice\"\npassword = \"\"",
            "config: users[0].password: must not be empty",
        ),
        (
            "[limits]\nhash_queue = -1",
            "config: limits.hash_queue: must be a whole number from 0 to 10000",
        ),
        (
            "[limits]\nmax_connections = \"lots\"",
            "config: limits.max_connections: must be a whole number from 1 to 1000000",
        ),
        (
            "[limits]\nheader_read_timeout = \"0s\"",
            "config: limits.header_read_timeout: must be longer than zero",
        ),
        (
            "[http]\ntrusted_proxies = [\"proxy.local\"]",
            "config: http.trusted_proxies[0]: \"proxy.local\" is not an IP address: list the proxies' own addresses, e.g. \"10.0.0.5\"",
        ),
    ];
    let mut mismatches = Vec::new();
    for (text, expected) in cases {
        let actual = error_of(text);
        if &actual != expected {
            mismatches
                .push(format!("config:\n{text}\n  expected: {expected}\n  actual:   {actual}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}

#[test]
fn errors_are_one_line() {
    let message = error_of("issuer = ");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.starts_with("config: "), "{message}");
}

#[test]
fn environment_overrides_the_file() {
    let vars = vec![
        ("LATCHKEY_ISSUER".to_owned(), "https://auth.example.com".to_owned()),
        ("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL".to_owned(), "5m".to_owned()),
        ("LATCHKEY_DATABASE__URL".to_owned(), "postgres://db/latchkey".to_owned()),
        ("LATCHKEY_TEST_POSTGRES_URL".to_owned(), "ignored".to_owned()),
        ("LATCHKEY_LIMITS__HASH_QUEUE".to_owned(), "3".to_owned()),
        (
            "LATCHKEY_MASTER_KEY".to_owned(),
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
        ),
        ("HOME".to_owned(), "/root".to_owned()),
    ];
    let config = Config::from_parts("issuer = \"http://127.0.0.1:1\"\n", &vars).unwrap();
    assert_eq!(config.limits.hash_queue, 3, "a count from the environment is text");
    assert_eq!(config.issuer, "https://auth.example.com");
    assert_eq!(config.tokens.access_token_ttl, Duration::from_secs(300));
    assert_eq!(config.database.url.expose(), "postgres://db/latchkey");
}

#[test]
fn unknown_environment_keys_are_refused_too() {
    let error = |name: &str| {
        let vars = vec![(name.to_owned(), "5m".to_owned())];
        Config::from_parts("", &vars).unwrap_err().to_string()
    };
    assert_eq!(
        error("LATCHKEY_TOKENS__TTL"),
        "config: environment variable LATCHKEY_TOKENS__TTL: unknown key \"ttl\" (known: access_token_ttl, refresh_token_ttl, authorization_code_ttl, id_token_ttl, session_ttl, refresh_grace_period, access_token_format)"
    );
    assert_eq!(
        error("LATCHKEY_TOKEN__ACCESS_TOKEN_TTL"),
        "config: environment variable LATCHKEY_TOKEN__ACCESS_TOKEN_TTL: unknown section \"token\", did you mean \"tokens\"?"
    );
    assert_eq!(
        error("LATCHKEY_TOKENS__ACCES_TOKEN_TTL"),
        "config: environment variable LATCHKEY_TOKENS__ACCES_TOKEN_TTL: unknown key \"acces_token_ttl\", did you mean \"access_token_ttl\"?"
    );
    assert!(
        error("LATCHKEY_ISUER").starts_with(
            "config: environment variable LATCHKEY_ISUER: unknown key \"isuer\": did you mean LATCHKEY_ISSUER?"
        ),
        "{}",
        error("LATCHKEY_ISUER")
    );
    // A value the key refuses still names the variable.
    let vars = vec![("LATCHKEY_TOKENS__ACCESS_TOKEN_TTL".to_owned(), "soon".to_owned())];
    let refused = Config::from_parts("", &vars).unwrap_err().to_string();
    assert!(
        refused.starts_with("config: environment variable LATCHKEY_TOKENS__ACCESS_TOKEN_TTL: tokens.access_token_ttl: invalid duration \"soon\""),
        "{refused}"
    );
}

/// A Kubernetes Service named `latchkey` puts these in every pod; they are not config.
#[test]
fn kubernetes_service_links_are_ignored_and_noted() {
    let links = [
        ("LATCHKEY_SERVICE_HOST", "10.96.0.12"),
        ("LATCHKEY_SERVICE_PORT", "8080"),
        ("LATCHKEY_SERVICE_PORT_HTTP", "8080"),
        ("LATCHKEY_PORT", "tcp://10.96.0.12:8080"),
        ("LATCHKEY_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
        ("LATCHKEY_PORT_8080_TCP_PROTO", "tcp"),
        ("LATCHKEY_PORT_8080_TCP_PORT", "8080"),
        ("LATCHKEY_PORT_8080_TCP_ADDR", "10.96.0.12"),
        ("LATCHKEY_CONFIG", "/etc/latchkey/latchkey.toml"),
        ("LATCHKEY_LISTEN", "0.0.0.0:8080"),
    ];
    let vars: Vec<(String, String)> =
        links.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let config = Config::from_parts("", &vars).unwrap();
    assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.notes.len(), 8, "{:?}", config.notes);
    assert!(
        config.notes[0].starts_with("ignored LATCHKEY_SERVICE_HOST: a Kubernetes service link")
    );
}

#[test]
fn a_misspelled_key_in_the_file_gets_a_suggestion() {
    let error = load(
        "[tokens]
access_token_tll = \"5m\"
",
    )
    .unwrap_err()
    .to_string();
    assert!(error.ends_with("; did you mean `access_token_ttl`?"), "{error}");
}

#[test]
fn client_defaults_follow_the_secret() {
    let text = format!(
        "{CLIENT_HEAD}client_secret = \"s3cret\"\nredirect_uris = [\"http://127.0.0.1:9000/callback\"]\n\
         [[clients]]\nclient_id = \"spa\"\nredirect_uris = [\"https://spa.example.com/cb\"]"
    );
    let config = load(&text).unwrap();
    let confidential = &config.clients[0].client;
    assert_eq!(
        confidential.token_endpoint_auth_method,
        latchkey::model::AuthMethod::ClientSecretBasic
    );
    assert!(confidential.require_pkce && confidential.require_consent);
    let public = &config.clients[1].client;
    assert!(public.is_public());
    assert!(config.clients[1].secret.is_none());
}

#[test]
fn check_warns_about_weak_settings() {
    let text = format!(
        "[tokens]\naccess_token_ttl = \"2h\"\n{CLIENT_HEAD}client_secret = \"s3cret\"\n\
         grant_types = [\"password\"]\nrequire_pkce = false\n"
    );
    let warnings = load(&text).unwrap().warnings();
    let has = |needle: &str| warnings.iter().any(|w| w.contains(needle));
    assert!(has("master_key: not set"), "{warnings:#?}");
    assert!(has("tokens.access_token_ttl: 2h is over 1h"), "{warnings:#?}");
    assert!(has("clients.app: the password grant is enabled"), "{warnings:#?}");
    assert!(has("clients.app: client_secret is set in the config"), "{warnings:#?}");
    assert!(has("clients.app: require_pkce = false"), "{warnings:#?}");

    let from_environment = [(
        "LATCHKEY_MASTER_KEY".to_owned(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
    )];
    let strong =
        Config::from_parts("issuer = \"https://auth.example.com\"\n", &from_environment).unwrap();
    assert!(strong.warnings().is_empty(), "{:#?}", strong.warnings());
    // The same key written in the file is a secret in the file.
    let in_file = Config::from_parts(
        "issuer = \"https://auth.example.com\"\nmaster_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"",
        &[],
    )
    .unwrap();
    assert_eq!(in_file.warnings().len(), 1, "{:#?}", in_file.warnings());
    assert!(
        in_file.warnings()[0].starts_with("master_key: a secret is written in the config file")
    );
}

#[test]
fn a_reachable_issuer_needs_a_master_key_and_durations_have_a_maximum() {
    let error = load("issuer = \"https://auth.example.com\"\n").unwrap_err().to_string();
    assert!(error.starts_with("config: master_key: is required for the issuer"), "{error}");
    assert!(load("issuer = \"http://localhost:8080\"\n").is_ok(), "loopback runs without one");
    let error = load("[tokens]\nrefresh_token_ttl = \"1000000000y\"\n").unwrap_err().to_string();
    assert_eq!(
        error,
        "config: tokens.refresh_token_ttl: \"1000000000y\" is longer than the maximum allowed, 10 years (\"3650d\")"
    );
    assert!(load("[tokens]\nrefresh_token_ttl = \"3650d\"\n").is_ok());
}

#[test]
fn secrets_never_show_in_debug_output() {
    let text = format!(
        "master_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n{CLIENT_HEAD}client_secret = \"hunter2-secret\"\n\
         redirect_uris = [\"https://a.example.com/cb\"]\n[[users]]\nusername = \"alice\"\npassword = \"pa55word\""
    );
    let debug = format!("{:?}", load(&text).unwrap());
    for secret in ["hunter2-secret", "pa55word", "MDEyMzQ1"] {
        assert!(!debug.contains(secret), "{secret} leaked");
    }
}

#[test]
fn secrets_come_from_files_and_static_users_from_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n").unwrap();
    let key = key.display();
    let config = load(&format!(
        "master_key_file = \"{key}\"\n[[users]]\nusername = \"bob\"\npassword_hash = \"$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie\"\n"
    ))
    .unwrap();
    assert!(config.master_key().unwrap().is_some(), "read without its line break");
    assert!(matches!(config.users[0].password, super::StaticPassword::Hash(_)));
    assert!(
        !config.warnings().iter().any(|w| w.contains("master_key") || w.contains("users.bob")),
        "{:#?}",
        config.warnings()
    );
    let error = |text: &str| load(text).unwrap_err().to_string();
    assert_eq!(
        error(&format!("master_key = \"x\"\nmaster_key_file = \"{key}\"\n")),
        "config: master_key_file: give master_key or master_key_file, not both"
    );
    assert!(
        error("[database]\nurl_file = \"/nonexistent/url\"\n")
            .starts_with("config: database.url_file: cannot read /nonexistent/url: "),
    );
    assert!(
        error("[[users]]\nusername = \"bob\"\npassword_hash = \"$1$x$y\"\n")
            .starts_with("config: users[0].password_hash: not a hash latchkey reads")
    );
    assert_eq!(
        error("[[users]]\nusername = \"bob\"\n"),
        "config: users[0].password: is missing: give password, password_file or password_hash"
    );
}
