//! Where output goes: results on stdout (human text or one JSON object),
//! progress on stderr, diagnostics through `tracing` when `-v` is given.

use std::fmt;
use std::io::{self, IsTerminal as _, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use datacamp::{ProgressEvent, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use serde::Serialize;

use crate::error::CliError;

/// Sends tracing events to stderr: `-v` info, `-vv` debug, `-vvv` trace.
/// Without `-v` only the storage layer's warnings (each failed attempt
/// against a backup target that is being retried).
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        // Without -v, only what an operator must see as it happens: a
        // target that fails and is retried (a silent S3 endpoint would
        // otherwise look like a hang), and a lease taken over from a
        // killed process or one that could not be renewed.
        0 => "datacamp_storage=warn,datacamp_ops::lock=warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    if verbose == 0 {
        // A warning line an operator reads, not a log record.
        subscriber.without_time().with_target(false).init();
    } else {
        subscriber.init();
    }
}

/// How results and progress are shown: the two global flags that decide it.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`: the result is one JSON object on stdout.
    pub json: bool,
    /// `--quiet`: no progress and no human-readable summary.
    pub quiet: bool,
}

impl Output {
    pub fn new(json: bool, quiet: bool) -> Output {
        Output { json, quiet }
    }

    /// A progress line on stderr (not with `--quiet`).
    pub fn progress(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Prints the command's result: `json` serialized with `--json`,
    /// otherwise the human text (not with `--quiet`).
    ///
    /// The JSON goes through a `serde_json::Value`, whose map sorts keys,
    /// so the keys print in the same (alphabetical) order whatever order a
    /// view struct declares its fields in.
    pub fn result<T: Serialize>(
        &self,
        json: &T,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = if self.json {
            let value =
                serde_json::to_value(json).map_err(|e| CliError::Output(io::Error::other(e)))?;
            let mut text = value.to_string();
            text.push('\n');
            text
        } else if self.quiet {
            return Ok(());
        } else {
            human()
        };
        let mut stdout = io::stdout().lock();
        let written = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        quiet_broken_pipe(written)
    }

    /// A progress bar on stderr for `len` items, drawn only on a terminal
    /// and never with `--quiet` or `--json`.
    pub fn bar(&self, len: u64, unit: &str) -> ProgressBar {
        if self.quiet || self.json || !io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        bar.set_style(bar_style(unit));
        bar
    }
}

/// The bar: position, length, rate in human units (`1.24 M datoms/s`) and
/// the time left.
fn bar_style(unit: &str) -> ProgressStyle {
    let template =
        format!("      {{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{rate}}, eta {{eta}})");
    let unit = unit.to_owned();
    let rate = move |state: &ProgressState, w: &mut dyn fmt::Write| {
        let _ = w.write_str(&human_rate(state.per_sec(), &unit));
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("rate", rate)
}

/// The spinner for work after the stream whose length is unknown (a
/// restore's index build): no bar stuck at 100 % and `eta 0s`.
fn stage_style() -> ProgressStyle {
    ProgressStyle::with_template("      {spinner} {msg} ({elapsed})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// `per_sec` items a second in human units: `950 datoms/s`,
/// `12.5 k datoms/s`, `1.24 M datoms/s`.
pub fn human_rate(per_sec: f64, unit: &str) -> String {
    let r = if per_sec.is_finite() {
        per_sec.max(0.0)
    } else {
        0.0
    };
    if r >= 1e9 {
        format!("{:.2} G {unit}/s", r / 1e9)
    } else if r >= 1e6 {
        format!("{:.2} M {unit}/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k {unit}/s", r / 1e3)
    } else {
        format!("{r:.0} {unit}/s")
    }
}

/// A progress bar fed by a backup's, restore's or verify's stage events.
pub fn operation_progress(out: &Output) -> (ProgressBar, ProgressFn) {
    let bar = out.bar(0, "datoms");
    let fed = bar.clone();
    let chunks = Arc::new(AtomicU64::new(0));
    let callback: ProgressFn = Arc::new(move |event: &ProgressEvent| match event {
        ProgressEvent::Started { total_datoms, .. } => fed.set_length(total_datoms.unwrap_or(0)),
        ProgressEvent::ChunkWritten { datoms, .. } | ProgressEvent::ChunkRead { datoms, .. } => {
            let n = chunks.fetch_add(1, Ordering::Relaxed) + 1;
            fed.inc(*datoms);
            fed.set_message(format!("{n} chunks"));
        }
        ProgressEvent::Indexing { datoms } => {
            fed.set_style(stage_style());
            fed.set_message(format!("building indexes… ({datoms} datoms)"));
            if !fed.is_hidden() {
                fed.enable_steady_tick(Duration::from_millis(120));
            }
        }
        _ => {}
    });
    (bar, callback)
}

/// A reader of `| head` closing the pipe early is not a failure.
pub fn quiet_broken_pipe(result: io::Result<()>) -> Result<(), CliError> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_in_human_units() {
        assert_eq!(human_rate(1_242_535.335_2, "datoms"), "1.24 M datoms/s");
        assert_eq!(human_rate(12_480.0, "datoms"), "12.5 k datoms/s");
        assert_eq!(human_rate(950.4, "datoms"), "950 datoms/s");
        assert_eq!(human_rate(3.2e9, "datoms"), "3.20 G datoms/s");
        assert_eq!(human_rate(f64::NAN, "datoms"), "0 datoms/s");
    }

    #[test]
    fn the_bar_shows_the_index_build_after_the_stream() {
        let out = Output::new(false, true);
        let (bar, progress) = operation_progress(&out);
        progress(&ProgressEvent::Started {
            operation: "restore",
            backup_id: "b".into(),
            total_datoms: Some(100),
            total_chunks: Some(1),
        });
        progress(&ProgressEvent::ChunkRead {
            chunk_id: 0,
            datoms: 100,
            bytes: 10,
        });
        assert_eq!(bar.position(), 100);
        assert_eq!(bar.message(), "1 chunks");
        progress(&ProgressEvent::Indexing { datoms: 100 });
        assert_eq!(bar.message(), "building indexes… (100 datoms)");
    }
}

/// What the running command reports for `--metrics-file` beyond its
/// duration and result (one command runs per process).
static METRICS: std::sync::Mutex<Recorded> = std::sync::Mutex::new(Recorded {
    database_id: None,
    datoms: None,
    chunks: None,
    bytes: None,
    extra: Vec::new(),
});

#[derive(Debug)]
struct Recorded {
    database_id: Option<String>,
    datoms: Option<u64>,
    chunks: Option<u64>,
    bytes: Option<u64>,
    extra: Vec<datacamp::metrics::Gauge>,
}

/// Records what the command moved, for `--metrics-file`.
pub fn record_counts(database_id: &str, datoms: u64, chunks: u64, bytes: u64) {
    if let Ok(mut m) = METRICS.lock() {
        m.database_id = Some(database_id.to_owned());
        m.datoms = Some(datoms);
        m.chunks = Some(chunks);
        m.bytes = Some(bytes);
    }
}

/// Records one more gauge about `database_id`, for `--metrics-file`.
pub fn record_metric(database_id: &str, name: &str, help: &str, value: f64) {
    if let Ok(mut m) = METRICS.lock() {
        m.extra.push(datacamp::metrics::Gauge {
            name: name.to_owned(),
            help: help.to_owned(),
            database_id: database_id.to_owned(),
            value,
        });
    }
}

/// Refuses, before the command runs, a metrics file whose folder does not
/// exist (a typo would otherwise be found only after a night's backup).
pub fn check_metrics_file(path: &std::path::Path) -> Result<(), CliError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    if folder.is_dir() {
        return Ok(());
    }
    Err(CliError::Refused(format!(
        "cannot write metrics file {}: its folder {} does not exist",
        path.display(),
        folder.display()
    )))
}

/// Writes the command's metrics to `path` (atomically; see
/// `datacamp::metrics`).
pub fn write_metrics(
    path: &std::path::Path,
    operation: &str,
    database_id: &str,
    success: bool,
    started: std::time::Instant,
) -> Result<(), CliError> {
    let recorded = METRICS
        .lock()
        .map(|mut m| {
            std::mem::replace(
                &mut *m,
                Recorded {
                    database_id: None,
                    datoms: None,
                    chunks: None,
                    bytes: None,
                    extra: Vec::new(),
                },
            )
        })
        .ok();
    let mut metrics = datacamp::metrics::RunMetrics {
        operation: operation.to_owned(),
        database_id: database_id.to_owned(),
        success,
        finished_at_ms: datacamp::datom::now_ms(),
        duration_seconds: started.elapsed().as_secs_f64(),
        ..Default::default()
    };
    if let Some(r) = recorded {
        if let Some(db) = r.database_id {
            metrics.database_id = db;
        }
        metrics.datoms = r.datoms;
        metrics.chunks = r.chunks;
        metrics.bytes = r.bytes;
        metrics.extra = r.extra;
    }
    metrics
        .write_to(path)
        .map_err(|e| CliError::Refused(e.to_string()))
}
