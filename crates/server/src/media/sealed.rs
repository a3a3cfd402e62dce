//! Media sealed at rest: the file format of an encrypted media object on local disk.
//!
//! ```text
//! header, 56 bytes (the associated data of every chunk, so none of it can be altered):
//!    0  magic "palaver\0"            8
//!    8  format version (1)           1
//!    9  log2 of the chunk size (16)  1
//!   10  key id                       4   which at-rest key sealed it (at_rest::KeyId)
//!   14  reserved, zero               2
//!   16  salt                        32   random per file
//!   48  plaintext length, u64 BE     8
//! chunks: each 64 KiB of plaintext (the last one shorter, possibly empty) as
//!   AES-256-GCM ciphertext + 16-byte tag
//! ```
//!
//! Chunks are sealed with the STREAM construction (Hoang, Reyhanitabar, Rogaway and
//! Vizár, "Online Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance"), as
//! RustCrypto's `aead::stream::StreamBE32` implements it: each chunk's nonce holds its
//! position and a flag marking the last chunk, so chunks cannot be reordered, dropped,
//! duplicated or moved between files, and a file cut at a chunk boundary fails too.
//! Since every chunk authenticates the header, which states the length, a reader knows
//! from the header alone how long the file must be and which chunk is the last, and a
//! range read can decrypt just the chunks it covers (`Header::span`).
//!
//! Each file has its own AES-256 key, derived with HKDF-SHA256 from the media key
//! (`at_rest::AtRestKey::media_key`) and the file's random 32-byte salt, so nonces
//! never repeat under one key however many files there are (the STREAM nonce prefix is
//! then constant). Nothing here is cryptography of our own: key derivation is `hkdf`,
//! the chunks are `aes-gcm` through `aead::stream`.
//!
//! Object names stay the SHA-256 of the plaintext (see `media::local` for why).

use std::io::{self, Read, Write};
use std::ops::Range;

use aes_gcm::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

use crate::at_rest::{AtRestKey, KeyId};

/// The first bytes of every sealed object.
pub const MAGIC: [u8; 8] = *b"palaver\0";
/// The format this build writes and reads.
pub const VERSION: u8 = 1;
/// Bytes of the header.
pub const HEADER_LEN: usize = 56;
/// Bytes of each chunk's authentication tag.
pub const TAG_LEN: usize = 16;
/// log2 of the plaintext bytes per chunk: 64 KiB, a tag (0.02%) per 64 KiB and at most
/// one extra chunk decrypted at each end of a range.
pub const CHUNK_LOG2: u8 = 16;

const FILE_KEY_LABEL: &[u8] = b"palaver media file key v1";

/// Why a sealed object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed with format version {0}, which this palaver does not read")]
    Version(u8),
    #[error("the header is malformed: {0}")]
    Header(&'static str),
    #[error(
        "sealed with key {0}, which is not configured (an older key? see `palaver rekey` in docs/DEPLOYMENT.md)"
    )]
    UnknownKey(KeyId),
    #[error("sealed with key {0}, and no encryption key is configured")]
    NoKey(KeyId),
    #[error("the object is truncated or has bytes past its end")]
    Length,
    #[error("the object is damaged, or was not sealed with this key (authentication failed)")]
    Damaged,
    #[error("the input was {found} bytes where {expected} were announced")]
    Input { expected: u64, found: u64 },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// A media key and its id.
#[derive(Clone)]
struct MediaKey {
    id: KeyId,
    key: [u8; 32],
}

impl MediaKey {
    fn of(key: &AtRestKey) -> MediaKey {
        MediaKey {
            id: key.id(),
            key: key.media_key(),
        }
    }
}

/// The keys a media store seals with (the current one) and opens with (the current one
/// and, during a rotation, the previous).
#[derive(Clone)]
pub struct Keyring {
    current: MediaKey,
    previous: Option<MediaKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let previous = self.previous.as_ref().map(|k| k.id);
        write!(f, "Keyring({}, previous {previous:?})", self.current.id)
    }
}

