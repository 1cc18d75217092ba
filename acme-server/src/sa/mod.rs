//! The storage authority: the only module that touches the store. Accounts, orders,
//! authorizations (with their challenges) and certificates are JSON records; every status change
//! is a compare-and-swap against the record as it was read ([`Versioned`]), so two concurrent
//! requests can never both move the same object out of the same state. Nothing here flushes on
//! the request path: the web front end holds every POST response until the store's group commit
//! ([`StorageAuthority::durable`]) has made all writes before it durable, so one flush serves a
//! batch of requests.

use std::sync::Arc;

use server_kit::group_commit::GroupCommit;

use proto::acme::{
    AccountStatus, AuthorizationStatus, ChallengeStatus, Identifier, OrderStatus, Problem,
};
use proto::clock::UnixTime;
use proto::jwk::Jwk;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use server_kit::store::{Store, Tree, Versioned};

use crate::error::{Error, Result};

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
}

mod cleanup;

/// A stored account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Opaque id (URL path segment).
    pub id: String,
    /// The account's public key as a JWK.
    pub jwk: Value,
    /// Its RFC 7638 thumbprint.
    pub thumbprint: String,
    /// Status.
    pub status: AccountStatus,
    /// Contact URIs.
    pub contact: Vec<String>,
    /// Agreement to the terms.
    pub terms_of_service_agreed: Option<bool>,
    /// Creation time.
    pub created_at: UnixTime,
    /// The key id of the External Account Binding it was created with, if any.
    #[serde(default)]
    pub external_account_binding: Option<String>,
}

impl AccountRecord {
    /// The account key.
    pub fn key(&self) -> Result<Jwk> {
        Jwk::from_json(&self.jwk).map_err(|e| Error::Storage(format!("account key: {e}")))
    }
}

/// The identity a Wire order asks to certify, from its two identifiers (stored as its URIs
/// and name; see [`proto::wire_id::WireIdentity`]).
pub use proto::wire_id::WireIdentity;

/// A stored order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// Status as last written (see [`crate::ra`] for expiry).
    pub status: OrderStatus,
    /// Expiry.
    pub expires: UnixTime,
    /// Identifiers as requested.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore.
    pub not_before: Option<UnixTime>,
    /// Requested notAfter.
    pub not_after: Option<UnixTime>,
    /// Authorization ids, in identifier order.
    pub authorizations: Vec<String>,
    /// Why it became invalid.
    pub error: Option<Problem>,
    /// Issued certificate id.
    pub certificate: Option<String>,
    /// The ARI certID of the certificate this order replaces.
    #[serde(default)]
    pub replaces: Option<String>,
    /// The certificate profile.
    #[serde(default)]
    pub profile: String,
    /// The identity being certified, for Wire identity orders.
    pub wire: Option<WireIdentity>,
}

/// A stored challenge (part of its authorization record).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChallengeRecord {
    /// Opaque id, unique within the authorization.
    pub id: String,
    /// Challenge type.
    pub kind: String,
    /// Token (≥128 bits).
    pub token: String,
    /// Status.
    pub status: ChallengeStatus,
    /// When it was validated.
    pub validated: Option<UnixTime>,
    /// Why it failed.
    pub error: Option<Problem>,
    /// Wire `target`.
    pub target: Option<String>,
}

/// A stored authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthzRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The order it belongs to.
    pub order_id: String,
    /// The identifier (for a wildcard, the base name).
    pub identifier: Identifier,
    /// Whether the order asked for the wildcard of `identifier`.
    #[serde(default)]
    pub wildcard: bool,
    /// Status as last written.
    pub status: AuthorizationStatus,
    /// Expiry.
    pub expires: UnixTime,
    /// Challenges.
    pub challenges: Vec<ChallengeRecord>,
}

/// A stored certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateRecord {
    /// Opaque id.
    pub id: String,
    /// Owner.
    pub account_id: String,
    /// The order it was issued for.
    pub order_id: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// Leaf then intermediate(s), PEM.
    pub chain_pem: String,
    /// Validity.
    pub not_before: UnixTime,
    /// Validity.
    pub not_after: UnixTime,
    /// Set once revoked.
    #[serde(default)]
    pub revoked: Option<Revocation>,
    /// The order that claimed to replace it (RFC 9773 §5); it holds the claim while it is not
    /// `invalid`.
    #[serde(default)]
    pub replaced_by: Option<String>,
    /// When that order expires: an order not (or no longer) stored holds the claim until then.
    #[serde(default)]
    pub replacement_expires: Option<UnixTime>,
    /// Signed by the name CA (standard orders); otherwise by the identity CA, as was every
    /// certificate stored before the two were separated.
    #[serde(default)]
    pub names_ca: bool,
}

