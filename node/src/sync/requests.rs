//! Synchronization's request correlation, owned by its component: the
//! requests this node sent (by libp2p request id), fetch answers whose
//! chunks are being verified, and fetch reads being served to members.

use std::collections::HashMap;

use libp2p::{
    PeerId,
    request_response::{OutboundRequestId, ResponseChannel},
};
use peergroup_protocol::{Error, PeerName, SignedProperties, SignedRecord, session::Fetched};

use super::Response;

/// How many fetch reads may be in flight to serve other members; past it,
/// requests are refused ("busy") and the requester tries again.
pub(crate) const MAX_SERVING: usize = 32;

/// Which kind of answer a request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Reconciliation answers.
    Reconcile,
    /// Records.
    Fetch,
}

/// A request this node sent for a group's session.
#[derive(Debug, Clone)]
pub(crate) struct Outbound {
    pub(crate) group: PeerName,
    pub(crate) peer: PeerId,
    /// The session's tag of the request.
    pub(crate) tag: u64,
    pub(crate) kind: Kind,
}

/// Records fetched in a synchronization whose chunks are being verified.
#[derive(Debug)]
pub(crate) struct FetchAssembly {
    group: PeerName,
    peer: PeerId,
    tag: u64,
    properties: Option<Result<SignedProperties, Error>>,
    chunks: Vec<Option<Vec<Result<SignedRecord, Error>>>>,
    considered: usize,
}

impl FetchAssembly {
    /// A fetch answer of `chunks` chunks for `request`.
    pub(crate) fn new(
        request: &Outbound,
        properties: Option<Result<SignedProperties, Error>>,
        chunks: usize,
        considered: usize,
    ) -> FetchAssembly {
        FetchAssembly {
            group: request.group.clone(),
            peer: request.peer,
            tag: request.tag,
            properties,
            chunks: (0..chunks).map(|_| None).collect(),
            considered,
        }
    }

    /// Whether every chunk is verified.
    fn is_complete(&self) -> bool {
        self.chunks.iter().all(Option::is_some)
    }

    /// The group and the session input: the records in the order they came.
    pub(crate) fn into_fetched(self) -> (PeerName, Fetched<PeerId>) {
        let records = self.chunks.into_iter().flatten().flatten().collect();
        (
            self.group,
            Fetched {
                peer: self.peer,
                tag: self.tag,
                properties: self.properties,
                records,
                considered: self.considered,
            },
        )
    }
}

/// A fetch read being served to another member.
#[derive(Debug)]
pub(crate) struct Serving {
    pub(crate) channel: ResponseChannel<Response>,
    /// The group's signed properties, sent with the records.
    pub(crate) properties: Vec<u8>,
}

/// Synchronization's correlation state. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct SyncRequests {
    outbound: HashMap<OutboundRequestId, Outbound>,
    fetches: HashMap<u64, FetchAssembly>,
    next_fetch: u64,
    serving: HashMap<u64, Serving>,
}

impl SyncRequests {
    /// `id` was sent for `request`.
    pub(crate) fn sent(&mut self, id: OutboundRequestId, request: Outbound) {
        self.outbound.insert(id, request);
    }

    /// The request `id` answered or failed, if it is one of ours.
    pub(crate) fn answered(&mut self, id: &OutboundRequestId) -> Option<Outbound> {
        self.outbound.remove(id)
    }

    /// Whether another fetch read may be served now.
    pub(crate) fn can_serve(&self) -> bool {
        self.serving.len() < MAX_SERVING
    }

    /// The storage read `tag` serves `serving`.
    pub(crate) fn serve(&mut self, tag: u64, serving: Serving) {
        self.serving.insert(tag, serving);
    }

    /// The request the storage read `tag` served, if it was one.
    pub(crate) fn served(&mut self, tag: u64) -> Option<Serving> {
        self.serving.remove(&tag)
    }

    /// Keeps `assembly` until its chunks are verified; returns the id its
    /// chunks carry ([`crate::pipeline::VerifyFor::Fetch`]).
    pub(crate) fn assemble(&mut self, assembly: FetchAssembly) -> u64 {
        self.next_fetch = self.next_fetch.wrapping_add(1);
        self.fetches.insert(self.next_fetch, assembly);
        self.next_fetch
    }

    /// Chunk `index` of fetch `fetch` is verified: the whole fetch once
    /// every chunk is.
    pub(crate) fn chunk_verified(
        &mut self,
        fetch: u64,
        index: usize,
        results: Vec<Result<SignedRecord, Error>>,
    ) -> Option<FetchAssembly> {
        let assembly = self.fetches.get_mut(&fetch)?;
        let slot = assembly.chunks.get_mut(index)?;
        *slot = Some(results);
        if !assembly.is_complete() {
            return None;
        }
        self.fetches.remove(&fetch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Outbound {
        Outbound {
            group: PeerName::parse("0.group").unwrap(),
            peer: PeerId::random(),
            tag: 7,
            kind: Kind::Fetch,
        }
    }

    fn err(n: usize) -> Vec<Result<SignedRecord, Error>> {
        (0..n)
            .map(|i| Err(Error::InvalidRecord(format!("{i}"))))
            .collect()
    }

    #[test]
    fn a_fetch_is_handed_on_once_every_chunk_is_verified_in_chunk_order() {
        let mut sync = SyncRequests::default();
        let fetch = sync.assemble(FetchAssembly::new(&request(), None, 3, 5));
        assert!(sync.chunk_verified(fetch, 2, err(1)).is_none());
        assert!(sync.chunk_verified(fetch, 0, err(2)).is_none());
        let assembly = sync.chunk_verified(fetch, 1, err(2)).expect("complete");
        let (_, fetched) = assembly.into_fetched();
        assert_eq!(fetched.tag, 7);
        assert_eq!(fetched.considered, 5);
        let order: Vec<String> = fetched
            .records
            .iter()
            .map(|r| r.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(order.len(), 5);
        assert!(order[0].ends_with('0') && order[2].ends_with('0') && order[4].ends_with('0'));
        // Gone once handed on: a duplicate chunk finds nothing.
        assert!(sync.chunk_verified(fetch, 1, err(2)).is_none());
    }

    #[test]
    fn a_chunk_of_an_unknown_fetch_or_out_of_range_is_dropped() {
        let mut sync = SyncRequests::default();
        assert!(sync.chunk_verified(1, 0, err(1)).is_none());
        let fetch = sync.assemble(FetchAssembly::new(&request(), None, 1, 1));
        assert!(sync.chunk_verified(fetch, 5, err(1)).is_none());
        assert!(sync.chunk_verified(fetch, 0, err(1)).is_some());
    }
}
