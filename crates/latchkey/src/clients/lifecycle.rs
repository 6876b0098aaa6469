//! What an operator does with a registered client after adding it: change it in place and
//! rotate its secret. The CLI calls these, and the admin API will; each change goes through
//! the registration rules of [`registration::validate`], like the config and `clients add`.
//!
//! A change never revokes what the client holds: the protocol applies the registration as it
//! is now to every later request, so a removed scope is no longer minted (a refresh narrows
//! to the scopes still registered), a removed redirect URI receives no new codes, a removed
//! grant type is refused at the token endpoint.

use serde::Serialize;

use super::registration::{self, ClientDraft, RegistrationError};
use crate::model::{
    ApplicationType, AuthMethod, Client, ClientRecord, ClientSource, GrantType, PreviousSecret,
    Resource, SigningAlg, TokenFormat,
};
use crate::store::{self, ClientStore};
use crate::{password, secret};

/// Why a lifecycle operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The result would break a registration rule.
    #[error("client.{}: {}", .0.field, .0.problem)]
    Invalid(#[from] RegistrationError),
    /// No such client.
    #[error("no client {0:?}: `latchkey clients list` shows the registered ones")]
    NotFound(String),
    /// `add` of a client_id that exists.
    #[error(
        "client {0:?} already exists: change it with `latchkey clients update`, or pick another client_id"
    )]
    Exists(String),
    /// The client is a `[[clients]]` entry, rewritten from the file at every start.
    #[error(
        "client {0:?} is defined in the config file, which replaces it at every start: change it there"
    )]
    FromConfig(String),
    /// A secret rotation for a client that authenticates without one.
    #[error("client {0:?} has no secret to rotate (it is public or uses private_key_jwt)")]
    NoSecret(String),
    /// No randomness for a new secret.
    #[error(transparent)]
    Random(#[from] secret::RandomError),
    /// The store failed, or another write came first (`Conflict`).
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A client as stored after an operation, with its new secret when the operation made one
/// (shown once: only its hash is kept).
#[derive(Debug)]
pub struct Registered {
    /// The stored record.
    pub record: ClientRecord,
    /// A generated secret, to hand to the client's operator now.
    pub secret: Option<String>,
}

/// Changes to a client: each `Some` (or non-empty list) sets a field; unset ones stay.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    /// Name shown on the consent page (`Some(None)` removes it).
    pub client_name: Option<Option<String>>,
    /// Web or native.
    pub application_type: Option<ApplicationType>,
    /// Replaces the redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// Redirect URIs to add (present ones are kept once).
    pub add_redirect_uris: Vec<String>,
    /// Redirect URIs to remove (each must be registered).
    pub remove_redirect_uris: Vec<String>,
    /// Replaces the post-logout redirect URIs.
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Replaces the grant types.
    pub grant_types: Option<Vec<GrantType>>,
    /// Replaces the scopes.
    pub scopes: Option<Vec<String>>,
    /// The authentication method: to one with a secret from one without, a secret is
    /// generated; to one without, the stored secret goes.
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// Where its `private_key_jwt` keys are published (`Some(None)` removes it).
    pub jwks_uri: Option<Option<String>>,
    /// Its `private_key_jwt` keys (`Some(None)` removes them).
    pub jwks: Option<Option<latchkey_resource::JwkSet>>,
    /// JWT or opaque access tokens (`Some(None)`: the server's format).
    pub access_token_format: Option<Option<TokenFormat>>,
    /// id_token algorithm (`Some(None)`: RS256).
    pub id_token_signed_response_alg: Option<Option<SigningAlg>>,
    /// Refresh retry window in seconds (`Some(None)`: the server's).
    pub refresh_grace_period_secs: Option<Option<u64>>,
    /// Require PKCE.
    pub require_pkce: Option<bool>,
    /// Ask users for consent.
    pub require_consent: Option<bool>,
}

