//! Hostile and malformed input at every endpoint, as a corpus: each case states the exact
//! status and RFC error code it must get. No case may get a 5xx, hang, or change what is
//! stored (every row of every table is compared before and after).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use latchkey::oauth::pkce;
use serde_json::Value;

use crate::code_flow::VERIFIER;
use crate::{TestDb, TestServer};

const CONFIG: &str = concat!(
    r#"
[[resources]]
identifier = "https://photos.example.com"
scopes = ["read:photos"]

[[clients]]
client_id = "web"
client_secret = "web-secret"
redirect_uris = ["https://app.example.com/cb"]
post_logout_redirect_uris = ["https://app.example.com/"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "profile", "offline_access", "read:photos"]

[[clients]]
client_id = "spa"
redirect_uris = ["https://spa.example.com/cb", "http://127.0.0.1:8400/cb"]
grant_types = ["authorization_code", "refresh_token"]
scopes = ["openid", "read:photos"]

[[clients]]
client_id = "cli"
application_type = "native"
redirect_uris = ["http://127.0.0.1/cb"]
grant_types = ["authorization_code"]
scopes = ["openid"]
"#,
    latchkey_testkit::client_machine!(),
    r#"
[[clients]]
client_id = "first-party"
client_secret = "first-party-secret"
grant_types = ["password"]
scopes = ["read:photos"]
"#,
    latchkey_testkit::user_alice!()
);

const SPA: &str = "https://spa.example.com/cb";
const FORM: &str = "application/x-www-form-urlencoded";

