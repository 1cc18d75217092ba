//! The read-only view of the store: every lookup the authorities make, and the only store
//! handle the web front end gets. It has no method that writes and none that yields a writer.

use std::sync::Arc;

use proto::clock::UnixTime;
use server_kit::store::Store;

use super::{authz_index_key, trees};
use crate::error::Result;
use crate::model::{
    AccountRecord, AuthzRecord, CertificateRecord, EabKey, Identifier, OrderRecord,
};

/// Reads of the ACME store.
#[derive(Debug, Clone)]
pub struct StorageReader {
    store: Arc<dyn Store>,
}

impl StorageReader {
    pub(super) fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The store, for the storage authority's writes (never leaves this module).
    pub(super) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// An account.
    pub fn account(&self, id: &str) -> Result<Option<AccountRecord>> {
        Ok(self.store().get_json(trees::ACCOUNTS, id)?)
    }

    /// The account with this key thumbprint.
    pub fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRecord>> {
        match self.account_id_by_thumbprint(thumbprint)? {
            Some(id) => self.account(&id),
            None => Ok(None),
        }
    }

    /// The id of the account holding a key.
    pub fn account_id_by_thumbprint(&self, thumbprint: &str) -> Result<Option<String>> {
        Ok(self.store().get_json(trees::ACCOUNT_KEYS, thumbprint)?)
    }

    /// Whether any account uses a key with this thumbprint.
    pub fn is_account_key(&self, thumbprint: &str) -> Result<bool> {
        Ok(self.store().get(trees::ACCOUNT_KEYS, thumbprint)?.is_some())
    }

    /// An EAB key.
    pub fn eab_key(&self, kid: &str) -> Result<Option<EabKey>> {
        Ok(self.store().get_json(trees::EAB_KEYS, kid)?)
    }

    /// Every EAB key.
    pub fn eab_keys(&self) -> Result<Vec<EabKey>> {
        Ok(self.store().scan_json(trees::EAB_KEYS, "")?)
    }

    /// An order.
    pub fn order(&self, id: &str) -> Result<Option<OrderRecord>> {
        Ok(self.store().get_json(trees::ORDERS, id)?)
    }

    /// The ids of an account's orders.
    pub fn order_ids_of(&self, account_id: &str) -> Result<Vec<String>> {
        let prefix = format!("{account_id}/");
        Ok(self
            .store()
            .scan_prefix(trees::ACCOUNT_ORDERS, &prefix)?
            .into_iter()
            .map(|(key, _)| key[prefix.len()..].to_owned())
            .collect())
    }

    /// An authorization.
    pub fn authz(&self, id: &str) -> Result<Option<AuthzRecord>> {
        Ok(self.store().get_json(trees::AUTHZS, id)?)
    }

    /// The latest authorization of an account for an identifier.
    pub fn latest_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
    ) -> Result<Option<AuthzRecord>> {
        let key = authz_index_key(account_id, identifier, wildcard);
        match self.store().get_json::<String>(trees::AUTHZ_INDEX, &key)? {
            Some(id) => self.authz(&id),
            None => Ok(None),
        }
    }

    /// The expiry times of the account's pending authorizations that have not expired by `now`.
    pub fn pending_authz_expiries(&self, account_id: &str, now: UnixTime) -> Result<Vec<UnixTime>> {
        Ok(self
            .store()
            .scan_json::<UnixTime>(trees::PENDING_AUTHZS, &format!("{account_id}/"))?
            .into_iter()
            .filter(|expires| *expires >= now)
            .collect())
    }

    /// An issued certificate.
    pub fn certificate(&self, id: &str) -> Result<Option<CertificateRecord>> {
        Ok(self.store().get_json(trees::CERTIFICATES, id)?)
    }

    /// An issued certificate by serial.
    pub fn certificate_by_serial(&self, serial: &str) -> Result<Option<CertificateRecord>> {
        match self.store().get_json::<String>(trees::SERIALS, serial)? {
            Some(id) => self.certificate(&id),
            None => Ok(None),
        }
    }

    /// Every revoked certificate (for the CRL).
    pub fn revoked_certificates(&self) -> Result<Vec<CertificateRecord>> {
        Ok(self
            .store()
            .scan_json::<CertificateRecord>(trees::CERTIFICATES, "")?
            .into_iter()
            .filter(|c| c.revoked.is_some())
            .collect())
    }
}
