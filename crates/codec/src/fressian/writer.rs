//! The streaming Fressian writer.

use std::io::Write;

use rustc_hash::FxHashMap;

use super::codes;
use super::raw;
use super::value::{Named, Value};
use crate::error::{CodecError, Result};

/// The writer hands its buffer to the underlying sink when it grows past
/// this many bytes.
const FLUSH_AT: usize = 64 * 1024;

/// Values nested deeper than this are refused rather than risking the
/// stack.
const MAX_WRITE_DEPTH: u32 = 1024;

/// The writer side of both Fressian caches, with the reference's indexing:
/// entries are numbered from 0 in order of first appearance.
#[derive(Debug, Default)]
pub(crate) struct WriteCaches {
    /// Priority-cache entries that are strings, looked up without
    /// allocating.
    strings: FxHashMap<Box<str>, u32>,
    /// Every other priority-cache entry.
    values: FxHashMap<Value, u32>,
    next_priority: u32,
    /// Struct tags: index and the field count declared with them.
    structs: FxHashMap<Box<str>, (u32, usize)>,
}

impl WriteCaches {
    pub(crate) fn clear(&mut self) {
        self.strings.clear();
        self.values.clear();
        self.next_priority = 0;
        self.structs.clear();
    }

    /// Interns `s`; returns its index and whether it was already cached.
    #[inline]
    pub(crate) fn intern_string(&mut self, s: &str) -> (u32, bool) {
        if let Some(&i) = self.strings.get(s) {
            return (i, true);
        }
        let i = self.next_priority;
        self.strings.insert(s.into(), i);
        self.next_priority += 1;
        (i, false)
    }

    fn old_value_index(&mut self, v: &Value) -> Option<u32> {
        if let Some(&i) = self.values.get(v) {
            return Some(i);
        }
        self.values.insert(v.clone(), self.next_priority);
        self.next_priority += 1;
        None
    }

    /// Interns a struct tag; returns its index and declared field count if
    /// it was already cached.
    fn old_struct(&mut self, tag: &str, fields: usize) -> Option<(u32, usize)> {
        if let Some(&known) = self.structs.get(tag) {
            return Some(known);
        }
        let i = self.structs.len() as u32;
        self.structs.insert(tag.into(), (i, fields));
        None
    }
}

/// Appends `s` as the reference's `writeObject(s, true)` does: the empty
/// string is written plainly, others go through the priority cache.
#[inline]
pub(crate) fn put_cached_str(buf: &mut Vec<u8>, caches: &mut WriteCaches, s: &str) {
    if s.is_empty() {
        buf.push(codes::STRING_PACKED_LENGTH_START);
        return;
    }
    match caches.intern_string(s) {
        (i, true) => raw::write_priority_ref(buf, i),
        (_, false) => {
            buf.push(codes::PUT_PRIORITY_CACHE);
            raw::write_string(buf, s);
        }
    }
}

/// Appends a keyword or symbol body (after its `KEY`/`SYM` code) as
/// clojure.data.fressian's `write-named` does: namespace and name, each
/// through the priority cache.
#[inline]
pub(crate) fn put_named(
    buf: &mut Vec<u8>,
    caches: &mut WriteCaches,
    namespace: Option<&str>,
    name: &str,
) {
    match namespace {
        Some(ns) => put_cached_str(buf, caches, ns),
        None => buf.push(codes::NULL),
    }
    put_cached_str(buf, caches, name);
}

/// A streaming Fressian writer producing exactly the bytes of the reference
/// `FressianWriter` with clojure.data.fressian's handlers (see the crate
/// docs for the one deliberate exception, `-0.0`).
///
/// Output is buffered; call [`Writer::flush`] or [`Writer::into_inner`] at
/// the end. The writer keeps the running Adler-32 and byte count needed by
/// [`Writer::write_footer`].
///
/// ```
/// use datacamp_codec::fressian::{Value, Writer};
///
/// let mut w = Writer::new(Vec::new());
/// w.write_value(&Value::keyword(Some("a"), "b")).unwrap();
/// let bytes = w.into_inner().unwrap();
/// assert_eq!(bytes, [0xCA, 0xCD, 0xDB, b'a', 0xCD, 0xDB, b'b']);
/// ```
pub struct Writer<W: Write> {
    out: W,
    buf: Vec<u8>,
    caches: WriteCaches,
    adler: simd_adler32::Adler32,
    /// Bytes handed to `out` since the last footer.
    since_footer: u64,
    total: u64,
}

