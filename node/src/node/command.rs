//! The node's typed commands: a [`Request`] for every operation, a
//! [`Response`] for every result. Both are serde types, so that the control
//! API can speak them as they are; [`crate::Handle`] wraps them in typed
//! methods.
//!
//! (Over 600 lines, on purpose: one `match` from each [`Request`] to the
//! behaviour's call, kept together so that the control API, the CLI and
//! the `Handle` map to the Windows functions in one place.)

use libp2p::{Multiaddr, PeerId};
use peergroup_protocol::{
    Digest, GroupProperties, GroupSpec, Identity, IdentityInfo, Keypair, Membership, NewRecord,
    PeerName, Record, RecordId, RecordType, Role, Signed, Timestamp,
    search::Query,
    session::{Status, SyncStatus},
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::{
    behaviour::{Behaviour, GroupEntry, OperationId},
    error::Error,
    storage::Backend,
};

/// A group password as a command carries it: `Debug` is redacted and the
/// text is wiped when dropped.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct GroupPassword(zeroize::Zeroizing<String>);

impl GroupPassword {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> GroupPassword {
        GroupPassword(zeroize::Zeroizing::new(password.into()))
    }

    /// The password.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for GroupPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupPassword(..)")
    }
}

/// An identity with its secret key, as `ExportIdentity` gives it and
/// `ImportIdentity` takes it back. Whoever holds it holds the identity;
/// `Debug` redacts the secret.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ExportedIdentity {
    /// The identity's peer name (derived from the key and the classifier).
    pub peer_name: PeerName,
    /// Its classifier.
    pub classifier: String,
    /// Its friendly name.
    pub friendly_name: String,
    /// The 32-byte secret key seed (base64 in JSON).
    #[serde(with = "peergroup_protocol::bytes_text")]
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for ExportedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportedIdentity")
            .field("peer_name", &self.peer_name)
            .field("classifier", &self.classifier)
            .field("friendly_name", &self.friendly_name)
            .finish_non_exhaustive()
    }
}

