//! Races between ending access and using it. An administrator runs `latchkey clients remove`
//! (its own process, as in production) while the client keeps asking for tokens: once the
//! removal has returned, no request may get a token, whatever the grant and whatever the caches
//! hold, and the tokens it holds are inactive. A client revokes a refresh token while it is
//! being rotated: once the revocation has answered, nothing of the family is live.

use latchkey_testkit::fixtures::post_form;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{ConfigFile, run, stderr, stdout};
use crate::{TestDb, TestServer};

const CONFIG: &str = concat!(
    r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos"]
client_id = "photos-api"

[[clients]]
client_id = "photos-api"
client_secret = "photos-api-secret"
grant_types = ["client_credentials"]
scopes = []

[[clients]]
client_id = "app"
client_secret = "app-secret"
grant_types = ["password", "refresh_token"]
scopes = ["read:photos"]
"#,
    latchkey_testkit::user_alice!()
);

/// One request: when it was sent and the status it got.
struct Attempt {
    sent: Instant,
    status: u16,
    grant: &'static str,
}

impl Attempt {
    fn since(&self, start: Instant) -> u128 {
        self.sent.duration_since(start).as_millis()
    }
}

/// A POST to `path` authenticated as `client_id`: status and JSON body.
async fn post(
    server: &TestServer,
    path: &str,
    client: (&str, &str),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let (status, _, body) = post_form(&server.url(path), Some(client), form).await;
    (status.as_u16(), body)
}

async fn token(server: &TestServer, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    post(server, "/oauth/token", ("batch", secret), form).await
}

/// What the photo API's client learns about a token by introspection.
async fn introspect(server: &TestServer, token: &str) -> Value {
    let caller = ("photos-api", "photos-api-secret");
    post(server, "/oauth/introspect", caller, &[("token", token)]).await.1
}

