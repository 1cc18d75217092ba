//! The user's tokens: RFC 9068 JWT access tokens (DPoP-bound with `cnf.jkt` when the token
//! request carried a proof) and OIDC ID tokens (for code and device grants that include
//! `openid`; user claims from [`crate::claims`]), plus their validation at this server's own
//! resource endpoints and revocation by `jti`.

use axum::http::HeaderMap;
use proto::clock::UnixTime;
use proto::dpop::{DpopPolicy, NonceCheck, VerifiedDpopProof};
use proto::jws::{Claims, SigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, Scheme};
use crate::grants::{CodeGrant, EchoedClaims};
use crate::store::{Store, trees};
use crate::users::User;

/// An access token and the ID token issued with it.
#[derive(Debug)]
pub struct IssuedTokens {
    /// The access token.
    pub access_token: String,
    /// Its `jti`.
    pub access_jti: String,
    /// The ID token (when `openid` was granted).
    pub id_token: Option<String>,
    /// Access token lifetime.
    pub expires_in: i64,
    /// Whether it is DPoP-bound.
    pub dpop_bound: bool,
}

/// Issuer settings the token functions need.
#[derive(Debug, Clone)]
pub struct Issuer<'a> {
    /// The issuer URL.
    pub url: &'a str,
    /// The signing key.
    pub key: &'a SigningKey,
    /// Access token lifetime.
    pub access_lifetime: i64,
    /// ID token lifetime.
    pub id_lifetime: i64,
    /// The nonce source, when proofs must carry a server nonce.
    pub dpop_nonces: Option<&'a proto::dpop_nonce::NonceSource>,
    /// The keys this server's tokens verify with (current and live retired ones).
    pub verification_keys: Vec<proto::jwk::Jwk>,
}

impl Issuer<'_> {
    /// The key a token of ours names by `kid`.
    pub fn key_for(&self, kid: Option<&str>) -> Option<&proto::jwk::Jwk> {
        let kid = kid?;
        self.verification_keys
            .iter()
            .find(|k| k.kid.as_deref() == Some(kid))
    }
}

/// The nonce requirement of a proof at this server, and the check of the nonce it carried.
pub fn nonce_check(issuer: &Issuer<'_>) -> NonceCheck<'static> {
    if issuer.dpop_nonces.is_some() {
        NonceCheck::Present
    } else {
        NonceCheck::NotRequired
    }
}

/// Whether a verified proof's nonce is one of ours (always true when none is required).
pub fn nonce_accepted(issuer: &Issuer<'_>, proof: &VerifiedDpopProof, now: UnixTime) -> bool {
    match issuer.dpop_nonces {
        None => true,
        Some(source) => proof.nonce().is_some_and(|n| source.accepts(n, now)),
    }
}

/// What an access token is issued for.
#[derive(Debug, Clone, Copy)]
pub struct AccessGrant<'a> {
    /// `sub`: a user id, or the client id for client credentials.
    pub subject: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `scope`.
    pub scope: &'a str,
    /// `cnf.jkt` when DPoP-bound.
    pub jkt: Option<&'a str>,
}

/// Signs an RFC 9068 access token; returns it and its `jti`.
pub fn issue_access(
    issuer: &Issuer<'_>,
    grant: &AccessGrant<'_>,
    now: UnixTime,
) -> Result<(String, String)> {
    let jti = proto::random::uuid_v4();
    let mut at = Claims::default();
    at.set("iss", issuer.url);
    at.set("sub", grant.subject);
    at.set("aud", issuer.url);
    at.set("client_id", grant.client_id);
    at.set("scope", grant.scope);
    at.set("jti", jti.clone());
    at.set("iat", now);
    at.set("exp", now + issuer.access_lifetime);
    if let Some(jkt) = grant.jkt {
        at.set("cnf", json!({ "jkt": jkt }));
    }
    Ok((issuer.key.sign_jwt("at+jwt", false, &at.0)?, jti))
}

/// What an ID token is issued for, besides the user.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenGrant<'a> {
    /// `aud` and `azp`.
    pub client_id: &'a str,
    /// The granted scope: which user claims the token carries ([`crate::claims`]).
    pub scope: &'a str,
    /// The authorization request's `nonce` (none in the device flow, which has no
    /// authorization request).
    pub nonce: Option<&'a str>,
    /// When the user authenticated (`auth_time`), when known.
    pub auth_time: Option<UnixTime>,
    /// Values a `claims` request asked to see echoed (`keyauth`, `acme_aud`).
    pub echoed: &'a EchoedClaims,
}

