//! peergroup's sans-I/O core.
//!
//! peergroup rebuilds the Windows Peer-to-Peer Grouping model (`p2p.h`) on
//! rust-libp2p. This crate holds everything that needs no network, disk,
//! clock or RNG: time and randomness come in as parameters, so every rule here
//! is deterministic and testable on its own. The `peergroup-node` crate puts it
//! on the network and on disk. The map is `design.md` in the project's shared
//! folder; the byte-level formats are in `docs/design.md`.
//!
//! # Layout
//!
//! - [`error`](Error): the crate error, one variant per applicable `PEER_E_*` code,
//!   plus [`DecodeError`] and [`VerifyError`].
//! - `identity`: [`Keypair`], [`PublicKey`], [`Identity`] and its signed public
//!   [`IdentityInfo`] (the `PeerIdentityGetXML` blob).
//! - `peer_name`: [`PeerName`], `authority.classifier`.
//! - `signed`: the signed CBOR envelope [`Signed`], its bounded canonical decoder
//!   and the signing domains ([`Kind`]).
//! - `group`: [`GroupProperties`] and group creation ([`GroupSpec::create`]).
//! - `record`: [`Record`] and the add / update / delete rules; the merge
//!   order is `Ord for SignedRecord`.
//! - `store`: the [`ReadStore`] and [`Store`] traits and [`MemoryStore`].
//! - `credential`: [`Role`]s, [`Credential`]s and [`CredentialChain`]s (the
//!   GMC model), issuing and renewing credentials.
//! - `invitation`: invitations and their one-line text form.
//! - `password`: password groups: the policy, the Argon2id password secret
//!   and the admission exchange (SPAKE2 with key confirmation).
//! - [`admission`]: password admission as a state machine: checks, backoff, minting.
//! - [`auth`]: group authentication: the proofs ([`AuthProof`] over a
//!   connection's transcript), group tags, and the exchange's state (graces,
//!   nonces, clock samples); [`groups`]: the router over a node's sessions that
//!   drives it and decides who is a neighbour and when to disconnect.
//! - `authorize`: the authorization rules, membership records, and the
//!   [`Authorizer`] state machine with deferred validation.
//! - [`session`]: the per-group [`Session`] state machine
//!   (`handle(input, now)` → outputs): lifecycle, readiness, synchronization
//!   (reconciliation and fetches), held records and the one validation function for every origin.
//! - `seal`: group data keys ([`GroupKey`]), sealed envelopes and keys
//!   wrapped for one member ([`WrappedKey`]).
//! - `time`: [`Timestamp`].
//! - `peer_time`: the group clock members agree on ([`PeerClock`]).
//! - [`reconcile`]: range-based set reconciliation (which records one
//!   member has that another lacks), used by every sync.
//! - [`messages`]: the request-response messages nodes exchange (group
//!   authentication, synchronization, password admission).
//! - [`search`]: record search (`PeerGroupSearchRecords`): the XML query
//!   form and a short form for people, parsed to one query tree.
#![deny(missing_docs, rustdoc::broken_intra_doc_links)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

pub mod admission;
pub mod auth;
mod authorize;
pub mod bytes_text;
mod credential;
mod error;
mod group;
pub mod groups;
mod identity;
mod invitation;
pub mod messages;
mod password;
mod peer_name;
mod peer_time;
pub mod reconcile;
mod record;
mod seal;
pub mod search;
pub mod session;
mod signed;
mod store;
mod time;

#[cfg(feature = "test-util")]
pub mod testing;

pub use self::{
    auth::{AuthProof, AuthRole, GROUP_TAG_LEN, Transcript, group_tag},
    authorize::{
        AuthorizeError, Authorizer, DEFAULT_MAX_HELD, DEFAULT_MAX_HELD_PER_SIGNER, HOLD_TTL,
        Memberships, Verdict, authorize, membership_chain, membership_record,
    },
    credential::{
        Credential, CredentialChain, INFINITE_VALIDITY_SECS, MAX_CHAIN_LEN, Membership, Role,
        SignedCredential, issue_credential, renew_credential,
    },
    error::{DecodeError, Error, VerifyError},
    group::{
        AuthSchemes, Cloud, DEFAULT_MEMBER_DATA_LIFETIME, GroupFlags, GroupProperties, GroupSpec,
        MAX_COMMENT_CHARS, MAX_MEMBER_DATA_LIFETIME, MIN_MEMBER_DATA_LIFETIME,
        MIN_PRESENCE_LIFETIME, SignedProperties,
    },
    identity::{
        IDENTITY_TEXT_PREFIX, Identity, IdentityInfo, Keypair, MAX_FRIENDLY_NAME_CHARS, PublicKey,
        Signature,
    },
    invitation::{
        INVITATION_TEXT_PREFIX, Invitation, InvitationInfo, Scheme, create_invitation,
        create_password_invitation,
    },
    password::{
        KdfParams, MIN_PASSWORD_CHARS, PASSWORD_SECRET_LEN, PakeContext, PasswordCheck,
        PasswordJoin, PasswordPolicy, PasswordSecret, check_password, unwrap_password_secret,
        wrap_password_secret,
    },
    peer_name::{MAX_CLASSIFIER_CHARS, PeerName, authority_of},
    peer_time::{MAX_SKEW, NOT_BEFORE_TOLERANCE, PeerClock, sample_one_way, sample_round_trip},
    record::{
        Attribute, AttributeValue, Attributes, MAX_ATTRIBUTE_NAME, MAX_ATTRIBUTE_STRING,
        MAX_ATTRIBUTES, MAX_RECORD_DATA, NewRecord, RECORD_FORMAT, RESERVED_ATTRIBUTES, Record,
        RecordFlags, RecordId, RecordType, SignedRecord,
    },
    seal::{
        GROUP_KEY_LEN, GroupKey, KeyCommitment, MAX_SEALED_SIZE, WrappedKey, open, seal,
        sealed_epoch, unwrap_key, wrap_key,
    },
    session::{GroupState, Session, SessionConfig},
    signed::{
        Kind, MAX_ENVELOPE_SIZE, Payload, Signed, WIRE_VERSION, decode_canonical, encode,
        envelope_kind,
    },
    store::{
        Change, Digest, DigestBuilder, MemoryStore, Merged, ReadStore, Store, StoreError, Version,
        envelope_hash, merge_decision,
    },
    time::Timestamp,
};
