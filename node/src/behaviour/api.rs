//! The behaviour's public API: one method per Windows function. Local work
//! returns its result; network work (connect) and durability (a barrier)
//! return an [`OperationId`] whose outcome arrives as
//! [`Event::OperationCompleted`].
//!
//! Writes return once they are validated, applied to what the behaviour's
//! reads see, queued for the store and published; they are durable once a
//! [`Behaviour::barrier`] taken after them completes (the node's `Handle`
//! waits for that before it returns).
//!
//! (Over 600 lines, on purpose: the public API, one method per Windows
//! function, each a few lines over a session.)

use libp2p::{Multiaddr, PeerId};
use peergroup_protocol::{
    Digest, Error, GroupKey, GroupProperties, GroupSpec, Identity, IdentityInfo, InvitationInfo,
    Membership, NewRecord, PasswordPolicy, PasswordSecret, PeerName, Record, RecordId, RecordType,
    Role, Scheme, Signed, Timestamp,
    admission::JoinStart,
    check_password,
    session::{Lifecycle, Status, SyncStatus},
};
use rand::RngExt as _;
use serde::{Deserialize, Serialize};

use super::{Behaviour, OperationId, WriteFor, session_config};
use crate::{error::NodeError, groups::GroupSession, storage::WriteOp};

/// How long an invitation is valid when [`Behaviour::create_invitation`]
/// (and so the node's `Handle`, control API and CLI) is given no expiry: a
/// year, capped at the end of the inviter's own credential.
///
/// The invitation carries the invitee's credential, so this is also how
/// long the invitee stays a member unless an admin renews it
/// (`PeerGroupIssueCredentials`): a short default would drop members
/// without warning. Windows' `PeerGroupCreateInvitation` (and
/// `peergroup_protocol::create_invitation`) default to the inviter's whole
/// remaining credential instead, which for a group's creator is about a
/// thousand years.
pub const DEFAULT_INVITATION_LIFETIME: std::time::Duration =
    std::time::Duration::from_secs(365 * 24 * 3600);

/// A group this node knows, as [`Behaviour::groups`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// The group's peer name.
    pub group: PeerName,
    /// Closed, open or online.
    pub lifecycle: Lifecycle,
}

/// How many records an enumeration reads from the store at a time.
const ENUMERATION_PAGE: usize = 1024;

impl Behaviour {
    // ----- identities ------------------------------------------------------------

    /// `PeerIdentityCreate`: a new identity with a fresh key; returns its
    /// signed public info.
    pub fn create_identity(
        &mut self,
        classifier: &str,
        friendly_name: &str,
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        let seed: [u8; 32] = self.rng.random();
        let identity = self.keystore.create(classifier, friendly_name, seed)?;
        let info = identity.info()?;
        self.work.queue_write(
            Some(WriteOp::SaveIdentity(Box::new(identity))),
            WriteFor::Other,
        );
        self.wake();
        Ok(info)
    }

    /// `PeerIdentityImport`: adds an identity whose secret the caller holds.
    pub fn import_identity(
        &mut self,
        identity: Identity,
    ) -> Result<Signed<IdentityInfo>, NodeError> {
        let info = identity.info()?;
        self.keystore.import(identity.clone())?;
        self.work.queue_write(
            Some(WriteOp::SaveIdentity(Box::new(identity))),
            WriteFor::Other,
        );
        self.wake();
        Ok(info)
    }

    /// `PeerEnumIdentities`.
    pub fn identities(&self) -> Vec<Signed<IdentityInfo>> {
        self.keystore.infos()
    }

    /// `PeerIdentityExport`: the identity with its secret key (`NotFound`
    /// if it is not here). Unlike Windows, the key is not encrypted with a
    /// password: whoever holds the result holds the identity.
    pub fn export_identity(&self, name: &PeerName) -> Result<Identity, NodeError> {
        Ok(self.keystore.get(name)?.clone())
    }

