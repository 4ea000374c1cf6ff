//! [`Backend`]: what the node keeps across restarts, records and the rest.

use peergroup_protocol::{
    CredentialChain, Identity, MemoryStore, PeerName, SignedProperties, Store, StoreError,
};

use super::RedbStore;

/// A record [`Store`] that also keeps the node's identities (secret keys
/// included), its groups' properties and its own credential chains.
/// [`MemoryStore`] keeps them nowhere (nothing survives a restart);
/// [`RedbStore`] keeps them in its file.
pub trait Backend: Store + Send {
    /// Saves an identity (and its secret key).
    fn save_identity(&mut self, identity: &Identity) -> Result<(), StoreError>;
    /// Forgets an identity.
    fn forget_identity(&mut self, name: &PeerName) -> Result<(), StoreError>;
    /// Saves a group: its properties, the local member and the member's chain.
    fn save_group(
        &mut self,
        properties: &SignedProperties,
        member: &PeerName,
        chain: &CredentialChain,
    ) -> Result<(), StoreError>;
    /// Forgets a group and all its local data.
    fn forget_group(&mut self, group: &PeerName) -> Result<(), StoreError>;
}

impl Backend for MemoryStore {
    fn save_identity(&mut self, _: &Identity) -> Result<(), StoreError> {
        Ok(())
    }

    fn forget_identity(&mut self, _: &PeerName) -> Result<(), StoreError> {
        Ok(())
    }

    fn save_group(
        &mut self,
        _: &SignedProperties,
        _: &PeerName,
        _: &CredentialChain,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    fn forget_group(&mut self, group: &PeerName) -> Result<(), StoreError> {
        self.remove_group(group).map(|_| ())
    }
}

impl Backend for RedbStore {
    fn save_identity(&mut self, identity: &Identity) -> Result<(), StoreError> {
        Ok(self.put_identity(identity)?)
    }

    fn forget_identity(&mut self, name: &PeerName) -> Result<(), StoreError> {
        self.remove_identity(name)?;
        Ok(())
    }

    fn save_group(
        &mut self,
        properties: &SignedProperties,
        member: &PeerName,
        chain: &CredentialChain,
    ) -> Result<(), StoreError> {
        let group = &properties.properties().group_peer_name;
        self.put_group(properties, member)?;
        let bytes = chain
            .to_bytes()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(self.put_credential(group, member, &bytes)?)
    }

    fn forget_group(&mut self, group: &PeerName) -> Result<(), StoreError> {
        self.delete_group(group)?;
        Ok(())
    }
}
