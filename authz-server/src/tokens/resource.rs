//! Our access tokens presented at this server's resource endpoints (`/userinfo`, `/consents…`,
//! the device endpoints): the offline checks of [`proto::resource`] (signature, issuer,
//! expiry, the DPoP proof and its `ath` for a bound token), then what needs this server's state
//! — the proof's server nonce and fresh `jti`, revocation, and a consent the user withdrew.
//!
//! A valid token is not enough: each endpoint names a [`Requirement`] — the scope the token
//! must carry, and whether its client must be first-party — and the client must still be
//! registered and still allowed that scope. Anything else is 403 `insufficient_scope`
//! (RFC 6750 §3.1) naming the scope, before the token's user is even looked up.

use proto::clock::UnixTime;
use proto::resource::{AccessError, Need, ProofExpectation, verify_access};

use crate::dpop::{Remembered, VerifiedProof};
use crate::error::{Error, Result, Scheme};
use crate::provider::Provider;
use crate::store::users::User;
use crate::store::{self, Store};

/// What a request presents: its `Authorization` header and every `DPoP` header it carries.
#[derive(Debug, Clone, Copy)]
pub struct PresentedToken<'a> {
    /// The `Authorization` header, if there is one readable.
    pub authorization: Option<&'a str>,
    /// The `DPoP` headers.
    pub dpop: &'a [&'a [u8]],
}

/// How the `DPoP` header of a request relates to its access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofUse<'a> {
    /// A resource request: a bound token needs `Authorization: DPoP` and a proof for this
    /// method and URL with `ath` (RFC 9449 §7).
    Resource { htm: &'a str, htu: &'a str },
    /// The Wire access-token endpoint: the `DPoP` header is the device's Wire proof, checked by
    /// the device service, which must also check that its key is the token's `cnf.jkt`.
    WireEndpoint,
    /// The subject token of a token exchange at `/token`, sent in the form: the request's own
    /// proof (for `/token`) must be of the key in the token's `cnf.jkt`, which the token
    /// exchange grant checks.
    Exchanged,
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
    /// All its claims (for what [`proto::resource::meets`] checks).
    pub claims: proto::jws::Claims,
}

/// A request authenticated by one of our access tokens, and the user it was issued for.
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

impl AuthenticatedToken {
    /// The user the token was issued for (401 `invalid_token` when the user is gone).
    pub fn into_user(self, store: &dyn Store) -> Result<AuthenticatedUser> {
        let user = crate::identity::user_of_token(store, &self.sub, self.scheme)?;
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

fn scheme_of(scheme: proto::resource::Scheme) -> Scheme {
    match scheme {
        proto::resource::Scheme::Bearer => Scheme::Bearer,
        proto::resource::Scheme::Dpop => Scheme::Dpop,
    }
}

/// What an endpoint asks of the token.
#[derive(Debug, Clone, Copy)]
pub struct Requirement<'a> {
    /// The scope the token must carry.
    pub scope: &'a str,
    /// Only tokens of first-party clients.
    pub first_party: bool,
    /// What the endpoints are, for the refusal ("the device endpoints").
    pub what: &'static str,
    /// A role the token must carry (RFC 9068 §7.2 `roles`) — and the user must still have.
    pub role: Option<&'a str>,
}

impl Provider {
    /// The user of a request whose access token is valid and meets `requirement`.
    pub fn authorize_token(
        &self,
        presented: PresentedToken<'_>,
        proof_use: ProofUse<'_>,
        requirement: Requirement<'_>,
        now: UnixTime,
    ) -> Result<AuthenticatedUser> {
        let token = self.authenticate_token(presented, proof_use, now)?;
        let Requirement {
            scope,
            first_party,
            what,
            role,
        } = requirement;
        let refuse = |label: &'static str, description: String| Error::InsufficientScope {
            scope: scope.to_owned(),
            description,
            label,
            scheme: token.scheme,
        };
        if !crate::scopes::has(&token.scope, scope) {
            return Err(refuse(
                "insufficient-scope",
                format!("{what} need an access token with the {scope} scope"),
            ));
        }
        let client = crate::oauth_clients::get(self.store(), &token.client_id)?;
        if !client.as_ref().is_some_and(|c| {
            crate::scopes::allowed(c, self.device_scope())
                .iter()
                .any(|s| s == scope)
        }) {
            return Err(refuse(
                "insufficient-scope",
                format!(
                    "the client {} is no longer allowed the {scope} scope",
                    token.client_id
                ),
            ));
        }
        if first_party && !client.is_some_and(|c| c.is_first_party()) {
            return Err(refuse(
                "first-party-client-required",
                format!(
                    "{what} accept tokens of first-party clients only, not of {}",
                    token.client_id
                ),
            ));
        }
        let needed_role = role;
        let claims_have_role =
            needed_role.is_none_or(|r| proto::resource::meets(&token.claims, Need::Role(r)));
        let user = token.into_user(self.store())?;
        if let Some(role) = needed_role
            && !(claims_have_role && user.user.roles.iter().any(|r| r == role))
        {
            return Err(Error::InsufficientScope {
                scope: scope.to_owned(),
                description: format!("{what} need the role {role}"),
                label: "insufficient-role",
                scheme: user.scheme,
            });
        }
        Ok(user)
    }

    /// Validates the access token of a request.
    pub fn authenticate_token(
        &self,
        presented: PresentedToken<'_>,
        proof_use: ProofUse<'_>,
        now: UnixTime,
    ) -> Result<AuthenticatedToken> {
        let server_nonces = self.server_nonces();
        let expectation = match proof_use {
            ProofUse::Resource { htm, htu } => ProofExpectation::Request {
                htm,
                htu,
                nonce_required: server_nonces.is_some(),
            },
            ProofUse::WireEndpoint | ProofUse::Exchanged => ProofExpectation::Deferred,
        };
        let access = verify_access(
            presented.authorization,
            presented.dpop.iter().copied(),
            &self.base_url,
            &self.base_url,
            &self.verification_keys(),
            expectation,
            now,
        )
        .map_err(|(e, presented)| match e {
            AccessError::Proof(proto::Error::MissingNonce) => {
                Error::UseDpopNonce { resource: true }
            }
            other => {
                let scheme = scheme_of(other.scheme(presented));
                Error::invalid_token(other.to_string(), scheme)
            }
        })?;
        let scheme = scheme_of(access.scheme);
        let invalid = |d: &str| Error::invalid_token(d, scheme);
        if let Some(proof) = access.proof {
            if !crate::dpop::nonce_accepted(server_nonces, &proof, now) {
                return Err(Error::UseDpopNonce { resource: true });
            }
            let proof = VerifiedProof::from_resource_access(proof);
            if let Remembered::Replayed(_) = crate::dpop::remember(self.store(), proof)? {
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
        if store::revocations::is_revoked(self.store(), &jti)? {
            return Err(invalid("the access token was revoked"));
        }
        let jkt = access.jkt;
        let client_id = field("client_id")?.to_owned();
        let sub = field("sub")?.to_owned();
        let issued_at = claims
            .int("iat")
            .map_err(|_| invalid("malformed access token"))?;
        if crate::consents::withdrawn(self.store(), &sub, &client_id, issued_at)? {
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
            claims,
        })
    }
}
