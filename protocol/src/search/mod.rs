//! Record search (`PeerGroupSearchRecords`, reference 3.11): a query tree,
//! parsed from Windows' XML form ([`Query::from_xml`]) or from a short form
//! for people ([`Query::parse`]), and evaluated against records
//! ([`Query::matches`]). Searching runs on a member's local replica only.
//!
//! # Rules ([decision]s are marked)
//!
//! - A clause names an attribute: a record attribute, or one of the six
//!   reserved names (`peercreatorid`, `peerlastmodifiedby`, `peerrecordid`,
//!   `peerrecordtype` as strings; `peercreationtime`,
//!   `peerlastmodificationtime` as dates). A reserved name with another type
//!   is `PEER_E_INVALID_SEARCH`. Reserved names are taken in any case and
//!   resolve as [`Record::attribute`] resolves them: `peerlastmodifiedby` of
//!   a record never updated is empty; ids and types compare as their text
//!   form (`Display`).
//! - [decision] A clause about an attribute a record lacks, or holds with
//!   another type, does not match it, whatever the comparison (`notequal`
//!   included): a missing value is unknown, not different.
//! - Strings: `equal` and `notequal` match the whole value against the
//!   pattern, `*` any run of characters, `?` exactly one; `\*`, `\?`, `\\`
//!   are the literal characters; any other backslash sequence is
//!   `E_INVALIDARG`. [decision] The ordering comparisons compare the text
//!   with the value taken literally (escapes resolved, wildcards plain
//!   characters). [decision] Every string comparison is case-sensitive, by
//!   Unicode scalar values.
//! - Integers: `i64`, decimal, optional sign.
//! - Dates: the W3C date-time profile (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
//!   `YYYY-MM-DDThh:mmTZD`, with `:ss` and `.s…` fractions; `TZD` is `Z` or
//!   `±hh:mm` and is required with a time). [decision] A date names the
//!   interval its precision spans (a day, a month...; a date without a time
//!   is in UTC): `equal` means within it, `less` before it, `greater` after
//!   it, `lessorequal` before its end, `greaterorequal` from its start. So
//!   "modified after 2003-01-31" (`greater`) means from 2003-02-01 on.
//!   Fractions finer than a millisecond count as milliseconds.

mod date;
mod text;
mod xml;

use std::cmp::Ordering;

pub use self::date::DateRange;
use crate::{
    error::Error,
    record::{AttributeValue, Record},
    time::Timestamp,
};

/// The largest query accepted, in bytes (either form).
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// The deepest nesting of `and` / `or` accepted.
pub const MAX_QUERY_DEPTH: usize = 32;

/// The most clauses a query may hold.
pub const MAX_QUERY_CLAUSES: usize = 1024;

/// A parsed search query: a tree of `and`, `or` and clauses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    root: Node,
}

/// A node of the query tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Every child matches (at least one child).
    And(Vec<Node>),
    /// Some child matches (at least one child).
    Or(Vec<Node>),
    /// One comparison.
    Clause(Clause),
}

/// One comparison: `attrib compare value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    /// What is compared.
    pub attrib: Attrib,
    /// How.
    pub compare: Compare,
    /// With what (its type is the clause's `type`).
    pub value: Value,
}

/// The attribute a clause compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attrib {
    /// `peercreatorid` (string): the creator's peer name.
    CreatorId,
    /// `peerlastmodifiedby` (string): the last modifier's peer name (empty
    /// until the first update).
    LastModifiedBy,
    /// `peerrecordid` (string): the record id's text form.
    RecordId,
    /// `peerrecordtype` (string): the record type's text form.
    RecordType,
    /// `peercreationtime` (date).
    CreationTime,
    /// `peerlastmodificationtime` (date).
    LastModificationTime,
    /// A record attribute, by name.
    Custom(String),
}

impl Attrib {
    /// The attribute named `name`: a reserved name (any case, as
    /// `Record::attribute` takes them), else a record attribute.
    pub fn named(name: &str) -> Attrib {
        [
            Attrib::CreatorId,
            Attrib::LastModifiedBy,
            Attrib::RecordId,
            Attrib::RecordType,
            Attrib::CreationTime,
            Attrib::LastModificationTime,
        ]
        .into_iter()
        .find(|reserved| reserved.name().eq_ignore_ascii_case(name))
        .unwrap_or_else(|| Attrib::Custom(name.to_owned()))
    }

    /// Its name: the reserved name, or the record attribute's.
    pub fn name(&self) -> &str {
        match self {
            Attrib::CreatorId => "peercreatorid",
            Attrib::LastModifiedBy => "peerlastmodifiedby",
            Attrib::RecordId => "peerrecordid",
            Attrib::RecordType => "peerrecordtype",
            Attrib::CreationTime => "peercreationtime",
            Attrib::LastModificationTime => "peerlastmodificationtime",
            Attrib::Custom(name) => name,
        }
    }