/// An operation on the node. A field it does not know is refused, not
/// ignored (a misspelt optional field would otherwise be silently absent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub enum Request {
    /// The node's libp2p peer id.
    PeerId,
    /// The addresses the node listens on.
    ListenAddrs,
    /// `PeerIdentityCreate`.
    CreateIdentity {
        /// The identity's classifier.
        classifier: String,
        /// Its friendly name (empty: the peer name).
        friendly_name: String,
    },
    /// `PeerIdentityImport`: an identity from its 32-byte secret key (the
    /// fields of an [`ExportedIdentity`]).
    ImportIdentity {
        /// The secret key seed (base64 in JSON).
        #[serde(with = "peergroup_protocol::bytes_text")]
        secret: Vec<u8>,
        /// The identity's classifier.
        classifier: String,
        /// Its friendly name.
        friendly_name: String,
    },
    /// `PeerIdentityExport`: the identity with its secret key.
    ExportIdentity {
        /// The identity.
        identity: PeerName,
    },
    /// `PeerEnumIdentities`.
    Identities,
    /// `PeerIdentityDelete`.
    DeleteIdentity {
        /// The identity.
        identity: PeerName,
    },
    /// `PeerGroupCreate`.
    CreateGroup {
        /// What to create.
        spec: GroupSpec,
    },
    /// `PeerGroupCreate` of a password group (`pwzGroupPassword`,
    /// `groupPasswordRole`).
    CreatePasswordGroup {
        /// What to create (its `password` is set from `password` and `role`).
        spec: GroupSpec,
        /// The group password.
        password: GroupPassword,
        /// The role password joiners receive.
        role: Role,
    },
    /// A new group password (the creator only).
    SetGroupPassword {
        /// The group.
        group: PeerName,
        /// The new password.
        password: GroupPassword,
    },
    /// `PeerGroupPasswordJoin` and the first connect; answers with the group
    /// once it is ready.
    PasswordJoin {
        /// The local identity that joins.
        identity: PeerName,
        /// The password invitation's text.
        invitation: String,
        /// The group password.
        password: GroupPassword,
        /// Addresses to dial besides what discovery finds.
        addresses: Vec<Multiaddr>,
    },
    /// `PeerGroupJoin`.
    Join {
        /// The local identity that joins.
        identity: PeerName,
        /// The invitation's text.
        invitation: String,
    },
    /// The groups this node knows.
    Groups,
    /// `PeerGroupOpen`.
    Open {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupConnect` / `PeerGroupConnectByAddress`.
    Connect {
        /// The group.
        group: PeerName,
        /// Addresses to dial besides what discovery finds.
        addresses: Vec<Multiaddr>,
    },
    /// `PeerGroupClose`.
    Close {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupDelete`.
    DeleteGroup {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupGetStatus`.
    Status {
        /// The group.
        group: PeerName,
    },
    /// Now in peer time (reference 3.6).
    PeerTime,
    /// `PeerGroupUniversalTimeToPeerTime`.
    UniversalToPeerTime {
        /// A time by this node's wall clock.
        time: Timestamp,
    },
    /// `PeerGroupPeerTimeToUniversalTime`.
    PeerToUniversalTime {
        /// A peer time.
        time: Timestamp,
    },
    /// The group's synchronizations.
    SyncStatus {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupEnumConnections`.
    Connections {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupGetProperties`.
    Properties {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupSetProperties`.
    SetProperties {
        /// The group.
        group: PeerName,
        /// The new properties.
        properties: GroupProperties,
    },
    /// `PeerGroupEnumMembers`.
    Members {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupCreateInvitation`.
    CreateInvitation {
        /// The group.
        group: PeerName,
        /// The invitee's public identity text.
        subject: String,
        /// The role to grant.
        role: Role,
        /// When the invitation expires, and with it the credential it gives
        /// the invitee. Default ([`None`]): a year from now, or when the
        /// inviter's own credential ends if that is sooner (never beyond it),
        /// as [`Behaviour::create_invitation`] does.
        expires: Option<Timestamp>,
    },
    /// `PeerGroupCreatePasswordInvitation`.
    CreatePasswordInvitation {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupIssueCredentials`.
    IssueCredentials {
        /// The group.
        group: PeerName,
        /// The member's public identity text.
        subject: String,
        /// The role to grant.
        role: Role,
        /// When the credential expires.
        expires: Option<Timestamp>,
        /// `PEER_GROUP_STORE_CREDENTIALS`.
        store: bool,
    },
    /// `PeerGroupAddRecord`.
    AddRecord {
        /// The group.
        group: PeerName,
        /// The record.
        record: NewRecord,
    },
    /// `PeerGroupUpdateRecord`. Only the record's attributes, data and
    /// expiration (never shortened) are taken. Its id, type, flags and
    /// format must be unchanged (`E_INVALIDARG` otherwise). Its group,
    /// creator, version, creation time, modifier and modification time are
    /// ignored, as Windows ignores those members: the node keeps the stored
    /// group, creator and creation time and sets the version (one more), the
    /// modifier (the updating identity) and the modification time (now).
    UpdateRecord {
        /// The group.
        group: PeerName,
        /// The current record with its changes.
        record: Record,
    },
    /// `PeerGroupDeleteRecord`.
    DeleteRecord {
        /// The group.
        group: PeerName,
        /// The record's id.
        id: RecordId,
    },
    /// `PeerGroupGetRecord`.
    GetRecord {
        /// The group.
        group: PeerName,
        /// The record's id.
        id: RecordId,
    },
    /// `PeerGroupEnumRecords`: the live records in id order, answered
    /// with [`Response::Records`]. Every field but `group` may be left
    /// out; with only `group`, the answer is every record but the group's
    /// internal ones.
    ///
    /// Paging: give a `limit`; a page holds exactly `limit` records unless
    /// no more follow, so a page of fewer is the last. The next page is
    /// the same request with `after` set to the last record's id.
    Records {
        /// The group.
        group: PeerName,
        /// Only records of this type (the reserved types included, when
        /// asked for by name).
        #[serde(default)]
        record_type: Option<RecordType>,
        /// With no `record_type`, also the group's internal records: those
        /// of the reserved types, such as its members' credentials
        /// (`RecordType::MEMBERSHIP`). Default false.
        #[serde(default)]
        internal: bool,
        /// Only records with ids after this one: the last id of the page
        /// before. Default: from the first.
        #[serde(default)]
        after: Option<RecordId>,
        /// At most this many records: 1 to 1,000 (more is taken as 1,000;
        /// 0 is refused, `InvalidArg`). Default: every record, in one
        /// answer, as before paging.
        #[serde(default)]
        limit: Option<u32>,
    },
    /// The digest of the group's database.
    Digest {
        /// The group.
        group: PeerName,
    },
    /// `PeerGroupSearchRecords`: the live records of the local replica
    /// that match a query, in id order, without the group's internal
    /// records; usable before the group is connected or ready. Answered
    /// with [`Response::Records`]. Exactly one of `xml` and `query`.
    ///
    /// Errors: `PEER_E_INVALID_SEARCH` for a query that breaks its schema,
    /// `E_INVALIDARG` for a bad escape in a string value or for both or
    /// neither of `xml` and `query` (`protocol::search`, `docs/search.md`).
    SearchRecords {
        /// The group.
        group: PeerName,
        /// The query in Windows' XML form (`<peersearch>`, the
        /// `pwzCriteria` of `PeerGroupSearchRecords`).
        #[serde(default)]
        xml: Option<String>,
        /// The query in the short form (`Priority<=3 and
        /// peercreatorid="*.James*"`).
        #[serde(default)]
        query: Option<String>,
    },
}

/// The result of a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Response {
    /// Nothing to report.
    Done,
    /// A peer id.
    PeerId(PeerId),
    /// Addresses.
    Addresses(Vec<Multiaddr>),
    /// An identity's signed public info.
    Identity(Signed<IdentityInfo>),
    /// Identities.
    Identities(Vec<Signed<IdentityInfo>>),
    /// An identity with its secret key.
    ExportedIdentity(ExportedIdentity),
    /// A group's peer name.
    Group(PeerName),
    /// Groups.
    Groups(Vec<GroupEntry>),
    /// A group's status.
    Status(Status),
    /// A time.
    Time(Timestamp),
    /// Synchronizations of a group.
    Sync(SyncStatus<PeerId>),
    /// Neighbours.
    Peers(Vec<PeerId>),
    /// Group properties.
    Properties(GroupProperties),
    /// Members.
    Members(Vec<Membership>),
    /// An invitation's text.
    Invitation(String),
    /// A record id.
    RecordId(RecordId),
    /// A record.
    Record(Record),
    /// Records, in id order (a page of [`Request::Records`]).
    Records(Vec<Record>),
    /// A database digest.
    Digest(Digest),
}

/// A message into the node's event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Run `request` and answer on `reply`.
    Request {
        request: Box<Request>,
        reply: oneshot::Sender<Result<Response, Error>>,
    },
    /// Stop the node, then answer.
    Shutdown { reply: oneshot::Sender<()> },
}

/// What running a request on the behaviour gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The answer, now.
    Now(Result<Response, Error>),
    /// The answer, once the operation completes (a connect, or the barrier
    /// that makes a write durable).
    After(OperationId, Response),
    /// A read to run off the swarm task, once the group's state allowed it.
    Read(Read),
}

