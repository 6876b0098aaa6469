//! The demo's web client on 127.0.0.1:8082: "Sign in with latchkey" (authorization code flow
//! with PKCE, as a confidential client), then the signed-in user's photos from the PhotoAPI,
//! refreshing the access token when the API says it has expired.
//!
//! Sessions (tokens by a random cookie) and pending sign-ins (PKCE verifier and nonce by
//! `state`) live in memory: this is a demo of the protocol, not a production client.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use askama::Template;
use aws_lc_rs::digest;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::secret;
use serde::Deserialize;
use serde_json::Value;

const COOKIE: &str = "demo_session";
const SCOPES: &str = "openid profile offline_access read:photos write:photos";

/// Where the client lives and whom it talks to.
#[derive(Clone)]
pub struct DemoClient {
    /// The issuer (latchkey).
    pub issuer: String,
    /// The PhotoAPI's base URL.
    pub photo_api: String,
    /// This client's base URL.
    pub base: String,
    /// Its client id and secret.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    http: reqwest::Client,
    pending: Arc<Mutex<HashMap<String, String>>>,
    sessions: Arc<Mutex<HashMap<String, Tokens>>>,
}

#[derive(Clone)]
struct Tokens {
    access: String,
    refresh: Option<String>,
    user: String,
}

#[derive(Template)]
#[template(path = "demo_client.html")]
struct Page {
    user: Option<String>,
    photos: Vec<String>,
    note: Option<String>,
}

impl DemoClient {
    /// A client for `issuer` and `photo_api`, served at `base`.
    pub fn new(issuer: &str, photo_api: &str, base: &str, client_id: &str, secret: &str) -> Self {
        DemoClient {
            issuer: issuer.into(),
            photo_api: photo_api.into(),
            base: base.into(),
            client_id: client_id.into(),
            client_secret: secret.into(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            pending: Arc::default(),
            sessions: Arc::default(),
        }
    }

    /// The routes.
    pub fn app(self) -> Router {
        Router::new()
            .route("/", get(home))
            .route("/login", get(login))
            .route("/callback", get(callback))
            .route("/photos", get(photos).post(add_photo))
            .with_state(self)
    }

    fn session(&self, headers: &HeaderMap) -> Option<(String, Tokens)> {
        let id = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())?
            .split(';')
            .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")))?
            .to_owned();
        let tokens = self.sessions.lock().ok()?.get(&id).cloned()?;
        Some((id, tokens))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Value, String> {
        let response = self
            .http
            .post(format!("{}/oauth/token", self.issuer))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if body.get("access_token").is_none() {
            return Err(format!("token endpoint: {body}"));
        }
        Ok(body)
    }

    /// Calls the PhotoAPI; on an expired token, refreshes once and retries.
    async fn call_api(
        &self,
        session: &str,
        tokens: &mut Tokens,
        title: Option<&str>,
    ) -> Result<Value, String> {
        for attempt in 0..2 {
            let url = format!("{}/photos", self.photo_api);
            let request = match title {
                Some(title) => self.http.post(url).json(&serde_json::json!({ "title": title })),
                None => self.http.get(url),
            };
            let response =
                request.bearer_auth(&tokens.access).send().await.map_err(|e| e.to_string())?;
            let expired = response.status() == StatusCode::UNAUTHORIZED
                && response
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("expired"));
            if expired && attempt == 0 {
                let refresh = tokens.refresh.clone().ok_or("the session expired")?;
                let fresh = self
                    .token_request(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
                    .await?;
                tokens.access = fresh["access_token"].as_str().unwrap_or_default().to_owned();
                tokens.refresh = fresh["refresh_token"].as_str().map(str::to_owned);
                if let Ok(mut sessions) = self.sessions.lock() {
                    sessions.insert(session.to_owned(), tokens.clone());
                }
                continue;
            }
            if !response.status().is_success() {
                return Err(format!("the PhotoAPI answered {}", response.status()));
            }
            return response.json().await.map_err(|e| e.to_string());
        }
        Err("the PhotoAPI refused the refreshed token".into())
    }
}

fn render(page: Page) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn home(State(client): State<DemoClient>, headers: HeaderMap) -> Response {
    if client.session(&headers).is_some() {
        return Redirect::to("/photos").into_response();
    }
    render(Page { user: None, photos: Vec::new(), note: None })
}

async fn login(State(client): State<DemoClient>) -> Response {
    let (Ok(state), Ok(verifier)) = (secret::generate(), secret::generate()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let challenge = URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()));
    if let Ok(mut pending) = client.pending.lock() {
        pending.insert(state.clone(), verifier);
    }
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client.client_id.as_str()),
        ("redirect_uri", &format!("{}/callback", client.base)),
        ("scope", SCOPES),
        ("state", &state),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    Redirect::to(&format!("{}/authorize?{query}", client.issuer)).into_response()
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

