//! Acceptance 3 of issue 11: every metadata reader (manifest, checkpoint,
//! migration manifest) and the chunk reader, fed a random-byte corpus, a
//! deep-nesting corpus and a gzip bomb, answer with an error — never a
//! crash — in bounded memory.
//!
//! Each case runs in a CHILD PROCESS: this test binary re-executed with
//! `DATACAMP_CORPUS_CASE` naming the case, running only `corpus_child`. The
//! parent reaps the child with `wait4`, so it sees how the child ended (an
//! exit code, or the signal of a stack overflow or an abort) and the
//! child's own peak RSS (`ru_maxrss`), and asserts: exit code 0 (every bad
//! input gave an `Err`), no signal, peak RSS under [`RSS_BOUND_KB`]. The
//! child also caps its address space at [`ADDRESS_SPACE_CAP`], so an
//! unbounded allocation fails in the child instead of squeezing a shared
//! machine; that shows up as an abort, i.e. a failed case.
//!
//! The readers run on a thread with a 2 MiB stack, tokio's default for the
//! worker threads on which `list`, `verify` and `restore` read metadata.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use datacamp::codec::compress::{self, Compression};
use datacamp::datom::Connection as _;
use datacamp::manifest::{Checkpoint, Manifest, MigrationManifest};

/// The variable that selects a case in the child.
/// The chunk cap the loose-file cases read with: a loose chunk file has no
/// manifest entry, so the cap alone bounds its memory.
const CHUNK_CAP: u64 = 64 << 20;

const CASE_VAR: &str = "DATACAMP_CORPUS_CASE";
/// The directory a case's inputs live in (chunk files, a backup).
const DIR_VAR: &str = "DATACAMP_CORPUS_DIR";
/// Peak resident memory a child may reach.
const RSS_BOUND_KB: i64 = 200 * 1024;
/// The child's address-space limit (RLIMIT_AS): far above the RSS bound,
/// far below what an unbounded allocation would take.
const ADDRESS_SPACE_CAP: u64 = 1536 * 1024 * 1024;
/// Stack of the thread the readers run on.
const READER_STACK: usize = 2 * 1024 * 1024;
/// Inputs per random corpus.
const RANDOM_INPUTS: usize = 300;

// ------------------------------------------------------------ the corpora

/// Deterministic pseudo-random bytes (xorshift64*), fixed seed per corpus.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Random inputs: a third raw bytes, a third EDN-ish characters (so the
/// parser gets past its first token), a third a valid document with a few
/// bytes changed.
fn random_corpus(seed: u64, valid: &str) -> Vec<Vec<u8>> {
    const EDN: &[u8] = b"[]{}()#:\"\\ ,;^@~`'-+.0123456789abcdefNMnil truefalse/_\n\t";
    let mut rng = Rng(seed | 1);
    (0..RANDOM_INPUTS)
        .map(|i| {
            let len = rng.below(2048) as usize;
            match i % 3 {
                0 => (0..len).map(|_| rng.next() as u8).collect(),
                1 => (0..len)
                    .map(|_| EDN[rng.below(EDN.len() as u64) as usize])
                    .collect(),
                _ => {
                    let mut bytes = valid.as_bytes().to_vec();
                    for _ in 0..=rng.below(8) {
                        let at = rng.below(bytes.len() as u64) as usize;
                        bytes[at] = EDN[rng.below(EDN.len() as u64) as usize];
                    }
                    bytes
                }
            }
        })
        .collect()
}

/// `valid` with `:_comment <depth nested opening of kind>` as its first
/// entry.
fn deep_document(valid: &str, kind: &str, depth: usize) -> String {
    let (open, inner, close) = match kind {
        "vector" => ("[", "", "]"),
        "list" => ("(", "", ")"),
        "set" => ("#{", "", "}"),
        _ => ("{:k ", "nil", "}"),
    };
    let nested = format!("{}{inner}{}", open.repeat(depth), close.repeat(depth));
    valid.replacen('{', &format!("{{:_comment {nested} "), 1)
}

fn valid_manifest() -> String {
    Manifest::new("20251018-195132-a3f9c2", "default-db").to_edn()
}

fn valid_checkpoint() -> String {
    Checkpoint::new("20251018-195132-a3f9c2", 1_760_817_092_000).to_edn()
}

fn valid_migration() -> String {
    MigrationManifest::new(
        "m-1",
        "default-db",
        "file:///a",
        "file:///b",
        1_760_817_092_000,
    )
    .to_edn()
}

