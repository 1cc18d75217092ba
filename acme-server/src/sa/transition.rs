//! The one way a stored record changes: [`StorageAuthority::transition`] reads the record, lets
//! the caller decide on it, and writes the decision by compare-and-swap against the bytes it
//! read. One rule for conflicts: when another writer got there first, the record is read again
//! and the caller decides again on what is stored now — so a decision is always made on the
//! record it replaces, and a loser sees the winner's state (the order is `processing` now, the
//! certificate revoked, the authorization no longer pending) and answers from it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use server_kit::store::{Store, Tree};

use super::{StorageAuthority, pending_key, trees};
use crate::error::Result;
use crate::model::{AccountRecord, AuthzRecord, CertificateRecord, EabKey, OrderRecord};
use proto::acme::AuthorizationStatus;

/// What to do with the record a transition read.
#[derive(Debug)]
pub enum Decision<R, T> {
    /// Write this record in its place and return `T`.
    Write(R, T),
    /// Leave it as it is and return `T`.
    Keep(T),
}

/// A record kept in a tree of its own.
pub trait StoredRecord: Serialize + DeserializeOwned {
    /// Its tree.
    const TREE: Tree;

    /// Keeps the index entries that follow the record in step once it was written as `self`.
    fn after_write(&self, _store: &dyn Store) -> Result<()> {
        Ok(())
    }
}

impl StoredRecord for AccountRecord {
    const TREE: Tree = trees::ACCOUNTS;
}

impl StoredRecord for OrderRecord {
    const TREE: Tree = trees::ORDERS;
}

impl StoredRecord for CertificateRecord {
    const TREE: Tree = trees::CERTIFICATES;
}

impl StoredRecord for EabKey {
    const TREE: Tree = trees::EAB_KEYS;
}

impl StoredRecord for AuthzRecord {
    const TREE: Tree = trees::AUTHZS;

    /// An authorization that leaves `pending` leaves the pending count.
    fn after_write(&self, store: &dyn Store) -> Result<()> {
        if self.status != AuthorizationStatus::Pending {
            store.take(
                trees::PENDING_AUTHZS,
                &pending_key(&self.account_id, &self.id),
            )?;
        }
        Ok(())
    }
}

impl StorageAuthority {
    /// Applies `decide` to the record at `key` (`None` when there is none) and writes what it
    /// decides by compare-and-swap; on a conflict, reads and decides again (see the module).
    /// An error from `decide` ends the transition with nothing written.
    pub fn transition<R: StoredRecord, T>(
        &self,
        key: &str,
        mut decide: impl FnMut(Option<&R>) -> Result<Decision<R, T>>,
    ) -> Result<T> {
        let store = self.store();
        loop {
            let read = store.get_versioned::<R>(R::TREE, key)?;
            let (next, outcome) = match decide(read.as_ref().map(|r| &r.value))? {
                Decision::Keep(outcome) => return Ok(outcome),
                Decision::Write(next, outcome) => (next, outcome),
            };
            let written = match &read {
                Some(old) => store.replace_json(R::TREE, key, old, &next)?,
                None => store.insert_new_json(R::TREE, key, &next)?,
            };
            if written {
                next.after_write(store)?;
                return Ok(outcome);
            }
        }
    }
}
