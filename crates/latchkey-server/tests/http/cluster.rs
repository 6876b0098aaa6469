//! Two `latchkey serve` processes on one PostgreSQL database, as behind a load balancer: every
//! step of a sign-in's life may land on either node, and CLI changes reach both.

use latchkey_testkit::fixtures::post_form;
use std::time::Duration;

use latchkey::oauth::pkce;
use serde_json::Value;

use crate::code_flow::{VERIFIER, hidden};
use crate::process::{ConfigFile, Serving, free_port, run, stderr, stdout, wait_until_ok};

const SPA: &str = "https://spa.example.com/cb";

fn config(issuer: &str, listen: u16, database: &str) -> ConfigFile {
    ConfigFile::new(&format!(
        r#"issuer = "{issuer}"
listen = "127.0.0.1:{listen}"

[database]
url = "{database}"

[log]
level = "warn"

[keys]
refresh_interval = "1s"

[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos"]
client_id = "photo-api"

[[clients]]
client_id = "spa"
redirect_uris = ["{SPA}"]
post_logout_redirect_uris = ["https://spa.example.com/"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access", "read:photos"]

[[clients]]
client_id = "photo-api"
client_secret = "photo-api-secret"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[users]]
username = "alice"
password = "alice-password"
"#
    ))
}

async fn form(url: String, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let (status, _, body) = post_form(&url, basic, form).await;
    (status.as_u16(), body)
}

/// The status of a login on `node` as `username` (200: the consent page, 401: refused).
async fn login_status(node: &str, username: &str, password: &str) -> u16 {
    let browser = crate::code_flow::browser();
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", SPA),
        ("scope", "openid"),
        ("code_challenge", pkce::s256(VERIFIER).as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let page = browser.get(format!("{node}/authorize?{query}")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = [
        ("username", username),
        ("password", password),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    browser.post(format!("{node}/login")).form(&form).send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_every_step_and_cli_changes() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let (node_a, node_b) = (issuer.clone(), format!("http://127.0.0.1:{port_b}"));
    let (config_a, config_b) = (config(&issuer, port_a, &db.url), config(&issuer, port_b, &db.url));
    let _a = Serving::start(&config_a.path);
    let _b = Serving::start(&config_b.path);
    let http = reqwest::Client::new();
    for node in [&node_a, &node_b] {
        wait_until_ok(&http, &format!("{node}/readyz"), Duration::from_secs(30)).await;
    }

    // Authorize, log in and consent on A.
    let browser = crate::code_flow::browser();
    let challenge = pkce::s256(VERIFIER);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", SPA),
        // Without offline_access: the refresh token ends with the session (OIDC Core §11).
        ("scope", "openid profile read:photos"),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let login = browser.get(format!("{node_a}/authorize?{query}")).send().await.unwrap();
    let login = login.text().await.unwrap();
    let consent = browser
        .post(format!("{node_a}/login"))
        .form(&[
            ("username", "alice"),
            ("password", "alice-password"),
            ("csrf_token", &hidden(&login, "csrf_token")),
            ("request", &hidden(&login, "request")),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let approved = browser
        .post(format!("{node_a}/consent"))
        .form(&[
            ("decision", "allow"),
            ("csrf_token", &hidden(&consent, "csrf_token")),
            ("request", &hidden(&consent, "request")),
        ])
        .send()
        .await
        .unwrap();
    let location = approved.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    // Exchange on B, refresh on A.
    let (status, first) = form(
        format!("{node_b}/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", SPA),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = form(
        format!("{node_a}/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ("client_id", "spa"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{second}");

    // Introspect on B; revoke on B; A sees it revoked.
    let api = Some(("photo-api", "photo-api-secret"));
    let access = second["access_token"].as_str().unwrap();
    let (_, seen) = form(format!("{node_b}/oauth/introspect"), &[("token", access)], api).await;
    assert_eq!(seen["active"], true, "{seen}");
    let (status, _) =
        form(format!("{node_b}/oauth/revoke"), &[("token", access), ("client_id", "spa")], None)
            .await;
    assert_eq!(status, 200);
    let (_, seen) = form(format!("{node_a}/oauth/introspect"), &[("token", access)], api).await;
    assert_eq!(seen["active"], false);

    // Log out on A: the refresh token dies on B too.
    let logout = format!(
        "{node_a}/logout?id_token_hint={}&post_logout_redirect_uri=https%3A%2F%2Fspa.example.com%2F",
        first["id_token"].as_str().unwrap()
    );
    assert_eq!(browser.get(logout).send().await.unwrap().status(), 303);
    let (status, refused) = form(
        format!("{node_b}/oauth/token"),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
            ("client_id", "spa"),
        ],
        None,
    )
    .await;
    assert_eq!((status, refused["error"].as_str()), (400, Some("invalid_grant")));

    // A client added with the CLI works on both nodes at once, and stops on both once removed.
    let added = run(
        &[
            "clients",
            "add",
            "batch",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read:photos",
        ],
        &config_a.path,
        "",
    );
    assert!(added.status.success(), "{}", crate::process::stderr(&added));
    let secret = stdout(&added)
        .lines()
        .find_map(|line| line.strip_prefix("client_secret: "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no secret in: {}", stdout(&added)));
    let cc = [("grant_type", "client_credentials")];
    for node in [&node_a, &node_b] {
        let (status, body) =
            form(format!("{node}/oauth/token"), &cc, Some(("batch", &secret))).await;
        assert_eq!(status, 200, "{node}: {body}");
    }
    // Users are read on every login: a user added or changed with the CLI counts at once on
    // both nodes.
    assert!(
        run(&["users", "add", "bob"], &config_a.path, "garnet compass river owl\n")
            .status
            .success()
    );
    for node in [&node_a, &node_b] {
        assert_eq!(login_status(node, "bob", "garnet compass river owl").await, 200, "{node}");
    }
    assert!(
        run(&["users", "set-password", "bob"], &config_b.path, "fresh cobalt meadow tune\n")
            .status
            .success()
    );
    for node in [&node_a, &node_b] {
        assert_eq!(login_status(node, "bob", "garnet compass river owl").await, 401, "{node}");
        assert_eq!(login_status(node, "bob", "fresh cobalt meadow tune").await, 200, "{node}");
    }

    let removed = run(&["clients", "remove", "batch"], &config_b.path, "");
    assert!(removed.status.success(), "{}", stderr(&removed));
    // The CLI returns once no node can still hold the client in its cache, which both running
    // nodes confirmed (no wait for a cache to expire): both refuse it now.
    assert!(!stderr(&removed).contains("did not confirm"), "{}", stderr(&removed));
    for node in [&node_a, &node_b] {
        let (status, body) =
            form(format!("{node}/oauth/token"), &cc, Some(("batch", &secret))).await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{node}");
    }
}

/// `latchkey keys rotate` on one node's config: both running nodes publish the successor
/// within their refresh interval (1 s here, 60 s by default) and agree on the JWKS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotated_with_the_cli_are_published_by_both_nodes() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let nodes = [issuer.clone(), format!("http://127.0.0.1:{port_b}")];
    let (config_a, config_b) = (config(&issuer, port_a, &db.url), config(&issuer, port_b, &db.url));
    let _a = Serving::start(&config_a.path);
    let _b = Serving::start(&config_b.path);
    let http = reqwest::Client::new();
    for node in &nodes {
        wait_until_ok(&http, &format!("{node}/readyz"), Duration::from_secs(30)).await;
    }
    let jwks = |node: &str| {
        let (http, url) = (http.clone(), format!("{node}/.well-known/jwks.json"));
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let before = jwks(&nodes[0]).await["keys"].as_array().unwrap().len();
    assert_eq!(jwks(&nodes[1]).await["keys"].as_array().unwrap().len(), before);

    let rotated = run(&["keys", "rotate"], &config_a.path, "");
    assert!(rotated.status.success(), "{}", crate::process::stderr(&rotated));
    let rotated_at = std::time::Instant::now();
    for node in &nodes {
        loop {
            if jwks(node).await["keys"].as_array().unwrap().len() == 2 * before {
                break;
            }
            assert!(rotated_at.elapsed() < Duration::from_secs(5), "{node} did not publish");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(jwks(&nodes[0]).await, jwks(&nodes[1]).await);
}

/// `latchkey clients rotate-secret` on one node's config: during the overlap both nodes accept
/// the old and the new secret; a rotation without overlap ends the older ones on both at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rotated_with_overlap_works_on_both_nodes_until_it_ends() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let nodes = [issuer.clone(), format!("http://127.0.0.1:{port_b}")];
    let (config_a, config_b) = (config(&issuer, port_a, &db.url), config(&issuer, port_b, &db.url));
    let _a = Serving::start(&config_a.path);
    let _b = Serving::start(&config_b.path);
    let http = reqwest::Client::new();
    for node in &nodes {
        wait_until_ok(&http, &format!("{node}/readyz"), Duration::from_secs(30)).await;
    }
    let json = |output: std::process::Output| -> Value {
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    let add = [
        "clients",
        "add",
        "batch",
        "--json",
        "--grant-type",
        "client_credentials",
        "--scope",
        "read:photos",
    ];
    let first = json(run(&add, &config_a.path, ""))["client_secret"].as_str().unwrap().to_owned();
    let statuses = |secret: String| {
        let nodes = nodes.clone();
        async move {
            let mut statuses = Vec::new();
            for node in &nodes {
                let cc = [("grant_type", "client_credentials")];
                statuses.push(
                    form(format!("{node}/oauth/token"), &cc, Some(("batch", &secret))).await.0,
                );
            }
            statuses
        }
    };
    assert_eq!(statuses(first.clone()).await, [200, 200]);

    let rotate = ["clients", "rotate-secret", "batch", "--overlap", "1h", "--json"];
    let rotated = json(run(&rotate, &config_b.path, ""));
    let second = rotated["client_secret"].as_str().unwrap().to_owned();
    assert!(rotated["previous_secret_expires_at"].is_i64(), "{rotated}");
    assert_ne!(first, second);
    assert_eq!(statuses(first.clone()).await, [200, 200], "the old secret in its overlap");
    assert_eq!(statuses(second.clone()).await, [200, 200], "the new secret");

    let now = run(&["clients", "rotate-secret", "batch"], &config_a.path, "");
    assert!(now.status.success(), "{}", stderr(&now));
    assert!(!stderr(&now).contains("did not confirm"), "{}", stderr(&now));
    assert!(stdout(&now).contains("the previous secret no longer works"), "{}", stdout(&now));
    let third =
        stdout(&now).lines().find_map(|l| l.strip_prefix("client_secret: ")).unwrap().to_owned();
    assert_eq!(statuses(first).await, [401, 401]);
    assert_eq!(statuses(second).await, [401, 401]);
    assert_eq!(statuses(third).await, [200, 200]);

    // A public client has no secret to rotate; a config client is rotated in its file.
    let config_client = run(&["clients", "rotate-secret", "photo-api"], &config_a.path, "");
    assert_eq!(config_client.status.code(), Some(1));
    assert!(stderr(&config_client).contains("defined in the config file"));
}

/// `deploy/kubernetes`: two replicas started with the environment of `latchkey.env` exactly
/// (only the ports and the directory of the mounted Secret differ), the service links of the
/// Service named `latchkey`, and the Secret's files; both serve, share one PostgreSQL
/// database, and `latchkey healthcheck` (the image's HEALTHCHECK) says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_example_environment_runs_two_replicas() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes/latchkey.env");
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(
        secrets.path().join("master_key"),
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
    )
    .unwrap();
    std::fs::write(secrets.path().join("database_url"), format!("{}\n", db.url)).unwrap();
    let replica = |port: u16, metrics: u16| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = std::fs::read_to_string(manifest)
            .unwrap()
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (key, value) = line.split_once('=').unwrap();
                let value = match key {
                    "LATCHKEY_LISTEN" => format!("127.0.0.1:{port}"),
                    "LATCHKEY_METRICS__LISTEN" => format!("127.0.0.1:{metrics}"),
                    _ => value
                        .replace("/run/secrets/latchkey", &secrets.path().display().to_string()),
                };
                (key.to_owned(), value)
            })
            .collect();
        for (key, value) in crate::process::SERVICE_LINKS {
            env.push((key.to_owned(), value.to_owned()));
        }
        env
    };
    let ports = [(free_port(), free_port()), (free_port(), free_port())];
    let envs: Vec<Vec<(String, String)>> = ports.iter().map(|(p, m)| replica(*p, *m)).collect();
    assert!(envs[0].iter().any(|(k, v)| k == "LATCHKEY_ISSUER" && v == "https://auth.example.com"));
    fn as_refs(env: &[(String, String)]) -> Vec<(&str, String)> {
        env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
    }
    let _replicas: Vec<Serving> =
        envs.iter().map(|env| Serving::start_with_env(&as_refs(env))).collect();
    let http = reqwest::Client::new();
    for (port, metrics) in ports {
        wait_until_ok(&http, &format!("http://127.0.0.1:{port}/readyz"), Duration::from_secs(30))
            .await;
        let doc: Value = http
            .get(format!("http://127.0.0.1:{port}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["issuer"], "https://auth.example.com");
        let scrape = http.get(format!("http://127.0.0.1:{metrics}/metrics")).send().await.unwrap();
        assert_eq!(scrape.status(), 200);
    }
    for env in &envs {
        let mut check = crate::process::command(&["healthcheck"], None);
        check.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let output = check.output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    // Both replicas use the one database: a key rotated through one is published by both.
    let jwks = |port: u16| {
        let http = http.clone();
        async move {
            let keys: Value = http
                .get(format!("http://127.0.0.1:{port}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            keys
        }
    };
    assert_eq!(jwks(ports[0].0).await, jwks(ports[1].0).await);
}
