//! The byte layout of everything the file backend stores: index keys, log
//! records and metadata. No other module builds or parses these bytes.
//!
//! # Order-preserving encoding
//!
//! Index keys are compared by redb as plain byte strings, so every component
//! is encoded such that byte order equals the order of the decoded value
//! (the documented total order of [`Value`], Clojure's order of keywords) and
//! such that a component's end can be found without knowing its length in
//! advance (so `[e a v tx]` concatenations sort component by component):
//!
//! - `i64` (entity ids, tx ids, longs, instants): 8 bytes big-endian with the
//!   sign bit flipped.
//! - byte strings (UTF-8 of strings, names, byte arrays): `0x00` escaped as
//!   `0x00 0xFF`, terminated by `0x00 0x01`.
//! - keywords and symbols: `0x00 name` without a namespace, `0x01 ns name`
//!   with one (no namespace sorts first, as in Clojure).
//! - values: one tag byte ([`Value::type_rank`]) then the payload; doubles and
//!   floats as IEEE-754 total-order bits; bigints as sign class, length and
//!   magnitude (inverted when negative); bigdecs as sign class, exponent of
//!   the leading digit, normalised digits and finally the scale (which only
//!   breaks numeric ties, as in the value order); tuples as `0x01 elem …
//!   0x00`, where an element may be `nil`: its tag (13) alone, after every
//!   other type.
//!
//! # Index keys
//!
//! | index | key |
//! |---|---|
//! | EAVT | `e` `a` `v` `tx` |
//! | AEVT | `a` `e` `v` `tx` |
//! | AVET | `a` `v` `e` `tx` |
//! | VAET | `v` (an entity id, 8 bytes) `a` `e` `tx` |
//!
//! # Blocks
//!
//! An index table does not hold one redb entry per datom: consecutive index
//! keys are packed into *blocks* of up to [`BLOCK_MAX_ENTRIES`] entries.
//! The redb key of a block is the index key of its first entry, and every
//! entry lives in the block with the greatest first key not above it. The
//! redb value is the entries in order, each `shared-prefix-length
//! suffix-length suffix retracted-tx` (LEB128 varints; the retracting tx is
//! 0 while the datom is current), *packed* ([`pack`]): LZ4-compressed when
//! that is smaller. See `docs/db-engine.md`.
//!
//! # Log records
//!
//! A log record is one transaction's datoms (or a page's worth of them) in
//! applied order, laid out like a block whose keys are the datoms' `e a v`
//! bytes and whose last varint is the added flag (1 or 0), packed the same
//! way. Consecutive datoms of one entity share their entity id and
//! attribute namespace, and the compressor finds the rest of the repeats.

use datacamp_datom::{
    BigDec, BigInt, DbConfig, Error, Index, Keyword, Result, SchemaFlexibility, Symbol, Uuid, Value,
};
use num_bigint::Sign;

use crate::hash::FxHashMap;

/// The first bytes of every redb file (its magic number). A file that does
/// not start with them is never handed to redb, which might try to repair it.
pub(crate) const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// The marker stored under [`META_FORMAT`] in every Datacamp database.
pub(crate) const FORMAT_MARKER: &[u8] = b"datacamp-db";
/// The on-disk format version this crate writes and reads. Version 1 (up
/// to issue 17) stored blocks and log records uncompressed; a version-1
/// file is refused by name (back it up with the build that wrote it and
/// restore the backup: backups do not depend on the file format).
pub(crate) const FORMAT_VERSION: u32 = 2;

/// Meta-table key of [`FORMAT_MARKER`].
pub(crate) const META_FORMAT: &str = "format";
/// Meta-table key of the format version (u32, big-endian).
pub(crate) const META_VERSION: &str = "format-version";
/// Meta-table key of the configuration ([`encode_config`]).
pub(crate) const META_CONFIG: &str = "config";
/// Meta-table key of the counters ([`Counters`]).
pub(crate) const META_COUNTERS: &str = "counters";

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

