//! [`PeerName`]: `authority.classifier`, the names of identities and groups.
//!
//! A *secure* authority is the base58btc text of the sha2-256 multihash of an
//! ed25519 public key (the 32 raw key bytes), so anyone holding the key can
//! check that a name belongs to it. The *unsecured* authority `0` names things
//! anyone may claim; such names parse, but cannot own a group or sign.
//! Names are case-sensitive; the classifier is at most
//! [`MAX_CLASSIFIER_CHARS`] Unicode scalar values and has no control characters.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::{error::Error, identity::PublicKey};

/// The longest classifier, in Unicode scalar values (Windows: 149 characters plus NUL).
pub const MAX_CLASSIFIER_CHARS: usize = 149;

/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;

/// The authority of an unsecured peer name.
const UNSECURED: &str = "0";

/// A parsed and validated peer name.
///
/// Ordering and equality are those of the text, byte by byte; the merge order
/// compares last-modifier names this way.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerName {
    text: String,
    /// Byte index of the `.` between authority and classifier.
    dot: usize,
}

impl PeerName {
    /// The secure peer name of `key` with `classifier`.
    pub fn new(key: &PublicKey, classifier: &str) -> Result<PeerName, Error> {
        validate_classifier(classifier)?;
        let authority = authority_of(key);
        let dot = authority.len();
        Ok(PeerName {
            text: format!("{authority}.{classifier}"),
            dot,
        })
    }

    /// The unsecured peer name `0.classifier`.
    pub fn unsecured(classifier: &str) -> Result<PeerName, Error> {
        validate_classifier(classifier)?;
        Ok(PeerName {
            text: format!("{UNSECURED}.{classifier}"),
            dot: UNSECURED.len(),
        })
    }

    /// Parses `authority.classifier`.
    pub fn parse(text: &str) -> Result<PeerName, Error> {
        let Some((authority, classifier)) = text.split_once('.') else {
            return Err(Error::InvalidPeerName(format!(
                "{text:?} has no '.' between authority and classifier"
            )));
        };
        validate_classifier(classifier)?;
        if authority != UNSECURED {
            validate_authority(authority)?;
        }
        Ok(PeerName {
            text: text.to_owned(),
            dot: authority.len(),
        })
    }

    /// The authority: base58btc of the key's sha2-256 multihash, or `0`.
    pub fn authority(&self) -> &str {
        self.text.get(..self.dot).unwrap_or_default()
    }

    /// The classifier after the first `.`.
    pub fn classifier(&self) -> &str {
        self.text
            .get(self.dot.saturating_add(1)..)
            .unwrap_or_default()
    }

    /// Whether the authority is derived from a key (not `0`).
    pub fn is_secure(&self) -> bool {
        self.authority() != UNSECURED
    }

    /// Whether `key` is the key this name's authority was derived from.
    pub fn is_owned_by(&self, key: &PublicKey) -> bool {
        self.is_secure() && self.authority() == authority_of(key)
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Fails with [`Error::InvalidPeerName`] unless the name is secure.
    pub(crate) fn require_secure(&self, role: &str) -> Result<(), Error> {
        if self.is_secure() {
            Ok(())
        } else {
            Err(Error::InvalidPeerName(format!(
                "{role} {self} is an unsecured name; only names derived from a key may be used here"
            )))
        }
    }
}

/// The secure authority of `key`: base58btc(multihash(sha2-256, key bytes)).
pub fn authority_of(key: &PublicKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    match multihash::Multihash::<32>::wrap(SHA2_256, &digest) {
        Ok(mh) => bs58::encode(mh.to_bytes()).into_string(),
        // A 32-byte digest always fits a Multihash<32>; keep a total function anyway.
        Err(_) => String::new(),
    }
}

fn validate_authority(authority: &str) -> Result<(), Error> {
    let bytes = bs58::decode(authority).into_vec().map_err(|e| {
        Error::InvalidPeerName(format!("authority {authority:?} is not base58btc: {e}"))
    })?;
    let mh = multihash::Multihash::<32>::from_bytes(&bytes).map_err(|e| {
        Error::InvalidPeerName(format!("authority {authority:?} is not a multihash: {e}"))
    })?;
    if mh.code() != SHA2_256 || mh.size() != 32 {
        return Err(Error::InvalidPeerName(format!(
            "authority {authority:?} is not a sha2-256 multihash"
        )));
    }
    // base58 has exactly one spelling per byte string without leading zeros;
    // insist on it so that names compare equal exactly when their keys do.
    if bs58::encode(&bytes).into_string() != authority {
        return Err(Error::InvalidPeerName(format!(
            "authority {authority:?} is not canonical base58btc"
        )));
    }
    Ok(())
}

/// Checks the classifier rules shared by peer names, identities and groups.
pub(crate) fn validate_classifier(classifier: &str) -> Result<(), Error> {
    let chars = classifier.chars().count();
    if chars > MAX_CLASSIFIER_CHARS {
        return Err(Error::InvalidClassifier(format!(
            "{chars} characters, more than the limit of {MAX_CLASSIFIER_CHARS}"
        )));
    }
    if classifier.chars().any(char::is_control) {
        return Err(Error::InvalidClassifier(
            "classifiers may not contain control characters".into(),
        ));
    }
    Ok(())
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerName({:?})", self.text)
    }
}

impl FromStr for PeerName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PeerName::parse(s)
    }
}

impl Serialize for PeerName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for PeerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PeerName::parse(&text).map_err(serde::de::Error::custom)
    }
}
