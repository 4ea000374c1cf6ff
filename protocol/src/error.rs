//! The crate-level [`Error`] and the operation errors that convert into it.
//!
//! [`Error`]'s variants mirror the Windows `PEER_E_*` codes that apply to
//! peergroup (reference section 4); [`Error::code`] returns the HRESULT
//! Windows used, so that ports of Windows applications can map them 1:1.

use thiserror::Error;

/// Why bytes could not be decoded into a peergroup wire type.
///
/// Every decode of untrusted bytes is bounded (see [`crate::MAX_ENVELOPE_SIZE`]),
/// checks the wire version, and accepts only the canonical encoding, so that
/// `encode(decode(b)) == b` holds for every `b` that decodes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input is longer than the limit for its kind.
    #[error("{what} is {size} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// The bytes are not valid CBOR for the expected type.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The decoder's description of the problem.
        reason: String,
    },
    /// The bytes decode, but are not the canonical encoding of what they decode to
    /// (for example trailing bytes or non-minimal integers).
    #[error("{what} is not canonically encoded")]
    NonCanonical {
        /// What was being decoded.
        what: &'static str,
    },
    /// The envelope carries a wire version this build does not speak.
    #[error("unsupported wire version {found} (this build speaks version {supported})")]
    UnsupportedVersion {
        /// The version found in the input.
        found: u8,
        /// The version this build produces and accepts.
        supported: u8,
    },
    /// The envelope holds a different kind of payload than expected.
    #[error("expected a signed {expected} but found kind {found}")]
    WrongKind {
        /// The kind of payload that was expected.
        expected: &'static str,
        /// The kind byte found in the envelope.
        found: u8,
    },
    /// A sealed envelope names a key epoch this node does not hold (yet).
    #[error("sealed under key epoch {epoch}, which this node does not hold")]
    UnknownKey {
        /// The epoch the envelope names.
        epoch: u32,
    },
    /// A text form lacks its prefix or is not valid base64url.
    #[error("malformed text form: {reason}")]
    Text {
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a signature or signer check failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The public key is not a valid ed25519 point, or is a weak (small-order) key.
    #[error("the signer's public key is not a valid ed25519 key")]
    InvalidKey,
    /// The signature does not verify (with `verify_strict`) over the signed bytes.
    #[error("the signature does not verify")]
    BadSignature,
    /// The key that signed is not the key of the peer name that must have signed.
    #[error("signed by {signer}, but {expected} must sign it")]
    SignerMismatch {
        /// Authority of the key that signed.
        signer: String,
        /// The peer name whose key must sign.
        expected: String,
    },
    /// A sealed payload or wrapped key does not open: another key, another
    /// group, or altered bytes.
    #[error("the ciphertext does not open with this key")]
    BadCiphertext,
    /// The payload belongs to a different group than the one it was received for.
    #[error("belongs to group {found}, not {expected}")]
    WrongGroup {
        /// The group it was expected to belong to.
        expected: String,
        /// The group it names.
        found: String,
    },
}

