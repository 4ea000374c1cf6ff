//! The local API: what the group's own member does (reference 3.3 and the
//! seed pages). Each call checks the group's state, signs with the member's
//! key, runs the new record through the same validation as a received one,
//! and queues its outputs (merge, publish, persist, events).

use crate::{
    authorize::membership_record,
    credential::Role,
    error::Error,
    group::GroupProperties,
    identity::IdentityInfo,
    invitation::{InvitationInfo, create_invitation, create_password_invitation},
    record::{NewRecord, Record, RecordId, SignedRecord},
    session::{
        Event, Origin, Output, Session,
        validate::{Judged, Reason},
    },
    signed::Signed,
    time::Timestamp,
};

/// What a local write's refusal means to its caller.
fn local_error(reason: Reason) -> Error {
    match reason {
        Reason::Invalid(e) | Reason::UnsupportedVersion(e) => e,
        Reason::Unauthorized(e) => e.into(),
        Reason::WrongGroup(group) => {
            Error::InvalidGroup(format!("the record belongs to group {group}"))
        }
        Reason::Expired => Error::InvalidRecordExpiration("the record has already expired".into()),
        Reason::FromTheFuture { .. } => {
            Error::InvalidRecord(format!("the record is {reason}: check this host's clock"))
        }
        Reason::Stale | Reason::Duplicate | Reason::StaleProperties => Error::AlreadyExists(
            "a newer version of the record is known: read it again and retry".into(),
        ),
        Reason::Offline
        | Reason::HoldFull
        | Reason::UnknownKey
        | Reason::Valid
        | Reason::Released => {
            Error::DeferredValidation(format!("the write was not accepted ({reason})"))
        }
    }
}

impl<P, M> Session<P, M>
where
    P: Clone + Ord + std::hash::Hash + std::fmt::Debug,
    M: Clone + std::fmt::Debug,
{
    /// Runs a record signed by the local member through validation, queues it
    /// for the store and publishes it if the group is online.
    pub(super) fn write_local(
        &mut self,
        signed: SignedRecord,
        now: Timestamp,
    ) -> Result<(), Error> {
        // Checked first so that a refused local write is never held.
        self.authorizer.check(&signed).map_err(Error::from)?;
        let bytes = signed.as_bytes().to_vec();
        match self.judge(Ok(signed), &Origin::Local, now) {
            Judged::Accepted => {}
            Judged::Held => {
                return Err(Error::DeferredValidation(
                    "the local member's own record was held".into(),
                ));
            }
            Judged::Refused(reason) => return Err(local_error(reason)),
        }
        if self.is_online() {
            self.outputs.push_back(Output::Publish(bytes));
        }
        Ok(())
    }

    /// Signs `record` with the member's key, publishing the member's
    /// membership record first if the group has not seen it yet.
    fn sign_and_write(&mut self, record: Record, now: Timestamp) -> Result<(), Error> {
        self.ensure_membership_published(false, now)?;
        let signed = SignedRecord::sign(record, self.identity.keypair())?;
        let result = self.write_local(signed, now);
        self.flush_merges();
        result
    }

    /// `PeerGroupAddRecord`: a new record by the local member; `nonce` is 8
    /// random bytes for its id. Returns the id.
    pub fn add_record(
        &mut self,
        new: NewRecord,
        nonce: [u8; 8],
        now: Timestamp,
    ) -> Result<RecordId, Error> {
        self.check_ready()?;
        let record = Record::new(new, nonce, self.name(), &self.state.member, now)?;
        if self.versions.contains_key(&record.id) {
            return Err(Error::AlreadyExists(format!("record {}", record.id)));
        }
        let id = record.id;
        self.sign_and_write(record, now)?;
        Ok(id)
    }

    /// `PeerGroupUpdateRecord`: `proposed` is the `current` record (as the
    /// store or the caller's overlay holds it) with changed attributes,
    /// expiration or data. `RecordNotFound` if there is no live current record.
    pub fn update_record(
        &mut self,
        proposed: &Record,
        current: Option<SignedRecord>,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.check_ready()?;
        let current = self.live(current)?;
        let record = current.record().update(proposed, &self.state.member, now)?;
        self.sign_and_write(record, now)
    }

    /// `PeerGroupDeleteRecord`: publishes the tombstone of `current`.
    pub fn delete_record(
        &mut self,
        current: Option<SignedRecord>,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.check_ready()?;
        let current = self.live(current)?;
        let record = current.record().delete(&self.state.member, now)?;
        self.sign_and_write(record, now)
    }

    fn live(&self, current: Option<SignedRecord>) -> Result<SignedRecord, Error> {
        match current {
            Some(r) if !r.record().is_deleted() && &r.record().group == self.name() => Ok(r),
            _ => Err(Error::RecordNotFound),
        }
    }

    /// `PeerGroupSetProperties`: only the creator; `newer` must keep the
    /// immutable members. The revision is set here.
    pub fn set_properties(&mut self, mut newer: GroupProperties) -> Result<(), Error> {
        self.check_ready()?;
        let current = self.state.properties().clone();
        if !self.state.is_creator() {
            return Err(Error::NotAuthorized(
                "only the group's creator changes its properties".into(),
            ));
        }
        newer.revision = current.revision.saturating_add(1);
        current.check_update(&newer)?;
        let signed = Signed::sign(newer, self.identity.keypair())?;
        let bytes = signed.as_bytes().to_vec();
        self.state.properties = signed;
        self.persist();
        if self.is_online() {
            self.outputs.push_back(Output::Publish(bytes));
        }
        self.emit(Event::PropertiesChanged {
            group: self.name().clone(),
        });
        Ok(())
    }

    /// `PeerGroupCreateInvitation`: invites the identity whose public text is
    /// `subject` as `role`, valid until `expires` (default: as long as the
    /// member's own credential).
    pub fn create_invitation(
        &self,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<String, Error> {
        self.check_ready()?;
        let subject = Signed::<IdentityInfo>::from_identity_text(subject)?;
        create_invitation(
            &self.identity,
            &self.state.chain,
            &self.state.properties,
            &subject,
            role,
            expires,
            now,
        )
    }

    /// `PeerGroupCreatePasswordInvitation`.
    pub fn create_password_invitation(&self, now: Timestamp) -> Result<String, Error> {
        self.check_ready()?;
        create_password_invitation(
            &self.identity,
            &self.state.chain,
            &self.state.properties,
            now,
        )
    }

    /// `PeerGroupIssueCredentials`: a new credential for the identity whose
    /// public text is `subject` (a renewal or a role change), returned as an
    /// invitation. With `store` (`PEER_GROUP_STORE_CREDENTIALS`) it is also
    /// written as the subject's membership record, which the subject adopts
    /// when it arrives; `lookup` reads the subject's current membership
    /// record from the store.
    pub fn issue_credentials(
        &mut self,
        subject: &str,
        role: Role,
        expires: Option<Timestamp>,
        store: bool,
        lookup: impl FnOnce(&RecordId) -> Result<Option<SignedRecord>, Error>,
        now: Timestamp,
    ) -> Result<String, Error> {
        let text = self.create_invitation(subject, role, expires, now)?;
        if store {
            let chain = InvitationInfo::parse(&text)?.chain;
            let subject = chain.verify(self.state.properties())?.subject;
            let previous = lookup(&RecordId::membership(&subject))?;
            let record = membership_record(
                self.state.properties(),
                &chain,
                &self.identity,
                previous.as_ref().map(|p| p.record()),
                now,
            )?;
            let result = self.write_local(record, now);
            self.flush_merges();
            result?;
        }
        Ok(text)
    }
}
