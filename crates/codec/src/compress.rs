//! gzip and zstd for chunk files and SHA-256 for their checksums.
//!
//! zstd goes through the `zstd` crate (the C library). Its frames record
//! their content size and a checksum; reading one is bounded twice over: a
//! frame declaring more than the caller's limit is refused from its header,
//! before anything is allocated, and the decoder's window is capped at
//! [`ZSTD_MAX_WINDOW_LOG`] so that a hostile header cannot make it reserve
//! more than 8 MiB.
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
    /// zstd at a level from 1 to 19 (not readable by the Clojure library).
    Zstd {
        /// The zstd level.
        level: u32,
    },
}

/// zstd's default level, what `--compression zstd` uses without a level.
pub const ZSTD_DEFAULT_LEVEL: u32 = 3;

/// The highest zstd level accepted: 20–22 ("ultra") need windows of up to
/// 128 MiB to read back, more than a restore lets a frame reserve.
pub const ZSTD_MAX_LEVEL: u32 = 19;

/// The largest zstd window a reader accepts, as a power of two (8 MiB,
/// what level 19 uses; lower levels use less).
pub const ZSTD_MAX_WINDOW_LOG: u32 = 23;

/// The magic number that starts a zstd frame (`28 B5 2F FD`).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

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

    /// zstd at `level` (1–19).
    pub fn zstd(level: u32) -> Result<Compression> {
        if !(1..=ZSTD_MAX_LEVEL).contains(&level) {
            return Err(CodecError::Unencodable {
                what: format!("zstd level {level}"),
                reason: format!("zstd levels run from 1 to {ZSTD_MAX_LEVEL} here"),
            });
        }
        Ok(Compression::Zstd { level })
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
    let extra = match compression {
        Compression::None => data.len(),
        _ => data.len() / 3 + 64,
    };
    out.reserve(extra);
    compress_to(data, compression, out).map(drop)
}

/// Compresses `data` into `out` and returns it, finished: the compressed
/// bytes go straight into the writer (an encryptor, a file), never into a
/// buffer of their own.
pub fn compress_to<W: Write>(data: &[u8], compression: Compression, mut out: W) -> Result<W> {
    match compression {
        Compression::None => {
            out.write_all(data)
                .map_err(|e| CodecError::io("writing a chunk", e))?;
            Ok(out)
        }
        Compression::Gzip { level } => {
            let mut enc = gzip_writer(out, level)?;
            enc.write_all(data)
                .map_err(|e| CodecError::io("gzip-compressing a chunk", e))?;
            enc.finish()
                .map_err(|e| CodecError::io("finishing a gzip stream", e))
        }
        Compression::Zstd { level } => zstd_compress_to(data, level, out),
    }
}

/// One zstd frame of `data` written to `out`, with its content size (so a
/// reader can refuse it from its header) and a checksum (as gzip's CRC).
fn zstd_compress_to<W: Write>(data: &[u8], level: u32, out: W) -> Result<W> {
    Compression::zstd(level)?;
    let level = i32::try_from(level).unwrap_or(ZSTD_DEFAULT_LEVEL as i32);
    let zstd_error = |e| CodecError::io("zstd-compressing a chunk", e);
    let mut enc = zstd::stream::write::Encoder::new(out, level).map_err(zstd_error)?;
    enc.include_checksum(true).map_err(zstd_error)?;
    enc.include_contentsize(true).map_err(zstd_error)?;
    enc.set_pledged_src_size(Some(data.len() as u64))
        .map_err(zstd_error)?;
    enc.write_all(data).map_err(zstd_error)?;
    enc.finish()
        .map_err(|e| CodecError::io("finishing a zstd frame", e))
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
    decompress_reader_within(input, compression, max_bytes)?
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

/// A reader yielding the decompressed bytes of `input`. Its output is not
/// bounded: read it through `take` or a [`crate::chunk::ChunkLimits`], or
/// use [`decompress_reader_within`], which also refuses a zstd frame
/// declaring too much from its header.
pub fn decompress_reader<R: Read>(input: R, compression: Compression) -> Decompressor<R> {
    match compression {
        Compression::None => Decompressor(Inner::Plain(BufReader::new(input))),
        Compression::Gzip { .. } => Decompressor(Inner::Gzip(Box::new(gunzip_reader(input)))),
        Compression::Zstd { .. } => zstd_reader(BufReader::with_capacity(64 * 1024, input)),
    }
}

/// [`decompress_reader`] for input that may inflate to at most
/// `max_bytes`: a zstd frame whose header declares more is refused here,
/// before its decoder exists ([`CodecError::Limit`]). The caller still
/// bounds what it reads (the header may say nothing, or lie low).
pub fn decompress_reader_within<R: Read>(
    input: R,
    compression: Compression,
    max_bytes: u64,
) -> Result<Decompressor<R>> {
    let Compression::Zstd { .. } = compression else {
        return Ok(decompress_reader(input, compression));
    };
    let mut input = BufReader::with_capacity(64 * 1024, input);
    let head = input
        .fill_buf()
        .map_err(|e| CodecError::io("reading a zstd frame header", e))?;
    // A header cut short by a short read says nothing; the bounded read
    // after it still holds.
    if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(head) {
        if declared > max_bytes {
            return Err(CodecError::Limit {
                offset: 0,
                reason: format!(
                    "the zstd frame declares {declared} bytes of content, more than the \
                     {max_bytes} allowed"
                ),
            });
        }
    }
    Ok(zstd_reader(input))
}

/// A zstd decoder over `input` with its window capped at
/// [`ZSTD_MAX_WINDOW_LOG`]. Concatenated frames read as one stream.
fn zstd_reader<R: Read>(input: BufReader<R>) -> Decompressor<R> {
    let decoder = zstd::stream::read::Decoder::with_buffer(input).and_then(|mut d| {
        d.window_log_max(ZSTD_MAX_WINDOW_LOG)?;
        Ok(d)
    });
    match decoder {
        Ok(d) => Decompressor(Inner::Zstd(Box::new(d))),
        // Creating a decoder fails only when the C library cannot allocate
        // its context; the error surfaces at the first read.
        Err(e) => Decompressor(Inner::Failed(Some(e))),
    }
}

/// The reader returned by [`decompress_reader`].
pub struct Decompressor<R>(Inner<R>);

impl<R> std::fmt::Debug for Decompressor<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match &self.0 {
            Inner::Plain(_) => "Decompressor(none)",
            Inner::Gzip(_) => "Decompressor(gzip)",
            Inner::Zstd(_) => "Decompressor(zstd)",
            Inner::Failed(_) => "Decompressor(failed)",
        })
    }
}

