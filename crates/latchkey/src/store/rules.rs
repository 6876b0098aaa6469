//! The decisions both engines make the same way, as pure functions: an engine reads its rows
//! (under its own locks), asks the rule, and carries out the answer in its own transaction
//! style. Only the SQL differs per engine; these are tested here without a database.

use crate::model::{AuthorizationCode, CodeLookup, RefreshRevocation, StoredRefresh};
use crate::store::{RotationPlan, RotationRequest};

/// A presented refresh token's row and its grant's, as read under the rotation's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshRow {
    /// Its grant.
    pub(crate) grant_id: String,
    /// The token's own expiry.
    pub(crate) expires_at: i64,
    /// When it was rotated, if it was.
    pub(crate) rotated_at: Option<i64>,
    /// Its successor, sealed for a retry within the grace window, if one was kept.
    pub(crate) successor_sealed: Option<Vec<u8>>,
    /// Whether the grant is revoked.
    pub(crate) grant_revoked: bool,
    /// The grant's expiry.
    pub(crate) grant_expires_at: i64,
}

/// What to do with a presented refresh token (RFC 9700 §4.14.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RotationStep {
    /// Unknown, expired or revoked: refuse; nothing changes.
    Refuse,
    /// Already rotated, within the grace window: hand back the same successor.
    Retry {
        /// The successor, sealed.
        successor_sealed: Vec<u8>,
    },
    /// Already rotated, past the window: a reuse, so revoke the whole grant.
    RevokeFamily {
        /// The grant to revoke.
        grant_id: String,
    },
    /// Live: mark it rotated and store its successor.
    Rotate,
}

/// The rotation rule: reuse after the grace window revokes the family, a retry within it gets
/// the same successor, and only a live token of a live grant rotates.
pub(crate) fn rotation_step(row: Option<RefreshRow>, grace_secs: i64, now: i64) -> RotationStep {
    let Some(row) = row else { return RotationStep::Refuse };
    if row.grant_revoked {
        return RotationStep::Refuse;
    }
    if let Some(rotated_at) = row.rotated_at {
        return match row.successor_sealed {
            Some(successor_sealed) if now - rotated_at <= grace_secs => {
                RotationStep::Retry { successor_sealed }
            }
            _ => RotationStep::RevokeFamily { grant_id: row.grant_id },
        };
    }
    if row.expires_at <= now || row.grant_expires_at <= now {
        return RotationStep::Refuse;
    }
    RotationStep::Rotate
}

/// What presenting a stored refresh token for rotation does: the plan first, then the
/// rotation rule, for a token read under the rotation's lock along with its sealed successor,
/// if one is kept. `None`: the plan declined, and nothing changes whatever the token's state
/// (a token presented by another client or for an ended sign-in is no reuse of the family).
pub(crate) fn presentation(
    stored: &StoredRefresh,
    successor_sealed: Option<Vec<u8>>,
    plan: RotationPlan,
    now: i64,
) -> Option<(RotationStep, RotationRequest)> {
    let request = plan(stored)?;
    let row = RefreshRow {
        grant_id: stored.grant.id.clone(),
        expires_at: stored.token.expires_at,
        rotated_at: stored.token.rotated_at,
        successor_sealed,
        grant_revoked: stored.grant.revoked_at.is_some(),
        grant_expires_at: stored.grant.expires_at,
    };
    Some((rotation_step(Some(row), request.grace_secs, now), request))
}

/// What looking up a code finds: spent codes are told apart from unknown and expired ones,
/// since a spent code presented again is a replay (RFC 6749 §4.1.2).
pub(crate) fn code_lookup(code: Option<(AuthorizationCode, bool)>, now: i64) -> CodeLookup {
    match code {
        None => CodeLookup::Invalid,
        Some((code, true)) => CodeLookup::Spent { client_id: code.client_id },
        Some((code, false)) if code.expires_at <= now => CodeLookup::Invalid,
        Some((code, false)) => CodeLookup::Unspent(Box::new(code)),
    }
}

