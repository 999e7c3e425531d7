//! SVG plots of press → console latency (over the run's scenario time, and its
//! distribution), of how soon the engine noticed each silent device against its window, and
//! of how soon a carer who did not check out was alarmed against the lone-worker timer.

use crate::report::{CareRecord, Percentiles, Pooled, Summary};
use anyhow::Context;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Writes `<stem>-latency.svg` and `<stem>-histogram.svg` into `dir`, and
/// `<stem>-welfare.svg` when a device went silent and was noticed, and
/// `<stem>-lone-worker.svg` when a carer's lone-worker alarm came; returns their paths.
pub fn write(summary: &Summary, dir: &Path, stem: &str) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let over_time = dir.join(format!("{stem}-latency.svg"));
    let histogram = dir.join(format!("{stem}-histogram.svg"));
    latency_over_time(summary, &over_time).map_err(|e| anyhow::anyhow!("{}: {e}", over_time.display()))?;
    distribution(summary, &histogram).map_err(|e| anyhow::anyhow!("{}: {e}", histogram.display()))?;
    let mut written = vec![over_time, histogram];
    if !summary.health.notice_series.is_empty() {
        let welfare = dir.join(format!("{stem}-welfare.svg"));
        noticed(summary, &welfare).map_err(|e| anyhow::anyhow!("{}: {e}", welfare.display()))?;
        written.push(welfare);
    }
    if let Some(c) = summary.carers.as_ref().filter(|c| !c.alarm_series.is_empty()) {
        let alarms = dir.join(format!("{stem}-lone-worker.svg"));
        lone_worker(summary, c, &alarms).map_err(|e| anyhow::anyhow!("{}: {e}", alarms.display()))?;
        written.push(alarms);
    }
    Ok(written)
}

/// Each silent device the engine noticed: when it last spoke, and how long until its welfare
/// check opened, against the window and the tolerance.
fn noticed(s: &Summary, path: &Path) -> Result<(), Failure> {
    let h = &s.health;
    let of = |off: bool| h.notice_series.iter().filter(|(_, _, o)| *o == off).map(|(x, y, _)| (*x, *y)).collect();
    against_deadline(
        s,
        path,
        format!("{}: silent devices, last message → welfare check ({} noticed)", s.scenario, h.notice_series.len()),
        "device's last message",
        "check",
        [(h.window_min, "window"), (h.window_min + h.tolerance_min, "window + tolerance")],
        [("flat (device_offline)", of(false)), ("switched off (power_off)", of(true))],
    )
}

/// Each lone-worker alarm: when the carer was last heard on the visit, and how long until the
/// alarm, against the timer and the tolerance.
fn lone_worker(s: &Summary, c: &crate::report::CarersSummary, path: &Path) -> Result<(), Failure> {
    let tolerance = crate::rounds::DUE_TOLERANCE_WALL_S * s.speedup / 60.0;
    against_deadline(
        s,
        path,
        format!(
            "{}: carers who did not check out, last word → lone-worker alarm ({})",
            s.scenario,
            c.alarm_series.len()
        ),
        "carer's last word",
        "alarm",
        [(c.visit_max_min, "timer"), (c.visit_max_min + tolerance, "timer + tolerance")],
        [("lone-worker alarm", c.alarm_series.clone()), ("", vec![])],
    )
}

