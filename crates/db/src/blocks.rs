//! Index tables made of blocks (layout in [`crate::keys`]): sorted runs of
//! index keys packed into one redb entry each, keyed by their first key.
//!
//! The one invariant: every entry lives in the block with the greatest
//! first key not above it (its *floor* block). Lookups therefore read one
//! block; range scans start at the floor block of their lower bound.
//! Packing makes bulk loads and full scans touch ~50× fewer redb entries
//! than one entry per datom would, at the price of rewriting a block to
//! change one entry.

use std::ops::{Bound, Range};
use std::path::Path;

use datacamp_datom::{Error, Result};
use redb::{ReadableTable, Table, TableDefinition};

use crate::keys::{pack, put_block_entry, BlockReader, BLOCK_MAX_ENTRIES, MAX_PLAIN_BYTES};

/// An index table: block first key → encoded block.
pub(crate) type BlockTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

fn storage<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(redb::StorageError) -> Error + 'a {
    move |e| Error::Storage {
        context: format!("{what} ({})", path.display()),
        source: Box::new(redb::Error::from(e)),
    }
}

/// Bytes of key and value that fit one redb leaf page holding a single
/// entry (a 4 KiB page less the leaf header and the entry's two offsets).
/// redb stores a larger value alone in a page of twice the size or more,
/// mostly empty, so a stored block or log record aims just below this.
const LEAF_BYTES: usize = 4096 - 4 - 8 - 8;

/// The stored bytes a value keyed by `key_len` bytes may take to fill one
/// leaf page alone.
pub(crate) fn page_budget(key_len: usize) -> usize {
    LEAF_BYTES.saturating_sub(key_len).max(256)
}

/// Cuts a sorted run into stored values (blocks or log records) of about
/// one page each after compression.
///
/// How many items fit a page depends on how well they compress, which is
/// known only afterwards: the packer encodes as many plain bytes as the
/// last value's compression ratio says will fit, compresses, and if that
/// overshoots, retries with proportionally fewer items (rare: the ratio of
/// one index changes slowly along it).
pub(crate) struct Packer {
    /// Plain bytes per stored byte of the last value packed.
    ratio: f64,
    plain: Vec<u8>,
    stored: Vec<u8>,
}

impl Default for Packer {
    fn default() -> Self {
        Packer {
            ratio: 1.0,
            plain: Vec::with_capacity(MAX_PLAIN_BYTES),
            stored: Vec::with_capacity(8192),
        }
    }
}

impl Packer {
    /// Packs a prefix of `items` into one stored value of at most `budget`
    /// bytes (or of its first item alone, however large) and returns how
    /// many items it holds (0 only for no items). `encode` appends one
    /// item's plain bytes; its flag says the item starts the value.
    pub(crate) fn pack<T>(
        &mut self,
        items: &[T],
        budget: usize,
        max_items: usize,
        mut encode: impl FnMut(&mut Vec<u8>, bool, &T),
    ) -> usize {
        if items.is_empty() {
            pack(&[], &mut self.stored);
            return 0;
        }
        let mut target = ((budget as f64 * self.ratio * 0.97) as usize).clamp(1, MAX_PLAIN_BYTES);
        let mut limit = max_items.clamp(1, items.len());
        loop {
            self.plain.clear();
            let mut n = 0;
            while n < limit && (n == 0 || self.plain.len() < target) {
                encode(&mut self.plain, n == 0, &items[n]);
                n += 1;
            }
            pack(&self.plain, &mut self.stored);
            if self.stored.len() <= budget || n == 1 {
                self.ratio = self.plain.len() as f64 / self.stored.len().max(1) as f64;
                return n;
            }
            // Over the page: fewer items, in proportion, at least one fewer.
            let fit = (n as f64 * budget as f64 / self.stored.len() as f64 * 0.97) as usize;
            limit = fit.clamp(1, n - 1);
            target = MAX_PLAIN_BYTES;
        }
    }

    /// The stored bytes of the last value packed.
    pub(crate) fn stored(&self) -> &[u8] {
        &self.stored
    }
}

