//! Running `peergroup` nodes for tests: each in its own data directory, on
//! loopback, with mDNS and Kademlia off and the configuration isolated from
//! the machine's (no config file, no `PEERGROUP_*` variables).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_peergroup");

/// The environment variables the binary reads.
const ENV: &[&str] = &[
    "PEERGROUP_CONFIG",
    "PEERGROUP_DATA_DIR",
    "PEERGROUP_LISTEN",
    "PEERGROUP_BOOTSTRAP",
    "PEERGROUP_MDNS",
    "PEERGROUP_KADEMLIA",
    "PEERGROUP_API_LISTEN",
    "PEERGROUP_API",
    "PEERGROUP_TOKEN_FILE",
    "PEERGROUP_GROUP_PASSWORD",
];

/// An empty directory standing for the user's configuration directory.
fn empty_config_home() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// `command` without the machine's configuration.
pub(crate) fn isolated(command: &mut Command) -> &mut Command {
    for name in ENV {
        command.env_remove(name);
    }
    command
        .env("XDG_CONFIG_HOME", empty_config_home())
        .env("NO_COLOR", "1")
}

/// `peergroup run` in `dir` on loopback (OS-chosen ports, no discovery),
/// stdout piped.
pub(crate) fn run_command(dir: &Path) -> Command {
    run_command_on(dir, "/ip4/127.0.0.1/tcp/0")
}

/// [`run_command`] listening on `listen`.
pub(crate) fn run_command_on(dir: &Path, listen: &str) -> Command {
    let mut command = Command::new(BIN);
    isolated(&mut command)
        .args(["run", "--data-dir"])
        .arg(dir)
        .args([
            "--listen",
            listen,
            "--no-mdns",
            "--no-kademlia",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// A running node.
pub(crate) struct TestNode {
    pub(crate) dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
    child: Option<Child>,
    pub(crate) peer_id: String,
    /// Its first listen address, with `/p2p/<peer id>`.
    pub(crate) addr: String,
    pub(crate) url: String,
}

impl TestNode {
    /// A node in a new data directory.
    pub(crate) fn start() -> TestNode {
        let owned = tempfile::tempdir().unwrap();
        let mut node = TestNode::start_in(owned.path());
        node._owned = Some(owned);
        node
    }

    /// A node in `dir` (kept after the node stops).
    pub(crate) fn start_in(dir: &Path) -> TestNode {
        TestNode::spawn(dir, run_command(dir))
    }

    /// A node in `dir` listening on `listen` (a multiaddr).
    pub(crate) fn start_on(dir: &Path, listen: &str) -> TestNode {
        TestNode::spawn(dir, run_command_on(dir, listen))
    }

    /// The TCP port of its first listen address.
    pub(crate) fn port(&self) -> u16 {
        self.addr
            .split('/')
            .skip_while(|p| *p != "tcp")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no TCP port in {}", self.addr))
    }

    /// Kills the node with SIGKILL (nothing is committed on the way out).
    pub(crate) fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `command` (a `peergroup run` in `dir`) and reads its start-up lines.
    pub(crate) fn spawn(dir: &Path, mut command: Command) -> TestNode {
        TestNode::adopt(dir, command.spawn().unwrap())
    }

    /// A node already started in `dir` (stdout piped): reads its start-up lines.
    pub(crate) fn adopt(dir: &Path, mut child: Child) -> TestNode {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut peer_id, mut addr, mut url) = (String::new(), String::new(), String::new());
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(v) = line.strip_prefix("peer id ") {
                peer_id = v.to_owned();
            } else if let Some(v) = line.strip_prefix("listening on ") {
                if addr.is_empty() {
                    addr = v.to_owned();
                }
            } else if let Some(v) = line.strip_prefix("control api ") {
                url = v.to_owned();
                break;
            }
        }
        assert!(!url.is_empty(), "the node did not report its control API");
        // Keep reading stdout so that the node never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        TestNode {
            dir: dir.to_path_buf(),
            _owned: None,
            child: Some(child),
            peer_id,
            addr,
            url,
        }
    }

    /// Runs `peergroup --data-dir DIR args...`.
    pub(crate) fn cli(&self, args: &[&str]) -> Output {
        isolated(&mut Command::new(BIN))
            .arg("--data-dir")
            .arg(&self.dir)
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs the CLI and returns its stdout; panics (with stderr) on failure.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "peergroup {args:?} failed ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Runs the CLI with `--json` and parses its output.
    pub(crate) fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?}: {e}: {text}"))
    }

    /// The API token.
    pub(crate) fn token(&self) -> String {
        std::fs::read_to_string(self.dir.join("api.token"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    }

    /// `POST /v1/request` with `body` and `token`: (status, body).
    pub(crate) fn post(&self, body: &str, token: Option<&str>) -> (u16, String) {
        let mut request = Self::agent()
            .post(format!("{}/v1/request", self.url))
            .content_type("application/json");
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut answer = request.send(body).unwrap();
        let status = answer.status().as_u16();
        (status, answer.body_mut().read_to_string().unwrap())
    }

    /// `POST /v1/request` with the right token, a request as JSON.
    pub(crate) fn request(&self, request: serde_json::Value) -> (u16, serde_json::Value) {
        let (status, body) = self.post(&request.to_string(), Some(&self.token()));
        let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        (status, json)
    }

    /// `GET path` with `token`: (status, body).
    pub(crate) fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = Self::agent().get(format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        let mut answer = request.call().unwrap();
        let status = answer.status().as_u16();
        (status, answer.body_mut().read_to_string().unwrap())
    }

    /// Stops the node with SIGTERM and waits for it; returns whether it
    /// exited cleanly.
    pub(crate) fn stop(mut self) -> bool {
        self.terminate()
    }

    fn terminate(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
pub(crate) fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
