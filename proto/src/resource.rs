//! A resource server's check of a request's access token (RFC 6750, RFC 9068, RFC 9449 §7),
//! offline: the token is one of the issuer's JWT access tokens (`typ: at+jwt`, signed by a key
//! of the issuer's JWKS chosen by `kid`, `iss`, `exp`, and an `aud` naming this resource, RFC
//! 9068 §4 — a token asked for another resource with RFC 8707 `resource` is refused here), and
//! a DPoP-bound token (`cnf.jkt`)
//! arrives with the `DPoP` scheme and a proof for this method and URL, bound to the token
//! (`ath`), signed by the bound key. A `Bearer` downgrade of a bound token is refused.
//!
//! The caller supplies the keys (a cached JWKS), and after this check does what needs state:
//! revocation, the proof's `jti` replay cache, the server nonce's validity.

use crate::clock::UnixTime;
use crate::dpop::{
    DpopCheck, DpopPolicy, NonceCheck, VerifiedDpopProof, single_dpop_header, verify_dpop_proof,
};
use crate::jwk::Jwk;
use crate::jws::{Claims, UnverifiedJws};

/// The authorization scheme of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: DPoP`.
    Dpop,
}

/// Why a request's token is refused; each maps to a `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// No usable `Authorization` header.
    #[error("missing or malformed access token")]
    Missing,
    /// The token is not one of the issuer's valid access tokens.
    #[error("invalid access token: {0}")]
    InvalidToken(&'static str),
    /// A DPoP-bound token presented as `Bearer`.
    #[error("a DPoP-bound token must use the DPoP scheme")]
    BoundTokenAsBearer,
    /// A `DPoP` scheme with a token that is not bound.
    #[error("the token is not DPoP-bound; use the Bearer scheme")]
    UnboundTokenAsDpop,
    /// The proof is missing or fails a check (`MissingNonce` asks for `use_dpop_nonce`).
    #[error("DPoP proof: {0}")]
    Proof(crate::Error),
    /// The proof is signed by another key than the token is bound to.
    #[error("the DPoP proof key is not the token's")]
    WrongProofKey,
}

impl AccessError {
    /// The scheme the challenge of this refusal names.
    pub fn scheme(&self, presented: Option<Scheme>) -> Scheme {
        match self {
            Self::BoundTokenAsBearer | Self::Proof(_) | Self::WrongProofKey => Scheme::Dpop,
            _ => presented.unwrap_or(Scheme::Bearer),
        }
    }
}

/// What the resource expects of a DPoP proof.
#[derive(Debug, Clone, Copy)]
pub enum ProofExpectation<'a> {
    /// A proof of this request: method, URL, whether a server nonce is required.
    Request {
        /// Method.
        htm: &'a str,
        /// The URL as the resource's public configuration spells it.
        htu: &'a str,
        /// Whether the proof must carry a nonce (its validity is the caller's to check).
        nonce_required: bool,
    },
    /// The endpoint checks the `DPoP` header itself (Wire's access-token endpoint).
    Deferred,
}

/// A request whose token passed.
#[derive(Debug, Clone)]
pub struct VerifiedAccess {
    /// The token's claims.
    pub claims: Claims,
    /// The scheme used.
    pub scheme: Scheme,
    /// `cnf.jkt`, when bound.
    pub jkt: Option<String>,
    /// The verified proof, when one was checked.
    pub proof: Option<VerifiedDpopProof>,
}

