use std::path::{Path, PathBuf};

use super::*;
use crate::event::{AsPath, PathElem};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rpki")
        .join(name)
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn parse(text: &str) -> Result<Parsed, ParseError> {
    parse_json(text.as_bytes(), MAX_RPKI_FILE_BYTES)
}

#[test]
fn reads_routinator_json() {
    let bytes = std::fs::read(fixture("routinator.json")).unwrap();
    let p = parse_json(&bytes, MAX_RPKI_FILE_BYTES).unwrap();
    assert_eq!(p.vrps.len(), 5);
    assert_eq!(
        p.vrps[0],
        Vrp {
            prefix: net("84.205.64.0/19"),
            max_length: 24,
            asn: 12654
        }
    );
    assert_eq!(p.generated, Some(1470931200));
    assert!(p.aspas.is_empty());
    assert_eq!(p.rejected, 0);
}

#[test]
fn reads_routinator_jsonext_with_aspas() {
    let bytes = std::fs::read(fixture("routinator-jsonext.json")).unwrap();
    let p = parse_json(&bytes, MAX_RPKI_FILE_BYTES).unwrap();
    assert_eq!(p.vrps.len(), 2);
    assert_eq!(p.vrps[1].asn, 18196);
    assert_eq!(p.aspas, vec![(58678, vec![9498])]);
}

#[test]
fn reads_rpki_client_json() {
    let bytes = std::fs::read(fixture("rpki-client.json")).unwrap();
    let p = parse_json(&bytes, MAX_RPKI_FILE_BYTES).unwrap();
    assert_eq!(p.vrps.len(), 3);
    assert_eq!(p.vrps[2].asn, 0);
    assert_eq!(p.aspas.len(), 3);
    assert_eq!(p.aspas[2], (9498, vec![1299, 3356, 6453]));
    // No epoch in the metadata: the build time is the generation time.
    assert_eq!(p.generated, Some(1470931121));
}

#[test]
fn reads_older_rpki_client_provider_sets() {
    let p = parse(
        r#"{"aspas":[{"customer_asid":64496,"expires":1,"provider_set":[{"provider_asid":64497,"afi_limit":"ipv4"},{"provider_asid":64498}]}]}"#,
    )
    .unwrap();
    assert_eq!(p.aspas, vec![(64496, vec![64497, 64498])]);
}

#[test]
fn max_length_defaults_to_the_prefix_length() {
    let p = parse(r#"{"roas":[{"asn":"AS64496","prefix":"192.0.2.0/24"}]}"#).unwrap();
    assert_eq!(p.vrps[0].max_length, 24);
}

#[test]
fn entries_with_values_out_of_range_are_skipped_and_counted() {
    let p = parse(
        r#"{"roas":[
            {"asn":"AS64496","prefix":"192.0.2.0/24","maxLength":23},
            {"asn":"AS64496","prefix":"192.0.2.0/24","maxLength":33},
            {"asn":"AS64496","prefix":"192.0.2.1/24","maxLength":24},
            {"asn":"AS4294967296","prefix":"192.0.2.0/24","maxLength":24},
            {"asn":-1,"prefix":"192.0.2.0/24","maxLength":24},
            {"asn":"ASxyz","prefix":"192.0.2.0/24","maxLength":24},
            {"asn":"AS64496","prefix":"not a prefix","maxLength":24},
            {"asn":"AS64496","prefix":"2001:db8::/32","maxLength":129},
            {"asn":"AS64496","prefix":"2001:db8::/32","maxLength":48}
        ],
        "aspas":[{"customer":"AS1","providers":["AS2","ASnope"]}]}"#,
    )
    .unwrap();
    assert_eq!(p.vrps.len(), 1);
    assert_eq!(p.rejected, 9);
    assert!(p.first_rejection.unwrap().contains("maxLength 23"));
    assert!(p.aspas.is_empty());
}

