//! The control API over HTTP: authentication, malformed input, the status
//! of each peer-group error, the event stream, the schema and metrics.
//! Every rejected call is checked to change nothing.

use serde_json::{Value, json};

use crate::support::{TestNode, eventually};

/// What a rejected call must leave as it was: identities, groups, and the
/// records and digest of `group`.
fn snapshot(node: &TestNode, group: &str) -> Vec<Value> {
    let mut state = vec![
        node.request(json!("Identities")).1,
        node.request(json!("Groups")).1,
    ];
    state.push(
        node.request(json!({"Records": {"group": group, "internal": true}}))
            .1,
    );
    state.push(node.request(json!({"Digest": {"group": group}})).1);
    state
}

/// Asserts a refusal: `status`, `name`, and a message.
fn refused(answer: (u16, Value), status: u16, name: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["name"], name, "{body}");
    assert!(body["error"]["code"].as_u64().is_some(), "{body}");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{body}"
    );
}

fn new_group(node: &TestNode) -> String {
    node.ok(&["group", "create", "apitest"])
}

#[test]
fn a_missing_or_wrong_token_is_401_on_every_route_and_changes_nothing() {
    let node = TestNode::start();
    let group = new_group(&node);
    let before = snapshot(&node, &group);
    let create =
        json!({"CreateIdentity": {"classifier": "mallory", "friendly_name": ""}}).to_string();
    for token in [None, Some("wrong"), Some("")] {
        let (status, body) = node.post(&create, token);
        assert_eq!(status, 401, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["name"], "E_ACCESSDENIED");
        for path in ["/v1/events", "/v1/openapi.json", "/metrics"] {
            assert_eq!(node.get(path, token).0, 401, "{path} with {token:?}");
        }
    }
    // The scheme is case-insensitive; the token is not.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut answer = agent
        .post(format!("{}/v1/request", node.url))
        .header("Authorization", &format!("bearer {}", node.token()))
        .content_type("application/json")
        .send("\"PeerId\"")
        .unwrap();
    assert_eq!(
        answer.status().as_u16(),
        200,
        "{:?}",
        answer.body_mut().read_to_string()
    );
    assert_eq!(
        node.post("\"PeerId\"", Some(&node.token().to_uppercase()))
            .0,
        401
    );
    // A token of another node is as wrong as any.
    let other = TestNode::start();
    assert_eq!(node.post(&create, Some(&other.token())).0, 401);
    assert_eq!(snapshot(&node, &group), before);
}

