//! Reading a backup: the manifest with its guards, chunk keys, fetching a
//! chunk with its checksum checked, and decoding it.

use std::io::Read;

use bytes::Bytes;
use datacamp_codec::chunk::{ChunkLimits, ChunkReader, DEFAULT_MAX_DOCUMENT_BYTES};
use datacamp_codec::compress::{self, Compression, Decompressor};
use datacamp_codec::fressian::ReadOptions;
use datacamp_codec::CodecError;
use datacamp_manifest::{validate_id, ChunkInfo, IdKind, Manifest};
use datacamp_storage::{BackupStore, Key};

use crate::error::{Error, Result};

/// The chunk-document format version this build reads and writes.
pub const SUPPORTED_FORMAT: &str = "1.0.0";

/// Reads `manifest.edn` of a backup, refusing a backup that is not there,
/// not complete or of an unknown format.
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
    if manifest.format_version != SUPPORTED_FORMAT {
        return Err(Error::UnknownFormat {
            backup_id: backup_id.to_owned(),
            version: manifest.format_version.clone(),
            supported: SUPPORTED_FORMAT,
        });
    }
    Ok(manifest)
}

/// Reads and parses `manifest.edn`; a missing one is `BackupNotFound`, or
/// `Incomplete` when the backup folder exists without it.
pub(crate) async fn read_manifest(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Manifest> {
    validate_id(IdKind::Database, database_id)?;
    validate_id(IdKind::Backup, backup_id)?;
    let key = store.layout().manifest(database_id, backup_id)?;
    match store.get(&key).await {
        Ok(bytes) => Ok(Manifest::from_edn(&String::from_utf8_lossy(&bytes))?),
        Err(e) if e.is_not_found() => {
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
        Err(e) => Err(e.into()),
    }
}

/// How the manifest says chunks are compressed.
pub(crate) fn manifest_compression(manifest: &Manifest) -> Compression {
    match manifest.compression.name() {
        "none" => Compression::None,
        _ => Compression::default(),
    }
}

/// The key of a manifest chunk entry, resolved safely inside the backup.
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
    let actual = compress::sha256_hex(&bytes);
    if !actual.eq_ignore_ascii_case(&chunk.checksum) {
        return Err(Error::ChecksumMismatch {
            chunk_id: chunk.id,
            key: key.as_str().to_owned(),
            expected: chunk.checksum.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// The environment variable that sets [`max_chunk_bytes`].
pub(crate) const MAX_CHUNK_BYTES_ENV: &str = "DATACAMP_MAX_CHUNK_BYTES";

/// The most bytes one chunk may inflate to, whatever its manifest entry
/// says: `DATACAMP_MAX_CHUNK_BYTES` (bytes, read once per process) or
/// [`DEFAULT_MAX_DOCUMENT_BYTES`] (1 GiB). A chunk's own
/// `:datacamp/uncompressed-bytes` tightens it.
pub(crate) fn max_chunk_bytes() -> u64 {
    static MAX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::env::var(MAX_CHUNK_BYTES_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_DOCUMENT_BYTES)
    })
}

/// What decoding a chunk may cost, from its manifest entry: no more
/// inflated bytes than `:datacamp/uncompressed-bytes` (capped by
/// [`max_chunk_bytes`]), no more datoms than `:chunk/datom-count`. Either
/// is checked while the chunk streams, so a decompression bomb fails
/// before its memory is spent.
pub(crate) fn chunk_limits(chunk: &ChunkInfo) -> ChunkLimits {
    let cap = max_chunk_bytes();
    ChunkLimits::default()
        .max_document_bytes(chunk.uncompressed_bytes.map_or(cap, |n| n.min(cap)))
        .max_datoms(chunk.datom_count)
}

/// Opens a stored chunk for decoding within its [`chunk_limits`], checking
/// the document's `:chunk/id` against the manifest's.
pub(crate) fn open_chunk<R: Read>(
    input: R,
    compression: Compression,
    chunk: &ChunkInfo,
    key: &str,
) -> Result<ChunkReader<Decompressor<R>>> {
    let reader = ChunkReader::with_limits(
        compress::decompress_reader(input, compression),
        ReadOptions::default(),
        chunk_limits(chunk),
    )
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
    chunk: &ChunkInfo,
    key: &str,
) -> Result<u64> {
    let mut reader = open_chunk(bytes, compression, chunk, key)?;
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