/// A metadata reader: text in, `Ok` or `Err` out.
type Reader = fn(&str) -> bool;

fn metadata_reader(name: &str) -> (Reader, String) {
    match name {
        "manifest" => (|t| Manifest::from_edn(t).is_ok(), valid_manifest()),
        "checkpoint" => (|t| Checkpoint::from_edn(t).is_ok(), valid_checkpoint()),
        _ => (
            |t| MigrationManifest::from_edn(t).is_ok(),
            valid_migration(),
        ),
    }
}

// ------------------------------------------------------- the child's side

/// What a child reports on stdout, and its exit code: 0 when every input
/// that must fail failed.
struct Tally {
    inputs: usize,
    accepted: Vec<usize>,
}

impl Tally {
    fn finish(self, case: &str) -> ! {
        println!(
            "\ncase {case}: {} inputs, {} accepted {:?}",
            self.inputs,
            self.accepted.len(),
            &self.accepted[..self.accepted.len().min(10)]
        );
        println!("peak-rss-kb {}", own_peak_rss_kb());
        std::io::stdout().flush().unwrap();
        std::process::exit(if self.accepted.is_empty() { 0 } else { 3 })
    }
}

/// Runs `inputs` through `accepts` and tallies those that were accepted.
/// `must_fail` says which inputs have to be refused (mutations of a valid
/// document may legitimately still be valid).
fn tally(
    inputs: &[Vec<u8>],
    accepts: impl Fn(&[u8]) -> bool,
    must_fail: impl Fn(usize) -> bool,
) -> Tally {
    let mut accepted = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        if accepts(input) && must_fail(i) {
            accepted.push(i);
        }
    }
    Tally {
        inputs: inputs.len(),
        accepted,
    }
}

fn run_case(case: &str, dir: &Path) -> ! {
    let parts: Vec<&str> = case.split(':').collect();
    match parts.as_slice() {
        ["random", reader] => {
            let (read, valid) = metadata_reader(reader);
            let inputs = random_corpus(0x5eed ^ reader.len() as u64, &valid);
            tally(
                &inputs,
                |b| read(&String::from_utf8_lossy(b)),
                |i| i % 3 != 2,
            )
            .finish(case)
        }
        ["deep", reader, kind, depth] => {
            let (read, valid) = metadata_reader(reader);
            let text = deep_document(&valid, kind, depth.parse().unwrap());
            tally(
                &[text.into_bytes()],
                |b| read(&String::from_utf8_lossy(b)),
                |_| true,
            )
            .finish(case)
        }
        ["chunk-random"] => {
            let valid = std::fs::read(dir.join("valid-chunk.fressian")).unwrap();
            let mut rng = Rng(0xc0ffee);
            let mut inputs = Vec::new();
            for i in 0..RANDOM_INPUTS {
                let len = rng.below(4096) as usize;
                let mut bytes: Vec<u8> = match i % 3 {
                    0 | 1 => (0..len).map(|_| rng.next() as u8).collect(),
                    _ => {
                        let mut b = valid.clone();
                        for _ in 0..=rng.below(8) {
                            let at = rng.below(b.len() as u64) as usize;
                            b[at] = rng.next() as u8;
                        }
                        b
                    }
                };
                // Two in three gzipped, so decoding goes past the gzip layer.
                if i % 3 != 0 {
                    bytes = compress::compress(&bytes, Compression::default()).unwrap();
                }
                inputs.push(bytes);
            }
            let file = dir.join("input.fressian.gz");
            tally(
                &inputs,
                |bytes| {
                    std::fs::write(&file, bytes).unwrap();
                    datacamp::inspect::chunk_file_datoms(&file, CHUNK_CAP, |_| Ok(())).is_ok()
                },
                |i| i % 3 != 2,
            )
            .finish(case)
        }
        ["chunk-deep", depth] => {
            // The value "short" (packed string code 0xDF) replaced by a
            // one-element list (0xE5) nested `depth` deep around an int.
            let valid = std::fs::read(dir.join("valid-chunk.fressian")).unwrap();
            let at = valid.windows(6).position(|w| w == b"\xDFshort").unwrap();
            let depth: usize = depth.parse().unwrap();
            let mut plain = valid[..at].to_vec();
            plain.extend(std::iter::repeat_n(0xE5u8, depth));
            plain.push(0x01);
            plain.extend_from_slice(&valid[at + 6..]);
            let file = dir.join(format!("deep-{depth}.fressian.gz"));
            std::fs::write(
                &file,
                compress::compress(&plain, Compression::default()).unwrap(),
            )
            .unwrap();
            tally(
                &[Vec::new()],
                |_| {
                    let result = datacamp::inspect::chunk_file_datoms(&file, CHUNK_CAP, |_| Ok(()));
                    println!("chunk reader: {result:?}");
                    result.is_ok()
                },
                |_| true,
            )
            .finish(case)
        }
        ["chunk-bomb-file"] => {
            let file = dir.join("bomb.fressian.gz");
            tally(
                &[Vec::new()],
                |_| {
                    let result = datacamp::inspect::chunk_file_datoms(&file, CHUNK_CAP, |_| Ok(()));
                    println!("chunk reader: {result:?}");
                    result.is_ok()
                },
                |_| true,
            )
            .finish(case)
        }
        ["chunk-bomb-verify"] => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let backup_id = std::fs::read_to_string(dir.join("backup-id")).unwrap();
            let store = datacamp::storage::BackupStore::open(
                &datacamp::storage::Target::Directory(dir.join("backups")),
            )
            .unwrap();
            let good = runtime.block_on(datacamp::verify(
                &store,
                &backup_id,
                &datacamp::VerifyOptions {
                    deep: true,
                    engines: datacamp::engines(),
                    parallel: 1,
                    ..datacamp::VerifyOptions::default()
                },
            ));
            println!("verify --deep: {good:?}");
            let accepted = matches!(good, Ok(ref r) if r.success);
            Tally {
                inputs: 1,
                accepted: if accepted { vec![0] } else { Vec::new() },
            }
            .finish(case)
        }
        _ => panic!("unknown case {case}"),
    }
}

