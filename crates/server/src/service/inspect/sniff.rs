//! The type of a file, decided from its first bytes (never from the client's header), and
//! which types a browser may show inline.

use palaver_proto::MessageType;

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: MessageType,
    pub mime: &'static str,
}

/// Decides type and kind from the first bytes of a file. Only formats whose metadata
/// Palaver can remove count as images; other pictures (HEIC, TIFF …) are files.
pub fn sniff(head: &[u8]) -> Sniffed {
    let inferred = infer::get(head);
    if let Some(t) = inferred.filter(|t| t.matcher_type() != infer::MatcherType::Text) {
        let kind = match (t.matcher_type(), t.mime_type()) {
            (_, "image/jpeg" | "image/png" | "image/gif" | "image/webp") => MessageType::Image,
            (infer::MatcherType::Video, _) => MessageType::Video,
            (infer::MatcherType::Audio, _) => MessageType::Audio,
            _ => MessageType::File,
        };
        return Sniffed {
            kind,
            mime: t.mime_type(),
        };
    }
    let mime = if looks_like_text(head) {
        let lower = String::from_utf8_lossy(&head[..head.len().min(1024)]).to_ascii_lowercase();
        if lower.contains("<svg") {
            "image/svg+xml"
        } else if ["<!doctype html", "<html", "<script", "<body", "<iframe"]
            .iter()
            .any(|tag| lower.contains(tag))
        {
            "text/html"
        } else {
            // infer knows XML and shell scripts; plain text otherwise.
            inferred.map_or("text/plain", |t| t.mime_type())
        }
    } else {
        "application/octet-stream"
    };
    Sniffed {
        kind: MessageType::File,
        mime,
    }
}

/// UTF-8 without NULs (a multi-byte character cut at the end of `head` is fine).
fn looks_like_text(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// Whether a browser may show this type inline: pictures it renders without scripts,
/// sound and video. Everything else is served as an attachment.
pub fn inline_safe(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    ) || mime.starts_with("video/")
        || mime.starts_with("audio/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").mime, "image/png");
        assert_eq!(
            sniff(b"\xff\xd8\xff\xe0\0\x10JFIF").kind,
            MessageType::Image
        );
        assert_eq!(sniff(b"%PDF-1.7\n").mime, "application/pdf");
        assert_eq!(sniff(b"%PDF-1.7\n").kind, MessageType::File);
        assert_eq!(sniff(b"ID3\x03\0\0\0\0\0\0").kind, MessageType::Audio);
        assert_eq!(sniff(b"hello, world\n").mime, "text/plain");
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><svg xmlns=").mime,
            "image/svg+xml"
        );
        assert_eq!(sniff(b"<!DOCTYPE html><p>hi").mime, "text/html");
        assert_eq!(sniff(b"\0\x01\x02garbage").mime, "application/octet-stream");
        assert_eq!(sniff(b"").mime, "application/octet-stream");
    }

    #[test]
    fn only_passive_types_are_inline() {
        assert!(inline_safe("image/png"));
        assert!(inline_safe("video/mp4"));
        assert!(!inline_safe("image/svg+xml"));
        assert!(!inline_safe("text/html"));
        assert!(!inline_safe("application/pdf"));
    }
}
