//! Verify: by default what the Clojure library checks (manifest readable,
//! backup complete, every chunk present); `deep` also re-hashes every
//! chunk, decodes it and checks the per-chunk and total datom counts
//! against the manifest and the source database's count.

use datacamp_codec::compress;
use datacamp_datom::Engines;
use datacamp_manifest::{short_id, BackupKind, Manifest};
use datacamp_storage::BackupStore;
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::progress::{emit, ProgressEvent, ProgressFn};
use crate::read::{
    chunk_key, count_datoms, folder_mismatch, found_in, manifest_compression,
    read_complete_manifest, read_stored_manifest,
};
use crate::seal::{self, Identities};
use crate::DEFAULT_DATABASE_ID;

/// How to verify.
#[derive(Clone)]
pub struct VerifyOptions {
    /// The database id the backup is filed under (default `default-db`).
    pub database_id: String,
    /// Re-hash and decode every chunk.
    pub deep: bool,
    /// Chunks read at once in a deep verify (default 2).
    pub parallel: usize,
    /// The most bytes one chunk may inflate to in a deep verify (default
    /// [`crate::DEFAULT_MAX_CHUNK_BYTES`], 1 GiB); a chunk's own
    /// `:datacamp/uncompressed-bytes` tightens it.
    pub max_chunk_bytes: u64,
    /// Called with stage events.
    pub progress: Option<ProgressFn>,
    /// Where a deep verify finds the `file` engine it loads the backup
    /// into (a scratch database, deleted afterwards). Empty by default: a
    /// deep verify then fails, naming what is missing; pass
    /// `datacamp::engines()`.
    pub engines: Engines,
    /// What opens an encrypted backup's data key for a deep verify (a
    /// plain verify needs none: checksums are over the stored bytes).
    pub identities: Identities,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            database_id: DEFAULT_DATABASE_ID.to_string(),
            deep: false,
            parallel: 2,
            max_chunk_bytes: crate::DEFAULT_MAX_CHUNK_BYTES,
            progress: None,
            engines: Engines::default(),
            identities: Identities::none(),
        }
    }
}

impl std::fmt::Debug for VerifyOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("database_id", &self.database_id)
            .field("deep", &self.deep)
            .field("parallel", &self.parallel)
            .field("max_chunk_bytes", &self.max_chunk_bytes)
            .finish_non_exhaustive()
    }
}

/// Something wrong with one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkProblem {
    /// The chunk id.
    pub chunk_id: u64,
    /// Its key in the target.
    pub key: String,
    /// What is wrong, in words.
    pub problem: String,
}

/// What verify found. `success` is true only when nothing is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyResult {
    /// Nothing is wrong.
    pub success: bool,
    /// The backup id.
    pub backup_id: String,
    /// The database id.
    pub database_id: String,
    /// The completion marker exists and the manifest says completed.
    pub complete: bool,
    /// Whether chunks were re-hashed and decoded.
    pub deep: bool,
    /// Chunks the manifest lists.
    pub chunk_count: u64,
    /// Every listed chunk exists.
    pub all_chunks_present: bool,
    /// Ids of listed chunks that do not exist.
    pub missing_chunks: Vec<u64>,
    /// Chunks that exist but are wrong (deep only).
    pub bad_chunks: Vec<ChunkProblem>,
    /// Problems with the backup as a whole (incomplete, manifest
    /// unreadable, unknown format, chunk ids or totals that do not add up):
    /// every reason restore would refuse it, and more.
    pub problems: Vec<String>,
    /// Things worth knowing that do not stop a restore (a manifest whose
    /// database or backup id differs from the folder it is in).
    pub warnings: Vec<String>,
    /// Datoms decoded (deep only).
    pub datoms_checked: Option<u64>,
    /// Stored bytes of the listed chunks (from the manifest).
    pub total_bytes: u64,
    /// For an incremental backup, the chain checked, base first (this
    /// backup last); empty for a full or history backup, or when the chain
    /// could not be followed (a problem says where).
    pub chain: Vec<String>,
}

