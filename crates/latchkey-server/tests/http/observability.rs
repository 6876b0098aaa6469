//! `/metrics` as Prometheus reads it, checked with the Prometheus project's own Python
//! client's text-format parser; and the management listener.

use std::time::Duration;

use serde_json::Value;

use crate::process::{ConfigFile, Serving, free_port, wait_until_ok};

/// The families of a scrape as `prometheus_client.parser` reads them: name → {type, help,
/// samples: [[name, labels, value]]}; `None` (a skip, or a failure under CI) without it.
fn parse(text: &str) -> Option<Value> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {"type": family.type, "help": family.documentation,
                        "samples": [[s.name, s.labels, s.value] for s in family.samples]}
print(json.dumps(out))
"#;
    use std::io::Write;
    let child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) => {
            latchkey_testkit::tool_available(false, "python3", "apt-get install python3");
            return None;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named 'prometheus_client'") {
        latchkey_testkit::tool_available(
            false,
            "prometheus_client",
            "python3 -m pip install prometheus-client",
        );
        return None;
    }
    assert!(output.status.success(), "the parser refused the scrape: {stderr}\n{text}");
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

fn value(families: &Value, family: &str, sample: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families[family]["samples"].as_array()?.iter().find_map(|s| {
        let matches = s[0] == sample && labels.iter().all(|(k, v)| s[1][*k].as_str() == Some(*v));
        matches.then(|| s[2].as_f64()).flatten()
    })
}

