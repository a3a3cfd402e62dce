//! What an uploaded file is, decided from its bytes: the type (never the client's
//! header), and for images their dimensions, a thumbnail, and a copy without metadata.
//! Pure functions over bytes, so they are easy to test and to fuzz.
//!
//! The parts: `sniff` (the type of any file) and `layout` (walking an image's container
//! to check it is whole, before any pixel is decoded); here, an image's header checks,
//! its decode cost, cleaning and thumbnailing.

mod layout;
mod sniff;

use std::io::Cursor;

use bytes::Bytes;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::ImageEXIF;

pub use sniff::{Sniffed, inline_safe, sniff};

use layout::{check_riff_chunks, gif_layout, jpeg_layout, png_complete};

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
    /// Not a whole, decodable image of its type (truncated files included).
    #[error("the image could not be decoded: {0}")]
    Decode(String),
    #[error("the image is larger than {0} pixels")]
    TooManyPixels(u64),
    /// Its dimensions are not believable for its file (a decompression bomb).
    #[error("the image is implausible: {0}")]
    Implausible(String),
}

/// How large a picture may be, and how small its file may be for that size.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Most pixels (width × height) decoded at all.
    pub max_pixels: u64,
    /// Pictures up to this many pixels pass whatever their file size.
    pub max_sparse_pixels: u64,
    /// Above `max_sparse_pixels`, most pixels per byte of file.
    pub pixels_per_byte: u64,
}

/// What an image's headers say, read before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub width: u32,
    pub height: u32,
    /// About the most memory `clean_image` takes for it at once, bytes: the file (held
    /// three times: the upload, the decoder's copy, the stripped copy), the picture (twice
    /// when it has to be rotated), the decoder's working memory (a progressive JPEG keeps
    /// every coefficient; a GIF frame smaller than its screen gets a buffer of its own)
    /// and the thumbnail.
    pub decode_bytes: u64,
}

/// Memory a decode takes whatever the image: row buffers, zlib windows, tables.
const DECODE_OVERHEAD: u64 = 1 << 20;

/// Reads an image's headers and refuses it, before any pixel is decoded, when it is not
/// whole, over `limits.max_pixels`, or implausibly large for its file; otherwise says
/// what decoding it will cost. Cheap: no pixel data is decompressed.
pub fn read_header(
    bytes: &Bytes,
    mime: &str,
    thumb_px: u32,
    limits: &ImageLimits,
) -> Result<ImageHeader, ImageError> {
    let format = format_of(mime)?;
    let (header, _, _) = open(bytes, format, thumb_px, limits)?;
    Ok(header)
}

fn format_of(mime: &str) -> Result<ImageFormat, ImageError> {
    ImageFormat::from_mime_type(mime)
        .ok_or_else(|| ImageError::Decode(format!("unsupported image type {mime}")))
}

