//! Password admission over the network (`PeerGroupPasswordJoin`, reference
//! 3.3.4 "Password"), protocol `/peergroup/password/1`.
//!
//! A joiner holding a password invitation and the password connects to the
//! group's members (the addresses it was given, Kademlia providers, mDNS)
//! and asks one that can grant the group's password role, and holds the
//! password's secret, to check the password with a PAKE
//! (`peergroup_protocol::PasswordJoin` / `PasswordCheck`: SPAKE2 on
//! `Argon2id(password, salt)` with key confirmation, bound to both peer ids
//! and the joiner's identity). On success the member mints the joiner's
//! credential for the password role and hands over the group key wrapped
//! for the joiner; the joiner then joins and connects like any member
//! (group authentication, first copy). The password never crosses the wire,
//! and neither an eavesdropper nor a responder that does not know the
//! password can test guesses offline (see the protocol crate's `password`
//! module).
//!
//! Who can check: the creator (which set the password), members that joined
//! with it, and members that can grant the password role, which receive the
//! secret wrapped for them when they authenticate with a holder (see
//! `auth`). Members that cannot grant the role never hold it.
//!
//! Every exchange a peer starts is one online guess: the member counts it
//! and makes that peer wait [`FIRST_BACKOFF`] after its first attempt,
//! doubling with every further attempt up to [`MAX_BACKOFF`]; a successful
//! admission clears the count. A guess that fails raises
//! `Event::AuthenticationFailed` on the member, and on the joiner, which
//! stores nothing. Peer ids are free to make, so the bound per peer slows a
//! patient attacker down rather than stopping it: a group password should be
//! long (the group's Argon2id costs do not help against online guesses).

mod glue;

pub(crate) use self::glue::{Joining, Password};

use std::time::Duration;

use libp2p::StreamProtocol;
pub use peergroup_protocol::messages::password::{MAX_MESSAGE_BYTES, Request, Response};

/// The protocol id.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/peergroup/password/1");

/// How long a peer waits after its first attempt; each further attempt
/// doubles it (5 s, 10 s, 20 s, ... 10 minutes: about a dozen guesses in
/// the first hour from one peer, then 6 an hour).
pub const FIRST_BACKOFF: Duration = Duration::from_secs(5);

/// The longest wait between two attempts of one peer.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// How long one exchange may wait for each answer; a started check the
/// joiner never confirms counts as a failed attempt after it.
pub(crate) const PASSWORD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a joiner that asked every member at hand, and was told its
/// password is wrong (or to wait), waits for another member to connect
/// before the join fails.
pub(crate) const MISMATCH_GRACE: Duration = Duration::from_secs(2);

/// The most checks a member keeps open at once; more are refused (busy).
pub(crate) const MAX_OPEN_CHECKS: usize = 1024;
