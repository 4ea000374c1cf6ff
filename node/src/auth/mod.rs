//! Group authentication on every connection between two nodes of a group
//! (Windows' "Group Connect", reference 3.3.4), over the request-response
//! protocol `/peergroup/auth/1`:
//!
//! 1. A → B `Hello { tag, nonce_a, time_a, anchored_a }` (the group by its
//!    tag, not its name); B answers `Nonce { nonce_b, time_b, anchored_b }`,
//!    or `Refused` if it has no such group. The times are each side's peer
//!    time: once the exchange succeeds, each side samples the other's clock
//!    (`peergroup_protocol::PeerClock`; the initiator against the midpoint
//!    of its round trip).
//! 2. A → B `Prove { tag, proof_a }`: A's signed identity, credential chain
//!    and signature over the transcript (group, both peer ids of this
//!    connection, both nonces; `peergroup_protocol::Transcript`). B checks it
//!    and answers `Accepted { proof_b, key, chain }`: its own proof, the
//!    group's data key wrapped for A's identity key, and A's credential as
//!    B's group database holds it when it is newer than the one A presented
//!    (a renewal or role change an admin stored), and the group password's
//!    secret wrapped for A when B holds it and A's role can grant the
//!    password role (`password`). A checks B's proof, unwraps the key,
//!    adopts the credential, keeps the secret.
//!
//! Both nodes start an exchange when they see the other subscribe to the
//! group's topic; whichever completes first makes the peer an authenticated
//! neighbour on both sides (the responder checks the initiator's proof before
//! it answers). Until then the peer's gossip is ignored (its gossipsub
//! application score is below the graylist threshold) and nothing of the
//! group is sent to it. A failed exchange raises `Event::AuthenticationFailed`
//! and closes the connection; so does a subscriber that has not
//! authenticated within [`AUTH_GRACE`].

mod glue;

pub(crate) use self::glue::Auth;

use std::time::Duration;

use libp2p::StreamProtocol;
pub use peergroup_protocol::messages::auth::{MAX_MESSAGE_BYTES, Request, Response};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/auth/1");

/// How long a peer subscribed to one of our groups' topics may stay
/// unauthenticated before the connection is closed.
pub const AUTH_GRACE: Duration = Duration::from_secs(10);

/// How long an exchange may wait for each answer.
pub(crate) const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
