//! `latchkey users …` against a running server: import of other systems' hashes, upgraded
//! at the first sign-in; disable and enable; show, update and list, in text and JSON.

use std::time::Duration;

use latchkey_testkit::fixtures::post_form;
use serde_json::Value;

use crate::process::{ConfigFile, Serving, free_port, run, stderr, stdout, wait_until_ok};

const PASSWORDS: [(&str, &str); 3] = [
    ("ann", "violet anchor drifting north"),
    ("ben", "seven quiet lanterns hum"),
    ("cat", "marble otter juggles plums"),
];

/// Hashes of the three passwords made by independent implementations: argon2-cffi (at other
/// parameters than latchkey's), pyca/bcrypt, and scrypt from Python's hashlib (OpenSSL),
/// written as a PHC string.
fn foreign_hashes() -> Option<Vec<String>> {
    let script = r#"
import base64, hashlib, os, sys
import argon2, bcrypt
pw = [line.rstrip("\n") for line in sys.stdin]
b64 = lambda b: base64.b64encode(b).decode().rstrip("=")
print(argon2.PasswordHasher(time_cost=3, memory_cost=8192, parallelism=1).hash(pw[0]))
print(bcrypt.hashpw(pw[1].encode(), bcrypt.gensalt(rounds=4)).decode())
salt = os.urandom(16)
key = hashlib.scrypt(pw[2].encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
print("$scrypt$ln=14,r=8,p=1$" + b64(salt) + "$" + b64(key))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    let input: String = PASSWORDS.iter().map(|(_, pw)| format!("{pw}\n")).collect();
    child.stdin.take()?.write_all(input.as_bytes()).ok()?;
    let output = child.wait_with_output().ok()?;
    let ok = output.status.success();
    let available = latchkey_testkit::tool_available(
        ok,
        "Python with argon2-cffi and bcrypt",
        "python3 -m pip install argon2-cffi bcrypt",
    );
    available.then(|| String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect())
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|_| panic!("not JSON: {}", stdout(output)))
}

fn stored_hash(config: &ConfigFile, username: &str) -> String {
    let db = rusqlite::Connection::open(config.dir.path().join("latchkey.db")).unwrap();
    db.query_row("SELECT password_hash FROM users WHERE username = ?1", [username], |row| {
        row.get(0)
    })
    .unwrap()
}

