//! The UserInfo endpoint (OIDC Core §5.3): the claims of the granted scopes, for access
//! tokens that carry `openid`. Errors follow RFC 6750 §3.1.

use latchkey_resource::AccessTokenClaims;
use serde_json::{Map, Value};

use crate::authority::{Authority, Failure};
use crate::model::User;
use crate::oauth::{ErrorCode, OAuthError};

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
        let mut out = Map::new();
        out.insert("sub".into(), user.id.clone().into());
        out.extend(scope_claims(&user, |scope| claims.scopes().any(|s| s == scope)));
        Ok(Value::Object(out))
    }
}

/// The claims of the `profile` and `email` scopes (OIDC Core §5.4) that `granted` grants, for
/// userinfo and id_tokens alike. Emails are set by the operator (config, CLI), who vouches for
/// them: `email_verified` is true.
pub fn scope_claims(user: &User, granted: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut out = Map::new();
    if granted("profile") {
        out.insert("preferred_username".into(), user.username.clone().into());
        if let Some(name) = &user.name {
            out.insert("name".into(), name.clone().into());
        }
    }
    if let (true, Some(email)) = (granted("email"), &user.email) {
        out.insert("email".into(), email.clone().into());
        out.insert("email_verified".into(), true.into());
    }
    out
}
