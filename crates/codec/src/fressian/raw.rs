//! Byte-level encodings shared by the generic [`Writer`](super::Writer) and
//! the datom-chunk encoder: each function appends exactly the bytes the
//! reference `FressianWriter` produces for the same call.

use super::codes;
use crate::error::{CodecError, Result};

/// The canonical quiet NaN Java's `Double.doubleToLongBits` writes.
const JAVA_NAN_F64: u64 = 0x7FF8_0000_0000_0000;
/// The canonical quiet NaN Java's `Float.floatToIntBits` writes.
const JAVA_NAN_F32: u32 = 0x7FC0_0000;

/// Appends the packed encoding of `i` (`FressianWriter.internalWriteInt`).
#[inline]
pub fn write_int(buf: &mut Vec<u8>, i: i64) {
    // Leading zeros of the magnitude decide the width, as in the reference's
    // `bitSwitch`.
    let bits = if i < 0 {
        (!i).leading_zeros()
    } else {
        i.leading_zeros()
    };
    let be = i.to_be_bytes();
    match bits {
        58..=64 => {
            if i < -1 {
                buf.extend_from_slice(&[
                    (i64::from(codes::INT_PACKED_2_ZERO) + (i >> 8)) as u8,
                    be[7],
                ]);
            } else {
                buf.push(be[7]);
            }
        }
        52..=57 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_2_ZERO) + (i >> 8)) as u8,
            be[7],
        ]),
        45..=51 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_3_ZERO) + (i >> 16)) as u8,
            be[6],
            be[7],
        ]),
        39..=44 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_4_ZERO) + (i >> 24)) as u8,
            be[5],
            be[6],
            be[7],
        ]),
        31..=38 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_5_ZERO) + (i >> 32)) as u8,
            be[4],
            be[5],
            be[6],
            be[7],
        ]),
        23..=30 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_6_ZERO) + (i >> 40)) as u8,
            be[3],
            be[4],
            be[5],
            be[6],
            be[7],
        ]),
        15..=22 => buf.extend_from_slice(&[
            (i64::from(codes::INT_PACKED_7_ZERO) + (i >> 48)) as u8,
            be[2],
            be[3],
            be[4],
            be[5],
            be[6],
            be[7],
        ]),
        _ => {
            buf.push(codes::INT);
            buf.extend_from_slice(&be);
        }
    }
}

/// Whether the reference writer skips the priority cache for this integer
/// (its one- and two-byte encodings).
pub fn int_skips_cache(i: i64) -> bool {
    let bits = if i < 0 {
        (!i).leading_zeros()
    } else {
        i.leading_zeros()
    };
    bits >= 52
}

/// Appends a count (a Java `int`), refusing counts Java cannot hold.
pub fn write_count(buf: &mut Vec<u8>, count: usize, what: &str) -> Result<()> {
    let n = i32::try_from(count).map_err(|_| CodecError::Unencodable {
        what: format!("{what} of {count} elements"),
        reason: "Fressian counts are Java ints (at most 2147483647)".into(),
    })?;
    write_int(buf, i64::from(n));
    Ok(())
}

/// Appends a double. The reference writes `0.0` and `-0.0` alike as
/// `DOUBLE_0`, losing the sign; this writes `-0.0` as a full `DOUBLE` so the
/// value survives (the one deliberate difference from the reference).
/// NaN is written as Java's canonical NaN, as `doubleToLongBits` does.
#[inline]
pub fn write_double(buf: &mut Vec<u8>, d: f64) {
    if d == 0.0 && d.is_sign_positive() {
        buf.push(codes::DOUBLE_0);
    } else if d == 1.0 {
        buf.push(codes::DOUBLE_1);
    } else {
        let bits = if d.is_nan() {
            JAVA_NAN_F64
        } else {
            d.to_bits()
        };
        buf.push(codes::DOUBLE);
        buf.extend_from_slice(&bits.to_be_bytes());
    }
}

