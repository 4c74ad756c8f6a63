//! The fuzz smoke run of CI (no nightly toolchain needed): every seed of `fuzz/corpus/<target>/`
//! goes through the entry function that its `cargo fuzz` target calls, so the seeds and the
//! inputs kept from past findings stay valid regression inputs.

use std::fs;
use std::path::{Path, PathBuf};

use bgpsentry::fuzzing;

/// Fuzz target name, the entry function it calls (as in `fuzz/fuzz_targets/*.rs`), by name too.
type Entry = (&'static str, &'static str, fn(&[u8]));
const TARGETS: [Entry; 10] = [
    ("bgproutes_parse", "bgproutes", fuzzing::bgproutes),
    ("ris_live_parse", "ris_live", fuzzing::ris_live),
    ("config_parse", "config", fuzzing::config),
    ("mrt_reader", "mrt", fuzzing::mrt),
    ("bmp_reader", "bmp", fuzzing::bmp),
    ("openbmp_reader", "openbmp", fuzzing::openbmp),
    ("events_record", "events_record", fuzzing::events_record),
    ("triage_request", "triage", fuzzing::triage),
    (
        "warm_start_ripestat",
        "warm_start_ripestat",
        fuzzing::warm_start_ripestat,
    ),
    (
        "warm_start_rest",
        "warm_start_rest",
        fuzzing::warm_start_rest,
    ),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        // Only the committed seeds: a local fuzzing run adds its own entries next to them.
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_seed_runs_through_its_target_without_a_panic() {
    for (target, _, run) in TARGETS {
        let files = seeds(target);
        assert!(files.len() >= 4, "{target}: only {} seeds", files.len());
        for file in files {
            let data = fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{} panicked", file.display());
        }
    }
}

#[test]
fn every_fuzz_target_has_an_entry_here_and_a_corpus() {
    let mut names: Vec<String> = fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            p.file_stem().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    let mut known: Vec<String> = TARGETS.iter().map(|(n, _, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(names, known, "fuzz/fuzz_targets and this test disagree");
    for (target, entry, _) in TARGETS {
        // The target file calls the same entry function as this test.
        let src = fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{target}.rs"))).unwrap();
        assert!(
            src.contains(&format!("bgpsentry::fuzzing::{entry}(data)")),
            "{target} does not call fuzzing::{entry}"
        );
    }
}

#[test]
fn seeds_are_parsed_as_the_real_thing_not_rejected_early() {
    // The recorded RIS frames and hand-written bgproutes records must be accepted by the parsers,
    // else the fuzzer starts from inputs that never reach the interesting code.
    use bgpsentry::feeds::bgproutes::parser as bgproutes_parse;
    use bgpsentry::feeds::ris_live::parser as ris_live_parse;
    let mut accepted = 0;
    for f in seeds("ris_live_parse") {
        let text = fs::read_to_string(&f).unwrap();
        if ris_live_parse::parse(&text, &"ris".into()).is_ok() {
            accepted += 1;
        }
    }
    assert!(accepted >= 10, "only {accepted} RIS seeds parse");
    let mut accepted = 0;
    for f in seeds("bgproutes_parse") {
        let text = fs::read_to_string(&f).unwrap();
        if let Ok(bgproutes_parse::Frame::Message(_)) = bgproutes_parse::parse_frame(&text) {
            accepted += 1;
        }
    }
    assert!(
        accepted >= 4,
        "only {accepted} bgproutes seeds are messages"
    );
    let ok = seeds("config_parse")
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap();
            bgpsentry::config::Config::parse(&text, f).is_ok()
        })
        .count();
    assert!(ok >= 2, "only {ok} config seeds are valid configs");
}
