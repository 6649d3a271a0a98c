//! The reader's fast path: a datom of the shape the reference writes,
//! decoded straight from the input buffer, and the keyword memo both paths
//! share.

use std::io::Read;
use std::sync::Arc;

use datacamp_datom::{Datom, Keyword, Value as DValue};
use rustc_hash::FxHashMap;

use super::read::ChunkReader;
use crate::error::Result;
use crate::fressian::{codes, Uuid};

pub(super) const NULL_PART: u64 = u64::MAX;

/// Decoded keywords by the priority-cache indices of their namespace
/// ([`NULL_PART`] for none) and name, so a repeated keyword costs a lookup
/// and a reference-count increment.
#[derive(Debug, Default)]
pub(super) struct KeywordTable {
    /// By name index (below [`KeywordTable::DIRECT`]): the first namespace
    /// seen with that name, and the keyword.
    by_name: Vec<Option<(u64, Keyword)>>,
    /// Every other pair.
    others: FxHashMap<(u64, u64), Keyword>,
}

impl KeywordTable {
    const DIRECT: u64 = 1 << 16;

    #[inline(always)]
    pub(super) fn get(&self, ns: u64, name: u64) -> Option<&Keyword> {
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

    pub(super) fn insert(&mut self, ns: u64, name: u64, k: Keyword) {
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

    pub(super) fn clear(&mut self) {
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

impl<R: Read> ChunkReader<R> {
    /// Decodes the next datom straight from the input buffer when it has
    /// the shape the reference writes and every keyword in it has been seen
    /// before; `None` (nothing consumed) sends it down the general path.
    #[inline(always)]
    pub(super) fn fast_datom(&mut self) -> Result<Option<Datom>> {
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
}
