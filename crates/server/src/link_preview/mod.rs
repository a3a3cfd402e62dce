//! Link previews from the network's side: which link of a text is previewed, and reading
//! a page's card (and its picture) through the SSRF guard, within bounds.
//!
//! Every request goes through `crate::outbound`, so the guard's rules hold at every hop:
//! internal addresses refused (by literal, at DNS resolution and after each redirect), at
//! most `link_previews.max_redirects` redirects, default ports only unless the
//! destination is on `link_previews.outbound_allow`. Then the bounds of this module: only
//! `text/html` is read as a page and only `image/*` as a picture; at most
//! `max_html_bytes` of a page are read (its card comes from what arrived: the head of a
//! page is at its start), and a picture over `max_image_bytes` is refused; everything
//! happens before the caller's deadline. No cookies go out, and no compression is asked
//! for, so nothing read is inflated afterwards.
//!
//! Which messages are previewed, the cache, the rate limits and storing the picture are
//! the service's (`service/previews.rs`).

pub mod html;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue};
use tokio::time::Instant;
use url::Url;

use crate::config::LinkPreviewConfig;
use crate::outbound::{AllowList, GuardError, Outbound, OutboundError, Rules, classify};

/// Longest link previewed, bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Longest title kept, characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest description kept, characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest site name kept, characters.
pub const MAX_SITE_NAME_CHARS: usize = 100;

/// A page's card, cleaned and bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub title: String,
    pub description: Option<String>,
    pub site_name: Option<String>,
    /// The page's picture, resolved against the page's final URL.
    pub image: Option<Url>,
}

/// Why a page or picture gave no preview.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Refused(#[from] GuardError),
    #[error("timed out")]
    Timeout,
    #[error("network error: {0}")]
    Network(String),
    #[error("answered {0}")]
    Status(u16),
    #[error("not an HTML page ({0:?})")]
    NotHtml(String),
    #[error("the page has no title")]
    NoTitle,
    #[error("not an image ({0:?})")]
    NotImage(String),
    #[error("larger than {0} bytes")]
    TooLarge(u64),
}

impl FetchError {
    /// A short name, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            FetchError::Refused(_) => "refused",
            FetchError::Timeout => "timeout",
            FetchError::Network(_) => "network",
            FetchError::Status(_) => "status",
            FetchError::NotHtml(_) => "not_html",
            FetchError::NoTitle => "no_title",
            FetchError::NotImage(_) => "not_image",
            FetchError::TooLarge(_) => "too_large",
        }
    }
}

impl From<OutboundError> for FetchError {
    fn from(err: OutboundError) -> Self {
        match err {
            OutboundError::Refused(e) => FetchError::Refused(e),
            OutboundError::Timeout => FetchError::Timeout,
            OutboundError::Network(e) => FetchError::Network(e),
        }
    }
}

/// The first `http` or `https` link of a text, without its `#fragment` (which never
/// reaches the server), if it is short enough and carries no credentials. A link ends at
/// white space or a quote or angle bracket; trailing punctuation, and a closing bracket
/// that closes none the link opened (Markdown's `[text](link)`), is not part of it.
pub fn first_url(text: &str) -> Option<Url> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = find_scheme(&text[from..]).map(|i| from + i) {
        from = at + 1;
        // At a word's start only: `xhttp://` is not a link.
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'/') {
            continue;
        }
        let rest = &text[at..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c.is_control() || "<>\"'`".contains(c))
            .unwrap_or(rest.len());
        let candidate = trim_link(&rest[..end]);
        if candidate.len() > MAX_URL_BYTES {
            continue;
        }
        let Ok(mut url) = Url::parse(candidate) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
        {
            continue;
        }
        url.set_fragment(None);
        return Some(url);
    }
    None
}

/// Where `http://` or `https://` (any case) starts, if anywhere.
fn find_scheme(text: &str) -> Option<usize> {
    let lower = text.as_bytes();
    (0..lower.len()).find(|&i| {
        let rest = &lower[i..];
        let starts = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
        starts(b"http://") || starts(b"https://")
    })
}