fn corrupt(what: &str, bytes: &[u8]) -> Error {
    Error::Storage {
        context: format!("decoding {what} from stored bytes {}", hex_prefix(bytes)),
        source: "the stored bytes do not follow the datacamp-db key layout".into(),
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(48).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 48 {
        format!("{shown}… ({} bytes)", bytes.len())
    } else {
        shown
    }
}

// ---------------------------------------------------------------- writing

/// An `i64` whose big-endian bytes sort like the number.
pub(crate) fn put_i64(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(&((n as u64) ^ (1 << 63)).to_be_bytes());
}

fn put_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

fn put_name(out: &mut Vec<u8>, namespace: Option<&str>, name: &str) {
    match namespace {
        None => out.push(0),
        Some(ns) => {
            out.push(1);
            put_escaped(out, ns.as_bytes());
        }
    }
    put_escaped(out, name.as_bytes());
}

/// A keyword in Clojure's order.
pub(crate) fn put_keyword(out: &mut Vec<u8>, k: &Keyword) {
    put_name(out, k.namespace(), k.name());
}

fn put_bigint(out: &mut Vec<u8>, n: &BigInt) {
    let (sign, magnitude) = n.to_bytes_be();
    match sign {
        Sign::NoSign => out.push(1),
        Sign::Plus => {
            out.push(2);
            out.extend_from_slice(&(magnitude.len() as u64).to_be_bytes());
            out.extend_from_slice(&magnitude);
        }
        Sign::Minus => {
            out.push(0);
            out.extend_from_slice(&(!(magnitude.len() as u64)).to_be_bytes());
            out.extend(magnitude.iter().map(|b| !b));
        }
    }
}

fn put_bigdec(out: &mut Vec<u8>, d: &BigDec) {
    let (sign, magnitude) = d.unscaled.to_radix_be(10);
    // Numeric order first: sign, then the exponent of the leading digit,
    // then the digits without trailing zeros (1.5 and 1.50 are numerically
    // equal), and only then the scale, exactly as `Value`'s order does.
    let significant = magnitude
        .iter()
        .rposition(|&digit| digit != 0)
        .map_or(0, |i| i + 1);
    let exponent = magnitude.len() as i64 - 1 - i64::from(d.scale);
    match sign {
        Sign::NoSign => out.push(1),
        Sign::Plus => {
            out.push(2);
            put_i64(out, exponent);
            out.extend(magnitude[..significant].iter().map(|digit| digit + 1));
            out.push(0x00);
        }
        Sign::Minus => {
            out.push(0);
            let start = out.len();
            put_i64(out, exponent);
            for b in &mut out[start..] {
                *b = !*b;
            }
            out.extend(magnitude[..significant].iter().map(|digit| !(digit + 1)));
            out.push(0xFF);
        }
    }
    put_i64(out, i64::from(d.scale));
}

/// A value in the order of [`Value`]'s `Ord`.
pub(crate) fn put_value(out: &mut Vec<u8>, v: &Value) {
    out.push(v.type_rank());
    match v {
        Value::Boolean(b) => out.push(u8::from(*b)),
        Value::Long(n) | Value::Instant(n) => put_i64(out, *n),
        Value::Double(d) => {
            let bits = d.to_bits();
            let ordered = if bits >> 63 == 1 {
                !bits
            } else {
                bits | (1 << 63)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::Float(f) => {
            let bits = f.to_bits();
            let ordered = if bits >> 31 == 1 {
                !bits
            } else {
                bits | (1 << 31)
            };
            out.extend_from_slice(&ordered.to_be_bytes());
        }
        Value::BigInt(n) => put_bigint(out, n),
        Value::BigDec(d) => put_bigdec(out, d),
        Value::String(s) => put_escaped(out, s.as_bytes()),
        Value::Keyword(k) => put_keyword(out, k),
        Value::Symbol(s) => put_name(out, s.namespace(), s.name()),
        Value::Uuid(u) => out.extend_from_slice(u.as_bytes()),
        Value::Bytes(b) => put_escaped(out, b),
        Value::Tuple(items) => {
            for item in items.iter() {
                out.push(1);
                put_value(out, item);
            }
            out.push(0);
        }
        // Inside a tuple only: the tag alone. Tag 13 is above every other
        // type's, so nil sorts last, as `Value`'s order says (sorting it
        // first would need a tag below boolean's 0, i.e. a new format).
        Value::Nil => {}
    }
}

/// The key of a datom in `index` (tx is the asserting transaction). VAET
/// keys need a ref value; callers only build them for `Value::Long`.
pub(crate) fn index_key(out: &mut Vec<u8>, index: Index, e: i64, a: &Keyword, v: &Value, tx: i64) {
    out.clear();
    append_index_key(out, index, e, a, v, tx);
}

/// [`index_key`] appended to `out`.
pub(crate) fn append_index_key(
    out: &mut Vec<u8>,
    index: Index,
    e: i64,
    a: &Keyword,
    v: &Value,
    tx: i64,
) {
    match index {
        Index::Eavt => {
            put_i64(out, e);
            put_keyword(out, a);
            put_value(out, v);
        }
        Index::Aevt => {
            put_keyword(out, a);
            put_i64(out, e);
            put_value(out, v);
        }
        Index::Avet => {
            put_keyword(out, a);
            put_value(out, v);
            put_i64(out, e);
        }
        Index::Vaet => {
            put_i64(out, v.as_long().unwrap_or(0));
            put_keyword(out, a);
            put_i64(out, e);
        }
    }
    put_i64(out, tx);
}

/// One leading component of an index key prefix.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// An entity id (or, first in VAET, the ref value).
    E(i64),
    /// An attribute.
    A(Keyword),
    /// A value.
    V(Value),
}

/// The key prefix selecting every datom whose leading components are `parts`
/// (already checked to be in the index's order).
pub(crate) fn prefix_key(index: Index, parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    for part in parts {
        match part {
            Part::E(e) => put_i64(&mut out, *e),
            Part::A(a) => put_keyword(&mut out, a),
            Part::V(v) if index == Index::Vaet => put_i64(&mut out, v.as_long().unwrap_or(0)),
            Part::V(v) => put_value(&mut out, v),
        }
    }
    out
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when no such key exists (an empty or all-`0xFF` prefix).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

// ---------------------------------------------------------------- reading

/// Reads components back from stored bytes, remembering the keywords it has
/// already decoded (every datom repeats its attribute; decoding it once per
/// scan instead of once per datom matters for scan speed).
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    keywords: FxHashMap<Box<[u8]>, Keyword>,
}

/// A cursor over one stored byte string.
struct Cursor<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl<'b> Cursor<'b> {
    fn new(bytes: &'b [u8]) -> Self {
        Cursor { bytes, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(corrupt("a key component (truncated)", self.bytes)),
        }
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64> {
        let raw = self.take(8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(raw);
        Ok(u64::from_be_bytes(buf))
    }

    fn i64(&mut self) -> Result<i64> {
        Ok((self.u64()? ^ (1 << 63)) as i64)
    }

    /// The raw (still escaped) span of an escaped byte string, terminator
    /// included, and whether it contains escapes.
    fn escaped_span(&mut self) -> Result<(&'b [u8], bool)> {
        let start = self.pos;
        let mut has_escapes = false;
        loop {
            let i = self.bytes[self.pos..]
                .iter()
                .position(|&b| b == ESCAPE)
                .ok_or_else(|| corrupt("an unterminated string", self.bytes))?;
            let at = self.pos + i;
            match self.bytes.get(at + 1) {
                Some(&TERMINATOR) => {
                    self.pos = at + 2;
                    return Ok((&self.bytes[start..self.pos], has_escapes));
                }
                Some(&ESCAPED_ZERO) => {
                    has_escapes = true;
                    self.pos = at + 2;
                }
                _ => return Err(corrupt("a badly escaped string", self.bytes)),
            }
        }
    }

    fn escaped(&mut self) -> Result<Vec<u8>> {
        let (span, has_escapes) = self.escaped_span()?;
        let body = &span[..span.len() - 2];
        if !has_escapes {
            return Ok(body.to_vec());
        }
        let mut out = Vec::with_capacity(body.len());
        let mut i = 0;
        while i < body.len() {
            out.push(body[i]);
            // An escaped zero is two bytes; the second is not data.
            i += if body[i] == ESCAPE { 2 } else { 1 };
        }
        Ok(out)
    }

    fn string(&mut self) -> Result<String> {
        let bytes = self.escaped()?;
        String::from_utf8(bytes).map_err(|e| corrupt("a string (not UTF-8)", e.as_bytes()))
    }

    /// A string value, allocated once (straight from the key when it has
    /// no escaped zero bytes, which is almost always).
    fn shared_string(&mut self) -> Result<std::sync::Arc<str>> {
        let (span, has_escapes) = self.escaped_span()?;
        if has_escapes {
            self.pos -= span.len();
            return Ok(self.string()?.into());
        }
        let body = &span[..span.len() - 2];
        std::str::from_utf8(body)
            .map(std::sync::Arc::from)
            .map_err(|_| corrupt("a string (not UTF-8)", body))
    }

    fn name_parts(&mut self) -> Result<(Option<String>, String)> {
        let namespace = match self.byte()? {
            0 => None,
            1 => Some(self.string()?),
            _ => return Err(corrupt("a keyword (bad namespace flag)", self.bytes)),
        };
        Ok((namespace, self.string()?))
    }

    /// The byte span of a keyword, for the decoder's cache.
    fn keyword_span(&mut self) -> Result<&'b [u8]> {
        let start = self.pos;
        match self.byte()? {
            0 => {}
            1 => {
                self.escaped_span()?;
            }
            _ => return Err(corrupt("a keyword (bad namespace flag)", self.bytes)),
        }
        self.escaped_span()?;
        Ok(&self.bytes[start..self.pos])
    }

    fn rest_is_empty(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

impl Decoder {
    fn keyword(&mut self, c: &mut Cursor<'_>) -> Result<Keyword> {
        let span = c.keyword_span()?;
        if let Some(k) = self.keywords.get(span) {
            return Ok(k.clone());
        }
        let (namespace, name) = Cursor::new(span).name_parts()?;
        let k = Keyword::new(namespace.as_deref(), &name);
        // A scan over a database with absurdly many attributes must not
        // grow this cache without bound.
        if self.keywords.len() >= 4096 {
            self.keywords.clear();
        }
        self.keywords.insert(span.into(), k.clone());
        Ok(k)
    }

    fn value(&mut self, c: &mut Cursor<'_>) -> Result<Value> {
        let tag = c.byte()?;
        Ok(match tag {
            0 => Value::Boolean(c.byte()? != 0),
            1 => Value::Long(c.i64()?),
            2 => {
                let ordered = c.u64()?;
                let bits = if ordered >> 63 == 1 {
                    ordered & !(1 << 63)
                } else {
                    !ordered
                };
                Value::Double(f64::from_bits(bits))
            }
            3 => {
                let raw = c.take(4)?;
                let ordered = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
                let bits = if ordered >> 31 == 1 {
                    ordered & !(1 << 31)
                } else {
                    !ordered
                };
                Value::Float(f32::from_bits(bits))
            }
            4 => Value::BigInt(bigint(c)?),
            5 => Value::BigDec(bigdec(c)?),
            6 => Value::String(c.shared_string()?),
            7 => Value::Keyword(self.keyword(c)?),
            8 => {
                let (namespace, name) = c.name_parts()?;
                Value::Symbol(Symbol::new(namespace.as_deref(), &name))
            }
            9 => Value::Instant(c.i64()?),
            10 => {
                let raw = c.take(16)?;
                let mut buf = [0u8; 16];
                buf.copy_from_slice(raw);
                Value::Uuid(Uuid::from_bytes(buf))
            }
            11 => Value::Bytes(c.escaped()?.into()),
            12 => {
                let mut items = Vec::new();
                loop {
                    match c.byte()? {
                        0 => break,
                        1 => items.push(self.value(c)?),
                        _ => return Err(corrupt("a tuple (bad element marker)", c.bytes)),
                    }
                }
                Value::Tuple(items.into())
            }
            13 => Value::Nil,
            _ => return Err(corrupt("a value (unknown type tag)", c.bytes)),
        })
    }

    /// Decodes an index key into `(e, a, v, tx)`.
    pub(crate) fn index_key(
        &mut self,
        index: Index,
        key: &[u8],
    ) -> Result<(i64, Keyword, Value, i64)> {
        let mut c = Cursor::new(key);
        let (e, a, v) = match index {
            Index::Eavt => {
                let e = c.i64()?;
                let a = self.keyword(&mut c)?;
                (e, a, self.value(&mut c)?)
            }
            Index::Aevt => {
                let a = self.keyword(&mut c)?;
                let e = c.i64()?;
                (e, a, self.value(&mut c)?)
            }
            Index::Avet => {
                let a = self.keyword(&mut c)?;
                let v = self.value(&mut c)?;
                (c.i64()?, a, v)
            }
            Index::Vaet => {
                let v = Value::Long(c.i64()?);
                let a = self.keyword(&mut c)?;
                (c.i64()?, a, v)
            }
        };
        let tx = c.i64()?;
        if !c.rest_is_empty() {
            return Err(corrupt("an index key (trailing bytes)", key));
        }
        Ok((e, a, v, tx))
    }

    /// Only the entity id of an EAVT key (for counting entities).
    pub(crate) fn eavt_entity(key: &[u8]) -> Result<i64> {
        Cursor::new(key).i64()
    }

    /// Decodes a stored log record (see the module docs).
    pub(crate) fn log_record(
        &mut self,
        tx: i64,
        stored: &[u8],
    ) -> Result<Vec<datacamp_datom::Datom>> {
        let mut reader = BlockReader::default();
        reader
            .reset(stored)
            .map_err(|_| corrupt("a log record (bad packing)", stored))?;
        let mut datoms = Vec::new();
        while let Some(flag) = reader.next_entry()? {
            let key = reader.key();
            let mut c = Cursor::new(key);
            let e = c.i64()?;
            let a = self.keyword(&mut c)?;
            let v = self.value(&mut c)?;
            let added = match flag {
                0 => false,
                1 => true,
                _ => return Err(corrupt("a log record (bad added flag)", key)),
            };
            if !c.rest_is_empty() {
                return Err(corrupt("a log record (trailing bytes)", key));
            }
            datoms.push(datacamp_datom::Datom { e, a, v, tx, added });
        }
        Ok(datoms)
    }
}

fn bigint(c: &mut Cursor<'_>) -> Result<BigInt> {
    match c.byte()? {
        1 => Ok(BigInt::from(0)),
        2 => {
            let len = usize::try_from(c.u64()?).map_err(|_| corrupt("a bigint length", c.bytes))?;
            Ok(BigInt::from_bytes_be(Sign::Plus, c.take(len)?))
        }
        0 => {
            let len =
                usize::try_from(!c.u64()?).map_err(|_| corrupt("a bigint length", c.bytes))?;
            let magnitude: Vec<u8> = c.take(len)?.iter().map(|b| !b).collect();
            Ok(BigInt::from_bytes_be(Sign::Minus, &magnitude))
        }
        _ => Err(corrupt("a bigint (bad sign)", c.bytes)),
    }
}

fn bigdec(c: &mut Cursor<'_>) -> Result<BigDec> {
    let class = c.byte()?;
    let unscaled_with_exponent = match class {
        1 => None,
        2 | 0 => {
            let negative = class == 0;
            let raw = c.u64()?;
            let exponent = ((if negative { !raw } else { raw }) ^ (1 << 63)) as i64;
            let mut digits = Vec::new();
            loop {
                let b = c.byte()?;
                let b = if negative { !b } else { b };
                if b == 0 {
                    break;
                }
                if !(1..=10).contains(&b) {
                    return Err(corrupt("a bigdec digit", c.bytes));
                }
                digits.push(b - 1);
            }
            Some((negative, exponent, digits))
        }
        _ => return Err(corrupt("a bigdec (bad sign)", c.bytes)),
    };
    let scale = i32::try_from(c.i64()?).map_err(|_| corrupt("a bigdec scale", c.bytes))?;
    let Some((negative, exponent, mut digits)) = unscaled_with_exponent else {
        return Ok(BigDec::new(BigInt::from(0), scale));
    };
    // exponent = len - 1 - scale, so the unscaled value had len digits:
    // the stored significant digits plus the trailing zeros that were cut.
    let len = exponent + 1 + i64::from(scale);
    let zeros = usize::try_from(len - digits.len() as i64)
        .map_err(|_| corrupt("a bigdec (digits do not match exponent)", c.bytes))?;
    digits.resize(digits.len() + zeros, 0);
    let sign = if negative { Sign::Minus } else { Sign::Plus };
    let unscaled = BigInt::from_radix_be(sign, &digits, 10)
        .ok_or_else(|| corrupt("a bigdec (bad digits)", c.bytes))?;
    Ok(BigDec::new(unscaled, scale))
}

// ---------------------------------------------------------------- blocks

/// Index entries per block at most: bounds what a lookup decodes to find
/// one entry (the packer usually stops earlier, at a page).
pub(crate) const BLOCK_MAX_ENTRIES: usize = 512;
/// Plain (uncompressed) bytes of one block or log record at most, however
/// well they compress: bounds a reader's buffer and a lookup's work (a
/// single entry larger than this is stored alone).
pub(crate) const MAX_PLAIN_BYTES: usize = 64 * 1024;

/// First byte of a stored value kept as it is (compressing did not make it
/// smaller).
const PACKED_PLAIN: u8 = 0;
/// First byte of a stored value compressed with LZ4 (block format); the
/// plain length follows as a varint, then the compressed bytes.
const PACKED_LZ4: u8 = 1;
/// LZ4 expands a block at most this many times (a match of 255+ bytes per
/// 1-byte token), so a stored plain length above it is corrupt and never
/// allocated.
const LZ4_MAX_RATIO: u64 = 255;

/// Stores `plain` into `out` (cleared): LZ4-compressed when that is
/// smaller, else as it is.
pub(crate) fn pack(plain: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(PACKED_LZ4);
    put_varint(out, plain.len() as u64);
    let header = out.len();
    out.resize(
        header + lz4_flex::block::get_maximum_output_size(plain.len()),
        0,
    );
    match lz4_flex::block::compress_into(plain, &mut out[header..]) {
        Ok(n) if header + n < plain.len() + 1 => out.truncate(header + n),
        _ => {
            out.clear();
            out.push(PACKED_PLAIN);
            out.extend_from_slice(plain);
        }
    }
}

/// Reads [`pack`]'s bytes back into `plain` (cleared); `what` names the
/// stored object in the error.
pub(crate) fn unpack(stored: &[u8], plain: &mut Vec<u8>, what: &str) -> Result<()> {
    plain.clear();
    match stored.split_first() {
        Some((&PACKED_PLAIN, rest)) => {
            plain.extend_from_slice(rest);
            Ok(())
        }
        Some((&PACKED_LZ4, rest)) => {
            let (len, used) = read_varint(rest).ok_or_else(|| corrupt(what, stored))?;
            let body = &rest[used..];
            if len > (body.len() as u64).saturating_mul(LZ4_MAX_RATIO) + 16 {
                return Err(corrupt(what, stored));
            }
            let len = usize::try_from(len).map_err(|_| corrupt(what, stored))?;
            plain.resize(len, 0);
            match lz4_flex::block::decompress_into(body, plain) {
                Ok(n) if n == len => Ok(()),
                _ => Err(corrupt(what, stored)),
            }
        }
        _ => Err(corrupt(what, stored)),
    }
}

/// A LEB128 varint at the start of `bytes`, and how many bytes it took.
fn read_varint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        n |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, i + 1));
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends one entry to a block being encoded: the length of the prefix it
/// shares with the previous key, the rest of the key, the retracting tx.
pub(crate) fn put_block_entry(out: &mut Vec<u8>, previous: &[u8], key: &[u8], retracted: u64) {
    let shared = previous.iter().zip(key).take_while(|(a, b)| a == b).count();
    put_varint(out, shared as u64);
    put_varint(out, (key.len() - shared) as u64);
    out.extend_from_slice(&key[shared..]);
    put_varint(out, retracted);
}

/// Reads the entries of a block in order, rebuilding each full key.
#[derive(Debug, Default)]
pub(crate) struct BlockReader {
    bytes: Vec<u8>,
    pos: usize,
    key: Vec<u8>,
}

impl BlockReader {
    /// Starts reading a stored (packed) block, unpacked into the reader's
    /// own buffer: the stored bytes are borrowed from a page that must not
    /// be held while the scan goes on.
    pub(crate) fn reset(&mut self, stored: &[u8]) -> Result<()> {
        self.pos = 0;
        self.key.clear();
        unpack(stored, &mut self.bytes, "an index block")
    }

    /// Starts reading plain (unpacked) block bytes.
    #[cfg(test)]
    pub(crate) fn reset_plain(&mut self, plain: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(plain);
        self.pos = 0;
        self.key.clear();
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or_else(|| corrupt("an index block (truncated)", &self.bytes))?;
            self.pos += 1;
            n |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("an index block (varint too long)", &self.bytes))
    }

    /// Advances to the next entry and returns its retracting tx (`None` at
    /// the end); [`BlockReader::key`] is then its key.
    pub(crate) fn next_entry(&mut self) -> Result<Option<u64>> {
        if self.pos >= self.bytes.len() {
            return Ok(None);
        }
        let shared = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let len = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) if shared <= self.key.len() => {
                self.key.truncate(shared);
                self.key.extend_from_slice(&self.bytes[self.pos..end]);
                self.pos = end;
            }
            _ => return Err(corrupt("an index block (bad entry)", &self.bytes)),
        }
        Ok(Some(self.varint()?))
    }

    /// The key of the current entry.
    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }
}

