//! Where output goes: results on stdout (human text or one JSON object),
//! progress on stderr, diagnostics through `tracing` when `-v` is given.

use std::io::{self, IsTerminal as _, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cmd::GlobalArgs;
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

/// How results and progress are shown, from the global flags.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`: the result is one JSON object on stdout.
    pub json: bool,
    /// `--quiet`: no progress and no human-readable summary.
    pub quiet: bool,
}

impl Output {
    pub fn new(global: &GlobalArgs) -> Output {
        Output {
            json: global.json,
            quiet: global.quiet,
        }
    }

    /// A progress line on stderr (not with `--quiet`).
    pub fn progress(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Prints the command's result: `json` with `--json`, otherwise the
    /// human text (not with `--quiet`).
    pub fn result(
        &self,
        json: serde_json::Value,
        human: impl FnOnce() -> String,
    ) -> Result<(), CliError> {
        let text = if self.json {
            let mut text = json.to_string();
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

/// A reader of `| head` closing the pipe early is not a failure.
pub fn quiet_broken_pipe(result: io::Result<()>) -> Result<(), CliError> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.map_err(CliError::Output),
    }
}
