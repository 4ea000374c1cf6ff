//! The backend-independent Store suite, on redb.

use peergroup_node::storage::RedbStore;
use peergroup_protocol::testing::run_store_suite;
use tempfile::TempDir;

#[test]
fn redb_store_passes_the_store_suite() {
    // Each store's directory lives until the end of the test; the suite drops
    // the stores before.
    let mut dirs: Vec<TempDir> = Vec::new();
    run_store_suite(|| {
        let (dir, path) = crate::temp_path();
        dirs.push(dir);
        RedbStore::open(&path).unwrap()
    });
}