/// A read the node runs on a blocking thread against the store.
#[derive(Debug)]
pub(crate) enum Read {
    Record {
        group: PeerName,
        id: RecordId,
    },
    Records {
        group: PeerName,
        record_type: Option<RecordType>,
        internal: bool,
        after: Option<RecordId>,
        /// `None`: every record.
        limit: Option<usize>,
    },
    Digest {
        group: PeerName,
    },
    Search {
        group: PeerName,
        query: Box<Query>,
        /// Peer time: records expired by then are left out.
        now: Timestamp,
    },
}

impl Read {
    /// Runs the read (blocking).
    pub(crate) fn run(self, backend: &dyn Backend) -> Result<Response, Error> {
        match self {
            Read::Record { group, id } => match backend.get(&group, &id)? {
                Some(r) if !r.record().is_deleted() => Ok(Response::Record(r.record().clone())),
                _ => Err(peergroup_protocol::Error::RecordNotFound.into()),
            },
            Read::Records {
                group,
                record_type,
                internal,
                after,
                limit,
            } => {
                let filter = RecordFilter {
                    record_type,
                    internal,
                };
                Ok(Response::Records(record_page(
                    backend, &group, filter, after, limit,
                )?))
            }
            Read::Digest { group } => Ok(Response::Digest(backend.digest(&group)?)),
            Read::Search { group, query, now } => {
                let records = crate::behaviour::live_records(backend, &group, None)?;
                let records = records.iter().filter(|r| !r.record_type.is_reserved());
                Ok(Response::Records(query.search(records, now)))
            }
        }
    }
}