impl Keyring {
    /// Seals and opens with `key`.
    pub fn new(key: &AtRestKey) -> Keyring {
        Keyring {
            current: MediaKey::of(key),
            previous: None,
        }
    }

    /// Also opens what `old` sealed (a rotation from `old` to the current key).
    pub fn with_previous(mut self, old: &AtRestKey) -> Keyring {
        self.previous = Some(MediaKey::of(old));
        self
    }

    /// The id of the key new objects are sealed with.
    pub fn current_id(&self) -> KeyId {
        self.current.id
    }

    fn find(&self, id: KeyId) -> Result<&MediaKey, SealError> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.id == id)
            .ok_or(SealError::UnknownKey(id))
    }
}

/// Whether bytes begin like a sealed object (objects stored before encryption was
/// turned on do not, and are served as they are).
pub fn is_sealed(prefix: &[u8]) -> bool {
    prefix.starts_with(&MAGIC)
}

/// A sealed object's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The key that sealed it.
    pub key_id: KeyId,
    salt: [u8; 32],
    /// Bytes of plaintext.
    pub len: u64,
}

/// The chunks a plaintext range lies in, and which of their bytes it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// The first chunk to decrypt.
    pub first: u64,
    /// How many chunks, from `first`.
    pub count: u64,
    /// Plaintext bytes of the first chunk before the range.
    pub skip: u64,
    /// Plaintext bytes of the range.
    pub take: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8] = VERSION;
        out[9] = CHUNK_LOG2;
        out[10..14].copy_from_slice(&self.key_id.0);
        out[16..48].copy_from_slice(&self.salt);
        out[48..56].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Reads a header (authenticated only once a chunk has been opened with it).
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, SealError> {
        if !is_sealed(bytes) {
            return Err(SealError::Header("no magic number"));
        }
        if bytes[8] != VERSION {
            return Err(SealError::Version(bytes[8]));
        }
        if bytes[9] != CHUNK_LOG2 || bytes[14..16] != [0, 0] {
            return Err(SealError::Header("unknown chunk size or reserved bytes"));
        }
        let field = |r: Range<usize>| bytes[r].to_vec();
        let header = Header {
            key_id: KeyId(field(10..14).try_into().map_err(|_| SealError::Damaged)?),
            salt: field(16..48).try_into().map_err(|_| SealError::Damaged)?,
            len: u64::from_be_bytes(field(48..56).try_into().map_err(|_| SealError::Damaged)?),
        };
        if header.chunks() > u64::from(u32::MAX) {
            return Err(SealError::Header("too long"));
        }
        Ok(header)
    }

    /// Plaintext bytes per chunk.
    pub const fn chunk_size() -> u64 {
        1 << CHUNK_LOG2
    }

    /// Chunks in the file: at least one (an empty file has one empty chunk, whose tag
    /// still says it is the last).
    pub fn chunks(&self) -> u64 {
        self.len.div_ceil(Self::chunk_size()).max(1)
    }

    /// Bytes of the sealed file.
    pub fn sealed_len(&self) -> u64 {
        HEADER_LEN as u64 + self.len + self.chunks() * TAG_LEN as u64
    }

    /// Plaintext bytes of chunk `index`.
    pub fn chunk_len(&self, index: u64) -> u64 {
        let start = index * Self::chunk_size();
        self.len.saturating_sub(start).min(Self::chunk_size())
    }

    /// Where chunk `index` begins in the sealed file.
    pub fn chunk_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * (Self::chunk_size() + TAG_LEN as u64)
    }

    /// The chunks holding plaintext `range` (clamped to the object).
    pub fn span(&self, range: Range<u64>) -> Span {
        let end = range.end.min(self.len);
        let start = range.start.min(end);
        if start == end {
            return Span {
                first: 0,
                count: 0,
                skip: 0,
                take: 0,
            };
        }
        let first = start / Self::chunk_size();
        let last = (end - 1) / Self::chunk_size();
        Span {
            first,
            count: last - first + 1,
            skip: start - first * Self::chunk_size(),
            take: end - start,
        }
    }
}

