//! The backtest report of `bgpsentry replay --report`: what each rule raised over the replayed
//! history, and a timeline of every incident.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use ipnet::IpNet;
use serde::Serialize;

use crate::alerts::{AlertTransition, Rule, Severity, TransitionKind};
use crate::event::Timestamp;

/// Width of the timeline bars, in characters.
pub const TIMELINE_WIDTH: usize = 40;

/// Watched prefixes listed in the "most alerts" table.
pub const TOP_PREFIXES: usize = 10;

/// Alerts of one watched prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrefixTotals {
    /// The watched prefix.
    pub watched_prefix: IpNet,
    /// Alerts fired for it.
    pub fired: usize,
    /// Of those, still firing at the end.
    pub still_firing: usize,
    /// The rules that fired, in documentation order.
    pub rules: Vec<Rule>,
}

/// One alert from firing to resolution (or to the end of the replay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Incident {
    /// The alert id.
    pub id: String,
    /// The detector.
    pub rule: Rule,
    /// How urgent.
    pub severity: Severity,
    /// The affected prefix.
    pub prefix: IpNet,
    /// The watched prefix whose rules it broke.
    pub watched_prefix: IpNet,
    /// The offending origin or upstream, when the rule has one.
    pub asn: Option<u32>,
    /// When it fired.
    pub fired_at: Timestamp,
    /// When it resolved; `None` when still firing at the end.
    pub resolved_at: Option<Timestamp>,
    /// The most VPs that showed it at once.
    pub peak_vantage_points: u32,
    /// One AS path that showed it.
    pub example_path: Option<String>,
    /// The alert in words.
    pub summary: String,
}

/// Totals of one rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuleTotals {
    /// Alerts fired.
    pub fired: usize,
    /// Of those, resolved within the replay.
    pub resolved: usize,
    /// Of those, still firing at the end.
    pub still_firing: usize,
    /// Distinct affected prefixes.
    pub prefixes: usize,
    /// The most VPs any of its alerts reached.
    pub max_peak_vantage_points: u32,
    /// Median time from firing to resolution, of the resolved ones (seconds).
    pub median_duration_seconds: Option<f64>,
    /// Longest time from firing to resolution, of the resolved ones (seconds).
    pub max_duration_seconds: Option<f64>,
}

/// The whole report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Event time of the first event replayed.
    pub start: Option<Timestamp>,
    /// Event time of the last event replayed.
    pub end: Option<Timestamp>,
    /// Totals per rule that fired at least once.
    pub rules: BTreeMap<Rule, RuleTotals>,
    /// The watched prefixes with the most alerts (at most [`TOP_PREFIXES`]), most first.
    pub top_prefixes: Vec<PrefixTotals>,
    /// Every incident, by firing time.
    pub incidents: Vec<Incident>,
}

/// Collects transitions during a replay; [`ReportBuilder::finish`] makes the [`Report`].
#[derive(Debug, Default)]
pub struct ReportBuilder {
    incidents: Vec<Incident>,
    by_id: HashMap<String, usize>,
}

impl ReportBuilder {
    /// Records one transition.
    pub fn record(&mut self, t: &AlertTransition) {
        let a = &t.alert;
        let i = match self.by_id.get(&a.id) {
            Some(&i) => i,
            None => {
                if t.event != TransitionKind::Fired {
                    // An update or resolution of an alert that fired before the report began.
                    return;
                }
                self.incidents.push(Incident {
                    id: a.id.clone(),
                    rule: a.rule,
                    severity: a.severity,
                    prefix: a.prefix,
                    watched_prefix: a.watched_prefix,
                    asn: a.origin.or(a.upstream),
                    fired_at: a.fired_at,
                    resolved_at: None,
                    peak_vantage_points: 0,
                    example_path: None,
                    summary: a.summary(),
                });
                self.by_id.insert(a.id.clone(), self.incidents.len() - 1);
                self.incidents.len() - 1
            }
        };
        let inc = &mut self.incidents[i];
        inc.peak_vantage_points = inc.peak_vantage_points.max(a.peak_vantage_points);
        if inc.example_path.is_none()
            && let Some(s) = a.sample.iter().find(|s| !s.as_path.is_empty())
        {
            inc.example_path = Some(s.as_path.clone());
        }
        if t.event == TransitionKind::Resolved {
            inc.resolved_at = a.resolved_at.or(Some(a.last_seen));
        }
    }

