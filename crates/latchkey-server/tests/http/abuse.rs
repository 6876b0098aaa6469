//! Password guessing against a real `latchkey serve`: a burst of wrong passwords is slowed
//! down and logged, and the real user still signs in afterwards, within a bounded time.

use std::io::Read;
use std::time::{Duration, Instant};

use latchkey::oauth::pkce;

use crate::code_flow::{VERIFIER, hidden};
use crate::process::{ConfigFile, Serving, free_port, wait_until_ok};

const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const GUESSES: usize = 100;
/// The throttle's longest wait before one attempt (`throttle::MAX_DELAY`).
const MAX_DELAY: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_is_slowed_and_logged_and_the_user_still_signs_in() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = ConfigFile::sqlite(&format!(
        r#"issuer = "{base}"
listen = "127.0.0.1:{port}"

[log]
level = "warn"

[[clients]]
client_id = "web"
client_secret = "web-secret"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code"]
scopes = ["openid"]
require_consent = false

[[users]]
username = "alice"
password = "alice-password"
"#
    ));
    let mut server = Serving::start(&config.path);
    let browser = crate::code_flow::browser();
    wait_until_ok(&browser, &format!("{base}/readyz"), Duration::from_secs(30)).await;
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("code_challenge", &pkce::s256(VERIFIER)),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let page = browser.get(format!("{base}/authorize?{query}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    let (csrf, request) = (hidden(&page, "csrf_token"), hidden(&page, "request"));
    let login = |password: &'static str| {
        let form = [
            ("username", "alice".to_owned()),
            ("password", password.to_owned()),
            ("csrf_token", csrf.clone()),
            ("request", request.clone()),
        ];
        let (browser, url) = (browser.clone(), format!("{base}/login"));
        async move {
            let started = Instant::now();
            let response = browser.post(url).form(&form).send().await.unwrap();
            (response.status().as_u16(), started.elapsed())
        }
    };

    // All guesses at once, as an attacker would send them.
    let guesses: Vec<_> = (0..GUESSES).map(|_| tokio::spawn(login("wrong-password"))).collect();
    let mut waits = Vec::new();
    for guess in guesses {
        let (status, took) = guess.await.unwrap();
        assert_eq!(status, 401, "a wrong password gets the login page again with 401");
        waits.push(took);
    }
    waits.sort();
    let slowed = waits.iter().filter(|w| **w >= MAX_DELAY / 2).count();
    eprintln!(
        "{GUESSES} concurrent guesses: fastest {:?}, median {:?}, slowest {:?}; {slowed} waited at least {:?}",
        waits[0],
        waits[GUESSES / 2],
        waits[GUESSES - 1],
        MAX_DELAY / 2
    );
    assert!(
        slowed >= GUESSES * 8 / 10,
        "only {slowed} of {GUESSES} concurrent guesses were slowed"
    );

    // The real user, right after the burst: one longest wait at most, plus the hashing.
    let (status, took) = login("alice-password").await;
    eprintln!("the real user signed in after {took:?}");
    assert_eq!(status, 303, "the right password signs in despite the attack");
    assert!(took < MAX_DELAY + Duration::from_secs(4), "the real user waited {took:?}");

    let metrics =
        browser.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
    };
    assert_eq!(value("latchkey_login_failures_total"), GUESSES as f64);
    assert!(value("latchkey_throttled_total{kind=\"login\"}") >= (GUESSES * 8 / 10) as f64);

    assert!(server.terminate(Duration::from_secs(10)).success());
    let mut log = String::new();
    server.child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let mut stdout = String::new();
    server.child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    log.push_str(&stdout);
    let events = log.lines().filter(|line| line.contains("login_failure")).count();
    assert_eq!(events, GUESSES, "each failure is logged as a security event:\n{log}");
    assert!(!log.contains("wrong-password"), "a password reached the log");
}
