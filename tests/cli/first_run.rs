//! A first run explains itself: `bgpsentry run` in an empty folder says that it runs the
//! built-in default, what that watches, how to watch your own prefixes, and where its store is;
//! with a config file it names the file and what it watches.

use std::process::Command;

use crate::util::{Launch, bin, write_config};

fn run_in(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .env_remove("BGP_API_KEY")
        .env_remove("BGPSENTRY_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn the_built_in_default_says_so_and_how_to_watch_your_own_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let mut svc = Launch::command(run_in(dir.path(), &[])).start();
    svc.proc.terminate();
    let log = svc.proc.log();
    assert!(
        log.contains("running the built-in default")
            && log.contains("the RIPE RIS routing beacons")
            && log.contains("write them to bgpsentry.yml")
            && log.contains("--config FILE"),
        "{log}"
    );
    let store = std::path::absolute(dir.path().join("bgpsentry.db")).unwrap();
    assert!(
        log.contains(&format!("state is kept in the store {}", store.display())),
        "{log}"
    );
}

#[test]
fn a_config_file_is_named_with_what_it_watches() {
    let (dir, config) = write_config(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64500]\n  - prefix: 198.51.100.0/24\nasns:\n  - asn: 64500\nfeeds:\n  - kind: mrt\n    name: history\n    files: []\n",
    );
    // An MRT feed needs files; an empty list is refused, so give it an empty file.
    let mrt = dir.path().join("empty.mrt");
    std::fs::write(&mrt, b"").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("files: []", &format!("files: [\"{}\"]", mrt.display()));
    std::fs::write(&config, text).unwrap();
    let config_arg = config.to_str().unwrap();
    let mut svc = Launch::command(run_in(dir.path(), &["--config", config_arg])).start();
    svc.proc.terminate();
    let log = svc.proc.log();
    assert!(
        log.contains(&format!(
            "config {}: 2 watched prefixes, 1 monitored ASNs, feeds: history",
            config.display()
        )),
        "{log}"
    );
    assert!(!log.contains("built-in default"), "{log}");
}
