//! Whether what this node depends on answers: its engines (database, bus, cache) and the
//! disk under its data directory. `/readyz` asks about the engines; every `/metrics`
//! scrape asks about both and records the answers as gauges (`palaver_engine_up`,
//! `palaver_disk_free_bytes`), which the alert rules in `deploy/prometheus` read. So an
//! engine's reachability is measured in one place, the same way for the load balancer and
//! for the alerts.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use super::Core;
use crate::telemetry::metric;

/// How long a check waits for an engine: well inside Prometheus's scrape timeout (10 s by
/// default), so a hung engine reads as down instead of failing the whole scrape.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// One check of each engine; `Err` says why it did not answer.
#[derive(Debug)]
pub struct EngineHealth {
    pub store: Result<(), String>,
    pub bus: Result<(), String>,
    pub cache: Result<(), String>,
}

impl Core {
    /// Asks the store, the bus and the cache at once whether they answer, records each
    /// answer as `palaver_engine_up{role, engine}` and logs the ones that did not.
    pub async fn check_engines(&self) -> EngineHealth {
        let (store, bus, cache) = tokio::join!(
            within(self.store.ping()),
            within(self.bus.ping()),
            within(self.cache.ping()),
        );
        let health = EngineHealth { store, bus, cache };
        let config = &self.config;
        for (role, engine, outcome) in [
            ("store", config.store.kind(), &health.store),
            ("bus", config.bus.kind(), &health.bus),
            ("cache", config.cache.kind(), &health.cache),
        ] {
            let up = match outcome {
                Ok(()) => 1.0,
                Err(err) => {
                    tracing::warn!(role, engine, %err, "engine check failed");
                    0.0
                }
            };
            metrics::gauge!(metric::ENGINE_UP, "role" => role, "engine" => engine).set(up);
        }
        health
    }

    /// Records the free and total space of the data directory's file system (`dir="data"`:
    /// the database, keys) and of the one uploads stream to (`dir="uploads"`, which
    /// `media.min_free_disk_bytes` guards), and that floor. Usually one file system.
    pub async fn record_disk_space(&self) {
        metrics::gauge!(metric::DISK_FLOOR).set(self.config.media.min_free_disk_bytes as f64);
        let dirs = [
            ("data", self.config.data_dir.clone()),
            ("uploads", self.media_tmp.clone()),
        ];
        let measured = tokio::task::spawn_blocking(move || {
            dirs.map(|(name, dir)| (name, crate::files::disk_space(&dir)))
        })
        .await;
        let Ok(measured) = measured else { return };
        for (dir, space) in measured {
            match space {
                Ok(space) => {
                    metrics::gauge!(metric::DISK_FREE, "dir" => dir).set(space.free as f64);
                    metrics::gauge!(metric::DISK_SIZE, "dir" => dir).set(space.size as f64);
                }
                // The gauges keep their last value; the alert on a stale scrape is
                // the node's own `up`, and the log says why.
                Err(err) => tracing::warn!(dir, %err, "could not read free disk space"),
            }
        }
    }
}

/// `check`'s outcome, or a timeout after [`CHECK_TIMEOUT`].
async fn within<E: Display>(check: impl Future<Output = Result<(), E>>) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}
