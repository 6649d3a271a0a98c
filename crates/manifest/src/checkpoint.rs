//! `checkpoint.edn`: progress of a running backup, rewritten as chunks are
//! stored (how often: `datacamp-ops`'s backup), so that an interrupted
//! backup can resume instead of restarting.

use std::collections::{BTreeMap, BTreeSet};

use datacamp_datom::edn::FormKind;
use datacamp_datom::Keyword;

use crate::chain::{BackupKind, ChainInfo};
use crate::edn::{as_i64, items_of, parse_document, Edn, Fields};
use crate::error::{Document, Result};
use crate::manifest::{ChunkInfo, FORMAT_VERSION};

/// `:progress/total-chunks`: `:unknown` while the datoms are still being
/// streamed, then the count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TotalChunks {
    /// `:unknown`.
    #[default]
    Unknown,
    /// A known number of chunks.
    Known(u64),
}

/// Where a chunk ends in the snapshot's EAVT datom stream, so a resumed
/// backup can continue right after it.
///
/// The datoms of one entity may span two chunks, so the end is given both
/// as an absolute offset and as "the first `last_eid_datoms` datoms of
/// entity `last_eid`": a resume can seek EAVT to `last_eid`, skip that many
/// datoms and go on, without re-reading everything before.
///
/// In an incremental or history backup the stream is the log, keyed by
/// transaction: there `last_eid` holds the transaction of the chunk's last
/// datom and `last_eid_datoms` how many datoms of that transaction are in
/// this chunk and the chunks before it (a transaction may span chunks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResumePoint {
    /// `:datacamp/end-offset`: datoms in this chunk and all chunks before
    /// it (the stream position right after the chunk).
    pub datom_offset: u64,
    /// `:datacamp/last-eid`: the entity of the chunk's last datom.
    pub last_eid: i64,
    /// `:datacamp/last-eid-datoms`: how many datoms of `last_eid` are in
    /// this chunk and the chunks before it.
    pub last_eid_datoms: u64,
}

/// A chunk that is safely stored: its manifest entry plus where it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedChunk {
    /// The entry the manifest will carry.
    pub info: ChunkInfo,
    /// Where it ends in the datom stream.
    pub end: ResumePoint,
}

/// Datacamp's own checkpoint keys (under `:datacamp/…`), what a resume
/// needs beyond the Clojure library's progress counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointDatacamp {
    /// `:datacamp/database-id`.
    pub database_id: Option<String>,
    /// `:datacamp/basis-tx`: the snapshot being backed up; a resume must
    /// read the database as of this transaction.
    pub basis_tx: Option<i64>,
    /// `:datacamp/chunk-size`: chunk boundaries depend on it, so a resume
    /// must use the same.
    pub chunk_size: Option<u64>,
    /// `:datacamp/compression-level`.
    pub compression_level: Option<u32>,
    /// `:datacamp/compression`: `:gzip` or `:none`, so that a resume
    /// compresses as the backup started (a level of 0 alone cannot tell
    /// gzip's store level from no compression). Absent in checkpoints
    /// written before it was recorded.
    pub compression: Option<Keyword>,
    /// `:datacamp/chunks`: every completed chunk with its end position, in
    /// id order.
    pub chunks: Vec<CompletedChunk>,
    /// `:datacamp/backup-type`: what is being written (absent: full, as in
    /// checkpoints written before other kinds existed).
    pub kind: Option<BackupKind>,
    /// `:datacamp/chain`: for incremental and history backups, the chain
    /// fields known at the start (identity, base, base basis tx), which a
    /// resume continues with.
    pub chain: Option<ChainInfo>,
}

/// Where a resumed backup starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeFrom {
    /// The id of the first chunk still to write.
    pub next_chunk_id: u64,
    /// The end of the chunk before it (`None`: start of the stream).
    pub after: Option<ResumePoint>,
}

