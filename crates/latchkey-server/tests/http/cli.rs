//! The admin CLI and `serve`, run as the real binary.

use std::io::Read;
use std::time::Duration;

use crate::process::{
    ConfigFile, Serving, TlsFiles, command, free_port, run, stderr, stdout, wait_until_ok,
};

#[test]
fn bad_config_exits_2_with_one_line_naming_key_and_fix() {
    let config = ConfigFile::new("[tokens]\naccess_token_ttl = \"forever\"\n");
    for args in [&["check"][..], &["serve"], &["migrate"], &["keys", "list"]] {
        let output = run(args, &config.path, "");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let err = stderr(&output);
        assert_eq!(
            err,
            "latchkey: config: tokens.access_token_ttl: invalid duration \"forever\": write it like \"60s\", \"15m\", \"1h30m\" or \"14d\"\n"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    let output = command(&["frobnicate"], None).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let missing = ConfigFile::new("");
    let output = run(&["check"], &missing.dir.path().join("absent.toml"), "");
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("latchkey: config: cannot read "), "{}", stderr(&output));
}

#[test]
fn check_reports_weak_settings_and_exits_0() {
    let config = ConfigFile::new(
        "master_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n\
         issuer = \"https://auth.example.com\"\nlisten = \"0.0.0.0:8080\"\n\
         [http]\nhsts_max_age = \"off\"\n[log]\nlevel = \"latchkey=debug\"\n\
         [tokens]\naccess_token_ttl = \"3h\"\nid_token_ttl = \"2h\"\nauthorization_code_ttl = \"30m\"\n\
         refresh_token_ttl = \"365d\"\nsession_ttl = \"60d\"\nrefresh_grace_period = \"1m\"\n\
         [[clients]]\nclient_id = \"legacy\"\nclient_secret = \"pw\"\n\
         grant_types = [\"password\"]\nrequire_pkce = false\n\
         [[clients]]\nclient_id = \"cli\"\napplication_type = \"native\"\nredirect_uris = [\"http://127.0.0.1/cb\"]\n\
         require_consent = false\nrefresh_grace_period = \"30s\"\n\
         [[clients]]\nclient_id = \"desktop\"\napplication_type = \"native\"\nredirect_uris = [\"com.example.app:/cb\"]\n\
         remember_consent = true\n\
         [[clients]]\nclient_id = \"signed\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n\
         grant_types = [\"client_credentials\"]\njwks = { keys = [] }\nlegacy_assertion_audience = true\n\
         [[users]]\nusername = \"alice\"\npassword = \"short\"\n",
    );
    let output = run(&["check"], &config.path, "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let out = stdout(&output);
    let expected = [
        "warning: master_key: a secret is written in the config file; pass it in the environment instead (LATCHKEY_MASTER_KEY)",
        "warning: http.hsts_max_age: off",
        "warning: tokens.access_token_ttl: 3h is over 1h",
        "warning: tokens.id_token_ttl: 2h is over 1h",
        "warning: tokens.authorization_code_ttl: 30m is over 10m",
        "warning: tokens.refresh_token_ttl: 365d is over 90d",
        "warning: tokens.session_ttl: 60d is over 30d",
        "warning: tokens.refresh_grace_period: 1m",
        "warning: listen: /metrics is served on 0.0.0.0:8080",
        "warning: log.level: \"latchkey=debug\"",
        "warning: clients.legacy: the password grant is enabled",
        "warning: clients.legacy: client_secret is set in the config",
        "warning: clients.legacy: client_secret has 2 characters",
        "warning: clients.legacy: require_pkce = false",
        "warning: clients.cli: require_consent = false on a public client",
        "warning: clients.cli: refresh_grace_period 30s",
        "warning: clients.cli: redirect URI \"http://127.0.0.1/cb\" uses http under an https issuer",
        "warning: clients.desktop: remember_consent = true on a public client",
        "warning: clients.signed: legacy_assertion_audience = true",
        "warning: users.alice: the password is written in the config file",
        "warning: users.alice: the password has 5 characters",
    ];
    for line in expected {
        assert!(out.lines().any(|l| l.starts_with(line)), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains(&format!("config OK ({} warnings)", out.lines().count() - 1)), "{out}");
    assert_eq!(out.lines().count() - 1, expected.len(), "one line per weak setting:\n{out}");
}

#[test]
fn absurd_durations_and_a_reachable_issuer_without_master_key_are_refused() {
    let absurd = ConfigFile::new("[tokens]\naccess_token_ttl = \"1000000000y\"\n");
    let output = run(&["check"], &absurd.path, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "tokens.access_token_ttl: \"1000000000y\" is longer than the maximum allowed, 10 years"
        ),
        "{}",
        stderr(&output)
    );
    let reachable = ConfigFile::new("issuer = \"https://auth.example.com\"\n");
    let output = run(&["check"], &reachable.path, "");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("master_key: is required for the issuer"),
        "{}",
        stderr(&output)
    );
}

#[cfg(unix)]
#[test]
fn database_files_are_owner_only_and_exposed_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let config = ConfigFile::sqlite("");
    let data = config.dir.path().join("data");
    let db = data.join("latchkey.db");
    let text = format!("[database]\nurl = \"sqlite://{}\"\n", db.display());
    std::fs::write(&config.path, text).unwrap();
    assert!(run(&["migrate"], &config.path, "").status.success());
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the directory latchkey created");
    assert_eq!(mode(&db), 0o600);
    // While a connection is open SQLite keeps -wal and -shm: they get the database's mode.
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE probe (x); INSERT INTO probe VALUES (1);",
        )
        .unwrap();
    for suffix in ["-wal", "-shm"] {
        let file = data.join(format!("latchkey.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{suffix}");
    }
    drop(connection);
    assert_eq!(run(&["check"], &config.path, "").status.code(), Some(0));
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    for command in ["check", "serve"] {
        let output = run(&[command], &config.path, "");
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(
            stderr(&output).contains("has mode 0644, so other users of this machine can read it"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn clients_add_prints_a_generated_secret_once_and_stores_only_its_hash() {
    let config = ConfigFile::sqlite(
        "[[resources]]\nidentifier = \"https://billing.example.com\"\nscopes = [\"read:invoices\"]\n",
    );
    // A scope that no resource defines is refused, as in the config file.
    let undefined = run(
        &["clients", "add", "x", "--grant-type", "client_credentials", "--scope", "read:nothing"],
        &config.path,
        "",
    );
    assert_eq!(undefined.status.code(), Some(2), "{}", stderr(&undefined));
    assert!(stderr(&undefined).contains("nor defined by a [[resources]] entry"));
    let output = run(
        &[
            "clients",
            "add",
            "billing",
            "--name",
            "Billing",
            "--grant-type",
            "client_credentials",
            "--scope",
            "read:invoices",
        ],
        &config.path,
        "",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    let secret = out.lines().find_map(|l| l.strip_prefix("client_secret: ")).unwrap().to_owned();
    assert_eq!(secret.len(), 43, "256 bits, base64url");

    let show = stdout(&run(&["clients", "show", "billing"], &config.path, ""));
    assert!(
        show.contains("\"client_credentials\"") && show.contains("\"has_secret\": true"),
        "{show}"
    );
    assert!(!show.contains(&secret), "the secret is shown only once");
    let mut db = Vec::new();
    std::fs::File::open(config.dir.path().join("latchkey.db"))
        .unwrap()
        .read_to_end(&mut db)
        .unwrap();
    assert!(!db.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret stored in clear");

    let list = stdout(&run(&["clients", "list"], &config.path, ""));
    assert_eq!(
        list,
        "CLIENT_ID\tTYPE\tGRANT_TYPES\tSOURCE\nbilling\tconfidential\tclient_credentials\tcli\n"
    );

    let public = run(
        &["clients", "add", "spa", "--public", "--redirect-uri", "https://spa.example.com/cb"],
        &config.path,
        "",
    );
    assert!(stdout(&public).contains("public client: no secret"), "{}", stderr(&public));

    let duplicate = run(
        &["clients", "add", "spa", "--public", "--redirect-uri", "https://spa.example.com/cb"],
        &config.path,
        "",
    );
    assert_eq!(duplicate.status.code(), Some(1));

    let invalid = run(
        &["clients", "add", "web", "--redirect-uri", "http://web.example.com/cb"],
        &config.path,
        "",
    );
    assert_eq!(invalid.status.code(), Some(2));
    assert!(stderr(&invalid).contains("client.redirect_uris[0]"), "{}", stderr(&invalid));

    assert!(run(&["clients", "remove", "billing"], &config.path, "").status.success());
    let again = run(&["clients", "remove", "billing"], &config.path, "");
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("no client \"billing\""), "{}", stderr(&again));
}

#[test]
fn users_are_managed_with_passwords_from_stdin() {
    let config = ConfigFile::sqlite("");
    let added = run(
        &["users", "add", "bob", "--email", "bob@example.com"],
        &config.path,
        "tidal s3cret harbor\n",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let list = stdout(&run(&["users", "list"], &config.path, ""));
    assert!(list.starts_with("USERNAME\tSUB\tEMAIL\tSTATE\nbob\t"), "{list}");
    assert!(list.ends_with("\tbob@example.com\tenabled\n"), "{list}");
    // RFC 9068 §5: no client may take bob's subject as its client_id.
    let sub =
        stdout(&added).split("(sub ").nth(1).unwrap().trim_end_matches([')', '\n']).to_owned();
    let clash = run(
        &["clients", "add", &sub, "--redirect-uri", "https://a.example.com/cb"],
        &config.path,
        "",
    );
    assert!(!clash.status.success());
    assert!(stderr(&clash).contains("is the subject (sub) of a user"), "{}", stderr(&clash));

    let mut db = Vec::new();
    std::fs::File::open(config.dir.path().join("latchkey.db"))
        .unwrap()
        .read_to_end(&mut db)
        .unwrap();
    assert!(!db.windows(12).any(|w| w == b"tidal s3cret"), "password stored in clear");

    assert!(
        run(&["users", "set-password", "bob"], &config.path, "n3w amber glacier path\n")
            .status
            .success()
    );
    let empty = run(&["users", "set-password", "bob"], &config.path, "\n");
    assert_eq!(empty.status.code(), Some(2), "bad usage");
    assert_eq!(
        run(&["users", "set-password", "nobody"], &config.path, "x\n").status.code(),
        Some(1)
    );
    assert!(run(&["users", "remove", "bob"], &config.path, "").status.success());
    assert_eq!(stdout(&run(&["users", "list"], &config.path, "")), "USERNAME\tSUB\tEMAIL\tSTATE\n");
}

#[test]
fn keys_list_and_rotate_show_states() {
    let config = ConfigFile::sqlite("");
    let list = stdout(&run(&["keys", "list"], &config.path, ""));
    let states: Vec<&str> = list.lines().skip(1).map(|l| l.split('\t').nth(3).unwrap()).collect();
    assert_eq!(states, ["current"; 4], "{list}");

    let rotated = run(&["keys", "rotate"], &config.path, "");
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let out = stdout(&rotated);
    assert_eq!(out.matches("added ").count(), 4, "{out}");
    let mut states: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("added") && !l.starts_with("KID"))
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    states.sort();
    assert_eq!(
        states,
        ["current", "current", "current", "current", "next", "next", "next", "next"],
        "{out}"
    );
}

#[test]
fn migrate_creates_the_database_and_is_idempotent() {
    let config = ConfigFile::sqlite("");
    for _ in 0..2 {
        let output = run(&["migrate"], &config.path, "");
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stdout(&output), "database is up to date\n");
    }
    assert!(config.dir.path().join("latchkey.db").exists());
}

#[test]
fn a_success_answer_survives_sigkill() {
    // The CLI prints success only after the commit; killing it at once must not lose the row.
    let config = ConfigFile::sqlite("");
    for index in 0..5 {
        let name = format!("user{index}");
        let mut child = command(&["users", "add", &name], Some(&config.path))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::{BufRead, Write};
        child.stdin.take().unwrap().write_all(b"quartz ember willow song\n").unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with(&format!("added user {name}")), "{line}");
        let _ = child.kill();
        let _ = child.wait();
    }
    let list = stdout(&run(&["users", "list"], &config.path, ""));
    assert_eq!(list.lines().count(), 1 + 5, "a header and five users:\n{list}");
}

#[tokio::test]
async fn serve_answers_then_stops_gracefully_on_sigterm_with_json_logs() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nformat = \"json\"\n"
    ));
    let mut server = Serving::start(&config.path);
    let http = crate::client();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let doc: serde_json::Value =
        crate::get_json(&http, &format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], base);

    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    let logs = server.output();
    assert!(!logs.is_empty());
    for line in logs.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(entry.get("level").is_some(), "{line}");
    }
    assert!(logs.contains("shutting down"), "{logs}");
    // One start-up summary, then the weakening settings as warnings (as `check` lists them).
    let summary = logs.lines().find(|l| l.contains("latchkey is listening")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(summary).unwrap();
    let fields = &summary["fields"];
    assert_eq!(fields["version"], env!("CARGO_PKG_VERSION"), "{summary}");
    assert!(fields["commit"].as_str().is_some_and(|c| !c.is_empty()), "{summary}");
    assert!(fields["database"].as_str().unwrap().starts_with("SQLite file "), "{summary}");
    assert!(fields["keys"].as_str().unwrap().contains("current"), "{summary}");
    assert!(
        logs.lines()
            .any(|l| l.contains("\"WARN\"") && l.contains("issuer: ") && l.contains("plain http")),
        "{logs}"
    );
}

