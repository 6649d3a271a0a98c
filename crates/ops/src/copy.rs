//! `copy`: complete backups from one target to another (directory ↔ S3 ↔
//! S3), chunk by chunk.
//!
//! Each chunk is read whole (bounded by its recorded size, else by the
//! chunk cap), its SHA-256 checked against the manifest, and written under
//! the destination's key; a few chunks are in flight at once, so memory is
//! bounded by `parallel` chunks whatever the backup's size. Chunk bytes are
//! copied as they are (an encrypted backup copies without its key). The
//! manifest is rewritten for the destination's key form (`:chunk/s3-key`
//! relative in a directory, the full key in S3, and the destination's
//! ETags) and written after the last chunk; the completion marker last of
//! all. An interrupted copy leaves an incomplete backup at the destination
//! (listed as such; `copy` again finishes it, `cleanup` removes it).

use futures::{StreamExt, TryStreamExt};

use datacamp_codec::compress;
use datacamp_manifest::{validate_id, ChunkInfo, IdKind, Manifest};
use datacamp_storage::{BackupStore, COMPLETE_MARKER_BYTES};

use crate::error::{Error, Result};
use crate::list::list_backups_in;
use crate::read::{
    chunk_key, read_complete_manifest, read_stored_manifest, DEFAULT_MAX_CHUNK_BYTES,
};

/// What to copy.
#[derive(Clone, Debug)]
pub struct CopyOptions {
    /// The database id (the same at both ends; default `default-db`).
    pub database_id: String,
    /// One backup, or (`None`) every complete backup of the database.
    pub backup_id: Option<String>,
    /// Chunks in flight at once (1 to [`crate::MAX_PARALLEL`], default 4).
    pub parallel: usize,
    /// The largest chunk accepted when the manifest records no size.
    pub max_chunk_bytes: u64,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            database_id: crate::DEFAULT_DATABASE_ID.into(),
            backup_id: None,
            parallel: 4,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
        }
    }
}

/// What happened to one backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopiedBackup {
    /// The backup id.
    pub backup_id: String,
    /// `false` when the destination already held it, complete and equal.
    pub copied: bool,
    /// Chunks written.
    pub chunks: u64,
    /// Chunk bytes written.
    pub bytes: u64,
}

/// What `copy` did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyResult {
    /// One entry per backup considered.
    pub backups: Vec<CopiedBackup>,
}

/// Copies `opts.backup_id` (or every complete backup) of
/// `opts.database_id` from `from` to `to`. Refuses, before writing, a
/// destination that holds a different backup under the same id, or one
/// being written there (a checkpoint without a manifest).
pub async fn copy(from: &BackupStore, to: &BackupStore, opts: &CopyOptions) -> Result<CopyResult> {
    validate_id(IdKind::Database, &opts.database_id)?;
    crate::validate_parallel(opts.parallel)?;
    let ids = match &opts.backup_id {
        Some(id) => vec![id.clone()],
        None => {
            let mut complete: Vec<String> = list_backups_in(from, &opts.database_id)
                .await?
                .into_iter()
                .filter(|b| b.completed)
                .map(|b| b.backup_id)
                .collect();
            // Oldest first: a base before the backups built on it.
            complete.reverse();
            complete
        }
    };
    let mut backups = Vec::with_capacity(ids.len());
    for id in ids {
        backups.push(copy_one(from, to, opts, &id).await?);
    }
    Ok(CopyResult { backups })
}

/// One backup: check the destination, the chunks, the manifest, the marker.
async fn copy_one(
    from: &BackupStore,
    to: &BackupStore,
    opts: &CopyOptions,
    backup_id: &str,
) -> Result<CopiedBackup> {
    let db = opts.database_id.as_str();
    let source = read_complete_manifest(from, db, backup_id).await?;
    if destination_has(to, db, &source).await? {
        return Ok(CopiedBackup {
            backup_id: backup_id.to_owned(),
            copied: false,
            chunks: 0,
            bytes: 0,
        });
    }
    copy_keys(from, to, &source).await?;
    let chunks: Vec<ChunkInfo> = futures::stream::iter(source.chunks.iter())
        .map(|chunk| copy_chunk(from, to, opts, &source, chunk))
        .buffered(opts.parallel)
        .try_collect()
        .await?;
    let bytes = chunks.iter().filter_map(|c| c.size_bytes).sum();
    let mut manifest = source.clone();
    manifest.chunks = chunks;
    let layout = to.layout();
    to.put(&layout.manifest(db, backup_id)?, manifest.to_edn())
        .await?;
    to.put(
        &layout.complete_marker(db, backup_id)?,
        COMPLETE_MARKER_BYTES,
    )
    .await?;
    Ok(CopiedBackup {
        backup_id: backup_id.to_owned(),
        copied: true,
        chunks: manifest.chunks.len() as u64,
        bytes,
    })
}

