//! Connections: a small pool per open database, and a [`Session`] — one
//! connection checked out for one snapshot or one write, with its prepared
//! statements. A session goes back to the pool when dropped, after a
//! `ROLLBACK` ends whatever transaction it still had open.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, SimpleQueryMessage, SimpleQueryRow, Statement};

use crate::error::PgError;
use crate::url::Target;

/// Idle connections a pool keeps (more are opened as snapshots need them
/// and closed when they end).
const MAX_IDLE: usize = 4;

/// A connection and its prepared statements (by SQL text).
pub(crate) struct Link {
    pub client: Client,
    statements: HashMap<String, Statement>,
}

/// The connections of one open database.
pub(crate) struct Pool {
    pub target: Target,
    idle: Mutex<Vec<Link>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.target.url)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder leaves a connection, at worst, in a failed
    // transaction: the next statement reports it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` where the blocking client may block: on this thread, or, when
/// this thread drives an async runtime (datacamp-ops calls engines from
/// async code), on a scoped thread of its own, since the client's own
/// `block_on` refuses to run inside a runtime.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    // A runtime's blocking thread that said so may block right here.
    if tokio::runtime::Handle::try_current().is_err() || datacamp_datom::blocking::allowed() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(t) => t,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Did the connection break (closed, or the server ended the backend)?
pub(crate) fn is_lost(e: &postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(&SqlState::ADMIN_SHUTDOWN)
                | Some(&SqlState::CRASH_SHUTDOWN)
                | Some(&SqlState::CONNECTION_EXCEPTION)
                | Some(&SqlState::CONNECTION_FAILURE)
        )
        || (e.as_db_error().is_none()
            && std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()))
}

/// Words for a failed login, with what to check.
fn connect_reason(target: &Target, e: &postgres::Error) -> String {
    let advice = match e.code() {
        Some(&SqlState::INVALID_PASSWORD)
        | Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION) => {
            format!(
                "; check the password for user {:?} (in the URL, PGPASSWORD or ~/.pgpass)",
                target.user
            )
        }
        Some(&SqlState::INVALID_CATALOG_NAME) => {
            format!("; create database {:?} first", target.dbname)
        }
        Some(_) => String::new(),
        None => format!(
            "; is a PostgreSQL server running and accepting connections on {}:{}?",
            target.host, target.port
        ),
    };
    let detail = e
        .as_db_error()
        .map(|db| db.message().to_owned())
        .unwrap_or_else(|| e.to_string());
    format!("{detail}{advice}")
}

impl Pool {
    pub(crate) fn new(target: Target) -> Arc<Pool> {
        Arc::new(Pool {
            target,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> Result<Link, PgError> {
        let t = &self.target;
        let mut config = postgres::Config::new();
        config
            .host(&t.host)
            .port(t.port)
            .user(&t.user)
            .dbname(&t.dbname)
            .connect_timeout(t.connect_timeout)
            .application_name("datacamp");
        if let Some(pw) = &t.password {
            config.password(pw);
        }
        let client = off_runtime(|| config.connect(NoTls)).map_err(|e| PgError::Connect {
            url: t.url.clone(),
            reason: connect_reason(t, &e),
        })?;
        Ok(Link {
            client,
            statements: HashMap::new(),
        })
    }

    /// A connection for one snapshot or write (`write`: a lost connection
    /// means a rolled-back write, and the error says so).
    pub(crate) fn session(self: &Arc<Pool>, write: bool) -> Result<Session, PgError> {
        let idle = lock(&self.idle).pop();
        let link = match idle {
            Some(link) if !link.client.is_closed() => link,
            _ => self.connect()?,
        };
        Ok(Session {
            pool: self.clone(),
            link: Mutex::new(Some(link)),
            write,
            committed: AtomicBool::new(false),
        })
    }
}

/// One checked-out connection.
pub(crate) struct Session {
    pool: Arc<Pool>,
    link: Mutex<Option<Link>>,
    write: bool,
    /// The last thing the session did was a successful `COMMIT`: no
    /// transaction is open, so going back to the pool needs no `ROLLBACK`
    /// (a round trip saved on every write).
    committed: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("url", &self.pool.target.url)
            .field("write", &self.write)
            .finish()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let Some(mut link) = lock(&self.link).take() else {
            return;
        };
        let pool = &self.pool;
        let committed = self.committed.load(Ordering::Acquire);
        // After a COMMIT nothing needs the server: back to the pool here,
        // without a hop off the runtime.
        if committed && !link.client.is_closed() {
            let mut idle = lock(&pool.idle);
            if idle.len() < MAX_IDLE {
                idle.push(link);
                return;
            }
        }
        // Closing a client blocks too.
        off_runtime(move || {
            if link.client.is_closed()
                || (!committed && link.client.batch_execute("ROLLBACK").is_err())
            {
                return;
            }
            let mut idle = lock(&pool.idle);
            if idle.len() < MAX_IDLE {
                idle.push(link);
            }
        });
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut *lock(&self.idle));
        off_runtime(move || drop(idle));
    }
}

impl Session {
    pub(crate) fn url(&self) -> &str {
        &self.pool.target.url
    }

