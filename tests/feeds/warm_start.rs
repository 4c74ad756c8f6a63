//! Warm start against loopback stand-ins of RIPEstat and the bgproutes.io REST API that speak
//! their wire formats, with answers computed from the real RIS data in `../shared/data`:
//! the state of 202.134.148.0/22 (its more-specific 202.134.148.0/24) and the RIS beacons two
//! minutes into `ris-updates.20160811.1600.gz`, after AS58678's hijack of the /24 was over.
//!
//! Longer than most test files: the two services' answers are computed here from the data, and
//! the tests share them (split, each part would carry its own copy).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use bgpsentry::event::{AsPath, Community, FeedEvent, PathElem, RouteChange, Timestamp};
use bgpsentry::feeds::mrt::MrtReader;
use ipnet::IpNet;
use serde_json::{Value, json};

use crate::util::feeds::{Cmd, LiveManager, WsServer, bgp_announce, ris_announce};
use crate::util::history::{Answer, HttpServer, Proxy, Request};
use crate::util::{Launch, Service, poll_until_async, shared_data};

/// The prefix of the real data's hijack: AS18196's, announced by AS58678 for a minute.
const WATCHED: &str = "202.134.148.0/24";
/// The block it belongs to: the bgproutes test watches it and asks for its more-specifics.
const BLOCK: &str = "202.134.148.0/22";
/// The prefixes a `ris_live` feed watching [`WATCHED`] subscribes to: it and the RIS beacons.
const SUBSCRIBED: [&str; 3] = [WATCHED, "84.205.64.0/20", "2001:7fb:fe00::/44"];

/// One route of the real data.
#[derive(Debug, Clone)]
struct Route {
    peer_asn: u32,
    path: AsPath,
    communities: Vec<Community>,
}

/// Routes by (peer address, prefix).
type Rib = BTreeMap<(IpAddr, IpNet), Route>;

/// Every event of the file, its VPs named as RIS collector rrc00.
fn data_events() -> Vec<FeedEvent> {
    let path = shared_data("mrt/ris-updates.20160811.1600.gz");
    let mut reader = MrtReader::open(&path, "mrt", Some("rrc00")).unwrap();
    let mut out = Vec::new();
    let mut batch = Vec::new();
    while let Some(r) = reader.next_record(&mut batch) {
        let _ = r;
        out.append(&mut batch);
    }
    out
}

fn time_of(ev: &FeedEvent) -> Timestamp {
    match ev {
        FeedEvent::Route(r) => r.timestamp,
        FeedEvent::PeerDown { timestamp, .. } => *timestamp,
        FeedEvent::Loaded(s) => s.timestamp,
        FeedEvent::HandOver(h) => h.timestamp,
    }
}

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|p| p.parse().unwrap()).collect()
}

/// The routes under `under` after every event before `until`, of the peers whose paths start
/// with their own ASN (RIPEstat names a peer by address; its ASN is the path's first).
fn state(events: &[FeedEvent], until: Timestamp, under: &[IpNet]) -> Rib {
    let mut rib = Rib::new();
    for ev in events.iter().filter(|e| time_of(e) < until) {
        match ev {
            FeedEvent::Route(r) if under.iter().any(|u| u.contains(&r.prefix)) => {
                let key = (r.vp.peer_ip, r.prefix);
                match &r.change {
                    RouteChange::Announce(a) => {
                        rib.insert(
                            key,
                            Route {
                                peer_asn: r.vp.peer_asn,
                                path: a.path.clone(),
                                communities: a.communities.to_vec(),
                            },
                        );
                    }
                    RouteChange::Withdraw => {
                        rib.remove(&key);
                    }
                }
            }
            FeedEvent::PeerDown { vp, .. } => rib.retain(|(ip, _), _| *ip != vp.peer_ip),
            _ => {}
        }
    }
    rib.retain(|_, r| r.path.first() == Some(&PathElem::Asn(r.peer_asn)));
    rib
}

fn path_json(p: &AsPath) -> Value {
    Value::Array(
        p.iter()
            .map(|e| match e {
                PathElem::Asn(a) => json!(a),
                PathElem::Set(s) => json!(s.to_vec()),
            })
            .collect(),
    )
}

