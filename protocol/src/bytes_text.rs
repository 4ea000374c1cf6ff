//! Byte strings in serde: bytes on the wire (CBOR), standard base64 text in
//! human-readable formats (the control API's JSON). Use as
//! `#[serde(with = "peergroup_protocol::bytes_text")]` on a `Vec<u8>` field.

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Deserializer, Serializer};

use crate::error::{DecodeError, Error};

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
        STANDARD.decode(text.as_bytes()).map_err(|e| {
            serde::de::Error::custom(format!(
                "not standard base64: {}",
                base64_problem(&text, &e)
            ))
        })
    } else {
        serde_bytes::deserialize(d)
    }
}

/// What is wrong with `text`, which `base64` could not decode, in words.
fn base64_problem(text: &str, e: &base64::DecodeError) -> String {
    // The character at a byte offset (the decoder counts bytes).
    let at = |offset: usize| {
        text.get(offset..)
            .and_then(|rest| rest.chars().next())
            .map_or_else(String::new, |c| format!("{c:?} "))
    };
    match *e {
        base64::DecodeError::InvalidByte(offset, _) => format!(
            "the character {}at position {offset} cannot be in it",
            at(offset)
        ),
        base64::DecodeError::InvalidLength(_) => {
            "its length is wrong: it is cut short, or has characters too many".into()
        }
        base64::DecodeError::InvalidLastSymbol { offset, .. } => format!(
            "its last character {}(at position {offset}) is wrong: it is cut short or damaged",
            at(offset)
        ),
        base64::DecodeError::InvalidPadding => "its '=' padding at the end is wrong".into(),
    }
}

/// Words the failure `e` to read `text`, the text form of a signed value
/// (`prefix` followed by the value's envelope in base64url: an invitation,
/// an identity's public text), for the person who pasted it: what is wrong
/// with the text, not what the decoder met inside it. `what` names the
/// text ("invitation", "identity"). `None` for errors that are not about
/// the text's form (an expired invitation, say): they keep their words.
pub(crate) fn text_form_problem(what: &str, prefix: &str, text: &str, e: &Error) -> Option<String> {
    let damaged = || {
        format!(
            "the {what} text is cut short or damaged: copy it again, whole, from \"{prefix}\" \
             to its last character"
        )
    };
    let problem = match e {
        Error::Decode(DecodeError::Text { .. }) => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            match compact.strip_prefix(prefix) {
                None => format!("this is not an {what} text: it does not start with \"{prefix}\""),
                Some(b64) => match URL_SAFE_NO_PAD.decode(b64) {
                    Err(e @ base64::DecodeError::InvalidByte(..)) => format!(
                        "the {what} text is damaged: after \"{prefix}\", {}",
                        base64_problem(b64, &e)
                    ),
                    _ => damaged(),
                },
            }
        }
        Error::Decode(DecodeError::TooLarge { max, .. }) => {
            format!("this is too long to be an {what} text (at most {max} bytes)")
        }
        Error::Decode(DecodeError::WrongKind { .. }) => {
            format!("this is not an {what} text: it holds another kind of signed value")
        }
        Error::Decode(DecodeError::UnsupportedVersion { found, supported }) => format!(
            "the {what} text is of version {found}, which this peergroup does not read \
             (it reads version {supported})"
        ),
        Error::Decode(_) => damaged(),
        Error::Verify(e) => format!("the {what} text was altered or damaged: {e}"),
        _ => return None,
    };
    Some(problem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IDENTITY_TEXT_PREFIX, IdentityInfo, Signed, testing::identity};

    fn problem(text: &str) -> String {
        let e = Signed::<IdentityInfo>::from_text(IDENTITY_TEXT_PREFIX, text).unwrap_err();
        text_form_problem("identity", IDENTITY_TEXT_PREFIX, text, &e).unwrap()
    }

    #[test]
    fn a_text_form_that_does_not_read_is_described_in_words() {
        let good = identity(1, "a")
            .info()
            .unwrap()
            .to_text(IDENTITY_TEXT_PREFIX);
        let cut = &good[..good.len() - 10];
        assert_eq!(
            problem(cut),
            "the identity text is cut short or damaged: copy it again, whole, from \
             \"peergroup-identity-v1:\" to its last character"
        );
        assert_eq!(
            problem("hello"),
            "this is not an identity text: it does not start with \"peergroup-identity-v1:\""
        );
        let with_amp = format!("{IDENTITY_TEXT_PREFIX}ab&cd");
        assert_eq!(
            problem(&with_amp),
            "the identity text is damaged: after \"peergroup-identity-v1:\", the character \
             '&' at position 2 cannot be in it"
        );
        // One character changed in the middle.
        let mut altered: Vec<char> = good.chars().collect();
        let middle = altered.len() / 2;
        altered[middle] = if altered[middle] == 'A' { 'B' } else { 'A' };
        let altered: String = altered.into_iter().collect();
        let words = problem(&altered);
        assert!(
            words.starts_with("the identity text is cut short or damaged")
                || words.starts_with("the identity text was altered or damaged"),
            "{words}"
        );
        for text in [cut, "hello", &with_amp, &altered] {
            assert!(!problem(text).contains("Core("), "{}", problem(text));
        }
    }

    #[test]
    fn bad_base64_in_json_is_described_in_words() {
        // A string deserializer is human-readable, as JSON's is.
        let text = serde::de::value::StrDeserializer::<serde::de::value::Error>::new("ab&c");
        let e = deserialize(text).unwrap_err();
        assert!(
            e.to_string()
                .contains("not standard base64: the character '&' at position 2 cannot be in it"),
            "{e}"
        );
    }
}
