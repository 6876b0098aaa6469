//! `latchkey-bench`: starts `latchkey serve` pinned to CPU 0 on a fresh SQLite database, drives
//! scenarios against it over HTTP, and prints, per scenario, requests per second, latency
//! percentiles, errors, and successful operations per CPU-second of the server process (read
//! from `/proc/PID/stat`), the figure that holds on a noisy machine.
//!
//! Run it on the other core: `taskset -c 1 target/release/latchkey-bench [SECONDS] [CONCURRENCY]`
//! after `cargo build --release`.

mod flood;
mod peer;
mod populate;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The server under test.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    /// A peer's address that hands out refresh tokens (see [`peer`]); latchkey's come from
    /// the password grant.
    pub(crate) mint: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// The server's resident memory now and at its peak, in MiB (`/proc/PID/status`).
    fn rss_mib(&self) -> anyhow::Result<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse::<f64>().ok())
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }

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

/// The database the server runs on.
pub(crate) enum Database {
    /// `bench.db` in the run's directory.
    Sqlite(PathBuf),
    /// A schema of its own on `BENCH_POSTGRES_URL`, dropped at the end.
    Postgres { base: String, schema: String },
}

impl Database {
    /// What the server's config names it by.
    fn url(&self) -> String {
        match self {
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
            Database::Postgres { base, schema } => {
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}options=-c%20search_path%3D{schema}")
            }
        }
    }

    /// Its size on disk, in MiB (PostgreSQL: the schema's tables with their indexes).
    async fn size_mib(&self) -> anyhow::Result<f64> {
        let bytes = match self {
            Database::Sqlite(path) => ["", "-wal"]
                .iter()
                .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
                .map(|m| m.len() as f64)
                .sum(),
            Database::Postgres { base, schema } => populate::postgres_size(base, schema).await?,
        };
        Ok(bytes / (1024.0 * 1024.0))
    }
}

/// Starts `latchkey serve` on `database`, its config in `dir`.
fn start_server(dir: &Path, database: &Database) -> anyhow::Result<Server> {
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let config = dir.join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"error\"\n[http]\ntrusted_proxies = [\"127.0.0.1\"]\n{}\n[database]\nurl = \"{}\"\n",
            scenarios::CONFIG,
            database.url()
        ),
    )?;
    let mut command = on_cpu_zero(&latchkey_binary()?);
    let child = command.arg("--config").arg(&config).arg("serve").stdout(Stdio::null()).spawn()?;
    Ok(Server { child, base, mint: None })
}

/// A free port on 127.0.0.1.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A command running `program` pinned to CPU 0 with `taskset`, if there is one.
fn on_cpu_zero(program: &Path) -> Command {
    if Command::new("taskset").arg("--version").stdout(Stdio::null()).status().is_ok() {
        let mut command = Command::new("taskset");
        command.arg("-c").arg("0").arg(program);
        command
    } else {
        eprintln!("note: taskset not found; the server is not pinned to CPU 0");
        Command::new(program)
    }
}

async fn wait_ready(base: &str) -> anyhow::Result<()> {
    wait_for(&format!("{base}/readyz")).await
}

