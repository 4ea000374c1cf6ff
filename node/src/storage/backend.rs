//! [`Backend`]: the record database and what else a node keeps, as the
//! storage worker writes it and readers read it, from any thread.

use peergroup_protocol::ReadStore;
use std::{collections::BTreeMap, sync::RwLock};

use libp2p::{Multiaddr, PeerId};
use peergroup_protocol::{
    Change, Digest, Identity, MemoryStore, Merged, PeerName, RecordId, RecordType, SignedRecord,
    Store, StoreError, Timestamp,
    session::{GroupState, Version},
};
use sha2::{Digest as _, Sha256};

use super::redb::RawRecords;

/// One write of a batch that [`Backend::apply`] commits in one transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    /// Merge verified, authorized records (merge order: the maximum wins).
    Merge(Vec<SignedRecord>),
    /// Store a group's state, replacing the stored one.
    SaveGroup(Box<GroupState>),
    /// Forget a group: its state and all its records.
    ForgetGroup(PeerName),
    /// Store a local identity (secret key included).
    SaveIdentity(Box<Identity>),
    /// Forget a local identity.
    ForgetIdentity(PeerName),
    /// Remember a member this node was a neighbour of, and where to redial
    /// it (replacing what was stored for that group and peer).
    SavePeer(Box<KnownPeer>),
    /// Forget a member of a group (the oldest, past the most remembered).
    ForgetPeer(PeerName, PeerId),
    /// Remember how far peer time is from this node's wall clock (ms), so
    /// that a restarted node stamps with the group's time.
    SaveClockOffset(i64),
    /// Remove every record (and tombstone) expired at `now`, except those of
    /// the groups in `keep` (offline groups with `PEER_DEFER_EXPIRATION`).
    Expire {
        /// Peer time.
        now: Timestamp,
        /// Groups whose records stay.
        keep: Vec<PeerName>,
    },
}

/// A member of one of this node's groups that was an authenticated
/// neighbour, with the addresses it listens on: kept across restarts, so
/// that a node that starts again redials the members it knew without mDNS
/// or Kademlia (a container network, members on different LANs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPeer {
    /// The group.
    pub group: PeerName,
    /// The member's libp2p peer id.
    pub peer: PeerId,
    /// Where it listens, as last heard (at most a few).
    pub addresses: Vec<Multiaddr>,
    /// When it was last authenticated or heard from (wall clock, ms since
    /// the epoch): members are redialed latest first.
    pub seen: Timestamp,
}

/// What one [`WriteOp`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A [`WriteOp::Merge`]: each record's change, in order.
    Merged(Vec<Change>),
    /// A [`WriteOp::Expire`]: the live records removed, in (group, id) order.
    Expired(Vec<Merged>),
    /// Any other op.
    Done,
}

/// A node's persistent state, shared by the storage worker (writes) and
/// readers (reads) on any thread. Its record reads are the protocol's
/// [`ReadStore`] (the shared store test suite runs them against the
/// [`super::RedbStore`] the node uses); the rest is the node's own state: a [`super::RedbStore`] with a data
/// directory, a [`MemoryBackend`] without.
///
/// Every method may be called concurrently; writes are serialized by the
/// backend, and a read sees a committed state.
pub trait Backend: ReadStore + Send + Sync + std::fmt::Debug + 'static {
    /// Applies `ops` in order in one durable transaction: all or nothing.
    /// Returns one [`Applied`] per op.
    fn apply(&self, ops: &[WriteOp]) -> Result<Vec<Applied>, StoreError>;

    /// The envelopes of `ids` in `group` that are stored, in request order,
    /// until about `max_bytes` (at least one when any is stored): a fetch
    /// to serve.
    fn envelopes_of(
        &self,
        group: &PeerName,
        ids: &[RecordId],
        max_bytes: usize,
    ) -> Result<RawRecords, StoreError>;

    /// Every record id of `group` with its version and envelope hash.
    fn versions(&self, group: &PeerName) -> Result<Vec<(RecordId, Version)>, StoreError>;

    /// Every local identity.
    fn identities(&self) -> Result<Vec<Identity>, StoreError>;

    /// Every group's state.
    fn groups(&self) -> Result<Vec<GroupState>, StoreError>;

    /// Every member remembered by [`WriteOp::SavePeer`], in (group, peer) order.
    fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError>;

    /// The peer-time offset last saved ([`WriteOp::SaveClockOffset`]).
    fn clock_offset(&self) -> Result<Option<i64>, StoreError>;
}