    /// `PeerIdentityDelete`: refused while groups use it (`PEER_E_GROUPS_EXIST`).
    pub fn delete_identity(&mut self, name: &PeerName) -> Result<(), NodeError> {
        self.keystore.get(name)?;
        if self.groups.iter().any(|(_, s)| &s.state().member == name) {
            return Err(Error::GroupsExist(format!("identity {name} still has groups")).into());
        }
        self.keystore.remove(name)?;
        self.work
            .queue_write(Some(WriteOp::ForgetIdentity(name.clone())), WriteFor::Other);
        self.wake();
        Ok(())
    }

    // ----- groups -------------------------------------------------------------------

    /// `PeerGroupCreate`: returns the new group's peer name; it is open
    /// (offline) and ready at once. A password group is made with
    /// [`Behaviour::create_password_group`] (`InvalidArg` here), which keeps
    /// the password's secret so that this node can admit password joiners.
    pub fn create_group(&mut self, spec: &GroupSpec) -> Result<PeerName, NodeError> {
        if spec.password.is_some() {
            return Err(Error::InvalidArg(
                "a password group is created with create_password_group".into(),
            )
            .into());
        }
        self.create(spec, None)
    }

    /// `PeerGroupCreate` with `pwzGroupPassword` and `groupPasswordRole`
    /// (reference 2.2): a group that also admits whoever knows `password`,
    /// as `role`, through a password invitation
    /// ([`Behaviour::password_join`]). The properties carry the role, a
    /// random salt and the Argon2id costs ([`crate::ConfigBuilder::password_kdf`]),
    /// nothing derived from the password; this node keeps the password's
    /// secret. Runs Argon2id on the calling thread (tens of milliseconds and
    /// 19 MiB with the default costs). `PasswordDoesNotMeetPolicy` for a
    /// password under 8 characters.
    pub fn create_password_group(
        &mut self,
        spec: &GroupSpec,
        password: &str,
        role: Role,
    ) -> Result<PeerName, NodeError> {
        check_password(password)?;
        let policy = PasswordPolicy::new(role, self.rng.random(), self.config.password_kdf)?;
        let secret = PasswordSecret::derive(password, &policy)?;
        let spec = GroupSpec {
            password: Some(policy),
            ..spec.clone()
        };
        self.create(&spec, Some(secret))
    }

    fn create(
        &mut self,
        spec: &GroupSpec,
        secret: Option<PasswordSecret>,
    ) -> Result<PeerName, NodeError> {
        let creator = spec
            .creator_peer_name
            .as_ref()
            .ok_or_else(|| Error::InvalidArg("the creator peer name is required".into()))?;
        let identity = self.keystore.get(creator)?.clone();
        let now = self.observed_now();
        let properties = spec.create(&identity, now, |name| self.groups.contains(name))?;
        // The group's first data key (epoch 0), from the behaviour's RNG.
        let key = GroupKey::new(0, self.rng.random());
        let mut session =
            GroupSession::create(properties, identity, key, session_config(&self.config))?;
        if let Some(secret) = secret {
            session.remember_password(secret);
        }
        let name = session.name().clone();
        self.groups.insert(session);
        self.drive(&name, false);
        Ok(name)
    }

    /// Changes the group password (the creator only, like every property
    /// change): a new salt, the same role and costs; the properties get a new
    /// revision. Members that held the old password's secret can no longer
    /// admit anyone until they meet a holder of the new one (the creator).
    /// `InvalidArg` for a group without a password;
    /// `PasswordDoesNotMeetPolicy`, `NotAuthorized` as for
    /// [`Behaviour::set_properties`].
    pub fn set_group_password(
        &mut self,
        group: &PeerName,
        password: &str,
    ) -> Result<(), NodeError> {
        check_password(password)?;
        let mut properties = self.groups.get(group)?.properties()?.clone();
        let Some(old) = properties.password.clone() else {
            return Err(Error::InvalidArg(format!("group {group} has no password")).into());
        };
        let policy = PasswordPolicy::new(old.role, self.rng.random(), old.kdf)?;
        let secret = PasswordSecret::derive(password, &policy)?;
        properties.password = Some(policy);
        let session = self.groups.get_mut(group)?;
        session.set_properties(properties)?;
        session.remember_password(secret);
        self.drive(group, true);
        Ok(())
    }

