//! `manifest.edn`: what a backup holds, written last (before the
//! `complete.marker`) and read first by list, verify and restore.

use std::collections::BTreeSet;
use std::fmt;

use datacamp_datom::edn::FormKind;
use datacamp_datom::{DbConfig, Keyword, SchemaFlexibility};

use crate::chain::{identity_problem, BackupKind, ChainInfo};
use crate::edn::{parse_document, Edn, Fields};
use crate::error::{Document, Error, Result};
use crate::id::{short_id, validate_id, DEFAULT_DATABASE_ID};
use crate::IdKind;
use datacamp_datom::TX0;

/// The version this crate writes into `:backup/version`,
/// `:format/version` and `:checkpoint/version`.
pub const FORMAT_VERSION: &str = "1.0.0";

/// The Datacamp version written into `:datacamp/version`.
pub const DATACAMP_VERSION: &str = env!("CARGO_PKG_VERSION");

/// A `[min-tx max-tx]` range; either end may be unknown (`nil`), as in the
/// reference's `:stats/tx-range [nil nil]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TxRange {
    /// The smallest transaction id, if known.
    pub min: Option<i64>,
    /// The largest transaction id, if known.
    pub max: Option<i64>,
}

impl TxRange {
    /// Both ends known.
    pub fn new(min: i64, max: i64) -> TxRange {
        TxRange {
            min: Some(min),
            max: Some(max),
        }
    }

    fn to_edn(self) -> Edn {
        Edn::Vector(vec![
            Edn::opt(self.min, Edn::Int),
            Edn::opt(self.max, Edn::Int),
        ])
    }

    fn read(f: &Fields<'_>, key: &str) -> Result<TxRange> {
        Ok(f.tx_range(key)?
            .map_or(TxRange::default(), |(min, max)| TxRange { min, max }))
    }
}

/// One entry of `:chunks`.
///
/// Only `:chunk/id` and `:chunk/checksum` are required when reading; any
/// other key may be absent or `nil` (Datacamp itself writes a `nil`
/// `:chunk/max-eid` for a chunk holding only transaction entities, and
/// older or hand-made manifests leave keys out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// `:chunk/id`, the `N` of `datoms-N.fressian.gz`.
    pub id: u64,
    /// `:chunk/tx-range`.
    pub tx_range: TxRange,
    /// `:chunk/max-eid`: Datacamp writes the largest entity id in the chunk
    /// that is not a transaction id; the Clojure library writes the largest
    /// `:e` of all its datoms, transaction entities included.
    pub max_eid: Option<i64>,
    /// `:chunk/datom-count`.
    pub datom_count: Option<u64>,
    /// `:chunk/size-bytes`, the compressed size.
    pub size_bytes: Option<u64>,
    /// `:chunk/checksum`: SHA-256 of the compressed bytes, 64 lowercase hex
    /// digits (upper case is accepted when reading and lowered).
    pub checksum: String,
    /// `:chunk/s3-etag`, as the store returned it.
    pub s3_etag: Option<String>,
    /// `:chunk/s3-key`: where the chunk is. The Clojure library writes it
    /// relative to the backup folder for directory targets and as the full
    /// bucket key for S3 targets; `datacamp-storage`'s layout resolves both.
    /// `None` means the layout's default name for [`ChunkInfo::id`].
    pub s3_key: Option<String>,
    /// `:datacamp/uncompressed-bytes`: the size of the Fressian document
    /// before gzip.
    pub uncompressed_bytes: Option<u64>,
}

impl ChunkInfo {
    /// A chunk with only its id and checksum; fill in the rest as known.
    pub fn new(id: u64, checksum: impl Into<String>) -> ChunkInfo {
        ChunkInfo {
            id,
            tx_range: TxRange::default(),
            max_eid: None,
            datom_count: None,
            size_bytes: None,
            checksum: checksum.into(),
            s3_etag: None,
            s3_key: None,
            uncompressed_bytes: None,
        }
    }

    pub(crate) fn entries(&self) -> Vec<(Edn, Edn)> {
        let mut e = vec![
            (Edn::kw("chunk/id"), Edn::u64(self.id)),
            (Edn::kw("chunk/tx-range"), self.tx_range.to_edn()),
            (Edn::kw("chunk/max-eid"), Edn::opt(self.max_eid, Edn::Int)),
            (
                Edn::kw("chunk/datom-count"),
                Edn::opt(self.datom_count, Edn::u64),
            ),
            (
                Edn::kw("chunk/size-bytes"),
                Edn::opt(self.size_bytes, Edn::u64),
            ),
            (Edn::kw("chunk/checksum"), Edn::str(&self.checksum)),
            (
                Edn::kw("chunk/s3-etag"),
                Edn::opt(self.s3_etag.as_deref(), Edn::str),
            ),
            (
                Edn::kw("chunk/s3-key"),
                Edn::opt(self.s3_key.as_deref(), Edn::str),
            ),
        ];
        if let Some(n) = self.uncompressed_bytes {
            e.push((Edn::kw("datacamp/uncompressed-bytes"), Edn::u64(n)));
        }
        e
    }

