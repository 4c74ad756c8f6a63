//! The BMP feed with real routers: gobgpd and FRR's bgpd monitor an eBGP peer (a second
//! gobgpd) that announces real routes from the RIS data set, then a real hijack of a watched
//! prefix; the real `bgpsentry run` listens for their BMP sessions. All on loopback.

use crate::util::daemons::{Frr, Gobgpd};
use crate::util::{Service, poll_until_async, shared_data};
use bgpsentry::event::{FeedEvent, PathElem, RouteChange};
use bgpsentry::feeds::mrt::MrtReader;

/// The watched prefix: AS18196's, hijacked by AS58678 in the 2016 RIS data.
const WATCHED: &str = "202.134.148.0/24";

/// A prefix and its AS path.
type Route = (String, Vec<u32>);

/// Real routes of the RIS file: up to `n` other IPv4 prefixes with plain AS paths, the watched
/// prefix's path from its rightful origin, and the hijacker's path.
fn real_routes(n: usize) -> (Vec<Route>, Vec<u32>, Vec<u32>) {
    let file = shared_data("mrt/ris-updates.20160811.1600.gz");
    let mut reader = MrtReader::open(&file, "data", None).unwrap();
    let (mut background, mut legit, mut hijack) = (Vec::new(), None, None);
    let mut events = Vec::new();
    while reader.next_record(&mut events).is_some() {
        for e in events.drain(..) {
            let FeedEvent::Route(r) = e else { continue };
            let RouteChange::Announce(a) = &r.change else {
                continue;
            };
            let Some(path) = a
                .path
                .iter()
                .map(|p| match p {
                    PathElem::Asn(a) => Some(*a),
                    PathElem::Set(_) => None,
                })
                .collect::<Option<Vec<u32>>>()
            else {
                continue;
            };
            let prefix = r.prefix.to_string();
            if prefix == WATCHED {
                match path.last() {
                    Some(18196) if legit.is_none() => legit = Some(path),
                    Some(58678) if hijack.is_none() => hijack = Some(path),
                    _ => {}
                }
            } else if r.prefix.addr().is_ipv4()
                && background.len() < n
                && !background.iter().any(|(p, _)| *p == prefix)
            {
                background.push((prefix, path));
            }
        }
        if background.len() >= n && legit.is_some() && hijack.is_some() {
            break;
        }
    }
    (background, legit.unwrap(), hijack.unwrap())
}

fn config(extra: &str) -> String {
    config_for("[127.0.0.1]", extra)
}

fn config_for(routers: &str, extra: &str) -> String {
    format!(
        "prefixes:
  - prefix: {WATCHED}
    origins: [18196]
    visibility_min_vantage_points: 2
    hold_downs: {{visibility_loss: {{for_seconds: 0, keep_firing_for_seconds: 0}}}}
feeds:
  - kind: bmp
    listen: 127.0.0.1:0
    routers: {routers}
{extra}"
    )
}