/// What revoking a refresh token does, given the owner of its grant: only the client it was
/// issued to may revoke it (RFC 7009 §2.1). `Revoked` means: revoke the grant.
pub(crate) fn revocation(owner: Option<&str>, caller: &str) -> RefreshRevocation {
    match owner {
        None => RefreshRevocation::Unknown,
        Some(owner) if owner != caller => RefreshRevocation::OtherClient,
        Some(_) => RefreshRevocation::Revoked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::scope::Scopes;

    fn row() -> RefreshRow {
        RefreshRow {
            grant_id: "g".into(),
            expires_at: 2_000,
            rotated_at: None,
            successor_sealed: None,
            grant_revoked: false,
            grant_expires_at: 3_000,
        }
    }

    #[test]
    fn a_live_token_rotates_and_a_dead_one_is_refused() {
        assert_eq!(rotation_step(Some(row()), 0, 1_000), RotationStep::Rotate);
        assert_eq!(rotation_step(None, 0, 1_000), RotationStep::Refuse);
        assert_eq!(rotation_step(Some(row()), 0, 2_000), RotationStep::Refuse, "token expired");
        let short_grant = RefreshRow { grant_expires_at: 1_000, ..row() };
        assert_eq!(rotation_step(Some(short_grant), 0, 1_000), RotationStep::Refuse);
        let revoked = RefreshRow { grant_revoked: true, ..row() };
        assert_eq!(rotation_step(Some(revoked), 0, 1_000), RotationStep::Refuse);
    }

    #[test]
    fn reuse_revokes_the_family_unless_it_is_a_retry_within_the_window() {
        let rotated = RefreshRow { rotated_at: Some(1_000), ..row() };
        let family = RotationStep::RevokeFamily { grant_id: "g".into() };
        assert_eq!(rotation_step(Some(rotated.clone()), 30, 1_010), family, "no successor kept");
        let kept = RefreshRow { successor_sealed: Some(vec![1]), ..rotated };
        let retry = RotationStep::Retry { successor_sealed: vec![1] };
        assert_eq!(rotation_step(Some(kept.clone()), 30, 1_030), retry);
        assert_eq!(rotation_step(Some(kept.clone()), 30, 1_031), family, "past the window");
        // A reuse is a reuse even after the token would have expired.
        assert_eq!(rotation_step(Some(kept), 0, 5_000), family);
    }

    fn code(expires_at: i64) -> AuthorizationCode {
        AuthorizationCode {
            code_hash: "h".into(),
            client_id: "app".into(),
            user_id: "u".into(),
            session_id_hash: "s".into(),
            redirect_uri: String::new(),
            scopes: Scopes::default(),
            audience: Vec::new(),
            nonce: None,
            code_challenge: None,
            auth_time: 0,
            created_at: 0,
            expires_at,
        }
    }

    #[test]
    fn codes_are_unspent_spent_or_invalid() {
        assert!(matches!(code_lookup(Some((code(100), false)), 99), CodeLookup::Unspent(_)));
        assert!(matches!(code_lookup(Some((code(100), false)), 100), CodeLookup::Invalid));
        assert!(matches!(code_lookup(None, 0), CodeLookup::Invalid));
        // Spent is spent, expired or not: a replay is detected after the code's lifetime too.
        let spent = code_lookup(Some((code(100), true)), 500);
        assert!(matches!(spent, CodeLookup::Spent { client_id } if client_id == "app"));
    }

    #[test]
    fn only_the_owner_revokes_a_refresh_token() {
        assert_eq!(revocation(None, "app"), RefreshRevocation::Unknown);
        assert_eq!(revocation(Some("other"), "app"), RefreshRevocation::OtherClient);
        assert_eq!(revocation(Some("app"), "app"), RefreshRevocation::Revoked);
    }
}