async fn no_token_is_issued_after_a_client_removal_returns(db: TestDb) {
    let server = TestServer::start_ready(&db, CONFIG).await;
    let cli = ConfigFile::new(&format!(
        "issuer = \"{}\"\n[database]\nurl = \"{}\"\n{CONFIG}",
        server.base, db.url
    ));
    let added = run(
        &[
            "clients",
            "add",
            "batch",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--scope",
            "read:photos",
        ],
        &cli.path,
        "",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let secret: Arc<str> = stdout(&added)
        .lines()
        .find_map(|line| line.strip_prefix("client_secret: "))
        .unwrap_or_else(|| panic!("no secret in: {}", stdout(&added)))
        .into();
    let server = Arc::new(server);
    // A client-credentials JWT is recorded nowhere: introspection must still see it die with
    // its client.
    let (status, body) = token(&server, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200, "{body}");
    let held = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&server, &held).await["active"], true);

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // Workers that have had a success: the removal waits for all four, so that each grant is
    // shown to work before it and to fail after it, however slow the machine.
    let succeeded = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..4 {
        let (server, secret, stop) = (server.clone(), secret.clone(), stop.clone());
        let succeeded = succeeded.clone();
        workers.spawn(async move {
            let mut attempts = Vec::new();
            // Two workers use client credentials; two refresh a token from the password grant.
            let mut refresh = None;
            if worker >= 2 {
                let form = [
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", "alice-password"),
                ];
                // One password check at a time per account: the other worker waits its turn.
                let (status, body) = loop {
                    match token(&server, &secret, &form).await {
                        (429, _) => tokio::time::sleep(Duration::from_millis(200)).await,
                        answer => break answer,
                    }
                };
                assert_eq!(status, 200, "{body}");
                refresh = Some(body["refresh_token"].as_str().unwrap().to_owned());
            }
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let (grant, (status, body)) = match &refresh {
                    None => {
                        let form = [("grant_type", "client_credentials")];
                        ("client_credentials", token(&server, &secret, &form).await)
                    }
                    Some(current) => {
                        let form = [("grant_type", "refresh_token"), ("refresh_token", current)];
                        ("refresh_token", token(&server, &secret, &form).await)
                    }
                };
                if status == 200 {
                    if attempts.iter().all(|a: &Attempt| a.status != 200) {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    }
                    if grant == "refresh_token" {
                        refresh = Some(body["refresh_token"].as_str().unwrap().to_owned());
                    }
                }
                attempts.push(Attempt { sent, status, grant });
            }
            attempts
        });
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while succeeded.load(Ordering::Relaxed) < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if succeeded.load(Ordering::Relaxed) < 4 {
        stop.store(true, Ordering::Relaxed);
        let attempts: Vec<Attempt> = workers.join_all().await.into_iter().flatten().collect();
        panic!(
            "not every worker got a token within 30 s; statuses by ms since the start: {:?}",
            attempts.iter().map(|a| (a.grant, a.since(started), a.status)).collect::<Vec<_>>()
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let path = cli.path.clone();
    let removed =
        tokio::task::spawn_blocking(move || run(&["clients", "remove", "batch"], &path, ""))
            .await
            .unwrap();
    let removed_at = Instant::now();
    assert!(removed.status.success(), "{}", stderr(&removed));
    // The running node confirmed that it forgot the client: no wait for its cache to expire.
    assert!(!stderr(&removed).contains("did not confirm"), "{}", stderr(&removed));
    tokio::time::sleep(Duration::from_millis(400)).await;
    stop.store(true, Ordering::Relaxed);

    let attempts: Vec<Attempt> = workers.join_all().await.into_iter().flatten().collect();
    let before = attempts.iter().filter(|a| a.sent < removed_at && a.status == 200).count();
    let after: Vec<&Attempt> = attempts.iter().filter(|a| a.sent >= removed_at).collect();
    for grant in ["client_credentials", "refresh_token"] {
        assert!(
            attempts.iter().any(|a| a.grant == grant && a.status == 200 && a.sent < removed_at),
            "{grant} never succeeded before the removal"
        );
        assert!(after.iter().any(|a| a.grant == grant), "no {grant} request after the removal");
    }
    for attempt in &after {
        assert!(
            matches!(attempt.status, 400 | 401),
            "{} sent {:?} after the removal returned got {}",
            attempt.grant,
            attempt.sent - removed_at,
            attempt.status
        );
    }
    assert_eq!(introspect(&server, &held).await, serde_json::json!({"active": false}));
    eprintln!("{before} tokens before the removal, {} refused after it", after.len());
}

/// RFC 7009 §2.1: revoking a refresh token revokes its grant. However the revocation
/// interleaves with rotations of the same family, once it has answered nothing of the family is
/// live: no refresh token rotates and no access token is active, including any handed out while
/// the revocation was running.
async fn a_revocation_racing_refreshes_leaves_nothing_live(db: TestDb) {
    let server = Arc::new(TestServer::start_ready(&db, CONFIG).await);
    let app = ("app", "app-secret");
    let mut revoked_mid_chain = 0;
    for round in 0..12u64 {
        let login =
            [("grant_type", "password"), ("username", "alice"), ("password", "alice-password")];
        let (status, body) = post(&server, "/oauth/token", app, &login).await;
        assert_eq!(status, 200, "{body}");
        let pair = |body: &Value| {
            let field = |name: &str| body[name].as_str().unwrap().to_owned();
            (field("access_token"), field("refresh_token"))
        };
        // Every token the family handed out, newest last.
        let issued = Arc::new(Mutex::new(vec![pair(&body)]));
        let revoked = Arc::new(AtomicBool::new(false));
        let refresher = {
            let (server, issued) = (server.clone(), issued.clone());
            let revoked = revoked.clone();
            tokio::spawn(async move {
                // A rotation that had started before the revocation answered may still finish;
                // the ones after it must fail at once.
                let mut after_revocation = 0;
                loop {
                    if revoked.load(Ordering::SeqCst) {
                        after_revocation += 1;
                        assert!(after_revocation <= 2, "refreshes go on after the revocation");
                    }
                    let current = issued.lock().unwrap().last().unwrap().1.clone();
                    let form =
                        [("grant_type", "refresh_token"), ("refresh_token", current.as_str())];
                    let (status, body) = post(&server, "/oauth/token", app, &form).await;
                    if status != 200 {
                        assert_eq!(body["error"], "invalid_grant", "{status} {body}");
                        return;
                    }
                    issued.lock().unwrap().push(pair(&body));
                }
            })
        };
        // Revoke whichever refresh token is newest: at once in the first round, later after at
        // least one rotation and a varying head start.
        let deadline = Instant::now() + Duration::from_secs(10);
        while round > 0 && issued.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(3 * round)).await;
        let newest = issued.lock().unwrap().last().unwrap().1.clone();
        let revocation = [("token", newest.as_str()), ("token_type_hint", "refresh_token")];
        let (status, body) = post(&server, "/oauth/revoke", app, &revocation).await;
        assert_eq!(status, 200, "{body}");
        revoked.store(true, Ordering::SeqCst);
        refresher.await.unwrap();

        let issued = issued.lock().unwrap().clone();
        revoked_mid_chain += usize::from(issued.len() > 1);
        for (access, refresh) in &issued {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
            let (status, body) = post(&server, "/oauth/token", app, &form).await;
            assert_eq!((status, &body["error"]), (400, &Value::from("invalid_grant")), "{body}");
            assert_eq!(introspect(&server, access).await, serde_json::json!({"active": false}));
        }
    }
    assert!(revoked_mid_chain > 0, "no revocation landed after a rotation: the race never ran");
}

crate::on_both_engines!(
    no_token_is_issued_after_a_client_removal_returns,
    a_revocation_racing_refreshes_leaves_nothing_live,
);
