//! `cargo xtask` — developer commands for the Datacamp workspace.
//!
//! `cargo xtask bench [--quick] [--only NAME[,NAME…]] [--out DIR]` is the
//! one entry point for benchmarks. It runs the steps of [`STEPS`] in order —
//! the criterion micro-benchmarks of every crate, Datacamp's pipeline side
//! by side with the Clojure reference pipeline, and the end-to-end
//! backup/restore of the release binary — and writes `DIR/report.json` and
//! `DIR/report.md` (default DIR: `<target>/bench`), which end with the
//! issue's goals, each met or not. `--quick` sets `DATACAMP_BENCH_QUICK=1`
//! and shrinks every step (100 k instead of 1 M datoms, no 10 M end to
//! end). `--only` takes step names (`micro`, `reference`, `e2e`, …); any
//! other NAME filters the criterion benchmarks by id (`--only chunk/`).
//!
//! `DATACAMP_CLOJURE` names the `clojure` executable (default: `clojure` on
//! PATH; `DATACAMP_CLOJURE=/nonexistent` hides it), `DATACAMP_FRESSIAN_CP`
//! the class path of the Fressian jars (default: Debian's, in
//! `/usr/share/java`).

mod chain;
mod charts;
mod cutover;
mod e2e;
mod encryption;
mod incremental;
mod issue17;
mod micro;
mod ops;
mod pg;
mod reference;
mod report;
mod scale;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use serde_json::{json, Value};

/// One named benchmark step of `cargo xtask bench`.
///
/// **Adding a benchmark** (e.g. the migration cutover): write
/// `xtask/src/NAME.rs` with `pub fn run(ctx: &Ctx) -> Result<StepOutput,
/// String>`, declare `mod NAME;` above and add a line to [`STEPS`]. Its rows
/// join the report's table (`id`, `median_ns` and, where they apply,
/// `elements_per_s`, `mb_per_s`, `peak_rss_mb`, …: see [`report`]); its
/// goals, as [`report::Goal`]s in [`StepOutput::goals`], join the Goals
/// section; `--only NAME` runs it alone. A harness-less bench target
/// (`harness = false` without criterion) that the step runs itself is
/// never run by the `micro` step, which only runs criterion benchmarks.
#[derive(Debug)]
pub struct Step {
    /// The name `--only` selects it by.
    pub name: &'static str,
    /// One line for `cargo xtask bench --help`.
    pub about: &'static str,
    /// Runs the step; an error ends the whole run.
    pub run: fn(&Ctx) -> Result<StepOutput, String>,
}

/// The benchmark steps, in the order they run.
pub const STEPS: &[Step] = &[
    Step {
        name: "micro",
        about: "criterion benchmarks of every crate (codec, engine, storage, manifest, CLI)",
        run: micro::run,
    },
    Step {
        name: "reference",
        about: "encode and decode side by side with the Clojure reference pipeline",
        run: reference::run,
    },
    Step {
        name: "e2e",
        about: "backup and restore with the release binary: datoms/s, peak RSS",
        run: e2e::run,
    },
    Step {
        name: "encryption",
        about: "age-encrypted vs plain backup and restore of the same database (issue 14)",
        run: encryption::run,
    },
    Step {
        name: "chain",
        about: "restore of a full + 24 incrementals chain vs one full restore: time, peak RSS",
        run: chain::run,
    },
    Step {
        name: "incremental",
        about: "incremental backup after 100 k datoms in 100 txs vs the full backup (issue 13)",
        run: incremental::run,
    },
    Step {
        name: "ops",
        about: "list/status/forget over 5,000 backups in S3; backup with --limit-upload",
        run: ops::run,
    },
    Step {
        name: "pg",
        about: "postgres:// engine: load, EAVT scan, transact 1000x10, backup vs file (issue 16)",
        run: pg::run,
    },
    Step {
        name: "scale",
        about:
            "100 M datoms end to end on the file backend (full runs only; DATACAMP_SCALE_DATOMS=N)",
        run: scale::run,
    },
    Step {
        name: "cutover",
        about: "live-migration cutover pause under ~500 tx/s, catch-up replay throughput",
        run: cutover::run,
    },
];

/// What every step gets.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The workspace root.
    pub root: &'a Path,
    /// Cargo's target directory.
    pub target: &'a Path,
    /// `--quick`: small inputs, short measurements.
    pub quick: bool,
    /// Criterion filters from `--only` (names that are not steps).
    pub filters: &'a [String],
}

/// What a step measured.
#[derive(Debug, Default)]
pub struct StepOutput {
    /// Report rows (JSON objects with at least `id` and `median_ns`).
    pub rows: Vec<Value>,
    /// Lines for the report's notes, e.g. `reference: SKIPPED: clojure not
    /// found`.
    pub notes: Vec<String>,
    /// Goals this step checks itself, beyond those of [`report::goals`].
    pub goals: Vec<report::Goal>,
    /// A failure to report after the report is written (the run then
    /// exits non-zero, but keeps what the other steps measured).
    pub failure: Option<String>,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rss-wrap") => e2e::rss_wrap(&args[1..]),
        Some("bench") if args.iter().any(|a| a == "--help" || a == "-h") => {
            println!("{}", usage());
            ExitCode::SUCCESS
        }
        Some("bench") => match bench(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!("{}", usage());
            ExitCode::from(2)
        }
    }
}

