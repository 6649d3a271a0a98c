//! Step `cutover`: the live-migration benchmark
//! (`crates/migrate/benches/cutover.rs`, harness-less): the fence duration
//! at cutover over 20 migrations (3 with `--quick`) of a 100 k-datom
//! database under writers at about 500 tx/s, mem → file, mem → mem and
//! mem → postgres (a throwaway local cluster; skipped with a note without
//! the PostgreSQL binaries), and catch-up replay throughput on a backlog of
//! 10 000 transactions (1 000).

use serde_json::{json, Value};

use crate::report::Goal;
use crate::{cargo, Ctx, StepOutput};

/// The goal for the fence's p99, in milliseconds (issue 11: mem
/// and file targets).
const GOAL_P99_MS: f64 = 50.0;
/// Issue 16's goal with a postgres target.
const GOAL_P99_MS_PG: f64 = 100.0;

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let out_file = ctx.target.join("bench").join("cutover.json");
    if let Some(dir) = out_file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    eprintln!(
        "cutover: {} migrations per target under ~500 tx/s",
        if ctx.quick { 3 } else { 20 }
    );
    let status = cargo()
        .current_dir(ctx.root)
        // `--workspace`, not `-p`: features then unify as in the build
        // step, so nothing is compiled again while timing.
        .args(["bench", "--quiet", "--workspace", "--bench", "cutover"])
        .env("DATACAMP_BENCH_QUICK", if ctx.quick { "1" } else { "0" })
        .env("DATACAMP_BENCH_OUT", &out_file)
        .status()
        .map_err(|e| format!("cannot run the cutover bench: {e}"))?;
    if !status.success() {
        return Err(format!("the cutover bench failed ({status})"));
    }
    let text = std::fs::read_to_string(&out_file)
        .map_err(|e| format!("cannot read {}: {e}", out_file.display()))?;
    let results: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not JSON: {e}", out_file.display()))?;

    let mut out = StepOutput::default();
    for kind in ["file", "mem", "pg"] {
        let c = &results[format!("cutover/mem-to-{kind}")];
        if let Some(why) = c["skipped"].as_str() {
            out.notes.push(format!("cutover mem → {kind}: {why}"));
            continue;
        }
        let (median, p99) = (
            c["fence_ms_median"].as_f64().unwrap_or(f64::NAN),
            c["fence_ms_p99"].as_f64().unwrap_or(f64::NAN),
        );
        let migrations = c["migrations"].as_u64().unwrap_or(0);
        let rate = c["writes_per_sec"].as_f64().unwrap_or(f64::NAN);
        out.rows.push(json!({
            "id": format!("migrate/cutover-fence/mem-to-{kind}"),
            "median_ns": median * 1e6,
            "p99_ns": p99 * 1e6,
            "samples": migrations,
        }));
        out.notes.push(format!(
            "cutover mem → {kind}: {migrations} migrations of 100 k datoms under {rate:.0} tx/s; \
             fence median {median:.3} ms, p99 {p99:.3} ms, max {:.3} ms; slowest write during \
             finalize p99 {:.2} ms",
            c["fence_ms_max"].as_f64().unwrap_or(f64::NAN),
            c["slowest_write_ms_p99"].as_f64().unwrap_or(f64::NAN),
        ));
        let (goal, met) = if kind == "pg" {
            (
                format!("Cutover pause p99 ≤ {GOAL_P99_MS_PG} ms under ~500 tx/s, → postgres"),
                p99 <= GOAL_P99_MS_PG,
            )
        } else {
            (
                format!(
                    "Cutover pause (fence) p99 ≤ {GOAL_P99_MS} ms under ~500 tx/s, mem → {kind}"
                ),
                p99 <= GOAL_P99_MS,
            )
        };
        out.goals.push(Goal {
            goal,
            met: Some(met),
            measured: format!(
                "p99 {p99:.3} ms, median {median:.3} ms over {migrations} migrations"
            ),
        });

        let r = &results[format!("replay/mem-to-{kind}")];
        let secs = r["secs"].as_f64().unwrap_or(f64::NAN);
        out.rows.push(json!({
            "id": format!("migrate/replay/mem-to-{kind}"),
            "median_ns": secs * 1e9,
            "elements_per_s": r["datoms_per_sec"],
            "tx_per_s": r["tx_per_sec"],
        }));
        out.notes.push(format!(
            "catch-up replay mem → {kind}: {} transactions ({} datoms) in {secs:.3} s = {:.0} tx/s, {:.0} datoms/s",
            r["transactions"],
            r["datoms"],
            r["tx_per_sec"].as_f64().unwrap_or(f64::NAN),
            r["datoms_per_sec"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    Ok(out)
}
