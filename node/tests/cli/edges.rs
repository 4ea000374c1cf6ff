//! Issue 15's rough edges of the CLI, each shown against the real binary:
//! options where they apply, dates for people, paged record listings,
//! errors in words, exit codes, and client commands that need only the
//! data directory.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Output, Stdio},
};

use crate::support::{BIN, TestNode, eventually, isolated, run_command};

/// Runs the binary without a node.
fn peergroup(args: &[&str]) -> Output {
    isolated(&mut Command::new(BIN))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn log_format_is_an_option_of_run_only() {
    for command in [
        &["record", "--help"][..],
        &["status", "--help"],
        &["--help"],
    ] {
        let out = peergroup(command);
        assert!(out.status.success(), "{out:?}");
        assert!(
            !stdout(&out).contains("--log-format"),
            "{command:?} shows --log-format:\n{}",
            stdout(&out)
        );
    }
    let run = peergroup(&["run", "--help"]);
    assert!(stdout(&run).contains("--log-format"), "{}", stdout(&run));
}

/// A node whose stderr is a pipe, not a terminal: its log is plain text,
/// without colour codes, even when NO_COLOR is not set.
#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = run_command(dir.path())
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        log.read_to_string(&mut text).unwrap();
        text
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("control api ") {
            break;
        }
    }
    // Keep reading stdout so that the node never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    let log = reader.join().unwrap();
    assert!(log.contains("INFO"), "the node logged: {log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in a log file: {log:?}"
    );
}