// ---------------------------------------------------------------- records

/// The bytes a log record stores of one datom before its added flag: its
/// `e a v` (the tx is in the record's key).
pub(crate) fn log_datom_key(out: &mut Vec<u8>, d: &datacamp_datom::Datom) {
    out.clear();
    put_i64(out, d.e);
    put_keyword(out, &d.a);
    put_value(out, &d.v);
}

/// The key of a datom in a load's log run: `tx` and its position in the
/// stream (8 bytes each, big-endian, so a tx's datoms sort together in
/// stream order), its `e a v` bytes, then the added flag.
pub(crate) fn append_log_run_key(out: &mut Vec<u8>, d: &datacamp_datom::Datom, seq: u64) {
    out.extend_from_slice(&u64::try_from(d.tx).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    put_i64(out, d.e);
    put_keyword(out, &d.a);
    put_value(out, &d.v);
    out.push(u8::from(d.added));
}

/// An AEVT key's parts as bytes: attribute, entity (8), value (type tag
/// and payload), tx (8). A bulk load builds AVET and VAET keys from them
/// by rearranging bytes, with no decoding.
pub(crate) struct AevtParts<'k> {
    pub attr: &'k [u8],
    pub e: &'k [u8],
    pub v: &'k [u8],
    pub tx: &'k [u8],
}

