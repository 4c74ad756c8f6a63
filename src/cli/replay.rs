//! `bgpsentry replay`: MRT files through the rules, alert transitions to stdout.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::ConfigArg;
use crate::alerts::{Alert, AlertTransition, TransitionKind};
use crate::engine::Engine;
use crate::event::Timestamp;
use crate::feeds::mrt::BadRecord;
use crate::replay::report::ReportBuilder;
use crate::replay::{ReplaySink, replay_with as run_replay};
use crate::rpki::{RpkiSnapshot, load_files};

/// Arguments of `replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print one JSON object per alert transition instead of text.
    #[arg(long)]
    json: bool,
    /// Print a backtest report instead of the transitions: a per-rule summary table and a
    /// timeline of every incident (with --json: the report as one JSON object).
    #[arg(long)]
    report: bool,
    /// An MRT table dump (RIB) to load first: its routes are the starting state, and prefixes
    /// in learning mode learn their origins and upstreams from it.
    #[arg(long)]
    rib: Option<PathBuf>,
    /// MRT update files (plain, gzip or bzip2), replayed in the order given.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct JsonLine<'a> {
    event: TransitionKind,
    alert: &'a Alert,
}

struct StdoutSink {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    bar: ProgressBar,
    write_error: Option<std::io::Error>,
    /// With `--report`: transitions are collected here instead of printed.
    report: Option<ReportBuilder>,
    /// The file being read, for the progress line.
    file: String,
    /// Events read so far, and when reading began, for the progress line.
    events: u64,
    started: std::time::Instant,
}

impl ReplaySink for StdoutSink {
    fn transition(&mut self, t: &AlertTransition) {
        if let Some(report) = self.report.as_mut() {
            report.record(t);
            return;
        }
        if t.event == TransitionKind::Updated || self.write_error.is_some() {
            return;
        }
        let line = if self.json {
            serde_json::to_string(&JsonLine {
                event: t.event,
                alert: &t.alert,
            })
            .unwrap_or_default()
        } else {
            text_line(t)
        };
        if let Err(e) = writeln!(self.out, "{line}") {
            self.write_error = Some(e);
        }
    }

    fn bad_record(&mut self, bad: &BadRecord) {
        self.bar.suspend(|| eprintln!("warning: {bad}"));
    }

    fn file_started(&mut self, index: usize, total: usize, path: &Path) {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.file = format!("file {}/{total} {name}", index + 1);
        self.show_events();
    }

    fn progress(&mut self, events: u64) {
        self.events += events;
        self.show_events();
    }

    fn bytes_total(&mut self, total: u64) {
        self.bar.set_length(total);
    }

    fn bytes_done(&mut self, done: u64) {
        self.bar.set_position(done);
    }
}

impl StdoutSink {
    /// The text after the bar: the file, the events so far and their rate (whole numbers).
    fn show_events(&self) {
        if self.bar.is_hidden() {
            return;
        }
        let rate = crate::replay::per_second(self.events, self.started.elapsed());
        self.bar.set_message(format!(
            "{}: {}, {rate} events/s",
            self.file,
            crate::replay::counted(self.events, "event")
        ));
    }
}

/// The progress bar on stderr: percent of the files' bytes read, and the time left. Drawn
/// only on a terminal, so logs and pipes get the summary line alone.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style = ProgressStyle::with_template(
        "[{bar:30}] {percent:>3}% of {total_bytes}, {eta} left  {wide_msg}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// One line per transition for people: time, event, then the alert in words.
fn text_line(t: &AlertTransition) -> String {
    let a = &t.alert;
    let (when, what) = match t.event {
        TransitionKind::Resolved => (a.resolved_at.unwrap_or(a.last_seen), "RESOLVED"),
        _ => (a.fired_at, "FIRED"),
    };
    let vps = match t.event {
        TransitionKind::Resolved => format!(
            "peak {}",
            crate::replay::counted(a.peak_vantage_points.into(), "VP")
        ),
        _ => crate::replay::counted(a.vantage_points.into(), "VP"),
    };
    let path = a
        .sample
        .first()
        .map(|s| format!(", e.g. path {}", s.as_path))
        .unwrap_or_default();
    format!("{when} {what} {} ({vps}{path}) id={}", a.summary(), a.id)
}

/// Runs the replay; exit 1 on config or file errors.
pub fn replay(args: ReplayArgs) -> ExitCode {
    let cfg = match args.config.load() {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let mut engine = Engine::from_config(&cfg);
    if let Some(rpki) = &cfg.rpki {
        // A replay judges history with the data given, however old: never stale.
        match load_files(&rpki.files) {
            Ok((data, _)) => engine.set_rpki(
                RpkiSnapshot {
                    data: Some(std::sync::Arc::new(data)),
                    stale: false,
                    procedure: rpki.aspa_procedure,
                },
                Timestamp::default(),
            ),
            Err(e) => {
                eprintln!("error: cannot load RPKI data: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let bar = progress_bar();
    let mut sink = StdoutSink {
        json: args.json,
        out: std::io::BufWriter::new(std::io::stdout()),
        bar: bar.clone(),
        write_error: None,
        report: args.report.then(ReportBuilder::default),
        file: String::new(),
        events: 0,
        started: std::time::Instant::now(),
    };
    let result = run_replay(engine, args.rib.as_deref(), &args.files, &mut sink);
    bar.finish_and_clear();
    if let (Ok((_, summary)), Some(builder)) = (&result, sink.report.take()) {
        let report = builder.finish(summary.first_event, summary.last_event);
        let text = if sink.json {
            serde_json::to_string_pretty(&report).unwrap_or_default()
        } else {
            report.render_text()
        };
        if let Err(e) = writeln!(sink.out, "{}", text.trim_end()) {
            sink.write_error = Some(e);
        }
    }
    let flushed = sink.out.flush();
    match result {
        Ok((_, summary)) => {
            eprintln!("{summary}");
            if let Some(e) = sink.write_error.or(flushed.err()) {
                eprintln!("error: writing alerts to stdout failed: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