/// The first key of the floor block of `key`, if there is one.
fn floor<T>(table: &T, path: &Path, key: &[u8]) -> Result<Option<Vec<u8>>>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
{
    let err = || storage(path, "finding an index block");
    match table.range::<&[u8]>(..=key).map_err(err())?.next_back() {
        Some(row) => Ok(Some(row.map_err(err())?.0.value().to_vec())),
        None => Ok(None),
    }
}

/// Streams the entries `lo <= key < hi` of a block table, in key order.
pub(crate) struct EntryScan<'r> {
    path: &'r Path,
    rows: redb::Range<'r, &'static [u8], &'static [u8]>,
    reader: BlockReader,
    in_block: bool,
    done: bool,
    lo: Vec<u8>,
    hi: Option<Vec<u8>>,
}

impl<'r> EntryScan<'r> {
    /// A scan from `lo` (inclusive) to `hi` (exclusive; `None` = to the end).
    pub(crate) fn new<T>(table: &'r T, path: &'r Path, lo: &[u8], hi: Option<&[u8]>) -> Result<Self>
    where
        T: ReadableTable<&'static [u8], &'static [u8]>,
    {
        let start = floor(table, path, lo)?.unwrap_or_else(|| lo.to_vec());
        let err = || storage(path, "scanning an index");
        let rows = match hi {
            Some(hi) if hi <= start.as_slice() => table.range::<&[u8]>(hi..hi),
            Some(hi) => table.range::<&[u8]>(start.as_slice()..hi),
            None => table.range::<&[u8]>(start.as_slice()..),
        }
        .map_err(err())?;
        Ok(EntryScan {
            path,
            rows,
            reader: BlockReader::default(),
            in_block: false,
            done: false,
            lo: lo.to_vec(),
            hi: hi.map(<[u8]>::to_vec),
        })
    }

    /// Advances to the next entry in range; returns its retracting tx (0
    /// while current), or `None` at the end. [`EntryScan::key`] is its key.
    pub(crate) fn next_entry(&mut self) -> Result<Option<u64>> {
        while !self.done {
            if self.in_block {
                match self.reader.next_entry()? {
                    Some(retracted) => {
                        let key = self.reader.key();
                        // Entries come in key order: once one reaches
                        // `lo`, all later ones do, so the bound is dropped
                        // and a long scan stops paying a compare per entry
                        // (12 % of a backup's CPU in a profile).
                        if !self.lo.is_empty() {
                            if key < self.lo.as_slice() {
                                continue;
                            }
                            self.lo.clear();
                        }
                        if self.hi.as_deref().is_some_and(|hi| key >= hi) {
                            self.done = true;
                            return Ok(None);
                        }
                        return Ok(Some(retracted));
                    }
                    None => self.in_block = false,
                }
            }
            match self.rows.next() {
                Some(row) => {
                    let (_, block) = row.map_err(storage(self.path, "scanning an index"))?;
                    self.reader.reset(block.value())?;
                    self.in_block = true;
                }
                None => self.done = true,
            }
        }
        Ok(None)
    }

    /// The key of the current entry.
    pub(crate) fn key(&self) -> &[u8] {
        self.reader.key()
    }
}

/// A decoded block: its keys in one buffer.
#[derive(Default)]
struct Block {
    arena: Vec<u8>,
    entries: Vec<(Range<usize>, u64)>,
}

impl Block {
    fn entries(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        self.entries
            .iter()
            .map(|(span, r)| (&self.arena[span.clone()], *r))
    }
}

/// An index table inside a write transaction.
pub(crate) struct BlockWriter<'t> {
    table: Table<'t, &'static [u8], &'static [u8]>,
    path: &'t Path,
    reader: BlockReader,
    packer: Packer,
    /// Entries appended ([`BlockWriter::append`]) and not yet written.
    tail: Block,
}

/// Entries an append holds before it writes the full blocks among them.
const APPEND_FLUSH_ENTRIES: usize = 16 * BLOCK_MAX_ENTRIES;

impl<'t> BlockWriter<'t> {
    pub(crate) fn new(table: Table<'t, &'static [u8], &'static [u8]>, path: &'t Path) -> Self {
        BlockWriter {
            table,
            path,
            reader: BlockReader::default(),
            packer: Packer::default(),
            tail: Block::default(),
        }
    }

