//! Reading a backup: the manifest with its guards, chunk keys, fetching a
//! chunk with its checksum checked, and decoding it.

use bytes::Bytes;
use datacamp_codec::chunk::ChunkReader;
use datacamp_codec::compress::{self, Compression};
use datacamp_datom::Datom;
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

/// Decodes a stored chunk, calling `each` for every datom; returns how
/// many it saw. Checks the document's chunk id against the manifest's.
pub(crate) fn decode_chunk(
    bytes: &[u8],
    compression: Compression,
    chunk: &ChunkInfo,
    key: &str,
    mut each: impl FnMut(Datom) -> Result<()>,
) -> Result<u64> {
    let wrap = |source| Error::Chunk {
        chunk_id: chunk.id,
        key: key.to_owned(),
        source,
    };
    let mut reader =
        ChunkReader::new(compress::decompress_reader(bytes, compression)).map_err(wrap)?;
    if let Some(id) = reader.header().chunk_id {
        if id != chunk.id {
            return Err(Error::ChunkIdMismatch {
                key: key.to_owned(),
                listed: chunk.id,
                found: id,
            });
        }
    }
    let mut count = 0u64;
    while let Some(datom) = reader.next_datom().map_err(wrap)? {
        count += 1;
        each(datom)?;
    }
    Ok(count)
}
