//! Bad MRT input: reported with the record's byte offset; reading goes on where it can.

use std::io::Read;

use crate::util::{bin, fixture, replay, shared_data};

const WATCH_ALL: &str =
    "prefixes:\n  - prefix: 0.0.0.0/0\n    origins: [1]\n  - prefix: ::/0\n    origins: [1]\n";

fn decompressed_2016() -> Vec<u8> {
    let f = std::fs::File::open(shared_data("mrt/ris-updates.20160811.1600.gz")).unwrap();
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(f)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// Offsets of the first `n` MRT records (12-byte header, length at bytes 8..12).
fn record_offsets(data: &[u8], n: usize) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while offsets.len() < n && at + 12 <= data.len() {
        offsets.push(at);
        let len = u32::from_be_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 12 + len;
    }
    offsets
}

/// The count before `what` (written in the plural; `1 bad record skipped` is found too).
fn count(stderr: &str, what: &str) -> u64 {
    let one = what.replacen("records", "record", 1);
    stderr
        .split([';', ','])
        .find_map(|part| {
            let part = part.trim();
            part.strip_suffix(what).or_else(|| part.strip_suffix(&one))
        })
        .and_then(|n| n.trim().rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{what}` in: {stderr}"))
}

#[test]
fn malformed_nlri_is_reported_and_the_rest_used() {
    let r = replay(
        WATCH_ALL,
        &[&fixture("ris-updates.nlri_mask_trailing_bits.gz")],
        &[],
    );
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("MRT record at byte offset 0: malformed content (Malformed NLRI"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&r.stderr, "malformed records used in part"), 1);
}

#[test]
fn truncated_file_reports_the_offset_and_keeps_what_came_before() {
    let data = decompressed_2016();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truncated.mrt");
    std::fs::write(&path, &data[..100_000]).unwrap();
    let r = replay(WATCH_ALL, &[&path], &[]);
    assert!(r.success, "{}", r.stderr);
    let last = *record_offsets(&data[..100_000], usize::MAX).last().unwrap();
    assert!(
        r.stderr
            .contains(&format!("MRT record at byte offset {last}: ")),
        "expected offset {last}: {}",
        r.stderr
    );
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert_eq!(count(&r.stderr, "bad records skipped"), 1);
    assert!(count(&r.stderr, "announcements") > 1000);
    assert!(!r.lines.is_empty());
}

#[test]
fn a_corrupt_record_in_the_middle_is_skipped_and_reading_goes_on() {
    let mut data = decompressed_2016();
    let offsets = record_offsets(&data, 2000);
    let bad = offsets[1000];
    // An MRT subtype that does not exist: the record frames but cannot be parsed.
    data[bad + 6] = 0x00;
    data[bad + 7] = 0x63;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corrupt.mrt");
    std::fs::write(&path, &data).unwrap();
    let r = replay(WATCH_ALL, &[&path], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("MRT record at byte offset {bad}: "))
            && r.stderr
                .contains("skipped it and went on with the next record"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&r.stderr, "bad records skipped"), 1);
    // Everything after the bad record was read: all but that record's announcements.
    let announcements = count(&r.stderr, "announcements");
    assert!(
        announcements < 39_256 && announcements > 39_000,
        "{announcements}"
    );
}

#[test]
fn an_oversized_record_length_stops_framing_with_a_clear_message() {
    let mut data = decompressed_2016()[..5000].to_vec();
    let offsets = record_offsets(&data, 3);
    let at = offsets[2];
    data[at + 8..at + 12].copy_from_slice(&u32::MAX.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oversized.mrt");
    std::fs::write(&path, &data).unwrap();
    let r = replay(WATCH_ALL, &[&path], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("MRT record at byte offset {at}: "))
            && r.stderr.contains("cannot be framed"),
        "{}",
        r.stderr
    );
}

#[test]
fn garbage_empty_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mrt");
    std::fs::write(&empty, b"").unwrap();
    let r = replay(WATCH_ALL, &[&empty], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(r.stderr.contains("0 records"), "{}", r.stderr);

    let garbage = dir.path().join("garbage.mrt");
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let r = replay(WATCH_ALL, &[&garbage], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr.contains("MRT record at byte offset 0"),
        "{}",
        r.stderr
    );

    let bad_gzip = dir.path().join("bad.gz");
    std::fs::write(
        &bad_gzip,
        [0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad, 0xbe, 0xef, 0x00],
    )
    .unwrap();
    let r = replay(WATCH_ALL, &[&bad_gzip], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr.contains("bad.gz: MRT record at byte offset 0"),
        "{}",
        r.stderr
    );

    // A download cut short: the compressed stream ends mid-record.
    let gz = std::fs::read(shared_data("mrt/ris-updates.20160811.1600.gz")).unwrap();
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let r = replay(WATCH_ALL, &[&cut], &[]);
    assert!(r.success, "{}", r.stderr);
    assert!(
        r.stderr.contains("the gzip stream is truncated or corrupt"),
        "{}",
        r.stderr
    );
    assert_eq!(count(&r.stderr, "bad records skipped"), 1);
    assert!(count(&r.stderr, "announcements") > 10_000);

    let out = std::process::Command::new(bin())
        .args(["replay", "--config"])
        .arg(dir.path().join("nope.yml"))
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope.yml: cannot read the config file"),
        "{err}"
    );

    let (_d, cfg) = crate::util::write_config(WATCH_ALL);
    let out = std::process::Command::new(bin())
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(dir.path().join("missing.mrt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open") && err.contains("missing.mrt"),
        "{err}"
    );
}

#[test]
fn records_with_absurd_or_far_off_times_are_skipped_with_their_offsets() {
    let mut data = decompressed_2016();
    let offsets = record_offsets(&data, 2000);
    let set_time = |data: &mut Vec<u8>, at: usize, secs: u32| {
        data[at..at + 4].copy_from_slice(&secs.to_be_bytes());
    };
    // Year 2106 (far beyond now), 1970, and a year after the rest of the file.
    let (future, epoch, later) = (offsets[500], offsets[1000], offsets[1500]);
    set_time(&mut data, future, u32::MAX);
    set_time(&mut data, epoch, 0);
    set_time(&mut data, later, 1_470_931_200 + 365 * 86_400);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("times.mrt");
    std::fs::write(&path, &data).unwrap();
    let r = replay(WATCH_ALL, &[&path], &[]);
    assert!(r.success, "{}", r.stderr);
    for at in [future, epoch, later] {
        assert!(
            r.stderr
                .contains(&format!("MRT record at byte offset {at}: "))
                && r.stderr.contains("skipped it and went on"),
            "offset {at}: {}",
            r.stderr
        );
    }
    assert_eq!(count(&r.stderr, "bad records skipped"), 3);
    // Nothing of 2016 got a time outside the file's day.
    for l in &r.lines {
        for t in [&l.fired_at, &l.first_seen] {
            assert!(t.starts_with("2016-08-11"), "{t}: {:?}", l.json);
        }
    }
}
