//! Bounded-memory sorting for bulk loads: byte keys are collected in memory
//! up to a budget, sorted and spilled as a *run* to an anonymous temporary
//! file beside the database, and [`RunSorter::finish`] merges the runs in
//! key order.
//!
//! A spill file has no name (`O_TMPFILE`, or created and unlinked at once):
//! the operating system reclaims it when it is closed or when the process
//! dies, so a load that fails or is killed leaves no spill file behind.
//!
//! Run file layout: each key as a LEB128 length and its bytes, in order.
//!
//! Sorting is the load's largest cost, and a restore's keys come nearly
//! sorted: a backup is an EAVT scan, so the AEVT keys of one attribute and
//! the log keys of one tx arrive already in key order. A caller that knows
//! this pushes keys with [`RunSorter::push_grouped`], naming the group
//! (attribute, tx); a run is then ordered by sorting the groups by their
//! first key and placing the entries group by group (linear, stable), and
//! checked afterwards, falling back to a full sort if the hint was wrong.
//! The merge takes keys from one run for as long as they come before
//! every other run's head, so runs that follow each other cost one
//! compare per key.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use datacamp_datom::{Error, Result};

use crate::hash::FxHashMap;

/// Bytes of keys a sorter holds in memory before it spills a run. Grouped
/// runs cost no more to order when small, and the merge's memory does not
/// depend on the number of runs, so this only trades memory (up to four
/// sorters fill at once) against the number of spill files.
pub(crate) const RUN_BUDGET_BYTES: usize = 4 * 1024 * 1024;
/// Write buffer of a spill, and the largest read buffer of a run during
/// the merge.
const RUN_READ_BUFFER: usize = 64 * 1024;
/// The smallest read buffer of a run during the merge.
const MIN_RUN_READ_BUFFER: usize = 4 * 1024;
/// The read buffers of all runs of one merge together: a merge's memory
/// must not grow with the number of runs, i.e. with the database (a
/// 100 M-datom load spills hundreds of runs).
const MERGE_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// The read buffer of each of `runs` runs in one merge.
fn merge_buffer(runs: usize) -> usize {
    (MERGE_BUFFER_BYTES / runs.max(1)).clamp(MIN_RUN_READ_BUFFER, RUN_READ_BUFFER)
}

/// Collects keys, in any order, into sorted runs.
pub(crate) struct RunSorter {
    /// Where spill files go (the database's directory).
    dir: PathBuf,
    /// What the keys are, for error messages.
    what: &'static str,
    budget: usize,
    arena: Vec<u8>,
    entries: Vec<Range<usize>>,
    /// The group of each entry (an index into `firsts`) while every key
    /// has come with a group ([`RunSorter::push_grouped`]).
    groups: Vec<u32>,
    /// Per group of the run in memory: its caller's id and its first entry.
    firsts: Vec<(u64, usize)>,
    group_ids: FxHashMap<u64, u32>,
    /// Every key of the run in memory came with a group.
    grouped: bool,
    runs: Vec<File>,
}

impl RunSorter {
    pub(crate) fn new(dir: &Path, what: &'static str, budget: usize) -> Self {
        RunSorter {
            dir: dir.to_owned(),
            what,
            budget,
            arena: Vec::new(),
            entries: Vec::new(),
            groups: Vec::new(),
            firsts: Vec::new(),
            group_ids: FxHashMap::default(),
            grouped: true,
            runs: Vec::new(),
        }
    }

    fn io(&self, source: std::io::Error) -> Error {
        Error::Io {
            path: format!(
                "{} (a temporary sort run of {} for a load)",
                self.dir.display(),
                self.what
            ),
            source,
        }
    }

