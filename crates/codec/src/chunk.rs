//! The datom-chunk document: one Fressian map per chunk file,
//!
//! ```text
//! {:format/type :datom-chunk, :format/version "1.0.0",
//!  :format/serialization :fressian, :chunk/id N, :datoms [[e a v tx added] …]}
//! ```
//!
//! encoded straight from `&[Datom]` and decoded straight into [`Datom`]s,
//! without building a generic tree. The encoder produces exactly the bytes
//! `(clojure.data.fressian/write-object w chunk-map)` produces (no footer),
//! except that `-0.0` keeps its sign (see the crate docs).

use std::io::{Read, Write};
use std::sync::Arc;

use datacamp_datom::{BigDec, BigInt, Datom, Keyword, Symbol, Value as DValue};
use rustc_hash::FxHashMap;

use crate::compress::{self, Compression};
use crate::error::{CodecError, Result};
use crate::fressian::{
    codes, put_named, raw, ListLen, Named, ReadOptions, Reader, Uuid, Value, WriteCaches,
};

/// `:format/type` of a chunk.
pub const FORMAT_TYPE: &str = "datom-chunk";
/// `:format/version` this crate writes.
pub const FORMAT_VERSION: &str = "1.0.0";
/// `:format/serialization` of a chunk.
pub const SERIALIZATION: &str = "fressian";

/// Tuples nested deeper than this are refused when encoding.
const MAX_TUPLE_DEPTH: u32 = 256;

/// The bytes that reference a keyword once both its parts are in the
/// priority cache: `KEY`, then `NULL`/`""`/a cache reference for each part
/// (at most 1 + 2 × 6 bytes).
#[derive(Clone, Copy, Debug)]
struct KeywordRef {
    len: u8,
    bytes: [u8; 14],
}

/// Encodes chunk documents, reusing its buffers and tables between chunks.
///
/// ```
/// use datacamp_codec::chunk::{ChunkEncoder, ChunkReader};
/// use datacamp_codec::compress::{gunzip_reader, Compression};
/// use datacamp_datom::{Datom, Keyword, Value, TX0};
///
/// let datoms = vec![Datom::new(1, Keyword::parse("person/name"), Value::string("Ada"), TX0 + 1)];
/// let mut enc = ChunkEncoder::new();
/// let chunk = enc.encode_compressed(0, &datoms, Compression::default()).unwrap();
/// assert_eq!(chunk.sha256, datacamp_codec::sha256_hex(&chunk.bytes));
///
/// let mut reader = ChunkReader::new(gunzip_reader(&chunk.bytes[..])).unwrap();
/// assert_eq!(reader.header().chunk_id, Some(0));
/// let back: Vec<Datom> = reader.by_ref().collect::<Result<_, _>>().unwrap();
/// assert_eq!(back, datoms);
/// ```
#[derive(Debug, Default)]
pub struct ChunkEncoder {
    fressian: Vec<u8>,
    caches: WriteCaches,
    keywords: KeywordMemo,
}

/// Keyword → the bytes referencing it, keyed by the address of the
/// keyword's shared text: datoms share their attribute keywords, so this
/// avoids hashing the text on every datom. The memo holds a clone of each
/// keyword, so no address is freed and reused while it is in the memo.
type KeywordMemo = FxHashMap<usize, (Keyword, KeywordRef)>;

/// A chunk ready to store: compressed bytes and their checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedChunk {
    /// The (compressed) file content.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, 64 lowercase hex digits.
    pub sha256: String,
    /// Length of the Fressian document before compression.
    pub fressian_len: usize,
    /// Number of datoms in the chunk.
    pub datom_count: usize,
}

