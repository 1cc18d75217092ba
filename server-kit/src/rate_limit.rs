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
//! Buckets live in memory, per process ([`RateLimiter::new`]): a restart forgets them (an
//! attacker gains one burst per restart). Full buckets carry no information and are dropped when
//! the table grows, so memory is bounded by the keys that are actually limited. Replicas sharing
//! a store keep their buckets in it instead ([`RateLimiter::shared`]), so a limit counts every
//! replica's requests: a bucket is a record (its tokens and when they were counted, in wall-clock
//! milliseconds) changed by compare-and-swap, and [`sweep`] removes the buckets that have filled
//! up again.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::{Store, Tree};

/// The tree of shared buckets (`{limit}/{key}` → bucket).
pub const BUCKETS: Tree = Tree::new("rate_limit_buckets");

/// Compare-and-swap attempts on one shared bucket before a request is refused as limited (only
/// when that many others changed it in between).
const MAX_SWAPS: usize = 256;

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

    fn after(seconds: f64) -> Self {
        Self {
            retry_after_secs: seconds.ceil().max(1.0) as u64,
        }
    }
}

/// Why a request may not go on: over the limit, or the shared buckets could not be read.
#[derive(Debug)]
pub enum Denied {
    /// Over the limit.
    Limited(Limited),
    /// The store holding the shared buckets failed.
    Store(crate::Error),
}

impl From<Limited> for Denied {
    fn from(limited: Limited) -> Self {
        Self::Limited(limited)
    }
}