    pub(crate) fn read(f: &Fields<'_>) -> Result<ChunkInfo> {
        let checksum = f.required("chunk/checksum", f.string("chunk/checksum")?)?;
        if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(f.invalid(
                "chunk/checksum",
                format!("expected 64 hex digits (SHA-256), found {checksum:?}"),
            ));
        }
        Ok(ChunkInfo {
            id: f.required("chunk/id", f.u64("chunk/id")?)?,
            tx_range: TxRange::read(f, "chunk/tx-range")?,
            max_eid: f.i64("chunk/max-eid")?,
            datom_count: f.u64("chunk/datom-count")?,
            size_bytes: f.u64("chunk/size-bytes")?,
            checksum: checksum.to_ascii_lowercase(),
            s3_etag: f.string("chunk/s3-etag")?,
            s3_key: f.string("chunk/s3-key")?,
            uncompressed_bytes: f.u64("datacamp/uncompressed-bytes")?,
        })
    }
}

/// `:timing`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// `:backup-started`, ms since the epoch.
    pub backup_started: Option<i64>,
    /// `:backup-completed`, ms since the epoch.
    pub backup_completed: Option<i64>,
    /// `:duration-seconds`.
    pub duration_seconds: Option<f64>,
}

impl Timing {
    /// Start and end known; the duration follows from them.
    pub fn between(started_ms: i64, completed_ms: i64) -> Timing {
        Timing {
            backup_started: Some(started_ms),
            backup_completed: Some(completed_ms),
            duration_seconds: Some(completed_ms.saturating_sub(started_ms) as f64 / 1000.0),
        }
    }
}

/// Datacamp's own manifest keys, all under `:datacamp/…` (which the
/// Clojure library ignores). Absent keys are not written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatacampInfo {
    /// `:datacamp/version`: the Datacamp (Rust) version that wrote it.
    pub version: Option<String>,
    /// `:datacamp/source-datom-count`: the datom count the source database
    /// reported for the snapshot, independent of the count of datoms
    /// streamed into chunks (`:stats/datom-count`); verify compares them.
    pub source_datom_count: Option<u64>,
    /// `:datacamp/basis-tx`: the snapshot's basis transaction.
    pub basis_tx: Option<i64>,
    /// `:datacamp/uncompressed-bytes`: the sum of the chunks' Fressian
    /// sizes before gzip.
    pub uncompressed_bytes: Option<u64>,
    /// `:datacamp/compression-level`: the gzip level used (0–9).
    pub compression_level: Option<u32>,
    /// `:datacamp/chunk-size`: the target encoded size of a chunk, bytes.
    pub chunk_size: Option<u64>,
    /// `:datacamp/db-config`: the source database's configuration
    /// (`{:schema-flexibility :write, :keep-history? true}`).
    pub db_config: Option<DbConfig>,
    /// `:datacamp/chain`: the database identity, the basis tx's instant,
    /// and for incremental and history backups the base and the tx range (see
    /// [`ChainInfo`]). `None` in backups written by the Clojure library
    /// or by Datacamp before chains existed.
    pub chain: Option<ChainInfo>,
}

impl DatacampInfo {
    fn entries(&self, into: &mut Vec<(Edn, Edn)>) {
        let mut put = |key: &str, value: Option<Edn>| {
            if let Some(v) = value {
                into.push((Edn::kw(key), v));
            }
        };
        put("datacamp/version", self.version.as_deref().map(Edn::str));
        put(
            "datacamp/source-datom-count",
            self.source_datom_count.map(Edn::u64),
        );
        put("datacamp/basis-tx", self.basis_tx.map(Edn::Int));
        put(
            "datacamp/uncompressed-bytes",
            self.uncompressed_bytes.map(Edn::u64),
        );
        put(
            "datacamp/compression-level",
            self.compression_level.map(|l| Edn::Int(i64::from(l))),
        );
        put("datacamp/chunk-size", self.chunk_size.map(Edn::u64));
        put("datacamp/db-config", self.db_config.map(db_config_to_edn));
        put("datacamp/chain", self.chain.as_ref().map(ChainInfo::to_edn));
    }

