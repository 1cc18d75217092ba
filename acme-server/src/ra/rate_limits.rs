//! The registration authority's rate limits (`[rate_limits]`): accounts created per IP address,
//! orders per account, failed validations per account and per identifier. Over a limit the
//! request gets `rateLimited` (429) with `Retry-After`. A validation reserves its failure tokens
//! (account and identifier) before it runs and gives them back when it succeeds, so concurrent
//! answers cannot all run before the first failure is counted, and a client that answers
//! correctly is never slowed. Replicas on one database share their buckets through it, so a
//! limit counts every replica's requests.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use server_kit::rate_limit::{Denied, Rate, RateLimiter, Reservation};
use server_kit::store::Store;

use crate::config::RateLimits;
use crate::error::{Error, Result};

/// Keys tracked per limit before full buckets are pruned.
const MAX_KEYS: usize = 100_000;

/// The limiters, one per kind.
#[derive(Debug)]
pub struct RaRateLimits {
    new_accounts_per_ip: RateLimiter,
    new_orders_per_account: RateLimiter,
    failures_per_account: RateLimiter,
    failures_per_identifier: RateLimiter,
}

fn limited(what: &str, denied: Denied) -> Error {
    match denied {
        Denied::Limited(l) => Error::RateLimited {
            detail: l.explain(what),
            retry_after_secs: l.retry_after_secs,
        },
        Denied::Store(e) => e.into(),
    }
}

impl RaRateLimits {
    /// Limiters for the configured rates: in memory, or in `shared` (the store replicas
    /// share) when given.
    pub fn new(config: &RateLimits, shared: Option<&Arc<dyn Store>>) -> Self {
        let limiter = |rate: Rate, name: &'static str| match shared {
            Some(store) => RateLimiter::shared(rate, store.clone(), name),
            None => RateLimiter::new(rate, MAX_KEYS),
        };
        Self {
            new_accounts_per_ip: limiter(config.new_accounts_per_ip, "new_accounts_per_ip"),
            new_orders_per_account: limiter(
                config.new_orders_per_account,
                "new_orders_per_account",
            ),
            failures_per_account: limiter(
                config.failed_validations_per_account,
                "failed_validations_per_account",
            ),
            failures_per_identifier: limiter(
                config.failed_validations_per_identifier,
                "failed_validations_per_identifier",
            ),
        }
    }

    /// An account is about to be created for a client at `ip`.
    pub fn new_account(&self, ip: IpAddr) -> Result<()> {
        self.new_accounts_per_ip
            .acquire(&server_kit::rate_limit::address_key(ip), Instant::now())
            .map_err(|l| limited("new accounts from this address", l))
    }

    /// `account` is about to create an order.
    pub fn new_order(&self, account_id: &str) -> Result<()> {
        self.new_orders_per_account
            .acquire(account_id, Instant::now())
            .map_err(|l| limited("new orders for this account", l))
    }

    /// Before validating: takes a failure token of the account and of the identifier (refused
    /// when either has failed too often). Keep the reservation when the validation fails,
    /// refund it when it succeeds.
    pub fn reserve_validation(
        &self,
        account_id: &str,
        identifier: &str,
    ) -> Result<Reservation<'_>> {
        let now = Instant::now();
        self.failures_per_account
            .reserve(account_id, now)
            .map_err(|l| limited("failed validations for this account", l))?
            .and(&self.failures_per_identifier, identifier, now)
            .map_err(|l| limited("failed validations for this identifier", l))
    }
}
