//! `chart`: PNG charts from `latest.json` with plotters' bitmap backend.
//! Text is drawn with ab_glyph from a TTF file read at run time (DejaVu Sans
//! from Debian's `fonts-dejavu-core` by default), so no font lookup happens.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;
use serde_json::Value;

use crate::util::BoxResult;

const FONT: &str = "sans-serif";

fn register_font(ttf: &Path) -> BoxResult<()> {
    let bytes: &'static [u8] = Box::leak(
        std::fs::read(ttf)
            .map_err(|e| {
                format!(
                    "font {}: {e} (apt-get install fonts-dejavu-core)",
                    ttf.display()
                )
            })?
            .into_boxed_slice(),
    );
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| format!("font {}: not a usable TTF", ttf.display()))?;
    Ok(())
}

fn series(v: &Value, field: &str) -> Vec<f64> {
    v.get(field)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

/// P1: per-request latency through the 20 ms shim, pooled vs unpooled,
/// with the one-round-trip-plus-server-time line.
fn p1_chart(doc: &Value, out: &Path) -> BoxResult<()> {
    let p1 = &doc["last_run"]["p1"];
    let (p, u) = (
        series(p1, "pooled_series_ms"),
        series(p1, "unpooled_series_ms"),
    );
    if p.is_empty() || u.is_empty() {
        return Err("latest.json has no p1 series".into());
    }
    let ideal = p1["ideal_ms"].as_f64().unwrap_or(0.0);
    let ymax = u.iter().chain(&p).copied().fold(0.0, f64::max) * 1.15;
    let root = BitMapBackend::new(out, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "P1: request latency through a 20 ms RTT shim (TLS, sequential)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0usize..p.len().max(u.len()), 0f64..ymax)?;
    chart
        .configure_mesh()
        .x_desc("request #")
        .y_desc("latency (ms)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 15))
        .draw()?;
    let unpooled = RGBColor(214, 39, 40);
    let pooled = RGBColor(31, 119, 180);
    chart
        .draw_series(LineSeries::new(
            u.iter().copied().enumerate(),
            unpooled.stroke_width(2),
        ))?
        .label(format!(
            "unpooled (keepAlive: false), median {:.1} ms",
            crate::util::median(&u)
        ))
        .legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 20, y)], unpooled.stroke_width(2))
        });
    chart
        .draw_series(LineSeries::new(
            p.iter().copied().enumerate(),
            pooled.stroke_width(2),
        ))?
        .label(format!(
            "pooled (keepwarm), median {:.1} ms",
            crate::util::median(&p)
        ))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], pooled.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            [(0, ideal), (p.len().max(u.len()), ideal)],
            BLACK.mix(0.5).stroke_width(1),
        ))?
        .label(format!("1 round trip + server time ({ideal:.1} ms)"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Throughput: P4 (client) and P6 (proxies), median requests per second.
fn throughput_chart(doc: &Value, out: &Path) -> BoxResult<()> {
    let rows = [
        ("P4 keepwarm", "p4/keepwarm"),
        ("P4 keepwarm (16 conns)", "p4/keepwarm-16"),
        ("P4 reqwest", "p4/reqwest"),
        ("P6 keepwarm gateway", "p6/keepwarm"),
        ("P6 nginx", "p6/nginx"),
        ("P6 HAProxy", "p6/haproxy"),
    ];
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|(name, key)| {
            let v = doc["cases"][key]["rps"]["median"].as_f64()?;
            Some((name.to_string(), v))
        })
        .collect();
    if bars.is_empty() {
        return Err("latest.json has no p4/p6 results".into());
    }
    let ymax = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.2;
    let root = BitMapBackend::new(out, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput on loopback, 64 concurrent, HTTP/1.1 (median req/s)",
            (FONT, 22),
        )
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((0..bars.len() - 1).into_segmented(), 0f64..ymax)?;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("requests / s")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 13))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(107, 174, 214),
        RGBColor(127, 127, 127),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
    ];
    for (i, (_, v)) in bars.iter().enumerate() {
        let c = colors[rows.iter().position(|r| r.0 == bars[i].0).unwrap_or(0)];
        chart.draw_series(
            Histogram::vertical(&chart)
                .style(c.filled())
                .margin(25)
                .data([(i, *v)]),
        )?;
        chart.draw_series(std::iter::once(Text::new(
            format!("{v:.0}"),
            (SegmentValue::CenterOf(i), *v + ymax * 0.01),
            TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// Writes `p1_latency.png` and `throughput.png` into `out_dir`.
pub(crate) fn chart(latest: &Path, out_dir: &Path, font: &Path) -> BoxResult<()> {
    register_font(font)?;
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(latest)?)?;
    std::fs::create_dir_all(out_dir)?;
    let mut errors = Vec::new();
    if let Err(e) = p1_chart(&doc, &out_dir.join("p1_latency.png")) {
        errors.push(format!("p1_latency.png: {e}"));
    }
    if let Err(e) = throughput_chart(&doc, &out_dir.join("throughput.png")) {
        errors.push(format!("throughput.png: {e}"));
    }
    if errors.is_empty() {
        println!("charts written to {}", out_dir.display());
        Ok(())
    } else {
        Err(errors.join("; ").into())
    }
}
