//! `bgpsentry check`: exit codes and the FILE:LINE:COLUMN error format.

use std::process::Command;

use crate::util::{bin, check_config, write_config};

#[test]
fn valid_config_exits_zero_with_a_summary() {
    let (_d, cfg) = write_config("prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\n");
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with(": OK, 1 watched prefix, 0 feeds\n"),
        "{stdout}"
    );
}

#[test]
fn invalid_config_exits_one_with_every_error_located() {
    let (_d, cfg) = write_config(
        "prefixes:\n  - prefix: 192.0.2.1/24\n    origins: [0]\n  - prefix: 2001:db8::/129\n",
    );
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let file = cfg.display().to_string();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!(
            "{file}:2:13: prefix `192.0.2.1/24` has host bits set"
        )),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{file}:3:15: ASN 0 is out of range")),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{file}:4:13: `2001:db8::/129` is not a prefix")),
        "{stderr}"
    );
}

#[test]
fn the_built_in_default_config_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .arg("check")
        .current_dir(dir.path())
        .env_remove("BGPSENTRY_CONFIG")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("<built-in default config>: OK"));
}