/// Verifies a backup. Problems found in the backup are reported in the
/// result; an `Err` means the backup could not be examined at all (not
/// found, target unreachable).
///
/// An incremental backup is verified with its whole chain: every link
/// present, complete and directly following its base (no gap, no
/// overlap, the same database identity), each link verified as this one
/// is (deep: re-hashed and decoded); the first broken link is named. A
/// deep verify then restores the whole chain into a scratch database.
pub async fn verify(
    store: &BackupStore,
    backup_id: &str,
    opts: &VerifyOptions,
) -> Result<VerifyResult> {
    crate::validate_parallel(opts.parallel)?;
    let (mut result, kind) = verify_one(store, backup_id, opts, Load::UnlessIncremental).await?;
    if kind != Some(BackupKind::Incremental) {
        return Ok(result);
    }
    let sound_alone = result.success;
    check_chain(store, backup_id, opts, &mut result).await?;
    if opts.deep && sound_alone && result.problems.is_empty() {
        if let Ok(manifest) = read_complete_manifest(store, &opts.database_id, backup_id).await {
            check_by_loading(store, &manifest, opts, &mut result).await?;
        }
    }
    result.success = sound_alone && result.problems.is_empty() && result.bad_chunks.is_empty();
    Ok(result)
}

/// Whether a deep verify of one backup restores it into a scratch database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    /// Yes, unless it is an incremental (whose chain is restored once,
    /// after every link has been checked).
    UnlessIncremental,
    /// No: a link of a chain, restored with the whole chain.
    Never,
}

/// Follows the chain of incremental `backup_id` and verifies every link
/// before it, base first, stopping at the first broken one.
async fn check_chain(
    store: &BackupStore,
    backup_id: &str,
    opts: &VerifyOptions,
    result: &mut VerifyResult,
) -> Result<()> {
    let chain = match crate::restore::resolve_chain(store, &opts.database_id, backup_id).await {
        Ok(chain) => chain,
        Err(e @ Error::ChainBroken { .. }) => {
            result.problems.push(e.to_string());
            return Ok(());
        }
        Err(e) => {
            result
                .problems
                .push(format!("its chain cannot be followed: {e}"));
            return Ok(());
        }
    };
    result.chain = chain.clone();
    for (i, link) in chain.iter().enumerate() {
        if link == backup_id {
            continue;
        }
        let (checked, _) = verify_one(store, link, opts, Load::Never).await?;
        if let Some(problem) = first_problem(&checked) {
            let child = chain.get(i + 1).map_or(backup_id, String::as_str);
            result.problems.push(format!(
                "its chain is broken at {} (the base of {}): {problem}",
                short_id(link),
                short_id(child)
            ));
            break;
        }
    }
    Ok(())
}

/// The first thing wrong with a verified backup, in words.
fn first_problem(r: &VerifyResult) -> Option<String> {
    if let Some(p) = r.problems.first() {
        return Some(p.clone());
    }
    if !r.missing_chunks.is_empty() {
        return Some(format!("missing chunk(s) {:?}", r.missing_chunks));
    }
    r.bad_chunks
        .first()
        .map(|b| format!("chunk {} ({}): {}", b.chunk_id, b.key, b.problem))
}

