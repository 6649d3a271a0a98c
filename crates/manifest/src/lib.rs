//! # datacamp-manifest
//!
//! The typed metadata of a Datacamp backup and its EDN form. It knows
//! nothing of how bytes are stored (that is `datacamp-storage`).
//!
//! - [`Manifest`] (`manifest.edn`) with [`ChunkInfo`], [`TxRange`],
//!   [`Timing`] and Datacamp's own `:datacamp/…` keys ([`DatacampInfo`]);
//! - [`Checkpoint`] (`checkpoint.edn`) with [`CompletedChunk`] and
//!   [`ResumePoint`], what an interrupted backup resumes from;
//! - [`MigrationManifest`] (`migration-manifest.edn`) with [`MigrationState`],
//!   the persisted state of a live migration;
//! - [`BackupId`] (`YYYYMMDD-HHMMSS-hhhhhh`) and [`validate_id`], the rules
//!   for database, backup and migration ids;
//! - [`Error`], which names the document, the key and what was expected.
//!
//! Both documents are written in the layout of `clojure.pprint` (what the
//! Clojure library writes) and read tolerantly: unknown keys are ignored,
//! `nil` means absent, and the fallbacks of `docs/FORMAT.md` apply.
//!
//! ```
//! use datacamp_manifest::{ChunkInfo, Manifest, TxRange};
//!
//! let mut m = Manifest::new("20251018-195132-a3f9c2", "production-db");
//! let mut chunk = ChunkInfo::new(0, "ab".repeat(32));
//! chunk.tx_range = TxRange::new(536870913, 536870950);
//! chunk.datom_count = Some(1200);
//! chunk.size_bytes = Some(20_480);
//! chunk.s3_key = Some("chunks/datoms-0.fressian.gz".into());
//! m.chunks.push(chunk);
//! m.recompute_stats();
//! m.completed = true;
//!
//! let text = m.to_edn();
//! assert!(text.starts_with("{:backup/id \"20251018-195132-a3f9c2\",\n"));
//! let back = Manifest::from_edn(&text)?;
//! assert_eq!(back, m);
//! assert_eq!(back.max_tx, 536870950);
//!
//! let bad = Manifest::from_edn(r#"{:backup/id "x" :chunks [] :stats/datom-count "abc"}"#);
//! assert_eq!(
//!     bad.unwrap_err().to_string(),
//!     r#"manifest key :stats/datom-count: expected an integer, found "abc""#
//! );
//! # Ok::<(), datacamp_manifest::Error>(())
//! ```

mod chain;
mod checkpoint;
mod edn;
mod error;
mod id;
mod keys;
mod lease;
mod manifest;
mod migration;

pub use chain::{identity_problem, BackupKind, ChainInfo, MAX_IDENTITY_LEN};
pub use checkpoint::{
    Checkpoint, CheckpointDatacamp, CompletedChunk, ResumeFrom, ResumePoint, TotalChunks,
};
pub use edn::{MAX_DOCUMENT_BYTES, MAX_DOCUMENT_FORMS};
pub use error::{Document, Error, IdKind, IdRule, Result};
pub use id::{short_id, validate_id, BackupId, DEFAULT_DATABASE_ID, ID_SHOWN_CHARS, MAX_ID_LEN};
pub use keys::{KeysFile, Wrap, KEYS_FORMAT_VERSION, KEYS_SCHEME, MAX_WRAPS};
pub use lease::LeaseInfo;
pub use manifest::{
    ChunkInfo, DatacampInfo, Manifest, ManifestProblem, Timing, TxRange, DATACAMP_VERSION,
    FORMAT_VERSION,
};
pub use migration::{
    MigrationEncryption, MigrationFailure, MigrationManifest, MigrationState, StateChange,
};
