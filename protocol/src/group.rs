//! Group properties (`PEER_GROUP_PROPERTIES`) and group creation (`PeerGroupCreate`).
//!
//! A group's peer name is the *creator's* secure authority plus the group
//! classifier: `authority(creator key).classifier`. The properties carry the
//! creator's key and are signed by it, so anyone holding them can check the
//! group name against the key; only the creator can ever sign new properties.

use serde::{Deserialize, Serialize};

use crate::{
    error::Error,
    identity::{Identity, PublicKey, validate_friendly_name},
    password::PasswordPolicy,
    peer_name::{PeerName, validate_classifier},
    signed::{Kind, Payload, Signed},
    time::Timestamp,
};

/// Group properties signed by the group's creator.
pub type SignedProperties = Signed<GroupProperties>;

/// Default lifetime of published member data: 28 days (`ulMemberDataLifetime`).
pub const DEFAULT_MEMBER_DATA_LIFETIME: u32 = 2_419_200;
/// Shortest member data lifetime: 8 hours (the Windows API bound).
pub const MIN_MEMBER_DATA_LIFETIME: u32 = 8 * 3600;
/// Longest member data lifetime: 10 years (the Windows API bound).
pub const MAX_MEMBER_DATA_LIFETIME: u32 = 10 * 365 * 24 * 3600;
/// Default and shortest presence lifetime: 300 s (`ulPresenceLifetime`).
pub const MIN_PRESENCE_LIFETIME: u32 = 300;
/// The longest comment, in Unicode scalar values.
pub const MAX_COMMENT_CHARS: usize = 255;

/// `PEER_GROUP_PROPERTY_FLAGS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupFlags(pub u32);

impl GroupFlags {
    /// No flags.
    pub const NONE: GroupFlags = GroupFlags(0);
    /// `PEER_MEMBER_DATA_OPTIONAL`: publish membership only when the member acts.
    pub const MEMBER_DATA_OPTIONAL: GroupFlags = GroupFlags(0x1);
    /// `PEER_DISABLE_PRESENCE`: members publish no presence.
    pub const DISABLE_PRESENCE: GroupFlags = GroupFlags(0x2);
    /// `PEER_DEFER_EXPIRATION`: records do not expire while the node is offline.
    pub const DEFER_EXPIRATION: GroupFlags = GroupFlags(0x4);
    const KNOWN: u32 = 0x7;

    /// Whether every bit of `flag` is set.
    pub const fn contains(self, flag: GroupFlags) -> bool {
        self.0 & flag.0 == flag.0
    }
}

/// `PEER_GROUP_AUTHENTICATION_SCHEME` flags (immutable after creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthSchemes(pub u32);

impl AuthSchemes {
    /// `PEER_GROUP_GMC_AUTHENTICATION`: members hold credential chains (the default).
    pub const CREDENTIALS: AuthSchemes = AuthSchemes(0x1);
    /// `PEER_GROUP_PASSWORD_AUTHENTICATION`: a group password admits members.
    pub const PASSWORD: AuthSchemes = AuthSchemes(0x2);
    const KNOWN: u32 = 0x3;
}

impl Default for AuthSchemes {
    fn default() -> Self {
        AuthSchemes::CREDENTIALS
    }
}

/// Where members find each other (the Windows *cloud*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Cloud {
    /// The global cloud: Kademlia, plus mDNS on the local link.
    #[default]
    #[serde(rename = "global")]
    Global,
    /// The link-local cloud: mDNS only.
    #[serde(rename = "link-local")]
    LinkLocal,
}

