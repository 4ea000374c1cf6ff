//! Record search (`PeerGroupSearchRecords`, reference 3.11): the XML form,
//! the short form, and what each clause matches.

use peergroup_protocol::{
    AttributeValue, Attributes, Error, Identity, PeerName, Record, Timestamp,
    search::{Node, Query},
    testing::{T0, add, group_of, identity},
};

/// A record of `creator` (number `n`) with `attributes`, modified by
/// `modifier` at `modified` (never modified if `None`).
fn record(
    creator: &Identity,
    group: &PeerName,
    n: u64,
    attributes: Vec<(&str, AttributeValue)>,
    modified: Option<(&Identity, Timestamp)>,
) -> Record {
    let mut record = add(creator, group, n, b"x", T0, 3600).record().clone();
    record.attributes = Attributes::from_pairs(
        attributes
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    )
    .unwrap();
    if let Some((by, at)) = modified {
        record.modified_by = Some(by.peer_name().clone());
        record.modified_at = at;
    }
    record
}

fn date(text: &str) -> Timestamp {
    let range = peergroup_protocol::search::DateRange::parse(text).unwrap();
    Timestamp::from_millis(u64::try_from(range.start_ms).unwrap())
}

fn ids(query: &Query, records: &[Record]) -> Vec<u64> {
    query
        .search(records, T0)
        .iter()
        .map(|r| records.iter().position(|x| x.id == r.id).unwrap() as u64)
        .collect()
}

/// The reference's example, with a creator pattern that names this
/// project's peer names (`authority.classifier`): James's records modified
/// after January 2003, or with a priority of at most 3.
const EXAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<peersearch xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <and>
    <clause attrib="peercreatorid" type="string" compare="equal">*.JamesP*</clause>
    <or>
      <clause attrib="peerlastmodificationtime" type="date" compare="greater">2003-01-31</clause>
      <clause attrib="Priority" type="int" compare="lessorequal">3</clause>
    </or>
  </and>
</peersearch>"#;

fn mixed() -> (Vec<Record>, Identity, Identity) {
    let james = identity(1, "JamesPeterson");
    let ann = identity(2, "Ann");
    let group = group_of(&james, "g");
    let old = Some((&ann, date("2003-01-31T23:59:59Z")));
    let new = Some((&ann, date("2003-02-01")));
    let records = vec![
        // 0: James, modified on the last day of January, priority 5: no.
        record(
            &james,
            &group,
            0,
            vec![("Priority", AttributeValue::Int(5))],
            old,
        ),
        // 1: James, modified on February 1st: yes.
        record(
            &james,
            &group,
            1,
            vec![("Priority", AttributeValue::Int(9))],
            new,
        ),
        // 2: James, old, priority 3: yes.
        record(
            &james,
            &group,
            2,
            vec![("Priority", AttributeValue::Int(3))],
            old,
        ),
        // 3: Ann, new, priority 1: no (not James).
        record(
            &ann,
            &group,
            3,
            vec![("Priority", AttributeValue::Int(1))],
            new,
        ),
        // 4: James, old, no priority at all: no.
        record(&james, &group, 4, vec![], old),
        // 5: James, old, a priority that is a string: no.
        record(
            &james,
            &group,
            5,
            vec![("Priority", AttributeValue::String("3".into()))],
            old,
        ),
    ];
    (records, james, ann)
}

#[test]
fn the_reference_example_returns_exactly_the_matching_records() {
    let (records, _, _) = mixed();
    let query = Query::from_xml(EXAMPLE).unwrap();
    assert_eq!(ids(&query, &records), [1, 2]);
    // The short form says the same.
    let short = Query::parse(
        r#"peercreatorid = "*.JamesP*" and (peerlastmodificationtime > 2003-01-31 or Priority <= 3)"#,
    )
    .unwrap();
    assert_eq!(short, query);
}

