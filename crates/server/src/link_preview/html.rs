//! Reading a page's card from its HTML: `og:title`, `og:description`, `og:image` and
//! `og:site_name`, falling back to `<title>` and `<meta name="description">`.
//!
//! html5ever's tokenizer (Servo's, the one the HTML standard's tests are run against) does
//! the reading: it decodes character references and knows comments and malformed
//! markup, and this sink tells it which elements hold raw text (a `<meta>` written in a
//! script is not a tag). No tree is built, so memory stays at the bytes read. The bytes
//! are decoded first: by a BOM, else the `charset` of the `Content-Type` header, else
//! UTF-8, and once more with the page's own `<meta charset>` when that names another.

use std::cell::{Cell, RefCell};

use encoding_rs::{Encoding, UTF_8};
use html5ever::TokenizerResult;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};

/// What a page says about itself, as written (not yet trimmed nor bounded).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Meta {
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    pub og_image: Option<String>,
    pub og_site_name: Option<String>,
    /// The first `<title>` outside SVG and MathML.
    pub title: Option<String>,
    /// `<meta name="description">`.
    pub description: Option<String>,
    /// The encoding a `<meta charset>` (or its `http-equiv` form) names.
    charset: Option<String>,
}

/// Reads `bytes` (a page, or its first part) whose `Content-Type` named `charset`.
pub fn read(bytes: &[u8], charset: Option<&str>) -> Meta {
    let declared = charset.and_then(|c| Encoding::for_label(c.trim().as_bytes()));
    let (encoding, skip) = match Encoding::for_bom(bytes) {
        Some((bom, len)) => (bom, len),
        None => (declared.unwrap_or(UTF_8), 0),
    };
    let meta = tokenize(&decode(encoding, &bytes[skip..]));
    if skip == 0 && declared.is_none() {
        // The page names its own encoding: read it again in that one. UTF-16 and the
        // like cannot be named from inside ASCII-compatible markup (output_encoding).
        if let Some(named) = meta
            .charset
            .as_deref()
            .and_then(|c| Encoding::for_label(c.trim().as_bytes()))
            .map(Encoding::output_encoding)
            .filter(|e| *e != encoding)
        {
            return tokenize(&decode(named, bytes));
        }
    }
    meta
}

fn decode(encoding: &'static Encoding, bytes: &[u8]) -> String {
    encoding.decode_without_bom_handling(bytes).0.into_owned()
}

fn tokenize(text: &str) -> Meta {
    let sink = Sink::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(text));
    // Only a sink that answers `Script` pauses the tokenizer; this one never does.
    while let TokenizerResult::Script(()) = tokenizer.feed(&input) {}
    tokenizer.end();
    tokenizer.sink.meta.into_inner()
}

/// Collects what `Meta` holds as the tokens go by.
#[derive(Default)]
struct Sink {
    meta: RefCell<Meta>,
    /// Inside the `<title>` being read.
    in_title: Cell<bool>,
    /// The text of that `<title>` so far.
    title: RefCell<String>,
    /// Open `<svg>` and `<math>` elements: their `<title>` is a label, not the page's.
    foreign: Cell<u32>,
}

/// Sets `slot` unless it is set: the first occurrence counts.
fn first(slot: &mut Option<String>, value: &str) {
    if slot.is_none() {
        *slot = Some(value.to_owned());
    }
}

impl Sink {
    fn start_tag(
        &self,
        name: &str,
        attrs: &[html5ever::Attribute],
        self_closing: bool,
    ) -> TokenSinkResult<()> {
        match name {
            "meta" => self.meta_tag(attrs),
            "svg" | "math" if !self_closing => self.foreign.set(self.foreign.get() + 1),
            "title" if self.foreign.get() == 0 => {
                if self.meta.borrow().title.is_none() {
                    self.in_title.set(true);
                    self.title.borrow_mut().clear();
                }
                return TokenSinkResult::RawData(RawKind::Rcdata);
            }
            _ if self.foreign.get() > 0 => {}
            // Elements whose content is text, not markup (the tree builder would say so).
            "textarea" => return TokenSinkResult::RawData(RawKind::Rcdata),
            "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
                return TokenSinkResult::RawData(RawKind::Rawtext);
            }
            "script" => return TokenSinkResult::RawData(RawKind::ScriptData),
            "plaintext" => return TokenSinkResult::Plaintext,
            _ => {}
        }
        TokenSinkResult::Continue
    }

    fn end_tag(&self, name: &str) {
        match name {
            "title" if self.in_title.get() => {
                self.in_title.set(false);
                let text = std::mem::take(&mut *self.title.borrow_mut());
                self.meta.borrow_mut().title = Some(text);
            }
            "svg" | "math" => self.foreign.set(self.foreign.get().saturating_sub(1)),
            _ => {}
        }
    }

    fn meta_tag(&self, attrs: &[html5ever::Attribute]) {
        let attr = |name: &str| {
            attrs
                .iter()
                .find(|a| (*a.name.local).eq_ignore_ascii_case(name))
                .map(|a| &*a.value)
        };
        let mut meta = self.meta.borrow_mut();
        if let Some(charset) = attr("charset") {
            first(&mut meta.charset, charset);
        }
        if attr("http-equiv").is_some_and(|h| h.eq_ignore_ascii_case("content-type"))
            && let Some(charset) = attr("content").and_then(charset_param)
        {
            first(&mut meta.charset, charset);
        }
        let Some(content) = attr("content") else {
            return;
        };
        // Open Graph says `property`; many pages write `name`.
        for key in [attr("property"), attr("name")].into_iter().flatten() {
            let slot = match key.trim().to_ascii_lowercase().as_str() {
                "og:title" => &mut meta.og_title,
                "og:description" => &mut meta.og_description,
                "og:image" | "og:image:url" | "og:image:secure_url" => &mut meta.og_image,
                "og:site_name" => &mut meta.og_site_name,
                "description" => &mut meta.description,
                _ => continue,
            };
            first(slot, content);
        }
    }
}

