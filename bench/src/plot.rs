//! `--plot`: charts with plotters, each written as SVG and as PNG — the latency percentile
//! spectrum (percentile on a log axis, as HdrHistogram plots it) and the sweep's throughput and
//! p99 against partitions. PNG text is drawn with DejaVu Sans, embedded (crate `dejavu`), so a
//! machine without fonts still gets labelled charts.

use crate::report::Latency;
use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Draws one chart into `svg` and into the same path with a `.png` extension.
fn draw_both(
    svg: &Path,
    size: (u32, u32),
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> anyhow::Result<()>,
    draw_png: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<PathBuf> {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The only font the bitmap backend knows; SVG names the family and the viewer draws it.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
    let root = SVGBackend::new(svg, size).into_drawing_area();
    draw_svg(&root)?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    let png = svg.with_extension("png");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_png(&root)?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    Ok(png)
}

const COLORS: [RGBColor; 4] = [RED, BLUE, GREEN, MAGENTA];

/// (x = 1/(1-q), y = latency ms) points of a histogram's percentile spectrum.
pub fn spectrum_points(h: &Latency) -> Vec<(f64, f64)> {
    h.iter_quantiles(5)
        .map(|v| {
            (
                v.quantile_iterated_to(),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|(q, _)| *q < 1.0)
        .map(|(q, ms)| (1.0 / (1.0 - q), ms))
        .collect()
}

/// Writes the percentile spectrum of `series` to `path` (SVG) and beside it as PNG.
pub fn latency_spectrum(
    path: &Path,
    title: &str,
    series: &[(&str, &Latency)],
) -> anyhow::Result<()> {
    let all: Vec<Vec<(f64, f64)>> = series.iter().map(|(_, h)| spectrum_points(h)).collect();
    let names: Vec<&str> = series.iter().map(|(n, _)| *n).collect();
    draw_both(
        path,
        (960, 600),
        |root| draw_spectrum(root, title, &names, &all),
        |root| draw_spectrum(root, title, &names, &all),
    )?;
    Ok(())
}

fn draw_spectrum<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    names: &[&str],
    all: &[Vec<(f64, f64)>],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let x_max = all
        .iter()
        .flatten()
        .map(|p| p.0)
        .fold(10.0f64, f64::max)
        .max(1e4);
    let y_max = all.iter().flatten().map(|p| p.1).fold(0.001f64, f64::max) * 1.1;
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((1f64..x_max).log_scale(), 0f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| format!("{}%", 100.0 * (1.0 - 1.0 / x)))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, (name, points)) in names.iter().zip(all).enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// Throughput (MB/s) and p99 (ms) against partitions (log axis), one above the other, to
/// `path` (SVG) and beside it as PNG.
pub fn sweep(path: &Path, rows: &[(usize, f64, f64)]) -> anyhow::Result<()> {
    draw_both(
        path,
        (960, 800),
        |root| draw_sweep(root, rows),
        |root| draw_sweep(root, rows),
    )?;
    Ok(())
}

fn draw_sweep<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[(usize, f64, f64)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (top, bottom) = root.split_vertically(400);
    let x_max = rows.iter().map(|r| r.0 as f64).fold(10.0, f64::max) * 1.5;
    for (area, title, y_desc, pick, color) in [
        (
            &top,
            "produce throughput vs partitions",
            "MB/s",
            1usize,
            BLUE,
        ),
        (
            &bottom,
            "produce ack p99 vs partitions",
            "p99 (ms)",
            2usize,
            RED,
        ),
    ] {
        let values: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| (r.0 as f64, if pick == 1 { r.1 } else { r.2 }))
            .collect();
        let y_max = values.iter().map(|v| v.1).fold(0.001, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((0.8f64..x_max).log_scale(), 0f64..y_max)
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc("partitions")
            .y_desc(y_desc)
            .draw()
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(LineSeries::new(values.clone(), color.stroke_width(2)))
            .map_err(|e| anyhow!("{e}"))?;
        chart
            .draw_series(values.iter().map(|&p| Circle::new(p, 4, color.filled())))
            .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::new_latency;

    #[test]
    fn writes_svgs_and_pngs() {
        let mut h = new_latency();
        for us in 1..=5000u64 {
            h.record(us).unwrap();
        }
        let pts = spectrum_points(&h);
        assert!(pts.len() > 10);
        assert!(pts.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lat.svg");
        latency_spectrum(&p, "latency", &[("ack", &h)]).unwrap();
        let svg = std::fs::read_to_string(&p).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline"));
        let s = dir.path().join("sweep.svg");
        sweep(&s, &[(1, 100.0, 2.0), (100, 90.0, 3.0), (2000, 80.0, 5.0)]).unwrap();
        assert!(std::fs::read_to_string(&s).unwrap().contains("circle"));
        // And as PNG beside each: a real image, with more than the background in it.
        for png in [p.with_extension("png"), s.with_extension("png")] {
            let bytes = std::fs::read(&png).unwrap();
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{}", png.display());
            assert!(
                bytes.len() > 10_000,
                "{}: {} bytes",
                png.display(),
                bytes.len()
            );
        }
    }
}
