//! The run as an SVG chart, written by hand: sync latency p50 and p99 per time bucket (log
//! scale), syncs completed per second, and the servers' resident memory. Settling after
//! the run (every tablet syncing at once for the convergence check) is left out: it is
//! not the load being measured.

use std::fmt::Write;

use super::report::Report;
use super::stats::{Kind, percentile};

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL_GAP: f64 = 40.0;
const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// One bucket's figures.
struct Bucket {
    from: f64,
    p50: Option<f64>,
    p99: Option<f64>,
    syncs: usize,
}

fn buckets(report: &Report, width: f64, span: f64) -> Vec<Bucket> {
    let n = (span / width).ceil().max(1.0) as usize;
    let mut ms: Vec<Vec<f64>> = vec![Vec::new(); n];
    for s in &report.recorder.samples {
        if s.kind == Kind::Enrol || s.kind == Kind::Final || s.at.as_secs_f64() > span {
            continue;
        }
        let i = ((s.at.as_secs_f64() / width) as usize).min(n - 1);
        ms[i].push(s.latency.as_secs_f64() * 1e3);
    }
    ms.into_iter()
        .enumerate()
        .map(|(i, mut v)| {
            v.sort_by(f64::total_cmp);
            Bucket {
                from: i as f64 * width,
                p50: (!v.is_empty()).then(|| percentile(&v, 50.0)),
                p99: (!v.is_empty()).then(|| percentile(&v, 99.0)),
                syncs: v.len(),
            }
        })
        .collect()
}

/// A panel's frame: its top, height and x scale.
struct Panel {
    top: f64,
    height: f64,
    span: f64,
}

impl Panel {
    fn x(&self, secs: f64) -> f64 {
        LEFT + (WIDTH - LEFT - RIGHT) * (secs / self.span).clamp(0.0, 1.0)
    }

    fn frame(&self, svg: &mut String, title: &str) {
        let _ = write!(
            svg,
            r##"<text x="{LEFT}" y="{:.1}" font-weight="bold">{title}</text><rect x="{LEFT}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
            self.top - 8.0,
            self.top,
            WIDTH - LEFT - RIGHT,
            self.height
        );
        let step = nice_step(self.span / 10.0);
        let mut t = 0.0;
        while t <= self.span + 1e-9 {
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">{t:.0}</text>"##,
                self.x(t),
                self.top + self.height + 14.0
            );
            t += step;
        }
    }

    fn polyline(&self, svg: &mut String, points: &[(f64, f64)], colour: &str) {
        if points.is_empty() {
            return;
        }
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
            pts.join(" ")
        );
    }

    fn y_label(&self, svg: &mut String, y: f64, text: &str) {
        let _ = write!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{text}</text><line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/>"##,
            LEFT - 6.0,
            y + 4.0,
            WIDTH - RIGHT
        );
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn legend(svg: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut x = x;
    for (name, colour) in items {
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/><text x="{:.1}" y="{y:.1}">{name}</text>"#,
            y - 4.0,
            x + 16.0
        );
        x += 24.0 + 7.0 * name.len() as f64;
    }
}

