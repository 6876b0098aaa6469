//! Crash safety: real `latchkey serve` processes killed with SIGKILL in the middle of a load of
//! code exchanges and refreshes, then the books checked against the database.
//!
//! What a client was told must hold: a code exchanged with a 200 is spent for good, a refresh
//! token rotated with a 200 is spent for good, the last refresh token of every chain still
//! works, no family has two live tokens, no code is spent without its grant, and every grant
//! in the database is one the load generator was given (or whose answer a crash swallowed).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use latchkey::oauth::pkce;
use serde_json::Value;

use crate::TestDb;
use crate::code_flow::{VERIFIER, hidden};
use crate::process::{ConfigFile, Serving, free_port, wait_until_ok};

const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const WORKERS: usize = 4;
const REFRESHES_PER_CHAIN: usize = 4;

fn config(issuer: &str, port: u16, database: &str) -> ConfigFile {
    ConfigFile::new(&format!(
        r#"issuer = "{issuer}"
listen = "127.0.0.1:{port}"

[database]
url = "{database}"

[log]
level = "error"

[[clients]]
client_id = "web"
client_secret = "web-secret"
redirect_uris = ["{REDIRECT}"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "offline_access"]
require_consent = false
refresh_grace_period = "30s"

[[users]]
username = "alice"
password = "alice-password"
"#
    ))
}

/// What the load generator saw. Every counter is reported; the `must be 0` ones are asserted.
#[derive(Default, Debug)]
struct Tally {
    /// Codes exchanged with a 200: hashes, to check in the database.
    exchanged: Vec<String>,
    /// Exchanges sent again because the connection was cut or refused (the answer, if any,
    /// was lost).
    exchange_retries: u64,
    /// Of those, the ones refused on the second try: the first try had committed, spending the
    /// code and storing its grant (which the replay revoked), but its answer was lost.
    codes_spent_by_a_lost_answer: u64,
    /// Refresh tokens rotated with a 200: hashes, to check in the database.
    rotated: Vec<String>,
    /// Refreshes sent again because the connection was cut or refused (the grace window
    /// answers a retry whose first try had rotated).
    refresh_retries: u64,
    /// The last refresh token of each chain, which must still work at the end.
    chain_ends: Vec<String>,
    /// Refresh tokens received in a 200 and later refused (must be 0).
    refused_refresh_tokens: u64,
    /// 5xx answers (must be 0).
    server_errors: u64,
}

/// The nodes a worker talks to: it stays on one until a connection to it fails, then moves on
/// to the next.
struct Nodes {
    bases: Vec<String>,
    next: usize,
}

impl Nodes {
    fn base(&self) -> &str {
        &self.bases[self.next % self.bases.len()]
    }

    fn failed(&mut self) {
        self.next += 1;
    }
}

fn authorize_path() -> String {
    let challenge = pkce::s256(VERIFIER);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid offline_access"),
        ("state", "s"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    format!("/authorize?{query}")
}

fn code_of(response: &reqwest::Response) -> String {
    let location = response.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned()).unwrap()
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    form: &[(&str, &str)],
) -> Result<(u16, Value), reqwest::Error> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .basic_auth("web", Some("web-secret"))
        .form(form)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// One simulated client: signs in once, then runs chains (a code, its exchange, a few
