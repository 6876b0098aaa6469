//! `latchkey-bench`: starts `latchkey serve` pinned to CPU 0 on a fresh SQLite database, drives
//! scenarios against it over HTTP, and prints, per scenario, requests per second, latency
//! percentiles, errors, and successful operations per CPU-second of the server process (read
//! from `/proc/PID/stat`), the figure that holds on a noisy machine.
//!
//! Run it on the other core: `taskset -c 1 target/release/latchkey-bench [SECONDS] [CONCURRENCY]`
//! after `cargo build --release`.

mod flood;
mod scenarios;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The server under test.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Server CPU time (user + system) so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        let rest = stat.rsplit(')').next().context("unexpected /proc stat format")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
        Ok(ticks / 100.0)
    }
}

fn latchkey_binary() -> anyhow::Result<PathBuf> {
    if let Ok(path) = std::env::var("BENCH_LATCHKEY_BIN") {
        return Ok(path.into());
    }
    let beside = std::env::current_exe()?.with_file_name("latchkey");
    if beside.exists() {
        return Ok(beside);
    }
    bail!(
        "latchkey binary not found next to latchkey-bench: run `cargo build --release` or set BENCH_LATCHKEY_BIN"
    )
}

fn start_server() -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"error\"\n[http]\ntrusted_proxies = [\"127.0.0.1\"]\n{}\n[database]\nurl = \"sqlite://{}\"\n",
            scenarios::CONFIG,
            dir.path().join("bench.db").display()
        ),
    )?;
    let binary = latchkey_binary()?;
    let pinned = Command::new("taskset").arg("--version").stdout(Stdio::null()).status().is_ok();
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.arg("-c").arg("0").arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    let child = command.arg("--config").arg(&config).arg("serve").stdout(Stdio::null()).spawn()?;
    if !pinned {
        eprintln!("note: taskset not found; the server is not pinned to CPU 0");
    }
    Ok(Server { child, base, _dir: dir })
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the server did not become ready")
}

/// What one scenario measured.
pub(crate) struct Report {
    name: &'static str,
    ok: u64,
    errors: u64,
    elapsed: Duration,
    cpu: f64,
    latencies: Vec<Duration>,
}

impl Report {
    fn print(&mut self) {
        self.latencies.sort();
        let pct = |p: f64| {
            let index = ((self.latencies.len() as f64 * p) as usize)
                .min(self.latencies.len().saturating_sub(1));
            self.latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{:<24} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>12.0}",
            self.name,
            self.ok as f64 / self.elapsed.as_secs_f64(),
            pct(0.50),
            pct(0.90),
            pct(0.99),
            self.errors,
            if self.cpu > 0.0 { self.ok as f64 / self.cpu } else { 0.0 },
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let concurrency: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    // An optional third argument keeps only the scenarios whose name contains it.
    let only = args.get(3).map(String::as_str).unwrap_or("");
    let server = start_server()?;
    wait_ready(&server.base).await?;
    println!(
        "latchkey-bench: {seconds}s per scenario, {concurrency} concurrent, server pid {}",
        server.child.id()
    );
    println!(
        "{:<24} {:>9} {:>8} {:>8} {:>8} {:>7} {:>12}",
        "scenario", "ops/s", "p50 ms", "p90 ms", "p99 ms", "errors", "ops/CPU-s"
    );
    for scenario in scenarios::ALL.into_iter().filter(|s| s.name().contains(only)) {
        let mut report =
            scenarios::run(scenario, &server, Duration::from_secs(seconds), concurrency).await?;
        report.print();
    }
    Ok(())
}
