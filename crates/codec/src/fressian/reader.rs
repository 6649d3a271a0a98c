//! The streaming Fressian reader.

use std::io::Read;

use num_bigint::BigInt;

use super::codes;
use super::input::Input;
use super::strings::{self, LoneSurrogates};
use super::value::{Named, Uuid, Value};
use crate::error::{CodecError, Result};

/// Collections are pre-allocated for at most this many elements; beyond
/// that they grow as elements actually arrive.
const PREALLOC_LIMIT: usize = 1024;

/// The string buffer is kept between strings up to this capacity.
const SCRATCH_KEEP: usize = 1 << 20;

/// Limits and policies of a [`Reader`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReadOptions {
    /// Deepest nesting of collections and structs accepted (default 256).
    pub max_depth: u32,
    /// Check each footer's Adler-32 (default `true`; clojure.data.fressian
    /// skips it by default, the Java `FressianReader` checks it). Magic and
    /// length are always checked.
    pub validate_checksum: bool,
    /// What to do with lone UTF-16 surrogates in strings and chars
    /// (default [`LoneSurrogates::Reject`]).
    pub lone_surrogates: LoneSurrogates,
    /// Cache references copy the cached value; their total size may not
    /// exceed this many bytes plus 64 × the bytes read so far (default
    /// 16 MiB). Stops a few kilobytes of references from expanding into
    /// gigabytes.
    pub cache_expansion_allowance: u64,
    /// The most bytes of input accepted (default: no limit). Reading past
    /// it is [`CodecError::Limit`], and so is a string or byte-array length
    /// that points past it, before anything is allocated for it. For a
    /// gzip'd document this bounds how far it is inflated.
    pub max_input_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            max_depth: 256,
            validate_checksum: true,
            lone_surrogates: LoneSurrogates::Reject,
            cache_expansion_allowance: 16 << 20,
            max_input_bytes: u64::MAX,
        }
    }
}

impl ReadOptions {
    /// Sets [`ReadOptions::max_depth`].
    pub fn max_depth(mut self, depth: u32) -> ReadOptions {
        self.max_depth = depth;
        self
    }
    /// Sets [`ReadOptions::validate_checksum`].
    pub fn validate_checksum(mut self, validate: bool) -> ReadOptions {
        self.validate_checksum = validate;
        self
    }
    /// Sets [`ReadOptions::lone_surrogates`].
    pub fn lone_surrogates(mut self, policy: LoneSurrogates) -> ReadOptions {
        self.lone_surrogates = policy;
        self
    }
    /// Sets [`ReadOptions::max_input_bytes`].
    pub fn max_input_bytes(mut self, bytes: u64) -> ReadOptions {
        self.max_input_bytes = bytes;
        self
    }
    /// Sets [`ReadOptions::cache_expansion_allowance`].
    pub fn cache_expansion_allowance(mut self, bytes: u64) -> ReadOptions {
        self.cache_expansion_allowance = bytes;
        self
    }
}

#[derive(Debug)]
struct Cached {
    value: Value,
    weight: u64,
}

#[derive(Debug, Clone)]
struct StructType {
    tag: String,
    fields: i64,
}

/// Types the reference (with clojure.data.fressian's handlers) reads from a
/// shortcut code or a struct tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Builtin {
    Map,
    Set,
    Uuid,
    Regex,
    Uri,
    BigInt,
    BigDec,
    Inst,
    Sym,
    Key,
    IntArray,
    LongArray,
    FloatArray,
    DoubleArray,
    BooleanArray,
    ObjectArray,
    Char,
    Ratio,
}

impl Builtin {
    fn for_tag(tag: &str) -> Option<Builtin> {
        Some(match tag {
            "map" => Builtin::Map,
            "set" => Builtin::Set,
            "uuid" => Builtin::Uuid,
            "regex" => Builtin::Regex,
            "uri" => Builtin::Uri,
            "bigint" => Builtin::BigInt,
            "bigdec" => Builtin::BigDec,
            "inst" => Builtin::Inst,
            "sym" => Builtin::Sym,
            "key" => Builtin::Key,
            "int[]" => Builtin::IntArray,
            "long[]" => Builtin::LongArray,
            "float[]" => Builtin::FloatArray,
            "double[]" => Builtin::DoubleArray,
            "boolean[]" => Builtin::BooleanArray,
            "Object[]" => Builtin::ObjectArray,
            "char" => Builtin::Char,
            "ratio" => Builtin::Ratio,
            _ => return None,
        })
    }

