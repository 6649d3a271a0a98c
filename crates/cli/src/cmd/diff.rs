//! `datacamp diff`: the datoms asserted and retracted between two restore
//! points, streamed from the backups' logs, restoring nothing.

use std::io::{self, BufWriter, Write as _};
use std::sync::{Arc, Mutex};

use clap::{Args, ValueEnum};

use crate::cmd::common::{parse_size, runtime, DecryptArgs, FromArgs};
use crate::error::CliError;
use crate::json::JsonDatom;
use crate::output::{quiet_broken_pipe, Output};

const DIFF_EXAMPLES: &str = "\
Examples:
  # what changed between two backups of a chain (either order)
  datacamp diff --from ./backups --backup-id 20251018-020000-a3f9c2 --to-backup-id 20251019-020000-77b1e4
  # what changed between an instant and a backup (an incremental or a history backup)
  datacamp diff --from ./backups --backup-id 20251019-020000-77b1e4 --as-of 2025-10-18T22:00:00Z
  datacamp diff --from s3://my-bucket --backup-id 20251019-020000-77b1e4 --as-of 536870950 --format json
  # an encrypted chain: the identity opens the links read
  datacamp diff --from ./backups --backup-id 20251019-020000-77b1e4 --as-of 536870950 --identity-file backup.key";

/// Print the datoms asserted and retracted between two restore points, as
/// `db datoms --history` prints them, in log order.
#[derive(Debug, Args)]
#[command(after_help = DIFF_EXAMPLES)]
pub struct DiffArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// One end: this backup's restore point.
    #[arg(long)]
    pub backup_id: String,
    /// The other end: another backup of the same chain.
    #[arg(long, conflicts_with = "as_of", required_unless_present = "as_of")]
    pub to_backup_id: Option<String>,
    /// The other end: a point of --backup-id's chain, a transaction id or
    /// an RFC 3339 instant.
    #[arg(long, value_name = "TX|INSTANT", value_parser = parse_restore_point)]
    pub as_of: Option<datacamp::RestorePoint>,
    /// `edn`, or `json` (one array per line, as `db datoms --format json`).
    /// Defaults to json with --json, edn otherwise.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Chunks fetched ahead.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The most bytes one chunk may inflate to.
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_chunk_bytes: u64,
    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

/// Output format of the datoms.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    Edn,
    Json,
}

/// `--as-of`: unparseable text is a usage error (exit 2).
fn parse_restore_point(text: &str) -> Result<datacamp::RestorePoint, String> {
    text.parse()
        .map_err(|e: datacamp::RestorePointError| e.to_string())
}

pub fn run(args: DiffArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let format = args
        .format
        .unwrap_or(if out.json { Format::Json } else { Format::Edn });
    let opts = datacamp::DiffOptions {
        database_id: args.from.database_id().to_owned(),
        to_backup_id: args.to_backup_id.clone(),
        as_of: args.as_of,
        parallel: usize::from(args.parallel),
        max_chunk_bytes: args.max_chunk_bytes,
        identities: args.decrypt.identities()?,
    };
    let stdout = Arc::new(Mutex::new(BufWriter::with_capacity(1 << 16, io::stdout())));
    let writer = stdout.clone();
    let sink: datacamp::DatomSink = Box::new(move |datom| {
        let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
        match format {
            Format::Edn => writeln!(w, "{datom}"),
            Format::Json => serde_json::to_writer(&mut *w, &JsonDatom(datom))
                .map_err(io::Error::from)
                .and_then(|()| w.write_all(b"\n")),
        }
    });
    let outcome = runtime()?.block_on(datacamp::diff(&store, &args.backup_id, &opts, sink));
    let summary = match outcome {
        Ok(summary) => summary,
        Err(datacamp::Error::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(());
        }
        Err(e) => {
            return Err(CliError::op(format!(
                "cannot diff backup {} in {}",
                datacamp::manifest::short_id(&args.backup_id),
                args.from.from
            ))(e))
        }
    };
    tracing::info!(
        from = %summary.from,
        to_tx = ?summary.to_tx,
        transactions = summary.transactions,
        asserted = summary.asserted,
        retracted = summary.retracted,
        "diff written"
    );
    let flushed = stdout.lock().unwrap_or_else(|p| p.into_inner()).flush();
    quiet_broken_pipe(flushed)
}