/// A stored client as a draft, to change and validate again.
pub fn draft_of(client: &Client, has_secret: bool) -> ClientDraft {
    ClientDraft {
        client_id: client.client_id.clone(),
        has_secret,
        client_name: client.client_name.clone(),
        application_type: Some(client.application_type),
        redirect_uris: client.redirect_uris.clone(),
        post_logout_redirect_uris: client.post_logout_redirect_uris.clone(),
        grant_types: Some(client.grant_types.clone()),
        scopes: client.scopes.clone(),
        token_endpoint_auth_method: Some(client.token_endpoint_auth_method),
        require_consent: Some(client.require_consent),
        require_pkce: Some(client.require_pkce),
        jwks_uri: client.jwks_uri.clone(),
        jwks: client.jwks.clone(),
        access_token_format: client.access_token_format,
        id_token_signed_response_alg: client.id_token_signed_response_alg,
        refresh_grace_period_secs: client.refresh_grace_period_secs,
        remember_consent: client.remember_consent,
        legacy_assertion_audience: client.legacy_assertion_audience,
        id_token_on_refresh: Some(client.id_token_on_refresh),
        claims_in_id_token: Some(client.claims_in_id_token),
        session_refresh_tokens: Some(client.session_refresh_tokens),
    }
}

impl ClientChanges {
    /// Applies the changes to a draft; a redirect URI to remove that is not registered is an
    /// error naming it.
    pub fn apply(self, mut draft: ClientDraft) -> Result<ClientDraft, RegistrationError> {
        set(&mut draft.client_name, self.client_name);
        if let Some(kind) = self.application_type {
            draft.application_type = Some(kind);
        }
        if let Some(uris) = self.redirect_uris {
            draft.redirect_uris = uris;
        }
        for uri in self.add_redirect_uris {
            if !draft.redirect_uris.contains(&uri) {
                draft.redirect_uris.push(uri);
            }
        }
        for uri in self.remove_redirect_uris {
            let before = draft.redirect_uris.len();
            draft.redirect_uris.retain(|registered| *registered != uri);
            if draft.redirect_uris.len() == before {
                return Err(RegistrationError {
                    field: "redirect_uris".into(),
                    problem: format!(
                        "{uri:?} is not registered, so it cannot be removed: `latchkey clients show {}` lists them",
                        draft.client_id
                    ),
                });
            }
        }
        if let Some(uris) = self.post_logout_redirect_uris {
            draft.post_logout_redirect_uris = uris;
        }
        if let Some(grants) = self.grant_types {
            draft.grant_types = Some(grants);
        }
        if let Some(scopes) = self.scopes {
            draft.scopes = scopes;
        }
        if let Some(method) = self.token_endpoint_auth_method {
            draft.token_endpoint_auth_method = Some(method);
            draft.has_secret = method.uses_secret();
        }
        set(&mut draft.jwks_uri, self.jwks_uri);
        set(&mut draft.jwks, self.jwks);
        set(&mut draft.access_token_format, self.access_token_format);
        set(&mut draft.id_token_signed_response_alg, self.id_token_signed_response_alg);
        set(&mut draft.refresh_grace_period_secs, self.refresh_grace_period_secs);
        if let Some(pkce) = self.require_pkce {
            draft.require_pkce = Some(pkce);
        }
        if let Some(consent) = self.require_consent {
            draft.require_consent = Some(consent);
        }
        Ok(draft)
    }
}

fn set<T>(field: &mut Option<T>, change: Option<Option<T>>) {
    if let Some(value) = change {
        *field = value;
    }
}

/// Registers a new client from `draft`; a client whose method uses a secret gets a generated
/// one (256 bits, stored as SHA-256: docs/DESIGN.md).
pub async fn add(
    store: &dyn ClientStore,
    resources: &[Resource],
    mut draft: ClientDraft,
    source: ClientSource,
    now: i64,
) -> Result<Registered, LifecycleError> {
    draft.has_secret =
        draft.token_endpoint_auth_method.map_or(draft.has_secret, AuthMethod::uses_secret);
    let client = registration::validate(draft, resources)?;
    if store.client(&client.client_id).await?.is_some() {
        return Err(LifecycleError::Exists(client.client_id));
    }
    let secret =
        client.token_endpoint_auth_method.uses_secret().then(secret::generate).transpose()?;
    let hash = secret.as_deref().map(password::hash_generated_secret);
    let record = ClientRecord::new(client, hash, source);
    store.upsert_client(&record, now).await?;
    Ok(Registered { record: ClientRecord { revision: record.revision + 1, ..record }, secret })
}

