use std::collections::HashMap;
use std::path::{Path, PathBuf};
use bgpsentry::alerts::{AlertTransition, TransitionKind};
use bgpsentry::config::Config;
use bgpsentry::event::{FeedEvent, RouteChange};
use bgpsentry::feeds::mrt::{BadRecord, MrtReader};
use bgpsentry::replay::ReplaySink;

struct Sink(Vec<AlertTransition>);
impl ReplaySink for Sink {
    fn transition(&mut self, t: &AlertTransition) { self.0.push(t.clone()); }
    fn bad_record(&mut self, _b: &BadRecord) {}
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let file = PathBuf::from(&args[1]);
    let n: usize = args[2].parse().unwrap();
    let mut reader = MrtReader::open(&file, "mrt", None).unwrap();
    let mut counts: HashMap<ipnet::IpNet, (u64, u32)> = HashMap::new();
    let mut batch = Vec::new();
    while let Some(_r) = reader.next_record(&mut batch) {
        for ev in batch.drain(..) {
            if let FeedEvent::Route(r) = ev {
                if let RouteChange::Announce(a) = &r.change {
                    let e = counts.entry(r.prefix).or_insert((0, a.path.origins().first().copied().unwrap_or(0)));
                    e.0 += 1;
                }
            }
        }
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    v.truncate(n);
    let mode = args.get(3).map(String::as_str).unwrap_or("learn");
    if mode == "yaml" {
        println!("prefixes:");
        for (p, (_, o)) in &v { println!("  - prefix: {p}\n    origins: [{o}]"); }
        return;
    }
    for share in [50u32] {
    for window in [0u64, 30, 60, 120, 300, 600] {
        let mut y = String::from("prefixes:\n");
        for (p, (_, o)) in &v {
            if mode == "origins" { y += &format!("  - prefix: {p}\n    origins: [{o}]\n    learning_window_seconds: {window}\n    learning_min_share_percent: {share}\n"); }
            else { y += &format!("  - prefix: {p}\n    learning_window_seconds: {window}\n    learning_min_share_percent: {share}\n"); }
        }
        let cfg = Config::parse(&y, Path::new("m.yml")).unwrap();
        let mut sink = Sink(Vec::new());
        let files: Vec<PathBuf> = args[4..].iter().map(PathBuf::from).chain(std::iter::once(file.clone())).collect();
        let (_e, _s) = bgpsentry::replay::replay(&cfg.prefixes, None, &files, &mut sink).unwrap();
        let mut by_rule: HashMap<&str, (usize, std::collections::HashSet<ipnet::IpNet>)> = HashMap::new();
        for t in &sink.0 { if t.event == TransitionKind::Fired { let e = by_rule.entry(t.alert.rule.as_str()).or_default(); e.0 += 1; e.1.insert(t.alert.watched_prefix);} }
        let mut r: Vec<_> = by_rule.iter().map(|(k, (c, p))| format!("{k}={c}/{}", p.len())).collect();
        r.sort();
        println!("share {share} window {window}: {}", r.join(" "));
    }}
}
