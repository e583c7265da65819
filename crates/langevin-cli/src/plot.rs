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

/// Side-by-side scatter plots of 2-D point sets, one panel per (title, points), sharing axes
/// (the 1st–99th percentile of all panels plus a margin, so a few outliers do not squash them).
pub fn scatter_panels(path: &Path, title: &str, sets: &[(&str, ArrayView2<f32>)]) -> Result<()> {
    if sets.iter().any(|(_, p)| p.ncols() != 2) {
        bail!("scatter plots need 2-D points");
    }
    let all = |c: usize| sets.iter().flat_map(move |(_, p)| p.column(c).to_vec()).map(|v| v as f64);
    let (xr, yr) = (range_of(all(0)), range_of(all(1)));
    let panels: Vec<Panel> = sets
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| {
            let mut panel = Panel::new(*name, xr, yr);
            let pts = pts.outer_iter().map(|r| (r[0] as f64, r[1] as f64)).collect();
            panel.layers.push(Layer::Points {
                pts,
                color: PALETTE[i % PALETTE.len()],
                alpha: 0.35,
                size: 2,
                label: None,
            });
            panel
        })
        .collect();
    render(path, title, &panels, (520 * sets.len() as u32, 560))
}

/// Encode an RGB buffer as PNG.
fn image_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, rgb.to_vec()).context("building the image")?;
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).context("encoding PNG")?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// A small figure model shared by `plot`, `analyze` and `animate`: panels with an optional
// banded heat map underneath and layers drawn on top.

/// Colours (the matplotlib "tab10" palette).
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub const GRAY: RGBColor = RGBColor(90, 90, 90);
pub const PALETTE: [RGBColor; 6] = [BLUE, ORANGE, GREEN, RED, PURPLE, RGBColor(140, 86, 75)];

/// Values on an nx × ny grid over the panel's ranges (row-major: index iy·nx + ix), drawn as
/// filled bands (filled contours) in a light colour map; NaN cells are left white.
#[derive(Clone)]
pub struct Heat {
    pub nx: usize,
    pub ny: usize,
    pub values: Vec<f64>,
    pub bands: usize,
    /// Use the 5th–100th percentile range (log-densities have a long lower tail).
    pub clip_low: bool,
    /// Shade cells where this is true in a flat colour instead (e.g. noise-dominated cells).
    pub mask: Option<(Vec<bool>, RGBColor)>,
    /// What the bands show (e.g. "log p"), printed with their range in the bottom-left corner.
    pub label: String,
}

/// Kind of stagnation-point marker.
#[derive(Clone, Copy)]
pub enum Marker {
    Sink,
    Saddle,
    Source,
}

/// Things drawn on a panel.
pub enum Layer {
    Points { pts: Vec<(f64, f64)>, color: RGBColor, alpha: f64, size: u32, label: Option<String> },
    Arrows { arrows: Vec<((f64, f64), (f64, f64))>, color: RGBColor },
    Lines { lines: Vec<Vec<(f64, f64)>>, color: RGBColor, alpha: f64, label: Option<String> },
    Curve { pts: Vec<(f64, f64)>, color: RGBColor, label: Option<String> },
    Bars { edges: Vec<f64>, heights: Vec<f64>, color: RGBColor, label: Option<String> },
    Markers { pts: Vec<(f64, f64)>, marker: Marker, label: Option<String> },
}

/// One chart.
pub struct Panel {
    pub title: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub x_label: String,
    pub y_label: String,
    pub heat: Option<Heat>,
    pub layers: Vec<Layer>,
    /// Text in the top-left corner (frame counter, σ).
    pub corner: Option<String>,
}

impl Panel {
    pub fn new(title: impl Into<String>, x_range: (f64, f64), y_range: (f64, f64)) -> Panel {
        Panel {
            title: title.into(),
            x_range,
            y_range,
            x_label: "x₀".into(),
            y_label: "x₁".into(),
            heat: None,
            layers: Vec::new(),
            corner: None,
        }
    }
}

/// Check an output path's extension before any work is done.
pub fn check_plot_path(path: &Path, gif: bool) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let ok = if gif { ext == "gif" } else { ext == "png" || ext == "svg" };
    if !ok {
        let want = if gif { ".gif" } else { ".png or .svg" };
        bail!("{}: unsupported image type '.{ext}'; use {want}", path.display());
    }
    crate::report::check_output(path)
}

/// Draw the panels side by side into a PNG or SVG file (chosen by extension), written
/// atomically.
pub fn render(path: &Path, title: &str, panels: &[Panel], size: (u32, u32)) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => {
            let buf = render_rgb(title, panels, size)?;
            let img = image_png(&buf, size.0, size.1)?;
            langevin::io::write_atomic(path, |out| out.write_all(&img))?;
        }
        "svg" => {
            font();
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw_panels(&root, title, panels)?;
                root.present().context("rendering the plot")?;
            }
            langevin::io::write_atomic(path, |out| out.write_all(svg.as_bytes()))?;
        }
        other => bail!("{}: unsupported plot type '.{other}'; use .png or .svg", path.display()),
    }
    Ok(())
}

