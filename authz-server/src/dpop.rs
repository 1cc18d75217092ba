//! DPoP proofs (RFC 9449) as values each step of a request needs from the one before:
//!
//! 1. [`VerifiedProof`]: passed every check of a [`DpopPolicy`], and knows until when that
//!    policy would accept it again;
//! 2. [`FreshProof`]: its `jti` (with its key) joined the replay cache, never seen before, and
//!    stays there for exactly that window ([`remember`]).
//!
//! Tokens are bound to a [`FreshProof`] only; the Wire access token also needs the backend nonce
//! redeemed after the `jti` was remembered ([`crate::devices::nonces`]). This module also holds
//! the server-nonce requirement (RFC 9449 §8, `require_dpop_nonce`) and the token endpoint's
//! proof.

use proto::clock::UnixTime;
use proto::dpop::{DpopCheck, DpopPolicy, NonceCheck, VerifiedDpopProof, verify_dpop_proof};
use proto::dpop_nonce::NonceSource;

use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::{self, Store};

/// A proof that passed every check of a policy.
#[derive(Debug)]
pub struct VerifiedProof {
    proof: VerifiedDpopProof,
    /// The last moment the policy it was verified with accepts it.
    acceptable_until: UnixTime,
}

impl VerifiedProof {
    /// Verifies `raw` under `policy` (see [`verify_dpop_proof`]).
    pub fn verify(
        raw: &str,
        check: &DpopCheck<'_>,
        policy: &DpopPolicy,
        now: UnixTime,
    ) -> proto::Result<Self> {
        let proof = verify_dpop_proof(raw, check, policy, now)?;
        Ok(Self::verified_with(proof, policy))
    }

    /// A proof [`proto::resource::verify_access`] verified at a resource, which it does with
    /// [`DpopPolicy::rfc9449`].
    pub(crate) fn from_resource_access(proof: VerifiedDpopProof) -> Self {
        Self::verified_with(proof, &DpopPolicy::rfc9449())
    }

    /// `policy` accepts a proof while its `iat` is at most `max_age` old and its `exp`, if it
    /// has one, at most `max_skew` past.
    fn verified_with(proof: VerifiedDpopProof, policy: &DpopPolicy) -> Self {
        let claims = proof.claims();
        let by_age = claims.iat.saturating_add(policy.max_age);
        let acceptable_until = claims.exp.map_or(by_age, |exp| {
            by_age.min(exp.saturating_add(policy.max_skew))
        });
        Self {
            proof,
            acceptable_until,
        }
    }

    /// The proof.
    pub fn proof(&self) -> &VerifiedDpopProof {
        &self.proof
    }

    /// The RFC 7638 thumbprint of its key.
    pub fn thumbprint(&self) -> &str {
        self.proof.thumbprint()
    }
}

/// A verified proof whose `jti` this server had not seen with its key, now in the replay cache.
#[derive(Debug)]
pub struct FreshProof(VerifiedProof);

impl FreshProof {
    /// The proof.
    pub fn proof(&self) -> &VerifiedDpopProof {
        self.0.proof()
    }

    /// The RFC 7638 thumbprint of its key: what a token bound to it names in `cnf.jkt`.
    pub fn thumbprint(&self) -> &str {
        self.0.thumbprint()
    }
}

/// A proof once its `jti` was recorded.
#[derive(Debug)]
pub enum Remembered {
    /// Seen for the first time.
    Fresh(FreshProof),
    /// Seen before: a replay.
    Replayed(VerifiedProof),
}

impl Remembered {
    /// The proof.
    pub fn proof(&self) -> &VerifiedDpopProof {
        match self {
            Self::Fresh(fresh) => fresh.proof(),
            Self::Replayed(proof) => proof.proof(),
        }
    }
}

/// Records a proof's `jti` (with its key) in the replay cache for as long as the policy it was
/// verified with accepts it.
pub fn remember(store: &dyn Store, proof: VerifiedProof) -> Result<Remembered> {
    let claims = proof.proof().claims();
    let fresh = store::replay::remember_dpop_jti(
        store,
        proof.thumbprint(),
        &claims.jti,
        proof.acceptable_until,
    )?;
    Ok(if fresh {
        Remembered::Fresh(FreshProof(proof))
    } else {
        Remembered::Replayed(proof)
    })
}

/// Takes a fresh proof's `jti` out of the replay cache again: the proof was refused after all,
/// and leaves the cache as it was.
pub fn forget(store: &dyn Store, proof: FreshProof) -> Result<()> {
    store::replay::forget_dpop_jti(store, proof.thumbprint(), &proof.proof().claims().jti)
}