/// The child's entry point; does nothing in a normal test run.
#[test]
fn corpus_child() {
    let Ok(case) = std::env::var(CASE_VAR) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR_VAR).unwrap_or_default());
    rlimit_address_space(ADDRESS_SPACE_CAP);
    let worker = std::thread::Builder::new()
        .stack_size(READER_STACK)
        .spawn(move || run_case(&case, &dir))
        .unwrap();
    let _ = worker.join();
    // A panic in the case: a failure, but not a crash.
    std::process::exit(4);
}

/// This process's own peak RSS (`VmHWM`), in KiB. Not `ru_maxrss`: a
/// child spawned with vfork inherits, through `exec`, the spawning
/// process's peak in its `ru_maxrss` (Linux keeps the larger of the old
/// and new address space's peaks), so the parent's wait4/getrusage
/// figure is only an upper bound that includes the test harness itself.
fn own_peak_rss_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(i64::MAX)
}

#[allow(unsafe_code)]
fn rlimit_address_space(bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: setrlimit reads the struct we pass; no memory is shared.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) };
    assert_eq!(rc, 0, "setrlimit(RLIMIT_AS)");
}

// ------------------------------------------------------ the parent's side

/// How a child ended.
#[derive(Debug)]
struct Outcome {
    exit_code: Option<i32>,
    signal: Option<i32>,
    /// `ru_maxrss` from wait4: an upper bound (see [`own_peak_rss_kb`]).
    ru_maxrss_kb: i64,
    stdout: String,
}

impl Outcome {
    /// The child's own peak RSS as it reported it, else the upper bound.
    fn peak_rss_kb(&self) -> i64 {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix("peak-rss-kb "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(self.ru_maxrss_kb)
    }
}

// The child is reaped by wait4 (for its rusage), not by Child::wait.
#[allow(unsafe_code, clippy::zombie_processes)]
fn run_child(case: &str, dir: &Path) -> Outcome {
    let out = dir.join(format!("{}.out", case.replace(':', "-")));
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "corpus_child", "--nocapture", "--test-threads=1"])
        .env(CASE_VAR, case)
        .env(DIR_VAR, dir)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; wait4 writes it and `status`.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 on the {case} child");
    let signaled = libc::WIFSIGNALED(status);
    Outcome {
        exit_code: (!signaled && libc::WIFEXITED(status)).then(|| libc::WEXITSTATUS(status)),
        signal: signaled.then(|| libc::WTERMSIG(status)),
        // ru_maxrss is in KiB on Linux.
        ru_maxrss_kb: usage.ru_maxrss,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
    }
}

