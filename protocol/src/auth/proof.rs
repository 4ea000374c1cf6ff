//! Group authentication (Windows' "Group Connect" sub-protocol, reference
//! 3.3.4): two nodes of a group prove to each other, on one connection, that
//! the identity each speaks for holds a valid credential chain of the group.
//!
//! Each side contributes a fresh 32-byte nonce; each side then signs, with
//! its identity key, the transcript
//!
//! ```text
//! len(domain) || "peergroup/group-auth/v1" || role (1: initiator, 2: responder)
//! || u16 len || group peer name || u16 len || initiator's libp2p peer id
//! || u16 len || responder's libp2p peer id || initiator nonce (32) || responder nonce (32)
//! ```
//!
//! and sends it with its signed identity info and its chain. The peer ids are
//! those of the connection (which Noise authenticates), so a proof is bound to
//! one connection between two nodes and to both nonces: replaying a
//! transcript to a third party, or in another exchange, fails. The role byte
//! keeps one side's proof from being reflected as the other's.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest as _, Sha256};

use crate::{
    credential::{CredentialChain, Membership},
    error::Error,
    group::GroupProperties,
    identity::{Identity, IdentityInfo, Signature},
    peer_name::PeerName,
    signed::Signed,
    time::Timestamp,
};

/// The signing domain of group authentication transcripts.
const AUTH_DOMAIN: &[u8] = b"peergroup/group-auth/v1";

/// The length of a group tag ([`group_tag`]).
pub const GROUP_TAG_LEN: usize = 32;

/// A group's tag: `sha2-256("peergroup/group-tag/v1" || group peer name)`.
/// It names the group on the wire (gossip topics, authentication requests)
/// without revealing the name to whoever does not know it already.
pub fn group_tag(group: &PeerName) -> [u8; GROUP_TAG_LEN] {
    let mut h = Sha256::new();
    h.update(b"peergroup/group-tag/v1");
    h.update(group.as_str().as_bytes());
    h.finalize().into()
}

/// Which side of an exchange a proof is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthRole {
    /// The node that asked.
    Initiator,
    /// The node that answered.
    Responder,
}

impl AuthRole {
    fn byte(self) -> u8 {
        match self {
            AuthRole::Initiator => 1,
            AuthRole::Responder => 2,
        }
    }
}

/// What both sides sign: the group, the connection's two peer ids (as
/// bytes) and both nonces.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The group.
    pub group: &'a PeerName,
    /// The initiator's libp2p peer id, as bytes.
    pub initiator: &'a [u8],
    /// The responder's libp2p peer id, as bytes.
    pub responder: &'a [u8],
    /// The initiator's nonce.
    pub initiator_nonce: [u8; 32],
    /// The responder's nonce.
    pub responder_nonce: [u8; 32],
}

impl Transcript<'_> {
    /// The bytes `role` signs.
    pub fn signing_bytes(&self, role: AuthRole) -> Vec<u8> {
        let mut m = Vec::with_capacity(256);
        // The domain is a short constant.
        m.push(u8::try_from(AUTH_DOMAIN.len()).unwrap_or(u8::MAX));
        m.extend_from_slice(AUTH_DOMAIN);
        m.push(role.byte());
        for part in [
            self.group.as_str().as_bytes(),
            self.initiator,
            self.responder,
        ] {
            // Peer names are at most 643 bytes, peer ids a few dozen.
            m.extend_from_slice(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
            m.extend_from_slice(part);
        }
        m.extend_from_slice(&self.initiator_nonce);
        m.extend_from_slice(&self.responder_nonce);
        m
    }
}

/// One side's proof of membership, as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthProof {
    /// The prover's signed identity info (envelope bytes).
    #[serde(rename = "i")]
    pub identity: ByteBuf,
    /// The prover's credential chain (empty for the creator).
    #[serde(rename = "c")]
    pub chain: ByteBuf,
    /// The identity key's signature over the transcript.
    #[serde(rename = "s")]
    pub signature: ByteBuf,
}

impl AuthProof {
    /// `identity` (holding `chain`) proves itself as `role` over `transcript`.
    pub fn new(
        identity: &Identity,
        chain: &CredentialChain,
        role: AuthRole,
        transcript: &Transcript<'_>,
    ) -> Result<AuthProof, Error> {
        let signature = identity.keypair().sign(&transcript.signing_bytes(role));
        Ok(AuthProof {
            identity: ByteBuf::from(identity.info()?.into_bytes()),
            chain: ByteBuf::from(chain.to_bytes()?),
            signature: ByteBuf::from(signature.as_bytes().to_vec()),
        })
    }

    /// Checks the proof of `role` over `transcript` for the group of
    /// `properties` at `now`: the identity info and every credential verify,
    /// the chain is the identity's and valid now (the creator proves with an
    /// empty chain and the creator's key), and the signature covers the
    /// transcript. Returns what the chain proves. `NotAuthorized`,
    /// `InvalidCredential`, `InvalidTimePeriod` or a decode error otherwise.
    pub fn verify(
        &self,
        properties: &GroupProperties,
        role: AuthRole,
        transcript: &Transcript<'_>,
        now: Timestamp,
    ) -> Result<(IdentityInfo, Membership), Error> {
        let (info, membership) = self.verify_identity(properties, role, transcript)?;
        membership.check_time(now)?;
        Ok((info, membership))
    }