/// The port the BMP listener reported in the log.
fn bmp_port(svc: &Service) -> u16 {
    let line = svc.wait_log(30, "listening for BMP routers on ");
    let addr = line
        .split("listening for BMP routers on ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('"');
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn events_series(kind: &str) -> String {
    format!("bgpsentry_route_events_total{{feed=\"bmp\",type=\"{kind}\"}}")
}

/// Announces the real routes and waits until bgpsentry has them from both vantage points
/// (post-policy Adj-RIB-In and Loc-RIB).
async fn announce_real_routes(svc: &Service, injector: &Gobgpd, routes: &[Route]) {
    for (prefix, path) in routes {
        injector.announce(prefix, path);
    }
    svc.wait_metric(&events_series("announce"), 2.0 * routes.len() as f64)
        .await;
}

async fn alert_with_state(svc: &Service, state: &str) -> serde_json::Value {
    poll_until_async(&format!("a {state} origin_hijack"), 60, async || {
        let all = svc.json(&format!("/alerts?state={state}")).await;
        all["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["rule"] == "origin_hijack")
            .cloned()
    })
    .await
}

/// The hijack through a router's BMP feed: fires, then resolves when the route is withdrawn.
async fn hijack_fires_and_resolves(svc: &Service, injector: &Gobgpd) {
    let (background, legit, hijack) = real_routes(40);
    let mut routes = background;
    routes.push((WATCHED.to_string(), legit));
    announce_real_routes(svc, injector, &routes).await;
    assert!(svc.alerts().await.is_empty(), "{:?}", svc.alerts().await);

    injector.announce(WATCHED, &hijack);
    let alert = alert_with_state(svc, "firing").await;
    assert_eq!(alert["origin"], 58678, "{alert}");
    injector.withdraw(WATCHED);
    let resolved = alert_with_state(svc, "resolved").await;
    assert_eq!(resolved["id"], alert["id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn gobgpd_router_origin_hijack_fires_and_resolves_through_bmp() {
    let _heavy = crate::util::heavy();
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start_yaml(&config("")).await;
    let port = bmp_port(&svc);
    let router = Gobgpd::router(dir.path(), port);
    let mut injector = Gobgpd::injector(dir.path(), router.bgp_port);
    injector.wait_established(60);
    hijack_fires_and_resolves(&svc, &injector).await;

    // The router is listed with its name and its peer, and its series are exported.
    let ready = svc.json("/readyz").await;
    let routers = &ready["feeds"]["bmp"]["routers"];
    assert_eq!(routers[0]["address"], "127.0.0.1", "{ready}");
    assert_eq!(routers[0]["name"], "GoBGP", "{ready}");
    assert_eq!(routers[0]["connected"], true, "{ready}");
    assert_eq!(routers[0]["peers_up"], 1, "{ready}");
    assert_eq!(ready["ready"], true, "{ready}");
    let metrics = svc.metrics().await;
    for series in [
        "bgpsentry_bmp_router_connected{feed=\"bmp\",router=\"127.0.0.1\"} 1",
        "bgpsentry_bmp_peers_up{feed=\"bmp\",router=\"127.0.0.1\"} 1",
        "bgpsentry_bmp_messages_total{feed=\"bmp\",router=\"127.0.0.1\",type=\"initiation\"} 1",
        "bgpsentry_bmp_messages_total{feed=\"bmp\",router=\"127.0.0.1\",type=\"peer_up\"} 1",
    ] {
        assert!(metrics.contains(series), "no {series} in\n{metrics}");
    }
    let (_, page) = svc.get("/").await;
    assert!(page.contains("router 127.0.0.1 (GoBGP)"), "{page}");
    metrics_match_the_catalogue_and_promtool(&metrics);
    drop(router);
}

#[tokio::test(flavor = "multi_thread")]
async fn frr_router_origin_hijack_fires_and_resolves_through_bmp_pre_and_post_policy() {
    let _heavy = crate::util::heavy();
    let dir = tempfile::tempdir().unwrap();
    // Both FRR RIBs feed the detectors: pre- and post-policy are two vantage points.
    let svc = Service::start_yaml(&config("    ribs: [adj_rib_in_pre, adj_rib_in_post]\n")).await;
    let port = bmp_port(&svc);
    let router = Frr::router(dir.path(), port);
    let mut injector = Gobgpd::injector(dir.path(), router.bgp_port);
    injector.wait_established(60);
    hijack_fires_and_resolves(&svc, &injector).await;
    let ready = svc.json("/readyz").await;
    assert_eq!(
        ready["feeds"]["bmp"]["routers"][0]["name"], "frr-router",
        "{ready}"
    );
    // Both RIB kinds were seen: the announcements doubled.
    let metrics = svc.metrics().await;
    assert!(
        metrics.contains("bgpsentry_bmp_messages_total{feed=\"bmp\",router=\"127.0.0.1\",type=\"route_monitoring\"}"),
        "{metrics}"
    );
    drop(router);
}

/// Waits for a log line and returns how many lines contain `needle` now.
fn count_log(svc: &Service, needle: &str) -> usize {
    svc.proc
        .lines()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_router_restart_within_the_hold_keeps_its_routes_and_one_beyond_it_loses_them() {
    let _heavy = crate::util::heavy();
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start_yaml(&config("    hold_seconds: 20\n")).await;
    let port = bmp_port(&svc);
    let mut router = Gobgpd::router(dir.path(), port);
    let mut injector = Gobgpd::injector(dir.path(), router.bgp_port);
    injector.wait_established(60);
    let (_, legit, _) = real_routes(0);
    let routes = vec![(WATCHED.to_string(), legit)];
    announce_real_routes(&svc, &injector, &routes).await;

    // A restart: the connection drops, the router comes back within the hold time and
    // sends its table again. Nothing is withdrawn and visibility never falls.
    router.restart();
    svc.wait_log(60, "the router reconnected within the hold time");
    injector.wait_established(60);
    svc.wait_metric(&events_series("announce"), 4.0).await;
    assert_eq!(svc.metric(&events_series("peer_down")).await, Some(0.0));
    assert_eq!(svc.metric(&events_series("withdraw")).await, Some(0.0));
    assert!(svc.alerts().await.is_empty(), "{:?}", svc.alerts().await);
    assert_eq!(count_log(&svc, "did not come back within the hold time"), 0);

    // Gone for good: after the hold time its routes are withdrawn and visibility falls.
    drop(injector);
    let _ = router.proc.kill9();
    svc.wait_log(60, "did not come back within the hold time");
    let lost = poll_until_async("visibility_loss", 60, async || {
        svc.alerts()
            .await
            .into_iter()
            .find(|a| a["rule"] == "visibility_loss")
    })
    .await;
    assert_eq!(lost["prefix"], WATCHED, "{lost}");
    assert!(svc.metric(&events_series("peer_down")).await >= Some(2.0));
    let ready = svc.json("/readyz").await;
    assert_eq!(
        ready["feeds"]["bmp"]["routers"][0]["connected"], false,
        "{ready}"
    );
    assert_eq!(
        ready["ready"], true,
        "a router down does not make the service unready"
    );
}

/// Hostile input on the listener: garbage, a 100 MB length, a truncated message and refused
/// addresses close only their own connection, counted, while a real router goes on.
/// A router that vanishes without closing its connection (power or link lost) must be noticed:
/// the listener turns on TCP keepalive on every router connection, which the kernel shows as
/// a keepalive timer on the accepted socket (`ss -o`) with the documented idle time.
#[tokio::test(flavor = "multi_thread")]
async fn router_connections_have_tcp_keepalive_on() {
    let svc = Service::start_yaml(&config("")).await;
    let port = bmp_port(&svc);
    let _router = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    let filter = format!("( sport = :{port} )");
    let line = poll_until_async("a keepalive timer on the accepted socket", 10, async || {
        let out = std::process::Command::new("ss")
            .args(["-tnoH", "state", "established", &filter])
            .output()
            .expect("ss (iproute2) is needed for this test");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("timer:(keepalive,").then_some(text)
    })
    .await;
    // The first probe is due within the idle time (60 s, shown as `59sec` or `1min`), not the
    // kernel's default 2 hours (`120min`).
    let due = line
        .split("timer:(keepalive,")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        (due.ends_with("sec") && !due.contains("min")) || due == "1min",
        "the keepalive timer should be under a minute, got {due:?}: {line:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_connections_are_closed_and_counted_and_a_real_router_is_unaffected() {
    use tokio::io::AsyncWriteExt;
    let _heavy = crate::util::heavy();
    let dir = tempfile::tempdir().unwrap();
    // The hostile peer connects from 127.0.0.4, an allowed address that is not the router's.
    let svc = Service::start_yaml(&config_for(
        "[127.0.0.1, 127.0.0.4]",
        "    max_routers: 2\n",
    ))
    .await;
    let port = bmp_port(&svc);
    let router = Gobgpd::router(dir.path(), port);
    let mut injector = Gobgpd::injector(dir.path(), router.bgp_port);
    injector.wait_established(60);

    let addr = format!("127.0.0.1:{port}");
    // 127.0.0.3 is not allowed: refused before a byte is read.
    let refused = tokio::net::TcpSocket::new_v4().unwrap();
    refused.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let _ = refused.connect(addr.parse().unwrap()).await;
    for (bytes, reason) in [
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), "bad_version"),
        (vec![3, 0x05, 0xF5, 0xE1, 0x00, 0], "oversized"), // 100,000,000 bytes announced
        (vec![3, 0, 0, 0, 100, 4, 0, 1], "truncated"),
    ] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.4:0".parse().unwrap()).unwrap();
        let mut s = socket.connect(addr.parse().unwrap()).await.unwrap();
        s.write_all(&bytes).await.unwrap();
        if reason == "truncated" {
            drop(s);
        } else {
            // The listener closes the connection itself.
            let mut buf = [0u8; 16];
            let n = tokio::io::AsyncReadExt::read(&mut s, &mut buf)
                .await
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
        svc.wait_metric(
            &format!(
                "bgpsentry_bmp_router_errors_total{{feed=\"bmp\",reason=\"{reason}\",router=\"127.0.0.4\"}}"
            ),
            1.0,
        )
        .await;
    }
    svc.wait_metric(
        "bgpsentry_bmp_connections_rejected_total{feed=\"bmp\",reason=\"not_allowed\"}",
        1.0,
    )
    .await;
    // The router and one more connection are the limit: a third is refused at once.
    let connect_from_4 = async || {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.4:0".parse().unwrap()).unwrap();
        socket.connect(addr.parse().unwrap()).await.unwrap()
    };
    let mut holding = connect_from_4().await;
    holding.write_all(&[3, 0]).await.unwrap(); // half a header, then silence
    poll_until_async("a connection over max_routers refused", 30, async || {
        let _extra = connect_from_4().await;
        svc.metric("bgpsentry_bmp_connections_rejected_total{feed=\"bmp\",reason=\"limit\"}")
            .await
            .filter(|v| *v >= 1.0)
    })
    .await;
    drop(holding);
    // The real router's session went on: its routes still arrive.
    let (background, _, _) = real_routes(5);
    announce_real_routes(&svc, &injector, &background).await;
    let ready = svc.json("/readyz").await;
    assert_eq!(
        ready["feeds"]["bmp"]["routers"][0]["connected"], true,
        "{ready}"
    );
}

/// `bgpsentry stream --feed bmp` prints what a router sends, in the pipe format with the
/// router as exporter: a recorded gobgpd stream replayed into it over TCP.
#[test]
fn stream_prints_a_routers_updates_in_the_pipe_format() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_bgpsentry"))
        .args(["stream", "--feed", "bmp", "--listen", "127.0.0.1:0"])
        .args(["--prefixes", "192.0.2.0/24,2001:db8::/32"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("listening for BMP routers on ") {
            addr = Some(a.trim().to_string());
            break;
        }
    }
    let addr = addr.expect("the listening address on stderr");
    let mut router = std::net::TcpStream::connect(&addr).unwrap();
    router
        .write_all(&std::fs::read(crate::util::fixture("bmp/gobgpd-all-ribs.bmp")).unwrap())
        .unwrap();
    let rx = crate::util::lines_of(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    // Post-policy and Loc-RIB: two announcements of each watched route, then their withdrawals.
    while lines.len() < 8 {
        match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(l) => lines.push(l),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines[0],
        "1796159690.0|U|65002|127.0.0.2|192.0.2.0/24|65002 3333 4200000001|65002:1|None|192.0.2.254|65001|127.0.0.1",
        "{lines:#?}"
    );
    assert_eq!(
        lines[1],
        "1796159690.0|U|65001|127.0.0.1|192.0.2.0/24|65002 3333 4200000001|65002:1|None|192.0.2.254|65001|127.0.0.1",
        "the Loc-RIB line names the router as its peer: {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("|2001:db8:100::/48|65002 64500|")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| !l.contains("198.51.100.0/24")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("|W|65002|127.0.0.2|192.0.2.0/24|")),
        "{lines:#?}"
    );
}

/// The BMP families a live service exports are in docs/src/metrics.md with their type and
/// labels, and pass `promtool check metrics`.
fn metrics_match_the_catalogue_and_promtool(text: &str) {
    use crate::util::promkit::{catalogue, parse_exposition, tool};
    use std::io::Write;
    let live = parse_exposition(text);
    let catalogue = catalogue();
    let bmp: Vec<&String> = live
        .keys()
        .filter(|n| n.starts_with("bgpsentry_bmp_"))
        .collect();
    assert!(bmp.len() >= 6, "{bmp:?}");
    for name in bmp {
        let entry = catalogue
            .get(name)
            .unwrap_or_else(|| panic!("{name} is exported but not in metrics.md"));
        assert_eq!(entry.kind, live[name].kind, "type of {name}");
        assert_eq!(entry.labels, live[name].labels, "labels of {name}");
    }
    let mut child = std::process::Command::new(tool("promtool", "prometheus"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}