/// What a case must get.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A JSON error with this status and `error` code.
    Json(u16, &'static str),
    /// A redirect to the client's registered URI carrying `error` (RFC 6749 §4.1.2.1).
    Redirect(&'static str),
    /// An HTML error page with this status and no redirect: the request cannot be trusted to
    /// name where to send the user (unknown client, unregistered redirect URI).
    Page(u16),
    /// A bearer-token error (RFC 6750 §3): status, and the `error` in the challenge (`None`:
    /// a bare challenge).
    Bearer(u16, Option<&'static str>),
    /// An introspection answer of exactly `{"active":false}`.
    Inactive,
    /// Just this status (for RFC 7009's 200 to unknown tokens, 405, 413, ...).
    Status(u16),
}

struct Case {
    name: String,
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: Expect,
}

fn get(name: &str, path: &str, expect: Expect) -> Case {
    Case {
        name: name.into(),
        method: reqwest::Method::GET,
        path: path.into(),
        headers: vec![],
        body: vec![],
        expect,
    }
}

fn post(name: &str, path: &str, content_type: &str, body: &[u8], expect: Expect) -> Case {
    Case {
        name: name.into(),
        method: reqwest::Method::POST,
        path: path.into(),
        headers: vec![("content-type", content_type.into())],
        body: body.to_vec(),
        expect,
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: &str) -> Case {
        self.headers.push((name, value.into()));
        self
    }

    fn basic(self, id: &str, secret: &str) -> Case {
        let value = format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")));
        self.header("authorization", &value)
    }
}

fn basic_value(raw: &str) -> String {
    format!("Basic {}", STANDARD.encode(raw))
}

/// A valid authorization request for the SPA with `changes` applied (an empty value removes
/// the parameter); `extra` pairs are appended as they are, duplicates included.
fn authorize(changes: &[(&str, &str)], extra: &[(&str, &str)]) -> String {
    let challenge = pkce::s256(VERIFIER);
    let mut pairs: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", "spa"),
        ("redirect_uri", SPA),
        ("scope", "openid read:photos"),
        ("state", "st-1"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        pairs.retain(|(n, _)| n != name);
        if !value.is_empty() {
            pairs.push((name, value));
        }
    }
    pairs.extend_from_slice(extra);
    format!("/authorize?{}", serde_urlencoded::to_string(&pairs).unwrap())
}

/// A JWT with the given header and payload and a made-up signature.
fn forged_jwt(header: &Value, payload: &Value, signature: &str) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    format!("{}.{}.{signature}", part(header), part(payload))
}

/// `token` with one character of its payload changed.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["scope"] = Value::String("read:photos admin".into());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

fn corpus(valid_jwt: &str) -> Vec<Case> {
    use Expect::*;
    let mut cases = Vec::new();
    let claims = serde_json::json!({"iss": "x", "sub": "machine", "aud": "https://photos.example.com",
        "exp": 4_000_000_000u64, "iat": 1, "scope": "read:photos", "client_id": "machine"});
    let jwts = [
        ("tampered payload", tampered(valid_jwt)),
        ("alg none", forged_jwt(&serde_json::json!({"alg": "none", "typ": "at+jwt"}), &claims, "")),
        (
            "HS256 with a kid path",
            forged_jwt(
                &serde_json::json!({"alg": "HS256", "kid": "../../../etc/passwd"}),
                &claims,
                "c2lnbmF0dXJl",
            ),
        ),
        ("two segments", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0".to_owned()),
        ("not base64", "!!!.@@@.###".to_owned()),
        ("empty segments", "..".to_owned()),
        ("huge header", format!("{}.e30.sig", "A".repeat(20_000))),
    ];

    // --- /authorize: requests that cannot be trusted get a page, never a redirect.
    for (what, uri) in [
        ("trailing slash", "https://spa.example.com/cb/"),
        ("extra path", "https://spa.example.com/cb/more"),
        ("different host case", "https://SPA.example.com/cb"),
        ("different path case", "https://spa.example.com/CB"),
        ("userinfo", "https://spa.example.com@evil.example/cb"),
        ("userinfo before host", "https://evil.example@spa.example.com/cb"),
        ("port change", "https://spa.example.com:8443/cb"),
        ("fragment", "https://spa.example.com/cb#frag"),
        ("dot segments", "https://spa.example.com/x/../cb"),
        ("encoded dot segments", "https://spa.example.com/%2e%2e/cb"),
        ("percent-encoded path", "https://spa.example.com/%63b"),
        ("double-encoded", "https%253A%252F%252Fspa.example.com%252Fcb"),
        ("http instead of https", "http://spa.example.com/cb"),
        ("added query", "https://spa.example.com/cb?next=https://evil.example"),
        ("look-alike host", "https://ѕpa.example.com/cb"),
        ("CRLF header injection", "https://spa.example.com/cb\r\nSet-Cookie: x=y"),
        ("javascript scheme", "javascript:alert(1)//spa.example.com/cb"),
        ("loopback port change", "http://127.0.0.1:9999/cb"),
        ("empty", ""),
    ] {
        let path = if uri.is_empty() {
            authorize(&[("redirect_uri", "")], &[("redirect_uri", "")])
        } else {
            authorize(&[("redirect_uri", uri)], &[])
        };
        cases.push(get(&format!("authorize: redirect_uri {what}"), &path, Page(400)));
    }
    // A native client's loopback URI matches on any port, but only a real one (1-65535).
    for port in ["0", "65536", "99999", "00000"] {
        let uri = format!("http://127.0.0.1:{port}/cb");
        let path =
            authorize(&[("client_id", "cli"), ("redirect_uri", &uri), ("scope", "openid")], &[]);
        cases.push(get(&format!("authorize: loopback port {port}"), &path, Page(400)));
    }
    cases.push(get("authorize: no client_id", &authorize(&[("client_id", "")], &[]), Page(400)));
    cases.push(get(
        "authorize: unknown client_id",
        &authorize(&[("client_id", "nobody")], &[]),
        Page(400),
    ));
    cases.push(get(
        "authorize: look-alike client_id",
        &authorize(&[("client_id", "ѕpa")], &[]),
        Page(400),
    ));
    cases.push(get(
        "authorize: client_id with NUL",
        &authorize(&[("client_id", "spa\0")], &[]),
        Page(400),
    ));
    cases.push(get(
        "authorize: duplicate client_id",
        &authorize(&[], &[("client_id", "web")]),
        Page(400),
    ));
    cases.push(get(
        "authorize: duplicate redirect_uri",
        &authorize(&[], &[("redirect_uri", SPA)]),
        Page(400),
    ));
    cases.push(get(
        "authorize: invalid UTF-8",
        "/authorize?client_id=%FF%FE&response_type=code",
        Page(400),
    ));
    cases.push(get("authorize: broken escape", "/authorize?client_id=spa%G1", Page(400)));
    cases.push(get("authorize: no parameters", "/authorize", Page(400)));
    // With the client and redirect URI established, errors go back to the client.
    for (name, changes, extra, code) in [
        ("implicit flow", vec![("response_type", "token")], vec![], "unsupported_response_type"),
        (
            "hybrid flow",
            vec![("response_type", "code id_token")],
            vec![],
            "unsupported_response_type",
        ),
        (
            "unknown response_type",
            vec![("response_type", "magic")],
            vec![],
            "unsupported_response_type",
        ),
        ("no response_type", vec![("response_type", "")], vec![], "invalid_request"),
        ("duplicate response_type", vec![], vec![("response_type", "code")], "invalid_request"),
        ("duplicate state", vec![], vec![("state", "other")], "invalid_request"),
        ("duplicate scope", vec![], vec![("scope", "openid")], "invalid_request"),
        ("unknown scope", vec![("scope", "openid admin")], vec![], "invalid_scope"),
        ("very long scope", vec![("scope", &*"a".repeat(4000).leak())], vec![], "invalid_scope"),
        (
            "no code_challenge",
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            vec![],
            "invalid_request",
        ),
        ("plain PKCE", vec![("code_challenge_method", "plain")], vec![], "invalid_request"),
        ("short code_challenge", vec![("code_challenge", "abc")], vec![], "invalid_request"),
        (
            "code_challenge not base64url",
            vec![("code_challenge", &*"+".repeat(43).leak())],
            vec![],
            "invalid_request",
        ),
        (
            "request object",
            vec![],
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            "request_uri",
            vec![],
            vec![("request_uri", "https://evil.example/r")],
            "request_uri_not_supported",
        ),
        ("unknown prompt", vec![], vec![("prompt", "sideways")], "invalid_request"),
        ("prompt none without session", vec![], vec![("prompt", "none")], "login_required"),
        ("prompt none with login", vec![], vec![("prompt", "none login")], "invalid_request"),
        ("response_mode fragment", vec![], vec![("response_mode", "fragment")], "invalid_request"),
        ("NUL in state", vec![("state", "a\0b")], vec![], "invalid_request"),
        ("non-ASCII state", vec![("state", "état")], vec![], "invalid_request"),
        ("CRLF in state", vec![("state", "a\r\nSet-Cookie: x=y")], vec![], "invalid_request"),
        ("control character in nonce", vec![], vec![("nonce", "n\u{1b}[31m")], "invalid_request"),
    ] {
        cases.push(get(
            &format!("authorize: {name}"),
            &authorize(&changes, &extra),
            Redirect(code),
        ));
    }
    cases.push(post(
        "authorize: POST with JSON",
        "/authorize",
        "application/json",
        br#"{"client_id":"spa"}"#,
        Page(400),
    ));
    cases.push(post(
        "authorize: POST invalid UTF-8",
        "/authorize",
        FORM,
        b"client_id=\xff\xfe",
        Page(400),
    ));

    // --- /oauth/token
    let cc = b"grant_type=client_credentials";
    let token = |name: &str, body: &[u8], expect| post(name, "/oauth/token", FORM, body, expect);
    cases.push(token("token: no client authentication", cc, Json(401, "invalid_client")));
    cases.push(
        token("token: wrong secret", cc, Json(401, "invalid_client")).basic("machine", "nope"),
    );
    cases
        .push(token("token: unknown client", cc, Json(401, "invalid_client")).basic("nobody", "x"));
    cases.push(
        token("token: look-alike client", cc, Json(401, "invalid_client"))
            .basic("mаchine", "machine-secret"),
    );
    for (what, value) in [
        ("not base64", "Basic !!!!".to_owned()),
        ("no colon", basic_value("machine")),
        ("empty", "Basic ".to_owned()),
        ("scheme only", "Basic".to_owned()),
        ("NUL in id", basic_value("mach\0ine:machine-secret")),
        ("bad percent-encoding", basic_value("machine%ZZ:machine-secret")),
        ("invalid UTF-8", format!("Basic {}", STANDARD.encode(b"\xff\xfe:x"))),
        ("Bearer instead", "Bearer abc".to_owned()),
        ("huge", format!("Basic {}", "A".repeat(6000))),
    ] {
        cases.push(
            token(&format!("token: malformed Basic ({what})"), cc, Json(401, "invalid_client"))
                .header("authorization", &value),
        );
    }
    // NUL reaches the database only as a lookup key; PostgreSQL text cannot hold it.
    cases.push(token(
        "token: public client_id with NUL",
        b"grant_type=authorization_code&code=x&client_id=sp%00a",
        Json(401, "invalid_client"),
    ));
    let password = |name: &str, body: &[u8]| {
        token(name, body, Json(400, "invalid_grant")).basic("first-party", "first-party-secret")
    };
    cases.push(password(
        "token: password grant, NUL in username",
        b"grant_type=password&username=ali%00ce&password=alice-password",
    ));
    cases.push(password(
        "token: password grant, look-alike username",
        "grant_type=password&username=\u{0430}lice&password=alice-password".as_bytes(),
    ));
    cases.push(
        token(
            "token: Basic and client_secret both",
            b"grant_type=client_credentials&client_id=machine&client_secret=machine-secret",
            Json(400, "invalid_request"),
        )
        .basic("machine", "machine-secret"),
    );
    let ok = |case: Case| case.basic("machine", "machine-secret");
    // Requests from an authenticated client that are wrong in themselves.
    for (name, body, expect) in [
        ("token: no grant_type", &b"scope=read:photos"[..], Json(400, "invalid_request")),
        ("token: empty body", &b""[..], Json(400, "invalid_request")),
        (
            "token: unknown grant_type",
            &b"grant_type=magic"[..],
            Json(400, "unsupported_grant_type"),
        ),
        (
            "token: implicit grant_type",
            &b"grant_type=implicit"[..],
            Json(400, "unsupported_grant_type"),
        ),
        (
            "token: NUL in grant_type",
            &b"grant_type=client_credentials%00"[..],
            Json(400, "unsupported_grant_type"),
        ),
        (
            "token: duplicate grant_type",
            &b"grant_type=client_credentials&grant_type=client_credentials"[..],
            Json(400, "invalid_request"),
        ),
        (
            "token: duplicate scope",
            &b"grant_type=client_credentials&scope=read:photos&scope=read:photos"[..],
            Json(400, "invalid_request"),
        ),
        (
            "token: unknown scope",
            &b"grant_type=client_credentials&scope=admin"[..],
            Json(400, "invalid_scope"),
        ),
        (
            "token: grant not registered",
            &b"grant_type=authorization_code&code=abc&redirect_uri=https://x"[..],
            Json(400, "unauthorized_client"),
        ),
        (
            "token: invalid UTF-8 (raw)",
            &b"grant_type=client_credentials&scope=\xff"[..],
            Json(400, "invalid_request"),
        ),
        (
            "token: invalid UTF-8 (escaped)",
            &b"grant_type=client_credentials&scope=%ff"[..],
            Json(400, "invalid_request"),
        ),
    ] {
        cases.push(ok(token(name, body, expect)));
    }
    // More parameters than any request needs: refused whole, in linear time.
    let many: String = (0..65).map(|n| format!("&p{n}=v")).collect();
    let many_token = format!("grant_type=client_credentials{many}");
    cases.push(ok(token(
        "token: 66 parameters",
        many_token.as_bytes(),
        Json(400, "invalid_request"),
    )));
    // The largest /authorize the body limit admits, made of tiny parameters (the old repeat
    // check was quadratic in their number): a page at once, never a redirect.
    let largest = "a=&".repeat(64 * 1024 / 3 - 1);
    cases.push(post(
        "authorize: 64 KiB of parameters",
        "/authorize",
        FORM,
        largest.as_bytes(),
        Page(400),
    ));
    let long_scope = format!("grant_type=client_credentials&scope={}", "x".repeat(20_000));
    cases.push(ok(token("token: 20 kB scope", long_scope.as_bytes(), Json(400, "invalid_scope"))));
    // Bodies over 64 kB are cut off by the body limit before anything reads them.
    let huge_scope = format!("grant_type=client_credentials&scope={}", "x".repeat(100_000));
    cases.push(ok(token("token: 100 kB scope", huge_scope.as_bytes(), Status(413))));
    cases.push(ok(post(
        "token: JSON body",
        "/oauth/token",
        "application/json",
        br#"{"grant_type":"client_credentials"}"#,
        Json(400, "invalid_request"),
    )));
    cases.push(ok(post(
        "token: text/plain",
        "/oauth/token",
        "text/plain",
        cc,
        Json(400, "invalid_request"),
    )));
    cases.push(ok(post("token: multipart", "/oauth/token", "multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n--x--\r\n", Json(400, "invalid_request"))));
    let mut in_query =
        ok(token("token: parameters in the query", cc, Json(400, "invalid_request")));
    in_query.path = "/oauth/token?grant_type=client_credentials".into();
    cases.push(in_query);
    cases.push(ok(get("token: GET", "/oauth/token?grant_type=client_credentials", Status(405))));
    let web = |case: Case| case.basic("web", "web-secret");
    cases.push(web(token(
        "token: made-up code",
        b"grant_type=authorization_code&code=made-up&redirect_uri=https://app.example.com/cb&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        Json(400, "invalid_grant"),
    )));
    let long_code = format!(
        "grant_type=authorization_code&code={}&redirect_uri=https://app.example.com/cb&code_verifier={VERIFIER}",
        "c".repeat(30_000)
    );
    cases.push(web(token("token: 30 kB code", long_code.as_bytes(), Json(400, "invalid_grant"))));
    cases.push(web(token(
        "token: no code",
        b"grant_type=authorization_code&redirect_uri=https://app.example.com/cb",
        Json(400, "invalid_request"),
    )));
    cases.push(web(token(
        "token: made-up refresh token",
        b"grant_type=refresh_token&refresh_token=made-up",
        Json(400, "invalid_grant"),
    )));
    cases.push(web(token(
        "token: no refresh token",
        b"grant_type=refresh_token",
        Json(400, "invalid_request"),
    )));
    cases.push(token(
        "token: public client, made-up code",
        format!("grant_type=authorization_code&client_id=spa&code=x&redirect_uri={SPA}&code_verifier={VERIFIER}").as_bytes(),
        Json(400, "invalid_grant"),
    ));
    for (what, jwt) in &jwts {
        let body = format!(
            "grant_type=client_credentials&client_id=machine&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}"
        );
        cases.push(token(
            &format!("token: client_assertion {what}"),
            body.as_bytes(),
            Json(401, "invalid_client"),
        ));
    }
    // An unknown assertion type is an unsupported authentication method (RFC 6749 §5.2).
    cases.push(token(
        "token: unknown client_assertion_type",
        b"grant_type=client_credentials&client_id=machine&client_assertion_type=urn:x&client_assertion=a.b.c",
        Json(401, "invalid_client"),
    ));

    // --- /oauth/introspect
    let introspect = |name: &str, body: &[u8], expect| {
        post(name, "/oauth/introspect", FORM, body, expect).basic("machine", "machine-secret")
    };
    cases.push(post(
        "introspect: no client authentication",
        "/oauth/introspect",
        FORM,
        b"token=x",
        Json(401, "invalid_client"),
    ));
    cases.push(introspect("introspect: no token", b"", Json(400, "invalid_request")));
    cases.push(introspect(
        "introspect: duplicate token",
        b"token=a&token=b",
        Json(400, "invalid_request"),
    ));
    cases.push(introspect("introspect: garbage token", b"token=garbage", Inactive));
    cases.push(introspect("introspect: NUL token", b"token=%00", Inactive));
    cases.push(introspect(
        "introspect: unknown hint",
        b"token=garbage&token_type_hint=magic",
        Inactive,
    ));
    for (what, jwt) in &jwts {
        cases.push(introspect(
            &format!("introspect: JWT {what}"),
            format!("token={jwt}").as_bytes(),
            Inactive,
        ));
    }
    cases.push(
        post(
            "introspect: JSON body",
            "/oauth/introspect",
            "application/json",
            br#"{"token":"x"}"#,
            Json(400, "invalid_request"),
        )
        .basic("machine", "machine-secret"),
    );
    cases.push(get("introspect: GET", "/oauth/introspect?token=x", Status(405)));

    // --- /oauth/revoke (RFC 7009 §2.2: unknown tokens get 200)
    let revoke = |name: &str, body: &[u8], expect| {
        post(name, "/oauth/revoke", FORM, body, expect).basic("machine", "machine-secret")
    };
    cases.push(post(
        "revoke: no client authentication",
        "/oauth/revoke",
        FORM,
        b"token=x",
        Json(401, "invalid_client"),
    ));
    cases.push(revoke("revoke: no token", b"", Json(400, "invalid_request")));
    cases.push(revoke("revoke: duplicate token", b"token=a&token=b", Json(400, "invalid_request")));
    cases.push(revoke("revoke: garbage token", b"token=garbage", Status(200)));
    cases.push(revoke("revoke: unknown hint", b"token=garbage&token_type_hint=magic", Status(200)));
    for (what, jwt) in &jwts {
        cases.push(revoke(
            &format!("revoke: JWT {what}"),
            format!("token={jwt}").as_bytes(),
            Status(200),
        ));
    }

    // --- /userinfo (RFC 6750)
    cases.push(get("userinfo: no token", "/userinfo", Bearer(401, None)));
    for (what, jwt) in &jwts {
        cases.push(
            get(&format!("userinfo: JWT {what}"), "/userinfo", Bearer(401, Some("invalid_token")))
                .header("authorization", &format!("Bearer {jwt}")),
        );
    }
    cases.push(
        // A valid token without the openid scope (RFC 6750 §3.1).
        get(
            "userinfo: client-credentials token",
            "/userinfo",
            Bearer(403, Some("insufficient_scope")),
        )
        .header("authorization", &format!("Bearer {valid_jwt}")),
    );
    cases.push(
        get("userinfo: Bearer with spaces", "/userinfo", Bearer(401, Some("invalid_token")))
            .header("authorization", "Bearer a b c"),
    );
    cases.push(
        get("userinfo: Basic instead of Bearer", "/userinfo", Bearer(401, None))
            .header("authorization", "Basic YTpi"),
    );
    cases.push(get(
        "userinfo: token in the query",
        &format!("/userinfo?access_token={valid_jwt}"),
        Bearer(400, Some("invalid_request")),
    ));

    // --- /login and /consent: only with a genuine request and CSRF token
    cases.push(post("login: no fields", "/login", FORM, b"", Page(400)));
    cases.push(post(
        "login: forged request",
        "/login",
        FORM,
        b"username=alice&password=alice-password&csrf_token=x&request=response_type%3Dcode",
        Page(400),
    ));
    cases.push(post(
        "login: JSON",
        "/login",
        "application/json",
        br#"{"username":"alice"}"#,
        Page(400),
    ));
    cases.push(post(
        "login: invalid UTF-8",
        "/login",
        FORM,
        b"username=\xff&password=x",
        Page(400),
    ));
    cases.push(post(
        "consent: no session",
        "/consent",
        FORM,
        b"decision=allow&csrf_token=x&request=y",
        Page(400),
    ));
    cases.push(get("login: GET without a request", "/login", Page(400)));

    // --- /logout (OIDC RP-Initiated Logout)
    cases.push(get(
        "logout: unregistered post_logout_redirect_uri",
        "/logout?client_id=web&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
        Page(400),
    ));
    for (what, jwt) in &jwts {
        cases.push(get(
            &format!("logout: id_token_hint {what}"),
            &format!(
                "/logout?id_token_hint={jwt}&post_logout_redirect_uri=https%3A%2F%2Fapp.example.com%2F"
            ),
            Page(400),
        ));
    }

    // --- everything else
    cases.push(get("unknown path", "/admin", Status(404)));
    cases.push(get("path traversal", "/.well-known/../../etc/passwd", Status(404)));
    cases.push(post("jwks: POST", "/.well-known/jwks.json", FORM, b"", Status(405)));
    cases
}

/// Tables that change without any request: the attempt schedule records failed guesses by
/// design (a wrong password is hostile input too), and each node records its cache syncs.
const CHANGING: [&str; 2] = ["login_attempts", "nodes"];

/// Every row of every table, as text, sorted per table: what "no change of stored state" is
/// checked against.
async fn stored_state(db: &TestDb) -> BTreeMap<String, Vec<String>> {
    let mut state = BTreeMap::new();
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        let c = rusqlite::Connection::open(path).unwrap();
        let tables: Vec<String> = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables.into_iter().filter(|table| !CHANGING.contains(&table.as_str())) {
            let mut statement = c.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
            let columns = statement.column_count();
            let mut rows: Vec<String> = statement
                .query_map([], |row| {
                    let values: Vec<rusqlite::types::Value> =
                        (0..columns).map(|i| row.get(i)).collect::<rusqlite::Result<_>>()?;
                    Ok(format!("{values:?}"))
                })
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            rows.sort();
            state.insert(table, rows);
        }
    } else {
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&db.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        for table in tables.into_iter().filter(|table| !CHANGING.contains(&table.as_str())) {
            let sql = format!("SELECT t::text FROM \"{table}\" t");
            let mut rows: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&pool).await.unwrap();
            rows.sort();
            state.insert(table, rows);
        }
        pool.close().await;
    }
    state
}