/// The nonce requirement of proofs at this server's token and resource endpoints.
pub fn nonce_check(server_nonces: Option<&NonceSource>) -> NonceCheck<'static> {
    if server_nonces.is_some() {
        NonceCheck::Present
    } else {
        NonceCheck::NotRequired
    }
}

/// Whether a verified proof's nonce is one of ours (always true when none is required).
pub fn nonce_accepted(
    server_nonces: Option<&NonceSource>,
    proof: &VerifiedDpopProof,
    now: UnixTime,
) -> bool {
    match server_nonces {
        None => true,
        Some(source) => proof.nonce().is_some_and(|n| source.accepts(n, now)),
    }
}

impl Provider {
    /// The server nonces proofs must carry, when `require_dpop_nonce` is set.
    pub fn server_nonces(&self) -> Option<&NonceSource> {
        self.config.require_dpop_nonce.then_some(&self.dpop_nonces)
    }

    /// The DPoP proof of a token request (the one `DPoP` header, `raw`): verified for `POST
    /// /token` under [`DpopPolicy::rfc9449`] with one of our nonces when they are required
    /// (`use_dpop_nonce` otherwise), and fresh.
    pub fn token_endpoint_proof(&self, raw: &str, now: UnixTime) -> Result<FreshProof> {
        let token_url = self.url("/token");
        let server_nonces = self.server_nonces();
        let check = DpopCheck {
            htm: "POST",
            htu: &token_url,
            nonce: nonce_check(server_nonces),
            access_token: None,
            wire: None,
        };
        let proof = VerifiedProof::verify(raw, &check, &DpopPolicy::rfc9449(), now).map_err(
            |e| match e {
                proto::Error::MissingNonce => Error::UseDpopNonce { resource: false },
                other => Error::InvalidDpopProof(other),
            },
        )?;
        if !nonce_accepted(server_nonces, proof.proof(), now) {
            return Err(Error::UseDpopNonce { resource: false });
        }
        match remember(self.store(), proof)? {
            Remembered::Fresh(fresh) => Ok(fresh),
            Remembered::Replayed(_) => {
                Err(Error::InvalidDpopProof(proto::Error::InvalidClaim("jti")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::dpop::DpopClaims;
    use proto::jws::{Algorithm, SigningKey};

    fn verified(claims: &DpopClaims, policy: &DpopPolicy, now: UnixTime) -> VerifiedProof {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let check = DpopCheck {
            htm: "POST",
            htu: "https://as.example/token",
            nonce: NonceCheck::NotRequired,
            access_token: None,
            wire: None,
        };
        VerifiedProof::verify(&claims.sign(&key).unwrap(), &check, policy, now).unwrap()
    }

    /// The replay cache keeps a `jti` exactly as long as the policy the proof was verified with
    /// accepts the proof: the window of a Wire proof is not the one of an RFC 9449 proof.
    #[test]
    fn a_proof_is_remembered_as_long_as_its_own_policy_accepts_it() {
        let now = 1_000_000;
        let mut claims = DpopClaims::new("POST", "https://as.example/token", now);
        let rfc9449 = DpopPolicy::rfc9449();
        assert_eq!(verified(&claims, &rfc9449, now).acceptable_until, now + 300);
        // Backdated by an hour with `exp` an hour ahead, as Wire clients sign: the age limit of
        // the Wire policy ends it first.
        claims.iat = now - 3600;
        claims.exp = Some(now + 3600);
        let wire = DpopPolicy::wire().with_skew(120);
        assert_eq!(verified(&claims, &wire, now).acceptable_until, now + 300);
        // An `exp` that comes first ends it, with the skew the policy allows past `exp`.
        claims.iat = now;
        claims.exp = Some(now + 60);
        assert_eq!(verified(&claims, &wire, now).acceptable_until, now + 180);
        for (policy, proof_ends) in [(&rfc9449, now + 120), (&wire, now + 180)] {
            let proof = verified(&claims, policy, now);
            for moment in [proof_ends, proof_ends + 1] {
                let accepted = verify_dpop_proof(
                    proof.proof().raw(),
                    &DpopCheck {
                        htm: "POST",
                        htu: "https://as.example/token",
                        nonce: NonceCheck::NotRequired,
                        access_token: None,
                        wire: None,
                    },
                    policy,
                    moment,
                )
                .is_ok();
                assert_eq!(accepted, moment <= proof.acceptable_until, "{moment}");
            }
        }
    }
}
