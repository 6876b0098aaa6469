//! The claims of the `profile` and `email` scopes (OIDC Core §5.4), shared by `/userinfo` and
//! id_tokens. The endpoint itself is `authority::userinfo`.

use serde_json::{Map, Value};

use crate::model::User;

/// The claims of the `profile` and `email` scopes (OIDC Core §5.4) that `granted` grants, for
/// userinfo and id_tokens alike. `email_verified` is the user's flag: true for emails the
/// operator set (config, CLI) unless told otherwise, as imported for imported users.
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
        out.insert("email_verified".into(), user.email_verified.into());
    }
    out
}