/// Draw the panels into an RGB buffer (for PNG files and GIF frames).
pub fn render_rgb(title: &str, panels: &[Panel], (w, h): (u32, u32)) -> Result<Vec<u8>> {
    font();
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw_panels(&root, title, panels)?;
        root.present().context("rendering the plot")?;
    }
    Ok(buf)
}

/// A light sequential colour map (white → blue-green), t in [0, 1].
fn heat_color(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let c = plotters::style::colors::colormaps::ViridisRGB::get_color(t);
    // Blend towards white so points and arrows stay readable on top.
    let mix = |v: u8| (255.0 - 0.55 * (255.0 - v as f64)) as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

fn draw_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    panels: &[Panel],
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("drawing the plot: {e}");
    root.fill(&WHITE).map_err(e)?;
    let root = if title.is_empty() { root.clone() } else { root.titled(title, ("sans-serif", 24)).map_err(e)? };
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        let (x0, x1) = panel.x_range;
        let (y0, y1) = panel.y_range;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(panel.x_label.as_str())
            .y_desc(panel.y_label.as_str())
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        let mut heat_key: Option<String> = None;
        if let Some(heat) = &panel.heat {
            let mut finite: Vec<f64> = heat.values.iter().cloned().filter(|v| v.is_finite()).collect();
            finite.sort_by(|a, b| a.total_cmp(b));
            if !finite.is_empty() {
                let lo = if heat.clip_low { finite[finite.len() / 20] } else { finite[0] };
                let hi = finite[finite.len() - 1];
                let span = (hi - lo).max(1e-300);
                // The key: what the bands are and their range, dark (low) to bright (high).
                let key = format!("bands: {} from {} (dark) to {} (bright)", heat.label, short_num(lo), short_num(hi));
                heat_key = Some(key);
                let (dx, dy) = ((x1 - x0) / heat.nx as f64, (y1 - y0) / heat.ny as f64);
                let bands = heat.bands.max(2) as f64;
                chart
                    .draw_series((0..heat.ny).flat_map(|iy| (0..heat.nx).map(move |ix| (ix, iy))).filter_map(
                        |(ix, iy)| {
                            let k = iy * heat.nx + ix;
                            let v = heat.values[k];
                            let color = match &heat.mask {
                                Some((m, c)) if m[k] => *c,
                                _ if v.is_finite() => {
                                    let t = ((v - lo) / span).clamp(0.0, 1.0);
                                    heat_color((t * bands).floor().min(bands - 1.0) / (bands - 1.0))
                                }
                                _ => return None,
                            };
                            let (a, b) = (x0 + ix as f64 * dx, y0 + iy as f64 * dy);
                            Some(Rectangle::new([(a, b), (a + dx, b + dy)], color.filled()))
                        },
                    ))
                    .map_err(e)?;
            }
        }
        let mut legend = false;
        for layer in &panel.layers {
            match layer {
                Layer::Points { pts, color, alpha, size, label } => {
                    let style = color.mix(*alpha).filled();
                    let s = chart
                        .draw_series(
                            pts.iter()
                                .filter(|p| p.0.is_finite() && p.1.is_finite())
                                .map(|p| Circle::new(*p, *size, style)),
                        )
                        .map_err(e)?;
                    if let Some(l) = label {
                        legend = true;
                        let c = *color;
                        s.label(l.as_str()).legend(move |(x, y)| Circle::new((x + 8, y), 4, c.filled()));
                    }
                }
                Layer::Arrows { arrows, color } => {
                    let c = *color;
                    chart
                        .draw_series(arrows.iter().flat_map(|&((ax, ay), (bx, by))| {
                            // Shaft plus two head strokes at ±25° from the reversed direction.
                            let (vx, vy) = (bx - ax, by - ay);
                            let (hx, hy) = (-0.35 * vx, -0.35 * vy);
                            let rot = |x: f64, y: f64, a: f64| (x * a.cos() - y * a.sin(), x * a.sin() + y * a.cos());
                            let (l1, l2) = (rot(hx, hy, 0.45), rot(hx, hy, -0.45));
                            [
                                PathElement::new(vec![(ax, ay), (bx, by)], c.stroke_width(1)),
                                PathElement::new(vec![(bx, by), (bx + l1.0, by + l1.1)], c.stroke_width(1)),
                                PathElement::new(vec![(bx, by), (bx + l2.0, by + l2.1)], c.stroke_width(1)),
                            ]
                        }))
                        .map_err(e)?;
                }
                Layer::Lines { lines, color, alpha, label } => {
                    let style = color.mix(*alpha).stroke_width(1);
                    let mut first = true;
                    for line in lines {
                        let s = chart.draw_series(LineSeries::new(line.iter().cloned(), style)).map_err(e)?;
                        if first {
                            if let Some(l) = label {
                                legend = true;
                                let c = *color;
                                s.label(l.as_str()).legend(move |(x, y)| {
                                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                                });
                            }
                            first = false;
                        }
                    }
                }
                Layer::Curve { pts, color, label } => {
                    let s =
                        chart.draw_series(LineSeries::new(pts.iter().cloned(), color.stroke_width(2))).map_err(e)?;
                    if let Some(l) = label {
                        legend = true;
                        let c = *color;
                        s.label(l.as_str())
                            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
                    }
                }
                Layer::Bars { edges, heights, color, label } => {
                    let c = color.mix(0.45).filled();
                    let s = chart
                        .draw_series(
                            heights
                                .iter()
                                .enumerate()
                                .map(|(i, &h)| Rectangle::new([(edges[i], 0.0), (edges[i + 1], h)], c)),
                        )
                        .map_err(e)?;
                    if let Some(l) = label {
                        legend = true;
                        s.label(l.as_str()).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], c));
                    }
                }
                Layer::Markers { pts, marker, label } => {
                    let s = match marker {
                        Marker::Sink => {
                            chart.draw_series(pts.iter().map(|p| Circle::new(*p, 6, RED.filled()))).map_err(e)?
                        }
                        Marker::Saddle => chart
                            .draw_series(pts.iter().map(|p| Cross::new(*p, 6, BLACK.stroke_width(3))))
                            .map_err(e)?,
                        Marker::Source => chart
                            .draw_series(pts.iter().map(|p| TriangleMarker::new(*p, 7, PURPLE.filled())))
                            .map_err(e)?,
                    };
                    if let Some(l) = label {
                        legend = true;
                        match marker {
                            Marker::Sink => {
                                s.label(l.as_str()).legend(|(x, y)| Circle::new((x + 8, y), 5, RED.filled()))
                            }
                            Marker::Saddle => {
                                s.label(l.as_str()).legend(|(x, y)| Cross::new((x + 8, y), 5, BLACK.stroke_width(3)))
                            }
                            Marker::Source => {
                                s.label(l.as_str()).legend(|(x, y)| TriangleMarker::new((x + 8, y), 6, PURPLE.filled()))
                            }
                        };
                    }
                }
            }
        }
        if legend {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(GRAY)
                .label_font(("sans-serif", 13))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(e)?;
        }
        if let Some(key) = heat_key {
            chart
                .plotting_area()
                .draw(&Text::new(
                    key,
                    (x0 + 0.02 * (x1 - x0), y0 + 0.02 * (y1 - y0)),
                    ("sans-serif", 13).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Left,
                        plotters::style::text_anchor::VPos::Bottom,
                    )),
                ))
                .map_err(e)?;
        }
        if let Some(text) = &panel.corner {
            chart
                .plotting_area()
                .draw(&Text::new(
                    text.clone(),
                    (x0 + 0.02 * (x1 - x0), y1 - 0.02 * (y1 - y0)),
                    ("sans-serif", 15).into_font().color(&BLACK).pos(plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Left,
                        plotters::style::text_anchor::VPos::Top,
                    )),
                ))
                .map_err(e)?;
        }
    }
    Ok(())
}

/// A number in at most 4 significant digits.
fn short_num(v: f64) -> String {
    if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-2) { format!("{v:.2e}") } else { format!("{v:.3}") }
}

/// A range covering `values` (1st–99th percentile plus 10%), or (−1, 1) when there are none.
pub fn range_of(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let mut v: Vec<f64> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (-1.0, 1.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let (lo, hi) = (v[v.len() / 100], v[v.len() - 1 - v.len() / 100]);
    let m = 0.1 * (hi - lo).max(1e-6 * lo.abs().max(1.0));
    (lo - m, hi + m)
}

/// Grid cell centres over the ranges, row-major (iy·nx + ix), as an (nx·ny) × 2 array.
pub fn grid(x: (f64, f64), y: (f64, f64), nx: usize, ny: usize) -> ndarray::Array2<f64> {
    ndarray::Array2::from_shape_fn((nx * ny, 2), |(k, c)| {
        let (ix, iy) = (k % nx, k / nx);
        if c == 0 {
            x.0 + (ix as f64 + 0.5) * (x.1 - x.0) / nx as f64
        } else {
            y.0 + (iy as f64 + 0.5) * (y.1 - y.0) / ny as f64
        }
    })
}
