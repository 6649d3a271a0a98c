//! Encoding chunk documents: datom by datom ([`ChunkBuilder`]) or from a
//! slice ([`ChunkEncoder`], [`encode_chunk_to_vec`]).

use datacamp_datom::{Datom, Keyword, Value as DValue};
use rustc_hash::FxHashMap;

use super::{FORMAT_TYPE, FORMAT_VERSION, SERIALIZATION};
use crate::compress::{self, Compression};
use crate::error::{CodecError, Result};
use crate::fressian::{codes, put_named, raw, WriteCaches};

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

/// Encodes a chunk document into a new vector.
pub fn encode_chunk_to_vec(chunk_id: u64, datoms: &[Datom]) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    encode_chunk_into(chunk_id, datoms, &mut buf)?;
    Ok(buf)
}

/// Encodes a chunk document into `buf` (cleared first, capacity kept).
fn encode_chunk_into(chunk_id: u64, datoms: &[Datom], buf: &mut Vec<u8>) -> Result<()> {
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
            // `nil` is only a tuple's element; a datom whose value is nil
            // is not written (no reader would take it back).
            DValue::Nil if depth > 0 => buf.push(codes::NULL),
            DValue::Nil => {
                return Err(CodecError::Unencodable {
                    what: "a nil datom value".into(),
                    reason: "nil is only allowed inside a tuple".into(),
                })
            }
        }
        Ok(())
    }
}