impl<W: Write> std::fmt::Debug for Writer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("bytes_written", &self.bytes_written())
            .finish_non_exhaustive()
    }
}

impl<W: Write> Writer<W> {
    /// A writer into `out` with empty caches.
    pub fn new(out: W) -> Writer<W> {
        Writer {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            caches: WriteCaches::default(),
            adler: simd_adler32::Adler32::new(),
            since_footer: 0,
            total: 0,
        }
    }

    /// Writes a value (`writeObject(o)`).
    pub fn write_value(&mut self, value: &Value) -> Result<()> {
        self.put(value, 0)?;
        self.maybe_flush()
    }

    /// Writes a value through the priority cache (`writeObject(o, true)`):
    /// the first time as `PUT_PRIORITY_CACHE` + the value, afterwards as a
    /// one- or few-byte reference. Values the reference never caches
    /// (`nil`, booleans, small integers, `""`, `0.0`, `1.0`) are written
    /// plainly.
    pub fn write_cached(&mut self, value: &Value) -> Result<()> {
        self.put_cached(value, 0)?;
        self.maybe_flush()
    }

    /// Writes `nil`.
    pub fn write_null(&mut self) -> Result<()> {
        self.buf.push(codes::NULL);
        self.maybe_flush()
    }

    /// Writes a boolean.
    pub fn write_bool(&mut self, b: bool) -> Result<()> {
        raw::write_bool(&mut self.buf, b);
        self.maybe_flush()
    }

    /// Writes an integer in its shortest packed form.
    pub fn write_int(&mut self, i: i64) -> Result<()> {
        raw::write_int(&mut self.buf, i);
        self.maybe_flush()
    }

    /// Writes a float.
    pub fn write_float(&mut self, f: f32) -> Result<()> {
        raw::write_float(&mut self.buf, f);
        self.maybe_flush()
    }

    /// Writes a double (`-0.0` keeps its sign; see the crate docs).
    pub fn write_double(&mut self, d: f64) -> Result<()> {
        raw::write_double(&mut self.buf, d);
        self.maybe_flush()
    }

    /// Writes a string (chunked above 65536 encoded bytes, as the reference
    /// does).
    pub fn write_string(&mut self, s: &str) -> Result<()> {
        raw::write_string(&mut self.buf, s);
        self.maybe_flush()
    }

