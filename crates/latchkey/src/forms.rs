//! The anti-CSRF value of the login, consent and logout forms.
//!
//! A page's form carries `csrf_token = SEEN_AT "." MAC`: an HMAC-SHA256, under a key all nodes
//! share ([`FormKey::load`]), over what the form is for, the browser and session it was shown
//! to, the request it continues, and when that request was first seen. Nothing else makes a
//! submission valid, so:
//!
//! - a value copied from the cookie, or from another browser's page, does not pass;
//! - a consent page shown to one session cannot be posted by another (the session is bound);
//! - the browser id is replaced at login, so forms from before the login stop working;
//! - `SEEN_AT` cannot be moved: a login counts as fresh for a request (`prompt=login`,
//!   `max_age`) only if it happened at or after the moment the request was first seen.

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::keys::{MasterKey, SealError};
use crate::secret;
use crate::store::{self, Store};

/// How long a form stays valid after its request was first seen.
pub const FORM_TTL_SECS: i64 = 3600;

/// Clock difference between nodes tolerated for `SEEN_AT` in the future.
const CLOCK_SKEW_SECS: i64 = 60;

/// The name of the form key in the store's server secrets.
const FORM_KEY_NAME: &str = "form";

/// Which form a value belongs to: one form's value never passes as another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The login page.
    Login,
    /// The consent page.
    Consent,
    /// The logout confirmation.
    Logout,
}

impl Purpose {
    fn tag(self) -> &'static [u8] {
        match self {
            Purpose::Login => b"login",
            Purpose::Consent => b"consent",
            Purpose::Logout => b"logout",
        }
    }
}

/// Who a form was shown to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The browser's random id (a cookie, set before the first form and replaced at login).
    pub browser: &'a str,
    /// The session's `id_hash`, when a user was signed in.
    pub session: Option<&'a str>,
}

/// The key that signs form values.
pub struct FormKey(hmac::Key);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(<redacted>)")
    }
}

/// Loading the shared form key failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
    /// Sealing or opening it failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// It is sealed, and no master key is configured.
    #[error(
        "the form key is encrypted: set LATCHKEY_MASTER_KEY to the key the database was used with"
    )]
    Sealed,
    /// No randomness.
    #[error(transparent)]
    Random(#[from] secret::RandomError),
}

