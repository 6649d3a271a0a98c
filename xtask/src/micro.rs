//! Step `micro`: every criterion benchmark of the workspace, gathered from
//! criterion's own estimates (`<target>/criterion/**/new/*.json`).
//!
//! Which bench targets are criterion's is read from their source
//! (`criterion_main!`), so a new criterion bench is picked up without
//! touching this file, and a harness-less bench that a step of its own
//! runs (`sidebyside`, a cutover benchmark) is not run twice.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::{cargo, Ctx, StepOutput};

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let criterion_dir = ctx.target.join("criterion");
    // Only this run's results may reach the report.
    if criterion_dir.exists() {
        std::fs::remove_dir_all(&criterion_dir)
            .map_err(|e| format!("cannot clear {}: {e}", criterion_dir.display()))?;
    }
    let benches = criterion_benches(ctx.root)?;
    if benches.is_empty() {
        return Err("no criterion bench targets found in the workspace".into());
    }
    let mut cmd = cargo();
    cmd.current_dir(ctx.root).args(["bench", "--workspace"]);
    for name in &benches {
        cmd.args(["--bench", name]);
    }
    cmd.arg("--");
    if !ctx.filters.is_empty() {
        // Criterion takes one filter, a regular expression.
        cmd.arg(ctx.filters.join("|"));
    }
    if ctx.quick {
        cmd.env("DATACAMP_BENCH_QUICK", "1");
        cmd.args(["--warm-up-time", "0.2", "--measurement-time", "0.4"]);
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo bench: {e}"))?;
    if !status.success() {
        return Err(format!("cargo bench failed ({status})"));
    }
    let mut rows = Vec::new();
    collect(&criterion_dir, &mut rows);
    Ok(StepOutput {
        rows,
        ..StepOutput::default()
    })
}

/// Names of the workspace's bench targets whose source uses criterion.
fn criterion_benches(root: &Path) -> Result<Vec<String>, String> {
    let out = cargo()
        .current_dir(root)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let meta: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let mut names = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bench = target["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bench"));
            let src = target["src_path"].as_str().map(PathBuf::from);
            let uses_criterion = src
                .and_then(|p| std::fs::read_to_string(p).ok())
                .is_some_and(|s| s.contains("criterion_main!"));
            if let (true, true, Some(name)) = (is_bench, uses_criterion, target["name"].as_str()) {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
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
