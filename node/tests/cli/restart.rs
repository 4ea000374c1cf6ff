//! Nodes that stop and start again, as an operator runs them: without mDNS
//! or Kademlia (a network that drops multicast, members on different LANs),
//! a node finds its groups' members again from what it remembered of them,
//! on the ports it was told to use (issue 15).

use std::{path::Path, process::Stdio};

use crate::support::{BIN, TestNode, eventually, isolated};

/// A group of three on loopback: the creator and two members that joined
/// it, each in a data directory of its own. Returns the group's name.
fn group_of_three(alice: &TestNode, bob: &TestNode, carol: &TestNode) -> String {
    let group = alice.ok(&["group", "create", "chat"]);
    for member in [bob, carol] {
        let text = member.ok(&["identity", "show", "--text"]);
        let invitation = alice.ok(&["invite", "create", &group, &text]);
        member.ok(&[
            "join",
            &invitation,
            "--address",
            &alice.addr,
            "--no-progress",
        ]);
    }
    group
}

/// Three nodes in data directories of their own (kept after they stop),
/// in a group of three whose members all have a neighbour.
fn connected_three() -> (Vec<tempfile::TempDir>, TestNode, TestNode, TestNode, String) {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let alice = TestNode::start_in(dirs[0].path());
    let bob = TestNode::start_in(dirs[1].path());
    let carol = TestNode::start_in(dirs[2].path());
    let group = group_of_three(&alice, &bob, &carol);
    all_connected(&[&alice, &bob, &carol], &group);
    (dirs, alice, bob, carol, group)
}

/// The node's neighbours in `group`.
fn connections(node: &TestNode, group: &str) -> usize {
    node.json(&["group", "connections", group])["Peers"]
        .as_array()
        .map_or(0, Vec::len)
}

/// Waits until every node has a neighbour in `group`.
fn all_connected(nodes: &[&TestNode], group: &str) {
    for node in nodes {
        eventually(60, || (connections(node, group) > 0).then_some(()));
    }
}

/// Waits until every node's database digest of `group` is the same.
fn converged(nodes: &[&TestNode], group: &str) -> String {
    eventually(60, || {
        let digests: Vec<String> = nodes
            .iter()
            .map(|n| n.ok(&["group", "digest", group]))
            .collect();
        digests
            .iter()
            .all(|d| *d == digests[0])
            .then(|| digests[0].clone())
    })
}

fn listen_on_port(port: u16) -> String {
    format!("/ip4/127.0.0.1/tcp/{port}")
}

/// The README quickstart, then every node stopped and started again on
/// its own port: each redials the members it knew, the group reconnects,
/// and a record written after the restart reaches everyone. Before, no
/// node had a connection 80 s later.
#[test]
fn the_whole_group_restarted_without_discovery_reconnects_and_converges() {
    let (dirs, alice, bob, carol, group) = connected_three();
    bob.ok(&["record", "add", &group, "--data", "before"]);
    converged(&[&alice, &bob, &carol], &group);
    let ports = [alice.port(), bob.port(), carol.port()];
    for node in [alice, bob, carol] {
        assert!(node.stop(), "SIGTERM is a clean stop");
    }

    let nodes: Vec<TestNode> = dirs
        .iter()
        .zip(ports)
        .map(|(dir, port)| TestNode::start_on(dir.path(), &listen_on_port(port)))
        .collect();
    let all: Vec<&TestNode> = nodes.iter().collect();
    all_connected(&all, &group);
    nodes[1].ok(&["record", "add", &group, "--data", "after"]);
    let digest = converged(&all, &group);
    assert_ne!(digest, "", "the digest is printed");
}

