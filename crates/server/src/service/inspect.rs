//! What an uploaded file is, decided from its bytes: the type (never the client's
//! header), and for images their dimensions, a thumbnail, and a copy without metadata.
//! Pure functions over bytes, so they are easy to test and to fuzz.

use std::io::Cursor;

use bytes::Bytes;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::ImageEXIF;
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

/// An image made safe to share.
#[derive(Debug)]
pub struct CleanImage {
    /// The image without EXIF/XMP/IPTC/comments (pixels untouched unless it had to be
    /// rotated upright).
    pub bytes: Bytes,
    /// The type of `bytes`: the upload's, except that a WebP that had to be rotated is
    /// now a JPEG.
    pub mime: &'static str,
    pub width: u32,
    pub height: u32,
    /// A small preview and its type.
    pub thumbnail: Bytes,
    pub thumbnail_mime: &'static str,
}

/// Why an image was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image is larger than {0} pixels")]
    TooManyPixels(u64),
}

/// Refuses a WebP whose RIFF container or any chunk in it claims more bytes than the file
/// holds. The decoder sizes its buffers from those claims, past the memory limits it is
/// given: a 214-byte file claiming a 1.3 GB EXIF chunk made it allocate 1.3 GB.
fn check_riff_chunks(bytes: &[u8]) -> Result<(), ImageError> {
    let bad = || ImageError::Decode("a WebP chunk claims more bytes than the file has".into());
    let size_at = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let riff = size_at(4).ok_or_else(bad)?;
    let end = riff
        .checked_add(8)
        .filter(|e| *e <= bytes.len())
        .ok_or_else(bad)?;
    let mut at = 12;
    while at + 8 <= end {
        let size = size_at(at + 4).ok_or_else(bad)?;
        // Chunks are padded to an even length.
        let next = (at + 8)
            .checked_add(size)
            .and_then(|n| n.checked_add(size % 2))
            .ok_or_else(bad)?;
        if next > end {
            return Err(bad());
        }
        at = next;
    }
    Ok(())
}

/// Strips metadata, reads dimensions and renders a thumbnail of at most `thumb_px` on
/// its longer side. Refuses images over `max_pixels` before decoding them, so a small
/// file cannot expand into gigabytes (a decompression bomb).
pub fn clean_image(
    bytes: Bytes,
    mime: &str,
    thumb_px: u32,
    max_pixels: u64,
) -> Result<CleanImage, ImageError> {
    let format = ImageFormat::from_mime_type(mime)
        .ok_or_else(|| ImageError::Decode(format!("unsupported image type {mime}")))?;
    if format == ImageFormat::WebP {
        check_riff_chunks(&bytes)?;
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes.as_ref()), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    // Some decoders take a zero width or height from the header and yield no pixels:
    // nothing to show, and clients divide by these.
    if width == 0 || height == 0 {
        return Err(ImageError::Decode(format!(
            "the image is {width}×{height} pixels"
        )));
    }
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(ImageError::TooManyPixels(max_pixels));
    }
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(decode_error)?;

    let upright = matches!(orientation, image::metadata::Orientation::NoTransforms);
    let (bytes, format, width, height) = if upright {
        let stripped = strip_metadata(bytes, format)?;
        // Stripping rewrites the container, and a file the decoder tolerated can come out
        // of it unreadable (a JPEG with a stray marker did): then store the pixels,
        // re-encoded, rather than a file nobody can open.
        if opens_as(&stripped, format, (width, height)) {
            (stripped, format, width, height)
        } else {
            (encode(&picture, format)?, format, width, height)
        }
    } else {
        // Removing the EXIF orientation would show the picture sideways: rotate the
        // pixels instead, which re-encodes (and so drops every metadata block too).
        // WebP encodes only losslessly here, far larger than the upload: JPEG it is.
        let format = match format {
            ImageFormat::WebP => ImageFormat::Jpeg,
            other => other,
        };
        picture.apply_orientation(orientation);
        let encoded = encode(&picture, format)?;
        (encoded, format, picture.width(), picture.height())
    };
    // A picture already within bounds is its own thumbnail (`thumbnail` would enlarge it).
    let small = if picture.width() <= thumb_px && picture.height() <= thumb_px {
        picture
    } else {
        picture.thumbnail(thumb_px, thumb_px)
    };
    let (thumbnail, thumbnail_mime) = if small.color().has_alpha() {
        (encode(&small, ImageFormat::Png)?, "image/png")
    } else {
        (encode(&small, ImageFormat::Jpeg)?, "image/jpeg")
    };
    Ok(CleanImage {
        bytes,
        mime: format.to_mime_type(),
        width,
        height,
        thumbnail,
        thumbnail_mime,
    })
}

/// Whether `bytes` open as `format` with these dimensions (headers only, no pixels).
fn opens_as(bytes: &[u8], format: ImageFormat, dimensions: (u32, u32)) -> bool {
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .is_ok_and(|d| d.dimensions() == dimensions)
}

fn decode_error(err: image::ImageError) -> ImageError {
    ImageError::Decode(err.to_string())
}

fn encode(picture: &DynamicImage, format: ImageFormat) -> Result<Bytes, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let result = match format {
        // JPEG has no alpha channel.
        ImageFormat::Jpeg => {
            let rgb = DynamicImage::ImageRgb8(picture.to_rgb8());
            rgb.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                &mut out, 85,
            ))
        }
        other => picture.write_to(&mut out, other),
    };
    result.map_err(decode_error)?;
    Ok(Bytes::from(out.into_inner()))
}