    fn read(f: &Fields<'_>) -> Result<DatacampInfo> {
        let db_config = match f.map("datacamp/db-config")? {
            Some(cfg) => Some(db_config_read(&cfg)?),
            None => None,
        };
        Ok(DatacampInfo {
            version: f.string("datacamp/version")?,
            source_datom_count: f.u64("datacamp/source-datom-count")?,
            basis_tx: f.i64("datacamp/basis-tx")?,
            uncompressed_bytes: f.u64("datacamp/uncompressed-bytes")?,
            compression_level: f.u32("datacamp/compression-level")?,
            chunk_size: f.u64("datacamp/chunk-size")?,
            db_config,
            chain: match f.map("datacamp/chain")? {
                Some(chain) => Some(ChainInfo::read(&chain)?),
                None => None,
            },
        })
    }
}

fn db_config_to_edn(cfg: DbConfig) -> Edn {
    Edn::Map(vec![
        (
            Edn::kw("schema-flexibility"),
            Edn::kw(cfg.schema_flexibility.name()),
        ),
        (Edn::kw("keep-history?"), Edn::Bool(cfg.keep_history)),
    ])
}

fn db_config_read(f: &Fields<'_>) -> Result<DbConfig> {
    let defaults = DbConfig::default();
    let schema_flexibility = match f.keyword("schema-flexibility")? {
        None => defaults.schema_flexibility,
        Some(k) => SchemaFlexibility::parse(k.as_str()).ok_or_else(|| {
            f.invalid(
                "schema-flexibility",
                format!("expected :write or :read, found {k}"),
            )
        })?,
    };
    Ok(DbConfig {
        schema_flexibility,
        keep_history: f.bool("keep-history?")?.unwrap_or(defaults.keep_history),
    })
}

/// The typed `manifest.edn`.
///
/// [`Manifest::to_edn`] writes every key the Clojure library writes, in its
/// order, then the `:datacamp/…` keys. [`Manifest::from_edn`] is tolerant:
/// unknown keys (`:_comment`, `:_debug`, anything new) are ignored, `nil`
/// counts as absent, integers may be longs, `N` bigints or integral
/// doubles, and absent keys take the defaults documented on each field.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// `:backup/id` (required).
    pub backup_id: String,
    /// `:backup/type`, default `:full`.
    pub backup_type: Keyword,
    /// `:backup/created-at`, ms since the epoch; falls back to
    /// `[:timing :backup-started]`.
    pub created_at: Option<i64>,
    /// `:backup/completed`, default `false`.
    pub completed: bool,
    /// `:backup/version`, default `"1.0.0"`.
    pub backup_version: String,
    /// `:database/id`, default `"default-db"`.
    pub database_id: String,
    /// `:database/branch`, default `:db`.
    pub database_branch: Keyword,
    /// `:datahike/version` (the Clojure library writes Datahike's version;
    /// Datacamp writes `nil` unless told otherwise).
    pub datahike_version: Option<String>,
    /// `:format/version`, default `"1.0.0"`.
    pub format_version: String,
    /// `:format/compression`, default `:gzip`.
    pub compression: Keyword,
    /// `:format/encryption`, `nil` (no encryption) unless a keyword.
    pub encryption: Option<Keyword>,
    /// `:stats/datom-count`; falls back to the sum of the chunks' counts.
    pub datom_count: u64,
    /// `:stats/chunk-count`; falls back to the number of `:chunks`.
    pub chunk_count: u64,
    /// `:stats/size-bytes` (compressed); falls back to the sum of the
    /// chunks' sizes.
    pub size_bytes: u64,
    /// `:stats/tx-range` (the reference writes `[nil nil]`).
    pub tx_range: TxRange,
    /// `:stats/max-eid`; falls back to the largest `:chunk/max-eid`, then 0.
    pub max_eid: i64,
    /// `:stats/max-tx`; falls back to the largest `:chunk/tx-range` end,
    /// then 0.
    pub max_tx: i64,
    /// `:chunks` (required, may be empty), in the order written.
    pub chunks: Vec<ChunkInfo>,
    /// `:timing`.
    pub timing: Timing,
    /// The `:datacamp/…` keys.
    pub datacamp: DatacampInfo,
}

impl Manifest {
    /// An empty, not yet completed manifest with the defaults and
    /// `:datacamp/version` set.
    pub fn new(backup_id: impl Into<String>, database_id: impl Into<String>) -> Manifest {
        Manifest {
            backup_id: backup_id.into(),
            backup_type: Keyword::parse("full"),
            created_at: None,
            completed: false,
            backup_version: FORMAT_VERSION.to_string(),
            database_id: database_id.into(),
            database_branch: Keyword::parse("db"),
            datahike_version: None,
            format_version: FORMAT_VERSION.to_string(),
            compression: Keyword::parse("gzip"),
            encryption: None,
            datom_count: 0,
            chunk_count: 0,
            size_bytes: 0,
            tx_range: TxRange::default(),
            max_eid: 0,
            max_tx: 0,
            chunks: Vec::new(),
            timing: Timing::default(),
            datacamp: DatacampInfo {
                version: Some(DATACAMP_VERSION.to_string()),
                ..DatacampInfo::default()
            },
        }
    }

