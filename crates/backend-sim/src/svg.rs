//! Charts as inline SVG text: line charts, stacked areas and interval plots with axes, ticks,
//! reference lines, shaded bands and a legend. Written here rather than taken from a plotting
//! crate because the reports need only these few shapes, the output must be the same bytes
//! for the same run, and an inline SVG with plain `<text>` needs no font files or scripts.

use std::fmt::Write;

/// Text safe inside HTML or SVG (element content and attribute values).
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Colours of series, in order (distinguishable, and readable in grey).
pub const PALETTE: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// One line (or, in a stacked chart, one layer). `None` values break the line.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub color: String,
    pub points: Vec<(f64, Option<f64>)>,
}

/// A horizontal reference line (a cap, zero).
#[derive(Debug, Clone)]
pub struct HLine {
    pub y: f64,
    pub label: String,
    pub color: String,
}

/// A shaded stretch of the x axis (a legal period) with a label at its top.
#[derive(Debug, Clone)]
pub struct Band {
    pub from: f64,
    pub to: f64,
    pub label: String,
}

/// How the series are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Lines,
    /// Each series stacked on the ones before it, as filled areas.
    Stacked,
}

/// A chart over a numeric x axis.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Names the chart in the DOM (`data-chart`).
    pub id: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub style: Style,
    pub series: Vec<Series>,
    /// Forced y range ends; otherwise from the data (and the reference lines).
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    pub hlines: Vec<HLine>,
    pub bands: Vec<Band>,
}

const W: f64 = 860.0;
const H: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

