//! The store is checked at start: a damaged or truncated store file is refused with a message
//! that names it and says how to recover, and a new store is announced as created empty.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Service, http_get, poll_until, shared_data, write_config};

fn config(store: &Path, with_feed: bool) -> String {
    let mut yaml = format!(
        "prefixes:\n  - prefix: 202.134.148.0/22\n    origins: [18196]\n    upstreams: [4755]\nstore:\n  path: \"{}\"\n",
        store.display()
    );
    if with_feed {
        let file = shared_data("mrt/ris-updates.20160811.1600.gz");
        yaml.push_str(&format!(
            "feeds:\n  - kind: mrt\n    files: [\"{}\"]\n",
            file.display()
        ));
    }
    yaml
}

/// Runs `bgpsentry run` expecting it to refuse to start: its exit status and stderr. A service
/// that starts anyway is killed and the test fails.
fn run_expecting_refusal(config: &Path) -> (std::process::ExitStatus, String) {
    let dir = config.parent().unwrap();
    let err_path = dir.join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["run", "--config"])
        .arg(config)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "bgpsentry started on a damaged store: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, std::fs::read_to_string(&err_path).unwrap())
}

fn assert_refused_with_the_way_out(status: std::process::ExitStatus, err: &str, store: &Path) {
    assert!(!status.success(), "exit status {status}: {err}");
    let name = store.display().to_string();
    for part in [
        name.as_str(),
        "damaged",
        "restore it from a backup",
        ".damaged",
        "loses the alert history",
    ] {
        assert!(err.contains(part), "`{part}` not in: {err}");
    }
}

#[test]
fn a_store_with_a_corrupt_page_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.db");
    let (_cfg_dir, cfg) = write_config(&config(&store, true));

    // A real run writes alerts and their events; a new store is announced.
    {
        let svc = Service::start(&cfg);
        assert!(
            svc.proc
                .lines()
                .iter()
                .any(|l| l.contains("created an empty store")),
            "{:?}",
            svc.proc.lines()
        );
        poll_until("the resolved hijack", 60, || {
            let (_, _, body) = http_get(&svc.addr, "/alerts?state=resolved")?;
            body.contains("subprefix_hijack").then_some(())
        });
    }
    // Everything in the main file, then the page holding alert_events overwritten.
    let page = {
        let c = rusqlite::Connection::open(&store).unwrap();
        let events: i64 = c
            .query_row("SELECT count(*) FROM alert_events", [], |r| r.get(0))
            .unwrap();
        assert!(events > 0, "the run recorded alert events");
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        let root: i64 = c
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'alert_events'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (root, size)
    };
    let (root, size) = page;
    let mut bytes = std::fs::read(&store).unwrap();
    let at = ((root - 1) * size) as usize;
    assert!(root > 1 && at + size as usize <= bytes.len());
    for (i, b) in bytes[at..at + size as usize].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    std::fs::write(&store, &bytes).unwrap();

    let (status, err) = run_expecting_refusal(&cfg);
    assert_refused_with_the_way_out(status, &err, &store);
    assert!(err.contains("integrity check"), "{err}");
}

#[test]
fn an_empty_store_file_is_refused_a_missing_one_created() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("state.db");
    std::fs::write(&store, b"").unwrap();
    let (_cfg_dir, cfg) = write_config(&config(&store, false));
    let (status, err) = run_expecting_refusal(&cfg);
    assert_refused_with_the_way_out(status, &err, &store);
    assert!(err.contains("empty (0 bytes)"), "{err}");
    assert_eq!(
        std::fs::metadata(&store).unwrap().len(),
        0,
        "left as it was"
    );

    // Moved aside as the message says: the service starts with a new, empty store.
    std::fs::rename(&store, dir.path().join("state.db.damaged")).unwrap();
    let svc = Service::start(&cfg);
    assert!(
        svc.proc
            .lines()
            .iter()
            .any(|l| l.contains("created an empty store") && l.contains("state.db")),
        "{:?}",
        svc.proc.lines()
    );
    assert!(std::fs::metadata(&store).unwrap().len() > 0);
}
