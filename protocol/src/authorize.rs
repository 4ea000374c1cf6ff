//! Authorization of records against the group's known memberships, and the
//! membership records that publish credential chains in the group database.
//!
//! [`authorize`] is the one decision function: for a signed record (or
//! tombstone) and what is known about the group's members, it answers whether
//! the record is valid, with a typed reason when not. Rules (reference 3.3.3,
//! 3.3.5):
//!
//! - the record belongs to the group; its type is not reserved, except
//!   membership records, which follow their own rules below;
//! - the *last toucher* (modifier, else creator) must be a known member
//!   (otherwise validation is *deferred*: `PEER_E_DEFERRED_VALIDATION`);
//! - some known credential of the last toucher must cover the record's
//!   lifetime (`modified_at ..= expires_at`) and, when the toucher is not the
//!   record's creator, carry the Admin role (members add records and change
//!   their own; admins, the creator among them, change anyone's).
//!
//! A membership record of member `S` has creator `S`, the id
//! [`RecordId::membership`]`(S)`, and S's chain as data. Touched by `S`
//! itself it is valid when the chain verifies and covers the record's
//! lifetime; touched by someone else (an admin storing credentials, or
//! removing them with a tombstone) the usual "admin changes anyone's" rule
//! applies. Every verified chain teaches the authorizer the memberships along it.
//!
//! [`Authorizer`] is the stateful, sans-I/O part: it learns memberships, holds
//! records it cannot accept yet, and releases them when a membership that
//! validates them arrives. Knowledge only grows, and a record is accepted as
//! soon as any known credential allows it, so the set of accepted records does
//! not depend on the order in which records and memberships arrive.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use thiserror::Error;

use crate::{
    credential::{CredentialChain, Membership},
    error::Error,
    group::{GroupProperties, SignedProperties},
    identity::Identity,
    peer_name::PeerName,
    record::{NewRecord, Record, RecordFlags, RecordId, RecordType, SignedRecord},
    signed::{Signed, decode_canonical, encode},
    time::Timestamp,
};

/// How many records an [`Authorizer`] holds for later validation by default.
/// Past it new records are not held (they are reported dropped; the sync
/// protocol fetches them again later, so nothing is lost for good). A newer
/// record never evicts a held one, so whoever floods the hold can fill it,
/// not empty it of someone else's records; held records leave when they are
/// released, when they expire, or after [`HOLD_TTL`].
pub const DEFAULT_MAX_HELD: usize = 10_000;

/// How long a record may wait for the membership that validates it: 10
/// minutes. Memberships come first in every synchronization and within
/// seconds over gossip, so a record still waiting after that waits for a
/// member nobody knows; it is dropped, and a later synchronization brings it
/// again if its member turns up.
pub const HOLD_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// How many records of one signer an [`Authorizer`] holds by default, so that
/// one identity (say an outsider signing its own records) cannot fill the hold.
pub const DEFAULT_MAX_HELD_PER_SIGNER: usize = 256;

/// The payload of a membership record (format 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MembershipData {
    #[serde(rename = "v")]
    version: u8,
    #[serde(rename = "c")]
    chain: Vec<ByteBuf>,
}

const MEMBERSHIP_DATA_VERSION: u8 = 1;

/// Encodes a chain as membership record data.
fn membership_data(chain: &CredentialChain) -> Result<Vec<u8>, Error> {
    Ok(encode(&MembershipData {
        version: MEMBERSHIP_DATA_VERSION,
        chain: chain
            .credentials()
            .iter()
            .map(|c| ByteBuf::from(c.as_bytes().to_vec()))
            .collect(),
    })?)
}

/// Decodes the chain a membership record carries (signatures verified, chain not).
pub fn membership_chain(record: &Record) -> Result<CredentialChain, Error> {
    let data: MembershipData = decode_canonical("membership record", &record.data)?;
    if data.version != MEMBERSHIP_DATA_VERSION {
        return Err(Error::UnsupportedVersion(format!(
            "membership record format {}",
            data.version
        )));
    }
    let credentials = data
        .chain
        .iter()
        .map(|b| Signed::from_bytes(b))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CredentialChain::from_credentials(credentials))
}

