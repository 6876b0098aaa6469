//! RP-Initiated Logout 1.0: which client asks, where the user may be sent afterwards, and the
//! end of a session.

use jsonwebtoken::{Validation, decode, decode_header};
use latchkey_resource::claims::is_access_token_typ;

use super::{Authority, Failure};
use crate::keys::KeyPurpose;
use crate::model::Client;
use crate::oauth::Params;
use crate::oidc::logout::{IdTokenHint, LogoutRequest};

impl Authority {
    /// Validates a logout request; the error is a message for the user (never a redirect).
    pub async fn logout_request(
        &self,
        params: &Params,
    ) -> Result<LogoutRequest, Result<String, Failure>> {
        let message = |text: &str| Err(Ok(text.to_owned()));
        let (Ok(hint), Ok(client_id), Ok(redirect), Ok(state)) = (
            params.get("id_token_hint"),
            params.get("client_id"),
            params.get("post_logout_redirect_uri"),
            params.get("state"),
        ) else {
            return message("The logout request repeats a parameter.");
        };
        let hint = match hint {
            None => None,
            Some(token) => match self.verify_id_token_hint(token) {
                Some(claims) => Some(claims),
                None => return message("The id_token_hint was not issued by this server."),
            },
        };
        if let (Some(hint), Some(client_id)) = (&hint, client_id)
            && hint.aud != client_id
        {
            return message("client_id does not match the id_token_hint.");
        }
        let client_id =
            client_id.map(str::to_owned).or_else(|| hint.as_ref().map(|h| h.aud.clone()));
        let post_logout_redirect_uri = match redirect {
            None => None,
            Some(uri) => {
                let Some(client_id) = client_id else {
                    return message(
                        "post_logout_redirect_uri needs id_token_hint or client_id to say which application asks.",
                    );
                };
                let client: Option<Client> = self
                    .store
                    .client(&client_id)
                    .await
                    .map_err(|e| Err(Failure::from(e)))?
                    .map(|r| r.client);
                // Exact match against the registration, like redirect_uri (RFC 9700 §4.1.3).
                if !client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|u| u == uri)) {
                    return message(
                        "This post_logout_redirect_uri is not registered for the application.",
                    );
                }
                Some(uri.to_owned())
            }
        };
        Ok(LogoutRequest { hint, post_logout_redirect_uri, state: state.map(str::to_owned) })
    }

    /// The subject and client of an id_token this server signed. Expired hints are accepted:
    /// they still prove who asks (RP-Initiated Logout §2).
    pub fn verify_id_token_hint(&self, token: &str) -> Option<IdTokenHint> {
        let header = decode_header(token).ok()?;
        let snapshot = self.keys.snapshot();
        let (algorithm, key) = snapshot.verifier(header.kid.as_deref()?, KeyPurpose::IdToken)?;
        // An access token is not an id_token, in either spelling of its typ (RFC 9068 §2.1).
        if header.alg != *algorithm || is_access_token_typ(header.typ.as_deref()) {
            return None;
        }
        let mut validation = Validation::new(*algorithm);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["iss", "sub", "aud", "exp"]);
        decode::<IdTokenHint>(token, key, &validation).ok().map(|data| data.claims)
    }

    /// Ends a session and revokes the refresh tokens issued through it.
    pub async fn logout(&self, session_id_hash: &str, now: i64) -> Result<(), Failure> {
        Ok(self.store.end_session(session_id_hash, now).await?)
    }

    /// The live session that issued a hint (its `sid`), if it belongs to the hint's user.
    pub async fn hinted_session(
        &self,
        hint: &IdTokenHint,
        now: i64,
    ) -> Result<Option<crate::model::Session>, Failure> {
        let Some(sid) = hint.sid.as_deref() else { return Ok(None) };
        let session = self.store.session_by_sid(sid, now).await?;
        Ok(session.filter(|session| session.user_id == hint.sub))
    }
}