/// The `charset=` parameter of a media type (`text/html; charset=utf-8`).
pub fn charset_param(media_type: &str) -> Option<&str> {
    media_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(['"', '\'']))
    })
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        match token {
            Token::TagToken(tag) => match tag.kind {
                TagKind::StartTag => {
                    return self.start_tag(&tag.name, &tag.attrs, tag.self_closing);
                }
                TagKind::EndTag => self.end_tag(&tag.name),
            },
            Token::CharacterTokens(text) if self.in_title.get() => {
                self.title.borrow_mut().push_str(&text);
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_graph_first_then_title_and_description() {
        let page = br#"<!doctype html><html><head>
            <meta charset="utf-8">
            <title>Plain &amp; simple</title>
            <meta name="description" content="The description">
            <meta property="og:title" content="Caf&eacute; &#x2603;">
            <meta property="OG:Description" content="From &quot;og&quot;">
            <meta property="og:image" content="/img/card.png">
            <meta name="og:site_name" content="Example">
            <meta property="og:title" content="second, ignored">
            </head><body><p>hello</p></body></html>"#;
        let meta = read(page, None);
        assert_eq!(meta.og_title.as_deref(), Some("Café ☃"));
        assert_eq!(meta.og_description.as_deref(), Some("From \"og\""));
        assert_eq!(meta.og_image.as_deref(), Some("/img/card.png"));
        assert_eq!(meta.og_site_name.as_deref(), Some("Example"));
        assert_eq!(meta.title.as_deref(), Some("Plain & simple"));
        assert_eq!(meta.description.as_deref(), Some("The description"));
    }

    #[test]
    fn markup_inside_raw_text_is_not_read() {
        let page = br#"<head>
            <script>var s = "<meta property='og:title' content='from a script'>";</script>
            <style>/* <title>styled</title> */</style>
            <!-- <meta property="og:title" content="commented"> -->
            <title>Real <b>title</b></title>
            </head><body><svg><title>an icon</title></svg></body>"#;
        let meta = read(page, None);
        assert_eq!(meta.og_title, None);
        // A title holds text only: the tag inside it is text.
        assert_eq!(meta.title.as_deref(), Some("Real <b>title</b>"));

        let icon_first = br#"<body><svg><title>an icon</title></svg><title>Page</title>"#;
        assert_eq!(read(icon_first, None).title.as_deref(), Some("Page"));
    }

    #[test]
    fn the_encoding_comes_from_the_bom_the_header_or_the_page() {
        // "Café" in Latin-1.
        let latin1 = b"<title>Caf\xe9</title>";
        assert_eq!(
            read(latin1, Some("iso-8859-1")).title.as_deref(),
            Some("Café")
        );
        let named = b"<meta charset=windows-1252><title>Caf\xe9</title>";
        assert_eq!(read(named, None).title.as_deref(), Some("Café"));
        let equiv = b"<meta http-equiv=Content-Type content='text/html; charset=latin1'><title>Caf\xe9</title>";
        assert_eq!(read(equiv, None).title.as_deref(), Some("Café"));
        // The header wins over the page; a BOM over both.
        let utf8 = "<meta charset=latin1><title>Café</title>".as_bytes();
        assert_eq!(read(utf8, Some("utf-8")).title.as_deref(), Some("Café"));
        let bom = [b"\xef\xbb\xbf".as_slice(), utf8].concat();
        assert_eq!(read(&bom, Some("latin1")).title.as_deref(), Some("Café"));
        // Without any, UTF-8, bad bytes replaced.
        assert_eq!(read(latin1, None).title.as_deref(), Some("Caf\u{fffd}"));
    }

    #[test]
    fn a_page_cut_short_gives_what_it_has() {
        let meta = read(b"<title>Cut sh", None);
        assert_eq!(meta.title, None, "an unclosed title is not the title");
        let meta = read(b"<meta property=og:title content=Whole><title>Cut sh", None);
        assert_eq!(meta.og_title.as_deref(), Some("Whole"));
        assert_eq!(read(b"", None), Meta::default());
        assert_eq!(read(b"\x00\xff\xfe garbage <<<>>>", None).title, None);
    }

    #[test]
    fn charset_parameters() {
        assert_eq!(charset_param("text/html; charset=UTF-8"), Some("UTF-8"));
        assert_eq!(
            charset_param("text/html;charset=\"latin1\""),
            Some("latin1")
        );
        assert_eq!(charset_param("text/html"), None);
    }
}
