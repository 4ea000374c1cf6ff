//! A search query as a user or a client sends it (`PeerGroupSearchRecords`):
//! the XML form (`Query::from_xml`) and the short form (`Query::parse`),
//! then evaluated against a record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peergroup_protocol::{
    AttributeValue, Attributes, Error, Record,
    search::Query,
    testing::{T0, add, group_of, identity},
};

fn record() -> Record {
    let creator = identity(1, "fuzz");
    let group = group_of(&creator, "fuzz");
    let mut record = add(&creator, &group, 1, b"x", T0, 3600).record().clone();
    record.attributes = Attributes::from_pairs([
        ("Priority".to_owned(), AttributeValue::Int(3)),
        ("Name".to_owned(), AttributeValue::String("James P".into())),
        ("When".to_owned(), AttributeValue::Date(T0)),
    ])
    .unwrap();
    record
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let record = record();
    for parsed in [Query::from_xml(text), Query::parse(text)] {
        match parsed {
            Ok(query) => {
                // Evaluating never panics, and a search agrees with matches.
                let matched = query.matches(&record);
                assert_eq!(query.search([&record], T0).len(), usize::from(matched));
            }
            // Every refusal is one of the two documented errors.
            Err(Error::InvalidSearch(_) | Error::InvalidArg(_)) => {}
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
});
