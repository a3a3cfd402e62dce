//! Latency histograms and the bench's clock.

use std::sync::OnceLock;
use std::time::Instant;

use hdrhistogram::Histogram;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Microseconds since the bench started; stamped into messages so receivers can measure.
pub fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

/// The instant `us` microseconds after the bench started.
pub fn instant_at(us: u64) -> tokio::time::Instant {
    tokio::time::Instant::from_std(epoch() + std::time::Duration::from_micros(us))
}

/// A histogram of microseconds, 1 µs to 10 minutes, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

/// Records a latency from the intended time `since_us` to now.
pub fn record_since(h: &mut Histogram<u64>, since_us: u64) {
    let _ = h.record(now_us().saturating_sub(since_us).max(1));
}

/// p50, p90, p99, p99.9 and max in milliseconds.
pub fn percentiles_ms(h: &Histogram<u64>) -> [f64; 5] {
    let ms = |v: u64| v as f64 / 1000.0;
    if h.is_empty() {
        return [0.0; 5];
    }
    [
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    ]
}