/// The typed `checkpoint.edn`.
///
/// Besides the Clojure library's keys it carries, under `:datacamp/…`,
/// what a resume needs: `:datacamp/database-id`, `:datacamp/basis-tx` (the
/// snapshot to keep reading), `:datacamp/chunk-size` and
/// `:datacamp/compression-level` and `:datacamp/compression` (to cut and
/// compress identically), and
/// `:datacamp/chunks`, one map per stored chunk: its manifest entry
/// (`:chunk/id`, `:chunk/checksum`, …) plus `:datacamp/end-offset`,
/// `:datacamp/last-eid` and `:datacamp/last-eid-datoms` (see
/// [`ResumePoint`]). The Clojure reader ignores them.
///
/// Reading is as tolerant as [`crate::Manifest::from_edn`]; only
/// `:checkpoint/backup-id` is required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// `:checkpoint/version`, default `"1.0.0"`.
    pub version: String,
    /// `:checkpoint/operation`, default `:backup`.
    pub operation: Keyword,
    /// `:checkpoint/backup-id` (required).
    pub backup_id: String,
    /// `:checkpoint/started-at`, ms since the epoch.
    pub started_at: Option<i64>,
    /// `:checkpoint/updated-at`, ms since the epoch.
    pub updated_at: Option<i64>,
    /// `:progress/total-chunks`.
    pub total_chunks: TotalChunks,
    /// `:progress/completed`: how many chunks are done.
    pub completed: u64,
    /// `:progress/current-chunk`.
    pub current_chunk: Option<u64>,
    /// `:state/completed-chunks`, a set of chunk ids.
    pub completed_chunks: BTreeSet<u64>,
    /// `:state/failed-chunks`: chunk id → why (a value that is not a string
    /// is kept as its EDN text).
    pub failed_chunks: BTreeMap<u64, String>,
    /// `:resume/token`.
    pub resume_token: Option<String>,
    /// `:resume/retry-count`.
    pub retry_count: u64,
    /// The `:datacamp/…` keys.
    pub datacamp: CheckpointDatacamp,
}

impl Checkpoint {
    /// A fresh checkpoint for a backup that has written nothing yet.
    pub fn new(backup_id: impl Into<String>, now_ms: i64) -> Checkpoint {
        Checkpoint {
            version: FORMAT_VERSION.to_string(),
            operation: Keyword::parse("backup"),
            backup_id: backup_id.into(),
            started_at: Some(now_ms),
            updated_at: Some(now_ms),
            total_chunks: TotalChunks::Unknown,
            completed: 0,
            current_chunk: None,
            completed_chunks: BTreeSet::new(),
            failed_chunks: BTreeMap::new(),
            resume_token: None,
            retry_count: 0,
            datacamp: CheckpointDatacamp::default(),
        }
    }

    /// Records a stored chunk: adds it to the completed set and the
    /// `:datacamp/chunks` list (kept in id order, replacing an earlier
    /// record of the same id), clears a failure for it, and updates the
    /// counters.
    pub fn record_completed(&mut self, chunk: CompletedChunk, now_ms: i64) {
        let id = chunk.info.id;
        self.failed_chunks.remove(&id);
        self.completed_chunks.insert(id);
        let list = &mut self.datacamp.chunks;
        match list.binary_search_by_key(&id, |c| c.info.id) {
            Ok(i) => list[i] = chunk,
            Err(i) => list.insert(i, chunk),
        }
        self.completed = self.completed_chunks.len() as u64;
        self.current_chunk = Some(id);
        self.updated_at = Some(now_ms);
    }

    /// Where to resume: after the longest run of completed chunks
    /// `0, 1, 2, …` (with parallel uploads, a later chunk may be done while
    /// an earlier one is not; those later chunks are written again).
    pub fn resume_from(&self) -> ResumeFrom {
        let mut from = ResumeFrom::default();
        for chunk in &self.datacamp.chunks {
            if chunk.info.id != from.next_chunk_id {
                break;
            }
            from = ResumeFrom {
                next_chunk_id: from.next_chunk_id + 1,
                after: Some(chunk.end),
            };
        }
        from
    }

