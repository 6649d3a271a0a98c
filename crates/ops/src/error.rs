//! The error type of the backup, restore, verify, list and cleanup
//! operations.

use datacamp_codec::CodecError;

/// What can make an operation fail.
///
/// Problems found *in a backup* by `verify` are reported in its result, not
/// as errors; these are the failures that stop an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backup target failed (after retries), or an id broke the rules.
    #[error(transparent)]
    Storage(#[from] datacamp_storage::Error),
    /// `manifest.edn` or `checkpoint.edn` could not be parsed.
    #[error(transparent)]
    Manifest(#[from] datacamp_manifest::Error),
    /// The database failed, or refused the data.
    #[error(transparent)]
    Database(#[from] datacamp_datom::Error),
    /// An incremental or history backup refused, or a chain of backups
    /// that cannot be read (see [`crate::ChainError`]).
    /// (Boxed: its messages carry several names, and the error stays small.)
    #[error(transparent)]
    Chain(Box<crate::chain::ChainError>),
    /// A chunk could not be encoded or decoded.
    #[error("chunk {chunk_id} ({key}): {source}")]
    Chunk {
        /// The chunk id.
        chunk_id: u64,
        /// Its key in the target.
        key: String,
        /// What the codec found.
        #[source]
        source: CodecError,
    },
    /// A datom of the backup that the target database refuses (wrong
    /// type, undeclared attribute, out-of-range id, cardinality or
    /// uniqueness broken, not part of the bootstrap transaction it claims),
    /// with the chunk(s) that hold its entity where they are known.
    #[error("{}{source}", chunk_names(.chunks))]
    DatomRefused {
        /// `(chunk id, key)` of the chunks holding the entity (empty when
        /// unknown).
        chunks: Vec<(u64, String)>,
        /// What the database said (boxed: the variant stays small).
        #[source]
        source: Box<datacamp_datom::Error>,
    },
    /// A chunk document whose `:chunk/id` is not the one the manifest lists.
    #[error("chunk {key} says :chunk/id {found}, the manifest lists it as chunk {listed}")]
    ChunkIdMismatch {
        /// Its key.
        key: String,
        /// The manifest's id.
        listed: u64,
        /// The document's id.
        found: u64,
    },
    /// An encrypted backup read with no identity or passphrase.
    #[error("backup {backup_id} is encrypted; pass --identity-file or DATACAMP_PASSPHRASE")]
    Encrypted {
        /// The backup id.
        backup_id: String,
    },
    /// None of the identities given opens the backup's data key.
    #[error("no identity matches the recipients of backup {backup_id}")]
    NoMatchingIdentity {
        /// The backup id.
        backup_id: String,
    },
    /// A backup's keys.edn is missing or not usable.
    #[error("keys.edn of backup {backup_id}: {reason}")]
    Keys {
        /// The backup id.
        backup_id: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// An encrypted chunk that does not decrypt (tampered, truncated,
    /// another backup's).
    #[error("chunk {chunk_id} ({key}) failed authentication: {reason}")]
    Unseal {
        /// The chunk id.
        chunk_id: u64,
        /// Its key in the target.
        key: String,
        /// What age said.
        reason: String,
    },
    /// An encryption setting that cannot be honoured: never a silent
    /// plaintext backup or read.
    #[error("backup {backup_id} cannot be encrypted or decrypted as asked: {reason}")]
    EncryptionUnsupported {
        /// The backup id.
        backup_id: String,
        /// Why, in words.
        reason: String,
    },
    /// An identity or recipient file that cannot be used (never quoted).
    #[error("key file {}: {reason}", .path.display())]
    KeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// There is no backup with this id.
    #[error("backup {backup_id} of database {database_id} not found in {target}")]
    BackupNotFound {
        /// The database id.
        database_id: String,
        /// The backup id.
        backup_id: String,
        /// The target, as a URL or path.
        target: String,
    },
    /// The backup has no completion marker, or its manifest says it is not
    /// completed.
    #[error("backup {backup_id} is incomplete ({reason}); resume it with `datacamp backup --resume {backup_id}` or remove it with `datacamp cleanup`")]
    Incomplete {
        /// The backup id.
        backup_id: String,
        /// What is missing.
        reason: String,
    },
    /// The backup is already complete (a resume has nothing to do).
    #[error("backup {backup_id} is already complete")]
    AlreadyComplete {
        /// The backup id.
        backup_id: String,
    },
    /// A format version this build does not understand.
    #[error("backup {backup_id} has format version {version:?}; this build reads {supported:?}")]
    UnknownFormat {
        /// The backup id.
        backup_id: String,
        /// What the manifest says.
        version: String,
        /// What this build reads.
        supported: &'static str,
    },
    /// A compression this build does not read (`:format/compression`).
    #[error(
        "backup {backup_id} says its chunks are compressed with {compression}; this build \
         reads :gzip, :zstd and :none"
    )]
    UnknownCompression {
        /// The backup id.
        backup_id: String,
        /// What the manifest says.
        compression: String,
    },
    /// Chunks listed in the manifest are not in the target.
    #[error("backup {backup_id} is missing chunk(s) {chunk_ids:?}")]
    MissingChunks {
        /// The backup id.
        backup_id: String,
        /// The missing chunk ids.
        chunk_ids: Vec<u64>,
    },
    /// A chunk's SHA-256 is not the one the manifest records.
    #[error("chunk {chunk_id} ({key}) is corrupt: SHA-256 {actual}, manifest says {expected}")]
    ChecksumMismatch {
        /// The chunk id.
        chunk_id: u64,
        /// Its key.
        key: String,
        /// The manifest's checksum.
        expected: String,
        /// The checksum of the bytes read.
        actual: String,
    },
    /// Counted datoms differ from what the manifest or the source says.
    #[error("{what}: expected {expected} datoms, found {actual}")]
    CountMismatch {
        /// Which count (e.g. "chunk 3", "backup total", "restored database").
        what: String,
        /// The recorded count.
        expected: u64,
        /// The counted one.
        actual: u64,
    },
    /// A restore target that already holds data.
    #[error("restore target {url} is not empty ({datoms} datoms besides the bootstrap transaction); restore needs an empty database")]
    TargetNotEmpty {
        /// The database URL.
        url: String,
        /// How many non-bootstrap datoms it holds.
        datoms: u64,
    },
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An option out of range.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    // Replay, chains and point-in-time restore (issue 13, reading side).
    /// One transaction of a replayed log holds more datoms than a replay
    /// holds in memory ([`crate::MAX_TX_DATOMS`]).
    #[error("transaction {tx} of {origin} holds more than {limit} datoms, the most a replay holds in memory at once")]
    TransactionTooLarge {
        /// The transaction id.
        tx: i64,
        /// What the log comes from ("backup …").
        origin: String,
        /// The limit.
        limit: usize,
    },
    /// A log whose transactions are not each once, in increasing order,
    /// with their `:db/txInstant`.
    #[error("transaction {tx} of {origin} cannot be replayed: {reason}")]
    LogOrder {
        /// The transaction id.
        tx: i64,
        /// What the log comes from.
        origin: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A backup chain that cannot be restored: a link missing, incomplete,
    /// of another database, or not directly following its base.
    #[error("backup {backup_id} cannot be restored: its chain is broken at {link}: {reason}")]
    ChainBroken {
        /// The backup asked for.
        backup_id: String,
        /// The first broken link (a backup id).
        link: String,
        /// What is wrong, in words.
        reason: String,
    },
    /// A point-in-time restore to a point the backup does not reach.
    #[error("backup {backup_id} cannot be restored as of {asked}: {reason}")]
    RestorePoint {
        /// The backup asked for.
        backup_id: String,
        /// The point asked for, as given.
        asked: String,
        /// Why, with the earliest and latest points it can reach.
        reason: String,
    },
    /// Another process holds the database's lease (a backup, forget or
    /// cleanup is running, or was killed less than a lease ago).
    #[error("database {} in {target} is locked by {}{}; wait for it, or, if that process is gone, run `datacamp unlock --from {target} --database-id {}`", .holder.database_id, .holder.describe(), if *.expires_in_s > 0 { format!(" (the lease lapses in {} s unless renewed)", .expires_in_s) } else { String::new() }, .holder.database_id)]
    Locked {
        /// The target.
        target: String,
        /// Who holds the lease, and until when.
        holder: Box<crate::lock::LeaseInfo>,
        /// Seconds until the lease expires unless renewed.
        expires_in_s: i64,
    },
    /// This process's lease was lost while it ran: the operation stopped.
    #[error("the lease of database {database_id} was lost: {reason}; the operation was stopped, as another process may now write")]
    LeaseLost {
        /// The database id.
        database_id: String,
        /// How it was lost.
        reason: String,
    },
    /// A lease object that cannot be read: nobody can tell who holds it.
    #[error("the lease of database {database_id} cannot be read ({problem}); if no backup, forget or cleanup is running, remove it with `datacamp unlock`")]
    LeaseUnreadable {
        /// The database id.
        database_id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// `copy` found another backup under the same id at the destination.
    #[error("cannot copy backup {backup_id} to {target}: {reason}")]
    DestinationHoldsOther {
        /// The backup id.
        backup_id: String,
        /// The destination.
        target: String,
        /// What it holds.
        reason: String,
    },
    /// A worker task died (a bug; reported rather than hidden).
    #[error("internal error: {0}")]
    Internal(String),
}

/// `chunk 3 (key): ` or `chunks 3 (key), 4 (key): ` or nothing.
fn chunk_names(chunks: &[(u64, String)]) -> String {
    let names: Vec<String> = chunks
        .iter()
        .map(|(id, key)| format!("{id} ({key})"))
        .collect();
    match names.len() {
        0 => String::new(),
        1 => format!("chunk {}: ", names[0]),
        _ => format!("chunks {}: ", names.join(", ")),
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::chain::ChainError> for Error {
    fn from(e: crate::chain::ChainError) -> Error {
        Error::Chain(Box::new(e))
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Error {
        Error::Internal(format!("worker task failed: {e}"))
    }
}
