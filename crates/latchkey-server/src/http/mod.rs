//! The HTTP edge: routes, shared state, and serving.
//!
//! Handlers extract, call one `latchkey` function and map the result; no protocol decision is
//! made here. `app(state)` and `serve(listener, state, shutdown)` are plain functions so that
//! tests own the port.

mod authorize;
mod cors;
mod csrf;
mod discovery;
mod error;
mod extract;
mod health;
mod introspect;
mod jwks;
mod logout;
pub(crate) mod metrics;
pub use serve::raise_open_file_limit;
mod pages;
pub mod paths;
mod revoke;
mod serve;
mod session;
mod source;
mod token;
mod userinfo;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::routing::{get, post};
use latchkey::authority::Authority;
use latchkey::keys::KeyManager;
use latchkey::store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::Config;

/// Largest request body accepted; OAuth requests are small forms.
const BODY_LIMIT: usize = 64 * 1024;
/// A request that takes longer than this is cut off (slow-loris bodies included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything a handler needs. One `Arc`, so the clone axum makes for every extractor and
/// middleware is a single reference count (seven, with the fields cloned one by one, were 2.5%
/// of a client-credentials request's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Shares `shared` among the handlers.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Arc<dyn Store>,
    /// Signing keys.
    pub keys: Arc<KeyManager>,
    /// The protocol operations.
    pub authority: Arc<Authority>,
    /// The discovery document, serialized once.
    pub metadata_json: Bytes,
    /// Becomes true once static clients and users from the config are stored.
    pub static_loaded: watch::Receiver<bool>,
    /// Origins allowed to call the token, revocation and userinfo endpoints.
    pub origins: Arc<latchkey::cors_origins::CorsOrigins>,
}

impl AppState {
    /// The current time, seconds since the Unix epoch, by the node's clock.
    pub fn now(&self) -> i64 {
        self.authority.now()
    }

    /// Cookies get `Secure` whenever the issuer is https (behind a TLS proxy too).
    pub(crate) fn secure_cookies(&self) -> bool {
        self.config.issuer.starts_with("https://")
    }

    /// The cookie names for this issuer.
    pub(crate) fn cookie_names(&self) -> session::CookieNames {
        session::names(self.secure_cookies())
    }
}

/// The router with every endpoint and the cross-cutting layers.
pub fn app(state: AppState) -> Router {
    let hsts = hsts(&state.config);
    metrics::access_log(state.config.log.access);
    let router = Router::new()
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(paths::LOGIN, get(authorize::page_without_request).post(authorize::login))
        .route(paths::CONSENT, get(authorize::page_without_request).post(authorize::consent))
        .merge(
            Router::new()
                .route(
                    paths::TOKEN,
                    post(token::token)
                        .options(no_content)
                        .route_layer(axum::middleware::from_fn(metrics::count_token_errors)),
                )
                .route(paths::REVOKE, post(revoke::revoke).options(no_content))
                .route(
                    paths::USERINFO,
                    get(userinfo::userinfo).post(userinfo::userinfo).options(no_content),
                )
                .route_layer(axum::middleware::from_fn_with_state(state.clone(), cors::cors)),
        )
        .route(paths::INTROSPECT, post(introspect::introspect))
        .route(paths::LOGOUT, get(logout::get).post(logout::post))
        .merge(
            Router::new()
                .route(paths::OPENID_CONFIGURATION, get(discovery::metadata).options(no_content))
                .route(
                    paths::OAUTH_AUTHORIZATION_SERVER,
                    get(discovery::metadata).options(no_content),
                )
                .route(paths::JWKS, get(jwks::jwks).options(no_content))
                .route_layer(axum::middleware::from_fn(cors::public)),
        )
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz));
    // With a management listener, /metrics is served there only.
    let router = if state.config.metrics.listen.is_none() {
        router.route(paths::METRICS, get(metrics::render))
    } else {
        router
    };
    let router = router
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
        .route_layer(axum::middleware::from_fn(error::log_internal_errors))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(security_header("x-content-type-options", "nosniff"))
        .layer(security_header("x-frame-options", "DENY"))
        .layer(security_header("referrer-policy", "no-referrer"))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http().on_failure(log_failure));
    match hsts {
        // Outermost, so that every response carries it, errors and panics included.
        Some(value) => router.layer(SetResponseHeaderLayer::overriding(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            value,
        )),
        None => router,
    }
}

/// Logs a failed response, except 503: a request shed by a full hashing queue, or `/readyz`
/// before the node is ready, is expected and counted in `/metrics`, and one ERROR line per
/// shed request would let a flood of logins flood the logs too.
fn log_failure(class: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    if matches!(class, ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE)) {
        return;
    }
    tracing::error!(classification = %class, latency_ms = latency.as_millis() as u64, "response failed");
}

/// `Strict-Transport-Security` for an https issuer (RFC 6797 §6.1), unless switched off.
fn hsts(config: &Config) -> Option<HeaderValue> {
    if !config.issuer.starts_with("https://") {
        return None;
    }
    let max_age = config.http.hsts_max_age?.as_secs();
    let subdomains = if config.http.hsts_include_subdomains { "; includeSubDomains" } else { "" };
    HeaderValue::from_str(&format!("max-age={max_age}{subdomains}")).ok()
}

/// Preflight requests are answered by the CORS layer; this only gives OPTIONS a route.
async fn no_content() -> StatusCode {
    StatusCode::NO_CONTENT
}

fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// The management listener's router: `/metrics`, `/healthz` and `/readyz`.
pub fn management(state: AppState) -> Router {
    Router::new()
        .route(paths::METRICS, get(metrics::render))
        .route(paths::HEALTHZ, get(health::healthz))
        .route(paths::READYZ, get(health::readyz))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
}

/// Serves the management router on `listener` until `shutdown`.
pub async fn serve_management(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.limits.clone();
    serve::serve(listener, management(state), &limits, None, shutdown).await
}

/// Serves plain HTTP on `listener` within the configured `[limits]` until `shutdown`
/// completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.limits.clone();
    serve::serve(listener, app(state), &limits, None, shutdown).await
}

/// [`serve`] over TLS with `tls` (which should offer `h2` and `http/1.1` by ALPN).
pub async fn serve_tls(
    listener: TcpListener,
    state: AppState,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.limits.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    serve::serve(listener, app(state), &limits, Some(acceptor), shutdown).await
}