/// Verifies one backup alone; also says what kind it is, when its
/// manifest reads.
async fn verify_one(
    store: &BackupStore,
    backup_id: &str,
    opts: &VerifyOptions,
    load: Load,
) -> Result<(VerifyResult, Option<BackupKind>)> {
    let db_id = opts.database_id.as_str();
    let mut result = VerifyResult {
        success: false,
        backup_id: backup_id.to_owned(),
        database_id: db_id.to_owned(),
        complete: false,
        deep: opts.deep,
        chunk_count: 0,
        all_chunks_present: false,
        missing_chunks: Vec::new(),
        bad_chunks: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
        datoms_checked: None,
        total_bytes: 0,
        chain: Vec::new(),
    };
    let manifest = match read_stored_manifest(store, db_id, backup_id).await {
        Ok(m) => {
            result
                .warnings
                .extend(folder_mismatch(&m, db_id, backup_id));
            found_in(m, db_id, backup_id)
        }
        Err(Error::Incomplete { reason, .. }) => {
            result.problems.push(format!("incomplete: {reason}"));
            return Ok((result, None));
        }
        Err(Error::Manifest(e)) => {
            result
                .problems
                .push(format!("manifest.edn is unreadable: {e}"));
            return Ok((result, None));
        }
        Err(e) => return Err(e),
    };
    let marker = store.layout().complete_marker(db_id, backup_id)?;
    let has_marker = store.exists(&marker).await?;
    result.complete = has_marker && manifest.completed;
    if !has_marker {
        result
            .problems
            .push("incomplete: complete.marker is missing".into());
    } else if !manifest.completed {
        result
            .problems
            .push("incomplete: the manifest says :backup/completed false".into());
    }
    result.chunk_count = manifest.chunks.len() as u64;
    result.total_bytes = manifest.chunks.iter().filter_map(|c| c.size_bytes).sum();
    // The same validation restore refuses on.
    if let Err(problems) = manifest.validate() {
        result
            .problems
            .extend(problems.iter().map(ToString::to_string));
    }
    emit(
        &opts.progress,
        ProgressEvent::Started {
            operation: "verify",
            backup_id: backup_id.to_owned(),
            total_datoms: Some(manifest.datom_count),
            total_chunks: Some(result.chunk_count),
        },
    );

    let present: std::collections::HashMap<String, u64> = store
        .list_backup_objects(db_id, backup_id)
        .await?
        .into_iter()
        .map(|o| (o.key.as_str().to_owned(), o.size))
        .collect();
    let mut to_read = Vec::new();
    for chunk in &manifest.chunks {
        match chunk_key(store, &manifest, chunk) {
            Ok(key) => match present.get(key.as_str()) {
                None => result.missing_chunks.push(chunk.id),
                Some(&size) => {
                    if let Some(expected) = chunk.size_bytes.filter(|&s| s != size) {
                        result.bad_chunks.push(ChunkProblem {
                            chunk_id: chunk.id,
                            key: key.as_str().to_owned(),
                            problem: format!("size is {size} bytes, the manifest says {expected}"),
                        });
                    }
                    to_read.push((chunk, key));
                }
            },
            Err(e) => result.bad_chunks.push(ChunkProblem {
                chunk_id: chunk.id,
                key: chunk.s3_key.clone().unwrap_or_default(),
                problem: e.to_string(),
            }),
        }
    }
    result.all_chunks_present = result.missing_chunks.is_empty();

    let kind = manifest.kind().ok();
    if opts.deep {
        let load = load == Load::UnlessIncremental && kind != Some(BackupKind::Incremental);
        deep_check(store, &manifest, to_read, opts, load, &mut result).await?;
    }
    result.success = result.complete
        && result.all_chunks_present
        && result.bad_chunks.is_empty()
        && result.problems.is_empty();
    emit(
        &opts.progress,
        ProgressEvent::Completed {
            datoms: result.datoms_checked.unwrap_or(0),
            chunks: result.chunk_count,
            bytes: result.total_bytes,
        },
    );
    Ok((result, kind))
}