/// Points (scenario hours, scenario minutes) against a deadline and its tolerance.
fn against_deadline(
    s: &Summary,
    path: &Path,
    caption: String,
    since: &str,
    until: &str,
    lines: [(f64, &str); 2],
    series: [(&str, Vec<(f64, f64)>); 2],
) -> Result<(), Failure> {
    let hours = (s.scenario_hours + s.drain_min / 60.0).max(1e-3);
    let top = series.iter().flat_map(|(_, v)| v.iter().map(|(_, m)| *m)).fold(lines[1].0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..hours, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc(format!("scenario hours at the {since} ({}x)", s.speedup))
        .y_desc(format!("scenario minutes to the {until}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for ((y, name), colour) in lines.into_iter().zip([RGBColor(150, 150, 150), RGBColor(220, 90, 40)]) {
        chart
            .draw_series(LineSeries::new(vec![(0.0, y), (hours, y)], colour.stroke_width(1)))?
            .label(format!("{name} ({y:.1} min)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(1)));
    }
    for ((name, points), colour) in series.into_iter().zip([RGBColor(30, 100, 200), RGBColor(40, 150, 80)]) {
        if name.is_empty() {
            continue;
        }
        chart
            .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))?
            .label(name)
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, colour.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

type Failure = Box<dyn std::error::Error>;

const SEED_DOT: RGBColor = RGBColor(30, 100, 200);
const POOLED: RGBColor = RGBColor(20, 20, 20);
const TARGET: RGBColor = RGBColor(220, 90, 40);

/// The normal day's care outcomes per policy (the records' labels, in the order first met):
/// accepted within 60 s and on scene within 15 min, each run a dot, the pooled share a bar
/// across, the aim a dashed line.
pub fn policies(records: &[CareRecord], path: &Path) -> anyhow::Result<()> {
    draw_policies(records, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn draw_policies(records: &[CareRecord], path: &Path) -> Result<(), Failure> {
    let mut labels: Vec<&str> = Vec::new();
    for r in records {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let pooled: Vec<Pooled> =
        labels.iter().map(|l| Pooled::of(records.iter().filter(|r| r.label == *l).map(|r| &r.normal))).collect();
    let low =
        pooled.iter().flat_map(|p| p.accepted_each.iter().chain(&p.on_scene_each)).fold(95.0f64, |a, b| a.min(*b));
    let floor = ((low - 1.0) / 5.0).floor() * 5.0;
    let scenario = records.first().map(|r| r.scenario.as_str()).unwrap_or("run");
    let hours = records.first().map(|r| r.hours).unwrap_or(0.0);
    // The axis names the policies by letter; the key under the title spells them out.
    let tag = |i: usize| char::from(b'A' + (i % 26) as u8).to_string();
    let key: Vec<String> = labels.iter().enumerate().map(|(i, l)| format!("{} {l}", tag(i))).collect();
    let root = SVGBackend::new(path, (1000, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(76);
    title.titled(
        &format!(
            "{scenario}, a normal day ({hours} scenario hours a run): the policies, each dot one seed, bar pooled"
        ),
        ("sans-serif", 17),
    )?;
    for (line, chunk) in key.chunks(3).enumerate() {
        title.draw(&Text::new(chunk.join("   ·   "), (20, 30 + 18 * line as i32), ("sans-serif", 13).into_font()))?;
    }
    let panels = body.split_evenly((1, 2));
    type Pick = fn(&Pooled) -> (&Vec<f64>, Option<f64>);
    let measures: [(&str, f64, Pick); 2] = [
        ("accepted within 60 s (%)", 99.0, |p| (&p.accepted_each, p.accepted_within_60s_pct)),
        ("on scene within 15 min (%)", 95.0, |p| (&p.on_scene_each, p.on_scene_within_15min_pct)),
    ];
    let n = labels.len();
    for (panel, (name, aim, pick)) in panels.iter().zip(measures) {
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 15))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(45)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), floor..100.5f64)?;
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                    tag(i as usize)
                } else {
                    String::new()
                }
            })
            .x_label_style(("sans-serif", 13))
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        chart
            .draw_series(DashedLineSeries::new(vec![(-0.5, aim), (n as f64 - 0.5, aim)], 6, 4, TARGET.stroke_width(1)))?
            .label(format!("aim {aim:.0}%"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TARGET.stroke_width(1)));
        for (i, p) in pooled.iter().enumerate() {
            let (each, all) = pick(p);
            let x = i as f64;
            let k = each.len().max(1) as f64;
            chart.draw_series(each.iter().enumerate().map(|(j, v)| {
                // Spread the seeds a little sideways so equal shares stay visible.
                let dx = (j as f64 - (k - 1.0) / 2.0) * 0.06;
                Circle::new((x + dx, *v), 4, SEED_DOT.filled())
            }))?;
            if let Some(v) = all {
                chart.draw_series(LineSeries::new(vec![(x - 0.25, v), (x + 0.25, v)], POOLED.stroke_width(3)))?;
                chart.draw_series(std::iter::once(Text::new(
                    format!("{v:.1}%"),
                    (x + 0.27, v),
                    ("sans-serif", 12).into_font(),
                )))?;
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).border_style(BLACK).draw()?;
    }
    root.present()?;
    Ok(())
}

/// The surge's nobody-going share against the responders on duty, a line per policy through
/// the pooled shares, each run a dot, the 5% aim dashed.
pub fn surge_sweep(records: &[CareRecord], path: &Path) -> anyhow::Result<()> {
    draw_sweep(records, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn draw_sweep(records: &[CareRecord], path: &Path) -> Result<(), Failure> {
    let mut labels: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r.surge.is_some()) {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let most = records.iter().map(|r| r.responders).max().unwrap_or(1) as f64 * 1.05;
    let scenario = records.first().map(|r| r.scenario.as_str()).unwrap_or("run");
    let root = SVGBackend::new(path, (900, 460)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{scenario}, the surge: emergencies nobody was going to, by responders on duty"),
            ("sans-serif", 17),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..most, 0f64..100f64)?;
    chart
        .configure_mesh()
        .x_desc("responders on duty in the district (35 centres)")
        .y_desc("nobody going, % of the surge's emergencies")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(vec![(0.0, 5.0), (most, 5.0)], 6, 4, TARGET.stroke_width(1)))?
        .label("aim 5%")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TARGET.stroke_width(1)));
    let colours = [SEED_DOT, RGBColor(40, 150, 80), RGBColor(150, 60, 170), RGBColor(120, 120, 120)];
    for (label, colour) in labels.iter().zip(colours.iter().cycle()) {
        let mut sizes: Vec<usize> = records.iter().filter(|r| r.label == *label).map(|r| r.responders).collect();
        sizes.sort_unstable();
        sizes.dedup();
        let mut line = Vec::new();
        for n in sizes {
            let runs: Vec<_> = records.iter().filter(|r| r.label == *label && r.responders == n).collect();
            let p = Pooled::of(runs.iter().filter_map(|r| r.surge.as_ref()));
            chart.draw_series(
                p.nobody_going_each.iter().map(|v| Circle::new((n as f64, *v), 3, colour.mix(0.6).filled())),
            )?;
            if let Some(v) = p.nobody_going_pct {
                line.push((n as f64, v));
            }
        }
        let c = *colour;
        chart
            .draw_series(LineSeries::new(line, c.stroke_width(2)))?
            .label(label.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// p50, p99 and max of press → console in bins of scenario time.
fn latency_over_time(s: &Summary, path: &Path) -> Result<(), Failure> {
    let hours = (s.scenario_hours + s.drain_min / 60.0).max(1e-3);
    let bins = 60usize;
    let width = hours / bins as f64;
    let mut per_bin: Vec<Vec<f64>> = vec![Vec::new(); bins];
    for &(h, ms) in &s.console_series {
        per_bin[((h / width) as usize).min(bins - 1)].push(ms);
    }
    let stats: Vec<(f64, Percentiles)> = per_bin
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| ((i as f64 + 0.5) * width, Percentiles::of(v)))
        .collect();
    let top = stats.iter().filter_map(|(_, p)| p.max).fold(1.0f64, f64::max) * 1.1;
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{}: press → console, {} matching", s.scenario, s.matching), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..hours, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc(format!("scenario hours since the start ({}x)", s.speedup))
        .y_desc("milliseconds")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let line = |pick: fn(&Percentiles) -> Option<f64>| -> Vec<(f64, f64)> {
        stats.iter().filter_map(|(x, p)| pick(p).map(|y| (*x, y))).collect()
    };
    type Pick = fn(&Percentiles) -> Option<f64>;
    let styles: [(&str, Pick, RGBColor); 3] = [
        ("max", |p| p.max, RGBColor(200, 200, 200)),
        ("p99", |p| p.p99, RGBColor(220, 90, 40)),
        ("p50", |p| p.p50, RGBColor(30, 100, 200)),
    ];
    for (name, pick, colour) in styles {
        chart
            .draw_series(LineSeries::new(line(pick), colour.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

/// How many presses reached the console within each latency bucket.
fn distribution(s: &Summary, path: &Path) -> Result<(), Failure> {
    let values: Vec<f64> = s.console_series.iter().map(|(_, ms)| *ms).collect();
    let p99 = s.press_to_console_ms.p99.unwrap_or(1.0).max(1.0);
    // Buckets up to twice the p99; everything slower goes in the last one.
    let buckets = 40u32;
    let width = (2.0 * p99 / f64::from(buckets)).max(0.1);
    let mut counts = vec![0u32; buckets as usize];
    for v in &values {
        counts[((v / width) as usize).min(buckets as usize - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) + 1;
    let root = SVGBackend::new(path, (900, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: press → console, {} presses (p50 {:.1} ms, p99 {:.1} ms)",
                s.scenario,
                values.len(),
                s.press_to_console_ms.p50.unwrap_or(0.0),
                p99
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0u32..buckets).into_segmented(), 0u32..top)?;
    chart
        .configure_mesh()
        .x_desc(format!("milliseconds (buckets of {width:.1} ms; the last holds everything slower)"))
        .y_desc("presses")
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => format!("{:.0}", f64::from(*i) * width),
            SegmentValue::Last => String::new(),
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart.draw_series(
        Histogram::vertical(&chart)
            .style(RGBColor(30, 100, 200).filled())
            .margin(1)
            .data(counts.iter().enumerate().map(|(i, c)| (i as u32, *c))),
    )?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::record;

    #[test]
    fn the_care_plots_name_every_policy() {
        let dir = tempfile::tempdir().unwrap();
        let runs =
            [record("old: 1 at a time", 1, 9, 10), record("3 at once", 1, 10, 10), record("3 at once", 2, 99, 100)];
        let path = dir.path().join("policies.svg");
        policies(&runs, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("A old: 1 at a time") && svg.contains("B 3 at once") && svg.contains("aim 99%"), "{svg}");
        assert!(svg.contains("99.1%"), "the pooled share of 3 at once (109 of 110) is written");
        let path = dir.path().join("sweep.svg");
        surge_sweep(&runs, &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.contains("aim 5%") && svg.contains("3 at once"), "{svg}");
    }
}
