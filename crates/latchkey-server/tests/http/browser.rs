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

use crate::TestServer;
use crate::code_flow::VERIFIER;
use crate::process::free_port;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

const CONFIG: &str = concat!(
    r#"
[[clients]]
client_id = "desktop"
client_name = "Desktop Photo App"
application_type = "native"
redirect_uris = ["http://127.0.0.1/callback"]
grant_types = ["authorization_code"]
scopes = ["openid", "profile"]
"#,
    latchkey_testkit::user_alice!()
);

pub(crate) struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn artifacts() -> PathBuf {
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

/// Whether the browser tests can run here; under `CI=true` they must.
pub(crate) fn browser_available() -> bool {
    latchkey_testkit::tool_available(
        Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
        "chromium or chromedriver",
        "apt-get install chromium chromium-driver",
    )
}

/// Headless Chromium behind chromedriver; both go away when the returned values drop.
pub(crate) async fn start_browser() -> (Driver, fantoccini::Client, tempfile::TempDir) {
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
    (driver, browser, profile)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_and_consents_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let db = crate::TestDb::sqlite();
    let server = TestServer::start_ready(&db, CONFIG).await;
    let callback_port = callback_listener().await;
    let (driver, browser, _profile) = start_browser().await;

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

/// Stops the demo with SIGINT (Ctrl-C) if the test ends early.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Three consecutive free ports on 127.0.0.1, for `latchkey demo --port-base`.
fn free_port_triple() -> u16 {
    for _ in 0..100 {
        let base = free_port();
        if base < 65_000
            && (1..3).all(|n| std::net::TcpListener::bind(("127.0.0.1", base + n)).is_ok())
        {
            return base;
        }
    }
    panic!("no three consecutive free ports");
}

/// `latchkey demo` as a user runs it: sign in at the demo web app in a real browser and land
/// on the photo list fetched from the PhotoAPI; then Ctrl-C stops everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_signs_in_and_shows_photos_in_headless_chromium() {
    if !browser_available() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let base = free_port_triple();
    let (issuer, client) =
        (format!("http://127.0.0.1:{base}"), format!("http://127.0.0.1:{}", base + 2));
    let mut demo = Demo(
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("demo")
            .arg("--data-dir")
            .arg(data.path())
            .arg("--port-base")
            .arg(base.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http.get(format!("{issuer}/readyz")).send().await;
        let up = http.get(format!("{client}/")).send().await;
        if ready.is_ok_and(|r| r.status() == 200) && up.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the demo did not come up on ports {base}-{}", base + 2);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (driver, browser, _profile) = start_browser().await;
    browser.goto(&format!("{client}/")).await.unwrap();
    browser.find(Locator::Id("sign-in")).await.unwrap().click().await.unwrap();
    let username = browser.wait().for_element(Locator::Css("input[name=username]")).await.unwrap();
    username.send_keys("alice").await.unwrap();
    let password = browser.find(Locator::Css("input[name=password]")).await.unwrap();
    password.send_keys("demo-password").await.unwrap();
    browser.find(Locator::Css("button[type=submit]")).await.unwrap().click().await.unwrap();
    let allow = browser.wait().for_element(Locator::Css("button[value=allow]")).await.unwrap();
    allow.click().await.unwrap();
    let list = browser.wait().for_element(Locator::Id("photos")).await.unwrap();
    let text = list.text().await.unwrap();
    assert!(text.contains("Welcome to latchkey"), "{text}");
    let page = browser.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
    assert!(page.contains("Signed in as alice"), "{page}");
    std::fs::write(artifacts().join("demo-photos.png"), browser.screenshot().await.unwrap())
        .unwrap();
    browser.close().await.unwrap();
    drop(driver);

    // Ctrl-C: the demo stops on its own, cleanly.
    let interrupted = Command::new("kill").arg("-INT").arg(demo.0.id().to_string()).status();
    assert!(interrupted.unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = demo.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the demo did not stop on Ctrl-C");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
}