    /// Adds one key, written by `encode`; spills a run when the budget is
    /// reached.
    pub(crate) fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.grouped = false;
        self.push_entry(encode)
    }

    /// Adds one key of group `group`: the caller expects the keys of one
    /// group to come in key order, and the groups' keys not to interleave
    /// (a hint: a run it does not hold for is fully sorted).
    pub(crate) fn push_grouped(
        &mut self,
        group: u64,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        if self.grouped {
            let next = self.firsts.len();
            let entry = self.entries.len();
            let id = *self.group_ids.entry(group).or_insert_with(|| {
                // At most one group per entry, so this fits the budget.
                u32::try_from(next).unwrap_or(u32::MAX)
            });
            if id as usize == next {
                self.firsts.push((group, entry));
            }
            self.groups.push(id);
        }
        self.push_entry(encode)
    }

    fn push_entry(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        let start = self.arena.len();
        encode(&mut self.arena);
        self.entries.push(start..self.arena.len());
        // Each entry also costs its range and group in memory.
        if self.arena.len() + self.entries.len() * 24 >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn sort(&mut self) {
        if !(self.grouped && self.place_by_group() && self.is_sorted()) {
            let arena = &self.arena;
            self.entries
                .sort_unstable_by(|x, y| arena[x.clone()].cmp(&arena[y.clone()]));
        }
        self.groups.clear();
        self.firsts.clear();
        self.group_ids.clear();
        self.grouped = true;
    }

    /// Orders the entries group by group, groups by their first key,
    /// keeping the push order inside a group. `false` if it could not.
    fn place_by_group(&mut self) -> bool {
        if self.groups.len() != self.entries.len() {
            return false;
        }
        let arena = &self.arena;
        let entries = &self.entries;
        let mut order: Vec<usize> = (0..self.firsts.len()).collect();
        order.sort_unstable_by(|&x, &y| {
            arena[entries[self.firsts[x].1].clone()].cmp(&arena[entries[self.firsts[y].1].clone()])
        });
        // Counting sort: where each group's entries start.
        let mut counts = vec![0usize; self.firsts.len()];
        for &g in &self.groups {
            counts[g as usize] += 1;
        }
        let mut starts = vec![0usize; self.firsts.len()];
        let mut at = 0;
        for &g in &order {
            starts[g] = at;
            at += counts[g];
        }
        let mut placed = vec![0..0; self.entries.len()];
        for (span, &g) in self.entries.iter().zip(&self.groups) {
            placed[starts[g as usize]] = span.clone();
            starts[g as usize] += 1;
        }
        self.entries = placed;
        true
    }

    fn is_sorted(&self) -> bool {
        self.entries
            .windows(2)
            .all(|w| self.arena[w[0].clone()] <= self.arena[w[1].clone()])
    }

    /// Writes the keys in memory as one sorted run and forgets them.
    fn spill(&mut self) -> Result<()> {
        self.sort();
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| self.io(e))?;
        let mut out = BufWriter::with_capacity(RUN_READ_BUFFER, file);
        let mut len = Vec::with_capacity(10);
        for span in &self.entries {
            len.clear();
            put_len(&mut len, span.len());
            out.write_all(&len)
                .and_then(|()| out.write_all(&self.arena[span.clone()]))
                .map_err(|e| self.io(e))?;
        }
        let mut file = out.into_inner().map_err(|e| self.io(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        self.runs.push(file);
        self.arena.clear();
        self.entries.clear();
        Ok(())
    }

    /// The keys pushed, merged in order (a key pushed twice comes twice).
    pub(crate) fn finish(mut self) -> Result<Merged> {
        self.sort();
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        let buffer = merge_buffer(self.runs.len());
        for file in std::mem::take(&mut self.runs) {
            sources.push(Source::Run(BufReader::with_capacity(buffer, file)));
        }
        sources.push(Source::Memory {
            arena: std::mem::take(&mut self.arena),
            entries: std::mem::take(&mut self.entries).into_iter(),
        });
        let mut merged = Merged {
            dir: self.dir,
            what: self.what,
            sources,
            heap: BinaryHeap::new(),
            current: Vec::new(),
            current_source: None,
            spare: Vec::new(),
        };
        for i in 0..merged.sources.len() {
            merged.refill(i)?;
        }
        Ok(merged)
    }
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Where merged keys come from: a spilled run or the last, in-memory one.
enum Source {
    Run(BufReader<File>),
    Memory {
        arena: Vec<u8>,
        entries: std::vec::IntoIter<Range<usize>>,
    },
}

impl Source {
    /// The next key of this source into `out`; `false` at its end.
    fn next_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<bool> {
        out.clear();
        match self {
            Source::Memory { arena, entries } => match entries.next() {
                Some(span) => {
                    out.extend_from_slice(&arena[span]);
                    Ok(true)
                }
                None => Ok(false),
            },
            Source::Run(reader) => {
                let Some(len) = read_len(reader)? else {
                    return Ok(false);
                };
                // This process wrote the run; a length beyond the budget
                // would mean the file was changed under it.
                if len > RUN_BUDGET_BYTES.max(16 * 1024 * 1024) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("a run key of {len} bytes is longer than any key written"),
                    ));
                }
                out.resize(len, 0);
                reader.read_exact(out)?;
                Ok(true)
            }
        }
    }
}

/// A LEB128 length, or `None` at the end of the run.
fn read_len(reader: &mut impl Read) -> std::io::Result<Option<usize>> {
    let mut n = 0usize;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        if reader.read(&mut byte)? == 0 {
            return if shift == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        n |= usize::from(byte[0] & 0x7F) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(Some(n));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a run key length is too long",
    ))
}