    fn to_tree(&self) -> Edn {
        let mut e = vec![
            (Edn::kw("checkpoint/version"), Edn::str(&self.version)),
            (
                Edn::kw("checkpoint/operation"),
                Edn::keyword(&self.operation),
            ),
            (Edn::kw("checkpoint/backup-id"), Edn::str(&self.backup_id)),
            (
                Edn::kw("checkpoint/started-at"),
                Edn::opt(self.started_at, Edn::Inst),
            ),
            (
                Edn::kw("checkpoint/updated-at"),
                Edn::opt(self.updated_at, Edn::Inst),
            ),
            (
                Edn::kw("_comment"),
                Edn::str("Resume checkpoint - DO NOT EDIT MANUALLY"),
            ),
            (
                Edn::kw("progress/total-chunks"),
                match self.total_chunks {
                    TotalChunks::Unknown => Edn::kw("unknown"),
                    TotalChunks::Known(n) => Edn::u64(n),
                },
            ),
            (Edn::kw("progress/completed"), Edn::u64(self.completed)),
            (
                Edn::kw("progress/current-chunk"),
                Edn::opt(self.current_chunk, Edn::u64),
            ),
            (
                Edn::kw("state/completed-chunks"),
                Edn::Set(
                    self.completed_chunks
                        .iter()
                        .map(|&id| Edn::u64(id))
                        .collect(),
                ),
            ),
            (
                Edn::kw("state/failed-chunks"),
                Edn::Map(
                    self.failed_chunks
                        .iter()
                        .map(|(&id, why)| (Edn::u64(id), Edn::str(why)))
                        .collect(),
                ),
            ),
            (Edn::kw("state/s3-multipart"), Edn::Nil),
            (
                Edn::kw("resume/token"),
                Edn::opt(self.resume_token.as_deref(), Edn::str),
            ),
            (Edn::kw("resume/retry-count"), Edn::u64(self.retry_count)),
        ];
        let d = &self.datacamp;
        if let Some(id) = &d.database_id {
            e.push((Edn::kw("datacamp/database-id"), Edn::str(id)));
        }
        if let Some(tx) = d.basis_tx {
            e.push((Edn::kw("datacamp/basis-tx"), Edn::Int(tx)));
        }
        if let Some(size) = d.chunk_size {
            e.push((Edn::kw("datacamp/chunk-size"), Edn::u64(size)));
        }
        if let Some(level) = d.compression_level {
            e.push((
                Edn::kw("datacamp/compression-level"),
                Edn::Int(i64::from(level)),
            ));
        }
        if let Some(compression) = &d.compression {
            e.push((Edn::kw("datacamp/compression"), Edn::keyword(compression)));
        }
        if let Some(kind) = d.kind {
            e.push((Edn::kw("datacamp/backup-type"), Edn::kw(kind.name())));
        }
        if let Some(chain) = &d.chain {
            e.push((Edn::kw("datacamp/chain"), chain.to_edn()));
        }
        let chunks = d
            .chunks
            .iter()
            .map(|c| {
                let mut entries = c.info.entries();
                entries.push((Edn::kw("datacamp/end-offset"), Edn::u64(c.end.datom_offset)));
                entries.push((Edn::kw("datacamp/last-eid"), Edn::Int(c.end.last_eid)));
                entries.push((
                    Edn::kw("datacamp/last-eid-datoms"),
                    Edn::u64(c.end.last_eid_datoms),
                ));
                Edn::Map(entries)
            })
            .collect();
        e.push((Edn::kw("datacamp/chunks"), Edn::Vector(chunks)));
        Edn::Map(e)
    }

    /// The checkpoint as EDN text laid out like `clojure.pprint` output.
    pub fn to_edn(&self) -> String {
        self.to_tree().pretty()
    }

