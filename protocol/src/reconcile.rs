//! Range-based set reconciliation: how two members find which records one
//! has that the other lacks (or holds in an older version), with messages
//! whose size grows with the number of differences, not with the size of
//! the databases (reference 3.5, hash-based sync; the scheme is the one of
//! Meyer's "Range-Based Set Reconciliation", as in Negentropy and
//! iroh-docs).
//!
//! Each member's set is its live records: `(id, version, hash)` per record
//! id (tombstones included, expired records excluded), ordered by id. A
//! *range* is an interval of ids; its *fingerprint* is
//! `sha2-256(sum of the items' 16-byte hash prefixes mod 2^128 || count)`
//! truncated to 16 bytes, so equal sets have equal fingerprints and the
//! fingerprint of a range costs one pass over it.
//!
//! The initiator sends [`Query`]s: a range with its own fingerprint and
//! count. The responder answers each ([`Answer`]): `Equal` when the
//! fingerprints match; its `Items` in the range when it has at most
//! [`ITEMS_THRESHOLD`] there; else a `Split` of the range into up to
//! [`SPLIT_FANOUT`] sub-ranges of equal count with their fingerprints. The
//! initiator compares each sub-range with its own and queries the ones that
//! differ in the next round; from `Items` it learns which records it needs
//! ([`needs`]). Reconciliation is one-way (the initiator learns what to
//! fetch); both members of a connection run it, so each ends with the union.
//! A joiner starts from an empty set: every range differs, and the answers
//! list the responder's whole set, a leaf at a time.

use std::{collections::BTreeMap, ops::Bound};

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest as _, Sha256};

use crate::{error::Error, record::RecordId, store::Version, time::Timestamp};

/// The most items a responder lists for one range; above it, it splits.
pub const ITEMS_THRESHOLD: u32 = 32;

/// How many sub-ranges a responder splits a differing range into.
pub const SPLIT_FANOUT: usize = 16;

/// The most queries in one request (and answers in one response).
pub const MAX_QUERIES: usize = 256;

/// The length of a fingerprint.
pub const FINGERPRINT_LEN: usize = 16;

/// The length of a packed item: id (16), version (u32 BE), hash prefix (16).
pub const ITEM_LEN: usize = 36;

/// An interval of record ids: from `lower` (inclusive; `None`: the first)
/// to `upper` (exclusive; `None`: past the last).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// The first id in the range, if bounded.
    #[serde(rename = "l")]
    pub lower: Option<RecordId>,
    /// The first id after the range, if bounded.
    #[serde(rename = "u")]
    pub upper: Option<RecordId>,
}

impl Range {
    /// Every id.
    pub const ALL: Range = Range {
        lower: None,
        upper: None,
    };

    fn bounds(&self) -> (Bound<RecordId>, Bound<RecordId>) {
        (
            self.lower.map_or(Bound::Unbounded, Bound::Included),
            self.upper.map_or(Bound::Unbounded, Bound::Excluded),
        )
    }

    /// Whether `id` lies in the range.
    pub fn contains(&self, id: &RecordId) -> bool {
        self.lower.is_none_or(|l| *id >= l) && self.upper.is_none_or(|u| *id < u)
    }

    /// Whether `inner` lies within this range.
    fn covers(&self, inner: &Range) -> bool {
        let lower_ok = match (self.lower, inner.lower) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b >= a,
        };
        let upper_ok = match (self.upper, inner.upper) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => b <= a,
        };
        lower_ok && upper_ok
    }

    /// Whether the range holds no id at all.
    fn is_empty(&self) -> bool {
        matches!((self.lower, self.upper), (Some(l), Some(u)) if l >= u)
    }
}

/// A range's fingerprint and how many items it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The fingerprint.
    #[serde(rename = "f", with = "serde_bytes")]
    pub fingerprint: [u8; FINGERPRINT_LEN],
    /// The number of items.
    #[serde(rename = "n")]
    pub count: u32,
}

/// One item of a set: a record id, its version and the first 16 bytes of
/// its envelope's sha2-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// The record id.
    pub id: RecordId,
    /// The version number.
    pub version: u32,
    /// The envelope hash prefix.
    pub hash: [u8; 16],
}