/// The chart, with time buckets of `bucket_secs` (0: about 150 buckets over the run).
pub fn svg(report: &Report, bucket_secs: f64) -> String {
    let span = report.config.duration.as_secs_f64().max(1.0);
    let width = if bucket_secs > 0.0 {
        bucket_secs
    } else {
        (span / 150.0).max(1.0)
    };
    let buckets = buckets(report, width, span);
    let with_memory = report.processes.iter().any(|p| !p.rss.is_empty());
    let latency = Panel {
        top: 50.0,
        height: 260.0,
        span,
    };
    let rate = Panel {
        top: latency.top + latency.height + PANEL_GAP,
        height: 120.0,
        span,
    };
    let memory = Panel {
        top: rate.top + rate.height + PANEL_GAP,
        height: 120.0,
        span,
    };
    let height = if with_memory {
        memory.top + memory.height + 40.0
    } else {
        rate.top + rate.height + 40.0
    };
    let c = &report.config;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{} tablets, {} teams, a sync every {:.0} s: sync latency per {width:.0} s bucket (enrolments and settling left out)</text>"#,
        c.tablets,
        c.teams,
        c.sync_every.as_secs_f64()
    );

    // Latency, log scale from 1 ms to the next power of ten above the largest p99.
    let top_ms = buckets.iter().filter_map(|b| b.p99).fold(10.0f64, f64::max);
    let decades = top_ms.log10().ceil().max(1.0);
    let ly = |ms: f64| {
        latency.top + latency.height * (1.0 - (ms.max(1.0).log10() / decades).clamp(0.0, 1.0))
    };
    latency.frame(&mut svg, "sync latency (ms, log scale)");
    for d in 0..=decades as i32 {
        let ms = 10f64.powi(d);
        latency.y_label(&mut svg, ly(ms), &format!("{ms:.0}"));
    }
    let mid = |b: &Bucket| latency.x(b.from + width / 2.0);
    let p50: Vec<(f64, f64)> = buckets
        .iter()
        .filter_map(|b| b.p50.map(|v| (mid(b), ly(v))))
        .collect();
    let p99: Vec<(f64, f64)> = buckets
        .iter()
        .filter_map(|b| b.p99.map(|v| (mid(b), ly(v))))
        .collect();
    latency.polyline(&mut svg, &p50, COLOURS[0]);
    latency.polyline(&mut svg, &p99, COLOURS[1]);
    legend(
        &mut svg,
        WIDTH - 200.0,
        latency.top - 8.0,
        &[("p50", COLOURS[0]), ("p99", COLOURS[1])],
    );

    // Syncs completed per second.
    let top_rate = buckets
        .iter()
        .map(|b| b.syncs as f64 / width)
        .fold(1.0f64, f64::max);
    let rate_step = nice_step(top_rate / 4.0);
    let rate_top = (top_rate / rate_step).ceil() * rate_step;
    let ry = |v: f64| rate.top + rate.height * (1.0 - v / rate_top);
    rate.frame(&mut svg, "syncs completed per second");
    let mut v = 0.0;
    while v <= rate_top + 1e-9 {
        rate.y_label(&mut svg, ry(v), &format!("{v}"));
        v += rate_step;
    }
    for b in &buckets {
        let value = b.syncs as f64 / width;
        let (x0, x1) = (rate.x(b.from), rate.x(b.from + width));
        let _ = write!(
            svg,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
            ry(value),
            (x1 - x0 - 0.5).max(0.5),
            rate.top + rate.height - ry(value),
            COLOURS[2]
        );
    }

    if with_memory {
        let top_mib = report
            .processes
            .iter()
            .map(|p| p.peak() as f64 / 1048576.0)
            .fold(1.0f64, f64::max);
        let step = nice_step(top_mib / 4.0);
        let mem_top = (top_mib / step).ceil() * step;
        let my = |v: f64| memory.top + memory.height * (1.0 - v / mem_top);
        memory.frame(&mut svg, "server memory (RSS, MiB)");
        let mut v = 0.0;
        while v <= mem_top + 1e-9 {
            memory.y_label(&mut svg, my(v), &format!("{v}"));
            v += step;
        }
        let mut items = Vec::new();
        let names: Vec<String> = report
            .processes
            .iter()
            .map(|p| format!("pid {}", p.pid))
            .collect();
        for (i, p) in report.processes.iter().enumerate() {
            let colour = COLOURS[(i + 3) % COLOURS.len()];
            let pts: Vec<(f64, f64)> = p
                .rss
                .iter()
                .filter(|(t, _)| *t <= span)
                .map(|(t, b)| (memory.x(*t), my(*b as f64 / 1048576.0)))
                .collect();
            memory.polyline(&mut svg, &pts, colour);
            items.push((names[i].as_str(), colour));
        }
        legend(&mut svg, WIDTH - 200.0, memory.top - 8.0, &items);
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">seconds from the first enrolment</text></svg>"##,
        WIDTH - RIGHT,
        height - 8.0
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::nice_step;

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(120.0), 200.0);
    }
}