async fn deep_check(
    store: &BackupStore,
    manifest: &Manifest,
    to_read: Vec<(&datacamp_manifest::ChunkInfo, datacamp_storage::Key)>,
    opts: &VerifyOptions,
    load: bool,
    result: &mut VerifyResult,
) -> Result<()> {
    let compression = manifest_compression(manifest);
    let opener = seal::opener_for(store, manifest, &opts.identities).await?;
    let opener = &opener;
    let cap = opts.max_chunk_bytes;
    let mut reads = futures::stream::iter(to_read)
        .map(|(chunk, key)| async move {
            let bytes = store.get(&key).await?;
            let chunk = chunk.clone();
            let key_text = key.as_str().to_owned();
            let opener = opener.clone();
            // Hashing and decoding are CPU work: off the async threads.
            let checked = tokio::task::spawn_blocking(move || {
                let actual = compress::sha256_hex(&bytes);
                let mut problems = Vec::new();
                if !actual.eq_ignore_ascii_case(&chunk.checksum) {
                    problems.push(format!(
                        "checksum mismatch: SHA-256 {actual}, manifest says {}",
                        chunk.checksum
                    ));
                }
                let decoded = count_datoms(&bytes, compression, &opener, &chunk, &key_text, cap);
                let count = match decoded {
                    Ok(n) => {
                        if let Some(expected) = chunk.datom_count.filter(|&e| e != n) {
                            problems
                                .push(format!("holds {n} datoms, the manifest says {expected}"));
                        }
                        Some(n)
                    }
                    Err(e) => {
                        problems.push(format!("does not decode: {}", without_chunk_name(&e)));
                        None
                    }
                };
                (chunk, key_text, bytes.len() as u64, count, problems)
            })
            .await?;
            Ok::<_, Error>(checked)
        })
        .buffered(opts.parallel);
    let mut total = 0u64;
    let mut all_decoded = true;
    while let Some(read) = reads.next().await {
        let (chunk, key, size, count, problems) = read?;
        match count {
            Some(n) => total += n,
            None => all_decoded = false,
        }
        emit(
            &opts.progress,
            ProgressEvent::ChunkRead {
                chunk_id: chunk.id,
                datoms: count.unwrap_or(0),
                bytes: size,
            },
        );
        for problem in problems {
            result.bad_chunks.push(ChunkProblem {
                chunk_id: chunk.id,
                key: key.clone(),
                problem,
            });
        }
    }
    result.datoms_checked = Some(total);
    if all_decoded && result.all_chunks_present {
        if total != manifest.datom_count {
            result.problems.push(format!(
                "chunks hold {total} datoms, :stats/datom-count says {}",
                manifest.datom_count
            ));
        }
        // An incremental's chunks hold its transactions' datoms, not the
        // source's current datoms: its source count is checked by the
        // chain restore instead.
        let whole = manifest.kind().is_ok_and(|k| k == BackupKind::Full);
        if let Some(source) = manifest
            .datacamp
            .source_datom_count
            .filter(|&s| whole && s != total)
        {
            result.problems.push(format!(
                "chunks hold {total} datoms, the source database counted {source} (:datacamp/source-datom-count)"
            ));
        }
    }
    let sound = result.complete
        && result.all_chunks_present
        && result.bad_chunks.is_empty()
        && result.problems.is_empty();
    if sound && load {
        check_by_loading(store, manifest, opts, result).await?;
    }
    Ok(())
}

/// A problem's text without the "chunk N (key): " its error starts with
/// (the [`ChunkProblem`] names the chunk already).
fn without_chunk_name(e: &Error) -> String {
    match e {
        Error::Chunk { source, .. } => source.to_string(),
        Error::ChunkIdMismatch { listed, found, .. } => {
            format!("it says :chunk/id {found}, the manifest lists it as chunk {listed}")
        }
        Error::DatomRefused { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Checks the datoms against the schema exactly as a restore does, by
/// restoring into a scratch `file` database in a temporary directory
/// (deleted afterwards): the engine's `load` is the one place those rules
/// live. Memory stays that of a restore; the disk needs room for the
/// database (see docs/db-engine.md).
async fn check_by_loading(
    store: &BackupStore,
    manifest: &Manifest,
    opts: &VerifyOptions,
    result: &mut VerifyResult,
) -> Result<()> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir().display().to_string(),
        source,
    })?;
    let url = dir.path().join("verify-scratch.db").display().to_string();
    if opts.engines.engine(&url).is_err() {
        return Err(Error::InvalidOption {
            option: "engines",
            reason: "a deep verify loads the backup into a scratch file database, and no \
                     engine is registered for file:// (pass datacamp::engines())"
                .into(),
        });
    }
    let restore_opts = crate::restore::RestoreOptions {
        database_id: opts.database_id.clone(),
        parallel: opts.parallel,
        // The chunks were just read and hashed.
        check_all_first: Some(false),
        max_chunk_bytes: opts.max_chunk_bytes,
        as_of: None,
        progress: None,
        identities: opts.identities.clone(),
    };
    let engines = &opts.engines;
    let outcome =
        crate::restore::restore_to_url(engines, &url, store, &manifest.backup_id, &restore_opts)
            .await;
    if engines.exists(&url)? {
        engines.delete(&url)?;
    }
    match outcome {
        Ok(_) => {}
        Err(Error::DatomRefused { chunks, source }) if !chunks.is_empty() => {
            for (chunk_id, key) in chunks {
                result.bad_chunks.push(ChunkProblem {
                    chunk_id,
                    key,
                    problem: format!("a restore would refuse it: {source}"),
                });
            }
        }
        Err(e) => result
            .problems
            .push(format!("a restore would refuse it: {e}")),
    }
    Ok(())
}
