//! Issue 17's goals (restore speed and memory, zstd, file size, 100 M),
//! each met or not, computed from the rows of one run: `e2e` (1 M, 10 M),
//! `reference` (decode on two threads), `micro` (file load and scan) and
//! `scale` (100 M).

use serde_json::Value;

use crate::report::Goal;

fn row<'a>(rows: &'a [Value], id: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["id"].as_str() == Some(id))
}

fn field(rows: &[Value], id: &str, key: &str) -> Option<f64> {
    row(rows, id).and_then(|r| r[key].as_f64())
}

fn seconds(rows: &[Value], id: &str) -> Option<f64> {
    field(rows, id, "median_ns").map(|ns| ns / 1e9)
}

/// Stored bytes of a backup row (uncompressed bytes over the ratio).
fn stored(rows: &[Value], id: &str) -> Option<f64> {
    let uncompressed = field(rows, id, "bytes_per_iter")?;
    let ratio = field(rows, id, "compression_ratio").filter(|r| *r > 0.0)?;
    Some(uncompressed / ratio)
}

/// Why a goal has no measurement: its step did not run, or ran without
/// the rows (e.g. `--quick` has no 10 M run).
struct Missing<'a> {
    steps: &'a [&'a str],
    quick: bool,
}

impl Missing<'_> {
    fn goal(&self, goal: &str, step: &str, what: &str) -> Goal {
        let why = if !self.steps.contains(&step) {
            format!("not measured (step {step} not run)")
        } else if self.quick {
            format!("not measured in --quick ({what})")
        } else {
            format!("not measured ({what})")
        };
        Goal::new(goal, None, why)
    }
}

/// Issue 17's goals 1–6.
pub fn goals(rows: &[Value], quick: bool, steps: &[&str]) -> Vec<Goal> {
    let missing = Missing { steps, quick };
    vec![
        restore_vs_backup(rows, &missing),
        restore_rss(rows, &missing),
        decode_vs_reference(rows, &missing),
        zstd_vs_gzip(rows, &missing),
        file_size(rows, &missing),
        load_and_scan(rows, &missing),
        linear_at_100m(rows, &missing),
        rss_at_100m(rows, &missing),
    ]
}

/// Goal 1: restore of 10 M from a directory ≤ the parallel-2 backup.
fn restore_vs_backup(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/1 restore 10 M from a directory (gzip) ≤ the parallel-2 backup's time";
    match (
        seconds(rows, "e2e/restore/dir/10M"),
        seconds(rows, "e2e/backup/dir/parallel-2/10M"),
    ) {
        (Some(r), Some(b)) => Goal::new(
            goal,
            Some(r <= b),
            format!("{:.2}× ({r:.2} s restore / {b:.2} s backup)", r / b),
        ),
        _ => missing.goal(goal, "e2e", "no 10 M restore and backup rows"),
    }
}

/// Goal 2: restore peak RSS ≤ 128 MB at 10 M (and 100 M), within 20 % of 1 M.
fn restore_rss(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/2 restore peak RSS ≤ 128 MB at 10 M and 100 M, within 20 % of the 1 M restore";
    let rss = |id: &str| field(rows, id, "peak_rss_mb");
    let (one, ten) = (rss("e2e/restore/dir/1M"), rss("e2e/restore/dir/10M"));
    let hundred = rss("scale/restore/dir/100M");
    match (one, ten) {
        (Some(o), Some(t)) => {
            let mut worst = t;
            let mut text = format!(
                "1 M {o:.0} MB, 10 M {t:.0} MB ({:+.0} %)",
                (t / o - 1.0) * 100.0
            );
            match hundred {
                Some(h) => {
                    worst = worst.max(h);
                    text.push_str(&format!(
                        ", 100 M {h:.0} MB ({:+.0} %)",
                        (h / o - 1.0) * 100.0
                    ));
                }
                None => text.push_str(", 100 M not measured"),
            }
            let met = worst <= 128.0 && worst <= o * 1.2;
            // Not met while 100 M is missing only if what was measured fails.
            Goal::new(goal, (!met || hundred.is_some()).then_some(met), text)
        }
        _ => missing.goal(goal, "e2e", "no 1 M and 10 M restore rows"),
    }
}

/// Goal 3: decode on 2 threads ≥ 10 × the Clojure reference.
fn decode_vs_reference(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/3 decode (gunzip + decode) on 2 threads ≥ 10× the Clojure reference's decode";
    match field(
        rows,
        "reference/datacamp/decode/parallel-2/1M",
        "vs_reference",
    ) {
        Some(x) => Goal::new(goal, Some(x >= 10.0), format!("{x:.1}×")),
        None => missing.goal(goal, "reference", "no decode/parallel-2 row"),
    }
}

/// Goal 4: zstd backup ≥ 2 × faster than gzip-6, stored bytes ≤ gzip-6's.
fn zstd_vs_gzip(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/4 zstd backup at parallel 2 ≥ 2× faster than gzip-6 at parallel 2, stored bytes ≤ gzip-6's (10 M)";
    let (gz, zs) = (
        "e2e/backup/dir/parallel-2/10M",
        "e2e/backup/dir-zstd/parallel-2/10M",
    );
    match (
        seconds(rows, gz),
        seconds(rows, zs),
        stored(rows, gz),
        stored(rows, zs),
    ) {
        (Some(g), Some(z), Some(gb), Some(zb)) => Goal::new(
            goal,
            Some(g / z >= 2.0 && zb <= gb),
            format!(
                "{:.2}× faster ({g:.2} / {z:.2} s), stored {:.1} vs {:.1} MB",
                g / z,
                zb / 1e6,
                gb / 1e6
            ),
        ),
        _ => missing.goal(goal, "e2e", "no 10 M gzip and zstd backup rows"),
    }
}

