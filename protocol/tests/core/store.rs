use peergroup_protocol::{MemoryStore, testing::run_store_suite};

#[test]
fn memory_store_passes_the_store_suite() {
    run_store_suite(MemoryStore::new);
}
