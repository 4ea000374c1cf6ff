//! Checks `docs/openapi.json` against the implementation, both ways.
//!
//! - The document: it is the served [`OPENAPI`], canonically formatted
//!   (sorted keys), every `$ref` resolves, and its paths are [`ROUTES`].
//! - `Request`, `Response`, `Event`: one branch per variant, in declaration
//!   order (serde's own variant lists are the reference), and real values of
//!   every variant validate against them. The exhaustive matches of
//!   [`Variant`] break the build when a variant is added; serde's lists
//!   then make the tests fail until it has a sample and a branch.
//! - Malformed requests: what the schema refuses, serde refuses too.
//! - Errors: every error body validates against `ErrorBody`, and every status
//!   an error maps to is documented, with the error's name and HRESULT.
//! - Over HTTP: the real router, with a stand-in for the node's event loop
//!   behind its [`Handle`], answers with the statuses, content types and
//!   bodies the document gives for each route (events included).
//!
//! (Over 600 lines, on purpose: one check per documented request,
//! response and event shape of the control API.)

use std::{
    cell::Cell,
    collections::BTreeSet,
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use axum::response::IntoResponse as _;
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use peergroup_protocol::{
    AttributeValue, Attributes, CredentialChain, DecodeError, Digest, Error as PeerError,
    GroupProperties, GroupSpec, Identity, KdfParams, KeyCommitment, Keypair, Membership, NewRecord,
    PasswordPolicy, PeerName, Record, RecordFlags, RecordType, Role, SignedRecord, VerifyError,
    create_invitation, create_password_invitation,
    session::{
        ConnectionChange, Lifecycle, MemberChange, RecordChange, Status, SyncProgress, SyncStatus,
    },
    testing::{NOTE, T0},
};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{ApiError, MAX_BODY, OPENAPI, ROUTES, parse_event_kind, router};
use crate::{
    Event, EventKind, ExportedIdentity, GroupEntry, GroupEvent, GroupPassword, Handle,
    OperationError, OperationId, Request, Response, node::Command,
};

// ----- the document -----------------------------------------------------------

/// The path of the document in the source tree.
const DOCUMENT_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

/// The HTTP methods an OpenAPI path item may hold.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("docs/openapi.json is not JSON")
}

/// A validator for `schema`, whose `$ref`s point into the document's
/// `components`.
fn compile(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"].clone(),
        "allOf": [schema],
    });
    jsonschema::draft202012::options()
        .build(&root)
        .unwrap_or_else(|e| panic!("the schema {schema} does not compile: {e}"))
}

/// A validator for `#/components/schemas/{name}`.
fn named(doc: &Value, name: &str) -> jsonschema::Validator {
    assert!(
        doc["components"]["schemas"].get(name).is_some(),
        "no schema {name} in components/schemas"
    );
    compile(
        doc,
        &json!({ "$ref": format!("#/components/schemas/{name}") }),
    )
}

/// Panics, listing the schema's complaints, unless `instance` is valid.
fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

/// The value the JSON pointer `reference` (`#/...`) names in the document.
fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference} is not a local reference"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} resolves to nothing"))
}

/// Follows a `$ref` (an OpenAPI reference object) if `value` is one.
fn follow<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(doc, reference),
        None => value,
    }
}

/// Every `$ref` string anywhere in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

/// The operation `method path` of the document.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    doc["paths"]
        .get(path)
        .and_then(|item| item.get(method))
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
}

/// The documented response of `method path` for `status`, `$ref` followed.
fn documented_response<'a>(doc: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let response = operation(doc, method, path)["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {path} does not document status {status}"));
    follow(doc, response)
}

/// The branches of the `oneOf` schema `name`, by the variant each stands
/// for: a unit variant's `const`, an externally tagged variant's one key, or
/// an internally tagged variant's `type` const.
fn branches(doc: &Value, name: &str) -> Vec<(String, Value)> {
    let one_of = doc["components"]["schemas"][name]["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("the schema {name} has no oneOf"));
    one_of
        .iter()
        .map(|branch| {
            let variant = if let Some(c) = branch.get("const").and_then(Value::as_str) {
                c.to_owned()
            } else if let Some(t) = branch["properties"]["type"]["const"].as_str() {
                t.to_owned()
            } else {
                let properties = branch["properties"]
                    .as_object()
                    .unwrap_or_else(|| panic!("a branch of {name} has no properties: {branch}"));
                assert_eq!(
                    properties.len(),
                    1,
                    "{name}: a branch with several keys: {branch}"
                );
                let required: Vec<&str> = branch["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let key = properties.keys().next().unwrap().clone();
                assert_eq!(
                    required,
                    [key.as_str()],
                    "{name}.{key}: the key must be required"
                );
                key
            };
            if branch.get("const").is_none() {
                assert_eq!(
                    branch["additionalProperties"],
                    json!(false),
                    "{name}.{variant} allows additional properties"
                );
                assert_eq!(
                    branch["type"], "object",
                    "{name}.{variant} is not an object"
                );
            }
            assert_eq!(
                branch["title"],
                variant.as_str(),
                "{name}.{variant}: wrong title"
            );
            (variant, branch.clone())
        })
        .collect()
}

/// Whether a response's description lists the error `name` with its
/// HRESULT: `` `NAME` (0x...) `` in a list, `` (`NAME`, 0x...) `` in a sentence.
fn names_error(description: &str, name: &str, code: u64) -> bool {
    description.contains(&format!("`{name}` (0x{code:08X})"))
        || description.contains(&format!("`{name}`, 0x{code:08X}"))
}

/// The variant `value` (the JSON of a serde enum) stands for: a string, the
/// one key of an object, or an object's `type`.
fn tag(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(map) if map.contains_key("type") => map["type"].as_str().unwrap().to_owned(),
        Value::Object(map) if map.len() == 1 => map.keys().next().unwrap().clone(),
        other => panic!("{other} is not a serde enum"),
    }
}

// ----- serde's own variant lists ----------------------------------------------

/// A deserializer that only records the variant names an enum asks for.
struct Probe<'a>(&'a Cell<&'static [&'static str]>);

