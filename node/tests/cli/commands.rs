//! The CLI: `--json` output, exit codes, configuration precedence, a
//! password join, and a restart that keeps everything.

use std::process::Command;

use serde_json::Value;

use crate::support::{BIN, TestNode, isolated};

#[test]
fn every_command_s_json_output_parses() {
    let node = TestNode::start();
    let status = node.json(&["status"]);
    assert_eq!(status["peer_id"], node.peer_id.as_str());
    let created = node.json(&["identity", "create", "second", "--name", "Second"]);
    let second = created["Identity"]["payload"]["n"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(second.ends_with(".second"), "{created}");
    assert_eq!(
        node.json(&["identity", "list"])["Identities"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let shown = node.json(&["identity", "show", &second]);
    assert!(
        shown["public_text"]
            .as_str()
            .unwrap()
            .starts_with("peergroup-identity-v1:")
    );
    let file = node.dir.join("second.json");
    node.ok(&[
        "identity",
        "export",
        &second,
        "--out",
        file.to_str().unwrap(),
    ]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "an exported identity is private");
    }
    node.json(&["identity", "delete", &second]);
    let imported = node.json(&["identity", "import", file.to_str().unwrap()]);
    assert_eq!(imported["Identity"]["payload"]["n"], second.as_str());

    let group = node.json(&["group", "create", "jsontest", "--name", "JSON"])["Group"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        node.json(&["group", "list"])["Groups"][0]["group"],
        group.as_str()
    );
    assert_eq!(
        node.json(&["group", "properties", &group])["Properties"]["f"],
        "JSON"
    );
    node.json(&["group", "set-properties", &group, "--comment", "about"]);
    assert_eq!(
        node.json(&["group", "properties", &group])["Properties"]["m"],
        "about"
    );
    assert_eq!(
        node.json(&["group", "members", &group])["Members"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(node.json(&["group", "connections", &group])["Peers"].is_array());
    assert_eq!(
        node.json(&["group", "status", &group])["Status"]["ready"],
        true
    );
    assert!(node.json(&["sync", "status", &group])["Sync"]["running"].is_array());

    let text = node.ok(&["identity", "show", "--text", &second]);
    let invitation = node.json(&[
        "invite",
        "create",
        &group,
        &text,
        "--role",
        "admin",
        "--expires-in",
        "7d",
    ]);
    let invitation = invitation["Invitation"].as_str().unwrap().to_owned();
    let parsed = node.json(&["invite", "parse", &invitation]);
    assert_eq!(parsed["group"], group.as_str());
    assert_eq!(parsed["role"], "admin");

    let id = node.json(&[
        "record",
        "add",
        &group,
        "--data",
        "one",
        "--attr",
        "color=blue",
        "--int-attr",
        "size=3",
    ])["RecordId"]
        .as_str()
        .unwrap()
        .to_owned();
    node.json(&["record", "update", &group, &id, "--data", "two"]);
    let record = node.json(&["record", "get", &group, &id]);
    assert_eq!(
        record["Record"]["n"], 2,
        "version 2 after an update: {record}"
    );
    assert_eq!(record["Record"]["d"], "dHdv", "base64 of the data");
    let list = node.json(&["record", "list", &group]);
    assert!(
        list["Records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["i"] == id.as_str())
    );
    // Search, in the short form and from an XML file; a broken query is
    // PEER_E_INVALID_SEARCH and a usage error.
    let found = node.json(&["record", "search", &group, "size<=3 and color=blu*"]);
    assert_eq!(found["Records"][0]["i"], id.as_str(), "{found}");
    assert_eq!(
        node.json(&["record", "search", &group, "size>3"])["Records"],
        serde_json::json!([])
    );
    let scratch = tempfile::tempdir().unwrap();
    let xml = scratch.path().join("query.xml");
    std::fs::write(
        &xml,
        r#"<peersearch><clause attrib="color" type="string">blue</clause></peersearch>"#,
    )
    .unwrap();
    let found = node.json(&["record", "search", &group, "--xml", xml.to_str().unwrap()]);
    assert_eq!(found["Records"][0]["i"], id.as_str(), "{found}");
    let broken = node.cli(&["record", "search", &group, "size<="]);
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("PEER_E_INVALID_SEARCH"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    // An XML file the node would refuse is refused as the node would
    // refuse it, before it is sent: too big, or not UTF-8 (UTF-16, say).
    for (name, bytes) in [
        ("big.xml", vec![b' '; 70_000]),
        ("utf16.xml", vec![0xFF, 0xFE, b'<', 0]),
    ] {
        let path = scratch.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let refused = node.cli(&["record", "search", &group, "--xml", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains("PEER_E_INVALID_SEARCH"), "{name}: {stderr}");
    }
    let digest = node.json(&["group", "digest", &group]);
    assert_eq!(digest["Digest"].as_str().unwrap().len(), 64, "{digest}");
    let many = node.ok(&["record", "add", &group, "--data", "bulk", "--repeat", "3"]);
    assert_eq!(many.lines().count(), 3, "{many}");
    assert_ne!(node.json(&["group", "digest", &group]), digest);
    node.json(&["record", "delete", &group, &id]);
    node.json(&["group", "close", &group]);
    node.json(&["group", "open", &group]);
    node.json(&["group", "delete", &group]);
    assert!(
        node.json(&["group", "list"])["Groups"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// Runs the binary without a node.
fn peergroup(args: &[&str]) -> std::process::Output {
    isolated(&mut Command::new(BIN))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn exit_codes_tell_usage_refusal_and_an_unreachable_node_apart() {
    let help = String::from_utf8(peergroup(&["--help"]).stdout).unwrap();
    for line in [
        "2  usage error",
        "3  the node refused",
        "4  the node is unreachable",
    ] {
        assert!(help.contains(line), "--help documents {line:?}:\n{help}");
    }
    let node = TestNode::start();
    let group = node.ok(&["group", "create", "codes"]);
    // Usage: a malformed record id never reaches the node.
    let out = node.cli(&["record", "get", &group, "not-an-id"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Refused: the node answers PEER_E_RECORD_NOT_FOUND.
    let out = node.cli(&[
        "record",
        "get",
        &group,
        "00000000-0000-0000-0000-0000000000aa",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PEER_E_RECORD_NOT_FOUND") && stderr.contains("0x80630301"),
        "{stderr}"
    );
    // With --json the error is JSON on stderr.
    let out = node.cli(&[
        "--json",
        "record",
        "get",
        &group,
        "00000000-0000-0000-0000-0000000000aa",
    ]);
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["name"], "PEER_E_RECORD_NOT_FOUND");
    assert_eq!(error["error"]["exit"], 3);
    // Unreachable: no node in this data directory; a token it refuses.
    let empty = tempfile::tempdir().unwrap();
    let out = peergroup(&["--data-dir", empty.path().to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node is running"));
    let wrong = empty.path().join("token");
    std::fs::write(&wrong, "0000").unwrap();
    let out = node.cli(&["--token-file", wrong.to_str().unwrap(), "status"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    // A node that stopped.
    let dir = node.dir.clone();
    let url = node.url.clone();
    let token = node.dir.join("api.token");
    let copy = empty.path().join("api.token.copy");
    std::fs::copy(&token, &copy).unwrap();
    assert!(node.stop());
    assert!(
        !dir.join("api.url").exists(),
        "a clean stop removes api.url"
    );
    let out = peergroup(&[
        "--api",
        &url,
        "--token-file",
        copy.to_str().unwrap(),
        "status",
    ]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
}

#[test]
fn configuration_precedence_is_defaults_file_env_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("peergroup.toml");
    std::fs::write(
        &file,
        "listen = [\"/ip4/127.0.0.1/tcp/5001\"]\nmdns = false\napi_listen = \"127.0.0.1:5101\"\n",
    )
    .unwrap();
    let show = |env: &[(&str, &str)], args: &[&str]| -> Value {
        let mut command = Command::new(BIN);
        isolated(&mut command).arg("--config").arg(&file);
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command
            .args(["--json", "config", "show"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from_file = show(&[], &[]);
    assert_eq!(from_file["listen"]["value"][0], "/ip4/127.0.0.1/tcp/5001");
    assert!(
        from_file["listen"]["source"]
            .as_str()
            .unwrap()
            .starts_with("file ")
    );
    assert_eq!(from_file["mdns"]["value"], false);
    assert_eq!(from_file["kademlia"]["value"], true);
    assert_eq!(from_file["kademlia"]["source"], "default");
    let from_env = show(
        &[
            ("PEERGROUP_LISTEN", "/ip4/127.0.0.1/tcp/5002"),
            ("PEERGROUP_MDNS", "true"),
        ],
        &[],
    );
    assert_eq!(from_env["listen"]["value"][0], "/ip4/127.0.0.1/tcp/5002");
    assert_eq!(from_env["listen"]["source"], "env PEERGROUP_LISTEN");
    assert_eq!(from_env["mdns"]["value"], true);
    assert_eq!(from_env["api_listen"]["value"], "127.0.0.1:5101");
    let from_flags = show(
        &[
            ("PEERGROUP_LISTEN", "/ip4/127.0.0.1/tcp/5002"),
            ("PEERGROUP_MDNS", "true"),
        ],
        &["--listen", "/ip4/127.0.0.1/tcp/5003", "--no-mdns"],
    );
    assert_eq!(from_flags["listen"]["value"][0], "/ip4/127.0.0.1/tcp/5003");
    assert_eq!(from_flags["listen"]["source"], "flag --listen");
    assert_eq!(from_flags["mdns"]["source"], "flag --no-mdns");
    // The text form names every source too.
    let out = isolated(&mut Command::new(BIN))
        .args(["config", "show"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("listen = [\"/ip4/0.0.0.0/tcp/3587\"]  # default"),
        "{text}"
    );

    // A bad file or variable is a usage error that names it.
    std::fs::write(&file, "listne = []\n").unwrap();
    let out = isolated(&mut Command::new(BIN))
        .arg("--config")
        .arg(&file)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listne"),
        "{out:?}"
    );
    let out = isolated(&mut Command::new(BIN))
        .env("PEERGROUP_MDNS", "perhaps")
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("PEERGROUP_MDNS"),
        "{out:?}"
    );
}

#[test]
fn a_password_group_admits_a_joiner_who_knows_the_password() {
    let alice = TestNode::start();
    let group = alice.ok(&[
        "group",
        "create",
        "club",
        "--password",
        "correct horse battery",
    ]);
    let invitation = alice.ok(&["invite", "password", &group]);
    let bob = TestNode::start();
    let out = bob.cli(&[
        "join",
        &invitation,
        "--password",
        "wrong password here",
        "--address",
        &alice.addr,
        "--no-progress",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a wrong password is refused: {out:?}"
    );
    // After a wrong guess the group makes the next attempt wait (online
    // guessing is throttled): retry until it is let in.
    crate::support::eventually(60, || {
        let out = bob.cli(&[
            "join",
            &invitation,
            "--password",
            "correct horse battery",
            "--address",
            &alice.addr,
            "--no-progress",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || stderr.contains("too many password attempts"),
            "{stderr}"
        );
        out.status.success().then_some(())
    });
    let id = bob.ok(&["record", "add", &group, "--data", "from bob"]);
    let got = crate::support::eventually(30, || {
        let out = alice.cli(&["record", "get", &group, &id]);
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    });
    assert_eq!(got.trim(), "from bob");
}

#[test]
fn a_restarted_node_keeps_its_peer_id_identities_groups_and_records() {
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_in(dir.path());
    let peer_id = node.peer_id.clone();
    let identities = node.json(&["identity", "list"]);
    node.ok(&["identity", "create", "extra"]);
    let group = node.ok(&["group", "create", "durable"]);
    let ids: Vec<String> = (0..20)
        .map(|n| node.ok(&["record", "add", &group, "--data", &format!("record {n}")]))
        .collect();
    let records = node.json(&["record", "list", &group]);
    assert!(node.stop(), "SIGTERM is a clean stop");

    let again = TestNode::start_in(dir.path());
    assert_eq!(again.peer_id, peer_id);
    let now = again.json(&["identity", "list"]);
    assert_eq!(
        now["Identities"].as_array().unwrap().len(),
        identities["Identities"].as_array().unwrap().len() + 1
    );
    assert_eq!(
        again.json(&["group", "status", &group])["Status"]["ready"],
        true,
        "the group is back online"
    );
    assert_eq!(again.json(&["record", "list", &group]), records);
    assert_eq!(again.ok(&["record", "get", &group, &ids[19]]), "record 19");
}

/// What a user of a shell does to the CLI: pipes it into `head`, follows
/// events while the node stops, hands it a file too large, asks for zero
/// events.
#[test]
fn the_cli_behaves_in_pipelines_and_at_the_edges() {
    use std::io::{BufRead, BufReader, Read};
    let node = TestNode::start();
    let group = node.ok(&["group", "create", "edges"]);
    node.ok(&[
        "record", "add", &group, "--data", "line", "--repeat", "1500",
    ]);

    // `record list --limit all | head -1`: the reader goes away while
    // more than a pipe's buffer is still to come; the CLI ends quietly.
    let mut list = isolated(&mut Command::new(BIN))
        .arg("--data-dir")
        .arg(&node.dir)
        .args(["record", "list", &group, "--limit", "all"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(list.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let status = list.wait().unwrap();
    let mut stderr = String::new();
    list.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(first.contains("line"), "{first}");
    assert!(
        status.success(),
        "a closed pipe is no failure: {status:?} {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A data file over the record limit is refused before it is sent.
    let big = node.dir.join("big.bin");
    std::fs::write(&big, vec![7u8; 600 * 1024]).unwrap();
    let out = node.cli(&[
        "record",
        "add",
        &group,
        "--data-file",
        big.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("PEER_E_MAX_RECORD_SIZE_EXCEEDED"));

    // Zero events is a usage error, not a follower that never ends.
    assert_eq!(node.cli(&["events", "--count", "0"]).status.code(), Some(2));

    // A follower of the event stream does not hold the node's shutdown.
    let mut follower = isolated(&mut Command::new(BIN))
        .arg("--data-dir")
        .arg(&node.dir)
        .arg("events")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(
        node.stop(),
        "the node stops cleanly while a client follows its events"
    );
    let _ = follower.kill();
    let _ = follower.wait();
}