/// refreshes) until told to stop, retrying whatever a crash interrupted.
async fn worker(bases: Vec<String>, stop: Arc<AtomicBool>) -> Tally {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut nodes = Nodes { bases, next: 0 };
    let mut tally = Tally::default();
    let deadline = Instant::now() + Duration::from_secs(120);
    let pause = || tokio::time::sleep(Duration::from_millis(20));

    // Sign in (the session lives in the database, so it survives crashes and node changes).
    let page = loop {
        assert!(Instant::now() < deadline, "no node answered the sign-in");
        match http.get(format!("{}{}", nodes.base(), authorize_path())).send().await {
            Ok(response) if response.status() == 200 => break response.text().await.unwrap(),
            Ok(response) => panic!("authorize answered {}", response.status()),
            Err(_) => {
                nodes.failed();
                pause().await;
            }
        }
    };
    let form = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    loop {
        assert!(Instant::now() < deadline, "no node answered the login");
        match http.post(format!("{}/login", nodes.base())).form(&form).send().await {
            Ok(response) if response.status() == 303 => break,
            // A node killed mid-login leaves the account's attempt slot held until its lease
            // ends, and a restarted one may shed while it hashes its static users; both say
            // when to come back.
            Ok(response) if response.status() == 429 || response.status() == 503 => {
                let retry = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_secs(retry)).await;
            }
            Ok(response) => {
                let status = response.status();
                panic!("login answered {status}: {}", response.text().await.unwrap_or_default())
            }
            Err(_) => {
                nodes.failed();
                pause().await;
            }
        }
    }

    while !stop.load(Ordering::Relaxed) {
        assert!(Instant::now() < deadline, "the load did not finish in time");
        let code = match http.get(format!("{}{}", nodes.base(), authorize_path())).send().await {
            Ok(response) if response.status() == 303 => code_of(&response),
            Ok(response) if response.status().is_server_error() => {
                tally.server_errors += 1;
                continue;
            }
            Ok(response) => panic!("authorize answered {}", response.status()),
            Err(_) => {
                nodes.failed();
                pause().await;
                continue;
            }
        };
        let exchange = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ];
        let mut tries = 0;
        let first_refresh_token = loop {
            tries += 1;
            match token(&http, nodes.base(), &exchange).await {
                Ok((200, body)) => {
                    tally.exchanged.push(latchkey::secret::hash(&code));
                    break Some(body["refresh_token"].as_str().unwrap().to_owned());
                }
                Ok((400, body)) if tries > 1 && body["error"] == "invalid_grant" => {
                    tally.codes_spent_by_a_lost_answer += 1;
                    break None;
                }
                Ok((status, _)) if status >= 500 => tally.server_errors += 1,
                Ok((status, body)) => panic!("a fresh code got {status}: {body}"),
                Err(_) => {
                    tally.exchange_retries += 1;
                    nodes.failed();
                    pause().await;
                }
            }
        };
        let Some(mut refresh_token) = first_refresh_token else { continue };
        for _ in 0..REFRESHES_PER_CHAIN {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
            let next = loop {
                match token(&http, nodes.base(), &form).await {
                    Ok((200, body)) => {
                        break Some(body["refresh_token"].as_str().unwrap().to_owned());
                    }
                    Ok((status, _)) if status >= 500 => tally.server_errors += 1,
                    Ok((_, _)) => break None,
                    Err(_) => {
                        tally.refresh_retries += 1;
                        nodes.failed();
                        pause().await;
                    }
                }
            };
            match next {
                Some(successor) => {
                    tally.rotated.push(latchkey::secret::hash(&refresh_token));
                    refresh_token = successor;
                }
                None => {
                    tally.refused_refresh_tokens += 1;
                    break;
                }
            }
        }
        tally.chain_ends.push(refresh_token);
    }
    tally
}

/// Runs [`WORKERS`] workers against `bases` while `meddle` kills nodes; returns the merged tally.
async fn under_load(bases: &[String], meddle: impl Future<Output = ()>) -> Tally {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            // Each worker starts on a different node.
            let mut mine = bases.to_vec();
            mine.rotate_left(w % bases.len());
            tokio::spawn(worker(mine, stop.clone()))
        })
        .collect();
    meddle.await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker.await.unwrap();
        total.exchanged.extend(tally.exchanged);
        total.exchange_retries += tally.exchange_retries;
        total.codes_spent_by_a_lost_answer += tally.codes_spent_by_a_lost_answer;
        total.rotated.extend(tally.rotated);
        total.refresh_retries += tally.refresh_retries;
        total.chain_ends.extend(tally.chain_ends);
        total.refused_refresh_tokens += tally.refused_refresh_tokens;
        total.server_errors += tally.server_errors;
    }
    total
}

/// The database, read directly.
enum Books {
    Sqlite(rusqlite::Connection),
    Postgres(sqlx::PgPool),
}

impl Books {
    async fn open(url: &str) -> Books {
        match url.strip_prefix("sqlite://") {
            Some(path) => Books::Sqlite(rusqlite::Connection::open(path).unwrap()),
            None => Books::Postgres(
                sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url).await.unwrap(),
            ),
        }
    }

    /// A count query with `?` for its one optional text parameter (`$1` on PostgreSQL).
    async fn count(&self, sql: &str, param: Option<&str>) -> i64 {
        match self {
            Books::Sqlite(c) => match param {
                Some(p) => c.query_row(sql, [p], |row| row.get(0)).unwrap(),
                None => c.query_row(sql, [], |row| row.get(0)).unwrap(),
            },
            Books::Postgres(pool) => {
                let sql = sql.replace('?', "$1");
                let query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
                let query = match param {
                    Some(p) => query.bind(p.to_owned()),
                    None => query,
                };
                query.fetch_one(pool).await.unwrap()
            }
        }
    }

    /// Every migration file is recorded as applied, and (SQLite) the file is intact.
    async fn check_integrity(&self) {
        let engine = match self {
            Books::Sqlite(_) => "sqlite",
            Books::Postgres(_) => "postgres",
        };
        let dir = format!("{}/../latchkey/migrations/{engine}", env!("CARGO_MANIFEST_DIR"));
        let files = std::fs::read_dir(dir).unwrap().count() as i64;
        match self {
            Books::Sqlite(c) => {
                let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
                assert_eq!(ok, "ok");
                assert_eq!(self.count("SELECT count(*) FROM schema_migrations", None).await, files);
            }
            Books::Postgres(_) => {
                let applied =
                    self.count("SELECT count(*) FROM _sqlx_migrations WHERE success", None).await;
                assert_eq!(applied, files);
            }
        }
    }
}

