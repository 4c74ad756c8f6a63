//! Headless Chromium for the tests that look at pages as a browser does.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::poll_until;

/// Headless Chromium, which tests/run-all.sh installs; its absence is a failure, not a skip.
pub fn chromium() -> PathBuf {
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("which").arg(name).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        }
    }
    panic!("chromium is not installed; tests/run-all.sh installs it (apt-get install chromium)");
}

/// Runs headless Chromium with `args` (a throw-away profile under `profile`) and returns its
/// stdout; fails the test if it fails or takes over two minutes.
pub fn run_chromium(profile: &Path, args: &[&str]) -> String {
    let out_file = profile.join("stdout.txt");
    let err_file = profile.join("stderr.txt");
    let child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .stdout(std::fs::File::create(&out_file).unwrap())
        .stderr(std::fs::File::create(&err_file).unwrap())
        .spawn()
        .unwrap();
    // A browser that hangs must fail the test, not stall it, and not outlive it.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(child);
    let status = match poll_until("chromium to finish", 120, || child.0.try_wait().unwrap()) {
        status if status.success() => status,
        status => panic!(
            "chromium failed ({status}): {}",
            std::fs::read_to_string(&err_file).unwrap_or_default()
        ),
    };
    assert!(status.success());
    std::fs::read_to_string(&out_file).unwrap()
}