/// One file's cipher: its header and the STREAM under its own key.
pub struct FileCipher {
    header: Header,
    aad: [u8; HEADER_LEN],
    stream: StreamBE32<Aes256Gcm>,
}

impl FileCipher {
    fn new(key: &MediaKey, header: Header) -> FileCipher {
        let mut file_key = [0u8; 32];
        // 32 bytes of HKDF-SHA256 output never fail.
        let _ =
            Hkdf::<Sha256>::new(Some(&header.salt), &key.key).expand(FILE_KEY_LABEL, &mut file_key);
        let aead = Aes256Gcm::new(&file_key.into());
        // The key is the file's own, so a constant nonce prefix never repeats under it.
        let stream = StreamBE32::from_aead(aead, &Default::default());
        FileCipher {
            aad: header.encode(),
            header,
            stream,
        }
    }

    /// The cipher of a sealed file, from its header bytes.
    pub fn open(keys: &Keyring, header: &[u8; HEADER_LEN]) -> Result<FileCipher, SealError> {
        let parsed = Header::parse(header)?;
        let key = keys.find(parsed.key_id)?;
        Ok(Self::new(key, parsed))
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    fn position(&self, index: u64) -> Result<(u32, bool), SealError> {
        let last = index + 1 == self.header.chunks();
        let position = u32::try_from(index).map_err(|_| SealError::Length)?;
        Ok((position, last))
    }

    /// Decrypts chunk `index` in place: `buf` holds its ciphertext and tag, and then
    /// its plaintext.
    pub fn open_chunk(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        if index >= self.header.chunks()
            || buf.len() as u64 != self.header.chunk_len(index) + TAG_LEN as u64
        {
            return Err(SealError::Length);
        }
        let (position, last) = self.position(index)?;
        self.stream
            .decrypt_in_place(position, last, &self.aad, buf)
            .map_err(|_| SealError::Damaged)
    }

    fn seal_chunk(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), SealError> {
        let (position, last) = self.position(index)?;
        self.stream
            .encrypt_in_place(position, last, &self.aad, buf)
            .map_err(|_| SealError::Damaged)
    }
}

/// Seals `len` bytes read from `input` into `output` under the keyring's current key.
/// Fails if `input` holds more or fewer than `len` bytes.
pub fn seal(
    keys: &Keyring,
    len: u64,
    input: &mut impl Read,
    output: &mut impl Write,
) -> Result<(), SealError> {
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let header = Header {
        key_id: keys.current.id,
        salt,
        len,
    };
    if header.chunks() > u64::from(u32::MAX) {
        return Err(SealError::Header("too long"));
    }
    let cipher = FileCipher::new(&keys.current, header);
    output.write_all(&cipher.aad)?;
    let mut buf = Vec::with_capacity(Header::chunk_size() as usize + TAG_LEN);
    for index in 0..cipher.header.chunks() {
        let want = cipher.header.chunk_len(index);
        buf.clear();
        let got = input.by_ref().take(want).read_to_end(&mut buf)? as u64;
        if got != want {
            return Err(SealError::Input {
                expected: len,
                found: index * Header::chunk_size() + got,
            });
        }
        cipher.seal_chunk(index, &mut buf)?;
        output.write_all(&buf)?;
    }
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(SealError::Input {
            expected: len,
            found: len + 1,
        });
    }
    Ok(())
}

/// The plaintext of a media object read in order, whether sealed or stored before
/// encryption was turned on (then its bytes pass through as they are). Each chunk is
/// authenticated before any of its bytes are returned, and a sealed object that ends
/// early, or goes on past its end, is an error.
pub struct PlainReader<R> {
    inner: R,
    state: State,
}

enum State {
    /// An object stored unsealed: `peeked` (its first bytes), then the rest.
    Plain { peeked: Vec<u8>, at: usize },
    Sealed {
        cipher: Box<FileCipher>,
        next: u64,
        chunk: Vec<u8>,
        at: usize,
    },
}