impl From<crate::Error> for Denied {
    fn from(e: crate::Error) -> Self {
        Self::Store(e)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bucket in the shared store.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct SharedBucket {
    tokens: f64,
    /// When `tokens` was counted (Unix milliseconds).
    at_ms: i64,
    /// When the bucket is full again (Unix milliseconds): the sweep removes it after that.
    full_at_ms: i64,
}

/// Where the buckets are.
#[derive(Debug)]
enum Buckets {
    Memory {
        table: Mutex<HashMap<String, Bucket>>,
        max_keys: usize,
    },
    Shared {
        store: Arc<dyn Store>,
        limit: &'static str,
        /// An instant and the wall-clock time (Unix ms) it was: callers' `Instant`s become
        /// wall-clock time, which replicas share, exactly (tests step `Instant`s); moved to
        /// the wall clock again when that was stepped (NTP) by more than a second.
        anchor: Mutex<(Instant, i64)>,
    },
}

/// Buckets for one kind of limit.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    buckets: Buckets,
}

fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The wall-clock time (Unix ms) of the instant `at`, through `anchor`.
fn wall_ms(anchor: &Mutex<(Instant, i64)>, at: Instant) -> i64 {
    let signed_ms = |from: Instant, to: Instant| -> i64 {
        let ahead = to.saturating_duration_since(from).as_millis();
        let behind = from.saturating_duration_since(to).as_millis();
        i64::try_from(ahead).unwrap_or(0) - i64::try_from(behind).unwrap_or(0)
    };
    let mut anchor = anchor
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (instant, wall) = (Instant::now(), unix_ms_now());
    let projected = anchor.1 + signed_ms(anchor.0, instant);
    if (projected - wall).abs() > 1000 {
        *anchor = (instant, wall);
    }
    anchor.1 + signed_ms(anchor.0, at)
}

impl RateLimiter {
    /// Buckets of `rate` in this process's memory; the table is pruned of full buckets when it
    /// exceeds `max_keys`.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self {
            rate,
            buckets: Buckets::Memory {
                table: Mutex::default(),
                max_keys: max_keys.max(1),
            },
        }
    }

    /// Buckets of `rate` in `store`, shared by every process using it, under the name `limit`
    /// (unique among the limits of one server).
    pub fn shared(rate: Rate, store: Arc<dyn Store>, limit: &'static str) -> Self {
        Self {
            rate,
            buckets: Buckets::Shared {
                store,
                limit,
                anchor: Mutex::new((Instant::now(), unix_ms_now())),
            },
        }
    }

    /// Takes a token for `key`, or says how long to wait.
    pub fn acquire(&self, key: &str, now: Instant) -> Result<(), Denied> {
        self.take(key, now, true)
    }

    /// Takes a token for `key` for an attempt whose outcome decides whether it counts: keep
    /// the [`Reservation`] (drop it) when it does, [`Reservation::refund`] it when it does not.
    pub fn reserve(&self, key: &str, now: Instant) -> Result<Reservation<'_>, Denied> {
        self.take(key, now, true)?;
        Ok(Reservation {
            taken: vec![(self, key.to_owned(), now)],
        })
    }

    /// Gives a token back to `key`'s bucket (never beyond `burst`).
    fn give_back(&self, key: &str, now: Instant) {
        if self.rate.per_minute == 0 {
            return;
        }
        let burst = f64::from(self.rate.burst.max(1));
        match &self.buckets {
            Buckets::Memory { table, .. } => {
                if let Ok(mut buckets) = table.lock()
                    && let Some(bucket) = buckets.get_mut(key)
                {
                    bucket.tokens = (bucket.tokens + 1.0).min(burst);
                }
            }
            Buckets::Shared { .. } => {
                if let Err(e) =
                    self.change_shared(key, now, |tokens| Some((tokens + 1.0).min(burst)))
                {
                    tracing::warn!(error = ?e, "a rate-limit token could not be given back");
                }
            }
        }
    }

    /// Reads the shared bucket of `key` as it is at `now`, and writes what `change` makes of
    /// its tokens (nothing when it says `None`); again when another process changed it
    /// meanwhile. Returns the tokens it found and whether it wrote.
    fn change_shared(
        &self,
        key: &str,
        now: Instant,
        change: impl Fn(f64) -> Option<f64>,
    ) -> Result<(f64, bool), Denied> {
        let Buckets::Shared {
            store,
            limit,
            anchor,
        } = &self.buckets
        else {
            return Err(Denied::Store(crate::Error::Storage("not shared".into())));
        };
        let burst = f64::from(self.rate.burst.max(1));
        let per_token_ms = self.rate.seconds_per_token() * 1000.0;
        let now_ms = wall_ms(anchor, now);
        let record = format!("{limit}/{key}");
        let store = store.as_ref();
        for _ in 0..MAX_SWAPS {
            let current = store.get_versioned::<SharedBucket>(BUCKETS, &record)?;
            // A bucket counted by a replica whose clock ran ahead counts as counted now.
            let tokens = current.as_ref().map_or(burst, |b| {
                let elapsed = (now_ms - b.value.at_ms.min(now_ms)) as f64;
                (b.value.tokens + elapsed / per_token_ms).min(burst)
            });
            let ahead_of_us = current.as_ref().is_some_and(|b| b.value.at_ms > now_ms);
            let Some(left) = change(tokens).or(ahead_of_us.then_some(tokens)) else {
                return Ok((tokens, false));
            };
            // (A bucket stamped ahead of this clock is stamped again now, unchanged, so that
            // it refills from now on.)
            let at_ms = now_ms;
            let next = SharedBucket {
                tokens: left,
                at_ms,
                full_at_ms: at_ms + ((burst - left).max(0.0) * per_token_ms).ceil() as i64,
            };
            let written = match &current {
                Some(read) => store.replace_json(BUCKETS, &record, read, &next)?,
                None => store.insert_new_json(BUCKETS, &record, &next)?,
            };
            if written {
                return Ok((tokens, !ahead_of_us || change(tokens).is_some()));
            }
        }
        // Changed by others every time: as busy as a limited key.
        Err(Limited {
            retry_after_secs: 1,
        }
        .into())
    }

    fn take(&self, key: &str, now: Instant, consume: bool) -> Result<(), Denied> {
        // (consume = false is only used by tests, to look at a bucket.)
        if self.rate.per_minute == 0 {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst.max(1));
        let per_token = self.rate.seconds_per_token();
        let (table, max_keys) = match &self.buckets {
            Buckets::Memory { table, max_keys } => (table, *max_keys),
            Buckets::Shared { .. } => {
                let (tokens, _) = self.change_shared(key, now, |tokens| {
                    (consume && tokens >= 1.0).then_some(tokens - 1.0)
                })?;
                return if tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(Limited::after((1.0 - tokens) * per_token).into())
                };
            }
        };
        let Ok(mut buckets) = table.lock() else {
            // A poisoned table fails closed for this request only.
            return Err(Limited {
                retry_after_secs: 1,
            }
            .into());
        };
        if buckets.len() >= max_keys && !buckets.contains_key(key) {
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
            Err(Limited::after((1.0 - bucket.tokens) * per_token).into())
        }
    }

    /// Whether `key` has a token, without taking it (tests look at buckets with it).
    #[cfg(test)]
    fn peek(&self, key: &str, now: Instant) -> Result<(), Denied> {
        self.take(key, now, false)
    }

    /// Keys currently tracked in memory (none for shared buckets).
    pub fn tracked(&self) -> usize {
        match &self.buckets {
            Buckets::Memory { table, .. } => table.lock().map_or(0, |b| b.len()),
            Buckets::Shared { .. } => 0,
        }
    }
}