/// An External Account Binding key issued by the operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EabKey {
    /// Key id.
    pub kid: String,
    /// The HMAC key, base64url.
    pub mac_key: String,
    /// When it was made.
    pub created_at: UnixTime,
    /// The account it bound, once used (a key binds one account).
    pub account_id: Option<String>,
}

/// A revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    pub at: UnixTime,
    /// RFC 5280 §5.3.1 reason code.
    pub reason: u8,
}

/// Whether [`StorageAuthority::create_account`] made a new account.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new account.
    New(AccountRecord),
    /// The key already had one.
    Existing(AccountRecord),
}

fn pending_key(account_id: &str, authz_id: &str) -> String {
    format!("{account_id}/{authz_id}")
}

/// The storage authority.
#[derive(Debug, Clone)]
pub struct StorageAuthority {
    store: Arc<dyn Store>,
    commit: Arc<GroupCommit>,
}

impl StorageAuthority {
    /// Wraps a store and starts its group commit.
    pub fn new(store: Arc<dyn Store>) -> Result<Self> {
        Ok(Self {
            commit: Arc::new(GroupCommit::start(store.clone())?),
            store,
        })
    }

    fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Makes everything written so far durable, blocking (the operator CLI, shutdown).
    pub fn flush(&self) -> Result<()> {
        Ok(self.store().flush()?)
    }

    /// Returns once everything written before the call is durable, sharing one flush with every
    /// other request waiting at the same time.
    pub async fn durable(&self) -> Result<()> {
        Ok(self.commit.durable().await?)
    }

    /// Creates an account unless its key already has one (then returns that one); the key
    /// index is claimed by compare-and-swap, so concurrent requests yield one account.
    pub fn create_account(&self, account: AccountRecord) -> Result<Created> {
        let id_json = server_kit::store::encode(&account.id)?;
        let claimed = self.store().compare_and_swap(
            trees::ACCOUNT_KEYS,
            &account.thumbprint,
            None,
            Some(&id_json),
        )?;
        if !claimed {
            return self
                .account_by_thumbprint(&account.thumbprint)?
                .map(Created::Existing)
                .ok_or_else(|| Error::Storage("account key index without account".into()));
        }
        self.store()
            .put_json(trees::ACCOUNTS, &account.id, &account)?;
        Ok(Created::New(account))
    }

    /// The account with this key thumbprint.
    pub fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRecord>> {
        let Some(id) = self
            .store()
            .get_json::<String>(trees::ACCOUNT_KEYS, thumbprint)?
        else {
            return Ok(None);
        };
        Ok(self.store().get_json(trees::ACCOUNTS, &id)?)
    }

    /// Whether any account uses a key with this thumbprint.
    pub fn is_account_key(&self, thumbprint: &str) -> Result<bool> {
        Ok(self.store().get(trees::ACCOUNT_KEYS, thumbprint)?.is_some())
    }

    /// An account, for a later compare-and-swap.
    pub fn account(&self, id: &str) -> Result<Option<Versioned<AccountRecord>>> {
        Ok(self.store().get_versioned(trees::ACCOUNTS, id)?)
    }

    /// Replaces an account if unchanged since read.
    pub fn replace_account(
        &self,
        old: &Versioned<AccountRecord>,
        new: &AccountRecord,
    ) -> Result<bool> {
        Ok(self
            .store()
            .replace_json(trees::ACCOUNTS, &new.id, old, new)?)
    }

    /// Moves an account to a new key: claims the new key's index entry (false if another
    /// account has it), swaps the record, releases the old entry.
    pub fn change_account_key(
        &self,
        old: &Versioned<AccountRecord>,
        new: &AccountRecord,
    ) -> Result<bool> {
        let id_json = server_kit::store::encode(&new.id)?;
        if !self.store().compare_and_swap(
            trees::ACCOUNT_KEYS,
            &new.thumbprint,
            None,
            Some(&id_json),
        )? {
            return Ok(false);
        }
        if !self
            .store()
            .replace_json(trees::ACCOUNTS, &new.id, old, new)?
        {
            self.store().take(trees::ACCOUNT_KEYS, &new.thumbprint)?;
            return Err(Error::malformed("the account changed concurrently; retry"));
        }
        self.store()
            .take(trees::ACCOUNT_KEYS, &old.value.thumbprint)?;
        Ok(true)
    }

    /// Stores a new EAB key; false if the kid exists.
    pub fn add_eab_key(&self, key: &EabKey) -> Result<bool> {
        let added = self
            .store()
            .insert_new_json(trees::EAB_KEYS, &key.kid, key)?;
        self.flush()?;
        Ok(added)
    }

    /// Every EAB key.
    pub fn eab_keys(&self) -> Result<Vec<EabKey>> {
        Ok(self.store().scan_json(trees::EAB_KEYS, "")?)
    }