#[test]
fn every_schema_break_is_invalid_search_and_a_bad_escape_is_invalid_arg() {
    let clause = r#"<clause attrib="a" type="int">1</clause>"#;
    let broken = [
        "not xml".to_owned(),
        format!("<search>{clause}</search>"),
        format!("<peersearch>{clause}{clause}</peersearch>"),
        "<peersearch></peersearch>".to_owned(),
        "<peersearch><and></and></peersearch>".to_owned(),
        format!("<peersearch><and>{clause}<or/></and></peersearch>"),
        format!("<peersearch><not>{clause}</not></peersearch>"),
        r#"<peersearch><clause attrib="a" type="float">1</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="int" compare="like">1</clause></peersearch>"#
            .to_owned(),
        r#"<peersearch><clause attrib="a" type="int">one</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="date">2003-02-30</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="date">31/01/2003</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="date">2003-01-31T10:00</clause></peersearch>"#
            .to_owned(),
        r#"<peersearch><clause type="int">1</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a">1</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a-b" type="int">1</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="int" extra="1">1</clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="a" type="string"><b/></clause></peersearch>"#.to_owned(),
        r#"<peersearch><clause attrib="peercreationtime" type="int">1</clause></peersearch>"#
            .to_owned(),
        format!("<peersearch>text{clause}</peersearch>"),
        format!("<!DOCTYPE peersearch [<!ENTITY e \"x\">]><peersearch>{clause}</peersearch>"),
        format!(
            "<peersearch>{}{clause}{}</peersearch>",
            "<and>".repeat(40),
            "</and>".repeat(40)
        ),
        format!("<peersearch><or>{}</or></peersearch>", clause.repeat(1100)),
        format!(
            "<peersearch>{clause}<!--{}--></peersearch>",
            "x".repeat(70_000)
        ),
    ];
    for text in &broken {
        let error = Query::from_xml(text).unwrap_err();
        assert!(
            matches!(error, Error::InvalidSearch(_)),
            "{}: {error}",
            text.chars().take(120).collect::<String>()
        );
        assert_eq!(error.name(), "PEER_E_INVALID_SEARCH");
    }
    for bad in [r"a\b", r"trailing\"] {
        let text =
            format!(r#"<peersearch><clause attrib="a" type="string">{bad}</clause></peersearch>"#);
        assert!(
            matches!(Query::from_xml(&text), Err(Error::InvalidArg(_))),
            "{bad}"
        );
    }
    for short in [
        "",
        "a",
        "a =",
        "a = 1 and",
        "(a = 1",
        "a = 1)",
        "a ~ 1",
        "a-b = 1",
        r#"a = "open"#,
        "a = 2003-02-30",
        "peercreationtime = 12",
    ] {
        let error = Query::parse(short).unwrap_err();
        assert!(
            matches!(error, Error::InvalidSearch(_)),
            "{short:?}: {error}"
        );
    }
    assert!(matches!(
        Query::parse(r#"a = "x\yz""#),
        Err(Error::InvalidArg(_))
    ));
}

#[test]
fn wildcards_and_escapes() {
    let james = identity(1, "James");
    let group = group_of(&james, "g");
    let texts = ["a*b", "aXb", "ab", "a?b", r"a\b", "axxb", "b"];
    let records: Vec<Record> = texts
        .iter()
        .enumerate()
        .map(|(n, t)| {
            record(
                &james,
                &group,
                n as u64,
                vec![("Name", AttributeValue::String((*t).into()))],
                None,
            )
        })
        .collect();
    let matching = |value: &str| {
        let query = Query::parse(&format!(r#"Name = "{value}""#)).unwrap();
        ids(&query, &records)
            .into_iter()
            .map(|i| texts[i as usize])
            .collect::<Vec<_>>()
    };
    assert_eq!(matching("a*b"), ["a*b", "aXb", "ab", "a?b", r"a\b", "axxb"]);
    assert_eq!(matching("a?b"), ["a*b", "aXb", "a?b", r"a\b"]);
    assert_eq!(matching(r"a\*b"), ["a*b"]);
    assert_eq!(matching(r"a\?b"), ["a?b"]);
    assert_eq!(matching(r"a\\b"), [r"a\b"]);
    assert_eq!(matching("*"), texts);
    assert_eq!(matching("a"), Vec::<&str>::new());
    // Case matters; notequal is the complement among records that have it.
    assert_eq!(matching("AXB"), Vec::<&str>::new());
    let not = Query::parse(r#"Name != "a*""#).unwrap();
    assert_eq!(ids(&not, &records), [6]);
    // Ordering comparisons take the value literally.
    let less = Query::parse(r#"Name < "a?b""#).unwrap();
    assert_eq!(
        ids(&less, &records)
            .into_iter()
            .map(|i| texts[i as usize])
            .collect::<Vec<_>>(),
        ["a*b"]
    );
    // Operator words inside a value are text.
    let xml = r#"<peersearch><clause attrib="Name" type="string">and</clause></peersearch>"#;
    assert_eq!(
        ids(&Query::from_xml(xml).unwrap(), &records),
        Vec::<u64>::new()
    );
}

#[test]
fn a_date_spans_its_precision() {
    let james = identity(1, "James");
    let group = group_of(&james, "g");
    let at = |text: &str| {
        record(
            &james,
            &group,
            0,
            vec![("When", AttributeValue::Date(date(text)))],
            None,
        )
    };
    let check = |value: &str, compare: &str, when: &str| {
        let query = Query::from_xml(&format!(
            r#"<peersearch><clause attrib="When" type="date" compare="{compare}">{value}</clause></peersearch>"#
        ))
        .unwrap();
        query.matches(&at(when))
    };
    // A day: equal within it; greater from the next day; less before it.
    assert!(check("2003-01-31", "equal", "2003-01-31T23:59:59.999Z"));
    assert!(!check("2003-01-31", "greater", "2003-01-31T23:59:59Z"));
    assert!(check("2003-01-31", "greater", "2003-02-01"));
    assert!(check("2003-01-31", "less", "2003-01-30T23:59:59Z"));
    assert!(!check("2003-01-31", "less", "2003-01-31"));
    assert!(check("2003-01-31", "lessorequal", "2003-01-31T12:00:00Z"));
    assert!(check("2003-01-31", "greaterorequal", "2003-01-31"));
    assert!(check("2003-01-31", "notequal", "2003-02-01"));
    // A year, a month, a minute, a second, a millisecond.
    assert!(check("2003", "equal", "2003-12-31T23:59:59Z"));
    assert!(check("2003", "greater", "2004-01-01"));
    assert!(check("2003-02", "equal", "2003-02-28T10:00:00Z"));
    assert!(check("2003-02", "greater", "2003-03-01"));
    assert!(check("2003-01-31T10:00Z", "equal", "2003-01-31T10:00:59Z"));
    assert!(check(
        "2003-01-31T10:00:05Z",
        "greater",
        "2003-01-31T10:00:06Z"
    ));
    assert!(check(
        "2003-01-31T10:00:05.5Z",
        "equal",
        "2003-01-31T10:00:05.599Z"
    ));
    assert!(!check(
        "2003-01-31T10:00:05.5Z",
        "equal",
        "2003-01-31T10:00:05.6Z"
    ));
    // Zones: 12:00+02:00 is 10:00 UTC.
    assert!(check(
        "2003-01-31T12:00+02:00",
        "equal",
        "2003-01-31T10:00Z"
    ));
    assert!(check(
        "2003-01-31T08:00-02:00",
        "equal",
        "2003-01-31T10:00:30Z"
    ));
    // Reserved times: creation and last modification.
    let created =
        Query::parse("peercreationtime >= 2026-01-01 and peercreationtime < 2026-01-02").unwrap();
    assert!(created.matches(&at("2000")));
}

#[test]
fn reserved_attributes_and_missing_ones() {
    let james = identity(1, "James");
    let ann = identity(2, "Ann");
    let group = group_of(&james, "g");
    let untouched = record(&james, &group, 0, vec![], None);
    let touched = record(&james, &group, 1, vec![], Some((&ann, T0)));
    let records = [untouched.clone(), touched.clone()];
    let q = |text: &str| ids(&Query::parse(text).unwrap(), &records);
    // The last modifier of a record never updated is empty.
    assert_eq!(q(r#"peerlastmodifiedby = """#), [0]);
    assert_eq!(q(r#"peerlastmodifiedby = "*.James""#), Vec::<u64>::new());
    assert_eq!(q(r#"PeerCreatorId = "*.James""#), [0, 1]);
    assert_eq!(q(r#"peerlastmodifiedby = "*.Ann""#), [1]);
    assert_eq!(q(r#"peercreatorid = "*.James""#), [0, 1]);
    assert_eq!(q(&format!(r#"peerrecordid = "{}""#, untouched.id)), [0]);
    assert_eq!(
        q(&format!(r#"peerrecordtype = "{}""#, untouched.record_type)),
        [0, 1]
    );
    // A clause about a missing attribute matches nothing, notequal included.
    assert_eq!(q("Missing = 1"), Vec::<u64>::new());
    assert_eq!(q("Missing != 1"), Vec::<u64>::new());
    assert_eq!(q("Missing != 1 or peercreatorid = \"*\""), [0, 1]);
}

#[test]
fn search_leaves_out_deleted_and_expired_records_and_orders_by_id() {
    let james = identity(1, "James");
    let group = group_of(&james, "g");
    let mut records: Vec<Record> = (0..5)
        .rev()
        .map(|n| record(&james, &group, n, vec![("N", AttributeValue::Int(1))], None))
        .collect();
    records[1].flags = peergroup_protocol::RecordFlags::DELETED;
    records[2].expires_at = T0;
    let query = Query::parse("N = 1").unwrap();
    let found = query.search(&records, T0);
    let mut expected: Vec<_> = [0, 3, 4].iter().map(|&i| records[i].id).collect();
    expected.sort();
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), expected);
}

#[test]
fn the_short_form_nests_and_binds_and_tighter_than_or() {
    let query = Query::parse("a = 1 or b = 2 and (c = 3 OR d = 4)").unwrap();
    let Node::Or(children) = query.root() else {
        panic!("{query:?}");
    };
    assert_eq!(children.len(), 2);
    assert!(matches!(&children[1], Node::And(inner) if inner.len() == 2));
}

/// What a person typing the short form or writing XML by hand gets told
/// (found by trying it from the outside).
#[test]
fn errors_say_what_is_wrong_and_where() {
    let message = |result: Result<Query, Error>| match result.unwrap_err() {
        Error::InvalidSearch(m) | Error::InvalidArg(m) => m,
        other => panic!("{other:?}"),
    };
    // Typos of comparisons and quotes are errors, not odd values.
    for typo in ["Priority==1", "Priority<>1", "Priority=!1", "name='alpha'"] {
        let m = message(Query::parse(typo));
        assert!(m.contains("comparisons are"), "{typo}: {m}");
    }
    let m = message(Query::parse("my-attr=1"));
    assert!(m.contains("letters and digits"), "{m}");
    let m = message(Query::parse("a = 1 )"));
    assert!(m.contains("character 7"), "positions count from 1: {m}");
    let m = message(Query::from_xml(
        r#"<peersearch><clause attrib="peercreationtime" type="string">x</clause></peersearch>"#,
    ));
    assert!(
        m.contains("peercreationtime is a date, not a string"),
        "{m}"
    );
    let m = message(Query::from_xml(
        "<peersearch>\n  <and>\n    <clause attrib=\"a\" type=\"number\">1</clause>\n  </and>\n</peersearch>",
    ));
    assert!(
        m.contains("line 3, column 5") && m.contains("`number`"),
        "{m}"
    );
    let m = message(Query::from_xml(&format!(
        "<peersearch><or>{}</or></peersearch>",
        "<x/>".repeat(9000)
    )));
    assert!(m.contains("XML nodes"), "{m}");
    let m = message(Query::from_xml(&format!("<{0}></{0}>", "r".repeat(5000))));
    assert!(m.len() < 200, "long names are cut: {m}");
    let m = message(Query::parse(r#"a = "bad \q""#));
    assert!(m.contains(r"`\q` at character 5"), "{m}");
}