/// A member killed (SIGKILL) while the creator writes, started again on its
/// port, reconnects by itself and ends with every record. Before, it
/// stayed behind (614 of 2,002 records) until someone connected it by hand.
#[test]
fn a_member_killed_while_the_group_writes_catches_up_after_a_restart() {
    let (dirs, alice, bob, carol, group) = connected_three();
    let port = bob.port();

    let mut writer = isolated(&mut std::process::Command::new(BIN))
        .arg("--data-dir")
        .arg(&alice.dir)
        .args(["record", "add", &group, "--data", "load", "--repeat", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill Bob once some of the writes reached him.
    let before = bob.ok(&["group", "digest", &group]);
    eventually(60, || {
        (bob.ok(&["group", "digest", &group]) != before).then_some(())
    });
    bob.kill();
    assert!(writer.wait().unwrap().success(), "the writes were made");

    let bob = TestNode::start_on(dirs[1].path(), &listen_on_port(port));
    converged(&[&alice, &bob, &carol], &group);
}

/// Two nodes started with the default listen address on one host: the
/// second does not share the first one's port (libp2p sets SO_REUSEPORT,
/// so it could), each listens on a port of its own, and one joins the
/// other's group. Before, both listened on 3587 and the kernel split the
/// connections between them.
#[test]
fn two_nodes_with_default_ports_on_one_host_listen_apart_and_join() {
    fn start_default(dir: &Path) -> TestNode {
        let mut command = std::process::Command::new(BIN);
        isolated(&mut command)
            .args(["run", "--data-dir"])
            .arg(dir)
            .args(["--no-mdns", "--no-kademlia", "--api-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        TestNode::spawn(dir, command)
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let first = start_default(a.path());
    let second = start_default(b.path());
    assert_ne!(
        first.port(),
        second.port(),
        "{} and {}",
        first.addr,
        second.addr
    );

    let group = first.ok(&["group", "create", "shared"]);
    let text = second.ok(&["identity", "show", "--text"]);
    let invitation = first.ok(&["invite", "create", &group, &text]);
    let address = format!("/ip4/127.0.0.1/tcp/{}", first.port());
    second.ok(&["join", &invitation, "--address", &address, "--no-progress"]);
    first.ok(&["record", "add", &group, "--data", "hello"]);
    converged(&[&first, &second], &group);
}

/// An address the operator asked for that cannot be had stops the node at
/// start, saying why; it never listens somewhere else instead. Before, a
/// taken `--listen` port was silently replaced by a random one.
#[test]
fn a_taken_listen_address_is_an_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestNode::start();
    // `timeout`: a node that starts anyway (the fault) must not hang the test.
    let mut command = std::process::Command::new("timeout");
    isolated(&mut command)
        .args(["20", BIN, "run", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen",
            &listen_on_port(first.port()),
            "--no-mdns",
            "--no-kademlia",
            "--api-listen",
            "127.0.0.1:0",
        ]);
    let out = command.output().unwrap();
    assert_ne!(out.status.code(), Some(124), "the second node started");
    assert!(!out.status.success(), "the second node started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already in use") && stderr.contains(&first.port().to_string()),
        "{stderr}"
    );
    assert!(stderr.contains("PEER_E_UNABLE_TO_LISTEN"), "{stderr}");
    // The first node is untouched and still the only one on its port.
    assert_eq!(first.json(&["status"])["peer_id"], first.peer_id);
}

/// The data directory holds secret keys: it is created readable by its
/// owner only.
#[cfg(unix)]
#[test]
fn the_data_directory_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("new").join("data");
    let node = TestNode::start_in(&dir);
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "mode {mode:o}");
    drop(node);
}

/// One member comes back on another port while the others keep theirs: it
/// redials the members it knew, they learn its new address from it, and
/// when they in turn come back on new ports they find it there, all
/// without mDNS or Kademlia.
#[test]
fn a_member_back_on_a_new_port_is_found_at_its_new_address() {
    let (dirs, alice, bob, carol, group) = connected_three();
    let old_port = alice.port();
    assert!(alice.stop());

    // Alice on a new port: she redials Bob and Carol where they still are.
    let alice = TestNode::start_in(dirs[0].path());
    assert_ne!(alice.port(), old_port);
    eventually(60, || (connections(&alice, &group) == 2).then_some(()));

    // Bob and Carol move too: only Alice's new address (learned from her)
    // leads anywhere now.
    assert!(bob.stop());
    assert!(carol.stop());
    let bob = TestNode::start_in(dirs[1].path());
    let carol = TestNode::start_in(dirs[2].path());
    all_connected(&[&bob, &carol], &group);
    carol.ok(&["record", "add", &group, "--data", "moved"]);
    converged(&[&alice, &bob, &carol], &group);
}

/// A node started as the README starts it keeps its events out of the
/// INFO log (they are at debug; `peergroup events` follows them). Before,
/// every event was an INFO line: 6.6 MB per node per 20,000 records.
#[test]
fn a_node_s_info_log_holds_no_events() {
    use std::io::Read as _;

    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(BIN);
    isolated(&mut command)
        .args(["run", "--data-dir"])
        .arg(dir.path())
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut log = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        text
    });
    child.stderr = None;
    let node = TestNode::adopt(dir.path(), child);
    let group = node.ok(&["group", "create", "quiet"]);
    for n in 0..5 {
        node.ok(&["record", "add", &group, "--data", &format!("record {n}")]);
    }
    assert!(node.stop());
    let log = reader.join().unwrap();
    assert!(log.contains("INFO"), "the node logged: {log}");
    assert!(!log.contains("RecordChanged"), "{log}");
}