#[tokio::test]
async fn imported_hashes_sign_in_and_are_upgraded_and_disabled_users_are_refused_everywhere() {
    let Some(hashes) = foreign_hashes() else { return };
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
         [[clients]]\nclient_id = \"first-party\"\nclient_secret = \"first-party-secret\"\n\
         grant_types = [\"password\", \"refresh_token\"]\nscopes = [\"openid\", \"email\", \"offline_access\"]\n"
    ));
    let lines: String = PASSWORDS
        .iter()
        .zip(&hashes)
        .map(|((user, _), hash)| {
            format!(
                "{}\n",
                serde_json::json!({"username": user, "email": format!("{user}@example.com"), "email_verified": true, "password_hash": hash})
            )
        })
        .collect();
    let file = config.dir.path().join("users.jsonl");
    std::fs::write(&file, format!("{lines}\n")).unwrap();
    let file = file.to_str().unwrap();

    // A bad line stops the import before anything is stored, naming the line.
    let bad = config.dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        format!("{lines}{{\"username\":\"dan\",\"password_hash\":\"$1$md5$crypt\"}}\n"),
    )
    .unwrap();
    let refused = run(&["users", "import", bad.to_str().unwrap()], &config.path, "");
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("line 4: password_hash: not a hash latchkey reads"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stdout(&run(&["users", "list"], &config.path, "")), "USERNAME\tSUB\tEMAIL\tSTATE\n");

    let imported = json_of(&run(&["users", "import", file, "--json"], &config.path, ""));
    assert_eq!(imported["imported"], 3);
    let again = run(&["users", "import", file], &config.path, "");
    assert!(stderr(&again).contains("line 1: user \"ann\" exists already"), "{}", stderr(&again));

    let _server = Serving::start(&config.path);
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let client = Some(("first-party", "first-party-secret"));
    let sign_in = |username: &'static str, password: &'static str| {
        let url = format!("{base}/oauth/token");
        async move {
            let form = [
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
                ("scope", "openid email offline_access"),
            ];
            post_form(&url, client, &form).await
        }
    };
    for (user, password) in PASSWORDS {
        let before = stored_hash(&config, user);
        let (status, _, body) = sign_in(user, password).await;
        assert_eq!(status, 200, "{user}: {body}");
        let after = stored_hash(&config, user);
        assert_ne!(before, after, "{user}'s hash was not upgraded");
        assert!(after.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{after}");
        // The upgraded hash still takes the same password, and no other.
        assert_eq!(sign_in(user, password).await.0, 200, "{user} after the upgrade");
        assert_eq!(sign_in(user, "not the password at all").await.0, 400);
    }

    // Disabled: no sign-in; the tokens issued before stop at refresh, introspection and
    // userinfo. Enabled again: a new sign-in works; what was revoked stays revoked.
    let (_, _, tokens) = sign_in("cat", PASSWORDS[2].1).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let disabled = json_of(&run(&["users", "disable", "cat", "--json"], &config.path, ""));
    assert_eq!(
        (disabled["username"].as_str(), disabled["disabled"].as_bool()),
        (Some("cat"), Some(true))
    );
    let (status, _, body) = sign_in("cat", PASSWORDS[2].1).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    assert!(body["error_description"].as_str().unwrap().contains("disabled"), "{body}");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let (status, _, body) = post_form(&format!("{base}/oauth/token"), client, &form).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (_, _, body) =
        post_form(&format!("{base}/oauth/introspect"), client, &[("token", access.as_str())]).await;
    assert_eq!(body["active"], false, "{body}");
    let userinfo = http.get(format!("{base}/userinfo")).bearer_auth(&access).send().await.unwrap();
    assert_eq!(userinfo.status(), 401);

    assert!(run(&["users", "enable", "cat"], &config.path, "").status.success());
    assert_eq!(sign_in("cat", PASSWORDS[2].1).await.0, 200);
    let (status, _, _) = post_form(&format!("{base}/oauth/token"), client, &form).await;
    assert_eq!(status, 400, "a refresh token revoked by the disabling stays revoked");

    // Show, update and list.
    let updated = json_of(&run(
        &[
            "users",
            "update",
            "ann",
            "--json",
            "--name",
            "Ann Example",
            "--email",
            "ann@corp.example",
            "--email-verified",
            "false",
        ],
        &config.path,
        "",
    ));
    assert_eq!(updated["name"], "Ann Example");
    assert_eq!(
        (updated["email"].as_str(), updated["email_verified"].as_bool()),
        (Some("ann@corp.example"), Some(false))
    );
    // userinfo and id_tokens carry the flag.
    let (_, _, tokens) = sign_in("ann", PASSWORDS[0].1).await;
    let info: Value = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["email"].as_str(), info["email_verified"].as_bool()),
        (Some("ann@corp.example"), Some(false)),
        "{info}"
    );
    let shown = stdout(&run(&["users", "show", "ann"], &config.path, ""));
    assert!(
        shown.contains("email_verified: false\n") && shown.contains("disabled: false\n"),
        "{shown}"
    );
    let cleared =
        json_of(&run(&["users", "update", "ann", "--json", "--name", "none"], &config.path, ""));
    assert!(cleared["name"].is_null() && cleared["email"] == "ann@corp.example", "{cleared}");
    let list = json_of(&run(&["users", "list", "--json"], &config.path, ""));
    let names: Vec<&str> =
        list["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["ann", "ben", "cat"]);
    let missing = run(&["users", "disable", "nobody"], &config.path, "");
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no user \"nobody\""));
}

/// New passwords meet `[passwords]`: long enough and not common; the config can relax it
/// (and `latchkey check` says so).
#[test]
fn new_passwords_meet_the_policy() {
    let config = ConfigFile::sqlite("");
    for weak in ["short-pw\n", "password1234\n", "qwertyuiop12\n"] {
        let refused = run(&["users", "add", "dora"], &config.path, weak);
        assert_eq!(refused.status.code(), Some(2), "{weak:?}: {}", stderr(&refused));
    }
    let added = run(&["users", "add", "dora"], &config.path, "ripe walnut orbit canyon\n");
    assert!(added.status.success(), "{}", stderr(&added));
    let weak = run(&["users", "set-password", "dora"], &config.path, "dora12345678\n");
    assert_eq!(weak.status.code(), Some(2));
    assert!(stderr(&weak).contains("too common or too easy to guess"), "{}", stderr(&weak));

    let lenient = ConfigFile::sqlite("[passwords]\nmin_length = 6\nrefuse_common = false\n");
    let added = run(&["users", "add", "eve"], &lenient.path, "secret\n");
    assert!(added.status.success(), "{}", stderr(&added));
    let check = stdout(&run(&["check"], &lenient.path, ""));
    assert!(check.contains("warning: passwords.min_length: 6"), "{check}");
    assert!(check.contains("warning: passwords.refuse_common: false"), "{check}");
}

