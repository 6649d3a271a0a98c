//! A throwaway PostgreSQL cluster for tests and benches (feature
//! `test-server`): `initdb` into a temporary directory, `pg_ctl start` on a
//! free 127.0.0.1 port with trust authentication, `pg_ctl stop` on drop.
//!
//! The binaries are looked for on `PATH` and then under
//! `/usr/lib/postgresql/*/bin` (Debian's layout, newest version first).
//! `initdb` refuses to run as root, so as root the cluster's directory
//! belongs to the `postgres` user and both tools run through
//! `runuser -u postgres --`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running throwaway cluster.
#[derive(Debug)]
pub struct PgTestServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Why a test server could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestServerError {
    /// No `initdb`/`pg_ctl` on this machine.
    #[error(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or under /usr/lib/postgresql/*/bin"
    )]
    NoBinaries,
    /// A step failed.
    #[error("{step} failed: {detail}")]
    Step {
        /// What was being done.
        step: String,
        /// Its output.
        detail: String,
    },
}

fn step(step: &str, detail: impl std::fmt::Display) -> TestServerError {
    TestServerError::Step {
        step: step.to_owned(),
        detail: detail.to_string(),
    }
}

/// The directory holding `initdb` and `pg_ctl`.
fn find_bin() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_both(d)) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> Result<u16, TestServerError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| step("finding a free port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| step("finding a free port", e))
}

fn checked(what: &str, out: std::io::Result<Output>) -> Result<Output, TestServerError> {
    let out = out.map_err(|e| step(what, e))?;
    if !out.status.success() {
        return Err(step(
            what,
            format!(
                "{}; {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ));
    }
    Ok(out)
}

impl PgTestServer {
    /// Starts a cluster, or says why not.
    pub fn start() -> Result<PgTestServer, TestServerError> {
        let bin = find_bin().ok_or(TestServerError::NoBinaries)?;
        let dir = tempfile::Builder::new()
            .prefix("datacamp-pg-")
            .tempdir()
            .map_err(|e| step("making the cluster directory", e))?;
        let as_postgres = is_root();
        if as_postgres {
            checked(
                "handing the cluster directory to the postgres user",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir.path())
                    .output(),
            )?;
        }
        let server = PgTestServer {
            dir,
            bin,
            port: free_port()?,
            as_postgres,
        };
        let data = server.data();
        checked(
            "initdb",
            server
                .tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
                .output(),
        )?;
        server.pg_ctl_start()?;
        // Drop stops it; the watcher also does if this process is killed.
        server.watch_parent();
        Ok(server)
    }

    /// [`PgTestServer::start`], or `None` after printing `SKIPPED: <why>`
    /// when the binaries are missing; with `CI=true` a missing binary or a
    /// failed start is a panic (CI must run these tests).
    #[allow(clippy::panic)]
    pub fn start_or_skip() -> Option<PgTestServer> {
        match PgTestServer::start() {
            Ok(server) => Some(server),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("PostgreSQL test server: {e} (CI=true: install postgresql)")
            }
            Err(TestServerError::NoBinaries) => {
                use std::io::Write as _;
                let test = std::thread::current().name().unwrap_or("test").to_owned();
                let line = format!("SKIPPED: {test}: {}\n", TestServerError::NoBinaries);
                let _ = std::io::stderr().write_all(line.as_bytes());
                None
            }
            Err(e) => panic!("PostgreSQL test server: {e}"),
        }
    }

    /// One cluster for the whole test process (started on first use), or
    /// `None` as [`PgTestServer::start_or_skip`] says. The watcher every
    /// server has stops it and removes its directory once this process has
    /// exited.
    pub fn shared() -> Option<&'static PgTestServer> {
        static SHARED: std::sync::OnceLock<Option<PgTestServer>> = std::sync::OnceLock::new();
        SHARED.get_or_init(PgTestServer::start_or_skip).as_ref()
    }

    /// Spawns `sh` to stop the server and remove its directory after this
    /// process exits, however (a static is never dropped, a killed test
    /// process drops nothing).
    fn watch_parent(&self) {
        let stop = format!(
            "{} {} -D '{}' -m immediate -w stop",
            if self.as_postgres {
                "runuser -u postgres --"
            } else {
                ""
            },
            self.bin.join("pg_ctl").display(),
            self.data().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.path().display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A server tool, as the postgres user when we are root.
    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn pg_ctl_start(&self) -> Result<(), TestServerError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        checked(
            "pg_ctl start",
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.dir.path().join("server.log"))
                .args(["-o", &options, "-w", "start"])
                .output(),
        )?;
        Ok(())
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of a database in `schema`, as the `postgres` superuser.
    pub fn url(&self, schema: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?schema={schema}",
            self.port
        )
    }

    /// A superuser connection, for setting things up.
    pub fn admin(&self) -> Result<postgres::Client, TestServerError> {
        postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .map_err(|e| step("connecting as postgres", e))
    }

    /// Makes `role` (created with `password`) log in over TCP with a
    /// password (scram-sha-256) while everyone else stays trusted.
    pub fn require_password(&self, role: &str, password: &str) -> Result<(), TestServerError> {
        let mut admin = self.admin()?;
        admin
            .batch_execute(&format!(
                "CREATE ROLE \"{role}\" LOGIN SUPERUSER PASSWORD '{}'",
                password.replace('\'', "''")
            ))
            .map_err(|e| step("creating the role", e))?;
        let hba = self.data().join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).map_err(|e| step("reading pg_hba.conf", e))?;
        let new = format!("host all {role} 127.0.0.1/32 scram-sha-256\n{old}");
        std::fs::write(&hba, new).map_err(|e| step("writing pg_hba.conf", e))?;
        admin
            .batch_execute("SELECT pg_reload_conf()")
            .map_err(|e| step("reloading the configuration", e))?;
        Ok(())
    }

    /// Stops the server now (to test what clients see when it is gone).
    pub fn stop(&self) -> Result<(), TestServerError> {
        checked(
            "pg_ctl stop",
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output(),
        )?;
        Ok(())
    }
}

impl Drop for PgTestServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
