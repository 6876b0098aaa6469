//! CORS for what a browser-based public client (SPA) fetches directly.
//!
//! - The discovery documents and the JWKS are public: any origin may read them
//!   (`Access-Control-Allow-Origin: *`, no credentials).
//! - Token, revocation and userinfo: only the origins of registered redirect URIs, each echoed
//!   back by name, and never with credentials: these endpoints take no cookies. An origin is
//!   looked up in the store once and then remembered ([`latchkey::cors_origins`]).

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// `Access-Control-Allow-Origin: *` on a public document, and its preflight answered.
pub(super) async fn public(request: Request, next: Next) -> Response {
    let cross_origin = request.headers().contains_key(header::ORIGIN);
    let preflight = request.method() == Method::OPTIONS;
    let mut response =
        if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    if cross_origin || preflight {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET"));
            // Whatever headers the page asks to send: nothing here depends on them.
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
        }
    }
    response
}

/// Adds CORS headers for allowed origins and answers preflight requests.
pub(super) async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) =
        request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let allowed = match state.origins.allows(&origin, state.store.as_ref()).await {
        Ok(allowed) => allowed,
        Err(error) => {
            // Without the answer no CORS header is sent: the browser refuses the response.
            tracing::warn!(%error, "checking a CORS origin failed");
            false
        }
    };
    let preflight = request.method() == Method::OPTIONS;
    let mut response = if preflight {
        if allowed {
            StatusCode::NO_CONTENT.into_response()
        } else {
            StatusCode::FORBIDDEN.into_response()
        }
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if allowed && let Ok(value) = HeaderValue::from_str(&origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        if preflight {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
    }
    response
}