/// The in-memory [`Backend`]: nothing survives the process.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    inner: RwLock<Memory>,
}

#[derive(Debug, Default)]
struct Memory {
    store: MemoryStore,
    identities: BTreeMap<PeerName, Identity>,
    groups: BTreeMap<PeerName, GroupState>,
    peers: BTreeMap<(PeerName, PeerId), KnownPeer>,
    clock_offset: Option<i64>,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new() -> MemoryBackend {
        MemoryBackend::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Memory> {
        // A panic while holding the lock leaves consistent data (every write
        // below completes or panics before mutating): keep serving it.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl ReadStore for MemoryBackend {
    fn get(&self, group: &PeerName, id: &RecordId) -> Result<Option<SignedRecord>, StoreError> {
        self.read().store.get(group, id)
    }

    fn records(
        &self,
        group: &PeerName,
        record_type: Option<RecordType>,
        after: Option<RecordId>,
        limit: usize,
    ) -> Result<Vec<SignedRecord>, StoreError> {
        self.read().store.records(group, record_type, after, limit)
    }

    fn digest(&self, group: &PeerName) -> Result<Digest, StoreError> {
        self.read().store.digest(group)
    }
}

impl Backend for MemoryBackend {
    fn apply(&self, ops: &[WriteOp]) -> Result<Vec<Applied>, StoreError> {
        let mut m = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(match op {
                WriteOp::Merge(records) => Applied::Merged(
                    m.store
                        .merge(records.clone())?
                        .into_iter()
                        .map(|merged| merged.change)
                        .collect(),
                ),
                WriteOp::SaveGroup(state) => {
                    m.groups.insert(state.group().clone(), (**state).clone());
                    Applied::Done
                }
                WriteOp::ForgetGroup(group) => {
                    m.groups.remove(group);
                    m.peers.retain(|(g, _), _| g != group);
                    m.store.remove_group(group)?;
                    Applied::Done
                }
                WriteOp::SavePeer(known) => {
                    m.peers
                        .insert((known.group.clone(), known.peer), (**known).clone());
                    Applied::Done
                }
                WriteOp::ForgetPeer(group, peer) => {
                    m.peers.remove(&(group.clone(), *peer));
                    Applied::Done
                }
                WriteOp::SaveClockOffset(offset) => {
                    m.clock_offset = Some(*offset);
                    Applied::Done
                }
                WriteOp::SaveIdentity(identity) => {
                    m.identities
                        .insert(identity.peer_name().clone(), (**identity).clone());
                    Applied::Done
                }
                WriteOp::ForgetIdentity(name) => {
                    m.identities.remove(name);
                    Applied::Done
                }
                WriteOp::Expire { now, keep } => {
                    Applied::Expired(m.store.expire_except(*now, keep)?)
                }
            });
        }
        Ok(out)
    }

    fn envelopes_of(
        &self,
        group: &PeerName,
        ids: &[RecordId],
        max_bytes: usize,
    ) -> Result<RawRecords, StoreError> {
        let memory = self.read();
        let mut out = RawRecords::default();
        let mut bytes = 0usize;
        for id in ids {
            if bytes >= max_bytes && !out.envelopes.is_empty() {
                break;
            }
            out.considered = out.considered.saturating_add(1);
            if let Some(record) = memory.store.get(group, id)? {
                bytes = bytes.saturating_add(record.as_bytes().len());
                out.envelopes.push(record.into_bytes());
            }
        }
        Ok(out)
    }

    fn versions(&self, group: &PeerName) -> Result<Vec<(RecordId, Version)>, StoreError> {
        Ok(self
            .read()
            .store
            .records(group, None, None, usize::MAX)?
            .iter()
            .map(|r| {
                (
                    r.record().id,
                    Version {
                        version: r.record().version,
                        hash: Sha256::digest(r.as_bytes()).into(),
                        expires_at: r.record().expires_at,
                    },
                )
            })
            .collect())
    }

    fn identities(&self) -> Result<Vec<Identity>, StoreError> {
        Ok(self.read().identities.values().cloned().collect())
    }

    fn groups(&self) -> Result<Vec<GroupState>, StoreError> {
        Ok(self.read().groups.values().cloned().collect())
    }

    fn known_peers(&self) -> Result<Vec<KnownPeer>, StoreError> {
        Ok(self.read().peers.values().cloned().collect())
    }

    fn clock_offset(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.read().clock_offset)
    }
}