    /// Sets the `:stats/…` totals from [`Manifest::chunks`]: counts and
    /// sizes summed, max-eid and max-tx the largest known, tx-range the
    /// smallest and largest known tx.
    pub fn recompute_stats(&mut self) {
        self.chunk_count = self.chunks.len() as u64;
        self.datom_count = self.chunks.iter().filter_map(|c| c.datom_count).sum();
        self.size_bytes = self.chunks.iter().filter_map(|c| c.size_bytes).sum();
        self.max_eid = self
            .chunks
            .iter()
            .filter_map(|c| c.max_eid)
            .max()
            .unwrap_or(0);
        self.max_tx = self
            .chunks
            .iter()
            .filter_map(|c| c.tx_range.max)
            .max()
            .unwrap_or(0);
        self.tx_range = TxRange {
            min: self.chunks.iter().filter_map(|c| c.tx_range.min).min(),
            max: self.chunks.iter().filter_map(|c| c.tx_range.max).max(),
        };
        let uncompressed: Option<u64> = self.chunks.iter().map(|c| c.uncompressed_bytes).sum();
        self.datacamp.uncompressed_bytes = uncompressed;
    }

    fn to_tree(&self) -> Edn {
        let mut e = vec![
            (Edn::kw("backup/id"), Edn::str(&self.backup_id)),
            (Edn::kw("backup/type"), Edn::keyword(&self.backup_type)),
            (
                Edn::kw("backup/created-at"),
                Edn::opt(self.created_at, Edn::Inst),
            ),
            (Edn::kw("backup/completed"), Edn::Bool(self.completed)),
            (Edn::kw("backup/version"), Edn::str(&self.backup_version)),
            (
                Edn::kw("_comment"),
                Edn::str("Datahike backup manifest, written by Datacamp"),
            ),
            (Edn::kw("database/id"), Edn::str(&self.database_id)),
            (
                Edn::kw("database/branch"),
                Edn::keyword(&self.database_branch),
            ),
            (
                Edn::kw("datahike/version"),
                Edn::opt(self.datahike_version.as_deref(), Edn::str),
            ),
            (Edn::kw("format/version"), Edn::str(&self.format_version)),
            (
                Edn::kw("format/compression"),
                Edn::keyword(&self.compression),
            ),
            (
                Edn::kw("format/encryption"),
                Edn::opt(self.encryption.as_ref(), Edn::keyword),
            ),
            (Edn::kw("stats/datom-count"), Edn::u64(self.datom_count)),
            (Edn::kw("stats/chunk-count"), Edn::u64(self.chunk_count)),
            (Edn::kw("stats/size-bytes"), Edn::u64(self.size_bytes)),
            (Edn::kw("stats/tx-range"), self.tx_range.to_edn()),
            (Edn::kw("stats/max-eid"), Edn::Int(self.max_eid)),
            (Edn::kw("stats/max-tx"), Edn::Int(self.max_tx)),
            (Edn::kw("chunks"), self.chunks_edn(false)),
            (
                Edn::kw("timing"),
                Edn::Map(vec![
                    (
                        Edn::kw("backup-started"),
                        Edn::opt(self.timing.backup_started, Edn::Inst),
                    ),
                    (
                        Edn::kw("backup-completed"),
                        Edn::opt(self.timing.backup_completed, Edn::Inst),
                    ),
                    (
                        Edn::kw("duration-seconds"),
                        Edn::opt(
                            self.timing.duration_seconds.filter(|d| d.is_finite()),
                            Edn::Double,
                        ),
                    ),
                ]),
            ),
        ];
        self.datacamp.entries(&mut e);
        if self.moves_chunks() {
            e.push((Edn::kw(DATACAMP_CHUNKS), self.chunks_edn(true)));
        }
        Edn::Map(e)
    }

    /// Whether `:chunks` is written as the keyword `:datacamp/chunks` and
    /// the list under `:datacamp/chunks` instead: for incremental and
    /// history backups, so that the Clojure library (whose restore begins
    /// with `(count (:chunks manifest))`) refuses them before it reads a
    /// chunk or touches its target, instead of restoring a fragment as if
    /// it were a full backup (docs/FORMAT.md, "Incremental and history
    /// backups").
    fn moves_chunks(&self) -> bool {
        self.kind().is_ok_and(BackupKind::is_log)
    }

    /// `:chunks`' value (`list` false) or `:datacamp/chunks`' (`list` true).
    fn chunks_edn(&self, list: bool) -> Edn {
        if self.moves_chunks() && !list {
            return Edn::kw(DATACAMP_CHUNKS);
        }
        Edn::Vector(self.chunks.iter().map(|c| Edn::Map(c.entries())).collect())
    }