#[test]
fn malformed_truncated_oversized_and_hostile_files_are_errors_not_panics() {
    let full = std::fs::read(fixture("rpki-client.json")).unwrap();
    // Every truncation of a real file is an error with a position, never a panic.
    for cut in 0..full.trim_ascii_end().len() {
        let r = parse_json(&full[..cut], MAX_RPKI_FILE_BYTES);
        assert!(r.is_err(), "a file cut at byte {cut} was accepted");
    }
    assert!(matches!(
        parse("{\"roas\": [1, 2"),
        Err(ParseError::Json { line: 1, .. })
    ));
    assert!(matches!(
        parse(r#"{"roas": "everything"}"#),
        Err(ParseError::Json { .. })
    ));
    assert!(matches!(
        parse(r#"{"roas":[{"asn":true,"prefix":"192.0.2.0/24"}]}"#),
        Err(ParseError::Json { .. })
    ));
    assert_eq!(parse("{}"), Err(ParseError::NoData));
    assert_eq!(parse(r#"{"metadata":{}}"#), Err(ParseError::NoData));
    assert!(parse("[]").is_err());
    assert!(matches!(parse(""), Err(ParseError::Json { .. })));
    assert!(matches!(
        parse_json(&[0xff, 0xfe, 0x00, 0x7b], MAX_RPKI_FILE_BYTES),
        Err(ParseError::Json { .. })
    ));
    // Deep nesting stops at the JSON parser's recursion limit.
    let deep = format!(
        "{{\"roas\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(matches!(parse(&deep), Err(ParseError::Json { .. })));
    // A huge string value is read but its message is cut short.
    let long = format!(
        r#"{{"roas":[{{"asn":"AS1","prefix":"{}","maxLength":24}}]}}"#,
        "9".repeat(1_000_000)
    );
    let p = parse(&long).unwrap();
    assert!(p.first_rejection.unwrap().len() < 200);
    // Over the limit: refused before parsing.
    assert_eq!(
        parse_json(&full, 100),
        Err(ParseError::TooLarge {
            size: full.len(),
            limit: 100
        })
    );
}

#[test]
fn error_messages_say_what_to_do() {
    let e = parse("{\"roas\": [").unwrap_err().to_string();
    assert!(e.contains("line 1"), "{e}");
    assert!(e.contains("rpki-client -j"), "{e}");
}

fn data(vrps: &[(&str, u8, u32)], aspas: &[(u32, &[u32])]) -> RpkiData {
    RpkiData::new(
        vrps.iter().map(|&(p, m, a)| Vrp {
            prefix: net(p),
            max_length: m,
            asn: a,
        }),
        aspas.iter().map(|&(c, p)| (c, p.to_vec())),
    )
}

#[test]
fn route_origin_validation_follows_rfc_6811() {
    let d = data(
        &[
            ("10.0.0.0/16", 16, 100),
            ("10.0.0.0/16", 24, 200),
            ("10.1.0.0/16", 16, 0),
            ("2001:db8::/32", 48, 300),
        ],
        &[],
    );
    assert_eq!(d.vrp_count(), 4);
    // Exact match, origin and length right.
    assert_eq!(d.rov(&net("10.0.0.0/16"), Some(100)), RovState::Valid);
    // More-specific: only the VRP with maxLength 24 allows it.
    assert_eq!(d.rov(&net("10.0.5.0/24"), Some(100)), RovState::Invalid);
    assert_eq!(d.rov(&net("10.0.5.0/24"), Some(200)), RovState::Valid);
    // Longer than any maxLength.
    assert_eq!(d.rov(&net("10.0.5.0/25"), Some(200)), RovState::Invalid);
    // Wrong origin.
    assert_eq!(d.rov(&net("10.0.0.0/16"), Some(666)), RovState::Invalid);
    // Covered only by an AS0 VRP: nobody is valid, not even AS0.
    assert_eq!(d.rov(&net("10.1.0.0/16"), Some(0)), RovState::Invalid);
    // A less-specific is not covered.
    assert_eq!(d.rov(&net("10.0.0.0/8"), Some(100)), RovState::NotFound);
    assert_eq!(d.rov(&net("192.0.2.0/24"), Some(100)), RovState::NotFound);
    // No single origin (AS_SET): covered means invalid.
    let set = AsPath::from(vec![PathElem::Asn(1), PathElem::Set(vec![100, 200].into())]);
    assert_eq!(d.rov_of_path(&net("10.0.0.0/16"), &set), RovState::Invalid);
    assert_eq!(
        d.rov_of_path(&net("192.0.2.0/24"), &set),
        RovState::NotFound
    );
    // IPv6.
    assert_eq!(d.rov(&net("2001:db8:1::/48"), Some(300)), RovState::Valid);
    assert_eq!(d.rov(&net("2001:db8:1::/49"), Some(300)), RovState::Invalid);
}

#[test]
fn duplicate_vrps_and_aspas_merge() {
    let d = data(
        &[("10.0.0.0/16", 16, 100), ("10.0.0.0/16", 16, 100)],
        &[(1, &[3, 2]), (1, &[2, 4])],
    );
    assert_eq!(d.vrp_count(), 1);
    assert_eq!(d.aspa_count(), 1);
    assert_eq!(d.providers(1), Some(&[2, 3, 4][..]));
    assert_eq!(d.providers(2), None);
}

fn path(asns: &[u32]) -> AsPath {
    AsPath::from_asns(asns.iter().copied())
}

/// A small world: 10 and 20 are tier-1 peers; 11 and 12 are customers of 10; 21 is a customer
/// of 20; 111 is a customer of 11 and of 12 (multihomed). AS 5 is a customer of 12 without an
/// ASPA.
fn world() -> RpkiData {
    data(
        &[],
        &[
            (10, &[0]),
            (20, &[0]),
            (11, &[10]),
            (21, &[20]),
            (12, &[10]),
            (111, &[11, 12]),
        ],
    )
}

#[test]
fn aspa_upstream_verification() {
    let d = world();
    let up = AspaProcedure::Upstream;
    // Origin 111 up to 11 up to 10: every hop attested.
    assert_eq!(d.verify(&path(&[10, 11, 111]), up).state, AspaState::Valid);
    // Prepends collapse.
    assert_eq!(
        d.verify(&path(&[10, 10, 11, 111, 111, 111]), up).state,
        AspaState::Valid
    );
    // One AS: nothing to check.
    assert_eq!(d.verify(&path(&[111]), up).state, AspaState::Valid);
    // Origin 5 has no ASPA: 5 -> 12 is not known, 12 -> 10 is attested.
    assert_eq!(d.verify(&path(&[10, 12, 5]), up).state, AspaState::Unknown);
    // 11 gives 111's route to 10's peer 20 without 20 being its provider: a leak.
    let v = d.verify(&path(&[20, 11, 111]), up);
    assert_eq!(v.state, AspaState::Invalid);
    assert_eq!(v.leaker, Some(20));
    // Down then up: 10 -> 11 is down (11's ASPA names only 10 as provider... of 11) so the
    // upstream procedure rejects anything that went over the top.
    assert_eq!(
        d.verify(&path(&[21, 20, 10, 11, 111]), up).state,
        AspaState::Invalid
    );
}

#[test]
fn aspa_downstream_verification() {
    let d = world();
    let down = AspaProcedure::Downstream;
    // Up 111 -> 11 -> 10, across to peer 20, down to 21: valley-free.
    assert_eq!(
        d.verify(&path(&[21, 20, 10, 11, 111]), down).state,
        AspaState::Valid
    );
    // With prepends.
    assert_eq!(
        d.verify(&path(&[21, 21, 20, 10, 10, 11, 111, 111]), down)
            .state,
        AspaState::Valid
    );
    // A valley: 111 hears 11's route... multihomed 111 leaks the route of 21 learned from
    // provider 11 to its other provider 12: origin 21, up to 20, across to 10, down to 11,
    // down to 111, up to 12, and the collector hears it from 12.
    let v = d.verify(&path(&[12, 111, 11, 10, 20, 21]), down);
    assert_eq!(v.state, AspaState::Invalid);
    assert_eq!(v.leaker, Some(111));
    // Unknown: origin 5 has no ASPA, so whether 12 is its provider is not known.
    assert_eq!(
        d.verify(&path(&[10, 12, 5]), down).state,
        AspaState::Unknown
    );
    // Without 12's ASPA the leak above cannot be proven: 12 might be 111's customer.
    let partial = data(
        &[],
        &[
            (10, &[0]),
            (20, &[0]),
            (11, &[10]),
            (21, &[20]),
            (111, &[11, 12]),
        ],
    );
    assert_eq!(
        partial
            .verify(&path(&[12, 111, 11, 10, 20, 21]), down)
            .state,
        AspaState::Unknown
    );
    // The upstream-valid path is downstream-valid too.
    assert_eq!(
        d.verify(&path(&[10, 11, 111]), down).state,
        AspaState::Valid
    );
}

#[test]
fn aspa_paths_with_sets_or_nothing_are_unverifiable() {
    let d = world();
    for proc_ in [AspaProcedure::Upstream, AspaProcedure::Downstream] {
        let p = AsPath::from(vec![
            PathElem::Asn(10),
            PathElem::Asn(11),
            PathElem::Set(vec![111, 112].into()),
        ]);
        assert_eq!(d.verify(&p, proc_).state, AspaState::Unverifiable);
        assert_eq!(
            d.verify(&AsPath::default(), proc_).state,
            AspaState::Unverifiable
        );
    }
}

#[test]
fn hostile_paths_do_not_panic() {
    let d = world();
    let long: Vec<u32> = (0..10_000).map(|i| i % 7 + 10).collect();
    for proc_ in [AspaProcedure::Upstream, AspaProcedure::Downstream] {
        let _ = d.verify(&path(&long), proc_);
        let _ = d.verify(&path(&[u32::MAX, 0, u32::MAX]), proc_);
    }
}

#[test]
fn loading_merges_files_and_takes_the_oldest_generation_time() {
    let (d, files) =
        load_files(&[fixture("routinator.json"), fixture("rpki-client.json")]).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0].vrps, 5);
    assert_eq!(files[1].aspas, 3);
    // 84.205.64.0/19 and 202.134.144.0/20 appear in both files; AS0 only in one.
    assert_eq!(d.vrp_count(), 6);
    assert_eq!(d.aspa_count(), 3);
    assert_eq!(d.generated, Some(1470931121));
    let e = load_files(&[fixture("no-such-file.json")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot read"), "{e}");
}
