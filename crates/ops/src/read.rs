//! Reading a backup: the manifest with its guards, chunk keys, fetching a
//! chunk with its checksum checked, and decoding it.

use std::io::Read;

use bytes::Bytes;
use datacamp_codec::chunk::{ChunkLimits, ChunkReader, DEFAULT_MAX_DOCUMENT_BYTES};
use datacamp_codec::compress::{self, Compression, Decompressor};
use datacamp_codec::fressian::ReadOptions;
use datacamp_codec::CodecError;
use datacamp_manifest::{
    short_id, validate_id, ChunkInfo, Document, IdKind, Manifest, ManifestProblem,
    MAX_DOCUMENT_BYTES,
};
use datacamp_storage::{BackupStore, Key};

use crate::error::{Error, Result};
use crate::seal::{Opener, Unsealed};

/// The chunk-document format version this build reads and writes (the
/// manifest crate's, which [`Manifest::validate`] checks).
pub const SUPPORTED_FORMAT: &str = datacamp_manifest::FORMAT_VERSION;

/// Reads `manifest.edn` of a backup, refusing a backup that is not there,
/// not complete, of an unknown format or not consistent with itself (the
/// checks of [`Manifest::validate`], which verify reports too).
pub(crate) async fn read_complete_manifest(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Manifest> {
    let manifest = read_manifest(store, database_id, backup_id).await?;
    let marker = store.layout().complete_marker(database_id, backup_id)?;
    if !store.exists(&marker).await? {
        return Err(Error::Incomplete {
            backup_id: backup_id.to_owned(),
            reason: "complete.marker is missing".into(),
        });
    }
    if !manifest.completed {
        return Err(Error::Incomplete {
            backup_id: backup_id.to_owned(),
            reason: "the manifest says :backup/completed false".into(),
        });
    }
    if let Err(problems) = manifest.validate() {
        return Err(refusal(backup_id, &manifest, problems));
    }
    compression_of(&manifest)?;
    Ok(manifest)
}

/// The error a restore gives for a manifest that fails validation: an
/// unknown format as such, everything else as one list.
fn refusal(backup_id: &str, manifest: &Manifest, problems: Vec<ManifestProblem>) -> Error {
    if problems
        .iter()
        .any(|p| matches!(p, ManifestProblem::UnknownFormat { .. }))
    {
        return Error::UnknownFormat {
            backup_id: backup_id.to_owned(),
            version: short_id(&manifest.format_version),
            supported: SUPPORTED_FORMAT,
        };
    }
    Error::Manifest(datacamp_manifest::Error::Inconsistent {
        backup_id: short_id(backup_id),
        problems,
    })
}

/// Reads and parses `manifest.edn`; a missing one is `BackupNotFound`, or
/// `Incomplete` when the backup folder exists without it.
///
/// The manifest comes back as found *in this folder*: its database and
/// backup ids are the folder's (see [`found_in`]), so chunk keys resolve
/// where the backup is, even if its database folder was renamed.
pub(crate) async fn read_manifest(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Manifest> {
    let stored = read_stored_manifest(store, database_id, backup_id).await?;
    if let Some(mismatch) = folder_mismatch(&stored, database_id, backup_id) {
        tracing::warn!("{mismatch}; reading its chunks from the folder it was found in");
    }
    Ok(found_in(stored, database_id, backup_id))
}

/// `manifest.edn` as stored, ids as written in it.
pub(crate) async fn read_stored_manifest(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Manifest> {
    validate_id(IdKind::Database, database_id)?;
    validate_id(IdKind::Backup, backup_id)?;
    let key = store.layout().manifest(database_id, backup_id)?;
    match read_metadata(store, &key, Document::Manifest).await {
        Ok(text) => Ok(Manifest::from_edn(&text).map_err(|e| e.in_file(key.as_str()))?),
        Err(Error::Storage(e)) if e.is_not_found() => {
            let objects = store.list_backup_objects(database_id, backup_id).await?;
            if objects.is_empty() {
                Err(Error::BackupNotFound {
                    database_id: database_id.to_owned(),
                    backup_id: backup_id.to_owned(),
                    target: store.describe(),
                })
            } else {
                Err(Error::Incomplete {
                    backup_id: backup_id.to_owned(),
                    reason: "manifest.edn is missing".into(),
                })
            }
        }
        Err(e) => Err(e),
    }
}

/// Where the manifest's own ids differ from the folder it was found in
/// (a renamed or copied folder), in words.
pub(crate) fn folder_mismatch(
    manifest: &Manifest,
    database_id: &str,
    backup_id: &str,
) -> Option<String> {
    let mut parts = Vec::new();
    if manifest.database_id != database_id {
        parts.push(format!(
            "its :database/id is {:?} but it was found under database id {database_id:?}",
            short_id(&manifest.database_id)
        ));
    }
    if manifest.backup_id != backup_id {
        parts.push(format!(
            "its :backup/id is {:?} but it was found in folder {backup_id:?}",
            short_id(&manifest.backup_id)
        ));
    }
    (!parts.is_empty()).then(|| {
        format!(
            "the manifest of backup {backup_id} does not match its folder: {}",
            parts.join(", and ")
        )
    })
}

/// The manifest with the folder's ids, which is where its chunks are.
pub(crate) fn found_in(mut manifest: Manifest, database_id: &str, backup_id: &str) -> Manifest {
    database_id.clone_into(&mut manifest.database_id);
    backup_id.clone_into(&mut manifest.backup_id);
    manifest
}

/// The text of a metadata object (manifest, checkpoint), read with a bound:
/// an object larger than [`MAX_DOCUMENT_BYTES`] is refused from its size,
/// before its bytes are read (the storage side's one bounded read). A
/// missing object is the storage error (`is_not_found()`).
pub(crate) async fn read_metadata(store: &BackupStore, key: &Key, doc: Document) -> Result<String> {
    match store.get_bounded(key, MAX_DOCUMENT_BYTES as u64).await {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(datacamp_storage::Error::TooLarge { size, limit, .. }) => {
            let too_large = datacamp_manifest::Error::TooLarge {
                doc,
                bytes: size,
                limit,
            };
            Err(too_large.in_file(key.as_str()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// [`read_metadata`], with `None` when there is no object.
pub(crate) async fn read_metadata_opt(
    store: &BackupStore,
    key: &Key,
    doc: Document,
) -> Result<Option<String>> {
    match read_metadata(store, key, doc).await {
        Ok(text) => Ok(Some(text)),
        Err(Error::Storage(e)) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// How the manifest says chunks are compressed, for a manifest that passed
/// [`read_complete_manifest`] (which refuses an unknown compression; gzip,
/// the format's default, otherwise).
pub(crate) fn manifest_compression(manifest: &Manifest) -> Compression {
    compression_of(manifest).unwrap_or_default()
}

/// How the manifest says chunks are compressed (`:format/compression`;
/// the level, which reading does not need, from
/// `:datacamp/compression-level`). Anything but `:gzip`, `:zstd` and
/// `:none` is refused rather than guessed.
pub(crate) fn compression_of(manifest: &Manifest) -> Result<Compression> {
    let kind = &manifest.compression;
    let level = manifest.datacamp.compression_level;
    match (kind.namespace(), kind.name()) {
        (None, "none") => Ok(Compression::None),
        (None, "gzip") => Ok(Compression::Gzip {
            level: level.unwrap_or(6),
        }),
        (None, "zstd") => Ok(Compression::Zstd {
            level: level.unwrap_or(compress::ZSTD_DEFAULT_LEVEL),
        }),
        _ => Err(Error::UnknownCompression {
            backup_id: manifest.backup_id.clone(),
            compression: kind.to_string(),
        }),
    }
}

/// The key of a manifest chunk entry, resolved safely inside the backup's
/// folder: the one the manifest was found in (see [`read_manifest`]).
pub(crate) fn chunk_key(
    store: &BackupStore,
    manifest: &Manifest,
    chunk: &ChunkInfo,
) -> Result<Key> {
    Ok(store.layout().resolve_chunk(
        &manifest.database_id,
        &manifest.backup_id,
        chunk.id,
        chunk.s3_key.as_deref(),
    )?)
}

/// Fetches a chunk and checks its SHA-256 against the manifest.
pub(crate) async fn fetch_checked(
    store: &BackupStore,
    key: &Key,
    chunk: &ChunkInfo,
) -> Result<Bytes> {
    let bytes = store.get(key).await?;
    check_checksum(&bytes, key.as_str(), chunk)?;
    Ok(bytes)
}

/// Checks stored chunk bytes against the manifest's SHA-256 (CPU work: on
/// a blocking thread for a large chunk).
pub(crate) fn check_checksum(bytes: &[u8], key: &str, chunk: &ChunkInfo) -> Result<()> {
    let actual = compress::sha256_hex(bytes);
    if !actual.eq_ignore_ascii_case(&chunk.checksum) {
        return Err(Error::ChecksumMismatch {
            chunk_id: chunk.id,
            key: key.to_owned(),
            expected: chunk.checksum.clone(),
            actual,
        });
    }
    Ok(())
}

/// The most bytes one chunk may inflate to by default, whatever its
/// manifest entry says (sixteen times the default chunk size; a chunk's own
/// `:datacamp/uncompressed-bytes` tightens it). Set per operation:
/// `RestoreOptions::max_chunk_bytes`, `VerifyOptions::max_chunk_bytes`.
pub const DEFAULT_MAX_CHUNK_BYTES: u64 = DEFAULT_MAX_DOCUMENT_BYTES;

/// What decoding a chunk may cost, from its manifest entry: no more
/// inflated bytes than `:datacamp/uncompressed-bytes` (capped by `cap`),
/// no more datoms than `:chunk/datom-count`. Either
/// is checked while the chunk streams, so a decompression bomb fails
/// before its memory is spent.
pub(crate) fn chunk_limits(chunk: &ChunkInfo, cap: u64) -> ChunkLimits {
    ChunkLimits::default()
        .max_document_bytes(chunk.uncompressed_bytes.map_or(cap, |n| n.min(cap)))
        .max_datoms(chunk.datom_count)
}

/// A stored chunk as the codec reads it: decrypted (when sealed), then
/// decompressed.
pub(crate) type OpenedChunk<R> = ChunkReader<Decompressor<Unsealed<R>>>;

/// Opens a stored chunk for decoding within its [`chunk_limits`], checking
/// the document's `:chunk/id` against the manifest's. Stored bytes are
/// `seal(compress(fressian))`: `opener` undoes the seal, streaming.
pub(crate) fn open_chunk<R: Read>(
    input: R,
    compression: Compression,
    opener: &Opener,
    chunk: &ChunkInfo,
    key: &str,
    cap: u64,
) -> Result<OpenedChunk<R>> {
    let plain = opener.open(input, chunk.id, key)?;
    let limits = chunk_limits(chunk, cap);
    let inflated =
        compress::decompress_reader_within(plain, compression, limits.max_document_bytes)
            .map_err(|source| chunk_error(chunk, key, source))?;
    let reader = ChunkReader::with_limits(inflated, ReadOptions::default(), limits)
        .map_err(|source| chunk_error(chunk, key, source))?;
    match reader.header().chunk_id {
        Some(found) if found != chunk.id => Err(Error::ChunkIdMismatch {
            key: key.to_owned(),
            listed: chunk.id,
            found,
        }),
        _ => Ok(reader),
    }
}

/// A codec failure inside a chunk, naming it.
pub(crate) fn chunk_error(chunk: &ChunkInfo, key: &str, source: CodecError) -> Error {
    Error::Chunk {
        chunk_id: chunk.id,
        key: key.to_owned(),
        source,
    }
}

/// Decodes every datom of a stored chunk within its [`chunk_limits`];
/// returns how many it holds.
pub(crate) fn count_datoms(
    bytes: &[u8],
    compression: Compression,
    opener: &Opener,
    chunk: &ChunkInfo,
    key: &str,
    cap: u64,
) -> Result<u64> {
    let mut reader = open_chunk(bytes, compression, opener, chunk, key, cap)?;
    let mut count = 0u64;
    while reader
        .next_datom()
        .map_err(|source| chunk_error(chunk, key, source))?
        .is_some()
    {
        count += 1;
    }
    Ok(count)
}
