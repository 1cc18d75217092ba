//! The authz-server's rate limits (`[rate_limits]`): failed logins per user and per client IP
//! address (brute force), and token requests per client. A login reserves a failure token of the
//! user and of the address before its password is verified and gives them back when the password
//! was right, so a burst of concurrent guesses verifies at most `burst` passwords, and a user who
//! types the right password is not slowed by others' failures unless the address or account is
//! under attack. Upstream logins started per client IP address are limited too: each start
//! stores a waiting login and asks the upstream for its metadata, before anyone has logged in.
//! Remote logins (the remote verifier grant) reserve a failure token of the client and of the
//! address before the verifier is asked and give them back when it says yes, so guessing
//! through this server costs the verifier at most `burst` questions per client and address.
//! Over a limit: 429 with `Retry-After`. Replicas on one database share their buckets through
//! it ([`RateLimiter::shared`]), so a limit counts every replica's requests.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use server_kit::rate_limit::{Denied, Rate, RateLimiter, Reservation, address_key};
use server_kit::store::Store;

use crate::{Error, Result};

/// Keys tracked per limit before full buckets are pruned.
const MAX_KEYS: usize = 100_000;

/// Token-bucket rates (`{ per_minute, burst }`; `per_minute = 0` disables one).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Failed logins per user handle.
    pub failed_logins_per_user: Rate,
    /// Failed logins per client IP address.
    pub failed_logins_per_ip: Rate,
    /// Token requests per client.
    pub token_requests_per_client: Rate,
    /// Upstream logins started (`GET /upstream/start`) per client IP address.
    pub upstream_logins_per_ip: Rate,
    /// Failed (or unfinished) remote logins per client.
    pub failed_remote_logins_per_client: Rate,
    /// Failed (or unfinished) remote logins per client IP address.
    pub failed_remote_logins_per_ip: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            failed_logins_per_user: Rate::new(5, 10),
            failed_logins_per_ip: Rate::new(30, 60),
            token_requests_per_client: Rate::new(60_000, 10_000),
            upstream_logins_per_ip: Rate::new(30, 60),
            failed_remote_logins_per_client: Rate::new(600, 600),
            failed_remote_logins_per_ip: Rate::new(60, 60),
        }
    }
}

/// The limiters.
#[derive(Debug)]
pub struct Limiters {
    logins_per_user: RateLimiter,
    logins_per_ip: RateLimiter,
    tokens_per_client: RateLimiter,
    upstream_logins_per_ip: RateLimiter,
    remote_logins_per_client: RateLimiter,
    remote_logins_per_ip: RateLimiter,
}

fn limited(what: &str, denied: Denied) -> Error {
    match denied {
        Denied::Limited(l) => Error::RateLimited {
            description: l.explain(what),
            retry_after_secs: l.retry_after_secs,
        },
        Denied::Store(e) => e.into(),
    }
}

impl Limiters {
    /// Limiters for the configured rates: in memory, or in `shared` (the store replicas
    /// share) when given.
    pub fn new(config: &RateLimits, shared: Option<&Arc<dyn Store>>) -> Self {
        let limiter = |rate: Rate, name: &'static str| match shared {
            Some(store) => RateLimiter::shared(rate, store.clone(), name),
            None => RateLimiter::new(rate, MAX_KEYS),
        };
        Self {
            logins_per_user: limiter(config.failed_logins_per_user, "failed_logins_per_user"),
            logins_per_ip: limiter(config.failed_logins_per_ip, "failed_logins_per_ip"),
            tokens_per_client: limiter(
                config.token_requests_per_client,
                "token_requests_per_client",
            ),
            upstream_logins_per_ip: limiter(
                config.upstream_logins_per_ip,
                "upstream_logins_per_ip",
            ),
            remote_logins_per_client: limiter(
                config.failed_remote_logins_per_client,
                "failed_remote_logins_per_client",
            ),
            remote_logins_per_ip: limiter(
                config.failed_remote_logins_per_ip,
                "failed_remote_logins_per_ip",
            ),
        }
    }

    /// Before a password check: takes a failure token of the address and of the user. Keep
    /// the reservation when the password is wrong, refund it when it is right (or when the
    /// check did not happen).
    pub fn reserve_login(&self, handle: &str, ip: IpAddr) -> Result<Reservation<'_>> {
        let now = Instant::now();
        self.logins_per_ip
            .reserve(&address_key(ip), now)
            .map_err(|l| limited("failed or unfinished logins from this address", l))?
            .and(&self.logins_per_user, handle, now)
            .map_err(|l| limited("failed or unfinished logins for this user", l))
    }

    /// Before a remote verifier is asked: takes a failure token of the client and of the
    /// address. Keep the reservation when the verifier says no or fails, refund it when it
    /// says yes.
    pub fn reserve_remote_login(&self, client_id: &str, ip: IpAddr) -> Result<Reservation<'_>> {
        let now = Instant::now();
        self.remote_logins_per_ip
            .reserve(&address_key(ip), now)
            .map_err(|l| limited("failed remote logins from this address", l))?
            .and(&self.remote_logins_per_client, client_id, now)
            .map_err(|l| limited("failed remote logins of this client", l))
    }

    /// An upstream login started from `ip`, taken before anything is fetched or stored.
    pub fn upstream_login(&self, ip: IpAddr) -> Result<()> {
        self.upstream_logins_per_ip
            .acquire(&address_key(ip), Instant::now())
            .map_err(|l| limited("upstream logins started from this address", l))
    }

    /// A token request of `client_id`.
    pub fn token_request(&self, client_id: &str) -> Result<()> {
        self.tokens_per_client
            .acquire(client_id, Instant::now())
            .map_err(|l| limited("token requests for this client", l))
    }
}
