//! The storage authority: the only module that touches the store. Accounts, orders,
//! authorizations (with their challenges), certificates and EAB keys are JSON records (their
//! types are in [`crate::model`]). New records are put once; every later change of a record is a
//! compare-and-swap against the record as it was read, made by the one helper
//! [`StorageAuthority::transition`] with one rule for a lost swap (read again, decide again), so
//! two concurrent requests can never both move the same object out of the same state. The index
//! that keeps one account per key is claimed by compare-and-swap too: the first claim wins. Nothing
//! here flushes on the request path: the web front end holds every POST response until the
//! store's group commit ([`Durability`]) has made all writes before it durable, so one flush
//! serves a batch of requests.
//!
//! What may write is a matter of types. [`StorageAuthority`] writes; it is not `Clone`, the
//! registration authority holds it (and the operator's `eab` command), and it hands out nothing
//! that reaches the store but a [`StorageReader`], which only reads, a [`Durability`], which only
//! waits for the group commit (the two the web front end is given), the background sweep's
//! [`Cleanup`], and the nonce service's [`NonceClaims`] (replicas only).

mod cleanup;
mod durability;
mod nonce_claims;
mod reader;
mod transition;

use std::sync::Arc;

use proto::acme::AuthorizationStatus;
use server_kit::group_commit::GroupCommit;
use server_kit::store::{Store, Tree};

use crate::error::{Error, Result};
use crate::model::Identifier;

pub use cleanup::Cleanup;
pub use durability::Durability;
pub use nonce_claims::NonceClaims;
pub use reader::StorageReader;
pub use transition::{Decision, StoredRecord};

/// The records the trees hold (defined in [`crate::model`]), for tools that read a stopped
/// server's store.
pub use crate::model::{
    AccountRecord, AuthzRecord, CertificateRecord, ChallengeRecord, EabKey, OrderRecord, Revocation,
};

/// The collections.
pub mod trees {
    use super::Tree;

    /// Account id → account.
    pub const ACCOUNTS: Tree = Tree::new("accounts");
    /// RFC 7638 thumbprint of an account key → account id (one account per key).
    pub const ACCOUNT_KEYS: Tree = Tree::new("account_keys");
    /// Order id → order.
    pub const ORDERS: Tree = Tree::new("orders");
    /// `{account id}/{order id}` → empty: the orders list of an account.
    pub const ACCOUNT_ORDERS: Tree = Tree::new("account_orders");
    /// Authorization id → authorization with its challenges.
    pub const AUTHZS: Tree = Tree::new("authzs");
    /// `{account id}/{type}/{value}/{wildcard}` → the latest authorization id, for reuse.
    pub const AUTHZ_INDEX: Tree = Tree::new("authz_index");
    /// Certificate id → issued chain.
    pub const CERTIFICATES: Tree = Tree::new("certificates");
    /// External Account Binding key id → key record.
    pub const EAB_KEYS: Tree = Tree::new("eab_keys");
    /// Serial (lower-case hex) → certificate id.
    pub const SERIALS: Tree = Tree::new("serials");
    /// `{account id}/{authorization id}` → expiry, while the authorization is pending: the
    /// count the pending-authorizations cap reads.
    pub const PENDING_AUTHZS: Tree = Tree::new("pending_authzs");
    /// Nonce id → its expiry, once redeemed: nonces shared by replicas
    /// ([`crate::nonce::SharedNonces`]).
    pub const NONCE_CLAIMS: Tree = Tree::new("nonce_claims");
    /// Name → a secret the whole deployment shares (the nonces' MAC key).
    pub const SECRETS: Tree = Tree::new("secrets");
}

/// The key of an authorization in [`trees::PENDING_AUTHZS`].
fn pending_key(account_id: &str, authz_id: &str) -> String {
    format!("{account_id}/{authz_id}")
}

/// The key of an order in [`trees::ACCOUNT_ORDERS`].
fn account_order_key(account_id: &str, order_id: &str) -> String {
    format!("{account_id}/{order_id}")
}

/// The key of an authorization in [`trees::AUTHZ_INDEX`].
fn authz_index_key(account_id: &str, identifier: &Identifier, wildcard: bool) -> String {
    format!(
        "{account_id}/{}/{}/{wildcard}",
        identifier.kind, identifier.value
    )
}

/// Whether [`StorageAuthority::create_account`] made a new account.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new account.
    New(AccountRecord),
    /// The key already had one.
    Existing(AccountRecord),
}

