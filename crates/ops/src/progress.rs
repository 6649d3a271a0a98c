//! Stage events for progress reporting, like the Clojure library's
//! `:progress-fn`.

use std::sync::Arc;

/// One step of an operation. Byte counts are compressed (stored) bytes.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// The operation started; totals are known where the operation knows them.
    Started {
        /// The operation (`backup`, `restore`, `verify`).
        operation: &'static str,
        /// The backup id.
        backup_id: String,
        /// Datoms to process, if known.
        total_datoms: Option<u64>,
        /// Chunks to process, if known.
        total_chunks: Option<u64>,
    },
    /// A chunk was stored.
    ChunkWritten {
        /// Its id.
        chunk_id: u64,
        /// Its datoms.
        datoms: u64,
        /// Its stored size.
        bytes: u64,
    },
    /// A chunk was read (and checked).
    ChunkRead {
        /// Its id.
        chunk_id: u64,
        /// Its datoms.
        datoms: u64,
        /// Its stored size.
        bytes: u64,
    },
    /// A restore is handing datoms to the database.
    Transacting {
        /// Datoms handed over so far.
        datoms: u64,
    },
    /// A restore has handed every datom to the database, which now builds
    /// its indexes: work after the stream, of unknown length, before
    /// [`ProgressEvent::Completed`].
    Indexing {
        /// Datoms being indexed.
        datoms: u64,
    },
    /// The operation finished.
    Completed {
        /// Datoms processed.
        datoms: u64,
        /// Chunks processed.
        chunks: u64,
        /// Bytes stored or read.
        bytes: u64,
    },
    /// The operation failed.
    Failed {
        /// The error, as text.
        error: String,
    },
}

/// A progress callback; called from worker tasks, so it must be cheap and
/// thread-safe.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

pub(crate) fn emit(progress: &Option<ProgressFn>, event: ProgressEvent) {
    if let Some(f) = progress {
        f(&event);
    }
}