    /// What `:backup/type` says; an error naming the backup for a type
    /// this build does not know.
    pub fn kind(&self) -> Result<BackupKind> {
        let k = &self.backup_type;
        k.namespace()
            .is_none()
            .then(|| BackupKind::parse(k.name()))
            .flatten()
            .ok_or_else(|| Error::Inconsistent {
                backup_id: short_id(&self.backup_id),
                problems: vec![ManifestProblem::UnknownType {
                    found: k.to_string(),
                }],
            })
    }

    /// Sets `:backup/type` to `kind`.
    pub fn set_kind(&mut self, kind: BackupKind) {
        self.backup_type = Keyword::parse(kind.name());
    }

    /// The manifest as EDN text laid out like `clojure.pprint` output,
    /// readable by `clojure.edn/read-string` with the default readers.
    pub fn to_edn(&self) -> String {
        self.to_tree().pretty()
    }

    /// Reads a manifest written by Datacamp (Rust or Clojure) or by hand.
    ///
    /// Errors name the key and what was expected, e.g.
    /// `manifest key :stats/datom-count: expected a non-negative integer, found "abc"`.
    pub fn from_edn(text: &str) -> Result<Manifest> {
        let root = parse_document(Document::Manifest, text)?;
        let f = Fields::top(Document::Manifest, text, &root)?;

        // `:chunks :datacamp/chunks` says the list is under that key (how
        // incremental and history backups are written).
        let chunks_key = match f.get("chunks").map(|v| &v.kind) {
            Some(FormKind::Keyword(k)) if k.as_str() == DATACAMP_CHUNKS => DATACAMP_CHUNKS,
            _ => "chunks",
        };
        let chunk_values = f.required(chunks_key, f.items(chunks_key)?)?;
        let chunks = chunk_values
            .iter()
            .enumerate()
            .map(|(i, v)| ChunkInfo::read(&f.map_item(chunks_key, i, v)?))
            .collect::<Result<Vec<_>>>()?;

        let timing = match f.map("timing")? {
            Some(t) => Timing {
                backup_started: t.inst("backup-started")?,
                backup_completed: t.inst("backup-completed")?,
                duration_seconds: t.f64("duration-seconds")?,
            },
            None => Timing::default(),
        };

        let defaults = Manifest::new("", DEFAULT_DATABASE_ID);
        let encryption = match f.get("format/encryption") {
            None => None,
            Some(v) if matches!(v.kind, FormKind::Keyword(_)) => f.keyword("format/encryption")?,
            Some(other) => {
                return Err(f.invalid(
                    "format/encryption",
                    format!("expected nil or a keyword, found {}", f.describe(other)),
                ))
            }
        };

        Ok(Manifest {
            backup_id: f.required("backup/id", f.string("backup/id")?)?,
            backup_type: f.keyword("backup/type")?.unwrap_or(defaults.backup_type),
            created_at: f.inst("backup/created-at")?.or(timing.backup_started),
            completed: f.bool("backup/completed")?.unwrap_or(false),
            backup_version: f
                .string("backup/version")?
                .unwrap_or(defaults.backup_version),
            database_id: f.string("database/id")?.unwrap_or(defaults.database_id),
            database_branch: f
                .keyword("database/branch")?
                .unwrap_or(defaults.database_branch),
            datahike_version: f.string("datahike/version")?,
            format_version: f
                .string("format/version")?
                .unwrap_or(defaults.format_version),
            compression: f
                .keyword("format/compression")?
                .unwrap_or(defaults.compression),
            encryption,
            datom_count: f
                .u64("stats/datom-count")?
                .unwrap_or_else(|| chunks.iter().filter_map(|c| c.datom_count).sum()),
            chunk_count: f.u64("stats/chunk-count")?.unwrap_or(chunks.len() as u64),
            size_bytes: f
                .u64("stats/size-bytes")?
                .unwrap_or_else(|| chunks.iter().filter_map(|c| c.size_bytes).sum()),
            tx_range: TxRange::read(&f, "stats/tx-range")?,
            max_eid: f
                .i64("stats/max-eid")?
                .unwrap_or_else(|| chunks.iter().filter_map(|c| c.max_eid).max().unwrap_or(0)),
            max_tx: f.i64("stats/max-tx")?.unwrap_or_else(|| {
                chunks
                    .iter()
                    .filter_map(|c| c.tx_range.max)
                    .max()
                    .unwrap_or(0)
            }),
            chunks,
            timing,
            datacamp: DatacampInfo::read(&f)?,
        })
    }
}

/// Where incremental and history backups keep their chunk list.
const DATACAMP_CHUNKS: &str = "datacamp/chunks";

/// How many ids a [`ManifestProblem`] lists before it only counts.
const IDS_SHOWN: usize = 20;

