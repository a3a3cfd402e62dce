//! Decompression bombs: many concurrent uploads of a tiny file that claims a huge
//! picture, and what they cost the server. One row per bomb: how many uploads were
//! stored or refused, the server's resident memory before and at its peak during the
//! run (sampled from `/metrics` every 50 ms), and the slowest `/healthz` meanwhile.
//!
//! The builders are public: the server's tests upload the same bombs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use palaver_client::ClientError;

use crate::{BenchError, Report, Result, Target, server, setup};

/// A 35-byte GIF: a 7071×7071 logical screen (50 megapixels) around one 1×1 frame.
pub fn gif_bomb() -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&7071u16.to_le_bytes());
    gif.extend_from_slice(&7071u16.to_le_bytes());
    // A global colour table of two entries, background 0, no aspect ratio.
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    // The frame: at 0,0, 1×1, no local table; LZW code size 2, codes clear, 0, end;
    // then the trailer.
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, 0x3B]);
    gif
}

/// Writes a deflate bit stream (RFC 1951): values LSB first, Huffman codes MSB first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    used: u32,
}

impl Bits {
    fn put(&mut self, value: u32, n: u32) {
        for i in 0..n {
            if self.used.is_multiple_of(8) {
                self.out.push(0);
            }
            if (value >> i) & 1 == 1
                && let Some(last) = self.out.last_mut()
            {
                *last |= 1 << (self.used % 8);
            }
            self.used += 1;
        }
    }

    fn code(&mut self, code: u32, len: u32) {
        for i in (0..len).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    /// A run of `n` (11–138) zero code lengths: code-length symbol 18, coded "0".
    fn zeros(&mut self, n: u32) {
        self.code(0, 1);
        self.put(n - 11, 7);
    }
}

/// A `side`×`side` RGBA PNG of zeros, compressed as far as deflate goes (a 2-bit code
/// per 258 bytes): for 7071 (50 megapixels, 200 MB decoded) about 194 KB.
pub fn png_bomb(side: u32) -> Vec<u8> {
    let raw = u64::from(side) * (1 + u64::from(side) * 4);
    let copies = (raw - 1) / 258;
    let literals = raw - copies * 258;
    let mut b = Bits::default();
    // One final block with dynamic codes: literal 0 → "10", end of block → "11",
    // length 258 (symbol 285) → "0"; distances 1 and 2 → "0" and "1".
    b.put(1, 1);
    b.put(2, 2);
    b.put(286 - 257, 5);
    b.put(2 - 1, 5);
    b.put(18 - 4, 4);
    // Code-length code lengths, in the format's order 16 17 18 0 8 7 9 6 10 5 11 4 12
    // 3 13 2 14 1: symbol 18 gets 1 bit, 2 and 1 get 2 bits ("10" for 1, "11" for 2).
    for len in [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2] {
        b.put(len, 3);
    }
    b.code(0b11, 2); // literal 0: length 2
    b.zeros(138);
    b.zeros(117); // literals 1–255 unused
    b.code(0b11, 2); // end of block: length 2
    b.zeros(28); // lengths 257–284 unused
    b.code(0b10, 2); // 285: length 1
    b.code(0b10, 2); // distance 1: length 1
    b.code(0b10, 2); // distance 2: length 1
    for _ in 0..literals {
        b.code(0b10, 2);
    }
    for _ in 0..copies {
        b.code(0, 1);
        b.code(0, 1);
    }
    b.code(0b11, 2);
    let mut zlib = vec![0x78, 0xDA];
    zlib.extend_from_slice(&b.out);
    // Adler-32 of zeros: a stays 1, b grows by 1 per byte.
    let adler = (((raw % 65521) as u32) << 16) | 1;
    zlib.extend_from_slice(&adler.to_be_bytes());

    let mut ihdr = side.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&side.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(*b"IHDR", ihdr), (*b"IDAT", zlib), (*b"IEND", Vec::new())] {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&kind);
        crc.update(&data);
        png.extend_from_slice(&kind);
        png.extend_from_slice(&data);
        png.extend_from_slice(&crc.finalize().to_be_bytes());
    }
    png
}

/// Which bomb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Bomb {
    /// The 35-byte GIF.
    Gif,
    /// The 194 KB PNG of zeros.
    Png,
    /// A 4096×4096 PNG of zeros (65 KB): the largest the plausibility rule lets through
    /// by default, so each one is decoded (64 MiB) and only the decode budget bounds
    /// them.
    Sparse,
}

