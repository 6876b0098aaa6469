//! The scenarios: one operation each, repeated by concurrent workers for a fixed time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::flood::{Flood, flood};
use crate::{Report, Server};

/// Clients and the user the scenarios use. Public clients: client authentication by argon2
/// would measure password hashing, not the flow.
pub(crate) const CONFIG: &str = r#"
[[clients]]
client_id = "bench-rs256"
redirect_uris = ["https://bench.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile"]

[[clients]]
client_id = "bench-es256"
redirect_uris = ["https://bench.example.com/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile"]
id_token_signed_response_alg = "ES256"

[[resources]]
identifier = "https://api.bench.example.com"
scopes = ["read:things"]
client_id = "bench-api"

[[clients]]
client_id = "bench-machine"
client_secret = "bench-machine-secret"
grant_types = ["client_credentials"]
scopes = ["read:things"]

[[clients]]
client_id = "bench-machine-opaque"
client_secret = "bench-opaque-secret"
grant_types = ["client_credentials"]
scopes = ["read:things"]
access_token_format = "opaque"

[[clients]]
client_id = "bench-api"
client_secret = "bench-api-secret"
grant_types = ["client_credentials"]
scopes = ["read:things"]

[[clients]]
client_id = "bench-first-party"
client_secret = "bench-first-party-secret"
grant_types = ["password", "refresh_token"]
scopes = ["openid", "offline_access", "read:things"]
id_token_on_refresh = false

[[clients]]
client_id = "bench-first-party-rs256"
client_secret = "bench-first-party-secret"
grant_types = ["password", "refresh_token"]
scopes = ["openid", "offline_access", "read:things"]

[[clients]]
client_id = "bench-first-party-es256"
client_secret = "bench-first-party-secret"
grant_types = ["password", "refresh_token"]
scopes = ["openid", "offline_access", "read:things"]
id_token_signed_response_alg = "ES256"

[[users]]
username = "bench"
password = "bench-password"
"#;

const REDIRECT: &str = "https://bench.example.com/cb";
/// Concurrent sign-ins of the benchmark's one user (see `prepare_workers`).
const SIGN_IN_WORKERS: usize = 1;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A scenario.
#[derive(Clone, Copy)]
pub(crate) enum Scenario {
    /// GET /authorize with a session and remembered consent, then the code exchange; RS256
    /// id_token.
    CodeFlowRs256,
    /// The same for a client registered for ES256 id_tokens.
    CodeFlowEs256,
    /// A sign-in with the user's password each time (argon2id and the login throttle's
    /// bookkeeping), then the ES256 code flow on the new session.
    SignIn,
    /// GET /.well-known/jwks.json.
    Jwks,
    /// POST /oauth/token, client_credentials, JWT access token; client secret in Basic auth.
    ClientCredentials,
    /// POST /oauth/introspect of an opaque access token, by the API's client.
    IntrospectOpaque,
    /// POST /oauth/introspect of a JWT access token, by the API's client.
    IntrospectJwt,
    /// POST /oauth/token, refresh_token: each worker follows its own rotation chain; the
    /// client has `id_token_on_refresh = false`.
    Refresh,
    /// The same with a fresh RS256 id_token in every refresh response (the default).
    RefreshIdRs256,
    /// The same with an ES256 id_token.
    RefreshIdEs256,
    /// [`Scenario::ClientCredentials`] while a flood arrives at the login form or
    /// `/authorize`: hashing and parsing must not starve the token endpoint.
    UnderFlood(Flood),
}

/// What a peer is measured on (see [`crate::peer`]).
pub(crate) const PEER: [Scenario; 3] =
    [Scenario::Jwks, Scenario::Refresh, Scenario::RefreshIdRs256];