#[test]
fn malformed_json_and_bad_arguments_are_400_naming_the_problem() {
    let node = TestNode::start();
    let group = new_group(&node);
    let before = snapshot(&node, &group);
    let token = node.token();
    for (body, mentions) in [
        ("{not json", "malformed request"),
        (r#"{"NoSuchRequest": {}}"#, "NoSuchRequest"),
        (r#"{"Status": {"group": "not a peer name"}}"#, "peer name"),
        (r#"{"Status": {"group": 7}}"#, "invalid type"),
        (
            r#"{"CreateIdentity": {"classifier": "x"}}"#,
            "friendly_name",
        ),
        (
            r#"{"GetRecord": {"group": "QmW1pCmYCqSSR3WQ2xU2xmFVTXWAmDTVSxS1h9bn9YaTjy.x", "id": "nope"}}"#,
            "RecordId",
        ),
    ] {
        let (status, answer) = node.post(body, Some(&token));
        assert_eq!(status, 400, "{body}: {answer}");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"]["name"], "E_INVALIDARG", "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(mentions), "{body}: {message}");
    }
    // Unknown routes and methods answer with an error body too.
    let (status, answer) = node.get("/v1/nothing", Some(&token));
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("PEER_E_NOT_FOUND"), "{answer}");
    let (status, answer) = node.get("/v1/request", Some(&token));
    assert_eq!(status, 405, "{answer}");
    assert!(answer.contains("GET is not allowed"), "{answer}");
    // A bad argument the node itself refuses: a classifier with a control
    // character.
    refused(
        node.request(json!({"CreateIdentity": {"classifier": "bad\u{7}", "friendly_name": ""}})),
        400,
        "PEER_E_INVALID_CLASSIFIER",
    );
    assert_eq!(snapshot(&node, &group), before);
}

#[test]
fn peer_errors_map_to_their_documented_status_and_change_nothing() {
    let alice = TestNode::start();
    let group = new_group(&alice);
    let id = alice.ok(&["record", "add", &group, "--data", "alice's"]);
    let before = snapshot(&alice, &group);
    let default = alice.json(&["identity", "show"])["peer_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut exported = alice
        .request(json!({"ExportIdentity": {"identity": default}}))
        .1;
    // ImportIdentity takes the export's fields but its derived peer name.
    exported["ExportedIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("peer_name");
    let far_future = 4_000_000_000_000u64;

    // 404: an unknown record, an unknown group.
    refused(
        alice.request(
            json!({"GetRecord": {"group": group, "id": "00000000-0000-0000-0000-0000000000aa"}}),
        ),
        404,
        "PEER_E_RECORD_NOT_FOUND",
    );
    let unknown = format!("{}.nosuchgroup", default.split('.').next().unwrap());
    let (status, body) = alice.request(json!({"Status": {"group": unknown}}));
    assert_eq!(status, 404, "{body}");
    // 409: the identity exists; it still has a group.
    refused(
        alice.request(json!({"ImportIdentity": exported["ExportedIdentity"]})),
        409,
        "PEER_E_ALREADY_EXISTS",
    );
    refused(
        alice.request(json!({"DeleteIdentity": {"identity": default}})),
        409,
        "PEER_E_GROUPS_EXIST",
    );
    // 413: data over 256 KiB.
    // Base64 of 256 KiB + 3 bytes.
    let big = "A".repeat(4 * (256usize * 1024 + 3).div_ceil(3));
    refused(
        alice.request(json!({"AddRecord": {"group": group, "record": {
            "record_type": "70656572-6772-6f75-7000-00000000c11d",
            "expires_at": far_future, "flags": 0, "attributes": [], "data": big}}})),
        413,
        "PEER_E_MAX_RECORD_SIZE_EXCEEDED",
    );
    // 400: an expiration in the past.
    refused(
        alice.request(json!({"AddRecord": {"group": group, "record": {
            "record_type": "70656572-6772-6f75-7000-00000000c11d",
            "expires_at": 1000, "flags": 0, "attributes": [], "data": ""}}})),
        400,
        "PEER_E_INVALID_RECORD_EXPIRATION",
    );
    assert_eq!(snapshot(&alice, &group), before);

    // 403: a member changes a record it did not create; an invitation for
    // somebody else.
    let bob = TestNode::start();
    let bob_text = bob.ok(&["identity", "show", "--text"]);
    let invitation = alice.ok(&["invite", "create", &group, &bob_text]);
    bob.ok(&[
        "join",
        &invitation,
        "--address",
        &alice.addr,
        "--no-progress",
    ]);
    let mut record = bob
        .request(json!({"GetRecord": {"group": group, "id": id}}))
        .1["Record"]
        .clone();
    record["d"] = json!("Ym9iJ3M=");
    // A joiner publishes its membership record once it is ready: wait for
    // it, so that the snapshot is of a settled store.
    eventually(30, || {
        let records = bob.request(json!({"Records": {"group": group, "record_type": "01000000-0000-0000-0000-000000000000"}})).1;
        (records["Records"].as_array().map_or(0, Vec::len) >= 1).then_some(())
    });
    let bob_before = snapshot(&bob, &group);
    refused(
        bob.request(json!({"UpdateRecord": {"group": group, "record": record}})),
        403,
        "PEER_E_NOT_AUTHORIZED",
    );
    assert_eq!(snapshot(&bob, &group), bob_before);
    let carol = TestNode::start();
    let carol_before = carol.request(json!("Groups")).1;
    let carol_identity = carol.json(&["identity", "show"])["peer_name"].clone();
    refused(
        carol.request(json!({"Join": {"identity": carol_identity, "invitation": invitation}})),
        403,
        "PEER_E_INVITATION_NOT_TRUSTED",
    );
    assert_eq!(carol.request(json!("Groups")).1, carol_before);
    assert_eq!(alice.ok(&["record", "get", &group, &id]), "alice's");
}

#[test]
fn events_stream_over_http_in_order() {
    use std::io::{BufRead, BufReader};
    let node = TestNode::start();
    let group = new_group(&node);
    let mut follower =
        crate::support::isolated(&mut std::process::Command::new(crate::support::BIN))
            .arg("--data-dir")
            .arg(&node.dir)
            .args([
                "--json",
                "events",
                "--kind",
                "RecordChanged",
                "--group",
                &group,
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = follower.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Until the follower is subscribed, probes may go unseen: add them
    // until one shows.
    eventually(30, || {
        node.ok(&["record", "add", &group, "--data", "probe"]);
        lines
            .recv_timeout(std::time::Duration::from_millis(300))
            .ok()
    });
    while lines.try_recv().is_ok() {}
    std::thread::sleep(std::time::Duration::from_millis(300));
    while lines.try_recv().is_ok() {}
    let ids: Vec<String> = (0..5)
        .map(|n| node.ok(&["record", "add", &group, "--data", &format!("r{n}")]))
        .collect();
    let id = node.ok(&["record", "update", &group, &ids[0], "--data", "r0 again"]);
    assert!(id.contains(&ids[0]));
    let got: Vec<Value> = (0..6)
        .map(|_| {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
            serde_json::from_str(&line).unwrap()
        })
        .collect();
    let _ = follower.kill();
    let _ = follower.wait();
    for (event, id) in got.iter().zip(&ids) {
        assert_eq!(event["type"], "RecordChanged");
        assert_eq!(event["change"], "Added");
        assert_eq!(event["id"], id.as_str(), "{got:?}");
        assert_eq!(event["group"], group.as_str());
    }
    assert_eq!(got[5]["change"], "Updated");
    assert_eq!(got[5]["id"], ids[0].as_str());
}

#[test]
fn the_schema_and_metrics_are_served() {
    let node = TestNode::start();
    let group = new_group(&node);
    node.ok(&["record", "add", &group, "--data", "x"]);
    let (status, schema) = node.get("/v1/openapi.json", Some(&node.token()));
    assert_eq!(status, 200);
    let on_disk = include_str!("../../../docs/openapi.json");
    assert!(schema == on_disk, "the served schema is docs/openapi.json");
    let metrics = eventually(10, || {
        let (status, text) = node.get("/metrics", Some(&node.token()));
        assert_eq!(status, 200);
        text.contains("peergroup_records_merged_total{change=\"added\"}")
            .then_some(text)
    });
    for name in [
        "peergroup_records_merged_total{change=\"deleted\"} 0",
        "peergroup_gossip_verdicts_total{verdict=\"reject\"} 0",
        "peergroup_sync_runs_total",
        "peergroup_sync_duration_seconds",
        "peergroup_neighbors",
        "peergroup_storage_queue_depth",
        "peergroup_libp2p_swarm_",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
}