/// Builds the membership record publishing `chain` (whose subject is `S`),
/// touched by `toucher` at `now`: `S` itself (a member publishing its own
/// membership, before its first record) or an admin storing credentials
/// (`PEER_GROUP_STORE_CREDENTIALS`). `previous` is the stored membership
/// record of `S`, if any; the new one replaces it through the merge order.
///
/// It expires after the group's member data lifetime, or with the credential
/// if that is sooner.
pub fn membership_record(
    properties: &GroupProperties,
    chain: &CredentialChain,
    toucher: &Identity,
    previous: Option<&Record>,
    now: Timestamp,
) -> Result<SignedRecord, Error> {
    let subject = chain.verify(properties)?;
    let expires_at = now
        .saturating_add_secs(u64::from(properties.member_data_lifetime))
        .min(subject.not_after);
    let data = membership_data(chain)?;
    let group = &properties.group_peer_name;
    let record = match previous {
        None if toucher.peer_name() == &subject.subject => {
            let new = NewRecord {
                record_type: RecordType::MEMBERSHIP,
                expires_at,
                flags: RecordFlags::NONE,
                attributes: Default::default(),
                data,
            };
            Record::new_reserved(
                new,
                RecordId::membership(&subject.subject),
                group,
                &subject.subject,
                now,
            )?
        }
        previous => {
            let version = previous
                .map_or(Some(2), |p| p.version.checked_add(1))
                .ok_or_else(|| {
                    Error::InvalidRecord("the membership record version is exhausted".into())
                })?;
            Record {
                format: crate::record::RECORD_FORMAT,
                group: group.clone(),
                id: RecordId::membership(&subject.subject),
                record_type: RecordType::MEMBERSHIP,
                version,
                flags: RecordFlags::NONE,
                creator: subject.subject.clone(),
                modified_by: Some(toucher.peer_name().clone()),
                attributes: Default::default(),
                created_at: previous.map_or(now, |p| p.created_at),
                expires_at,
                modified_at: now,
                data,
            }
        }
    };
    SignedRecord::sign(record, toucher.keypair())
}

/// Why a record is not (yet) valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AuthorizeError {
    /// The record names another group. Final.
    #[error("the record belongs to group {found}, not {expected}")]
    WrongGroup {
        /// This group.
        expected: PeerName,
        /// The group the record names.
        found: PeerName,
    },
    /// Applications may not publish this reserved type. Final.
    #[error("record type {0} is reserved for the infrastructure")]
    ReservedType(RecordType),
    /// A membership record whose contents are invalid. Final.
    #[error("invalid membership record: {0}")]
    InvalidMembership(String),
    /// Nothing is known yet about the last toucher's membership: validation
    /// is deferred until it arrives (`PEER_E_DEFERRED_VALIDATION`).
    #[error("{0} is not a known member yet")]
    UnknownMember(PeerName),
    /// The last toucher is a known member, but none of its known credentials
    /// allows this record.
    #[error("{member} is not authorized: {reason}")]
    NotAuthorized {
        /// The last toucher.
        member: PeerName,
        /// Why not.
        reason: String,
    },
}

impl AuthorizeError {
    /// Whether no membership learned later can make the record valid.
    pub fn is_final(&self) -> bool {
        match self {
            AuthorizeError::WrongGroup { .. }
            | AuthorizeError::ReservedType(_)
            | AuthorizeError::InvalidMembership(_) => true,
            AuthorizeError::UnknownMember(_) | AuthorizeError::NotAuthorized { .. } => false,
        }
    }
}

