//! Smoke tests of the `peergroup` binary.

use std::process::Command;

use crate::support::isolated;

fn peergroup(args: &[&str]) -> std::process::Output {
    isolated(&mut Command::new(env!("CARGO_BIN_EXE_peergroup")))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn version_prints_the_crate_version() {
    let out = peergroup(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        format!("peergroup {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_the_node() {
    let out = peergroup(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Usage: peergroup"), "{text}");
    assert!(text.contains("Peer-to-Peer Grouping"), "{text}");
}

#[test]
fn unknown_arguments_fail_with_usage() {
    let out = peergroup(&["--no-such-flag"]);
    assert!(!out.status.success());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

#[test]
fn run_starts_a_node_and_reports_where_it_listens() {
    use std::io::{BufRead, BufReader};
    let mut child = isolated(&mut Command::new(env!("CARGO_BIN_EXE_peergroup")))
        .args([
            "run",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-kademlia",
            "--ephemeral",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.starts_with("peer id 12D3KooW"), "{first}");
    assert!(
        second.starts_with("listening on /ip4/127.0.0.1/tcp/"),
        "{second}"
    );
    assert!(second.contains("/p2p/12D3KooW"), "{second}");
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = peergroup(&[
        "run",
        "--bootstrap",
        "/ip4/127.0.0.1/tcp/1",
        "--no-mdns",
        "--ephemeral",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("must end with /p2p/"), "{stderr}");
}

#[test]
fn a_corrupt_data_directory_fails_with_the_file_named() {
    let dir = std::env::temp_dir().join(format!("peergroup-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("peergroup.redb");
    std::fs::write(&file, b"garbage").unwrap();
    let out = peergroup(&[
        "run",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--no-mdns",
        "--no-kademlia",
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("peergroup.redb"), "{stderr}");
}

/// `peergroup run` with a data directory keeps its transport key (same peer
/// id after a restart), and SIGTERM (how containers stop) shuts it down as
/// cleanly as Ctrl-C: it exits with success.
#[cfg(unix)]
#[test]
fn sigterm_stops_the_node_cleanly_and_the_peer_id_survives() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        // Reads two lines, then closes the pipe: the node must not mind.
        let mut child = crate::support::run_command(dir.path()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let id = lines.next().unwrap().unwrap();
        let _listening = lines.next().unwrap().unwrap();
        (child, id)
    };
    let (mut first, id) = start();
    assert!(id.starts_with("peer id 12D3KooW"), "{id}");
    let term = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not stop on SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
    let (mut second, again) = start();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(again, id, "the peer id survives the restart");
}
