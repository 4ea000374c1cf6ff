//! Discovery through the link-local cloud (mDNS), with no explicit dial.
//!
//! mDNS ignores loopback interfaces and must not send multicast onto the
//! machine's real network, so the test builds its own network: a fresh
//! network namespace with a veth pair (10.213.0.1/24 on one end, multicast on).
//! The test re-runs itself inside that namespace (`ip netns exec`), where two
//! nodes find each other by mDNS alone. It needs root and iproute2, which CI
//! has (`.ci/run` installs iproute2 when it is missing).

use std::time::Duration;

use peergroup::protocol::Role;

use crate::{netns::Namespace, support::*};

const ADDRESS: &str = "10.213.0.1";

#[test]
fn members_find_each_other_through_mdns() {
    if crate::netns::inside() {
        return inside_the_namespace();
    }
    let address = format!("{ADDRESS}/24");
    let ns = Namespace::create(
        "mdns",
        &[
            &["link", "add", "pg0", "type", "veth", "peer", "name", "pg1"],
            &["addr", "add", &address, "dev", "pg0"],
            &["link", "set", "pg0", "multicast", "on", "up"],
            &["link", "set", "pg1", "up"],
            &["route", "add", "224.0.0.0/4", "dev", "pg0"],
        ],
    );
    let stdout = ns.run_test(
        "mdns::members_find_each_other_through_mdns",
        Duration::from_secs(90),
    );
    assert!(
        stdout.contains("mdns discovery ok"),
        "child output:\n{stdout}"
    );
}

fn inside_the_namespace() {
    crate::netns::runtime().block_on(async {
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
