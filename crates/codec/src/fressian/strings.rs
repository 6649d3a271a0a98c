//! Decoding the reference's string bytes.
//!
//! The reference writes every UTF-16 code unit as 1–3 UTF-8-style bytes, so
//! a character outside the Basic Multilingual Plane arrives as two 3-byte
//! surrogate sequences (CESU-8). For strings without such characters the
//! bytes are plain UTF-8, which is checked first because it is fast.

use std::borrow::Cow;

use crate::error::{CodecError, Result};

/// What to do with a UTF-16 surrogate that is not part of a pair (Java
/// strings may hold one; Rust strings cannot).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoneSurrogates {
    /// Fail with [`CodecError::InvalidString`] naming the offset: data is
    /// never changed silently. The default.
    #[default]
    Reject,
    /// Replace each lone surrogate with U+FFFD REPLACEMENT CHARACTER.
    Replace,
}

/// Decodes string bytes that start at stream offset `offset`.
#[inline]
pub(crate) fn decode(bytes: &[u8], offset: u64, policy: LoneSurrogates) -> Result<Cow<'_, str>> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Cow::Borrowed(s)),
        Err(_) => decode_units(bytes, offset, policy).map(Cow::Owned),
    }
}

/// The slow path: decode code unit by code unit exactly as the reference's
/// `Fns.readUTF8Chars` does (continuation bits are not checked there, so
/// not here either), pairing surrogates. Standard 4-byte UTF-8 sequences,
/// which the reference never writes, are accepted too.
fn decode_units(bytes: &[u8], offset: u64, policy: LoneSurrogates) -> Result<String> {
    let mut out = String::with_capacity(bytes.len());
    // A high surrogate waiting for its low half, with its byte position.
    let mut pending: Option<(u32, usize)> = None;
    let mut i = 0;
    let truncated = |at: usize| CodecError::InvalidString {
        offset: offset + at as u64,
        reason: format!("the string's {} bytes end inside a character", bytes.len()),
    };
    let lone = |unit: u32, at: usize, out: &mut String| -> Result<()> {
        match policy {
            LoneSurrogates::Reject => Err(CodecError::InvalidString {
                offset: offset + at as u64,
                reason: format!(
                    "lone UTF-16 surrogate 0x{unit:04X} (Rust strings cannot hold it; read with LoneSurrogates::Replace to map it to U+FFFD)"
                ),
            }),
            LoneSurrogates::Replace => {
                out.push(char::REPLACEMENT_CHARACTER);
                Ok(())
            }
        }
    };
    while i < bytes.len() {
        let at = i;
        let b = u32::from(bytes[i]);
        let unit = match b >> 4 {
            0..=7 => {
                i += 1;
                b
            }
            12 | 13 => {
                let b1 = u32::from(*bytes.get(i + 1).ok_or_else(|| truncated(at))?);
                i += 2;
                ((b & 0x1F) << 6) | (b1 & 0x3F)
            }
            14 => {
                let (b1, b2) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&b1), Some(&b2)) => (u32::from(b1), u32::from(b2)),
                    _ => return Err(truncated(at)),
                };
                i += 3;
                ((b & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)
            }
            15 if b < 0xF8 => {
                let seq = bytes.get(i..i + 4).ok_or_else(|| truncated(at))?;
                let cp = ((b & 0x07) << 18)
                    | ((u32::from(seq[1]) & 0x3F) << 12)
                    | ((u32::from(seq[2]) & 0x3F) << 6)
                    | (u32::from(seq[3]) & 0x3F);
                let c = char::from_u32(cp)
                    .filter(|_| cp >= 0x1_0000)
                    .ok_or_else(|| CodecError::InvalidString {
                        offset: offset + at as u64,
                        reason: format!(
                            "4-byte sequence encodes U+{cp:X}, not a supplementary character"
                        ),
                    })?;
                i += 4;
                if let Some((high, hat)) = pending.take() {
                    lone(high, hat, &mut out)?;
                }
                out.push(c);
                continue;
            }
            _ => {
                return Err(CodecError::InvalidString {
                    offset: offset + at as u64,
                    reason: format!("byte 0x{b:02X} cannot start a character"),
                })
            }
        };
        match unit {
            0xD800..=0xDBFF => {
                if let Some((high, hat)) = pending.replace((unit, at)) {
                    lone(high, hat, &mut out)?;
                }
            }
            0xDC00..=0xDFFF => match pending.take() {
                Some((high, _)) => {
                    let cp = 0x1_0000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                    out.push(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                None => lone(unit, at, &mut out)?,
            },
            _ => {
                if let Some((high, hat)) = pending.take() {
                    lone(high, hat, &mut out)?;
                }
                out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
        }
    }
    if let Some((high, hat)) = pending {
        lone(high, hat, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrogate_pairs_become_one_char() {
        let bytes = [0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80];
        assert_eq!(decode(&bytes, 0, LoneSurrogates::Reject).unwrap(), "😀");
    }

    #[test]
    fn lone_surrogates_follow_the_policy() {
        let bytes = [b'a', 0xED, 0xA0, 0xBD, b'b'];
        let err = decode(&bytes, 10, LoneSurrogates::Reject).unwrap_err();
        assert!(
            matches!(err, CodecError::InvalidString { offset: 11, .. }),
            "{err}"
        );
        assert_eq!(
            decode(&bytes, 10, LoneSurrogates::Replace).unwrap(),
            "a\u{FFFD}b"
        );
        let low_first = [0xED, 0xB8, 0x80, 0xED, 0xA0, 0xBD];
        assert_eq!(
            decode(&low_first, 0, LoneSurrogates::Replace).unwrap(),
            "\u{FFFD}\u{FFFD}"
        );
    }

    #[test]
    fn java_accepts_overlong_nul_and_so_do_we() {
        assert_eq!(
            decode(&[0xC0, 0x80], 0, LoneSurrogates::Reject).unwrap(),
            "\0"
        );
    }

    #[test]
    fn bad_lead_bytes_and_truncation_are_errors() {
        assert!(matches!(
            decode(&[0x80], 5, LoneSurrogates::Reject),
            Err(CodecError::InvalidString { offset: 5, .. })
        ));
        assert!(matches!(
            decode(&[b'x', 0xE2, 0x82], 0, LoneSurrogates::Reject),
            Err(CodecError::InvalidString { offset: 1, .. })
        ));
        assert!(decode(&[0xFF], 0, LoneSurrogates::Replace).is_err());
    }
}
