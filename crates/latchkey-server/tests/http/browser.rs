//! The sign-in in a real browser: headless Chromium over WebDriver types into the login form,
//! approves consent and lands on the client's redirect URI with a code. Screenshots of both
//! pages are saved under `target/test-artifacts/`.
//!
//! Needs Debian's `chromium` and `chromium-driver`; skipped without them, except under
//! `CI=true`, where `.ci/run` installs them and a skip is a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use latchkey::oauth::pkce;

use crate::code_flow::VERIFIER;
use crate::process::free_port;
use crate::{TestServer, sqlite_db};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

const CONFIG: &str = r#"
[[clients]]
client_id = "desktop"
client_name = "Desktop Photo App"
application_type = "native"
redirect_uris = ["http://127.0.0.1/callback"]
grant_types = ["authorization_code"]
scopes = ["openid", "profile"]

[[users]]
username = "alice"
password = "alice-password"
"#;

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A callback endpoint for the native app: any answer will do, the URL is what counts.
async fn callback_listener() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route("/callback", axum::routing::get(|| async { "signed in" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_and_consents_in_headless_chromium() {
    if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "CI must run the browser test: install chromium and chromium-driver"
        );
        eprintln!("skipped: chromium or chromedriver is not installed");
        return;
    }
    let db = sqlite_db();
    let server = TestServer::start(&db, CONFIG).await;
    server.state.static_loaded.clone().wait_for(|done| *done).await.unwrap();
    let callback_port = callback_listener().await;

    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-dev-shm-usage", "--window-size=900,800",
                     format!("--user-data-dir={}", profile.path().display())],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let browser = loop {
        match ClientBuilder::new(connector.clone())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(client) => break client,
            Err(error) => {
                assert!(Instant::now() < deadline, "chromedriver did not start: {error}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };

    let redirect = format!("http://127.0.0.1:{callback_port}/callback");
    let challenge = pkce::s256(VERIFIER);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "desktop"),
        ("redirect_uri", redirect.as_str()),
        ("scope", "openid profile"),
        ("state", "browser-state"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    browser.goto(&format!("{}?{query}", server.url("/authorize"))).await.unwrap();
    browser
        .find(Locator::Css("input[name=username]"))
        .await
        .unwrap()
        .send_keys("alice")
        .await
        .unwrap();
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys("alice-password")
        .await
        .unwrap();
    std::fs::write(artifacts().join("login.png"), browser.screenshot().await.unwrap()).unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();

    let allow = browser.wait().for_element(Locator::Css("button[value=allow]")).await.unwrap();
    let text = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("Desktop Photo App") && text.contains("See your name and username"),
        "{text}"
    );
    std::fs::write(artifacts().join("consent.png"), browser.screenshot().await.unwrap()).unwrap();
    allow.click().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let landed = loop {
        let url = browser.current_url().await.unwrap();
        if url.as_str().starts_with(&redirect) {
            break url;
        }
        assert!(Instant::now() < deadline, "never reached the redirect URI, at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let params: std::collections::HashMap<_, _> = landed.query_pairs().into_owned().collect();
    assert!(params.get("code").is_some_and(|c| c.len() == 43), "{landed}");
    assert_eq!(params["state"], "browser-state");
    assert_eq!(params["iss"], server.base);
    browser.close().await.unwrap();
    drop(driver);
}