impl<R: Read> PlainReader<R> {
    /// Reads the start of `inner` to tell a sealed object from an unsealed one. With no
    /// keyring, a sealed object is an error.
    pub fn new(keys: Option<&Keyring>, mut inner: R) -> Result<PlainReader<R>, SealError> {
        let mut peeked = Vec::with_capacity(HEADER_LEN);
        (&mut inner)
            .take(MAGIC.len() as u64)
            .read_to_end(&mut peeked)?;
        if !is_sealed(&peeked) {
            return Ok(PlainReader {
                inner,
                state: State::Plain { peeked, at: 0 },
            });
        }
        (&mut inner)
            .take((HEADER_LEN - MAGIC.len()) as u64)
            .read_to_end(&mut peeked)?;
        let header: [u8; HEADER_LEN] = peeked.try_into().map_err(|_| SealError::Length)?;
        let Some(keys) = keys else {
            let id = Header::parse(&header)?.key_id;
            return Err(SealError::NoKey(id));
        };
        let cipher = FileCipher::open(keys, &header)?;
        Ok(PlainReader {
            inner,
            state: State::Sealed {
                cipher: Box::new(cipher),
                next: 0,
                chunk: Vec::new(),
                at: 0,
            },
        })
    }

    /// Whether the object is sealed, and with which key.
    pub fn sealed_with(&self) -> Option<KeyId> {
        match &self.state {
            State::Plain { .. } => None,
            State::Sealed { cipher, .. } => Some(cipher.header.key_id),
        }
    }

    /// Bytes of plaintext, when the object is sealed (its header says).
    pub fn plain_len(&self) -> Option<u64> {
        match &self.state {
            State::Plain { .. } => None,
            State::Sealed { cipher, .. } => Some(cipher.header.len),
        }
    }
}

impl<R: Read> Read for PlainReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match &mut self.state {
            State::Plain { peeked, at } => {
                if *at < peeked.len() {
                    let n = out.len().min(peeked.len() - *at);
                    out[..n].copy_from_slice(&peeked[*at..*at + n]);
                    *at += n;
                    return Ok(n);
                }
                self.inner.read(out)
            }
            State::Sealed {
                cipher,
                next,
                chunk,
                at,
            } => {
                while *at == chunk.len() {
                    if *next == cipher.header.chunks() {
                        let mut extra = [0u8; 1];
                        if self.inner.read(&mut extra)? != 0 {
                            return Err(invalid(SealError::Length));
                        }
                        return Ok(0);
                    }
                    let want = cipher.header.chunk_len(*next) + TAG_LEN as u64;
                    chunk.clear();
                    let got = (&mut self.inner).take(want).read_to_end(chunk)? as u64;
                    if got != want {
                        return Err(invalid(SealError::Length));
                    }
                    cipher.open_chunk(*next, chunk).map_err(invalid)?;
                    *next += 1;
                    *at = 0;
                }
                let n = out.len().min(chunk.len() - *at);
                out[..n].copy_from_slice(&chunk[*at..*at + n]);
                *at += n;
                Ok(n)
            }
        }
    }
}

