//! Anti-replay nonces (RFC 8555 §6.5, §7.2): issued on every response, each redeemable once.
//!
//! Two services behind the narrow [`NonceService`] trait:
//!
//! - [`MemoryNonces`] (one process, the embedded store): nonces live in memory, bounded in
//!   number and age. Every process start draws a fresh random prefix, so a nonce issued before a
//!   restart is simply unknown afterwards: a nonce is never accepted twice, also across a
//!   restart, and nothing is written per request. Clients retry `badNonce` with the fresh nonce
//!   they got.
//! - [`SharedNonces`] (replicas on one database): a nonce carries its expiry and a MAC under a
//!   secret all replicas share, so any replica recognises it without a lookup, and issuing one
//!   writes nothing; redeeming claims it in the store by compare-and-swap, so it is redeemed
//!   once across all replicas.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use proto::clock::UnixTime;
use proto::secret::{SecretBytes, constant_time_eq};

use crate::error::Result;
use crate::sa::NonceClaims;

/// Issues and redeems nonces.
pub trait NonceService: Send + Sync + std::fmt::Debug {
    /// A fresh nonce.
    fn issue(&self, now: UnixTime) -> String;
    /// Redeems `nonce`: true exactly once per issued, unexpired nonce; an error when that
    /// cannot be known now (the shared store is unavailable).
    fn redeem(&self, nonce: &str, now: UnixTime) -> Result<bool>;
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

    fn redeem(&self, nonce: &str, now: UnixTime) -> Result<bool> {
        if !nonce.starts_with(&self.prefix) {
            return Ok(false);
        }
        // Removed from the map now; its queue entry is dropped when it reaches the front.
        Ok(self
            .lock()
            .expiry
            .remove(nonce)
            .is_some_and(|exp| exp >= now))
    }
}

/// Bytes of a shared nonce: a random id, the expiry, the MAC.
const ID_BYTES: usize = 16;
const MAC_BYTES: usize = 16;

/// The nonce service of replicas sharing one store.
#[derive(Debug)]
pub struct SharedNonces {
    secret: SecretBytes,
    lifetime: i64,
    claims: NonceClaims,
}

impl SharedNonces {
    /// Nonces valid for `lifetime` seconds, MACed with the deployment's shared secret (drawn
    /// now if no replica has drawn one yet).
    pub fn new(claims: NonceClaims, lifetime: i64) -> Result<Self> {
        let secret = claims.secret(proto::random::bytes(32))?;
        Ok(Self {
            secret: SecretBytes::new(secret),
            lifetime,
            claims,
        })
    }

    fn mac(&self, id_and_expiry: &[u8]) -> [u8; MAC_BYTES] {
        let full = proto::eab::hmac_sha256(self.secret.expose(), id_and_expiry);
        let mut mac = [0; MAC_BYTES];
        mac.copy_from_slice(&full[..MAC_BYTES]);
        mac
    }
}

impl NonceService for SharedNonces {
    fn issue(&self, now: UnixTime) -> String {
        let mut raw = proto::random::bytes(ID_BYTES);
        raw.extend_from_slice(&(now + self.lifetime).to_be_bytes());
        let mac = self.mac(&raw);
        raw.extend_from_slice(&mac);
        proto::b64::encode(raw)
    }

