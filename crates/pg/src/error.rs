//! The engine's errors: each names the database (its URL without a
//! password) and what was being done, and converts into the
//! `datacamp_datom::Error` every `Connection` returns.

use datacamp_datom::Error as DbError;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server could not be reached or refused the login.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The database URL, without a password.
        url: String,
        /// The client's reason, with advice where there is some.
        reason: String,
    },
    /// A statement failed.
    #[error("{url}: {what} failed: {source}")]
    Query {
        /// The database URL, without a password.
        url: String,
        /// What was being done ("reading the EAVT index", …).
        what: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The connection broke inside a write: PostgreSQL rolled it back.
    #[error(
        "{url}: the connection was lost while {what}; PostgreSQL rolled the transaction back, \
         so nothing of it was written ({source})"
    )]
    LostBeforeCommit {
        /// The database URL, without a password.
        url: String,
        /// What was being written.
        what: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
    /// The connection broke while the server was committing: whether the
    /// transaction landed is unknown until the log is read again.
    #[error(
        "{url}: the connection was lost while committing {what}; it may or may not have been \
         committed: read the database's log to find out ({source})"
    )]
    LostInCommit {
        /// The database URL, without a password.
        url: String,
        /// What was being committed.
        what: String,
        /// The client's error.
        #[source]
        source: postgres::Error,
    },
}

impl PgError {
    /// The error as a `Connection` reports it.
    pub(crate) fn into_db(self) -> DbError {
        DbError::Storage {
            context: "the PostgreSQL engine".to_owned(),
            source: Box::new(self),
        }
    }
}

impl From<PgError> for DbError {
    fn from(e: PgError) -> DbError {
        e.into_db()
    }
}
