//! HTTP and CLI tests against real servers on 127.0.0.1 and real databases: an SQLite file,
//! and PostgreSQL (one schema per test) when `LATCHKEY_TEST_POSTGRES_URL` is set. Without it
//! the PostgreSQL tests are skipped, except under `CI=true`, where that is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, unreachable_pub)]

mod abuse;
mod browser;
mod cli;
mod cluster;
mod code_flow;
mod crash;
mod discovery;
mod flood;
mod forms;
mod grants;
mod hardening;
mod hostile;
mod interop;
mod nodes;
mod photo_api;
mod process;
mod races;
mod relying_parties;
mod service;
mod slow;
mod spa;

use std::sync::Arc;

use latchkey::clock::{Clock, ManualClock, SystemClock};
use latchkey_server::config::Config;
use latchkey_server::http::{self, AppState};
use latchkey_server::startup;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A database for one test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    TestDb { url, _dir: Some(dir) }
}

/// A fresh schema, or `None` when PostgreSQL is not configured outside CI.
pub async fn postgres_db() -> Option<TestDb> {
    let Ok(base) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!(
                "LATCHKEY_TEST_POSTGRES_URL is not set under CI=true: the PostgreSQL half must run"
            );
        }
        eprintln!("skipped: LATCHKEY_TEST_POSTGRES_URL is not set");
        return None;
    };
    let schema = format!(
        "lk_http_{}",
        latchkey::secret::hex(&latchkey::secret::random_bytes::<8>().unwrap())
    );
    let pool =
        sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    Some(TestDb { url, _dir: None })
}

/// An in-process node serving on an ephemeral 127.0.0.1 port.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Boots a node on `db` with `extra` TOML appended to the generated config.
    pub async fn start(db: &TestDb, extra: &str) -> TestServer {
        TestServer::start_as(db, None, extra).await
    }

    /// [`TestServer::start`] with another issuer than the server's own URL, as behind a TLS
    /// proxy.
    pub async fn start_as(db: &TestDb, issuer: Option<&str>, extra: &str) -> TestServer {
        TestServer::boot(db, issuer, extra, Arc::new(SystemClock)).await
    }

    /// [`TestServer::start_ready`] on a clock the test moves: expiry without waiting for it.
    pub async fn start_with_clock(db: &TestDb, extra: &str, clock: Arc<ManualClock>) -> TestServer {
        let server = TestServer::boot(db, None, extra, clock).await;
        server.state.static_loaded.clone().wait_for(|done| *done).await.unwrap();
        server
    }

    async fn boot(
        db: &TestDb,
        issuer: Option<&str>,
        extra: &str,
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        // An issuer others could reach needs a master key (a fixed one, for tests).
        let master = match issuer {
            Some(_) => "master_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n",
            None => "",
        };
        let text = format!(
            "issuer = \"{}\"\nlisten = \"{}\"\n{master}[database]\nurl = \"{}\"\n{extra}",
            issuer.unwrap_or(&base),
            listener.local_addr().unwrap(),
            db.url
        );
        let config = Config::from_parts(&text, &[]).unwrap();
        let state = startup::boot_with_clock(config, clock).await.unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let served = state.clone();
        tokio::spawn(async move {
            http::serve(listener, served, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer { base, state, shutdown: Some(tx) }
    }

    /// [`TestServer::start`], then waits until the static clients and users are stored.
    pub async fn start_ready(db: &TestDb, extra: &str) -> TestServer {
        let server = TestServer::start(db, extra).await;
        server.state.static_loaded.clone().wait_for(|done| *done).await.unwrap();
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// The HTTP client of the `oauth2` and `openidconnect` crates (the same `http` request and
/// response types), over reqwest 0.13.
pub async fn oauth_http(
    request: ::http::Request<Vec<u8>>,
) -> Result<::http::Response<Vec<u8>>, reqwest::Error> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (parts, body) = request.into_parts();
    let mut outgoing = client.request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await?;
    let mut builder = ::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap_or_default())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An HTTP client that never follows redirects, so tests see exactly what the server sent.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GETs `url` with `client` and parses the JSON body.
pub async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// Declares each listed `async fn name(db: TestDb)` as a test on both engines.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::sqlite_db()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::postgres_db().await {
                        super::$name(db).await;
                    }
                }
            )*
        }
    };
}