pub(crate) const ALL: [Scenario; 14] = [
    Scenario::CodeFlowRs256,
    Scenario::CodeFlowEs256,
    Scenario::SignIn,
    Scenario::Jwks,
    Scenario::ClientCredentials,
    Scenario::IntrospectOpaque,
    Scenario::IntrospectJwt,
    Scenario::Refresh,
    Scenario::RefreshIdRs256,
    Scenario::RefreshIdEs256,
    Scenario::UnderFlood(Flood::Logins),
    Scenario::UnderFlood(Flood::AbandonedLogins),
    Scenario::UnderFlood(Flood::Guesses),
    Scenario::UnderFlood(Flood::LargestAuthorize),
];

impl Scenario {
    /// The name printed in the report.
    pub(crate) fn name(self) -> &'static str {
        self.setup().0
    }

    /// The name and the client the scenario uses.
    fn setup(self) -> (&'static str, &'static str) {
        match self {
            Scenario::CodeFlowRs256 => ("code flow (RS256)", "bench-rs256"),
            Scenario::CodeFlowEs256 => ("code flow (ES256)", "bench-es256"),
            Scenario::SignIn => ("sign-in + code flow", "bench-es256"),
            Scenario::Jwks => ("jwks", ""),
            Scenario::ClientCredentials => ("client_credentials (JWT)", "bench-machine"),
            Scenario::IntrospectOpaque => ("introspect (opaque)", "bench-machine-opaque"),
            Scenario::IntrospectJwt => ("introspect (JWT)", "bench-machine"),
            Scenario::Refresh => ("refresh", "bench-first-party"),
            Scenario::RefreshIdRs256 => ("refresh + RS256 id_token", "bench-first-party-rs256"),
            Scenario::RefreshIdEs256 => ("refresh + ES256 id_token", "bench-first-party-es256"),
            Scenario::UnderFlood(Flood::Logins) => ("cc+logins", "bench-machine"),
            Scenario::UnderFlood(Flood::AbandonedLogins) => {
                ("cc+abandoned logins", "bench-machine")
            }
            Scenario::UnderFlood(Flood::Guesses) => ("cc+guesses on 1 account", "bench-machine"),
            Scenario::UnderFlood(Flood::LargestAuthorize) => {
                ("cc+64 KiB authorize", "bench-machine")
            }
        }
    }
}

pub(crate) fn authorize_url(base: &str, client_id: &str) -> String {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "bench"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    format!("{base}/authorize?{query}")
}

pub(crate) fn hidden(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).context("hidden field missing")? + marker.len();
    let end = start + html[start..].find('"').context("unterminated field")?;
    Ok(html[start..end]
        .replace("&#38;", "&")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&#62;", ">"))
}

/// A new browser, signed in with the password and with the consent given (or remembered):
/// once before the code flows, so they find a session, and each time in the sign-in scenario.
async fn signed_in_browser(base: &str, client_id: &str) -> anyhow::Result<reqwest::Client> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()?;
    let page = browser.get(authorize_url(base, client_id)).send().await?.text().await?;
    let form = [
        ("username", "bench".to_owned()),
        ("password", "bench-password".to_owned()),
        ("csrf_token", hidden(&page, "csrf_token")?),
        ("request", hidden(&page, "request")?),
    ];
    let signed_in = browser.post(format!("{base}/login")).form(&form).send().await?;
    // A consent remembered from an earlier run on the same database: straight to the client.
    if signed_in.status() == 303 {
        return Ok(browser);
    }
    let consent = signed_in.text().await?;
    let form = [
        ("decision", "allow".to_owned()),
        ("csrf_token", hidden(&consent, "csrf_token")?),
        ("request", hidden(&consent, "request")?),
    ];
    let done = browser.post(format!("{base}/consent")).form(&form).send().await?;
    if done.status() != 303 {
        bail!("sign-in for the benchmark failed: {}", done.status());
    }
    Ok(browser)
}

