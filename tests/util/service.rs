//! Child processes of the tests, and the one way to run the real `bgpsentry run`: [`Launch`]
//! prepares it (config, environment, log filter, file limit, working folder), [`Service`] is
//! the running binary on a loopback port it picked itself and reported in its log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{poll_until, poll_until_async};

/// How long a service may take to report its listening address.
const START_SECS: u64 = 30;

/// A child process with its stderr collected line by line; killed when the test ends, pass
/// or fail, and its stderr printed when the test fails.
pub struct Proc {
    pub child: Child,
    pub name: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    /// Spawns a program with stdin and stdout closed and its stderr collected.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                lock(&sink).push(line);
            }
        });
        Proc {
            child,
            name: name.to_string(),
            lines,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stderr lines so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).clone()
    }

    /// Its stderr so far, one line after another.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for line in lock(&self.lines).iter() {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait on a child")
    }

    /// Sends it a signal (`HUP`, `TERM`…) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name} {} failed", self.pid());
    }

    /// Waits up to `within` for it to exit; None if it is still running then.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it with SIGTERM (a clean shutdown) and waits up to 30 s for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        match self.wait_exit(Duration::from_secs(30)) {
            Some(status) => status,
            None => panic!(
                "{} still runs 30 s after SIGTERM:\n{}",
                self.name,
                self.log()
            ),
        }
    }

    /// Kills it with SIGKILL, as a crash would, reaps it and returns its stderr.
    pub fn kill9(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for line in lock(&self.lines).iter() {
                eprintln!("{}: {line}", self.name);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lines so far even if a reader thread panicked holding the lock.
fn lock(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(|e| e.into_inner())
}

/// A `bgpsentry run` about to start: `--config FILE --listen 127.0.0.1:0`, `RUST_LOG=info`
/// unless told otherwise, no colours, and no `BGP_API_KEY` from the caller's environment.
pub struct Launch {
    cmd: Command,
    config: PathBuf,
    dir: Option<tempfile::TempDir>,
    file_limit: Option<u32>,
}

impl Launch {
    /// Runs with the config file at `config`.
    pub fn config(config: &Path) -> Launch {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bgpsentry"));
        cmd.args(["run", "--config"])
            .arg(config)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("BGP_API_KEY")
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        Launch {
            cmd,
            config: config.to_path_buf(),
            dir: None,
            file_limit: None,
        }
    }

    /// Runs with this config text, written to `bgpsentry.yml` in a temp folder the service
    /// owns (rewrite [`Service::config_path`] to reload).
    pub fn yaml(text: &str) -> Launch {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("bgpsentry.yml");
        std::fs::write(&path, text).expect("the config written");
        Launch {
            dir: Some(dir),
            ..Launch::config(&path)
        }
    }

    /// A prepared command that runs bgpsentry with `--listen 127.0.0.1:0` in another way
    /// (under `setpriv`, with other arguments).
    pub fn command(cmd: Command) -> Launch {
        Launch {
            cmd,
            config: PathBuf::new(),
            dir: None,
            file_limit: None,
        }
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.cmd.env(key, value);
        self
    }

    /// Sets environment variables.
    pub fn envs(mut self, vars: &[(&str, &str)]) -> Launch {
        self.cmd.envs(vars.iter().copied());
        self
    }

    /// One more argument to `bgpsentry run` (`--log-json`).
    pub fn arg(mut self, arg: &str) -> Launch {
        self.cmd.arg(arg);
        self
    }

    /// The `RUST_LOG` filter.
    pub fn log(self, filter: &str) -> Launch {
        self.env("RUST_LOG", filter)
    }

    /// The working folder.
    pub fn current_dir(mut self, dir: &Path) -> Launch {
        self.cmd.current_dir(dir);
        self
    }

    /// An open file limit (soft and hard, so the service cannot raise it), set by the shell
    /// on the child only: the tests' own process keeps its limit.
    pub fn file_limit(mut self, files: u32) -> Launch {
        self.file_limit = Some(files);
        self
    }

    fn spawn(self) -> Service {
        let Launch {
            cmd,
            config,
            dir,
            file_limit,
        } = self;
        let cmd = match file_limit {
            Some(n) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(cmd.get_program())
                    .args(cmd.get_args());
                for (key, value) in cmd.get_envs() {
                    match value {
                        Some(v) => shell.env(key, v),
                        None => shell.env_remove(key),
                    };
                }
                if let Some(d) = cmd.get_current_dir() {
                    shell.current_dir(d);
                }
                shell
            }
            None => cmd,
        };
        let proc = Proc::spawn("bgpsentry", cmd);
        Service {
            proc,
            addr: String::new(),
            base: String::new(),
            config,
            _dir: dir,
        }
    }

    /// Starts it and waits until it logs its listening address.
    pub fn start(self) -> Service {
        let mut svc = self.spawn();
        let base = poll_until("bgpsentry to report its address", START_SECS, || {
            svc.listening()
        });
        svc.set_base(base);
        svc
    }

    /// [`Launch::start`] for async tests: the wait yields to the runtime.
    pub async fn start_async(self) -> Service {
        let mut svc = self.spawn();
        let base = poll_until_async("bgpsentry to report its address", START_SECS, async || {
            svc.listening()
        })
        .await;
        svc.set_base(base);
        svc
    }
}

/// A running `bgpsentry run`; killed when dropped.
pub struct Service {
    /// The process and its log.
    pub proc: Proc,
    /// `127.0.0.1:PORT`, where it listens.
    pub addr: String,
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub base: String,
    config: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Service {
    /// Starts `bgpsentry run` with the config file at `config` (see [`Launch`] for more).
    pub fn start(config: &Path) -> Service {
        Launch::config(config).start()
    }

    /// Starts `bgpsentry run` with this config text and its own debug lines in the log (the
    /// live-feed tests read them); waits in an async test.
    pub async fn start_yaml(text: &str) -> Service {
        Launch::yaml(text)
            .log("bgpsentry=debug")
            .start_async()
            .await
    }

    /// The base URL once it logged "listening on URL" (text or JSON logs); panics if it
    /// exited first.
    fn listening(&mut self) -> Option<String> {
        if let Some(status) = self.proc.exited() {
            panic!(
                "bgpsentry exited ({status}) before listening:\n{}",
                self.proc.log()
            );
        }
        self.proc.lines().iter().find_map(|line| {
            let rest = line.split("listening on ").nth(1)?;
            let url: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            url.contains("://").then_some(url)
        })
    }

    fn set_base(&mut self, base: String) {
        self.addr = base
            .split_once("://")
            .map(|(_, a)| a.to_string())
            .unwrap_or_default();
        self.base = base;
    }

    /// The config file it runs with (rewrite it to reload).
    pub fn config_path(&self) -> PathBuf {
        self.config.clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Its peak resident memory so far in KiB (`VmHWM` of `/proc/PID/status`).
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib(&["VmHWM"])[0]
    }

    /// Its peak resident memory less what mapped files keep resident now (its code and shared
    /// libraries: a constant of the build and the kernel's page cache, not of the work done):
    /// `VmHWM − RssFile − RssShmem`, the peak of its heap and stacks. It errs low only by file
    /// pages first touched after the peak.
    pub fn peak_heap_kib(&self) -> u64 {
        let [peak, file, shmem] = self.status_kib(&["VmHWM", "RssFile", "RssShmem"])[..] else {
            unreachable!("three fields asked, three given")
        };
        peak.saturating_sub(file + shmem)
    }

    /// `kB` figures of `/proc/PID/status`, in the order of `fields`, from one reading.
    fn status_kib(&self, fields: &[&str]) -> Vec<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/PID/status of a running service");
        fields
            .iter()
            .map(|field| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
            })
            .collect()
    }

    /// Sends it a signal (`HUP`, `TERM`…).
    pub fn signal(&self, name: &str) {
        self.proc.signal(name);
    }

    /// Kills it with SIGKILL, as a crash would, reaps it and returns its log.
    pub fn kill9(mut self) -> String {
        self.proc.kill9()
    }

    /// Asks it to stop (SIGTERM) and waits for it to exit, failing after `secs` seconds.
    pub async fn terminate(mut self, secs: u64) -> ExitStatus {
        self.signal("TERM");
        let proc = &mut self.proc;
        poll_until_async("the service to exit after SIGTERM", secs, async || {
            proc.exited()
        })
        .await
    }

    /// All log lines so far, joined.
    pub fn log_text(&self) -> String {
        self.proc.lines().join("\n")
    }

    /// Waits for a log line containing `needle` and returns it.
    pub fn wait_log(&self, secs: u64, needle: &str) -> String {
        poll_until(&format!("a log line with {needle:?}"), secs, || {
            self.proc.lines().into_iter().find(|l| l.contains(needle))
        })
    }

    /// GET a path; status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("GET on the service");
        let status = r.status().as_u16();
        (status, r.text().await.expect("a body"))
    }

    /// GET a path with `Authorization: Bearer TOKEN`; status and body.
    pub async fn get_with_token(&self, path: &str, token: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET on the service");
        let status = r.status().as_u16();
        (status, r.text().await.expect("a body"))
    }

    /// GET a JSON document.
    pub async fn json(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&self.get(path).await.1).expect("a JSON body")
    }

    /// `/metrics` as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.1
    }

    /// The sum of every sample in `/metrics` whose line starts with `prefix` (a metric's name,
    /// or its name and first labels): 0 when there is none.
    pub async fn metric_sum(&self, prefix: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(prefix) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// The value of one sample in `/metrics` (exact name with labels), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        super::metric(&self.metrics().await, series)
    }

    /// Waits until a metric reaches at least `min`.
    pub async fn wait_metric(&self, series: &str, min: f64) -> f64 {
        poll_until_async(&format!("{series} >= {min}"), 60, async || {
            self.metric(series).await.filter(|v| *v >= min)
        })
        .await
    }

    /// Firing alerts.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        self.json("/alerts").await["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