impl<'de> serde::Deserializer<'de> for Probe<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not an enum"))
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.set(variants);
        Err(serde::de::Error::custom("probed"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
        byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

/// The names of `T`'s variants, in declaration order, as serde knows them.
fn serde_variants<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
    let variants = Cell::new(&[][..]);
    let _ = T::deserialize(Probe(&variants));
    assert!(!variants.get().is_empty(), "not an enum");
    variants.get().to_vec()
}

// ----- variants ---------------------------------------------------------------

/// The variant's name. Each match is exhaustive: a new variant breaks the
/// build here, and then the tests, until it has samples and a branch.
trait Variant {
    fn variant(&self) -> &'static str;
}

impl Variant for Request {
    fn variant(&self) -> &'static str {
        match self {
            Request::PeerId => "PeerId",
            Request::ListenAddrs => "ListenAddrs",
            Request::CreateIdentity { .. } => "CreateIdentity",
            Request::ImportIdentity { .. } => "ImportIdentity",
            Request::ExportIdentity { .. } => "ExportIdentity",
            Request::Identities => "Identities",
            Request::DeleteIdentity { .. } => "DeleteIdentity",
            Request::CreateGroup { .. } => "CreateGroup",
            Request::CreatePasswordGroup { .. } => "CreatePasswordGroup",
            Request::SetGroupPassword { .. } => "SetGroupPassword",
            Request::PasswordJoin { .. } => "PasswordJoin",
            Request::Join { .. } => "Join",
            Request::Groups => "Groups",
            Request::Open { .. } => "Open",
            Request::Connect { .. } => "Connect",
            Request::Close { .. } => "Close",
            Request::DeleteGroup { .. } => "DeleteGroup",
            Request::Status { .. } => "Status",
            Request::PeerTime => "PeerTime",
            Request::UniversalToPeerTime { .. } => "UniversalToPeerTime",
            Request::PeerToUniversalTime { .. } => "PeerToUniversalTime",
            Request::SyncStatus { .. } => "SyncStatus",
            Request::Connections { .. } => "Connections",
            Request::Properties { .. } => "Properties",
            Request::SetProperties { .. } => "SetProperties",
            Request::Members { .. } => "Members",
            Request::CreateInvitation { .. } => "CreateInvitation",
            Request::CreatePasswordInvitation { .. } => "CreatePasswordInvitation",
            Request::IssueCredentials { .. } => "IssueCredentials",
            Request::AddRecord { .. } => "AddRecord",
            Request::UpdateRecord { .. } => "UpdateRecord",
            Request::DeleteRecord { .. } => "DeleteRecord",
            Request::GetRecord { .. } => "GetRecord",
            Request::Records { .. } => "Records",
            Request::Digest { .. } => "Digest",
            Request::SearchRecords { .. } => "SearchRecords",
        }
    }
}

impl Variant for Response {
    fn variant(&self) -> &'static str {
        match self {
            Response::Done => "Done",
            Response::PeerId(_) => "PeerId",
            Response::Addresses(_) => "Addresses",
            Response::Identity(_) => "Identity",
            Response::Identities(_) => "Identities",
            Response::ExportedIdentity(_) => "ExportedIdentity",
            Response::Group(_) => "Group",
            Response::Groups(_) => "Groups",
            Response::Status(_) => "Status",
            Response::Time(_) => "Time",
            Response::Sync(_) => "Sync",
            Response::Peers(_) => "Peers",
            Response::Properties(_) => "Properties",
            Response::Members(_) => "Members",
            Response::Invitation(_) => "Invitation",
            Response::RecordId(_) => "RecordId",
            Response::Record(_) => "Record",
            Response::Records(_) => "Records",
            Response::Digest(_) => "Digest",
        }
    }
}

impl Variant for Event {
    fn variant(&self) -> &'static str {
        match self {
            Event::Group(GroupEvent::StatusChanged { .. }) => "StatusChanged",
            Event::Group(GroupEvent::PropertiesChanged { .. }) => "PropertiesChanged",
            Event::Group(GroupEvent::RecordChanged { .. }) => "RecordChanged",
            Event::Group(GroupEvent::MemberChanged { .. }) => "MemberChanged",
            Event::Group(GroupEvent::NeighborConnection { .. }) => "NeighborConnection",
            Event::Group(GroupEvent::ConnectionFailed { .. }) => "ConnectionFailed",
            Event::Group(GroupEvent::SyncProgress { .. }) => "SyncProgress",
            Event::AuthenticationFailed { .. } => "AuthenticationFailed",
            Event::OperationCompleted { .. } => "OperationCompleted",
            Event::StoreFailed { .. } => "StoreFailed",
        }
    }
}

// ----- samples ----------------------------------------------------------------

/// Real values to build samples from.
struct Fixture {
    alice: Identity,
    bob: Identity,
    /// Alice's group `chat`.
    group: PeerName,
    /// Its properties: credentials only, no key commitment.
    properties: GroupProperties,
    /// Alice's password group `club`, with a key commitment.
    password_properties: GroupProperties,
    /// A record with attributes of every type and data.
    record: Record,
    /// Its update (with a last modifier).
    updated: Record,
    /// A record without attributes or data.
    bare: Record,
    /// An invitation of Bob to `chat`.
    invitation: String,
    /// A password invitation to `club`.
    password_invitation: String,
    peer: PeerId,
    addr: Multiaddr,
}