/// The initiator's question about one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The range.
    #[serde(rename = "r")]
    pub range: Range,
    /// The initiator's summary of it.
    #[serde(rename = "s")]
    pub summary: Summary,
}

/// The responder's answer about one range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// The fingerprints match.
    #[serde(rename = "eq")]
    Equal,
    /// The responder's items in the range, packed ([`ITEM_LEN`] bytes each,
    /// in id order).
    #[serde(rename = "items")]
    Items(ByteBuf),
    /// Sub-ranges covering the range, in order, each with the responder's summary.
    #[serde(rename = "split")]
    Split(Vec<(Range, Summary)>),
}

/// A member's set as reconciliation sees it: the live items of a version
/// index at `now` (records whose expiration has passed are left out, as the
/// store removes them).
#[derive(Debug, Clone, Copy)]
pub struct Set<'a> {
    index: &'a BTreeMap<RecordId, Version>,
    now: Timestamp,
}

impl<'a> Set<'a> {
    /// The set of `index` at `now`.
    pub fn new(index: &'a BTreeMap<RecordId, Version>, now: Timestamp) -> Set<'a> {
        Set { index, now }
    }

    /// The live items in `range`, in id order.
    pub fn items(&self, range: &Range) -> impl Iterator<Item = Item> + 'a {
        let now = self.now;
        let iter = if range.is_empty() {
            None
        } else {
            Some(self.index.range(range.bounds()))
        };
        iter.into_iter()
            .flatten()
            .filter(move |(_, v)| v.expires_at > now)
            .map(|(id, v)| Item {
                id: *id,
                version: v.version,
                hash: prefix(&v.hash),
            })
    }

    /// The summary of `range`.
    pub fn summary(&self, range: &Range) -> Summary {
        summarize(self.items(range))
    }

    /// The item of `id`, if live.
    fn get(&self, id: &RecordId) -> Option<Item> {
        self.index
            .get(id)
            .filter(|v| v.expires_at > self.now)
            .map(|v| Item {
                id: *id,
                version: v.version,
                hash: prefix(&v.hash),
            })
    }
}

fn prefix(hash: &[u8; 32]) -> [u8; 16] {
    let mut out = [0u8; 16];
    out.copy_from_slice(hash.get(..16).unwrap_or(&[0; 16]));
    out
}

fn summarize(items: impl Iterator<Item = Item>) -> Summary {
    let mut sum: u128 = 0;
    let mut count: u32 = 0;
    for item in items {
        sum = sum.wrapping_add(u128::from_be_bytes(item.hash));
        count = count.saturating_add(1);
    }
    let digest = Sha256::new()
        .chain_update(sum.to_be_bytes())
        .chain_update(count.to_be_bytes())
        .finalize();
    let mut fingerprint = [0u8; FINGERPRINT_LEN];
    fingerprint.copy_from_slice(
        digest
            .get(..FINGERPRINT_LEN)
            .unwrap_or(&[0; FINGERPRINT_LEN]),
    );
    Summary { fingerprint, count }
}

/// Packs items for [`Answer::Items`].
pub fn pack(items: impl Iterator<Item = Item>) -> ByteBuf {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(&item.id.0);
        out.extend_from_slice(&item.version.to_be_bytes());
        out.extend_from_slice(&item.hash);
    }
    ByteBuf::from(out)
}

/// Unpacks [`Answer::Items`]: `InvalidArg` unless whole items in strictly
/// increasing id order, at most [`ITEMS_THRESHOLD`] of them.
pub fn unpack(bytes: &[u8]) -> Result<Vec<Item>, Error> {
    let malformed = |why: &str| Error::InvalidArg(format!("a malformed item list: {why}"));
    if !bytes.len().is_multiple_of(ITEM_LEN) {
        return Err(malformed("not whole items"));
    }
    if bytes.len() / ITEM_LEN > ITEMS_THRESHOLD as usize {
        return Err(malformed("too many items"));
    }
    let mut items: Vec<Item> = Vec::with_capacity(bytes.len() / ITEM_LEN);
    for chunk in bytes.chunks_exact(ITEM_LEN) {
        let (id, rest) = chunk
            .split_first_chunk::<16>()
            .ok_or_else(|| malformed("short"))?;
        let (version, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("short"))?;
        let (hash, _) = rest
            .split_first_chunk::<16>()
            .ok_or_else(|| malformed("short"))?;
        let item = Item {
            id: RecordId(*id),
            version: u32::from_be_bytes(*version),
            hash: *hash,
        };
        if items.last().is_some_and(|last| last.id >= item.id) {
            return Err(malformed("not in increasing id order"));
        }
        items.push(item);
    }
    Ok(items)
}

