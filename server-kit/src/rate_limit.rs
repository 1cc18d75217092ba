//! Token-bucket rate limits keyed by who is asking (an IP address, an account, a user, a client).
//! Each key has a bucket of `burst` tokens refilled at `per_minute`; an empty bucket refuses with
//! the time until the next token, which the servers send as `Retry-After` with their own `429`
//! error (`rateLimited` problem, OAuth `slow_down`-style JSON). Time is passed in, so tests step it.
//!
//! A limit on *failures* (failed logins, failed validations) is never checked and then counted:
//! concurrent attempts would all pass the check before the first failure is counted. The attempt
//! [`RateLimiter::reserve`]s its token before the expensive work and gives it back with
//! [`Reservation::refund`] when the attempt turns out not to be a failure, so at most `burst`
//! attempts can be in the work at once, however many arrive together.
//!
//! Limits per address key the address by [`address_key`]: an IPv6 client is counted by its /64
//! (one subscriber's network, which hands its hosts any number of addresses), an IPv4 client —
//! also one written as an IPv4-mapped IPv6 address — by its address.
//!
//! Buckets live in memory, per process: a restart forgets them (an attacker gains one burst per
//! restart), and several instances each keep their own. Full buckets carry no information and are
//! dropped when the table grows, so memory is bounded by the keys that are actually limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::Deserialize;

/// A limit: `burst` requests at once, refilled at `per_minute`. `per_minute = 0` disables it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per minute (0: unlimited).
    pub per_minute: u32,
    /// Bucket size.
    pub burst: u32,
}

impl Rate {
    /// `burst` at once, `per_minute` sustained.
    pub const fn new(per_minute: u32, burst: u32) -> Self {
        Self { per_minute, burst }
    }

    /// No limit.
    pub const UNLIMITED: Self = Self::new(0, 0);

    fn seconds_per_token(self) -> f64 {
        60.0 / f64::from(self.per_minute)
    }
}

/// The request must wait this long (the `Retry-After`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// Time until a token is available, rounded up to whole seconds (at least 1).
    pub retry_after_secs: u64,
}

impl Limited {
    /// The explanation sent to the client: "too many {what}; retry after N s".
    pub fn explain(self, what: &str) -> String {
        format!("too many {what}; retry after {} s", self.retry_after_secs)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets for one kind of limit.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, Bucket>>,
    max_keys: usize,
}

impl RateLimiter {
    /// Buckets of `rate`; the table is pruned of full buckets when it exceeds `max_keys`.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            buckets: Mutex::default(),
            max_keys: max_keys.max(1),
        }
    }

    /// Takes a token for `key`, or says how long to wait.
    pub fn acquire(&self, key: &str, now: Instant) -> Result<(), Limited> {
        self.take(key, now, true)
    }

    /// Takes a token for `key` for an attempt whose outcome decides whether it counts: keep
    /// the [`Reservation`] (drop it) when it does, [`Reservation::refund`] it when it does not.
    pub fn reserve(&self, key: &str, now: Instant) -> Result<Reservation<'_>, Limited> {
        self.take(key, now, true)?;
        Ok(Reservation {
            taken: vec![(self, key.to_owned())],
        })
    }

    /// Gives a token back to `key`'s bucket (never beyond `burst`).
    fn give_back(&self, key: &str) {
        if self.rate.per_minute == 0 {
            return;
        }
        let burst = f64::from(self.rate.burst.max(1));
        if let Ok(mut buckets) = self.buckets.lock()
            && let Some(bucket) = buckets.get_mut(key)
        {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }

    fn take(&self, key: &str, now: Instant, consume: bool) -> Result<(), Limited> {
        // (consume = false is only used by tests, to look at a bucket.)
        if self.rate.per_minute == 0 {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst.max(1));
        let per_token = self.rate.seconds_per_token();
        let Ok(mut buckets) = self.buckets.lock() else {
            // A poisoned table fails closed for this request only.
            return Err(Limited {
                retry_after_secs: 1,
            });
        };
        if buckets.len() >= self.max_keys && !buckets.contains_key(key) {
            buckets.retain(|_, b| {
                let refilled =
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() / per_token;
                refilled < burst
            });
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed / per_token).min(burst);
        bucket.at = now.max(bucket.at);
        if bucket.tokens >= 1.0 {
            if consume {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) * per_token;
            Err(Limited {
                retry_after_secs: wait.ceil().max(1.0) as u64,
            })
        }
    }

    /// Whether `key` has a token, without taking it (tests look at buckets with it).
    #[cfg(test)]
    fn peek(&self, key: &str, now: Instant) -> Result<(), Limited> {
        self.take(key, now, false)
    }

    /// Keys currently tracked.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }
}

/// Tokens taken from one or more buckets for one attempt (see [`RateLimiter::reserve`]).
/// Dropped, the tokens stay taken: the attempt counted.
#[derive(Debug)]
#[must_use = "a reservation is kept by dropping it or given back with refund()"]
pub struct Reservation<'a> {
    taken: Vec<(&'a RateLimiter, String)>,
}