/// A database that cannot be reached is named with the cause and the fix.
#[test]
fn database_errors_name_the_server_and_the_cause() {
    let port = free_port();
    let refused = ConfigFile::new(&format!(
        "[database]\nurl = \"postgres://app@127.0.0.1:{port}/latchkey\"\n"
    ));
    let output = run(&["migrate"], &refused.path, "");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "cannot connect to PostgreSQL at 127.0.0.1:{port}/latchkey as app: connection refused"
        )),
        "{}",
        stderr(&output)
    );
    // serve says what it connects to first, in plain text off a terminal (no NO_COLOR here).
    let served = command(&["serve"], Some(&refused.path)).env_remove("NO_COLOR").output().unwrap();
    let log = stderr(&served);
    assert!(log.contains("connecting to the database"), "{log}");
    assert!(!log.contains('\u{1b}'), "no colour when not on a terminal: {log:?}");
    let Ok(url) = std::env::var("LATCHKEY_TEST_POSTGRES_URL") else { return };
    let base = url.rsplit_once('/').unwrap().0;
    let unknown = ConfigFile::new(&format!("[database]\nurl = \"{base}/no_such_database_here\"\n"));
    let output = run(&["migrate"], &unknown.path, "");
    assert!(
        stderr(&output)
            .contains("database \"no_such_database_here\" does not exist: create it (`createdb "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn version_names_the_commit_and_build_date() {
    let output = command(&["--version"], None).output().unwrap();
    let line = stdout(&output);
    let rest = line
        .strip_prefix(&format!("latchkey {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{line}"));
    assert!(rest.contains(", built ") && rest.ends_with(")\n"), "{line}");
}

#[tokio::test]
async fn serve_speaks_https_when_tls_is_configured() {
    let port = free_port();
    let tls = TlsFiles::new(port);
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"https://localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\n{}",
        tls.section()
    ));
    let _server = Serving::start(&config.path);
    let http = tls.client.clone();
    let base = format!("https://localhost:{port}");
    wait_until_ok(&http, &format!("{base}/healthz"), Duration::from_secs(20)).await;
    let doc: serde_json::Value =
        crate::get_json(&http, &format!("{base}/.well-known/openid-configuration")).await;
    assert_eq!(doc["jwks_uri"], format!("{base}/.well-known/jwks.json"));
    // Plain HTTP on the TLS port gets no answer from the application.
    let plain = crate::client().get(format!("http://127.0.0.1:{port}/healthz")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

/// The JSON document a `--json` command printed.
fn json_of(output: &std::process::Output) -> serde_json::Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("not one JSON document ({error}): {}", stdout(output)))
}