/// Runs `request` on the behaviour (the node-level requests, peer id and
/// listen addresses, are the loop's own).
pub(crate) fn execute(behaviour: &mut Behaviour, request: Request) -> Outcome {
    let durable = |behaviour: &mut Behaviour, response: Result<Response, Error>| match response {
        Ok(response) => Outcome::After(behaviour.barrier(), response),
        Err(e) => Outcome::Now(Err(e)),
    };
    match request {
        Request::PeerId | Request::ListenAddrs => Outcome::Now(Err(
            peergroup_protocol::Error::InvalidArg("answered by the node".into()).into(),
        )),
        Request::CreateIdentity {
            classifier,
            friendly_name,
        } => {
            let r = behaviour
                .create_identity(&classifier, &friendly_name)
                .map(Response::Identity);
            durable(behaviour, r)
        }
        Request::ImportIdentity {
            secret,
            classifier,
            friendly_name,
        } => {
            let r = import(&secret, &classifier, &friendly_name)
                .and_then(|identity| behaviour.import_identity(identity))
                .map(Response::Identity);
            durable(behaviour, r)
        }
        Request::ExportIdentity { identity } => Outcome::Now(
            behaviour
                .export_identity(&identity)
                .map(|i| Response::ExportedIdentity(exported(&i))),
        ),
        Request::Identities => Outcome::Now(Ok(Response::Identities(behaviour.identities()))),
        Request::DeleteIdentity { identity } => {
            let r = behaviour
                .delete_identity(&identity)
                .map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::CreateGroup { spec } => {
            let r = behaviour.create_group(&spec).map(Response::Group);
            durable(behaviour, r)
        }
        Request::CreatePasswordGroup {
            spec,
            password,
            role,
        } => {
            let r = behaviour
                .create_password_group(&spec, password.expose(), role)
                .map(Response::Group);
            durable(behaviour, r)
        }
        Request::SetGroupPassword { group, password } => {
            let r = behaviour
                .set_group_password(&group, password.expose())
                .map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::PasswordJoin {
            identity,
            invitation,
            password,
            addresses,
        } => match peergroup_protocol::InvitationInfo::parse(&invitation) {
            Ok(info) => {
                match behaviour.password_join(&identity, &invitation, password.expose(), addresses)
                {
                    Ok(operation) => Outcome::After(operation, Response::Group(info.group)),
                    Err(e) => Outcome::Now(Err(e)),
                }
            }
            Err(e) => Outcome::Now(Err(e.into())),
        },
        Request::Join {
            identity,
            invitation,
        } => {
            let r = behaviour.join(&identity, &invitation).map(Response::Group);
            durable(behaviour, r)
        }
        Request::Groups => Outcome::Now(Ok(Response::Groups(behaviour.groups()))),
        Request::Open { group } => Outcome::Now(behaviour.open(&group).map(|()| Response::Done)),
        Request::Connect { group, addresses } => {
            match behaviour.connect_by_address(&group, addresses) {
                Ok(operation) => Outcome::After(operation, Response::Done),
                Err(e) => Outcome::Now(Err(e)),
            }
        }
        Request::Close { group } => Outcome::Now(behaviour.close(&group).map(|()| Response::Done)),
        Request::DeleteGroup { group } => {
            let r = behaviour.delete_group(&group).map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::Status { group } => Outcome::Now(behaviour.status(&group).map(Response::Status)),
        Request::PeerTime => Outcome::Now(Ok(Response::Time(behaviour.now()))),
        Request::UniversalToPeerTime { time } => {
            Outcome::Now(Ok(Response::Time(behaviour.universal_to_peer_time(time))))
        }
        Request::PeerToUniversalTime { time } => {
            Outcome::Now(Ok(Response::Time(behaviour.peer_to_universal_time(time))))
        }
        Request::SyncStatus { group } => {
            Outcome::Now(behaviour.sync_status(&group).map(Response::Sync))
        }
        Request::Connections { group } => {
            Outcome::Now(behaviour.connections(&group).map(Response::Peers))
        }
        Request::Properties { group } => {
            Outcome::Now(behaviour.properties(&group).map(Response::Properties))
        }
        Request::SetProperties { group, properties } => {
            let r = behaviour
                .set_properties(&group, properties)
                .map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::Members { group } => {
            Outcome::Now(behaviour.members(&group).map(Response::Members))
        }
        Request::CreateInvitation {
            group,
            subject,
            role,
            expires,
        } => Outcome::Now(
            behaviour
                .create_invitation(&group, &subject, role, expires)
                .map(Response::Invitation),
        ),
        Request::CreatePasswordInvitation { group } => Outcome::Now(
            behaviour
                .create_password_invitation(&group)
                .map(Response::Invitation),
        ),
        Request::IssueCredentials {
            group,
            subject,
            role,
            expires,
            store,
        } => {
            let r = behaviour
                .issue_credentials(&group, &subject, role, expires, store)
                .map(Response::Invitation);
            durable(behaviour, r)
        }
        Request::AddRecord { group, record } => {
            let r = behaviour.add_record(&group, record).map(Response::RecordId);
            durable(behaviour, r)
        }
        Request::UpdateRecord { group, record } => {
            let r = behaviour
                .update_record(&group, &record)
                .map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::DeleteRecord { group, id } => {
            let r = behaviour
                .delete_record(&group, &id)
                .map(|()| Response::Done);
            durable(behaviour, r)
        }
        Request::GetRecord { group, id } => readable(
            behaviour,
            &group,
            true,
            Read::Record {
                group: group.clone(),
                id,
            },
        ),
        Request::Records {
            group,
            record_type,
            internal,
            after,
            limit,
        } => {
            let limit = match limit {
                None => None,
                Some(0) => {
                    return Outcome::Now(Err(peergroup_protocol::Error::InvalidArg(
                        "a page of records holds at least 1 (limit)".into(),
                    )
                    .into()));
                }
                Some(n) => Some(n.min(MAX_RECORD_PAGE) as usize),
            };
            readable(
                behaviour,
                &group,
                true,
                Read::Records {
                    group: group.clone(),
                    record_type,
                    internal,
                    after,
                    limit,
                },
            )
        }
        Request::Digest { group } => readable(
            behaviour,
            &group,
            false,
            Read::Digest {
                group: group.clone(),
            },
        ),
        Request::SearchRecords { group, xml, query } => {
            let parsed = match (xml, query) {
                (Some(xml), None) => Query::from_xml(&xml),
                (None, Some(text)) => Query::parse(&text),
                _ => Err(peergroup_protocol::Error::InvalidArg(
                    "a search takes exactly one of xml and query".into(),
                )),
            };
            match parsed {
                Ok(query) => readable(
                    behaviour,
                    &group,
                    false,
                    Read::Search {
                        group: group.clone(),
                        query: Box::new(query),
                        now: behaviour.now(),
                    },
                ),
                Err(e) => Outcome::Now(Err(e.into())),
            }
        }
    }
}

/// The most records a `Records` page holds, whatever the `limit`. Pages
/// end by count only, so that a page of fewer than `limit` is the last: a
/// client of large records (up to 256 KiB of data each) that must bound an
/// answer's size asks for fewer.
pub(crate) const MAX_RECORD_PAGE: u32 = 1000;

/// How many records a page reads from the store at a time.
const STORE_PAGE: usize = 1024;

/// Which records a `Records` page lists.
#[derive(Debug, Clone, Copy)]
struct RecordFilter {
    /// Only this type.
    record_type: Option<RecordType>,
    /// With no type, also the reserved (internal) types.
    internal: bool,
}

impl RecordFilter {
    fn lists(&self, record: &Record) -> bool {
        !record.is_deleted()
            && (self.record_type.is_some() || self.internal || !record.record_type.is_reserved())
    }
}

/// The first `limit` (`None`: all) live records of `group` after `after`
/// in id order that `filter` lists: exactly `limit` unless fewer follow.
fn record_page(
    backend: &dyn Backend,
    group: &PeerName,
    filter: RecordFilter,
    after: Option<RecordId>,
    limit: Option<usize>,
) -> Result<Vec<Record>, Error> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut out: Vec<Record> = Vec::new();
    let mut cursor = after;
    while out.len() < limit {
        // What the page still needs, if the filter lists every record.
        let want = (limit - out.len()).min(STORE_PAGE);
        let page = backend.records(group, filter.record_type, cursor, want)?;
        let exhausted = page.len() < want;
        for signed in page {
            let record = signed.record();
            cursor = Some(record.id);
            if filter.lists(record) {
                out.push(record.clone());
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(out)
}

/// A read, if the group is open (and ready, when `ready` is asked).
fn readable(behaviour: &Behaviour, group: &PeerName, ready: bool, read: Read) -> Outcome {
    match behaviour.status(group) {
        Ok(status) if ready && !status.ready => {
            Outcome::Now(Err(peergroup_protocol::Error::GroupNotReady.into()))
        }
        Ok(_) => Outcome::Read(read),
        Err(e) => Outcome::Now(Err(e)),
    }
}

fn exported(identity: &Identity) -> ExportedIdentity {
    ExportedIdentity {
        peer_name: identity.peer_name().clone(),
        classifier: identity.peer_name().classifier().to_owned(),
        friendly_name: identity.friendly_name().to_owned(),
        secret: identity.keypair().secret_bytes().to_vec(),
    }
}

fn import(secret: &[u8], classifier: &str, friendly_name: &str) -> Result<Identity, Error> {
    let seed: [u8; 32] = secret.try_into().map_err(|_| {
        peergroup_protocol::Error::InvalidArg("an identity's secret key is 32 bytes".into())
    })?;
    Ok(Identity::new(
        Keypair::from_secret_bytes(&seed),
        classifier,
        friendly_name,
    )?)
}
