//! [`Handle`]: the typed, cloneable way into a running [`crate::Node`].

use libp2p::{Multiaddr, PeerId};
use peergroup_protocol::{
    Digest, GroupProperties, GroupSpec, Identity, IdentityInfo, Membership, NewRecord, PeerName,
    Record, RecordId, RecordType, Role, Signed, Timestamp,
    session::{Status, SyncStatus},
};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Command, EventFilter, GroupPassword, Request, Response, Subscription};
use crate::{
    behaviour::{Event, GroupEntry},
    error::Error,
};

/// A cloneable handle to a running node. Every method sends one
/// [`Request`] and waits for its [`Response`]. Methods that write return
/// once the write is durable. Dropping a method's future never corrupts the
/// node (the command may still run). After the node stopped, every method
/// returns [`Error::Shutdown`].
#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").finish_non_exhaustive()
    }
}

/// Unwraps the expected [`Response`] variant.
macro_rules! expect {
    ($response:expr, $variant:ident) => {
        match $response {
            Response::$variant(value) => Ok(value),
            other => Err(unexpected(other)),
        }
    };
}

fn unexpected(response: Response) -> Error {
    Error::Peer(peergroup_protocol::Error::InvalidArg(format!(
        "unexpected response {response:?}"
    )))
}

impl Handle {
    pub(crate) fn new(commands: mpsc::Sender<Command>, events: broadcast::Sender<Event>) -> Handle {
        Handle { commands, events }
    }

