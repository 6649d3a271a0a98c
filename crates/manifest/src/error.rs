//! The one error type of this crate.

use std::fmt;

/// Which metadata document an error is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Document {
    /// `manifest.edn`.
    Manifest,
    /// `checkpoint.edn`.
    Checkpoint,
    /// `migration-manifest.edn`.
    MigrationManifest,
    /// `keys.edn` (an encrypted backup's wrapped data key).
    Keys,
    /// `lease.edn` (who holds a database's lease).
    Lease,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::Manifest => "manifest",
            Document::Checkpoint => "checkpoint",
            Document::MigrationManifest => "migration manifest",
            Document::Keys => "keys file",
            Document::Lease => "lease",
        })
    }
}

/// Which kind of id [`crate::validate_id`] checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A database id (`default-db`, `production-db`, …).
    Database,
    /// A backup id (`20251018-195132-a3f9c2`).
    Backup,
    /// A live-migration id.
    Migration,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Database => "database id",
            IdKind::Backup => "backup id",
            IdKind::Migration => "migration id",
        })
    }
}

/// The rule an id broke. Ids become path segments and object keys, so the
/// rules keep them from escaping their folder or hiding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdRule {
    /// The id is empty.
    Empty,
    /// The id is longer than [`crate::MAX_ID_LEN`] characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// The id contains a control character.
    ControlCharacter {
        /// The character's position (0-based, in characters).
        at: usize,
    },
    /// The id contains `/`.
    Slash,
    /// The id contains `\`.
    Backslash,
    /// The id contains `..`.
    DotDot,
    /// The id starts with `.`.
    LeadingDot,
    /// A backup id that is not `YYYYMMDD-HHMMSS-hhhhhh`.
    BackupIdShape,
}

impl fmt::Display for IdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdRule::Empty => f.write_str("must not be empty"),
            IdRule::TooLong { len } => write!(
                f,
                "is {len} characters long; at most {} are allowed",
                crate::MAX_ID_LEN
            ),
            IdRule::ControlCharacter { at } => {
                write!(
                    f,
                    "must not contain control characters (found one at character {at})"
                )
            }
            IdRule::Slash => f.write_str("must not contain '/'"),
            IdRule::Backslash => f.write_str("must not contain '\\'"),
            IdRule::DotDot => f.write_str("must not contain '..'"),
            IdRule::LeadingDot => f.write_str("must not start with '.'"),
            IdRule::BackupIdShape => f.write_str(
                "expected YYYYMMDD-HHMMSS-hhhhhh (UTC date and time, then 6 lowercase hex digits)",
            ),
        }
    }
}

/// What can go wrong reading metadata or checking an id.
///
/// Messages name the document, the key (as a `get-in` path for nested keys,
/// e.g. `[:chunks 3 :chunk/checksum]`) and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not EDN at all.
    #[error("{doc} is not valid EDN: {reason}")]
    Syntax {
        /// The document.
        doc: Document,
        /// The parser's message, with line and column.
        reason: String,
    },
    /// The document is larger than [`crate::MAX_DOCUMENT_BYTES`]; it is
    /// refused before it is parsed.
    #[error("{doc} is {bytes} bytes long; at most {limit} bytes are read")]
    TooLarge {
        /// The document.
        doc: Document,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The text is EDN but not a map.
    #[error("{doc}: expected a map at the top level, found {found}")]
    NotAMap {
        /// The document.
        doc: Document,
        /// The value found, as (shortened) EDN.
        found: String,
    },
    /// A key holds a value of the wrong type.
    #[error("{doc} key {key}: expected {expected}, found {found}")]
    WrongType {
        /// The document.
        doc: Document,
        /// The key or `get-in` path.
        key: String,
        /// What the key must hold.
        expected: &'static str,
        /// The value found, as (shortened) EDN.
        found: String,
    },
    /// A key the document cannot do without is absent (or `nil`).
    #[error("{doc} is missing the required key {key}")]
    MissingKey {
        /// The document.
        doc: Document,
        /// The key or `get-in` path.
        key: String,
    },
    /// A key has the right type but an unusable value.
    #[error("{doc} key {key}: {reason}")]
    InvalidValue {
        /// The document.
        doc: Document,
        /// The key or `get-in` path.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The manifest reads, but is not consistent with itself (see
    /// [`crate::Manifest::validate`]); restore refuses it, verify reports
    /// each problem.
    #[error(
        "manifest of backup {backup_id} is inconsistent: {}",
        join_problems(problems)
    )]
    Inconsistent {
        /// The backup id, shortened if very long.
        backup_id: String,
        /// Every problem found.
        problems: Vec<crate::ManifestProblem>,
    },
    /// Any of the other errors, in the named file (an object key or path).
    #[error("{file}: {source}")]
    InFile {
        /// The object key or path the document was read from.
        file: String,
        /// What was wrong in it.
        #[source]
        source: Box<Error>,
    },
    /// An id breaks a rule (see [`IdRule`]).
    #[error("invalid {kind} {id}: {rule}")]
    InvalidId {
        /// Which kind of id.
        kind: IdKind,
        /// The id, quoted and escaped (and shortened if very long).
        id: String,
        /// The rule it broke.
        rule: IdRule,
    },
}

impl Error {
    pub(crate) fn invalid_id(kind: IdKind, id: &str, rule: IdRule) -> Error {
        Error::InvalidId {
            kind,
            id: crate::id::quote_id(id),
            rule,
        }
    }

    /// This error, naming the file (object key or path) it was found in.
    pub fn in_file(self, file: impl Into<String>) -> Error {
        match self {
            already @ Error::InFile { .. } => already,
            other => Error::InFile {
                file: file.into(),
                source: Box::new(other),
            },
        }
    }

    /// The error without the file it was found in.
    pub fn without_file(&self) -> &Error {
        match self {
            Error::InFile { source, .. } => source.without_file(),
            other => other,
        }
    }
}

fn join_problems(problems: &[crate::ManifestProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
