//! `bgpsentry check` and `run` on broken files: every error of a file in one run (structural
//! and semantic, in any section), a file that watches nothing, and addresses and ports
//! explained.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{bin, check_config, write_config};

/// Seven errors in five sections: an unknown key, a host-bits prefix, a word for a number, a
/// port out of range, a misspelt feed kind, an `mrt` feed without files, a word for a duration.
const SEVEN_ERRORS: &str = "\
prefixes:
  - prefix: 192.0.2.0/24
    origins: [64496]
    orgins: [64497]
  - prefix: 198.51.100.1/24
    origins: [64496]
  - prefix: 203.0.113.0/24
    min_vantage_points: many
http:
  listen: 127.0.0.1:70000
feeds:
  - kind: ris_liv
  - kind: mrt
notify:
  group_window_seconds: soon
";

/// Each error: where, and words its message must hold (what is wrong, what to do).
const EXPECTED: [(&str, &[&str]); 7] = [
    (
        "4:5",
        &["unknown field `orgins`", "did you mean `origins`?"],
    ),
    (
        "5:13",
        &["host bits set", "did you mean `198.51.100.0/24`?"],
    ),
    ("8:25", &["invalid u32", "whole number"]),
    (
        "10:11",
        &["port 70000", "ports are 0 to 65535", "like 127.0.0.1:9179"],
    ),
    (
        "12:11",
        &["unknown variant `ris_liv`", "did you mean `ris_live`?"],
    ),
    ("13:11", &["an `mrt` feed needs `files:`"]),
    ("15:25", &["invalid floating point", "a number"]),
];

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `bgpsentry run` on a config, in a folder of its own (nothing is written beside the test).
fn run_config(config: &Path) -> Output {
    let dir = config.parent().expect("the config sits in a folder");
    Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .current_dir(dir)
        .env_remove("BGPSENTRY_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn check_prints_all_seven_errors_of_a_file_in_one_run() {
    let (_d, cfg) = write_config(SEVEN_ERRORS);
    let out = check_config(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 7, "{err}");
    let file = cfg.display().to_string();
    for (line, (at, words)) in lines.iter().zip(EXPECTED) {
        assert!(line.starts_with(&format!("{file}:{at}: ")), "{line}\n{err}");
        for w in words {
            assert!(line.contains(w), "`{w}` missing from: {line}");
        }
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn run_reports_the_same_errors_and_does_not_start() {
    let (_d, cfg) = write_config(SEVEN_ERRORS);
    let checked = stderr(&check_config(&cfg));
    let out = run_config(&cfg);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for line in checked.lines() {
        assert!(err.contains(line), "run did not report: {line}\n{err}");
    }
    assert!(!err.contains("listening"), "{err}");
}

#[test]
fn a_file_that_watches_nothing_is_an_error_that_says_what_to_add() {
    for text in [
        "",
        "# nothing yet\n",
        "feeds:\n  - kind: ris_live\n",
        "prefixes: []\nasns: []\n",
    ] {
        let (_d, cfg) = write_config(text);
        let file = cfg.display().to_string();
        for out in [check_config(&cfg), run_config(&cfg)] {
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{text:?}: {err}");
            let first = err.lines().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!("{file}: nothing is watched")),
                "{text:?}: {err}"
            );
            assert!(
                err.contains("  prefixes:\n    - prefix: 192.0.2.0/24"),
                "{err}"
            );
            assert!(err.contains("bgpsentry generate"), "{err}");
        }
    }
    // Monitored ASNs alone are something to watch.
    let (_d, cfg) = write_config("asns:\n  - asn: 64496\n");
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A broken file whose only prefix is broken gets that error, not a second one.
    let (_d, cfg) = write_config("prefixes:\n  - prefix: 192.0.2.0/24\n    orgins: [1]\n");
    let err = stderr(&check_config(&cfg));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("unknown field `orgins`"), "{err}");
}

#[test]
fn addresses_and_ports_say_what_is_accepted() {
    const WATCH: &str = "prefixes:\n  - prefix: 192.0.2.0/24\n";
    for (http, at, words) in [
        (
            "listen: 127.0.0.1:70000",
            "4:11",
            &["port 70000", "0 to 65535"][..],
        ),
        (
            "listen: localhost:9179",
            "4:11",
            &[
                "`localhost` is not an IP address",
                "not a host name",
                "127.0.0.1:9179",
            ],
        ),
        ("listen: 127.0.0.1", "4:11", &["has no port", "IP:PORT"]),
        (
            "listen: ::1:9179",
            "4:11",
            &["has no port", "brackets", "[::1]:9179"],
        ),
    ] {
        let (_d, cfg) = write_config(&format!("{WATCH}http:\n  {http}\n"));
        let err = stderr(&check_config(&cfg));
        let file = cfg.display().to_string();
        assert!(err.starts_with(&format!("{file}:{at}: ")), "{http}: {err}");
        for w in words {
            assert!(err.contains(w), "{http}: `{w}` missing: {err}");
        }
    }
    let (_d, cfg) = write_config(&format!(
        "{WATCH}notify:\n  channels:\n    - name: mail\n      kind: email\n      smtp_host: smtp.example.net\n      smtp_port: 0\n      from: a@example.net\n      to: [b@example.net]\n"
    ));
    let err = stderr(&check_config(&cfg));
    assert!(
        err.contains("port 0 is out of range: a port to connect to is 1 to 65535"),
        "{err}"
    );
    // The command line explains the same way.
    let (_d, cfg) = write_config(WATCH);
    let out = Command::new(bin())
        .args(["run", "--listen", "127.0.0.1:70000", "--config"])
        .arg(&cfg)
        .current_dir(cfg.parent().unwrap())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("port 70000 in `127.0.0.1:70000` is out of range"),
        "{err}"
    );
}