/// Checks `authorization` (the header value) and the `DPoP` header values of a request to the
/// resource `audience` (the issuer's own endpoints pass the issuer).
pub fn verify_access<'h>(
    authorization: Option<&str>,
    dpop_headers: impl Iterator<Item = &'h [u8]>,
    issuer: &str,
    audience: &str,
    keys: &[Jwk],
    expectation: ProofExpectation<'_>,
    now: UnixTime,
) -> Result<VerifiedAccess, (AccessError, Option<Scheme>)> {
    let (scheme_name, token) = authorization
        .and_then(|a| a.split_once(' '))
        .map(|(s, t)| (s.to_ascii_lowercase(), t.trim()))
        .ok_or((AccessError::Missing, None))?;
    let scheme = match scheme_name.as_str() {
        "bearer" => Scheme::Bearer,
        "dpop" => Scheme::Dpop,
        _ => return Err((AccessError::Missing, None)),
    };
    let fail = |e: AccessError| (e, Some(scheme));
    let invalid = |d: &'static str| fail(AccessError::InvalidToken(d));
    let jws = UnverifiedJws::from_compact(token).map_err(|_| invalid("malformed"))?;
    let key = match (jws.header().typ(), jws.header().kid()) {
        (Some("at+jwt"), Some(kid)) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        _ => None,
    }
    .ok_or_else(|| invalid("not an access token of this issuer"))?;
    let claims = jws
        .verify(key)
        .and_then(|v| v.claims())
        .map_err(|_| invalid("bad signature"))?;
    if claims.string("iss").ok() != Some(issuer) {
        return Err(invalid("foreign issuer"));
    }
    if claims.int("exp").map_err(|_| invalid("no exp"))? < now {
        return Err(invalid("expired"));
    }
    if !names_audience(&claims, audience) {
        return Err(invalid("issued for another resource"));
    }
    let jkt = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(|j| j.as_str())
        .map(str::to_owned);
    let proof = match (&jkt, expectation, scheme) {
        (None, _, Scheme::Dpop) => return Err(fail(AccessError::UnboundTokenAsDpop)),
        (Some(_), ProofExpectation::Request { .. }, Scheme::Bearer) => {
            return Err(fail(AccessError::BoundTokenAsBearer));
        }
        (
            Some(jkt),
            ProofExpectation::Request {
                htm,
                htu,
                nonce_required,
            },
            Scheme::Dpop,
        ) => {
            let raw = single_dpop_header(dpop_headers).map_err(|e| fail(AccessError::Proof(e)))?;
            let check = DpopCheck {
                htm,
                htu,
                nonce: if nonce_required {
                    NonceCheck::Present
                } else {
                    NonceCheck::NotRequired
                },
                access_token: Some(token),
                wire: None,
            };
            let proof = verify_dpop_proof(raw, &check, &DpopPolicy::rfc9449(), now)
                .map_err(|e| fail(AccessError::Proof(e)))?;
            if proof.thumbprint() != jkt {
                return Err(fail(AccessError::WrongProofKey));
            }
            Some(proof)
        }
        _ => None,
    };
    Ok(VerifiedAccess {
        claims,
        scheme,
        jkt,
        proof,
    })
}

/// Whether the token's `aud` (a string or an array of strings) names `audience`.
fn names_audience(claims: &Claims, audience: &str) -> bool {
    match claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud == audience,
        Some(serde_json::Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(audience)),
        _ => false,
    }
}

