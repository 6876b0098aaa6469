//! Settings that are valid but weaken security, reported by `latchkey check`, one line each:
//! which setting, what it risks, and what to do instead.

use std::time::Duration;

use latchkey::model::{ApplicationType, Client, GrantType};
use latchkey::oauth::authorize::is_web_origin;

use super::Config;

const HOUR: Duration = Duration::from_secs(3600);

/// Above these, a lifetime is far beyond what RFC 9700 and OpenID Connect practice recommend.
const MAX_ACCESS: Duration = HOUR;
const MAX_ID_TOKEN: Duration = HOUR;
const MAX_CODE: Duration = Duration::from_secs(600);
const MAX_REFRESH: Duration = Duration::from_secs(90 * 86_400);
const MAX_SESSION: Duration = Duration::from_secs(30 * 86_400);
/// A grace window is for a retry after a lost response; longer lets a stolen token be used.
const MAX_GRACE: Duration = Duration::from_secs(10);
/// Shorter human-chosen secrets are within reach of a guessing attack.
const MIN_CLIENT_SECRET: usize = 32;
const MIN_PASSWORD: usize = 12;

/// A duration as the config writes it: `90d`, `3h`, `30m`, `45s`.
fn text(duration: Duration) -> String {
    let secs = duration.as_secs();
    match secs {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

impl Config {
    /// One line per weak setting: what it is, and what to do instead.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let mut warn = |text: String| warnings.push(text);
        if self.master_key.is_none() {
            warn("master_key: not set, so private signing keys are stored unencrypted in the database; set LATCHKEY_MASTER_KEY to 32 random bytes in base64 (`openssl rand -base64 32`)".into());
        }
        for key in &self.secrets_in_file {
            warn(format!(
                "{key}: a secret is written in the config file; pass it in the environment instead (LATCHKEY_{})",
                key.to_ascii_uppercase().replace('.', "__")
            ));
        }
        let https = self.issuer.starts_with("https://");
        if !https {
            warn(format!(
                "issuer: {:?} uses plain http, fine on this machine only; use https in any deployment",
                self.issuer
            ));
        }
        if https && self.http.hsts_max_age.is_none() {
            warn("http.hsts_max_age: off, so browsers may reach the login page over plain http first; keep the default (1 year)".into());
        }
        lifetime_warnings(&self.tokens, &mut warn);
        if self.passwords.min_length < 12 {
            warn(format!(
                "passwords.min_length: {} lets users choose passwords shorter than 12 characters",
                self.passwords.min_length
            ));
        }
        if !self.passwords.refuse_common {
            warn(
                "passwords.refuse_common: false lets users choose the most common passwords".into(),
            );
        }
        match self.metrics.listen {
            None if !self.listen.ip().is_loopback() => warn(format!(
                "listen: /metrics is served on {} with the endpoints; set [metrics] listen to a management address, or block it at the proxy or firewall: it is for your monitoring only",
                self.listen
            )),
            Some(address) if !address.ip().is_loopback() => warn(format!(
                "metrics.listen: /metrics is served on {address}; keep that address off the internet"
            )),
            _ => {}
        }
        let level = self.log.level.to_ascii_lowercase();
        if level.contains("debug") || level.contains("trace") {
            warn(format!(
                "log.level: {:?} logs request details meant for development; use info in production",
                self.log.level
            ));
        }
        for entry in &self.clients {
            client_warnings(
                &entry.client,
                entry.secret.as_ref().map(|s| s.expose()),
                https,
                &mut warn,
            );
        }
        for user in &self.users {
            let name = &user.username;
            let super::StaticPassword::Plain { password, in_file } = &user.password else {
                continue;
            };
            if *in_file {
                warn(format!(
                    "users.{name}: the password is written in the config file; prefer password_file, password_hash or `latchkey users add`, or keep the file readable by latchkey only"
                ));
            }
            let length = password.expose().chars().count();
            if length < MIN_PASSWORD {
                warn(format!(
                    "users.{name}: the password has {length} characters; use at least {MIN_PASSWORD}"
                ));
            }
        }
        warnings
    }
}

/// Lifetimes far beyond what RFC 9700 and OpenID Connect practice recommend.
fn lifetime_warnings(tokens: &super::TokenConfig, warn: &mut impl FnMut(String)) {
    let lifetimes = [
        (
            "tokens.access_token_ttl",
            tokens.access_token_ttl,
            MAX_ACCESS,
            "stolen access tokens stay usable that long (RFC 9700 §4.10); keep it at 15m and use refresh tokens",
        ),
        (
            "tokens.id_token_ttl",
            tokens.id_token_ttl,
            MAX_ID_TOKEN,
            "an id_token proves a recent sign-in; keep it short",
        ),
        (
            "tokens.authorization_code_ttl",
            tokens.authorization_code_ttl,
            MAX_CODE,
            "RFC 6749 §4.1.2 recommends at most 10m; latchkey's default is 60s",
        ),
        (
            "tokens.refresh_token_ttl",
            tokens.refresh_token_ttl,
            MAX_REFRESH,
            "a refresh token that lives that long outlives any reason to trust the device; keep it within 90d",
        ),
        (
            "tokens.session_ttl",
            tokens.session_ttl,
            MAX_SESSION,
            "a browser session that long keeps a shared or stolen device signed in; keep it within 30d",
        ),
    ];
    for (key, value, most, why) in lifetimes {
        if value > most {
            warn(format!("{key}: {} is over {}; {why}", text(value), text(most)));
        }
    }
    if let Some(grace) = tokens.refresh_grace_period.filter(|g| *g > MAX_GRACE) {
        warn(format!(
            "tokens.refresh_grace_period: {} lets a replayed refresh token work that long after rotation (RFC 9700 §4.14); a few seconds cover a lost response",
            text(grace)
        ));
    }
}

/// A client's settings that weaken security; `secret` is a human-chosen one from the config,
/// `https` whether the issuer is.
fn client_warnings(
    client: &Client,
    secret: Option<&str>,
    https: bool,
    warn: &mut impl FnMut(String),
) {
    let id = &client.client_id;
    if client.allows_grant(GrantType::Password) {
        warn(format!(
            "clients.{id}: the password grant is enabled; it exposes user passwords to the client (RFC 9700 §2.4), allow it only for a first-party app you control"
        ));
    }
    if let Some(secret) = secret {
        let length = secret.chars().count();
        warn(format!(
            "clients.{id}: client_secret is set in the config (human-chosen); prefer `latchkey clients add`, which generates a 256-bit secret"
        ));
        if length < MIN_CLIENT_SECRET {
            warn(format!(
                "clients.{id}: client_secret has {length} characters; use at least {MIN_CLIENT_SECRET} random ones"
            ));
        }
    }
    if !client.require_pkce {
        warn(format!(
            "clients.{id}: require_pkce = false switches PKCE off; it protects against code injection even for confidential clients (RFC 9700 §2.1.1)"
        ));
    }
    public_client_warnings(client, warn);
    if let Some(grace) = client.refresh_grace_period_secs.filter(|g| *g > MAX_GRACE.as_secs()) {
        warn(format!(
            "clients.{id}: refresh_grace_period {grace}s lets a replayed refresh token work that long after rotation; a few seconds cover a lost response"
        ));
    }
    if client.jwks_uri.as_deref().is_some_and(|uri| uri.starts_with("http://")) {
        warn(format!(
            "clients.{id}: jwks_uri uses http (allowed on loopback for development); use https for any real client"
        ));
    }
    if client.legacy_assertion_audience {
        warn(format!(
            "clients.{id}: legacy_assertion_audience = true accepts assertions made for an endpoint URL or a list of audiences (the audience-injection class); have the client use the issuer as aud"
        ));
    }
    if https {
        for uri in client.redirect_uris.iter().filter(|u| u.starts_with("http://")) {
            warn(format!(
                "clients.{id}: redirect URI {uri:?} uses http under an https issuer; codes travel in the clear to it unless it is on this very machine"
            ));
        }
    }
}

/// What lets someone else run an app under a public client's id.
fn public_client_warnings(client: &Client, warn: &mut impl FnMut(String)) {
    let id = &client.client_id;
    if client.is_public() && !client.require_consent {
        warn(format!(
            "clients.{id}: require_consent = false on a public client: anyone can run an app under its client_id and get tokens without the user being asked (RFC 8252 §8.6)"
        ));
    }
    let native_redirect = client.redirect_uris.iter().any(|uri| !is_web_origin(uri));
    if client.is_public()
        && client.remember_consent == Some(true)
        && (native_redirect || client.application_type == ApplicationType::Native)
    {
        warn(format!(
            "clients.{id}: remember_consent = true on a public client with a loopback or custom-scheme redirect URI: any local program can claim its client_id and be let through silently (RFC 8252 §8.6)"
        ));
    }
}
