//! Looking inside a backup: its manifest and checkpoint as stored, and the
//! datoms of a chunk file.

use std::io::BufRead;
use std::path::Path;

use datacamp_codec::chunk::{ChunkHeader, ChunkLimits, ChunkReader};
use datacamp_codec::compress::{self, Compression};
use datacamp_codec::fressian::ReadOptions;
use datacamp_datom::Datom;
use datacamp_manifest::{validate_id, IdKind};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::read::read_metadata;
use crate::seal::{self, Identities, Opener, Unsealed};

/// Which metadata document to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// `manifest.edn`.
    Manifest,
    /// `checkpoint.edn`.
    Checkpoint,
}

/// The stored text of a backup's manifest or checkpoint, as written (at
/// most [`datacamp_manifest::MAX_DOCUMENT_BYTES`]; a larger one is refused).
pub async fn document_text(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
    which: Document,
) -> Result<String> {
    validate_id(IdKind::Backup, backup_id)?;
    let layout = store.layout();
    let key = match which {
        Document::Manifest => layout.manifest(database_id, backup_id)?,
        Document::Checkpoint => layout.checkpoint(database_id, backup_id)?,
    };
    let doc = match which {
        Document::Manifest => datacamp_manifest::Document::Manifest,
        Document::Checkpoint => datacamp_manifest::Document::Checkpoint,
    };
    match read_metadata(store, &key, doc).await {
        Ok(text) => Ok(text),
        Err(Error::Storage(e)) if e.is_not_found() => Err(Error::BackupNotFound {
            database_id: database_id.to_owned(),
            backup_id: backup_id.to_owned(),
            target: store.url_of(&key),
        }),
        Err(e) => Err(e),
    }
}

/// Streams the datoms of a chunk file (gzip- or zstd-compressed or plain
/// Fressian, told apart by their magic bytes; an age-encrypted chunk is
/// opened with `identities` first) to `each`; returns the header. A loose
/// file has no manifest entry to bound it: it inflates to at most
/// `max_chunk_bytes` (e.g. [`crate::DEFAULT_MAX_CHUNK_BYTES`]), so a
/// decompression bomb is refused, not inflated.
///
/// An encrypted chunk opens with its backup's data identity given
/// directly, or with a user identity that opens the `keys.edn` of the
/// backup folder the file is in (`…/{backup-id}/chunks/FILE`).
pub fn chunk_file_datoms(
    path: &Path,
    max_chunk_bytes: u64,
    each: impl FnMut(Datom) -> Result<()>,
) -> Result<ChunkHeader> {
    chunk_file_datoms_with(path, max_chunk_bytes, &Identities::none(), each)
}

/// [`chunk_file_datoms`], opening an encrypted chunk with `identities`.
pub fn chunk_file_datoms_with(
    path: &Path,
    max_chunk_bytes: u64,
    identities: &Identities,
    mut each: impl FnMut(Datom) -> Result<()>,
) -> Result<ChunkHeader> {
    let key = path.display().to_string();
    let io = |source: std::io::Error| Error::Io {
        path: key.clone(),
        source,
    };
    let file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let mut plain = open_loose(file, path, identities)?;
    let magic = plain.fill_buf().map_err(io)?;
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::default()
    } else if magic.starts_with(&compress::ZSTD_MAGIC) {
        Compression::Zstd {
            level: compress::ZSTD_DEFAULT_LEVEL,
        }
    } else {
        Compression::None
    };
    let wrap = |source| Error::Chunk {
        chunk_id: 0,
        key: key.clone(),
        source,
    };
    let limits = ChunkLimits::default().max_document_bytes(max_chunk_bytes);
    let inflated =
        compress::decompress_reader_within(plain, compression, max_chunk_bytes).map_err(wrap)?;
    let mut reader =
        ChunkReader::with_limits(inflated, ReadOptions::default(), limits).map_err(wrap)?;
    let header = reader.header().clone();
    while let Some(datom) = reader.next_datom().map_err(wrap)? {
        each(datom)?;
    }
    Ok(header)
}

/// The age format's first line, which every encrypted chunk starts with.
const AGE_MAGIC: &[u8] = b"age-encryption.org/";

/// A loose chunk file's stored bytes, decrypted when they are an age file.
fn open_loose(
    mut file: std::io::BufReader<std::fs::File>,
    path: &Path,
    identities: &Identities,
) -> Result<std::io::BufReader<Unsealed<std::io::BufReader<std::fs::File>>>> {
    let io = |source: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let sealed = file.fill_buf().map_err(io)?.starts_with(AGE_MAGIC);
    let opener = if sealed {
        seal::loose_chunk_opener(path, identities)?
    } else {
        Opener::Plain
    };
    let unsealed = opener.open(file, 0, &path.display().to_string())?;
    Ok(std::io::BufReader::new(unsealed))
}