fn fixture() -> Fixture {
    let alice = Identity::new(Keypair::from_secret_bytes(&[7; 32]), "alice", "Alice").unwrap();
    let bob = Identity::new(Keypair::from_secret_bytes(&[8; 32]), "bob", "").unwrap();
    let signed = GroupSpec::new(alice.peer_name(), "chat")
        .create(&alice, T0, |_| false)
        .unwrap();
    let properties = signed.properties().clone();
    let group = properties.group_peer_name.clone();
    let invitation = create_invitation(
        &alice,
        &CredentialChain::creator(),
        &signed,
        &bob.info().unwrap(),
        Role::Member,
        None,
        T0,
    )
    .unwrap();
    let mut spec = GroupSpec::new(alice.peer_name(), "club");
    spec.password = Some(PasswordPolicy::new(Role::Member, [5; 16], KdfParams::DEFAULT).unwrap());
    let signed_password = spec.create(&alice, T0, |_| false).unwrap();
    let password_invitation =
        create_password_invitation(&alice, &CredentialChain::creator(), &signed_password, T0)
            .unwrap();
    let mut password_properties = signed_password.properties().clone();
    password_properties.key_commitment = Some(KeyCommitment {
        epoch: 0,
        digest: [3; 32],
    });
    let attributes = Attributes::from_pairs([
        ("count".to_owned(), AttributeValue::Int(-3)),
        ("due".to_owned(), AttributeValue::Date(T0)),
        ("title".to_owned(), AttributeValue::String("hello".into())),
    ])
    .unwrap();
    let new = NewRecord::new(NOTE, T0.saturating_add_secs(3600))
        .with_attributes(attributes)
        .with_data(b"hello".to_vec());
    let record = Record::new(new, [1; 8], &group, alice.peer_name(), T0).unwrap();
    let signed_record = SignedRecord::sign(record.clone(), alice.keypair()).unwrap();
    let updated = peergroup_protocol::testing::update(
        &alice,
        &signed_record,
        b"bye",
        T0.saturating_add_secs(1),
    )
    .record()
    .clone();
    let mut bare_new = NewRecord::new(NOTE, T0.saturating_add_secs(60));
    bare_new.flags = RecordFlags::AUTOREFRESH;
    let bare = Record::new(bare_new, [2; 8], &group, bob.peer_name(), T0).unwrap();
    let peer = libp2p::identity::Keypair::ed25519_from_bytes([9; 32])
        .unwrap()
        .public()
        .to_peer_id();
    Fixture {
        alice,
        bob,
        group,
        properties,
        password_properties,
        record,
        updated,
        bare,
        invitation,
        password_invitation,
        peer,
        addr: "/ip4/127.0.0.1/tcp/3587".parse().unwrap(),
    }
}

