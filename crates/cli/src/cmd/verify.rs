//! `datacamp verify`: check a backup; `--deep` re-hashes and decodes every
//! chunk and checks the counts.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{runtime, FromArgs};
use crate::error::CliError;
use crate::output::{operation_progress, Output};

const VERIFY_EXAMPLES: &str = "\
Examples:
  datacamp verify --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp verify --from s3://my-bucket --backup-id 20251018-195132-a3f9c2 --deep";

/// Check a backup: complete and every chunk present; --deep also re-hashes
/// and decodes every chunk and checks the counts.
#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXAMPLES)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// The backup.
    #[arg(long)]
    pub backup_id: String,
    /// Re-hash and decode every chunk.
    #[arg(long)]
    pub deep: bool,
    /// Chunks read at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
}

/// `verify --json`.
#[derive(Serialize)]
struct VerifyView<'a> {
    success: bool,
    backup_id: &'a str,
    database_id: &'a str,
    complete: bool,
    deep: bool,
    chunk_count: u64,
    all_chunks_present: bool,
    missing_chunks: &'a [u64],
    bad_chunks: Vec<BadChunkView<'a>>,
    problems: &'a [String],
    datoms_checked: Option<u64>,
    total_bytes: u64,
}

/// One bad chunk of `verify --json`.
#[derive(Serialize)]
struct BadChunkView<'a> {
    chunk_id: u64,
    key: &'a str,
    problem: &'a str,
}

impl<'a> From<&'a datacamp::VerifyResult> for VerifyView<'a> {
    fn from(r: &'a datacamp::VerifyResult) -> Self {
        VerifyView {
            success: r.success,
            backup_id: &r.backup_id,
            database_id: &r.database_id,
            complete: r.complete,
            deep: r.deep,
            chunk_count: r.chunk_count,
            all_chunks_present: r.all_chunks_present,
            missing_chunks: &r.missing_chunks,
            bad_chunks: r
                .bad_chunks
                .iter()
                .map(|p| BadChunkView {
                    chunk_id: p.chunk_id,
                    key: &p.key,
                    problem: &p.problem,
                })
                .collect(),
            problems: &r.problems,
            datoms_checked: r.datoms_checked,
            total_bytes: r.total_bytes,
        }
    }
}

pub fn run(args: VerifyArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let (bar, callback) = operation_progress(out);
    let opts = datacamp::VerifyOptions {
        database_id: args.from.database_id().to_owned(),
        deep: args.deep,
        parallel: usize::from(args.parallel),
        progress: Some(callback),
    };
    let result = runtime()?
        .block_on(datacamp::verify(&store, &args.backup_id, &opts))
        .map_err(CliError::op(format!(
            "cannot verify backup {} in {}",
            args.backup_id, args.from.from
        )))?;
    bar.finish_and_clear();
    out.result(&VerifyView::from(&result), || {
        let mut s = String::new();
        if result.success {
            s.push_str(&format!(
                "backup {} is good: complete, {} chunks present{}\n",
                result.backup_id,
                result.chunk_count,
                result.datoms_checked.map_or(String::new(), |n| format!(
                    ", {n} datoms decoded and counted"
                ))
            ));
        }
        s
    })?;
    if result.success {
        return Ok(());
    }
    Err(failure(&result))
}

/// The error of a backup that failed verification, listing what is wrong.
fn failure(result: &datacamp::VerifyResult) -> CliError {
    let mut lines: Vec<String> = result.problems.clone();
    if !result.missing_chunks.is_empty() {
        lines.push(format!("missing chunk(s) {:?}", result.missing_chunks));
    }
    for p in &result.bad_chunks {
        lines.push(format!("chunk {} ({}): {}", p.chunk_id, p.key, p.problem));
    }
    CliError::Refused(format!(
        "backup {} failed verification: {}",
        result.backup_id,
        lines.join("; ")
    ))
}