/// Runs every case in its own child and asserts on them all at the end,
/// so one failing case does not hide the others.
fn check_cases(cases: &[String], dir: &Path) {
    let mut failures = Vec::new();
    for case in cases {
        let outcome = run_child(case, dir);
        let line = outcome
            .stdout
            .lines()
            .find(|l| l.starts_with("case "))
            .unwrap_or("(no report)")
            .to_string();
        let problem = if let Some(signal) = outcome.signal {
            Some(format!("crashed with signal {signal}"))
        } else if outcome.exit_code != Some(0) {
            Some(format!(
                "exit code {:?} (3: some bad input was accepted; 4: the reader panicked)",
                outcome.exit_code
            ))
        } else if outcome.peak_rss_kb() > RSS_BOUND_KB {
            Some(format!(
                "peak RSS {} MiB above the {} MiB bound",
                outcome.peak_rss_kb() / 1024,
                RSS_BOUND_KB / 1024
            ))
        } else {
            None
        };
        eprintln!(
            "{case}: {line}; peak RSS {} KiB (ru_maxrss {} KiB); {}",
            outcome.peak_rss_kb(),
            outcome.ru_maxrss_kb,
            problem.as_deref().unwrap_or("ok")
        );
        for detail in outcome
            .stdout
            .lines()
            .filter(|l| l.contains("chunk reader:") || l.contains("verify --deep:"))
        {
            eprintln!("  {}", detail.chars().take(400).collect::<String>());
        }
        if let Some(problem) = problem {
            failures.push(format!("{case}: {problem} — {line}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Random bytes, EDN-ish noise and mutated documents: every metadata reader
/// refuses the noise with an error, never crashes, stays small.
#[test]
fn metadata_readers_survive_random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<String> = ["manifest", "checkpoint", "migration"]
        .iter()
        .map(|r| format!("random:{r}"))
        .collect();
    check_cases(&cases, dir.path());
}

/// A `:_comment` nested 10,000 and 100,000 levels deep (vectors, lists,
/// sets, maps) in an otherwise valid document: an error (the depth limit),
/// not a stack overflow.
#[test]
fn metadata_readers_survive_deep_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for reader in ["manifest", "checkpoint", "migration"] {
        for kind in ["vector", "list", "set", "map"] {
            for depth in [10_000, 100_000] {
                cases.push(format!("deep:{reader}:{kind}:{depth}"));
            }
        }
    }
    check_cases(&cases, dir.path());
}

/// Random bytes, random gzip and mutated real chunks: the chunk reader
/// refuses the noise with an error, never crashes, stays small.
#[test]
fn chunk_reader_survives_random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (chunk, _) = runtime.block_on(real_chunk(dir.path(), 64));
    std::fs::write(dir.path().join("valid-chunk.fressian"), chunk).unwrap();
    check_cases(&["chunk-random".to_string()], dir.path());
}

/// A datom value nested 10,000 and 100,000 lists deep: an error (the
/// codec's depth limit), not a stack overflow.
#[test]
fn chunk_reader_survives_deep_nesting() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (chunk, _) = runtime.block_on(real_chunk(dir.path(), 64));
    std::fs::write(dir.path().join("valid-chunk.fressian"), chunk).unwrap();
    check_cases(
        &[
            "chunk-deep:10000".to_string(),
            "chunk-deep:100000".to_string(),
        ],
        dir.path(),
    );
}

/// A 0.5 MB gzip chunk that inflates to a 512 MiB string, far beyond what
/// its manifest says the chunk holds (its checksum forged to match): the
/// chunk reader and `verify --deep` refuse it in bounded memory.
#[test]
fn chunk_reader_survives_a_gzip_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_, backup_id) = runtime.block_on(real_chunk(dir.path(), MARKER_LEN));
    let store = datacamp::storage::BackupStore::open(&datacamp::storage::Target::Directory(
        dir.path().join("backups"),
    ))
    .unwrap();
    let bomb = runtime.block_on(plant_bomb(&store, &backup_id));
    std::fs::write(dir.path().join("bomb.fressian.gz"), &bomb).unwrap();
    assert!(bomb.len() < 2 * 1024 * 1024, "bomb of {} bytes", bomb.len());
    std::fs::write(dir.path().join("backup-id"), &backup_id).unwrap();
    check_cases(
        &[
            "chunk-bomb-file".to_string(),
            "chunk-bomb-verify".to_string(),
        ],
        dir.path(),
    );
}

// ---------------------------------------------------------- chunk fixtures

