//! The bench report's pictures (issue 17): datoms/s and peak RSS against
//! database size (1 M and 10 M from `e2e`, 100 M from `scale`) for backup
//! and restore to a directory at parallel 2, one line per compression,
//! drawn as SVG next to docs/PERFORMANCE.md and embedded in the report.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use serde_json::Value;

/// The chart files, relative to the docs directory (where PERFORMANCE.md,
/// which embeds them, lives).
pub const DATOMS_PER_S_SVG: &str = "perf-datoms-per-s.svg";
pub const PEAK_RSS_SVG: &str = "perf-peak-rss.svg";

/// One line of a chart: `(database size, value)` points.
type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// The database size a row id ends with (`…/10M`, `…/100k`).
fn size_of(id: &str) -> Option<f64> {
    let last = id.rsplit('/').next()?;
    let (digits, scale) = match last.chars().last()? {
        'M' => (&last[..last.len() - 1], 1e6),
        'k' => (&last[..last.len() - 1], 1e3),
        _ => return None,
    };
    digits.parse::<f64>().ok().map(|n| n * scale)
}

/// The line a row belongs to: backup or restore to a directory at parallel
/// 2 (restores have no parallel), by compression; `None` for other rows.
fn line_of(id: &str) -> Option<String> {
    let kind = if id.contains("zstd") { "zstd" } else { "gzip" };
    if id.contains("/backup/dir/") && id.contains("parallel-2") {
        Some(format!("backup {kind}"))
    } else if id.contains("/restore/dir/") {
        Some(format!("restore {kind}"))
    } else {
        None
    }
}

/// Collects `field` of the rows into lines.
fn series(rows: &[Value], field: &str) -> Series {
    let mut lines = Series::new();
    for r in rows {
        let id = r["id"].as_str().unwrap_or("");
        let (Some(line), Some(size), Some(y)) = (line_of(id), size_of(id), r[field].as_f64())
        else {
            continue;
        };
        lines.entry(line).or_default().push((size, y));
    }
    for points in lines.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    lines
}

/// Draws both charts into `docs` when the rows have at least two database
/// sizes; returns the report's markdown lines embedding them (empty when
/// there was nothing to draw).
pub fn write(docs: &Path, rows: &[Value]) -> Result<String, String> {
    let speed = series(rows, "elements_per_s");
    let sizes = speed.values().map(Vec::len).max().unwrap_or(0);
    if sizes < 2 {
        return Ok(String::new());
    }
    let rss = series(rows, "peak_rss_mb");
    draw(
        &docs.join(DATOMS_PER_S_SVG),
        "Datoms per second against database size (directory, parallel 2)",
        "datoms/s",
        &speed,
    )?;
    draw(
        &docs.join(PEAK_RSS_SVG),
        "Peak RSS against database size (directory, parallel 2)",
        "peak RSS (MB)",
        &rss,
    )?;
    Ok(format!(
        "\n![datoms/s against database size]({DATOMS_PER_S_SVG})\n\n\
         ![peak RSS against database size]({PEAK_RSS_SVG})\n"
    ))
}

fn draw(path: &Path, title: &str, y_label: &str, lines: &Series) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let points = lines.values().flatten();
    let x_max = points.clone().map(|p| p.0).fold(1e6, f64::max) * 1.5;
    let x_min = points.clone().map(|p| p.0).fold(x_max, f64::min) / 1.5;
    let y_max = points.map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (760, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), 0f64..y_max)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("datoms in the database (log scale)")
        .y_desc(y_label)
        .x_label_formatter(&|x| format_size(*x))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

fn format_size(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.0} M", n / 1e6)
    } else {
        format!("{:.0} k", n / 1e3)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// Rows of two sizes give two SVG files with a line per kind.
    #[test]
    fn charts_are_drawn_from_e2e_and_scale_rows() {
        let dir = tempfile_dir();
        let rows = vec![
            json!({"id": "e2e/backup/dir/parallel-2/1M", "elements_per_s": 3e6, "peak_rss_mb": 60.0}),
            json!({"id": "e2e/backup/dir/parallel-1/1M", "elements_per_s": 1e6, "peak_rss_mb": 50.0}),
            json!({"id": "e2e/restore/dir/1M", "elements_per_s": 1e6, "peak_rss_mb": 90.0}),
            json!({"id": "e2e/backup/dir/parallel-2/10M", "elements_per_s": 3e6, "peak_rss_mb": 70.0}),
            json!({"id": "scale/restore/dir/100k", "elements_per_s": 2e6, "peak_rss_mb": 80.0}),
        ];
        let md = write(&dir, &rows).unwrap();
        assert!(
            md.contains(DATOMS_PER_S_SVG) && md.contains(PEAK_RSS_SVG),
            "{md}"
        );
        let svg = std::fs::read_to_string(dir.join(DATOMS_PER_S_SVG)).unwrap();
        assert!(svg.starts_with("<svg") || svg.contains("<svg"), "{svg}");
        assert!(svg.contains("backup gzip") && svg.contains("restore gzip"));
        assert!(dir.join(PEAK_RSS_SVG).exists());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(line_of("e2e/backup/dir/parallel-1/1M"), None);
        assert_eq!(size_of("scale/restore/dir/100M"), Some(1e8));
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
