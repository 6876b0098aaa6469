//! The authorization endpoint's operations (RFC 6749 §4.1.1–§4.1.2, OIDC Core §3.1.2):
//! remembered consent, and the code an approved request gets.

use super::{Authority, Failure};
use crate::model::scope::Scopes;
use crate::model::{self, Session};
use crate::oauth::authorize::AuthorizationRequest;
use crate::secret;

impl Authority {
    /// The live session behind a cookie value, with the scopes its user already approved for
    /// the client.
    pub async fn session_and_consent(
        &self,
        cookie: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Option<(Session, Option<Scopes>)>, Failure> {
        Ok(self.store.session_and_consent(&secret::hash(cookie), client_id, now).await?)
    }

    /// The scopes the user already approved for the client.
    pub async fn consented(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<Scopes>, Failure> {
        Ok(self.store.consent(user_id, client_id).await?)
    }

    /// Forgets what the user approved for the client: after a denial, the client cannot carry
    /// on silently with an earlier consent (`prompt=none`).
    pub async fn forget_consent(&self, user_id: &str, client_id: &str) -> Result<(), Failure> {
        Ok(self.store.forget_consent(user_id, client_id).await?)
    }

    /// The user a consent page is shown to.
    pub async fn user(&self, user_id: &str) -> Result<Option<model::User>, Failure> {
        Ok(self.store.user_by_id(user_id).await?)
    }

    /// Remembers approval of the request's scopes, on top of earlier ones.
    pub async fn remember_consent(
        &self,
        user_id: &str,
        request: &AuthorizationRequest,
        now: i64,
    ) -> Result<(), Failure> {
        let earlier = self.consented(user_id, &request.client.client_id).await?.unwrap_or_default();
        let all: Vec<&str> = earlier.iter().chain(request.target.scopes.iter()).collect();
        let scopes = Scopes::from_list(&all);
        self.store.save_consent(user_id, &request.client.client_id, &scopes, now).await?;
        Ok(())
    }

    /// Issues an authorization code for an approved request.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        session: &Session,
        now: i64,
    ) -> Result<String, Failure> {
        let code = secret::generate()?;
        let record = model::AuthorizationCode {
            code_hash: secret::hash(&code),
            client_id: request.client.client_id.clone(),
            user_id: session.user_id.clone(),
            session_id_hash: session.id_hash.clone(),
            redirect_uri: request.redirect_uri_param.clone().unwrap_or_default(),
            scopes: request.target.scopes.clone(),
            audience: request.target.audience.clone(),
            nonce: request.nonce.clone(),
            code_challenge: request.code_challenge.clone(),
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + self.settings.code_ttl,
        };
        self.store.insert_code(&record).await?;
        Ok(code)
    }
}
