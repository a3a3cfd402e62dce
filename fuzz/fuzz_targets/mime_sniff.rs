//! The type of an upload, decided from its first bytes (`inspect::sniff`).
//!
//! Checks: no panic; only JPEG, PNG, GIF and WebP (the formats whose metadata is removed)
//! are images, and each of them is one the image cleaner takes; video and audio kinds
//! carry video and audio types; HTML and SVG are never shown inline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palaver_proto::MessageType;
use palaver_server::service::inspect::{inline_safe, sniff};

/// What the upload path hands to `sniff`: the first 8 KiB.
const SNIFF_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let head = &data[..data.len().min(SNIFF_BYTES)];
    let sniffed = sniff(head);
    assert!(!sniffed.mime.is_empty());
    match sniffed.kind {
        MessageType::Image => {
            assert!(
                ["image/jpeg", "image/png", "image/gif", "image/webp"].contains(&sniffed.mime),
                "{} is an image",
                sniffed.mime
            );
            assert!(image::ImageFormat::from_mime_type(sniffed.mime).is_some());
            assert!(inline_safe(sniffed.mime));
        }
        MessageType::Video => assert!(sniffed.mime.starts_with("video/"), "{}", sniffed.mime),
        MessageType::Audio => assert!(sniffed.mime.starts_with("audio/"), "{}", sniffed.mime),
        _ => {}
    }
    if matches!(sniffed.mime, "text/html" | "image/svg+xml") || sniffed.mime.contains("xml") {
        assert!(!inline_safe(sniffed.mime), "{} inline", sniffed.mime);
        assert_eq!(sniffed.kind, MessageType::File);
    }
    assert_eq!(sniff(head), sniffed, "sniffing is deterministic");
});