    /// Reads a checkpoint written by Datacamp (Rust or Clojure).
    pub fn from_edn(text: &str) -> Result<Checkpoint> {
        let root = parse_document(Document::Checkpoint, text)?;
        let f = Fields::top(Document::Checkpoint, text, &root)?;

        let total_chunks = match f.get("progress/total-chunks") {
            None => TotalChunks::Unknown,
            Some(v) if matches!(&v.kind, FormKind::Keyword(k) if k.as_str() == "unknown") => {
                TotalChunks::Unknown
            }
            Some(v) => match as_i64(v).and_then(|n| u64::try_from(n).ok()) {
                Some(n) => TotalChunks::Known(n),
                None => {
                    return Err(f.wrong_type("progress/total-chunks", ":unknown or a count", v))
                }
            },
        };

        let completed_chunks = match f.get("state/completed-chunks") {
            None => BTreeSet::new(),
            Some(v) => items_of(v)
                .ok_or_else(|| f.wrong_type("state/completed-chunks", "a set of chunk ids", v))?
                .into_iter()
                .map(|id| {
                    as_i64(id)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| {
                            f.wrong_type("state/completed-chunks", "a set of chunk ids", v)
                        })
                })
                .collect::<Result<_>>()?,
        };

        let failed_chunks = match f.entries("state/failed-chunks")? {
            None => BTreeMap::new(),
            Some(m) => m
                .iter()
                .map(|(k, why)| {
                    let id = as_i64(k)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| {
                            f.invalid(
                                "state/failed-chunks",
                                format!("expected chunk ids as keys, found {}", f.describe(k)),
                            )
                        })?;
                    let why = match &why.kind {
                        FormKind::String(s) => s.clone(),
                        _ => f.written(why),
                    };
                    Ok((id, why))
                })
                .collect::<Result<_>>()?,
        };

        let chunks = match f.items("datacamp/chunks")? {
            None => Vec::new(),
            Some(values) => {
                let mut chunks = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let c = f.map_item("datacamp/chunks", i, v)?;
                        Ok(CompletedChunk {
                            info: ChunkInfo::read(&c)?,
                            end: ResumePoint {
                                datom_offset: c.required(
                                    "datacamp/end-offset",
                                    c.u64("datacamp/end-offset")?,
                                )?,
                                last_eid: c
                                    .required("datacamp/last-eid", c.i64("datacamp/last-eid")?)?,
                                last_eid_datoms: c.required(
                                    "datacamp/last-eid-datoms",
                                    c.u64("datacamp/last-eid-datoms")?,
                                )?,
                            },
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                chunks.sort_by_key(|c| c.info.id);
                chunks
            }
        };

        let defaults = Checkpoint::new("", 0);
        Ok(Checkpoint {
            version: f.string("checkpoint/version")?.unwrap_or(defaults.version),
            operation: f
                .keyword("checkpoint/operation")?
                .unwrap_or(defaults.operation),
            backup_id: f.required("checkpoint/backup-id", f.string("checkpoint/backup-id")?)?,
            started_at: f.inst("checkpoint/started-at")?,
            updated_at: f.inst("checkpoint/updated-at")?,
            total_chunks,
            completed: f
                .u64("progress/completed")?
                .unwrap_or(completed_chunks.len() as u64),
            current_chunk: f.u64("progress/current-chunk")?,
            completed_chunks,
            failed_chunks,
            resume_token: f.string("resume/token")?,
            retry_count: f.u64("resume/retry-count")?.unwrap_or(0),
            datacamp: CheckpointDatacamp {
                database_id: f.string("datacamp/database-id")?,
                basis_tx: f.i64("datacamp/basis-tx")?,
                chunk_size: f.u64("datacamp/chunk-size")?,
                compression_level: f.u32("datacamp/compression-level")?,
                compression: f.keyword("datacamp/compression")?,
                chunks,
                kind: match f.keyword("datacamp/backup-type")? {
                    None => None,
                    Some(k) => Some(BackupKind::parse(k.as_str()).ok_or_else(|| {
                        f.invalid(
                            "datacamp/backup-type",
                            format!("expected :full, :incremental or :history, found {k}"),
                        )
                    })?),
                },
                chain: match f.map("datacamp/chain")? {
                    Some(chain) => Some(ChainInfo::read(&chain)?),
                    None => None,
                },
            },
        })
    }
}
