//! Real BGP daemons for the BMP tests: gobgpd (as the monitored router and as the injector
//! that plays its eBGP peer) and FRR's bgpd with its BMP module. Everything listens on
//! loopback, on ports found free at run time; `tests/run-all.sh` installs the packages.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Proc;

/// The FRR bgpd binary (Debian puts the daemons outside PATH).
pub const FRR_BGPD: &str = "/usr/lib/frr/bgpd";

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Panics with the install hint when a daemon is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = if program.contains('/') {
        Some(PathBuf::from(program)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.exists())
        })
    };
    found.unwrap_or_else(|| {
        panic!("{program} is missing: install it with `apt-get install -y {package}` (tests/run-all.sh does)")
    })
}

/// One gobgpd and its gRPC port, for the `gobgp` CLI.
pub struct Gobgpd {
    pub proc: Proc,
    pub api: u16,
    /// Its BGP port (0 when it does not listen).
    pub bgp_port: u16,
    /// Its name and config file, to start it again.
    name: String,
    config: PathBuf,
}

impl Gobgpd {
    fn start(name: &str, dir: &Path, toml: &str, bgp_port: u16) -> Gobgpd {
        require("gobgpd", "gobgpd");
        let api = free_port();
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, toml).unwrap();
        Gobgpd {
            proc: Gobgpd::spawn(name, &path, api),
            api,
            bgp_port,
            name: name.to_string(),
            config: path,
        }
    }

    /// Starts gobgpd with a config file and its gRPC API on `api`.
    fn spawn(name: &str, config: &Path, api: u16) -> Proc {
        let mut cmd = Command::new("gobgpd");
        cmd.arg("-f")
            .arg(config)
            .arg("--api-hosts")
            .arg(format!("127.0.0.1:{api}"))
            .args(["-l", "info", "--log-plain"])
            .stdout(std::process::Stdio::null());
        Proc::spawn(name, cmd)
    }

    /// The monitored router: AS65001 on 127.0.0.1, its BMP client pointed at `bmp_port`
    /// monitoring every RIB, one passive eBGP peer 127.0.0.2 (AS65002).
    pub fn router(dir: &Path, bmp_port: u16) -> Gobgpd {
        let port = free_port();
        let toml = format!(
            r#"[global.config]
  as = 65001
  router-id = "10.0.0.1"
  port = {port}
  local-address-list = ["127.0.0.1"]
[[bmp-servers]]
  [bmp-servers.config]
    address = "127.0.0.1"
    port = {bmp_port}
    route-monitoring-policy = "all"
[[neighbors]]
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
  [neighbors.config]
    neighbor-address = "127.0.0.2"
    peer-as = 65002
  [neighbors.transport.config]
    passive-mode = true
"#
        );
        Gobgpd::start("gobgpd-router", dir, &toml, port)
    }

    /// Restarts a router with the same config and ports (after a kill).
    pub fn restart(&mut self) {
        let _ = self.proc.kill9();
        self.proc = Gobgpd::spawn(&self.name, &self.config, self.api);
    }

    /// The injector: AS65002 on 127.0.0.2, connecting to a router's BGP port on 127.0.0.1.
    /// Loopback next hops are refused by BGP speakers, so its export policy sets documentation
    /// addresses as next hops.
    pub fn injector(dir: &Path, router_port: u16) -> Gobgpd {
        let toml = format!(
            r#"[global.config]
  as = 65002
  router-id = "10.0.0.2"
  port = -1
[global.apply-policy.config]
  export-policy-list = ["next-hop"]
  default-export-policy = "accept-route"
[[neighbors]]
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65001
  [neighbors.transport.config]
    local-address = "127.0.0.2"
    remote-port = {router_port}
  [neighbors.timers.config]
    connect-retry = 1
[[policy-definitions]]
  name = "next-hop"
  [[policy-definitions.statements]]
    name = "v6"
    [policy-definitions.statements.conditions.bgp-conditions]
      afi-safi-in-list = ["ipv6-unicast"]
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
      [policy-definitions.statements.actions.bgp-actions]
        set-next-hop = "2001:db8::254"
  [[policy-definitions.statements]]
    name = "v4"
    [policy-definitions.statements.actions]
      route-disposition = "accept-route"
      [policy-definitions.statements.actions.bgp-actions]
        set-next-hop = "192.0.2.254"
"#
        );
        Gobgpd::start("gobgpd-injector", dir, &toml, 0)
    }

    /// Runs the `gobgp` CLI against it; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("gobgp")
            .arg("-p")
            .arg(self.api.to_string())
            .args(args)
            .output()
            .expect("gobgp runs");
        assert!(
            out.status.success(),
            "gobgp {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until its BGP session is established.
    pub fn wait_established(&mut self, secs: u64) {
        // gobgpd has start-up races a test cannot see from outside (its gRPC port taken between
        // picking and binding it, a first connection refused before its neighbours are
        // configured): a daemon that died, or a session not up in half the time, gets one more
        // start on a fresh gRPC port. On failure the daemon's log says why.
        for attempt in 0..2 {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs / 2);
            while std::time::Instant::now() < deadline {
                if self.established() {
                    return;
                }
                if self.proc.exited().is_some() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            if attempt == 0 {
                eprintln!(
                    "{}: no BGP session after {} s, starting it again; its log:\n{}",
                    self.name,
                    secs / 2,
                    self.proc.log()
                );
                let _ = self.proc.kill9();
                self.api = free_port();
                self.proc = Gobgpd::spawn(&self.name, &self.config, self.api);
            }
        }
        panic!(
            "timed out waiting for the BGP session to come up; {} log:\n{}",
            self.name,
            self.proc.log()
        );
    }

    /// Whether its neighbour's session is established.
    fn established(&self) -> bool {
        Command::new("gobgp")
            .arg("-p")
            .arg(self.api.to_string())
            .arg("neighbor")
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).contains("Establ"))
            .unwrap_or(false)
    }

    pub fn announce(&self, prefix: &str, path: &[u32]) {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        let path: Vec<String> = path.iter().map(|a| a.to_string()).collect();
        self.cli(&[
            "global",
            "rib",
            "add",
            "-a",
            family,
            prefix,
            "aspath",
            &path.join(","),
        ]);
    }

    /// Withdraws a prefix.
    pub fn withdraw(&self, prefix: &str) {
        let family = if prefix.contains(':') { "ipv6" } else { "ipv4" };
        self.cli(&["global", "rib", "del", "-a", family, prefix]);
    }
}