/// peergroup's error: one variant per `PEER_E_*` code that applies.
///
/// Every variant carries enough context for a message a user understands;
/// [`Error::code`] gives the Windows HRESULT and [`Error::name`] its symbolic name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Error {
    /// `E_INVALIDARG`: an argument is missing, malformed or not allowed.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// `PEER_E_INVALID_PEER_NAME`: a peer name is malformed or cannot be used here.
    #[error("invalid peer name: {0}")]
    InvalidPeerName(String),
    /// `PEER_E_INVALID_CLASSIFIER`: a classifier is too long or contains control characters.
    #[error("invalid classifier: {0}")]
    InvalidClassifier(String),
    /// `PEER_E_INVALID_FRIENDLY_NAME`: a friendly name is too long or contains control characters.
    #[error("invalid friendly name: {0}")]
    InvalidFriendlyName(String),
    /// `PEER_E_INVALID_GROUP_PROPERTIES`: group properties are inconsistent or out of range.
    #[error("invalid group properties: {0}")]
    InvalidGroupProperties(String),
    /// `PEER_E_INVALID_RECORD`: a record's fields are inconsistent.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// `PEER_E_INVALID_SEARCH`: a search query breaks the query schema
    /// (`PeerGroupSearchRecords`, reference 3.11).
    #[error("invalid search: {0}")]
    InvalidSearch(String),
    /// `PEER_E_INVALID_ATTRIBUTES`: record attributes break the attribute schema.
    #[error("invalid attributes: {0}")]
    InvalidAttributes(String),
    /// `PEER_E_TOO_MANY_ATTRIBUTES`: a record has more attributes than allowed.
    #[error("{count} attributes, more than the limit of {max}")]
    TooManyAttributes {
        /// How many attributes the record has.
        count: u64,
        /// The limit.
        max: u64,
    },
    /// `PEER_E_INVALID_RECORD_EXPIRATION`: an expiration is in the past or shortens the record's life.
    #[error("invalid record expiration: {0}")]
    InvalidRecordExpiration(String),
    /// `PEER_E_MAX_RECORD_SIZE_EXCEEDED`: a record is larger than the group allows.
    #[error("record data is {size} bytes, more than the limit of {max} bytes")]
    MaxRecordSizeExceeded {
        /// The size of the record's data in bytes.
        size: u64,
        /// The limit in bytes.
        max: u64,
    },
    /// `PEER_E_ALREADY_EXISTS`: the thing being created exists already.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// `PEER_E_NOT_FOUND`: an identity or group does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// `PEER_E_RECORD_NOT_FOUND`: no (live) record with this id exists in the group.
    #[error("record not found")]
    RecordNotFound,
    /// `PEER_E_NOT_AUTHORIZED`: the acting identity may not do this.
    #[error("not authorized: {0}")]
    NotAuthorized(String),
    /// `PEER_E_DEFERRED_VALIDATION`: the signer's membership is not known yet; held for re-validation.
    #[error("validation deferred: {0}")]
    DeferredValidation(String),
    /// `PEER_E_GROUP_NOT_READY`: the group has not completed its first synchronization.
    #[error("the group is not ready: it has not completed its first synchronization with a member")]
    GroupNotReady,
    /// `PEER_E_INVALID_GROUP`: the group is unknown, closed or deleted.
    #[error("invalid group: {0}")]
    InvalidGroup(String),
    /// `PEER_E_UNSUPPORTED_VERSION`: a format or protocol version this build does not speak.
    #[error("unsupported version: {0}")]
    UnsupportedVersion(String),
    /// `PEER_E_INVITATION_NOT_TRUSTED`: an invitation is altered, forged or not for this identity.
    #[error("invitation not trusted: {0}")]
    InvitationNotTrusted(String),
    /// `PEER_E_INVALID_TIME_PERIOD`: outside a validity window.
    #[error("invalid time period: {0}")]
    InvalidTimePeriod(String),
    /// `PEER_E_CHAIN_TOO_LONG`: a credential chain is longer than allowed.
    #[error("credential chain of {length} is longer than the limit of {max}")]
    ChainTooLong {
        /// The chain's length.
        length: u64,
        /// The limit.
        max: u64,
    },
    /// `PEER_E_INVALID_CREDENTIAL`: a credential or chain is malformed or broken.
    #[error("invalid credential: {0}")]
    InvalidCredential(String),
    /// `PEER_E_PASSWORD_DOES_NOT_MEET_POLICY`: the group password is too weak.
    #[error("the password does not meet the policy: {0}")]
    PasswordDoesNotMeetPolicy(String),
    /// `PEER_E_CIRCULAR_CHAIN_DETECTED`: a credential chain names a key twice.
    #[error("circular credential chain")]
    CircularChainDetected,
    /// `PEER_E_GROUP_IN_USE`: the group is open or connected where that is not allowed.
    #[error("the group is in use: {0}")]
    GroupInUse(String),
    /// `PEER_E_GROUPS_EXIST`: an identity still has groups and cannot be deleted.
    #[error("groups exist: {0}")]
    GroupsExist(String),
    /// `PEER_E_NO_MEMBERS_FOUND`: no member of the group could be found in the cloud.
    #[error("no members found: {0}")]
    NoMembersFound(String),
    /// `PEER_E_NO_MEMBER_CONNECTIONS`: members were found but none accepted the connection.
    #[error("no member accepted the connection: {0}")]
    NoMemberConnections(String),
    /// `PEER_E_UNABLE_TO_LISTEN`: the node could not listen on any address.
    #[error("unable to listen: {0}")]
    UnableToListen(String),
    /// `PEER_E_CONNECTION_FAILED`: a connection failed.
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// Malformed bytes (`E_INVALIDARG` for Windows callers).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A forged or misdirected signature (`PEER_E_INVALID_RECORD` for Windows callers).
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

/// An error as applications see it in serialized events and API bodies:
/// `{"name", "code", "message"}`, its `PEER_E_*` name ([`Error::name`]), its
/// HRESULT ([`Error::code`]) and its text.
impl serde::Serialize for Error {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("PeerError", 3)?;
        out.serialize_field("name", self.name())?;
        out.serialize_field("code", &self.code())?;
        out.serialize_field("message", &self.to_string())?;
        out.end()
    }
}

