//! What the background sweep removes from the ACME store, each removal a compare-and-swap on
//! the record as judged (see [`server_kit::cleanup`]):
//!
//! - certificates (with their serial index entry) once expired: the CRL lists unexpired ones;
//! - orders that are not `valid` once expired, and `valid` ones once their certificate is gone,
//!   with their entry in the account's order list and the authorizations they created (an
//!   authorization reused by a later order goes with the order that created it);
//! - authorizations whose order is gone, reuse-index entries whose authorization is gone, and
//!   pending-count entries of expired authorizations (what a crash between two steps leaves);
//! - claims of shared nonces once the nonce has expired (it is refused for its age then), and
//!   shared rate-limit buckets once full again (replicas).
//!
//! Expired records stay `keep` seconds, so a client that polls late still reads the final state.
//! Accounts and EAB keys are never removed. The background sweep holds a [`Cleanup`], which can
//! do this and nothing else.

use proto::acme::OrderStatus;
use proto::clock::UnixTime;
use serde::de::DeserializeOwned;
use server_kit::cleanup::remove_where;

use super::{
    StorageAuthority, StorageReader, account_order_key, authz_index_key, pending_key, trees,
};
use crate::error::Result;
use crate::model::{AuthzRecord, CertificateRecord, OrderRecord};

fn decoded<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// The sweep's handle on the store.
#[derive(Debug, Clone)]
pub struct Cleanup {
    reader: StorageReader,
}

impl StorageAuthority {
    /// The handle of the background sweep.
    pub fn cleanup(&self) -> Cleanup {
        Cleanup {
            reader: self.reader.clone(),
        }
    }
}

impl Cleanup {
    /// Removes what expired before `now - keep`; returns how many records went.
    pub fn sweep(&self, now: UnixTime, keep: i64) -> Result<usize> {
        let cutoff = now - keep;
        let store = self.reader.store();
        let certificates = remove_where(store, trees::CERTIFICATES, |_, value| {
            decoded::<CertificateRecord>(value).is_some_and(|c| c.not_after < cutoff)
        })?;
        for (_, value) in &certificates {
            if let Some(cert) = decoded::<CertificateRecord>(value) {
                store.take(trees::SERIALS, &cert.serial)?;
            }
        }
        let orders = remove_where(store, trees::ORDERS, |_, value| {
            decoded::<OrderRecord>(value).is_some_and(|order| match order.status {
                OrderStatus::Valid => order
                    .certificate
                    .as_deref()
                    .is_none_or(|id| matches!(store.get(trees::CERTIFICATES, id), Ok(None))),
                _ => order.expires < cutoff,
            })
        })?;
        for (_, value) in &orders {
            if let Some(order) = decoded::<OrderRecord>(value) {
                self.remove_order_parts(&order)?;
            }
        }
        let orphans = remove_where(store, trees::AUTHZS, |_, value| {
            decoded::<AuthzRecord>(value).is_some_and(|authz| {
                authz.expires < cutoff
                    && matches!(store.get(trees::ORDERS, &authz.order_id), Ok(None))
            })
        })?;
        let index = remove_where(store, trees::AUTHZ_INDEX, |_, value| {
            decoded::<String>(value)
                .is_some_and(|id| matches!(store.get(trees::AUTHZS, &id), Ok(None)))
        })?;
        // Kept `keep` past the nonce's expiry, so a replica whose clock runs behind the
        // sweeper's still finds the claim of a nonce it would take as unexpired.
        let nonce_claims = remove_where(store, trees::NONCE_CLAIMS, |_, value| {
            decoded::<UnixTime>(value).is_some_and(|expires| expires < cutoff)
        })?;
        let buckets = server_kit::rate_limit::sweep(store, now)?;
        let pending = remove_where(store, trees::PENDING_AUTHZS, |_, value| {
            decoded::<UnixTime>(value).is_some_and(|expires| expires < now)
        })?;
        Ok(certificates.len()
            + orders.len()
            + orphans.len()
            + index.len()
            + pending.len()
            + nonce_claims.len()
            + buckets)
    }

    /// The order-list entry of a removed order and the authorizations it created.
    fn remove_order_parts(&self, order: &OrderRecord) -> Result<()> {
        let store = self.reader.store();
        store.take(
            trees::ACCOUNT_ORDERS,
            &account_order_key(&order.account_id, &order.id),
        )?;
        for id in &order.authorizations {
            let Some(authz) = store.get_json::<AuthzRecord>(trees::AUTHZS, id)? else {
                continue;
            };
            if authz.order_id != order.id {
                continue;
            }
            store.take(trees::AUTHZS, id)?;
            store.take(trees::PENDING_AUTHZS, &pending_key(&authz.account_id, id))?;
            let index_key = authz_index_key(&authz.account_id, &authz.identifier, authz.wildcard);
            let id_json = server_kit::store::encode(id)?;
            store.compare_and_swap(trees::AUTHZ_INDEX, &index_key, Some(&id_json), None)?;
        }
        Ok(())
    }
}