impl<'k> AevtParts<'k> {
    pub(crate) fn split(key: &'k [u8]) -> Result<AevtParts<'k>> {
        let bad = || corrupt("an AEVT key", key);
        let attr = Cursor::new(key).keyword_span()?;
        let rest = &key[attr.len()..];
        let (e, rest) = rest.split_at_checked(8).ok_or_else(bad)?;
        let cut = rest
            .len()
            .checked_sub(8)
            .filter(|&n| n > 0)
            .ok_or_else(bad)?;
        let (v, tx) = rest.split_at(cut);
        Ok(AevtParts { attr, e, v, tx })
    }

    /// The value's long payload, if it is a long (what VAET keys start with).
    pub(crate) fn long_payload(&self) -> Option<&'k [u8]> {
        (self.v.first() == Some(&Value::Long(0).type_rank()) && self.v.len() == 9)
            .then(|| &self.v[1..])
    }

    /// The AVET key of the same entry.
    pub(crate) fn append_avet(&self, out: &mut Vec<u8>) {
        for part in [self.attr, self.v, self.e, self.tx] {
            out.extend_from_slice(part);
        }
    }

    /// The VAET key of the same entry (its value a long: `payload`).
    pub(crate) fn append_vaet(&self, out: &mut Vec<u8>, payload: &[u8]) {
        for part in [payload, self.attr, self.e, self.tx] {
            out.extend_from_slice(part);
        }
    }
}

