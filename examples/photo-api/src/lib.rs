//! The PhotoAPI of the guide: a resource server that serves nothing before it has validated
//! the caller's access token.
//!
//! - `GET /photos` needs `read:photos`: a user sees their own photos (by `sub`); a client acting
//!   for itself (client credentials: `sub` is its own client id) sees the service's view, every
//!   photo with its owner.
//! - `POST /photos` with `{"title": "..."}` needs `write:photos` and adds a photo for the
//!   caller.
//!
//! Storage is in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use latchkey_resource::{AccessToken, Rejection, Verifier};
use serde::{Deserialize, Serialize};

/// A photo.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Photo {
    /// Its id.
    pub id: u64,
    /// Whose it is (a token's `sub`).
    pub owner: String,
    /// Its title.
    pub title: String,
}

/// A new photo.
#[derive(Debug, Deserialize)]
pub struct NewPhoto {
    /// Its title.
    pub title: String,
}

/// The API's state: the token verifier and the photos.
#[derive(Clone)]
pub struct PhotoApi {
    verifier: Arc<Verifier>,
    photos: Arc<Mutex<Vec<Photo>>>,
}

impl FromRef<PhotoApi> for Arc<Verifier> {
    fn from_ref(api: &PhotoApi) -> Self {
        api.verifier.clone()
    }
}

/// The router, with `seed` photos by owner.
pub fn app(verifier: Arc<Verifier>, seed: HashMap<String, Vec<String>>) -> Router {
    let mut photos = Vec::new();
    for (owner, titles) in seed {
        for title in titles {
            photos.push(Photo { id: photos.len() as u64 + 1, owner: owner.clone(), title });
        }
    }
    let state = PhotoApi { verifier, photos: Arc::new(Mutex::new(photos)) };
    Router::new().route("/photos", get(list).post(add)).with_state(state)
}

/// Whether the token is a client acting for itself rather than for a user.
fn is_service(token: &AccessToken) -> bool {
    token.sub() == token.client_id()
}

async fn list(
    State(api): State<PhotoApi>,
    token: AccessToken,
) -> Result<Json<Vec<Photo>>, Rejection> {
    token.require_scope("read:photos")?;
    let photos = api.photos.lock().map(|p| p.clone()).unwrap_or_default();
    let visible = if is_service(&token) {
        photos
    } else {
        photos.into_iter().filter(|photo| photo.owner == token.sub()).collect()
    };
    Ok(Json(visible))
}

async fn add(
    State(api): State<PhotoApi>,
    token: AccessToken,
    Json(new): Json<NewPhoto>,
) -> Result<(StatusCode, Json<Photo>), Rejection> {
    token.require_scope("write:photos")?;
    let mut photos = api.photos.lock().map_err(|_| Rejection::IssuerUnavailable)?;
    let photo =
        Photo { id: photos.len() as u64 + 1, owner: token.sub().to_owned(), title: new.title };
    photos.push(photo.clone());
    Ok((StatusCode::CREATED, Json(photo)))
}