fn usage() -> String {
    let mut s = String::from(
        "usage: cargo xtask bench [--quick] [--only NAME[,NAME...]] [--out DIR]\n\n\
         Runs every benchmark step and writes report.json and report.md.\n\
         Steps (--only NAME runs those named; other names filter criterion ids):\n",
    );
    for step in STEPS {
        s.push_str(&format!("  {:<10} {}\n", step.name, step.about));
    }
    s.push_str(
        "\nEnvironment: DATACAMP_CLOJURE (the clojure executable; /nonexistent hides it),\n\
         DATACAMP_FRESSIAN_CP (class path of the Fressian jars).",
    );
    s
}

struct BenchOptions {
    quick: bool,
    only: Vec<String>,
    out: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<BenchOptions, String> {
    let mut opts = BenchOptions {
        quick: false,
        only: Vec::new(),
        out: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--only" => opts.only.extend(
                it.next()
                    .ok_or("--only needs a NAME")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "--out" => opts.out = Some(PathBuf::from(it.next().ok_or("--out needs a DIR")?)),
            other => return Err(format!("unknown argument {other:?}\n\n{}", usage())),
        }
    }
    Ok(opts)
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// `cargo`, as the one that runs this xtask.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The steps `--only` selects, and the criterion filters it gives.
fn select(only: &[String]) -> (Vec<&'static Step>, Vec<String>) {
    if only.is_empty() {
        return (STEPS.iter().collect(), Vec::new());
    }
    let mut steps: Vec<&Step> = STEPS
        .iter()
        .filter(|s| only.iter().any(|o| o == s.name))
        .collect();
    let filters: Vec<String> = only
        .iter()
        .filter(|o| !STEPS.iter().any(|s| s.name == o.as_str()))
        .cloned()
        .collect();
    if !filters.is_empty() && !steps.iter().any(|s| s.name == "micro") {
        steps.insert(0, &STEPS[0]);
    }
    (steps, filters)
}

/// Builds what the steps run (bench targets in the bench profile, the
/// release binary for `e2e`) before anything is timed, so the steps'
/// times are measurement only; returns the seconds it took.
fn build(root: &Path, steps: &[&Step]) -> Result<f64, String> {
    let started = Instant::now();
    eprintln!("== building the benchmarks");
    let mut runs = Vec::new();
    // `scale` builds (or is given) the binary it measures itself; `pg`
    // runs in this process.
    if steps.iter().any(|s| !matches!(s.name, "scale" | "pg")) {
        runs.push(vec!["bench", "--workspace", "--no-run", "--quiet"]);
    }
    if steps.iter().any(|s| s.name == "e2e") {
        runs.push(vec!["build", "--release", "--quiet", "-p", "datacamp-cli"]);
    }
    for args in runs {
        let status = cargo()
            .current_dir(root)
            .args(&args)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("cargo {} failed ({status})", args.join(" ")));
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn bench(args: &[String]) -> Result<(), String> {
    let opts = parse_options(args)?;
    let root = workspace_root();
    let target = target_dir(&root);
    let out = opts.out.clone().unwrap_or_else(|| target.join("bench"));
    let (steps, filters) = select(&opts.only);
    let ctx = Ctx {
        root: &root,
        target: &target,
        quick: opts.quick,
        filters: &filters,
    };

    let started = Instant::now();
    let build_seconds = build(&root, &steps)?;
    let load_before = report::load_average();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut step_goals = Vec::new();
    let mut failures = Vec::new();
    let mut timings = serde_json::Map::new();
    for step in &steps {
        eprintln!("== bench step {} ({})", step.name, step.about);
        let t = Instant::now();
        let output = (step.run)(&ctx).map_err(|e| format!("step {}: {e}", step.name))?;
        let seconds = t.elapsed().as_secs_f64();
        eprintln!("== bench step {} done in {seconds:.0} s", step.name);
        timings.insert(step.name.to_owned(), json!(seconds));
        rows.extend(output.rows);
        notes.extend(output.notes);
        step_goals.extend(output.goals);
        failures.extend(output.failure.map(|f| format!("{}: {f}", step.name)));
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    // Drawn next to docs/PERFORMANCE.md, which embeds them by the report.
    let charts = charts::write(&root.join("docs"), &rows)?;
    let ran: Vec<&str> = steps.iter().map(|s| s.name).collect();
    let mut goals = report::goals(&rows, opts.quick, &ran);
    goals.extend(issue17::goals(&rows, opts.quick, &ran));
    goals.extend(step_goals);
    let report = json!({
        "command": format!("cargo xtask bench{}", args.iter().map(|a| format!(" {a}")).collect::<String>()),
        "date": report::today(),
        "quick": opts.quick,
        "steps": ran,
        "machine": report::machine(),
        "wall_seconds": started.elapsed().as_secs_f64(),
        "build_seconds": build_seconds,
        "step_seconds": timings,
        "load_average": [load_before, report::load_average()],
        "results": rows,
        "notes": notes,
        "goals": goals.iter().map(report::Goal::to_json).collect::<Vec<_>>(),
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json_path = out.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text)
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    let md = report::markdown(&report) + &charts;
    let md_path = out.join("report.md");
    std::fs::write(&md_path, &md)
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    println!("{md}");
    println!("wrote {} and {}", json_path.display(), md_path.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}
