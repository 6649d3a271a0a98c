//! Buffered byte input with stream offsets and the running Adler-32 that
//! footers are checked against.

use std::io::{ErrorKind, Read};

use crate::error::{CodecError, Result};

/// Bytes read from the source at a time; also the most that a single
/// contiguous `fill` can ask for.
const BUF_SIZE: usize = 64 * 1024;

pub(crate) struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
    /// Running checksum since the last footer, when footers are validated.
    adler: Option<simd_adler32::Adler32>,
    /// `buf[..adler_from]` is already in `adler`.
    adler_from: usize,
    /// Stream offset where the current footer segment began.
    segment_start: u64,
    /// The most bytes the stream may hold (`ReadOptions::max_input_bytes`):
    /// reading past it is an error, and so is a length prefix that points
    /// past it, before anything is allocated for it.
    limit: u64,
}

impl<R> std::fmt::Debug for Input<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("offset", &(self.base + self.pos as u64))
            .field("eof", &self.eof)
            .finish()
    }
}

impl<R: Read> Input<R> {
    pub(crate) fn new(inner: R, checksum: bool, limit: u64) -> Input<R> {
        Input {
            inner,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
            adler: checksum.then(simd_adler32::Adler32::new),
            adler_from: 0,
            segment_start: 0,
            limit,
        }
    }

    /// Bytes the stream may still hold after the next unread byte's
    /// offset, by [`ReadOptions::max_input_bytes`](super::ReadOptions).
    #[inline]
    pub(crate) fn remaining_allowed(&self) -> u64 {
        self.limit.saturating_sub(self.offset())
    }

    /// Fails unless `n` more bytes fit within the stream's limit: a length
    /// prefix is a claim, checked before any memory is set aside for it.
    #[inline]
    pub(crate) fn check_length(&self, n: usize, expected: &'static str) -> Result<()> {
        if n as u64 > self.remaining_allowed() {
            return Err(self.too_long(format!(
                "{expected} claims {n} bytes, but only {} of the stream's limit of {} bytes remain (ReadOptions::max_input_bytes)",
                self.remaining_allowed(),
                self.limit
            )));
        }
        Ok(())
    }

    #[cold]
    fn too_long(&self, reason: String) -> CodecError {
        CodecError::Limit {
            offset: self.offset(),
            reason,
        }
    }

    /// Stream offset of the next unread byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline]
    pub(crate) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Reads one byte; `expected` names what it should start, for the
    /// end-of-input error.
    #[inline]
    pub(crate) fn byte(&mut self, expected: &'static str) -> Result<u8> {
        if self.pos < self.end {
            let b = self.buf[self.pos];
            self.pos += 1;
            Ok(b)
        } else {
            self.fill(1, expected)?;
            let b = self.buf[self.pos];
            self.pos += 1;
            Ok(b)
        }
    }

    /// The next byte without consuming it, or `None` at the end of input.
    pub(crate) fn peek(&mut self) -> Result<Option<u8>> {
        if self.pos == self.end && !self.refill(1)? {
            return Ok(None);
        }
        Ok(Some(self.buf[self.pos]))
    }

