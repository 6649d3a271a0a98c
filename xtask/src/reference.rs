//! Step `reference`: Datacamp's backup pipeline and decode side by side
//! with the Clojure reference pipeline, in the same run, on the same
//! datoms cut into the same chunks.
//!
//! - Datacamp: `cargo bench -p datacamp-codec --bench sidebyside` (release
//!   code): encode + gzip-6 + SHA-256 at parallel 1 and 2, gzip-6 alone on
//!   the same bytes, gunzip + decode on 1 and 2 threads, zstd-3 inflate +
//!   decode on 2 threads.
//! - Reference: `tests/clojure/bench/reference_pipeline.clj` under Debian's
//!   `clojure` — what the Clojure Datacamp library does per chunk
//!   (`fressian/write-object`, `GZIPOutputStream` at its default level,
//!   SHA-256; and `GZIPInputStream` + `fressian/read`) — after a JVM
//!   warm-up.
//!
//! Both time the median of the same number of rounds in wall time, so the
//! datoms/s divide into the ratios the goals are about. Without `clojure`
//! (or with `DATACAMP_CLOJURE=/nonexistent`) the Datacamp half still runs
//! and the report says `reference: SKIPPED: clojure not found`.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::{cargo, Ctx, StepOutput};

/// Where Debian installs the jars `clojure.data.fressian` needs.
const DEBIAN_JARS: [&str; 2] = [
    "/usr/share/java/data.fressian.jar",
    "/usr/share/java/fressian.jar",
];

/// Chunks the dataset is cut into (by datom count, as the script's
/// `partition-all`): 100 k datoms, about 2 MB of Fressian each, for 1 M —
/// well under the 64 MiB limit, and enough chunks for two workers.
const CHUNKS: u64 = 10;

struct Plan {
    datoms: u64,
    rounds: u64,
}

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let plan = if ctx.quick {
        Plan {
            datoms: 100_000,
            rounds: 3,
        }
    } else {
        Plan {
            datoms: 1_000_000,
            rounds: 5,
        }
    };
    let mut out = StepOutput::default();
    eprintln!(
        "reference: Datacamp's pipeline on {} datoms in {CHUNKS} chunks, {} rounds",
        plan.datoms, plan.rounds
    );
    let dc = datacamp_side(ctx.root, &plan)?;
    let clj = match clojure_side(ctx.root, &plan) {
        Ok(Ok(value)) => Some(value),
        Ok(Err(failed)) => {
            out.notes.push(format!("reference: FAILED: {failed}"));
            out.failure = Some(failed);
            None
        }
        Err(Absent(why)) => {
            eprintln!("reference: SKIPPED: {why}");
            out.notes.push(format!("reference: SKIPPED: {why}"));
            None
        }
    };
    let label = label(plan.datoms);
    let n = plan.datoms as f64;
    let fressian = dc["fressian_bytes"].as_f64();
    let ns = |key: &str| dc[key].as_f64().filter(|t| *t > 0.0);
    let ref_rate = |key: &str| {
        clj.as_ref()
            .and_then(|c| c[key].as_f64())
            .filter(|r| *r > 0.0)
    };
    let mut push = |id: String, median_ns: Option<f64>, vs: Option<f64>, bytes: Option<f64>| {
        let Some(t) = median_ns else { return };
        let mut row = json!({
            "id": id,
            "median_ns": t,
            "samples": plan.rounds,
            "elements_per_iter": plan.datoms,
            "elements_per_s": n / (t / 1e9),
        });
        if let Some(b) = bytes {
            row["bytes_per_iter"] = json!(b);
            row["mb_per_s"] = json!(b / (t / 1e9) / 1e6);
        }
        if let Some(r) = vs {
            row["vs_reference"] = json!(n / (t / 1e9) / r);
        }
        out.rows.push(row);
    };
    let (enc_ref, dec_ref) = (
        ref_rate("encode_datoms_per_s"),
        ref_rate("decode_datoms_per_s"),
    );
    for (key, id, vs) in [
        ("encode_p1_ns", "encode/parallel-1", enc_ref),
        ("encode_p2_ns", "encode/parallel-2", enc_ref),
        ("gzip6_alone_ns", "gzip6_alone", None),
        ("decode_p1_ns", "decode/parallel-1", dec_ref),
        ("decode_p2_ns", "decode/parallel-2", dec_ref),
        // A zstd backup's chunks, on 2 threads, against the reference's
        // (gzip) decode: the library has no zstd.
        ("decode_zstd_p2_ns", "decode-zstd/parallel-2", dec_ref),
    ] {
        push(
            format!("reference/datacamp/{id}/{label}"),
            ns(key),
            vs,
            fressian,
        );
    }
    if let Some(c) = &clj {
        for (key, id) in [
            ("encode_median_ns", "encode"),
            ("decode_median_ns", "decode"),
        ] {
            push(
                format!("reference/clojure/{id}/{label}"),
                c[key].as_f64(),
                None,
                fressian,
            );
        }
    }
    Ok(out)
}