impl<'a> Reservation<'a> {
    /// Also takes a token of `limiter` for `key`; when that bucket is empty, the tokens taken
    /// so far are given back and the attempt is refused (all or nothing).
    pub fn and(
        mut self,
        limiter: &'a RateLimiter,
        key: &str,
        now: Instant,
    ) -> Result<Self, Limited> {
        match limiter.take(key, now, true) {
            Ok(()) => {
                self.taken.push((limiter, key.to_owned()));
                Ok(self)
            }
            Err(limited) => {
                self.refund();
                Err(limited)
            }
        }
    }

    /// The attempt did not count: every token goes back.
    pub fn refund(self) {
        for (limiter, key) in &self.taken {
            limiter.give_back(key);
        }
    }
}

/// The key a limit per address counts `ip` under: the address for IPv4 (and IPv4-mapped IPv6),
/// the /64 network for IPv6 (`2001:db8:1:2::/64`), so a client cannot step around a limit by
/// moving through the addresses of its own network.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let network = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{network}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:1:2:3"), key("2001:db8:1:2::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("::1"), "::/64");
    }

    #[test]
    fn a_burst_passes_then_the_rate_refills() {
        let limiter = RateLimiter::new(Rate::new(6, 3), 100);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.acquire("ip", t0).unwrap();
        }
        let refused = limiter.acquire("ip", t0).unwrap_err();
        assert_eq!(refused.retry_after_secs, 10, "6 per minute = one per 10 s");
        // Another key has its own bucket.
        limiter.acquire("other", t0).unwrap();
        // After 5 s half a token: still refused, 5 s to go.
        let refused = limiter
            .acquire("ip", t0 + Duration::from_secs(5))
            .unwrap_err();
        assert_eq!(refused.retry_after_secs, 5);
        limiter.acquire("ip", t0 + Duration::from_secs(10)).unwrap();
        assert!(limiter.acquire("ip", t0 + Duration::from_secs(10)).is_err());
        // Never more than the burst, however long the wait.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            limiter.acquire("ip", later).unwrap();
        }
        assert!(limiter.acquire("ip", later).is_err());
    }

    #[test]
    fn reservations_take_before_the_work_and_refunds_give_back() {
        let limiter = RateLimiter::new(Rate::new(1, 3), 100);
        let t0 = Instant::now();
        // Three attempts in flight at once take the whole burst; the fourth is refused before
        // any of them has finished.
        let held: Vec<_> = (0..3)
            .map(|_| limiter.reserve("user", t0).unwrap())
            .collect();
        assert_eq!(
            limiter.reserve("user", t0).unwrap_err().retry_after_secs,
            60
        );
        // Two turn out fine and give their tokens back; one failed and keeps its token.
        let mut held = held.into_iter();
        held.next().unwrap().refund();
        held.next().unwrap().refund();
        drop(held);
        limiter.reserve("user", t0).unwrap().refund();
        limiter.peek("user", t0).unwrap();
        // A refund after the bucket refilled meanwhile never overfills it.
        let late = limiter.reserve("bob", t0).unwrap();
        let t1 = t0 + std::time::Duration::from_secs(120);
        limiter.peek("bob", t1).unwrap();
        late.refund();
        for _ in 0..3 {
            drop(limiter.reserve("bob", t1).unwrap());
        }
        assert!(limiter.reserve("bob", t1).is_err());

        let open = RateLimiter::new(Rate::UNLIMITED, 100);
        for _ in 0..1000 {
            drop(open.reserve("x", t0).unwrap());
        }
        assert_eq!(open.tracked(), 0);
    }

    #[test]
    fn a_reservation_over_two_limits_is_all_or_nothing() {
        let per_ip = RateLimiter::new(Rate::new(1, 5), 100);
        let per_user = RateLimiter::new(Rate::new(1, 1), 100);
        let t0 = Instant::now();
        drop(
            per_ip
                .reserve("ip", t0)
                .unwrap()
                .and(&per_user, "alice", t0)
                .unwrap(),
        );
        // Alice's bucket is empty: the IP's token taken for this attempt goes back.
        for _ in 0..10 {
            let refused = per_ip
                .reserve("ip", t0)
                .unwrap()
                .and(&per_user, "alice", t0);
            assert!(refused.is_err());
        }
        for _ in 0..4 {
            drop(per_ip.reserve("ip", t0).unwrap());
        }
        assert!(per_ip.reserve("ip", t0).is_err());
    }

    #[test]
    fn full_buckets_are_pruned_when_the_table_is_full() {
        let limiter = RateLimiter::new(Rate::new(60, 2), 10);
        let t0 = Instant::now();
        for i in 0..10 {
            limiter.acquire(&format!("k{i}"), t0).unwrap();
        }
        assert_eq!(limiter.tracked(), 10);
        // One minute later every bucket is full again: the next new key prunes them all.
        limiter
            .acquire("new", t0 + Duration::from_secs(60))
            .unwrap();
        assert_eq!(limiter.tracked(), 1);
    }
}
