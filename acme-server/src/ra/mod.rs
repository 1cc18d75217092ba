//! The registration authority: accounts, orders, authorizations and their state machines, and
//! the identity policy. It receives requests already authenticated by the front end (as
//! [`AuthenticatedAccount`]), asks the validation authority to check answers, the CA to issue,
//! and the storage authority to record every change by compare-and-swap on the stored status.
//!
//! An order or authorization of another account is reported as not found: its existence is
//! not disclosed.

mod accounts;
mod challenges;
mod finalize;
pub mod identity;
mod key_change;
pub mod names;
mod orders;
mod rate_limits;
pub mod renewal;
pub mod revocation;

use std::sync::Arc;

use proto::clock::Clock;
use proto::jwk::Jwk;

use crate::ca::Authorities;
use crate::config::Config;
use crate::sa::{AccountRecord, StorageAuthority};
use crate::va::ValidationAuthority;

pub use accounts::AccountOutcome;

/// An account whose key signed the current request (made only by the front end's JWS intake).
#[derive(Debug, Clone)]
pub struct AuthenticatedAccount {
    record: AccountRecord,
    key: Jwk,
}

impl AuthenticatedAccount {
    /// Vouches that `key` (the record's key) verified the request. Only the JWS intake calls
    /// this.
    pub(crate) fn new(record: AccountRecord, key: Jwk) -> Self {
        Self { record, key }
    }

    /// The account.
    pub fn record(&self) -> &AccountRecord {
        &self.record
    }

    /// Its id.
    pub fn id(&self) -> &str {
        &self.record.id
    }

    /// Its key.
    pub fn key(&self) -> &Jwk {
        &self.key
    }
}

/// The registration authority.
#[derive(Debug)]
pub struct RegistrationAuthority {
    sa: StorageAuthority,
    va: ValidationAuthority,
    ca: Authorities,
    config: Arc<Config>,
    clock: Arc<dyn Clock>,
    rate_limits: rate_limits::RaRateLimits,
    audit: server_kit::audit::AuditLog,
}

impl RegistrationAuthority {
    /// Assembles the authority.
    pub fn new(
        sa: StorageAuthority,
        va: ValidationAuthority,
        ca: Authorities,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        audit: server_kit::audit::AuditLog,
    ) -> Self {
        Self {
            sa,
            va,
            ca,
            audit,
            rate_limits: rate_limits::RaRateLimits::new(&config.rate_limits),
            config,
            clock,
        }
    }

    /// The storage authority (read access for the front end).
    pub fn sa(&self) -> &StorageAuthority {
        &self.sa
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }
}
