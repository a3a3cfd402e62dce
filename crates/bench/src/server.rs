//! What the server says about itself on `/metrics`: CPU seconds, resident memory, open
//! files, connections and deliveries, read before and after a measurement.

use std::collections::HashMap;

use crate::{BenchError, Result, Target};

/// A scrape of the counters the reports use.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub cpu_seconds: f64,
    pub resident_bytes: f64,
    pub open_fds: f64,
    pub connections: f64,
    pub deliveries: f64,
    pub messages: f64,
}

/// Reads `/metrics` (on the server's metrics listener, `target.metrics`).
pub async fn sample(target: &Target) -> Result<Sample> {
    let text = reqwest::get(format!("{}/metrics", target.metrics))
        .await
        .map_err(|e| BenchError::Metrics(e.to_string()))?
        .text()
        .await
        .map_err(|e| BenchError::Metrics(e.to_string()))?;
    let mut values: HashMap<&str, f64> = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(value)) = (parts.next(), parts.next())
            && let Ok(v) = value.parse::<f64>()
        {
            // Labelled series of the same name are summed.
            *values
                .entry(name.split('{').next().unwrap_or(name))
                .or_default() += v;
        }
    }
    let get = |k: &str| values.get(k).copied().unwrap_or(0.0);
    Ok(Sample {
        cpu_seconds: values
            .get("palaver_process_cpu_seconds")
            .copied()
            .unwrap_or_else(|| get("process_cpu_seconds_total")),
        resident_bytes: get("process_resident_memory_bytes"),
        open_fds: get("process_open_fds"),
        connections: get("palaver_ws_connections"),
        deliveries: get("palaver_fanout_deliveries_total"),
        messages: get("palaver_messages_total"),
    })
}