impl Error {
    /// The Windows HRESULT this error mirrors.
    pub fn code(&self) -> u32 {
        match self {
            Error::InvalidArg(_) | Error::Decode(_) => 0x8007_0057,
            Error::InvalidPeerName(_) => 0x8063_2050,
            Error::InvalidClassifier(_) => 0x8063_2060,
            Error::InvalidFriendlyName(_) => 0x8063_2070,
            Error::InvalidGroupProperties(_) => 0x8063_2040,
            Error::InvalidRecord(_) | Error::Verify(_) => 0x8063_2010,
            Error::InvalidAttributes(_) => 0x8063_0602,
            Error::InvalidSearch(_) => 0x8063_0601,
            Error::TooManyAttributes { .. } => 0x8063_0017,
            Error::InvalidRecordExpiration(_) => 0x8063_2080,
            Error::MaxRecordSizeExceeded { .. } => 0x8063_0304,
            Error::AlreadyExists(_) => 0x8007_00B7,
            Error::NotFound(_) => 0x8007_0490,
            Error::RecordNotFound => 0x8063_0301,
            Error::NotAuthorized(_) => 0x8063_2020,
            Error::DeferredValidation(_) => 0x8063_2030,
            Error::GroupNotReady => 0x8063_2091,
            Error::InvalidGroup(_) => 0x8063_2093,
            Error::UnsupportedVersion(_) => 0x8063_2090,
            Error::InvitationNotTrusted(_) => 0x8063_0701,
            Error::InvalidTimePeriod(_) => 0x8063_0705,
            Error::ChainTooLong { .. } => 0x8063_0703,
            Error::CircularChainDetected => 0x8063_0706,
            Error::InvalidCredential(_) => 0x8063_2082,
            Error::GroupInUse(_) => 0x8063_2092,
            Error::GroupsExist(_) => 0x8063_0204,
            Error::NoMembersFound(_) => 0x8063_2094,
            Error::NoMemberConnections(_) => 0x8063_2095,
            Error::UnableToListen(_) => 0x8063_2096,
            Error::ConnectionFailed(_) => 0x8063_0109,
            Error::PasswordDoesNotMeetPolicy(_) => 0x8063_2021,
        }
    }

    /// The symbolic Windows name of [`Error::code`], such as `PEER_E_NOT_AUTHORIZED`.
    pub fn name(&self) -> &'static str {
        match self {
            Error::InvalidArg(_) | Error::Decode(_) => "E_INVALIDARG",
            Error::InvalidPeerName(_) => "PEER_E_INVALID_PEER_NAME",
            Error::InvalidClassifier(_) => "PEER_E_INVALID_CLASSIFIER",
            Error::InvalidFriendlyName(_) => "PEER_E_INVALID_FRIENDLY_NAME",
            Error::InvalidGroupProperties(_) => "PEER_E_INVALID_GROUP_PROPERTIES",
            Error::InvalidRecord(_) | Error::Verify(_) => "PEER_E_INVALID_RECORD",
            Error::InvalidAttributes(_) => "PEER_E_INVALID_ATTRIBUTES",
            Error::InvalidSearch(_) => "PEER_E_INVALID_SEARCH",
            Error::TooManyAttributes { .. } => "PEER_E_TOO_MANY_ATTRIBUTES",
            Error::InvalidRecordExpiration(_) => "PEER_E_INVALID_RECORD_EXPIRATION",
            Error::MaxRecordSizeExceeded { .. } => "PEER_E_MAX_RECORD_SIZE_EXCEEDED",
            Error::AlreadyExists(_) => "PEER_E_ALREADY_EXISTS",
            Error::NotFound(_) => "PEER_E_NOT_FOUND",
            Error::RecordNotFound => "PEER_E_RECORD_NOT_FOUND",
            Error::NotAuthorized(_) => "PEER_E_NOT_AUTHORIZED",
            Error::DeferredValidation(_) => "PEER_E_DEFERRED_VALIDATION",
            Error::GroupNotReady => "PEER_E_GROUP_NOT_READY",
            Error::InvalidGroup(_) => "PEER_E_INVALID_GROUP",
            Error::UnsupportedVersion(_) => "PEER_E_UNSUPPORTED_VERSION",
            Error::InvitationNotTrusted(_) => "PEER_E_INVITATION_NOT_TRUSTED",
            Error::InvalidTimePeriod(_) => "PEER_E_INVALID_TIME_PERIOD",
            Error::ChainTooLong { .. } => "PEER_E_CHAIN_TOO_LONG",
            Error::CircularChainDetected => "PEER_E_CIRCULAR_CHAIN_DETECTED",
            Error::InvalidCredential(_) => "PEER_E_INVALID_CREDENTIAL",
            Error::GroupInUse(_) => "PEER_E_GROUP_IN_USE",
            Error::GroupsExist(_) => "PEER_E_GROUPS_EXIST",
            Error::NoMembersFound(_) => "PEER_E_NO_MEMBERS_FOUND",
            Error::NoMemberConnections(_) => "PEER_E_NO_MEMBER_CONNECTIONS",
            Error::UnableToListen(_) => "PEER_E_UNABLE_TO_LISTEN",
            Error::ConnectionFailed(_) => "PEER_E_CONNECTION_FAILED",
            Error::PasswordDoesNotMeetPolicy(_) => "PEER_E_PASSWORD_DOES_NOT_MEET_POLICY",
        }
    }
}
