//! Embeds the git revision for `bgpsentry_build_info`: `BGPSENTRY_GIT_REVISION` when set (a
//! build from a tarball or a container context without `.git` can pass it), else
//! `git rev-parse`, else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BGPSENTRY_GIT_REVISION");
    println!("cargo:rerun-if-changed=build.rs");
    let from_env = std::env::var("BGPSENTRY_GIT_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty());
    let revision = from_env.or_else(|| {
        let rev = git(&["rev-parse", "--short=12", "HEAD"])?;
        // Rebuild when HEAD moves: HEAD itself, and the branch it points at.
        for path in [
            Some("HEAD".to_string()),
            git(&["symbolic-ref", "-q", "HEAD"]),
        ]
        .into_iter()
        .flatten()
        {
            // A branch kept only in packed-refs has no file; watching a missing file would
            // rebuild every time.
            if let Some(file) = git(&["rev-parse", "--git-path", &path])
                && std::path::Path::new(&file).exists()
            {
                println!("cargo:rerun-if-changed={file}");
            }
        }
        Some(rev)
    });
    let revision = revision.unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BGPSENTRY_GIT_REVISION={revision}");
}
