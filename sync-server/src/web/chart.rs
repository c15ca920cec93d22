//! Bar charts as inline SVG, drawn on the server: no script, no library. Each chart has a
//! title for screen readers; the tables beside them carry the same figures.

use maud::{Markup, html};
use repere_core::indicators::IndicatorRow;

const WIDTH: f64 = 800.0;

fn nice_max(max: u32) -> u32 {
    let max = max.max(1);
    let magnitude = 10u32.pow(max.ilog10());
    let steps = [1, 2, 5, 10];
    steps
        .iter()
        .map(|s| s * magnitude)
        .find(|m| *m >= max)
        .unwrap_or(max)
}

fn fmt(v: f64) -> String {
    format!("{v:.1}")
}

fn legend(items: &[(&str, &str)]) -> Markup {
    html! {
        div.legend aria-hidden="true" {
            @for (class, label) in items {
                span { span class=(format!("key {class}")) {} (label) }
            }
        }
    }
}

/// Identified, helped and mobilised per period (grouped vertical bars).
pub fn periods(rows: &[&IndicatorRow]) -> Markup {
    let (left, right, top, bottom) = (44.0, 10.0, 16.0, 56.0);
    let height = 280.0;
    let plot_w = WIDTH - left - right;
    let plot_h = height - top - bottom;
    type Series = (&'static str, fn(&IndicatorRow) -> u32);
    let series: [Series; 3] = [
        ("s1", |r| r.figures.identified),
        ("s2", |r| r.figures.helped),
        ("s3", |r| r.figures.mobilised),
    ];
    let max = nice_max(
        rows.iter()
            .flat_map(|r| series.iter().map(move |(_, f)| f(r)))
            .max()
            .unwrap_or(0),
    );
    let n = rows.len().max(1) as f64;
    let group = plot_w / n;
    let bar = (group * 0.8 / 3.0).max(1.0);
    let every = (rows.len() / 16).max(1);
    let y = |v: u32| top + plot_h - plot_h * f64::from(v) / f64::from(max);
    html! {
        figure {
            (legend(&[("s1", "Repérés (invisibles)"), ("s2", "Coups de main"), ("s3", "Mobilisés")]))
            svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-labelledby="chart-periods-title" data-testid="chart-periods" {
                title id="chart-periods-title" { "Jeunes repérés, coups de main et mobilisés par période" }
                @for tick in [0, max / 2, max] {
                    line.axis x1=(fmt(left)) x2=(fmt(WIDTH - right)) y1=(fmt(y(tick))) y2=(fmt(y(tick))) stroke-dasharray="2 3" {}
                    text x=(fmt(left - 6.0)) y=(fmt(y(tick) + 4.0)) text-anchor="end" { (tick) }
                }
                @for (i, r) in rows.iter().enumerate() {
                    @let x0 = left + group * i as f64 + group * 0.1;
                    @for (j, (class, f)) in series.iter().enumerate() {
                        @let v = f(r);
                        rect class=(*class) x=(fmt(x0 + bar * j as f64)) y=(fmt(y(v))) width=(fmt(bar)) height=(fmt(top + plot_h - y(v))) {
                            title { (r.period.label) " : " (v) }
                        }
                    }
                    @if i % every == 0 {
                        text x=(fmt(x0 + bar * 1.5)) y=(fmt(top + plot_h + 14.0)) text-anchor="end"
                            transform=(format!("rotate(-40 {} {})", fmt(x0 + bar * 1.5), fmt(top + plot_h + 14.0))) {
                            (r.period.label)
                        }
                    }
                }
                line.axis x1=(fmt(left)) x2=(fmt(WIDTH - right)) y1=(fmt(top + plot_h)) y2=(fmt(top + plot_h)) {}
            }
        }
    }
}

/// Most rows drawn in the dimension chart (the table lists them all).
const MAX_ROWS: usize = 25;

/// Young people reached (identified + helped, stacked) per dimension value.
pub fn dimension(rows: &[IndicatorRow]) -> Markup {
    let mut rows: Vec<&IndicatorRow> = rows.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.figures.identified.saturating_add(r.figures.helped)));
    let cut = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    let (left, right, top) = (200.0, 50.0, 8.0);
    let row_h = 22.0;
    let height = top * 2.0 + row_h * rows.len().max(1) as f64;
    let plot_w = WIDTH - left - right;
    let max = nice_max(
        rows.iter()
            .map(|r| r.figures.identified.saturating_add(r.figures.helped))
            .max()
            .unwrap_or(0),
    );
    let w = |v: u32| plot_w * f64::from(v) / f64::from(max);
    html! {
        figure {
            (legend(&[("s1", "Repérés (invisibles)"), ("s2", "Coups de main")]))
            svg.chart viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-labelledby="chart-dimension-title" data-testid="chart-dimension" {
                title id="chart-dimension-title" { "Jeunes touchés par valeur, sur la période entière" }
                @for (i, r) in rows.iter().enumerate() {
                    @let yy = top + row_h * i as f64;
                    @let label: String = r.label.chars().take(30).collect();
                    text x=(fmt(left - 6.0)) y=(fmt(yy + 15.0)) text-anchor="end" { (label) }
                    rect.s1 x=(fmt(left)) y=(fmt(yy + 3.0)) width=(fmt(w(r.figures.identified))) height="16" {
                        title { (r.label) " : " (r.figures.identified) " repérés" }
                    }
                    rect.s2 x=(fmt(left + w(r.figures.identified))) y=(fmt(yy + 3.0)) width=(fmt(w(r.figures.helped))) height="16" {
                        title { (r.label) " : " (r.figures.helped) " coups de main" }
                    }
                    text x=(fmt(left + w(r.figures.identified.saturating_add(r.figures.helped)) + 4.0)) y=(fmt(yy + 15.0)) {
                        (r.figures.identified.saturating_add(r.figures.helped))
                    }
                }
            }
            @if cut { figcaption.muted { "Les " (MAX_ROWS) " premières valeurs ; le tableau les donne toutes." } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maximum_is_round() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(13), 20);
        assert_eq!(nice_max(42), 50);
        assert_eq!(nice_max(100), 100);
        assert_eq!(nice_max(101), 200);
    }
}
