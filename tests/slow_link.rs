//! Issue 10: a joiner over a slow link. The old first copy sent pages of up
//! to 4 MiB and gave up on a member whose page did not arrive within the
//! 30 s request timeout; over 0.5 Mbit/s a group of 8 records of 256 KiB
//! (2 MiB, 34 s) never got ready. Fetches now ask for about 1 MiB, halve
//! on a timeout, keep what arrived and ask the member again.
//!
//! The test runs in a network namespace of its own whose loopback is shaped
//! to 0.5 Mbit/s with `tc` (token bucket; MTU 1500 so that packets fit the
//! bucket).

use std::time::Duration;

use peergroup::protocol::{NewRecord, RecordType, Role};

use crate::{
    netns::Namespace,
    support::{config, group_with_creator, invited, now},
};

#[test]
fn a_joiner_over_a_slow_link_becomes_ready() {
    if crate::netns::inside() {
        return inside_the_namespace();
    }
    let ns = Namespace::create(
        "slow",
        &[
            &["link", "set", "lo", "mtu", "1500"],
            &[
                "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate", "500kbit", "burst",
                "32kbit", "latency", "2s",
            ],
        ],
    );
    let stdout = ns.run_test(
        "slow_link::a_joiner_over_a_slow_link_becomes_ready",
        Duration::from_secs(150),
    );
    assert!(stdout.contains("slow link ok"), "child output:\n{stdout}");
}

fn inside_the_namespace() {
    crate::netns::runtime().block_on(async {
        let builder = || config().connect_timeout(Duration::from_secs(30));
        let (creator, group) = group_with_creator(builder()).await;
        let big = RecordType::from_u128(0x6269_6700_0000_4000_8000_0000_0000_0001);
        let mut ids = Vec::new();
        for i in 0..8u8 {
            let data = vec![i; peergroup::protocol::MAX_RECORD_DATA];
            let record = NewRecord::new(big, now().saturating_add_secs(3600)).with_data(data);
            ids.push(creator.handle.add_record(&group, record).await.unwrap());
        }
        let addrs = creator.handle.listen_addrs().await.unwrap();
        let joiner = invited(&creator, &group, Role::Member, builder(), None).await;
        let started = std::time::Instant::now();
        joiner
            .handle
            .connect_by_address(&group, addrs)
            .await
            .unwrap();
        assert!(joiner.handle.status(&group).await.unwrap().ready);
        for id in ids {
            assert!(joiner.handle.get_record(&group, id).await.is_ok());
        }
        println!(
            "slow link ok: 2 MiB over 0.5 Mbit/s in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    });
}