    fn for_code(code: u8) -> Option<Builtin> {
        Some(match code {
            codes::MAP => Builtin::Map,
            codes::SET => Builtin::Set,
            codes::UUID => Builtin::Uuid,
            codes::REGEX => Builtin::Regex,
            codes::URI => Builtin::Uri,
            codes::BIGINT => Builtin::BigInt,
            codes::BIGDEC => Builtin::BigDec,
            codes::INST => Builtin::Inst,
            codes::SYM => Builtin::Sym,
            codes::KEY => Builtin::Key,
            codes::INT_ARRAY => Builtin::IntArray,
            codes::LONG_ARRAY => Builtin::LongArray,
            codes::FLOAT_ARRAY => Builtin::FloatArray,
            codes::DOUBLE_ARRAY => Builtin::DoubleArray,
            codes::BOOLEAN_ARRAY => Builtin::BooleanArray,
            codes::OBJECT_ARRAY => Builtin::ObjectArray,
            _ => return None,
        })
    }
}

/// How a list's end is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListLen {
    /// A count was given.
    Counted(u64),
    /// Ends with `END_COLLECTION`.
    Closed,
    /// Ends with `END_COLLECTION` or the end of input.
    Open,
}

/// A streaming Fressian reader: decodes values written by the reference
/// implementation (or by [`Writer`](super::Writer)) one at a time,
/// following `RESET_CACHES` and footers (checked) between and inside
/// values.
///
/// ```
/// use datacamp_codec::fressian::{Reader, Value};
///
/// let bytes = [0xE6, 0x01, 0xDB, b'x']; // [1 "x"]
/// let mut r = Reader::new(&bytes[..]);
/// assert_eq!(r.read_value().unwrap(), Value::List(vec![Value::Int(1), Value::string("x")]));
/// assert_eq!(r.next_value().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct Reader<R> {
    pub(crate) input: Input<R>,
    priority: Vec<Option<Cached>>,
    structs: Vec<StructType>,
    opts: ReadOptions,
    expanded: u64,
    generation: u64,
    scratch: Vec<u8>,
    /// Most elements of any one list or array built as a tree (set by the
    /// chunk reader from the datom count it expects; no limit otherwise).
    max_list_len: u64,
}

impl<R: Read> Reader<R> {
    /// A reader with default [`ReadOptions`].
    pub fn new(input: R) -> Reader<R> {
        Reader::with_options(input, ReadOptions::default())
    }

    /// A reader with the given options.
    pub fn with_options(input: R, opts: ReadOptions) -> Reader<R> {
        Reader {
            input: Input::new(input, opts.validate_checksum, opts.max_input_bytes),
            priority: Vec::new(),
            structs: Vec::new(),
            opts,
            expanded: 0,
            generation: 0,
            scratch: Vec::new(),
            max_list_len: u64::MAX,
        }
    }

    /// Reads the next value; the end of input is an error.
    pub fn read_value(&mut self) -> Result<Value> {
        let (code, offset) = self.next_code("a value")?;
        self.read_code(code, offset, 0)
    }

    /// Reads the next value, or `None` at a clean end of input (footers
    /// and cache resets before it are consumed and checked).
    pub fn next_value(&mut self) -> Result<Option<Value>> {
        match self.next_code_opt()? {
            None => Ok(None),
            Some((code, offset)) => self.read_code(code, offset, 0).map(Some),
        }
    }