/// `clients update` changes a client in place while the server runs: its secret, grants and
/// tokens stay, and the next requests follow the new registration (a removed scope is no
/// longer minted, a removed redirect URI receives no codes).
#[tokio::test]
async fn clients_update_changes_a_client_in_place_without_revoking_its_grants() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
         [[resources]]\nidentifier = \"https://photos.example.com\"\nscopes = [\"read:photos\", \"write:photos\"]\n\
         [[clients]]\nclient_id = \"fixed\"\nclient_secret = \"fixed-client-secret\"\ngrant_types = [\"client_credentials\"]\n\
         [[users]]\nusername = \"alice\"\npassword = \"alice-password\"\n"
    ));
    let added = json_of(&run(
        &[
            "clients",
            "add",
            "app",
            "--json",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "password",
            "--grant-type",
            "refresh_token",
            "--redirect-uri",
            "https://app.example.com/a",
            "--scope",
            "read:photos",
            "--scope",
            "write:photos",
            "--scope",
            "offline_access",
        ],
        &config.path,
        "",
    ));
    let secret = added["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(added["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(added["has_secret"], true);

    let _server = Serving::start(&config.path);
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let token = |form: Vec<(&'static str, String)>| {
        let (url, secret) = (format!("{base}/oauth/token"), secret.clone());
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            latchkey_testkit::fixtures::post_form(&url, Some(("app", &secret)), &form).await
        }
    };
    let (status, _, first) = token(vec![
        ("grant_type", "password".into()),
        ("username", "alice".into()),
        ("password", "alice-password".into()),
        ("scope", "read:photos write:photos offline_access".into()),
    ])
    .await;
    assert_eq!(status, 200, "{first}");

    let updated = json_of(&run(
        &[
            "clients",
            "update",
            "app",
            "--json",
            "--scope",
            "read:photos",
            "--scope",
            "offline_access",
            "--add-redirect-uri",
            "https://app.example.com/b",
            "--remove-redirect-uri",
            "https://app.example.com/a",
            "--name",
            "Photo App",
            "--refresh-grace-period",
            "30s",
        ],
        &config.path,
        "",
    ));
    assert_eq!(updated["redirect_uris"], serde_json::json!(["https://app.example.com/b"]));
    assert_eq!(updated["scopes"], serde_json::json!(["read:photos", "offline_access"]));
    assert_eq!(
        (updated["client_name"].as_str(), updated["refresh_grace_period"].as_str()),
        (Some("Photo App"), Some("30s"))
    );
    assert!(updated.get("client_secret").is_none(), "an update keeps the secret: {updated}");

    // The grant and its access token survive; the refresh mints only what is still registered.
    let introspected = latchkey_testkit::fixtures::post_form(
        &format!("{base}/oauth/introspect"),
        Some(("app", &secret)),
        &[("token", first["access_token"].as_str().unwrap())],
    )
    .await
    .2;
    assert_eq!(introspected["active"], true, "{introspected}");
    let (status, _, refreshed) = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", first["refresh_token"].as_str().unwrap().into()),
    ])
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], "read:photos offline_access");

    // The removed redirect URI gets an error page, never a redirect; the added one works.
    let authorize = |redirect: &str| {
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", redirect),
            ("scope", "read:photos"),
            ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        http.get(format!("{base}/authorize?{query}")).send()
    };
    let removed = authorize("https://app.example.com/a").await.unwrap();
    assert_eq!(removed.status(), 400);
    assert!(removed.headers().get("location").is_none());
    assert_eq!(authorize("https://app.example.com/b").await.unwrap().status(), 200);

    // Broken rules exit 2 naming the field; a config client is changed in the file.
    let invalid = run(
        &["clients", "update", "app", "--add-redirect-uri", "http://app.example.com/c"],
        &config.path,
        "",
    );
    assert_eq!(invalid.status.code(), Some(2), "{}", stderr(&invalid));
    assert!(stderr(&invalid).contains("client.redirect_uris[1]"), "{}", stderr(&invalid));
    let fixed = run(&["clients", "update", "fixed", "--name", "Fixed"], &config.path, "");
    assert_eq!(fixed.status.code(), Some(1));
    assert!(stderr(&fixed).contains("is defined in the config file"), "{}", stderr(&fixed));
    let bad_flag =
        run(&["clients", "update", "app", "--access-token-format", "paper"], &config.path, "");
    assert_eq!(bad_flag.status.code(), Some(2));

    // Scripts read one JSON document; people read a table with a header row.
    let list = json_of(&run(&["clients", "list", "--json"], &config.path, ""));
    let ids: Vec<&str> = list["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["app", "fixed"]);
    assert_eq!(list["clients"][1]["source"], "config");
    let table = stdout(&run(&["clients", "list"], &config.path, ""));
    assert_eq!(table.lines().next(), Some("CLIENT_ID\tTYPE\tGRANT_TYPES\tSOURCE"));
    let shown = json_of(&run(&["clients", "show", "app", "--json"], &config.path, ""));
    assert_eq!(shown["client_name"], "Photo App");
    assert!(!stdout(&run(&["clients", "show", "app"], &config.path, "")).contains(&secret));
}