    /// `PeerGroupPasswordJoin` and the first connect: joins with a password
    /// invitation as `identity`, dialing `addresses` besides what discovery
    /// finds. A member that can admit password joiners checks the password
    /// over the network (no password crosses the wire) and mints this
    /// identity's credential; the group is then joined and connected, and
    /// the returned operation completes as [`Behaviour::connect_by_address`]'s
    /// does (ready after the first copy). A wrong password completes it with
    /// `NotAuthorized` (and an [`Event::AuthenticationFailed`](crate::Event::AuthenticationFailed) per member
    /// that checked); nothing is stored. No member able to check within the
    /// connect timeout: `NoMembersFound`. At once: `InvalidArg` for a
    /// credential invitation, `GroupInUse` for a group already here or being
    /// joined, `InvitationNotTrusted` for a bad invitation. Runs Argon2id on
    /// the calling thread (tens of milliseconds with the default costs).
    pub fn password_join(
        &mut self,
        identity: &PeerName,
        invitation: &str,
        password: &str,
        addresses: Vec<Multiaddr>,
    ) -> Result<OperationId, NodeError> {
        let info = InvitationInfo::parse(invitation)?;
        if info.scheme != Scheme::Password {
            return Err(
                Error::InvalidArg("a credential invitation is joined with join".into()).into(),
            );
        }
        let me = self.keystore.get(identity)?.clone();
        if self.groups.get(&info.group).is_ok() || self.admission.is_joining(&info.group) {
            return Err(Error::GroupInUse(format!(
                "group {} is already here or being joined",
                info.group
            ))
            .into());
        }
        let policy = info
            .properties
            .properties()
            .password
            .clone()
            .ok_or_else(|| Error::InvalidArg("the group admits no passwords".into()))?;
        let secret = PasswordSecret::derive(password, &policy)?;
        let operation = self.operation();
        let now = self.clocks();
        let group = info.group.clone();
        // The members at hand: connected peers subscribed to the group's
        // topic. More are told to the machine as they subscribe.
        let candidates: Vec<(PeerId, Vec<u8>)> = self
            .topic_subscribers(&group)
            .into_iter()
            .map(|peer| (peer, peer.to_bytes()))
            .collect();
        let start = JoinStart {
            operation: operation.0,
            identity: me,
            properties: info.properties,
            secret,
            // The join fails after the connect timeout, on the monotonic
            // clock: a step of the wall clock or of peer time moves nothing.
            deadline: now
                .instant
                .checked_add(self.config.connect_timeout)
                .unwrap_or(now.instant),
        };
        self.admission
            .join(start, candidates, now.instant, &mut self.rng)?;
        for addr in addresses {
            self.dial_address(addr);
        }
        self.find_members(&group);
        self.drive_admission();
        Ok(operation)
    }

    /// `PeerGroupJoin`: joins with a credential invitation as `identity`; the
    /// group is open (offline) and not ready until its first copy.
    pub fn join(&mut self, identity: &PeerName, invitation: &str) -> Result<PeerName, NodeError> {
        let info = InvitationInfo::parse(invitation)?;
        let me = self.keystore.get(identity)?.clone();
        let chain = info.accept(&me, self.now())?;
        if let Ok(existing) = self.groups.get(&info.group) {
            return Err(Error::GroupInUse(format!(
                "group {} is already here (as {})",
                info.group,
                existing.state().member
            ))
            .into());
        }
        let session = GroupSession::join(info.properties, me, chain, session_config(&self.config))?;
        let name = session.name().clone();
        self.groups.insert(session);
        self.drive(&name, false);
        Ok(name)
    }

    /// Every group this node knows, with its lifecycle stage.
    pub fn groups(&self) -> Vec<GroupEntry> {
        self.groups
            .iter()
            .map(|(name, s)| GroupEntry {
                group: name.clone(),
                lifecycle: s.lifecycle(),
            })
            .collect()
    }

