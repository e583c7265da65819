//! Plots as PNG (or SVG by extension), drawn with plotters and a font embedded in the binary
//! (DejaVu Sans, `assets/fonts/`), so they work on a machine without any system fonts.

use anyhow::{Context, Result, bail};
use ndarray::ArrayView2;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Register the embedded font as "sans-serif" (once per process).
fn font() {
    REGISTER.call_once(|| {
        // The font is valid TTF data compiled into the binary; registration cannot fail for it.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A square-ish range covering the points of all panels (1st and 99th percentiles plus a margin,
/// so a few far outliers do not squash the picture).
pub fn common_range(panels: &[(&str, ArrayView2<f32>)]) -> ((f64, f64), (f64, f64)) {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for (_, p) in panels {
        for r in p.outer_iter() {
            if r[0].is_finite() && r[1].is_finite() {
                xs.push(r[0] as f64);
                ys.push(r[1] as f64);
            }
        }
    }
    let span = |v: &mut Vec<f64>| {
        if v.is_empty() {
            return (-1.0, 1.0);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let (lo, hi) = (v[v.len() / 100], v[v.len() - 1 - v.len() / 100]);
        let m = 0.1 * (hi - lo).max(1e-6);
        (lo - m, hi + m)
    };
    (span(&mut xs), span(&mut ys))
}

/// Side-by-side scatter plots of 2-D point sets, one panel per (title, points), sharing axes.
pub fn scatter_panels(path: &Path, title: &str, panels: &[(&str, ArrayView2<f32>)]) -> Result<()> {
    if panels.iter().any(|(_, p)| p.ncols() != 2) {
        bail!("scatter plots need 2-D points");
    }
    font();
    let (w, h) = (520 * panels.len() as u32, 560);
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let ranges = common_range(panels);
    match ext.as_str() {
        "png" => {
            // Draw into memory, then write the file atomically.
            let mut buf = vec![0u8; (w * h * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
                draw(&root, title, panels, ranges)?;
                root.present().context("rendering the plot")?;
            }
            let img = image_png(&buf, w, h)?;
            langevin::io::write_atomic(path, |out| out.write_all(&img))?;
        }
        "svg" => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
                draw(&root, title, panels, ranges)?;
                root.present().context("rendering the plot")?;
            }
            langevin::io::write_atomic(path, |out| out.write_all(svg.as_bytes()))?;
        }
        other => bail!("{}: unsupported plot type '.{other}'; use .png or .svg", path.display()),
    }
    Ok(())
}

#[allow(clippy::type_complexity)]
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    panels: &[(&str, ArrayView2<f32>)],
    ((x0, x1), (y0, y1)): ((f64, f64), (f64, f64)),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let root = root.titled(title, ("sans-serif", 26)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let areas = root.split_evenly((1, panels.len()));
    let colors = [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(148, 103, 189)];
    for (i, ((name, pts), area)) in panels.iter().zip(areas.iter()).enumerate() {
        let mut chart = ChartBuilder::on(area)
            .caption(*name, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(235, 235, 235))
            .x_desc("x₀")
            .y_desc("x₁")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let color = colors[i % colors.len()].mix(0.35);
        chart
            .draw_series(
                pts.outer_iter()
                    .filter(|r| r[0].is_finite() && r[1].is_finite())
                    .map(|r| Circle::new((r[0] as f64, r[1] as f64), 1.5, color.filled())),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

/// Encode an RGB buffer as PNG.
fn image_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).context("building the image")?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).context("encoding PNG")?;
    Ok(out)
}
