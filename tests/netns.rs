//! Tests that need a network of their own: a fresh network namespace,
//! configured with `ip` (and `tc`) commands, in which the test re-runs
//! itself (`ip netns exec`). They need root and iproute2, which CI has
//! (`.ci/run` installs iproute2 when it is missing). Traffic stays inside
//! the namespace.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

/// The environment variable that tells a test it runs inside its namespace.
pub(crate) const CHILD_ENV: &str = "PEERGROUP_NETNS_CHILD";

/// A network namespace, deleted on drop.
pub(crate) struct Namespace(pub(crate) String);

impl Namespace {
    /// A namespace named after `tag` and this process, with loopback up,
    /// configured by `steps` (each the arguments of one `ip` or, starting
    /// with "tc", one `tc` command, with `{ns}` replaced by its name).
    pub(crate) fn create(tag: &str, steps: &[&[&str]]) -> Namespace {
        let name = format!("pg{tag}{}", std::process::id());
        let ns = Namespace(name.clone());
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        for step in steps {
            let args: Vec<String> = step.iter().map(|a| a.replace("{ns}", &name)).collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            match args.split_first() {
                Some((&"tc", rest)) => {
                    let mut full = vec!["netns", "exec", &name, "tc"];
                    full.extend_from_slice(rest);
                    run("ip", &full);
                }
                _ => {
                    let mut full = vec!["-n", name.as_str()];
                    full.extend_from_slice(&args);
                    run("ip", &full);
                }
            }
        }
        ns
    }

    /// Runs the test `name` of this binary inside the namespace (it sees
    /// [`CHILD_ENV`]) and waits at most `limit`; returns its standard output.
    /// Panics with the child's output if it fails.
    pub(crate) fn run_test(&self, name: &str, limit: Duration) -> String {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .arg(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "{name} did not finish within {limit:?}:\n{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(status.success(), "{name} failed:\n{stdout}\n{stderr}");
        stdout
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("this test needs iproute2 (`{program}`) and root: {e}"));
    assert!(
        status.success(),
        "`{program} {}` failed: this test needs root",
        args.join(" ")
    );
}

/// Whether this process is a test's run inside its namespace.
pub(crate) fn inside() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// A multi-threaded runtime for a test body that runs inside a namespace.
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
