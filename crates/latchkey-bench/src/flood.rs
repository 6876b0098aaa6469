//! The unwanted traffic of [`crate::scenarios::Scenario::UnderFlood`]: what a server must keep
//! answering beside.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::scenarios::{authorize_url, hidden};

/// What arrives beside [`crate::scenarios::Scenario::UnderFlood`]'s client-credentials requests.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flood {
    /// [`FLOOD_PER_SECOND`] wrong-password logins, each for a different made-up account from
    /// a different address, so each costs a hash.
    Logins,
    /// The same logins, each hung up on 10 ms after it is sent.
    AbandonedLogins,
    /// [`FLOOD_PER_SECOND`] wrong guesses for one account: all but one refused by its schedule.
    Guesses,
    /// [`FLOOD_PER_SECOND`] `/authorize` requests of 64 KiB of tiny parameters, the largest
    /// the body limit admits.
    LargestAuthorize,
}

/// The request rate of a [`Flood`].
const FLOOD_PER_SECOND: u64 = 200;

/// Sends [`FLOOD_PER_SECOND`] requests of `flood` until `stop` is set. Returns how many were
/// sent and how many were answered (any status) by the end.
pub(crate) async fn flood(
    kind: Flood,
    base: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(u64, u64)> {
    let browser = reqwest::Client::builder().cookie_store(true).build()?;
    let page = browser.get(authorize_url(&base, "bench-rs256")).send().await?.text().await?;
    let (csrf, request) = (hidden(&page, "csrf_token")?, hidden(&page, "request")?);
    let largest = "a=&".repeat(64 * 1024 / 3 - 1);
    let answered = Arc::new(AtomicU64::new(0));
    let mut sent = 0u64;
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / FLOOD_PER_SECOND));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    while !stop.load(Ordering::Relaxed) {
        ticks.tick().await;
        sent += 1;
        let username = match kind {
            Flood::Guesses => "bench".to_owned(),
            _ => format!("flood-{sent}"),
        };
        let form = [
            ("username", username),
            ("password", "not-the-password".to_owned()),
            ("csrf_token", csrf.clone()),
            ("request", request.clone()),
        ];
        // A different address each time (the bench's server trusts 127.0.0.1 as a proxy), as
        // a distributed attack would come, so the per-address budget does not stop the flood.
        let address = format!("10.{}.{}.{}", (sent >> 16) & 255, (sent >> 8) & 255, sent & 255);
        let (browser, base, answered) = (browser.clone(), base.clone(), answered.clone());
        let largest = largest.clone();
        tokio::spawn(async move {
            let request = match kind {
                Flood::LargestAuthorize => browser
                    .post(format!("{base}/authorize"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(largest),
                _ => browser.post(format!("{base}/login")).form(&form),
            };
            let sending = request.header("x-forwarded-for", address).send();
            if kind == Flood::AbandonedLogins {
                // Dropping the request future hangs up on the server.
                let _ = tokio::time::timeout(Duration::from_millis(10), sending).await;
            } else if sending.await.is_ok() {
                answered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    Ok((sent, answered.load(Ordering::Relaxed)))
}
