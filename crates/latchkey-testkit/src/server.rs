//! latchkey nodes in the test's process, and the HTTP clients tests use against them.

use std::sync::Arc;

use latchkey::clock::{Clock, ManualClock, SystemClock};
use latchkey_server::config::Config;
use latchkey_server::http::{self as serving, AppState};
use latchkey_server::startup;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::Database;

/// An in-process node serving on an ephemeral 127.0.0.1 port; dropping it shuts it down.
pub struct TestServer {
    pub base: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Boots a node on `db` with `extra` TOML appended to the generated config.
    pub async fn start(db: &Database, extra: &str) -> TestServer {
        TestServer::start_as(db, None, extra).await
    }

    /// [`TestServer::start`] with another issuer than the server's own URL, as behind a TLS
    /// proxy.
    pub async fn start_as(db: &Database, issuer: Option<&str>, extra: &str) -> TestServer {
        TestServer::boot(db, issuer, extra, Arc::new(SystemClock)).await
    }

    /// [`TestServer::start_ready`] on a clock the test moves: expiry without waiting for it.
    pub async fn start_with_clock(
        db: &Database,
        extra: &str,
        clock: Arc<ManualClock>,
    ) -> TestServer {
        let server = TestServer::boot(db, None, extra, clock).await;
        server.ready().await;
        server
    }

    /// [`TestServer::start`], then waits until the static clients and users are stored.
    pub async fn start_ready(db: &Database, extra: &str) -> TestServer {
        let server = TestServer::start(db, extra).await;
        server.ready().await;
        server
    }

    async fn boot(
        db: &Database,
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
            serving::serve(listener, served, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        TestServer { base, state, shutdown: Some(tx) }
    }

    async fn ready(&self) {
        self.state.static_loaded.clone().wait_for(|done| *done).await.unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
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

/// The HTTP client of the `oauth2` and `openidconnect` crates (the same `http` request and
/// response types), over reqwest.
pub async fn oauth_http(
    request: http::Request<Vec<u8>>,
) -> Result<http::Response<Vec<u8>>, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let mut outgoing = client().request(parts.method, parts.uri.to_string()).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap_or_default())
}
