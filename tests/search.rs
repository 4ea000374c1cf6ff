//! `PeerGroupSearchRecords` through the node: both query forms, the local
//! replica only (before the group is ready too), errors that change nothing.

use peergroup::node::{Error as NodeError, Request, Response};
use peergroup::protocol::{AttributeValue, Attributes, Error, NewRecord, RecordType, Role};

use crate::support::*;

fn priority(n: i64) -> NewRecord {
    let attributes =
        Attributes::from_pairs([("Priority".to_owned(), AttributeValue::Int(n))]).unwrap();
    NewRecord::new(
        RecordType::from_u128(0x5ea2c4 << 64),
        now().saturating_add_secs(3600),
    )
    .with_attributes(attributes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_query_forms_find_the_live_matching_records_and_bad_queries_are_typed_errors() {
    let (creator, group) = group_with_creator(config()).await;
    let h = &creator.handle;
    let one = h.add_record(&group, priority(1)).await.unwrap();
    let three = h.add_record(&group, priority(3)).await.unwrap();
    let five = h.add_record(&group, priority(5)).await.unwrap();
    h.delete_record(&group, one).await.unwrap();

    let ids = |records: Vec<peergroup::protocol::Record>| {
        records.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(h.search_records_by(&group, "Priority <= 3").await.unwrap()),
        [three]
    );
    let xml = r#"<peersearch><clause attrib="Priority" type="int" compare="greater">1</clause></peersearch>"#;
    let mut expected = vec![three, five];
    expected.sort();
    assert_eq!(ids(h.search_records(&group, xml).await.unwrap()), expected);
    // The group's internal records (members' credentials) are not searched.
    let creator_name = creator.identity.to_string();
    let by_creator = format!(r#"peercreatorid = "{creator_name}""#);
    assert_eq!(
        ids(h.search_records_by(&group, &by_creator).await.unwrap()),
        expected
    );

    let digest = h.digest(&group).await.unwrap();
    let error = h
        .search_records_by(&group, "Priority <=")
        .await
        .unwrap_err();
    assert!(
        matches!(error.peer(), Some(Error::InvalidSearch(_))),
        "{error}"
    );
    let error = h
        .search_records(&group, "<peersearch><and/></peersearch>")
        .await
        .unwrap_err();
    assert!(
        matches!(error.peer(), Some(Error::InvalidSearch(_))),
        "{error}"
    );
    let both = Request::SearchRecords {
        group: group.clone(),
        xml: Some(xml.into()),
        query: Some("Priority = 1".into()),
    };
    let error: NodeError = h.request(both).await.unwrap_err();
    assert!(
        matches!(error.peer(), Some(Error::InvalidArg(_))),
        "{error}"
    );
    assert_eq!(
        h.digest(&group).await.unwrap(),
        digest,
        "errors change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_searches_its_replica_before_it_ever_connected() {
    let (creator, group) = group_with_creator(config()).await;
    creator
        .handle
        .add_record(&group, priority(2))
        .await
        .unwrap();
    let member = invited(&creator, &group, Role::Member, config(), None).await;
    // Not ready: enumeration refuses, search answers from what it holds.
    let error = member.handle.records(&group, None).await.unwrap_err();
    assert!(
        matches!(error.peer(), Some(Error::GroupNotReady)),
        "{error}"
    );
    let found = member
        .handle
        .request(Request::SearchRecords {
            group: group.clone(),
            xml: None,
            query: Some("Priority = 2".into()),
        })
        .await
        .unwrap();
    assert!(
        matches!(found, Response::Records(ref r) if r.is_empty()),
        "{found:?}"
    );
}
