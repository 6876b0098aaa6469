//! Password guessing against real `latchkey serve` processes: concurrency buys an attacker
//! nothing. Guesses outside the account's schedule are refused at once with 429 and
//! `Retry-After` (no hash), at most one is checked at a time, the back-off holds, and on
//! PostgreSQL two nodes share one schedule. The real user still signs in.

use std::time::{Duration, Instant};

use crate::flood::{LoginForm, metric};
use crate::process::{ConfigFile, Serving, free_port, wait_until_ok};

const REDIRECT: &str = "http://127.0.0.1:9000/callback";
/// `throttle::FREE_FAILURES`: failures checked before the back-off starts.
const FREE_FAILURES: usize = 5;

/// A node of `issuer` on `port` and `database`, with one confidential web client and the user
/// alice.
pub fn config(issuer: &str, port: u16, database: &str, extra: &str) -> ConfigFile {
    ConfigFile::new(&format!(
        r#"issuer = "{issuer}"
listen = "127.0.0.1:{port}"

[database]
url = "{database}"

[log]
level = "warn"

{extra}

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
    ))
}

/// A `latchkey serve` on its own SQLite file with [`config`] and `extra`, ready.
pub struct SqliteNode {
    pub server: Serving,
    pub base: String,
    pub port: u16,
    _config: ConfigFile,
    _dir: tempfile::TempDir,
}

impl SqliteNode {
    pub async fn start(extra: &str) -> SqliteNode {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("latchkey.db").display());
        let config = config(&base, port, &database, extra);
        let server = Serving::start(&config.path);
        wait_until_ok(&crate::client(), &format!("{base}/readyz"), Duration::from_secs(30)).await;
        SqliteNode { server, base, port, _config: config, _dir: dir }
    }
}

async fn metrics(base: &str) -> String {
    crate::client().get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_are_refused_outside_the_schedule_and_the_user_still_signs_in() {
    let mut node = SqliteNode::start("").await;
    let base = node.base.clone();
    let form = LoginForm::open(&base).await;

    // The free failures, one after another: each is checked (401).
    for _ in 0..FREE_FAILURES {
        assert_eq!(form.submit(&base, "alice", "wrong-password").await.0, 401);
    }
    let last_failure = Instant::now();

    // Thirty guesses at once, then the right password: those sent inside the back-off are
    // refused at once with when to retry, never checked. (On a loaded machine some may only
    // leave after the 1 s back-off; the schedule then lets exactly one of them be checked.)
    let send = |username: &'static str, password: &'static str| {
        let (form, base) = (form.clone(), base.clone());
        tokio::spawn(async move {
            let sent = last_failure.elapsed();
            let (status, retry) = form.submit(&base, username, password).await;
            (sent, status, retry)
        })
    };
    let mut burst: Vec<_> = (0..30).map(|_| send("ALICE ", "wrong-password")).collect();
    burst.push(send("alice", "alice-password"));
    let (mut late_checks, mut signed_in_at) = (0, None);
    for answer in burst {
        let (sent, status, retry) = answer.await.unwrap();
        if sent < Duration::from_millis(900) {
            assert_eq!(status, 429, "an attempt inside the back-off is refused, never checked");
        }
        match status {
            429 => assert!(retry.is_some_and(|s| s >= 1), "429 says when to retry: {retry:?}"),
            401 => late_checks += 1,
            303 => signed_in_at = Some(sent),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(late_checks + usize::from(signed_in_at.is_some()) <= 1, "one check per back-off");
    let checked = metric(&metrics(&base).await, "latchkey_login_failures_total");
    assert_eq!(checked, (FREE_FAILURES + late_checks) as f64, "a refused guess cost a hash");

    // The real user follows Retry-After and gets in once the back-off has run, not before.
    let waited = match signed_in_at {
        Some(sent) => sent,
        None => {
            let status = loop {
                let (status, retry) = form.submit(&base, "alice", "alice-password").await;
                if status != 429 || last_failure.elapsed() > Duration::from_secs(20) {
                    break status;
                }
                tokio::time::sleep(Duration::from_secs(retry.unwrap())).await;
            };
            assert_eq!(status, 303, "the right password signs in after the back-off");
            last_failure.elapsed()
        }
    };
    eprintln!("the real user signed in {waited:?} after the last checked failure");
    assert!(waited >= Duration::from_secs(1), "signed in inside the 1 s back-off: {waited:?}");

    assert!(node.server.terminate(Duration::from_secs(10)).success());
    let log = node.server.output();
    let events = log.lines().filter(|line| line.contains("login_failure")).count();
    assert_eq!(
        events,
        FREE_FAILURES + late_checks,
        "each checked failure is a security event:\n{log}"
    );
    assert!(!log.contains("wrong-password"), "a password reached the log");
}

/// An attacker that follows `Retry-After` and alternates between `nodes` for `duration`:
/// how many of its guesses were checked (401).
async fn guess_for(nodes: &[String], form: &LoginForm, duration: Duration) -> usize {
    let started = Instant::now();
    let mut checked = 0;
    // Two guessers side by side, as concurrency would help an attacker if it could.
    let mut guessers = Vec::new();
    for offset in 0..2 {
        let (nodes, form) = (nodes.to_vec(), form.clone());
        guessers.push(tokio::spawn(async move {
            let (mut checked, mut turn) = (0usize, offset);
            while started.elapsed() < duration {
                let node = &nodes[turn % nodes.len()];
                turn += 1;
                match form.submit(node, "alice", "wrong-password").await {
                    (401, _) => checked += 1,
                    (429, _) => tokio::time::sleep(Duration::from_millis(50)).await,
                    other => panic!("unexpected answer to a guess: {other:?}"),
                }
            }
            checked
        }));
    }
    for guesser in guessers {
        checked += guesser.await.unwrap();
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_schedule_so_adding_nodes_adds_no_guesses() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let nodes = [issuer.clone(), format!("http://127.0.0.1:{port_b}")];
    let (config_a, config_b) =
        (config(&issuer, port_a, &db.url, ""), config(&issuer, port_b, &db.url, ""));
    let _a = Serving::start(&config_a.path);
    let _b = Serving::start(&config_b.path);
    for node in &nodes {
        wait_until_ok(&crate::client(), &format!("{node}/readyz"), Duration::from_secs(30)).await;
    }
    let form = LoginForm::open(&nodes[0]).await;

    // In 6 s the schedule allows the 5 free failures, then one after the 1 s back-off (2 s
    // with rounding) and one after the 2 s back-off (3 s): 7 checks, whatever the number of
    // nodes or guessers. Two nodes with a schedule each would allow about twice that.
    let checked = guess_for(&nodes, &form, Duration::from_secs(6)).await;
    eprintln!("guesses checked in 6 s over two nodes: {checked}");
    assert!(checked >= FREE_FAILURES, "the free failures were checked: {checked}");
    assert!(
        checked <= 8,
        "{checked} guesses were checked in 6 s: the nodes do not share the schedule"
    );

    // The real user, on either node, once the back-off has run.
    let started = Instant::now();
    let status = loop {
        let node = &nodes[1];
        let (status, retry) = form.submit(node, "alice", "alice-password").await;
        if status != 429 || started.elapsed() > Duration::from_secs(20) {
            break status;
        }
        tokio::time::sleep(Duration::from_secs(retry.unwrap())).await;
    };
    assert_eq!(status, 303, "the real user signs in after the back-off");
}