/// Removes the shared buckets that are full again at `now_unix_secs` (a full bucket is what a
/// missing one means); each removal a compare-and-swap, so a bucket taken from meanwhile stays.
pub fn sweep(store: &dyn Store, now_unix_secs: i64) -> crate::Result<usize> {
    let now_ms = now_unix_secs.saturating_mul(1000);
    let removed = crate::cleanup::remove_where(store, BUCKETS, |_, value| {
        serde_json::from_slice::<SharedBucket>(value).is_ok_and(|b| b.full_at_ms < now_ms)
    })?;
    Ok(removed.len())
}

/// Tokens taken from one or more buckets for one attempt (see [`RateLimiter::reserve`]).
/// Dropped, the tokens stay taken: the attempt counted.
#[derive(Debug)]
#[must_use = "a reservation is kept by dropping it or given back with refund()"]
pub struct Reservation<'a> {
    taken: Vec<(&'a RateLimiter, String, Instant)>,
}

impl<'a> Reservation<'a> {
    /// Also takes a token of `limiter` for `key`; when that bucket is empty, the tokens taken
    /// so far are given back and the attempt is refused (all or nothing).
    pub fn and(
        mut self,
        limiter: &'a RateLimiter,
        key: &str,
        now: Instant,
    ) -> Result<Self, Denied> {
        match limiter.take(key, now, true) {
            Ok(()) => {
                self.taken.push((limiter, key.to_owned(), now));
                Ok(self)
            }
            Err(denied) => {
                self.refund();
                Err(denied)
            }
        }
    }