/// The keys of every run in order: a k-way merge holding one key per run.
pub(crate) struct Merged {
    dir: PathBuf,
    what: &'static str,
    sources: Vec<Source>,
    /// The head key of each source that has one, but the current key's.
    heap: BinaryHeap<Reverse<(Vec<u8>, usize)>>,
    /// The key last returned, and the source it came from.
    current: Vec<u8>,
    current_source: Option<usize>,
    /// A key buffer to reuse (no allocation per key).
    spare: Vec<u8>,
}

impl Merged {
    /// Reads the next key of source `i` into `key`; `false` at its end.
    fn read(&mut self, i: usize, key: &mut Vec<u8>) -> Result<bool> {
        self.sources[i].next_into(key).map_err(|source| Error::Io {
            path: format!(
                "{} (a temporary sort run of {} for a load)",
                self.dir.display(),
                self.what
            ),
            source,
        })
    }

    fn refill(&mut self, i: usize) -> Result<()> {
        let mut key = Vec::new();
        if self.read(i, &mut key)? {
            self.heap.push(Reverse((key, i)));
        }
        Ok(())
    }

    /// The next key in order, or `None` at the end.
    pub(crate) fn next_key(&mut self) -> Result<Option<&[u8]>> {
        if let Some(i) = self.current_source.take() {
            let mut key = std::mem::take(&mut self.spare);
            if self.read(i, &mut key)? {
                // Still first: no heap operation (runs of a restore follow
                // each other in long stretches).
                if self
                    .heap
                    .peek()
                    .is_none_or(|Reverse((head, _))| key <= *head)
                {
                    self.spare = std::mem::replace(&mut self.current, key);
                    self.current_source = Some(i);
                    return Ok(Some(&self.current));
                }
                self.heap.push(Reverse((key, i)));
            } else {
                self.spare = key;
            }
        }
        let Some(Reverse((key, i))) = self.heap.pop() else {
            return Ok(None);
        };
        self.spare = std::mem::replace(&mut self.current, key);
        self.current_source = Some(i);
        Ok(Some(&self.current))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Grouped pushes come back in key order whether the hint holds (each
    /// group's keys in order: placed group by group) or not (a group out of
    /// order, or groups whose keys interleave: fully sorted instead).
    #[test]
    fn grouped_runs_merge_in_order_whether_the_hint_holds_or_not() {
        let dir = tempfile::tempdir().unwrap();
        for hint_holds in [true, false] {
            let mut sorter = RunSorter::new(dir.path(), "test keys", 4096);
            let mut expected = Vec::new();
            for n in 0..3_000u64 {
                // Group g's keys start with g; in order inside a group
                // unless the hint is to fail.
                let group = n % 7;
                let within = if hint_holds { n } else { 3_000 - n };
                let mut key = group.to_be_bytes().to_vec();
                key.extend_from_slice(&within.to_be_bytes());
                expected.push(key.clone());
                sorter
                    .push_grouped(group, |out| out.extend_from_slice(&key))
                    .unwrap();
            }
            // Interleaving groups: one id for keys of two prefixes.
            for n in 0..50u64 {
                let key = [(n % 2) as u8 * 200, n as u8].to_vec();
                expected.push(key.clone());
                sorter
                    .push_grouped(99, |out| out.extend_from_slice(&key))
                    .unwrap();
            }
            expected.sort();
            let mut merged = sorter.finish().unwrap();
            let mut got = Vec::new();
            while let Some(key) = merged.next_key().unwrap() {
                got.push(key.to_vec());
            }
            assert!(got == expected, "hint holds: {hint_holds}");
        }
    }

    /// Keys spilled in many runs come back sorted, duplicates kept, and the
    /// directory holds no spill file (they have no name).
    #[test]
    fn runs_merge_in_order_and_leave_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut sorter = RunSorter::new(dir.path(), "test keys", 4096);
        let mut expected = Vec::new();
        let mut x = 7u64;
        for _ in 0..5_000 {
            x = datacamp_datom::synthetic::splitmix64(x);
            let key = (x % 1000).to_be_bytes().to_vec();
            expected.push(key.clone());
            sorter.push(|out| out.extend_from_slice(&key)).unwrap();
        }
        assert!(sorter.runs.len() > 10, "{} runs", sorter.runs.len());
        expected.sort();
        let mut merged = sorter.finish().unwrap();
        let mut got = Vec::new();
        while let Some(key) = merged.next_key().unwrap() {
            got.push(key.to_vec());
        }
        assert_eq!(got, expected);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
