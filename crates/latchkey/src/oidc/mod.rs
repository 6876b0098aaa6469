//! OpenID Connect pieces that are not plain OAuth.

pub mod discovery;
pub mod id_token;
pub mod logout;
pub mod userinfo;
