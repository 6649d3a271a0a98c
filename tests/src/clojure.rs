//! The Clojure reference implementation (Debian's `clojure` with
//! `libdata-fressian-clojure` and `libfressian-java`), for tests that run
//! the scripts in `tests/clojure/`.
//!
//! [`reference()`] finds it or, when it is absent, prints `SKIPPED: …` to
//! stderr and returns `None` — unless `CI=true`, where a skip would hide a
//! broken CI image, so it panics instead (the same rule as
//! `crates/codec/tests/reference.rs`).
//!
//! ```no_run
//! let Some(clj) = datacamp_tests::clojure::reference() else { return };
//! let out = clj.run("compat/read_backup.clj", &["directory", "/tmp/b", "db", "id"]);
//! assert!(out.lines().next().is_some());
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The jars `clojure.data.fressian` needs, where Debian installs them.
pub const DEBIAN_JARS: [&str; 2] = [
    "/usr/share/java/data.fressian.jar",
    "/usr/share/java/fressian.jar",
];

/// A usable `clojure` with the Fressian jars on its class path.
#[derive(Clone, Debug)]
pub struct Reference {
    classpath: String,
    scripts: PathBuf,
}

/// The reference implementation, or `None` after printing `SKIPPED: why`
/// (a panic when `CI=true`). `DATACAMP_FRESSIAN_CP` overrides the class
/// path.
pub fn reference() -> Option<Reference> {
    let skip = |why: &str| {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the Clojure reference implementation is required on CI: {why}");
        }
        crate::print_skipped(why);
        None
    };
    let found = Command::new("clojure").arg("-e").arg("nil").output();
    if !matches!(found, Ok(ref o) if o.status.success()) {
        return skip("clojure not found (Debian: apt-get install clojure libdata-fressian-clojure libfressian-java)");
    }
    let classpath = match std::env::var("DATACAMP_FRESSIAN_CP") {
        Ok(cp) => cp,
        Err(_) => {
            if let Some(missing) = DEBIAN_JARS.iter().find(|j| !Path::new(j).exists()) {
                return skip(&format!(
                    "{missing} not found (install libdata-fressian-clojure and libfressian-java, or set DATACAMP_FRESSIAN_CP)"
                ));
            }
            DEBIAN_JARS.join(":")
        }
    };
    Some(Reference {
        classpath,
        scripts: Path::new(env!("CARGO_MANIFEST_DIR")).join("clojure"),
    })
}

/// What one script run did.
#[derive(Debug)]
pub struct ScriptRun {
    /// Whether it exited with 0.
    pub success: bool,
    /// Its stdout (UTF-8).
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Reference {
    /// The script at `tests/clojure/{script}`.
    pub fn script(&self, script: &str) -> PathBuf {
        self.scripts.join(script)
    }

    /// Runs `tests/clojure/{script}` with `args`, whatever its exit code.
    pub fn try_run(&self, script: &str, args: &[&str]) -> ScriptRun {
        let out = Command::new("clojure")
            .arg("-cp")
            .arg(&self.classpath)
            .arg(self.script(script))
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running clojure {script}: {e}"));
        ScriptRun {
            success: out.status.success(),
            stdout: String::from_utf8(out.stdout)
                .unwrap_or_else(|e| panic!("{script} printed non-UTF-8: {e}")),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs a script that must succeed; returns its stdout.
    #[track_caller]
    pub fn run(&self, script: &str, args: &[&str]) -> String {
        let run = self.try_run(script, args);
        assert!(
            run.success,
            "clojure {script} {args:?} failed\n--- stdout:\n{}\n--- stderr:\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }
}