    /// The error of `what` failing with `e`.
    pub(crate) fn error(&self, what: &str, e: postgres::Error) -> PgError {
        let url = self.url().to_owned();
        if self.write && is_lost(&e) {
            PgError::LostBeforeCommit {
                url,
                what: what.to_owned(),
                source: e,
            }
        } else {
            PgError::Query {
                url,
                what: what.to_owned(),
                source: e,
            }
        }
    }

    /// Runs `f` on the connection (one caller at a time).
    pub(crate) fn with<T: Send>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Link) -> Result<T, postgres::Error> + Send,
    ) -> Result<T, PgError> {
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return Err(PgError::Connect {
                url: self.url().to_owned(),
                reason: "the session was already closed".to_owned(),
            });
        };
        off_runtime(|| f(link)).map_err(|e| self.error(what, e))
    }

    /// Runs `f` on the connection on this thread: `f` itself keeps the
    /// blocking client off any async runtime (see [`off_runtime`]).
    pub(crate) fn with_here<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Link) -> Result<T, postgres::Error>,
    ) -> Result<T, PgError> {
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return Err(PgError::Connect {
                url: self.url().to_owned(),
                reason: "the session was already closed".to_owned(),
            });
        };
        f(link).map_err(|e| self.error(what, e))
    }

    /// Runs statements without parameters.
    pub(crate) fn batch(&self, what: &str, sql: &str) -> Result<(), PgError> {
        // They may open a transaction again.
        self.committed.store(false, Ordering::Release);
        self.with(what, |link| link.client.batch_execute(sql))
    }

    /// Runs statements without parameters unless they fail with `code`
    /// (then the transaction is in a failed state: roll back to a savepoint
    /// taken before); whether they ran.
    pub(crate) fn batch_unless(
        &self,
        what: &str,
        sql: &str,
        code: &SqlState,
    ) -> Result<bool, PgError> {
        self.committed.store(false, Ordering::Release);
        self.with(what, |link| match link.client.batch_execute(sql) {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some(code) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// Runs statements without parameters in one round trip (the simple
    /// query protocol, which takes several at once); the rows they return,
    /// as text.
    pub(crate) fn simple(&self, what: &str, sql: &str) -> Result<Vec<SimpleQueryRow>, PgError> {
        self.committed.store(false, Ordering::Release);
        self.with(what, |link| {
            let messages = link.client.simple_query(sql)?;
            Ok(messages
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => Some(row),
                    _ => None,
                })
                .collect())
        })
    }

    /// A prepared (and cached) query.
    pub(crate) fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, PgError> {
        self.with(what, |link| {
            let statement = link.statement(sql)?;
            link.client.query(&statement, params)
        })
    }

    /// A prepared (and cached) statement; the rows it changed.
    pub(crate) fn execute(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, PgError> {
        self.with(what, |link| {
            let statement = link.statement(sql)?;
            link.client.execute(&statement, params)
        })
    }

    /// Commits the session's transaction: a lost connection here leaves the
    /// outcome unknown, and the error says so.
    pub(crate) fn commit(&self, what: &str) -> Result<(), PgError> {
        let mut guard = lock(&self.link);
        let Some(link) = guard.as_mut() else {
            return Err(PgError::Connect {
                url: self.url().to_owned(),
                reason: "the session was already closed".to_owned(),
            });
        };
        let done = off_runtime(|| link.client.batch_execute("COMMIT"));
        self.committed.store(done.is_ok(), Ordering::Release);
        done.map_err(|e| {
            let url = self.url().to_owned();
            if is_lost(&e) {
                PgError::LostInCommit {
                    url,
                    what: what.to_owned(),
                    source: e,
                }
            } else {
                PgError::Query {
                    url,
                    what: format!("committing {what}"),
                    source: e,
                }
            }
        })
    }
}

impl Link {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}