    /// Sends `request` and waits for its response. Cancel-safe in the sense
    /// above.
    pub async fn request(&self, request: Request) -> Result<Response, Error> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Request {
                request: Box::new(request),
                reply,
            })
            .await
            .map_err(|_| Error::Shutdown)?;
        rx.await.map_err(|_| Error::Shutdown)?
    }

    async fn done(&self, request: Request) -> Result<(), Error> {
        match self.request(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// A new subscription to events passing `filter`.
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        Subscription::new(self.events.subscribe(), filter)
    }

    /// The node's libp2p peer id.
    pub async fn peer_id(&self) -> Result<PeerId, Error> {
        expect!(self.request(Request::PeerId).await?, PeerId)
    }

    /// The addresses the node listens on, each ending with `/p2p/<peer id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        expect!(self.request(Request::ListenAddrs).await?, Addresses)
    }

    /// `PeerIdentityCreate`: a new identity; returns its signed public info.
    pub async fn create_identity(
        &self,
        classifier: &str,
        friendly_name: &str,
    ) -> Result<Signed<IdentityInfo>, Error> {
        let request = Request::CreateIdentity {
            classifier: classifier.to_owned(),
            friendly_name: friendly_name.to_owned(),
        };
        expect!(self.request(request).await?, Identity)
    }

    /// `PeerIdentityImport`: adds an identity whose secret the caller holds.
    pub async fn import_identity(&self, identity: Identity) -> Result<Signed<IdentityInfo>, Error> {
        let secret = identity.keypair().secret_bytes();
        let request = Request::ImportIdentity {
            secret: secret.to_vec(),
            classifier: identity.peer_name().classifier().to_owned(),
            friendly_name: identity.friendly_name().to_owned(),
        };
        expect!(self.request(request).await?, Identity)
    }

    /// `PeerEnumIdentities`.
    pub async fn identities(&self) -> Result<Vec<Signed<IdentityInfo>>, Error> {
        expect!(self.request(Request::Identities).await?, Identities)
    }

    /// `PeerIdentityDelete`.
    pub async fn delete_identity(&self, identity: &PeerName) -> Result<(), Error> {
        self.done(Request::DeleteIdentity {
            identity: identity.clone(),
        })
        .await
    }

    /// `PeerGroupCreate`: returns the new group's peer name; it is open and ready.
    pub async fn create_group(&self, spec: GroupSpec) -> Result<PeerName, Error> {
        expect!(self.request(Request::CreateGroup { spec }).await?, Group)
    }

    /// `PeerGroupJoin`: joins with an invitation as `identity`; the group is
    /// open but not ready until [`Handle::connect`] copies its database.
    pub async fn join(&self, identity: &PeerName, invitation: &str) -> Result<PeerName, Error> {
        let request = Request::Join {
            identity: identity.clone(),
            invitation: invitation.to_owned(),
        };
        expect!(self.request(request).await?, Group)
    }

    /// The groups known locally, with their lifecycle stage.
    pub async fn groups(&self) -> Result<Vec<GroupEntry>, Error> {
        expect!(self.request(Request::Groups).await?, Groups)
    }

    /// `PeerGroupOpen`.
    pub async fn open(&self, group: &PeerName) -> Result<(), Error> {
        self.done(Request::Open {
            group: group.clone(),
        })
        .await
    }

    /// `PeerGroupConnect`: online. Returns when the group is ready: at once
    /// for a group that has synchronized before (or its creator); for a new
    /// member after its first database copy, or an error (`NoMembersFound`,
    /// `NoMemberConnections`) after the configured connect timeout, with a
    /// `ConnectionFailed` event.
    pub async fn connect(&self, group: &PeerName) -> Result<(), Error> {
        self.connect_by_address(group, Vec::new()).await
    }

    /// `PeerGroupConnectByAddress`: like [`Handle::connect`], also dialing `addresses`.
    pub async fn connect_by_address(
        &self,
        group: &PeerName,
        addresses: Vec<Multiaddr>,
    ) -> Result<(), Error> {
        self.done(Request::Connect {
            group: group.clone(),
            addresses,
        })
        .await
    }

    /// `PeerGroupClose`.
    pub async fn close(&self, group: &PeerName) -> Result<(), Error> {
        self.done(Request::Close {
            group: group.clone(),
        })
        .await
    }

    /// `PeerGroupDelete`: removes the local data.
    pub async fn delete_group(&self, group: &PeerName) -> Result<(), Error> {
        self.done(Request::DeleteGroup {
            group: group.clone(),
        })
        .await
    }

    /// `PeerGroupGetStatus`: listening, has connections, ready.
    pub async fn status(&self, group: &PeerName) -> Result<Status, Error> {
        let request = Request::Status {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Status)
    }

    /// Now in peer time: the node's clock corrected by the median of its
    /// neighbours' clocks (reference 3.6; see `peergroup_protocol::PeerClock`).
    pub async fn peer_time(&self) -> Result<Timestamp, Error> {
        expect!(self.request(Request::PeerTime).await?, Time)
    }

    /// `PeerGroupUniversalTimeToPeerTime`.
    pub async fn universal_to_peer_time(&self, time: Timestamp) -> Result<Timestamp, Error> {
        expect!(
            self.request(Request::UniversalToPeerTime { time }).await?,
            Time
        )
    }

    /// `PeerGroupPeerTimeToUniversalTime`.
    pub async fn peer_to_universal_time(&self, time: Timestamp) -> Result<Timestamp, Error> {
        expect!(
            self.request(Request::PeerToUniversalTime { time }).await?,
            Time
        )
    }

    /// The group's synchronizations: those in progress and when each
    /// neighbour last completed one.
    pub async fn sync_status(&self, group: &PeerName) -> Result<SyncStatus<PeerId>, Error> {
        let request = Request::SyncStatus {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Sync)
    }

    /// `PeerGroupEnumConnections`: the group's neighbours.
    pub async fn connections(&self, group: &PeerName) -> Result<Vec<PeerId>, Error> {
        let request = Request::Connections {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Peers)
    }

    /// `PeerGroupGetProperties`.
    pub async fn properties(&self, group: &PeerName) -> Result<GroupProperties, Error> {
        let request = Request::Properties {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Properties)
    }

    /// `PeerGroupSetProperties` (creator only).
    pub async fn set_properties(
        &self,
        group: &PeerName,
        properties: GroupProperties,
    ) -> Result<(), Error> {
        self.done(Request::SetProperties {
            group: group.clone(),
            properties,
        })
        .await
    }

    /// `PeerGroupEnumMembers`.
    pub async fn members(&self, group: &PeerName) -> Result<Vec<Membership>, Error> {
        let request = Request::Members {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Members)
    }

    /// `PeerGroupCreateInvitation`: invites the identity whose public text is
    /// `subject` (from `peergroup identity show`, say) as `role`, until
    /// `expires`: by default a year from now, never beyond the inviter's own
    /// credential (the invitation carries the invitee's credential, which
    /// ends with it).
    pub async fn create_invitation(
        &self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
    ) -> Result<String, Error> {
        let request = Request::CreateInvitation {
            group: group.clone(),
            subject: subject.to_owned(),
            role,
            expires,
        };
        expect!(self.request(request).await?, Invitation)
    }

    /// `PeerGroupIssueCredentials`: renews or changes the role of the member
    /// whose public text is `subject`; returns the credential as an
    /// invitation, and with `store` also publishes it as the member's
    /// membership record (the member adopts it when it arrives).
    pub async fn issue_credentials(
        &self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        store: bool,
    ) -> Result<String, Error> {
        let request = Request::IssueCredentials {
            group: group.clone(),
            subject: subject.to_owned(),
            role,
            expires,
            store,
        };
        expect!(self.request(request).await?, Invitation)
    }

    /// `PeerGroupCreate` of a password group: whoever knows `password` may
    /// join as `role` with a password invitation
    /// ([`Handle::password_join`]). See
    /// [`crate::Behaviour::create_password_group`].
    pub async fn create_password_group(
        &self,
        spec: GroupSpec,
        password: &str,
        role: Role,
    ) -> Result<PeerName, Error> {
        let request = Request::CreatePasswordGroup {
            spec,
            password: GroupPassword::new(password),
            role,
        };
        expect!(self.request(request).await?, Group)
    }

    /// Changes the group password (the creator only).
    pub async fn set_group_password(&self, group: &PeerName, password: &str) -> Result<(), Error> {
        let request = Request::SetGroupPassword {
            group: group.clone(),
            password: GroupPassword::new(password),
        };
        match self.request(request).await? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// `PeerGroupPasswordJoin` and the first connect: returns the group once
    /// a member admitted this identity and the first copy completed. A wrong
    /// password is `NotAuthorized`. See [`crate::Behaviour::password_join`].
    pub async fn password_join(
        &self,
        identity: &PeerName,
        invitation: &str,
        password: &str,
        addresses: Vec<Multiaddr>,
    ) -> Result<PeerName, Error> {
        let request = Request::PasswordJoin {
            identity: identity.clone(),
            invitation: invitation.to_owned(),
            password: GroupPassword::new(password),
            addresses,
        };
        expect!(self.request(request).await?, Group)
    }

    /// `PeerGroupCreatePasswordInvitation`.
    pub async fn create_password_invitation(&self, group: &PeerName) -> Result<String, Error> {
        let request = Request::CreatePasswordInvitation {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Invitation)
    }

    /// `PeerGroupAddRecord`: returns the new record's id once it is durable.
    pub async fn add_record(&self, group: &PeerName, record: NewRecord) -> Result<RecordId, Error> {
        let request = Request::AddRecord {
            group: group.clone(),
            record,
        };
        expect!(self.request(request).await?, RecordId)
    }

    /// `PeerGroupUpdateRecord`: `record` is the current record with changed
    /// attributes, expiration or data.
    pub async fn update_record(&self, group: &PeerName, record: Record) -> Result<(), Error> {
        self.done(Request::UpdateRecord {
            group: group.clone(),
            record,
        })
        .await
    }

    /// `PeerGroupDeleteRecord`.
    pub async fn delete_record(&self, group: &PeerName, id: RecordId) -> Result<(), Error> {
        self.done(Request::DeleteRecord {
            group: group.clone(),
            id,
        })
        .await
    }

    /// `PeerGroupGetRecord` (read on a blocking thread, not the swarm task).
    pub async fn get_record(&self, group: &PeerName, id: RecordId) -> Result<Record, Error> {
        let request = Request::GetRecord {
            group: group.clone(),
            id,
        };
        expect!(self.request(request).await?, Record)
    }

    /// `PeerGroupEnumRecords`: every live record, optionally of one type;
    /// with none, the group's internal records (its members' credentials)
    /// too, as before [`Request::Records`] could hide them. One request,
    /// read on a blocking thread (not the swarm task) 1,024 stored records
    /// at a time, so not a snapshot: a record written meanwhile may or may
    /// not be listed, none twice. For big groups, page with
    /// [`Handle::request`] and the request's `limit` and `after`.
    pub async fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
    ) -> Result<Vec<Record>, Error> {
        let request = Request::Records {
            group: group.clone(),
            record_type,
            internal: true,
            after: None,
            limit: None,
        };
        expect!(self.request(request).await?, Records)
    }

    /// `PeerGroupSearchRecords`: the live records of the local replica that
    /// match `criteria`, Windows' XML query (`<peersearch>`), in id order;
    /// usable before the group is ready. See [`Request::SearchRecords`].
    pub async fn search_records(
        &self,
        group: &PeerName,
        criteria: &str,
    ) -> Result<Vec<Record>, Error> {
        let request = Request::SearchRecords {
            group: group.clone(),
            xml: Some(criteria.to_owned()),
            query: None,
        };
        expect!(self.request(request).await?, Records)
    }

    /// [`Handle::search_records`] with the short form for people
    /// (`Priority<=3 and peercreatorid="*.James*"`; `docs/search.md`).
    pub async fn search_records_by(
        &self,
        group: &PeerName,
        query: &str,
    ) -> Result<Vec<Record>, Error> {
        let request = Request::SearchRecords {
            group: group.clone(),
            xml: None,
            query: Some(query.to_owned()),
        };
        expect!(self.request(request).await?, Records)
    }

    /// The digest of the group's database (equal digests: identical databases).
    pub async fn digest(&self, group: &PeerName) -> Result<Digest, Error> {
        let request = Request::Digest {
            group: group.clone(),
        };
        expect!(self.request(request).await?, Digest)
    }

    /// Stops the node once everything queued is written. Idempotent:
    /// stopping a stopped node is `Ok`.
    pub async fn shutdown(&self) -> Result<(), Error> {
        let (reply, rx) = oneshot::channel();
        if self
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_err()
        {
            return Ok(());
        }
        let _ = rx.await;
        Ok(())
    }
}
