//! What `bgpsentry replay` says on stderr: a progress bar by bytes only on a terminal, and a
//! summary line with whole-number rates and every count in the right number.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{bin, fixture, shared_data, write_config};

const CONFIG: &str = "prefixes:\n  - prefix: 202.134.148.0/24\n    origins: [18196]\n";

fn hijack() -> std::path::PathBuf {
    fixture("hijack-202.134.148.0_24.20160811.1600.mrt.gz")
}

fn replay_piped(config: &Path, files: &[&Path]) -> Output {
    Command::new(bin())
        .arg("replay")
        .arg("--config")
        .arg(config)
        .args(files)
        .output()
        .unwrap()
}

/// Words after a count, singular and plural, as the summary uses them.
const NOUNS: [(&str, &str); 8] = [
    ("file", "files"),
    ("record", "records"),
    ("announcement", "announcements"),
    ("withdrawal", "withdrawals"),
    ("peer-down", "peer-downs"),
    ("event", "events"),
    ("alert", "alerts"),
    ("VP", "VPs"),
];

/// Every `N noun` of `text` (adjectives such as "bad" skipped) in the right number; returns
/// how many singular and plural counts it saw.
fn check_numbers(text: &str) -> (usize, usize) {
    let words: Vec<&str> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| ",;:()".contains(c)))
        .collect();
    let (mut singular, mut plural) = (0, 0);
    for (i, w) in words.iter().enumerate() {
        let Ok(n) = w.parse::<u64>() else { continue };
        let noun = words[i + 1..]
            .iter()
            .find(|w| !["bad", "malformed"].contains(w))
            .copied()
            .unwrap_or_default();
        for (one, many) in NOUNS {
            if noun == one {
                assert_eq!(n, 1, "`{n} {noun}` in: {text}");
                singular += 1;
            } else if noun == many {
                assert_ne!(n, 1, "`{n} {noun}` in: {text}");
                plural += 1;
            }
        }
    }
    (singular, plural)
}

#[test]
fn the_summary_counts_in_the_right_number_with_whole_rates() {
    let (_d, cfg) = write_config(CONFIG);
    let one = replay_piped(&cfg, &[&hijack()]);
    let stderr = String::from_utf8_lossy(&one.stderr).into_owned();
    assert!(one.status.success(), "{stderr}");
    let summary = stderr.lines().last().unwrap_or_default();
    assert!(summary.starts_with("read 1 file: "), "{summary}");
    let (singular, plural) = check_numbers(summary);
    assert!(singular >= 1 && plural >= 1, "{summary}");
    let rate = summary
        .rsplit_once('(')
        .and_then(|(_, r)| r.strip_suffix(" events/s)"))
        .unwrap_or_else(|| panic!("no rate in: {summary}"));
    assert!(rate.parse::<u64>().is_ok(), "not a whole number: {rate}");
    // Two files, and the alert lines on stdout.
    let two = replay_piped(&cfg, &[&hijack(), &hijack()]);
    let stderr = String::from_utf8_lossy(&two.stderr).into_owned();
    assert!(
        stderr
            .lines()
            .last()
            .unwrap_or_default()
            .starts_with("read 2 files: "),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&two.stdout).into_owned();
    assert!(!stdout.is_empty());
    for line in stdout.lines() {
        check_numbers(line);
    }
}

#[test]
fn no_progress_is_drawn_into_a_pipe() {
    let (_d, cfg) = write_config(CONFIG);
    let out = replay_piped(&cfg, &[&shared_data("mrt/ris-updates.20160811.1600.gz")]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "only the summary: {stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('%') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
}

/// On a terminal (a pseudo-terminal made by `script`), the bar shows percent of bytes, the
/// time left and the file.
#[test]
fn a_terminal_gets_a_bar_with_percent_and_time_left() {
    let (_d, cfg) = write_config(CONFIG);
    let file = shared_data("mrt/rrc01.updates.20241001.0055.gz");
    let command = format!(
        "'{}' replay --config '{}' '{}' >/dev/null",
        bin().display(),
        cfg.display(),
        file.display()
    );
    let out = Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("`script` (util-linux/bsdutils) runs a command on a pseudo-terminal");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("% of "), "{text:?}");
    assert!(text.contains(" left"), "{text:?}");
    // The file's name is cut to the terminal's width (80 columns here).
    assert!(text.contains("left  file 1/1 rrc01."), "{text:?}");
    assert!(text.contains("read 1 file: "), "{text:?}");
}
