//! Where output goes: results on stdout (human text or one JSON object),
//! progress on stderr, diagnostics through `tracing` when `-v` is given.

use std::io::{self, IsTerminal as _, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp::{ProgressEvent, ProgressFn};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::CliError;

/// Sends tracing events to stderr: `-v` info, `-vv` debug, `-vvv` trace.
/// Without `-v` nothing is installed, so nothing is logged.
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => return,
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(io::stderr)
        .init();
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
        let template = format!(
            "      {{bar:40}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style);
        }
        bar
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
