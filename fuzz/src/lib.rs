//! Fixed fixtures shared by the fuzz targets and the seed generator
//! (`examples/seeds.rs`), so that the seeds are inputs the targets accept all
//! the way through (a proof that verifies, a key that unwraps, a password
//! exchange that confirms).
//!
//! Everything here is deterministic: fixed identity seeds, the fixed time
//! [`T0`], ed25519's deterministic signatures and a seeded RNG. Fixtures may
//! `unwrap`; fuzz input never is.

use std::sync::OnceLock;

use peergroup_protocol::{
    CredentialChain, GroupKey, GroupSpec, Identity, KdfParams, PakeContext, PasswordPolicy,
    PasswordSecret, PeerName, Role, SignedProperties, Timestamp, Transcript, issue_credential,
    testing::{T0, group_of, identity},
};
use rand::{SeedableRng, rngs::StdRng};

/// The classifier of the fixed group.
pub const GROUP_CLASSIFIER: &str = "fuzz";
/// The time the targets check validity at: one hour after [`T0`].
pub const NOW: Timestamp = T0.saturating_add_secs(3600);
/// Credentials in the fixtures last a year from [`T0`].
pub const NOT_AFTER: Timestamp = T0.saturating_add_secs(365 * 24 * 3600);
/// The group key's epoch and bytes.
pub const GROUP_KEY_EPOCH: u32 = 0;
/// The group key's bytes.
pub const GROUP_KEY_BYTES: [u8; 32] = [7; 32];
/// The group authentication transcript's peer ids (as bytes) and nonces.
pub const INITIATOR_PEER: &[u8] = b"fuzz-initiator-peer";
/// The responder's peer id, for the group authentication and the password exchange.
pub const RESPONDER_PEER: &[u8] = b"fuzz-responder-peer";
/// The password joiner's peer id.
pub const JOINER_PEER: &[u8] = b"fuzz-joiner-peer";
/// The initiator's nonce.
pub const INITIATOR_NONCE: [u8; 32] = [1; 32];
/// The responder's nonce.
pub const RESPONDER_NONCE: [u8; 32] = [2; 32];
/// The password secret's parts (what Argon2id would derive; not run here).
pub const SECRET_SALT: [u8; 16] = [1; 16];
/// See [`SECRET_SALT`].
pub const SECRET_W: [u8; 32] = [2; 32];

/// The fixed world.
pub struct Fixtures {
    /// The group's creator (identity seed 1).
    pub creator: Identity,
    /// An admin with a credential from the creator (seed 2): the responder of
    /// the group authentication.
    pub admin: Identity,
    /// A member with a credential from the admin (seed 3): the initiator of
    /// the group authentication, and the holder of the wrapped group key.
    pub member: Identity,
    /// A password joiner (seed 20).
    pub joiner: Identity,
    /// The group's signed properties: a password group (members by password).
    pub properties: SignedProperties,
    /// The group's name.
    pub group: PeerName,
    /// The group's data key.
    pub group_key: GroupKey,
    /// creator → admin.
    pub admin_chain: CredentialChain,
    /// creator → admin → member.
    pub member_chain: CredentialChain,
    /// The password secret.
    pub secret: PasswordSecret,
    /// The joiner's signed identity info (envelope bytes).
    pub joiner_identity: Vec<u8>,
}

impl std::fmt::Debug for Fixtures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixtures")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// The fixtures, made once per process.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(make)
}

fn make() -> Fixtures {
    let creator = identity(1, "creator");
    let admin = identity(2, "admin");
    let member = identity(3, "member");
    let joiner = identity(20, "joiner");
    let policy = PasswordPolicy::new(Role::Member, SECRET_SALT, KdfParams::MIN).unwrap();
    let properties = GroupSpec {
        password: Some(policy),
        ..GroupSpec::new(creator.peer_name(), GROUP_CLASSIFIER)
    }
    .create(&creator, T0, |_| false)
    .unwrap();
    let group = group_of(&creator, GROUP_CLASSIFIER);
    assert_eq!(group, properties.properties().group_peer_name);
    let props = properties.properties();
    let admin_chain = issue_credential(
        &creator,
        &CredentialChain::creator(),
        props,
        admin.info().unwrap().payload(),
        Role::Admin,
        T0,
        NOT_AFTER,
    )
    .unwrap();
    let member_chain = issue_credential(
        &admin,
        &admin_chain,
        props,
        member.info().unwrap().payload(),
        Role::Member,
        T0,
        NOT_AFTER,
    )
    .unwrap();
    let joiner_identity = joiner.info().unwrap().into_bytes();
    Fixtures {
        creator,
        admin,
        member,
        joiner,
        properties,
        group,
        group_key: GroupKey::new(GROUP_KEY_EPOCH, GROUP_KEY_BYTES),
        admin_chain,
        member_chain,
        secret: PasswordSecret::from_parts(SECRET_SALT, SECRET_W),
        joiner_identity,
    }
}

impl Fixtures {
    /// The group authentication transcript both sides sign.
    pub fn transcript(&self) -> Transcript<'_> {
        Transcript {
            group: &self.group,
            initiator: INITIATOR_PEER,
            responder: RESPONDER_PEER,
            initiator_nonce: INITIATOR_NONCE,
            responder_nonce: RESPONDER_NONCE,
        }
    }

    /// The password exchange's context for a joiner presenting `joiner_identity`.
    pub fn pake_context<'a>(&'a self, joiner_identity: &'a [u8]) -> PakeContext<'a> {
        PakeContext {
            group: &self.group,
            joiner_identity,
            joiner_peer: JOINER_PEER,
            responder_peer: RESPONDER_PEER,
        }
    }

    /// The context (wrap_key / unwrap_key) a node binds the group key to.
    pub fn wrap_context(&self) -> &[u8] {
        self.group.as_str().as_bytes()
    }
}

/// The deterministic RNG: the same stream on every call.
pub fn rng() -> StdRng {
    StdRng::seed_from_u64(0)
}