/// Changes a client in place; nothing it holds is revoked (see the module). A client from
/// the config file is refused: the file wins at the next start.
pub async fn update(
    store: &dyn ClientStore,
    resources: &[Resource],
    client_id: &str,
    changes: ClientChanges,
    now: i64,
) -> Result<Registered, LifecycleError> {
    let stored = managed(store, client_id).await?;
    let had_secret = stored.secret_hash.is_some();
    let draft = changes.apply(draft_of(&stored.client, had_secret))?;
    let client = registration::validate(draft, resources)?;
    let uses_secret = client.token_endpoint_auth_method.uses_secret();
    let secret = (uses_secret && !had_secret).then(secret::generate).transpose()?;
    let mut record = ClientRecord { client, ..stored };
    if let Some(secret) = &secret {
        record.secret_hash = Some(password::hash_generated_secret(secret));
    } else if !uses_secret {
        record.secret_hash = None;
        record.previous_secret = None;
    }
    store.replace_client(&record, now).await?;
    record.revision += 1;
    Ok(Registered { record, secret })
}

/// Gives a client a new generated secret. The old one keeps working for `overlap_secs`
/// (0: it stops now), so the client's deployments can switch without an outage; a secret
/// rotated out earlier and still in its overlap stops now.
pub async fn rotate_secret(
    store: &dyn ClientStore,
    client_id: &str,
    overlap_secs: i64,
    now: i64,
) -> Result<Registered, LifecycleError> {
    let stored = managed(store, client_id).await?;
    let Some(old) = stored.secret_hash.clone() else {
        return Err(LifecycleError::NoSecret(client_id.to_owned()));
    };
    let secret = secret::generate()?;
    let previous = (overlap_secs > 0)
        .then(|| PreviousSecret { hash: old, expires_at: now.saturating_add(overlap_secs) });
    let mut record = ClientRecord {
        secret_hash: Some(password::hash_generated_secret(&secret)),
        previous_secret: previous,
        ..stored
    };
    store.replace_client(&record, now).await?;
    record.revision += 1;
    Ok(Registered { record, secret: Some(secret) })
}

/// A stored client that the CLI and the admin API may change.
async fn managed(store: &dyn ClientStore, client_id: &str) -> Result<ClientRecord, LifecycleError> {
    let stored = store
        .client(client_id)
        .await?
        .ok_or_else(|| LifecycleError::NotFound(client_id.to_owned()))?;
    if stored.source == ClientSource::Config {
        return Err(LifecycleError::FromConfig(client_id.to_owned()));
    }
    Ok(stored)
}

/// A client as scripts and the admin API see it: the `[[clients]]` config keys, every key
/// present (`null` when unset), plus where it came from and whether it has a secret. The
/// secret itself only in the answer of the operation that made it.
#[derive(Debug, Serialize)]
pub struct ClientView<'a> {
    client_id: &'a str,
    client_name: Option<&'a str>,
    application_type: ApplicationType,
    redirect_uris: &'a [String],
    post_logout_redirect_uris: &'a [String],
    grant_types: &'a [GrantType],
    scopes: &'a [String],
    token_endpoint_auth_method: AuthMethod,
    require_consent: bool,
    require_pkce: bool,
    jwks_uri: Option<&'a str>,
    jwks: Option<&'a latchkey_resource::JwkSet>,
    access_token_format: Option<TokenFormat>,
    id_token_signed_response_alg: Option<SigningAlg>,
    /// As in the config: `"30s"`.
    refresh_grace_period: Option<String>,
    remember_consent: Option<bool>,
    legacy_assertion_audience: bool,
    id_token_on_refresh: bool,
    claims_in_id_token: bool,
    session_refresh_tokens: bool,
    /// `config` or `cli`.
    source: ClientSource,
    has_secret: bool,
    /// When the secret rotated out last still works until (unix seconds), during an overlap.
    previous_secret_expires_at: Option<i64>,
    /// The new secret, in the answer of `add`, `update` and `rotate-secret` that made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
}

