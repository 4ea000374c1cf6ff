//! The node's local identities (`PeerIdentityCreate` and friends) with their
//! secret keys. Persisting them is the storage worker's; this is the map.

use std::collections::BTreeMap;

use peergroup_protocol::{Error, Identity, IdentityInfo, Keypair, PeerName, Signed};

/// The local identities, by peer name.
#[derive(Debug, Default)]
pub(crate) struct Keystore {
    identities: BTreeMap<PeerName, Identity>,
}

impl Keystore {
    /// A keystore holding `identities` (restored from the store).
    pub(crate) fn new(identities: impl IntoIterator<Item = Identity>) -> Keystore {
        Keystore {
            identities: identities
                .into_iter()
                .map(|i| (i.peer_name().clone(), i))
                .collect(),
        }
    }

    /// `PeerIdentityCreate`: a new identity from the 32-byte secret `seed`.
    pub(crate) fn create(
        &mut self,
        classifier: &str,
        friendly_name: &str,
        seed: [u8; 32],
    ) -> Result<Identity, Error> {
        let identity = Identity::new(Keypair::from_secret_bytes(&seed), classifier, friendly_name)?;
        self.import(identity.clone())?;
        Ok(identity)
    }

    /// `PeerIdentityImport`: the same name twice is `AlreadyExists`.
    pub(crate) fn import(&mut self, identity: Identity) -> Result<(), Error> {
        if self.identities.contains_key(identity.peer_name()) {
            return Err(Error::AlreadyExists(format!(
                "identity {}",
                identity.peer_name()
            )));
        }
        self.identities
            .insert(identity.peer_name().clone(), identity);
        Ok(())
    }

    /// The identity named `name` (`NotFound` otherwise).
    pub(crate) fn get(&self, name: &PeerName) -> Result<&Identity, Error> {
        self.identities
            .get(name)
            .ok_or_else(|| Error::NotFound(format!("identity {name}")))
    }

    /// Forgets `name` (`NotFound` if it is not here).
    pub(crate) fn remove(&mut self, name: &PeerName) -> Result<(), Error> {
        self.identities
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::NotFound(format!("identity {name}")))
    }

    /// `PeerEnumIdentities`: every identity's signed public info.
    pub(crate) fn infos(&self) -> Vec<Signed<IdentityInfo>> {
        self.identities
            .values()
            .filter_map(|i| i.info().ok())
            .collect()
    }
}