/// Waits until `url` answers 200.
async fn wait_for(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    while Instant::now() < deadline {
        if let Ok(response) = http.get(url).send().await
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
    /// The latency at percentile `p` (0 to 1), in milliseconds; the latencies are sorted.
    fn percentile_ms(&self, p: f64) -> f64 {
        let index = ((self.latencies.len() as f64 * p) as usize)
            .min(self.latencies.len().saturating_sub(1));
        self.latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }

    fn p99_ms(&self) -> f64 {
        self.percentile_ms(0.99)
    }

    /// Successful operations per CPU-second of the server.
    fn per_cpu_second(&self) -> f64 {
        if self.cpu > 0.0 { self.ok as f64 / self.cpu } else { 0.0 }
    }

    fn print(&mut self) {
        self.print_as(self.name);
    }

    /// One line, under `label`.
    fn print_as(&mut self, label: &str) {
        self.latencies.sort();
        println!(
            "{:<24} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>12.0}",
            label,
            self.ok as f64 / self.elapsed.as_secs_f64(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.90),
            self.percentile_ms(0.99),
            self.errors,
            self.per_cpu_second(),
        );
    }
}

fn print_header() {
    println!(
        "{:<24} {:>9} {:>8} {:>8} {:>8} {:>7} {:>12}",
        "scenario", "ops/s", "p50 ms", "p90 ms", "p99 ms", "errors", "ops/CPU-s"
    );
}

/// Runs those of `scenarios` chosen by `only` against `server`; their reports.
async fn run_all(
    server: &Server,
    scenarios: &[scenarios::Scenario],
    seconds: u64,
    concurrency: usize,
    only: &str,
) -> anyhow::Result<Vec<Report>> {
    print_header();
    let mut reports = Vec::new();
    for &scenario in scenarios.iter().filter(|s| s.name().contains(only)) {
        let mut report =
            scenarios::run(scenario, server, Duration::from_secs(seconds), concurrency).await?;
        report.print();
        reports.push(report);
    }
    Ok(reports)
}

/// Starts the server and waits until it is ready; how long that took.
async fn start_ready(dir: &Path, database: &Database) -> anyhow::Result<(Server, Duration)> {
    let started = Instant::now();
    let server = start_server(dir, database)?;
    wait_ready(&server.base).await?;
    Ok((server, started.elapsed()))
}

/// One line on the database and the server: startup time, resident memory, database size.
async fn describe(
    label: &str,
    server: &Server,
    startup: Duration,
    database: &Database,
) -> anyhow::Result<()> {
    let (rss, peak) = server.rss_mib()?;
    println!(
        "{label}: startup {:.2} s, RSS {rss:.0} MiB (peak {peak:.0} MiB), database {:.1} MiB",
        startup.as_secs_f64(),
        database.size_mib().await?
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let concurrency: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(8);
    // An optional third argument keeps only the scenarios whose name contains it.
    let only = args.get(3).map(String::as_str).unwrap_or("");
    let run = Run { seconds, concurrency, only };
    // BENCH_PEER=SCRIPT: the scenarios a peer supports, against `node SCRIPT` instead.
    if let Ok(script) = std::env::var("BENCH_PEER") {
        return peer::measure(Path::new(&script), &run).await;
    }
    // BENCH_POPULATE=SCALE: the same scenarios on a database of a year's use times SCALE
    // (1 = 1 M users, 5 M grants, 8.6 M refresh tokens; see `populate`), beside an empty one.
    let populate: Option<f64> =
        std::env::var("BENCH_POPULATE").ok().map(|s| s.parse()).transpose()?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    // BENCH_POSTGRES_URL: the server runs on PostgreSQL, in a schema of its own.
    let mut databases = Vec::new();
    for dir in &dirs {
        databases.push(match std::env::var("BENCH_POSTGRES_URL") {
            Ok(base) => Database::Postgres { schema: populate::create_schema(&base).await?, base },
            Err(_) => Database::Sqlite(dir.path().join("bench.db")),
        });
    }
    let empty = (dirs[0].path(), &databases[0]);
    let measured = match populate {
        None => measure_one(empty, &run).await,
        Some(scale) => {
            measure_side_by_side(empty, (dirs[1].path(), &databases[1]), scale, &run).await
        }
    };
    for database in &databases {
        if let Database::Postgres { base, schema } = database {
            populate::drop_schema(base, schema).await?;
        }
    }
    measured
}

/// What to run: seconds per scenario, connections, and the scenarios whose name contains
/// `only`.
struct Run<'a> {
    seconds: u64,
    concurrency: usize,
    only: &'a str,
}

/// The scenarios on one empty database.
async fn measure_one((dir, database): (&Path, &Database), run: &Run<'_>) -> anyhow::Result<()> {
    let (server, startup) = start_ready(dir, database).await?;
    println!(
        "latchkey-bench: {}s per scenario, {} concurrent, server pid {}",
        run.seconds,
        run.concurrency,
        server.child.id()
    );
    describe("empty database", &server, startup, database).await?;
    run_all(&server, &scenarios::ALL, run.seconds, run.concurrency, run.only).await?;
    describe("empty database, after the scenarios", &server, startup, database).await
}

/// The pause after each run of a side-by-side measurement.
const SETTLE: Duration = Duration::from_secs(2);

/// Fills the second database, then runs every scenario on the empty database and at once on
/// the large one, scenario by scenario, so the machine's drift during the run touches both
/// alike.
async fn measure_side_by_side(
    (empty_dir, empty_db): (&Path, &Database),
    (large_dir, large_db): (&Path, &Database),
    scale: f64,
    run: &Run<'_>,
) -> anyhow::Result<()> {
    // The server creates the schema and the benchmark's clients; populate adds the rest.
    drop(start_ready(large_dir, large_db).await?);
    let started = Instant::now();
    let backlog = std::env::var("BENCH_BACKLOG").is_ok_and(|v| v == "1");
    let shape = populate::Shape::scaled(scale, backlog);
    match large_db {
        Database::Sqlite(path) => populate::sqlite(path, shape)?,
        Database::Postgres { base, schema } => populate::postgres(base, schema, shape).await?,
    }
    // Written pages still on their way to the disk would slow whatever runs next.
    Command::new("sync").status()?;
    println!("populated (scale {scale}) in {:.0} s", started.elapsed().as_secs_f64());
    let (large, large_startup) = start_ready(large_dir, large_db).await?;
    let (empty, empty_startup) = start_ready(empty_dir, empty_db).await?;
    println!(
        "latchkey-bench: {}s per scenario, {} concurrent, each scenario on the empty database (server pid {}) and then on the large one (pid {})",
        run.seconds,
        run.concurrency,
        empty.child.id(),
        large.child.id()
    );
    describe("empty database", &empty, empty_startup, empty_db).await?;
    describe("large database", &large, large_startup, large_db).await?;
    print_header();
    let mut rows = Vec::new();
    let seconds = Duration::from_secs(run.seconds);
    for scenario in scenarios::ALL.into_iter().filter(|s| s.name().contains(run.only)) {
        // Each run is followed by a pause, so that the server's background work after it (the
        // WAL checkpoint, the purge) does not fall into the other server's window.
        let mut on_empty = scenarios::run(scenario, &empty, seconds, run.concurrency).await?;
        tokio::time::sleep(SETTLE).await;
        let mut on_large = scenarios::run(scenario, &large, seconds, run.concurrency).await?;
        tokio::time::sleep(SETTLE).await;
        on_empty.print_as(&format!("{}, empty", scenario.name()));
        on_large.print_as(&format!("{}, large", scenario.name()));
        rows.push((on_empty, on_large));
    }
    describe("empty database, after the scenarios", &empty, empty_startup, empty_db).await?;
    describe("large database, after the scenarios", &large, large_startup, large_db).await?;
    println!(
        "{:<24} {:>12} {:>12} {:>7} {:>9} {:>9}",
        "scenario", "empty ops/CPU-s", "large", "ratio", "p99 empty", "p99 large"
    );
    for (e, l) in &rows {
        let (e_rate, l_rate) = (e.per_cpu_second(), l.per_cpu_second());
        println!(
            "{:<24} {:>12.0} {:>12.0} {:>6.0}% {:>9.2} {:>9.2}",
            e.name,
            e_rate,
            l_rate,
            if e_rate > 0.0 { 100.0 * l_rate / e_rate } else { 0.0 },
            e.p99_ms(),
            l.p99_ms(),
        );
    }
    Ok(())
}