/// The keyword an attribute's key bytes encode.
pub(crate) fn keyword_of(span: &[u8]) -> Result<Keyword> {
    let (namespace, name) = Cursor::new(span).name_parts()?;
    Ok(Keyword::new(namespace.as_deref(), &name))
}

/// [`append_log_run_key`] split into tx, `e a v` bytes and added flag.
pub(crate) fn split_log_run_key(key: &[u8]) -> Result<(u64, &[u8], bool)> {
    let bad = || corrupt("a load's log run key", key);
    let (head, rest) = key.split_at_checked(16).ok_or_else(bad)?;
    let (flag, eav) = rest.split_last().ok_or_else(bad)?;
    let mut tx = [0u8; 8];
    tx.copy_from_slice(&head[..8]);
    Ok((u64::from_be_bytes(tx), eav, *flag == 1))
}

/// The bytes the `e a v` of `[tx :db/txInstant inst]` start with (the
/// instant's 8 bytes follow).
pub(crate) fn tx_instant_prefix(tx: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    put_i64(&mut out, tx);
    put_keyword(&mut out, &datacamp_datom::schema::attr::tx_instant());
    out.push(Value::Instant(0).type_rank());
    out
}

/// The instant of a `:db/txInstant` datom's `e a v` bytes, given its
/// [`tx_instant_prefix`]; `None` for any other datom.
pub(crate) fn tx_instant_of(eav: &[u8], prefix: &[u8]) -> Option<i64> {
    let rest = eav.strip_prefix(prefix)?;
    let bytes: [u8; 8] = rest.try_into().ok()?;
    Some((u64::from_be_bytes(bytes) ^ (1 << 63)) as i64)
}