/// At least one request of every variant.
fn requests(f: &Fixture) -> Vec<Request> {
    let group = || f.group.clone();
    let mut spec = GroupSpec::new(f.alice.peer_name(), "chat");
    spec.friendly_name = Some("Chat".into());
    spec.comment = Some("a comment".into());
    spec.member_data_lifetime = Some(0);
    spec.presence_lifetime = Some(600);
    vec![
        Request::PeerId,
        Request::ListenAddrs,
        Request::CreateIdentity {
            classifier: "alice".into(),
            friendly_name: "Alice".into(),
        },
        Request::ImportIdentity {
            secret: f.alice.keypair().secret_bytes().to_vec(),
            classifier: "alice".into(),
            friendly_name: String::new(),
        },
        Request::ExportIdentity {
            identity: f.alice.peer_name().clone(),
        },
        Request::Identities,
        Request::DeleteIdentity {
            identity: f.bob.peer_name().clone(),
        },
        Request::CreateGroup {
            spec: GroupSpec::new(f.alice.peer_name(), "chat"),
        },
        Request::CreateGroup { spec },
        Request::CreatePasswordGroup {
            spec: GroupSpec::new(f.alice.peer_name(), "club"),
            password: GroupPassword::new("correct horse"),
            role: Role::InvitingMember,
        },
        Request::SetGroupPassword {
            group: group(),
            password: GroupPassword::new("battery staple"),
        },
        Request::PasswordJoin {
            identity: f.bob.peer_name().clone(),
            invitation: f.password_invitation.clone(),
            password: GroupPassword::new("correct horse"),
            addresses: vec![f.addr.clone()],
        },
        Request::Join {
            identity: f.bob.peer_name().clone(),
            invitation: f.invitation.clone(),
        },
        Request::Groups,
        Request::Open { group: group() },
        Request::Connect {
            group: group(),
            addresses: Vec::new(),
        },
        Request::Close { group: group() },
        Request::DeleteGroup { group: group() },
        Request::Status { group: group() },
        Request::PeerTime,
        Request::UniversalToPeerTime { time: T0 },
        Request::PeerToUniversalTime { time: T0 },
        Request::SyncStatus { group: group() },
        Request::Connections { group: group() },
        Request::Properties { group: group() },
        Request::SetProperties {
            group: group(),
            properties: f.properties.clone(),
        },
        Request::SetProperties {
            group: f.password_properties.group_peer_name.clone(),
            properties: f.password_properties.clone(),
        },
        Request::Members { group: group() },
        Request::CreateInvitation {
            group: group(),
            subject: f.bob.public_text().unwrap(),
            role: Role::Member,
            expires: None,
        },
        Request::CreateInvitation {
            group: group(),
            subject: f.bob.public_text().unwrap(),
            role: Role::Admin,
            expires: Some(T0.saturating_add_secs(86_400)),
        },
        Request::CreatePasswordInvitation { group: group() },
        Request::IssueCredentials {
            group: group(),
            subject: f.bob.public_text().unwrap(),
            role: Role::InvitingMember,
            expires: Some(T0.saturating_add_secs(86_400)),
            store: true,
        },
        Request::AddRecord {
            group: group(),
            record: NewRecord::new(NOTE, T0.saturating_add_secs(60)),
        },
        Request::AddRecord {
            group: group(),
            record: NewRecord::new(NOTE, T0.saturating_add_secs(60))
                .with_attributes(f.record.attributes.clone())
                .with_data(vec![0, 1, 2, 254, 255]),
        },
        Request::UpdateRecord {
            group: group(),
            record: f.record.clone(),
        },
        Request::UpdateRecord {
            group: group(),
            record: f.updated.clone(),
        },
        Request::DeleteRecord {
            group: group(),
            id: f.record.id,
        },
        Request::GetRecord {
            group: group(),
            id: f.record.id,
        },
        Request::Records {
            group: group(),
            record_type: None,
            internal: false,
            after: None,
            limit: None,
        },
        Request::Records {
            group: group(),
            record_type: Some(RecordType::parse("6e6f7465000040008000000000000002").unwrap()),
            internal: true,
            after: Some(f.record.id),
            limit: Some(1000),
        },
        Request::Digest { group: group() },
        Request::SearchRecords {
            group: group(),
            xml: Some(
                r#"<peersearch><clause attrib="Priority" type="int" compare="lessorequal">3</clause></peersearch>"#
                    .into(),
            ),
            query: None,
        },
        Request::SearchRecords {
            group: group(),
            xml: None,
            query: Some(r#"Priority<=3 and peercreatorid="*.James*""#.into()),
        },
    ]
}

/// At least one response of every variant.
fn responses(f: &Fixture) -> Vec<Response> {
    let bob_membership = Membership {
        group: f.group.clone(),
        subject: f.bob.peer_name().clone(),
        key: f.bob.public_key(),
        role: Role::InvitingMember,
        not_before: T0,
        not_after: T0.saturating_add_secs(86_400),
        chain_len: 2,
    };
    vec![
        Response::Done,
        Response::PeerId(f.peer),
        Response::Addresses(vec![
            f.addr.clone().with(Protocol::P2p(f.peer)),
            "/ip6/::1/tcp/3587".parse().unwrap(),
        ]),
        Response::Identity(f.alice.info().unwrap()),
        Response::Identities(vec![f.alice.info().unwrap(), f.bob.info().unwrap()]),
        Response::Identities(Vec::new()),
        Response::ExportedIdentity(ExportedIdentity {
            peer_name: f.alice.peer_name().clone(),
            classifier: f.alice.peer_name().classifier().to_owned(),
            friendly_name: f.alice.friendly_name().to_owned(),
            secret: f.alice.keypair().secret_bytes().to_vec(),
        }),
        Response::Group(f.group.clone()),
        Response::Groups(vec![
            GroupEntry {
                group: f.group.clone(),
                lifecycle: Lifecycle::Closed,
            },
            GroupEntry {
                group: f.group.clone(),
                lifecycle: Lifecycle::Open,
            },
            GroupEntry {
                group: f.password_properties.group_peer_name.clone(),
                lifecycle: Lifecycle::Online,
            },
        ]),
        Response::Status(Status::default()),
        Response::Status(Status {
            listening: true,
            has_connections: true,
            ready: true,
        }),
        Response::Time(T0),
        Response::Sync(SyncStatus {
            running: Vec::new(),
            last_completed: Vec::new(),
        }),
        Response::Sync(SyncStatus {
            running: vec![SyncProgress {
                peer: f.peer,
                received: 3,
                estimated_total: 10,
                first: true,
            }],
            last_completed: vec![(f.peer, T0).into()],
        }),
        Response::Peers(vec![f.peer]),
        Response::Properties(f.properties.clone()),
        Response::Properties(f.password_properties.clone()),
        Response::Members(vec![Membership::creator(&f.properties), bob_membership]),
        Response::Invitation(f.invitation.clone()),
        Response::RecordId(f.record.id),
        Response::Record(f.record.clone()),
        Response::Record(f.updated.clone()),
        Response::Records(vec![f.record.clone(), f.bare.clone()]),
        Response::Records(Vec::new()),
        Response::Digest(Digest([0xab; 32])),
    ]
}

/// One peer-group error of every variant (the enum is `#[non_exhaustive]`,
/// so this list cannot be checked for completeness at build time).
fn peer_errors() -> Vec<PeerError> {
    let text = || "something".to_owned();
    vec![
        PeerError::InvalidArg(text()),
        PeerError::InvalidPeerName(text()),
        PeerError::InvalidClassifier(text()),
        PeerError::InvalidFriendlyName(text()),
        PeerError::InvalidGroupProperties(text()),
        PeerError::InvalidRecord(text()),
        PeerError::InvalidAttributes(text()),
        PeerError::TooManyAttributes { count: 65, max: 64 },
        PeerError::InvalidRecordExpiration(text()),
        PeerError::MaxRecordSizeExceeded {
            size: 300_000,
            max: 262_144,
        },
        PeerError::AlreadyExists(text()),
        PeerError::NotFound(text()),
        PeerError::RecordNotFound,
        PeerError::NotAuthorized(text()),
        PeerError::DeferredValidation(text()),
        PeerError::GroupNotReady,
        PeerError::InvalidGroup(text()),
        PeerError::UnsupportedVersion(text()),
        PeerError::InvitationNotTrusted(text()),
        PeerError::InvalidTimePeriod(text()),
        PeerError::ChainTooLong { length: 9, max: 8 },
        PeerError::InvalidCredential(text()),
        PeerError::PasswordDoesNotMeetPolicy(text()),
        PeerError::InvalidSearch(text()),
        PeerError::CircularChainDetected,
        PeerError::GroupInUse(text()),
        PeerError::GroupsExist(text()),
        PeerError::NoMembersFound(text()),
        PeerError::NoMemberConnections(text()),
        PeerError::UnableToListen(text()),
        PeerError::ConnectionFailed(text()),
        PeerError::Decode(DecodeError::Text { reason: text() }),
        PeerError::Verify(VerifyError::BadSignature),
    ]
}

/// Every error the API can answer: the peer-group errors, the node's own
/// failures, and a refused token.
fn api_errors() -> Vec<ApiError> {
    let mut errors: Vec<ApiError> = peer_errors().into_iter().map(ApiError::from).collect();
    errors.push(crate::Error::Shutdown.into());
    errors.push(crate::Error::Write("disk full".into()).into());
    errors.push(ApiError::bad_request("malformed request: expected value"));
    errors.push(ApiError::unauthorized());
    errors
}

/// At least one event of every variant.
fn events(f: &Fixture) -> Vec<Event> {
    let group = || f.group.clone();
    let mut events = vec![
        Event::Group(GroupEvent::StatusChanged {
            group: group(),
            status: Status {
                listening: true,
                has_connections: false,
                ready: true,
            },
        }),
        Event::Group(GroupEvent::PropertiesChanged { group: group() }),
    ];
    for change in [
        RecordChange::Added,
        RecordChange::Updated,
        RecordChange::Deleted,
        RecordChange::Expired,
    ] {
        events.push(Event::Group(GroupEvent::RecordChanged {
            group: group(),
            change,
            id: f.record.id,
            record_type: NOTE,
        }));
    }
    for change in [MemberChange::Joined, MemberChange::Updated] {
        events.push(Event::Group(GroupEvent::MemberChanged {
            group: group(),
            member: f.bob.peer_name().clone(),
            change,
        }));
    }
    for change in [ConnectionChange::Connected, ConnectionChange::Disconnected] {
        events.push(Event::Group(GroupEvent::NeighborConnection {
            group: group(),
            peer: f.peer,
            change,
        }));
    }
    events.extend([
        Event::Group(GroupEvent::ConnectionFailed {
            group: group(),
            reason: PeerError::NoMembersFound("no member answered".into()),
        }),
        Event::Group(GroupEvent::SyncProgress {
            group: group(),
            peer: f.peer,
            received: 100,
            estimated_total: 1000,
        }),
        Event::AuthenticationFailed {
            group: group(),
            peer: f.peer,
            reason: PeerError::InvalidCredential("expired".into()),
        },
        Event::OperationCompleted {
            operation: OperationId(1),
            result: Ok(()),
        },
        Event::OperationCompleted {
            operation: OperationId(2),
            result: Err(OperationError::Peer(PeerError::GroupNotReady)),
        },
        Event::OperationCompleted {
            operation: OperationId(3),
            result: Err(OperationError::Store("disk full".into())),
        },
        Event::StoreFailed {
            reason: "disk full".into(),
        },
    ]);
    events
}

/// Checks that `samples` cover every variant of the `oneOf` schema `name`,
/// that its branches are serde's variants in declaration order, and that
/// each sample validates against the whole schema and against its own
/// branch.
fn check_samples(doc: &Value, name: &str, variants: &[&str], samples: &[(&'static str, Value)]) {
    let branches = branches(doc, name);
    let documented: Vec<&str> = branches.iter().map(|(v, _)| v.as_str()).collect();
    assert_eq!(
        documented, variants,
        "the branches of {name} are not the variants in declaration order"
    );
    let sampled: BTreeSet<&str> = samples.iter().map(|(v, _)| *v).collect();
    let missing: Vec<&&str> = variants.iter().filter(|v| !sampled.contains(**v)).collect();
    assert!(missing.is_empty(), "no sample of {name} {missing:?}");
    let whole = named(doc, name);
    for (variant, json) in samples {
        assert_eq!(
            &tag(json),
            variant,
            "{name}::{variant} serializes under another tag"
        );
        let index = documented.iter().position(|d| d == variant).unwrap();
        let branch = compile(
            doc,
            &json!({ "$ref": format!("#/components/schemas/{name}/oneOf/{index}") }),
        );
        assert_valid(&branch, json, &format!("{name}::{variant} (its branch)"));
        assert_valid(&whole, json, &format!("{name}::{variant}"));
    }
}

// ----- the document's tests ---------------------------------------------------

#[test]
fn the_served_document_is_the_file_canonically_formatted() {
    let on_disk = std::fs::read_to_string(DOCUMENT_PATH).unwrap();
    assert_eq!(
        OPENAPI, on_disk,
        "OPENAPI is not docs/openapi.json (rebuild)"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    // Sorted keys, two-space indentation, a final newline: what
    // `json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)` and
    // serde_json's pretty printer both write.
    let canonical = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    assert!(
        on_disk == canonical,
        "docs/openapi.json is not canonically formatted (sorted keys, 2-space indent, final \
         newline); reformat it with: python3 -c 'import json; p = \"docs/openapi.json\"; \
         d = json.load(open(p)); open(p, \"w\").write(json.dumps(d, indent=2, \
         sort_keys=True, ensure_ascii=False) + \"\\n\")'"
    );
}

#[test]
fn every_route_is_documented_and_every_documented_operation_is_routed() {
    let doc = document();
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (key, _) in item.as_object().unwrap() {
            if METHODS.contains(&key.as_str()) {
                documented.insert((key.clone(), path.clone()));
            }
        }
    }
    assert_eq!(documented, routes, "documented operations != ROUTES");
    let mut ids = BTreeSet::new();
    for (method, path) in &routes {
        let operation = operation(&doc, method, path);
        let id = operation["operationId"].as_str().unwrap();
        assert!(ids.insert(id), "operationId {id} twice");
        assert!(
            operation["summary"].is_string(),
            "{method} {path} has no summary"
        );
        // Every route needs the token (the document's default security).
        assert!(
            operation.get("security").is_none(),
            "{method} {path} overrides security"
        );
        let unauthorized = documented_response(&doc, method, path, 401);
        assert_eq!(
            unauthorized["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
        assert!(documented_response(&doc, method, path, 200)["content"].is_object());
    }
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&json!("http"), &json!("bearer"))
    );
}

#[test]
fn every_reference_resolves_and_every_schema_compiles() {
    let doc = document();
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in &refs {
        resolve(&doc, reference);
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in schemas.keys() {
        named(&doc, name);
    }
    // No schema is left unused.
    for name in schemas.keys() {
        let reference = format!("#/components/schemas/{name}");
        assert!(
            refs.contains(&reference),
            "components/schemas/{name} is never used"
        );
    }
}

#[test]
fn every_request_variant_has_a_branch_and_real_requests_validate() {
    let doc = document();
    let f = fixture();
    let samples: Vec<(&'static str, Value)> = requests(&f)
        .iter()
        .map(|r| (r.variant(), serde_json::to_value(r).unwrap()))
        .collect();
    check_samples(&doc, "Request", &serde_variants::<Request>(), &samples);
    for (variant, json) in &samples {
        // What a client sends as the schema says, the server reads back.
        let back: Request = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("Request::{variant} does not deserialize: {e}"));
        assert_eq!(&serde_json::to_value(&back).unwrap(), json, "{variant}");
    }
    // Each branch names its Windows function (or says it has none) and the
    // Response variant that answers it.
    let answers = serde_variants::<Response>();
    for (variant, branch) in branches(&doc, "Request") {
        let description = branch["description"].as_str().unwrap();
        assert!(
            description.starts_with('`') || description.contains("no Windows counterpart"),
            "Request::{variant} names no Windows function: {description}"
        );
        let answer = description
            .split("Answer: `")
            .nth(1)
            .and_then(|rest| rest.split('`').next())
            .unwrap_or_else(|| panic!("Request::{variant} names no answer: {description}"));
        assert!(
            answers.contains(&answer),
            "Request::{variant}: no Response::{answer}"
        );
    }
}

#[test]
fn every_response_variant_has_a_branch_and_real_responses_validate() {
    let doc = document();
    let f = fixture();
    let samples: Vec<(&'static str, Value)> = responses(&f)
        .iter()
        .map(|r| (r.variant(), serde_json::to_value(r).unwrap()))
        .collect();
    check_samples(&doc, "Response", &serde_variants::<Response>(), &samples);
    for (variant, json) in &samples {
        // A Rust client (the CLI) reads them back; signed values verify.
        let back: Response = serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("Response::{variant} does not deserialize: {e}"));
        assert_eq!(&serde_json::to_value(&back).unwrap(), json, "{variant}");
    }
}

#[test]
fn every_event_kind_has_a_branch_and_real_events_validate() {
    let doc = document();
    let f = fixture();
    let events = events(&f);
    let samples: Vec<(&'static str, Value)> = events
        .iter()
        .map(|e| (e.variant(), serde_json::to_value(e).unwrap()))
        .collect();
    let kinds = serde_variants::<EventKind>();
    check_samples(&doc, "Event", &kinds, &samples);
    for (event, (variant, json)) in events.iter().zip(&samples) {
        // The SSE event name is the kind, which is the `type` tag.
        assert_eq!(format!("{:?}", event.kind()), *variant);
        assert_eq!(json["type"], *variant);
    }
    // The `kind` filter takes exactly these names.
    let documented = doc["components"]["schemas"]["EventKind"]["enum"].clone();
    assert_eq!(documented, json!(kinds), "EventKind's enum");
    for kind in &kinds {
        let parsed = parse_event_kind(kind).unwrap();
        assert_eq!(format!("{parsed:?}"), *kind);
    }
    assert!(parse_event_kind("Nonsense").is_err());
    // What a lagging client gets.
    let missed = named(&doc, "Missed");
    assert_valid(&missed, &json!({ "missed": 3 }), "a missed message");
    assert!(!missed.is_valid(&json!({ "missed": -1 })));
}

#[test]
fn the_documents_examples_validate_and_deserialize() {
    let doc = document();
    let request = operation(&doc, "post", "/v1/request");
    let media = &request["requestBody"]["content"]["application/json"];
    let validator = compile(&doc, &media["schema"]);
    let examples = media["examples"].as_object().unwrap();
    assert!(!examples.is_empty());
    for (name, example) in examples {
        let value = &example["value"];
        assert_valid(&validator, value, &format!("request example {name}"));
        let request: Request = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("request example {name}: {e}"));
        assert_eq!(request.variant(), name.as_str());
    }
    let media =
        &documented_response(&doc, "post", "/v1/request", 200)["content"]["application/json"];
    let validator = compile(&doc, &media["schema"]);
    for (name, example) in media["examples"].as_object().unwrap() {
        let value = &example["value"];
        assert_valid(&validator, value, &format!("response example {name}"));
        let response: Response = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("response example {name}: {e}"));
        assert_eq!(response.variant(), name.as_str());
    }
    let media =
        &documented_response(&doc, "get", "/v1/events", 200)["content"]["text/event-stream"];
    let validator = compile(&doc, &media["x-sse-data"]);
    let example = media["example"].as_str().unwrap();
    let messages = sse_messages(example);
    assert!(messages.len() >= 2);
    for (event, data, _) in &messages {
        let data: Value = serde_json::from_str(data).unwrap();
        assert_valid(&validator, &data, "the event-stream example");
        if event != "missed" {
            assert_eq!(&data["type"], event);
        }
    }
}

#[test]
fn the_schema_and_serde_refuse_the_same_malformed_requests() {
    let doc = document();
    let schema = named(&doc, "Request");
    let f = fixture();
    let group = f.group.to_string();
    let mut record = serde_json::to_value(&f.record).unwrap();
    record["zz"] = json!(1);
    let mut new_record = serde_json::to_value(NewRecord::new(NOTE, T0)).unwrap();
    new_record["data"] = json!("not base64!");
    let cases = [
        (
            "an unknown request",
            json!({ "CreateIdentityy": { "classifier": "a", "friendly_name": "" } }),
        ),
        (
            "an unknown field in a record",
            json!({ "UpdateRecord": { "group": group, "record": record } }),
        ),
        (
            "a string for a time",
            json!({ "UniversalToPeerTime": { "time": "soon" } }),
        ),
        (
            "a negative time",
            json!({ "PeerToUniversalTime": { "time": -1 } }),
        ),
        (
            "a missing field",
            json!({ "CreateIdentity": { "classifier": "a" } }),
        ),
        (
            "an unknown role",
            json!({ "CreateInvitation": {
                "group": group, "subject": f.bob.public_text().unwrap(), "role": "owner"
            } }),
        ),
        (
            "an invalid peer name",
            json!({ "Open": { "group": "not a peer name" } }),
        ),
        (
            "an invalid record id",
            json!({ "GetRecord": { "group": group, "id": "xyz" } }),
        ),
        (
            "two requests in one",
            json!({ "Open": { "group": group }, "Close": { "group": group } }),
        ),
        ("a request with fields as a bare name", json!("Open")),
        (
            "data that is not base64",
            json!({ "AddRecord": { "group": group, "record": new_record } }),
        ),
        ("a number", json!(42)),
    ];
    for (what, json) in cases {
        assert!(!schema.is_valid(&json), "the schema accepts {what}: {json}");
        assert!(
            serde_json::from_value::<Request>(json.clone()).is_err(),
            "serde accepts {what}: {json}"
        );
    }
}

#[tokio::test]
async fn error_bodies_validate_and_their_statuses_are_documented() {
    let doc = document();
    let body_schema = named(&doc, "ErrorBody");
    let event_schema = named(&doc, "Event");
    let f = fixture();
    let mut produced = BTreeSet::new();
    let mut named_errors = BTreeSet::new();
    for error in api_errors() {
        let (status, name, code) = (error.status.as_u16(), error.name, error.code);
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), status);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_valid(&body_schema, &body, &format!("the body of {name}"));
        assert_eq!(body["error"]["code"], code);
        // The status is documented for /v1/request, with this body, and its
        // description names the error with its HRESULT.
        let documented = documented_response(&doc, "post", "/v1/request", status);
        let media = documented["content"]
            .get(content_type.as_str())
            .unwrap_or_else(|| panic!("{status} documents no {content_type} body"));
        assert_eq!(media["schema"]["$ref"], "#/components/schemas/ErrorBody");
        let description = documented["description"].as_str().unwrap();
        assert!(
            names_error(description, name, code.into()),
            "the description of {status} does not list `{name}` (0x{code:08X}): {description}"
        );
        produced.insert(status);
        named_errors.insert(name);
    }
    // No documented error status is one the API never answers.
    let responses = operation(&doc, "post", "/v1/request")["responses"]
        .as_object()
        .unwrap();
    let documented: BTreeSet<u16> = responses
        .keys()
        .map(|s| s.parse::<u16>().unwrap())
        .filter(|s| *s >= 400)
        .collect();
    assert_eq!(
        documented, produced,
        "documented error statuses != the API's"
    );
    // Every error as an event's reason.
    for reason in peer_errors() {
        let name = reason.name();
        let event = Event::Group(GroupEvent::ConnectionFailed {
            group: f.group.clone(),
            reason,
        });
        assert_valid(
            &event_schema,
            &serde_json::to_value(&event).unwrap(),
            &format!("an event with {name}"),
        );
    }
    // The descriptions name no error the API never answers.
    let mut listed = BTreeSet::new();
    for (status, response) in responses {
        if status.as_str() < "400" {
            continue;
        }
        let description = follow(&doc, response)["description"].as_str().unwrap();
        for (i, word) in description.split('`').enumerate() {
            let is_name = (word.starts_with("PEER_E_") || word.starts_with("E_"))
                && word.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if i % 2 == 1 && is_name {
                listed.insert(word);
            }
        }
    }
    assert_eq!(listed, named_errors, "error names documented != the API's");
}

// ----- over HTTP --------------------------------------------------------------

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What came back from one HTTP exchange.
#[derive(Debug)]
struct Reply {
    status: u16,
    content_type: String,
    www_authenticate: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// A raw response, its body de-chunked (and possibly partial); `None`
/// until the head is complete.
fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = raw[end + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        body = dechunk(&body);
    }
    Some(Reply {
        status,
        content_type: header("content-type").unwrap_or_default(),
        www_authenticate: header("www-authenticate"),
        body,
    })
}

/// The data of the complete chunks of a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..line])
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .expect("a chunk size");
        let start = line + 2;
        if size == 0 || raw.len() < start + size + 2 {
            break;
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
    out
}

/// Sends one request on a new connection and reads the whole response.
fn exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        method.to_ascii_uppercase(),
        body.len()
    );
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
        .unwrap_or_else(|| panic!("no HTTP response: {}", String::from_utf8_lossy(&raw)))
}