impl ChunkEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> ChunkEncoder {
        ChunkEncoder::default()
    }

    /// Encodes a chunk document; the returned bytes live until the next
    /// call.
    pub fn encode(&mut self, chunk_id: u64, datoms: &[Datom]) -> Result<&[u8]> {
        let mut buf = std::mem::take(&mut self.fressian);
        let result = self.encode_into(chunk_id, datoms, &mut buf);
        self.fressian = buf;
        result.map(|()| self.fressian.as_slice())
    }

    /// Encodes a chunk document into `buf` (cleared first).
    pub fn encode_into(
        &mut self,
        chunk_id: u64,
        datoms: &[Datom],
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        buf.clear();
        self.caches.clear();
        self.keywords.clear();
        let mut w = ChunkWriter {
            buf,
            caches: &mut self.caches,
            keywords: &mut self.keywords,
        };
        w.chunk(chunk_id, datoms)
    }

    /// Encodes, compresses and hashes a chunk: what the backup stores.
    pub fn encode_compressed(
        &mut self,
        chunk_id: u64,
        datoms: &[Datom],
        compression: Compression,
    ) -> Result<EncodedChunk> {
        let fressian = self.encode(chunk_id, datoms)?;
        let bytes = compress::compress(fressian, compression)?;
        Ok(EncodedChunk {
            sha256: compress::sha256_hex(&bytes),
            fressian_len: fressian.len(),
            datom_count: datoms.len(),
            bytes,
        })
    }
}

/// Encodes a chunk document and writes it to `out`.
pub fn encode_chunk(chunk_id: u64, datoms: &[Datom], out: &mut impl Write) -> Result<()> {
    let mut buf = Vec::new();
    encode_chunk_into(chunk_id, datoms, &mut buf)?;
    out.write_all(&buf)
        .map_err(|e| CodecError::io(format!("writing chunk {chunk_id}"), e))
}

/// Encodes a chunk document into a new vector.
pub fn encode_chunk_to_vec(chunk_id: u64, datoms: &[Datom]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_chunk_into(chunk_id, datoms, &mut buf)?;
    Ok(buf)
}

/// Encodes a chunk document into `buf` (cleared first, capacity kept).
pub fn encode_chunk_into(chunk_id: u64, datoms: &[Datom], buf: &mut Vec<u8>) -> Result<()> {
    ChunkEncoder::new().encode_into(chunk_id, datoms, buf)
}

/// Builds one chunk document datom by datom, for a producer that cuts
/// chunks by encoded size without holding the datoms themselves.
///
/// The datoms are encoded as they arrive; [`ChunkBuilder::finish`] puts
/// the header and the list length in front. The result is byte-identical
/// to [`encode_chunk_to_vec`] of the same datoms.
///
/// ```
/// use datacamp_codec::chunk::{encode_chunk_to_vec, ChunkBuilder};
/// use datacamp_datom::{Datom, Keyword, Value, TX0};
///
/// let datoms: Vec<Datom> = (1..=3)
///     .map(|e| Datom::new(e, Keyword::parse("person/age"), Value::Long(30 + e), TX0 + 1))
///     .collect();
/// let mut builder = ChunkBuilder::new(7);
/// for d in &datoms {
///     builder.push(d).unwrap();
/// }
/// assert_eq!(builder.datom_count(), 3);
/// assert_eq!(builder.finish().unwrap(), encode_chunk_to_vec(7, &datoms).unwrap());
/// ```
#[derive(Debug)]
pub struct ChunkBuilder {
    chunk_id: u64,
    /// The header, then [`LENGTH_GAP`] bytes kept for the list length, then
    /// the datoms. One buffer, so finishing needs no second copy of the
    /// chunk (a backup holds several chunks in flight; a copy each would
    /// double its memory).
    buf: Vec<u8>,
    head_len: usize,
    caches: WriteCaches,
    keywords: KeywordMemo,
    count: usize,
    /// A header that could not be written (a chunk id beyond `i64`),
    /// reported by `push` and `finish`.
    header_error: Option<String>,
}

/// Room for the longest list-length prefix (a code byte and an 8-byte int).
const LENGTH_GAP: usize = 9;

impl ChunkBuilder {
    /// Starts chunk `chunk_id`.
    pub fn new(chunk_id: u64) -> ChunkBuilder {
        ChunkBuilder::with_capacity(chunk_id, 0)
    }