    /// Writes a byte array (chunked above 65535 bytes).
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        raw::write_bytes(&mut self.buf, bytes);
        self.maybe_flush()
    }

    /// Writes a struct header: a built-in shortcut code for the reference's
    /// built-in tags (`"map"`, `"inst"`, …), otherwise `STRUCTTYPE` + tag +
    /// `field_count` the first time and a struct-cache reference after.
    /// The caller then writes `field_count` values.
    pub fn write_tag(&mut self, tag: &str, field_count: usize) -> Result<()> {
        self.put_tag(tag, field_count)?;
        self.maybe_flush()
    }

    /// Writes a list header for `len` elements; the caller then writes
    /// them.
    pub fn write_list_header(&mut self, len: usize) -> Result<()> {
        raw::write_list_header(&mut self.buf, len)?;
        self.maybe_flush()
    }

    /// Begins a list of unknown length, ended by [`Writer::end_list`].
    pub fn begin_closed_list(&mut self) -> Result<()> {
        self.buf.push(codes::BEGIN_CLOSED_LIST);
        self.maybe_flush()
    }

    /// Begins an open list: ended by [`Writer::end_list`] or simply by the
    /// end of the stream. As in the reference, only allowed at the start
    /// of the stream or right after a footer.
    pub fn begin_open_list(&mut self) -> Result<()> {
        if self.since_footer + self.buf.len() as u64 != 0 {
            return Err(CodecError::Unencodable {
                what: "an open list".into(),
                reason: "an open list must begin at the top level, at the start of the stream or right after a footer".into(),
            });
        }
        self.buf.push(codes::BEGIN_OPEN_LIST);
        self.maybe_flush()
    }

    /// Ends a closed or open list.
    pub fn end_list(&mut self) -> Result<()> {
        self.buf.push(codes::END_COLLECTION);
        self.maybe_flush()
    }

    /// Writes `RESET_CACHES` and forgets both caches.
    pub fn reset_caches(&mut self) -> Result<()> {
        self.buf.push(codes::RESET_CACHES);
        self.caches.clear();
        self.maybe_flush()
    }

    /// Writes a footer: the magic `CFCFCFCF`, the number of bytes since
    /// the previous footer (or the start) and the Adler-32 of those bytes
    /// plus the magic and length, as the reference does. Resets both
    /// caches (without a `RESET_CACHES` code: readers reset on the footer).
    pub fn write_footer(&mut self) -> Result<()> {
        let length = self.since_footer + self.buf.len() as u64;
        self.buf
            .extend_from_slice(&codes::FOOTER_MAGIC.to_be_bytes());
        // The reference's length is a Java int; longer segments wrap there too.
        self.buf.extend_from_slice(&(length as u32).to_be_bytes());
        self.adler.write(&self.buf);
        let checksum = self.adler.finish();
        self.buf.extend_from_slice(&checksum.to_be_bytes());
        self.write_out_buf()?;
        self.adler = simd_adler32::Adler32::new();
        self.since_footer = 0;
        self.caches.clear();
        Ok(())
    }

    /// Total bytes written so far (including those still buffered).
    pub fn bytes_written(&self) -> u64 {
        self.total + self.buf.len() as u64
    }

    /// Hands buffered bytes to the sink and flushes it.
    pub fn flush(&mut self) -> Result<()> {
        self.flush_buf()?;
        self.out
            .flush()
            .map_err(|e| CodecError::io("flushing Fressian output", e))
    }

    /// Flushes and returns the sink.
    pub fn into_inner(mut self) -> Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// The sink.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()
        } else {
            Ok(())
        }
    }

    fn flush_buf(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.adler.write(&self.buf);
        self.since_footer += self.buf.len() as u64;
        self.write_out_buf()
    }

    /// Writes the buffer to the sink without touching the checksum state.
    fn write_out_buf(&mut self) -> Result<()> {
        let at = self.total;
        self.out.write_all(&self.buf).map_err(|e| {
            CodecError::io(format!("writing Fressian output at byte offset {at}"), e)
        })?;
        self.total += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn put_tag(&mut self, tag: &str, field_count: usize) -> Result<()> {
        if let Some(code) = codes::tag_code(tag) {
            self.buf.push(code);
            return Ok(());
        }
        match self.caches.old_struct(tag, field_count) {
            Some((i, declared)) if declared == field_count => raw::write_struct_ref(&mut self.buf, i),
            // The reference would write the reference anyway and readers
            // would then read the wrong number of fields.
            Some((_, declared)) => {
                return Err(CodecError::Unencodable {
                    what: format!("struct {tag:?} with {field_count} fields"),
                    reason: format!(
                        "the struct cache already declares {tag:?} with {declared} fields; a tag keeps its field count until the caches are reset"
                    ),
                })
            }
            None => {
                self.buf.push(codes::STRUCTTYPE);
                raw::write_string(&mut self.buf, tag);
                raw::write_count(&mut self.buf, field_count, "struct")?;
            }
        }
        Ok(())
    }

    fn put_cached(&mut self, value: &Value, depth: u32) -> Result<()> {
        let skip = match value {
            Value::Null | Value::Bool(_) => true,
            Value::Int(i) => raw::int_skips_cache(*i),
            Value::Double(d) => *d == 0.0 || *d == 1.0,
            Value::String(s) => {
                put_cached_str(&mut self.buf, &mut self.caches, s);
                return Ok(());
            }
            _ => false,
        };
        if skip {
            return self.put(value, depth);
        }
        match self.caches.old_value_index(value) {
            Some(i) => {
                raw::write_priority_ref(&mut self.buf, i);
                Ok(())
            }
            None => {
                self.buf.push(codes::PUT_PRIORITY_CACHE);
                self.put(value, depth)
            }
        }
    }

    fn put_named(&mut self, code: u8, n: &Named) {
        self.buf.push(code);
        put_named(
            &mut self.buf,
            &mut self.caches,
            n.namespace.as_deref(),
            &n.name,
        );
    }

    fn put_bigint(&mut self, b: &num_bigint::BigInt) {
        self.buf.push(codes::BIGINT);
        raw::write_bytes(&mut self.buf, &b.to_signed_bytes_be());
    }

    fn put_items(&mut self, items: &[Value], depth: u32) -> Result<()> {
        for item in items {
            self.put(item, depth + 1)?;
            self.maybe_flush()?;
        }
        Ok(())
    }

    fn put(&mut self, value: &Value, depth: u32) -> Result<()> {
        if depth > MAX_WRITE_DEPTH {
            return Err(CodecError::Unencodable {
                what: format!("a {}", value.type_name()),
                reason: format!(
                    "values nested deeper than {MAX_WRITE_DEPTH} levels are not written"
                ),
            });
        }
        let buf = &mut self.buf;
        match value {
            Value::Null => buf.push(codes::NULL),
            Value::Bool(b) => raw::write_bool(buf, *b),
            Value::Int(i) => raw::write_int(buf, *i),
            Value::Float(f) => raw::write_float(buf, *f),
            Value::Double(d) => raw::write_double(buf, *d),
            Value::String(s) => raw::write_string(buf, s),
            Value::Bytes(b) => raw::write_bytes(buf, b),
            Value::Char(c) => {
                let unit = u16::try_from(u32::from(*c)).map_err(|_| CodecError::Unencodable {
                    what: format!("char U+{:04X}", u32::from(*c)),
                    reason: "the reference's chars are UTF-16 code units; a character outside the Basic Multilingual Plane needs a string".into(),
                })?;
                self.put_tag("char", 1)?;
                raw::write_int(&mut self.buf, i64::from(unit));
            }
            Value::Keyword(n) => self.put_named(codes::KEY, n),
            Value::Symbol(n) => self.put_named(codes::SYM, n),
            Value::Inst(ms) => {
                buf.push(codes::INST);
                raw::write_int(buf, *ms);
            }
            Value::Uuid(u) => {
                buf.push(codes::UUID);
                raw::write_bytes(buf, u.as_bytes());
            }
            Value::Uri(s) => {
                buf.push(codes::URI);
                raw::write_string(buf, s);
            }
            Value::Regex(s) => {
                buf.push(codes::REGEX);
                raw::write_string(buf, s);
            }
            Value::BigInt(b) => self.put_bigint(b),
            Value::BigDec { unscaled, scale } => {
                buf.push(codes::BIGDEC);
                raw::write_bytes(buf, &unscaled.to_signed_bytes_be());
                raw::write_int(buf, i64::from(*scale));
            }
            Value::Ratio {
                numerator,
                denominator,
            } => {
                self.put_tag("ratio", 2)?;
                self.put_bigint(numerator);
                self.put_bigint(denominator);
            }
            Value::List(items) => {
                raw::write_list_header(buf, items.len())?;
                self.put_items(items, depth)?;
            }
            Value::Set(items) => {
                buf.push(codes::SET);
                raw::write_list_header(buf, items.len())?;
                self.put_items(items, depth)?;
            }
            Value::Map(entries) => {
                buf.push(codes::MAP);
                let len = entries
                    .len()
                    .checked_mul(2)
                    .ok_or_else(|| CodecError::Unencodable {
                        what: "a map".into(),
                        reason: "too many entries".into(),
                    })?;
                raw::write_list_header(buf, len)?;
                for (k, v) in entries {
                    self.put(k, depth + 1)?;
                    self.put(v, depth + 1)?;
                    self.maybe_flush()?;
                }
            }
            Value::IntArray(a) => {
                buf.push(codes::INT_ARRAY);
                raw::write_count(buf, a.len(), "int[]")?;
                a.iter().for_each(|&i| raw::write_int(buf, i64::from(i)));
            }
            Value::LongArray(a) => {
                buf.push(codes::LONG_ARRAY);
                raw::write_count(buf, a.len(), "long[]")?;
                a.iter().for_each(|&i| raw::write_int(buf, i));
            }
            Value::FloatArray(a) => {
                buf.push(codes::FLOAT_ARRAY);
                raw::write_count(buf, a.len(), "float[]")?;
                a.iter().for_each(|&f| raw::write_float(buf, f));
            }
            Value::DoubleArray(a) => {
                buf.push(codes::DOUBLE_ARRAY);
                raw::write_count(buf, a.len(), "double[]")?;
                a.iter().for_each(|&d| raw::write_double(buf, d));
            }
            Value::BooleanArray(a) => {
                buf.push(codes::BOOLEAN_ARRAY);
                raw::write_count(buf, a.len(), "boolean[]")?;
                a.iter().for_each(|&b| raw::write_bool(buf, b));
            }
            Value::ObjectArray(items) => {
                buf.push(codes::OBJECT_ARRAY);
                raw::write_count(buf, items.len(), "Object[]")?;
                self.put_items(items, depth)?;
            }
            Value::Tagged { tag, fields } => {
                self.put_tag(tag, fields.len())?;
                self.put_items(fields, depth)?;
            }
        }
        Ok(())
    }
}