    /// The type a reserved attribute has; `None` for record attributes.
    fn reserved_type(&self) -> Option<ValueType> {
        match self {
            Attrib::CreatorId | Attrib::LastModifiedBy | Attrib::RecordId | Attrib::RecordType => {
                Some(ValueType::String)
            }
            Attrib::CreationTime | Attrib::LastModificationTime => Some(ValueType::Date),
            Attrib::Custom(_) => None,
        }
    }
}

/// A clause's comparison (`compare`; `equal` when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// `equal`.
    Equal,
    /// `notequal`.
    NotEqual,
    /// `less`.
    Less,
    /// `greater`.
    Greater,
    /// `lessorequal`.
    LessOrEqual,
    /// `greaterorequal`.
    GreaterOrEqual,
}

impl Compare {
    /// The comparison named `name` in the XML form.
    fn named(name: &str) -> Option<Compare> {
        Some(match name {
            "equal" => Compare::Equal,
            "notequal" => Compare::NotEqual,
            "less" => Compare::Less,
            "greater" => Compare::Greater,
            "lessorequal" => Compare::LessOrEqual,
            "greaterorequal" => Compare::GreaterOrEqual,
            _ => return None,
        })
    }

    /// Whether `ordering` (the record's value against the clause's)
    /// satisfies this comparison.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Compare::Equal => ordering == Ordering::Equal,
            Compare::NotEqual => ordering != Ordering::Equal,
            Compare::Less => ordering == Ordering::Less,
            Compare::Greater => ordering == Ordering::Greater,
            Compare::LessOrEqual => ordering != Ordering::Greater,
            Compare::GreaterOrEqual => ordering != Ordering::Less,
        }
    }
}

/// A clause's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    String,
    Int,
    Date,
}

impl std::fmt::Display for ValueType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Date => "date",
        })
    }
}

impl ValueType {
    fn named(name: &str) -> Option<ValueType> {
        Some(match name {
            "string" => ValueType::String,
            "int" => ValueType::Int,
            "date" => ValueType::Date,
            _ => return None,
        })
    }
}

/// A clause's value, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string pattern (`type="string"`).
    String(Pattern),
    /// An integer (`type="int"`).
    Int(i64),
    /// A date and its precision (`type="date"`).
    Date(DateRange),
}

impl Value {
    /// Parses `text` as a value of type `kind`: `PEER_E_INVALID_SEARCH` when
    /// it does not parse, `E_INVALIDARG` for a bad escape in a string.
    fn parse(kind: ValueType, text: &str) -> Result<Value, Error> {
        match kind {
            ValueType::String => Pattern::parse(text).map(Value::String),
            ValueType::Int => text
                .trim()
                .parse::<i64>()
                .map(Value::Int)
                .map_err(|_| invalid(format!("`{}` is not an int", shown(text)))),
            ValueType::Date => DateRange::parse(text.trim()).map(Value::Date),
        }
    }

    fn kind(&self) -> ValueType {
        match self {
            Value::String(_) => ValueType::String,
            Value::Int(_) => ValueType::Int,
            Value::Date(_) => ValueType::Date,
        }
    }
}

/// A string value: literal characters and the wildcards `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    tokens: Vec<Token>,
    /// The value with escapes resolved and wildcards as plain characters:
    /// what the ordering comparisons compare with.
    literal: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Char(char),
    /// `?`: exactly one character.
    One,
    /// `*`: any run of characters.
    Any,
}

impl Pattern {
    /// Parses a string value: `\*`, `\?` and `\\` are literal; any other
    /// backslash sequence is `E_INVALIDARG` (reference 3.11).
    pub fn parse(text: &str) -> Result<Pattern, Error> {
        let mut tokens = Vec::with_capacity(text.len());
        let mut literal = String::with_capacity(text.len());
        let mut chars = text.chars().enumerate();
        while let Some((at, c)) = chars.next() {
            let token = match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('*' | '?' | '\\'))) => Token::Char(e),
                    Some((_, other)) => {
                        return Err(Error::InvalidArg(format!(
                            "search value `{}`: `\\{other}` at character {} is no escape (\\*, \\? or \\\\)",
                            shown(text),
                            at.saturating_add(1)
                        )));
                    }
                    None => {
                        return Err(Error::InvalidArg(format!(
                            "search value `{}` ends in a lone backslash",
                            shown(text)
                        )));
                    }
                },
                '*' => Token::Any,
                '?' => Token::One,
                other => Token::Char(other),
            };
            literal.push(match token {
                Token::Char(c) => c,
                Token::One => '?',
                Token::Any => '*',
            });
            tokens.push(token);
        }
        Ok(Pattern { tokens, literal })
    }

    /// Whether `text` matches the whole pattern. Linear in practice: on a
    /// mismatch after a `*` it retries from the last `*` one character on.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            match (self.tokens.get(p), text.get(t)) {
                (Some(Token::Any), _) => {
                    star = Some((p, t));
                    p = p.saturating_add(1);
                    continue;
                }
                (Some(Token::One), Some(_)) => {
                    p = p.saturating_add(1);
                    t = t.saturating_add(1);
                    continue;
                }
                (Some(Token::Char(c)), Some(x)) if c == x => {
                    p = p.saturating_add(1);
                    t = t.saturating_add(1);
                    continue;
                }
                (None, None) => return true,
                _ => {}
            }
            // A mismatch: let the last `*` take one more character.
            match star {
                Some((sp, st)) if st < text.len() => {
                    let st = st.saturating_add(1);
                    star = Some((sp, st));
                    p = sp.saturating_add(1);
                    t = st;
                }
                _ => return false,
            }
        }
    }
}