/// Ids for a message: the first [`IDS_SHOWN`], then how many more.
fn show_ids(ids: &[u64], total: u64) -> String {
    let shown: Vec<String> = ids.iter().map(u64::to_string).collect();
    let more = total.saturating_sub(ids.len() as u64);
    if more == 0 {
        format!("[{}]", shown.join(", "))
    } else {
        format!("[{}, and {more} more]", shown.join(", "))
    }
}

/// One way a manifest that reads is not consistent with itself, or is of
/// a format this build does not read. Found by [`Manifest::validate`],
/// which restore and verify both use: restore refuses a manifest with any
/// of these, verify reports every one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestProblem {
    /// `:format/version` is not [`FORMAT_VERSION`].
    UnknownFormat {
        /// What the manifest says.
        found: String,
    },
    /// `:stats/chunk-count` differs from the number of `:chunks` entries.
    ChunkCountMismatch {
        /// `:stats/chunk-count`.
        stated: u64,
        /// Entries in `:chunks`.
        listed: u64,
    },
    /// Ids in `0..chunk-count` that no entry has.
    MissingChunkIds {
        /// The first few, in order.
        ids: Vec<u64>,
        /// How many there are in all.
        total: u64,
    },
    /// Ids that more than one entry has.
    DuplicateChunkIds {
        /// The first few, in order.
        ids: Vec<u64>,
        /// How many there are in all.
        total: u64,
    },
    /// Ids at or beyond `:stats/chunk-count`.
    ChunkIdsOutOfRange {
        /// The first few, in order.
        ids: Vec<u64>,
        /// How many there are in all.
        total: u64,
        /// `:stats/chunk-count`.
        chunk_count: u64,
    },
    /// A `:stats/…` total differs from the sum of the chunks' values (only
    /// checked when every chunk has one).
    TotalMismatch {
        /// The total's key, e.g. `:stats/datom-count`.
        key: &'static str,
        /// The chunks' key, e.g. `:chunk/datom-count`.
        chunk_key: &'static str,
        /// What the total says.
        stated: u64,
        /// The sum over the chunks.
        sum: u64,
    },
    /// `:backup/type` is not `:full`, `:incremental` or `:history`.
    UnknownType {
        /// What the manifest says, as EDN.
        found: String,
    },
    /// An incremental or history backup without `:datacamp/chain` (or
    /// without the `:datacamp/basis-tx` its range is relative to).
    MissingChain {
        /// The backup's kind.
        kind: BackupKind,
        /// The key that is absent.
        key: &'static str,
    },
    /// A `:datacamp/chain` field breaks a rule of its kind.
    InvalidChain {
        /// The field, e.g. `:base-basis-tx`.
        key: &'static str,
        /// What is wrong and what was expected.
        reason: String,
    },
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestProblem::UnknownFormat { found } => write!(
                f,
                ":format/version is {:?}; this build reads {FORMAT_VERSION:?}",
                short_id(found)
            ),
            ManifestProblem::ChunkCountMismatch { stated, listed } => write!(
                f,
                ":stats/chunk-count is {stated} but :chunks has {listed} entries"
            ),
            ManifestProblem::MissingChunkIds { ids, total } => write!(
                f,
                "no :chunks entry for chunk id(s) {} (expected every id from 0 below :stats/chunk-count)",
                show_ids(ids, *total)
            ),
            ManifestProblem::DuplicateChunkIds { ids, total } => write!(
                f,
                "chunk id(s) {} appear in more than one :chunks entry",
                show_ids(ids, *total)
            ),
            ManifestProblem::ChunkIdsOutOfRange {
                ids,
                total,
                chunk_count,
            } => write!(
                f,
                "chunk id(s) {} are not below :stats/chunk-count {chunk_count}",
                show_ids(ids, *total)
            ),
            ManifestProblem::TotalMismatch {
                key,
                chunk_key,
                stated,
                sum,
            } => write!(
                f,
                "{key} is {stated} but the chunks' {chunk_key} add up to {sum}"
            ),
            ManifestProblem::UnknownType { found } => write!(
                f,
                ":backup/type is {}; this build reads :full, :incremental and :history",
                short_id(found)
            ),
            ManifestProblem::MissingChain { kind, key } => {
                let article = if *kind == BackupKind::Incremental { "an" } else { "a" };
                write!(f, "{article} {kind} backup must have {key}, and this one has none")
            }
            ManifestProblem::InvalidChain { key, reason } if key.starts_with(":chunk") => {
                write!(f, "{key} {reason}")
            }
            ManifestProblem::InvalidChain { key, reason } => {
                write!(f, "[:datacamp/chain {key}] {reason}")
            }
        }
    }
}