    /// `PeerGroupOpen`: a closed group becomes open (offline, readable).
    pub fn open(&mut self, group: &PeerName) -> Result<(), NodeError> {
        self.groups.get_mut(group)?.open();
        Ok(())
    }

    /// `PeerGroupConnect`: goes online. See [`Behaviour::connect_by_address`].
    pub fn connect(&mut self, group: &PeerName) -> Result<OperationId, NodeError> {
        self.connect_by_address(group, Vec::new())
    }

    /// `PeerGroupConnectByAddress`: goes online, also dialing `addresses`.
    /// The returned operation completes when the group is ready and online:
    /// at once for a group that synchronized before (or its creator); for a
    /// new member after its first copy; or with `NoMembersFound` /
    /// `NoMemberConnections` after the connect timeout (a
    /// [`GroupEvent::ConnectionFailed`](crate::GroupEvent::ConnectionFailed) is raised too). A closed or unknown group
    /// is `InvalidGroup` at once, and nothing is dialed.
    pub fn connect_by_address(
        &mut self,
        group: &PeerName,
        addresses: Vec<Multiaddr>,
    ) -> Result<OperationId, NodeError> {
        let now = self.observed_now();
        let session = self.groups.get_mut(group)?;
        session.check_open()?;
        let operation = self.operation();
        self.start_connect(group, operation, now)?;
        for addr in addresses {
            self.dial_address(addr);
        }
        self.drive(group, false);
        Ok(operation)
    }

    /// Takes `group` online for `operation`, which completes with the
    /// connect's outcome (`Output::ConnectOutcome`).
    pub(super) fn start_connect(
        &mut self,
        group: &PeerName,
        operation: OperationId,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.connects
            .entry(group.clone())
            .or_default()
            .push(operation);
        let started = self
            .groups
            .get_mut(group)
            .and_then(|session| session.connect(now));
        if started.is_err() {
            self.connects.remove(group);
        }
        started
    }

    /// `PeerGroupClose`: back offline; the group stays known (closed).
    pub fn close(&mut self, group: &PeerName) -> Result<(), NodeError> {
        self.groups.get_mut(group)?.close()?;
        self.drive(group, false);
        Ok(())
    }

    /// `PeerGroupDelete`: removes the group and its local data (records,
    /// credential); other members are not affected.
    pub fn delete_group(&mut self, group: &PeerName) -> Result<(), NodeError> {
        let session = self
            .groups
            .get(group)
            .map_err(|_| Error::NotFound(format!("group {group}")))?;
        if session.lifecycle() != Lifecycle::Closed {
            self.close(group)?;
        }
        self.groups.remove(group);
        self.work.forget_group(group);
        self.work
            .queue_write(Some(WriteOp::ForgetGroup(group.clone())), WriteFor::Other);
        self.wake();
        Ok(())
    }

    /// `PeerGroupGetStatus`: listening, has connections, ready.
    pub fn status(&self, group: &PeerName) -> Result<Status, NodeError> {
        Ok(self.groups.get(group)?.status()?)
    }

    /// The group's synchronizations: those in progress (with the records
    /// received and expected) and when each neighbour last completed one.
    pub fn sync_status(&self, group: &PeerName) -> Result<SyncStatus<PeerId>, NodeError> {
        Ok(self.groups.get(group)?.sync_status())
    }

    /// `PeerGroupEnumConnections`: the group's neighbours.
    pub fn connections(&self, group: &PeerName) -> Result<Vec<PeerId>, NodeError> {
        Ok(self.groups.get(group)?.connections()?)
    }

    /// `PeerGroupGetProperties`.
    pub fn properties(&self, group: &PeerName) -> Result<GroupProperties, NodeError> {
        Ok(self.groups.get(group)?.properties()?.clone())
    }

    /// `PeerGroupSetProperties` (the creator only): `newer` must keep the
    /// immutable members; the revision is set here.
    pub fn set_properties(
        &mut self,
        group: &PeerName,
        newer: GroupProperties,
    ) -> Result<(), NodeError> {
        self.groups.get_mut(group)?.set_properties(newer)?;
        self.drive(group, true);
        Ok(())
    }