impl From<AuthorizeError> for Error {
    fn from(e: AuthorizeError) -> Error {
        match e {
            AuthorizeError::WrongGroup { .. } => Error::InvalidGroup(e.to_string()),
            AuthorizeError::ReservedType(_) | AuthorizeError::NotAuthorized { .. } => {
                Error::NotAuthorized(e.to_string())
            }
            AuthorizeError::InvalidMembership(_) => Error::InvalidCredential(e.to_string()),
            AuthorizeError::UnknownMember(_) => Error::DeferredValidation(e.to_string()),
        }
    }
}

/// The memberships known for a group: the creator's (implied by the
/// properties) and every verified chain's.
pub trait Memberships {
    /// Every known membership of `member`.
    fn memberships_of(&self, member: &PeerName) -> &[Membership];
}

impl Memberships for BTreeMap<PeerName, Vec<Membership>> {
    fn memberships_of(&self, member: &PeerName) -> &[Membership] {
        self.get(member).map_or(&[], Vec::as_slice)
    }
}

/// Decides whether `record` is valid in the group of `properties`, given the
/// known memberships. On success returns the memberships a valid membership
/// record proves (empty for other records).
pub fn authorize(
    record: &SignedRecord,
    properties: &GroupProperties,
    known: &impl Memberships,
) -> Result<Vec<Membership>, AuthorizeError> {
    let r = record.record();
    if r.group != properties.group_peer_name {
        return Err(AuthorizeError::WrongGroup {
            expected: properties.group_peer_name.clone(),
            found: r.group.clone(),
        });
    }
    if r.record_type == RecordType::MEMBERSHIP {
        return authorize_membership(r, properties, known);
    }
    if r.record_type.is_reserved() {
        return Err(AuthorizeError::ReservedType(r.record_type));
    }
    authorize_toucher(r, properties, known).map(|()| Vec::new())
}

/// The general rule: some known credential of the last toucher covers the
/// record's lifetime and, if the toucher is not the creator, is an admin's.
fn authorize_toucher(
    r: &Record,
    properties: &GroupProperties,
    known: &impl Memberships,
) -> Result<(), AuthorizeError> {
    let toucher = r.last_toucher();
    let creator_membership = Membership::creator(properties);
    let implied = (toucher == &properties.creator_peer_name).then_some(&creator_membership);
    let candidates: Vec<&Membership> = implied
        .into_iter()
        .chain(known.memberships_of(toucher))
        .collect();
    if candidates.is_empty() {
        return Err(AuthorizeError::UnknownMember(toucher.clone()));
    }
    let modifies_others = toucher != &r.creator;
    let allowed = candidates.iter().any(|m| {
        m.covers(r.modified_at, r.expires_at) && (!modifies_others || m.role.can_modify_others())
    });
    if allowed {
        return Ok(());
    }
    let reason = if modifies_others && !candidates.iter().any(|m| m.role.can_modify_others()) {
        format!(
            "only admins change records created by others ({})",
            r.creator
        )
    } else {
        format!(
            "no credential covers the record's lifetime ({} to {})",
            r.modified_at, r.expires_at
        )
    };
    Err(AuthorizeError::NotAuthorized {
        member: toucher.clone(),
        reason,
    })
}

fn authorize_membership(
    r: &Record,
    properties: &GroupProperties,
    known: &impl Memberships,
) -> Result<Vec<Membership>, AuthorizeError> {
    let invalid = |m: String| AuthorizeError::InvalidMembership(m);
    if r.id != RecordId::membership(&r.creator) {
        return Err(invalid(format!(
            "a membership record must have id {} for {}",
            RecordId::membership(&r.creator),
            r.creator
        )));
    }
    if r.is_deleted() {
        // Removing a membership record follows the general rule.
        return authorize_toucher(r, properties, known).map(|()| Vec::new());
    }
    let chain = membership_chain(r).map_err(|e| invalid(e.to_string()))?;
    let memberships = chain
        .memberships(properties)
        .map_err(|e| invalid(e.to_string()))?;
    let Some(subject) = memberships.last() else {
        return Err(invalid("no membership".into()));
    };
    if subject.subject != r.creator {
        return Err(invalid(format!(
            "the chain is {}'s, but the record is {}'s",
            subject.subject, r.creator
        )));
    }
    if r.last_toucher() == &r.creator {
        if !subject.covers(r.modified_at, r.expires_at) {
            return Err(invalid(format!(
                "the credential ({} to {}) does not cover the record ({} to {})",
                subject.not_before, subject.not_after, r.modified_at, r.expires_at
            )));
        }
    } else {
        authorize_toucher(r, properties, known)?;
    }
    Ok(memberships)
}

