//! The error type shared by everything that implements or uses the
//! [`Database`](crate::Database) and [`Connection`](crate::Connection) traits.

use crate::keyword::Keyword;
use crate::schema::ValueType;

/// What can go wrong reading or writing a datom database.
///
/// Every message names the object that failed (attribute, value, entity,
/// transaction, path) and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Schema flexibility `write` and the attribute was never declared.
    #[error("attribute {attr} is not declared in the schema (schema-flexibility is write; declare it or create the database with schema-flexibility read)")]
    UndeclaredAttribute {
        /// The attribute.
        attr: Keyword,
    },
    /// A value does not have the attribute's declared type.
    #[error("wrong value type for {attr}: expected {expected}, got {found} {value}")]
    WrongValueType {
        /// The attribute.
        attr: Keyword,
        /// Its declared type.
        expected: ValueType,
        /// The type name of the value given.
        found: &'static str,
        /// The value given, as EDN.
        value: String,
    },
    /// A `:db.unique/value` attribute already has this value on another entity.
    #[error("unique conflict on {attr}: value {value} already belongs to entity {existing}, cannot also give it to entity {entity}")]
    UniqueConflict {
        /// The attribute.
        attr: Keyword,
        /// The value, as EDN.
        value: String,
        /// The entity that holds it.
        existing: i64,
        /// The entity the transaction tried to give it to.
        entity: i64,
    },
    /// A lookup ref names no entity.
    #[error("lookup ref [{attr} {value}] does not match any entity")]
    LookupRefNotFound {
        /// The attribute.
        attr: Keyword,
        /// The value, as EDN.
        value: String,
    },
    /// An entity id, ident or ref that does not exist or is not allowed.
    #[error("entity {entity} not found: {reason}")]
    EntityNotFound {
        /// The entity as written.
        entity: String,
        /// Why it was looked for.
        reason: String,
    },
    /// A datom a `load` (and so a restore) refuses: the database's own
    /// transactor could not have written it.
    #[error("datom [{entity} {attr} {value}] cannot be loaded: {reason}")]
    InvalidDatom {
        /// The entity.
        entity: i64,
        /// The attribute.
        attr: Keyword,
        /// The value, as EDN (shortened when long).
        value: Box<str>,
        /// What is wrong, in words.
        reason: Box<str>,
    },
    /// A schema entity that declares an attribute only in part: with
    /// schema-flexibility `write` an attribute needs all three of
    /// `:db/ident`, `:db/valueType` and `:db/cardinality` (Datahike's rule).
    #[error("incomplete schema attribute {ident} (entity {entity}): an attribute needs :db/ident, :db/valueType and :db/cardinality, and it has no {missing}")]
    IncompleteSchema {
        /// The schema entity.
        entity: i64,
        /// Its `:db/ident`, or words saying it has none.
        ident: String,
        /// What is missing, e.g. `:db/cardinality`.
        missing: String,
    },
    /// Tx-data that is malformed for a reason other than the above.
    #[error("invalid tx-data: {0}")]
    InvalidTxData(String),
    /// `load` into a database that already holds datoms, or a restore into
    /// a non-empty target.
    #[error(
        "database {what} is not empty ({datoms} datoms); load and restore need an empty database"
    )]
    NotEmpty {
        /// The database (URL or path).
        what: String,
        /// How many datoms it holds.
        datoms: u64,
    },
    /// `apply` or `load` given ids that would break the database's order
    /// (e.g. a transaction id not above the basis).
    #[error("cannot replay transaction {tx}: {reason}")]
    Replay {
        /// The transaction id.
        tx: i64,
        /// Why.
        reason: String,
    },
    /// Another process holds the database open.
    #[error("database {path} is locked by another process")]
    Locked {
        /// The database file.
        path: String,
    },
    /// The file exists but is not a Datacamp database (or is damaged).
    #[error("{path} is not a Datacamp database: {reason}")]
    NotADatabase {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// No database at this URL (and it was not to be created).
    #[error("no database at {url}")]
    NoSuchDatabase {
        /// The URL.
        url: String,
    },
    /// A URL this crate cannot open.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// A query that names components in an order the index cannot use.
    #[error("invalid index query: {0}")]
    InvalidQuery(String),
    /// The storage engine failed.
    #[error("storage error in {context}: {source}")]
    Storage {
        /// What was being done, naming the file or table.
        context: String,
        /// The engine's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An I/O error on a named path.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The longest value text an [`Error::InvalidDatom`] quotes.
pub const VALUE_TEXT_MAX: usize = 120;

impl Error {
    /// [`Error::InvalidDatom`] for `[e a v]`, its value quoted as EDN and
    /// shortened to `VALUE_TEXT_MAX` characters (a refused value may be
    /// a string of a gigabyte: the message must not copy it whole).
    pub fn invalid_datom(
        e: i64,
        a: &Keyword,
        v: &crate::Value,
        reason: impl Into<Box<str>>,
    ) -> Error {
        Error::InvalidDatom {
            entity: e,
            attr: a.clone(),
            value: Error::quote_value(v).into(),
            reason: reason.into(),
        }
    }

    /// A value as EDN for a message: at most `VALUE_TEXT_MAX`
    /// characters, then `…` and how long it is. Printing keeps no more
    /// than the limit, so a huge value costs no more than that.
    pub fn quote_value(v: &crate::Value) -> String {
        value_text(v)
    }
}

fn value_text(v: &crate::Value) -> String {
    use std::fmt::Write as _;

    /// Keeps the first `VALUE_TEXT_MAX` characters and counts the rest.
    struct Capped {
        text: String,
        chars: usize,
    }
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.chars < VALUE_TEXT_MAX {
                    self.text.push(c);
                }
                self.chars += 1;
            }
            Ok(())
        }
    }
    let mut out = Capped {
        text: String::new(),
        chars: 0,
    };
    let _ = write!(out, "{v}");
    if out.chars > VALUE_TEXT_MAX {
        let _ = write!(out.text, "… ({} characters)", out.chars);
    }
    out.text
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
