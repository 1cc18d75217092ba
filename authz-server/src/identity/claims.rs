//! The user's claims as this OpenID Provider releases them, one set for the ID token and
//! `/userinfo` alike (OIDC Core §5.4): `sub` always; with `profile` the display `name`,
//! `preferred_username` (`handle@domain`) and Wire's `handle` (the handle URI), `team` and
//! `domain`; with `email` the `email` an operator recorded for the user and `email_verified`;
//! with `roles` the user's `roles` and `groups`.
//! A claim without a value is left out, never sent as `null` (OIDC Core §5.3.2): a user without
//! a team has no `team`, one without an email address no `email` claims. Besides those, the ID
//! token echoes what the authorization request's `claims` parameter asked for ([`EchoedClaims`]).

use serde_json::{Map, Value};

use crate::error::Result;
use crate::scopes;
use crate::store::users::User;

/// Values an OIDC `claims` request asked to see echoed in the ID token (`keyauth`,
/// `acme_aud`; read by [`EchoedClaims::from_claims_parameter`]).
pub use proto::wire_claims::AcmeClaims as EchoedClaims;

/// The claims of `user` that `scope` releases.
pub fn user_claims(user: &User, scope: &str) -> Result<Map<String, Value>> {
    let mut claims = Map::new();
    claims.insert("sub".into(), user.id.clone().into());
    if scopes::has(scope, "profile") {
        claims.insert("name".into(), user.name.clone().into());
        claims.insert(
            "preferred_username".into(),
            format!("{}@{}", user.handle, user.domain).into(),
        );
        claims.insert("handle".into(), user.handle_uri()?.to_uri().into());
        if let Some(team) = &user.team {
            claims.insert("team".into(), team.clone().into());
        }
        claims.insert("domain".into(), user.domain.clone().into());
    }
    if scopes::has(scope, "email")
        && let Some(email) = &user.email
    {
        claims.insert("email".into(), email.address.clone().into());
        claims.insert("email_verified".into(), email.verified.into());
    }
    claims.extend(authorization_claims(user, scope));
    Ok(claims)
}

/// With the `roles` scope, the user's `roles` and `groups` (RFC 9068 §7.2), each only when not
/// empty: in the ID token, `/userinfo` and the access token alike.
pub fn authorization_claims(user: &User, scope: &str) -> Map<String, Value> {
    let mut claims = Map::new();
    if scopes::has(scope, scopes::ROLES) {
        for (name, values) in [("roles", &user.roles), ("groups", &user.groups)] {
            if !values.is_empty() {
                claims.insert(name.into(), values.clone().into());
            }
        }
    }
    claims
}

/// Every claim [`user_claims`] may release, and the Passport claim `/userinfo` adds with the
/// `ga4gh_passport_v1` scope ([`crate::passports`]), for `claims_supported`.
pub const RELEASED: [&str; 11] = [
    "sub",
    "name",
    "preferred_username",
    "handle",
    "team",
    "domain",
    "email",
    "email_verified",
    "roles",
    "groups",
    proto::visa::PASSPORT_CLAIM,
];