/// The outcome of offering a record to an [`Authorizer`].
// `Accepted` is the common case; boxing it would cost an allocation per record
// to shrink the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: merge it (and forward it).
    Accepted(SignedRecord),
    /// Not valid now, held for re-validation when memberships arrive; `reason`
    /// says whether its toucher is unknown (deferred) or known but not allowed.
    Held {
        /// The record's id.
        id: RecordId,
        /// Why it waits.
        reason: AuthorizeError,
    },
    /// Invalid for good.
    Refused {
        /// The record's id.
        id: RecordId,
        /// Why.
        reason: AuthorizeError,
    },
    /// A record that would have been held, but the hold (or its signer's
    /// share of it) is full; sync will offer it again.
    Dropped {
        /// The record that was not held.
        record: SignedRecord,
    },
}

/// The stateful authorizer of one group: known memberships plus held records.
#[derive(Debug, Clone)]
pub struct Authorizer {
    properties: GroupProperties,
    members: BTreeMap<PeerName, Vec<Membership>>,
    /// Held records in arrival order (oldest first), each with when it was
    /// held and its envelope's sha2-256 (one entry per envelope).
    held: VecDeque<(SignedRecord, Timestamp, [u8; 32])>,
    /// How many held records each signer (last toucher) has.
    held_per_signer: BTreeMap<PeerName, usize>,
    max_held: usize,
    max_held_per_signer: usize,
}

impl Authorizer {
    /// An authorizer for the group of `properties`, knowing only the creator.
    pub fn new(properties: &SignedProperties) -> Authorizer {
        Authorizer {
            properties: properties.properties().clone(),
            members: BTreeMap::new(),
            held: VecDeque::new(),
            held_per_signer: BTreeMap::new(),
            max_held: DEFAULT_MAX_HELD,
            max_held_per_signer: DEFAULT_MAX_HELD_PER_SIGNER,
        }
    }

    /// Sets how many records may be held (default [`DEFAULT_MAX_HELD`]).
    pub fn with_max_held(mut self, max_held: usize) -> Authorizer {
        self.max_held = max_held;
        self
    }

    /// Sets how many records of one signer may be held (default
    /// [`DEFAULT_MAX_HELD_PER_SIGNER`]).
    pub fn with_max_held_per_signer(mut self, max: usize) -> Authorizer {
        self.max_held_per_signer = max;
        self
    }

    /// The group's properties.
    pub fn properties(&self) -> &GroupProperties {
        &self.properties
    }

    /// The known memberships of `member` (the creator's implied one not included).
    pub fn memberships_of(&self, member: &PeerName) -> &[Membership] {
        self.members.memberships_of(member)
    }

    /// The known members with their memberships.
    pub fn members(&self) -> impl Iterator<Item = (&PeerName, &[Membership])> {
        self.members.iter().map(|(k, v)| (k, v.as_slice()))
    }

    /// How many records are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Decides `record` against what is known now, without changing anything.
    pub fn check(&self, record: &SignedRecord) -> Result<(), AuthorizeError> {
        authorize(record, &self.properties, &self.members).map(|_| ())
    }

    /// Learns the memberships of a verified chain (a local member's own, or
    /// one presented by a peer), and returns the held records this releases.
    pub fn learn_chain(&mut self, chain: &CredentialChain) -> Result<Vec<Verdict>, Error> {
        let memberships = chain.memberships(&self.properties)?;
        let mut verdicts = Vec::new();
        if self.learn(memberships) {
            self.release(&mut verdicts);
        }
        Ok(verdicts)
    }

