//! Settings that are valid but weaken security, reported by `latchkey check`.

use std::time::Duration;

use latchkey::model::GrantType;

use super::Config;

impl Config {
    /// One line per weak setting: what it is, and what to do instead.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut warn = |text: String| warnings.push(text);
        if self.master_key.is_none() {
            warn("master_key: not set, so private signing keys are stored unencrypted in the database; set LATCHKEY_MASTER_KEY to 32 random bytes in base64 (`openssl rand -base64 32`)".into());
        }
        if self.issuer.starts_with("http://") {
            warn(format!(
                "issuer: {:?} uses plain http, fine on this machine only; use https in any deployment",
                self.issuer
            ));
        }
        if self.tokens.access_token_ttl > Duration::from_secs(3600) {
            warn(format!(
                "tokens.access_token_ttl: {} is over 1 hour; stolen access tokens stay usable that long (RFC 9700 §4.10), keep it at 15m and use refresh tokens",
                humantime::format_duration(self.tokens.access_token_ttl)
            ));
        }
        if self.tokens.authorization_code_ttl > Duration::from_secs(600) {
            warn("tokens.authorization_code_ttl: over 10 minutes; RFC 6749 §4.1.2 recommends at most 10m, latchkey's default is 60s".into());
        }
        for client in &self.clients {
            let id = &client.client.client_id;
            if client.client.allows_grant(GrantType::Password) {
                warn(format!(
                    "clients.{id}: the password grant is enabled; it exposes user passwords to the client (RFC 9700 §2.4), allow it only for a first-party app you control"
                ));
            }
            if client.secret.is_some() {
                warn(format!(
                    "clients.{id}: client_secret is set in the config (human-chosen); prefer `latchkey clients add`, which generates a 256-bit secret"
                ));
            }
            if !client.client.require_pkce {
                warn(format!(
                    "clients.{id}: require_pkce = false switches PKCE off; it protects against code injection even for confidential clients (RFC 9700 §2.1.1)"
                ));
            }
        }
        warnings
    }
}
