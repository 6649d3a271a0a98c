//! Prometheus text-format metrics of one operation, written to a file for
//! node_exporter's textfile collector (or any scraper of such files).
//!
//! The file is replaced atomically (a temporary file in the same folder,
//! then a rename), so a scrape never sees half of it. One file describes
//! one operation on one database: give each scheduled job its own file.
//! A failed run keeps the previous file's last-success timestamp, so an
//! alert on "no success for 26 h" keeps working across failures.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The outcome of one operation, as metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetrics {
    /// The operation (`backup`, `restore`, `forget`, `status`, …).
    pub operation: String,
    /// The database id it worked on (empty when none).
    pub database_id: String,
    /// Whether it succeeded.
    pub success: bool,
    /// When it ended, ms since the epoch.
    pub finished_at_ms: i64,
    /// How long it ran, in seconds.
    pub duration_seconds: f64,
    /// Datoms written or read, when the operation moves datoms.
    pub datoms: Option<u64>,
    /// Chunks written or read.
    pub chunks: Option<u64>,
    /// Bytes written or read.
    pub bytes: Option<u64>,
    /// More gauges, e.g. status's backup age per database.
    pub extra: Vec<Gauge>,
}

/// One more gauge of a [`RunMetrics`], labelled with its own database id
/// (and the run's operation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Gauge {
    /// The metric name (`datacamp_…`).
    pub name: String,
    /// Its help text.
    pub help: String,
    /// The database it is about.
    pub database_id: String,
    /// Its value.
    pub value: f64,
}

/// What can go wrong writing the file.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file's folder does not exist (it is not created: a typo in a
    /// path would otherwise scatter files).
    #[error("cannot write metrics file {path}: its folder {folder} does not exist")]
    MissingFolder {
        /// The file.
        path: String,
        /// The folder.
        folder: String,
    },
    /// Writing or renaming failed.
    #[error("cannot write metrics file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

const LAST_SUCCESS: &str = "datacamp_last_success_timestamp_seconds";

impl RunMetrics {
    fn labels(&self) -> String {
        labels(&self.database_id, &self.operation)
    }

    /// The metrics as Prometheus text format; `previous_success` is the
    /// last-success timestamp to keep when this run failed.
    pub fn render(&self, previous_success: Option<f64>) -> String {
        let labels = self.labels();
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, value: f64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{labels} {value}");
        };
        let finished = self.finished_at_ms as f64 / 1000.0;
        gauge(
            "datacamp_last_run_timestamp_seconds",
            "When the last run of the operation ended (Unix time).",
            finished,
        );
        let success = if self.success {
            Some(finished)
        } else {
            previous_success
        };
        if let Some(at) = success {
            gauge(
                LAST_SUCCESS,
                "When the last successful run of the operation ended (Unix time).",
                at,
            );
        }
        gauge(
            "datacamp_last_run_success",
            "1 if the last run succeeded, 0 if it failed.",
            if self.success { 1.0 } else { 0.0 },
        );
        gauge(
            "datacamp_last_run_duration_seconds",
            "How long the last run took.",
            self.duration_seconds,
        );
        for (name, help, value) in [
            (
                "datacamp_last_run_datoms",
                "Datoms the last run moved.",
                self.datoms,
            ),
            (
                "datacamp_last_run_chunks",
                "Chunks the last run moved.",
                self.chunks,
            ),
            (
                "datacamp_last_run_bytes",
                "Bytes the last run moved.",
                self.bytes,
            ),
        ] {
            if let Some(v) = value {
                gauge(name, help, v as f64);
            }
        }
        let mut named: Vec<&str> = Vec::new();
        for g in &self.extra {
            if !named.contains(&g.name.as_str()) {
                named.push(&g.name);
            }
        }
        for name in named {
            let mut gauges = self.extra.iter().filter(|g| g.name == name).peekable();
            if let Some(first) = gauges.peek() {
                let _ = writeln!(out, "# HELP {name} {}", first.help);
                let _ = writeln!(out, "# TYPE {name} gauge");
            }
            for g in gauges {
                let _ = writeln!(
                    out,
                    "{name}{} {}",
                    self::labels(&g.database_id, &self.operation),
                    g.value
                );
            }
        }
        out
    }

    /// Writes the metrics to `path` atomically (see the module docs).
    pub fn write_to(&self, path: &Path) -> Result<(), MetricsError> {
        let shown = path.display().to_string();
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !folder.is_dir() {
            return Err(MetricsError::MissingFolder {
                path: shown,
                folder: folder.display().to_string(),
            });
        }
        let previous = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| previous_success(&text, &self.labels()));
        let io = |source| MetricsError::Io {
            path: shown.clone(),
            source,
        };
        let mut file = tempfile::Builder::new()
            .prefix(".datacamp-metrics-")
            .suffix(".tmp")
            .tempfile_in(&folder)
            .map_err(io)?;
        file.write_all(self.render(previous).as_bytes())
            .map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        // Readable by the collector (tempfile creates files 0600).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(io)?;
        }
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

fn labels(database_id: &str, operation: &str) -> String {
    format!(
        "{{database_id=\"{}\",operation=\"{}\"}}",
        escape_label(database_id),
        escape_label(operation)
    )
}

/// The last-success value with these labels in an earlier file.
fn previous_success(text: &str, labels: &str) -> Option<f64> {
    let prefix = format!("{LAST_SUCCESS}{labels} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

/// A label value as the text format wants it: `\`, `"` and newlines
/// escaped.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(success: bool) -> RunMetrics {
        RunMetrics {
            operation: "backup".into(),
            database_id: "prod\"db".into(),
            success,
            finished_at_ms: 1_700_000_000_500,
            duration_seconds: 2.5,
            datoms: Some(10),
            chunks: Some(2),
            bytes: Some(300),
            extra: Vec::new(),
        }
    }

    #[test]
    fn a_failed_run_keeps_the_last_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.prom");
        sample(true).write_to(&path).unwrap();
        let mut failed = sample(false);
        failed.finished_at_ms += 86_400_000;
        failed.write_to(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(
            "datacamp_last_success_timestamp_seconds{database_id=\"prod\\\"db\",operation=\"backup\"} 1700000000.5\n"
        ), "{text}");
        assert!(text.contains(
            "datacamp_last_run_success{database_id=\"prod\\\"db\",operation=\"backup\"} 0\n"
        ));
    }

    #[test]
    fn a_missing_folder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("m.prom");
        let err = sample(true).write_to(&path).unwrap_err();
        assert!(matches!(err, MetricsError::MissingFolder { .. }));
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
