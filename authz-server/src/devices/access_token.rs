//! The Wire access token (`POST /clients/{device}/access-token`, DESIGN §4 step 5): a device's
//! DPoP proof — carrying the Wire claims of the device's identity, signed with its ACME account
//! key — exchanged for the DPoP access token the ACME server checks at `wire-dpop-01`
//! ([`proto::access_token`]). Each step needs the proof value of the one before: the proof is
//! verified under the Wire policy ([`VerifiedProof`]), its `jti` remembered
//! ([`crate::dpop::Remembered`]), its backend nonce redeemed ([`RedeemedNonce`]), and only a
//! [`FreshProof`] with a [`RedeemedNonce`] gets a token ([`WireTokenIssuer`]). Nothing is
//! issued on failure, and a proof refused for its nonce leaves the replay cache as it was.

use proto::access_token::{AccessTokenParams, IssuedAccessToken, issue_access_token};
use proto::clock::UnixTime;
use proto::dpop::{DpopCheck, DpopPolicy, NonceCheck, WireExpectations, single_dpop_header};
use proto::jws::SigningKey;
use serde_json::json;

use super::Device;
use super::nonces::{self, RedeemedNonce};
use crate::dpop::{self, FreshProof, Remembered, VerifiedProof};
use crate::error::{Error, Result};
use crate::provider::Provider;
use crate::store::Store;
use crate::store::users::User;
use crate::tokens::resource::AuthenticatedUser;

/// Signs Wire access tokens, for a proof whose `jti` was fresh and whose backend nonce was
/// redeemed: the only way this server calls [`issue_access_token`].
#[derive(Debug)]
pub struct WireTokenIssuer<'a> {
    key: &'a SigningKey,
    /// `iss`: the access-token URL the proof was sent to.
    url: &'a str,
    lifetime: i64,
}

impl WireTokenIssuer<'_> {
    /// The access token for `proof`; the redeemed nonce is used up.
    pub fn issue(
        &self,
        proof: &FreshProof,
        _nonce: RedeemedNonce,
        now: UnixTime,
    ) -> Result<IssuedAccessToken> {
        let params = AccessTokenParams {
            issuer: self.url,
            lifetime: self.lifetime,
            now,
        };
        Ok(issue_access_token(self.key, proof.proof(), &params)?)
    }
}

impl Provider {
    /// The Wire policy for device proofs: `clock_skew` of tolerance and an `exp` at most
    /// `lifetimes.max_proof_exp` ahead.
    fn wire_proof_policy(&self) -> DpopPolicy {
        let mut policy = DpopPolicy::wire().with_skew(self.config.clock_skew);
        policy.max_exp_ahead = Some(self.config.lifetimes.max_proof_exp);
        policy
    }

    /// Exchanges the proof in the `DPoP` headers `dpop` for a Wire access token of the caller's
    /// device `device_id`.
    pub fn wire_access_token(
        &self,
        caller: &AuthenticatedUser,
        device_id: &str,
        dpop: &[&[u8]],
    ) -> Result<IssuedAccessToken> {
        let store = self.store();
        let now = self.now();
        let user = &caller.user;
        let device = super::owned(store, user, device_id)?;
        let url = self.url(&format!("/clients/{}/access-token", device.id));
        let proof = self.verify_device_proof(caller, &device, &url, dpop, now)?;
        let (proof, nonce) = remember_and_redeem(store, proof, user, &device, now)?;
        // A deletion that raced this request removed the device after it was looked up:
        // nothing is issued for a device that no longer exists.
        super::owned(store, user, device_id)?;
        let key = self.signing_key();
        let issuer = WireTokenIssuer {
            key: &key,
            url: &url,
            lifetime: self.config.lifetimes.client_access_token,
        };
        let issued = issuer.issue(&proof, nonce, now)?;
        tracing::info!(user = %user.id, device = %device.id, jti = %issued.jti, "client access token issued");
        self.audit.record(
            now,
            "token.issued",
            json!({"grant": "wire-client", "user": user.id, "device": device.id,
                   "jti": issued.jti, "jkt": proof.thumbprint()}),
        );
        Ok(issued)
    }

    /// The one proof in the `DPoP` headers `dpop`, verified under the Wire policy: for `POST`
    /// at the device's access-token `url` with a nonce, carrying the device's Wire identity,
    /// signed with the key the caller's access token is bound to (if it is), naming an `aud`
    /// URL.
    fn verify_device_proof(
        &self,
        caller: &AuthenticatedUser,
        device: &Device,
        url: &str,
        dpop: &[&[u8]],
        now: UnixTime,
    ) -> Result<VerifiedProof> {
        let identity = crate::identity::wire_identity(&caller.user, device)?;
        let raw = single_dpop_header(dpop.iter().copied()).map_err(Error::WireProof)?;
        let check = DpopCheck {
            htm: "POST",
            htu: url,
            nonce: NonceCheck::Present,
            access_token: None,
            wire: Some(WireExpectations {
                identity: &identity,
                challenge: None,
                audience: None,
            }),
        };
        let proof = VerifiedProof::verify(raw, &check, &self.wire_proof_policy(), now)
            .map_err(Error::WireProof)?;
        if let Some(jkt) = &caller.jkt
            && jkt != proof.thumbprint()
        {
            return Err(Error::WireProof(proto::Error::ProofKeyMismatch));
        }
        let aud = proof
            .proof()
            .wire()
            .map(|w| w.aud.as_str())
            .unwrap_or_default();
        if url::Url::parse(aud).is_err() {
            return Err(Error::WireProof(proto::Error::InvalidUri("aud")));
        }
        Ok(proof)
    }
}

/// Remembers the proof's `jti` and redeems its backend nonce for `device`, the redemption's
/// flush making both durable. A replayed proof fails on its spent nonce; a re-signed one with
/// a fresh nonce on its `jti` (the nonce is spent all the same). A proof refused for its nonce
/// takes its `jti` back out of the replay cache.
fn remember_and_redeem(
    store: &dyn Store,
    proof: VerifiedProof,
    user: &User,
    device: &Device,
    now: UnixTime,
) -> Result<(FreshProof, RedeemedNonce)> {
    let remembered = dpop::remember(store, proof)?;
    let nonce = match nonces::redeem(store, &remembered, user, device, now) {
        Ok(nonce) => nonce,
        Err(refused) => {
            if let Remembered::Fresh(fresh) = remembered {
                dpop::forget(store, fresh)?;
            }
            return Err(refused);
        }
    };
    match remembered {
        Remembered::Fresh(proof) => Ok((proof, nonce)),
        Remembered::Replayed(_) => Err(Error::WireProof(proto::Error::InvalidClaim("jti"))),
    }
}
