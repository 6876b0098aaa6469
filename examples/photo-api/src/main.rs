//! `photo-api ISSUER AUDIENCE [LISTEN]`: the PhotoAPI validating JWT access tokens of ISSUER
//! for AUDIENCE, on LISTEN (default 127.0.0.1:8081).

use std::collections::HashMap;
use std::sync::Arc;

use latchkey_resource::{Validator, ValidatorConfig, Verifier};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(issuer), Some(audience)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: photo-api ISSUER AUDIENCE [LISTEN]");
        std::process::exit(2);
    };
    let listen = args.get(3).map_or("127.0.0.1:8081", String::as_str);
    let verifier = Verifier::Jwt(Validator::new(ValidatorConfig::new(issuer, audience)));
    let app = photo_api::app(Arc::new(verifier), HashMap::new());
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await
}