/// One event-stream message: its `event`, `data` and `id` fields.
type Message = (String, String, String);

/// Each complete message of an event stream; comments (keep-alives) are
/// skipped.
fn sse_messages(text: &str) -> Vec<Message> {
    let complete = match text.rfind("\n\n") {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .split("\n\n")
        .filter_map(|message| {
            let field = |name: &str| {
                message
                    .lines()
                    .filter_map(|l| l.strip_prefix(name))
                    .map(|v| v.strip_prefix(' ').unwrap_or(v))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            let data = field("data:");
            (!data.is_empty()).then(|| (field("event:"), data, field("id:")))
        })
        .collect()
}

/// Reads `GET path` as an event stream; tells `first` once `count` messages
/// arrived, and returns the response and its messages once a `missed` one
/// and one after it arrived.
fn read_events(
    addr: SocketAddr,
    path: &str,
    count: usize,
    first: oneshot::Sender<()>,
) -> (Reply, Vec<Message>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Authorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut first = Some(first);
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer).expect("the event stream stalled");
        assert!(
            n > 0,
            "the event stream ended: {}",
            String::from_utf8_lossy(&raw)
        );
        raw.extend_from_slice(&buffer[..n]);
        let Some(reply) = parse_reply(&raw) else {
            continue;
        };
        let messages = sse_messages(&String::from_utf8_lossy(&reply.body));
        if messages.len() >= count
            && let Some(first) = first.take()
        {
            let _ = first.send(());
        }
        if let Some(at) = messages.iter().position(|(e, _, _)| e == "missed")
            && messages.len() > at + 1
        {
            return (reply, messages);
        }
    }
}

