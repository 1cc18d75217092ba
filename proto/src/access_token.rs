//! The Wire DPoP access token (`at+jwt`) that the backend issues from a verified proof and that
//! the ACME server accepts as the answer to a `wire-dpop-01` challenge (DESIGN §4 steps 5–6).
//!
//! The token is bound to the proof key twice, as Wire and RFC 9449 each expect it: `cnf.kid`
//! (Wire) and `cnf.jkt` (RFC 9449 §6.1) both carry the key's RFC 7638 thumbprint. The proof is
//! embedded verbatim in `proof` and re-verified by the ACME server against the account key.

use serde_json::{Value, json};

use crate::clock::UnixTime;
use crate::dpop::{
    DpopCheck, DpopPolicy, NonceCheck, VerifiedDpopProof, WireExpectations, verify_dpop_proof,
};
use crate::jwk::Jwk;
use crate::jws::{Algorithm, Claims, SigningKey, UnverifiedJws};
use crate::wire_id::{ClientId, WireIdentity};
use crate::{Error, Result, htu};

/// The `typ` of the access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
/// The only scope of a Wire client access token.
pub const WIRE_SCOPE: &str = "wire_client_id";
/// The Wire API version the backend stamps into tokens.
pub const WIRE_API_VERSION: i64 = 5;

/// What the backend needs besides the verified proof.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenParams<'a> {
    /// `iss`: the public URL of the access-token endpoint the proof was sent to.
    pub issuer: &'a str,
    /// Token lifetime in seconds.
    pub lifetime: i64,
    /// Issue time.
    pub now: UnixTime,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct IssuedAccessToken {
    /// The compact JWT.
    pub token: String,
    /// Its `jti`.
    pub jti: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// Signs the access token for a proof that passed [`verify_dpop_proof`] with Wire expectations.
pub fn issue_access_token(
    key: &SigningKey,
    proof: &VerifiedDpopProof,
    params: &AccessTokenParams<'_>,
) -> Result<IssuedAccessToken> {
    let wire = proof.wire().ok_or(Error::MissingClaim("chal"))?;
    let nonce = proof.nonce().ok_or(Error::MissingNonce)?;
    let jti = crate::random::uuid_v4();
    let mut c = Claims::default();
    c.set("iat", params.now);
    c.set("exp", params.now + params.lifetime);
    c.set("nbf", params.now);
    c.set("iss", params.issuer);
    c.set("sub", wire.sub.clone());
    c.set("aud", wire.aud.clone());
    c.set("jti", jti.clone());
    c.set("nonce", nonce);
    c.set("chal", wire.chal.clone());
    c.set(
        "cnf",
        json!({"kid": proof.thumbprint(), "jkt": proof.thumbprint()}),
    );
    c.set("proof", proof.raw());
    c.set("client_id", wire.sub.clone());
    c.set("api_version", WIRE_API_VERSION);
    c.set("scope", WIRE_SCOPE);
    let token = key.sign_jwt(ACCESS_TOKEN_TYP, true, &c.0)?;
    Ok(IssuedAccessToken {
        token,
        jti,
        expires_in: params.lifetime,
    })
}

/// What an ACME server knows when a `wire-dpop-01` answer arrives.
#[derive(Debug, Clone, Copy)]
pub struct AccessTokenCheck<'a> {
    /// The backend's public signing keys (configured, or from its JWKS).
    pub backend_keys: &'a [Jwk],
    /// The challenge `target`: the access-token URL of this device (`iss`, proof `htu`).
    pub issuer: &'a str,
    /// This challenge's URL (`aud`).
    pub audience: &'a str,
    /// The ACME account key (`cnf`, and the key that must have signed the proof).
    pub account_key: &'a Jwk,
    /// This challenge's token (`chal`).
    pub challenge_token: &'a str,
    /// The order's identity (`client_id` and `sub`; the proof's `handle`, `name`, and `team`
    /// when the identity has one).
    pub identity: &'a WireIdentity,
}

/// Lifetimes and versions the verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenPolicy {
    /// Clock skew tolerated on `iat`/`nbf`/`exp` (and on top of `max_lifetime`).
    pub leeway: i64,
    /// Furthest acceptable `exp`, in seconds after now (plus `leeway`).
    pub max_lifetime: i64,
    /// Accepted `api_version` values.
    pub api_versions: Vec<i64>,
    /// Policy for the embedded proof.
    pub proof: DpopPolicy,
}

impl Default for AccessTokenPolicy {
    fn default() -> Self {
        Self {
            leeway: crate::dpop::DEFAULT_WIRE_SKEW,
            max_lifetime: 3600,
            api_versions: vec![WIRE_API_VERSION],
            proof: DpopPolicy::wire(),
        }
    }
}

/// An access token that passed every check, with its re-verified proof.
#[derive(Debug, Clone)]
pub struct VerifiedAccessToken {
    claims: Claims,
    proof: VerifiedDpopProof,
}

impl VerifiedAccessToken {
    /// The token's claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// The embedded proof, verified with the account key.
    pub fn proof(&self) -> &VerifiedDpopProof {
        &self.proof
    }
}