/// The ASNs of a path's sequence (RIS Live frames carry sets as nested lists; the test paths
/// have none).
fn asns(path: &AsPath) -> Vec<u32> {
    path.iter()
        .filter_map(|e| match e {
            PathElem::Asn(a) => Some(*a),
            PathElem::Set(_) => None,
        })
        .collect()
}

fn covered(resources: &[IpNet], prefix: &IpNet) -> bool {
    resources.iter().any(|r| r.contains(prefix))
}

/// RIPEstat's `bgp-state` answer for the `resource` list of `req`.
fn ripestat_answer(rib: &Rib, req: &Request, query_time: Timestamp) -> Answer {
    let resources: Vec<IpNet> = req
        .query("resource")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| p.parse().ok())
        .collect();
    let entries: Vec<Value> = rib
        .iter()
        .filter(|((_, p), _)| covered(&resources, p))
        .map(|((ip, p), r)| {
            json!({
                "target_prefix": p.to_string(),
                "path": path_json(&r.path),
                "community": r.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "source_id": format!("00-{ip}"),
            })
        })
        .collect();
    let qt = chrono::DateTime::from_timestamp(query_time.secs(), 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    Answer::json(
        json!({
            "messages": [], "see_also": [], "version": "1.3", "data_call_name": "bgp-state",
            "data_call_status": "supported", "cached": false,
            "data": {
                "bgp_state": entries, "resource": req.query("resource"),
                "query_starttime": qt, "query_endtime": qt, "query_time": qt,
                "nr_routes": entries.len(),
            },
            "query_id": "x", "process_time": 1, "server_id": "app", "build_version": "x",
            "status": "ok", "status_code": 200, "time": qt,
        })
        .to_string(),
    )
}

fn ris_withdraw(peer: IpAddr, peer_asn: u32, prefix: &str, ts: f64) -> String {
    json!({
        "type": "ris_message",
        "data": {
            "timestamp": ts, "peer": peer.to_string(), "peer_asn": peer_asn.to_string(),
            "id": "x", "host": "rrc00.ripe.net", "type": "UPDATE",
            "path": [], "community": [], "announcements": [], "withdrawals": [prefix]
        }
    })
    .to_string()
}