/// What a resource asks of a verified access token besides its validity: a scope of its
/// `scope`, a role of its `roles`, a permission of its `entitlements` (RFC 9068 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// This scope in `scope` (space-separated).
    Scope(&'a str),
    /// This role in `roles` (an array of strings).
    Role(&'a str),
    /// This permission in `entitlements` (an array of strings).
    Permission(&'a str),
    /// Issued to this client (`client_id`): every access token of the issuer names the issuer
    /// as its audience, so a resource that serves one application asks for its client.
    Client(&'a str),
}

/// Whether the claims of a verified access token carry what `need` names.
pub fn meets(claims: &Claims, need: Need<'_>) -> bool {
    let listed = |claim: &str, wanted: &str| {
        claims
            .get(claim)
            .and_then(serde_json::Value::as_array)
            .is_some_and(|values| values.iter().any(|v| v.as_str() == Some(wanted)))
    };
    match need {
        Need::Scope(scope) => claims
            .get("scope")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| s.split(' ').any(|x| x == scope)),
        Need::Role(role) => listed("roles", role),
        Need::Permission(permission) => listed("entitlements", permission),
        Need::Client(client) => {
            claims.get("client_id").and_then(serde_json::Value::as_str) == Some(client)
        }
    }
}

impl VerifiedAccess {
    /// Whether the token carries what `need` names.
    pub fn has(&self, need: Need<'_>) -> bool {
        meets(&self.claims, need)
    }

    /// The first of `needs` the token lacks, if any: what a resource answers 403
    /// `insufficient_scope` for (RFC 6750 §3.1: "higher privileges than provided").
    pub fn missing<'n>(&self, needs: &[Need<'n>]) -> Option<Need<'n>> {
        needs.iter().copied().find(|need| !self.has(*need))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::dpop::DpopClaims;
    use crate::jws::{Algorithm, SigningKey};

    const ISS: &str = "https://as.test";
    const NOW: i64 = 1_700_000_000;

    fn token(key: &SigningKey, jkt: Option<&str>) -> String {
        let mut claims = json!({"iss": ISS, "aud": ISS, "sub": "u", "exp": NOW + 60, "jti": "j"});
        if let Some(jkt) = jkt {
            claims["cnf"] = json!({ "jkt": jkt });
        }
        key.sign_jwt("at+jwt", false, claims.as_object().unwrap())
            .unwrap()
    }

    fn check(auth: &str, proof: Option<&str>, keys: &[Jwk]) -> Result<VerifiedAccess, AccessError> {
        let headers: Vec<&[u8]> = proof.iter().map(|p| p.as_bytes()).collect();
        verify_access(
            Some(auth),
            headers.into_iter(),
            ISS,
            ISS,
            keys,
            ProofExpectation::Request {
                htm: "GET",
                htu: "https://rs.test/r",
                nonce_required: false,
            },
            NOW,
        )
        .map_err(|(e, _)| e)
    }

    #[test]
    fn bearer_and_dpop_tokens_are_checked_offline() {
        let issuer = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let keys = [issuer.public_jwk().clone()];
        let holder = SigningKey::generate(Algorithm::Es256).unwrap();
        let jkt = holder.public_jwk().thumbprint();

        let bearer = token(&issuer, None);
        assert_eq!(
            check(&format!("Bearer {bearer}"), None, &keys)
                .unwrap()
                .scheme,
            Scheme::Bearer
        );
        assert_eq!(
            check(&format!("DPoP {bearer}"), None, &keys).unwrap_err(),
            AccessError::UnboundTokenAsDpop
        );

        let bound = token(&issuer, Some(&jkt));
        let proof = DpopClaims::new("GET", "https://rs.test/r", NOW)
            .with_access_token(&bound)
            .sign(&holder)
            .unwrap();
        let ok = check(&format!("DPoP {bound}"), Some(&proof), &keys).unwrap();
        assert_eq!(ok.jkt.as_deref(), Some(jkt.as_str()));
        assert_eq!(
            check(&format!("Bearer {bound}"), Some(&proof), &keys).unwrap_err(),
            AccessError::BoundTokenAsBearer
        );
        let thief = SigningKey::generate(Algorithm::Es256).unwrap();
        let stolen = DpopClaims::new("GET", "https://rs.test/r", NOW)
            .with_access_token(&bound)
            .sign(&thief)
            .unwrap();
        assert_eq!(
            check(&format!("DPoP {bound}"), Some(&stolen), &keys).unwrap_err(),
            AccessError::WrongProofKey
        );
        let other_issuer = [SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1")
            .public_jwk()
            .clone()];
        assert!(matches!(
            check(&format!("Bearer {bearer}"), None, &other_issuer).unwrap_err(),
            AccessError::InvalidToken(_)
        ));
        assert_eq!(
            check("Basic abc", None, &keys).unwrap_err(),
            AccessError::Missing
        );
    }

    #[test]
    fn a_token_for_another_resource_is_refused() {
        let issuer = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let keys = [issuer.public_jwk().clone()];
        let with_aud = |aud: serde_json::Value| {
            let mut claims = json!({"iss": ISS, "sub": "u", "exp": NOW + 60});
            if !aud.is_null() {
                claims["aud"] = aud;
            }
            let token = issuer
                .sign_jwt("at+jwt", false, claims.as_object().unwrap())
                .unwrap();
            check(&format!("Bearer {token}"), None, &keys)
        };
        assert!(with_aud(json!(["https://game.test/", ISS])).is_ok());
        for other in [
            json!("https://game.test/"),
            json!(["https://game.test/"]),
            json!(null),
            json!(7),
        ] {
            assert_eq!(
                with_aud(other.clone()).unwrap_err(),
                AccessError::InvalidToken("issued for another resource"),
                "{other}"
            );
        }
    }

    #[test]
    fn a_resource_checks_scope_role_and_permission_claims() {
        let access = VerifiedAccess {
            claims: Claims(
                serde_json::json!({
                    "scope": "openid roles",
                    "roles": ["admin", 7],
                    "entitlements": ["read:audit"],
                    "groups": ["admin"],
                    "client_id": "console",
                })
                .as_object()
                .unwrap()
                .clone(),
            ),
            scheme: Scheme::Bearer,
            jkt: None,
            proof: None,
        };
        assert!(access.has(Need::Scope("roles")));
        assert!(!access.has(Need::Scope("role")));
        assert!(access.has(Need::Role("admin")));
        assert!(!access.has(Need::Role("7")), "only strings count");
        assert!(access.has(Need::Permission("read:audit")));
        assert!(
            !access.has(Need::Permission("admin")),
            "groups are not entitlements"
        );
        assert_eq!(
            access.missing(&[Need::Scope("openid"), Need::Role("auditor")]),
            Some(Need::Role("auditor"))
        );
        assert_eq!(access.missing(&[Need::Role("admin")]), None);
        assert!(access.has(Need::Client("console")));
        assert!(!access.has(Need::Client("other-app")));
    }
}