/// The checks of `read_header`, and a decoder limited to what they found.
#[allow(clippy::type_complexity)] // the header, the decoder, and its orientation
fn open<'a>(
    bytes: &'a Bytes,
    format: ImageFormat,
    thumb_px: u32,
    limits: &ImageLimits,
) -> Result<(ImageHeader, impl ImageDecoder + 'a, Orientation), ImageError> {
    let file = bytes.len() as u64;
    // Pixels the file claims besides its picture (a GIF frame larger than its screen).
    let mut claimed = 0;
    // The container first: whole, and what the decoder will need beyond the picture.
    let working = match format {
        ImageFormat::Jpeg => {
            let layout = jpeg_layout(bytes)?;
            let px = u64::from(layout.width) * u64::from(layout.height);
            // Every 8×8 block of a component costs at least one bit of scan data: a file
            // with less is cut short (the decoder would fill the rest with grey).
            let blocks = u64::from(layout.width.div_ceil(8)) * u64::from(layout.height.div_ceil(8));
            if layout.scan_bytes.saturating_mul(8) < blocks {
                return Err(ImageError::Decode(format!(
                    "the JPEG is truncated: {} bytes of scan data cannot hold {}×{} pixels",
                    layout.scan_bytes, layout.width, layout.height
                )));
            }
            if layout.progressive {
                // 16-bit coefficients per sample, every component at full size at most.
                px * 2 * u64::from(layout.components)
            } else {
                0
            }
        }
        ImageFormat::Png => {
            png_complete(bytes)?;
            0
        }
        ImageFormat::Gif => {
            let gif = gif_layout(bytes)?;
            let (screen, frame) = (gif.screen_pixels(), gif.frame_pixels());
            // The first frame is what is shown and thumbnailed; a screen much larger
            // than it is empty canvas (a 1×1 frame on a 7071×7071 screen decoded to
            // 200 MB of transparent pixels).
            if frame.saturating_mul(4) < screen {
                return Err(ImageError::Implausible(format!(
                    "the GIF's first frame ({}×{}) covers under a quarter of its {}×{} screen",
                    gif.frame.2, gif.frame.3, gif.screen.0, gif.screen.1
                )));
            }
            claimed = frame;
            // A frame that does not span the screen is decoded into a buffer of its own.
            frame * 4
        }
        ImageFormat::WebP => {
            check_riff_chunks(bytes)?;
            0
        }
        other => {
            return Err(ImageError::Decode(format!(
                "unsupported image type {}",
                other.to_mime_type()
            )));
        }
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes.as_ref()), format);
    let mut header_limits = Limits::default();
    header_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(header_limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    // Some decoders take a zero width or height from the header and yield no pixels:
    // nothing to show, and clients divide by these.
    if width == 0 || height == 0 {
        return Err(ImageError::Decode(format!(
            "the image is {width}×{height} pixels"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    let claimed = pixels.max(claimed);
    if claimed > limits.max_pixels {
        return Err(ImageError::TooManyPixels(limits.max_pixels));
    }
    if claimed > limits.max_sparse_pixels && claimed > file.saturating_mul(limits.pixels_per_byte) {
        return Err(ImageError::Implausible(format!(
            "{claimed} pixels in {file} bytes; an image over {} pixels needs at least one \
             byte per {} pixels",
            limits.max_sparse_pixels, limits.pixels_per_byte
        )));
    }
    let orientation = decoder.orientation().map_err(decode_error)?;
    let rotated = orientation != Orientation::NoTransforms;
    let picture = pixels * u64::from(decoder.color_type().bytes_per_pixel());
    let thumbnail = u64::from(thumb_px) * u64::from(thumb_px) * 8;
    let decode_bytes =
        picture * if rotated { 2 } else { 1 } + working + file * 3 + thumbnail + DECODE_OVERHEAD;
    // The decoder may allocate no more than that, at no other size.
    let mut strict = Limits::default();
    strict.max_image_width = Some(width);
    strict.max_image_height = Some(height);
    strict.max_alloc = Some(decode_bytes);
    decoder.set_limits(strict).map_err(decode_error)?;
    let header = ImageHeader {
        width,
        height,
        decode_bytes,
    };
    Ok((header, decoder, orientation))
}

/// Strips metadata, reads dimensions and renders a thumbnail of at most `thumb_px` on
/// its longer side. Runs the checks of `read_header` first, so a small file cannot
/// expand into gigabytes (a decompression bomb), and decodes within the memory they
/// estimate.
pub fn clean_image(
    bytes: Bytes,
    mime: &str,
    thumb_px: u32,
    limits: &ImageLimits,
) -> Result<CleanImage, ImageError> {
    let format = format_of(mime)?;
    let (header, decoder, orientation) = open(&bytes, format, thumb_px, limits)?;
    let (width, height) = (header.width, header.height);
    let mut picture = DynamicImage::from_decoder(decoder).map_err(decode_error)?;

    let upright = orientation == Orientation::NoTransforms;
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
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
            match picture {
                // What a JPEG decodes to: encoded as it is, without a full-size copy.
                DynamicImage::ImageRgb8(_) | DynamicImage::ImageLuma8(_) => {
                    picture.write_with_encoder(encoder)
                }
                other => DynamicImage::ImageRgb8(other.to_rgb8()).write_with_encoder(encoder),
            }
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

    /// Limits with only a pixel bound (the plausibility rule starts above it).
    fn px(max_pixels: u64) -> ImageLimits {
        ImageLimits {
            max_pixels,
            max_sparse_pixels: max_pixels,
            pixels_per_byte: 128,
        }
    }

    fn encoded(picture: &DynamicImage, format: ImageFormat) -> Bytes {
        let mut out = Cursor::new(Vec::new());
        picture.write_to(&mut out, format).expect("encode");
        Bytes::from(out.into_inner())
    }

    #[test]
    fn a_small_image_is_not_enlarged_into_its_thumbnail() {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::new(8, 6));
        let clean = clean_image(
            encoded(&picture, ImageFormat::Png),
            "image/png",
            320,
            &px(1000),
        )
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
        let bomb = include_bytes!("../../../../../fuzz/findings/thumbnail-webp-exif-size");
        let refused = clean_image(Bytes::from_static(bomb), "image/webp", 320, &px(1_000_000));
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
        let flat = include_bytes!("../../../../../fuzz/findings/thumbnail-gif-zero-height");
        let refused = clean_image(Bytes::from_static(flat), "image/gif", 320, &px(1_000_000));
        assert!(matches!(refused, Err(ImageError::Decode(_))), "{refused:?}");
    }

    #[test]
    fn a_cleaned_image_always_opens() {
        // Found by fuzz/thumbnail: a JPEG with a stray marker decoded, but the file left
        // after stripping its metadata did not ("number of components cannot be zero").
        // It was kept as its pixels, re-encoded; it is in fact cut short inside a
        // segment (the decoder filled in the rest), so now it is refused as truncated.
        let odd = include_bytes!(
            "../../../../../fuzz/findings/thumbnail-jpeg-unreadable-after-stripping"
        );
        let refused = clean_image(Bytes::from_static(odd), "image/jpeg", 320, &px(1_000_000));
        match refused {
            Err(ImageError::Decode(m)) => assert!(m.contains("truncated"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rotated_webp_is_stored_as_the_jpeg_it_becomes() {
        let picture = DynamicImage::ImageRgb8(image::RgbImage::new(8, 6));
        let mut webp =
            img_parts::webp::WebP::from_bytes(encoded(&picture, ImageFormat::WebP)).expect("webp");
        webp.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
        let clean =
            clean_image(webp.encoder().bytes(), "image/webp", 320, &px(1000)).expect("clean");
        assert_eq!((clean.width, clean.height), (6, 8));
        assert_eq!(clean.mime, "image/jpeg");
        assert_eq!(sniff(&clean.bytes).mime, clean.mime);
    }

    /// A noisy RGB picture (it does not compress to nothing).
    fn noise(w: u32, h: u32) -> DynamicImage {
        let mut seed = 0x9e37_79b9_u32;
        DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let [a, b, c, _] = seed.to_le_bytes();
            image::Rgb([a, b, c])
        }))
    }

    #[test]
    fn a_jpeg_must_reach_its_end() {
        let jpeg = encoded(&noise(64, 48), ImageFormat::Jpeg);
        let layout = jpeg_layout(&jpeg).expect("whole");
        assert_eq!(
            (layout.width, layout.height, layout.components),
            (64, 48, 3)
        );
        assert!(!layout.progressive);
        // A trailer after the end-of-image marker (cameras, motion photos) is fine.
        let mut trailer = jpeg.to_vec();
        trailer.extend_from_slice(b"\xFF\xD8more data after the picture");
        assert!(jpeg_layout(&trailer).is_ok());
        // Cut anywhere after the headers: refused, where the decoder would pad it.
        for cut in [jpeg.len() - 2, jpeg.len() / 2, 700] {
            let refused = jpeg_layout(&jpeg[..cut]);
            assert!(matches!(refused, Err(ImageError::Decode(_))), "{cut}");
            let refused = clean_image(jpeg.slice(..cut), "image/jpeg", 32, &px(1_000_000));
            assert!(matches!(refused, Err(ImageError::Decode(_))), "{cut}");
        }
    }

    #[test]
    fn a_jpeg_whose_scans_are_too_short_for_its_frame_is_refused() {
        // The frame header claims 7071×7071, then an end-of-image marker: 390,000 blocks
        // cannot fit in a few kilobytes of scan data.
        let mut jpeg = encoded(&noise(64, 48), ImageFormat::Jpeg).to_vec();
        let sof = jpeg
            .windows(2)
            .position(|w| w == [0xFF, 0xC0])
            .expect("frame");
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x1B, 0x9F, 0x1B, 0x9F]);
        let refused = clean_image(Bytes::from(jpeg), "image/jpeg", 32, &px(50_000_000));
        match refused {
            Err(ImageError::Decode(m)) => assert!(m.contains("truncated"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_png_must_reach_its_end() {
        let png = encoded(&noise(40, 30), ImageFormat::Png);
        assert!(png_complete(&png).is_ok());
        // Without IEND (its 12 bytes), or cut inside the pixel data.
        for cut in [png.len() - 12, png.len() / 2] {
            let refused = clean_image(png.slice(..cut), "image/png", 32, &px(1_000_000));
            assert!(matches!(refused, Err(ImageError::Decode(_))), "{cut}");
        }
    }

    /// A GIF of `screen` with one `frame` (left, top, width, height) of colour 0; the
    /// LZW data is whatever `data` says.
    fn gif(screen: (u16, u16), frame: (u16, u16, u16, u16), data: &[u8]) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&screen.0.to_le_bytes());
        gif.extend_from_slice(&screen.1.to_le_bytes());
        gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x2C]);
        for v in [frame.0, frame.1, frame.2, frame.3] {
            gif.extend_from_slice(&v.to_le_bytes());
        }
        gif.extend_from_slice(&[0, 2]);
        gif.extend_from_slice(data);
        gif.push(0x3B);
        gif
    }

    #[test]
    fn a_gif_frame_lost_on_a_huge_screen_is_refused() {
        // The 35-byte bomb: a 1×1 frame on a 7071×7071 screen, 200 MB once decoded.
        let bomb = gif((7071, 7071), (0, 0, 1, 1), &[2, 0x44, 0x01, 0]);
        assert_eq!(bomb.len(), 35);
        let refused = read_header(&Bytes::from(bomb), "image/gif", 320, &px(50_000_000));
        assert!(
            matches!(refused, Err(ImageError::Implausible(_))),
            "{refused:?}"
        );
        // The other way round: a 1×1 screen holding a 7071×7071 frame.
        let inside_out = gif((1, 1), (0, 0, 7071, 7071), &[2, 0x44, 0x01, 0]);
        let limits = ImageLimits {
            max_pixels: 50_000_000,
            max_sparse_pixels: 4096 * 4096,
            pixels_per_byte: 128,
        };
        let refused = read_header(&Bytes::from(inside_out), "image/gif", 320, &limits);
        assert!(
            matches!(refused, Err(ImageError::Implausible(_))),
            "{refused:?}"
        );
        // A whole picture, and the same one without its trailer.
        let whole = encoded(&noise(20, 10), ImageFormat::Gif);
        let layout = gif_layout(&whole).expect("whole");
        assert_eq!((layout.screen, layout.frame), ((20, 10), (0, 0, 20, 10)));
        let cut = &whole[..whole.len() - 1];
        assert!(matches!(gif_layout(cut), Err(ImageError::Decode(_))));
        let cut = &whole[..whole.len() / 2];
        assert!(matches!(gif_layout(cut), Err(ImageError::Decode(_))));
    }

    #[test]
    fn large_pictures_need_bytes_to_match() {
        let limits = ImageLimits {
            max_pixels: 10_000_000,
            max_sparse_pixels: 250_000,
            pixels_per_byte: 128,
        };
        // Transparent pictures compressed as far as deflate goes (about 258 pixels per
        // byte), as the load generator's PNG bomb is.
        let flat = |side: u32| Bytes::from(palaver_bench::scenarios::bombs::png_bomb(side));
        // At the sparse bound anything goes; a flat picture past it is implausible;
        // the same size with detail is not.
        assert!(read_header(&flat(500), "image/png", 32, &limits).is_ok());
        let refused = read_header(&flat(600), "image/png", 32, &limits);
        assert!(
            matches!(refused, Err(ImageError::Implausible(_))),
            "{refused:?}"
        );
        let busy = encoded(&noise(600, 600), ImageFormat::Png);
        assert!(read_header(&busy, "image/png", 32, &limits).is_ok());
        // Over the pixel bound is another matter (413, not 422).
        let refused = read_header(&busy, "image/png", 32, &px(100_000));
        assert!(
            matches!(refused, Err(ImageError::TooManyPixels(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn the_decode_estimate_covers_the_picture_and_its_rotation() {
        let picture = noise(400, 300);
        let png = encoded(&picture, ImageFormat::Png);
        let upright = read_header(&png, "image/png", 320, &px(1_000_000)).expect("header");
        assert_eq!((upright.width, upright.height), (400, 300));
        let pixels = 400 * 300 * 3;
        let fixed = 3 * png.len() as u64 + 320 * 320 * 8 + DECODE_OVERHEAD;
        assert_eq!(upright.decode_bytes, pixels + fixed);
        // A picture that must be rotated holds two copies of its pixels.
        let jpeg = encoded(&picture, ImageFormat::Jpeg);
        let mut rotated = img_parts::jpeg::Jpeg::from_bytes(jpeg).expect("jpeg");
        rotated.set_exif(Some(Bytes::from_static(EXIF_ROTATE)));
        let rotated = rotated.encoder().bytes();
        let header = read_header(&rotated, "image/jpeg", 320, &px(1_000_000)).expect("header");
        let fixed = 3 * rotated.len() as u64 + 320 * 320 * 8 + DECODE_OVERHEAD;
        assert_eq!(header.decode_bytes, 2 * pixels + fixed);
    }

    #[test]
    fn garbage_is_not_an_image() {
        let err = clean_image(
            Bytes::from_static(b"\x89PNG\r\n\x1a\nnope"),
            "image/png",
            64,
            &px(1000),
        );
        assert!(matches!(err, Err(ImageError::Decode(_))));
    }
}