/// A container's start: no `--config` (`LATCHKEY_CONFIG` names the file), the Kubernetes
/// service links of a Service named `latchkey`, and every secret from a `_file`.
#[tokio::test]
async fn serve_starts_from_the_environment_with_service_links_and_secret_files() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let config = file(
        "latchkey.toml",
        "[[clients]]\nclient_id = \"batch\"\nclient_secret_file = \"SECRET\"\ngrant_types = [\"client_credentials\"]\n\
         [[users]]\nusername = \"alice\"\npassword_file = \"PASSWORD\"\n",
    );
    let secret = file("client-secret", "a-client-secret-from-a-file\n");
    let password = file("password", "alice's password from a file\n");
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("SECRET", &secret)
            .replace("PASSWORD", &password),
    )
    .unwrap();
    let master = file("master-key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    let url =
        file("database-url", &format!("sqlite://{}\n", dir.path().join("latchkey.db").display()));
    let env = [
        ("LATCHKEY_CONFIG", config.clone()),
        ("LATCHKEY_ISSUER", format!("http://127.0.0.1:{port}")),
        ("LATCHKEY_LISTEN", format!("127.0.0.1:{port}")),
        ("LATCHKEY_MASTER_KEY_FILE", master),
        ("LATCHKEY_DATABASE__URL_FILE", url),
        ("LATCHKEY_LOG__LEVEL", "latchkey=debug,info".into()),
    ];
    let env: Vec<(&str, String)> = env
        .into_iter()
        .chain(crate::process::SERVICE_LINKS.iter().map(|(k, v)| (*k, (*v).to_owned())))
        .collect();
    let mut server = Serving::start_with_env(&env);
    let base = format!("http://127.0.0.1:{port}");
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/readyz"), Duration::from_secs(20)).await;
    let (status, _, body) = latchkey_testkit::fixtures::post_form(
        &format!("{base}/oauth/token"),
        Some(("batch", "a-client-secret-from-a-file")),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_ne!(status, 401, "the secret from the file authenticates: {body}");
    assert!(server.terminate(Duration::from_secs(15)).success());
    let logs = server.output();
    assert!(logs.contains("ignored LATCHKEY_SERVICE_HOST: a Kubernetes service link"), "{logs}");

    // The same environment with a misspelled section fails, naming the variable.
    let mut bad = command(&["check"], None);
    bad.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let output = bad.env("LATCHKEY_TOKEN__ACCESS_TOKEN_TTL", "5m").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "latchkey: config: environment variable LATCHKEY_TOKEN__ACCESS_TOKEN_TTL: unknown section \"token\", did you mean \"tokens\"?\n"
    );
    // A secret file that is missing is named with its key.
    let mut missing = command(&["check"], None);
    missing.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let output = missing.env("LATCHKEY_MASTER_KEY_FILE", "/run/secrets/absent").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("master_key_file: cannot read /run/secrets/absent"),
        "{}",
        stderr(&output)
    );
}