/// Acknowledges the subscriptions of a fresh RIS Live connection.
async fn acknowledge(conn: &mut crate::util::feeds::Conn, n: usize) {
    for _ in 0..n {
        let frame: Value = serde_json::from_str(&conn.recv().await).unwrap();
        assert_eq!(frame["type"], "ris_subscribe");
        conn.send(r#"{"type":"ris_subscribe_ok","data":{"subscription":{}}}"#);
    }
}

async fn ready(svc: &Service) -> Value {
    poll_until_async("/readyz 200", 60, || async {
        let (status, body) = svc.get("/readyz").await;
        (status == 200).then(|| serde_json::from_str(&body).unwrap())
    })
    .await
}

struct Fixture {
    events: Vec<FeedEvent>,
    cut: Timestamp,
    rib: Rib,
}

/// The data two minutes into the file.
fn fixture() -> Fixture {
    let events = data_events();
    let start = events.iter().map(time_of).min().unwrap();
    let cut = start.plus_secs(120);
    let rib = state(&events, cut, &nets(&SUBSCRIBED));
    Fixture { events, cut, rib }
}

impl Fixture {
    /// Peers with a route to exactly `prefix`.
    fn peers_of(&self, prefix: &str) -> Vec<(IpAddr, u32)> {
        let p: IpNet = prefix.parse().unwrap();
        self.rib
            .iter()
            .filter(|((_, q), _)| *q == p)
            .map(|((ip, _), r)| (*ip, r.peer_asn))
            .collect()
    }

    /// Origins of the routes to `prefix` and its more-specifics.
    fn origins_under(&self, prefix: &str) -> BTreeSet<u32> {
        let p: IpNet = prefix.parse().unwrap();
        self.rib
            .iter()
            .filter(|((_, q), _)| p.contains(q))
            .flat_map(|(_, r)| r.path.origins().to_vec())
            .collect()
    }

    fn vantage_points(&self) -> usize {
        self.rib
            .keys()
            .map(|(ip, _)| ip)
            .collect::<BTreeSet<_>>()
            .len()
    }
}

fn csv(s: &BTreeSet<u32>) -> String {
    s.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread")]
async fn loaded_state_comes_before_held_live_events_and_its_loss_raises_visibility_loss() {
    let fx = fixture();
    let peers = fx.peers_of(WATCHED);
    assert!(
        peers.len() >= 3,
        "the data has {} VPs on {WATCHED}",
        peers.len()
    );
    let (rib, cut) = (fx.rib.clone(), fx.cut);
    let ripestat = HttpServer::start_held(move |req| ripestat_answer(&rib, req, cut)).await;
    let mut ws = WsServer::start().await;
    // Fewer than all-but-one VPs is a loss: one withdrawal is not, two are.
    let threshold = peers.len() - 1;
    let cfg = format!(
        "prefixes:\n  - prefix: {WATCHED}\n    origins: [{}]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: {threshold}\n    hold_downs:\n      visibility_loss: {{for_seconds: 0, keep_firing_for_seconds: 0}}\nfeeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    warm_start:\n      url: {}\n",
        csv(&fx.origins_under(WATCHED)),
        ws.addr,
        ripestat.url()
    );
    let svc = Service::start_yaml(&cfg).await;
    let mut conn = ws.accept(20).await;
    acknowledge(&mut conn, SUBSCRIBED.len()).await;

    // Connected, but the state is not loaded yet: not ready, and the status says why.
    let v = poll_until_async("connected, warm start loading", 30, || async {
        let v = svc.json("/readyz").await;
        (v["feeds"]["ris_live"]["connected"] == true).then_some(v)
    })
    .await;
    assert_eq!(v["ready"], false, "{v}");
    assert_eq!(
        v["feeds"]["ris_live"]["warm_start"]["state"], "loading",
        "{v}"
    );
    assert_eq!(svc.get("/readyz").await.0, 503);
    let reqs = poll_until_async("the RIPEstat request", 30, || async {
        let r = ripestat.requests();
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(reqs.len(), 1, "one batched request: {reqs:?}");
    assert_eq!(reqs[0].path(), "/data/bgp-state/data.json");
    let mut asked: Vec<String> = reqs[0]
        .query("resource")
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    asked.sort();
    let mut expected: Vec<String> = SUBSCRIBED.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(asked, expected);

    // A withdrawal on the stream while the state loads is held, then applied after it.
    let t = cut.as_secs_f64();
    conn.send(&ris_withdraw(peers[0].0, peers[0].1, WATCHED, t + 10.0));
    ripestat.release();
    let v = ready(&svc).await;
    assert_eq!(v["feeds"]["ris_live"]["warm_start"]["state"], "done", "{v}");
    let series = format!("bgpsentry_prefix_vantage_points{{prefix=\"{WATCHED}\"}}");
    let seen = poll_until_async("the state less the held withdrawal", 30, || async {
        svc.metric(&series).await.filter(|v| *v == threshold as f64)
    })
    .await;
    assert_eq!(seen, threshold as f64);
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_routes_loaded{feed="ris_live"}"#)
            .await,
        Some(fx.rib.len() as f64)
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_vantage_points_loaded{feed="ris_live"}"#)
            .await,
        Some(fx.vantage_points() as f64)
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_runs_total{feed="ris_live",result="ok"}"#)
            .await,
        Some(1.0)
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_pending{feed="ris_live"}"#)
            .await,
        Some(0.0)
    );
    assert!(svc.alerts().await.is_empty(), "{:?}", svc.alerts().await);
    let log = svc.log_text();
    assert!(log.contains("warm start done"), "{log}");
    let (_, page) = svc.get("/").await;
    assert!(page.contains("warm start done"), "{page}");

    // One more VP withdraws: fewer than the threshold carry the prefix.
    conn.send(&ris_withdraw(peers[1].0, peers[1].1, WATCHED, t + 20.0));
    let alert = poll_until_async("visibility_loss", 30, || async {
        svc.alerts()
            .await
            .into_iter()
            .find(|a| a["rule"] == "visibility_loss")
    })
    .await;
    assert_eq!(alert["prefix"], WATCHED, "{alert}");
    assert_eq!(svc.alerts().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn learning_mode_learns_the_loaded_origin_and_the_hijackers_first_update_alerts() {
    let fx = fixture();
    let learned: BTreeSet<u32> = fx
        .rib
        .iter()
        .filter(|((_, p), _)| p.to_string() == WATCHED)
        .flat_map(|(_, r)| r.path.origins().to_vec())
        .collect();
    assert_eq!(
        learned,
        BTreeSet::from([18196]),
        "the data's origin of {WATCHED}"
    );
    // The hijacker: the data's real announcement of a /24 of it by AS58678, made into one of
    // the /22 itself by the same peer.
    let hijack = fx
        .events
        .iter()
        .find_map(|e| match e {
            FeedEvent::Route(r) => match &r.change {
                RouteChange::Announce(a)
                    if a.path.origins() == [58678]
                        && WATCHED.parse::<IpNet>().unwrap().contains(&r.prefix) =>
                {
                    Some((r.vp.clone(), a.path.clone()))
                }
                _ => None,
            },
            _ => None,
        })
        .expect("the data has AS58678 under the /22");
    let (rib, cut) = (fx.rib.clone(), fx.cut);
    let ripestat = HttpServer::start(move |req| ripestat_answer(&rib, req, cut)).await;
    let mut ws = WsServer::start().await;
    let cfg = format!(
        "prefixes:\n  - prefix: {WATCHED}\n    upstreams: []\n    more_specifics: ignore\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    beacons: []\n    warm_start:\n      url: {}\n",
        ws.addr,
        ripestat.url()
    );
    let svc = Service::start_yaml(&cfg).await;
    let mut conn = ws.accept(20).await;
    acknowledge(&mut conn, 1).await;
    ready(&svc).await;
    // The engine holds the state when /readyz says ready; the API's views follow within 100 ms.
    let b = poll_until_async("the learned baseline", 30, || async {
        svc.json("/baselines").await["baselines"]
            .as_array()?
            .iter()
            .find(|b| b["prefix"] == WATCHED && b["origins"] != json!([]))
            .cloned()
    })
    .await;
    assert_eq!(b["origins"], json!([18196]), "{b}");
    assert_eq!(b["origins_source"], "learned", "{b}");

    let path = asns(&hijack.1);
    let peer = hijack.0.peer_ip.to_string();
    conn.send(&ris_announce(
        &peer,
        hijack.0.peer_asn,
        &path,
        WATCHED,
        cut.as_secs_f64() + 30.0,
    ));
    let alert = poll_until_async("origin_change", 30, || async {
        svc.alerts()
            .await
            .into_iter()
            .find(|a| a["rule"] == "origin_change")
    })
    .await;
    assert_eq!(alert["origin"], 58678, "{alert}");
    assert_eq!(svc.alerts().await.len(), 1, "{:?}", svc.alerts().await);
}

/// A stand-in of the bgproutes.io REST API over `rib` (VP ids in address order) and `updates`.
fn bgproutes_answer(
    peers: &[(IpAddr, u32)],
    rib: &Rib,
    updates: &[(usize, i64, &'static str, String, String)],
    req: &Request,
) -> Answer {
    if req.header("x-api-key") != Some(KEY) {
        return Answer::status(401, "{\"detail\":\"Invalid API key\"}");
    }
    let envelope =
        |data: Value| Answer::json(json!({"seconds": 0.01, "bytes": 1, "data": data}).to_string());
    let id_of = |ip: &IpAddr| peers.iter().position(|(p, _)| p == ip).unwrap() + 1;
    let filter: Vec<IpNet> = req
        .query("prefix_filter")
        .unwrap_or_default()
        .split(',')
        .filter_map(|f| f.strip_prefix("<<:")?.parse().ok())
        .collect();
    let date = |k: &str| {
        chrono::NaiveDateTime::parse_from_str(
            &req.query(k).unwrap_or_default(),
            "%Y-%m-%dT%H:%M:%S",
        )
        .map(|d| d.and_utc().timestamp())
    };
    match req.path() {
        "/v1/vantage_points" => envelope(json!({
            "bgp": peers.iter().enumerate().map(|(i, (ip, asn))| json!({
                "id": i + 1, "ip": ip.to_string(), "asn": asn, "is_active": true, "source": "ris",
                "rib_size_v4": 1, "rib_size_v6": 0, "country": "NL"
            })).collect::<Vec<_>>(),
            "bmp": []
        })),
        "/v1/rib" => {
            let mut bgp = serde_json::Map::new();
            for ((ip, p), r) in rib.iter().filter(|((_, p), _)| covered(&filter, p)) {
                let entry = bgp
                    .entry(id_of(ip).to_string())
                    .or_insert_with(|| json!({}));
                let communities: Vec<String> =
                    r.communities.iter().map(|c| c.to_string()).collect();
                entry[p.to_string()] =
                    json!([r.path.to_string(), communities.join(" "), null, null, -1]);
            }
            envelope(json!({"bgp": bgp, "bmp": {}}))
        }
        "/v1/updates" => {
            let (Ok(start), Ok(end)) = (date("start_date"), date("end_date")) else {
                return Answer::status(400, "{\"detail\":\"start_date and end_date\"}");
            };
            let mut bgp = serde_json::Map::new();
            for (id, ts, kind, prefix, path) in updates {
                if *ts >= start && *ts <= end && covered(&filter, &prefix.parse().unwrap()) {
                    let list = bgp.entry(id.to_string()).or_insert_with(|| json!([]));
                    list.as_array_mut()
                        .unwrap()
                        .push(json!([ts, kind, prefix, path, "", null, null, -1]));
                }
            }
            envelope(json!({"bgp": bgp, "bmp": {}}))
        }
        _ => Answer::status(404, "{\"detail\":\"Not Found\"}"),
    }
}

const KEY: &str = "warm-start-test-key";

#[tokio::test(flavor = "multi_thread")]
async fn a_bgproutes_outage_is_filled_from_the_updates_api_without_false_or_lost_alerts() {
    let fx = fixture();
    let block: IpNet = BLOCK.parse().unwrap();
    // AS58678's first announcement under the block: it happens again while the stream is down.
    let first_hijack = fx
        .events
        .iter()
        .find_map(|e| match e {
            FeedEvent::Route(r) => match &r.change {
                RouteChange::Announce(a)
                    if a.path.origins() == [58678] && block.contains(&r.prefix) =>
                {
                    Some(r.clone())
                }
                _ => None,
            },
            _ => None,
        })
        .expect("the data has AS58678 under the /22");
    let rib = state(&fx.events, fx.cut, &[block]);
    let origins: BTreeSet<u32> = rib
        .values()
        .flat_map(|r| r.path.origins().to_vec())
        .collect();
    assert!(
        !origins.contains(&58678) && !origins.is_empty(),
        "{origins:?}"
    );
    let mut peers: Vec<(IpAddr, u32)> = fx
        .events
        .iter()
        .filter_map(|e| match e {
            FeedEvent::Route(r) => Some((r.vp.peer_ip, r.vp.peer_asn)),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    peers.dedup_by_key(|p| p.0);
    let id = |ip: IpAddr| peers.iter().position(|(p, _)| *p == ip).unwrap() + 1;
    // Times now: the live event two minutes ago, the outage's updates one minute ago.
    let now = Timestamp::now().secs();
    let live_at = now - 120;
    let (legit_ip, legit_prefix, legit) = rib
        .iter()
        .next()
        .map(|((ip, p), r)| (*ip, p.to_string(), r.clone()))
        .expect("a VP routes the /22 or a more-specific");
    let RouteChange::Announce(h) = &first_hijack.change else {
        unreachable!()
    };
    let updates = vec![
        // The same route again from a VP (path exploration): no alert.
        (
            id(legit_ip),
            now - 61,
            "A",
            legit_prefix.clone(),
            legit.path.to_string(),
        ),
        // The hijack, while the stream was down.
        (
            id(first_hijack.vp.peer_ip),
            now - 60,
            "A",
            first_hijack.prefix.to_string(),
            h.path.to_string(),
        ),
        // Before the live event: already known, must not be applied again.
        (
            id(legit_ip),
            now - 600,
            "W",
            legit_prefix.clone(),
            String::new(),
        ),
    ];
    let (p2, r2, u2) = (peers.clone(), rib.clone(), updates.clone());
    let api = HttpServer::start(move |req| bgproutes_answer(&p2, &r2, &u2, req)).await;
    let manager = LiveManager::start(200, "ok").await;
    let mut ws = WsServer::start().await;
    let cfg = format!(
        "prefixes:\n  - prefix: {BLOCK}\n    origins: [{}]\n    upstreams: []\n    more_specifics: ignore\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: bgproutes\n    url: ws://{}\n    live_manager_url: {}\n    warm_start:\n      url: {}\n      gap_seconds: 0.001\n",
        csv(&origins),
        ws.addr,
        manager.url,
        api.url()
    );
    let svc = Launch::yaml(&cfg)
        .log("bgpsentry=debug")
        .envs(&[("BGP_API_KEY", KEY)])
        .start_async()
        .await;
    let conn = ws.accept(20).await;
    ready(&svc).await;
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_routes_loaded{feed="bgproutes"}"#)
            .await,
        Some(rib.len() as f64)
    );
    let reqs = api.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path()).collect();
    assert_eq!(paths, ["/v1/vantage_points", "/v1/rib"]);
    assert_eq!(
        reqs[1].query("prefix_filter").as_deref(),
        Some("<<:202.134.148.0/22")
    );
    assert!(reqs.iter().all(|r| r.header("x-api-key") == Some(KEY)));
    assert!(!svc.log_text().contains(KEY));

    // A live announcement, then the stream drops; the hijack happens while it is down.
    let vp = format!("{}_{}", legit.peer_asn, legit_ip);
    conn.send(&bgp_announce(
        &vp,
        &legit.path.to_string(),
        &legit_prefix,
        live_at,
    ));
    let announced = rib.len() as f64 + 1.0;
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="bgproutes",type="announce"}"#,
        announced,
    )
    .await;
    assert!(svc.alerts().await.is_empty(), "{:?}", svc.alerts().await);
    conn.to_client.send(Cmd::Drop).unwrap();
    let _again = ws.accept(30).await;
    let alert = poll_until_async("the hijack from the updates API", 30, || async {
        svc.alerts().await.into_iter().next()
    })
    .await;
    assert_eq!(alert["rule"], "subprefix_hijack", "{alert}");
    assert_eq!(alert["origin"], 58678, "{alert}");
    let upd = api
        .requests()
        .into_iter()
        .find(|r| r.path() == "/v1/updates")
        .expect("the gap asked for");
    let since = chrono::DateTime::from_timestamp(live_at, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    assert_eq!(upd.query("start_date"), Some(since));
    svc.wait_metric(
        r#"bgpsentry_warm_start_runs_total{feed="bgproutes",result="ok"}"#,
        2.0,
    )
    .await;
    // Both updates in the gap applied, the old withdrawal not.
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="bgproutes",type="announce"}"#,
        announced + 2.0,
    )
    .await;
    assert_eq!(
        svc.metric(r#"bgpsentry_route_events_total{feed="bgproutes",type="withdraw"}"#)
            .await,
        Some(0.0)
    );
    assert_eq!(svc.alerts().await.len(), 1, "{:?}", svc.alerts().await);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_failure_is_logged_counted_and_retried_while_the_live_feed_runs_cold() {
    let fx = fixture();
    let (rib, cut) = (fx.rib.clone(), fx.cut);
    let attempt = std::sync::atomic::AtomicUsize::new(0);
    let good_len = std::sync::Mutex::new(0usize);
    let ripestat = HttpServer::start(move |req| {
        let good = ripestat_answer(&rib, req, cut);
        *good_len.lock().unwrap() = good.body.len();
        match attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => Answer::status(401, "unauthorized"),
            1 => Answer {
                headers: vec![("Retry-After".into(), "1".into())],
                ..Answer::status(429, "slow down")
            },
            2 => Answer::status(500, "internal error"),
            3 => Answer::json("{\"data\": {\"bgp_state\": [{\"target_prefix\": 1,,}"),
            4 => Answer {
                cut_after: Some(good.body.len() / 2),
                ..good
            },
            5 => Answer::json(format!(
                "{{\"data\":{{\"bgp_state\":[],\"pad\":\"{}\"}}}}",
                "x".repeat(300_000)
            )),
            _ => good,
        }
    })
    .await;
    let mut ws = WsServer::start().await;
    let cfg = format!(
        "prefixes:\n  - prefix: {WATCHED}\n    origins: [{}]\n    upstreams: []\n    more_specifics: ignore\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    warm_start:\n      url: {}\n      retry_max_seconds: 1\n      max_response_bytes: 262144\n",
        csv(&fx.origins_under(WATCHED)),
        ws.addr,
        ripestat.url()
    );
    let svc = Service::start_yaml(&cfg).await;
    let mut conn = ws.accept(20).await;
    acknowledge(&mut conn, SUBSCRIBED.len()).await;
    // While it fails, the service is up and not ready, and says so.
    let v = poll_until_async("a failure reported", 30, || async {
        let v = svc.json("/readyz").await;
        (v["feeds"]["ris_live"]["warm_start"]["failures"].as_u64() >= Some(1)).then_some(v)
    })
    .await;
    assert_eq!(v["ready"], false, "{v}");
    // Live events flow meanwhile (cold).
    let (ip, asn) = fx.peers_of(WATCHED)[0];
    let path = asns(&fx.rib[&(ip, WATCHED.parse().unwrap())].path);
    conn.send(&ris_announce(
        &ip.to_string(),
        asn,
        &path,
        WATCHED,
        cut.as_secs_f64() + 5.0,
    ));
    ready(&svc).await;
    for result in [
        "unauthorized",
        "rate_limited",
        "server_error",
        "malformed",
        "truncated",
        "oversized",
        "ok",
    ] {
        let series =
            format!("bgpsentry_warm_start_runs_total{{feed=\"ris_live\",result=\"{result}\"}}");
        assert_eq!(svc.metric(&series).await, Some(1.0), "{series}");
    }
    let log = svc.log_text();
    for needle in [
        "HTTP 401",
        "HTTP 429",
        "HTTP 500",
        "not the expected JSON",
        "over the limit",
    ] {
        assert!(log.contains(needle), "no `{needle}` in the log:\n{log}");
    }
    assert!(
        log.contains("broke off") || log.contains("ended after"),
        "{log}"
    );
    assert_eq!(
        svc.metric(r#"bgpsentry_warm_start_routes_loaded{feed="ris_live"}"#)
            .await,
        Some(fx.rib.len() as f64)
    );
    // The live announcement arrived too. Its VP's loaded route counts as an announcement only
    // when the live one came after the state: one sent while the feed ran cold is newer than
    // the state, which then leaves that VP's route alone.
    svc.wait_metric(
        r#"bgpsentry_feed_messages_total{feed="ris_live",type="update"}"#,
        1.0,
    )
    .await;
    svc.wait_metric(
        r#"bgpsentry_route_events_total{feed="ris_live",type="announce"}"#,
        fx.rib.len() as f64,
    )
    .await;
    let series = format!("bgpsentry_prefix_vantage_points{{prefix=\"{WATCHED}\"}}");
    let peers = fx.peers_of(WATCHED).len() as f64;
    poll_until_async("every VP of the state", 30, || async {
        svc.metric(&series).await.filter(|v| *v == peers)
    })
    .await;
    assert!(
        svc.proc
            .lines()
            .iter()
            .any(|l| l.contains("warm start failed, running cold"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_carries_the_websocket_the_warm_start_and_the_notifier() {
    let fx = fixture();
    let (rib, cut) = (fx.rib.clone(), fx.cut);
    let ripestat = HttpServer::start(move |req| ripestat_answer(&rib, req, cut)).await;
    for by_env in [false, true] {
        let proxy = Proxy::start().await;
        let mut ws = WsServer::start().await;
        let hook = crate::util::notify::Receiver::start(Vec::new()).await;
        let proxy_key = if by_env {
            String::new()
        } else {
            format!("proxy:\n  url: {}\n", proxy.url())
        };
        let cfg = format!(
            "{proxy_key}prefixes:\n  - prefix: {WATCHED}\n    origins: [{}]\n    upstreams: []\n    more_specifics: ignore\n    min_vantage_points: 1\n    visibility_min_vantage_points: 0\nfeeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    warm_start:\n      url: {}\nnotify:\n  group_window_seconds: 0\n  channels:\n    - name: hook\n      kind: webhook\n      url: {}\n",
            csv(&fx.origins_under(WATCHED)),
            ws.addr,
            ripestat.url(),
            hook.url()
        );
        let mut launch = Launch::yaml(&cfg).log("bgpsentry=debug");
        if by_env {
            launch = launch.envs(&[
                ("HTTP_PROXY", &proxy.url()),
                ("NO_PROXY", "example.invalid"),
            ]);
        }
        let svc = launch.start_async().await;
        let mut conn = ws.accept(20).await;
        acknowledge(&mut conn, SUBSCRIBED.len()).await;
        ready(&svc).await;
        let seen = proxy.seen();
        assert!(
            seen.iter()
                .any(|l| l == &format!("CONNECT {} HTTP/1.1", ws.addr)),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|l| l.starts_with(&format!(
                "GET {}/data/bgp-state/data.json?resource=",
                ripestat.url()
            ))),
            "{seen:?}"
        );
        // A hijack on the stream: its notification goes through the proxy too.
        conn.send(&ris_announce(
            "192.0.2.1",
            64501,
            &[64501, 64666],
            WATCHED,
            cut.as_secs_f64() + 10.0,
        ));
        hook.wait_count(1).await;
        let seen = proxy.seen();
        assert!(
            seen.iter()
                .any(|l| l == &format!("POST {} HTTP/1.1", hook.url())),
            "{seen:?}"
        );
    }
    // NO_PROXY sends both past the proxy.
    let proxy = Proxy::start().await;
    let mut ws = WsServer::start().await;
    let cfg = format!(
        "prefixes:\n  - prefix: {WATCHED}\n    origins: [{}]\nfeeds:\n  - kind: ris_live\n    url: ws://{}/v1/ws/\n    warm_start:\n      url: {}\n",
        csv(&fx.origins_under(WATCHED)),
        ws.addr,
        ripestat.url()
    );
    let svc = Launch::yaml(&cfg)
        .envs(&[("HTTP_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")])
        .start_async()
        .await;
    let mut conn = ws.accept(20).await;
    acknowledge(&mut conn, SUBSCRIBED.len()).await;
    ready(&svc).await;
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
}

#[test]
fn check_knows_the_warm_start_and_proxy_keys() {
    let ok = "prefixes:\n  - prefix: 192.0.2.0/24\n    origins: [64500]\nproxy:\n  url: http://proxy.example:3128\n  no_proxy: [localhost]\nfeeds:\n  - kind: ris_live\n    warm_start:\n      url: https://stat.ripe.net\n      gap_seconds: 300\n      timeout_seconds: 60\n      max_response_bytes: 1048576\n      retry_max_seconds: 600\n      buffer_events: 1000\n      ready_timeout_seconds: 120\n      batch_prefixes: 20\n  - kind: bgproutes\n    name: b\n    optional: true\n    warm_start: false\n";
    let (_dir, path) = crate::util::write_config(ok);
    let out = crate::util::check_config(&path);
    assert!(out.status.success(), "{out:?}");
    for (bad, needle) in [
        (
            "feeds:\n  - kind: ris_live\n    warm_start:\n      gap_secs: 1\n",
            "gap_secs",
        ),
        (
            "feeds:\n  - kind: ris_live\n    warm_start:\n      url: ftp://x\n",
            "warm_start.url",
        ),
        (
            "feeds:\n  - kind: ris_live\n    warm_start:\n      gap_seconds: -1\n",
            "warm_start.gap_seconds",
        ),
        (
            "feeds:\n  - kind: mrt\n    files: [x]\n    warm_start: false\n",
            "`warm_start` does not apply",
        ),
        ("proxy:\n  url: socks5://x\n", "proxy.url"),
    ] {
        let (_dir, path) = crate::util::write_config(bad);
        let out = crate::util::check_config(&path);
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{bad}");
        assert!(text.contains(needle), "{bad}: {text}");
        assert!(text.contains("bgpsentry.yml:"), "{text}");
    }
}