    /// `PeerGroupEnumMembers`.
    pub fn members(&self, group: &PeerName) -> Result<Vec<Membership>, NodeError> {
        Ok(self.groups.get(group)?.members()?)
    }

    /// `PeerGroupCreateInvitation`: invites the identity whose public text
    /// is `subject` as `role`, valid until `expires`, which may not be
    /// beyond the end of this member's own credential (`InvalidTimePeriod`).
    ///
    /// Default ([`None`]): a year from now ([`DEFAULT_INVITATION_LIFETIME`]),
    /// or the end of this member's credential when that comes sooner.
    /// Windows defaults to the whole credential instead (about a thousand
    /// years for a group's creator); the invitation carries the invitee's
    /// credential, so the invitee's membership ends with it unless an
    /// admin renews it ([`Behaviour::issue_credentials`]).
    pub fn create_invitation(
        &self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
    ) -> Result<String, NodeError> {
        let now = self.now();
        let session = self.groups.get(group)?;
        if expires.is_some() {
            return Ok(session.create_invitation(subject, role, expires, now)?);
        }
        let default = now.saturating_add(DEFAULT_INVITATION_LIFETIME);
        match session.create_invitation(subject, role, Some(default), now) {
            // The only period refused for a time a year ahead is one beyond
            // this member's credential (or a credential that has ended,
            // which the second call refuses again): the invitation then
            // ends with the credential, the protocol's own default.
            Err(Error::InvalidTimePeriod(_)) => {
                Ok(session.create_invitation(subject, role, None, now)?)
            }
            other => Ok(other?),
        }
    }

    /// `PeerGroupCreatePasswordInvitation`.
    pub fn create_password_invitation(&self, group: &PeerName) -> Result<String, NodeError> {
        let now = self.now();
        Ok(self.groups.get(group)?.create_password_invitation(now)?)
    }

    /// `PeerGroupIssueCredentials`: renews or changes the role of the member
    /// whose public text is `subject`; returns the credential as an
    /// invitation, and with `store` (`PEER_GROUP_STORE_CREDENTIALS`) also
    /// writes it as the member's membership record, which the member adopts.
    pub fn issue_credentials(
        &mut self,
        group: &PeerName,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        store: bool,
    ) -> Result<String, NodeError> {
        let now = self.observed_now();
        let work = &self.work;
        let lookup = |id: &RecordId| {
            work.current(group, id)
                .map_err(|e| Error::ConnectionFailed(format!("the store failed: {e}")))
        };
        let text = self
            .groups
            .get_mut(group)?
            .issue_credentials(subject, role, expires, store, lookup, now)?;
        self.drive(group, true);
        Ok(text)
    }

    // ----- records ------------------------------------------------------------------

    /// `PeerGroupAddRecord`: signs, stores and publishes a new record; returns its id.
    pub fn add_record(
        &mut self,
        group: &PeerName,
        record: NewRecord,
    ) -> Result<RecordId, NodeError> {
        let nonce: [u8; 8] = self.rng.random();
        let now = self.observed_now();
        let id = self.groups.get_mut(group)?.add_record(record, nonce, now);
        self.drive(group, true);
        Ok(id?)
    }

    /// `PeerGroupUpdateRecord`: `record` is the current record with changed
    /// attributes, expiration or data.
    pub fn update_record(&mut self, group: &PeerName, record: &Record) -> Result<(), NodeError> {
        self.groups.get(group)?.check_ready()?;
        let current = self.work.current(group, &record.id)?;
        let now = self.observed_now();
        let result = self
            .groups
            .get_mut(group)?
            .update_record(record, current, now);
        self.drive(group, true);
        Ok(result?)
    }

