//! [`ChunkReader`]: decoding a chunk document datom by datom.

use std::io::Read;
use std::sync::Arc;

use datacamp_datom::{BigDec, BigInt, Datom, Keyword, Value as DValue};

use super::document::{apply_header_field, is_datoms_key, ChunkHeader};
use super::fast::{KeywordTable, NULL_PART};
use super::generic::{datom_from_generic, datoms_from_generic, from_fressian, in_datom};
use crate::error::{CodecError, Result};
use crate::fressian::{codes, ListLen, ReadOptions, Reader, Uuid, Value};

/// A cache-aware keyword part: where the namespace or name string is.
enum Part {
    Null,
    Cached(u64),
    Inline(String),
}

/// How far a chunk document may inflate when nothing tighter is known:
/// 1 GiB of Fressian (sixteen times Datacamp's default chunk size).
pub const DEFAULT_MAX_DOCUMENT_BYTES: u64 = 1 << 30;

/// Lists built as a tree (documents of an unusual shape) may always hold
/// this many elements, whatever datom count is expected.
const MIN_TREE_LIST_LEN: u64 = 1 << 16;

/// What a chunk reader accepts, so that memory stays bounded by what the
/// manifest says rather than by what the bytes claim.
///
/// ```
/// use datacamp_codec::chunk::{encode_chunk_to_vec, ChunkLimits, ChunkReader};
/// use datacamp_codec::fressian::ReadOptions;
/// use datacamp_datom::{Datom, Keyword, Value, TX0};
///
/// let datoms: Vec<Datom> = (1..=3)
///     .map(|e| Datom::new(e, Keyword::parse("a/b"), Value::Long(e), TX0 + 1))
///     .collect();
/// let doc = encode_chunk_to_vec(0, &datoms).unwrap();
/// let limits = ChunkLimits::default().max_datoms(Some(2));
/// // The list announces 3 datoms, 2 are expected: refused on opening.
/// assert!(ChunkReader::with_limits(&doc[..], ReadOptions::default(), limits).is_err());
/// let limits = ChunkLimits::default().max_document_bytes(doc.len() as u64 - 1);
/// assert!(ChunkReader::with_limits(&doc[..], ReadOptions::default(), limits)
///     .and_then(|r| r.collect::<Result<Vec<_>, _>>())
///     .is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkLimits {
    /// The most bytes the (decompressed) document may hold; reading past
    /// them is [`CodecError::Limit`], so a gzip bomb is inflated no
    /// further (default [`DEFAULT_MAX_DOCUMENT_BYTES`]).
    pub max_document_bytes: u64,
    /// The most datoms the document may hold (default: no limit). The
    /// reader fails on the first datom beyond it, and at once when the
    /// `:datoms` list announces more.
    pub max_datoms: Option<u64>,
}

impl Default for ChunkLimits {
    fn default() -> ChunkLimits {
        ChunkLimits {
            max_document_bytes: DEFAULT_MAX_DOCUMENT_BYTES,
            max_datoms: None,
        }
    }
}

impl ChunkLimits {
    /// Sets [`ChunkLimits::max_document_bytes`].
    pub fn max_document_bytes(mut self, bytes: u64) -> ChunkLimits {
        self.max_document_bytes = bytes;
        self
    }

    /// Sets [`ChunkLimits::max_datoms`].
    pub fn max_datoms(mut self, datoms: Option<u64>) -> ChunkLimits {
        self.max_datoms = datoms;
        self
    }
}

enum State {
    /// Streaming the `:datoms` list.
    Datoms(ListLen),
    /// Datoms were decoded some other way (the document did not have the
    /// shape the streaming path expects); they are handed out from here.
    Buffered(std::vec::IntoIter<Datom>),
    Done,
    Failed,
}

/// Decodes a chunk document datom by datom.
///
/// [`ChunkReader::new`] reads up to the `:datoms` list, so
/// [`ChunkReader::header`] is available at once (for fields the writer put
/// before `:datoms`, which the reference always does). Iterating yields the
/// datoms; after the last one the rest of the document is read and checked,
/// including that nothing but a footer follows it.
///
/// The reader accepts any list form for the datoms and each datom (counted,
/// closed, open), cache references anywhere, and the map's entries in any
/// order; unknown keys are skipped.
pub struct ChunkReader<R> {
    pub(super) r: Reader<R>,
    header: ChunkHeader,
    state: State,
    map_len: ListLen,
    saw_datoms: bool,
    pub(super) keywords: KeywordTable,
    pub(super) keyword_generation: u64,
    max_datoms: Option<u64>,
    /// Datoms decoded so far.
    decoded: u64,
}