/// Signs an OpenID Connect ID token (OIDC Core §2) for `user`, issued with `access_token`
/// (`at_hash`, §3.1.3.6).
pub fn issue_id_token(
    issuer: &Issuer<'_>,
    grant: &IdTokenGrant<'_>,
    user: &User,
    access_token: &str,
    now: UnixTime,
) -> Result<String> {
    let mut id = Claims(crate::claims::user_claims(user, grant.scope)?);
    id.set("iss", issuer.url);
    id.set("aud", grant.client_id);
    id.set("azp", grant.client_id);
    id.set("iat", now);
    id.set("exp", now + issuer.id_lifetime);
    if let Some(auth_time) = grant.auth_time {
        id.set("auth_time", auth_time);
    }
    id.set("jti", proto::random::uuid_v4());
    if let Some(nonce) = grant.nonce {
        id.set("nonce", nonce);
    }
    let digest = Sha256::digest(access_token.as_bytes());
    id.set("at_hash", proto::b64::encode(&digest[..16]));
    if let Some(keyauth) = &grant.echoed.keyauth {
        id.set(proto::wire_claims::KEYAUTH, keyauth.clone());
    }
    if let Some(acme_aud) = &grant.echoed.acme_aud {
        id.set(proto::wire_claims::ACME_AUD, acme_aud.clone());
    }
    Ok(issuer.key.sign_jwt("JWT", false, &id.0)?)
}

/// Issues the tokens for a redeemed code.
pub fn issue_for_grant(
    issuer: &Issuer<'_>,
    grant: &CodeGrant,
    user: &User,
    proof: Option<&VerifiedDpopProof>,
    now: UnixTime,
) -> Result<IssuedTokens> {
    let jkt = proof.map(VerifiedDpopProof::thumbprint);
    let (access_token, access_jti) = issue_access(
        issuer,
        &AccessGrant {
            subject: &user.id,
            client_id: &grant.client_id,
            scope: &grant.scope,
            jkt,
        },
        now,
    )?;

    let id_token = if crate::scopes::has(&grant.scope, "openid") {
        let id_grant = IdTokenGrant {
            client_id: &grant.client_id,
            scope: &grant.scope,
            nonce: grant.nonce.as_deref(),
            auth_time: Some(grant.auth_time),
            echoed: &grant.claims,
        };
        Some(issue_id_token(issuer, &id_grant, user, &access_token, now)?)
    } else {
        None
    };
    Ok(IssuedTokens {
        access_token,
        access_jti,
        id_token,
        expires_in: issuer.access_lifetime,
        dpop_bound: proof.is_some(),
    })
}

/// Records a proof's `jti` (with its key) in the replay cache for as long as the proof could be
/// accepted (its age window, or its `exp` when that is later, as Wire proofs carry); false when
/// it was seen before.
pub fn remember_jti(store: &dyn Store, proof: &VerifiedDpopProof) -> Result<bool> {
    let policy = DpopPolicy::rfc9449();
    let key = jti_key(proof);
    let window_end = proof.claims().iat + policy.max_age;
    let until = proof
        .claims()
        .exp
        .map_or(window_end, |exp| exp.max(window_end));
    let expires = json!({ "expires_at": until + policy.max_skew });
    Ok(store.insert_new_json(trees::DPOP_JTIS, &key, &expires)?)
}

/// Takes back [`remember_jti`] for a proof that was refused after all.
pub fn forget_jti(store: &dyn Store, proof: &VerifiedDpopProof) -> Result<()> {
    store.take(trees::DPOP_JTIS, &jti_key(proof))?;
    Ok(())
}

fn jti_key(proof: &VerifiedDpopProof) -> String {
    format!("{}:{}", proof.thumbprint(), proof.claims().jti)
}

/// Marks a token revoked.
pub fn revoke(store: &dyn Store, jti: &str, now: UnixTime) -> Result<()> {
    Ok(store.put_json(trees::REVOKED_TOKENS, jti, &json!({ "revoked_at": now }))?)
}

/// A request authenticated by one of our access tokens.
#[derive(Debug)]
pub struct AuthenticatedUser {
    /// The user.
    pub user: User,
    /// The token's `jti`.
    pub jti: String,
    /// The token's `cnf.jkt`, when DPoP-bound.
    pub jkt: Option<String>,
    /// The client the token was issued to (`client_id`).
    pub client_id: String,
    /// The token's `scope`.
    pub scope: String,
    /// The scheme the token was presented with.
    pub scheme: Scheme,
}

