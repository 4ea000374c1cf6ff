//! The node's libp2p transport key, kept in its data directory so that its
//! peer id (and the `/p2p/...` addresses others bootstrap from) survives
//! restarts.
//!
//! The file `node.key` holds the key in libp2p's protobuf encoding, mode
//! 0600. It is created once, atomically (written to `node.key.new`, synced,
//! then renamed), so a crash never leaves a half-written key. A file that
//! does not decode is an error naming it; it is never replaced.

use std::{
    fs::{self, OpenOptions},
    io::Write,
    path::Path,
};

use libp2p::identity::Keypair;

use crate::error::Error;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "node.key";

/// Loads the transport key from `dir`, creating it (and `dir`, mode 0700) on first use.
pub(crate) fn load_or_create(dir: &Path) -> Result<Keypair, Error> {
    let path = dir.join(KEY_FILE);
    let error = |reason: String| Error::NodeKey {
        path: path.clone(),
        reason,
    };
    match fs::read(&path) {
        Ok(bytes) => {
            return Keypair::from_protobuf_encoding(&bytes)
                .map_err(|e| error(format!("not a libp2p key: {e}")));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(error(e.to_string())),
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| error(e.to_string()))?;
    let key = Keypair::generate_ed25519();
    let bytes = key
        .to_protobuf_encoding()
        .map_err(|e| error(e.to_string()))?;
    let fresh = dir.join(format!("{KEY_FILE}.new"));
    let _ = fs::remove_file(&fresh);
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&fresh).map_err(|e| error(e.to_string()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| error(e.to_string()))?;
    fs::rename(&fresh, &path).map_err(|e| error(e.to_string()))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_key_file_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"garbage").unwrap();
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains(KEY_FILE), "{err}");
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), b"garbage");
    }
}