/// Checks `reply` against what the document says `method path` answers
/// with its status: the status is documented, with the reply's content
/// type, and a JSON body validates against its schema.
fn assert_documented(doc: &Value, method: &str, path: &str, reply: &Reply) {
    let documented = documented_response(doc, method, path, reply.status);
    let essence = |t: &str| t.split(';').next().unwrap().trim().to_ascii_lowercase();
    let content = documented["content"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path} {} documents no content", reply.status));
    let (_, media) = content
        .iter()
        .find(|(t, _)| essence(t) == essence(&reply.content_type))
        .unwrap_or_else(|| {
            panic!(
                "{method} {path} {} documents no {} body",
                reply.status, reply.content_type
            )
        });
    if essence(&reply.content_type) == "application/json" {
        let validator = compile(doc, &media["schema"]);
        let body = reply.json();
        assert_valid(
            &validator,
            &body,
            &format!("the body of {method} {path} {}", reply.status),
        );
        // An error is listed, with its HRESULT, under its status.
        if let (Some(name), Some(code)) = (
            body["error"]["name"].as_str(),
            body["error"]["code"].as_u64(),
        ) {
            let description = documented["description"].as_str().unwrap();
            assert!(
                names_error(description, name, code),
                "{method} {path} {} does not list `{name}` (0x{code:08X}): {description}",
                reply.status
            );
        }
    }
}