    /// [`AuthProof::verify`] without the time check: the prover is who it
    /// says and its chain is the group's, whether or not it is valid now.
    /// Used to hand an expired member its renewed credential.
    pub fn verify_identity(
        &self,
        properties: &GroupProperties,
        role: AuthRole,
        transcript: &Transcript<'_>,
    ) -> Result<(IdentityInfo, Membership), Error> {
        if transcript.group != &properties.group_peer_name {
            return Err(Error::InvalidGroup(format!(
                "a proof for group {} checked against {}",
                transcript.group, properties.group_peer_name
            )));
        }
        let identity = Signed::<IdentityInfo>::from_bytes(&self.identity)?;
        let chain = CredentialChain::from_bytes(&self.chain)?;
        let membership = chain.verify(properties)?;
        let info = identity.payload();
        if membership.subject != info.peer_name || membership.key != info.key {
            return Err(Error::NotAuthorized(
                "the credential chain is not the proving identity's".into(),
            ));
        }
        let signature: [u8; 64] = self
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| Error::NotAuthorized("a signature is 64 bytes".into()))?;
        info.key
            .verify(
                &transcript.signing_bytes(role),
                &Signature::from_bytes(signature),
            )
            .map_err(|_| Error::NotAuthorized("the transcript signature does not verify".into()))?;
        Ok((info.clone(), membership))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::{
        Role, issue_credential,
        testing::{T0, identity},
    };

    struct World {
        creator: Identity,
        props: crate::SignedProperties,
    }

    fn world() -> World {
        let creator = identity(1, "creator");
        let props = crate::GroupSpec::new(creator.peer_name(), "auth")
            .create(&creator, T0, |_| false)
            .unwrap();
        World { creator, props }
    }

    fn transcript<'a>(group: &'a PeerName, a: &'a [u8], b: &'a [u8]) -> Transcript<'a> {
        Transcript {
            group,
            initiator: a,
            responder: b,
            initiator_nonce: [1; 32],
            responder_nonce: [2; 32],
        }
    }

    #[test]
    fn members_prove_and_replays_fail() {
        let w = world();
        let p = w.props.properties();
        let member = identity(2, "member");
        let chain = issue_credential(
            &w.creator,
            &CredentialChain::creator(),
            p,
            member.info().unwrap().payload(),
            Role::Member,
            T0,
            T0.saturating_add_secs(3600),
        )
        .unwrap();
        let t = transcript(&p.group_peer_name, b"peer-a", b"peer-b");
        let now = T0.saturating_add_secs(1);
        let proof = AuthProof::new(&member, &chain, AuthRole::Initiator, &t).unwrap();
        let (info, m) = proof.verify(p, AuthRole::Initiator, &t, now).unwrap();
        assert_eq!(
            (info.peer_name, m.role),
            (member.peer_name().clone(), Role::Member)
        );
        // The creator proves with the empty chain.
        let c = AuthProof::new(
            &w.creator,
            &CredentialChain::creator(),
            AuthRole::Responder,
            &t,
        )
        .unwrap();
        assert!(c.verify(p, AuthRole::Responder, &t, now).is_ok());
        // Another role, other peers, other nonces: all fail.
        assert!(proof.verify(p, AuthRole::Responder, &t, now).is_err());
        let relayed = transcript(&p.group_peer_name, b"peer-a", b"peer-c");
        assert!(proof.verify(p, AuthRole::Initiator, &relayed, now).is_err());
        let mut fresh = t;
        fresh.responder_nonce = [3; 32];
        assert!(proof.verify(p, AuthRole::Initiator, &fresh, now).is_err());
        // Expired credential.
        let late = T0.saturating_add_secs(7200);
        assert!(matches!(
            proof.verify(p, AuthRole::Initiator, &t, late),
            Err(Error::InvalidTimePeriod(_))
        ));
        // Someone else's chain.
        let outsider = identity(9, "outsider");
        let stolen = AuthProof::new(&outsider, &chain, AuthRole::Initiator, &t).unwrap();
        assert!(matches!(
            stolen.verify(p, AuthRole::Initiator, &t, now),
            Err(Error::NotAuthorized(_))
        ));
        // A non-member claiming the creator's empty chain.
        let fake = AuthProof::new(
            &outsider,
            &CredentialChain::creator(),
            AuthRole::Initiator,
            &t,
        )
        .unwrap();
        assert!(fake.verify(p, AuthRole::Initiator, &t, now).is_err());
    }

    #[test]
    fn tags_differ_by_group() {
        let w = world();
        let other = crate::testing::group_of(&w.creator, "other");
        assert_ne!(
            group_tag(&w.props.properties().group_peer_name),
            group_tag(&other)
        );
    }
}
