//! End-to-end tests across crates live in `tests/tests/`; this library holds
//! what they share.
//!
//! For the `datacamp` binary: [`datacamp_bin`] finds (building it first if
//! needed) the binary of the `datacamp-cli` package, and [`datacamp()`] /
//! [`datacamp_with_stdin`] run it and capture what it printed.
//!
//! ```no_run
//! let run = datacamp_tests::datacamp(&["db", "stats", "--db", "/tmp/x.db"]);
//! assert_eq!(run.code, 1);
//! assert!(run.stderr.starts_with("error: cannot open database"));
//! ```

pub mod clojure;
pub mod fault_proxy;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::SystemTime;

use datacamp::datom::{Connection as _, Datom, Index};

/// The `datacamp` binary, up to date with the sources.
///
/// Cargo builds a package's binaries only for that package's own tests. A
/// `cargo test --workspace` has built it already, so the binary in the
/// test's own target directory and profile is used when it is newer than
/// every source it is built from; otherwise this runs `cargo build -p
/// datacamp-cli` first (once per test process). `DATACAMP_BIN` overrides
/// both with a prebuilt binary.
pub fn datacamp_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("DATACAMP_BIN") {
            return PathBuf::from(bin);
        }
        // The test runs from <target>/<profile>/deps/<test>-<hash>.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile> directory");
        let target_dir = profile_dir.parent().expect("target directory");
        let bin = profile_dir.join(format!("datacamp{}", std::env::consts::EXE_SUFFIX));
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root");
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        if built.is_some_and(|built| newest_source(workspace) <= built) {
            return bin;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .current_dir(workspace)
            .args([
                "build",
                "--quiet",
                "-p",
                "datacamp-cli",
                "--bin",
                "datacamp",
                "--target-dir",
            ])
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            build.arg("--release");
        }
        let status = build
            .status()
            .expect("run cargo build for the datacamp binary");
        assert!(
            status.success(),
            "cargo build -p datacamp-cli failed: {status}"
        );
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
}

/// The newest modification time of the workspace manifest and of any file
/// under `crates/`: what the binary is built from.
fn newest_source(workspace: &Path) -> SystemTime {
    fn walk(dir: &Path, newest: &mut SystemTime) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                walk(&entry.path(), newest);
            } else if let Ok(modified) = meta.modified() {
                *newest = (*newest).max(modified);
            }
        }
    }
    let mut newest = std::fs::metadata(workspace.join("Cargo.toml"))
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    walk(&workspace.join("crates"), &mut newest);
    newest
}

/// Prints `SKIPPED: <test>: why` where a normal `cargo test` run shows it:
/// libtest captures `eprintln!` (shown only for failing tests), but not
/// writes to the stderr handle itself. Tests that skip for a missing tool
/// call this (and fail instead when `CI=true`, see [`clojure::reference`]).
pub fn print_skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    // One write, so the line stays whole among the harness's output.
    let line = format!("SKIPPED: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// What one run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Everything printed on stdout.
    pub stdout: String,
    /// Everything printed on stderr.
    pub stderr: String,
}

impl Run {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs `datacamp ARGS` with empty stdin.
pub fn datacamp(args: &[&str]) -> Run {
    datacamp_with_stdin(args, "")
}

/// Runs `datacamp ARGS` with `stdin` as its standard input.
pub fn datacamp_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(datacamp_bin())
        .args(args)
        .env_remove("DATACAMP_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the datacamp binary");
    let mut input = child.stdin.take().expect("stdin pipe");
    // A command that fails before reading its input closes the pipe; that
    // is the command's business, not the test's.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let out = child
        .wait_with_output()
        .expect("wait for the datacamp binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Every current datom of the database at `url`, in EAVT order, read in
/// this process. The database is closed again before returning, so the
/// binary can open it afterwards.
pub fn scan(url: &str) -> Vec<Datom> {
    let db = datacamp::db::open(url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let snapshot = db.db().expect("snapshot");
    let datoms = snapshot
        .datoms(Index::Eavt, &[])
        .expect("scan EAVT")
        .collect::<Result<Vec<_>, _>>()
        .expect("read EAVT");
    datoms
}

/// Every file below `dir` (recursively), sorted; none when `dir` does not
/// exist. For the tests that compare or search every stored object of a
/// directory backup target.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