    /// `PeerGroupDeleteRecord`: publishes the record's tombstone.
    pub fn delete_record(&mut self, group: &PeerName, id: &RecordId) -> Result<(), NodeError> {
        self.groups.get(group)?.check_ready()?;
        let current = self.work.current(group, id)?;
        let now = self.observed_now();
        let result = self.groups.get_mut(group)?.delete_record(current, now);
        self.drive(group, true);
        Ok(result?)
    }

    /// `PeerGroupGetRecord`: a live record (one point read of the store).
    pub fn get_record(&self, group: &PeerName, id: &RecordId) -> Result<Record, NodeError> {
        self.groups.get(group)?.check_ready()?;
        match self.work.current(group, id)? {
            Some(r) if !r.record().is_deleted() => Ok(r.record().clone()),
            _ => Err(Error::RecordNotFound.into()),
        }
    }

    /// `PeerGroupEnumRecords`: the live records, optionally of one type, in
    /// id order. Like [`Behaviour::get_record`] it sees this node's own
    /// writes at once, committed or not. It reads the whole group on the
    /// calling thread; a host that must not stall its swarm enumerates
    /// through [`Behaviour::backend`] elsewhere (the node does, with
    /// [`live_records`], after a barrier).
    pub fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
    ) -> Result<Vec<Record>, NodeError> {
        self.groups.get(group)?.check_ready()?;
        self.live_view(group, record_type)
    }

    /// `PeerGroupSearchRecords`: the live records of the local replica
    /// that match `query` (parse one with `Query::from_xml`, Windows' XML
    /// form, or `Query::parse`, the short form), in id order, without the
    /// group's internal records (the reserved types). Usable before the
    /// group is ready; sees this node's own writes at once, like
    /// [`Behaviour::records`], and reads the group on the calling thread.
    ///
    /// Errors: `NotFound` for a group this node does not have; the store's.
    pub fn search_records(
        &self,
        group: &PeerName,
        query: &peergroup_protocol::search::Query,
    ) -> Result<Vec<Record>, NodeError> {
        self.groups.get(group)?;
        let live = self.live_view(group, None)?;
        let records = live.iter().filter(|r| !r.record_type.is_reserved());
        Ok(query.search(records, self.now()))
    }

    /// The live records of `group` (optionally of one type) as stored,
    /// with this node's uncommitted writes applied over them.
    fn live_view(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
    ) -> Result<Vec<Record>, NodeError> {
        let stored = live_records(&**self.work.backend(), group, record_type)?;
        let mut pending = self
            .work
            .uncommitted(group)
            .filter(|r| record_type.is_none_or(|t| r.record().record_type == t))
            .peekable();
        if pending.peek().is_none() {
            return Ok(stored);
        }
        let mut by_id: std::collections::BTreeMap<RecordId, Record> =
            stored.into_iter().map(|r| (r.id, r)).collect();
        for record in pending {
            let record = record.record();
            if record.is_deleted() {
                by_id.remove(&record.id);
            } else {
                by_id.insert(record.id, record.clone());
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// The digest of the group's stored database (equal digests: identical databases).
    pub fn digest(&self, group: &PeerName) -> Result<Digest, NodeError> {
        self.groups.get(group)?.check_open()?;
        Ok(self.work.backend().digest(group)?)
    }

    /// An operation that completes once every write made before this call is
    /// durable (or failed): what makes a write "return Ok" durably.
    pub fn barrier(&mut self) -> OperationId {
        let operation = self.operation();
        self.work.queue_write(None, WriteFor::Barrier(operation));
        self.wake();
        operation
    }
}

/// The live records of `group` (optionally of one type) in `backend`,
/// read a page at a time.
pub fn live_records(
    backend: &dyn crate::storage::Backend,
    group: &PeerName,
    record_type: Option<RecordType>,
) -> Result<Vec<Record>, NodeError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = backend.records(group, record_type, after, ENUMERATION_PAGE)?;
        let full = page.len() == ENUMERATION_PAGE;
        after = page.last().map(|r| r.record().id);
        out.extend(
            page.into_iter()
                .filter(|r| !r.record().is_deleted())
                .map(|r| r.record().clone()),
        );
        if !full {
            return Ok(out);
        }
    }
}