/// A link without the punctuation that ends the sentence around it.
fn trim_link(mut link: &str) -> &str {
    loop {
        let Some(last) = link.chars().last() else {
            return link;
        };
        let unbalanced = |open: char| link.matches(open).count() < link.matches(last).count();
        let strip = match last {
            '.' | ',' | ';' | ':' | '!' | '?' | '*' | '_' | '~' => true,
            ')' => unbalanced('('),
            ']' => unbalanced('['),
            '}' => unbalanced('{'),
            _ => false,
        };
        if !strip {
            return link;
        }
        link = &link[..link.len() - last.len_utf8()];
    }
}

/// Trims, folds white space runs into one space, drops control characters and keeps at
/// most `max` characters (the last one an ellipsis when cut); `None` when nothing is left.
pub fn clean_text(text: &str, max: usize) -> Option<String> {
    let folded = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>();
    if folded.is_empty() || max == 0 {
        return None;
    }
    if folded.chars().count() <= max {
        return Some(folded);
    }
    let mut cut: String = folded.chars().take(max - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    Some(cut)
}

impl Page {
    /// The card a page's `Meta` makes, read at `base` (where the page was finally
    /// found); `None` without a title.
    pub fn from_meta(meta: html::Meta, base: &Url) -> Option<Page> {
        let pick = |og: Option<String>, plain: Option<String>, max| {
            og.as_deref()
                .and_then(|t| clean_text(t, max))
                .or_else(|| plain.as_deref().and_then(|t| clean_text(t, max)))
        };
        let title = pick(meta.og_title, meta.title, MAX_TITLE_CHARS)?;
        let description = pick(meta.og_description, meta.description, MAX_DESCRIPTION_CHARS);
        let site_name = pick(meta.og_site_name, None, MAX_SITE_NAME_CHARS);
        let image = meta
            .og_image
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_URL_BYTES)
            .and_then(|s| base.join(s).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        Some(Page {
            title,
            description,
            site_name,
            image,
        })
    }
}

/// Reads pages and pictures through the guard, within the configured bounds.
pub struct Fetcher {
    outbound: Outbound,
    max_html_bytes: u64,
    max_image_bytes: u64,
}

impl Fetcher {
    /// A fetcher with its own guarded client: `link_previews.outbound_allow`, any
    /// scheme of http(s) but default ports only, `max_redirects`.
    pub fn new(config: &LinkPreviewConfig) -> Result<Fetcher, OutboundError> {
        let allow = AllowList::parse(&config.outbound_allow)?;
        let rules = Rules {
            https_only: false,
            default_ports_only: true,
            max_redirects: config.max_redirects,
        };
        let outbound =
            Outbound::with_rules(allow, rules, Duration::from_millis(config.timeout_ms))?;
        Ok(Fetcher {
            outbound,
            max_html_bytes: config.max_html_bytes,
            max_image_bytes: config.max_image_bytes,
        })
    }

    /// Whether pictures are fetched at all.
    pub fn fetches_images(&self) -> bool {
        self.max_image_bytes > 0
    }

    /// The card of the page at `url`, read before `deadline`.
    pub async fn page(&self, url: &Url, deadline: Instant) -> Result<Page, FetchError> {
        let work = async {
            let response = self.get(url, "text/html").await?;
            let content_type = content_type(&response);
            let essence = content_type.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("text/html") {
                return Err(FetchError::NotHtml(content_type));
            }
            let charset = html::charset_param(&content_type).map(str::to_owned);
            let base = response.url().clone();
            let body = read_body(response, self.max_html_bytes, Over::Keep).await?;
            Page::from_meta(html::read(&body, charset.as_deref()), &base).ok_or(FetchError::NoTitle)
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    /// The picture at `url`, whole, read before `deadline`.
    pub async fn image(&self, url: &Url, deadline: Instant) -> Result<Bytes, FetchError> {
        let work = async {
            let response = self.get(url, "image/*").await?;
            let content_type = content_type(&response);
            if !content_type
                .trim()
                .to_ascii_lowercase()
                .starts_with("image/")
            {
                return Err(FetchError::NotImage(content_type));
            }
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|n| n > self.max_image_bytes) {
                return Err(FetchError::TooLarge(self.max_image_bytes));
            }
            read_body(response, self.max_image_bytes, Over::Refuse).await
        };
        tokio::time::timeout_at(deadline, work)
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn get(&self, url: &Url, accept: &'static str) -> Result<reqwest::Response, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        let response = self.outbound.get(url, headers).await?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        Ok(response)
    }
}

fn content_type(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// What to do with a body longer than its bound.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Over {
    /// Keep what fits, stop reading.
    Keep,
    /// Refuse it.
    Refuse,
}

/// Reads at most `max` bytes of a body; the rest is never read (the connection closes).
async fn read_body(
    mut response: reqwest::Response,
    max: u64,
    over: Over,
) -> Result<Bytes, FetchError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| FetchError::from(classify(e)))?
    {
        let room = (max as usize).saturating_sub(body.len());
        if chunk.len() > room {
            if over == Over::Refuse {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk[..room]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> Option<String> {
        first_url(text).map(|u| u.to_string())
    }

    #[test]
    fn the_first_link_of_a_text() {
        assert_eq!(
            first("see https://example.com/a?b=c#top and http://other.org"),
            Some("https://example.com/a?b=c".into())
        );
        assert_eq!(
            first("HTTPS://Example.COM/Path"),
            Some("https://example.com/Path".into())
        );
        assert_eq!(
            first("(see http://example.com/wiki/Foo_(bar)), ok"),
            Some("http://example.com/wiki/Foo_(bar)".into())
        );
        assert_eq!(
            first("[docs](https://example.com/docs)."),
            Some("https://example.com/docs".into())
        );
        assert_eq!(
            first("<https://example.com/x>"),
            Some("https://example.com/x".into())
        );
        assert_eq!(
            first("**https://example.com/x**!"),
            Some("https://example.com/x".into())
        );
        assert_eq!(
            first("\"http://example.com/q\""),
            Some("http://example.com/q".into())
        );
        assert_eq!(
            first("port http://127.0.0.1:8080/p"),
            Some("http://127.0.0.1:8080/p".into())
        );
    }

    #[test]
    fn what_is_not_a_link() {
        for text in [
            "no link here",
            "ftp://example.com/file",
            "xhttp://example.com",
            "http://",
            "https:// spaced",
            "http://user:secret@example.com/",
        ] {
            assert_eq!(first(text), None, "{text}");
        }
        // A bad first candidate does not hide a good second one.
        assert_eq!(
            first("http:// and https://example.com"),
            Some("https://example.com/".into())
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(first(&long), None);
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(clean_text("  a \n\t b\u{7}  ", 10).as_deref(), Some("a b"));
        assert_eq!(clean_text(" \n ", 10), None);
        assert_eq!(clean_text("abcdefgh", 5).as_deref(), Some("abcd…"));
        assert_eq!(clean_text("ab   cdefgh", 4).as_deref(), Some("ab…"));
        assert_eq!(
            clean_text(&"é".repeat(400), 300).map(|s| s.chars().count()),
            Some(300)
        );
    }

    #[test]
    fn a_card_prefers_open_graph_and_resolves_its_picture() {
        let base = Url::parse("https://example.com/blog/post").expect("url");
        let meta = html::read(
            br#"<title> Plain </title><meta name=description content="plain">
                <meta property=og:title content="  OG   title ">
                <meta property=og:image content="../img/a.png">"#,
            None,
        );
        let page = Page::from_meta(meta, &base).expect("card");
        assert_eq!(page.title, "OG title");
        assert_eq!(page.description.as_deref(), Some("plain"));
        assert_eq!(
            page.image.map(|u| u.to_string()).as_deref(),
            Some("https://example.com/img/a.png")
        );
        let meta = html::read(
            br#"<meta property=og:image content="javascript:alert(1)"><title>t</title>"#,
            None,
        );
        assert_eq!(Page::from_meta(meta, &base).expect("card").image, None);
        let meta = html::read(
            br#"<meta property=og:description content="no title">"#,
            None,
        );
        assert_eq!(Page::from_meta(meta, &base), None);
    }
}