    /// The attempt did not count: every token goes back.
    pub fn refund(self) {
        for (limiter, key, taken_at) in &self.taken {
            limiter.give_back(key, *taken_at);
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

    /// The limiter of `rate` twice: in memory, and shared through a store (as `name`).
    fn both(rate: Rate, name: &'static str, dir: &std::path::Path) -> Vec<RateLimiter> {
        let store: Arc<dyn Store> =
            Arc::new(crate::store::SledStore::open(&dir.join(name)).unwrap());
        vec![
            RateLimiter::new(rate, 100),
            RateLimiter::shared(rate, store, name),
        ]
    }

    fn limited<T: std::fmt::Debug>(result: Result<T, Denied>) -> Limited {
        match result {
            Err(Denied::Limited(limited)) => limited,
            other => panic!("not limited: {other:?}"),
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_refills() {
        let dir = tempfile::tempdir().unwrap();
        for limiter in both(Rate::new(6, 3), "burst", dir.path()) {
            let t0 = Instant::now();
            for _ in 0..3 {
                limiter.acquire("ip", t0).unwrap();
            }
            let refused = limited(limiter.acquire("ip", t0));
            assert_eq!(refused.retry_after_secs, 10, "6 per minute = one per 10 s");
            // Another key has its own bucket.
            limiter.acquire("other", t0).unwrap();
            // After 5 s half a token: still refused, 5 s to go.
            let refused = limited(limiter.acquire("ip", t0 + Duration::from_secs(5)));
            assert_eq!(refused.retry_after_secs, 5);
            limiter.acquire("ip", t0 + Duration::from_secs(10)).unwrap();
            limited(limiter.acquire("ip", t0 + Duration::from_secs(10)));
            // Never more than the burst, however long the wait.
            let later = t0 + Duration::from_secs(3600);
            for _ in 0..3 {
                limiter.acquire("ip", later).unwrap();
            }
            limited(limiter.acquire("ip", later));
        }
    }

    #[test]
    fn reservations_take_before_the_work_and_refunds_give_back() {
        let dir = tempfile::tempdir().unwrap();
        for limiter in both(Rate::new(1, 3), "reserve", dir.path()) {
            let t0 = Instant::now();
            // Three attempts in flight at once take the whole burst; the fourth is refused
            // before any of them has finished.
            let held: Vec<_> = (0..3)
                .map(|_| limiter.reserve("user", t0).unwrap())
                .collect();
            assert_eq!(limited(limiter.reserve("user", t0)).retry_after_secs, 60);
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
            limited(limiter.reserve("bob", t1));
        }
        let open = RateLimiter::new(Rate::UNLIMITED, 100);
        let t0 = Instant::now();
        for _ in 0..1000 {
            drop(open.reserve("x", t0).unwrap());
        }
        assert_eq!(open.tracked(), 0);
    }

    #[test]
    fn a_reservation_over_two_limits_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let pairs = both(Rate::new(1, 5), "per_ip", dir.path())
            .into_iter()
            .zip(both(Rate::new(1, 1), "per_user", dir.path()));
        for (per_ip, per_user) in pairs {
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
                limited(refused);
            }
            for _ in 0..4 {
                drop(per_ip.reserve("ip", t0).unwrap());
            }
            limited(per_ip.reserve("ip", t0));
        }
    }

    #[test]
    fn a_hundred_simultaneous_requests_over_three_shared_limiters_pass_burst_times() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(crate::store::SledStore::open(dir.path()).unwrap());
        let replicas: Vec<Arc<RateLimiter>> = (0..3)
            .map(|_| {
                Arc::new(RateLimiter::shared(
                    Rate::new(1, 10),
                    store.clone(),
                    "racing",
                ))
            })
            .collect();
        let start = Arc::new(std::sync::Barrier::new(100));
        let racers: Vec<_> = (0..100)
            .map(|i| {
                let (limiter, start) = (replicas[i % 3].clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    limiter.acquire("client", Instant::now()).is_ok()
                })
            })
            .collect();
        let passed = racers
            .into_iter()
            .map(|r| r.join().unwrap())
            .filter(|passed| *passed)
            .count();
        assert_eq!(passed, 10);
        // Refilled buckets are swept; one in use is not.
        assert_eq!(sweep(store.as_ref(), 0).unwrap(), 0);
        let far = (unix_ms_now() / 1000) + 3600;
        assert_eq!(sweep(store.as_ref(), far).unwrap(), 1);
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

    #[test]
    fn a_shared_bucket_counted_by_a_clock_far_ahead_still_refills() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(crate::store::SledStore::open(dir.path()).unwrap());
        let limiter = RateLimiter::shared(Rate::new(60, 1), store.clone(), "skewed");
        // Emptied by a replica whose clock was an hour ahead.
        let ahead = SharedBucket {
            tokens: 0.0,
            at_ms: unix_ms_now() + 3_600_000,
            full_at_ms: unix_ms_now() + 3_601_000,
        };
        store.put_json(BUCKETS, "skewed/ip", &ahead).unwrap();
        let t0 = Instant::now();
        limited(limiter.acquire("ip", t0));
        // One token a second: here one second later, not an hour.
        limiter
            .acquire("ip", t0 + Duration::from_millis(1100))
            .unwrap();
    }
}