/// FRR's bgpd as the monitored router: AS65001 on 127.0.0.1 without zebra, its BMP target
/// pointed at `bmp_port` with pre- and post-policy monitoring, one eBGP peer 127.0.0.2.
pub struct Frr {
    pub proc: Proc,
    pub bgp_port: u16,
}

impl Frr {
    pub fn router(dir: &Path, bmp_port: u16) -> Frr {
        let bgpd = require(FRR_BGPD, "frr");
        let port = free_port();
        let conf = dir.join("bgpd.conf");
        std::fs::write(
            &conf,
            format!(
                "hostname frr-router
router bgp 65001
 bgp router-id 10.0.0.1
 no bgp ebgp-requires-policy
 neighbor 127.0.0.2 remote-as 65002
 neighbor 127.0.0.2 soft-reconfiguration inbound
 address-family ipv6 unicast
  neighbor 127.0.0.2 activate
  neighbor 127.0.0.2 soft-reconfiguration inbound
 exit-address-family
 !
 bmp targets bgpsentry
  bmp connect 127.0.0.1 port {bmp_port} min-retry 100 max-retry 1000
  bmp monitor ipv4 unicast pre-policy
  bmp monitor ipv4 unicast post-policy
  bmp monitor ipv6 unicast pre-policy
  bmp monitor ipv6 unicast post-policy
 exit
!
"
            ),
        )
        .unwrap();
        let mut cmd = Command::new(bgpd);
        cmd.args(["-M", "bmp", "-Z", "-S", "-n", "-P", "0", "-l", "127.0.0.1"])
            .arg("-p")
            .arg(port.to_string())
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("bgpd.pid"))
            .arg("--vty_socket")
            .arg(dir)
            .args(["--log", "stdout"]);
        Frr {
            proc: Proc::spawn("frr-bgpd", cmd),
            bgp_port: port,
        }
    }
}