/// The first [`IDS_SHOWN`] of `ids` and how many there are.
fn first_ids(ids: impl Iterator<Item = u64>) -> (Vec<u64>, u64) {
    let mut shown = Vec::new();
    let mut total = 0u64;
    for id in ids {
        if shown.len() < IDS_SHOWN {
            shown.push(id);
        }
        total += 1;
    }
    (shown, total)
}

impl Manifest {
    /// Checks that the manifest is consistent with itself and of a format
    /// this build reads: `:format/version` is [`FORMAT_VERSION`]; the
    /// chunk ids are exactly `0..:stats/chunk-count`, each once;
    /// `:stats/chunk-count` is the number of entries; and
    /// `:stats/datom-count`, `:stats/size-bytes` and
    /// `:datacamp/uncompressed-bytes` are the sums of the chunks' values
    /// (each checked only when every chunk has its value).
    ///
    /// This is the one validation restore and verify share. Its work and
    /// memory grow with the number of entries, never with what a count
    /// claims.
    pub fn validate(&self) -> Result<(), Vec<ManifestProblem>> {
        let mut problems = Vec::new();
        if self.format_version != FORMAT_VERSION {
            problems.push(ManifestProblem::UnknownFormat {
                found: self.format_version.clone(),
            });
        }
        self.check_chunk_ids(&mut problems);
        self.check_totals(&mut problems);
        self.check_chain(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// [`Manifest::validate`] as an [`Error::Inconsistent`].
    pub fn check(&self) -> Result<()> {
        self.validate().map_err(|problems| Error::Inconsistent {
            backup_id: short_id(&self.backup_id),
            problems,
        })
    }

    /// The chain rules of `docs/FORMAT.md`: a known `:backup/type`; an
    /// incremental names a valid base id other than its own and a base
    /// basis tx below its basis tx; an incremental's transactions (its
    /// `:first-tx`/`:last-tx` and every chunk's tx range) lie in
    /// `(base-basis-tx, basis-tx]`, a history backup's in
    /// `[536870912, basis-tx]`; `:first-tx <= :last-tx`, both present or
    /// both absent; a full or history backup names no base; the identity
    /// is 1 to [`crate::MAX_IDENTITY_LEN`] printable ASCII characters.
    fn check_chain(&self, problems: &mut Vec<ManifestProblem>) {
        let kind = match self.kind() {
            Ok(kind) => kind,
            Err(_) => {
                problems.push(ManifestProblem::UnknownType {
                    found: self.backup_type.to_string(),
                });
                return;
            }
        };
        let mut bad = |key: &'static str, reason: String| {
            problems.push(ManifestProblem::InvalidChain { key, reason });
        };
        let Some(chain) = &self.datacamp.chain else {
            if kind.is_log() {
                problems.push(ManifestProblem::MissingChain {
                    kind,
                    key: ":datacamp/chain",
                });
            }
            return;
        };
        if let Some(why) = identity_problem(&chain.database_identity) {
            bad(":database-identity", why);
        }
        let basis = self.datacamp.basis_tx;
        if kind.is_log() && basis.is_none() {
            problems.push(ManifestProblem::MissingChain {
                kind,
                key: ":datacamp/basis-tx",
            });
            return;
        }
        // The lowest and highest tx a transaction of this backup may have.
        let (low, high) = match kind {
            BackupKind::Incremental => {
                check_base(self, chain, &mut bad);
                match (chain.base_basis_tx, basis) {
                    (Some(base), Some(basis)) => (base.saturating_add(1), basis),
                    _ => return,
                }
            }
            BackupKind::Full | BackupKind::History => {
                if let Some(base) = &chain.base_backup_id {
                    bad(
                        ":base-backup-id",
                        format!("is {}, but a {kind} backup has no base", short_id(base)),
                    );
                }
                if let Some(tx) = chain.base_basis_tx {
                    bad(
                        ":base-basis-tx",
                        format!("is {tx}, but a {kind} backup has no base"),
                    );
                }
                match (kind, basis) {
                    (BackupKind::History, Some(basis)) => (TX0, basis),
                    _ => return,
                }
            }
        };
        check_range(self, chain, low, high, &mut bad);
    }

    fn check_chunk_ids(&self, problems: &mut Vec<ManifestProblem>) {
        let listed = self.chunks.len() as u64;
        if self.chunk_count != listed {
            problems.push(ManifestProblem::ChunkCountMismatch {
                stated: self.chunk_count,
                listed,
            });
        }
        let mut seen = BTreeSet::new();
        let mut duplicates = BTreeSet::new();
        for chunk in &self.chunks {
            if !seen.insert(chunk.id) {
                duplicates.insert(chunk.id);
            }
        }
        if !duplicates.is_empty() {
            let (ids, total) = first_ids(duplicates.iter().copied());
            problems.push(ManifestProblem::DuplicateChunkIds { ids, total });
        }
        let count = self.chunk_count;
        let out_of_range = seen.range(count..);
        if out_of_range.clone().next().is_some() {
            let (ids, total) = first_ids(out_of_range.copied());
            problems.push(ManifestProblem::ChunkIdsOutOfRange {
                ids,
                total,
                chunk_count: count,
            });
        }
        // Missing ids are walked gap by gap between the ids present, and
        // counted arithmetically, so a claimed count of 2^60 costs nothing.
        let present_below = seen.range(..count).count() as u64;
        let missing_total = count - present_below;
        if missing_total > 0 {
            let mut ids = Vec::new();
            let mut next = 0u64;
            for &id in seen.range(..count).chain(std::iter::once(&count)) {
                while next < id && ids.len() < IDS_SHOWN {
                    ids.push(next);
                    next += 1;
                }
                if ids.len() >= IDS_SHOWN {
                    break;
                }
                next = id + 1;
            }
            problems.push(ManifestProblem::MissingChunkIds {
                ids,
                total: missing_total,
            });
        }
    }

    fn check_totals(&self, problems: &mut Vec<ManifestProblem>) {
        let sum = |value: fn(&ChunkInfo) -> Option<u64>| -> Option<u64> {
            self.chunks
                .iter()
                .try_fold(0u64, |acc, c| acc.checked_add(value(c)?))
        };
        let mut compare = |key, chunk_key, stated: Option<u64>, sum: Option<u64>| {
            if let (Some(stated), Some(sum)) = (stated, sum) {
                if stated != sum {
                    problems.push(ManifestProblem::TotalMismatch {
                        key,
                        chunk_key,
                        stated,
                        sum,
                    });
                }
            }
        };
        compare(
            ":stats/datom-count",
            ":chunk/datom-count",
            Some(self.datom_count),
            sum(|c| c.datom_count),
        );
        compare(
            ":stats/size-bytes",
            ":chunk/size-bytes",
            Some(self.size_bytes),
            sum(|c| c.size_bytes),
        );
        compare(
            ":datacamp/uncompressed-bytes",
            ":datacamp/uncompressed-bytes",
            self.datacamp.uncompressed_bytes,
            sum(|c| c.uncompressed_bytes),
        );
    }
}

/// An incremental's base: a valid backup id that is not its own, and a
/// base basis tx not above its own basis tx (equal for an empty link).
fn check_base(m: &Manifest, chain: &ChainInfo, bad: &mut impl FnMut(&'static str, String)) {
    match &chain.base_backup_id {
        None => bad(
            ":base-backup-id",
            "is absent; an incremental backup must name its base".into(),
        ),
        Some(base) => {
            if let Err(e) = validate_id(IdKind::Backup, base) {
                bad(":base-backup-id", e.to_string());
            } else if base == &m.backup_id {
                bad(
                    ":base-backup-id",
                    format!("is {}, the backup itself", short_id(base)),
                );
            }
        }
    }
    match (chain.base_basis_tx, m.datacamp.basis_tx) {
        (None, _) => bad(
            ":base-basis-tx",
            "is absent; an incremental backup must say after which tx it starts".into(),
        ),
        // Equal: an empty link, written when nothing happened since the
        // base (a scheduled incremental of an idle database).
        (Some(base), Some(basis)) if base > basis => bad(
            ":base-basis-tx",
            format!("is {base}, above the backup's :datacamp/basis-tx {basis}"),
        ),
        _ => {}
    }
}

/// Every transaction the backup says it holds lies in `[low, high]`.
fn check_range(
    m: &Manifest,
    chain: &ChainInfo,
    low: i64,
    high: i64,
    bad: &mut impl FnMut(&'static str, String),
) {
    let outside = |tx: i64| tx < low || tx > high;
    let range = format!("from {low} to {high}");
    match (chain.first_tx, chain.last_tx) {
        (Some(first), Some(last)) => {
            if first > last {
                bad(":first-tx", format!("is {first}, after :last-tx {last}"));
            }
            for (key, tx) in [(":first-tx", first), (":last-tx", last)] {
                if outside(tx) {
                    bad(
                        key,
                        format!("is {tx}, outside the backup's transactions {range}"),
                    );
                }
            }
        }
        (None, None) => {}
        (first, _) => bad(
            if first.is_none() {
                ":first-tx"
            } else {
                ":last-tx"
            },
            "is absent while the other end of the range is present".into(),
        ),
    }
    let stray = m
        .chunks
        .iter()
        .find(|c| c.tx_range.min.is_some_and(outside) || c.tx_range.max.is_some_and(outside));
    if let Some(c) = stray {
        bad(
            ":chunk/tx-range",
            format!(
                "of chunk {} holds transactions {:?} to {:?}, outside the backup's \
                 transactions {range}",
                c.id, c.tx_range.min, c.tx_range.max
            ),
        );
    }
}