/// The storage authority: the writer.
#[derive(Debug)]
pub struct StorageAuthority {
    reader: StorageReader,
    commit: Arc<GroupCommit>,
}

impl StorageAuthority {
    /// Wraps a store and starts its group commit.
    pub fn new(store: Arc<dyn Store>) -> Result<Self> {
        Ok(Self {
            commit: Arc::new(GroupCommit::start(store.clone())?),
            reader: StorageReader::new(store),
        })
    }

    /// Its reads (a clone is the read-only view the web front end gets).
    pub fn reader(&self) -> &StorageReader {
        &self.reader
    }

    /// A handle that waits for the group commit, for the web front end.
    pub fn durability(&self) -> Durability {
        Durability::new(self.commit.clone())
    }

    fn store(&self) -> &dyn Store {
        self.reader.store()
    }

    /// The readiness probe: a write made durable and read back ([`server_kit::health::probe`]).
    pub fn probe(&self, now: i64) -> Result<()> {
        Ok(server_kit::health::probe(self.store(), now)?)
    }

    /// Makes everything written so far durable, blocking (the operator CLI, shutdown).
    pub fn flush(&self) -> Result<()> {
        Ok(self.store().flush()?)
    }

    /// Creates an account unless its key already has one (then returns that one); the key
    /// index is claimed first ([`Self::claim_account_key`]), so concurrent requests yield one
    /// account.
    pub fn create_account(&self, account: AccountRecord) -> Result<Created> {
        if !self.claim_account_key(&account.thumbprint, &account.id)? {
            return self
                .reader
                .account_by_thumbprint(&account.thumbprint)?
                .map(Created::Existing)
                .ok_or_else(|| Error::Storage("account key index without account".into()));
        }
        self.store()
            .put_json(trees::ACCOUNTS, &account.id, &account)?;
        Ok(Created::New(account))
    }

    /// Claims the key with this thumbprint for `account_id` in the index that keeps one account
    /// per key: false when another account holds it (the first claim wins).
    pub fn claim_account_key(&self, thumbprint: &str, account_id: &str) -> Result<bool> {
        let id_json = server_kit::store::encode(&account_id)?;
        Ok(self
            .store()
            .compare_and_swap(trees::ACCOUNT_KEYS, thumbprint, None, Some(&id_json))?)
    }

    /// Gives up `account_id`'s claim on a key (an index entry that names another account stays).
    pub fn release_account_key(&self, thumbprint: &str, account_id: &str) -> Result<()> {
        let id_json = server_kit::store::encode(&account_id)?;
        self.store()
            .compare_and_swap(trees::ACCOUNT_KEYS, thumbprint, Some(&id_json), None)?;
        Ok(())
    }

    /// Stores a new EAB key; false if the kid exists.
    pub fn add_eab_key(&self, key: &EabKey) -> Result<bool> {
        let added = self
            .store()
            .insert_new_json(trees::EAB_KEYS, &key.kid, key)?;
        self.flush()?;
        Ok(added)
    }

    /// Stores a new order with its new authorizations (reused ones are already stored).
    pub fn create_order(&self, order: &OrderRecord, authzs: &[AuthzRecord]) -> Result<()> {
        for authz in authzs {
            self.store().put_json(trees::AUTHZS, &authz.id, authz)?;
            let key = authz_index_key(&authz.account_id, &authz.identifier, authz.wildcard);
            self.store().put_json(trees::AUTHZ_INDEX, &key, &authz.id)?;
            if authz.status == AuthorizationStatus::Pending {
                self.store().put_json(
                    trees::PENDING_AUTHZS,
                    &pending_key(&authz.account_id, &authz.id),
                    &authz.expires,
                )?;
            }
        }
        self.store().put_json(trees::ORDERS, &order.id, order)?;
        self.store().put(
            trees::ACCOUNT_ORDERS,
            &account_order_key(&order.account_id, &order.id),
            b"",
        )?;
        Ok(())
    }

    /// Stores an issued certificate and its serial index (the order update that names it
    /// follows).
    pub fn put_certificate(&self, cert: &CertificateRecord) -> Result<()> {
        self.store().put_json(trees::CERTIFICATES, &cert.id, cert)?;
        Ok(self
            .store()
            .put_json(trees::SERIALS, &cert.serial, &cert.id)?)
    }
}