    /// Whether the table has no block.
    pub(crate) fn is_empty(&self) -> Result<bool> {
        let err = || storage(self.path, "reading an index");
        Ok(self.table.first().map_err(err())?.is_none())
    }

    /// Appends an entry after every entry of the table (a bulk load into
    /// an empty table, keys in increasing order): full blocks are written
    /// as they fill, with no lookup and no rewrite. A key equal to the
    /// previous one is dropped. Returns whether the key was new.
    /// [`BlockWriter::finish_append`] writes the rest.
    pub(crate) fn append(&mut self, key: &[u8], retracted: u64) -> Result<bool> {
        if let Some((last, _)) = self.tail.entries.last() {
            let last = &self.tail.arena[last.clone()];
            if key <= last {
                if key == last {
                    return Ok(false);
                }
                return Err(Error::Storage {
                    context: format!(
                        "appending to an index out of key order ({})",
                        self.path.display()
                    ),
                    source: "a bulk load's keys must come in increasing order".into(),
                });
            }
        }
        let start = self.tail.arena.len();
        self.tail.arena.extend_from_slice(key);
        self.tail
            .entries
            .push((start..self.tail.arena.len(), retracted));
        if self.tail.entries.len() >= APPEND_FLUSH_ENTRIES {
            self.write_tail(false)?;
        }
        Ok(true)
    }

    /// Writes the appended entries not yet written.
    pub(crate) fn finish_append(&mut self) -> Result<()> {
        self.write_tail(true)
    }

    /// Writes the appended entries as blocks, all of them when `all`, else
    /// all but the last block (which may fill up with what comes next).
    fn write_tail(&mut self, all: bool) -> Result<()> {
        let tail = std::mem::take(&mut self.tail);
        let entries: Vec<(&[u8], u64)> = tail.entries().collect();
        let start = self.pack_blocks(&entries, !all)?;
        // Keep what is left (the buffers too) for the next appends.
        let mut kept = Block {
            arena: Vec::with_capacity(tail.arena.capacity()),
            entries: Vec::with_capacity(tail.entries.capacity()),
        };
        for (key, retracted) in &entries[start..] {
            let at = kept.arena.len();
            kept.arena.extend_from_slice(key);
            kept.entries.push((at..kept.arena.len(), *retracted));
        }
        drop(entries);
        self.tail = kept;
        Ok(())
    }

    fn read_block(&mut self, first: &[u8]) -> Result<Block> {
        let bytes = self
            .table
            .get(first)
            .map_err(storage(self.path, "reading an index block"))?
            .map(|guard| guard.value().to_vec())
            .unwrap_or_default();
        self.reader.reset(&bytes)?;
        let mut block = Block::default();
        while let Some(retracted) = self.reader.next_entry()? {
            let start = block.arena.len();
            block.arena.extend_from_slice(self.reader.key());
            block.entries.push((start..block.arena.len(), retracted));
        }
        Ok(block)
    }

    /// Writes sorted entries as blocks of about a page each, each keyed by
    /// its first entry.
    fn write_blocks(&mut self, entries: &[(&[u8], u64)]) -> Result<()> {
        self.pack_blocks(entries, false).map(drop)
    }

    /// [`Self::write_blocks`], but when `keep_last` the last block is not
    /// written (more entries may fill it); returns how many entries were.
    fn pack_blocks(&mut self, entries: &[(&[u8], u64)], keep_last: bool) -> Result<usize> {
        let mut start = 0;
        while start < entries.len() {
            let first = entries[start].0;
            let mut previous: &[u8] = &[];
            let n = self.packer.pack(
                &entries[start..],
                page_budget(first.len()),
                BLOCK_MAX_ENTRIES,
                |out, starts, &(key, retracted)| {
                    if starts {
                        previous = &[];
                    }
                    put_block_entry(out, previous, key, retracted);
                    previous = key;
                },
            );
            if keep_last && start + n == entries.len() {
                break;
            }
            self.table
                .insert(first, self.packer.stored())
                .map_err(storage(self.path, "writing an index block"))?;
            start += n;
        }
        Ok(start)
    }

