//! `BENCH_PEER=SCRIPT`: the scenarios of [`scenarios::PEER`] against another authorization
//! server, run as `node SCRIPT` pinned to CPU 0 as latchkey is, so that both are measured
//! by the same generator and the same per-CPU-second count. The script listens on `PORT`
//! with latchkey's paths for the token endpoint and the JWKS, registers the benchmark's
//! refresh clients, and on `MINT_PORT` hands out a refresh token per request (used before
//! the measured window). `peer/oidc-provider.mjs` is node-oidc-provider's.

use std::path::Path;
use std::process::Stdio;

use crate::{Run, Server, free_port, on_cpu_zero, run_all, scenarios, wait_for};

/// Starts the peer and runs its scenarios.
pub(crate) async fn measure(script: &Path, run: &Run<'_>) -> anyhow::Result<()> {
    let (port, mint_port) = (free_port()?, free_port()?);
    let mut command = on_cpu_zero(Path::new("node"));
    let child = command
        .arg(script)
        .env("PORT", port.to_string())
        .env("MINT_PORT", mint_port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let server = Server { child, base, mint: Some(format!("http://127.0.0.1:{mint_port}")) };
    wait_for(&format!("{}/.well-known/openid-configuration", server.base)).await?;
    println!(
        "latchkey-bench: the peer {}, {}s per scenario, {} concurrent, pid {}",
        script.display(),
        run.seconds,
        run.concurrency,
        server.child.id()
    );
    run_all(&server, &scenarios::PEER, run.seconds, run.concurrency, run.only).await?;
    Ok(())
}
