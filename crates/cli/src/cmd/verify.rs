//! `datacamp verify`: check a backup; `--deep` re-hashes and decodes every
//! chunk and checks the counts.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{parse_size, runtime, DecryptArgs, FromArgs};
use crate::error::CliError;
use crate::output::{operation_progress, Output};

const VERIFY_EXAMPLES: &str = "\
Examples:
  datacamp verify --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp verify --from s3://my-bucket --backup-id 20251018-195132-a3f9c2 --deep
  # an incremental: the whole chain, base first
  datacamp verify --from ./backups --backup-id 20251019-020000-77b1e4 --deep";

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
    /// Re-hash and decode every chunk (an encrypted backup needs
    /// --identity-file or DATACAMP_PASSPHRASE).
    #[arg(long)]
    pub deep: bool,
    #[command(flatten)]
    pub decrypt: DecryptArgs,
    /// Chunks read at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The most bytes one chunk may inflate to; a chunk's manifest entry
    /// tightens it (a decompression bomb is refused, not inflated).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_chunk_bytes: u64,
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
    /// What is odd but does not stop a restore (a manifest whose ids
    /// differ from its folder's).
    warnings: &'a [String],
    datoms_checked: Option<u64>,
    total_bytes: u64,
    /// An incremental's chain, base first (empty otherwise).
    chain: &'a [String],
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
            warnings: &r.warnings,
            datoms_checked: r.datoms_checked,
            total_bytes: r.total_bytes,
            chain: &r.chain,
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
        max_chunk_bytes: args.max_chunk_bytes,
        progress: Some(callback),
        engines: datacamp::engines(),
        identities: if args.deep {
            args.decrypt.identities()?
        } else {
            datacamp::Identities::none()
        },
    };
    let result = runtime()?
        .block_on(datacamp::verify(&store, &args.backup_id, &opts))
        .map_err(CliError::op(format!(
            "cannot verify backup {} in {}",
            datacamp::manifest::short_id(&args.backup_id),
            args.from.from
        )))?;
    bar.finish_and_clear();
    out.result(&VerifyView::from(&result), || {
        let mut s = String::new();
        for warning in &result.warnings {
            s.push_str(&format!("warning: {warning}\n"));
        }
        if result.success {
            s.push_str(&format!(
                "backup {} is good: complete, {} chunks present{}{}\n",
                result.backup_id,
                result.chunk_count,
                result.datoms_checked.map_or(String::new(), |n| format!(
                    ", {n} datoms decoded and counted"
                )),
                if result.chain.len() > 1 {
                    format!(
                        "; its chain of {} backups (base {}) is whole",
                        result.chain.len(),
                        result.chain[0]
                    )
                } else {
                    String::new()
                }
            ));
        }
        s
    })?;
    if result.success {
        return Ok(());
    }
    Err(failure(&result))
}

/// How many bad chunks the error lists; `--json` has them all.
const BAD_CHUNKS_SHOWN: usize = 20;

/// The error of a backup that failed verification: a headline counting
/// what is wrong, then one line per problem, the missing chunks, and one
/// line per bad chunk (the first [`BAD_CHUNKS_SHOWN`], then "and N more").
fn failure(result: &datacamp::VerifyResult) -> CliError {
    let bad = bad_chunks(&result.bad_chunks);
    let mut counts = Vec::new();
    if !result.problems.is_empty() {
        counts.push(plural(result.problems.len(), "problem"));
    }
    if !result.missing_chunks.is_empty() {
        counts.push(plural(result.missing_chunks.len(), "missing chunk"));
    }
    if !bad.is_empty() {
        counts.push(plural(bad.len(), "bad chunk"));
    }
    let mut text = format!("backup {} failed verification", result.backup_id);
    if !counts.is_empty() {
        text.push_str(&format!(": {}", counts.join(", ")));
    }
    for problem in &result.problems {
        text.push_str(&format!("\n  {problem}"));
    }
    if !result.missing_chunks.is_empty() {
        text.push_str(&format!(
            "\n  missing chunk(s) {}",
            id_list(&result.missing_chunks)
        ));
    }
    for (id, key, problems) in bad.iter().take(BAD_CHUNKS_SHOWN) {
        text.push_str(&format!("\n  chunk {id} ({key}): {}", problems.join("; ")));
    }
    if bad.len() > BAD_CHUNKS_SHOWN {
        text.push_str(&format!(
            "\n  and {} more bad chunks",
            bad.len() - BAD_CHUNKS_SHOWN
        ));
    }
    CliError::Refused(text)
}

/// The bad chunks in the order reported, each once with all its problems.
fn bad_chunks(problems: &[datacamp::ChunkProblem]) -> Vec<(u64, &str, Vec<&str>)> {
    let mut chunks: Vec<(u64, &str, Vec<&str>)> = Vec::new();
    for p in problems {
        match chunks.iter_mut().find(|(id, _, _)| *id == p.chunk_id) {
            Some((_, _, list)) => list.push(&p.problem),
            None => chunks.push((p.chunk_id, &p.key, vec![&p.problem])),
        }
    }
    chunks
}

/// `[0, 1, 2]`, or the first [`BAD_CHUNKS_SHOWN`] ids and how many more.
fn id_list(ids: &[u64]) -> String {
    let shown: Vec<String> = ids
        .iter()
        .take(BAD_CHUNKS_SHOWN)
        .map(u64::to_string)
        .collect();
    let mut text = format!("[{}", shown.join(", "));
    if ids.len() > BAD_CHUNKS_SHOWN {
        text.push_str(&format!(", and {} more", ids.len() - BAD_CHUNKS_SHOWN));
    }
    text.push(']');
    text
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(chunk_id: u64, problem: &str) -> datacamp::ChunkProblem {
        datacamp::ChunkProblem {
            chunk_id,
            key: format!("chunks/datoms-{chunk_id}.fressian.gz"),
            problem: problem.into(),
        }
    }

    #[test]
    fn a_chunk_with_two_problems_is_one_line() {
        let bad = [
            problem(3, "size is 1 bytes"),
            problem(3, "does not decode"),
            problem(4, "x"),
        ];
        let chunks = bad_chunks(&bad);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].2, ["size is 1 bytes", "does not decode"]);
    }

    #[test]
    fn long_id_lists_are_cut() {
        assert_eq!(id_list(&[0, 1, 2]), "[0, 1, 2]");
        let many: Vec<u64> = (0..25).collect();
        assert!(
            id_list(&many).ends_with("19, and 5 more]"),
            "{}",
            id_list(&many)
        );
    }
}
