//! CORS for the endpoints a browser-based public client (SPA) calls directly: token and
//! userinfo. Only the origins of registered redirect URIs are allowed, each echoed back by
//! name, and never with credentials: these endpoints take no cookies.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Adds CORS headers for allowed origins and answers preflight requests.
pub(super) async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(origin) =
        request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).map(str::to_owned)
    else {
        return next.run(request).await;
    };
    let allowed = origin_allowed(&state, &origin).await;
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

/// Whether `origin` is the origin of some client's registered redirect URI.
async fn origin_allowed(state: &AppState, origin: &str) -> bool {
    let Ok(clients) = state.store.clients().await else { return false };
    clients.iter().flat_map(|record| record.client.redirect_uris.iter()).any(|uri| {
        url::Url::parse(uri).is_ok_and(|url| {
            let registered = url.origin().ascii_serialization();
            registered != "null" && registered == origin
        })
    })
}