/// Length of the marker string in the fixture chunk: three full Fressian
/// string chunks and a short tail, so its encoding shows the reference's
/// chunked form.
const MARKER_LEN: usize = 3 * 65_535 + 10;
/// How many string chunks (about 64 KiB each) the bomb repeats: 512 MiB.
const BOMB_PIECES: usize = 8 * 1024;

/// Backs up a small database holding one string of `marker_len` `Q`s to
/// `dir/backups`; returns chunk 0 uncompressed and the backup id.
async fn real_chunk(dir: &Path, marker_len: usize) -> (Vec<u8>, String) {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let db = datacamp::db::create(
        &format!("mem://corpus-{}-{n}", std::process::id()),
        datacamp::datom::DbConfig::default(),
    )
    .unwrap();
    let tx = datacamp::datom::edn::parse_tx_data(
        r#"[{:db/ident :t/str :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#,
    )
    .unwrap();
    db.transact(&tx).unwrap();
    let tx = datacamp::datom::edn::parse_tx_data(&format!(
        "[{{:t/str \"{}\"}} {{:t/str \"short\"}}]",
        "Q".repeat(marker_len)
    ))
    .unwrap();
    db.transact(&tx).unwrap();
    let store = datacamp::storage::BackupStore::open(&datacamp::storage::Target::Directory(
        dir.join("backups"),
    ))
    .unwrap();
    let result = datacamp::backup(&db, &store, &datacamp::BackupOptions::default())
        .await
        .unwrap();
    let key = store
        .layout()
        .chunk("default-db", &result.backup_id, 0)
        .unwrap();
    let gz = store.get(&key).await.unwrap();
    (
        compress::decompress(&gz, Compression::default(), u64::MAX).unwrap(),
        result.backup_id,
    )
}

/// Replaces chunk 0 of the backup by a bomb: its marker string's encoding
/// repeated to 512 MiB, gzipped; the manifest's checksum and size are
/// forged to match (its datom count and uncompressed size are not).
/// Returns the bomb's bytes.
async fn plant_bomb(store: &datacamp::storage::BackupStore, backup_id: &str) -> Vec<u8> {
    let layout = store.layout();
    let key = layout.chunk("default-db", backup_id, 0).unwrap();
    let plain = compress::decompress(
        &store.get(&key).await.unwrap(),
        Compression::default(),
        u64::MAX,
    )
    .unwrap();
    // The marker is written as STRING_CHUNK pieces (code 0xE2, a packed
    // 3-byte length, the bytes) and a final STRING piece: find the first
    // piece (its header is the 4 bytes before the first Q) and where the
    // chunk pieces end.
    let first_q = plain.iter().position(|&b| b == b'Q').unwrap();
    let piece_start = first_q - 4;
    let piece_len = |at: usize| {
        assert_eq!(
            plain[at],
            0xE2,
            "a STRING_CHUNK piece at {at}: {:x?}",
            &plain[at..at + 4]
        );
        assert_eq!(plain[at + 1] & 0xF8, 0x68, "a 3-byte packed int at {at}");
        (usize::from(plain[at + 1] & 0x07) << 16)
            | (usize::from(plain[at + 2]) << 8)
            | usize::from(plain[at + 3])
    };
    let piece = plain[piece_start..first_q + piece_len(piece_start)].to_vec();
    let mut rest = piece_start;
    while plain[rest] == 0xE2 {
        rest += 4 + piece_len(rest);
    }
    let mut gz = compress::gzip_writer(Vec::new(), 6).unwrap();
    gz.write_all(&plain[..piece_start]).unwrap();
    for _ in 0..BOMB_PIECES {
        gz.write_all(&piece).unwrap();
    }
    gz.write_all(&plain[rest..]).unwrap();
    let bomb = gz.finish().unwrap();
    store.put(&key, bomb.clone()).await.unwrap();

    let manifest_key = layout.manifest("default-db", backup_id).unwrap();
    let mut manifest = Manifest::from_edn(&String::from_utf8_lossy(
        &store.get(&manifest_key).await.unwrap(),
    ))
    .unwrap();
    let chunk = &mut manifest.chunks[0];
    chunk.checksum = compress::sha256_hex(&bomb);
    chunk.size_bytes = Some(bomb.len() as u64);
    manifest.recompute_stats();
    store
        .put(&manifest_key, manifest.to_edn().into_bytes())
        .await
        .unwrap();
    bomb
}