enum Inner<R> {
    Plain(BufReader<R>),
    Gzip(Box<MultiGzDecoder<BufReader<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<R>>>),
    Failed(Option<io::Error>),
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.0 {
            Inner::Plain(r) => r.read(buf),
            Inner::Gzip(r) => r.read(buf),
            Inner::Zstd(r) => r.read(buf),
            Inner::Failed(e) => Err(e
                .take()
                .unwrap_or_else(|| io::Error::other("the zstd decoder could not be created"))),
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
    fn zstd_round_trips_with_magic_size_and_checksum() {
        let data = b"hello hello hello hello fressian".repeat(1000);
        for level in [1, 3, 19] {
            let z = compress(&data, Compression::zstd(level).unwrap()).unwrap();
            assert!(z.starts_with(&ZSTD_MAGIC));
            assert!(z.len() < data.len() / 10);
            assert_eq!(
                zstd::zstd_safe::get_frame_content_size(&z).unwrap(),
                Some(data.len() as u64)
            );
            let back = decompress(&z, Compression::Zstd { level: 3 }, data.len() as u64);
            assert_eq!(back.unwrap(), data);
        }
        for level in [0, 20, 22] {
            assert!(Compression::zstd(level).is_err(), "level {level}");
            assert!(compress(b"x", Compression::Zstd { level }).is_err());
        }
    }

    #[test]
    fn zstd_frame_declaring_more_than_the_limit_is_refused_from_its_header() {
        let z = compress(&[0u8; 10_000], Compression::Zstd { level: 3 }).unwrap();
        let err = decompress(&z, Compression::Zstd { level: 3 }, 9_999).unwrap_err();
        assert!(
            matches!(&err, CodecError::Limit { offset: 0, reason } if reason.contains("declares 10000 bytes")),
            "{err}"
        );
        let err = decompress_reader_within(&z[..], Compression::Zstd { level: 3 }, 9_999)
            .err()
            .unwrap();
        assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    }

    #[test]
    fn zstd_frame_without_declared_size_stops_one_byte_past_its_limit() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(&[0u8; 100_000]).unwrap();
        let z = enc.finish().unwrap();
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&z).unwrap(), None);
        let c = Compression::Zstd { level: 3 };
        assert_eq!(decompress(&z, c, 100_000).unwrap().len(), 100_000);
        let err = decompress(&z, c, 99_999).unwrap_err();
        assert!(
            matches!(err, CodecError::Limit { offset: 99_999, .. }),
            "{err}"
        );
    }

    #[test]
    fn zstd_frame_wanting_a_window_above_the_cap_is_refused() {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.window_log(ZSTD_MAX_WINDOW_LOG + 1).unwrap();
        enc.write_all(&b"abc".repeat(10_000)).unwrap();
        let z = enc.finish().unwrap();
        let err = decompress(&z, Compression::Zstd { level: 3 }, u64::MAX).unwrap_err();
        assert!(matches!(err, CodecError::Io { .. }), "{err}");
    }

    #[test]
    fn corrupt_zstd_is_an_error() {
        let mut z = compress(&b"x".repeat(1000), Compression::Zstd { level: 3 }).unwrap();
        let n = z.len();
        z[n - 2] ^= 0xFF; // inside the content checksum
        assert!(matches!(
            decompress(&z, Compression::Zstd { level: 3 }, u64::MAX),
            Err(CodecError::Io { .. })
        ));
        assert!(decompress(b"not zstd", Compression::Zstd { level: 3 }, 100).is_err());
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