async fn code_flow(browser: &reqwest::Client, base: &str, client_id: &str) -> anyhow::Result<()> {
    let response = browser.get(authorize_url(base, client_id)).send().await?;
    let location = response.headers().get("location").context("no redirect")?.to_str()?;
    let params: HashMap<String, String> =
        url::Url::parse(location)?.query_pairs().into_owned().collect();
    let code = params.get("code").context("no code")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", client_id),
        ("code_verifier", VERIFIER),
    ];
    let tokens: serde_json::Value =
        browser.post(format!("{base}/oauth/token")).form(&form).send().await?.json().await?;
    if tokens.get("id_token").is_none() {
        bail!("no id_token: {tokens}");
    }
    Ok(())
}

fn secret_of(client_id: &str) -> &'static str {
    match client_id {
        "bench-machine" => "bench-machine-secret",
        "bench-machine-opaque" => "bench-opaque-secret",
        "bench-first-party" | "bench-first-party-rs256" | "bench-first-party-es256" => {
            "bench-first-party-secret"
        }
        _ => "bench-api-secret",
    }
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    form: &[(&str, &str)],
) -> anyhow::Result<serde_json::Value> {
    let response = http
        .post(format!("{base}/oauth/token"))
        .basic_auth(client_id, Some(secret_of(client_id)))
        .form(form)
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("token request failed: {}", response.status());
    }
    Ok(response.json().await?)
}

fn field(value: &serde_json::Value, name: &str) -> anyhow::Result<String> {
    Ok(value.get(name).and_then(|v| v.as_str()).context("missing field")?.to_owned())
}

/// A worker's state between operations.
enum Prepared {
    /// Nothing to carry.
    Nothing,
    /// The token introspected each time.
    Token(String),
    /// The current refresh token of the chain.
    Refresh(String),
}

async fn prepare(
    scenario: Scenario,
    http: &reqwest::Client,
    server: &Server,
    client_id: &str,
) -> anyhow::Result<Prepared> {
    let base = server.base.as_str();
    if let (Scenario::Refresh | Scenario::RefreshIdRs256, Some(mint)) =
        (scenario, server.mint.as_deref())
    {
        let response = http.get(format!("{mint}/?client_id={client_id}")).send().await?;
        return Ok(Prepared::Refresh(response.error_for_status()?.text().await?));
    }
    Ok(match scenario {
        Scenario::IntrospectOpaque | Scenario::IntrospectJwt => {
            let tokens =
                token(http, base, client_id, &[("grant_type", "client_credentials")]).await?;
            Prepared::Token(field(&tokens, "access_token")?)
        }
        Scenario::Refresh | Scenario::RefreshIdRs256 | Scenario::RefreshIdEs256 => {
            let tokens = token(
                http,
                base,
                client_id,
                &[
                    ("grant_type", "password"),
                    ("username", "bench"),
                    ("password", "bench-password"),
                    ("scope", "openid offline_access read:things"),
                ],
            )
            .await?;
            Prepared::Refresh(field(&tokens, "refresh_token")?)
        }
        _ => Prepared::Nothing,
    })
}

async fn operate(
    scenario: Scenario,
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    prepared: &mut Prepared,
) -> anyhow::Result<()> {
    match (scenario, prepared) {
        (Scenario::Jwks, _) => {
            let response = http.get(format!("{base}/.well-known/jwks.json")).send().await?;
            response.bytes().await?;
            Ok(())
        }
        (Scenario::CodeFlowRs256 | Scenario::CodeFlowEs256, _) => {
            code_flow(http, base, client_id).await
        }
        (Scenario::SignIn, _) => {
            // A browser of its own each time: no session, so the password is checked.
            let browser = signed_in_browser(base, client_id).await?;
            code_flow(&browser, base, client_id).await
        }
        (Scenario::ClientCredentials | Scenario::UnderFlood(_), _) => {
            let tokens =
                token(http, base, client_id, &[("grant_type", "client_credentials")]).await?;
            field(&tokens, "access_token").map(drop)
        }
        (Scenario::IntrospectOpaque | Scenario::IntrospectJwt, Prepared::Token(token)) => {
            let response = http
                .post(format!("{base}/oauth/introspect"))
                .basic_auth("bench-api", Some(secret_of("bench-api")))
                .form(&[("token", token.as_str())])
                .send()
                .await?;
            let body: serde_json::Value = response.json().await?;
            if body.get("active") != Some(&serde_json::Value::Bool(true)) {
                bail!("token not active: {body}");
            }
            Ok(())
        }
        (
            Scenario::Refresh | Scenario::RefreshIdRs256 | Scenario::RefreshIdEs256,
            Prepared::Refresh(current),
        ) => {
            let tokens = token(
                http,
                base,
                client_id,
                &[("grant_type", "refresh_token"), ("refresh_token", current.as_str())],
            )
            .await?;
            *current = field(&tokens, "refresh_token")?;
            Ok(())
        }
        _ => bail!("scenario not prepared"),
    }
}