impl Bomb {
    fn file(self) -> (&'static str, &'static str, Vec<u8>) {
        match self {
            Bomb::Gif => ("bomb.gif", "image/gif", gif_bomb()),
            Bomb::Png => ("bomb.png", "image/png", png_bomb(7071)),
            Bomb::Sparse => ("sparse.png", "image/png", png_bomb(4096)),
        }
    }
}

/// What to run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BombsOptions {
    /// Concurrent uploads per row.
    pub uploads: usize,
    /// Users they are spread over (one user meets the per-user upload limit).
    pub users: usize,
    /// One row per bomb.
    pub bombs: Vec<Bomb>,
}

const COLUMNS: &[&str] = &[
    "file bytes",
    "uploads",
    "stored",
    "refused",
    "rss before MiB",
    "rss peak MiB",
    "rss growth MiB",
    "healthz max ms",
    "seconds",
];

/// Most of each refusal code seen, for the report's problems when unexpected.
fn refusal(err: &ClientError) -> String {
    match err {
        ClientError::Api { status, code, .. } => format!("{status} {code}"),
        other => other.to_string(),
    }
}

/// Samples the server's resident memory and times `/healthz` until `stop`; returns
/// the peak memory and the slowest health check (a failed one counts as `None`).
async fn watch(target: Target, stop: Arc<AtomicBool>) -> (f64, Option<Duration>) {
    let client = reqwest::Client::new();
    let (mut peak, mut slowest) = (0f64, Some(Duration::ZERO));
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let ok = client
            .get(format!("{}/healthz", target.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        let took = started.elapsed();
        slowest = if ok {
            slowest.map(|s| s.max(took))
        } else {
            None
        };
        if let Ok(s) = server::sample(&target).await {
            peak = peak.max(s.resident_bytes);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (peak, slowest)
}

/// Runs the scenario: for each bomb, `uploads` at once.
pub async fn run(target: &Target, opts: &BombsOptions) -> Result<Report> {
    let mut report = Report::new(
        "bombs",
        serde_json::to_value(opts).unwrap_or_default(),
        COLUMNS,
    );
    let users = setup::register_users(target, &setup::run_prefix(), opts.users.max(1)).await?;
    for bomb in &opts.bombs {
        let (name, mime, bytes) = bomb.file();
        let before = server::sample(target).await?.resident_bytes;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = tokio::spawn(watch(target.clone(), stop.clone()));
        let started = Instant::now();
        let answers = futures::future::join_all((0..opts.uploads).map(|i| {
            let api = users[i % users.len()].api.clone();
            let bytes = bytes.clone();
            async move { api.upload(name, mime, bytes).await }
        }))
        .await;
        let seconds = started.elapsed().as_secs_f64();
        // Let the last decodes show in memory before the watcher stops.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let (peak, slowest) = watcher
            .await
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let stored = answers.iter().filter(|a| a.is_ok()).count();
        let mut codes: Vec<String> = answers
            .iter()
            .filter_map(|a| a.as_ref().err().map(refusal))
            .collect();
        codes.sort();
        codes.dedup();
        if !codes.is_empty() {
            println!("{bomb:?}: refused with {}", codes.join(", "));
        }
        let peak = peak.max(before);
        let mib = |b: f64| b / f64::from(1u32 << 20);
        match slowest {
            Some(s) if s > Duration::from_secs(1) => report
                .problems
                .push(format!("{bomb:?}: /healthz took {} ms", s.as_millis())),
            None => report
                .problems
                .push(format!("{bomb:?}: /healthz failed during the run")),
            Some(_) => {}
        }
        report.rows.push(vec![
            bytes.len() as f64,
            opts.uploads as f64,
            stored as f64,
            (opts.uploads - stored) as f64,
            mib(before),
            mib(peak),
            mib(peak - before),
            slowest.map_or(f64::NAN, |s| s.as_secs_f64() * 1000.0),
            seconds,
        ]);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bombs_are_as_small_as_claimed() {
        assert_eq!(gif_bomb().len(), 35);
        let png = png_bomb(7071);
        assert!((190_000..200_000).contains(&png.len()), "{}", png.len());
    }
}
