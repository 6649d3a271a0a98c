//! The one error type of this crate.

use datacamp_manifest::MigrationState;

/// What went wrong with a migration. Messages name the migration, the step
/// and the object that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing the backup target failed.
    #[error(transparent)]
    Storage(#[from] datacamp_storage::Error),
    /// A migration manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] datacamp_manifest::Error),
    /// A database operation failed.
    #[error(transparent)]
    Database(#[from] datacamp_datom::Error),
    /// The snapshot backup or its restore failed.
    #[error(transparent)]
    Operation(#[from] datacamp_ops::Error),
    /// Another migration of the same database has not finished.
    #[error(
        "database {database_id} already has migration {migration_id} in progress (state {state}); \
         recover it with `datacamp migrate recover --migration-id {migration_id}` before starting another"
    )]
    AlreadyInProgress {
        /// The database.
        database_id: String,
        /// The active migration.
        migration_id: String,
        /// Its persisted state.
        state: MigrationState,
    },
    /// The target already holds data.
    #[error("migration target {url} is not empty (basis tx {basis_tx}, {datoms} datoms); a migration needs an empty target")]
    TargetNotEmpty {
        /// The target database.
        url: String,
        /// Its basis tx.
        basis_tx: i64,
        /// Datoms it holds (its bootstrap included).
        datoms: u64,
    },
    /// No migration manifest under that id.
    #[error("migration {migration_id} of database {database_id} not found in {location}")]
    NotFound {
        /// The database.
        database_id: String,
        /// The migration.
        migration_id: String,
        /// Where it was looked for.
        location: String,
    },
    /// A step failed; the source stays authoritative and the router keeps
    /// writing to it.
    #[error(
        "migration {migration_id} failed in step {step}: {message}; the source stays authoritative"
    )]
    StepFailed {
        /// The migration.
        migration_id: String,
        /// The step that failed.
        step: MigrationState,
        /// Why.
        message: String,
    },
    /// At cutover the target does not equal the source.
    #[error("migration {migration_id}: at cutover the target's {what} is {target}, the source's is {source_value}")]
    CutoverMismatch {
        /// The migration.
        migration_id: String,
        /// What differs (`basis tx`, `datom count`).
        what: &'static str,
        /// The source's value.
        source_value: i64,
        /// The target's value.
        target: i64,
    },
    /// An option is unusable.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// A background task ended abnormally.
    #[error("migration {migration_id}: internal error: {message}")]
    Internal {
        /// The migration.
        migration_id: String,
        /// What happened.
        message: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