/// Round tick positions covering `lo..=hi`, about five of them.
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let scale = 10f64.powi((1.0 - step.log10().floor()).max(0.0) as i32);
    let mut k = (lo / step).ceil();
    let mut out = Vec::new();
    while k * step <= hi + step * 1e-9 {
        out.push((k * step * scale).round() / scale + 0.0);
        k += 1.0;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v == v.round() && v.abs() < 1e7 {
        format!("{v:.0}")
    } else if (v * 10.0 - (v * 10.0).round()).abs() < 1e-9 {
        format!("{v:.1}")
    } else if (v * 100.0 - (v * 100.0).round()).abs() < 1e-9 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

impl Chart {
    pub fn new(id: &str, title: &str, x_label: &str, y_label: &str, style: Style) -> Chart {
        Chart {
            id: id.to_owned(),
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            style,
            series: Vec::new(),
            y_min: None,
            y_max: None,
            hlines: Vec::new(),
            bands: Vec::new(),
        }
    }

    /// The series as drawn: stacked layers are cumulative.
    fn drawn(&self) -> Vec<Vec<(f64, Option<f64>)>> {
        match self.style {
            Style::Lines => self.series.iter().map(|s| s.points.clone()).collect(),
            Style::Stacked => {
                let mut acc: Vec<(f64, Option<f64>)> = Vec::new();
                let mut out = Vec::new();
                for s in &self.series {
                    if acc.is_empty() {
                        acc = s.points.iter().map(|(x, _)| (*x, Some(0.0))).collect();
                    }
                    for (a, (_, y)) in acc.iter_mut().zip(&s.points) {
                        a.1 = Some(a.1.unwrap_or(0.0) + y.unwrap_or(0.0));
                    }
                    out.push(acc.clone());
                }
                out
            }
        }
    }

    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let drawn = self.drawn();
        let xs = drawn.iter().flatten().map(|p| p.0);
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        let (x0, x1) = if x0.is_finite() && x1 > x0 {
            (x0, x1)
        } else {
            (0.0, 1.0)
        };
        let ys = drawn
            .iter()
            .flatten()
            .filter_map(|p| p.1)
            .chain(self.hlines.iter().map(|h| h.y));
        let (mut y0, mut y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| {
            (a.min(y), b.max(y))
        });
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        y0 = self.y_min.unwrap_or(y0.min(0.0));
        y1 = self.y_max.unwrap_or(y1 + (y1 - y0).abs() * 0.05);
        if y1 <= y0 {
            y1 = y0 + 1.0;
        }
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - (y.clamp(y0, y1) - y0) / (y1 - y0) * ph;
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg class="chart" data-chart="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{title}"><title>{title}</title>"#,
            id = esc(&self.id),
            title = esc(&self.title)
        );
        let _ = write!(
            s,
            r##"<text x="{LEFT}" y="20" font-size="14" font-weight="bold" fill="#222">{}</text>"##,
            esc(&self.title)
        );
        for (i, b) in self.bands.iter().enumerate() {
            let (a, z) = (sx(b.from.max(x0)), sx(b.to.min(x1)));
            let fill = if i % 2 == 0 { "#eef3fa" } else { "#f7f7f7" };
            let _ = write!(
                s,
                r##"<rect class="band" x="{a:.1}" y="{TOP}" width="{:.1}" height="{ph}" fill="{fill}"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#555">{}</text>"##,
                (z - a).max(0.0),
                a + 3.0,
                TOP + 11.0,
                esc(&b.label)
            );
        }
        for t in ticks(y0, y1) {
            let y = sy(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        for t in ticks(x0, x1) {
            let x = sx(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#444">{}</text>"##,
                TOP + ph,
                TOP + ph + 5.0,
                TOP + ph + 18.0,
                fmt_tick(t)
            );
        }
        let _ = write!(
            s,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#222">{}</text><text transform="translate(16 {:.1}) rotate(-90)" font-size="12" text-anchor="middle" fill="#222">{}</text>"##,
            LEFT + pw / 2.0,
            H - 8.0,
            esc(&self.x_label),
            TOP + ph / 2.0,
            esc(&self.y_label)
        );
        match self.style {
            Style::Stacked => {
                // Top layer first, so each lower layer paints over the part it owns.
                for (k, layer) in drawn.iter().enumerate().rev() {
                    if layer.is_empty() {
                        continue;
                    }
                    let mut d = format!("M{:.1},{:.1}", sx(layer[0].0), sy(0.0));
                    for (x, y) in layer {
                        let _ = write!(d, " L{:.1},{:.1}", sx(*x), sy(y.unwrap_or(0.0)));
                    }
                    let _ = write!(d, " L{:.1},{:.1} Z", sx(layer[layer.len() - 1].0), sy(0.0));
                    let _ = write!(
                        s,
                        r#"<path class="series" data-series="{}" d="{d}" fill="{}" stroke="none"/>"#,
                        esc(&self.series[k].name),
                        esc(&self.series[k].color)
                    );
                }
            }
            Style::Lines => {
                for (k, line) in drawn.iter().enumerate() {
                    let mut d = String::new();
                    let mut pen_down = false;
                    for (x, y) in line {
                        match y {
                            Some(y) => {
                                let _ = write!(
                                    d,
                                    "{}{:.1},{:.1} ",
                                    if pen_down { "L" } else { "M" },
                                    sx(*x),
                                    sy(*y)
                                );
                                pen_down = true;
                            }
                            None => pen_down = false,
                        }
                    }
                    let _ = write!(
                        s,
                        r#"<path class="series" data-series="{}" d="{}" fill="none" stroke="{}" stroke-width="1.6"/>"#,
                        esc(&self.series[k].name),
                        d.trim_end(),
                        esc(&self.series[k].color)
                    );
                }
            }
        }
        for h in &self.hlines {
            let y = sy(h.y);
            let _ = write!(
                s,
                r#"<line class="reference" x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{c}">{}</text>"#,
                LEFT + pw,
                LEFT + pw - 4.0,
                y - 4.0,
                esc(&h.label),
                c = esc(&h.color)
            );
        }
        // Legend, right of the plot.
        for (k, ser) in self.series.iter().enumerate() {
            let y = TOP + 8.0 + 18.0 * k as f64;
            let _ = write!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="14" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12" fill="#222">{}</text>"##,
                LEFT + pw + 12.0,
                y - 9.0,
                esc(&ser.color),
                LEFT + pw + 32.0,
                y,
                esc(&ser.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// Means with their intervals, one row per item: a dot and a whisker on a shared axis.
pub fn interval_chart(
    id: &str,
    title: &str,
    x_label: &str,
    rows: &[(String, f64, Option<f64>)],
) -> String {
    let row_h = 26.0;
    let h = TOP + BOTTOM + row_h * rows.len().max(1) as f64;
    let left = 190.0;
    let pw = W - left - 40.0;
    let lo = rows
        .iter()
        .map(|(_, m, hw)| m - hw.unwrap_or(0.0))
        .fold(f64::INFINITY, f64::min);
    let hi = rows
        .iter()
        .map(|(_, m, hw)| m + hw.unwrap_or(0.0))
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        let pad = (hi - lo) * 0.08;
        (lo - pad, hi + pad)
    } else if lo.is_finite() {
        (lo - 0.05, lo + 0.05)
    } else {
        (0.0, 1.0)
    };
    let sx = |x: f64| left + (x - lo) / (hi - lo) * pw;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg class="chart" data-chart="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{t}"><title>{t}</title><text x="{left}" y="20" font-size="14" font-weight="bold" fill="#222">{t}</text>"##,
        id = esc(id),
        t = esc(title)
    );
    let bottom = h - BOTTOM;
    for t in ticks(lo, hi) {
        let x = sx(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{bottom:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#444">{}</text>"##,
            bottom + 16.0,
            fmt_tick(t)
        );
    }
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle" fill="#222">{}</text>"##,
        left + pw / 2.0,
        h - 6.0,
        esc(x_label)
    );
    for (k, (name, mean, hw)) in rows.iter().enumerate() {
        let y = TOP + row_h * (k as f64 + 0.5);
        let color = PALETTE[k % PALETTE.len()];
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#222">{}</text>"##,
            left - 8.0,
            y + 4.0,
            esc(name)
        );
        if let Some(hw) = hw {
            let _ = write!(
                s,
                r#"<line class="interval" x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"/>"#,
                sx(mean - hw),
                sx(mean + hw)
            );
        }
        let _ = write!(
            s,
            r#"<circle class="series" data-series="{}" cx="{:.1}" cy="{y:.1}" r="4" fill="{color}"/>"#,
            esc(name),
            sx(*mean)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(ticks(0.0, 8.0), vec![0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(ticks(0.0, 720.0), vec![0.0, 200.0, 400.0, 600.0]);
        assert_eq!(ticks(3.0, 3.0), vec![3.0]);
    }

    #[test]
    fn text_is_escaped_in_titles_and_series_names() {
        let mut c = Chart::new("x", "a <b> & \"c\"", "h", "y", Style::Lines);
        c.series.push(Series {
            name: "<script>".into(),
            color: PALETTE[0].into(),
            points: vec![(0.0, Some(1.0)), (1.0, None), (2.0, Some(2.0))],
        });
        let svg = c.render();
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"));
        // A gap in the data lifts the pen: two sub-paths.
        let d = svg
            .split(r#"d=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(d.matches('M').count(), 2, "{d}");
    }

    #[test]
    fn stacked_layers_are_cumulative() {
        let mut c = Chart::new("s", "t", "x", "y", Style::Stacked);
        for (n, v) in [("a", 1.0), ("b", 2.0)] {
            c.series.push(Series {
                name: n.into(),
                color: "#000".into(),
                points: vec![(0.0, Some(v)), (1.0, Some(v))],
            });
        }
        let drawn = c.drawn();
        assert_eq!(drawn[1][0].1, Some(3.0));
        assert!(c.render().matches("class=\"series\"").count() == 2);
    }
}
