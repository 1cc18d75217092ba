//! The registration authority's rate limits (`[rate_limits]`): accounts created per IP address,
//! orders per account, failed validations per account and per identifier. Over a limit the
//! request gets `rateLimited` (429) with `Retry-After`; failed validations are checked before a
//! validation runs and counted when it fails, so a client that answers correctly is never slowed.

use std::net::IpAddr;
use std::time::Instant;

use server_kit::rate_limit::{Limited, RateLimiter};

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

fn limited(what: &str, l: Limited) -> Error {
    Error::RateLimited {
        detail: l.explain(what),
        retry_after_secs: l.retry_after_secs,
    }
}

impl RaRateLimits {
    /// Limiters for the configured rates.
    pub fn new(config: &RateLimits) -> Self {
        Self {
            new_accounts_per_ip: RateLimiter::new(config.new_accounts_per_ip, MAX_KEYS),
            new_orders_per_account: RateLimiter::new(config.new_orders_per_account, MAX_KEYS),
            failures_per_account: RateLimiter::new(config.failed_validations_per_account, MAX_KEYS),
            failures_per_identifier: RateLimiter::new(
                config.failed_validations_per_identifier,
                MAX_KEYS,
            ),
        }
    }

    /// An account is about to be created for a client at `ip`.
    pub fn new_account(&self, ip: IpAddr) -> Result<()> {
        self.new_accounts_per_ip
            .acquire(&ip.to_string(), Instant::now())
            .map_err(|l| limited("new accounts from this address", l))
    }

    /// `account` is about to create an order.
    pub fn new_order(&self, account_id: &str) -> Result<()> {
        self.new_orders_per_account
            .acquire(account_id, Instant::now())
            .map_err(|l| limited("new orders for this account", l))
    }

    /// Before validating: refuses if the account or the identifier has failed too often.
    pub fn may_validate(&self, account_id: &str, identifier: &str) -> Result<()> {
        let now = Instant::now();
        self.failures_per_account
            .check(account_id, now)
            .map_err(|l| limited("failed validations for this account", l))?;
        self.failures_per_identifier
            .check(identifier, now)
            .map_err(|l| limited("failed validations for this identifier", l))
    }

    /// A validation failed: counts it against the account and the identifier.
    pub fn validation_failed(&self, account_id: &str, identifier: &str) {
        let now = Instant::now();
        let _ = self.failures_per_account.acquire(account_id, now);
        let _ = self.failures_per_identifier.acquire(identifier, now);
    }
}