/// The stored configuration: flexibility byte and keep-history byte.
pub(crate) fn encode_config(config: DbConfig) -> [u8; 2] {
    let flex = match config.schema_flexibility {
        SchemaFlexibility::Write => 0,
        SchemaFlexibility::Read => 1,
    };
    [flex, u8::from(config.keep_history)]
}

/// Reads [`encode_config`] back.
pub(crate) fn decode_config(bytes: &[u8]) -> Option<DbConfig> {
    let schema_flexibility = match bytes.first()? {
        0 => SchemaFlexibility::Write,
        1 => SchemaFlexibility::Read,
        _ => return None,
    };
    let keep_history = match bytes.get(1)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    (bytes.len() == 2).then_some(DbConfig {
        schema_flexibility,
        keep_history,
    })
}

/// The database-wide counters, stored with every commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    /// The last transaction.
    pub basis_tx: i64,
    /// The largest entity id that is not a transaction id.
    pub max_eid: i64,
    /// Current datoms.
    pub live: u64,
    /// Datoms of the history view (assertions plus retractions).
    pub history: u64,
    /// The `:db/txInstant` of the last transaction.
    pub last_instant: i64,
}

impl Counters {
    /// Five big-endian 8-byte fields.
    pub(crate) fn encode(&self) -> [u8; 40] {
        let mut out = [0u8; 40];
        out[0..8].copy_from_slice(&self.basis_tx.to_be_bytes());
        out[8..16].copy_from_slice(&self.max_eid.to_be_bytes());
        out[16..24].copy_from_slice(&self.live.to_be_bytes());
        out[24..32].copy_from_slice(&self.history.to_be_bytes());
        out[32..40].copy_from_slice(&self.last_instant.to_be_bytes());
        out
    }