/// The properties of a group, as the creator signed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupProperties {
    /// The group's peer name: `authority(creator_key).classifier`. Immutable.
    #[serde(rename = "n")]
    pub group_peer_name: PeerName,
    /// The creator's identity peer name (same authority). Immutable.
    #[serde(rename = "c")]
    pub creator_peer_name: PeerName,
    /// The creator's public key; anyone checks the names against it. Immutable.
    #[serde(rename = "k")]
    pub creator_key: PublicKey,
    /// Where members discover each other. Immutable.
    #[serde(rename = "o")]
    pub cloud: Cloud,
    /// How members are admitted. Immutable.
    #[serde(rename = "a")]
    pub auth_schemes: AuthSchemes,
    /// Display name, at most 255 characters.
    #[serde(rename = "f")]
    pub friendly_name: String,
    /// Description, at most 255 characters.
    #[serde(rename = "m")]
    pub comment: String,
    /// Property flags.
    #[serde(rename = "l")]
    pub flags: GroupFlags,
    /// Lifetime of published member data, seconds.
    #[serde(rename = "ml")]
    pub member_data_lifetime: u32,
    /// Lifetime of presence records, seconds.
    #[serde(rename = "pl")]
    pub presence_lifetime: u32,
    /// When the group was created.
    #[serde(rename = "tc")]
    pub created_at: Timestamp,
    /// 1 at creation, +1 each time the creator changes the properties.
    #[serde(rename = "r")]
    pub revision: u32,
    /// The password policy of a password group (with [`AuthSchemes::PASSWORD`]).
    #[serde(rename = "pw")]
    pub password: Option<PasswordPolicy>,
    /// The creator's commitment to the group data key members seal gossip
    /// with ([`crate::KeyCommitment`]): a member accepts a key handed over
    /// by a neighbour only if it matches, so no member can substitute its
    /// own. Absent in groups created before data keys (then a member takes
    /// the first epoch-0 key it is handed and no other).
    #[serde(rename = "kc", default, skip_serializing_if = "Option::is_none")]
    pub key_commitment: Option<crate::seal::KeyCommitment>,
}

impl GroupProperties {
    /// The group classifier.
    pub fn classifier(&self) -> &str {
        self.group_peer_name.classifier()
    }
}

impl Payload for GroupProperties {
    const KIND: Kind = Kind::Properties;

    fn check(&self) -> Result<(), Error> {
        let invalid = |m: String| Err(Error::InvalidGroupProperties(m));
        self.group_peer_name.require_secure("group")?;
        self.creator_peer_name.require_secure("creator")?;
        if !self.group_peer_name.is_owned_by(&self.creator_key) {
            return invalid(format!(
                "group name {} is not derived from the creator's key",
                self.group_peer_name
            ));
        }
        if !self.creator_peer_name.is_owned_by(&self.creator_key) {
            return invalid(format!(
                "creator name {} is not derived from the creator's key",
                self.creator_peer_name
            ));
        }
        validate_friendly_name(&self.friendly_name)?;
        let comment_chars = self.comment.chars().count();
        if comment_chars > MAX_COMMENT_CHARS || self.comment.chars().any(char::is_control) {
            return invalid(format!(
                "the comment is at most {MAX_COMMENT_CHARS} characters without control characters"
            ));
        }
        if self.flags.0 & !GroupFlags::KNOWN != 0 {
            return invalid(format!("unknown group flags {:#x}", self.flags.0));
        }
        if self.auth_schemes.0 & !AuthSchemes::KNOWN != 0 || self.auth_schemes.0 == 0 {
            return invalid(format!(
                "authentication schemes {:#x} are not a non-empty set of known schemes",
                self.auth_schemes.0
            ));
        }
        if !(MIN_MEMBER_DATA_LIFETIME..=MAX_MEMBER_DATA_LIFETIME)
            .contains(&self.member_data_lifetime)
        {
            return invalid(format!(
                "member data lifetime {} s is outside {MIN_MEMBER_DATA_LIFETIME}..={MAX_MEMBER_DATA_LIFETIME} s",
                self.member_data_lifetime
            ));
        }
        if self.presence_lifetime < MIN_PRESENCE_LIFETIME {
            return invalid(format!(
                "presence lifetime {} s is below the minimum of {MIN_PRESENCE_LIFETIME} s",
                self.presence_lifetime
            ));
        }
        if self.revision == 0 {
            return invalid("revisions start at 1".into());
        }
        let wants_password = self.auth_schemes.0 & AuthSchemes::PASSWORD.0 != 0;
        match (&self.password, wants_password) {
            (Some(policy), true) => policy.check()?,
            (None, false) => {}
            (Some(_), false) => {
                return invalid("a password policy without password authentication".into());
            }
            (None, true) => {
                return invalid("password authentication needs a password policy".into());
            }
        }
        Ok(())
    }

    fn signer(&self) -> &PeerName {
        &self.creator_peer_name
    }
}

impl Signed<GroupProperties> {
    /// The properties.
    pub fn properties(&self) -> &GroupProperties {
        self.payload()
    }
}