/// Appends a float (NaN canonicalised as `floatToIntBits` does).
#[inline]
pub fn write_float(buf: &mut Vec<u8>, f: f32) {
    let bits = if f.is_nan() {
        JAVA_NAN_F32
    } else {
        f.to_bits()
    };
    buf.push(codes::FLOAT);
    buf.extend_from_slice(&bits.to_be_bytes());
}

#[inline]
pub fn write_bool(buf: &mut Vec<u8>, b: bool) {
    buf.push(if b { codes::TRUE } else { codes::FALSE });
}

/// Number of characters outside the Basic Multilingual Plane: each takes 4
/// bytes in UTF-8 but 6 in the reference's encoding (two surrogates).
#[inline]
fn astral_count(s: &str) -> usize {
    s.as_bytes().iter().filter(|&&b| b >= 0xF0).count()
}

/// Appends the reference's encoding of `s`: UTF-8 applied to each UTF-16
/// code unit, so an astral character becomes two 3-byte surrogate
/// sequences.
pub fn encode_java_utf8(out: &mut Vec<u8>, s: &str) {
    for c in s.chars() {
        let cp = c as u32;
        if cp >= 0x1_0000 {
            let v = cp - 0x1_0000;
            for unit in [0xD800 | (v >> 10), 0xDC00 | (v & 0x3FF)] {
                out.extend_from_slice(&[
                    0xE0 | (unit >> 12) as u8,
                    0x80 | ((unit >> 6) & 0x3F) as u8,
                    0x80 | (unit & 0x3F) as u8,
                ]);
            }
        } else {
            let mut tmp = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
        }
    }
}

/// Appends a string exactly as `FressianWriter.writeString` does, including
/// its cut into `STRING_CHUNK`s of at most 65536 encoded bytes (never inside
/// a code unit's bytes, possibly between the two halves of a surrogate
/// pair).
pub fn write_string(buf: &mut Vec<u8>, s: &str) {
    let astral = astral_count(s);
    if astral == 0 {
        write_encoded_string(buf, s.as_bytes());
    } else {
        let mut encoded = Vec::with_capacity(s.len() + 2 * astral);
        encode_java_utf8(&mut encoded, s);
        write_encoded_string(buf, &encoded);
    }
}