/// The responder's answers to `queries` over its set.
pub fn answer(set: &Set<'_>, queries: &[Query]) -> Vec<Answer> {
    queries.iter().map(|q| answer_one(set, q)).collect()
}

fn answer_one(set: &Set<'_>, query: &Query) -> Answer {
    let mine: Vec<Item> = set.items(&query.range).collect();
    let summary = summarize(mine.iter().copied());
    if summary == query.summary {
        return Answer::Equal;
    }
    if summary.count <= ITEMS_THRESHOLD {
        return Answer::Items(pack(mine.into_iter()));
    }
    // Split by count: SPLIT_FANOUT parts, boundaries at item ids.
    let per = mine.len().div_ceil(SPLIT_FANOUT).max(1);
    let mut parts = Vec::with_capacity(SPLIT_FANOUT);
    let mut lower = query.range.lower;
    for (index, chunk) in mine.chunks(per).enumerate() {
        let upper = mine
            .get(index.saturating_add(1).saturating_mul(per))
            .map(|i| i.id);
        let upper = upper.or(query.range.upper);
        let range = Range { lower, upper };
        parts.push((range, summarize(chunk.iter().copied())));
        lower = upper;
    }
    Answer::Split(parts)
}

/// What the initiator makes of one answer: the records it needs (the
/// responder has them and this set lacks them or holds an older or
/// different version of the same number), and the sub-ranges to query next.
/// `InvalidArg` for an answer that cannot come from an honest responder
/// (items outside the range, a split that does not cover the range in
/// order or does not make it smaller).
pub fn needs(
    set: &Set<'_>,
    query: &Query,
    answer: &Answer,
) -> Result<(Vec<RecordId>, Vec<Query>), Error> {
    match answer {
        Answer::Equal => Ok((Vec::new(), Vec::new())),
        Answer::Items(bytes) => {
            let theirs = unpack(bytes)?;
            let mut need = Vec::new();
            for item in theirs {
                if !query.range.contains(&item.id) {
                    return Err(Error::InvalidArg("an item outside its range".into()));
                }
                let better = match set.get(&item.id) {
                    None => true,
                    Some(mine) => {
                        item.version > mine.version
                            || (item.version == mine.version && item.hash != mine.hash)
                    }
                };
                if better {
                    need.push(item.id);
                }
            }
            Ok((need, Vec::new()))
        }
        Answer::Split(parts) => {
            if parts.is_empty() || parts.len() > SPLIT_FANOUT {
                return Err(Error::InvalidArg(
                    "a split into no or too many parts".into(),
                ));
            }
            let mut next = Vec::new();
            let mut expected_lower = query.range.lower;
            for (range, theirs) in parts {
                if range.lower != expected_lower || !query.range.covers(range) {
                    return Err(Error::InvalidArg(
                        "a split that does not tile its range".into(),
                    ));
                }
                if range == &query.range {
                    return Err(Error::InvalidArg(
                        "a split that does not shrink its range".into(),
                    ));
                }
                expected_lower = range.upper;
                let mine = set.summary(range);
                if mine != *theirs {
                    next.push(Query {
                        range: *range,
                        summary: mine,
                    });
                }
            }
            if expected_lower != query.range.upper {
                return Err(Error::InvalidArg(
                    "a split that does not reach the range's end".into(),
                ));
            }
            Ok((Vec::new(), next))
        }
    }
}

/// The first query of a reconciliation: the whole set.
pub fn start(set: &Set<'_>) -> Query {
    Query {
        range: Range::ALL,
        summary: set.summary(&Range::ALL),
    }
}
