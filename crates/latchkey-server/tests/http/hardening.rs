//! Smaller rules from the hardening review, each through HTTP against a real server.

use crate::{TestServer, client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_hsts_under_an_https_issuer() {
    let db = crate::TestDb::sqlite();
    let server = TestServer::start_as(&db, Some("https://auth.example.com"), "").await;
    let http = client();
    for (method, path) in [
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/.well-known/openid-configuration"),
        (reqwest::Method::POST, "/oauth/token"),
        (reqwest::Method::GET, "/no/such/page"),
        (reqwest::Method::GET, "/authorize"),
    ] {
        let response = http.request(method.clone(), server.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap()),
            Some("max-age=31536000; includeSubDomains"),
            "{method} {path} ({})",
            response.status()
        );
    }
    let plain = TestServer::start(&crate::TestDb::sqlite(), "").await;
    let response = http.get(plain.url("/healthz")).send().await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none(), "http issuer");
    let off = TestServer::start_as(
        &crate::TestDb::sqlite(),
        Some("https://auth.example.com"),
        "[http]\nhsts_max_age = \"off\"\n",
    )
    .await;
    let response = http.get(off.url("/healthz")).send().await.unwrap();
    assert!(response.headers().get("strict-transport-security").is_none(), "switched off");
    let short = TestServer::start_as(
        &crate::TestDb::sqlite(),
        Some("https://auth.example.com"),
        "[http]\nhsts_max_age = \"1d\"\nhsts_include_subdomains = false\n",
    )
    .await;
    let response = http.get(short.url("/healthz")).send().await.unwrap();
    assert_eq!(response.headers()["strict-transport-security"], "max-age=86400");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authorization_headers_are_refused_with_invalid_request() {
    let db = crate::TestDb::sqlite();
    let server = TestServer::start_ready(
        &db,
        "[[resources]]\nidentifier = \"https://api.example.com\"\nscopes = [\"read\"]\n\n[[clients]]\nclient_id = \"machine\"\nclient_secret = \"machine-secret\"\ngrant_types = [\"client_credentials\"]\nscopes = [\"read\"]\n",
    )
    .await;
    let http = client();
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    };
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let response = http
            .post(server.url(path))
            .header("authorization", basic("machine", "machine-secret"))
            .header("authorization", basic("other", "other-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&token=x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
    }
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let response = http
            .request(method.clone(), server.url("/userinfo"))
            .header("authorization", "Bearer a.b.c")
            .header("authorization", "Bearer d.e.f")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{method} /userinfo");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("invalid_request"), "{challenge}");
    }
    // One header still works.
    let response = http
        .post(server.url("/oauth/token"))
        .header("authorization", basic("machine", "machine-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_carry_the_host_prefix_under_an_https_issuer() {
    use crate::code_flow::{CONFIG, SPA_REDIRECT, authorize_url, hidden};
    let db = crate::TestDb::sqlite();
    let server = TestServer::start_as(&db, Some("https://auth.example.com"), CONFIG).await;
    server.state.static_loaded.clone().wait_for(|done| *done).await.unwrap();
    let http = client();
    let set_cookies = |response: &reqwest::Response| -> Vec<String> {
        let values = response.headers().get_all("set-cookie").iter();
        values.map(|v| v.to_str().unwrap().to_owned()).collect()
    };
    let first = http.get(authorize_url(&server, "spa", SPA_REDIRECT, &[])).send().await.unwrap();
    let cookies = set_cookies(&first);
    let browser = cookies.iter().find(|c| c.starts_with("__Host-latchkey_browser="));
    let browser = browser.unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(
        browser.contains("; Secure") && browser.contains("Path=/") && !browser.contains("Domain")
    );
    let page = first.text().await.unwrap();
    // The browser would send the Secure cookie back to the https issuer; send it by hand.
    let pair = browser.split(';').next().unwrap().to_owned();
    let form = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    let login =
        http.post(server.url("/login")).header("cookie", pair).form(&form).send().await.unwrap();
    let cookies = set_cookies(&login);
    assert!(
        cookies.iter().any(|c| c.starts_with("__Host-latchkey_session=") && c.contains("; Secure")),
        "{cookies:?}"
    );
}

/// RFC 6749 §4.1.2.1 and §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
fn rfc_description(description: &str) -> bool {
    description.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_descriptions_never_echo_request_values() {
    use crate::code_flow::{SPA_REDIRECT, authorize_url, browser, location_params, server};
    let db = crate::TestDb::sqlite();
    let server = server(&db, "").await;
    let marker = "EVIL\"<script>é";
    let browser = browser();
    for extra in [
        vec![("scope", marker)],
        vec![("scope", "openid write:photos")],
        vec![("response_type", marker)],
        vec![("response_type", "token EVIL\"")],
        vec![("response_mode", marker)],
        vec![("prompt", marker)],
        vec![("code_challenge_method", marker)],
        vec![("resource", marker)],
        vec![("resource", "https://photos.example.com/EVIL\"")],
    ] {
        let url = authorize_url(&server, "spa", SPA_REDIRECT, &extra);
        let (_, params) = location_params(&browser.get(url).send().await.unwrap());
        let description = &params["error_description"];
        assert!(!description.contains("EVIL"), "{extra:?}: {description}");
        assert!(rfc_description(description), "{extra:?}: {description}");
    }
    // A repeated parameter whose name is attacker text.
    let url = format!(
        "{}&EVIL%22%3Cx%3E=1&EVIL%22%3Cx%3E=2",
        authorize_url(&server, "spa", SPA_REDIRECT, &[])
    );
    let (_, params) = location_params(&browser.get(url).send().await.unwrap());
    assert_eq!(params["error"], "invalid_request");
    assert!(!params["error_description"].contains("EVIL"), "{}", params["error_description"]);

    let http = client();
    for form in [
        vec![("grant_type", marker)],
        vec![("grant_type", "client_credentials"), ("scope", marker)],
        vec![("grant_type", "client_credentials"), ("resource", marker)],
        vec![("grant_type", "client_credentials"), ("EVIL\"", "1"), ("EVIL\"", "2")],
    ] {
        let response = http
            .post(server.url("/oauth/token"))
            .basic_auth("machine", Some("machine-secret"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        let description = body["error_description"].as_str().unwrap();
        assert!(!description.contains("EVIL"), "{form:?}: {description}");
        assert!(rfc_description(description), "{form:?}: {description}");
    }
}
