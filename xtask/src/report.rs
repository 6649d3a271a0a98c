//! The report: the machine, the Markdown table, and the goals,
//! each met or not, computed from the rows of this run.
//!
//! Row fields the table shows (all optional but `id` and `median_ns`):
//! `mb_per_s`, `elements_per_s`, `compression_ratio`, `peak_rss_mb`,
//! `vs_reference` (Datacamp's datoms/s ÷ the Clojure reference's, same run).

use std::process::Command;

use serde_json::{json, Value};

/// One goal line of the report.
#[derive(Clone, Debug)]
pub struct Goal {
    /// The goal as the issue states it.
    pub goal: String,
    /// `Some(true)` met, `Some(false)` not met, `None` not measured.
    pub met: Option<bool>,
    /// The measured value, or why there is none.
    pub measured: String,
}

impl Goal {
    pub(crate) fn new(goal: &str, met: Option<bool>, measured: String) -> Goal {
        Goal {
            goal: goal.to_owned(),
            met,
            measured,
        }
    }

    fn status(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        }
    }

    pub fn to_json(&self) -> Value {
        json!({ "goal": self.goal, "status": self.status(), "measured": self.measured })
    }
}

/// The row whose id starts with `prefix` (ids end with a size label).
fn find<'a>(rows: &'a [Value], prefix: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
}

fn field(rows: &[Value], prefix: &str, key: &str) -> Option<f64> {
    find(rows, prefix).and_then(|r| r[key].as_f64())
}

fn rate(x: f64) -> String {
    fmt_rate(Some(x), "").trim_end().to_owned()
}

/// The goals of the benchmark issue, from this run's rows.
pub fn goals(rows: &[Value], quick: bool, steps: &[&str]) -> Vec<Goal> {
    let missing = |step: &str, what: &str| {
        if steps.contains(&step) {
            format!("not measured ({what})")
        } else {
            format!("not measured (step {step} not run)")
        }
    };
    let mut goals = Vec::new();

    // Side by side with the reference: Datacamp's datoms/s ÷ the reference's.
    let vs = |id: &str, min: f64, goal: &str| {
        let prefix = format!("reference/datacamp/{id}/");
        match (
            field(rows, &prefix, "vs_reference"),
            field(rows, &prefix, "elements_per_s"),
        ) {
            (Some(ratio), Some(dc)) => Goal::new(
                goal,
                Some(ratio >= min),
                format!(
                    "{ratio:.1}× ({} vs {} datoms/s)",
                    rate(dc),
                    rate(dc / ratio)
                ),
            ),
            _ => Goal::new(goal, None, missing("reference", "reference skipped")),
        }
    };
    goals.push(vs(
        "encode/parallel-2",
        10.0,
        "backup pipeline (encode + gzip-6 + SHA-256) ≥ 10× the reference's datoms/s at parallel 2",
    ));
    goals.push(vs(
        "encode/parallel-1",
        5.0,
        "backup pipeline ≥ 5× the reference's datoms/s at parallel 1",
    ));
    let mut decode = vs(
        "decode/parallel-1",
        10.0,
        "decode (gunzip + decode, restore side, one thread as a restore) ≥ 10× the reference",
    );
    if let Some(two) = field(
        rows,
        "reference/datacamp/decode/parallel-2/",
        "vs_reference",
    ) {
        decode
            .measured
            .push_str(&format!("; on 2 threads {two:.1}×"));
    }
    goals.push(decode);

    // The pipeline against gzip-6 alone, and its scaling.
    let p1 = field(rows, "reference/datacamp/encode/parallel-1/", "median_ns");
    let p2 = field(rows, "reference/datacamp/encode/parallel-2/", "median_ns");
    let alone = field(rows, "reference/datacamp/gzip6_alone/", "median_ns");
    let goal = "pipeline time ≤ 1.3× gzip-6 alone on the same bytes, parallel 1";
    goals.push(match (p1, alone) {
        (Some(p), Some(g)) => Goal::new(
            goal,
            Some(p / g <= 1.3),
            format!("{:.2}× ({:.0} / {:.0} ms)", p / g, p / 1e6, g / 1e6),
        ),
        _ => Goal::new(goal, None, missing("reference", "no pipeline rows")),
    });
    let goal = "parallel 2 ≥ 1.8× parallel 1 (pipeline)";
    goals.push(match (p1, p2) {
        (Some(a), Some(b)) => Goal::new(
            goal,
            Some(a / b >= 1.8),
            format!("{:.2}× ({:.0} / {:.0} ms)", a / b, a / 1e6, b / 1e6),
        ),
        _ => Goal::new(goal, None, missing("reference", "no pipeline rows")),
    });

    // End to end: the backup's scaling and memory.
    let size = if quick { "1M" } else { "10M" };
    let goal =
        format!("parallel 2 ≥ 1.8× parallel 1 (end-to-end backup of {size} datoms to a directory)");
    let b1 = field(
        rows,
        &format!("e2e/backup/dir/parallel-1/{size}"),
        "median_ns",
    );
    let b2 = field(
        rows,
        &format!("e2e/backup/dir/parallel-2/{size}"),
        "median_ns",
    );
    goals.push(match (b1, b2) {
        (Some(a), Some(b)) => Goal::new(
            &goal,
            Some(a / b >= 1.8),
            format!("{:.2}× ({:.2} / {:.2} s)", a / b, a / 1e9, b / 1e9),
        ),
        _ => Goal::new(&goal, None, missing("e2e", "no backup rows")),
    });
    let rss = |size: &str| {
        let dir = field(
            rows,
            &format!("e2e/backup/dir/parallel-2/{size}"),
            "peak_rss_mb",
        );
        let s3 = field(
            rows,
            &format!("e2e/backup/s3/parallel-2/{size}"),
            "peak_rss_mb",
        );
        // The larger of the two targets: the goal is about any backup.
        match (dir, s3) {
            (Some(d), Some(s)) => Some((d.max(s), format!("directory {d:.0} MB, S3 {s:.0} MB"))),
            (Some(d), None) => Some((d, format!("directory {d:.0} MB"))),
            _ => None,
        }
    };
    let goal = "peak RSS of the 10 M backup (8 MiB chunks, parallel 2) ≤ 128 MB";
    let quick_note = || "not measured in --quick (no 10 M run)".to_string();
    let (ten, one) = (rss("10M"), rss("1M"));
    goals.push(match &ten {
        Some((mb, text)) => Goal::new(goal, Some(*mb <= 128.0), text.clone()),
        None if quick => Goal::new(goal, None, quick_note()),
        None => Goal::new(goal, None, missing("e2e", "no 10 M backup row")),
    });
    let goal = "… and within 20 % of the 1 M backup's";
    goals.push(match (&ten, &one) {
        (Some((t, _)), Some((o, _))) => Goal::new(
            goal,
            Some(*t <= o * 1.2),
            format!("{t:.0} MB vs {o:.0} MB: {:+.0} %", (t / o - 1.0) * 100.0),
        ),
        _ if quick => Goal::new(goal, None, quick_note()),
        _ => Goal::new(goal, None, missing("e2e", "no backup rows")),
    });
    goals
}

