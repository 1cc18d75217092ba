//! The store's part in nonces that several replicas share ([`crate::nonce::SharedNonces`]):
//! the secret their MACs are made with, drawn once for the whole deployment, and the claim that
//! redeems a nonce once, whichever replica it reaches. A claim is a compare-and-swap from
//! absent, kept until the nonce would have expired anyway; the sweep removes it then.

use proto::clock::UnixTime;
use server_kit::store::Store;

use super::{StorageAuthority, StorageReader, trees};
use crate::error::Result;

/// The handle the nonce service holds: it can read the shared secret and claim nonces, and
/// nothing else.
#[derive(Debug, Clone)]
pub struct NonceClaims {
    reader: StorageReader,
}

impl StorageAuthority {
    /// The nonce service's handle.
    pub fn nonce_claims(&self) -> NonceClaims {
        NonceClaims {
            reader: self.reader.clone(),
        }
    }
}

impl NonceClaims {
    fn store(&self) -> &dyn Store {
        self.reader.store()
    }

    /// The deployment's nonce secret: the one stored, or `fresh` stored now if there is none
    /// (when replicas start together, the first to store one wins and all use it).
    pub fn secret(&self, fresh: Vec<u8>) -> Result<Vec<u8>> {
        Ok(server_kit::store::shared_secret(
            self.store(),
            trees::SECRETS,
            "nonce-mac",
            fresh,
        )?)
    }

    /// Claims the nonce `id`, valid until `expires`: true the first time, false ever after.
    pub fn claim(&self, id: &str, expires: UnixTime) -> Result<bool> {
        Ok(self
            .store()
            .insert_new_json(trees::NONCE_CLAIMS, id, &expires)?)
    }
}
