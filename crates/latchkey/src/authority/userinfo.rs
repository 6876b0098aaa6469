//! The UserInfo endpoint (OIDC Core §5.3): the claims of the granted scopes, for access
//! tokens that carry `openid`. Errors follow RFC 6750 §3.1.

use latchkey_resource::AccessTokenClaims;
use serde_json::{Map, Value};

use super::{Authority, Failure};
use crate::oauth::{ErrorCode, OAuthError};
use crate::oidc::userinfo::scope_claims;

fn invalid_token(description: &str) -> Failure {
    OAuthError::new(ErrorCode::InvalidToken, description).into()
}

impl Authority {
    /// Verifies one of latchkey's own access tokens (JWT or opaque) and checks it is live.
    pub async fn verify_access_token(
        &self,
        token: &str,
        now: i64,
    ) -> Result<AccessTokenClaims, Failure> {
        match self.inspect_access_token(token, now).await? {
            Ok(live) => Ok(live.claims),
            Err(dead) => Err(invalid_token(dead.describe())),
        }
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
        if user.disabled {
            return Err(invalid_token("the user of this token is disabled"));
        }
        let mut out = Map::new();
        out.insert("sub".into(), user.id.clone().into());
        out.extend(scope_claims(&user, |scope| claims.scopes().any(|s| s == scope)));
        Ok(Value::Object(out))
    }
}