#[tokio::test]
async fn metrics_follow_the_prometheus_conventions() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n"
    ));
    let _server = Serving::start(&config.path);
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    // One token error (an unknown client).
    let (status, _, _) = latchkey_testkit::fixtures::post_form(
        &format!("{base}/oauth/token"),
        Some(("nobody", "wrong")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let Some(families) = parse(&text) else { return };

    for (name, family) in families.as_object().unwrap() {
        let help = family["help"].as_str().unwrap_or("");
        assert!(!help.is_empty(), "{name} has no # HELP");
        assert_ne!(family["type"], "summary", "{name} is a summary, not a histogram");
    }
    let requests = &families["latchkey_http_request_duration_seconds"];
    assert_eq!(requests["type"], "histogram");
    let buckets = requests["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s[0] == "latchkey_http_request_duration_seconds_bucket")
        .count();
    assert!(buckets >= 10, "histogram buckets: {requests}");
    let info = &families["latchkey_build_info"]["samples"][0];
    assert_eq!(info[1]["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert!(info[1]["commit"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(
        value(&families, "process_resident_memory_bytes", "process_resident_memory_bytes", &[])
            .unwrap()
            > 1e6
    );
    assert!(value(&families, "process_open_fds", "process_open_fds", &[]).unwrap() >= 3.0);
    assert!(
        value(&families, "process_cpu_seconds_total", "process_cpu_seconds_total", &[]).is_some()
    );
    // Counters exist at zero before anything happened; errors are counted by their code.
    let zero = |family: &str, labels: &[(&str, &str)]| {
        value(&families, family, &format!("{family}_total"), labels)
            .or_else(|| value(&families, family, family, labels))
    };
    assert_eq!(
        zero("latchkey_refresh_reuse", &[]),
        Some(0.0),
        "{}",
        families["latchkey_refresh_reuse"]
    );
    assert_eq!(zero("latchkey_throttled", &[("kind", "login")]), Some(0.0));
    assert_eq!(zero("latchkey_tokens_issued", &[("grant_type", "refresh_token")]), Some(0.0));
    assert_eq!(zero("latchkey_token_errors", &[("error", "invalid_grant")]), Some(0.0));
    assert_eq!(zero("latchkey_token_errors", &[("error", "invalid_client")]), Some(1.0));
}

#[tokio::test]
async fn a_management_listener_takes_metrics_off_the_public_port() {
    let (port, management) = (free_port(), free_port());
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n[metrics]\nlisten = \"127.0.0.1:{management}\"\n"
    ));
    let _server = Serving::start(&config.path);
    let http = crate::client();
    let (public, private) =
        (format!("http://127.0.0.1:{port}"), format!("http://127.0.0.1:{management}"));
    wait_until_ok(&http, &format!("{public}/readyz"), Duration::from_secs(20)).await;
    wait_until_ok(&http, &format!("{private}/readyz"), Duration::from_secs(20)).await;
    let status = |url: String| {
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(format!("{public}/metrics")).await, 404);
    assert_eq!(status(format!("{private}/metrics")).await, 200);
    assert_eq!(status(format!("{private}/healthz")).await, 200);
    assert_eq!(status(format!("{private}/oauth/token")).await, 404, "only management there");
    assert_eq!(status(format!("{public}/.well-known/openid-configuration")).await, 200);
}

/// Security events carry who caused them: source address, user agent (bounded, control
/// characters escaped), client_id and, for logins, the account name as typed. The optional
/// access log has one line per request without query strings.
#[tokio::test]
async fn security_events_name_the_caller_and_the_access_log_keeps_queries_out() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
         [log]\nformat = \"json\"\naccess = true\n\
         [[clients]]\nclient_id = \"app\"\nclient_secret = \"app-client-secret\"\ngrant_types = [\"password\"]\n\
         [[users]]\nusername = \"alice\"\npassword = \"alice-password\"\n"
    ));
    let mut server = Serving::start(&config.path);
    let base = format!("http://127.0.0.1:{port}");
    // A header cannot carry CR or LF, but a tab and bytes that are not UTF-8 pass.
    let agent = reqwest::header::HeaderValue::from_bytes(b"guesser/1.0\tx\xff").unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::USER_AGENT, agent);
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    wait_until_ok(&crate::client(), &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let token = format!("{base}/oauth/token");
    let typed = format!("mallory\u{1b}[31m{}", "x".repeat(200));
    let form = [("grant_type", "password"), ("username", typed.as_str()), ("password", "guess")];
    let answer = http
        .post(&token)
        .basic_auth("app", Some("app-client-secret"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let wrong = [("grant_type", "password")];
    let answer = http
        .post(&token)
        .basic_auth("app", Some("wrong-secret"))
        .form(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let _ = http.get(format!("{base}/authorize?client_id=app&secret_looking=s3cr3t")).send().await;
    assert!(server.terminate(Duration::from_secs(15)).success());
    let logs = server.output();
    let events: Vec<Value> = logs.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let event = |name: &str| {
        events
            .iter()
            .find(|e| e["fields"]["event"] == name)
            .unwrap_or_else(|| panic!("no {name} event in:\n{logs}"))
            .clone()
    };
    let login = event("login_failure");
    assert_eq!(login["target"], "latchkey::security");
    assert_eq!(login["fields"]["source"], "127.0.0.1", "{login}");
    let account = login["fields"]["account"].as_str().unwrap();
    assert!(account.starts_with("mallory\\u{1b}[31m") && account.ends_with('…'), "{account}");
    assert!(account.chars().count() < 80, "64 characters as typed, escapes aside: {account}");
    let agent = login["fields"]["user_agent"].as_str().unwrap();
    assert!(
        agent.starts_with("guesser/1.0") && !agent.contains('\u{7}') && !agent.contains('\r'),
        "{agent}"
    );
    let client = event("client_authentication_failure");
    assert_eq!(client["fields"]["client_id"], "app");
    assert_eq!(client["fields"]["source"], "127.0.0.1");
    assert!(client["fields"]["user_agent"].as_str().unwrap().starts_with("guesser/1.0"));

    let access: Vec<&Value> = events.iter().filter(|e| e["target"] == "latchkey::access").collect();
    assert!(
        access
            .iter()
            .any(|e| e["fields"]["route"] == "/oauth/token" && e["fields"]["status"] == 401)
    );
    assert!(access.iter().any(|e| e["fields"]["route"] == "/authorize"));
    assert!(
        !logs.contains("s3cr3t") && !logs.contains("secret_looking"),
        "no query string in the logs"
    );
    assert!(
        !logs.contains("app-client-secret") && !logs.contains("guess\""),
        "no secret in the logs"
    );
}
