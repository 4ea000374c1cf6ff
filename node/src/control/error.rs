//! How the control API reports a failure: an HTTP status and a JSON body
//! `{"error": {"name", "code", "message"}}`.
//!
//! A peer-group error carries its Windows name (`PEER_E_*`, or `E_INVALIDARG`)
//! and HRESULT; the status follows the kind of fault (the table is in
//! `docs/control-api.md` and the OpenAPI schema):
//!
//! | status | errors |
//! | --- | --- |
//! | 400 | `E_INVALIDARG` (malformed JSON, bad arguments, undecodable bytes), invalid peer name, classifier, friendly name, group properties, record, attributes, too many attributes, record expiration, unsupported version, password policy |
//! | 401 | missing or wrong token (`E_ACCESSDENIED`) |
//! | 403 | not authorized, invitation not trusted, invalid credential, chain too long, circular chain, invalid time period |
//! | 404 | not found, record not found, invalid group (unknown, closed or deleted) |
//! | 409 | already exists, group in use, groups exist, group not ready, deferred validation |
//! | 413 | max record size exceeded |
//! | 503 | no members found, no member connections, connection failed, unable to listen, the node shut down |
//! | 500 | the store failed, and other node faults |

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use peergroup_protocol::Error as PeerError;
use serde::Serialize;

use crate::error::Error;

/// `E_ACCESSDENIED`: the HRESULT of a refused token.
const E_ACCESSDENIED: u32 = 0x8007_0005;
/// `E_FAIL`: the HRESULT of a node fault that is no peer-group error.
const E_FAIL: u32 = 0x8000_4005;

/// A failed control API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The error's symbolic name (`PEER_E_*`, `E_INVALIDARG`, ...).
    pub name: &'static str,
    /// Its HRESULT.
    pub code: u32,
    /// What went wrong, for a person.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    name: &'a str,
    code: u32,
    message: &'a str,
}

impl ApiError {
    /// 400 `E_INVALIDARG` with `message`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::from(PeerError::InvalidArg(message.into()))
    }

    /// `status` with the name and code of `kind` (its text is not used) and
    /// `message`: for faults of HTTP itself (an unknown route, a body too
    /// large) that have no peer-group error of their own.
    pub(crate) fn http(status: StatusCode, kind: &PeerError, message: String) -> ApiError {
        ApiError {
            status,
            name: kind.name(),
            code: kind.code(),
            message,
        }
    }

    /// 500 `E_FAIL` with `message`.
    pub(crate) fn internal(message: String) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            name: "E_FAIL",
            code: E_FAIL,
            message,
        }
    }

    /// 401: the bearer token is missing or wrong.
    pub fn unauthorized() -> ApiError {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            name: "E_ACCESSDENIED",
            code: E_ACCESSDENIED,
            message: "missing or wrong bearer token (see the api.token file in the node's data directory)".into(),
        }
    }
}

/// The status of a peer-group error (the table above).
pub fn status_of(error: &PeerError) -> StatusCode {
    use PeerError::*;
    match error {
        InvalidArg(_)
        | Decode(_)
        | Verify(_)
        | InvalidPeerName(_)
        | InvalidClassifier(_)
        | InvalidFriendlyName(_)
        | InvalidGroupProperties(_)
        | InvalidRecord(_)
        | InvalidAttributes(_)
        | InvalidSearch(_)
        | TooManyAttributes { .. }
        | InvalidRecordExpiration(_)
        | UnsupportedVersion(_)
        | PasswordDoesNotMeetPolicy(_) => StatusCode::BAD_REQUEST,
        NotAuthorized(_)
        | InvitationNotTrusted(_)
        | InvalidCredential(_)
        | ChainTooLong { .. }
        | CircularChainDetected
        | InvalidTimePeriod(_) => StatusCode::FORBIDDEN,
        NotFound(_) | RecordNotFound | InvalidGroup(_) => StatusCode::NOT_FOUND,
        AlreadyExists(_)
        | GroupInUse(_)
        | GroupsExist(_)
        | GroupNotReady
        | DeferredValidation(_) => StatusCode::CONFLICT,
        MaxRecordSizeExceeded { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        NoMembersFound(_) | NoMemberConnections(_) | ConnectionFailed(_) | UnableToListen(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        // A variant added later: a fault of the node until it is mapped.
        #[allow(unreachable_patterns)]
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<PeerError> for ApiError {
    fn from(error: PeerError) -> ApiError {
        ApiError {
            status: status_of(&error),
            name: error.name(),
            code: error.code(),
            message: error.to_string(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        match error {
            Error::Peer(e) => e.into(),
            Error::Shutdown => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                name: "E_FAIL",
                code: E_FAIL,
                message: error.to_string(),
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                name: self.name,
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}