/// A browser sign-in through `app` (no consent page), returning the token response.
async fn browser_sign_in(base: &str, browser: &reqwest::Client) -> Value {
    use crate::code_flow::{VERIFIER, hidden};
    let challenge = latchkey::oauth::pkce::s256(VERIFIER);
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", "https://app.example.com/cb"),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let page = browser.get(format!("{base}/authorize?{query}")).send().await.unwrap();
    let page = page.text().await.unwrap();
    let form = [
        ("username", "alice"),
        ("password", "alice-password"),
        ("csrf_token", &hidden(&page, "csrf_token")),
        ("request", &hidden(&page, "request")),
    ];
    let answer = browser.post(format!("{base}/login")).form(&form).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {location}"));
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "https://app.example.com/cb"),
        ("code_verifier", VERIFIER),
    ];
    let (status, _, body) =
        post_form(&format!("{base}/oauth/token"), Some(("app", "app-client-secret")), &form).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// `latchkey sessions …` and `latchkey grants …`: listing, and revocation that ends exactly
/// what it names.
#[tokio::test]
async fn sessions_and_grants_are_listed_and_revoked() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
         [[clients]]\nclient_id = \"app\"\nclient_secret = \"app-client-secret\"\nredirect_uris = [\"https://app.example.com/cb\"]\n\
         grant_types = [\"authorization_code\", \"refresh_token\", \"password\"]\nscopes = [\"openid\", \"offline_access\"]\nrequire_consent = false\n\
         [[users]]\nusername = \"alice\"\npassword = \"alice-password\"\n"
    ));
    let _server = Serving::start(&config.path);
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let browser = crate::code_flow::browser();
    let through_session = browser_sign_in(&base, &browser).await;
    let form = [
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
        ("scope", "openid offline_access"),
    ];
    let client = Some(("app", "app-client-secret"));
    let (_, _, direct) = post_form(&format!("{base}/oauth/token"), client, &form).await;
    let refresh = |body: &Value| {
        let token = body["refresh_token"].as_str().unwrap().to_owned();
        let url = format!("{base}/oauth/token");
        async move {
            let form = [("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
            post_form(&url, client, &form).await.0.as_u16()
        }
    };

    let sessions =
        json_of(&run(&["sessions", "list", "--user", "alice", "--json"], &config.path, ""));
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1, "{sessions}");
    assert_eq!(sessions["sessions"][0]["grants"], 1, "{sessions}");
    let table = stdout(&run(&["sessions", "list", "--user", "alice"], &config.path, ""));
    assert!(table.starts_with("SID\tSIGNED IN\tEXPIRES\tGRANTS\n"), "{table}");
    let grants = json_of(&run(&["grants", "list", "--user", "alice", "--json"], &config.path, ""));
    assert_eq!(grants["grants"].as_array().unwrap().len(), 2, "{grants}");
    let by_client = stdout(&run(&["grants", "list", "--client", "app"], &config.path, ""));
    assert_eq!(by_client.lines().count(), 1 + 2, "{by_client}");
    let none = run(&["grants", "list"], &config.path, "");
    assert_eq!(none.status.code(), Some(2), "a selection is required");

    // Revoking the sessions ends the sign-in and its grant, not the password grant's.
    let ended =
        json_of(&run(&["sessions", "revoke", "--user", "alice", "--json"], &config.path, ""));
    assert_eq!(
        (ended["sessions_ended"].as_u64(), ended["grants_revoked"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(refresh(&through_session).await, 400);
    assert_eq!(refresh(&direct).await, 200);
    let again = browser.get(format!("{base}/authorize?response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")).send().await.unwrap();
    assert!(
        again.text().await.unwrap().contains("name=\"password\""),
        "signed out: the login page"
    );

    let revoked = json_of(&run(
        &["grants", "revoke", "--user", "alice", "--client", "app", "--json"],
        &config.path,
        "",
    ));
    assert_eq!(revoked["grants_revoked"], 1);
    let listed = json_of(&run(&["grants", "list", "--user", "alice", "--json"], &config.path, ""));
    assert_eq!(listed["grants"], serde_json::json!([]));
    let unknown = run(&["grants", "revoke", "--user", "nobody"], &config.path, "");
    assert_eq!(unknown.status.code(), Some(1));
}
