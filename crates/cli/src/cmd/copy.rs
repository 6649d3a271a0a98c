//! `datacamp copy`: copy complete backups to another target, every chunk's
//! checksum checked on the way.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{human_bytes, runtime, shown_target, FromArgs};
use crate::error::CliError;
use crate::output::{record_counts, Output};

const COPY_EXAMPLES: &str = "\
Examples:
  datacamp copy --from ./backups --to s3://offsite-bucket/backups/ --all
  datacamp copy --from s3://my-bucket --to ./restore-here --backup-id 20251018-195132-a3f9c2";

/// Copy complete backups to another target (directory or S3), checking
/// every chunk's checksum; the manifest is rewritten for the destination.
#[derive(Debug, Args)]
#[command(after_help = COPY_EXAMPLES)]
pub struct CopyArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Where to copy to: a directory, file:///path or s3://bucket/prefix/
    /// (the S3 flags apply to both ends).
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// The backup to copy.
    #[arg(
        long,
        value_name = "BACKUP-ID",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub backup_id: Option<String>,
    /// Every complete backup of the database (those already at the
    /// destination, complete and equal, are skipped).
    #[arg(long)]
    pub all: bool,
    /// Chunks in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

#[derive(Serialize)]
struct CopyView<'a> {
    database_id: &'a str,
    to: String,
    backups: Vec<CopiedView<'a>>,
}

#[derive(Serialize)]
struct CopiedView<'a> {
    backup_id: &'a str,
    copied: bool,
    chunks: u64,
    bytes: u64,
}

pub fn run(args: CopyArgs, out: &Output) -> Result<(), CliError> {
    let from = args.from.open()?;
    let to = args.from.backups.open(&args.to)?;
    let db = args.from.database_id();
    let opts = datacamp::CopyOptions {
        database_id: db.to_owned(),
        backup_id: args.backup_id.clone(),
        parallel: usize::from(args.parallel),
        ..datacamp::CopyOptions::default()
    };
    let shown_to = shown_target(&args.to);
    let result = runtime()?
        .block_on(datacamp::copy(&from, &to, &opts))
        .map_err(CliError::op(format!(
            "copy of {db} from {} to {shown_to} failed",
            shown_target(&args.from.from)
        )))?;
    let chunks = result.backups.iter().map(|b| b.chunks).sum();
    let bytes = result.backups.iter().map(|b| b.bytes).sum();
    record_counts(db, 0, chunks, bytes);
    let view = CopyView {
        database_id: db,
        to: shown_to,
        backups: result
            .backups
            .iter()
            .map(|b| CopiedView {
                backup_id: &b.backup_id,
                copied: b.copied,
                chunks: b.chunks,
                bytes: b.bytes,
            })
            .collect(),
    };
    out.result(&view, || {
        let mut s = String::new();
        for b in &view.backups {
            if b.copied {
                s.push_str(&format!(
                    "copied {} ({} chunks, {}) to {}\n",
                    b.backup_id,
                    b.chunks,
                    human_bytes(b.bytes),
                    view.to
                ));
            } else {
                s.push_str(&format!(
                    "{} is already at {}, complete\n",
                    b.backup_id, view.to
                ));
            }
        }
        if s.is_empty() {
            s.push_str("no complete backup to copy\n");
        }
        s
    })
}
