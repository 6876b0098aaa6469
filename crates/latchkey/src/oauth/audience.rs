//! Which APIs a token is for (RFC 8707) and which scopes it may carry.
//!
//! The audience is the `resource` parameters, or else the resources that define the granted
//! scopes. A token never carries a scope its audience does not define, except the OpenID
//! scopes, which only reach latchkey's own `/userinfo`.

use super::{ErrorCode, OAuthError};
use crate::model::Resource;
use crate::model::scope::Scopes;

/// Scopes defined by OpenID Connect rather than by a resource.
pub const OPENID_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// Whether `scope` exists at all: an OpenID scope or one a resource defines.
pub fn is_known(scope: &str, resources: &[Resource]) -> bool {
    OPENID_SCOPES.contains(&scope) || resources.iter().any(|r| r.scopes.iter().any(|s| s == scope))
}

/// Scopes and audience of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What the token may do.
    pub scopes: Scopes,
    /// Which APIs accept it.
    pub audience: Vec<String>,
}

/// Whether the scopes came from the request's own `scope` parameter (then each must belong to
/// a requested resource) or are the registration's or grant's (then narrowed to them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// The `scope` parameter named them.
    Explicitly,
    /// The default: all the client may have.
    ByDefault,
}

/// Resolves the target of a request for `requested` scopes and `resource` parameters by a
/// client registered for `client_scopes`.
pub fn resolve(
    requested: &Scopes,
    how: Requested,
    resource_params: &[&str],
    client_scopes: &[String],
    resources: &[Resource],
) -> Result<Target, OAuthError> {
    if resource_params.is_empty() {
        let audience = resources
            .iter()
            .filter(|r| requested.iter().any(|s| r.scopes.iter().any(|owned| owned == s)))
            .map(|r| r.identifier.clone())
            .collect();
        // Every scope a resource defines has that resource in the audience; a scope nothing
        // defines (a registration from before that rule) is dropped, never carried.
        let kept: Vec<&str> = requested.iter().filter(|s| is_known(s, resources)).collect();
        return Ok(Target { scopes: Scopes::from_list(&kept), audience });
    }
    let chosen = chosen_resources(resource_params, client_scopes, resources)?;
    let owned_by_chosen = |s: &str| {
        OPENID_SCOPES.contains(&s) || chosen.iter().any(|r| r.scopes.iter().any(|o| o == s))
    };
    if how == Requested::Explicitly
        && let Some(stray) = requested.iter().find(|s| !owned_by_chosen(s))
    {
        // Both names are the server's configuration (the scope passed the registration check).
        let owner = resources.iter().find(|r| r.scopes.iter().any(|o| o == stray));
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            match owner {
                Some(owner) => format!(
                    "scope {stray} belongs to the resource {}, which this request did not ask for: add resource={} or leave the scope out",
                    owner.identifier, owner.identifier
                ),
                None => "a requested scope belongs to none of the requested resources".to_owned(),
            },
        ));
    }
    let kept: Vec<&str> = requested.iter().filter(|s| owned_by_chosen(s)).collect();
    Ok(Target {
        scopes: Scopes::from_list(&kept),
        audience: chosen.into_iter().map(|r| r.identifier.clone()).collect(),
    })
}

/// The resources the `resource` parameters name (RFC 8707 §2), each once, in order: every one
/// configured, and one the client holds a scope of.
fn chosen_resources<'a>(
    resource_params: &[&str],
    client_scopes: &[String],
    resources: &'a [Resource],
) -> Result<Vec<&'a Resource>, OAuthError> {
    let mut chosen: Vec<&Resource> = Vec::new();
    for value in resource_params {
        // RFC 8707 §2: an absolute URI without a fragment.
        let valid = url::Url::parse(value).is_ok_and(|u| u.fragment().is_none());
        let resource = resources.iter().find(|r| r.identifier == *value);
        let Some(resource) = resource.filter(|_| valid) else {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "a resource parameter is not an API known to this server (an absolute URI of a configured resource)",
            ));
        };
        if !resource.scopes.iter().any(|s| client_scopes.contains(s)) {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "this client may not request tokens for one of the resources: it is registered for none of its scopes",
            ));
        }
        if !chosen.iter().any(|r| r.identifier == resource.identifier) {
            chosen.push(resource);
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Vec<Resource> {
        vec![
            Resource {
                identifier: "https://photos".into(),
                scopes: vec!["read:photos".into(), "write:photos".into()],
                client_id: None,
                descriptions: Default::default(),
            },
            Resource {
                identifier: "https://mail".into(),
                scopes: vec!["read:mail".into()],
                client_id: None,
                descriptions: Default::default(),
            },
        ]
    }

    fn scopes(value: &str) -> Scopes {
        Scopes::parse(value).unwrap()
    }

    fn resolve_default(
        requested: &Scopes,
        resource_params: &[&str],
        client_scopes: &[String],
        resources: &[Resource],
    ) -> Result<Target, OAuthError> {
        resolve(requested, Requested::ByDefault, resource_params, client_scopes, resources)
    }

    #[test]
    fn an_explicit_scope_outside_the_requested_resource_is_invalid_scope() {
        let client = vec!["openid".to_owned(), "read:photos".to_owned(), "read:mail".to_owned()];
        let asked = scopes("openid read:photos");
        let error =
            resolve(&asked, Requested::Explicitly, &["https://mail"], &client, &resources())
                .unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidScope);
        assert!(error.description.contains("belongs to the resource https://photos"), "{error}");
        let ok = resolve(&asked, Requested::Explicitly, &["https://photos"], &client, &resources());
        assert_eq!(ok.unwrap().scopes.to_param(), "openid read:photos");
    }

    #[test]
    fn audience_follows_the_scopes_without_resource() {
        let client = vec!["openid".to_owned(), "read:photos".to_owned(), "read:mail".to_owned()];
        let target =
            resolve_default(&scopes("openid read:photos"), &[], &client, &resources()).unwrap();
        assert_eq!(target.audience, ["https://photos"]);
        let target = resolve_default(&scopes("openid"), &[], &client, &resources()).unwrap();
        assert!(target.audience.is_empty());
    }

    #[test]
    fn resource_narrows_audience_and_scopes() {
        let client = vec!["openid".to_owned(), "read:photos".to_owned(), "read:mail".to_owned()];
        let target = resolve_default(
            &scopes("openid read:photos read:mail"),
            &["https://mail"],
            &client,
            &resources(),
        )
        .unwrap();
        assert_eq!(target.audience, ["https://mail"]);
        assert_eq!(target.scopes.to_param(), "openid read:mail");
    }

    #[test]
    fn a_scope_nothing_defines_never_reaches_a_token() {
        // A registration stored before undefined scopes became a configuration error.
        let client = vec!["read:photos".to_owned(), "admin".to_owned()];
        let target =
            resolve_default(&scopes("read:photos admin"), &[], &client, &resources()).unwrap();
        assert_eq!(target.scopes.to_param(), "read:photos");
        assert_eq!(target.audience, ["https://photos"]);
        let target = resolve_default(&scopes("admin"), &[], &client, &resources()).unwrap();
        assert!(target.scopes.is_empty() && target.audience.is_empty());
    }

    #[test]
    fn unknown_or_unusable_resources_are_invalid_target() {
        let client = vec!["read:photos".to_owned()];
        for bad in ["https://unknown", "https://mail", "not a uri", "https://photos#x"] {
            let error =
                resolve_default(&scopes("read:photos"), &[bad], &client, &resources()).unwrap_err();
            assert_eq!(error.code, ErrorCode::InvalidTarget, "{bad}");
        }
    }
}
