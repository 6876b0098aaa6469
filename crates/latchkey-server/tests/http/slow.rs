//! Slow clients against a real `latchkey serve`, on plain HTTP and on TLS: a connection that
//! sends nothing, one that trickles its headers and an idle kept-alive one are closed within
//! the configured timeouts while normal requests keep being served, and more slow connections
//! than the process has descriptors for cannot lock anyone out.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::process::{ConfigFile, Serving, TlsFiles, free_port, wait_until_ok};

const LIMITS: &str = "[limits]\nheader_read_timeout = \"1s\"\nidle_timeout = \"2s\"\n";
/// The header-read timeout above, and how late a close may come after it on a busy machine.
const HEADER_TIMEOUT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(1500);

/// Waits until the server closes `stream` (EOF or reset), reading and discarding what it
/// sends; returns how long that took, or `None` if it stayed open for `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        let left = within.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// The three kinds of slow connection, each closed within the header timeout, while a normal
/// client is served throughout. Returns nothing; panics with what stayed open.
async fn slow_connections_are_closed(port: u16, http: reqwest::Client, base: String) {
    let limit = HEADER_TIMEOUT + SLACK;
    // Sends nothing at all.
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    // Sends a request line, then a header byte every 200 ms, never finishing.
    let mut trickling = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let trickle = tokio::spawn(async move {
        let started = Instant::now();
        if trickling.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.is_err() {
            return Some(started.elapsed());
        }
        while started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if trickling.write_all(b"a").await.is_err() {
                return Some(started.elapsed());
            }
            let mut byte = [0u8; 1];
            if let Ok(Ok(0) | Err(_)) =
                tokio::time::timeout(Duration::from_millis(1), trickling.read(&mut byte)).await
            {
                return Some(started.elapsed());
            }
        }
        None
    });
    // Normal requests keep being answered meanwhile.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < limit {
        let response = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let silent_closed = closed_within(&mut silent, Duration::from_millis(100)).await;
    let trickle_closed = trickle.await.unwrap();
    eprintln!(
        "{served} normal requests served; silent connection closed: {silent_closed:?} after the wait, trickling one after {trickle_closed:?}"
    );
    assert!(
        silent_closed.is_some(),
        "a connection that sent nothing is still open after {limit:?}"
    );
    assert!(
        trickle_closed.is_some_and(|took| took < limit + Duration::from_millis(500)),
        "a connection trickling its headers was not closed in time: {trickle_closed:?}"
    );
    assert!(served >= 5, "normal requests were held up: {served} served");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_on_plain_http() {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"error\"\n{LIMITS}"
    ));
    let _server = Serving::start(&config.path);
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/healthz"), Duration::from_secs(20)).await;
    slow_connections_are_closed(port, http, base).await;

    // A kept-alive connection that sends no next request is closed too.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 1024];
    let read = kept.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answer));
    let closed = closed_within(&mut kept, HEADER_TIMEOUT + SLACK).await;
    assert!(closed.is_some(), "an idle kept-alive connection stayed open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_on_tls() {
    let port = free_port();
    let tls = TlsFiles::new(port);
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"https://localhost:{port}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"error\"\n{}{LIMITS}",
        tls.section()
    ));
    let _server = Serving::start(&config.path);
    let http = tls.client.clone();
    let base = format!("https://localhost:{port}");
    wait_until_ok(&http, &format!("{base}/healthz"), Duration::from_secs(20)).await;
    // On TLS the silent and trickling connections never finish the handshake.
    slow_connections_are_closed(port, http, base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_slow_connections_than_descriptors_do_not_lock_out_normal_clients() {
    const FILES: u32 = 256;
    const SLOW: usize = 300;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let config = ConfigFile::sqlite(&format!(
        "issuer = \"{base}\"\nlisten = \"127.0.0.1:{port}\"\n[log]\nlevel = \"error\"\n{LIMITS}"
    ));
    let mut server = Serving::start_with_file_limit(&config.path, FILES);
    let http = crate::client();
    wait_until_ok(&http, &format!("{base}/healthz"), Duration::from_secs(20)).await;
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ").await.unwrap();
        slow.push(stream);
    }
    // A normal client gets through within a few header timeouts, as slots free up.
    let started = Instant::now();
    let answered =
        tokio::time::timeout(Duration::from_secs(10), http.get(format!("{base}/healthz")).send())
            .await;
    let took = started.elapsed();
    eprintln!("{SLOW} slow connections held; a normal request was answered after {took:?}");
    assert!(
        matches!(&answered, Ok(Ok(response)) if response.status() == 200),
        "a normal request was not served beside {SLOW} slow connections: {answered:?}"
    );
    drop(slow);
    assert!(server.child.try_wait().unwrap().is_none(), "the server exited");
}
