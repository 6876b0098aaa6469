//! Running the real `latchkey` binary: admin commands and `serve` as a child process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// What a Kubernetes Service named `latchkey` puts in the environment of every pod.
pub const SERVICE_LINKS: [(&str, &str); 8] = [
    ("LATCHKEY_SERVICE_HOST", "10.96.0.12"),
    ("LATCHKEY_SERVICE_PORT", "8080"),
    ("LATCHKEY_SERVICE_PORT_HTTP", "8080"),
    ("LATCHKEY_PORT", "tcp://10.96.0.12:8080"),
    ("LATCHKEY_PORT_8080_TCP", "tcp://10.96.0.12:8080"),
    ("LATCHKEY_PORT_8080_TCP_PROTO", "tcp"),
    ("LATCHKEY_PORT_8080_TCP_PORT", "8080"),
    ("LATCHKEY_PORT_8080_TCP_ADDR", "10.96.0.12"),
];

/// A config file in its own directory.
pub struct ConfigFile {
    pub path: PathBuf,
    pub dir: tempfile::TempDir,
}

impl ConfigFile {
    pub fn new(text: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        std::fs::write(&path, text).unwrap();
        ConfigFile { path, dir }
    }

    /// `extra` (top-level keys first, then any sections), on an SQLite file in the directory.
    pub fn sqlite(extra: &str) -> ConfigFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latchkey.toml");
        let db = dir.path().join("latchkey.db");
        std::fs::write(
            &path,
            format!("{extra}\n[database]\nurl = \"sqlite://{}\"\n", db.display()),
        )
        .unwrap();
        ConfigFile { path, dir }
    }
}

/// The binary with a clean `LATCHKEY_*` environment, so the caller's shell cannot leak in.
pub fn command(args: &[&str], config: Option<&Path>) -> Command {
    let mut command = clean(Command::new(env!("CARGO_BIN_EXE_latchkey")));
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    command.args(args);
    command
}

/// `command` without the caller's `LATCHKEY_*` variables, colours or log filter.
fn clean(mut command: Command) -> Command {
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY_") {
            command.env_remove(name);
        }
    }
    command.env("NO_COLOR", "1").env_remove("RUST_LOG");
    command
}

/// Runs to completion with `stdin` piped in.
pub fn run(args: &[&str], config: &Path, stdin: &str) -> Output {
    let mut child = command(args, Some(config))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A free port on 127.0.0.1 (bound and released; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `latchkey serve` child process that is killed when dropped. Its stdout and stderr are
/// read as it writes them, so a chatty server never blocks on a full pipe.
pub struct Serving {
    pub child: Child,
    drains: Vec<std::thread::JoinHandle<Vec<u8>>>,
}

/// Reads `from` to its end on a thread of its own.
fn drain(mut from: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = from.read_to_end(&mut bytes);
        bytes
    })
}

impl Serving {
    fn watch(mut child: Child) -> Serving {
        let mut drains = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            drains.push(drain(stderr));
        }
        if let Some(stdout) = child.stdout.take() {
            drains.push(drain(stdout));
        }
        Serving { child, drains }
    }

    pub fn start(config: &Path) -> Serving {
        let child = command(&["serve"], Some(config))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Serving::watch(child)
    }

    /// `latchkey serve` with no `--config`, only the environment `env` (and a clean one
    /// otherwise), as a container starts it.
    pub fn start_with_env(env: &[(&str, String)]) -> Serving {
        let mut command = command(&["serve"], None);
        command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        Serving::watch(child)
    }

    /// Everything the server wrote, stderr first; call it once the server has exited.
    pub fn output(&mut self) -> String {
        let bytes: Vec<u8> =
            self.drains.drain(..).flat_map(|drain| drain.join().unwrap_or_default()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// `latchkey serve` with its soft and hard open-file limits set to `files`.
    pub fn start_with_file_limit(config: &Path, files: u32) -> Serving {
        let script = format!("ulimit -n {files} && exec \"$0\" --config \"$1\" serve");
        let child = clean(Command::new("sh"))
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_latchkey"))
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Serving::watch(child)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not stop within {within:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `url` until it answers 200 or `within` passes.
pub async fn wait_until_ok(client: &reqwest::Client, url: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{url} did not answer 200 within {within:?}");
}

/// A self-signed certificate for `localhost` in files, and a client that trusts it and sends
/// `localhost` to 127.0.0.1:`port`.
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl TlsFiles {
    pub fn new(port: u16) -> TlsFiles {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert_path, cert.cert.pem()).unwrap();
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
        let root = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .build()
            .unwrap();
        TlsFiles { cert: cert_path, key: key_path, client, _dir: dir }
    }

    /// The `[tls]` section naming the files.
    pub fn section(&self) -> String {
        format!("[tls]\ncert = \"{}\"\nkey = \"{}\"\n", self.cert.display(), self.key.display())
    }
}
