//! gzip for chunk files and SHA-256 for their checksums.
//!
//! gzip goes through `flate2` on the backend chosen by this crate's
//! features: `zlib-rs` (pure Rust, the default) or `zlib-ng` (C, built with
//! cmake; takes precedence when enabled). [`backend`] says which one is in
//! use. Output has the header Java's `GZIPOutputStream` writes (no name, no
//! mtime, OS byte 255 "unknown").

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::GzBuilder;
use sha2::{Digest, Sha256};

use crate::error::{CodecError, Result};

/// How chunk bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored as is.
    None,
    /// gzip at a deflate level from 0 (store) to 9 (smallest).
    Gzip {
        /// The deflate level.
        level: u32,
    },
}

impl Default for Compression {
    /// gzip level 6, what the reference (`GZIPOutputStream`) uses.
    fn default() -> Compression {
        Compression::Gzip { level: 6 }
    }
}

impl Compression {
    /// gzip at `level` (0–9).
    pub fn gzip(level: u32) -> Result<Compression> {
        if level > 9 {
            return Err(CodecError::Unencodable {
                what: format!("gzip level {level}"),
                reason: "gzip levels run from 0 to 9".into(),
            });
        }
        Ok(Compression::Gzip { level })
    }
}

/// The deflate implementation in use: `"zlib-ng"`, `"zlib-rs"` or
/// `"miniz_oxide"`.
pub fn backend() -> &'static str {
    if cfg!(feature = "zlib-ng") {
        "zlib-ng"
    } else if cfg!(feature = "zlib-rs") {
        "zlib-rs"
    } else {
        "miniz_oxide"
    }
}

/// Compresses `data` into a new vector.
pub fn compress(data: &[u8], compression: Compression) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    compress_into(data, compression, &mut out)?;
    Ok(out)
}

/// Compresses `data`, appending to `out`.
pub fn compress_into(data: &[u8], compression: Compression, out: &mut Vec<u8>) -> Result<()> {
    match compression {
        Compression::None => {
            out.extend_from_slice(data);
            Ok(())
        }
        Compression::Gzip { level } => {
            out.reserve(data.len() / 3 + 64);
            let mut enc = gzip_writer(&mut *out, level)?;
            enc.write_all(data)
                .map_err(|e| CodecError::io("gzip-compressing a chunk", e))?;
            enc.finish()
                .map_err(|e| CodecError::io("finishing a gzip stream", e))?;
            Ok(())
        }
    }
}

/// gzip-compresses `data` at `level` (0–9).
pub fn gzip_compress(data: &[u8], level: u32) -> Result<Vec<u8>> {
    compress(data, Compression::gzip(level)?)
}

/// A streaming gzip compressor writing into `out`, with the header the
/// reference writes.
pub fn gzip_writer<W: Write>(out: W, level: u32) -> Result<GzEncoder<W>> {
    Compression::gzip(level)?;
    Ok(GzBuilder::new()
        .operating_system(255)
        .write(out, flate2::Compression::new(level)))
}

/// A streaming gzip decompressor over `input`. Concatenated gzip members
/// are read as one stream, as Java's `GZIPInputStream` does.
pub fn gunzip_reader<R: Read>(input: R) -> MultiGzDecoder<BufReader<R>> {
    MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, input))
}

/// Decompresses everything from `input` into a new vector of at most
/// `max_bytes`: more is [`CodecError::Limit`], found after inflating one
/// byte more than allowed and no further (a small gzip stream can claim
/// any size).
pub fn decompress(input: &[u8], compression: Compression, max_bytes: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_reader(input, compression)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| CodecError::io("decompressing a chunk", e))?;
    if out.len() as u64 > max_bytes {
        return Err(CodecError::Limit {
            offset: max_bytes,
            reason: format!("the data inflates to more than {max_bytes} bytes"),
        });
    }
    Ok(out)
}

/// A reader yielding the decompressed bytes of `input`.
pub fn decompress_reader<R: Read>(input: R, compression: Compression) -> Decompressor<R> {
    match compression {
        Compression::None => Decompressor(Inner::Plain(BufReader::new(input))),
        Compression::Gzip { .. } => Decompressor(Inner::Gzip(Box::new(gunzip_reader(input)))),
    }
}

/// The reader returned by [`decompress_reader`].
#[derive(Debug)]
pub struct Decompressor<R>(Inner<R>);

#[derive(Debug)]
enum Inner<R> {
    Plain(BufReader<R>),
    Gzip(Box<MultiGzDecoder<BufReader<R>>>),
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
        }
    }
}

/// The SHA-256 of `bytes` as 64 lowercase hex digits (the chunk checksum
/// of the manifest).
///
/// ```
/// assert_eq!(
///     datacamp_codec::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 of everything read from `input`, as lowercase hex, and the
/// number of bytes read.
pub fn sha256_hex_reader<R: Read>(input: R) -> Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut total = 0u64;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| CodecError::io(format!("hashing input at byte offset {total}"), e))?;
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        let n = buf.len();
        total += n as u64;
        reader.consume(n);
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_round_trips_and_has_javas_header() {
        let data = b"hello hello hello hello fressian".repeat(100);
        for level in [0, 1, 6, 9] {
            let gz = gzip_compress(&data, level).unwrap();
            assert_eq!(&gz[..4], &[0x1F, 0x8B, 0x08, 0x00]);
            assert_eq!(gz[9], 255, "OS byte, as GZIPOutputStream writes it");
            assert_eq!(
                decompress(&gz, Compression::default(), u64::MAX).unwrap(),
                data
            );
        }
        assert_eq!(compress(&data, Compression::None).unwrap(), data);
        assert!(Compression::gzip(10).is_err());
    }

    #[test]
    fn decompress_stops_one_byte_past_its_limit() {
        let gz = gzip_compress(&[0u8; 10_000], 6).unwrap();
        assert_eq!(
            decompress(&gz, Compression::default(), 10_000)
                .unwrap()
                .len(),
            10_000
        );
        let err = decompress(&gz, Compression::default(), 9_999).unwrap_err();
        assert!(
            matches!(err, CodecError::Limit { offset: 9_999, .. }),
            "{err}"
        );
    }

    #[test]
    fn concatenated_members_read_as_one_stream() {
        let mut gz = gzip_compress(b"ab", 6).unwrap();
        gz.extend(gzip_compress(b"cd", 1).unwrap());
        assert_eq!(
            decompress(&gz, Compression::default(), u64::MAX).unwrap(),
            b"abcd"
        );
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut gz = gzip_compress(&b"x".repeat(1000), 6).unwrap();
        let n = gz.len();
        gz[n - 6] ^= 0xFF; // inside the CRC-32
        assert!(matches!(
            decompress(&gz, Compression::default(), u64::MAX),
            Err(CodecError::Io { .. })
        ));
    }

    #[test]
    fn sha256_of_reader_matches_slice() {
        let data = vec![42u8; 200_000];
        let (hex, n) = sha256_hex_reader(&data[..]).unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(hex, sha256_hex(&data));
        assert_eq!(hex.len(), 64);
    }
}