/// How the `DPoP` header of a request relates to its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofUse<'a> {
    /// A resource request: a bound token needs `Authorization: DPoP` and a proof for this
    /// method and URL with `ath` (RFC 9449 §7).
    Resource { htm: &'a str, htu: &'a str },
    /// The Wire access-token endpoint: the `DPoP` header is the device's Wire proof, checked by
    /// the handler, which must also check that its key is the token's `cnf.jkt`.
    WireEndpoint,
}

/// A request's access token, validated; who it names is looked up by [`Self::into_user`],
/// once the endpoint has checked the token may call it at all.
#[derive(Debug)]
pub struct AuthenticatedToken {
    /// The token's `sub`.
    pub sub: String,
    /// The token's `jti`.
    pub jti: String,
    /// The token's `cnf.jkt`, when DPoP-bound.
    pub jkt: Option<String>,
    /// The client the token was issued to (`client_id`).
    pub client_id: String,
    /// The token's `scope`.
    pub scope: String,
    /// The scheme the token was presented with.
    pub scheme: Scheme,
}

impl AuthenticatedToken {
    /// The user the token was issued for (401 `invalid_token` when the user is gone).
    pub fn into_user(self, store: &dyn Store) -> Result<AuthenticatedUser> {
        let user = crate::users::get(store, &self.sub)?
            .ok_or_else(|| Error::invalid_token("the user no longer exists", self.scheme))?;
        Ok(AuthenticatedUser {
            user,
            jti: self.jti,
            jkt: self.jkt,
            client_id: self.client_id,
            scope: self.scope,
            scheme: self.scheme,
        })
    }
}

/// Validates the access token of a request: the offline checks of [`proto::resource`], then
/// what needs this server's state (server nonce, proof `jti` replay, revocation).
pub fn authenticate(
    store: &dyn Store,
    issuer: &Issuer<'_>,
    headers: &HeaderMap,
    proof_use: ProofUse<'_>,
    now: UnixTime,
) -> Result<AuthenticatedToken> {
    use proto::resource::{AccessError, ProofExpectation, verify_access};
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let expectation = match proof_use {
        ProofUse::Resource { htm, htu } => ProofExpectation::Request {
            htm,
            htu,
            nonce_required: issuer.dpop_nonces.is_some(),
        },
        ProofUse::WireEndpoint => ProofExpectation::Deferred,
    };
    let access = verify_access(
        authorization,
        headers.get_all("dpop").iter().map(|v| v.as_bytes()),
        issuer.url,
        &issuer.verification_keys,
        expectation,
        now,
    )
    .map_err(|(e, presented)| {
        let scheme = match e.scheme(presented) {
            proto::resource::Scheme::Bearer => Scheme::Bearer,
            proto::resource::Scheme::Dpop => Scheme::Dpop,
        };
        match e {
            AccessError::Proof(proto::Error::MissingNonce) => {
                Error::UseDpopNonce { resource: true }
            }
            other => Error::invalid_token(other.to_string(), scheme),
        }
    })?;
    let scheme = match access.scheme {
        proto::resource::Scheme::Bearer => Scheme::Bearer,
        proto::resource::Scheme::Dpop => Scheme::Dpop,
    };
    let invalid = |d: &str| Error::invalid_token(d, scheme);
    if let Some(proof) = &access.proof {
        if !nonce_accepted(issuer, proof, now) {
            return Err(Error::UseDpopNonce { resource: true });
        }
        if !remember_jti(store, proof)? {
            return Err(Error::invalid_token(
                "the DPoP proof was already used (jti)",
                Scheme::Dpop,
            ));
        }
    }
    let claims = access.claims;
    let field = |name: &'static str| {
        claims
            .string(name)
            .map_err(|_| invalid("malformed access token"))
    };
    let jti = field("jti")?.to_owned();
    if store.get(trees::REVOKED_TOKENS, &jti)?.is_some() {
        return Err(invalid("the access token was revoked"));
    }
    let jkt = access.jkt;
    let client_id = field("client_id")?.to_owned();
    let sub = field("sub")?.to_owned();
    let issued_at = claims
        .int("iat")
        .map_err(|_| invalid("malformed access token"))?;
    if crate::consents::withdrawn(store, &sub, &client_id, issued_at)? {
        return Err(invalid("the user withdrew this client's access"));
    }
    let scope = claims.string("scope").unwrap_or_default().to_owned();
    Ok(AuthenticatedToken {
        sub,
        jti,
        jkt,
        client_id,
        scope,
        scheme,
    })
}