    /// Reads [`Counters::encode`] back.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Counters> {
        if bytes.len() != 40 {
            return None;
        }
        let field = |i: usize| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            buf
        };
        Some(Counters {
            basis_tx: i64::from_be_bytes(field(0)),
            max_eid: i64::from_be_bytes(field(1)),
            live: u64::from_be_bytes(field(2)),
            history: u64::from_be_bytes(field(3)),
            last_instant: i64::from_be_bytes(field(4)),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn enc(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        put_value(&mut out, v);
        out
    }

    fn sample_values() -> Vec<Value> {
        let dec = |s: &str| Value::BigDec(BigDec::parse(s).unwrap());
        let big = |s: &str| Value::BigInt(s.parse().unwrap());
        vec![
            Value::Boolean(false),
            Value::Boolean(true),
            Value::Long(i64::MIN),
            Value::Long(-1),
            Value::Long(0),
            Value::Long(1),
            Value::Long(i64::MAX),
            Value::Double(f64::NEG_INFINITY),
            Value::Double(-1.5),
            Value::Double(-0.0),
            Value::Double(0.0),
            Value::Double(2.5),
            Value::Double(f64::NAN),
            Value::Float(-3.0),
            Value::Float(0.0),
            Value::Float(7.25),
            big("-100000000000000000000000"),
            big("-255"),
            big("-1"),
            big("0"),
            big("1"),
            big("255"),
            big("256"),
            big("100000000000000000000000"),
            dec("-12.5"),
            dec("-1.50"),
            dec("-1.5"),
            dec("-1"),
            dec("-0.001"),
            dec("0"),
            dec("0.00"),
            dec("0.001"),
            dec("1"),
            dec("1.0"),
            dec("1.5"),
            dec("1.50"),
            dec("12E+3"),
            dec("12000"),
            dec("123456789012345678901234567890.5"),
            Value::string(""),
            Value::string("a"),
            Value::string("a\0b"),
            Value::string("a\0c"),
            Value::string("ab"),
            Value::string("é"),
            Value::string("😀"),
            Value::keyword("z"),
            Value::keyword("a/b"),
            Value::keyword("a/z"),
            Value::keyword("b/a"),
            Value::Symbol(Symbol::parse("x")),
            Value::Symbol(Symbol::parse("my.ns/f")),
            Value::Instant(-5),
            Value::Instant(1_760_817_092_123),
            Value::Uuid(Uuid::from_u128(1)),
            Value::Uuid(Uuid::from_u128(u128::MAX)),
            Value::Bytes(vec![].into()),
            Value::Bytes(vec![0, 0].into()),
            Value::Bytes(vec![0, 1].into()),
            Value::Bytes(vec![255].into()),
            Value::Tuple(vec![].into()),
            Value::Tuple(vec![Value::Long(1)].into()),
            Value::Tuple(vec![Value::Long(1), Value::string("a")].into()),
            Value::Tuple(vec![Value::Long(2)].into()),
        ]
    }

    #[test]
    fn value_bytes_sort_like_values_and_round_trip() {
        let values = sample_values();
        let mut decoder = Decoder::default();
        for a in &values {
            let bytes = enc(a);
            let mut c = Cursor::new(&bytes);
            let back = decoder.value(&mut c).unwrap();
            assert!(c.rest_is_empty(), "{a}");
            assert_eq!(&back, a, "round trip of {a}");
            for b in &values {
                assert_eq!(enc(a).cmp(&enc(b)), a.cmp(b), "order of {a} vs {b}");
            }
        }
    }

    #[test]
    fn tuples_with_nil_sort_like_values_and_round_trip() {
        let t = |items: Vec<Value>| Value::Tuple(items.into());
        let mut values = sample_values();
        values.extend([
            t(vec![Value::Nil]),
            t(vec![Value::Nil, Value::Nil]),
            t(vec![Value::Long(1), Value::Nil]),
            t(vec![Value::Long(1), Value::Nil, Value::string("b")]),
            t(vec![Value::Boolean(false), Value::Nil]),
            t(vec![t(vec![Value::Nil]), Value::Long(3)]),
            t(vec![Value::string("a"), Value::Nil]),
        ]);
        let mut decoder = Decoder::default();
        for a in &values {
            let bytes = enc(a);
            let mut c = Cursor::new(&bytes);
            assert_eq!(&decoder.value(&mut c).unwrap(), a, "round trip of {a}");
            assert!(c.rest_is_empty(), "{a}");
            for b in &values {
                assert_eq!(enc(a).cmp(&enc(b)), a.cmp(b), "order of {a} vs {b}");
            }
        }
        // Inside an index key, too: the components after the tuple still
        // sort and decode.
        let k = Keyword::parse("a/t");
        let v = t(vec![Value::Long(1), Value::Nil, Value::string("b")]);
        let mut key = Vec::new();
        index_key(&mut key, Index::Avet, 7, &k, &v, 9);
        assert_eq!(decoder.index_key(Index::Avet, &key).unwrap(), (7, k, v, 9));
    }

    #[test]
    fn keys_are_self_delimiting() {
        // A longer string must not sort between a shorter one's keys.
        let k = Keyword::parse("a/b");
        let mut short = Vec::new();
        let mut long = Vec::new();
        index_key(&mut short, Index::Avet, 9, &k, &Value::string("a"), 1);
        index_key(&mut long, Index::Avet, 1, &k, &Value::string("a\u{1}"), 1);
        assert!(short < long);
        let mut decoder = Decoder::default();
        let (e, a, v, tx) = decoder.index_key(Index::Avet, &long).unwrap();
        assert_eq!((e, a, v, tx), (1, k, Value::string("a\u{1}"), 1));
    }

    #[test]
    fn keyword_order_matches_clojure() {
        let mut ks: Vec<Keyword> = ["b/a", "z", "a/z", "a/b", "a.b/c", "a/bb"]
            .iter()
            .map(|s| Keyword::parse(s))
            .collect();
        let mut by_bytes = ks.clone();
        ks.sort();
        by_bytes.sort_by_key(|k| {
            let mut out = Vec::new();
            put_keyword(&mut out, k);
            out
        });
        assert_eq!(ks, by_bytes);
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }

    #[test]
    fn corrupt_bytes_are_errors() {
        let mut decoder = Decoder::default();
        assert!(matches!(
            decoder.index_key(Index::Eavt, &[1, 2, 3]),
            Err(Error::Storage { .. })
        ));
        assert!(decoder.value(&mut Cursor::new(&[99])).is_err());
        assert!(decoder.value(&mut Cursor::new(&[6, b'a'])).is_err());
    }

    #[test]
    fn blocks_round_trip() {
        let keys: Vec<Vec<u8>> = vec![
            vec![1, 2, 3],
            vec![1, 2, 3, 4],
            vec![1, 9],
            vec![2],
            vec![2, 0, 0, 0, 0],
        ];
        let mut block = Vec::new();
        let mut previous: &[u8] = &[];
        for (i, k) in keys.iter().enumerate() {
            put_block_entry(&mut block, previous, k, i as u64 * 300);
            previous = k;
        }
        let mut reader = BlockReader::default();
        reader.reset_plain(&block);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(reader.next_entry().unwrap(), Some(i as u64 * 300));
            assert_eq!(reader.key(), k.as_slice());
        }
        assert_eq!(reader.next_entry().unwrap(), None);
        reader.reset_plain(&block[..block.len() - 2]);
        let mut result = Ok(Some(0));
        while let Ok(Some(_)) = result {
            result = reader.next_entry();
        }
        assert!(result.is_err(), "a truncated block is an error");
    }

    #[test]
    fn counters_and_config_round_trip() {
        let c = Counters {
            basis_tx: 5,
            max_eid: -1,
            live: 7,
            history: 9,
            last_instant: 11,
        };
        assert_eq!(Counters::decode(&c.encode()), Some(c));
        let config = DbConfig {
            schema_flexibility: SchemaFlexibility::Read,
            keep_history: false,
        };
        assert_eq!(decode_config(&encode_config(config)), Some(config));
        assert_eq!(decode_config(&[7, 0]), None);
    }
}
