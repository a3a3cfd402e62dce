//! What hostile logins cost the server (findings 2 and 6 of the hardening round in
//! docs/SECURITY.md), as resident memory before, at the peak of, and after two attacks,
//! while `/healthz` is polled:
//!
//! 1. **Long usernames.** Logins with unique usernames of `name_bytes` each (60 KB: just
//!    under the 64 KiB body limit), from one address. No account is needed: each one
//!    used to leave a limiter key of its full size behind.
//! 2. **Concurrent hashes.** Logins at once from as many loopback addresses (127.0.0.x,
//!    so no address limit applies twice), each costing one argon2id hash (19 MiB).
//!
//! Run it against a server with default settings (no `bench/server.toml`: that one turns
//! password hashing down and limits off, which is what is being measured).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::{BenchError, Report, Result, Target, server};

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoginsOptions {
    /// Logins with unique long usernames, from one address.
    pub long_names: usize,
    /// Bytes of each such username.
    pub name_bytes: usize,
    /// Of those, in flight at once.
    pub concurrency: usize,
    /// Logins at once, each from its own loopback address.
    pub concurrent_logins: usize,
    /// How many times the concurrent logins are repeated (memory that stays shows up).
    pub rounds: usize,
}

const COLUMNS: &[&str] = &[
    "attack",
    "requests",
    "401",
    "422",
    "429",
    "503",
    "other",
    "seconds",
    "RSS before MiB",
    "RSS peak MiB",
    "RSS after MiB",
    "growth MiB",
    "healthz max ms",
];

/// Answers by status.
#[derive(Default)]
struct Statuses {
    unauthorized: AtomicU64,
    invalid: AtomicU64,
    limited: AtomicU64,
    busy: AtomicU64,
    other: AtomicU64,
}

impl Statuses {
    fn count(&self, status: u16) {
        let slot = match status {
            401 => &self.unauthorized,
            422 => &self.invalid,
            429 => &self.limited,
            503 => &self.busy,
            _ => &self.other,
        };
        slot.fetch_add(1, Ordering::Relaxed);
    }

    fn get(&self) -> [f64; 5] {
        [
            &self.unauthorized,
            &self.invalid,
            &self.limited,
            &self.busy,
            &self.other,
        ]
        .map(|c| c.load(Ordering::Relaxed) as f64)
    }
}

/// Samples resident memory and `/healthz` latency every 20 ms until stopped.
struct Watch {
    peak_rss: Arc<AtomicU64>,
    healthz_max_us: Arc<AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Watch {
    fn start(target: &Target) -> Watch {
        let peak_rss = Arc::new(AtomicU64::new(0));
        let healthz_max_us = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let (target, peak, health) = (target.clone(), peak_rss.clone(), healthz_max_us.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let url = format!("{}/healthz", target.base);
            loop {
                let started = Instant::now();
                // A health check that takes over 10 s counts as 10 s.
                let ok = tokio::time::timeout(Duration::from_secs(10), http.get(&url).send())
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.status().is_success()));
                let took = if ok {
                    started.elapsed()
                } else {
                    Duration::from_secs(10)
                };
                health.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                if let Ok(s) = server::sample(&target).await {
                    peak.fetch_max(s.resident_bytes as u64, Ordering::Relaxed);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stopped.changed() => return,
                }
            }
        });
        Watch {
            peak_rss,
            healthz_max_us,
            stop,
            task,
        }
    }

    /// Stops; the peak resident memory (bytes) and the slowest health check (ms).
    async fn finish(self) -> (f64, f64) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        (
            self.peak_rss.load(Ordering::Relaxed) as f64,
            self.healthz_max_us.load(Ordering::Relaxed) as f64 / 1000.0,
        )
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Runs `attack`, watching memory and health; one row.
async fn measure<F: std::future::Future<Output = Result<()>>>(
    target: &Target,
    kind: f64,
    requests: usize,
    statuses: &Statuses,
    attack: F,
) -> Result<Vec<f64>> {
    let before = server::sample(target).await?.resident_bytes;
    let watch = Watch::start(target);
    let started = Instant::now();
    attack.await?;
    let seconds = started.elapsed().as_secs_f64();
    // Let what the server frees be freed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak, healthz_ms) = watch.finish().await;
    let after = server::sample(target).await?.resident_bytes;
    let mut row = vec![kind, requests as f64];
    row.extend(statuses.get());
    row.extend([
        seconds,
        before / MIB,
        peak.max(after) / MIB,
        after / MIB,
        (after - before) / MIB,
        healthz_ms,
    ]);
    Ok(row)
}

fn client(source: Option<std::net::IpAddr>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .local_address(source)
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| BenchError::Setup(e.to_string()))
}

/// Runs the scenario: row 1 is the long usernames, then one row per round of concurrent
/// logins.
pub async fn run(target: &Target, opts: &LoginsOptions) -> Result<Report> {
    let mut report = Report::new(
        "logins",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    let url = format!("{}/api/v1/auth/login", target.base);

    // 1. Unique long usernames from one address.
    let statuses = Statuses::default();
    let http = client(None)?;
    let padding = "u".repeat(opts.name_bytes.saturating_sub(12));
    let attack = async {
        futures::stream::iter(0..opts.long_names)
            .map(|i| {
                let body = serde_json::json!({
                    "username": format!("{i:010}{padding}"),
                    "password": "not the password",
                });
                let (http, url, statuses) = (&http, &url, &statuses);
                async move {
                    match http.post(url).json(&body).send().await {
                        Ok(resp) => statuses.count(resp.status().as_u16()),
                        Err(_) => statuses.count(0),
                    }
                }
            })
            .buffer_unordered(opts.concurrency.max(1))
            .collect::<Vec<()>>()
            .await;
        Ok(())
    };
    let row = measure(target, 1.0, opts.long_names, &statuses, attack).await?;
    report.rows.push(row);

    // 2. Logins at once, each from its own address, each one hash.
    let sources = crate::loopback_sources(opts.concurrent_logins);
    let clients: Vec<reqwest::Client> = sources
        .iter()
        .map(|s| client(Some(*s)))
        .collect::<Result<_>>()?;
    for round in 0..opts.rounds.max(1) {
        let statuses = Statuses::default();
        let attack = async {
            let logins = clients.iter().enumerate().map(|(i, http)| {
                let body = serde_json::json!({
                    "username": format!("nobody_{round}_{i}"),
                    "password": "not the password",
                });
                let (url, statuses) = (&url, &statuses);
                async move {
                    match http.post(url).json(&body).send().await {
                        Ok(resp) => statuses.count(resp.status().as_u16()),
                        Err(_) => statuses.count(0),
                    }
                }
            });
            futures::future::join_all(logins).await;
            Ok(())
        };
        let row = measure(target, 2.0, opts.concurrent_logins, &statuses, attack).await?;
        report.rows.push(row);
    }
    for row in &report.rows {
        if row[6] > 0.0 {
            report
                .problems
                .push(format!("{} answers that were no 401/422/429/503", row[6]));
        }
    }
    Ok(report)
}