/// Verifies an access token as an ACME server must before it marks a `wire-dpop-01` challenge
/// valid: backend signature, `typ`, times, `iss`, `aud`, `scope`, `api_version`, `cnf`,
/// `client_id`/`sub`, `chal`, then the embedded proof against the account key.
pub fn verify_access_token(
    token: &str,
    check: &AccessTokenCheck<'_>,
    policy: &AccessTokenPolicy,
    now: UnixTime,
) -> Result<VerifiedAccessToken> {
    let jws = UnverifiedJws::from_compact(token)?;
    if jws.header().typ() != Some(ACCESS_TOKEN_TYP) {
        return Err(Error::WrongTyp {
            expected: ACCESS_TOKEN_TYP,
        });
    }
    let key = select_backend_key(&jws, check.backend_keys)?;
    let claims = jws.verify(key)?.claims()?;

    for name in [
        "iss",
        "sub",
        "aud",
        "jti",
        "nonce",
        "chal",
        "proof",
        "client_id",
        "scope",
    ] {
        claims.string(name)?;
    }
    let (iat, exp) = (claims.int("iat")?, claims.int("exp")?);
    if iat > now + policy.leeway {
        return Err(Error::IatInFuture);
    }
    if claims
        .opt_int("nbf")?
        .is_some_and(|nbf| nbf > now + policy.leeway)
    {
        return Err(Error::NotYetValid);
    }
    if exp + policy.leeway < now {
        return Err(Error::Expired);
    }
    if exp > now + policy.max_lifetime + policy.leeway {
        return Err(Error::ExpTooFar);
    }
    let iss = claims.string("iss")?;
    if !htu::matches(iss, check.issuer)? {
        return Err(Error::IssMismatch);
    }
    if claims.string("aud")? != check.audience {
        return Err(Error::AudMismatch);
    }
    if claims.string("scope")? != WIRE_SCOPE {
        return Err(Error::ScopeMismatch);
    }
    if !policy.api_versions.contains(&claims.int("api_version")?) {
        return Err(Error::UnsupportedApiVersion);
    }
    check_cnf(claims.get("cnf"), &check.account_key.thumbprint())?;
    let client_id =
        ClientId::parse(claims.string("client_id")?).map_err(|_| Error::ClientIdMismatch)?;
    if &client_id != check.identity.client_id() {
        return Err(Error::ClientIdMismatch);
    }
    if ClientId::parse(claims.string("sub")?).ok().as_ref() != Some(check.identity.client_id()) {
        return Err(Error::SubMismatch);
    }
    if claims.string("chal")? != check.challenge_token {
        return Err(Error::ChalMismatch);
    }

    let proof_raw = claims.string("proof")?;
    let proof_key = UnverifiedJws::from_compact(proof_raw)
        .and_then(|p| p.header().jwk())
        .map_err(|e| Error::EmbeddedProof(Box::new(e)))?;
    if !proof_key.same_key(check.account_key) {
        return Err(Error::ProofKeyMismatch);
    }
    let proof = verify_dpop_proof(
        proof_raw,
        &DpopCheck {
            htm: "POST",
            htu: iss,
            nonce: NonceCheck::Equals(claims.string("nonce")?),
            access_token: None,
            wire: Some(WireExpectations {
                identity: check.identity,
                challenge: Some(check.challenge_token),
                audience: Some(check.audience),
            }),
        },
        &policy.proof,
        now,
    )
    .map_err(|e| Error::EmbeddedProof(Box::new(e)))?;
    Ok(VerifiedAccessToken { claims, proof })
}

fn select_backend_key<'k>(jws: &UnverifiedJws, keys: &'k [Jwk]) -> Result<&'k Jwk> {
    let header = jws.header();
    let embedded = if header.has("jwk") {
        Some(header.jwk()?)
    } else {
        None
    };
    let by_kid = header
        .kid()
        .and_then(|kid| keys.iter().find(|k| k.kid.as_deref() == Some(kid)));
    let chosen = match (by_kid, &embedded) {
        (Some(k), Some(e)) if !k.same_key(e) => None,
        (Some(k), _) => Some(k),
        (None, Some(e)) => keys.iter().find(|k| k.same_key(e)),
        (None, None) if keys.len() == 1 => keys.first(),
        (None, None) => None,
    };
    let key = chosen.ok_or(Error::UnknownSigningKey)?;
    if !header.algorithm().is_ok_and(|a: Algorithm| a.fits(key)) {
        return Err(Error::AlgorithmKeyMismatch);
    }
    Ok(key)
}

fn check_cnf(cnf: Option<&Value>, thumbprint: &str) -> Result<()> {
    let cnf = cnf.ok_or(Error::MissingClaim("cnf"))?;
    let cnf = cnf.as_object().ok_or(Error::InvalidClaim("cnf"))?;
    let bound: Vec<&Value> = ["kid", "jkt"].iter().filter_map(|m| cnf.get(*m)).collect();
    if bound.is_empty() {
        return Err(Error::MissingClaim("cnf"));
    }
    if bound.iter().all(|v| v.as_str() == Some(thumbprint)) {
        Ok(())
    } else {
        Err(Error::CnfMismatch)
    }
}
