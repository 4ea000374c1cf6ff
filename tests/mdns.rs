//! Discovery through the link-local cloud (mDNS), with no explicit dial.
//!
//! mDNS ignores loopback interfaces and must not send multicast onto the
//! machine's real network, so the test builds its own network: a fresh
//! network namespace with a veth pair (10.213.0.1/24 on one end, multicast on).
//! The test re-runs itself inside that namespace (`ip netns exec`), where two
//! nodes find each other by mDNS alone. It needs root and iproute2, which CI
//! has (`.ci/run` installs iproute2 when it is missing).

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use peergroup::protocol::Role;

use crate::support::*;

const CHILD_ENV: &str = "PEERGROUP_MDNS_CHILD";
const ADDRESS: &str = "10.213.0.1";

struct Namespace(String);

impl Namespace {
    fn create() -> Namespace {
        let name = format!("pgmdns{}", std::process::id());
        let ns = Namespace(name.clone());
        let steps: [&[&str]; 7] = [
            &["netns", "add", &name],
            &["-n", &name, "link", "set", "lo", "up"],
            &[
                "-n", &name, "link", "add", "pg0", "type", "veth", "peer", "name", "pg1",
            ],
            &[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{ADDRESS}/24"),
                "dev",
                "pg0",
            ],
            &["-n", &name, "link", "set", "pg0", "multicast", "on", "up"],
            &["-n", &name, "link", "set", "pg1", "up"],
            &["-n", &name, "route", "add", "224.0.0.0/4", "dev", "pg0"],
        ];
        for args in steps {
            let status = Command::new("ip")
                .args(args)
                .status()
                .unwrap_or_else(|e| panic!("this test needs iproute2 (`ip`) and root: {e}"));
            assert!(
                status.success(),
                "`ip {}` failed: this test needs root",
                args.join(" ")
            );
        }
        ns
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn members_find_each_other_through_mdns() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return inside_the_namespace();
    }
    let ns = Namespace::create();
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0])
        .arg(exe)
        .args([
            "--exact",
            "mdns::members_find_each_other_through_mdns",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the mDNS child did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("mdns discovery ok"),
        "child output:\n{stdout}\n{stderr}"
    );
}

fn inside_the_namespace() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let here: libp2p::Multiaddr = format!("/ip4/{ADDRESS}/tcp/0").parse().unwrap();
        let builder = || config().listen([here.clone()]).mdns(true).kademlia(false);
        let (creator, group) = group_with_creator(builder()).await;
        let id = creator
            .handle
            .add_record(
                &group,
                peergroup::protocol::NewRecord::new(
                    peergroup::protocol::RecordType::from_u128(
                        0x6e6f7465_0000_4000_8000_000000000001,
                    ),
                    now().saturating_add_secs(600),
                )
                .with_data(b"found on the link".to_vec()),
            )
            .await
            .unwrap();
        let joiner = invited(&creator, &group, Role::Member, builder(), None).await;
        // No address: the joiner must find the creator by mDNS.
        joiner.handle.connect(&group).await.unwrap();
        let record = joiner.handle.get_record(&group, id).await.unwrap();
        assert_eq!(record.data, b"found on the link");
        println!("mdns discovery ok");
    });
}