impl<'a> ClientView<'a> {
    /// The view of a stored client at `now` (a previous secret past its overlap is not shown).
    pub fn of(record: &'a ClientRecord, now: i64) -> Self {
        let c = &record.client;
        ClientView {
            client_id: &c.client_id,
            client_name: c.client_name.as_deref(),
            application_type: c.application_type,
            redirect_uris: &c.redirect_uris,
            post_logout_redirect_uris: &c.post_logout_redirect_uris,
            grant_types: &c.grant_types,
            scopes: &c.scopes,
            token_endpoint_auth_method: c.token_endpoint_auth_method,
            require_consent: c.require_consent,
            require_pkce: c.require_pkce,
            jwks_uri: c.jwks_uri.as_deref(),
            jwks: c.jwks.as_ref(),
            access_token_format: c.access_token_format,
            id_token_signed_response_alg: c.id_token_signed_response_alg,
            refresh_grace_period: c.refresh_grace_period_secs.map(|secs| format!("{secs}s")),
            remember_consent: c.remember_consent,
            legacy_assertion_audience: c.legacy_assertion_audience,
            id_token_on_refresh: c.id_token_on_refresh,
            claims_in_id_token: c.claims_in_id_token,
            session_refresh_tokens: c.session_refresh_tokens,
            source: record.source,
            has_secret: record.secret_hash.is_some(),
            previous_secret_expires_at: record
                .previous_secret
                .as_ref()
                .map(|previous| previous.expires_at)
                .filter(|expires_at| now < *expires_at),
            client_secret: None,
        }
    }

    /// The view with the secret an operation just made.
    pub fn with_secret(self, secret: Option<&'a str>) -> Self {
        ClientView { client_secret: secret, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> ClientDraft {
        ClientDraft {
            client_id: "app".into(),
            has_secret: true,
            redirect_uris: vec!["https://app.example.com/a".into()],
            scopes: vec!["openid".into(), "profile".into()],
            ..ClientDraft::default()
        }
    }

    #[test]
    fn a_draft_of_a_client_validates_back_to_the_same_client() {
        let client = registration::validate(stored(), &[]).unwrap();
        let again = registration::validate(draft_of(&client, true), &[]).unwrap();
        assert_eq!(again, client);
    }

    #[test]
    fn redirect_uris_are_added_once_and_removed_only_when_registered() {
        let changes = ClientChanges {
            add_redirect_uris: vec![
                "https://app.example.com/b".into(),
                "https://app.example.com/a".into(),
            ],
            remove_redirect_uris: vec!["https://app.example.com/a".into()],
            ..ClientChanges::default()
        };
        let draft = changes.apply(stored()).unwrap();
        assert_eq!(draft.redirect_uris, ["https://app.example.com/b"]);
        let absent = ClientChanges {
            remove_redirect_uris: vec!["https://app.example.com/z".into()],
            ..ClientChanges::default()
        };
        let error = absent.apply(stored()).unwrap_err();
        assert_eq!(error.field, "redirect_uris");
        assert!(error.problem.contains("is not registered"), "{}", error.problem);
    }

    #[test]
    fn unset_changes_keep_fields_and_cleared_ones_go_back_to_defaults() {
        let mut draft = stored();
        draft.access_token_format = Some(TokenFormat::Opaque);
        draft.client_name = Some("App".into());
        let changes = ClientChanges {
            access_token_format: Some(None),
            scopes: Some(vec!["openid".into()]),
            ..ClientChanges::default()
        };
        let changed = changes.apply(draft).unwrap();
        assert_eq!(changed.access_token_format, None);
        assert_eq!(changed.client_name.as_deref(), Some("App"));
        assert_eq!(changed.scopes, ["openid"]);
        assert_eq!(changed.redirect_uris, ["https://app.example.com/a"]);
    }

    #[test]
    fn switching_to_a_method_without_a_secret_drops_the_secret_from_the_draft() {
        let changes = ClientChanges {
            token_endpoint_auth_method: Some(AuthMethod::None),
            ..ClientChanges::default()
        };
        let draft = changes.apply(stored()).unwrap();
        assert!(!draft.has_secret);
        let client = registration::validate(draft, &[]).unwrap();
        assert!(client.is_public());
    }
}
