//! The redb store's tests: the shared Store suite, reopening, damaged files,
//! and crash safety under SIGKILL. One binary (the crash test re-runs it as
//! its child).

mod corrupt;
mod crash;
mod golden;
mod local;
mod reopen;
mod suite;

use std::path::{Path, PathBuf};

use peergroup_node::storage::RedbStore;
use tempfile::TempDir;

/// A temporary directory and the path of a store file inside it.
pub(crate) fn temp_path() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("peergroup.redb");
    (dir, path)
}

/// Opens the store at `path`, which must succeed.
pub(crate) fn open(path: &Path) -> RedbStore {
    RedbStore::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}