/// JPEG segments kept: JFIF (APP0), the ICC colour profile (APP2) and Adobe's colour
/// transform (APP14). Every other APPn (EXIF and XMP live in APP1, IPTC in APP13) and
/// comments go.
const JPEG_KEEP_APP: [u8; 3] = [0xE0, 0xE2, 0xEE];
/// PNG chunks that carry metadata rather than pixels.
const PNG_METADATA: [&[u8; 4]; 5] = [b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"];

fn strip_metadata(bytes: Bytes, format: ImageFormat) -> Result<Bytes, ImageError> {
    let parse = |e: img_parts::Error| ImageError::Decode(e.to_string());
    Ok(match format {
        ImageFormat::Jpeg => {
            let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(bytes).map_err(parse)?;
            jpeg.segments_mut().retain(|s| {
                let m = s.marker();
                let metadata = (0xE0..=0xEF).contains(&m) && !JPEG_KEEP_APP.contains(&m)
                    // APP2 also carries MPF, an index of further pictures: ICC only.
                    || m == 0xE2 && !s.contents().starts_with(b"ICC_PROFILE\0")
                    || m == 0xFE;
                !metadata
            });
            jpeg.encoder().bytes()
        }
        ImageFormat::Png => {
            let mut png = img_parts::png::Png::from_bytes(bytes).map_err(parse)?;
            png.chunks_mut()
                .retain(|c| !PNG_METADATA.contains(&&c.kind()));
            png.encoder().bytes()
        }
        ImageFormat::WebP => {
            let mut webp = img_parts::webp::WebP::from_bytes(bytes).map_err(parse)?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(*b"XMP ");
            webp.encoder().bytes()
        }
        // GIF has no EXIF; its comment and application blocks do not carry location.
        _ => bytes,
    })
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

    fn encoded(picture: &DynamicImage, format: ImageFormat) -> Bytes {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).expect("encode");
        Bytes::from(out.into_inner())
    }

    #[test]
    fn a_small_image_is_not_enlarged_into_its_thumbnail() {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::new(8, 6));
        let clean = clean_image(encoded(&picture, ImageFormat::Png), "image/png", 320, 1000)
            .expect("clean");
        let thumb = image::load_from_memory(&clean.thumbnail).expect("thumbnail");
        assert_eq!((thumb.width(), thumb.height()), (8, 6));
    }

    /// A TIFF block with one tag: Orientation = 6 (rotate 90° clockwise to show).
    const EXIF_ROTATE: &[u8] =
        b"MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";

    #[test]
    fn a_webp_chunk_claiming_more_than_the_file_is_refused_before_decoding() {
        // Found by fuzz/thumbnail: its EXIF chunk claims 1.29 GB in a 214-byte file.
        let bomb = include_bytes!("../../../../fuzz/findings/thumbnail-webp-exif-size");
        let refused = clean_image(Bytes::from_static(bomb), "image/webp", 320, 1_000_000);
        assert!(matches!(refused, Err(ImageError::Decode(_))), "{refused:?}");
        // A whole, valid WebP still passes the check.
        let picture = DynamicImage::new_rgb8(8, 6);
        let webp = encoded(&picture, ImageFormat::WebP);
        assert!(check_riff_chunks(&webp).is_ok());
        let mut cut = webp.to_vec();
        cut.truncate(cut.len() - 1);
        assert!(check_riff_chunks(&cut).is_err(), "a truncated file");
    }

    #[test]
    fn an_image_without_pixels_is_refused() {
        // Found by fuzz/thumbnail: a GIF whose screen is 1544×0 was stored as 1544×0.
        let flat = include_bytes!("../../../../fuzz/findings/thumbnail-gif-zero-height");
        let refused = clean_image(Bytes::from_static(flat), "image/gif", 320, 1_000_000);
        assert!(matches!(refused, Err(ImageError::Decode(_))), "{refused:?}");
    }

    #[test]
    fn a_cleaned_image_always_opens() {
        // Found by fuzz/thumbnail: a JPEG with a stray marker decoded, but the file left
        // after stripping its metadata did not ("number of components cannot be zero").
        let odd =
            include_bytes!("../../../../fuzz/findings/thumbnail-jpeg-unreadable-after-stripping");
        let clean = clean_image(Bytes::from_static(odd), "image/jpeg", 320, 1_000_000)
            .expect("its pixels decode, so it is kept");
        let again = image::load_from_memory_with_format(&clean.bytes, ImageFormat::Jpeg)
            .expect("the stored file decodes");
        assert_eq!((again.width(), again.height()), (clean.width, clean.height));
    }

    #[test]
    fn a_rotated_webp_is_stored_as_the_jpeg_it_becomes() {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::new(8, 6));
        let mut webp =
            img_parts::webp::WebP::from_bytes(encoded(&picture, ImageFormat::WebP)).expect("webp");
        webp.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
        let clean = clean_image(webp.encoder().bytes(), "image/webp", 320, 1000).expect("clean");
        assert_eq!((clean.width, clean.height), (6, 8));
        assert_eq!(clean.mime, "image/jpeg");
        assert_eq!(sniff(&clean.bytes).mime, clean.mime);
    }

    #[test]
    fn garbage_is_not_an_image() {
        let err = clean_image(
            Bytes::from_static(b"\x89PNG\r\n\x1a\nnope"),
            "image/png",
            64,
            1000,
        );
        assert!(matches!(err, Err(ImageError::Decode(_))));
    }
}
