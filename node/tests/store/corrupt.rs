//! Damaged files: each gives a typed error naming the file, never a panic,
//! and the file is left byte for byte as it was.

use std::path::Path;

use peergroup_node::storage::{OpenError, RedbStore};
use peergroup_protocol::{
    Store,
    testing::{T0, add, group_of, identity},
};

use crate::{open, temp_path};

/// A marker that appears in the records' data, to find them in the file.
const MARKER: &[u8] = b"peergroup-corruption-test-marker";

/// A store with a few records whose data carries [`MARKER`].
fn populated(path: &Path) {
    let alice = identity(1, "alice");
    let group = group_of(&alice, "chess");
    let mut store = open(path);
    let records = (0..50)
        .map(|n| {
            add(
                &alice,
                &group,
                n,
                &[MARKER, &[n as u8; 200]].concat(),
                T0,
                3600,
            )
        })
        .collect();
    store.merge(records).unwrap();
}

/// Opens `path`, expecting an error that names it, and checks that the file
/// did not change.
fn open_fails(path: &Path) -> OpenError {
    let before = std::fs::read(path).unwrap();
    let err = RedbStore::open(path).expect_err("a damaged file must not open");
    eprintln!("{err}");
    assert_eq!(err.path(), path);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the message names the file: {err}"
    );
    // Not assert_eq: a failure would print megabytes.
    assert!(
        std::fs::read(path).unwrap() == before,
        "the file is left as it was"
    );
    err
}

#[test]
fn an_empty_file_is_not_started_over() {
    let (_dir, path) = temp_path();
    std::fs::write(&path, b"").unwrap();
    let err = open_fails(&path);
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
}

#[test]
fn a_garbage_file_is_not_a_store() {
    let (_dir, path) = temp_path();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let garbage: Vec<u8> = (0..65_536)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, garbage).unwrap();
    let err = open_fails(&path);
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
}

#[test]
fn a_truncated_file_is_corrupt() {
    for keep in [0.5, 0.1, 0.9] {
        let (_dir, path) = temp_path();
        populated(&path);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len((len as f64 * keep) as u64).unwrap();
        drop(file);
        let err = open_fails(&path);
        assert!(
            matches!(err, OpenError::Corrupt { .. } | OpenError::NotAStore { .. }),
            "{err}"
        );
    }
}

#[test]
fn a_file_with_flipped_bytes_is_corrupt() {
    let (_dir, path) = temp_path();
    populated(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip a byte in every copy of the marker, so that the live records'
    // pages are hit (freed pages may hold older copies).
    let mut hits = 0;
    let mut i = 0;
    while let Some(at) = bytes[i..].windows(MARKER.len()).position(|w| w == MARKER) {
        bytes[i + at + 5] ^= 0x20;
        hits += 1;
        i += at + MARKER.len();
    }
    assert!(hits >= 50, "found the records in the file ({hits} copies)");
    std::fs::write(&path, &bytes).unwrap();
    let err = open_fails(&path);
    assert!(matches!(err, OpenError::Corrupt { .. }), "{err}");
}

#[test]
fn a_file_with_a_flipped_header_byte_is_refused() {
    let (_dir, path) = temp_path();
    populated(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    // The magic number: the file is no longer recognisably redb.
    bytes[0] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = open_fails(&path);
    assert!(matches!(err, OpenError::NotAStore { .. }), "{err}");
}