/// Writes already-encoded string bytes with the reference's chunking.
fn write_encoded_string(buf: &mut Vec<u8>, mut bytes: &[u8]) {
    loop {
        let (piece, last) = if bytes.len() <= codes::STRING_CHUNK_SIZE {
            (bytes, true)
        } else {
            // Back up to the start of a code unit's encoding.
            let mut end = codes::STRING_CHUNK_SIZE;
            while end > 0 && (bytes[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            (&bytes[..end], false)
        };
        if piece.len() < codes::PACKED_LENGTH_COUNT {
            buf.push(codes::STRING_PACKED_LENGTH_START + piece.len() as u8);
        } else {
            buf.push(if last {
                codes::STRING
            } else {
                codes::STRING_CHUNK
            });
            write_int(buf, piece.len() as i64);
        }
        buf.extend_from_slice(piece);
        if last {
            return;
        }
        bytes = &bytes[piece.len()..];
    }
}

/// Appends a byte array exactly as `FressianWriter.writeBytes` does
/// (packed below 8 bytes, `BYTES_CHUNK`s of 65535 above that).
pub fn write_bytes(buf: &mut Vec<u8>, mut bytes: &[u8]) {
    if bytes.len() < codes::PACKED_LENGTH_COUNT {
        buf.push(codes::BYTES_PACKED_LENGTH_START + bytes.len() as u8);
        buf.extend_from_slice(bytes);
        return;
    }
    while bytes.len() > codes::BYTE_CHUNK_SIZE {
        buf.push(codes::BYTES_CHUNK);
        write_int(buf, codes::BYTE_CHUNK_SIZE as i64);
        buf.extend_from_slice(&bytes[..codes::BYTE_CHUNK_SIZE]);
        bytes = &bytes[codes::BYTE_CHUNK_SIZE..];
    }
    buf.push(codes::BYTES);
    write_int(buf, bytes.len() as i64);
    buf.extend_from_slice(bytes);
}

/// Appends a list header (`LIST_PACKED_LENGTH` or `LIST` + count).
#[inline]
pub fn write_list_header(buf: &mut Vec<u8>, len: usize) -> Result<()> {
    if len < codes::PACKED_LENGTH_COUNT {
        buf.push(codes::LIST_PACKED_LENGTH_START + len as u8);
        Ok(())
    } else {
        buf.push(codes::LIST);
        write_count(buf, len, "list")
    }
}

/// Appends a reference to priority-cache entry `index`.
#[inline]
pub fn write_priority_ref(buf: &mut Vec<u8>, index: u32) {
    if index < codes::PRIORITY_CACHE_PACKED_COUNT {
        buf.push(codes::PRIORITY_CACHE_PACKED_START + index as u8);
    } else {
        buf.push(codes::GET_PRIORITY_CACHE);
        write_int(buf, i64::from(index));
    }
}

/// Appends a reference to struct-cache entry `index`.
#[inline]
pub fn write_struct_ref(buf: &mut Vec<u8>, index: u32) {
    if index < codes::STRUCT_CACHE_PACKED_COUNT {
        buf.push(codes::STRUCT_CACHE_PACKED_START + index as u8);
    } else {
        buf.push(codes::STRUCT);
        write_int(buf, i64::from(index));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_bytes(i: i64) -> Vec<u8> {
        let mut b = Vec::new();
        write_int(&mut b, i);
        b
    }

    #[test]
    fn int_widths_match_the_reference_ranges() {
        assert_eq!(int_bytes(0), [0x00]);
        assert_eq!(int_bytes(63), [0x3F]);
        assert_eq!(int_bytes(-1), [0xFF]);
        assert_eq!(int_bytes(-2), [0x4F, 0xFE]);
        assert_eq!(int_bytes(64), [0x50, 0x40]);
        assert_eq!(int_bytes(4095), [0x5F, 0xFF]);
        assert_eq!(int_bytes(-4096), [0x40, 0x00]);
        assert_eq!(int_bytes(4096), [0x68, 0x10, 0x00]);
        assert_eq!(int_bytes(i64::MAX)[0], codes::INT);
        assert_eq!(int_bytes(i64::MIN).len(), 9);
        assert_eq!(int_bytes((1 << 48) - 1).len(), 7);
        assert_eq!(int_bytes(1 << 49).len(), 9);
    }

    #[test]
    fn strings_are_utf16_unit_encoded() {
        let mut b = Vec::new();
        write_string(&mut b, "😀");
        assert_eq!(b, [0xE0, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80]);
        let mut b = Vec::new();
        write_string(&mut b, "");
        assert_eq!(b, [0xDA]);
    }

    #[test]
    fn long_strings_are_chunked_at_65536_bytes() {
        let s = "a".repeat(65_537);
        let mut b = Vec::new();
        write_string(&mut b, &s);
        assert_eq!(&b[..4], &[codes::STRING_CHUNK, 0x69, 0x00, 0x00]);
        assert_eq!(b[4 + 65_536], codes::STRING_PACKED_LENGTH_START + 1);
        assert_eq!(b.len(), 4 + 65_536 + 2);
    }

    #[test]
    fn bytes_are_chunked_at_65535() {
        let data = vec![7u8; 65_535 * 2];
        let mut b = Vec::new();
        write_bytes(&mut b, &data);
        assert_eq!(b[0], codes::BYTES_CHUNK);
        let second = 1 + 3 + 65_535;
        assert_eq!(b[second], codes::BYTES);
        assert_eq!(b.len(), 2 * (1 + 3 + 65_535));
    }
}
