//! Server-issued DPoP nonces (RFC 9449 §8, §9) without server state: a nonce names a 5-minute
//! time bucket and carries an HMAC of it under a secret drawn at start-up, so the current and
//! the previous bucket's nonces are accepted and nothing is stored. A restart changes the
//! secret; clients then get `use_dpop_nonce` once and retry with the fresh nonce. Replicas
//! sharing a database share the secret instead ([`NonceSource::with_secret`]).

use crate::clock::UnixTime;
use crate::secret::{SecretBytes, constant_time_eq};
use crate::{b64, eab::hmac_sha256};

/// Width of a nonce's time bucket, in seconds.
pub const BUCKET_SECONDS: i64 = 300;

/// Issues and checks nonces.
#[derive(Debug, Clone)]
pub struct NonceSource {
    secret: SecretBytes,
}

impl Default for NonceSource {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceSource {
    /// A source with a fresh random secret.
    pub fn new() -> Self {
        Self {
            secret: SecretBytes::new(crate::random::bytes(32)),
        }
    }

    /// A source whose secret is given: replicas of one deployment share it, so each accepts
    /// the others' nonces.
    pub fn with_secret(secret: SecretBytes) -> Self {
        Self { secret }
    }

    fn mac(&self, bucket: i64) -> Vec<u8> {
        hmac_sha256(self.secret.expose(), &bucket.to_be_bytes())[..16].to_vec()
    }

    /// The nonce for `now`.
    pub fn issue(&self, now: UnixTime) -> String {
        let bucket = now.div_euclid(BUCKET_SECONDS);
        let mut raw = bucket.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.mac(bucket));
        b64::encode(raw)
    }

    /// Whether `nonce` was issued by this source in the current or the previous bucket.
    pub fn accepts(&self, nonce: &str, now: UnixTime) -> bool {
        let Ok(raw) = b64::decode(nonce, "nonce") else {
            return false;
        };
        if raw.len() != 24 {
            return false;
        }
        let mut bucket_bytes = [0u8; 8];
        bucket_bytes.copy_from_slice(&raw[..8]);
        let bucket = i64::from_be_bytes(bucket_bytes);
        let current = now.div_euclid(BUCKET_SECONDS);
        (bucket == current || bucket == current - 1)
            && constant_time_eq(&self.mac(bucket), &raw[8..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_live_two_buckets_and_belong_to_their_source() {
        let source = NonceSource::new();
        let nonce = source.issue(1_000_000);
        assert!(source.accepts(&nonce, 1_000_000));
        assert!(source.accepts(&nonce, 1_000_000 + BUCKET_SECONDS));
        assert!(!source.accepts(&nonce, 1_000_000 + 2 * BUCKET_SECONDS));
        assert!(
            !NonceSource::new().accepts(&nonce, 1_000_000),
            "another secret"
        );
        assert!(!source.accepts("junk", 1_000_000));
        let mut forged = b64::decode(&nonce, "n").unwrap();
        forged[7] ^= 1;
        assert!(!source.accepts(&b64::encode(forged), 1_000_000));
    }
}