/// Today's date (UTC) as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The 1-minute load average (`/proc/loadavg`): on a shared machine, a
/// run with other work going on says so in its report.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// First line a command prints (on stdout or stderr), if it runs.
fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .map(|l| l.trim().to_owned())
}

pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or_else(|| "unknown".to_owned(), |s| s.trim().to_owned());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0 / 1024.0)
    });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpu": cpu,
        "cores": cores,
        "memory_gib": mem_gib,
        "os": std::env::consts::OS,
        "kernel": kernel,
        "rustc": version_of("rustc", &["--version"]).unwrap_or_default(),
        "java": version_of("java", &["-version"]).unwrap_or_else(|| "none".into()),
    })
}

fn fmt_rate(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(x) if x >= 1e6 => format!("{:.2} M{unit}", x / 1e6),
        Some(x) if x >= 1e3 => format!("{:.1} k{unit}", x / 1e3),
        Some(x) => format!("{x:.1} {unit}"),
        None => "—".into(),
    }
}

fn fmt_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

pub fn markdown(report: &Value) -> String {
    let mut s = String::new();
    let load = &report["load_average"];
    s.push_str(&format!(
        "Command: `{}` ({}; {:.0} s, of which {:.0} s building; load average {} before, {} after)  \n",
        report["command"].as_str().unwrap_or(""),
        report["date"].as_str().unwrap_or(""),
        report["wall_seconds"].as_f64().unwrap_or(0.0),
        report["build_seconds"].as_f64().unwrap_or(0.0),
        load[0].as_f64().map_or("?".into(), |l| format!("{l:.1}")),
        load[1].as_f64().map_or("?".into(), |l| format!("{l:.1}")),
    ));
    let m = &report["machine"];
    s.push_str(&format!(
        "Machine: {} ({} cores, {:.0} GiB), Linux {}, {}, {}\n\n",
        m["cpu"].as_str().unwrap_or("?"),
        m["cores"],
        m["memory_gib"].as_f64().unwrap_or(0.0),
        m["kernel"].as_str().unwrap_or("?"),
        m["rustc"].as_str().unwrap_or(""),
        m["java"].as_str().unwrap_or(""),
    ));
    s.push_str(
        "| benchmark | median | MB/s | items/s | ratio | peak RSS | × ref |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in report["results"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r["id"].as_str().unwrap_or("?"),
            fmt_time(r["median_ns"].as_f64().unwrap_or(0.0)),
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
            r["vs_reference"]
                .as_f64()
                .map_or("—".into(), |x| format!("{x:.1}×")),
        ));
    }
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !notes.is_empty() {
        s.push('\n');
        for n in notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s.push_str("\n## Goals\n\n");
    for g in report["goals"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "- **{}** — {}: {}\n",
            g["status"].as_str().unwrap_or("?"),
            g["goal"].as_str().unwrap_or("?"),
            g["measured"].as_str().unwrap_or(""),
        ));
    }
    s
}