/// The HTTP client the workers share (a signed-in browser for the code flow) and each
/// worker's prepared state.
async fn prepare_workers(
    scenario: Scenario,
    server: &Server,
    client_id: &'static str,
    concurrency: usize,
) -> anyhow::Result<(reqwest::Client, Vec<Prepared>)> {
    let http = match scenario {
        Scenario::CodeFlowRs256 | Scenario::CodeFlowEs256 => {
            signed_in_browser(&server.base, client_id).await?
        }
        _ => reqwest::Client::new(),
    };
    // The login throttle checks one attempt per account at a time and answers the others
    // 429 at once (issue 11), so the sign-ins of the one benchmark user run one at a time;
    // per CPU-second that still measures each sign-in's whole cost.
    let workers = match scenario {
        Scenario::SignIn => concurrency.min(SIGN_IN_WORKERS),
        _ => concurrency,
    };
    let mut prepared = Vec::new();
    for _ in 0..workers {
        prepared.push(prepare(scenario, &http, server, client_id).await?);
    }
    Ok((http, prepared))
}

/// One worker: operates until `until`, counting successes and errors; its latencies.
async fn work(
    scenario: Scenario,
    http: reqwest::Client,
    base: String,
    client_id: &'static str,
    mut state: Prepared,
    until: Instant,
    (ok, errors): (Arc<AtomicU64>, Arc<AtomicU64>),
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    while Instant::now() < until {
        let began = Instant::now();
        match operate(scenario, &http, &base, client_id, &mut state).await {
            Ok(()) => {
                ok.fetch_add(1, Ordering::Relaxed);
                latencies.push(began.elapsed());
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    latencies
}

/// Runs one scenario for `duration` with `concurrency` workers.
pub(crate) async fn run(
    scenario: Scenario,
    server: &Server,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<Report> {
    let (name, client_id) = scenario.setup();
    let (http, prepared) = prepare_workers(scenario, server, client_id, concurrency).await?;
    let stop_flood = Arc::new(AtomicBool::new(false));
    let flood = match scenario {
        Scenario::UnderFlood(kind) => {
            Some(tokio::spawn(flood(kind, server.base.clone(), stop_flood.clone())))
        }
        _ => None,
    };
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let cpu_before = server.cpu_seconds()?;
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for state in prepared {
        let counts = (ok.clone(), errors.clone());
        let (http, base) = (http.clone(), server.base.clone());
        let until = started + duration;
        workers.spawn(work(scenario, http, base, client_id, state, until, counts));
    }
    let mut latencies = Vec::new();
    while let Some(result) = workers.join_next().await {
        latencies.extend(result?);
    }
    let elapsed = started.elapsed();
    let cpu = server.cpu_seconds()? - cpu_before;
    if let Some(flood) = flood {
        stop_flood.store(true, Ordering::Relaxed);
        let (sent, answered) = flood.await??;
        println!(
            "  (flood: {sent} sent in {:.1} s, {answered} answered by the end)",
            elapsed.as_secs_f64()
        );
    }
    Ok(Report {
        name,
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        cpu,
        latencies,
    })
}