/// Why `response` does not meet `expect`, if it does not.
async fn mismatch(expect: Expect, response: reqwest::Response) -> Option<String> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let location = headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let challenge =
        headers.get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    let short: String = body.chars().take(300).collect();
    let got = format!("got {status}, location {location:?}, challenge {challenge:?}: {short}");
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let fine = match expect {
        Expect::Json(want, code) => {
            status == want
                && json["error"] == code
                && json["error_description"].as_str().is_some_and(|d| !d.is_empty())
                && (status != 401 || challenge.is_some())
        }
        Expect::Redirect(code) => {
            // The client and its redirect URI are genuine here: back to it, with the error.
            matches!(status, 302 | 303)
                && location.as_deref().is_some_and(|l| {
                    l.starts_with(&format!("{SPA}?")) && l.contains(&format!("error={code}"))
                })
        }
        Expect::Page(want) => status == want && location.is_none(),
        Expect::Bearer(want, code) => {
            status == want
                && challenge.as_deref().is_some_and(|c| {
                    c.starts_with("Bearer")
                        && match code {
                            Some(code) => c.contains(&format!("error=\"{code}\"")),
                            None => !c.contains("error="),
                        }
                })
        }
        Expect::Inactive => status == 200 && body == r#"{"active":false}"#,
        Expect::Status(want) => status == want,
    };
    (!fine).then_some(got)
}

