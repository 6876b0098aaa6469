//! `latchkey demo`: a working server on this machine in seconds, with a demo user and clients.

use std::path::Path;

use crate::config::{Config, ConfigError};
use crate::run;

/// The demo user's password and the demo clients' secrets: public knowledge, for this machine.
const DEMO_PASSWORD: &str = "demo-password";
const DEMO_WEB_SECRET: &str = "demo-web-secret";
const DEMO_MACHINE_SECRET: &str = "demo-machine-secret";

/// The demo configuration, with its database under `data_dir`.
pub fn config(data_dir: &Path) -> Result<Config, ConfigError> {
    let database = data_dir.join("latchkey.db");
    let text = format!(
        r#"
issuer = "http://127.0.0.1:8080"
listen = "127.0.0.1:8080"

[database]
url = "sqlite://{database}"

[[resources]]
identifier = "http://127.0.0.1:8081"
scopes = ["read:photos", "write:photos"]

[[clients]]
client_id = "demo-web"
client_name = "Demo Web App"
client_secret = "{DEMO_WEB_SECRET}"
redirect_uris = ["http://127.0.0.1:8082/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:8082/"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "email", "offline_access", "read:photos", "write:photos"]

[[clients]]
client_id = "demo-native"
client_name = "Demo Native App"
application_type = "native"
redirect_uris = ["http://127.0.0.1/callback", "com.example.demo:/callback"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access", "read:photos"]

[[clients]]
client_id = "demo-machine"
client_name = "Demo Machine Client"
client_secret = "{DEMO_MACHINE_SECRET}"
grant_types = ["client_credentials"]
scopes = ["read:photos"]

[[users]]
username = "alice"
password = "{DEMO_PASSWORD}"
email = "alice@example.com"
name = "Alice Example"
"#,
        database = database.display()
    );
    let vars: Vec<(String, String)> = std::env::vars().collect();
    Config::from_parts(&text, &vars)
}

/// Runs the demo until Ctrl-C.
pub async fn run(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let config = config(data_dir)?;
    run::serve(config, |state| {
        let issuer = &state.config.issuer;
        println!(
            "\nlatchkey demo is running (Ctrl-C stops it; data in {dir})\n\n\
             \x20 authorization server  {issuer}\n\
             \x20 discovery             {issuer}/.well-known/openid-configuration\n\
             \x20 signing keys          {issuer}/.well-known/jwks.json\n\n\
             \x20 demo user             alice / {DEMO_PASSWORD}\n\
             \x20 web client            demo-web / {DEMO_WEB_SECRET}\n\
             \x20 native client         demo-native (public, PKCE)\n\
             \x20 machine client        demo-machine / {DEMO_MACHINE_SECRET}\n\n\
             Try:\n\
             \x20 curl -s {issuer}/.well-known/openid-configuration\n\
             \x20 curl -s {issuer}/.well-known/jwks.json\n",
            dir = data_dir.display()
        );
    })
    .await
}