fn note(message: &str) -> Response {
    render(Page { user: None, photos: Vec::new(), note: Some(message.to_owned()) })
}

impl DemoClient {
    /// The signed-in user's name, from `/userinfo`.
    async fn username(&self, access_token: &str) -> Option<String> {
        let response =
            self.http.get(format!("{}/userinfo", self.issuer)).bearer_auth(access_token).send();
        let info: Value = response.await.ok()?.json().await.ok()?;
        info["preferred_username"].as_str().map(str::to_owned)
    }
}

async fn callback(State(client): State<DemoClient>, Query(back): Query<Callback>) -> Response {
    if let Some(error) = back.error {
        return note(&format!("Sign-in did not complete: {error}"));
    }
    // RFC 9207: the answer must come from our issuer; the state must be one we sent.
    if back.iss.as_deref() != Some(client.issuer.as_str()) {
        return note("The sign-in answer came from an unexpected issuer.");
    }
    let verifier =
        back.state.and_then(|state| client.pending.lock().ok().and_then(|mut p| p.remove(&state)));
    let (Some(verifier), Some(code)) = (verifier, back.code) else {
        return note("This sign-in answer does not match a sign-in started here.");
    };
    let redirect_uri = format!("{}/callback", client.base);
    let tokens = match client
        .token_request(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
        ])
        .await
    {
        Ok(tokens) => tokens,
        Err(error) => return note(&format!("The code exchange failed: {error}")),
    };
    let user = client.username(tokens["access_token"].as_str().unwrap_or_default()).await;
    let Ok(session) = secret::generate() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut signed_in = Tokens {
        access: tokens["access_token"].as_str().unwrap_or_default().to_owned(),
        refresh: tokens["refresh_token"].as_str().map(str::to_owned),
        user: user.unwrap_or_else(|| "you".into()),
    };
    // A first visit gets a photo, so the list is not empty.
    if let Ok(Value::Array(existing)) = client.call_api(&session, &mut signed_in, None).await
        && existing.is_empty()
    {
        let _ = client.call_api(&session, &mut signed_in, Some("Welcome to latchkey")).await;
    }
    if let Ok(mut sessions) = client.sessions.lock() {
        sessions.insert(session.clone(), signed_in);
    }
    (
        [(header::SET_COOKIE, format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax"))],
        Redirect::to("/photos"),
    )
        .into_response()
}

async fn photos(State(client): State<DemoClient>, headers: HeaderMap) -> Response {
    let Some((session, mut tokens)) = client.session(&headers) else {
        return Redirect::to("/").into_response();
    };
    match client.call_api(&session, &mut tokens, None).await {
        Ok(Value::Array(list)) => render(Page {
            user: Some(tokens.user.clone()),
            photos: list.iter().filter_map(|p| p["title"].as_str().map(str::to_owned)).collect(),
            note: None,
        }),
        Ok(_) | Err(_) => note("The PhotoAPI could not be reached with your token; sign in again."),
    }
}

#[derive(Deserialize)]
struct NewPhoto {
    title: String,
}

async fn add_photo(
    State(client): State<DemoClient>,
    headers: HeaderMap,
    Form(new): Form<NewPhoto>,
) -> Response {
    let Some((session, mut tokens)) = client.session(&headers) else {
        return Redirect::to("/").into_response();
    };
    let title: String = new.title.chars().take(100).collect();
    match client.call_api(&session, &mut tokens, Some(&title)).await {
        Ok(_) => Redirect::to("/photos").into_response(),
        Err(error) => note(&format!("Adding the photo failed: {error}")),
    }
}