    /// The report over a replay from `start` to `end` (event time).
    pub fn finish(self, start: Option<Timestamp>, end: Option<Timestamp>) -> Report {
        let mut incidents = self.incidents;
        // Same-time incidents grouped by watched prefix, so related alerts sit together.
        incidents.sort_by(|a, b| {
            (a.fired_at, a.watched_prefix, a.prefix, a.rule, &a.id).cmp(&(
                b.fired_at,
                b.watched_prefix,
                b.prefix,
                b.rule,
                &b.id,
            ))
        });
        let mut rules: BTreeMap<Rule, RuleTotals> = BTreeMap::new();
        let mut prefixes: BTreeMap<Rule, BTreeSet<IpNet>> = BTreeMap::new();
        let mut durations: BTreeMap<Rule, Vec<f64>> = BTreeMap::new();
        for inc in &incidents {
            let r = rules.entry(inc.rule).or_default();
            r.fired += 1;
            r.max_peak_vantage_points = r.max_peak_vantage_points.max(inc.peak_vantage_points);
            prefixes.entry(inc.rule).or_default().insert(inc.prefix);
            match inc.resolved_at {
                Some(done) => {
                    r.resolved += 1;
                    durations
                        .entry(inc.rule)
                        .or_default()
                        .push(seconds(inc.fired_at, done));
                }
                None => r.still_firing += 1,
            }
        }
        for (rule, r) in rules.iter_mut() {
            r.prefixes = prefixes.get(rule).map_or(0, BTreeSet::len);
            if let Some(d) = durations.get_mut(rule) {
                d.sort_by(f64::total_cmp);
                r.median_duration_seconds = d.get(d.len() / 2).copied();
                r.max_duration_seconds = d.last().copied();
            }
        }
        let mut per_prefix: BTreeMap<IpNet, PrefixTotals> = BTreeMap::new();
        for inc in &incidents {
            let p = per_prefix
                .entry(inc.watched_prefix)
                .or_insert_with(|| PrefixTotals {
                    watched_prefix: inc.watched_prefix,
                    fired: 0,
                    still_firing: 0,
                    rules: Vec::new(),
                });
            p.fired += 1;
            p.still_firing += usize::from(inc.resolved_at.is_none());
            if !p.rules.contains(&inc.rule) {
                p.rules.push(inc.rule);
                p.rules.sort();
            }
        }
        let mut top_prefixes: Vec<PrefixTotals> = per_prefix.into_values().collect();
        top_prefixes.sort_by(|a, b| {
            b.fired
                .cmp(&a.fired)
                .then(a.watched_prefix.cmp(&b.watched_prefix))
        });
        top_prefixes.truncate(TOP_PREFIXES);
        Report {
            start,
            end,
            rules,
            top_prefixes,
            incidents,
        }
    }
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    (to.0 - from.0).max(0) as f64 / 1e6
}

/// A duration for people: `42s`, `3m05s`, `2h10m`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.round() as i64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// `2016-08-11 16:00:03` (UTC, whole seconds).
fn clock(t: Timestamp) -> String {
    let s = t.to_rfc3339();
    s.split_once('.')
        .map_or(s.clone(), |(head, _)| head.replace('T', " "))
}