    /// Starts chunk `chunk_id` with room for `bytes` of document, so a
    /// producer that cuts at a known size never reallocates (a growing
    /// buffer doubles, holding up to twice the chunk).
    pub fn with_capacity(chunk_id: u64, bytes: usize) -> ChunkBuilder {
        let mut builder = ChunkBuilder {
            chunk_id,
            buf: Vec::with_capacity(bytes.max(128)),
            head_len: 0,
            caches: WriteCaches::default(),
            keywords: FxHashMap::default(),
            count: 0,
            header_error: None,
        };
        // The header's keywords take the first priority-cache slots, as
        // they do when the reference writes the whole map at once.
        let mut w = ChunkWriter {
            buf: &mut builder.buf,
            caches: &mut builder.caches,
            keywords: &mut builder.keywords,
        };
        if let Err(e) = w.header(chunk_id) {
            builder.header_error = Some(e.to_string());
        }
        builder.head_len = builder.buf.len();
        builder.buf.resize(builder.head_len + LENGTH_GAP, 0);
        builder
    }

    /// The chunk id.
    pub fn chunk_id(&self) -> u64 {
        self.chunk_id
    }

    /// Datoms pushed so far.
    pub fn datom_count(&self) -> usize {
        self.count
    }

    /// The document's size so far, in bytes (within a few bytes of the
    /// final size: the list length is not written yet).
    pub fn encoded_len(&self) -> usize {
        self.buf.len() - LENGTH_GAP + 1
    }

