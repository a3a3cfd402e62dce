//! Results: a table on the terminal, a JSON file, and an SVG plot for scenarios with
//! several rows: by default throughput and latency against offered load; a scenario may
//! name its own panels (the soak plots memory, open files and latency over time).

use std::path::{Path, PathBuf};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use plotters::prelude::*;
use serde::Serialize;

/// One scenario's results: one row per load step.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub params: serde_json::Value,
    /// Column names, in display order.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<f64>>,
    /// Problems seen (lost or duplicated messages, failures): empty on a clean run.
    pub problems: Vec<String>,
    /// The plot's panels; empty for the default pair, throughput and latency.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<Chart>,
}

/// One panel of the plot: columns drawn as lines against the first column.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub title: String,
    /// The y axis.
    pub unit: String,
    pub columns: Vec<String>,
}

impl Chart {
    pub fn new(title: &str, unit: &str, columns: &[&str]) -> Chart {
        Chart {
            title: title.into(),
            unit: unit.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        }
    }
}

impl Report {
    pub fn new(scenario: &str, params: serde_json::Value, columns: &[&str]) -> Report {
        Report {
            scenario: scenario.into(),
            params,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            problems: Vec::new(),
            charts: Vec::new(),
        }
    }

    /// A value of the last row by column name.
    pub fn last(&self, column: &str) -> Option<f64> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.last().and_then(|r| r.get(i)).copied()
    }

    /// The table, for people.
    pub fn table(&self) -> String {
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED)
            .set_header(self.columns.clone());
        for row in &self.rows {
            t.add_row(row.iter().map(|v| format_value(*v)).collect::<Vec<_>>());
        }
        let mut out = format!("{} {}\n{t}", self.scenario, self.params);
        for p in &self.problems {
            out.push_str(&format!("\nPROBLEM: {p}"));
        }
        out
    }

    /// Writes `<dir>/<scenario>.json` (and `.svg` with two or more rows); returns the paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let json = dir.join(format!("{}.json", self.scenario));
        std::fs::write(
            &json,
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        let mut paths = vec![json];
        if self.rows.len() >= 2 {
            let svg = dir.join(format!("{}.svg", self.scenario));
            self.plot(&svg)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            paths.push(svg);
        }
        Ok(paths)
    }

    /// Every row's value of a column, by name.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let i = self.columns.iter().position(|c| c == name)?;
        Some(self.rows.iter().map(|r| r[i]).collect())
    }

    /// The panels (by default throughput left, latency percentiles right), two per row.
    fn plot(&self, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
        let charts = if self.charts.is_empty() {
            let present = |name: &&str| self.columns.iter().any(|k| k == name);
            let throughput: Vec<&str> = ["deliveries/s", "msgs/s", "pages/s"]
                .into_iter()
                .filter(present)
                .collect();
            let latency: Vec<&str> = self
                .columns
                .iter()
                .map(String::as_str)
                .filter(|c| c.ends_with(" ms"))
                .collect();
            vec![
                Chart::new("throughput", "per second", &throughput),
                Chart::new("latency", "ms", &latency),
            ]
        } else {
            self.charts.clone()
        };
        let rows = charts.len().div_ceil(2);
        let root = SVGBackend::new(path, (1100, 450 * rows as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((rows, 2));
        for (i, (chart, area)) in charts.iter().zip(&panels).enumerate() {
            let columns: Vec<&str> = chart.columns.iter().map(String::as_str).collect();
            // Each panel starts at its own colour (the default pair at 0 and 3, as before).
            self.chart(area, &chart.title, &chart.unit, &columns, 3 * i)?;
        }
        root.present()?;
        Ok(())
    }

    /// One chart: the named columns as lines against the first column.
    fn chart(
        &self,
        area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
        what: &str,
        unit: &str,
        columns: &[&str],
        palette: usize,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let x = self.column(&self.columns[0]).unwrap_or_default();
        let series: Vec<(&str, Vec<f64>)> = columns
            .iter()
            .filter_map(|c| self.column(c).map(|v| (*c, v)))
            .collect();
        let x_max = x.iter().cloned().fold(1.0, f64::max) * 1.05;
        let y_max = series
            .iter()
            .flat_map(|(_, v)| v.iter().cloned())
            .fold(1.0, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{}: {what}", self.scenario), ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc(self.columns[0].as_str())
            .y_desc(unit)
            .draw()?;
        for (i, (name, ys)) in series.iter().enumerate() {
            let color = Palette99::pick(i + palette).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    x.iter().cloned().zip(ys.iter().cloned()),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(a, b)| PathElement::new(vec![(a, b), (a + 20, b)], color));
        }
        chart.configure_series_labels().border_style(BLACK).draw()?;
        Ok(())
    }
}

fn format_value(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}