async fn hostile_and_malformed_requests_get_exact_errors_and_change_nothing(db: TestDb) {
    let server = TestServer::start_ready(&db, CONFIG).await;
    // A fresh connection per case: after refusing a body over the limit unread (413) the
    // server closes the connection, and a pooled client could race that close with its next
    // request and see no answer.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let valid: Value = http
        .post(server.url("/oauth/token"))
        .basic_auth("machine", Some("machine-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let valid_jwt = valid["access_token"].as_str().unwrap().to_owned();
    let before = stored_state(&db).await;

    let cases = corpus(&valid_jwt);
    let mut failures = Vec::new();
    for case in &cases {
        let mut request = http.request(case.method.clone(), server.url(&case.path));
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        if case.method == reqwest::Method::POST {
            request = request.body(case.body.clone());
        }
        match request.send().await {
            Err(error) => failures.push(format!("{}: no answer: {error}", case.name)),
            Ok(response) => {
                if let Some(got) = mismatch(case.expect, response).await {
                    failures.push(format!("{}: expected {:?}, {got}", case.name, case.expect));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    let after = stored_state(&db).await;
    let changed: Vec<&String> =
        before.keys().chain(after.keys()).filter(|t| before.get(*t) != after.get(*t)).collect();
    assert!(changed.is_empty(), "hostile requests changed the stored rows of {changed:?}");
    // The server still serves.
    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    eprintln!("{} hostile cases answered as specified", cases.len());
}

crate::on_both_engines!(hostile_and_malformed_requests_get_exact_errors_and_change_nothing);