impl Report {
    /// The report as text: the per-rule table, then the timeline.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let span = match (self.start, self.end) {
            (Some(s), Some(e)) => format!(
                "{} to {} UTC ({})",
                clock(s),
                clock(e),
                human_duration(seconds(s, e))
            ),
            _ => "no events".to_string(),
        };
        let _ = writeln!(out, "Backtest report: {span}");
        let _ = writeln!(out);
        if self.rules.is_empty() {
            let _ = writeln!(out, "No alert fired.");
            return out;
        }
        let header = [
            "rule",
            "fired",
            "resolved",
            "still firing",
            "prefixes",
            "max VPs",
            "median duration",
            "longest",
        ];
        let mut rows: Vec<[String; 8]> = Vec::new();
        let mut total = RuleTotals::default();
        for (rule, r) in &self.rules {
            total.fired += r.fired;
            total.resolved += r.resolved;
            total.still_firing += r.still_firing;
            total.max_peak_vantage_points =
                total.max_peak_vantage_points.max(r.max_peak_vantage_points);
            rows.push([
                rule.to_string(),
                r.fired.to_string(),
                r.resolved.to_string(),
                r.still_firing.to_string(),
                r.prefixes.to_string(),
                r.max_peak_vantage_points.to_string(),
                r.median_duration_seconds.map_or("-".into(), human_duration),
                r.max_duration_seconds.map_or("-".into(), human_duration),
            ]);
        }
        total.prefixes = self
            .incidents
            .iter()
            .map(|i| i.prefix)
            .collect::<BTreeSet<_>>()
            .len();
        rows.push([
            "total".into(),
            total.fired.to_string(),
            total.resolved.to_string(),
            total.still_firing.to_string(),
            total.prefixes.to_string(),
            total.max_peak_vantage_points.to_string(),
            String::new(),
            String::new(),
        ]);
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[&str]| -> String {
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                if i == 0 {
                    let _ = write!(s, "{cell:<w$}");
                } else {
                    let _ = write!(s, "  {cell:>w$}");
                }
            }
            s.trim_end().to_string()
        };
        let _ = writeln!(out, "{}", line(&header));
        let rule_width: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        for (i, row) in rows.iter().enumerate() {
            if i + 1 == rows.len() {
                let _ = writeln!(out, "{}", "-".repeat(rule_width));
            }
            let cells: Vec<&str> = row.iter().map(String::as_str).collect();
            let _ = writeln!(out, "{}", line(&cells));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "Watched prefixes with the most alerts");
        let width = self
            .top_prefixes
            .iter()
            .map(|p| p.watched_prefix.to_string().len())
            .max()
            .unwrap_or(0)
            .max("watched prefix".len());
        let _ = writeln!(
            out,
            "{:<width$}  {:>5}  {:>12}  rules",
            "watched prefix", "fired", "still firing"
        );
        for p in &self.top_prefixes {
            let rules: Vec<&str> = p.rules.iter().map(|r| r.as_str()).collect();
            let _ = writeln!(
                out,
                "{:<width$}  {:>5}  {:>12}  {}",
                p.watched_prefix.to_string(),
                p.fired,
                p.still_firing,
                rules.join(", ")
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Timeline ({}; bar = firing, over the replayed span; > = still firing at the end)",
            crate::replay::counted(self.incidents.len() as u64, "incident")
        );
        let (start, end) = match (self.start, self.end) {
            (Some(s), Some(e)) if e > s => (s.0, e.0),
            _ => {
                let s = self.incidents.first().map_or(0, |i| i.fired_at.0);
                (s, s + 1)
            }
        };
        let col = |t: i64| -> usize {
            let f = (t.clamp(start, end) - start) as f64 / (end - start) as f64;
            ((f * TIMELINE_WIDTH as f64) as usize).min(TIMELINE_WIDTH - 1)
        };
        for inc in &self.incidents {
            let from = col(inc.fired_at.0);
            let to = inc.resolved_at.map_or(TIMELINE_WIDTH - 1, |r| col(r.0));
            let mut bar: Vec<char> = vec!['.'; TIMELINE_WIDTH];
            for c in bar.iter_mut().take(to + 1).skip(from) {
                *c = '#';
            }
            if inc.resolved_at.is_none() {
                bar[TIMELINE_WIDTH - 1] = '>';
            }
            let bar: String = bar.into_iter().collect();
            let until = match inc.resolved_at {
                Some(r) => format!(
                    "{} ({})",
                    clock(r).split_once(' ').map_or("", |(_, t)| t),
                    human_duration(seconds(inc.fired_at, r))
                ),
                None => "still firing".into(),
            };
            let path = inc
                .example_path
                .as_deref()
                .map(|p| format!(", e.g. path {p}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "|{bar}| {} -> {until}  {} (peak {}{path})",
                clock(inc.fired_at),
                inc.summary,
                crate::replay::counted(inc.peak_vantage_points.into(), "VP"),
            );
        }
        out
    }
}
