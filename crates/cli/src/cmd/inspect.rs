//! `datacamp inspect`: print a backup's manifest or checkpoint, or a chunk
//! file's datoms.

use std::io::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cmd::common::{runtime, BackupsArgs};
use crate::error::CliError;
use crate::output::{quiet_broken_pipe, Output};

const INSPECT_EXAMPLES: &str = "\
Examples:
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2 --checkpoint
  datacamp inspect chunk ./backups/default-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz";

/// Print a backup's manifest or checkpoint, or a chunk file's datoms.
#[derive(Debug, Args)]
#[command(after_help = INSPECT_EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct InspectArgs {
    #[command(subcommand)]
    pub what: Option<InspectWhat>,
    /// Where the backup is: a directory, file:///path or s3://bucket/prefix/.
    // An Option (required unless `chunk` is given), so not the shared
    // `FromArgs` group.
    #[arg(long, value_name = "TARGET", required = true)]
    pub from: Option<String>,
    /// The backup.
    #[arg(long, required = true)]
    pub backup_id: Option<String>,
    /// Show checkpoint.edn instead of manifest.edn.
    #[arg(long)]
    pub checkpoint: bool,
    #[command(flatten)]
    pub backups: BackupsArgs,
}

#[derive(Debug, Subcommand)]
pub enum InspectWhat {
    /// Print a chunk file's datoms as EDN, one per line.
    #[command(after_help = "Example:\n  datacamp inspect chunk ./datoms-0.fressian.gz")]
    Chunk {
        /// A chunk file (gzip or plain Fressian).
        file: std::path::PathBuf,
    },
}

/// `inspect --json`.
#[derive(Serialize)]
struct DocumentView<'a> {
    backup_id: &'a str,
    edn: &'a str,
}

pub fn run(args: InspectArgs, out: &Output) -> Result<(), CliError> {
    if let Some(InspectWhat::Chunk { file }) = args.what {
        return inspect_chunk(&file);
    }
    let (Some(from), Some(backup_id)) = (args.from, args.backup_id) else {
        return Err(CliError::Refused(
            "inspect needs --from and --backup-id, or `inspect chunk FILE`".into(),
        ));
    };
    let store = args.backups.open(&from)?;
    let which = if args.checkpoint {
        datacamp::inspect::Document::Checkpoint
    } else {
        datacamp::inspect::Document::Manifest
    };
    let text = runtime()?
        .block_on(datacamp::inspect::document_text(
            &store,
            &args.backups.database_id,
            &backup_id,
            which,
        ))
        .map_err(CliError::op(format!(
            "cannot inspect backup {} in {from}",
            datacamp::manifest::short_id(&backup_id)
        )))?;
    let view = DocumentView {
        backup_id: &backup_id,
        edn: &text,
    };
    out.result(&view, || {
        let mut t = text.clone();
        if !t.ends_with('\n') {
            t.push('\n');
        }
        t
    })
}

fn inspect_chunk(file: &std::path::Path) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut pipe_closed = false;
    let result =
        datacamp::inspect::chunk_file_datoms(file, datacamp::DEFAULT_MAX_CHUNK_BYTES, |d| {
            if !pipe_closed {
                if let Err(e) = writeln!(w, "{d}") {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        pipe_closed = true;
                    } else {
                        return Err(datacamp::Error::Io {
                            path: "standard output".into(),
                            source: e,
                        });
                    }
                }
            }
            Ok(())
        });
    result.map_err(CliError::op(format!(
        "cannot read chunk file {}",
        file.display()
    )))?;
    quiet_broken_pipe(w.flush())
}
