//! `datacamp inspect`: print a backup's manifest or checkpoint, or a chunk
//! file's datoms.

use std::io::Write as _;

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cmd::common::{runtime, BackupsArgs, DecryptArgs};
use crate::error::CliError;
use crate::output::{quiet_broken_pipe, Output};

const INSPECT_EXAMPLES: &str = "\
Examples:
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2 --checkpoint
  datacamp inspect chunk ./backups/default-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz
  datacamp inspect fressian ./some-datomic-or-datahike-artifact.fressian --gzip auto";

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
        /// A chunk file (gzip or plain Fressian, or age-encrypted).
        file: std::path::PathBuf,
        #[command(flatten)]
        decrypt: DecryptArgs,
    },
    /// Print any Fressian stream (not only Datacamp chunks) as EDN with
    /// its tags, one top-level value per line.
    #[command(
        after_help = "Example:\n  datacamp inspect fressian ./index-root.fressian\n\nA malformed stream is an error naming the byte offset (in the uncompressed stream) where it stops making sense; the values before it are printed."
    )]
    Fressian {
        /// A Fressian file (plain or gzip'd).
        file: std::path::PathBuf,
        /// Whether the file is gzip'd: auto (by its first two bytes), yes, no.
        #[arg(long, value_enum, default_value_t = GzipMode::Auto)]
        gzip: GzipMode,
    },
}

/// `inspect fressian --gzip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GzipMode {
    /// Gzip if the file starts with the gzip magic bytes.
    Auto,
    /// Always gunzip.
    Yes,
    /// Never gunzip.
    No,
}

/// `inspect --json`.
#[derive(Serialize)]
struct DocumentView<'a> {
    backup_id: &'a str,
    edn: &'a str,
}

pub fn run(args: InspectArgs, out: &Output) -> Result<(), CliError> {
    match args.what {
        Some(InspectWhat::Chunk { file, decrypt }) => {
            return inspect_chunk(&file, &decrypt.identities()?)
        }
        Some(InspectWhat::Fressian { file, gzip }) => return inspect_fressian(&file, gzip),
        None => {}
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

fn inspect_chunk(
    file: &std::path::Path,
    identities: &datacamp::Identities,
) -> Result<(), CliError> {
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut pipe_closed = false;
    let result = datacamp::inspect::chunk_file_datoms_with(
        file,
        datacamp::DEFAULT_MAX_CHUNK_BYTES,
        identities,
        |d| {
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
        },
    );
    result.map_err(CliError::op(format!(
        "cannot read chunk file {}",
        file.display()
    )))?;
    quiet_broken_pipe(w.flush())
}

/// `inspect fressian FILE`: every top-level value as EDN, one per line.
/// The file may inflate to at most [`datacamp::DEFAULT_MAX_CHUNK_BYTES`]
/// (a decompression bomb is refused, not inflated), and is read within the
/// reader's other default limits (nesting depth, cache expansion).
fn inspect_fressian(file: &std::path::Path, gzip: GzipMode) -> Result<(), CliError> {
    use datacamp::codec::fressian::{ReadOptions, Reader};
    use std::io::Read as _;

    let refused = |what: String| {
        CliError::Refused(format!(
            "cannot read Fressian file {}: {what}",
            file.display()
        ))
    };
    let mut input = std::fs::File::open(file).map_err(|e| refused(e.to_string()))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut input, &mut magic).map_err(|e| refused(e.to_string()))?;
    let gzipped = match gzip {
        GzipMode::Auto => magic[..n] == [0x1F, 0x8B],
        GzipMode::Yes => true,
        GzipMode::No => false,
    };
    let stream = std::io::Cursor::new(magic[..n].to_vec()).chain(input);
    let stream: Box<dyn std::io::Read> = if gzipped {
        Box::new(datacamp::codec::compress::gunzip_reader(stream))
    } else {
        Box::new(stream)
    };
    let opts = ReadOptions::default().max_input_bytes(datacamp::DEFAULT_MAX_CHUNK_BYTES);
    let mut reader = Reader::with_options(stream, opts);
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    loop {
        let value = match reader.next_value() {
            Ok(Some(v)) => v,
            Ok(None) => break,
            Err(e) => {
                quiet_broken_pipe(w.flush())?;
                let at = if gzipped {
                    " (offsets count uncompressed bytes)"
                } else {
                    ""
                };
                return Err(refused(format!("{e}{at}")));
            }
        };
        if let Err(e) = writeln!(w, "{}", value.to_edn()) {
            return quiet_broken_pipe(Err(e));
        }
    }
    quiet_broken_pipe(w.flush())
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_up_to(input: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