/// Checks the tally against the database and the live nodes, and reports the counts.
async fn audit(what: &str, tally: &Tally, database: &str, live: &str) {
    let books = Books::open(database).await;
    books.check_integrity().await;

    let mut unspent_codes = 0;
    for hash in &tally.exchanged {
        let sql = "SELECT count(*) FROM authorization_codes WHERE code_hash = ? AND redeemed_at IS NOT NULL";
        unspent_codes += 1 - books.count(sql, Some(hash)).await;
    }
    let mut unspent_refresh = 0;
    for hash in &tally.rotated {
        let sql =
            "SELECT count(*) FROM refresh_tokens WHERE token_hash = ? AND rotated_at IS NOT NULL";
        unspent_refresh += 1 - books.count(sql, Some(hash)).await;
    }
    let forked = books
        .count(
            "SELECT count(*) FROM (SELECT grant_id FROM refresh_tokens WHERE rotated_at IS NULL
             GROUP BY grant_id HAVING count(*) > 1) f",
            None,
        )
        .await;
    let grants = books.count("SELECT count(*) FROM grants", None).await;
    let spent = books
        .count("SELECT count(*) FROM authorization_codes WHERE redeemed_at IS NOT NULL", None)
        .await;
    let spent_without_grant = books
        .count(
            "SELECT count(*) FROM authorization_codes c WHERE c.redeemed_at IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.id = c.grant_id)",
            None,
        )
        .await;

    // Over HTTP: every chain's last token still works (rotating it once more).
    let http = reqwest::Client::new();
    let mut dead_chain_ends = 0;
    for end in &tally.chain_ends {
        let form = [("grant_type", "refresh_token"), ("refresh_token", end.as_str())];
        let (status, body) = token(&http, live, &form).await.unwrap();
        if status != 200 {
            eprintln!("chain end refused: {status} {body}");
            dead_chain_ends += 1;
        }
    }

    eprintln!(
        "{what}: {} codes exchanged ({} retried after a lost answer, {} of them spent by it), \
         {} refreshes ({} retried), {} chains, {grants} grants stored for {spent} spent codes; \
         redeemed twice or unrecorded: {unspent_codes}, spent without a grant: \
         {spent_without_grant}, rotation unrecorded: {unspent_refresh}, \
         forked families: {forked}, refused refresh tokens: {}, dead chain ends: \
         {dead_chain_ends}, 5xx: {}",
        tally.exchanged.len(),
        tally.exchange_retries,
        tally.codes_spent_by_a_lost_answer,
        tally.rotated.len(),
        tally.refresh_retries,
        tally.chain_ends.len(),
        tally.refused_refresh_tokens,
        tally.server_errors,
    );
    assert!(tally.exchanged.len() >= 20, "too little load to mean anything");
    assert_eq!(unspent_codes, 0, "a code answered with tokens is not spent");
    // A code is spent in the transaction that stores its grant: a crash loses neither alone.
    assert_eq!(spent_without_grant, 0, "a code was spent without storing its grant");
    assert_eq!(grants, spent, "a grant without its spent code");
    assert_eq!(unspent_refresh, 0, "a rotation answered with 200 is not recorded");
    assert_eq!(forked, 0, "a refresh family has two live tokens");
    assert_eq!(tally.refused_refresh_tokens, 0, "a refresh token received in a 200 was refused");
    assert_eq!(dead_chain_ends, 0, "the last refresh token of a chain no longer works");
    assert_eq!(tally.server_errors, 0);
    // Each stored grant came from one exchange: answered, or answered into a cut connection.
    let exchanged = tally.exchanged.len() as i64;
    assert!(
        (exchanged..=exchanged + tally.codes_spent_by_a_lost_answer as i64).contains(&grants),
        "{grants} grants for {exchanged} exchanges"
    );
}

/// One node killed with SIGKILL four times under load and restarted each time.
async fn sigkill_and_restart_lose_nothing(db: TestDb) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = config(&base, port, &db.url);
    let http = reqwest::Client::new();
    let mut node = Serving::start(&config.path);
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(30)).await;

    let bases = [base.clone()];
    let tally = under_load(&bases, async {
        for round in 0..4u64 {
            tokio::time::sleep(Duration::from_millis(700 + 150 * round)).await;
            node.child.kill().unwrap();
            node.child.wait().unwrap();
            node = Serving::start(&config.path);
            wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(30)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    })
    .await;
    audit("killed 4 times", &tally, &db.url, &base).await;
}

crate::on_both_engines!(sigkill_and_restart_lose_nothing);

/// Two nodes on one PostgreSQL database; one is killed for good in the middle of the load and
/// the clients carry on against the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_and_the_other_serves_on() {
    let Some(db) = crate::TestDb::postgres().await else { return };
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let (node_a, node_b) = (issuer.clone(), format!("http://127.0.0.1:{port_b}"));
    let (config_a, config_b) = (config(&issuer, port_a, &db.url), config(&issuer, port_b, &db.url));
    let _a = Serving::start(&config_a.path);
    let mut b = Serving::start(&config_b.path);
    let http = reqwest::Client::new();
    for node in [&node_a, &node_b] {
        wait_until_ok(&http, &format!("{node}/readyz"), Duration::from_secs(30)).await;
    }
    let tally = under_load(&[node_a.clone(), node_b.clone()], async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        b.child.kill().unwrap();
        b.child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
    })
    .await;
    audit("node B killed", &tally, &db.url, &node_a).await;
}