/// An encrypted backup's keys.edn, copied as stored before its chunks (so
/// the destination never holds a chunk its keys cannot open). No key is
/// needed: the data key stays wrapped.
async fn copy_keys(from: &BackupStore, to: &BackupStore, source: &Manifest) -> Result<()> {
    if !crate::seal::is_encrypted(source)? {
        return Ok(());
    }
    let (db, id) = (source.database_id.as_str(), source.backup_id.as_str());
    let key = from.layout().keys(db, id)?;
    let Some(text) =
        crate::read::read_metadata_opt(from, &key, datacamp_manifest::Document::Keys).await?
    else {
        return Err(Error::Keys {
            backup_id: datacamp_manifest::short_id(id),
            reason: "keys.edn is missing, so the copy could never be decrypted".into(),
        });
    };
    to.put(&to.layout().keys(db, id)?, text.into_bytes())
        .await?;
    Ok(())
}

/// Whether the destination already holds this backup complete (`true`:
/// nothing to do); an error when it holds something else under its id.
async fn destination_has(to: &BackupStore, db: &str, source: &Manifest) -> Result<bool> {
    let id = source.backup_id.as_str();
    let objects = to.list_backup_objects(db, id).await?;
    if objects.is_empty() {
        return Ok(false);
    }
    let layout = to.layout();
    let has = |key| objects.iter().any(|o| o.key == key);
    let refuse = |why: String| Error::DestinationHoldsOther {
        backup_id: id.to_owned(),
        target: to.describe(),
        reason: why,
    };
    if !has(layout.manifest(db, id)?) {
        if has(layout.checkpoint(db, id)?) {
            return Err(refuse(
                "a backup with this id is being written there (it has a checkpoint)".into(),
            ));
        }
        // Chunks of an interrupted copy: written again.
        return Ok(false);
    }
    let existing = read_stored_manifest(to, db, id).await?;
    let same = existing.chunks.len() == source.chunks.len()
        && existing
            .chunks
            .iter()
            .zip(&source.chunks)
            .all(|(a, b)| a.id == b.id && a.checksum.eq_ignore_ascii_case(&b.checksum));
    if !same {
        return Err(refuse(
            "its manifest lists other chunks (a different backup under the same id); nothing was overwritten"
                .into(),
        ));
    }
    Ok(has(layout.complete_marker(db, id)?))
}

/// Reads one chunk, checks it, writes it; returns its manifest entry for
/// the destination.
async fn copy_chunk(
    from: &BackupStore,
    to: &BackupStore,
    opts: &CopyOptions,
    source: &Manifest,
    chunk: &ChunkInfo,
) -> Result<ChunkInfo> {
    let key = chunk_key(from, source, chunk)?;
    let limit = chunk.size_bytes.unwrap_or(opts.max_chunk_bytes);
    let bytes = from.get_bounded(&key, limit).await?;
    let actual = compress::sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(&chunk.checksum) {
        return Err(Error::ChecksumMismatch {
            chunk_id: chunk.id,
            key: from.url_of(&key),
            expected: chunk.checksum.clone(),
            actual,
        });
    }
    let db = opts.database_id.as_str();
    let id = source.backup_id.as_str();
    let dest = to.layout().chunk(db, id, chunk.id)?;
    let size = bytes.len() as u64;
    let written = to.put(&dest, bytes).await?;
    let mut entry = chunk.clone();
    entry.s3_key = Some(to.layout().chunk_manifest_key(db, id, chunk.id)?);
    entry.s3_etag = written.e_tag;
    entry.size_bytes = Some(size);
    Ok(entry)
}
