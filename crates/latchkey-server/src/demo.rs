//! `latchkey demo`: a working server on this machine in seconds, with a demo user and clients.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use latchkey_resource::{Validator, ValidatorConfig, Verifier};

use crate::config::{Config, ConfigError};
use crate::demo_client::DemoClient;
use crate::run;

/// The demo user's password and the demo clients' secrets: public knowledge, for this machine.
const DEMO_PASSWORD: &str = "demo-password";
const DEMO_WEB_SECRET: &str = "demo-web-secret";
const DEMO_MACHINE_SECRET: &str = "demo-machine-secret";

/// The demo configuration, with its database under `data_dir`: latchkey on `port_base`, the
/// PhotoAPI on the next port, the web client on the one after.
pub fn config(data_dir: &Path, port_base: u16) -> Result<Config, ConfigError> {
    let database = data_dir.join("latchkey.db");
    let (issuer, api, client) = ports(port_base).ok_or_else(|| {
        ConfigError(format!("--port-base {port_base}: three ports from it do not fit below 65536"))
    })?;
    let text = format!(
        r#"
issuer = "http://127.0.0.1:{issuer}"
listen = "127.0.0.1:{issuer}"

[database]
url = "sqlite://{database}"

[[resources]]
identifier = "http://127.0.0.1:{api}"
scopes = ["read:photos", "write:photos"]

[[clients]]
client_id = "demo-web"
client_name = "Demo Web App"
client_secret = "{DEMO_WEB_SECRET}"
redirect_uris = ["http://127.0.0.1:{client}/callback"]
post_logout_redirect_uris = ["http://127.0.0.1:{client}/"]
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

/// The default first port: latchkey on 8080, the PhotoAPI on 8081, the web client on 8082.
pub const DEFAULT_PORT_BASE: u16 = 8080;

/// latchkey's, the PhotoAPI's and the web client's ports.
fn ports(base: u16) -> Option<(u16, u16, u16)> {
    Some((base, base.checked_add(1)?, base.checked_add(2)?))
}

/// Runs the demo until Ctrl-C: latchkey on `port_base`, the PhotoAPI on the next port, the
/// demo web client on the one after.
pub async fn run(data_dir: &Path, port_base: u16) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    let config = config(data_dir, port_base)?;
    let issuer = config.issuer.clone();
    let (_, api_port, client_port) = ports(port_base).context("--port-base too high")?;
    let bind = |port: u16| async move {
        let address = format!("127.0.0.1:{port}");
        tokio::net::TcpListener::bind(&address).await.with_context(|| {
            format!("cannot listen on {address}: is another demo or program using it? (--port-base moves all three ports)")
        })
    };
    let (api_listener, client_listener) = (bind(api_port).await?, bind(client_port).await?);
    let api_base = format!("http://127.0.0.1:{api_port}");
    let verifier = Verifier::Jwt(Validator::new(ValidatorConfig::new(&issuer, &api_base)));
    let api = photo_api::app(Arc::new(verifier), HashMap::new());
    tokio::spawn(async move { axum::serve(api_listener, api).await });
    let client_base = format!("http://127.0.0.1:{client_port}");
    let client = DemoClient::new(&issuer, &api_base, &client_base, "demo-web", DEMO_WEB_SECRET);
    tokio::spawn(async move { axum::serve(client_listener, client.app()).await });
    run::serve(config, |_| {
        println!(
            "\nlatchkey demo is running (Ctrl-C stops it; data in {dir})\n\n\
             \x20 demo web app          {client_base}   <- open this and sign in\n\
             \x20 authorization server  {issuer}   (discovery: {issuer}/.well-known/openid-configuration)\n\
             \x20 PhotoAPI              {api_base}/photos   (needs read:photos / write:photos)\n\n\
             \x20 demo user             alice / {DEMO_PASSWORD}\n\
             \x20 web client            demo-web / {DEMO_WEB_SECRET}\n\
             \x20 native client         demo-native (public, PKCE)\n\
             \x20 machine client        demo-machine / {DEMO_MACHINE_SECRET}   (read:photos only)\n\n\
             Try:\n\
             \x20 TOKEN=$(curl -s -u demo-machine:{DEMO_MACHINE_SECRET} -d grant_type=client_credentials {issuer}/oauth/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n\
             \x20 curl -s -H \"Authorization: Bearer $TOKEN\" {api_base}/photos\n\
             \x20 curl -s -i -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' -d '{{\"title\":\"x\"}}' {api_base}/photos   # 403: no write:photos\n",
            dir = data_dir.display()
        );
    })
    .await
}
