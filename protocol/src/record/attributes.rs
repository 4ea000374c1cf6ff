//! Typed record attributes (`int`, `date`, `string` in Windows' attribute schema).

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::{error::Error, time::Timestamp};

/// The most attributes a record may carry.
pub const MAX_ATTRIBUTES: usize = 64;

/// The longest attribute name, in ASCII characters.
pub const MAX_ATTRIBUTE_NAME: usize = 64;

/// The longest string attribute value, in bytes of UTF-8.
pub const MAX_ATTRIBUTE_STRING: usize = 1024;

/// Attribute names the infrastructure fills in: searchable, never settable
/// (compared ASCII case-insensitively).
pub const RESERVED_ATTRIBUTES: [&str; 6] = [
    "peerlastmodifiedby",
    "peercreatorid",
    "peerlastmodificationtime",
    "peerrecordid",
    "peerrecordtype",
    "peercreationtime",
];

/// A typed attribute value (`int`, `date`, `string` in Windows' attribute schema).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AttributeValue {
    /// A signed integer.
    #[serde(rename = "i")]
    Int(i64),
    /// A point in time.
    #[serde(rename = "d")]
    Date(Timestamp),
    /// A string of at most [`MAX_ATTRIBUTE_STRING`] bytes.
    #[serde(rename = "s")]
    String(String),
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    /// ASCII alphanumeric, 1 to [`MAX_ATTRIBUTE_NAME`] characters, case-sensitive.
    #[serde(rename = "n")]
    pub name: String,
    /// The value.
    #[serde(rename = "v")]
    pub value: AttributeValue,
}

/// A record's attributes, kept sorted by name with no name twice (so that
/// equal attribute sets encode identically).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Attributes(Vec<Attribute>);

impl Attributes {
    /// No attributes.
    pub const fn new() -> Attributes {
        Attributes(Vec::new())
    }

    /// Validated attributes from any order; a name given twice is an error.
    pub fn from_pairs<I: IntoIterator<Item = (String, AttributeValue)>>(
        items: I,
    ) -> Result<Attributes, Error> {
        let mut list: Vec<Attribute> = items
            .into_iter()
            .map(|(name, value)| Attribute { name, value })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let attributes = Attributes(list);
        attributes.validate()?;
        Ok(attributes)
    }

    /// Sets `name` to `value`, replacing an earlier value.
    pub fn set(&mut self, name: &str, value: AttributeValue) -> Result<(), Error> {
        validate_attribute(name, &value)?;
        match self.0.binary_search_by(|a| a.name.as_str().cmp(name)) {
            Ok(i) => {
                if let Some(slot) = self.0.get_mut(i) {
                    slot.value = value;
                }
            }
            Err(i) => {
                if self.0.len() >= MAX_ATTRIBUTES {
                    return Err(Error::TooManyAttributes {
                        count: self.0.len().saturating_add(1) as u64,
                        max: MAX_ATTRIBUTES as u64,
                    });
                }
                self.0.insert(
                    i,
                    Attribute {
                        name: name.to_owned(),
                        value,
                    },
                );
            }
        }
        Ok(())
    }

    /// The value of the attribute `name`, if set.
    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0
            .binary_search_by(|a| a.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|a| &a.value)
    }

    /// The attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = &Attribute> {
        self.0.iter()
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.0.len() > MAX_ATTRIBUTES {
            return Err(Error::TooManyAttributes {
                count: self.0.len() as u64,
                max: MAX_ATTRIBUTES as u64,
            });
        }
        let mut previous: Option<&str> = None;
        for attribute in &self.0 {
            validate_attribute(&attribute.name, &attribute.value)?;
            if let Some(prev) = previous {
                match prev.cmp(attribute.name.as_str()) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(Error::InvalidAttributes(format!(
                            "attribute {:?} is given twice",
                            attribute.name
                        )));
                    }
                    Ordering::Greater => {
                        return Err(Error::InvalidAttributes(
                            "attributes are not sorted by name".into(),
                        ));
                    }
                }
            }
            previous = Some(&attribute.name);
        }
        Ok(())
    }
}

fn validate_attribute(name: &str, value: &AttributeValue) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME {
        return Err(Error::InvalidAttributes(format!(
            "attribute names are 1 to {MAX_ATTRIBUTE_NAME} characters; {name:?} is not"
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::InvalidAttributes(format!(
            "attribute names are alphanumeric; {name:?} is not"
        )));
    }
    if RESERVED_ATTRIBUTES
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Err(Error::InvalidAttributes(format!(
            "{name:?} is reserved: the infrastructure sets it"
        )));
    }
    if let AttributeValue::String(s) = value
        && s.len() > MAX_ATTRIBUTE_STRING
    {
        return Err(Error::InvalidAttributes(format!(
            "attribute {name:?} is {} bytes, more than the limit of {MAX_ATTRIBUTE_STRING}",
            s.len()
        )));
    }
    Ok(())
}