/// `latchkey check` loads the TLS files as `serve` does: unreadable, mismatched and expired
/// ones are refused with the key and the fix; an unknown log level is refused.
#[test]
fn check_loads_the_tls_files_and_refuses_a_bad_log_level() {
    let port = free_port();
    let good = TlsFiles::new(port);
    let other = TlsFiles::new(port);
    let config = |cert: &std::path::Path, key: &std::path::Path, extra: &str| {
        ConfigFile::sqlite(&format!(
            "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{extra}",
            cert.display(),
            key.display()
        ))
    };
    let ok = config(&good.cert, &good.key, "");
    let output = run(&["check"], &ok.path, "");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stdout(&output).contains("tls: certificate "), "{}", stdout(&output));

    let error_of = |config: &ConfigFile| {
        let output = run(&["check"], &config.path, "");
        assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
        stderr(&output)
    };
    let missing = config(&good.cert.with_file_name("absent.pem"), &good.key, "");
    assert!(
        error_of(&missing)
            .starts_with("latchkey: config: tls.cert: cannot read a PEM certificate from ")
    );
    let mismatched = config(&good.cert, &other.key, "");
    assert!(error_of(&mismatched).contains("tls.key: "), "{}", error_of(&mismatched));
    assert!(error_of(&mismatched).contains("does not fit the certificate"));

    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let expired_cert = params.self_signed(&key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, expired_cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    let expired = config(&cert_path, &key_path, "");
    assert!(
        error_of(&expired).contains("expired at 2021-01-01T00:00:00Z: renew it"),
        "{}",
        error_of(&expired)
    );
    // serve refuses it the same way.
    let served = run(&["serve"], &expired.path, "");
    assert_eq!(served.status.code(), Some(2));

    let loud = ConfigFile::sqlite("[log]\nlevel = \"loud\"\n");
    assert!(
        error_of(&loud).contains("log.level: \"loud\": \"loud\" is not a level"),
        "{}",
        error_of(&loud)
    );
    let directives = ConfigFile::sqlite("[log]\nlevel = \"latchkey=debug,warn\"\n");
    assert_eq!(run(&["check"], &directives.path, "").status.code(), Some(0));
}

/// The image's HEALTHCHECK: exit 0 while the configured server answers /healthz, else 1.
#[tokio::test]
async fn healthcheck_asks_the_configured_server() {
    let port = free_port();
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"http://127.0.0.1:{port}\"\nlisten = \"0.0.0.0:{port}\"\n"
    ));
    let down = run(&["healthcheck"], &config.path, "");
    assert_eq!(down.status.code(), Some(1), "nothing listens yet");
    let _server = Serving::start(&config.path);
    wait_until_ok(
        &crate::client(),
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(20),
    )
    .await;
    let up = run(&["healthcheck"], &config.path, "");
    assert!(up.status.success(), "{}", stderr(&up));
    assert_eq!(stdout(&up), format!("healthy: http://127.0.0.1:{port}/healthz\n"));
}