/// Goal 5 (size): the file database ≤ 70 bytes per datom at 10 M and 100 M.
fn file_size(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/5 file database ≤ 70 bytes per datom at 10 M and at 100 M";
    let per = |id: &str| field(rows, id, "db_bytes_per_datom");
    let (ten, hundred) = (per("e2e/create/file/10M"), per("scale/create/file/100M"));
    match (ten, hundred) {
        (Some(t), Some(h)) => Goal::new(
            goal,
            Some(t <= 70.0 && h <= 70.0),
            format!("10 M {t:.1}, 100 M {h:.1} bytes per datom"),
        ),
        (Some(t), None) => Goal::new(
            goal,
            (t > 70.0).then_some(false),
            format!("10 M {t:.1} bytes per datom; 100 M not measured"),
        ),
        _ => missing.goal(goal, "e2e", "no 10 M create row"),
    }
}

/// Goal 5 (speed): P6's load ≥ 300 k/s and EAVT scan ≥ 2 M/s, file backend.
fn load_and_scan(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/5 … with file load ≥ 300 k datoms/s and EAVT scan ≥ 2 M datoms/s (P6)";
    match (
        field(rows, "load/file", "elements_per_s"),
        field(rows, "scan_eavt/file", "elements_per_s"),
    ) {
        (Some(l), Some(s)) => Goal::new(
            goal,
            Some(l >= 300e3 && s >= 2e6),
            format!("load {:.0} k/s, scan {:.2} M/s", l / 1e3, s / 1e6),
        ),
        _ => missing.goal(goal, "micro", "no load/file and scan_eavt/file rows"),
    }
}

/// Goal 6: 100 M backup and restore each ≤ 11 × their 10 M times.
fn linear_at_100m(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/6 100 M: backup and restore each ≤ 11× their 10 M times";
    match (
        seconds(rows, "scale/backup/dir/gzip/parallel-2/100M"),
        seconds(rows, "e2e/backup/dir/parallel-2/10M"),
        seconds(rows, "scale/restore/dir/100M"),
        seconds(rows, "e2e/restore/dir/10M"),
    ) {
        (Some(b100), Some(b10), Some(r100), Some(r10)) => Goal::new(
            goal,
            Some(b100 <= 11.0 * b10 && r100 <= 11.0 * r10),
            format!(
                "backup {:.1}× ({b100:.1} / {b10:.2} s), restore {:.1}× ({r100:.1} / {r10:.2} s)",
                b100 / b10,
                r100 / r10
            ),
        ),
        _ => missing.goal(goal, "scale", "no 100 M rows next to 10 M ones"),
    }
}

/// Goal 6 (memory): 100 M peak RSS within 20 % of the 10 M run's.
fn rss_at_100m(rows: &[Value], missing: &Missing<'_>) -> Goal {
    let goal = "17/6 100 M: peak RSS of backup and restore within 20 % of the 10 M run's";
    let rss = |id: &str| field(rows, id, "peak_rss_mb");
    match (
        rss("scale/backup/dir/gzip/parallel-2/100M"),
        rss("e2e/backup/dir/parallel-2/10M"),
        rss("scale/restore/dir/100M"),
        rss("e2e/restore/dir/10M"),
    ) {
        (Some(b100), Some(b10), Some(r100), Some(r10)) => Goal::new(
            goal,
            Some(b100 <= 1.2 * b10 && r100 <= 1.2 * r10),
            format!(
                "backup {b100:.0} vs {b10:.0} MB ({:+.0} %), restore {r100:.0} vs {r10:.0} MB ({:+.0} %)",
                (b100 / b10 - 1.0) * 100.0,
                (r100 / r10 - 1.0) * 100.0
            ),
        ),
        _ => missing.goal(goal, "scale", "no 100 M rows next to 10 M ones"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// The goal lines come out of one run's rows: met, not met, or not
    /// measured with the reason.
    #[test]
    fn goals_are_computed_from_the_rows() {
        let rows = vec![
            json!({"id": "e2e/backup/dir/parallel-2/10M", "median_ns": 4.0e9, "peak_rss_mb": 45.0,
                   "bytes_per_iter": 300e6, "compression_ratio": 3.0}),
            json!({"id": "e2e/backup/dir-zstd/parallel-2/10M", "median_ns": 1.5e9,
                   "bytes_per_iter": 300e6, "compression_ratio": 3.2}),
            json!({"id": "e2e/restore/dir/10M", "median_ns": 5.0e9, "peak_rss_mb": 100.0}),
            json!({"id": "e2e/restore/dir/1M", "median_ns": 0.6e9, "peak_rss_mb": 90.0}),
            json!({"id": "e2e/create/file/10M", "db_bytes_per_datom": 54.7}),
        ];
        let goals = goals(&rows, false, &["e2e"]);
        let status = |prefix: &str| {
            let g = goals.iter().find(|g| g.goal.starts_with(prefix)).unwrap();
            (g.met, g.measured.clone())
        };
        assert_eq!(status("17/1").0, Some(false), "{:?}", status("17/1"));
        assert!(
            status("17/1").1.starts_with("1.25×"),
            "{:?}",
            status("17/1")
        );
        // 10 M measured and within both limits, 100 M missing: open.
        assert_eq!(status("17/2").0, None, "{:?}", status("17/2"));
        assert_eq!(status("17/3").1, "not measured (step reference not run)");
        assert_eq!(status("17/4").0, Some(true), "{:?}", status("17/4"));
        assert_eq!(status("17/5 file").0, None, "{:?}", status("17/5 file"));
        assert!(status("17/5 file").1.contains("10 M 54.7"));
        assert_eq!(status("17/6 100 M: backup and restore each").0, None);
    }
}
