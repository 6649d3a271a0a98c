//! `cargo xtask` — developer commands for the Datacamp workspace.
//!
//! `cargo xtask bench [--quick] [--only NAME] [--out DIR]` is the one entry
//! point for benchmarks: it runs every criterion benchmark of the workspace
//! (or those whose id contains NAME), then gathers criterion's estimates into
//! `DIR/report.json` and `DIR/report.md` (default DIR: `<target>/bench`) and
//! prints the table. `--quick` sets `DATACAMP_BENCH_QUICK=1`, which the
//! benchmarks honour with smaller inputs, and shortens criterion's timing.

mod e2e;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde_json::{json, Value};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rss-wrap") => e2e::rss_wrap(&args[1..]),
        Some("bench") => match bench(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        _ => {
            eprintln!(
                "usage: cargo xtask bench [--quick] [--only NAME] [--out DIR]\n\n\
                 Runs every benchmark and writes report.json and report.md."
            );
            ExitCode::from(2)
        }
    }
}

struct BenchOptions {
    quick: bool,
    only: Option<String>,
    out: Option<PathBuf>,
}

fn parse_options(args: &[String]) -> Result<BenchOptions, String> {
    let mut opts = BenchOptions {
        quick: false,
        only: None,
        out: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => opts.quick = true,
            "--only" => opts.only = Some(it.next().ok_or("--only needs a NAME")?.clone()),
            "--out" => opts.out = Some(PathBuf::from(it.next().ok_or("--out needs a DIR")?)),
            other => return Err(format!("unknown argument {other:?}")),
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

fn bench(args: &[String]) -> Result<(), String> {
    let opts = parse_options(args)?;
    let root = workspace_root();
    let target = target_dir(&root);
    let out = opts.out.clone().unwrap_or_else(|| target.join("bench"));
    let criterion_dir = target.join("criterion");
    // Only this run's results may reach the report.
    if criterion_dir.exists() {
        std::fs::remove_dir_all(&criterion_dir)
            .map_err(|e| format!("cannot clear {}: {e}", criterion_dir.display()))?;
    }

    let started = std::time::Instant::now();
    let only_e2e = opts.only.as_deref().is_some_and(|o| o.starts_with("e2e"));
    let mut rows = Vec::new();
    if !only_e2e {
        // `--bench '*'`, not `--benches`: the latter also runs every lib's
        // unit tests in bench mode, whose harness rejects criterion's flags.
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(&root)
            .args(["bench", "--workspace", "--bench", "*", "--"]);
        if let Some(only) = &opts.only {
            cmd.arg(only);
        }
        if opts.quick {
            cmd.env("DATACAMP_BENCH_QUICK", "1");
            cmd.args(["--warm-up-time", "1", "--measurement-time", "2"]);
        }
        let status = cmd
            .status()
            .map_err(|e| format!("cannot run cargo bench: {e}"))?;
        if !status.success() {
            return Err(format!("cargo bench failed ({status})"));
        }
        collect(&criterion_dir, &mut rows);
    }
    if opts.only.is_none() || only_e2e {
        // The 1 M and 10 M datom databases the issues name; --quick keeps
        // the 1 M one.
        let sizes: &[u64] = if opts.quick {
            &[1_000_000]
        } else {
            &[1_000_000, 10_000_000]
        };
        rows.extend(e2e::run(&root, &target, sizes)?);
    }
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let report = json!({
        "command": format!("cargo xtask bench{}", args.iter().map(|a| format!(" {a}")).collect::<String>()),
        "quick": opts.quick,
        "machine": machine(),
        "wall_seconds": started.elapsed().as_secs_f64(),
        "results": rows,
    });
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let json_path = out.join("report.json");
    let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, text)
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    let md = markdown(&report);
    let md_path = out.join("report.md");
    std::fs::write(&md_path, &md)
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    println!("{md}");
    println!("wrote {} and {}", json_path.display(), md_path.display());
    Ok(())
}

/// Walks criterion's output for `new/benchmark.json` + `new/estimates.json`.
fn collect(dir: &Path, rows: &mut Vec<Value>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let (bench, est) = (
            path.join("new/benchmark.json"),
            path.join("new/estimates.json"),
        );
        if bench.is_file() && est.is_file() {
            if let Some(row) = row(&bench, &est) {
                rows.push(row);
            }
        } else if path.file_name().is_some_and(|n| n != "report") {
            collect(&path, rows);
        }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn row(bench: &Path, est: &Path) -> Option<Value> {
    let b = read_json(bench)?;
    let e = read_json(est)?;
    let median_ns = e["median"]["point_estimate"].as_f64()?;
    let lower = e["median"]["confidence_interval"]["lower_bound"].as_f64();
    let upper = e["median"]["confidence_interval"]["upper_bound"].as_f64();
    let seconds = median_ns / 1e9;
    let mut row = json!({
        "id": b["full_id"].as_str().unwrap_or("?"),
        "median_ns": median_ns,
        "median_ci_ns": [lower, upper],
    });
    let throughput = &b["throughput"];
    if let Some(bytes) = throughput["Bytes"]
        .as_f64()
        .or(throughput["BytesDecimal"].as_f64())
    {
        row["bytes_per_iter"] = json!(bytes);
        row["mb_per_s"] = json!(bytes / seconds / 1e6);
    }
    if let Some(n) = throughput["Elements"].as_f64() {
        row["elements_per_iter"] = json!(n);
        row["elements_per_s"] = json!(n / seconds);
    }
    Some(row)
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0 / 1024.0)
    });
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({ "cpu": cpu, "cores": cores, "memory_gib": mem_gib, "rustc": rustc, "os": std::env::consts::OS })
}

fn fmt_rate(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x >= 1e6 => format!("{:.2} M{unit}", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1} k{unit}", x / 1e3),
        Some(x) => format!("{x:.1} {unit}"),
        None => "—".into(),
    }
}

fn markdown(report: &Value) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Command: `{}`  \n",
        report["command"].as_str().unwrap_or("")
    ));
    let m = &report["machine"];
    s.push_str(&format!(
        "Machine: {} ({} cores, {:.0} GiB), {}\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"].as_f64().unwrap_or(0.0),
        m["rustc"].as_str().unwrap_or("")
    ));
    s.push_str("| benchmark | median | MB/s | items/s | ratio | peak RSS |\n|---|---:|---:|---:|---:|---:|\n");
    for r in report["results"].as_array().into_iter().flatten() {
        let ns = r["median_ns"].as_f64().unwrap_or(0.0);
        let median = if ns >= 1e9 {
            format!("{:.3} s", ns / 1e9)
        } else if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else {
            format!("{:.1} µs", ns / 1e3)
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r["id"].as_str().unwrap_or("?"),
            median,
            r["mb_per_s"]
                .as_f64()
                .map_or("—".into(), |x| format!("{x:.0}")),
            fmt_rate(r["elements_per_s"].as_f64(), "/s"),
            r["compression_ratio"]
                .as_f64()
                .map_or("—".into(), |x| format!("{x:.2}×")),
            r["peak_rss_mb"]
                .as_f64()
                .map_or("—".into(), |x| format!("{x:.0} MB")),
        ));
    }
    s
}
