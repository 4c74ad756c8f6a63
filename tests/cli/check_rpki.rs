//! `bgpsentry check` reads the RPKI files of a config, not only the YAML.

use crate::util::{check_config, fixture, write_config};

fn check(yaml: &str) -> (bool, String, String) {
    let (_dir, cfg) = write_config(yaml);
    let out = check_config(&cfg);
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn check_counts_the_rpki_data() {
    let (ok, stdout, stderr) = check(&format!(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nrpki:\n  files: ['{}', '{}']\n",
        fixture("rpki/routinator.json").display(),
        fixture("rpki/rpki-client.json").display()
    ));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("RPKI: 6 VRPs, 3 ASPA records, 0 entries skipped"),
        "{stdout}"
    );
}

#[test]
fn check_fails_on_a_broken_rpki_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("vrps.json");
    std::fs::write(&bad, "{\"roas\": [{\"asn\": 1, \"prefix\": ").unwrap();
    let (ok, _, stderr) = check(&format!(
        "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64496]\nrpki:\n  files: ['{}']\n",
        bad.display()
    ));
    assert!(!ok);
    assert!(stderr.contains("cannot load RPKI data"), "{stderr}");
    assert!(
        stderr.contains("vrps.json: not valid VRP JSON at line 1"),
        "{stderr}"
    );
}