/// Client commands need the data directory (or --api and --token-file),
/// never the node's run configuration: a wrong run-only setting in the
/// environment or the file does not stop them; `run` and `config show`
/// still refuse it.
#[test]
fn a_bad_run_setting_does_not_stop_client_commands() {
    let node = TestNode::start();
    let bad_env = [
        ("PEERGROUP_MDNS", "perhaps"),
        ("PEERGROUP_LISTEN", "not-a-multiaddr"),
        ("PEERGROUP_API_LISTEN", "nowhere"),
    ];
    let out = isolated(&mut Command::new(BIN))
        .envs(bad_env)
        .arg("--data-dir")
        .arg(&node.dir)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&node.peer_id));

    // The data directory from a file whose run settings are wrong.
    let file = node.dir.join("client.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = {:?}\nmdns = \"perhaps\"\nlisten = 5\nno_such_key = 1\n",
            node.dir.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = isolated(&mut Command::new(BIN))
        .envs(bad_env)
        .arg("--config")
        .arg(&file)
        .args(["group", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // `run` and `config show` use the run settings: still a usage error.
    let out = isolated(&mut Command::new(BIN))
        .env("PEERGROUP_MDNS", "perhaps")
        .arg("--data-dir")
        .arg(&node.dir)
        .args(["config", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A file that is not TOML at all, when the data directory comes from
    // it, is still reported.
    std::fs::write(&file, "data_dir = [unclosed\n").unwrap();
    let out = isolated(&mut Command::new(BIN))
        .arg("--config")
        .arg(&file)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr(&out).contains("client.toml"), "{}", stderr(&out));
}

/// `config show` shows what `run` would use and, when a node runs in the
/// data directory, what that node uses now (its real ports).
#[test]
fn config_show_labels_what_the_running_node_uses() {
    let node = TestNode::start();
    let port = node
        .addr
        .split("/tcp/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let shown = node.json(&["config", "show"]);
    assert_eq!(shown["listen"]["value"][0], "/ip4/0.0.0.0/tcp/3587");
    let running = &shown["running"];
    assert_eq!(running["peer_id"], node.peer_id.as_str(), "{shown}");
    assert_eq!(running["api"], node.url.as_str(), "{shown}");
    assert!(
        running["listen"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains(&format!("/tcp/{port}"))),
        "{shown}"
    );
    let text = node.ok(&["config", "show"]);
    assert!(
        text.contains("# the node running in this data directory now uses:"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("running.listen = ") && l.contains(&format!("/tcp/{port}"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("running.api = \"{}\"", node.url)),
        "{text}"
    );
    // Without a node: said so, and null in JSON.
    let empty = tempfile::tempdir().unwrap();
    let out = peergroup(&[
        "--data-dir",
        empty.path().to_str().unwrap(),
        "config",
        "show",
    ]);
    assert!(
        stdout(&out).contains("# no node is running in this data directory"),
        "{out:?}"
    );
    let out = peergroup(&[
        "--json",
        "--data-dir",
        empty.path().to_str().unwrap(),
        "config",
        "show",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["running"].is_null(), "{json}");
}

/// Milliseconds since the epoch now.
fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// An invitation made without an expiry is valid for a year (not until
/// the creator's credential ends, about a thousand years on), never beyond
/// the inviter's own credential; people see its dates in RFC 3339, and
/// `sync status` the last completed synchronization's (`--json`: objects
/// with `peer` and `at`).
#[test]
fn an_invitation_lasts_a_year_by_default_and_shows_dates() {
    let alice = TestNode::start();
    let group = alice.ok(&["group", "create", "expiry"]);
    let bob = TestNode::start();
    let bob_text = bob.ok(&["identity", "show", "--text"]);
    let invitation = alice.ok(&["invite", "create", &group, &bob_text]);
    let parsed = alice.json(&["invite", "parse", &invitation]);
    let until = parsed["not_after"].as_u64().unwrap();
    let year = now_ms() + 365 * DAY_MS;
    assert!(
        until.abs_diff(year) < 600_000,
        "valid until {until}, a year from now is {year}"
    );
    let text = alice.ok(&["invite", "parse", &invitation]);
    let line = text
        .lines()
        .find(|l| l.starts_with("valid until "))
        .unwrap();
    let date = line.trim_start_matches("valid until ");
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T',
        "an RFC 3339 date: {text}"
    );
    assert!(!text.contains("ms since"), "{text}");

    // An inviting member whose credential ends in ten days: what it
    // invites without an expiry ends with its credential.
    let short = alice.ok(&[
        "invite",
        "create",
        &group,
        &bob_text,
        "--role",
        "inviting-member",
        "--expires-in",
        "10d",
    ]);
    let bob_until = bob.json(&["invite", "parse", &short])["not_after"]
        .as_u64()
        .unwrap();
    bob.ok(&["join", &short, "--address", &alice.addr, "--no-progress"]);
    // The joiner's first copy completed: when, as a date.
    let synced = eventually(30, || {
        let status = bob.ok(&["sync", "status", &group]);
        status.contains("last completed with").then_some(status)
    });
    let line = synced
        .lines()
        .find(|l| l.starts_with("last completed with"))
        .unwrap();
    let date = line.rsplit(' ').next().unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.starts_with("20"),
        "{synced}"
    );
    // With --json, the API's objects with named fields: the peer id and
    // the time in milliseconds.
    assert!(
        line.starts_with(&format!("last completed with {} at ", alice.peer_id)),
        "{line}"
    );
    let status = bob.json(&["sync", "status", &group]);
    let last = status["Sync"]["last_completed"].as_array().unwrap();
    assert_eq!(last.len(), 1, "{status}");
    assert_eq!(last[0]["peer"], alice.peer_id.as_str(), "{status}");
    let at = last[0]["at"].as_u64().unwrap();
    assert!(at.abs_diff(now_ms()) < 600_000, "{status}");
    assert_eq!(last[0].as_object().unwrap().len(), 2, "{status}");
    let carol_text = bob.json(&["identity", "create", "carol"])["Identity"]["payload"]["n"]
        .as_str()
        .map(|name| bob.ok(&["identity", "show", name, "--text"]))
        .unwrap();
    let from_bob = bob.ok(&["invite", "create", &group, &carol_text]);
    let carol_until = bob.json(&["invite", "parse", &from_bob])["not_after"]
        .as_u64()
        .unwrap();
    assert_eq!(carol_until, bob_until, "capped at the inviter's credential");
    assert!(bob_until.abs_diff(now_ms() + 10 * DAY_MS) < 600_000);
}

/// The membership record type (reserved: the group's internal records).
const MEMBERSHIP: &str = "01000000-0000-0000-0000-000000000000";

/// `record list`: the application's records only (internal ones on
/// request), with their attributes, a page of 100 by default with the
/// cursor of the next (the last id listed), `--limit all`. The API's
/// `Records` answer is an array: every record for a request of before
/// paging, pages of exactly `limit` records followed by the last id.
#[test]
fn record_list_pages_hides_internal_records_and_shows_attributes() {
    let node = TestNode::start();
    let group = node.ok(&["group", "create", "paging"]);
    let tagged = node.ok(&[
        "record",
        "add",
        &group,
        "--data",
        "tagged",
        "--attr",
        "color=blue",
        "--attr",
        "note=two words",
        "--int-attr",
        "size=3",
    ]);
    node.ok(&["record", "add", &group, "--data", "bulk", "--repeat", "250"]);

    // The first page: 100 records, and on stderr the cursor of the next.
    let out = node.cli(&["record", "list", &group]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(page.len(), 100);
    let last = page[99].split('\t').next().unwrap();
    assert!(
        stderr(&out).contains(&format!("--after {last}")),
        "{}",
        stderr(&out)
    );

    // Every record, each line with its attributes; no internal record.
    let all = node.ok(&["record", "list", &group, "--limit", "all"]);
    assert_eq!(all.lines().count(), 251, "{all}");
    let line = all.lines().find(|l| l.starts_with(&tagged)).unwrap();
    assert!(
        line.contains("color=blue note=\"two words\" size=3") && line.ends_with("\ttagged"),
        "{line}"
    );
    assert!(
        all.lines()
            .filter(|l| *l != line)
            .all(|l| l.contains("\t-\tbulk ")),
        "{all}"
    );
    // A joiner publishes its membership record: internal, so listed only
    // on request, or by its type.
    let bob = TestNode::start();
    let invitation = node.ok(&[
        "invite",
        "create",
        &group,
        &bob.ok(&["identity", "show", "--text"]),
    ]);
    bob.ok(&[
        "join",
        &invitation,
        "--address",
        &node.addr,
        "--no-progress",
    ]);
    let memberships = eventually(30, || {
        let listed = node.ok(&["record", "list", &group, "--type", MEMBERSHIP]);
        (!listed.is_empty()).then_some(listed)
    });
    assert_eq!(memberships.lines().count(), 1, "{memberships}");
    let with_internal = node.ok(&["record", "list", &group, "--limit", "all", "--internal"]);
    assert_eq!(with_internal.lines().count(), 252, "{with_internal}");
    assert!(with_internal.contains(&memberships));
    assert_eq!(node.ok(&["record", "list", &group, "--limit", "all"]), all);

    // A page of exactly the records left says none follow; one fewer
    // names its last id as the cursor, with --json too.
    let out = node.cli(&["record", "list", &group, "--limit", "251"]);
    assert_eq!(stdout(&out).lines().count(), 251);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    let out = node.cli(&["--json", "record", "list", &group, "--limit", "250"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let listed = listed["Records"].as_array().expect("an array of records");
    assert_eq!(listed.len(), 250);
    let last = listed[249]["i"].as_str().unwrap();
    assert!(
        stderr(&out).contains(&format!("--after {last}")),
        "{}",
        stderr(&out)
    );
    let rest = node.ok(&["record", "list", &group, "--after", last]);
    assert_eq!(rest.lines().count(), 1);
    assert!(all.ends_with(&rest), "{rest}");

    // The CLI's --json pages: following the last id lists every record
    // once, in order.
    let mut ids: Vec<String> = Vec::new();
    loop {
        let mut args = vec!["record", "list", &group, "--limit", "100"];
        if let Some(last) = ids.last() {
            args.extend(["--after", last]);
        }
        let page = node.json(&args);
        let records = page["Records"].as_array().unwrap();
        ids.extend(records.iter().map(|r| r["i"].as_str().unwrap().to_owned()));
        if records.len() < 100 {
            break;
        }
    }
    assert_eq!(ids.len(), 251);
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, ids, "in id order, none twice");

    // The API: a request from before paging gets every record (but the
    // internal ones), as an array.
    let (status, body) = node.request(serde_json::json!(
        {"Records": {"group": group, "record_type": null}}
    ));
    assert_eq!(status, 200, "{body}");
    let every: Vec<&str> = body["Records"]
        .as_array()
        .expect("an array of records")
        .iter()
        .map(|r| r["i"].as_str().unwrap())
        .collect();
    assert_eq!(every, ids);
    // Pages: exactly `limit` records until fewer are left, the next page
    // after the last id; a full page may be followed by an empty one.
    let page = |after: Option<&str>, limit: u32| {
        let (status, body) = node.request(serde_json::json!(
            {"Records": {"group": group, "after": after, "limit": limit}}
        ));
        assert_eq!(status, 200, "{body}");
        body["Records"]
            .as_array()
            .expect("an array of records")
            .iter()
            .map(|r| r["i"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut paged: Vec<String> = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let records = page(paged.last().map(String::as_str), 50);
        sizes.push(records.len());
        paged.extend(records);
        if *sizes.last().unwrap() < 50 {
            break;
        }
    }
    assert_eq!(sizes, [50, 50, 50, 50, 50, 1]);
    assert_eq!(paged, ids);
    assert_eq!(page(Some(&ids[250]), 50), Vec::<String>::new());
    assert_eq!(page(Some(&ids[200]), 50), ids[201..]);
    // With internal records, and more than 1,000 taken as 1,000.
    let (_, body) = node.request(serde_json::json!(
        {"Records": {"group": group, "internal": true, "limit": 5000}}
    ));
    assert_eq!(body["Records"].as_array().unwrap().len(), 252);
    // A limit of 0 is refused, by the API and the CLI.
    let (status, body) = node.request(serde_json::json!(
        {"Records": {"group": group, "limit": 0}}
    ));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["name"], "E_INVALIDARG");
    let out = node.cli(&["record", "list", &group, "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `UpdateRecord` ignores a supplied creator, group, version and creation
/// time, as Windows does, and says so in `record update --help`.
#[test]
fn an_update_ignores_creator_group_version_and_creation_time_as_documented() {
    let help = stdout(&peergroup(&["record", "update", "--help"]));
    // (Words, whatever the wrapping.)
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for words in [
        "type, flags and format cannot",
        "creator, group, version and creation time",
        "are ignored",
    ] {
        assert!(help.contains(words), "{words:?} in:\n{help}");
    }
    let node = TestNode::start();
    let group = node.ok(&["group", "create", "updates"]);
    let other = node.ok(&["group", "create", "other"]);
    let id = node.ok(&["record", "add", &group, "--data", "one"]);
    let before = node.json(&["record", "get", &group, &id])["Record"].clone();
    let mut record = before.clone();
    record["c"] = serde_json::json!(other);
    record["g"] = serde_json::json!(other);
    record["n"] = serde_json::json!(41);
    record["tc"] = serde_json::json!(1);
    record["d"] = serde_json::json!("dHdv");
    let (status, body) = node.request(serde_json::json!(
        {"UpdateRecord": {"group": group, "record": record}}
    ));
    assert_eq!(status, 200, "{body}");
    let after = node.json(&["record", "get", &group, &id])["Record"].clone();
    assert_eq!(after["d"], "dHdv", "the data changed: {after}");
    assert_eq!(after["n"], 2, "the version is the node's: {after}");
    for kept in ["c", "g", "tc", "t", "l", "f"] {
        assert_eq!(after[kept], before[kept], "{kept}: {after}");
    }
}

/// A text that does not read is described in words (never the decoder's
/// internals) and is a usage error (2) when it is an argument; a local
/// file that cannot be read or written is an I/O failure (1).
#[test]
fn errors_say_what_is_wrong_and_exit_codes_tell_arguments_from_io() {
    let node = TestNode::start();
    let group = node.ok(&["group", "create", "words"]);
    let other = node.json(&["identity", "create", "other"])["Identity"]["payload"]["n"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = node.ok(&["identity", "show", &other, "--text"]);
    let cut = &text[..text.len() - 15];
    let internals = |s: &str| {
        ["Core(", "Eof", "expect:", "Mismatch"]
            .iter()
            .any(|w| s.contains(w))
    };

    let out = node.cli(&["invite", "create", &group, cut]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains("the identity text is cut short or damaged"),
        "{}",
        stderr(&out)
    );
    assert!(!internals(&stderr(&out)), "{}", stderr(&out));
    let out = node.cli(&["invite", "create", &group, "garbage"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr(&out).contains("not an identity text"),
        "{}",
        stderr(&out)
    );
    // Through the API: the same words, the same error.
    let (status, body) = node.request(serde_json::json!({"CreateInvitation": {
        "group": group, "subject": cut, "role": "member", "expires": null
    }}));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["name"], "E_INVALIDARG");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cut short or damaged") && !internals(message),
        "{message}"
    );

    let invitation = node.ok(&["invite", "create", &group, &text]);
    let cut = &invitation[..invitation.len() - 15];
    for args in [
        &["invite", "parse", cut][..],
        &["join", cut, "--no-progress"],
    ] {
        let out = node.cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            stderr(&out).contains("the invitation text is cut short or damaged"),
            "{}",
            stderr(&out)
        );
        assert!(!internals(&stderr(&out)), "{}", stderr(&out));
    }

    // Local files: reading or writing one that fails is exit 1.
    let missing = node.dir.join("no/such/file");
    let missing = missing.to_str().unwrap();
    let out = node.cli(&["record", "add", &group, "--data-file", missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    let id = node.ok(&["record", "add", &group, "--data", "x"]);
    let out = node.cli(&["record", "get", &group, &id, "--out", missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = node.cli(&["identity", "export", &other, "--out", missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let out = node.cli(&["identity", "import", missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// `peergroup run` on a data directory whose store is `bytes`: its stderr
/// (it must fail).
fn run_on_store(dir: &std::path::Path, bytes: &[u8]) -> String {
    std::fs::write(dir.join("peergroup.redb"), bytes).unwrap();
    let out = run_command(dir).stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success(), "{out:?}");
    stderr(&out)
}

/// A store that does not open says what to do: restore a backup, or move
/// the file aside and join again, with the identities from their exports.
#[test]
fn a_damaged_store_says_what_to_do() {
    // A node's store, then cut in half.
    let dir = tempfile::tempdir().unwrap();
    let node = TestNode::start_in(dir.path());
    node.ok(&["group", "create", "damaged"]);
    assert!(node.stop());
    let store = std::fs::read(dir.path().join("peergroup.redb")).unwrap();
    let cut = run_on_store(dir.path(), &store[..store.len() / 2]);
    // Not a store at all.
    let garbage = run_on_store(dir.path(), &[0x5a; 8192]);
    for log in [cut, garbage] {
        let words = log.split_whitespace().collect::<Vec<_>>().join(" ");
        for advice in [
            "restore the file from a backup",
            "move it aside",
            "join your groups again",
            "peergroup identity export",
        ] {
            assert!(words.contains(advice), "{advice:?} in: {log}");
        }
    }
}
