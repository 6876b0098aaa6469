//! The UserInfo endpoint (OIDC Core §5.3): the claims of the granted scopes, for access
//! tokens that carry `openid`. Errors follow RFC 6750 §3.1.

use jsonwebtoken::{Validation, decode, decode_header};
use latchkey_resource::AccessTokenClaims;
use latchkey_resource::claims::ACCESS_TOKEN_TYP;
use serde_json::{Map, Value};

use crate::authority::{Authority, Failure};
use crate::oauth::{ErrorCode, OAuthError};

fn invalid_token(description: &str) -> Failure {
    OAuthError::new(ErrorCode::InvalidToken, description).into()
}

impl Authority {
    /// Verifies one of latchkey's own access tokens: signature by a published key, `typ`,
    /// issuer, expiry, and that neither it nor its grant was revoked.
    pub async fn verify_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<AccessTokenClaims, Failure> {
        let header =
            decode_header(token).map_err(|_| invalid_token("the access token is not a JWT"))?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(invalid_token(
                "not an access token (typ must be at+jwt): an id_token cannot call userinfo",
            ));
        }
        let snapshot = self.keys.snapshot();
        let (expected, key) =
            header.kid.as_deref().and_then(|kid| snapshot.verifier(kid)).ok_or_else(|| {
                invalid_token("the access token was not signed by a key of this server")
            })?;
        if header.alg != *expected {
            return Err(invalid_token("the access token's alg does not match its key"));
        }
        let mut validation = Validation::new(*expected);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.validate_aud = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = decode::<AccessTokenClaims>(token, key, &validation)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    invalid_token("the access token has expired")
                }
                _ => invalid_token("the access token is invalid"),
            })?
            .claims;
        if claims.exp <= now {
            return Err(invalid_token("the access token has expired"));
        }
        if !self.store.access_token_active(&claims.jti, now).await? {
            return Err(invalid_token("the access token was revoked"));
        }
        Ok(claims)
    }

    /// The userinfo claims for a bearer token.
    pub async fn userinfo(&self, token: &str, now: i64) -> Result<Value, Failure> {
        let claims = self.verify_access_token(token, now).await?;
        if !claims.scopes().any(|s| s == "openid") {
            return Err(OAuthError::new(
                ErrorCode::InsufficientScope,
                "userinfo needs a token with the openid scope",
            )
            .into());
        }
        let Some(user) = self.store.user_by_id(&claims.sub).await? else {
            return Err(invalid_token("the user of this token no longer exists"));
        };
        let mut out = Map::new();
        out.insert("sub".into(), user.id.into());
        if claims.scopes().any(|s| s == "profile") {
            out.insert("preferred_username".into(), user.username.into());
            if let Some(name) = user.name {
                out.insert("name".into(), name.into());
            }
        }
        if let (true, Some(email)) = (claims.scopes().any(|s| s == "email"), user.email) {
            out.insert("email".into(), email.into());
        }
        Ok(Value::Object(out))
    }
}