    /// Binds an unused EAB key to an account by compare-and-swap; false if it is unknown or
    /// already used.
    pub fn bind_eab_key(&self, kid: &str, account_id: &str) -> Result<Option<EabKey>> {
        let Some(stored) = self.store().get_versioned::<EabKey>(trees::EAB_KEYS, kid)? else {
            return Ok(None);
        };
        if stored.value.account_id.is_some() {
            return Ok(None);
        }
        let mut bound = stored.value.clone();
        bound.account_id = Some(account_id.to_owned());
        Ok(self
            .store()
            .replace_json(trees::EAB_KEYS, kid, &stored, &bound)?
            .then_some(bound))
    }

    /// An EAB key.
    pub fn eab_key(&self, kid: &str) -> Result<Option<EabKey>> {
        Ok(self.store().get_json(trees::EAB_KEYS, kid)?)
    }

    /// The id of the account holding a key.
    pub fn account_id_by_thumbprint(&self, thumbprint: &str) -> Result<Option<String>> {
        Ok(self.store().get_json(trees::ACCOUNT_KEYS, thumbprint)?)
    }

    /// The key of an authorization in the reuse index.
    pub fn authz_index_key(account_id: &str, identifier: &Identifier, wildcard: bool) -> String {
        format!(
            "{account_id}/{}/{}/{wildcard}",
            identifier.kind, identifier.value
        )
    }

    /// The latest authorization of an account for an identifier.
    pub fn latest_authz(
        &self,
        account_id: &str,
        identifier: &Identifier,
        wildcard: bool,
    ) -> Result<Option<AuthzRecord>> {
        let key = Self::authz_index_key(account_id, identifier, wildcard);
        let Some(id) = self.store().get_json::<String>(trees::AUTHZ_INDEX, &key)? else {
            return Ok(None);
        };
        Ok(self.store().get_json(trees::AUTHZS, &id)?)
    }

    /// Stores a new order with its new authorizations (reused ones are already stored).
    pub fn create_order(&self, order: &OrderRecord, authzs: &[AuthzRecord]) -> Result<()> {
        for authz in authzs {
            self.store().put_json(trees::AUTHZS, &authz.id, authz)?;
            let key = Self::authz_index_key(&authz.account_id, &authz.identifier, authz.wildcard);
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
            &format!("{}/{}", order.account_id, order.id),
            b"",
        )?;
        Ok(())
    }

    /// An order, for a later compare-and-swap.
    pub fn order(&self, id: &str) -> Result<Option<Versioned<OrderRecord>>> {
        Ok(self.store().get_versioned(trees::ORDERS, id)?)
    }

    /// Replaces an order if unchanged since read.
    pub fn replace_order(&self, old: &Versioned<OrderRecord>, new: &OrderRecord) -> Result<bool> {
        Ok(self
            .store()
            .replace_json(trees::ORDERS, &new.id, old, new)?)
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

    /// An authorization, for a later compare-and-swap.
    pub fn authz(&self, id: &str) -> Result<Option<Versioned<AuthzRecord>>> {
        Ok(self.store().get_versioned(trees::AUTHZS, id)?)
    }

    /// Replaces an authorization if unchanged since read; one that leaves `pending` leaves the
    /// pending count.
    pub fn replace_authz(&self, old: &Versioned<AuthzRecord>, new: &AuthzRecord) -> Result<bool> {
        let replaced = self
            .store()
            .replace_json(trees::AUTHZS, &new.id, old, new)?;
        if replaced && new.status != AuthorizationStatus::Pending {
            self.store().take(
                trees::PENDING_AUTHZS,
                &pending_key(&new.account_id, &new.id),
            )?;
        }
        Ok(replaced)
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

    /// Stores an issued certificate and its serial index (the order update that names it
    /// follows).
    pub fn put_certificate(&self, cert: &CertificateRecord) -> Result<()> {
        self.store().put_json(trees::CERTIFICATES, &cert.id, cert)?;
        Ok(self
            .store()
            .put_json(trees::SERIALS, &cert.serial, &cert.id)?)
    }

    /// An issued certificate.
    pub fn certificate(&self, id: &str) -> Result<Option<CertificateRecord>> {
        Ok(self.store().get_json(trees::CERTIFICATES, id)?)
    }

    /// An issued certificate by serial, for a later compare-and-swap.
    pub fn certificate_by_serial(
        &self,
        serial: &str,
    ) -> Result<Option<Versioned<CertificateRecord>>> {
        let Some(id) = self.store().get_json::<String>(trees::SERIALS, serial)? else {
            return Ok(None);
        };
        Ok(self.store().get_versioned(trees::CERTIFICATES, &id)?)
    }

    /// Replaces a certificate record if unchanged since read.
    pub fn replace_certificate(
        &self,
        old: &Versioned<CertificateRecord>,
        new: &CertificateRecord,
    ) -> Result<bool> {
        Ok(self
            .store()
            .replace_json(trees::CERTIFICATES, &new.id, old, new)?)
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