    fn redeem(&self, nonce: &str, now: UnixTime) -> Result<bool> {
        let Ok(raw) = proto::b64::decode(nonce, "nonce") else {
            return Ok(false);
        };
        if raw.len() != ID_BYTES + 8 + MAC_BYTES {
            return Ok(false);
        }
        let (signed, mac) = raw.split_at(ID_BYTES + 8);
        if !constant_time_eq(&self.mac(signed), mac) {
            return Ok(false);
        }
        let mut expiry = [0; 8];
        expiry.copy_from_slice(&signed[ID_BYTES..]);
        let expires = i64::from_be_bytes(expiry);
        if expires < now {
            return Ok(false);
        }
        self.claims
            .claim(&proto::b64::encode(&signed[..ID_BYTES]), expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_redeems_once_and_not_after_expiry_or_restart() {
        let nonces = MemoryNonces::new(60, 100);
        let n = nonces.issue(1000);
        assert!(nonces.redeem(&n, 1000).unwrap());
        assert!(!nonces.redeem(&n, 1000).unwrap());
        let old = nonces.issue(1000);
        assert!(!nonces.redeem(&old, 1061).unwrap());
        let before_restart = nonces.issue(1000);
        let restarted = MemoryNonces::new(60, 100);
        assert!(!restarted.redeem(&before_restart, 1000).unwrap());
        assert!(!nonces.redeem("made-up", 1000).unwrap());
    }

    #[test]
    fn outstanding_nonces_are_bounded() {
        let nonces = MemoryNonces::new(60, 3);
        let first = nonces.issue(0);
        let rest: Vec<String> = (0..3).map(|_| nonces.issue(0)).collect();
        assert!(
            !nonces.redeem(&first, 0).unwrap(),
            "the oldest was forgotten"
        );
        for n in &rest {
            assert!(nonces.redeem(n, 0).unwrap());
        }
        assert!(nonces.lock().expiry.len() <= 3);
    }

    fn shared(dir: &std::path::Path) -> (SharedNonces, SharedNonces) {
        let store: std::sync::Arc<dyn server_kit::store::Store> =
            std::sync::Arc::new(server_kit::store::SqliteStore::open(dir).unwrap());
        let sa = crate::sa::StorageAuthority::new(store).unwrap();
        (
            SharedNonces::new(sa.nonce_claims(), 60).unwrap(),
            SharedNonces::new(sa.nonce_claims(), 60).unwrap(),
        )
    }

    #[test]
    fn a_shared_nonce_from_one_replica_redeems_once_at_any_and_not_after_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = shared(dir.path());
        let n = one.issue(1000);
        assert!(
            two.redeem(&n, 1000).unwrap(),
            "issued by one, redeemed at the other"
        );
        assert!(!one.redeem(&n, 1000).unwrap(), "replayed");
        assert!(!two.redeem(&n, 1000).unwrap(), "replayed");
        let old = two.issue(1000);
        assert!(!one.redeem(&old, 1061).unwrap(), "expired");
        assert!(one.redeem(&old, 1060).unwrap());
    }

    #[test]
    fn a_shared_nonce_with_a_changed_byte_or_another_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (one, _) = shared(dir.path());
        let n = one.issue(1000);
        let mut raw = proto::b64::decode(&n, "nonce").unwrap();
        // A later expiry, MAC unchanged.
        raw[ID_BYTES + 7] ^= 1;
        assert!(!one.redeem(&proto::b64::encode(&raw), 1000).unwrap());
        let other = tempfile::tempdir().unwrap();
        let (elsewhere, _) = shared(other.path());
        assert!(
            !elsewhere.redeem(&n, 1000).unwrap(),
            "another deployment's nonce"
        );
        assert!(!one.redeem("made-up", 1000).unwrap());
        assert!(one.redeem(&n, 1000).unwrap());
    }

    #[test]
    fn a_claim_outlives_its_nonce_by_the_sweeps_keep_so_a_slower_clock_still_finds_it() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn server_kit::store::Store> =
            std::sync::Arc::new(server_kit::store::SqliteStore::open(dir.path()).unwrap());
        let sa = crate::sa::StorageAuthority::new(store).unwrap();
        let nonces = SharedNonces::new(sa.nonce_claims(), 60).unwrap();
        let n = nonces.issue(1000);
        assert!(nonces.redeem(&n, 1000).unwrap());
        // A replica whose clock runs 30 s ahead sweeps just after the nonce expired.
        sa.cleanup().sweep(1061, 300).unwrap();
        // One whose clock is 30 s behind still takes the nonce as unexpired: the claim is
        // there, so it is refused.
        assert!(!nonces.redeem(&n, 1059).unwrap(), "replayed after a sweep");
        // Past the keep the claim goes, and the nonce is refused for its age anyway.
        sa.cleanup().sweep(1061 + 300, 300).unwrap();
        assert!(!nonces.redeem(&n, 1061).unwrap());
    }
}
