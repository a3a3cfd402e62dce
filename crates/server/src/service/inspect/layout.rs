//! Walking an image's container (JPEG segments and scans, PNG chunks, GIF blocks, WebP's
//! RIFF chunks) without decompressing anything: a file cut short, or one whose sizes do
//! not add up, is refused before the decoder sees it.

use bytes::Bytes;

use super::ImageError;

/// Refuses a WebP whose RIFF container or any chunk in it claims more bytes than the file
/// holds. The decoder sizes its buffers from those claims, past the memory limits it is
/// given: a 214-byte file claiming a 1.3 GB EXIF chunk made it allocate 1.3 GB.
pub(super) fn check_riff_chunks(bytes: &[u8]) -> Result<(), ImageError> {
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

/// What a JPEG's markers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JpegLayout {
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) components: u8,
    pub(super) progressive: bool,
    /// Bytes of entropy-coded data across all scans.
    pub(super) scan_bytes: u64,
}

/// Walks a JPEG's segments and scans to its end-of-image marker, so a file cut short
/// is refused rather than decoded with the missing part filled in. Bytes after the
/// marker are allowed (cameras append trailers, motion photos a video).
pub(super) fn jpeg_layout(bytes: &[u8]) -> Result<JpegLayout, ImageError> {
    let truncated = || ImageError::Decode("the JPEG is truncated (no end-of-image marker)".into());
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(ImageError::Decode("not a JPEG".into()));
    }
    let mut frame: Option<JpegLayout> = None;
    let mut scan_bytes = 0u64;
    let mut at = 2;
    loop {
        // Decoders skip stray bytes between segments, and fill bytes (0xFF) before a
        // marker; so does this walk.
        at += bytes
            .get(at..)
            .and_then(|rest| rest.iter().position(|b| *b == 0xFF))
            .ok_or_else(truncated)?;
        while bytes.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let marker = *bytes.get(at + 1).ok_or_else(truncated)?;
        at += 2;
        match marker {
            0xD9 => break,
            // Markers without a length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = bytes
            .get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(truncated)?;
        let body = bytes.get(at + 2..at + len.max(2)).ok_or_else(truncated)?;
        if len < 2 {
            return Err(ImageError::Decode(
                "a JPEG segment has a length under 2".into(),
            ));
        }
        at += len;
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame && frame.is_none() {
            let [_, h1, h0, w1, w0, n, ..] = *body else {
                return Err(ImageError::Decode(
                    "a JPEG frame header is too short".into(),
                ));
            };
            frame = Some(JpegLayout {
                width: u32::from(u16::from_be_bytes([w1, w0])),
                height: u32::from(u16::from_be_bytes([h1, h0])),
                components: n.max(1),
                progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
                scan_bytes: 0,
            });
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker: 0xFF not followed by a stuffed
            // zero, a restart marker or a fill byte.
            let start = at;
            loop {
                let ff = bytes[at..]
                    .iter()
                    .position(|b| *b == 0xFF)
                    .ok_or_else(truncated)?;
                at += ff;
                match bytes.get(at + 1) {
                    None => return Err(truncated()),
                    Some(0x00 | 0xD0..=0xD7) => at += 2,
                    Some(0xFF) => at += 1,
                    Some(_) => break,
                }
            }
            scan_bytes += (at - start) as u64;
        }
    }
    let mut layout = frame.ok_or_else(|| ImageError::Decode("the JPEG has no frame".into()))?;
    if scan_bytes == 0 {
        return Err(ImageError::Decode("the JPEG has no scan".into()));
    }
    layout.scan_bytes = scan_bytes;
    Ok(layout)
}

/// Refuses a PNG that does not end in its IEND chunk (cut short), or whose chunks do
/// not add up or fail their checksums.
pub(super) fn png_complete(bytes: &Bytes) -> Result<(), ImageError> {
    let png = img_parts::png::Png::from_bytes(bytes.clone())
        .map_err(|e| ImageError::Decode(format!("the PNG is damaged: {e}")))?;
    match png.chunks().last() {
        Some(chunk) if &chunk.kind() == b"IEND" => Ok(()),
        _ => Err(ImageError::Decode(
            "the PNG is truncated (no IEND chunk)".into(),
        )),
    }
}

/// A GIF's logical screen and first frame (left, top, width, height).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct GifLayout {
    pub(super) screen: (u16, u16),
    pub(super) frame: (u16, u16, u16, u16),
}

impl GifLayout {
    pub(super) fn screen_pixels(&self) -> u64 {
        u64::from(self.screen.0) * u64::from(self.screen.1)
    }
    pub(super) fn frame_pixels(&self) -> u64 {
        u64::from(self.frame.2) * u64::from(self.frame.3)
    }
}

/// Walks a GIF's blocks (without decompressing any) to its trailer: a file cut short
/// is refused. Returns the screen and the first frame.
pub(super) fn gif_layout(bytes: &[u8]) -> Result<GifLayout, ImageError> {
    let truncated = || ImageError::Decode("the GIF is truncated (no trailer)".into());
    let u16_at = |at: usize| -> Option<u16> {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    // A colour table of 2^(n+1) entries follows when the flag's top bit is set.
    let table = |flags: u8| {
        if flags & 0x80 != 0 {
            3usize << ((flags & 7) + 1)
        } else {
            0
        }
    };
    // Sub-blocks: a length byte, that many bytes, … until a zero length.
    let skip_blocks = |mut at: usize| -> Result<usize, ImageError> {
        loop {
            let len = usize::from(*bytes.get(at).ok_or_else(truncated)?);
            at += 1 + len;
            if len == 0 {
                return Ok(at);
            }
        }
    };
    if !(bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a")) {
        return Err(ImageError::Decode("not a GIF".into()));
    }
    let screen = (
        u16_at(6).ok_or_else(truncated)?,
        u16_at(8).ok_or_else(truncated)?,
    );
    let flags = *bytes.get(10).ok_or_else(truncated)?;
    let mut at = 13 + table(flags);
    let mut frame = None;
    loop {
        match bytes.get(at) {
            None => return Err(truncated()),
            Some(0x3B) => break,
            Some(0x21) => at = skip_blocks(at + 2)?,
            Some(0x2C) => {
                let field = |i: usize| u16_at(at + 1 + 2 * i).ok_or_else(truncated);
                let this = (field(0)?, field(1)?, field(2)?, field(3)?);
                frame.get_or_insert(this);
                let flags = *bytes.get(at + 9).ok_or_else(truncated)?;
                // The descriptor, a local colour table, the LZW code size, the data.
                at = skip_blocks(at + 10 + table(flags) + 1)?;
            }
            Some(other) => {
                return Err(ImageError::Decode(format!(
                    "the GIF has an unknown block 0x{other:02x}"
                )));
            }
        }
    }
    let frame = frame.ok_or_else(|| ImageError::Decode("the GIF has no frame".into()))?;
    Ok(GifLayout { screen, frame })
}