    fn check_header(&self) -> Result<()> {
        match &self.header_error {
            Some(reason) => Err(CodecError::Unencodable {
                what: format!("chunk id {}", self.chunk_id),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Encodes one more datom.
    pub fn push(&mut self, d: &Datom) -> Result<()> {
        self.check_header()?;
        let mut w = ChunkWriter {
            buf: &mut self.buf,
            caches: &mut self.caches,
            keywords: &mut self.keywords,
        };
        w.datom(d)?;
        self.count += 1;
        Ok(())
    }

    /// The complete document.
    pub fn finish(self) -> Result<Vec<u8>> {
        self.check_header()?;
        let mut length = Vec::with_capacity(LENGTH_GAP);
        raw::write_list_header(&mut length, self.count)?;
        let mut buf = self.buf;
        let datoms_at = self.head_len + LENGTH_GAP;
        let length_end = self.head_len + length.len();
        // Close the gap in place: the datoms move left by the unused bytes.
        buf.copy_within(datoms_at.., length_end);
        buf.truncate(buf.len() - (LENGTH_GAP - length.len()));
        if let Some(slot) = buf.get_mut(self.head_len..length_end) {
            slot.copy_from_slice(&length);
        }
        Ok(buf)
    }
}

struct ChunkWriter<'a> {
    buf: &'a mut Vec<u8>,
    caches: &'a mut WriteCaches,
    keywords: &'a mut KeywordMemo,
}

impl ChunkWriter<'_> {
    fn chunk(&mut self, chunk_id: u64, datoms: &[Datom]) -> Result<()> {
        self.buf.reserve(datoms.len() * 24 + 128);
        self.header(chunk_id)?;
        raw::write_list_header(self.buf, datoms.len())?;
        for d in datoms {
            self.datom(d)?;
        }
        Ok(())
    }

    /// Everything before the `:datoms` list's length: the map as
    /// clojure.data.fressian writes a 5-entry array map (MAP, then a list
    /// of its keys and values in order), up to and including `:datoms`.
    fn header(&mut self, chunk_id: u64) -> Result<()> {
        let id = i64::try_from(chunk_id).map_err(|_| CodecError::Unencodable {
            what: format!("chunk id {chunk_id}"),
            reason: "chunk ids are Java longs".into(),
        })?;
        self.buf.push(codes::MAP);
        raw::write_list_header(self.buf, 10)?;
        self.keyword(&Keyword::new(Some("format"), "type"));
        self.keyword(&Keyword::new(None, FORMAT_TYPE));
        self.keyword(&Keyword::new(Some("format"), "version"));
        raw::write_string(self.buf, FORMAT_VERSION);
        self.keyword(&Keyword::new(Some("format"), "serialization"));
        self.keyword(&Keyword::new(None, SERIALIZATION));
        self.keyword(&Keyword::new(Some("chunk"), "id"));
        raw::write_int(self.buf, id);
        self.keyword(&Keyword::new(None, "datoms"));
        Ok(())
    }

    #[inline]
    fn datom(&mut self, d: &Datom) -> Result<()> {
        self.buf.push(codes::LIST_PACKED_LENGTH_START + 5);
        raw::write_int(self.buf, d.e);
        self.keyword(&d.a);
        self.value(&d.v, 0)?;
        raw::write_int(self.buf, d.tx);
        raw::write_bool(self.buf, d.added);
        Ok(())
    }

    #[inline]
    fn keyword(&mut self, k: &Keyword) {
        let key = k.as_str().as_ptr() as usize;
        if let Some((_, r)) = self.keywords.get(&key) {
            self.buf.extend_from_slice(&r.bytes[..usize::from(r.len)]);
            return;
        }
        // First use in this chunk: write it as clojure.data.fressian does
        // and remember the bytes that will reference it from now on.
        self.buf.push(codes::KEY);
        let mut reference = Vec::with_capacity(14);
        reference.push(codes::KEY);
        for part in [k.namespace(), Some(k.name())] {
            match part {
                None => {
                    self.buf.push(codes::NULL);
                    reference.push(codes::NULL);
                }
                Some("") => {
                    self.buf.push(codes::STRING_PACKED_LENGTH_START);
                    reference.push(codes::STRING_PACKED_LENGTH_START);
                }
                Some(s) => {
                    let (index, cached) = self.caches.intern_string(s);
                    if cached {
                        raw::write_priority_ref(self.buf, index);
                    } else {
                        self.buf.push(codes::PUT_PRIORITY_CACHE);
                        raw::write_string(self.buf, s);
                    }
                    raw::write_priority_ref(&mut reference, index);
                }
            }
        }
        // A reference is at most 6 bytes (GET_PRIORITY_CACHE + a packed
        // int below 2^32), so KEY + two of them always fit.
        let mut r = KeywordRef {
            len: 0,
            bytes: [0; 14],
        };
        if let Some(slot) = r.bytes.get_mut(..reference.len()) {
            slot.copy_from_slice(&reference);
            r.len = reference.len() as u8;
            self.keywords.insert(key, (k.clone(), r));
        }
    }

    fn value(&mut self, v: &DValue, depth: u32) -> Result<()> {
        let buf = &mut *self.buf;
        match v {
            DValue::Boolean(b) => raw::write_bool(buf, *b),
            DValue::Long(n) => raw::write_int(buf, *n),
            DValue::Double(d) => raw::write_double(buf, *d),
            DValue::Float(f) => raw::write_float(buf, *f),
            DValue::BigInt(b) => {
                buf.push(codes::BIGINT);
                raw::write_bytes(buf, &b.to_signed_bytes_be());
            }
            DValue::BigDec(d) => {
                buf.push(codes::BIGDEC);
                raw::write_bytes(buf, &d.unscaled.to_signed_bytes_be());
                raw::write_int(buf, i64::from(d.scale));
            }
            DValue::String(s) => raw::write_string(buf, s),
            DValue::Keyword(k) => self.keyword(k),
            DValue::Symbol(s) => {
                buf.push(codes::SYM);
                put_named(buf, self.caches, s.namespace(), s.name());
            }
            DValue::Instant(ms) => {
                buf.push(codes::INST);
                raw::write_int(buf, *ms);
            }
            DValue::Uuid(u) => {
                buf.push(codes::UUID);
                raw::write_bytes(buf, u.as_bytes());
            }
            DValue::Bytes(b) => raw::write_bytes(buf, b),
            DValue::Tuple(items) => {
                if depth >= MAX_TUPLE_DEPTH {
                    return Err(CodecError::Unencodable {
                        what: "a tuple".into(),
                        reason: format!(
                            "tuples nested deeper than {MAX_TUPLE_DEPTH} levels are not written"
                        ),
                    });
                }
                raw::write_list_header(buf, items.len())?;
                for item in items.iter() {
                    self.value(item, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

/// The fields of a chunk document other than its datoms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChunkHeader {
    /// `:format/type`, as keyword text without the colon (`datom-chunk`).
    pub format_type: Option<String>,
    /// `:format/version` (`"1.0.0"`).
    pub format_version: Option<String>,
    /// `:format/serialization`, as keyword text (`fressian`).
    pub serialization: Option<String>,
    /// `:chunk/id`.
    pub chunk_id: Option<u64>,
    /// The number of datoms announced by the `:datoms` list, when it is a
    /// counted list (the reference always writes one).
    pub datom_count: Option<u64>,
}

/// A cache-aware keyword part: where the namespace or name string is.
enum Part {
    Null,
    Cached(u64),
    Inline(String),
}

const NULL_PART: u64 = u64::MAX;

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
    r: Reader<R>,
    header: ChunkHeader,
    state: State,
    map_len: ListLen,
    saw_datoms: bool,
    keywords: KeywordTable,
    keyword_generation: u64,
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

    /// Opens a chunk document with the given reader options.
    pub fn with_options(input: R, opts: ReadOptions) -> Result<ChunkReader<R>> {
        let mut cr = ChunkReader {
            r: Reader::with_options(input, opts),
            header: ChunkHeader::default(),
            state: State::Done,
            map_len: ListLen::Counted(0),
            saw_datoms: false,
            keywords: KeywordTable::default(),
            keyword_generation: 0,
        };
        cr.open()?;
        Ok(cr)
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
                        self.header.datom_count = Some(n);
                    }
                    self.state = State::Datoms(len);
                    return Ok(());
                }
                let datoms = self.r.read_code(vcode, voffset, 1)?;
                let datoms = datoms_from_generic(datoms, voffset)?;
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
                self.state = State::Datoms(ListLen::Counted(n - 1));
                return Ok(Some(d));
            }
        }
        let next = self.r.list_next(&mut len)?;
        self.state = State::Datoms(len);
        match next {
            Some((code, offset)) => self.datom(code, offset).map(Some),
            None => {
                self.read_entries()?;
                if let State::Buffered(it) = &mut self.state {
                    return Ok(it.next());
                }
                Ok(None)
            }
        }
    }

    /// Decodes the next datom straight from the input buffer when it has
    /// the shape the reference writes and every keyword in it has been seen
    /// before; `None` (nothing consumed) sends it down the general path.
    #[inline(always)]
    fn fast_datom(&mut self) -> Result<Option<Datom>> {
        if self.keyword_generation != self.r.cache_generation() {
            return Ok(None);
        }
        self.r.input.prefetch(FAST_WINDOW)?;
        let mut f = Fast {
            b: self.r.input.window(),
            p: 0,
        };
        let keywords = &self.keywords;
        let datom = (|| {
            if f.byte()? != codes::LIST_PACKED_LENGTH_START + 5 {
                return None;
            }
            let e = f.int()?;
            if f.byte()? != codes::KEY {
                return None;
            }
            let a = f.keyword(keywords)?;
            let v = f.value(keywords)?;
            let tx = f.int()?;
            let added = match f.byte()? {
                codes::TRUE => true,
                codes::FALSE => false,
                _ => return None,
            };
            Some(Datom { e, a, v, tx, added })
        })();
        let used = f.p;
        if datom.is_some() {
            self.r.input.advance(used);
        }
        Ok(datom)
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
                    items.push(self.value(c, o, depth + 1)?);
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

/// Decoded keywords by the priority-cache indices of their namespace
/// ([`NULL_PART`] for none) and name, so a repeated keyword costs a lookup
/// and a reference-count increment.
#[derive(Debug, Default)]
struct KeywordTable {
    /// By name index (below [`KeywordTable::DIRECT`]): the first namespace
    /// seen with that name, and the keyword.
    by_name: Vec<Option<(u64, Keyword)>>,
    /// Every other pair.
    others: FxHashMap<(u64, u64), Keyword>,
}

impl KeywordTable {
    const DIRECT: u64 = 1 << 16;

    #[inline(always)]
    fn get(&self, ns: u64, name: u64) -> Option<&Keyword> {
        if let Some(Some((first_ns, k))) = self.by_name.get(name as usize) {
            if *first_ns == ns {
                return Some(k);
            }
        }
        if self.others.is_empty() {
            None
        } else {
            self.others.get(&(ns, name))
        }
    }

    fn insert(&mut self, ns: u64, name: u64, k: Keyword) {
        if name < Self::DIRECT {
            let i = name as usize;
            if self.by_name.len() <= i {
                self.by_name.resize(i + 1, None);
            }
            if self.by_name[i].is_none() {
                self.by_name[i] = Some((ns, k));
                return;
            }
        }
        self.others.insert((ns, name), k);
    }

    fn clear(&mut self) {
        self.by_name.clear();
        self.others.clear();
    }
}

/// Bytes the fast path asks to have buffered before decoding a datom.
const FAST_WINDOW: usize = 256;

/// A cursor over buffered bytes for [`ChunkReader::fast_datom`]: every read
/// returns `None` when the bytes are not there or not of the common shape.
struct Fast<'a> {
    b: &'a [u8],
    p: usize,
}

impl<'a> Fast<'a> {
    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let x = *self.b.get(self.p)?;
        self.p += 1;
        Some(x)
    }

    #[inline]
    fn slice(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.p..self.p.checked_add(n)?)?;
        self.p += n;
        Some(s)
    }

    /// `n` (1..=8) big-endian bytes; one 8-byte load when the buffer
    /// allows, instead of a variable-length copy.
    #[inline(always)]
    fn be(&mut self, n: usize) -> Option<u64> {
        if let Some(w) = self.b.get(self.p..self.p + 8) {
            let word: [u8; 8] = w.try_into().ok()?;
            self.p += n;
            return Some(u64::from_be_bytes(word) >> (64 - 8 * n as u32));
        }
        let s = self.slice(n)?;
        Some(s.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    #[inline(always)]
    fn int(&mut self) -> Option<i64> {
        let code = self.byte()?;
        self.int_code(code)
    }

    #[inline(always)]
    fn int_code(&mut self, code: u8) -> Option<i64> {
        let c = i64::from(code);
        Some(match code {
            0x00..=0x3F => c,
            0xFF => -1,
            0x40..=0x5F => ((c - 0x50) << 8) | i64::from(self.byte()?),
            0x60..=0x6F => ((c - 0x68) << 16) | self.be(2)? as i64,
            0x70..=0x73 => ((c - 0x72) << 24) | self.be(3)? as i64,
            0x74..=0x77 => ((c - 0x76) << 32) | self.be(4)? as i64,
            0x78..=0x7B => ((c - 0x7A) << 40) | self.be(5)? as i64,
            0x7C..=0x7F => ((c - 0x7E) << 48) | self.be(6)? as i64,
            codes::INT => self.be(8)? as i64,
            _ => return None,
        })
    }

    /// A keyword part that is `nil` or a cache reference.
    #[inline(always)]
    fn part(&mut self) -> Option<u64> {
        match self.byte()? {
            codes::NULL => Some(NULL_PART),
            c @ 0x80..=0x9F => Some(u64::from(c - codes::PRIORITY_CACHE_PACKED_START)),
            codes::GET_PRIORITY_CACHE => u64::try_from(self.int()?).ok(),
            _ => None,
        }
    }

    /// The keyword after a `KEY` code, if it is in the memo.
    #[inline(always)]
    fn keyword(&mut self, memo: &KeywordTable) -> Option<Keyword> {
        let ns = self.part()?;
        let name = self.part()?;
        memo.get(ns, name).cloned()
    }

    #[inline]
    fn value(&mut self, memo: &KeywordTable) -> Option<DValue> {
        let code = self.byte()?;
        if let Some(i) = self.int_code(code) {
            return Some(DValue::Long(i));
        }
        Some(match code {
            codes::TRUE => DValue::Boolean(true),
            codes::FALSE => DValue::Boolean(false),
            codes::DOUBLE => DValue::Double(f64::from_bits(self.be(8)?)),
            codes::DOUBLE_0 => DValue::Double(0.0),
            codes::DOUBLE_1 => DValue::Double(1.0),
            codes::FLOAT => DValue::Float(f32::from_bits(self.be(4)? as u32)),
            codes::KEY => DValue::Keyword(self.keyword(memo)?),
            codes::INST => DValue::Instant(self.int()?),
            codes::UUID => {
                // 16 bytes are always written as BYTES + count 16.
                if self.slice(2)? != [codes::BYTES, 16] {
                    return None;
                }
                DValue::Uuid(Uuid::from_bytes(self.slice(16)?.try_into().ok()?))
            }
            0xDA..=0xE1 => self.string(usize::from(code - codes::STRING_PACKED_LENGTH_START))?,
            codes::STRING => {
                let len = usize::try_from(self.int()?).ok()?;
                self.string(len)?
            }
            _ => return None,
        })
    }

    /// A string that is plain UTF-8 (the reference's encoding of text
    /// without astral characters); anything else takes the general path.
    #[inline]
    fn string(&mut self, len: usize) -> Option<DValue> {
        let s = std::str::from_utf8(self.slice(len)?).ok()?;
        Some(DValue::String(Arc::from(s)))
    }
}

/// Decodes a whole (uncompressed) chunk document.
pub fn decode_chunk(fressian: &[u8]) -> Result<(ChunkHeader, Vec<Datom>)> {
    let mut datoms = Vec::new();
    let header = ChunkReader::new(fressian)?.read_all(&mut datoms)?;
    Ok((header, datoms))
}

fn is_datoms_key(key: &Value) -> bool {
    matches!(key, Value::Keyword(Named { namespace: None, name }) if name == "datoms")
}

fn keyword_text(n: &Named) -> String {
    match &n.namespace {
        Some(ns) => format!("{ns}/{}", n.name),
        None => n.name.clone(),
    }
}

fn apply_header_field(
    header: &mut ChunkHeader,
    key: &Value,
    value: Value,
    offset: u64,
) -> Result<()> {
    let Value::Keyword(k) = key else {
        return Ok(());
    };
    let field = (k.namespace.as_deref(), k.name.as_str());
    let bad = |expected: &str, found: &Value| {
        CodecError::invalid(
            offset,
            "chunk header",
            format!(
                ":{} should be {expected}, found a {}",
                keyword_text(k),
                found.type_name()
            ),
        )
    };
    match field {
        (Some("format"), "type") => match &value {
            Value::Keyword(n) => {
                let text = keyword_text(n);
                if text != FORMAT_TYPE {
                    return Err(CodecError::invalid(
                        offset,
                        "chunk header",
                        format!(":format/type is :{text}, expected :{FORMAT_TYPE}"),
                    ));
                }
                header.format_type = Some(text);
            }
            other => return Err(bad("a keyword", other)),
        },
        (Some("format"), "version") => match value {
            Value::String(s) => header.format_version = Some(s),
            other => return Err(bad("a string", &other)),
        },
        (Some("format"), "serialization") => match &value {
            Value::Keyword(n) => header.serialization = Some(keyword_text(n)),
            other => return Err(bad("a keyword", other)),
        },
        (Some("chunk"), "id") => match value {
            Value::Int(i) if i >= 0 => header.chunk_id = Some(i as u64),
            other => return Err(bad("a non-negative integer", &other)),
        },
        _ => {}
    }
    Ok(())
}

fn datoms_from_generic(v: Value, offset: u64) -> Result<Vec<Datom>> {
    match v {
        Value::List(items) => items
            .into_iter()
            .map(|d| datom_from_generic(d, offset))
            .collect(),
        other => Err(CodecError::invalid(
            offset,
            "chunk datoms",
            format!("expected a list, found a {}", other.type_name()),
        )),
    }
}

/// A datom value that cannot be decoded, with the entity and attribute it
/// belongs to, so that the message names the datom (e.g. a Datahike tuple
/// holding `nil`, which Datacamp's values cannot represent).
fn in_datom(err: CodecError, e: i64, a: &Keyword) -> CodecError {
    match err {
        CodecError::Invalid {
            offset,
            what: "datom value",
            reason,
        } => CodecError::Invalid {
            offset,
            what: "datom value",
            reason: format!("{reason} (the value of entity {e}, attribute {a})"),
        },
        other => other,
    }
}

fn datom_from_generic(v: Value, offset: u64) -> Result<Datom> {
    let bad = |reason: String| CodecError::invalid(offset, "datom", reason);
    let Value::List(items) = v else {
        return Err(bad(format!(
            "expected a list [e a v tx added], found a {}",
            v.type_name()
        )));
    };
    let [e, a, v, tx, added]: [Value; 5] = items.try_into().map_err(|items: Vec<Value>| {
        bad(format!(
            "expected [e a v tx added] (5 elements), found {} elements",
            items.len()
        ))
    })?;
    let (Value::Int(e), Value::Keyword(a), Value::Int(tx), Value::Bool(added)) =
        (&e, &a, &tx, &added)
    else {
        return Err(bad(format!(
            "expected [long keyword value long boolean], found [{} {} {} {} {}]",
            e.type_name(),
            a.type_name(),
            v.type_name(),
            tx.type_name(),
            added.type_name()
        )));
    };
    let a = Keyword::new(a.namespace.as_deref(), &a.name);
    let v = from_fressian(v)
        .map_err(|err| bad(format!("{err} (the value of entity {e}, attribute {a})")))?;
    Ok(Datom {
        e: *e,
        a,
        v,
        tx: *tx,
        added: *added,
    })
}

/// The generic Fressian form of a datom value (as clojure.data.fressian
/// would write the corresponding Clojure value).
pub fn to_fressian(v: &DValue) -> Value {
    match v {
        DValue::Boolean(b) => Value::Bool(*b),
        DValue::Long(n) => Value::Int(*n),
        DValue::Double(d) => Value::Double(*d),
        DValue::Float(f) => Value::Float(*f),
        DValue::BigInt(b) => Value::BigInt(b.clone()),
        DValue::BigDec(d) => Value::BigDec {
            unscaled: d.unscaled.clone(),
            scale: d.scale,
        },
        DValue::String(s) => Value::String(s.to_string()),
        DValue::Keyword(k) => Value::keyword(k.namespace(), k.name()),
        DValue::Symbol(s) => Value::symbol(s.namespace(), s.name()),
        DValue::Instant(ms) => Value::Inst(*ms),
        DValue::Uuid(u) => Value::Uuid(*u),
        DValue::Bytes(b) => Value::Bytes(b.to_vec()),
        DValue::Tuple(items) => Value::List(items.iter().map(to_fressian).collect()),
    }
}

/// The datom value for a generic Fressian value: the inverse of
/// [`to_fressian`]. Lists become tuples; types a datom cannot hold (nil,
/// maps, sets, chars, ratios, …) are [`CodecError::NotADatomValue`].
pub fn from_fressian(v: Value) -> Result<DValue> {
    Ok(match v {
        Value::Bool(b) => DValue::Boolean(b),
        Value::Int(n) => DValue::Long(n),
        Value::Double(d) => DValue::Double(d),
        Value::Float(f) => DValue::Float(f),
        Value::BigInt(b) => DValue::BigInt(b),
        Value::BigDec { unscaled, scale } => DValue::BigDec(BigDec::new(unscaled, scale)),
        Value::String(s) => DValue::String(s.into()),
        Value::Keyword(n) => DValue::Keyword(Keyword::new(n.namespace.as_deref(), &n.name)),
        Value::Symbol(n) => DValue::Symbol(Symbol::new(n.namespace.as_deref(), &n.name)),
        Value::Inst(ms) => DValue::Instant(ms),
        Value::Uuid(u) => DValue::Uuid(u),
        Value::Bytes(b) => DValue::Bytes(b.into()),
        Value::List(items) => {
            DValue::Tuple(items.into_iter().map(from_fressian).collect::<Result<Vec<_>>>()?.into())
        }
        other => {
            return Err(CodecError::NotADatomValue {
                found: format!("a {}", other.type_name()),
                reason: "datom values are booleans, numbers, strings, keywords, symbols, instants, uuids, bytes or tuples of those".into(),
            })
        }
    })
}