impl<R> std::fmt::Debug for ChunkReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkReader")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<R: Read> ChunkReader<R> {
    /// Opens a chunk document (uncompressed Fressian; wrap the input in
    /// [`gunzip_reader`](crate::compress::gunzip_reader) for a chunk file).
    pub fn new(input: R) -> Result<ChunkReader<R>> {
        ChunkReader::with_options(input, ReadOptions::default())
    }

    /// Opens a chunk document with the given reader options (and the
    /// default [`ChunkLimits`]).
    pub fn with_options(input: R, opts: ReadOptions) -> Result<ChunkReader<R>> {
        ChunkReader::with_limits(input, opts, ChunkLimits::default())
    }

    /// Opens a chunk document with the given reader options and limits
    /// (the tighter of `opts.max_input_bytes` and
    /// `limits.max_document_bytes` applies).
    pub fn with_limits(input: R, opts: ReadOptions, limits: ChunkLimits) -> Result<ChunkReader<R>> {
        let max_input = opts.max_input_bytes.min(limits.max_document_bytes);
        let mut r = Reader::with_options(input, opts.max_input_bytes(max_input));
        if let Some(n) = limits.max_datoms {
            r.set_max_list_len(n.max(MIN_TREE_LIST_LEN));
        }
        let mut cr = ChunkReader {
            r,
            header: ChunkHeader::default(),
            state: State::Done,
            map_len: ListLen::Counted(0),
            saw_datoms: false,
            keywords: KeywordTable::default(),
            keyword_generation: 0,
            max_datoms: limits.max_datoms,
            decoded: 0,
        };
        cr.open()?;
        Ok(cr)
    }

    /// Counts one more decoded datom; fails if it is one more than
    /// [`ChunkLimits::max_datoms`] allows.
    #[inline(always)]
    fn admit(&mut self) -> Result<()> {
        self.decoded += 1;
        match self.max_datoms {
            Some(max) if self.decoded > max => Err(self.too_many(format!(
                "the chunk holds more than the {max} datoms expected"
            ))),
            _ => Ok(()),
        }
    }

    /// Fails if a list announced (or built) with `n` datoms holds more than
    /// [`ChunkLimits::max_datoms`] allows.
    fn admit_announced(&self, n: u64) -> Result<()> {
        match self.max_datoms {
            Some(max) if n > max => Err(self.too_many(format!(
                "the chunk's :datoms list announces {n} datoms, more than the {max} expected"
            ))),
            _ => Ok(()),
        }
    }

    #[cold]
    fn too_many(&self, what: String) -> CodecError {
        CodecError::Limit {
            offset: self.r.offset(),
            reason: format!("{what} (ChunkLimits::max_datoms)"),
        }
    }

    /// The header fields read so far: all of them once iteration has
    /// ended.
    pub fn header(&self) -> &ChunkHeader {
        &self.header
    }

    /// Byte offset in the Fressian stream.
    pub fn offset(&self) -> u64 {
        self.r.offset()
    }

    /// Reads the next datom, or `None` after the last (the remainder of the
    /// document has then been checked).
    #[inline]
    pub fn next_datom(&mut self) -> Result<Option<Datom>> {
        let result = self.step();
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    /// Reads all remaining datoms into `out`; returns the complete header.
    pub fn read_all(mut self, out: &mut Vec<Datom>) -> Result<ChunkHeader> {
        if let Some(n) = self.header.datom_count {
            // A count is only a claim: reserve a little, grow with the data.
            out.reserve((n as usize).min(4096));
        }
        loop {
            // The fast path straight into `out`, without the moves of
            // `Result<Option<Datom>>` through the iterator.
            if let State::Datoms(ListLen::Counted(n @ 1..)) = self.state {
                if let Some(d) = self.fast_datom()? {
                    self.admit()?;
                    out.push(d);
                    self.state = State::Datoms(ListLen::Counted(n - 1));
                    continue;
                }
            }
            match self.next_datom()? {
                Some(d) => out.push(d),
                None => return Ok(self.header),
            }
        }
    }

    fn open(&mut self) -> Result<()> {
        let (code, offset) = self.r.next_code("a datom-chunk map")?;
        if code == codes::MAP {
            let (lcode, loffset) = self.r.next_code("the chunk map's entries")?;
            if let Some(len) = self.r.list_len(lcode, 1)? {
                self.map_len = len;
                return self.read_entries();
            }
            let entries = self.r.read_code(lcode, loffset, 1)?;
            let Value::List(items) = entries else {
                return Err(CodecError::invalid(
                    loffset,
                    "chunk map",
                    format!(
                        "expected a list of keys and values, found a {}",
                        entries.type_name()
                    ),
                ));
            };
            return self.load_generic_entries(items, offset);
        }
        match self.r.read_code(code, offset, 0)? {
            Value::Map(entries) => {
                let items = entries.into_iter().flat_map(|(k, v)| [k, v]).collect();
                self.load_generic_entries(items, offset)
            }
            other => Err(CodecError::invalid(
                offset,
                "chunk document",
                format!("expected a map, found a {}", other.type_name()),
            )),
        }
    }

    /// Reads map entries until `:datoms` (then streams) or the end of the map.
    fn read_entries(&mut self) -> Result<()> {
        loop {
            let Some((code, offset)) = self.r.list_next(&mut self.map_len)? else {
                return self.finish();
            };
            let key = self.r.read_code(code, offset, 1)?;
            let Some((vcode, voffset)) = self.r.list_next(&mut self.map_len)? else {
                return Err(CodecError::invalid(
                    offset,
                    "chunk map",
                    "a key without a value (odd number of map elements)",
                ));
            };
            if is_datoms_key(&key) {
                if self.saw_datoms {
                    return Err(CodecError::invalid(
                        offset,
                        "chunk map",
                        "the key :datoms appears twice",
                    ));
                }
                self.saw_datoms = true;
                if let Some(len) = self.r.list_len(vcode, 1)? {
                    if let ListLen::Counted(n) = len {
                        self.admit_announced(n)?;
                        self.header.datom_count = Some(n);
                    }
                    self.state = State::Datoms(len);
                    return Ok(());
                }
                let datoms = self.r.read_code(vcode, voffset, 1)?;
                let datoms = datoms_from_generic(datoms, voffset)?;
                self.admit_announced(datoms.len() as u64)?;
                self.header.datom_count = Some(datoms.len() as u64);
                self.state = State::Buffered(datoms.into_iter());
                return Ok(());
            }
            let value = self.r.read_code(vcode, voffset, 1)?;
            apply_header_field(&mut self.header, &key, value, voffset)?;
        }
    }

    /// The map has ended: check the document and the end of input.
    fn finish(&mut self) -> Result<()> {
        if !self.saw_datoms {
            return Err(CodecError::invalid(
                self.r.offset(),
                "chunk document",
                "the map has no :datoms key",
            ));
        }
        self.r.expect_end()?;
        self.state = State::Done;
        Ok(())
    }

    fn load_generic_entries(&mut self, items: Vec<Value>, offset: u64) -> Result<()> {
        if !items.len().is_multiple_of(2) {
            return Err(CodecError::invalid(
                offset,
                "chunk map",
                "odd number of keys and values",
            ));
        }
        let mut datoms = None;
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if is_datoms_key(&k) {
                datoms = Some(datoms_from_generic(v, offset)?);
            } else {
                apply_header_field(&mut self.header, &k, v, offset)?;
            }
        }
        let datoms = datoms.ok_or_else(|| {
            CodecError::invalid(offset, "chunk document", "the map has no :datoms key")
        })?;
        self.admit_announced(datoms.len() as u64)?;
        self.header.datom_count = Some(datoms.len() as u64);
        self.saw_datoms = true;
        self.r.expect_end()?;
        self.state = State::Buffered(datoms.into_iter());
        Ok(())
    }

    #[inline(always)]
    fn step(&mut self) -> Result<Option<Datom>> {
        let mut len = match &mut self.state {
            State::Done | State::Failed => return Ok(None),
            State::Buffered(it) => return Ok(it.next()),
            State::Datoms(len) => *len,
        };
        if let ListLen::Counted(n @ 1..) = len {
            if let Some(d) = self.fast_datom()? {
                self.admit()?;
                self.state = State::Datoms(ListLen::Counted(n - 1));
                return Ok(Some(d));
            }
        }
        let next = self.r.list_next(&mut len)?;
        self.state = State::Datoms(len);
        match next {
            Some((code, offset)) => {
                let d = self.datom(code, offset)?;
                self.admit()?;
                Ok(Some(d))
            }
            None => {
                self.read_entries()?;
                if let State::Buffered(it) = &mut self.state {
                    return Ok(it.next());
                }
                Ok(None)
            }
        }
    }

    fn datom(&mut self, code: u8, offset: u64) -> Result<Datom> {
        let Some(mut len) = self.r.list_len(code, 2)? else {
            let v = self.r.read_code(code, offset, 2)?;
            return datom_from_generic(v, offset);
        };
        if let ListLen::Counted(n) = len {
            if n != 5 {
                return Err(CodecError::invalid(
                    offset,
                    "datom",
                    format!("expected [e a v tx added] (5 elements), found {n} elements"),
                ));
            }
        }
        let field =
            |r: &mut Reader<R>, len: &mut ListLen, name: &'static str| -> Result<(u8, u64)> {
                r.list_next(len)?.ok_or_else(|| {
                    CodecError::invalid(
                        offset,
                        "datom",
                        format!("the datom ends before its {name}; expected [e a v tx added]"),
                    )
                })
            };
        let (c, o) = field(&mut self.r, &mut len, "entity id")?;
        let e = self.r.int_from(c, o, 3, "datom entity id")?;
        let (c, o) = field(&mut self.r, &mut len, "attribute")?;
        let a = self.keyword(c, o, 3)?;
        let (c, o) = field(&mut self.r, &mut len, "value")?;
        let v = self.value(c, o, 3).map_err(|err| in_datom(err, e, &a))?;
        let (c, o) = field(&mut self.r, &mut len, "transaction id")?;
        let tx = self.r.int_from(c, o, 3, "datom transaction id")?;
        let (c, o) = field(&mut self.r, &mut len, "added flag")?;
        let added = match c {
            codes::TRUE => true,
            codes::FALSE => false,
            _ => match self.r.read_code(c, o, 3)? {
                Value::Bool(b) => b,
                other => {
                    return Err(CodecError::invalid(
                        o,
                        "datom added flag",
                        format!("expected a boolean, found a {}", other.type_name()),
                    ))
                }
            },
        };
        if let Some((_, extra)) = self.r.list_next(&mut len)? {
            return Err(CodecError::invalid(
                extra,
                "datom",
                "more than 5 elements; expected [e a v tx added]",
            ));
        }
        Ok(Datom { e, a, v, tx, added })
    }

    fn part(&mut self, depth: u32) -> Result<Part> {
        let (code, offset) = self.r.next_code("a keyword namespace or name")?;
        Ok(match code {
            codes::NULL => Part::Null,
            0x80..=0x9F => Part::Cached(u64::from(code - codes::PRIORITY_CACHE_PACKED_START)),
            codes::GET_PRIORITY_CACHE => {
                Part::Cached(self.r.read_count(depth + 1, "priority cache index")?)
            }
            codes::PUT_PRIORITY_CACHE => Part::Cached(self.r.cache_put_index(offset, depth)?),
            _ => match self.r.read_code(code, offset, depth)? {
                Value::Null => Part::Null,
                Value::String(s) => Part::Inline(s),
                other => {
                    return Err(CodecError::invalid(
                        offset,
                        "keyword",
                        format!(
                            "expected a string or nil for a namespace or name, found a {}",
                            other.type_name()
                        ),
                    ))
                }
            },
        })
    }

    fn cached_str(&self, part: &Part, offset: u64) -> Result<Option<String>> {
        match part {
            Part::Null => Ok(None),
            Part::Inline(s) => Ok(Some(s.clone())),
            Part::Cached(i) => match self.r.cached(*i, offset)? {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Null => Ok(None),
                other => Err(CodecError::invalid(
                    offset,
                    "keyword",
                    format!(
                        "cache entry {i} is a {}, expected a string",
                        other.type_name()
                    ),
                )),
            },
        }
    }

    /// A keyword whose `KEY` code (or other first code) is at `offset`.
    fn keyword(&mut self, code: u8, offset: u64, depth: u32) -> Result<Keyword> {
        if code != codes::KEY {
            return match self.r.read_code(code, offset, depth)? {
                Value::Keyword(n) => Ok(Keyword::new(n.namespace.as_deref(), &n.name)),
                other => Err(CodecError::invalid(
                    offset,
                    "datom attribute",
                    format!("expected a keyword, found a {}", other.type_name()),
                )),
            };
        }
        let ns = self.part(depth + 1)?;
        let name = self.part(depth + 1)?;
        if self.keyword_generation != self.r.cache_generation() {
            self.keywords.clear();
            self.keyword_generation = self.r.cache_generation();
        }
        let memo_key = match (&ns, &name) {
            (Part::Null, Part::Cached(j)) => Some((NULL_PART, *j)),
            (Part::Cached(i), Part::Cached(j)) => Some((*i, *j)),
            _ => None,
        };
        if let Some(k) = memo_key.and_then(|(ns, name)| self.keywords.get(ns, name)) {
            return Ok(k.clone());
        }
        let ns_text = self.cached_str(&ns, offset)?;
        let name_text = self.cached_str(&name, offset)?.ok_or_else(|| {
            CodecError::invalid(offset, "keyword", "the name is nil; expected a string")
        })?;
        let k = Keyword::new(ns_text.as_deref(), &name_text);
        if let Some(mk) = memo_key {
            self.keywords.insert(mk.0, mk.1, k.clone());
        }
        Ok(k)
    }

    fn value(&mut self, code: u8, offset: u64, depth: u32) -> Result<DValue> {
        if let Some(i) = self.r.int_body(code)? {
            return Ok(DValue::Long(i));
        }
        if let Some(s) = self
            .r
            .string_body(code, offset, depth, |s: &str| Arc::<str>::from(s))?
        {
            return Ok(DValue::String(s));
        }
        Ok(match code {
            codes::TRUE => DValue::Boolean(true),
            codes::FALSE => DValue::Boolean(false),
            codes::DOUBLE | codes::DOUBLE_0 | codes::DOUBLE_1 => match self.r.double_body(code)? {
                Some(d) => DValue::Double(d),
                None => return Err(CodecError::unexpected(offset, code, "a datom value")),
            },
            codes::FLOAT => DValue::Float(self.r.float_body()?),
            codes::KEY => DValue::Keyword(self.keyword(code, offset, depth)?),
            codes::INST => DValue::Instant(self.r.read_int(depth + 1, "inst")?),
            codes::UUID => {
                let b = self.r.read_byte_array(depth + 1, "uuid")?;
                let arr: [u8; 16] = b.as_slice().try_into().map_err(|_| {
                    CodecError::invalid(
                        offset,
                        "uuid",
                        format!("expected 16 bytes, found {}", b.len()),
                    )
                })?;
                DValue::Uuid(Uuid::from_bytes(arr))
            }
            codes::BIGINT => DValue::BigInt(BigInt::from_signed_bytes_be(
                &self.r.read_byte_array(depth + 1, "bigint")?,
            )),
            codes::BIGDEC => {
                let unscaled =
                    BigInt::from_signed_bytes_be(&self.r.read_byte_array(depth + 1, "bigdec")?);
                let at = self.r.offset();
                let scale = self.r.read_int(depth + 1, "bigdec scale")?;
                let scale = i32::try_from(scale).map_err(|_| {
                    CodecError::invalid(
                        at,
                        "bigdec scale",
                        format!("expected a Java int, found {scale}"),
                    )
                })?;
                DValue::BigDec(BigDec::new(unscaled, scale))
            }
            0xD0..=0xD9 => match self.r.bytes_body(code, depth)? {
                Some(b) => DValue::Bytes(b.into()),
                None => return Err(CodecError::unexpected(offset, code, "a datom value")),
            },
            0xE4..=0xEE => {
                if depth > self.r.options().max_depth {
                    return Err(CodecError::Limit {
                        offset,
                        reason: format!(
                            "tuples nested deeper than {} levels (ReadOptions::max_depth)",
                            self.r.options().max_depth
                        ),
                    });
                }
                let Some(mut len) = self.r.list_len(code, depth)? else {
                    return Err(CodecError::unexpected(offset, code, "a datom value"));
                };
                let mut items = Vec::new();
                while let Some((c, o)) = self.r.list_next(&mut len)? {
                    // A composite tuple holds nil for a missing component.
                    items.push(match c {
                        codes::NULL => DValue::Nil,
                        _ => self.value(c, o, depth + 1)?,
                    });
                }
                DValue::Tuple(items.into())
            }
            _ => {
                let v = self.r.read_code(code, offset, depth)?;
                from_fressian(v)
                    .map_err(|e| CodecError::invalid(offset, "datom value", e.to_string()))?
            }
        })
    }
}

impl<R: Read> Iterator for ChunkReader<R> {
    type Item = Result<Datom>;

    fn next(&mut self) -> Option<Result<Datom>> {
        self.next_datom().transpose()
    }
}

/// Decodes a whole (uncompressed) chunk document.
pub fn decode_chunk(fressian: &[u8]) -> Result<(ChunkHeader, Vec<Datom>)> {
    let mut datoms = Vec::new();
    let header = ChunkReader::new(fressian)?.read_all(&mut datoms)?;
    Ok((header, datoms))
}