/// A stand-in for the node's event loop: answers the requests in turn with
/// `answers`, except that `GetRecord` is `RecordNotFound` and `DeleteGroup`
/// a store failure; passes each request it gets, as JSON, to `seen`.
fn fake_node(answers: Vec<Response>, seen: mpsc::Sender<Value>) -> mpsc::Sender<Command> {
    let (commands, mut rx) = mpsc::channel::<Command>(16);
    tokio::spawn(async move {
        let mut next = answers.iter().cycle();
        while let Some(command) = rx.recv().await {
            let Command::Request { request, reply } = command else {
                continue;
            };
            seen.send(serde_json::to_value(&*request).unwrap())
                .await
                .unwrap();
            let answer = match *request {
                Request::GetRecord { .. } => Err(PeerError::RecordNotFound.into()),
                Request::DeleteGroup { .. } => Err(crate::Error::Write("disk full".into())),
                _ => Ok(next.next().unwrap().clone()),
            };
            let _ = reply.send(answer);
        }
    });
    commands
}

/// Runs `f` off the runtime (the client is blocking).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test]
async fn the_api_over_http_answers_as_documented() {
    let doc = document();
    let f = fixture();
    let (seen_tx, mut seen) = mpsc::channel(16);
    let commands = fake_node(responses(&f), seen_tx);
    let (events, _) = broadcast::channel::<Event>(64);
    let handle = Handle::new(commands, events.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router(handle, TOKEN, None))
            .await
            .unwrap()
    });

    // Every route refuses a missing or wrong token, as documented.
    for (method, path) in ROUTES {
        for token in [None, Some("wrong")] {
            let reply = blocking(move || exchange(addr, method, path, token, None, b"")).await;
            assert_eq!(reply.status, 401, "{method} {path} with {token:?}");
            assert_eq!(
                reply.www_authenticate.as_deref(),
                Some("Bearer realm=\"peergroup\"")
            );
            assert_documented(&doc, method, path, &reply);
        }
    }

    // The schema, as served.
    let reply =
        blocking(move || exchange(addr, "get", "/v1/openapi.json", Some(TOKEN), None, b"")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, OPENAPI.as_bytes());
    assert_documented(&doc, "get", "/v1/openapi.json", &reply);

    // No metrics registry: 404.
    let reply = blocking(move || exchange(addr, "get", "/metrics", Some(TOKEN), None, b"")).await;
    assert_eq!(reply.status, 404);
    assert_documented(&doc, "get", "/metrics", &reply);

    // Every sample request reaches the node as sent; its answer (or error)
    // comes back as documented.
    let mut statuses = BTreeSet::new();
    for request in requests(&f) {
        let json = serde_json::to_value(&request).unwrap();
        let body = serde_json::to_vec(&json).unwrap();
        let reply = blocking(move || {
            exchange(
                addr,
                "post",
                "/v1/request",
                Some(TOKEN),
                Some("application/json"),
                &body,
            )
        })
        .await;
        assert_eq!(
            seen.recv().await.unwrap(),
            json,
            "the node got another request"
        );
        assert_documented(&doc, "post", "/v1/request", &reply);
        statuses.insert(reply.status);
    }
    assert_eq!(statuses, BTreeSet::from([200, 404, 500]));

    // Malformed requests never reach the node: 400, or 413 for a body over
    // the limit.
    let malformed: [(Option<&'static str>, Vec<u8>, u16); 5] = [
        (Some("application/json"), b"{\"Open\": ".to_vec(), 400),
        (
            Some("application/json"),
            b"{\"Open\": {\"group\": 1}}".to_vec(),
            400,
        ),
        (Some("application/json"), b"\"Nonsense\"".to_vec(), 400),
        (Some("text/plain"), b"\"PeerId\"".to_vec(), 400),
        (Some("application/json"), vec![b' '; MAX_BODY + 1], 413),
    ];
    for (content_type, body, status) in malformed {
        let reply = blocking(move || {
            exchange(
                addr,
                "post",
                "/v1/request",
                Some(TOKEN),
                content_type,
                &body,
            )
        })
        .await;
        assert_eq!(reply.status, status, "{reply:?}");
        assert_documented(&doc, "post", "/v1/request", &reply);
    }
    assert!(
        seen.try_recv().is_err(),
        "a malformed request reached the node"
    );

    // A bad event filter.
    let reply = blocking(move || {
        exchange(
            addr,
            "get",
            "/v1/events?kind=Nonsense",
            Some(TOKEN),
            None,
            b"",
        )
    })
    .await;
    assert_eq!(reply.status, 400);
    assert_documented(&doc, "get", "/v1/events", &reply);

    // The event stream: every sample event, then so many that the client
    // lags and is told how many it missed.
    let samples = self::events(&f);
    let count = samples.len();
    let (first_tx, first_rx) = oneshot::channel();
    let client =
        tokio::task::spawn_blocking(move || read_events(addr, "/v1/events", count, first_tx));
    let deadline = Instant::now() + Duration::from_secs(30);
    while events.receiver_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the event stream never subscribed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for event in &samples {
        events.send(event.clone()).unwrap();
    }
    first_rx.await.unwrap();
    // Nothing else runs on this thread until the loop ends: the stream's
    // receiver is 5 events short of the ring's 64.
    for n in 0..69 {
        events
            .send(Event::StoreFailed {
                reason: format!("filler {n}"),
            })
            .unwrap();
    }
    let (reply, messages) = client.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_documented(&doc, "get", "/v1/events", &reply);
    let media =
        &documented_response(&doc, "get", "/v1/events", 200)["content"]["text/event-stream"];
    let data_schema = compile(&doc, &media["x-sse-data"]);
    for (n, (event, data, id)) in messages.iter().enumerate() {
        assert_eq!(id, &(n + 1).to_string());
        let data: Value = serde_json::from_str(data).unwrap();
        assert_valid(&data_schema, &data, &format!("event-stream message {id}"));
        if let Some(sample) = samples.get(n) {
            assert_eq!(data, serde_json::to_value(sample).unwrap());
        }
        if event == "missed" {
            assert_eq!(data, json!({ "missed": 5 }));
        } else {
            assert_eq!(&data["type"], event);
        }
    }
    assert_eq!(messages[count].0, "missed", "{messages:?}");
}
