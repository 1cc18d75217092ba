//! Anti-replay nonces (RFC 8555 §6.5, §7.2): issued on every response, each redeemable once.
//!
//! Nonces live in memory behind the narrow [`NonceService`] trait, bounded in number and age.
//! Every process start draws a fresh random prefix, so a nonce issued before a restart is simply
//! unknown afterwards: a nonce is never accepted twice, also across a restart, and nothing has
//! to be written to disk per request. Clients retry `badNonce` with the fresh nonce they got.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use proto::clock::UnixTime;

/// Issues and redeems nonces.
pub trait NonceService: Send + Sync + std::fmt::Debug {
    /// A fresh nonce.
    fn issue(&self, now: UnixTime) -> String;
    /// Redeems `nonce`: true exactly once per issued, unexpired nonce.
    fn redeem(&self, nonce: &str, now: UnixTime) -> bool;
}

/// The in-memory nonce service.
#[derive(Debug)]
pub struct MemoryNonces {
    prefix: String,
    lifetime: i64,
    capacity: usize,
    outstanding: Mutex<Outstanding>,
}

#[derive(Debug, Default)]
struct Outstanding {
    expiry: HashMap<String, UnixTime>,
    // Issue order, which is also expiry order (one lifetime for all).
    queue: VecDeque<String>,
}

impl MemoryNonces {
    /// Nonces valid for `lifetime` seconds, at most `capacity` outstanding (the oldest are
    /// forgotten first).
    pub fn new(lifetime: i64, capacity: usize) -> Self {
        Self {
            prefix: proto::random::token(48),
            lifetime,
            capacity: capacity.max(1),
            outstanding: Mutex::new(Outstanding::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Outstanding> {
        // A panic while holding the lock cannot leave the map inconsistent in a way that
        // matters (at worst a nonce is forgotten), so a poisoned lock is used as is.
        self.outstanding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl NonceService for MemoryNonces {
    fn issue(&self, now: UnixTime) -> String {
        let nonce = format!("{}{}", self.prefix, proto::random::token(128));
        let mut o = self.lock();
        while let Some(oldest) = o.queue.front().cloned() {
            let expired = o.expiry.get(&oldest).is_none_or(|exp| *exp < now);
            if expired || o.queue.len() >= self.capacity {
                o.queue.pop_front();
                o.expiry.remove(&oldest);
            } else {
                break;
            }
        }
        o.expiry.insert(nonce.clone(), now + self.lifetime);
        o.queue.push_back(nonce.clone());
        nonce
    }

    fn redeem(&self, nonce: &str, now: UnixTime) -> bool {
        if !nonce.starts_with(&self.prefix) {
            return false;
        }
        // Removed from the map now; its queue entry is dropped when it reaches the front.
        self.lock()
            .expiry
            .remove(nonce)
            .is_some_and(|exp| exp >= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_redeems_once_and_not_after_expiry_or_restart() {
        let nonces = MemoryNonces::new(60, 100);
        let n = nonces.issue(1000);
        assert!(nonces.redeem(&n, 1000));
        assert!(!nonces.redeem(&n, 1000));
        let old = nonces.issue(1000);
        assert!(!nonces.redeem(&old, 1061));
        let before_restart = nonces.issue(1000);
        let restarted = MemoryNonces::new(60, 100);
        assert!(!restarted.redeem(&before_restart, 1000));
        assert!(!nonces.redeem("made-up", 1000));
    }

    #[test]
    fn outstanding_nonces_are_bounded() {
        let nonces = MemoryNonces::new(60, 3);
        let first = nonces.issue(0);
        let rest: Vec<String> = (0..3).map(|_| nonces.issue(0)).collect();
        assert!(!nonces.redeem(&first, 0), "the oldest was forgotten");
        for n in &rest {
            assert!(nonces.redeem(n, 0));
        }
        assert!(nonces.lock().expiry.len() <= 3);
    }
}
