//! Image cleaning and thumbnailing (`inspect::clean_image`) as the upload path calls it:
//! sniff the type from the bytes, then clean only what sniffs as an image.
//!
//! Checks: no panic; nothing over the pixel budget is decoded (and memory stays bounded:
//! run with -malloc_limit_mb and -rss_limit_mb); an accepted image has dimensions within
//! the budget, its cleaned bytes are an image of the type it states, with the same
//! dimensions and without EXIF, and the thumbnail decodes within the thumbnail bounds.
#![no_main]

use std::io::Cursor;

use bytes::Bytes;
use image::{ImageFormat, ImageReader, Limits};
use img_parts::{DynImage, ImageEXIF};
use libfuzzer_sys::fuzz_target;
use palaver_proto::MessageType;
use palaver_server::service::inspect::{ImageError, ImageLimits, clean_image, sniff};

/// The server's default `thumbnail_px`.
const THUMB_PX: u32 = 320;
/// A smaller budget than the server's default (50 million pixels) so that each run is
/// quick; the code path is the same.
const MAX_PIXELS: u64 = 1_000_000;
/// The server's plausibility rule, scaled like `MAX_PIXELS`.
const LIMITS: ImageLimits = ImageLimits {
    max_pixels: MAX_PIXELS,
    max_sparse_pixels: MAX_PIXELS / 4,
    pixels_per_byte: 128,
};

fn decode(bytes: &[u8], mime: &str) -> (u32, u32) {
    let format = ImageFormat::from_mime_type(mime).expect("a known type");
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 16 + (64 << 20));
    reader.limits(limits);
    let picture = reader
        .decode()
        .unwrap_or_else(|e| panic!("the server's own {mime} does not decode: {e}"));
    (picture.width(), picture.height())
}

fuzz_target!(|data: &[u8]| {
    let sniffed = sniff(&data[..data.len().min(8192)]);
    if sniffed.kind != MessageType::Image {
        return;
    }
    let clean = match clean_image(
        Bytes::copy_from_slice(data),
        sniffed.mime,
        THUMB_PX,
        &LIMITS,
    ) {
        Ok(clean) => clean,
        Err(ImageError::Decode(_) | ImageError::TooManyPixels(_) | ImageError::Implausible(_)) => {
            return;
        }
    };
    assert!(clean.width >= 1 && clean.height >= 1);
    assert!(u64::from(clean.width) * u64::from(clean.height) <= MAX_PIXELS);

    // The cleaned file: the type it states (the upload's, or JPEG for a rotated WebP),
    // the same size, no EXIF left.
    let again = sniff(&clean.bytes[..clean.bytes.len().min(8192)]);
    assert_eq!(
        again.mime, clean.mime,
        "the cleaned file is not what it says"
    );
    assert!(
        clean.mime == sniffed.mime || (sniffed.mime, clean.mime) == ("image/webp", "image/jpeg"),
        "a {} became a {}",
        sniffed.mime,
        clean.mime
    );
    assert_eq!(
        decode(&clean.bytes, clean.mime),
        (clean.width, clean.height)
    );
    if let Ok(Some(parsed)) = DynImage::from_bytes(clean.bytes.clone()) {
        assert!(
            parsed.exif().is_none(),
            "EXIF left in a cleaned {}",
            clean.mime
        );
    }

    // The thumbnail: its stated type, within bounds on both sides.
    assert!(["image/png", "image/jpeg"].contains(&clean.thumbnail_mime));
    assert_eq!(sniff(&clean.thumbnail).mime, clean.thumbnail_mime);
    let (w, h) = decode(&clean.thumbnail, clean.thumbnail_mime);
    assert!(
        (1..=THUMB_PX).contains(&w) && (1..=THUMB_PX).contains(&h),
        "{w}x{h} thumbnail"
    );
    assert!(
        w <= clean.width && h <= clean.height,
        "a thumbnail larger than its image"
    );
});
