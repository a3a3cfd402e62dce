//! The Palaver load generator as a library: each scenario is a function that drives a
//! running server over its real protocol and returns a [`Report`]. The `palaver-bench`
//! binary wraps them; the test suite runs a tiny version of each so the tool never rots.
//!
//! Everything stays on loopback, bounded in count and time, and stops by itself.

pub mod fleet;
pub mod report;
pub mod scenarios;
pub mod server;
pub mod setup;
pub mod stats;

pub use report::Report;

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] palaver_client::ClientError),
    #[error("server metrics: {0}")]
    Metrics(String),
    #[error("{0}")]
    Setup(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, BenchError>;

/// Where the server is and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `http://127.0.0.1:8080`
    pub base: String,
    /// Where the server serves `/metrics` (its `metrics_listen`), e.g. `http://127.0.0.1:9090`.
    pub metrics: String,
    /// Local addresses to spread connections over (127.0.0.1, 127.0.0.2, …).
    pub sources: Vec<std::net::IpAddr>,
    /// Show progress bars (off in tests).
    pub progress: bool,
}

impl Target {
    /// A server at `base` whose `/metrics` is at `metrics`.
    pub fn new(base: &str, metrics: &str) -> Target {
        Target {
            base: base.trim_end_matches('/').to_owned(),
            metrics: metrics.trim_end_matches('/').to_owned(),
            sources: vec![[127, 0, 0, 1].into()],
            progress: false,
        }
    }

    /// The `i`th connection's source address.
    pub fn source(&self, i: usize) -> Option<std::net::IpAddr> {
        if self.sources.len() <= 1 {
            None
        } else {
            Some(self.sources[i % self.sources.len()])
        }
    }
}

/// `k` loopback source addresses starting at 127.0.0.1.
pub fn loopback_sources(k: usize) -> Vec<std::net::IpAddr> {
    (0..k.max(1))
        .map(|i| std::net::IpAddr::from([127, 0, (i / 250) as u8, (i % 250 + 1) as u8]))
        .collect()
}
