//! Byte strings in serde: bytes on the wire (CBOR), standard base64 text in
//! human-readable formats (the control API's JSON). Use as
//! `#[serde(with = "peergroup_protocol::bytes_text")]` on a `Vec<u8>` field.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Deserializer, Serializer};

/// Serializes `bytes` as bytes, or as base64 text when human-readable.
pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&STANDARD.encode(bytes))
    } else {
        s.serialize_bytes(bytes)
    }
}

/// Deserializes what [`serialize`] wrote.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    if d.is_human_readable() {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    } else {
        serde_bytes::deserialize(d)
    }
}