fn label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

/// The last line of `stdout` that parses as a JSON object.
fn last_json(stdout: &[u8]) -> Option<Value> {
    String::from_utf8_lossy(stdout).lines().rev().find_map(|l| {
        serde_json::from_str::<Value>(l)
            .ok()
            .filter(Value::is_object)
    })
}

fn datacamp_side(root: &Path, plan: &Plan) -> Result<Value, String> {
    let out = cargo()
        .current_dir(root)
        // `--workspace`, not `-p`: features then unify as in the build
        // step, so nothing is compiled again while timing.
        .args([
            "bench",
            "--quiet",
            "--workspace",
            "--bench",
            "sidebyside",
            "--",
        ])
        .args(["--datoms", &plan.datoms.to_string()])
        .args(["--chunks", &CHUNKS.to_string()])
        .args(["--rounds", &plan.rounds.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run the sidebyside bench: {e}"))?;
    if !out.status.success() {
        return Err(format!("the sidebyside bench failed ({})", out.status));
    }
    last_json(&out.stdout).ok_or_else(|| "the sidebyside bench printed no JSON".into())
}

/// The reference cannot run here (a skip, not a failure).
struct Absent(String);

/// The reference's JSON; `Err(Absent)` when `clojure` or its jars are
/// missing, `Ok(Err(..))` when it ran and failed.
fn clojure_side(root: &Path, plan: &Plan) -> Result<Result<Value, String>, Absent> {
    let clojure = std::env::var("DATACAMP_CLOJURE").unwrap_or_else(|_| "clojure".into());
    let classpath = match std::env::var("DATACAMP_FRESSIAN_CP") {
        Ok(cp) => cp,
        Err(_) => {
            if let Some(missing) = DEBIAN_JARS.iter().find(|j| !Path::new(j).exists()) {
                return Err(Absent(format!(
                    "{missing} not found (Debian: apt-get install libdata-fressian-clojure libfressian-java, or set DATACAMP_FRESSIAN_CP)"
                )));
            }
            DEBIAN_JARS.join(":")
        }
    };
    let script = root.join("tests/clojure/bench/reference_pipeline.clj");
    let per_chunk = plan.datoms.div_ceil(CHUNKS);
    eprintln!(
        "reference: the Clojure reference pipeline ({clojure}) on the same datoms, after a JVM warm-up"
    );
    let out = match Command::new(&clojure)
        .arg("-cp")
        .arg(&classpath)
        .arg(&script)
        .args([
            plan.datoms.to_string(),
            per_chunk.to_string(),
            plan.rounds.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Absent(
                "clojure not found (Debian: apt-get install clojure libdata-fressian-clojure libfressian-java)"
                    .into(),
            ))
        }
        Err(e) => return Ok(Err(format!("cannot run {clojure}: {e}"))),
    };
    if !out.status.success() {
        return Ok(Err(format!("{} failed ({})", script.display(), out.status)));
    }
    let value =
        last_json(&out.stdout).ok_or_else(|| format!("{} printed no JSON", script.display()));
    Ok(value.and_then(|v| {
        if v["datoms"].as_u64() == Some(plan.datoms) {
            Ok(v)
        } else {
            Err(format!(
                "the reference encoded {} datoms, not {}",
                v["datoms"], plan.datoms
            ))
        }
    }))
}