/// A seal error as an I/O error (`InvalidData`), for `Read` implementations.
pub fn invalid(e: SealError) -> io::Error {
    match e {
        SealError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

/// The hex SHA-256 of an object's plaintext: its media key when it is whole. For
/// backups and `palaver rekey`, which check each object against its name.
pub fn plain_sha256(keys: Option<&Keyring>, inner: impl Read) -> Result<String, SealError> {
    use sha2::Digest;
    let mut reader = PlainReader::new(keys, inner)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => e
                .into_inner()
                .and_then(|inner| inner.downcast::<SealError>().ok())
                .map_or(SealError::Damaged, |e| *e),
            _ => SealError::Io(e),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 1 << CHUNK_LOG2;

    fn keyring() -> (AtRestKey, Keyring) {
        let key = AtRestKey::generate();
        let ring = Keyring::new(&key);
        (key, ring)
    }

    fn plaintext(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    fn sealed(keys: &Keyring, plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(keys, plain.len() as u64, &mut &plain[..], &mut out).expect("seal");
        out
    }

    fn open_all(keys: Option<&Keyring>, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let mut reader = PlainReader::new(keys, bytes).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// What a range read does (media::local does the same over a file).
    fn open_range(keys: &Keyring, bytes: &[u8], range: Range<u64>) -> Result<Vec<u8>, SealError> {
        let header: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().expect("header");
        let cipher = FileCipher::open(keys, &header)?;
        if cipher.header().sealed_len() != bytes.len() as u64 {
            return Err(SealError::Length);
        }
        let span = cipher.header().span(range);
        let mut out = Vec::new();
        for index in span.first..span.first + span.count {
            let at = cipher.header().chunk_offset(index) as usize;
            let len = cipher.header().chunk_len(index) as usize + TAG_LEN;
            let mut chunk = bytes[at..at + len].to_vec();
            cipher.open_chunk(index, &mut chunk)?;
            out.extend_from_slice(&chunk);
        }
        let skip = span.skip as usize;
        Ok(out[skip..skip + span.take as usize].to_vec())
    }

    #[test]
    fn round_trips_at_every_size_around_chunk_boundaries() {
        let (_, keys) = keyring();
        for len in [
            0,
            1,
            100,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK,
            3 * CHUNK + 7,
        ] {
            let plain = plaintext(len);
            let bytes = sealed(&keys, &plain);
            let header = Header::parse(bytes[..HEADER_LEN].try_into().expect("header"))
                .expect("header parses");
            assert_eq!(header.len, len as u64);
            assert_eq!(header.key_id, keys.current_id());
            assert_eq!(header.sealed_len(), bytes.len() as u64, "{len}");
            assert_eq!(
                open_all(Some(&keys), &bytes).expect("opens"),
                plain,
                "{len}"
            );
            assert_eq!(
                plain_sha256(Some(&keys), &bytes[..]).expect("hash"),
                hex::encode(<Sha256 as sha2::Digest>::digest(&plain))
            );
        }
    }

    #[test]
    fn no_plaintext_shows_and_two_seals_of_one_file_differ() {
        let (_, keys) = keyring();
        let plain = b"the quick brown fox jumps over the lazy dog ".repeat(5000);
        let a = sealed(&keys, &plain);
        let b = sealed(&keys, &plain);
        assert_ne!(a, b, "a fresh salt per file");
        assert!(
            !a.windows(16)
                .any(|w| plain.windows(16).take(64).any(|p| p == w))
        );
    }

    #[test]
    fn range_reads_decrypt_only_their_chunks_across_boundaries() {
        let (_, keys) = keyring();
        let len = 3 * CHUNK as u64 + 1000;
        let plain = plaintext(len as usize);
        let bytes = sealed(&keys, &plain);
        let header = Header::parse(bytes[..HEADER_LEN].try_into().expect("h")).expect("h");
        let c = CHUNK as u64;
        for range in [
            0..1,
            0..len,
            c - 1..c + 1,
            c..2 * c,
            c - 10..2 * c + 10,
            2 * c + 5..3 * c + 999,
            len - 1..len,
            5..5,
        ] {
            let got = open_range(&keys, &bytes, range.clone()).expect("range opens");
            assert_eq!(
                got,
                plain[range.start as usize..range.end as usize],
                "{range:?}"
            );
        }
        // Only the chunks a range touches.
        assert_eq!(
            header.span(c - 1..c + 1),
            Span {
                first: 0,
                count: 2,
                skip: c - 1,
                take: 2
            }
        );
        assert_eq!(header.span(c..2 * c).count, 1);
        // A range read of an intact chunk still refuses a file of the wrong length.
        let mut short = bytes.clone();
        short.truncate(bytes.len() - 1);
        assert!(matches!(
            open_range(&keys, &short, 0..10),
            Err(SealError::Length)
        ));
    }

    #[test]
    fn truncation_is_refused_at_any_point() {
        let (_, keys) = keyring();
        let plain = plaintext(2 * CHUNK + 10);
        let bytes = sealed(&keys, &plain);
        let boundary = HEADER_LEN + CHUNK + TAG_LEN;
        for cut in [
            0,
            4,
            HEADER_LEN - 1,
            HEADER_LEN,
            HEADER_LEN + 10,
            boundary,
            2 * boundary - HEADER_LEN,
            bytes.len() - 1,
        ] {
            let result = open_all(Some(&keys), &bytes[..cut]);
            // A cut inside the magic is no longer a sealed object: it reads as the
            // unsealed bytes it is, which cannot hash to the object's name.
            if cut < MAGIC.len() {
                assert_eq!(result.expect("plain"), bytes[..cut].to_vec());
            } else {
                assert!(result.is_err(), "cut at {cut}");
            }
        }
        // Bytes past the end are refused too.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(open_all(Some(&keys), &longer).is_err());
        // Dropping the whole last chunk, header untouched: its count says it is missing.
        assert!(open_all(Some(&keys), &bytes[..2 * boundary - HEADER_LEN]).is_err());
    }

    #[test]
    fn tampering_anywhere_is_refused() {
        let (_, keys) = keyring();
        let plain = plaintext(2 * CHUNK + 10);
        let bytes = sealed(&keys, &plain);
        for at in [10, 20, 50, HEADER_LEN, HEADER_LEN + CHUNK, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(open_all(Some(&keys), &bad).is_err(), "flip at {at}");
        }
        // A longer length in the header, even with the file padded to match.
        let mut longer = bytes.clone();
        longer[55] = longer[55].wrapping_add(1);
        longer.push(0);
        assert!(open_all(Some(&keys), &longer).is_err());
        // Chunks swapped.
        let (a, b) = (HEADER_LEN, HEADER_LEN + CHUNK + TAG_LEN);
        let mut swapped = bytes.clone();
        swapped[a..b].copy_from_slice(&bytes[b..b + (b - a)]);
        swapped[b..b + (b - a)].copy_from_slice(&bytes[a..b]);
        assert!(open_all(Some(&keys), &swapped).is_err());
        // A chunk from another file sealed with the same key.
        let other = sealed(&keys, &plain);
        let mut spliced = bytes.clone();
        spliced[a..b].copy_from_slice(&other[a..b]);
        assert!(open_all(Some(&keys), &spliced).is_err());
    }

    #[test]
    fn the_wrong_key_or_none_is_refused_and_rotation_opens_both() {
        let (old, old_keys) = keyring();
        let plain = plaintext(CHUNK + 5);
        let bytes = sealed(&old_keys, &plain);
        let (new, new_keys) = keyring();
        let err = open_all(Some(&new_keys), &bytes).expect_err("other key");
        assert!(err.contains(&old.id().to_string()), "{err}");
        assert!(open_all(None, &bytes).is_err());
        // A key with the same id but other bytes fails authentication.
        let mut forged = bytes.clone();
        forged[10..14].copy_from_slice(&new.id().0);
        assert!(open_all(Some(&new_keys), &forged).is_err());
        // Mid-rotation: the new key seals, both open.
        let both = Keyring::new(&new).with_previous(&old);
        assert_eq!(open_all(Some(&both), &bytes).expect("old opens"), plain);
        let resealed = sealed(&both, &plain);
        assert_eq!(
            PlainReader::new(Some(&both), &resealed[..])
                .expect("opens")
                .sealed_with(),
            Some(new.id())
        );
        assert_eq!(
            open_all(Some(&new_keys), &resealed).expect("new opens"),
            plain
        );
    }

    #[test]
    fn unsealed_objects_pass_through_and_short_input_is_refused() {
        let (_, keys) = keyring();
        let plain = b"stored before encryption was turned on".to_vec();
        assert_eq!(open_all(Some(&keys), &plain).expect("plain"), plain);
        assert_eq!(open_all(None, &plain).expect("plain"), plain);
        let mut out = Vec::new();
        assert!(matches!(
            seal(&keys, 100, &mut &plain[..], &mut out),
            Err(SealError::Input { .. })
        ));
        assert!(matches!(
            seal(&keys, 3, &mut &plain[..], &mut Vec::new()),
            Err(SealError::Input { .. })
        ));
    }
}
