//! The book in `docs/` and the README stay true to the code: every chapter of `SUMMARY.md`
//! exists, every relative link and anchor between the pages resolves, every YAML snippet
//! marked as a full config (a ```` ```yaml config ```` fence) passes the real `bgpsentry check`,
//! and every subcommand of `bgpsentry --help` has a section in the CLI chapter.
//!
//! The mdbook binary is not needed: the pages are plain Markdown read here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::root;

/// The fence info string that marks a YAML snippet as a whole config `bgpsentry check` accepts.
const FULL_CONFIG_FENCE: &str = "yaml config";

fn book_src() -> PathBuf {
    root().join("docs/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The README, CONTRIBUTING.md and every page of the book.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("CONTRIBUTING.md")];
    let mut book: Vec<PathBuf> = std::fs::read_dir(book_src())
        .expect("docs/src exists")
        .map(|e| e.expect("readable docs/src entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    book.sort();
    pages.extend(book);
    pages
}

/// The lines of a Markdown text that are outside fenced code blocks, with their line numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchor mdBook and GitHub give a heading: lower case, spaces to `-`, punctuation other
/// than `-` and `_` dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_ascii_lowercase())
            } else if c == ' ' {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of a page's headings; a repeated heading gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while !out.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    out
}

/// Inline link targets `[text](target)` of the prose, inline code left out.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        // Inline code is not a link: `a](b)` in backticks stays text.
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            prose.push_str(if i % 2 == 0 { part } else { "code" });
        }
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let tail = &rest[at + 2..];
            let Some(end) = tail.find(')') else { break };
            out.push((n, tail[..end].to_string()));
            rest = &tail[end..];
        }
    }
    out
}

#[test]
fn every_chapter_in_the_summary_exists_and_every_page_is_in_it() {
    let summary = read(&book_src().join("SUMMARY.md"));
    let listed: BTreeSet<String> = link_targets(&summary)
        .into_iter()
        .map(|(_, target)| target)
        .collect();
    assert!(listed.len() >= 10, "SUMMARY.md lists only {listed:?}");
    for chapter in &listed {
        assert!(
            book_src().join(chapter).is_file(),
            "SUMMARY.md lists {chapter}, which docs/src does not have"
        );
    }
    // mdBook renders only what the summary lists: a page left out would be lost.
    for page in pages() {
        let Ok(rel) = page.strip_prefix(book_src()) else {
            continue;
        };
        let rel = rel.to_string_lossy().into_owned();
        assert!(
            rel == "SUMMARY.md" || listed.contains(&rel),
            "docs/src/{rel} is not in SUMMARY.md"
        );
    }
    for chapter in [
        "configuration.md",
        "feeds.md",
        "detectors.md",
        "cli.md",
        "http.md",
        "metrics.md",
        "deployment.md",
        "runbook.md",
        "notifications.md",
        "reliability.md",
        "performance.md",
        "fuzzing.md",
    ] {
        assert!(listed.contains(chapter), "SUMMARY.md lacks {chapter}");
    }
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in pages() {
        let text = read(&page);
        let dir = page.parent().expect("a page has a folder");
        for (line, target) in link_targets(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file = if path.is_empty() {
                page.clone()
            } else {
                dir.join(path)
            };
            let at = format!("{}:{line}: {target}", page.display());
            if !file.exists() {
                broken.push(format!("{at}: no such file"));
                continue;
            }
            if !anchor.is_empty() && !anchors(&read(&file)).contains(anchor) {
                broken.push(format!("{at}: no heading with that anchor"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 50, "only {checked} relative links found");
}

#[test]
fn full_config_snippets_pass_bgpsentry_check() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut snippets = 0;
    for page in pages() {
        let text = read(&page);
        let mut current: Option<(usize, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut current, fence) {
                (None, Some(info)) if info.trim() == FULL_CONFIG_FENCE => {
                    current = Some((i + 1, String::new()));
                }
                (Some(_), Some(_)) => {
                    let (start, yaml) = current.take().expect("inside a snippet");
                    snippets += 1;
                    let config = dir.path().join(format!("snippet-{snippets}.yml"));
                    std::fs::write(&config, &yaml).expect("write the snippet");
                    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
                        .arg("check")
                        .arg("--config")
                        .arg(&config)
                        .env_remove("BGPSENTRY_CONFIG")
                        .current_dir(dir.path())
                        .output()
                        .expect("run bgpsentry check");
                    assert!(
                        out.status.success(),
                        "the config snippet at {}:{start} fails `bgpsentry check`:\n{}{}\n{yaml}",
                        page.display(),
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                    );
                }
                (Some((_, yaml)), None) => {
                    yaml.push_str(line);
                    yaml.push('\n');
                }
                (None, _) => {}
            }
        }
        assert!(current.is_none(), "{}: unclosed fence", page.display());
    }
    assert!(
        snippets >= 4,
        "only {snippets} snippets are marked ```{FULL_CONFIG_FENCE}"
    );
}

/// The subcommands `bgpsentry --help` lists, `help` aside.
fn subcommands() -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .arg("--help")
        .output()
        .expect("run bgpsentry --help");
    assert!(out.status.success(), "bgpsentry --help failed");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let commands = help
        .split_once("Commands:")
        .unwrap_or_else(|| panic!("no Commands: in\n{help}"))
        .1;
    commands
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A wrapped description is indented further than a command's name.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

#[test]
fn every_subcommand_has_a_section_in_the_cli_chapter() {
    let commands = subcommands();
    assert!(commands.len() >= 5, "bgpsentry --help lists {commands:?}");
    let cli = read(&book_src().join("cli.md"));
    let headings: Vec<&str> = prose_lines(&cli)
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.starts_with('#'))
        .collect();
    for name in &commands {
        let title = format!("`bgpsentry {name}");
        assert!(
            headings
                .iter()
                .any(|h| h.contains(&format!("{title}`")) || h.contains(&format!("{title} "))),
            "docs/src/cli.md has no section for `bgpsentry {name}`"
        );
    }
    // And no section for a command that no longer exists.
    for heading in headings {
        if let Some((_, rest)) = heading.split_once("`bgpsentry ") {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-')
                .collect();
            assert!(
                commands.contains(&name),
                "docs/src/cli.md has a section for `bgpsentry {name}`, which --help does not list"
            );
        }
    }
}

#[test]
fn book_toml_names_the_source_folder() {
    // Not a full TOML parser: every line is blank, a comment, a `[table]` or a `key = value`
    // whose value is a quoted string, a list of them, a boolean or a number, and `[book]`
    // points at docs/src.
    let toml = read(&root().join("docs/book.toml"));
    let mut table = String::new();
    let mut src = None;
    for (i, line) in toml.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once(" = ")
            .unwrap_or_else(|| panic!("docs/book.toml:{}: not `key = value`", i + 1));
        let quoted = |v: &str| v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
        let list_of_strings = value
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .is_some_and(|items| items.split(',').all(|item| quoted(item.trim())));
        assert!(
            quoted(value)
                || list_of_strings
                || ["true", "false"].contains(&value)
                || value.parse::<f64>().is_ok(),
            "docs/book.toml:{}: {value} is not a string, a list of strings, a boolean or a number",
            i + 1
        );
        if table == "book" && key == "src" {
            src = Some(value.trim_matches('"').to_string());
        }
    }
    let src = src.expect("[book] src in docs/book.toml");
    assert!(
        root().join("docs").join(&src).join("SUMMARY.md").is_file(),
        "[book] src = {src:?} has no SUMMARY.md"
    );
}