impl FormKey {
    /// A key from its bytes.
    pub fn new(bytes: &[u8]) -> Self {
        FormKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// The key every node shares: created by the first node that starts, sealed under the
    /// master key when there is one (and sealed later once a master key is configured).
    pub async fn load(store: &dyn Store, master: Option<&MasterKey>) -> Result<Self, LoadError> {
        let fresh = secret::random_bytes::<32>()?;
        let candidate = match master {
            Some(master) => master.seal(FORM_KEY_NAME, &fresh)?,
            None => fresh.to_vec(),
        };
        let (stored, sealed) =
            store.server_secret(FORM_KEY_NAME, &candidate, master.is_some()).await?;
        let bytes = match (sealed, master) {
            (true, Some(master)) => master.open(FORM_KEY_NAME, &stored)?,
            (true, None) => return Err(LoadError::Sealed),
            (false, Some(master)) => {
                let sealed = master.seal(FORM_KEY_NAME, &stored)?;
                store.replace_server_secret(FORM_KEY_NAME, &sealed, true).await?;
                stored
            }
            (false, None) => stored,
        };
        Ok(FormKey::new(&bytes))
    }

    /// The value for a form shown now for `request`, first seen at `seen_at`.
    pub fn issue(
        &self,
        purpose: Purpose,
        binding: Binding<'_>,
        request: &str,
        seen_at: i64,
    ) -> String {
        let tag = self.mac(purpose, binding, request, seen_at);
        format!("{seen_at}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// When the request of a submitted form was first seen, if the value is one this server
    /// issued for this purpose, browser, session and request, and has not expired.
    pub fn verify(
        &self,
        value: &str,
        purpose: Purpose,
        binding: Binding<'_>,
        request: &str,
        now: i64,
    ) -> Option<i64> {
        let (seen_at, tag) = value.split_once('.')?;
        // Only the canonical decimal form, so a value has exactly one spelling.
        let seen_at: i64 = seen_at.parse().ok().filter(|t: &i64| t.to_string() == seen_at)?;
        if seen_at > now + CLOCK_SKEW_SECS || now - seen_at > FORM_TTL_SECS {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let message = message(purpose, binding, request, seen_at);
        hmac::verify(&self.0, &message, &tag).ok().map(|()| seen_at)
    }

    fn mac(
        &self,
        purpose: Purpose,
        binding: Binding<'_>,
        request: &str,
        seen_at: i64,
    ) -> hmac::Tag {
        hmac::sign(&self.0, &message(purpose, binding, request, seen_at))
    }
}

/// Each field length-prefixed, so no two different inputs share a message.
fn message(purpose: Purpose, binding: Binding<'_>, request: &str, seen_at: i64) -> Vec<u8> {
    let request_hash = digest::digest(&digest::SHA256, request.as_bytes());
    let session = binding.session.unwrap_or("");
    let fields: [&[u8]; 6] = [
        purpose.tag(),
        binding.browser.as_bytes(),
        if binding.session.is_some() { b"s" } else { b"-" },
        session.as_bytes(),
        request_hash.as_ref(),
        &seen_at.to_be_bytes(),
    ];
    let mut message = Vec::with_capacity(160);
    for field in fields {
        message.extend_from_slice(&(field.len() as u32).to_be_bytes());
        message.extend_from_slice(field);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn browser(id: &str) -> Binding<'_> {
        Binding { browser: id, session: None }
    }

    #[test]
    fn a_value_passes_only_for_what_it_was_issued_for() {
        let key = FormKey::new(&[7; 32]);
        let signed_in = Binding { browser: "b1", session: Some("s1") };
        let value = key.issue(Purpose::Consent, signed_in, "client_id=a", NOW - 5);
        assert_eq!(
            key.verify(&value, Purpose::Consent, signed_in, "client_id=a", NOW),
            Some(NOW - 5)
        );
        let other_session = Binding { browser: "b1", session: Some("s2") };
        assert_eq!(key.verify(&value, Purpose::Consent, other_session, "client_id=a", NOW), None);
        assert_eq!(key.verify(&value, Purpose::Consent, browser("b1"), "client_id=a", NOW), None);
        let other_browser = Binding { browser: "b2", session: Some("s1") };
        assert_eq!(key.verify(&value, Purpose::Consent, other_browser, "client_id=a", NOW), None);
        assert_eq!(key.verify(&value, Purpose::Login, signed_in, "client_id=a", NOW), None);
        assert_eq!(key.verify(&value, Purpose::Consent, signed_in, "client_id=b", NOW), None);
        let other_key = FormKey::new(&[8; 32]);
        assert_eq!(other_key.verify(&value, Purpose::Consent, signed_in, "client_id=a", NOW), None);
    }

    #[test]
    fn the_time_a_request_was_seen_cannot_be_moved() {
        let key = FormKey::new(&[7; 32]);
        let value = key.issue(Purpose::Login, browser("b"), "r", NOW - 100);
        let (_, tag) = value.split_once('.').unwrap();
        for moved in [format!("{}.{tag}", NOW), format!("0{}.{tag}", NOW - 100)] {
            assert_eq!(key.verify(&moved, Purpose::Login, browser("b"), "r", NOW), None, "{moved}");
        }
    }

    #[test]
    fn values_expire_and_garbage_is_refused() {
        let key = FormKey::new(&[7; 32]);
        let old = key.issue(Purpose::Login, browser("b"), "r", NOW - FORM_TTL_SECS - 1);
        assert_eq!(key.verify(&old, Purpose::Login, browser("b"), "r", NOW), None);
        let future = key.issue(Purpose::Login, browser("b"), "r", NOW + 3600);
        assert_eq!(key.verify(&future, Purpose::Login, browser("b"), "r", NOW), None);
        for garbage in ["", ".", "b", "1.", "x.y", "-1.AAAA", "99999999999999999999.AA"] {
            assert_eq!(key.verify(garbage, Purpose::Login, browser("b"), "r", NOW), None);
        }
    }
}
