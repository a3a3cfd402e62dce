//! `[link_previews]`: the cards the server reads from the pages messages link to
//! (docs/CONFIGURATION.md, "Link previews").

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[link_previews]`: whether the server reads pages that messages link to, and the
/// bounds of every fetch.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkPreviewConfig {
    /// Read previews at all. Default true.
    pub enabled: bool,
    /// How long a URL's preview is reused before the page is read again, seconds.
    /// Default 86400.
    pub cache_ttl_secs: u64,
    /// How long a URL whose page could not be read (refused, too slow, not HTML, no
    /// title…) is left alone, seconds. Default 600.
    pub failure_ttl_secs: u64,
    /// Most bytes of a page read; a page's card is read from what arrived by then.
    /// Default 524288 (512 KiB).
    pub max_html_bytes: u64,
    /// Largest picture fetched for a card, bytes; a larger one is left out. 0: no
    /// pictures. Default 2097152 (2 MiB).
    pub max_image_bytes: u64,
    /// The time one preview may take, page and picture together, redirects and DNS
    /// included, ms; past it the preview fails (or goes without its picture). Default 3000.
    pub timeout_ms: u64,
    /// Redirects followed for one page or picture, each checked by the SSRF guard.
    /// Default 5.
    pub max_redirects: usize,
    /// Previews this node reads at once; the others wait in the queue. Default 8.
    pub max_concurrent_fetches: usize,
    /// Messages waiting for a preview on this node; past it new ones get none
    /// (counted in `palaver_link_previews_dropped_total`). Default 1024.
    pub queue_size: usize,
    /// Destinations exempt from the SSRF guard (and from "default ports only"): CIDRs,
    /// addresses or host names. Anyone who can send a message can make the server read
    /// a page there, so list only what every user may see. Default empty; the tests use
    /// it for their loopback page server.
    pub outbound_allow: Vec<String>,
}

impl Default for LinkPreviewConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cache_ttl_secs: 24 * 3600,
            failure_ttl_secs: 600,
            max_html_bytes: 512 * 1024,
            max_image_bytes: 2 * 1024 * 1024,
            timeout_ms: 3000,
            max_redirects: 5,
            max_concurrent_fetches: 8,
            queue_size: 1024,
            outbound_allow: Vec::new(),
        }
    }
}

impl LinkPreviewConfig {
    /// Rules that types cannot express.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if self.cache_ttl_secs == 0
            || self.failure_ttl_secs == 0
            || self.max_html_bytes == 0
            || self.timeout_ms == 0
            || self.max_concurrent_fetches == 0
            || self.queue_size == 0
        {
            return Err(ConfigError::Rule(
                "link_previews: cache_ttl_secs, failure_ttl_secs, max_html_bytes, timeout_ms, \
                 max_concurrent_fetches and queue_size must be positive"
                    .into(),
            ));
        }
        if self.max_redirects > 20 {
            return Err(ConfigError::Rule(
                "link_previews: max_redirects must be at most 20".into(),
            ));
        }
        Ok(())
    }
}
