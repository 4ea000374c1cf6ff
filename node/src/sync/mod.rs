//! The first-connect copy: a paged request-response protocol
//! (`/peergroup/sync/2`) through which a joiner copies a member's database.
//! The session decides what to ask and what to make of the answers; this
//! module holds the messages, their bounds and the requester's proof of
//! membership.
//!
//! Every request proves membership: it carries the requester's credential
//! chain and a signature by the requester's identity key over
//! `"peergroup/sync-auth/v1" || u16 len || group || requester peer id ||
//! responder peer id` (the libp2p peer ids of this connection, which Noise
//! authenticates). A responder serves only members of groups it is ready in, so
//! a non-member learns nothing through this protocol. Pages are bounded by
//! [`PAGE_RECORDS`] records and [`PAGE_BYTES`] bytes; the joiner verifies and
//! authorizes every envelope before merging it. Membership records are copied
//! first, so the records that follow validate at once.
//!
//! Every page names its cursor (`last`), the id the next page starts after,
//! so that a page whose envelopes do not decode still moves the copy forward,
//! and a server that does not move it is caught (the session checks).
//! Version 2 added the cursor; version 1 peers do not speak it.

mod handler;

use libp2p::{PeerId, StreamProtocol};
use peergroup_protocol::{
    CredentialChain, Error, GroupProperties, IdentityInfo, Keypair, PeerName, PublicKey, RecordId,
    RecordType, Signature, Signed,
};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/sync/2");

/// The most records in one page.
pub const PAGE_RECORDS: usize = 512;

/// The most envelope bytes in one page (a page may exceed it by one record).
pub const PAGE_BYTES: usize = 4 * 1024 * 1024;

/// The largest request accepted (a 24-long chain is about 10 KiB).
pub const MAX_REQUEST_BYTES: u64 = 256 * 1024;

/// The largest response accepted: a full page plus its framing.
pub const MAX_RESPONSE_BYTES: u64 = (PAGE_BYTES as u64) * 2 + 1024 * 1024;

const AUTH_DOMAIN: &[u8] = b"peergroup/sync-auth/v1";

/// A page request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The group.
    #[serde(rename = "g")]
    pub group: PeerName,
    /// The requester's signed identity info.
    #[serde(rename = "i")]
    pub identity: ByteBuf,
    /// The requester's credential chain.
    #[serde(rename = "c")]
    pub chain: ByteBuf,
    /// Signature over the auth message (see the module docs).
    #[serde(rename = "s")]
    pub signature: ByteBuf,
    /// Only records of this type.
    #[serde(rename = "t")]
    pub record_type: Option<RecordType>,
    /// Records with ids above this one.
    #[serde(rename = "a")]
    pub after: Option<RecordId>,
}

/// A page, or a refusal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Records in id order; `done` when there are no more.
    #[serde(rename = "page")]
    Page {
        /// The group's current signed properties.
        #[serde(rename = "p")]
        properties: ByteBuf,
        /// Record envelopes.
        #[serde(rename = "r")]
        records: Vec<ByteBuf>,
        /// The cursor: the id of the last record considered for this page
        /// (the request's `after` when the page is empty).
        #[serde(rename = "l")]
        last: Option<RecordId>,
        /// Whether this is the last page.
        #[serde(rename = "d")]
        done: bool,
    },
    /// The responder will not serve this request.
    #[serde(rename = "refused")]
    Refused {
        /// Why (for logs).
        #[serde(rename = "r")]
        reason: String,
    },
}

fn auth_message(group: &PeerName, requester: &PeerId, responder: &PeerId) -> Vec<u8> {
    let g = group.as_str().as_bytes();
    let mut m = Vec::with_capacity(AUTH_DOMAIN.len().saturating_add(g.len()).saturating_add(80));
    m.extend_from_slice(AUTH_DOMAIN);
    m.extend_from_slice(&u16::try_from(g.len()).unwrap_or(u16::MAX).to_be_bytes());
    m.extend_from_slice(g);
    m.extend_from_slice(&requester.to_bytes());
    m.extend_from_slice(&responder.to_bytes());
    m
}

/// Builds a request for one page.
pub(crate) fn request(
    group: &PeerName,
    identity: &peergroup_protocol::Identity,
    chain: &CredentialChain,
    me: &PeerId,
    responder: &PeerId,
    record_type: Option<RecordType>,
    after: Option<RecordId>,
) -> Result<Request, Error> {
    let keypair: &Keypair = identity.keypair();
    let signature = keypair.sign(&auth_message(group, me, responder));
    Ok(Request {
        group: group.clone(),
        identity: ByteBuf::from(identity.info()?.into_bytes()),
        chain: ByteBuf::from(chain.to_bytes()?),
        signature: ByteBuf::from(signature.as_bytes().to_vec()),
        record_type,
        after,
    })
}

/// Checks that `request` comes from a current member of the group of
/// `properties`, over the connection from `requester` to `me`.
pub(crate) fn authenticate(
    request: &Request,
    properties: &GroupProperties,
    requester: &PeerId,
    me: &PeerId,
    now: peergroup_protocol::Timestamp,
) -> Result<PeerName, Error> {
    let identity = Signed::<IdentityInfo>::from_bytes(&request.identity)?;
    let chain = CredentialChain::from_bytes(&request.chain)?;
    let membership = chain.verify(properties)?;
    membership.check_time(now)?;
    let info = identity.payload();
    if membership.subject != info.peer_name || membership.key != info.key {
        return Err(Error::NotAuthorized(
            "the chain is not the requesting identity's".into(),
        ));
    }
    let signature: [u8; 64] = request
        .signature
        .as_slice()
        .try_into()
        .map_err(|_| Error::NotAuthorized("malformed signature".into()))?;
    let key: PublicKey = info.key;
    key.verify(
        &auth_message(&request.group, requester, me),
        &Signature::from_bytes(signature),
    )
    .map_err(|_| Error::NotAuthorized("the request's signature does not verify".into()))?;
    Ok(membership.subject)
}
