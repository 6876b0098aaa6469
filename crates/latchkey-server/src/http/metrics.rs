//! `/metrics` in the Prometheus text format, and the per-request counters behind it.
//!
//! One recorder per process (the `metrics` facade is global); every node in a test process
//! shares it. Labels are bounded: the endpoint is the route's pattern (or `unmatched`), never
//! the raw path, so a scanner cannot grow the label set; token errors are labelled by their
//! RFC 6749 §5.2 code. Every metric has a `# HELP` line, durations are histograms (buckets
//! that aggregate across nodes, not per-node quantiles), and every counter is present at zero
//! from the start, so that `rate()` and alerts see a series before its first event.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use latchkey::model::GrantType;
use latchkey::oauth::ErrorCode;
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram buckets in seconds: from a cached JWKS answer to a slow argon2 sign-in.
const BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The codes the token endpoint answers errors with (RFC 6749 §5.2, RFC 8707 §2, and 5xx).
const TOKEN_ERRORS: [ErrorCode; 9] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::InvalidTarget,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
];

/// The process's recorder, installed on first use.
pub(crate) fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(&BUCKETS) {
            Ok(builder) => builder,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be empty");
        }
        describe();
        handle
    })
}

/// `# HELP` for every metric, and every counter at zero.
fn describe() {
    let counters: [(&'static str, &'static str); 10] = [
        ("latchkey_http_requests_total", "HTTP requests answered, by route pattern and status"),
        ("latchkey_tokens_issued_total", "token responses issued, by grant type"),
        ("latchkey_token_errors_total", "token endpoint errors, by RFC 6749 error code"),
        ("latchkey_login_failures_total", "sign-ins refused for a wrong username or password"),
        ("latchkey_client_auth_failures_total", "failed client authentications"),
        (
            "latchkey_refresh_reuse_total",
            "rotated refresh tokens presented again (families revoked)",
        ),
        ("latchkey_code_replays_total", "authorization codes presented again (grants revoked)"),
        ("latchkey_throttled_total", "attempts refused by the throttle, by what was throttled"),
        ("latchkey_shed_total", "password checks shed because the hashing queue was full"),
        (
            "latchkey_password_hash_upgrades_total",
            "password hashes upgraded to argon2id at sign-in",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_counter!("latchkey_purged_rows_total", Unit::Count, "expired rows purged, by table");
    for name in [
        "latchkey_login_failures_total",
        "latchkey_client_auth_failures_total",
        "latchkey_refresh_reuse_total",
        "latchkey_code_replays_total",
        "latchkey_password_hash_upgrades_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    for grant in GrantType::ALL {
        metrics::counter!("latchkey_tokens_issued_total", "grant_type" => grant.as_str())
            .absolute(0);
    }
    for code in TOKEN_ERRORS {
        metrics::counter!("latchkey_token_errors_total", "error" => code.as_str()).absolute(0);
    }
    for kind in ["login", "client", "address"] {
        metrics::counter!("latchkey_throttled_total", "kind" => kind).absolute(0);
    }
    for kind in ["login", "client"] {
        metrics::counter!("latchkey_shed_total", "kind" => kind).absolute(0);
    }
    for table in [
        "authorization_codes",
        "sessions",
        "access_tokens",
        "client_assertions",
        "login_attempts",
        "nodes",
        "grants",
        "refresh_tokens",
    ] {
        metrics::counter!("latchkey_purged_rows_total", "table" => table).absolute(0);
    }
    describe_histogram!(
        "latchkey_http_request_duration_seconds",
        Unit::Seconds,
        "time to answer an HTTP request, by route pattern"
    );
    describe_histogram!(
        "latchkey_store_operation_duration_seconds",
        Unit::Seconds,
        "time of a database operation, by operation"
    );
    describe_histogram!(
        "latchkey_purge_batch_seconds",
        Unit::Seconds,
        "time of one purge batch, by table"
    );
    let gauges: [(&'static str, &'static str); 12] = [
        ("latchkey_build_info", "the running build: version and commit as labels, value 1"),
        ("latchkey_signing_keys", "signing keys, by state"),
        (
            "latchkey_signing_key_age_seconds",
            "age of the current signing key, by purpose and algorithm",
        ),
        ("latchkey_clock_drift_seconds", "this node's clock minus the database's"),
        ("latchkey_purge_run_seconds", "time of the last purge run"),
        ("latchkey_sqlite_wal_bytes", "size of the SQLite write-ahead log"),
        ("process_cpu_seconds_total", "user and system CPU time of the process"),
        ("process_resident_memory_bytes", "resident memory of the process"),
        ("process_virtual_memory_bytes", "virtual memory of the process"),
        ("process_open_fds", "open file descriptors"),
        ("process_max_fds", "the open-file limit"),
        ("process_start_time_seconds", "when the process started, unix seconds"),
    ];
    for (name, help) in gauges {
        describe_gauge!(name, help);
    }
    metrics::gauge!(
        "latchkey_build_info",
        "version" => crate::build::VERSION,
        "commit" => crate::build::COMMIT
    )
    .set(1.0);
    metrics::gauge!("process_start_time_seconds").set(process::start_time());
}

/// GET /metrics.
pub(super) async fn render() -> Response {
    process::record();
    let mut response = handle().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Whether the access log is on (`[log] access`), set once when the router is built.
static ACCESS_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Switches the access log on or off for this process.
pub(super) fn access_log(on: bool) {
    ACCESS_LOG.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Counts every request by endpoint and status, and times it; with the access log on, logs
/// it (the route's pattern, never the path's values or the query).
pub(super) async fn track(request: Request, next: Next) -> Response {
    let endpoint = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method =
        ACCESS_LOG.load(std::sync::atomic::Ordering::Relaxed).then(|| request.method().clone());
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(method) = method {
        tracing::info!(
            target: "latchkey::access",
            %method,
            route = %endpoint,
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
    let status = response.status().as_u16().to_string();
    metrics::counter!("latchkey_http_requests_total", "endpoint" => endpoint.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("latchkey_http_request_duration_seconds", "endpoint" => endpoint)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Counts the token endpoint's errors by code (client authentication's too, which fail before
/// the handler): the error responses carry their code as an extension.
pub(super) async fn count_token_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(super::error::SentError(code)) = response.extensions().get() {
        metrics::counter!("latchkey_token_errors_total", "error" => code.as_str()).increment(1);
    }
    response
}

/// The standard `process_*` metrics, read from `/proc` at each scrape (Linux).
mod process {
    use std::sync::OnceLock;

    fn started() -> &'static (std::time::Instant, f64) {
        static STARTED: OnceLock<(std::time::Instant, f64)> = OnceLock::new();
        STARTED.get_or_init(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            (std::time::Instant::now(), now)
        })
    }

    /// When the metrics started: the process's start, to within its boot.
    pub(super) fn start_time() -> f64 {
        started().1
    }

    pub(super) fn record() {
        let _ = started();
        let ticks = rustix::param::clock_ticks_per_second() as f64;
        let page = rustix::param::page_size() as f64;
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = stat
                .rsplit_once(')')
                .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
            if let (Some(user), Some(system)) = (field(14), field(15)) {
                metrics::gauge!("process_cpu_seconds_total").set((user + system) / ticks);
            }
        }
        if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
            let mut pages = statm.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0));
            let (size, resident) = (pages.next().unwrap_or(0.0), pages.next().unwrap_or(0.0));
            metrics::gauge!("process_virtual_memory_bytes").set(size * page);
            metrics::gauge!("process_resident_memory_bytes").set(resident * page);
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("process_open_fds").set(entries.count() as f64);
        }
        if let Ok(limit) =
            rustix::process::getrlimit(rustix::process::Resource::Nofile).current.ok_or(())
        {
            metrics::gauge!("process_max_fds").set(limit as f64);
        }
    }
}