    /// Entries `lo <= key < hi` (see [`EntryScan`]).
    pub(crate) fn scan(&self, lo: &[u8], hi: Option<&[u8]>) -> Result<EntryScan<'_>> {
        EntryScan::new(&self.table, self.path, lo, hi)
    }

    /// Removes one entry; `true` if it was there.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Result<bool> {
        let Some(first) = floor(&self.table, self.path, key)? else {
            return Ok(false);
        };
        let block = self.read_block(&first)?;
        let mut entries: Vec<(&[u8], u64)> = block.entries().collect();
        let Ok(i) = entries.binary_search_by(|(k, _)| (*k).cmp(key)) else {
            return Ok(false);
        };
        entries.remove(i);
        if i == 0 {
            // The block's key changes with its first entry.
            self.table
                .remove(first.as_slice())
                .map_err(storage(self.path, "removing an index block"))?;
        }
        self.write_blocks(&entries)?;
        Ok(true)
    }

    /// Merges sorted, distinct entries into the table (an entry with an
    /// existing key replaces it). Returns how many keys were new. Each run
    /// of entries falling between two blocks costs one block rewrite.
    pub(crate) fn merge_sorted(&mut self, run: &[(&[u8], u64)]) -> Result<u64> {
        let mut fresh = 0;
        let mut i = 0;
        while i < run.len() {
            let key = run[i].0;
            let first = floor(&self.table, self.path, key)?;
            let next_first: Option<Vec<u8>> = {
                let err = || storage(self.path, "finding an index block");
                let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (Bound::Excluded(key), Bound::Unbounded);
                match self.table.range::<&[u8]>(bounds).map_err(err())?.next() {
                    Some(row) => Some(row.map_err(err())?.0.value().to_vec()),
                    None => None,
                }
            };
            let j = i + run[i..]
                .partition_point(|(k, _)| next_first.as_deref().is_none_or(|next| *k < next));
            let block = match &first {
                Some(first) => self.read_block(first)?,
                None => Block::default(),
            };
            let mut merged: Vec<(&[u8], u64)> = Vec::with_capacity(block.entries.len() + j - i);
            let mut old = block.entries().peekable();
            let mut new = run[i..j].iter().copied().peekable();
            loop {
                match (old.peek(), new.peek()) {
                    (Some(o), Some(n)) if o.0 < n.0 => merged.extend(old.next()),
                    (Some(o), Some(n)) if o.0 == n.0 => {
                        old.next();
                        merged.extend(new.next());
                    }
                    (_, Some(_)) => {
                        fresh += 1;
                        merged.extend(new.next());
                    }
                    (Some(_), None) => merged.extend(old.next()),
                    (None, None) => break,
                }
            }
            self.write_blocks(&merged)?;
            i = j;
        }
        Ok(fresh)
    }

    /// Removes every entry `lo <= key < hi`.
    pub(crate) fn remove_range(&mut self, lo: &[u8], hi: Option<&[u8]>) -> Result<()> {
        let mut firsts: Vec<Vec<u8>> = floor(&self.table, self.path, lo)?.into_iter().collect();
        {
            let err = || storage(self.path, "finding index blocks");
            let rows = match hi {
                Some(hi) if hi <= lo => self.table.range::<&[u8]>(hi..hi),
                Some(hi) => self.table.range::<&[u8]>(lo..hi),
                None => self.table.range::<&[u8]>(lo..),
            }
            .map_err(err())?;
            for row in rows {
                let first = row.map_err(err())?.0.value().to_vec();
                if firsts.last() != Some(&first) {
                    firsts.push(first);
                }
            }
        }
        for first in firsts {
            let block = self.read_block(&first)?;
            let kept: Vec<(&[u8], u64)> = block
                .entries()
                .filter(|(k, _)| *k < lo || hi.is_some_and(|hi| *k >= hi))
                .collect();
            if kept.len() == block.entries.len() {
                continue;
            }
            self.table
                .remove(first.as_slice())
                .map_err(storage(self.path, "removing an index block"))?;
            self.write_blocks(&kept)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use redb::{Database, ReadableDatabase};

    use super::*;

    const TABLE: BlockTable = TableDefinition::new("t");

    /// Deterministic pseudo-random numbers (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Keys with shared prefixes, as index keys have.
        fn key(&mut self) -> Vec<u8> {
            let n = self.next() % 3000;
            key_of(n)
        }
    }

    fn key_of(n: u64) -> Vec<u8> {
        {
            let mut key = vec![b'k', (n / 1000) as u8];
            key.extend_from_slice(format!("{:05}", n % 1000).as_bytes());
            if n.is_multiple_of(7) {
                key.extend_from_slice(&[0, 0, 1]);
            }
            key
        }
    }

    fn collect(scan: &mut EntryScan<'_>) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        while let Some(r) = scan.next_entry().unwrap() {
            out.push((scan.key().to_vec(), r));
        }
        out
    }

    fn range_of(
        model: &BTreeMap<Vec<u8>, u64>,
        lo: &[u8],
        hi: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, u64)> {
        model
            .iter()
            .filter(|(k, _)| k.as_slice() >= lo && hi.is_none_or(|hi| k.as_slice() < hi))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    #[test]
    fn block_table_matches_a_sorted_map() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks.redb");
        let db = Database::create(&path).unwrap();
        let mut model: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
        let mut rng = Rng(7);
        for round in 0..40 {
            let wtx = db.begin_write().unwrap();
            {
                let mut w = BlockWriter::new(wtx.open_table(TABLE).unwrap(), &path);
                for _ in 0..60 {
                    match rng.next() % 10 {
                        0..=3 => {
                            let (key, r) = (rng.key(), rng.next() % 300);
                            let fresh = w.merge_sorted(&[(&key, r)]).unwrap() == 1;
                            assert_eq!(fresh, model.insert(key, r).is_none());
                        }
                        4..=5 => {
                            let key = rng.key();
                            assert_eq!(w.remove(&key).unwrap(), model.remove(&key).is_some());
                        }
                        6..=7 => {
                            let mut run: Vec<(Vec<u8>, u64)> = (0..rng.next() % 400)
                                .map(|_| (rng.key(), rng.next() % 5))
                                .collect();
                            run.sort();
                            run.dedup_by(|x, y| x.0 == y.0);
                            let refs: Vec<(&[u8], u64)> =
                                run.iter().map(|(k, r)| (k.as_slice(), *r)).collect();
                            let expected_new =
                                run.iter().filter(|(k, _)| !model.contains_key(k)).count() as u64;
                            assert_eq!(w.merge_sorted(&refs).unwrap(), expected_new);
                            model.extend(run);
                        }
                        8 => {
                            let n = rng.next() % 3000;
                            let (lo, hi) = (key_of(n), key_of(n + rng.next() % 100));
                            w.remove_range(&lo, Some(&hi)).unwrap();
                            model.retain(|k, _| k < &lo || k >= &hi);
                        }
                        _ => {
                            let lo = rng.key();
                            let got = collect(&mut w.scan(&lo, None).unwrap());
                            assert_eq!(got, range_of(&model, &lo, None), "round {round}");
                        }
                    }
                }
            }
            wtx.commit().unwrap();
            // Every block respects the size limits and the whole table reads
            // back as the model, from a read transaction too.
            let rtx = db.begin_read().unwrap();
            let table = rtx.open_table(TABLE).unwrap();
            let all = collect(&mut EntryScan::new(&table, &path, &[], None).unwrap());
            assert_eq!(all, range_of(&model, &[], None), "round {round}");
            let (lo, hi) = (rng.key(), rng.key());
            let part = collect(&mut EntryScan::new(&table, &path, &lo, Some(&hi)).unwrap());
            assert_eq!(part, range_of(&model, &lo, Some(&hi)), "round {round}");
            let mut reader = BlockReader::default();
            for row in table.iter().unwrap() {
                let (first, block) = row.unwrap();
                reader.reset(block.value()).unwrap();
                let mut n = 0;
                while reader.next_entry().unwrap().is_some() {
                    if n == 0 {
                        assert_eq!(
                            reader.key(),
                            first.value(),
                            "a block is keyed by its first entry"
                        );
                    }
                    n += 1;
                }
                assert!((1..=BLOCK_MAX_ENTRIES).contains(&n), "block of {n} entries");
            }
        }
        assert!(
            model.len() > 500,
            "the test exercises many blocks ({} keys)",
            model.len()
        );
    }
}
