//! The datom-chunk document: one Fressian map per chunk file,
//!
//! ```text
//! {:format/type :datom-chunk, :format/version "1.0.0",
//!  :format/serialization :fressian, :chunk/id N, :datoms [[e a v tx added] …]}
//! ```
//!
//! encoded straight from `&[Datom]` and decoded straight into [`Datom`](datacamp_datom::Datom)s,
//! without building a generic tree. The encoder produces exactly the bytes
//! `(clojure.data.fressian/write-object w chunk-map)` produces (no footer),
//! except that `-0.0` keeps its sign (see the crate docs).
//!
//! The module is split by responsibility:
//!
//! - `write`: encoding ([`ChunkBuilder`] datom by datom, what a backup
//!   uses; [`ChunkEncoder`] and [`encode_chunk_to_vec`] for a whole slice);
//! - `read`: [`ChunkReader`], the streaming decoder, and [`decode_chunk`];
//! - `fast`: the reader's fast path for datoms of the reference's shape;
//! - `generic`: datoms and values from the generic Fressian tree (documents
//!   of an unusual shape), [`to_fressian`] and [`from_fressian`];
//! - `document`: the header fields ([`ChunkHeader`]) and their checks.

mod document;
mod fast;
mod generic;
mod read;
mod write;

pub use document::ChunkHeader;
pub use generic::{from_fressian, to_fressian};
pub use read::{decode_chunk, ChunkLimits, ChunkReader, DEFAULT_MAX_DOCUMENT_BYTES};
pub use write::{encode_chunk_to_vec, ChunkBuilder, ChunkEncoder, EncodedChunk};

/// `:format/type` of a chunk.
pub const FORMAT_TYPE: &str = "datom-chunk";
/// `:format/version` this crate writes.
pub const FORMAT_VERSION: &str = "1.0.0";
/// `:format/serialization` of a chunk.
pub const SERIALIZATION: &str = "fressian";
