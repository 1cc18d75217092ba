//! The registration authority: accounts, orders, authorizations and their state machines, and
//! the identity and name policies. It receives requests already authenticated by the front end
//! (as [`AuthenticatedAccount`]), asks the validation authority to check answers, the CA to
//! issue, and the storage authority to record every change by compare-and-swap on the stored
//! record (`sa::StorageAuthority::transition`: on a conflict it decides again on what is stored
//! now).
//!
//! Whether an order certifies a Wire identity or names is decided once, when newOrder checks its
//! identifiers against the identity or the name policy; from then on the order's
//! [`OrderProfile`](crate::model::OrderProfile) answers for it.
//!
//! An order or authorization of another account is reported as not found: its existence is
//! not disclosed.

mod accounts;
mod authorizations;
mod certificates;
mod challenges;
mod finalize;
pub mod identity;
mod key_change;
pub mod names;
mod orders;
mod owned;
mod profile;
mod rate_limits;
pub use rate_limits::RaRateLimits;
pub mod renewal;
pub mod revocation;

use std::sync::Arc;

use proto::clock::Clock;
use proto::jwk::Jwk;

use crate::ca::Authorities;
use crate::config::Config;
use crate::model::AccountRecord;
use crate::sa::StorageAuthority;
use crate::va::ValidationAuthority;

pub use accounts::AccountOutcome;
pub use challenges::ChallengeState;
pub use finalize::{Finalized, Issuance};

/// An account whose key signed the current request (made only by the front end's JWS intake).
#[derive(Debug, Clone)]
pub struct AuthenticatedAccount {
    record: AccountRecord,
}

impl AuthenticatedAccount {
    /// Vouches that the record's key verified the request. Only the JWS intake calls this.
    pub(crate) fn new(record: AccountRecord) -> Self {
        Self { record }
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
        &self.record.jwk
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
    readiness: server_kit::health::Readiness,
}

impl RegistrationAuthority {
    /// Assembles the authority; it is the only holder of the storage authority.
    pub fn new(
        sa: StorageAuthority,
        va: ValidationAuthority,
        ca: Authorities,
        config: Arc<Config>,
        clock: Arc<dyn Clock>,
        audit: server_kit::audit::AuditLog,
        rate_limits: rate_limits::RaRateLimits,
    ) -> Self {
        Self {
            sa,
            va,
            ca,
            audit,
            rate_limits,
            config,
            clock,
            readiness: server_kit::health::Readiness::default(),
        }
    }

    fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Whether the store takes a durable write now (`/readyz`), probed at most once a second.
    pub async fn ready(&self) -> std::result::Result<(), server_kit::health::NotReady> {
        let now = self.now();
        self.readiness.check(now, || self.sa.probe(now)).await
    }
}