    /// Reads `N` bytes.
    #[inline]
    pub(crate) fn array<const N: usize>(&mut self, expected: &'static str) -> Result<[u8; N]> {
        if self.available() < N {
            self.fill(N, expected)?;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..self.pos + N]);
        self.pos += N;
        Ok(out)
    }

    /// Reads `n` bytes as big-endian unsigned (n ≤ 8).
    #[inline]
    pub(crate) fn be_uint(&mut self, n: usize, expected: &'static str) -> Result<u64> {
        if self.available() < n {
            self.fill(n, expected)?;
        }
        let v = self.buf[self.pos..self.pos + n]
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.pos += n;
        Ok(v)
    }

    /// The next `n` bytes as a slice if they fit the buffer (`n` ≤ 64 KiB);
    /// `None` means the caller must use [`Input::read_into`].
    #[inline]
    pub(crate) fn take(&mut self, n: usize, expected: &'static str) -> Result<Option<&[u8]>> {
        if self.available() < n {
            self.check_length(n, expected)?;
            if n > BUF_SIZE {
                return Ok(None);
            }
            self.fill(n, expected)?;
        }
        let start = self.pos;
        self.pos += n;
        Ok(Some(&self.buf[start..start + n]))
    }

    #[cfg(feature = "datom")]
    /// The buffered, unread bytes (for decoders that parse a whole item
    /// from memory and fall back to the byte-wise path when it is not all
    /// there).
    #[inline]
    pub(crate) fn window(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    #[cfg(feature = "datom")]
    /// Consumes `n` bytes of [`Input::window`].
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.available());
        self.pos += n;
    }

    #[cfg(feature = "datom")]
    /// Tries to buffer at least `n` (≤ 64 KiB) bytes; fewer at the end of
    /// input.
    #[inline]
    pub(crate) fn prefetch(&mut self, n: usize) -> Result<()> {
        if self.available() < n {
            self.refill(n)?;
        }
        Ok(())
    }

    /// Appends the next `n` bytes to `dst`, growing it only as data
    /// actually arrives: a hostile length prefix cannot make this allocate
    /// more than the input holds.
    pub(crate) fn read_into(
        &mut self,
        mut n: usize,
        dst: &mut Vec<u8>,
        expected: &'static str,
    ) -> Result<()> {
        self.check_length(n, expected)?;
        while n > 0 {
            if self.pos == self.end {
                self.fill(1, expected)?;
            }
            let k = n.min(self.available());
            dst.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            n -= k;
        }
        Ok(())
    }

    #[cfg(feature = "serde")]
    /// Consumes the next `n` bytes without copying them anywhere (the
    /// serde deserializer borrows them from the caller's slice instead).
    pub(crate) fn skip(&mut self, mut n: usize, expected: &'static str) -> Result<()> {
        self.check_length(n, expected)?;
        while n > 0 {
            if self.pos == self.end {
                self.fill(1, expected)?;
            }
            let k = n.min(self.available());
            self.pos += k;
            n -= k;
        }
        Ok(())
    }

    /// Makes at least `n` (≤ `BUF_SIZE`) bytes available or fails with
    /// `UnexpectedEof`.
    #[cold]
    fn fill(&mut self, n: usize, expected: &'static str) -> Result<()> {
        if self.refill(n)? {
            Ok(())
        } else {
            Err(CodecError::UnexpectedEof {
                offset: self.base + self.end as u64,
                expected,
            })
        }
    }

    /// Tries to make `n` bytes available; `false` at end of input.
    fn refill(&mut self, n: usize) -> Result<bool> {
        debug_assert!(n <= BUF_SIZE);
        if self.available() >= n {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        // Move the unread tail to the front; checksum what is discarded.
        if self.pos > 0 {
            if let Some(adler) = self.adler.as_mut() {
                adler.write(&self.buf[self.adler_from..self.pos]);
            }
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
            self.adler_from = 0;
        }
        while self.end < n {
            // Read at most one byte beyond the limit: enough to know it
            // was exceeded, and a decompression bomb is never inflated
            // further than that.
            let allowed = self
                .limit
                .saturating_add(1)
                .saturating_sub(self.base + self.end as u64);
            let room =
                (self.buf.len() - self.end).min(usize::try_from(allowed).unwrap_or(usize::MAX));
            if room == 0 {
                return Err(self.over_limit());
            }
            match self.inner.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(k) => {
                    self.end += k;
                    if self.base + self.end as u64 > self.limit {
                        return Err(self.over_limit());
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    let at = self.base + self.end as u64;
                    return Err(CodecError::io(
                        format!("reading Fressian input at byte offset {at}"),
                        e,
                    ));
                }
            }
        }
        Ok(true)
    }

    #[cold]
    fn over_limit(&self) -> CodecError {
        CodecError::Limit {
            offset: self.limit,
            reason: format!(
                "the input is longer than its limit of {} bytes (ReadOptions::max_input_bytes)",
                self.limit
            ),
        }
    }

    /// Whether footers are checked against a running checksum.
    pub(crate) fn checksums(&self) -> bool {
        self.adler.is_some()
    }

    /// Bytes since the current footer segment began, up to `offset`.
    pub(crate) fn segment_len(&self, offset: u64) -> u64 {
        offset - self.segment_start
    }

    /// The Adler-32 of the segment so far (everything consumed).
    pub(crate) fn segment_checksum(&mut self) -> Option<u32> {
        let (from, to) = (self.adler_from, self.pos);
        let adler = self.adler.as_mut()?;
        adler.write(&self.buf[from..to]);
        self.adler_from = to;
        Some(adler.finish())
    }

    /// Starts a new footer segment at the current position.
    pub(crate) fn start_segment(&mut self) {
        self.segment_start = self.offset();
        if let Some(adler) = self.adler.as_mut() {
            *adler = simd_adler32::Adler32::new();
            self.adler_from = self.pos;
        }
    }
}
