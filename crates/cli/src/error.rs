//! The CLI's error type and how a failure is shown.

use std::error::Error as StdError;
use std::io::Write as _;

use datacamp::datom::edn::EdnError;

/// Everything a command can fail with. Each message says what the command
/// was doing and names the object; the underlying error is the `source`,
/// printed as `caused by:`.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A database operation failed; `action` names it and the database.
    #[error("{action}")]
    Db {
        /// What was being done, e.g. "cannot open database file:///x.db".
        action: String,
        /// The database's error.
        #[source]
        source: datacamp::datom::Error,
    },
    /// A backup, restore, verify, list, cleanup or inspect operation failed;
    /// `action` names it, the database and the target.
    #[error("{action}")]
    Op {
        /// What was being done.
        action: String,
        /// The operation's error (boxed: it is large, and every command
        /// returns this type).
        #[source]
        source: Box<datacamp::Error>,
    },
    /// A live-migration operation failed; `action` names it.
    #[error("{action}")]
    Migrate {
        /// What was being done.
        action: String,
        /// The migration's error (boxed: it is large and rare).
        #[source]
        source: Box<datacamp::migrate::Error>,
    },
    /// The tx-data input could not be read.
    #[error("cannot read tx-data from {input}")]
    ReadInput {
        /// The file name, or "standard input".
        input: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tx-data input is not valid tx-data.
    #[error("cannot parse tx-data from {input}")]
    ParseTxData {
        /// The file name, or "standard input".
        input: String,
        /// Where and why.
        #[source]
        source: EdnError,
    },
    /// A file or directory operation failed.
    #[error("{action}")]
    Io {
        /// What was being done, naming the path.
        action: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A refusal that has no underlying error (e.g. a directory the demo
    /// will not overwrite).
    #[error("{0}")]
    Refused(String),
    /// Writing the command's output failed (other than a closed pipe).
    #[error("cannot write to standard output")]
    Output(#[source] std::io::Error),
}

impl CliError {
    /// A database error with what was being done.
    pub fn db(action: impl Into<String>) -> impl FnOnce(datacamp::datom::Error) -> CliError {
        let action = action.into();
        move |source| CliError::Db { action, source }
    }

    /// An operation error with what was being done.
    pub fn op<E: Into<datacamp::Error>>(action: impl Into<String>) -> impl FnOnce(E) -> CliError {
        let action = action.into();
        move |source| CliError::Op {
            action,
            source: Box::new(source.into()),
        }
    }

    /// A migration error with what was being done.
    pub fn migrate<E: Into<datacamp::migrate::Error>>(
        action: impl Into<String>,
    ) -> impl FnOnce(E) -> CliError {
        let action = action.into();
        move |source| CliError::Migrate {
            action,
            source: Box::new(source.into()),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> CliError {
        let action = action.into();
        move |source| CliError::Io { action, source }
    }
}

/// Prints `error: …` and one `caused by: …` line per source on stderr.
///
/// Many error types repeat their source's text in their own message; a
/// cause whose text the previous line already contains is left out.
pub fn report(err: &CliError) {
    let mut stderr = std::io::stderr().lock();
    let mut previous = err.to_string();
    let _ = writeln!(stderr, "error: {previous}");
    let mut source: Option<&dyn StdError> = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !previous.contains(&text) {
            let _ = writeln!(stderr, "caused by: {text}");
        }
        previous = text;
        source = cause.source();
    }
}