impl Query {
    /// Parses Windows' XML form (`<peersearch>`, reference 3.11).
    ///
    /// Errors: `PEER_E_INVALID_SEARCH` for anything that breaks the schema
    /// (not XML, another root, not exactly one root child, an empty `and` /
    /// `or`, an unknown element, type or comparison, a value that does not
    /// parse as its type, more than [`MAX_QUERY_BYTES`],
    /// [`MAX_QUERY_DEPTH`] or [`MAX_QUERY_CLAUSES`]); `E_INVALIDARG` for a
    /// bad escape in a string value.
    pub fn from_xml(text: &str) -> Result<Query, Error> {
        xml::parse(text)
    }

    /// Parses the short form for people, for example
    /// `Priority<=3 and peercreatorid="James P*"` (grammar in
    /// `docs/search.md`). Same errors as [`Query::from_xml`].
    pub fn parse(text: &str) -> Result<Query, Error> {
        text::parse(text)
    }

    /// The query tree's root.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Whether `record` matches. Deleted and expired records are the
    /// caller's to leave out (the search does, [`Query::search`]).
    pub fn matches(&self, record: &Record) -> bool {
        self.root.matches(record)
    }

    /// The records of `records` that a search returns: live at `now` (not
    /// deleted, not expired) and matching, in record id order.
    pub fn search<'a>(
        &self,
        records: impl IntoIterator<Item = &'a Record>,
        now: Timestamp,
    ) -> Vec<Record> {
        let mut out: Vec<Record> = records
            .into_iter()
            .filter(|r| !r.is_deleted() && !r.is_expired(now) && self.matches(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }

    /// Checks the limits and reserved attributes' types of a parsed tree.
    fn new(root: Node) -> Result<Query, Error> {
        let mut clauses = 0usize;
        check(&root, 0, &mut clauses)?;
        Ok(Query { root })
    }
}

fn check(node: &Node, depth: usize, clauses: &mut usize) -> Result<(), Error> {
    if depth > MAX_QUERY_DEPTH {
        return Err(invalid(format!("nested deeper than {MAX_QUERY_DEPTH}")));
    }
    match node {
        Node::And(children) | Node::Or(children) => {
            if children.is_empty() {
                return Err(invalid("an empty and / or".into()));
            }
            for child in children {
                check(child, depth.saturating_add(1), clauses)?;
            }
        }
        Node::Clause(clause) => {
            *clauses = clauses.saturating_add(1);
            if *clauses > MAX_QUERY_CLAUSES {
                return Err(invalid(format!("more than {MAX_QUERY_CLAUSES} clauses")));
            }
            if let Attrib::Custom(name) = &clause.attrib
                && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(invalid(format!(
                    "attribute name `{}` holds characters other than letters and digits",
                    shown(name)
                )));
            }
            if let Some(kind) = clause.attrib.reserved_type()
                && kind != clause.value.kind()
            {
                return Err(invalid(format!(
                    "{} is a {kind}, not a {}",
                    clause.attrib.name(),
                    clause.value.kind()
                )));
            }
        }
    }
    Ok(())
}

impl Node {
    fn matches(&self, record: &Record) -> bool {
        match self {
            Node::And(children) => children.iter().all(|c| c.matches(record)),
            Node::Or(children) => children.iter().any(|c| c.matches(record)),
            Node::Clause(clause) => clause.matches(record),
        }
    }
}

impl Clause {
    fn matches(&self, record: &Record) -> bool {
        // The reserved names resolve as `Record::attribute` resolves them.
        let Some(actual) = record.attribute(self.attrib.name()) else {
            return false;
        };
        match (&self.value, &actual) {
            (Value::String(pattern), AttributeValue::String(text)) => match self.compare {
                Compare::Equal => pattern.matches(text),
                Compare::NotEqual => !pattern.matches(text),
                ordering => ordering.holds(text.as_str().cmp(pattern.literal.as_str())),
            },
            (Value::Int(wanted), AttributeValue::Int(have)) => self.compare.holds(have.cmp(wanted)),
            (Value::Date(range), AttributeValue::Date(at)) => self.compare.holds(range.place(*at)),
            _ => false,
        }
    }
}

/// `text` for an error message: at most 64 characters of it.
fn shown(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}…")
    }
}

/// `PEER_E_INVALID_SEARCH` with `reason`.
fn invalid(reason: String) -> Error {
    Error::InvalidSearch(reason)
}