    /// Succeeds if nothing but footers and cache resets remain.
    pub fn expect_end(&mut self) -> Result<()> {
        match self.next_code_opt()? {
            None => Ok(()),
            Some((code, offset)) => Err(CodecError::unexpected(offset, code, "the end of input")),
        }
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    #[cfg(feature = "datom")]
    /// Changes after every cache reset, so callers that memoise by cache
    /// index know when to forget.
    pub(crate) fn cache_generation(&self) -> u64 {
        self.generation
    }

    #[cfg(any(feature = "datom", feature = "serde"))]
    pub(crate) fn options(&self) -> &ReadOptions {
        &self.opts
    }

    fn reset_caches(&mut self) {
        self.priority.clear();
        self.structs.clear();
        self.generation += 1;
    }

    /// The next code that starts a value, consuming footers and cache
    /// resets on the way; `None` at the end of input.
    pub(crate) fn next_code_opt(&mut self) -> Result<Option<(u8, u64)>> {
        loop {
            if self.input.peek()?.is_none() {
                return Ok(None);
            }
            let offset = self.input.offset();
            let code = self.input.byte("a value")?;
            match code {
                codes::RESET_CACHES => self.reset_caches(),
                codes::FOOTER => self.footer(offset)?,
                _ => return Ok(Some((code, offset))),
            }
        }
    }

    /// Like [`Reader::next_code_opt`], but the end of input is an error.
    #[inline]
    pub(crate) fn next_code(&mut self, expected: &'static str) -> Result<(u8, u64)> {
        let offset = self.input.offset();
        let code = self.input.byte(expected)?;
        match code {
            codes::RESET_CACHES | codes::FOOTER => {
                if code == codes::RESET_CACHES {
                    self.reset_caches();
                } else {
                    self.footer(offset)?;
                }
                match self.next_code_opt()? {
                    Some(next) => Ok(next),
                    None => Err(CodecError::UnexpectedEof {
                        offset: self.input.offset(),
                        expected,
                    }),
                }
            }
            _ => Ok((code, offset)),
        }
    }

    /// Checks a footer whose first byte was at `offset`.
    fn footer(&mut self, offset: u64) -> Result<()> {
        let segment = self.input.segment_len(offset);
        let magic = self.input.array::<3>("the footer magic")?;
        if magic != [codes::FOOTER; 3] {
            return Err(CodecError::Footer {
                offset,
                reason: format!(
                    "expected magic CFCFCFCF, found CF{:02X}{:02X}{:02X}",
                    magic[0], magic[1], magic[2]
                ),
            });
        }
        let length = u32::from_be_bytes(self.input.array::<4>("the footer length")?);
        // The reference counts in a Java int, so compare modulo 2^32.
        if length != segment as u32 {
            return Err(CodecError::Footer {
                offset,
                reason: format!("footer says {length} bytes precede it, but {segment} do"),
            });
        }
        let computed = self.input.segment_checksum();
        let stored = u32::from_be_bytes(self.input.array::<4>("the footer checksum")?);
        if let Some(computed) = computed {
            if computed != stored {
                return Err(CodecError::Footer {
                    offset,
                    reason: format!(
                        "Adler-32 checksum is {computed:08X}, footer says {stored:08X}"
                    ),
                });
            }
        }
        debug_assert!(self.input.checksums() == computed.is_some());
        self.input.start_segment();
        self.reset_caches();
        Ok(())
    }

    fn check_depth(&self, depth: u32, offset: u64) -> Result<()> {
        if depth > self.opts.max_depth {
            Err(CodecError::Limit {
                offset,
                reason: format!(
                    "values nested deeper than {} levels (ReadOptions::max_depth)",
                    self.opts.max_depth
                ),
            })
        } else {
            Ok(())
        }
    }

    /// Decodes a packed or full integer whose code was just read; `None`
    /// if the code is not an integer code.
    #[inline]
    pub(crate) fn int_body(&mut self, code: u8) -> Result<Option<i64>> {
        const E: &str = "the bytes of an integer";
        let c = i64::from(code);
        Ok(Some(match code {
            0x00..=0x3F => c,
            0xFF => -1,
            0x40..=0x5F => ((c - 0x50) << 8) | i64::from(self.input.byte(E)?),
            0x60..=0x6F => ((c - 0x68) << 16) | self.input.be_uint(2, E)? as i64,
            0x70..=0x73 => ((c - 0x72) << 24) | self.input.be_uint(3, E)? as i64,
            0x74..=0x77 => ((c - 0x76) << 32) | self.input.be_uint(4, E)? as i64,
            0x78..=0x7B => ((c - 0x7A) << 40) | self.input.be_uint(5, E)? as i64,
            0x7C..=0x7F => ((c - 0x7E) << 48) | self.input.be_uint(6, E)? as i64,
            codes::INT => self.input.be_uint(8, E)? as i64,
            _ => return Ok(None),
        }))
    }

    /// Reads an integer (`readInt`): any integer code, or any value that
    /// turns out to be an integer (e.g. a cache reference).
    pub(crate) fn read_int(&mut self, depth: u32, expected: &'static str) -> Result<i64> {
        let (code, offset) = self.next_code(expected)?;
        self.int_from(code, offset, depth, expected)
    }

    #[inline]
    pub(crate) fn int_from(
        &mut self,
        code: u8,
        offset: u64,
        depth: u32,
        expected: &'static str,
    ) -> Result<i64> {
        if let Some(i) = self.int_body(code)? {
            return Ok(i);
        }
        match self.read_code(code, offset, depth)? {
            Value::Int(i) => Ok(i),
            other => Err(CodecError::invalid(
                offset,
                expected,
                format!("expected an integer, found a {}", other.type_name()),
            )),
        }
    }

    /// Reads a count or index (a non-negative Java int).
    pub(crate) fn read_count(&mut self, depth: u32, what: &'static str) -> Result<u64> {
        let offset = self.input.offset();
        let n = self.read_int(depth, what)?;
        if !(0..=i64::from(i32::MAX)).contains(&n) {
            return Err(CodecError::invalid(
                offset,
                what,
                format!("expected a count between 0 and 2147483647, found {n}"),
            ));
        }
        Ok(n as u64)
    }

    fn read_i32(&mut self, depth: u32, what: &'static str) -> Result<i32> {
        let offset = self.input.offset();
        let n = self.read_int(depth, what)?;
        i32::try_from(n).map_err(|_| {
            CodecError::invalid(offset, what, format!("expected a Java int, found {n}"))
        })
    }

    /// Reads a double (`readDouble`).
    fn read_double(&mut self, depth: u32) -> Result<f64> {
        let (code, offset) = self.next_code("a double")?;
        if let Some(d) = self.double_body(code)? {
            return Ok(d);
        }
        match self.read_code(code, offset, depth)? {
            Value::Double(d) => Ok(d),
            other => Err(CodecError::invalid(
                offset,
                "double",
                format!("expected a double, found a {}", other.type_name()),
            )),
        }
    }

    #[inline]
    pub(crate) fn double_body(&mut self, code: u8) -> Result<Option<f64>> {
        Ok(match code {
            codes::DOUBLE => Some(f64::from_bits(
                self.input.be_uint(8, "the bytes of a double")?,
            )),
            codes::DOUBLE_0 => Some(0.0),
            codes::DOUBLE_1 => Some(1.0),
            _ => None,
        })
    }

    #[inline]
    pub(crate) fn float_body(&mut self) -> Result<f32> {
        Ok(f32::from_bits(
            self.input.be_uint(4, "the bytes of a float")? as u32,
        ))
    }

    fn read_float(&mut self, depth: u32) -> Result<f32> {
        let (code, offset) = self.next_code("a float")?;
        if code == codes::FLOAT {
            return self.float_body();
        }
        match self.read_code(code, offset, depth)? {
            Value::Float(f) => Ok(f),
            other => Err(CodecError::invalid(
                offset,
                "float",
                format!("expected a float, found a {}", other.type_name()),
            )),
        }
    }

    fn read_bool(&mut self, depth: u32) -> Result<bool> {
        let (code, offset) = self.next_code("a boolean")?;
        match code {
            codes::TRUE => Ok(true),
            codes::FALSE => Ok(false),
            _ => match self.read_code(code, offset, depth)? {
                Value::Bool(b) => Ok(b),
                other => Err(CodecError::invalid(
                    offset,
                    "boolean",
                    format!("expected a boolean, found a {}", other.type_name()),
                )),
            },
        }
    }

    /// Reads a value that must be a byte array.
    pub(crate) fn read_byte_array(&mut self, depth: u32, what: &'static str) -> Result<Vec<u8>> {
        let (code, offset) = self.next_code(what)?;
        self.byte_array_from(code, offset, depth, what)
    }

    pub(crate) fn byte_array_from(
        &mut self,
        code: u8,
        offset: u64,
        depth: u32,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        if let Some(b) = self.bytes_body(code, depth)? {
            return Ok(b);
        }
        match self.read_code(code, offset, depth)? {
            Value::Bytes(b) => Ok(b),
            other => Err(CodecError::invalid(
                offset,
                what,
                format!("expected bytes, found a {}", other.type_name()),
            )),
        }
    }

    /// Reads a value that must be a string.
    fn read_string(&mut self, depth: u32, what: &'static str) -> Result<String> {
        let (code, offset) = self.next_code(what)?;
        self.string_from(code, offset, depth, what)
    }

    fn string_from(
        &mut self,
        code: u8,
        offset: u64,
        depth: u32,
        what: &'static str,
    ) -> Result<String> {
        if let Some(s) = self.string_body(code, offset, depth, |s: &str| String::from(s))? {
            return Ok(s);
        }
        match self.read_code(code, offset, depth)? {
            Value::String(s) => Ok(s),
            other => Err(CodecError::invalid(
                offset,
                what,
                format!("expected a string, found a {}", other.type_name()),
            )),
        }
    }

    /// Decodes the body of a byte array whose code was just read; `None`
    /// if the code does not start a byte array.
    #[inline]
    pub(crate) fn bytes_body(&mut self, code: u8, depth: u32) -> Result<Option<Vec<u8>>> {
        const E: &str = "the bytes of a byte array";
        let len = match code {
            0xD0..=0xD7 => u64::from(code - codes::BYTES_PACKED_LENGTH_START),
            codes::BYTES => self.read_count(depth + 1, "byte array length")?,
            codes::BYTES_CHUNK => {
                let mut out = Vec::new();
                let mut code = code;
                loop {
                    let len = self.read_count(depth + 1, "byte chunk length")?;
                    self.input.read_into(len as usize, &mut out, E)?;
                    if code == codes::BYTES {
                        return Ok(Some(out));
                    }
                    let (next, at) = self.next_code("the next byte chunk")?;
                    if next != codes::BYTES_CHUNK && next != codes::BYTES {
                        return Err(CodecError::unexpected(
                            at,
                            next,
                            "BYTES_CHUNK or BYTES to continue chunked bytes",
                        ));
                    }
                    code = next;
                }
            }
            _ => return Ok(None),
        };
        let mut out = Vec::new();
        self.input.read_into(len as usize, &mut out, E)?;
        Ok(Some(out))
    }

    /// Decodes the body of a string whose code was just read and hands it to
    /// `f` (so callers can build an `Arc<str>` or a `String` without a
    /// second copy); `None` if the code does not start a string.
    #[inline]
    pub(crate) fn string_body<T>(
        &mut self,
        code: u8,
        offset: u64,
        depth: u32,
        f: impl FnOnce(&str) -> T,
    ) -> Result<Option<T>> {
        const E: &str = "the bytes of a string";
        let policy = self.opts.lone_surrogates;
        let len = match code {
            0xDA..=0xE1 => (code - codes::STRING_PACKED_LENGTH_START) as usize,
            codes::STRING => self.read_count(depth + 1, "string length")? as usize,
            codes::STRING_CHUNK => {
                // Chunks may split a surrogate pair, so decode only once
                // all bytes are together.
                let mut bytes = std::mem::take(&mut self.scratch);
                bytes.clear();
                let mut code = code;
                loop {
                    let len = match code {
                        0xDA..=0xE1 => (code - codes::STRING_PACKED_LENGTH_START) as usize,
                        _ => self.read_count(depth + 1, "string chunk length")? as usize,
                    };
                    self.input.read_into(len, &mut bytes, E)?;
                    if code != codes::STRING_CHUNK {
                        break;
                    }
                    let (next, at) = self.next_code("the next string chunk")?;
                    if !matches!(next, 0xDA..=0xE1 | codes::STRING | codes::STRING_CHUNK) {
                        return Err(CodecError::unexpected(
                            at,
                            next,
                            "a string or string chunk to continue a chunked string",
                        ));
                    }
                    code = next;
                }
                let result = strings::decode(&bytes, offset, policy).map(|s| f(&s));
                self.keep_scratch(bytes);
                return result.map(Some);
            }
            _ => return Ok(None),
        };
        let start = self.input.offset();
        if let Some(bytes) = self.input.take(len, E)? {
            let s = strings::decode(bytes, start, policy)?;
            return Ok(Some(f(&s)));
        }
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        self.input.read_into(len, &mut bytes, E)?;
        let result = strings::decode(&bytes, start, policy).map(|s| f(&s));
        self.keep_scratch(bytes);
        result.map(Some)
    }

    /// Keeps a string buffer for the next long string, unless one huge
    /// string made it large: that memory goes back rather than staying
    /// with the reader for the rest of the document.
    fn keep_scratch(&mut self, bytes: Vec<u8>) {
        if bytes.capacity() <= SCRATCH_KEEP {
            self.scratch = bytes;
        }
    }

    /// The length of a list whose code was just read; `None` if the code
    /// does not start a list.
    #[inline]
    pub(crate) fn list_len(&mut self, code: u8, depth: u32) -> Result<Option<ListLen>> {
        Ok(Some(match code {
            0xE4..=0xEB => ListLen::Counted(u64::from(code - codes::LIST_PACKED_LENGTH_START)),
            codes::LIST => {
                let n = self.read_count(depth + 1, "list length")?;
                // Every element takes at least a byte.
                self.input.check_length(n as usize, "a list length")?;
                ListLen::Counted(n)
            }
            codes::BEGIN_CLOSED_LIST => ListLen::Closed,
            codes::BEGIN_OPEN_LIST => ListLen::Open,
            _ => return Ok(None),
        }))
    }

    /// The next element's code of a list being read, or `None` at its end.
    /// `remaining` counts down counted lists.
    #[inline]
    pub(crate) fn list_next(&mut self, len: &mut ListLen) -> Result<Option<(u8, u64)>> {
        match len {
            ListLen::Counted(0) => Ok(None),
            ListLen::Counted(n) => {
                *n -= 1;
                self.next_code("a list element").map(Some)
            }
            ListLen::Closed => match self.next_code("a list element or END_COLLECTION")? {
                (codes::END_COLLECTION, _) => Ok(None),
                next => Ok(Some(next)),
            },
            ListLen::Open => match self.next_code_opt()? {
                None | Some((codes::END_COLLECTION, _)) => Ok(None),
                next => Ok(next),
            },
        }
    }

    fn read_list_items(&mut self, mut len: ListLen, depth: u32) -> Result<Vec<Value>> {
        let mut items = match len {
            ListLen::Counted(n) => Vec::with_capacity((n as usize).min(PREALLOC_LIMIT)),
            _ => Vec::new(),
        };
        while let Some((code, offset)) = self.list_next(&mut len)? {
            self.check_list_len(items.len(), offset)?;
            items.push(self.read_code(code, offset, depth + 1)?);
        }
        Ok(items)
    }

    #[cfg(feature = "datom")]
    /// Limits the elements of every list and array built as a tree.
    pub(crate) fn set_max_list_len(&mut self, n: u64) {
        self.max_list_len = n;
    }

    /// Fails if a list that already holds `len` elements may not take one
    /// more.
    #[inline]
    fn check_list_len(&self, len: usize, offset: u64) -> Result<()> {
        if len as u64 >= self.max_list_len {
            return Err(CodecError::Limit {
                offset,
                reason: format!(
                    "a list or array with more than {} elements where no more can be expected",
                    self.max_list_len
                ),
            });
        }
        Ok(())
    }

    /// Reads a value that must be a list (the body of maps and sets).
    fn read_list_value(&mut self, depth: u32, what: &'static str) -> Result<Vec<Value>> {
        let (code, offset) = self.next_code(what)?;
        if let Some(len) = self.list_len(code, depth)? {
            return self.read_list_items(len, depth);
        }
        match self.read_code(code, offset, depth)? {
            Value::List(items) => Ok(items),
            other => Err(CodecError::invalid(
                offset,
                what,
                format!("expected a list, found a {}", other.type_name()),
            )),
        }
    }

    fn cache_get(&mut self, index: u64, offset: u64) -> Result<Value> {
        let (weight, value) = {
            let cached = self.cached_entry(index, offset)?;
            (cached.weight, cached.value.clone())
        };
        self.expanded = self.expanded.saturating_add(weight);
        let limit = self
            .opts
            .cache_expansion_allowance
            .saturating_add(offset.saturating_mul(64));
        if self.expanded > limit {
            return Err(CodecError::Limit {
                offset,
                reason: format!(
                    "cache references have expanded to {} bytes, more than the allowance of {limit} (ReadOptions::cache_expansion_allowance)",
                    self.expanded
                ),
            });
        }
        Ok(value)
    }

    /// The priority-cache entry `index`, or why a reference to it is invalid.
    fn cached_entry(&self, index: u64, offset: u64) -> Result<&Cached> {
        match usize::try_from(index)
            .ok()
            .and_then(|i| self.priority.get(i))
        {
            Some(Some(cached)) => Ok(cached),
            Some(None) => Err(CodecError::CacheReference {
                offset,
                cache: "priority",
                index: index as i64,
                reason: "the entry refers to itself while still being read".into(),
            }),
            None => Err(CodecError::CacheReference {
                offset,
                cache: "priority",
                index: index as i64,
                reason: format!("the cache holds {} entries", self.priority.len()),
            }),
        }
    }

    /// Reads the value after `PUT_PRIORITY_CACHE` and caches it.
    fn cache_put(&mut self, offset: u64, depth: u32) -> Result<Value> {
        let index = self.priority.len();
        let generation = self.generation;
        self.priority.push(None);
        let value = self.read_value_at(depth + 1)?;
        if self.generation != generation {
            return Err(CodecError::invalid(
                offset,
                "cached value",
                "the caches were reset while the value was being read",
            ));
        }
        self.priority[index] = Some(Cached {
            weight: value.weight(),
            value: value.clone(),
        });
        Ok(value)
    }

    #[cfg(feature = "datom")]
    /// Like [`Reader::cache_get`], for entries the caller will only borrow.
    pub(crate) fn cached(&self, index: u64, offset: u64) -> Result<&Value> {
        self.cached_entry(index, offset).map(|c| &c.value)
    }

    #[cfg(feature = "datom")]
    /// Reads the value after `PUT_PRIORITY_CACHE`, caches it and returns its
    /// index (for callers that memoise by index).
    pub(crate) fn cache_put_index(&mut self, offset: u64, depth: u32) -> Result<u64> {
        let index = self.priority.len();
        self.cache_put(offset, depth)?;
        Ok(index as u64)
    }

    fn read_value_at(&mut self, depth: u32) -> Result<Value> {
        let (code, offset) = self.next_code("a value")?;
        self.read_code(code, offset, depth)
    }

    fn struct_type(&self, index: u64, offset: u64) -> Result<StructType> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.structs.get(i))
            .cloned()
            .ok_or_else(|| CodecError::CacheReference {
                offset,
                cache: "struct",
                index: index as i64,
                reason: format!("the cache holds {} struct types", self.structs.len()),
            })
    }

    /// Decodes the value whose code (at `offset`) was just read.
    pub(crate) fn read_code(&mut self, code: u8, offset: u64, depth: u32) -> Result<Value> {
        self.check_depth(depth, offset)?;
        if let Some(i) = self.int_body(code)? {
            return Ok(Value::Int(i));
        }
        if let Some(s) = self.string_body(code, offset, depth, |s: &str| String::from(s))? {
            return Ok(Value::String(s));
        }
        if let Some(b) = self.bytes_body(code, depth)? {
            return Ok(Value::Bytes(b));
        }
        if let Some(len) = self.list_len(code, depth)? {
            return self.read_list_items(len, depth).map(Value::List);
        }
        if let Some(d) = self.double_body(code)? {
            return Ok(Value::Double(d));
        }
        if let Some(b) = Builtin::for_code(code) {
            return self.read_builtin(b, offset, depth);
        }
        match code {
            codes::TRUE => Ok(Value::Bool(true)),
            codes::FALSE => Ok(Value::Bool(false)),
            codes::NULL => Ok(Value::Null),
            codes::FLOAT => self.float_body().map(Value::Float),
            0x80..=0x9F => {
                self.cache_get(u64::from(code - codes::PRIORITY_CACHE_PACKED_START), offset)
            }
            codes::GET_PRIORITY_CACHE => {
                let index = self.read_count(depth + 1, "priority cache index")?;
                self.cache_get(index, offset)
            }
            codes::PUT_PRIORITY_CACHE => self.cache_put(offset, depth),
            0xA0..=0xAF => {
                let st =
                    self.struct_type(u64::from(code - codes::STRUCT_CACHE_PACKED_START), offset)?;
                self.read_struct(st, offset, depth)
            }
            codes::STRUCT => {
                let index = self.read_count(depth + 1, "struct cache index")?;
                let st = self.struct_type(index, offset)?;
                self.read_struct(st, offset, depth)
            }
            codes::STRUCTTYPE => {
                let tag = match self.read_value_at(depth + 1)? {
                    Value::String(s) => s,
                    other => {
                        return Err(CodecError::invalid(
                            offset,
                            "struct type",
                            format!("expected a string tag, found a {}", other.type_name()),
                        ))
                    }
                };
                let fields = i64::from(self.read_i32(depth + 1, "struct field count")?);
                let st = StructType { tag, fields };
                self.structs.push(st.clone());
                self.read_struct(st, offset, depth)
            }
            _ => Err(CodecError::unexpected(offset, code, "a value")),
        }
    }

    fn read_struct(&mut self, st: StructType, offset: u64, depth: u32) -> Result<Value> {
        if let Some(b) = Builtin::for_tag(&st.tag) {
            // As in the reference, a built-in handler reads what it needs
            // and the declared field count is not consulted.
            return self.read_builtin(b, offset, depth);
        }
        if st.fields < 0 {
            return Err(CodecError::invalid(
                offset,
                "struct",
                format!("struct {:?} declares {} fields", st.tag, st.fields),
            ));
        }
        let mut fields = Vec::with_capacity((st.fields as usize).min(PREALLOC_LIMIT));
        for _ in 0..st.fields {
            fields.push(self.read_value_at(depth + 1)?);
        }
        Ok(Value::Tagged {
            tag: st.tag,
            fields,
        })
    }

    fn read_array<T>(
        &mut self,
        depth: u32,
        what: &'static str,
        mut elem: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.read_count(depth, what)?;
        // Every element takes at least a byte.
        self.input.check_length(n as usize, what)?;
        let mut out = Vec::with_capacity((n as usize).min(PREALLOC_LIMIT));
        for _ in 0..n {
            self.check_list_len(out.len(), self.input.offset())?;
            out.push(elem(self)?);
        }
        Ok(out)
    }

    fn read_bigint_field(&mut self, depth: u32, what: &'static str) -> Result<BigInt> {
        let (code, offset) = self.next_code(what)?;
        match self.read_code(code, offset, depth)? {
            Value::Int(i) => Ok(BigInt::from(i)),
            Value::BigInt(b) => Ok(b),
            other => Err(CodecError::invalid(
                offset,
                what,
                format!("expected an integer, found a {}", other.type_name()),
            )),
        }
    }

    /// A Java `char` read as an integer code unit.
    fn char_from_unit(&self, unit: i64, offset: u64) -> Result<char> {
        match u32::try_from(unit).ok().and_then(char::from_u32) {
            Some(c) => Ok(c),
            None if (0xD800..=0xDFFF).contains(&unit) && self.opts.lone_surrogates == LoneSurrogates::Replace => {
                Ok(char::REPLACEMENT_CHARACTER)
            }
            None => Err(CodecError::invalid(
                offset,
                "char",
                format!("{unit} is not a Unicode scalar value (lone surrogates are rejected unless ReadOptions::lone_surrogates is Replace)"),
            )),
        }
    }

    fn read_builtin(&mut self, b: Builtin, offset: u64, depth: u32) -> Result<Value> {
        let d = depth + 1;
        self.check_depth(d, offset)?;
        Ok(match b {
            Builtin::Map => {
                let items = self.read_list_value(d, "map entries")?;
                if !items.len().is_multiple_of(2) {
                    return Err(CodecError::invalid(
                        offset,
                        "map",
                        format!(
                            "expected an even number of keys and values, found {}",
                            items.len()
                        ),
                    ));
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Value::Map(entries)
            }
            Builtin::Set => Value::Set(self.read_list_value(d, "set elements")?),
            Builtin::Uuid => {
                let bytes = self.read_byte_array(d, "uuid")?;
                let arr: [u8; 16] = bytes.as_slice().try_into().map_err(|_| {
                    CodecError::invalid(
                        offset,
                        "uuid",
                        format!("expected 16 bytes, found {}", bytes.len()),
                    )
                })?;
                Value::Uuid(Uuid::from_bytes(arr))
            }
            Builtin::Regex => Value::Regex(self.read_string(d, "regex pattern")?),
            Builtin::Uri => Value::Uri(self.read_string(d, "uri")?),
            Builtin::BigInt => Value::BigInt(BigInt::from_signed_bytes_be(
                &self.read_byte_array(d, "bigint")?,
            )),
            Builtin::BigDec => {
                let unscaled = BigInt::from_signed_bytes_be(&self.read_byte_array(d, "bigdec")?);
                let scale = self.read_i32(d, "bigdec scale")?;
                Value::BigDec { unscaled, scale }
            }
            Builtin::Inst => Value::Inst(self.read_int(d, "inst")?),
            Builtin::Key | Builtin::Sym => {
                let ns = match self.read_value_at(d)? {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    other => {
                        return Err(CodecError::invalid(
                            offset,
                            "keyword or symbol",
                            format!(
                                "expected a string or nil namespace, found a {}",
                                other.type_name()
                            ),
                        ))
                    }
                };
                let name = self.read_string(d, "keyword or symbol name")?;
                let named = Named {
                    namespace: ns,
                    name,
                };
                if b == Builtin::Key {
                    Value::Keyword(named)
                } else {
                    Value::Symbol(named)
                }
            }
            Builtin::IntArray => Value::IntArray(
                self.read_array(d, "int[] length", |r| r.read_i32(d, "int[] element"))?,
            ),
            Builtin::LongArray => Value::LongArray(
                self.read_array(d, "long[] length", |r| r.read_int(d, "long[] element"))?,
            ),
            Builtin::FloatArray => {
                Value::FloatArray(self.read_array(d, "float[] length", |r| r.read_float(d))?)
            }
            Builtin::DoubleArray => {
                Value::DoubleArray(self.read_array(d, "double[] length", |r| r.read_double(d))?)
            }
            Builtin::BooleanArray => {
                Value::BooleanArray(self.read_array(d, "boolean[] length", |r| r.read_bool(d))?)
            }
            Builtin::ObjectArray => {
                Value::ObjectArray(self.read_array(d, "Object[] length", |r| r.read_value_at(d))?)
            }
            Builtin::Char => {
                let at = self.input.offset();
                let unit = self.read_int(d, "char")?;
                Value::Char(self.char_from_unit(unit, at)?)
            }
            Builtin::Ratio => {
                let numerator = self.read_bigint_field(d, "ratio numerator")?;
                let denominator = self.read_bigint_field(d, "ratio denominator")?;
                Value::Ratio {
                    numerator,
                    denominator,
                }
            }
        })
    }
}