    /// Offers a verified record. The first verdict is `record`'s own; any
    /// that follow are held records this one released (a membership record
    /// can validate records that waited for it).
    pub fn handle(&mut self, record: SignedRecord) -> Vec<Verdict> {
        self.handle_at(record, Timestamp::EPOCH)
    }

    /// [`Authorizer::handle`], holding the record (if it is held) as of `now`
    /// for [`Authorizer::expire_held`].
    pub fn handle_at(&mut self, record: SignedRecord, now: Timestamp) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        let learned = self.decide(record, now, &mut verdicts);
        if learned {
            self.release(&mut verdicts);
        }
        verdicts
    }

    /// Decides one record, holding it if it may become valid; returns whether
    /// new memberships were learned.
    fn decide(
        &mut self,
        record: SignedRecord,
        now: Timestamp,
        verdicts: &mut Vec<Verdict>,
    ) -> bool {
        let id = record.record().id;
        match authorize(&record, &self.properties, &self.members) {
            Ok(memberships) => {
                verdicts.push(Verdict::Accepted(record));
                self.learn(memberships)
            }
            Err(reason) if reason.is_final() => {
                verdicts.push(Verdict::Refused { id, reason });
                false
            }
            Err(reason) => {
                use sha2::{Digest as _, Sha256};
                let hash: [u8; 32] = Sha256::digest(record.as_bytes()).into();
                if self.held.iter().any(|(_, _, h)| *h == hash) {
                    // The same envelope again (from another neighbour): held once.
                    verdicts.push(Verdict::Held { id, reason });
                    return false;
                }
                let signer = record.record().last_toucher().clone();
                let share = self.held_per_signer.get(&signer).copied().unwrap_or(0);
                if self.held.len() >= self.max_held || share >= self.max_held_per_signer {
                    verdicts.push(Verdict::Dropped { record });
                    return false;
                }
                verdicts.push(Verdict::Held { id, reason });
                self.held_per_signer.insert(signer, share.saturating_add(1));
                self.held.push_back((record, now, hash));
                false
            }
        }
    }

    /// Re-checks held records until no more are released.
    fn release(&mut self, verdicts: &mut Vec<Verdict>) {
        loop {
            let mut learned = false;
            let mut still_held = VecDeque::with_capacity(self.held.len());
            for (record, since, hash) in std::mem::take(&mut self.held) {
                match authorize(&record, &self.properties, &self.members) {
                    Ok(memberships) => {
                        self.release_share(record.record().last_toucher().clone());
                        verdicts.push(Verdict::Accepted(record));
                        learned |= self.learn(memberships);
                    }
                    Err(_) => still_held.push_back((record, since, hash)),
                }
            }
            self.held = still_held;
            if !learned {
                return;
            }
        }
    }

    fn release_share(&mut self, signer: PeerName) {
        if let Some(share) = self.held_per_signer.get_mut(&signer) {
            *share = share.saturating_sub(1);
            if *share == 0 {
                self.held_per_signer.remove(&signer);
            }
        }
    }

    /// Drops the held records that expired at `now` or were held
    /// [`HOLD_TTL`] ago (held by [`Authorizer::handle_at`]); returns them.
    pub fn expire_held(&mut self, now: Timestamp) -> Vec<SignedRecord> {
        let mut dropped = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for (record, since, hash) in std::mem::take(&mut self.held) {
            let stale = record.record().expires_at <= now || now >= since.saturating_add(HOLD_TTL);
            if stale {
                self.release_share(record.record().last_toucher().clone());
                dropped.push(record);
            } else {
                kept.push_back((record, since, hash));
            }
        }
        self.held = kept;
        dropped
    }

    /// Adds memberships; returns whether any was new.
    fn learn(&mut self, memberships: Vec<Membership>) -> bool {
        let mut new = false;
        for m in memberships {
            let list = self.members.entry(m.subject.clone()).or_default();
            if !list.contains(&m) {
                list.push(m);
                new = true;
            }
        }
        new
    }
}