/// What a caller passes to create a group (`PEER_GROUP_PROPERTIES` at
/// `PeerGroupCreate`). `None` means "use the default" unless said otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Required: the creator identity's peer name (`InvalidArg` without it).
    pub creator_peer_name: Option<PeerName>,
    /// Must be `None`: the group name is derived (`InvalidArg` otherwise).
    pub group_peer_name: Option<PeerName>,
    /// The group classifier, at most 149 characters.
    pub classifier: String,
    /// Default: the group peer name.
    pub friendly_name: Option<String>,
    /// Default: empty.
    pub comment: Option<String>,
    /// Default: none.
    pub flags: GroupFlags,
    /// Default: [`Cloud::Global`].
    pub cloud: Cloud,
    /// Default: credentials only.
    pub auth_schemes: AuthSchemes,
    /// Seconds; default [`DEFAULT_MEMBER_DATA_LIFETIME`]; 0 means the maximum.
    pub member_data_lifetime: Option<u32>,
    /// Seconds; default and minimum [`MIN_PRESENCE_LIFETIME`].
    pub presence_lifetime: Option<u32>,
    /// Makes a password group: build it with [`PasswordPolicy::new`]; the
    /// password scheme is added to `auth_schemes`.
    pub password: Option<PasswordPolicy>,
}

impl GroupSpec {
    /// A spec for `creator` with `classifier` and defaults for everything else.
    pub fn new(creator: &PeerName, classifier: &str) -> GroupSpec {
        GroupSpec {
            creator_peer_name: Some(creator.clone()),
            classifier: classifier.to_owned(),
            ..GroupSpec::default()
        }
    }

    /// `PeerGroupCreate`: the signed properties of a new group created by `creator` at `now`.
    ///
    /// `exists` answers whether a group name is already taken locally; the same
    /// creator and classifier twice is `AlreadyExists`.
    pub fn create(
        &self,
        creator: &Identity,
        now: Timestamp,
        exists: impl Fn(&PeerName) -> bool,
    ) -> Result<SignedProperties, Error> {
        let Some(creator_name) = &self.creator_peer_name else {
            return Err(Error::InvalidArg(
                "the creator peer name is required".into(),
            ));
        };
        if self.group_peer_name.is_some() {
            return Err(Error::InvalidArg(
                "the group peer name is derived from the creator's key and cannot be supplied"
                    .into(),
            ));
        }
        if creator_name != creator.peer_name() {
            return Err(Error::InvalidArg(format!(
                "creator peer name {creator_name} does not name the given identity {}",
                creator.peer_name()
            )));
        }
        validate_classifier(&self.classifier)?;
        let group_peer_name = PeerName::new(&creator.public_key(), &self.classifier)?;
        if exists(&group_peer_name) {
            return Err(Error::AlreadyExists(format!(
                "group {group_peer_name} (same creator and classifier)"
            )));
        }
        let member_data_lifetime = match self.member_data_lifetime {
            None => DEFAULT_MEMBER_DATA_LIFETIME,
            Some(0) => MAX_MEMBER_DATA_LIFETIME,
            Some(s) => s,
        };
        let properties = GroupProperties {
            friendly_name: self
                .friendly_name
                .clone()
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| group_peer_name.to_string()),
            group_peer_name,
            creator_peer_name: creator_name.clone(),
            creator_key: creator.public_key(),
            cloud: self.cloud,
            auth_schemes: if self.password.is_some() {
                AuthSchemes(self.auth_schemes.0 | AuthSchemes::PASSWORD.0)
            } else {
                self.auth_schemes
            },
            password: self.password.clone(),
            comment: self.comment.clone().unwrap_or_default(),
            flags: self.flags,
            member_data_lifetime,
            presence_lifetime: self.presence_lifetime.unwrap_or(MIN_PRESENCE_LIFETIME),
            created_at: now,
            revision: 1,
            key_commitment: None,
        };
        Signed::sign(properties, creator.keypair())
    }
}

impl GroupProperties {
    /// `PeerGroupSetProperties`: checks that `newer` may replace `self`. Only
    /// the creator signs properties (enforced by the signature); here the
    /// revision must grow and the immutable members stay: group and creator
    /// names, creator key, cloud, authentication schemes, creation time.
    pub fn check_update(&self, newer: &GroupProperties) -> Result<(), Error> {
        if newer.revision <= self.revision {
            return Err(Error::InvalidGroupProperties(format!(
                "revision {} does not follow {}",
                newer.revision, self.revision
            )));
        }
        let same = self.group_peer_name == newer.group_peer_name
            && self.creator_peer_name == newer.creator_peer_name
            && self.creator_key == newer.creator_key
            && self.cloud == newer.cloud
            && self.auth_schemes == newer.auth_schemes
            && self.created_at == newer.created_at;
        if !same {
            return Err(Error::InvalidGroupProperties(
                "group and creator names, key, cloud, authentication schemes and creation time \
                 cannot change"
                    .into(),
            ));
        }
        Ok(())
    }
}
