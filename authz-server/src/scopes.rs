//! Scopes: what a `scope` value may hold (RFC 6749 §3.3), which scopes this server supports
//! (the OpenID Connect ones, `wire_client_id` and the device scope: `scopes_supported`), which
//! scopes a client may be granted (its registered list, or the documented default for clients
//! registered without one), and the `invalid_scope` refusal every grant uses for a scope outside
//! that list (RFC 6749 §5.2). At `/authorize` a scope the server does not support at all is
//! ignored (OIDC Core §3.1.2.1) before that check; the token-endpoint grants and
//! `/device_authorization` refuse it.
//!
//! The device scope (`device_access.scope`, default [`DEFAULT_DEVICE_SCOPE`]) is the one that
//! lets a token register devices and obtain Wire access tokens; see
//! [`crate::config::DeviceAccess`].

use crate::error::{Error, Result};
use crate::store::oauth_clients::OAuthClient;

/// The scope the Wire device endpoints require unless configured otherwise.
pub const DEFAULT_DEVICE_SCOPE: &str = "wire_devices";

/// `offline_access` (OIDC Core §11): a refresh token for a third-party client (first-party
/// clients get one with every code and device grant; see [`refresh_token_allowed`]).
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Identity scopes `/authorize` supports besides the device scope: OpenID Connect's `openid`,
/// `profile` and `email` (OIDC Core §5.4), `offline_access`, and Wire's `wire_client_id`.
pub const IDENTITY_SCOPES: [&str; 5] = [
    "openid",
    "profile",
    "email",
    OFFLINE_ACCESS,
    "wire_client_id",
];

/// `roles`: the user's roles and groups in the ID token, `/userinfo` and the access token
/// (RFC 9068 §7.2). Granted only to clients registered with it (not in the default list).
pub const ROLES: &str = "roles";

/// `ga4gh_passport_v1`: the user's GA4GH Passport (its visas) at `/userinfo`
/// ([`crate::passports`]); never in a token. Granted only to clients registered with it.
pub const GA4GH_PASSPORT: &str = proto::visa::PASSPORT_CLAIM;

/// Every scope this server supports (`scopes_supported`): the identity scopes, `roles`,
/// `ga4gh_passport_v1` and the device scope.
pub fn supported(device_scope: &str) -> Vec<&str> {
    IDENTITY_SCOPES
        .into_iter()
        .chain([ROLES, GA4GH_PASSPORT, device_scope])
        .collect()
}

/// The scope tokens of a `scope` value (empty tokens from repeated spaces are skipped).
pub fn split(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|s| !s.is_empty())
}

/// Whether `scope` holds `wanted`.
pub fn has(scope: &str, wanted: &str) -> bool {
    split(scope).any(|s| s == wanted)
}

/// Whether `token` is an RFC 6749 §3.3 scope-token: `1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// `invalid_scope` with a description.
pub fn invalid_scope(description: impl Into<String>) -> Error {
    Error::OAuth {
        code: "invalid_scope",
        description: description.into(),
    }
}

/// The scope tokens of a requested `scope` value, each once, in the order given; refused (with
/// the `invalid_scope` description) when a token is not a scope-token.
pub fn parse(scope: &str) -> std::result::Result<Vec<String>, String> {
    let mut tokens: Vec<String> = Vec::new();
    for token in split(scope) {
        if !is_scope_token(token) {
            return Err("the scope holds a character RFC 6749 §3.3 does not allow".into());
        }
        if !tokens.iter().any(|t| t == token) {
            tokens.push(token.to_owned());
        }
    }
    Ok(tokens)
}

/// The scopes of a client registered without a list: the identity scopes (so the default
/// `openid email profile` of OIDC libraries, and `offline_access`, work), and for a first-party
/// client also the device scope (what such clients could use before lists existed; third-party
/// clients never get the device scope by default).
pub fn default_for(first_party: bool, device_scope: &str) -> Vec<String> {
    let mut scopes: Vec<String> = IDENTITY_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if first_party {
        scopes.push(device_scope.to_owned());
    }
    scopes
}

/// The scopes `client` may be granted, with `device_scope` the configured device scope: its
/// registered list, or [`default_for`] it when it has none.
pub fn allowed(client: &OAuthClient, device_scope: &str) -> Vec<String> {
    client
        .scopes
        .clone()
        .unwrap_or_else(|| default_for(client.is_first_party(), device_scope))
}

/// Parses a requested `scope` value and checks every token is in `allowed`; returns the
/// tokens joined by single spaces, which is what gets granted, or the `invalid_scope`
/// description.
pub fn grantable(
    requested: &str,
    allowed: &[String],
    client_id: &str,
) -> std::result::Result<String, String> {
    let tokens = parse(requested)?;
    if let Some(outside) = tokens.iter().find(|t| !allowed.contains(t)) {
        return Err(format!(
            "the scope {outside} is not registered for the client {client_id}"
        ));
    }
    Ok(tokens.join(" "))
}

/// The scope an authorization request (`/authorize`) is granted: tokens that are not
/// scope-tokens are refused, scopes this server does not support at all are dropped (OIDC Core
/// §3.1.2.1: "Scope values used that are not understood by an implementation SHOULD be
/// ignored"), and every remaining one must be on the client's list ([`grantable`]); returns the
/// granted scope or the `invalid_scope` description.
pub fn authorization_scope(
    requested: &str,
    client: &OAuthClient,
    device_scope: &str,
) -> std::result::Result<String, String> {
    let supported = supported(device_scope);
    let understood: Vec<String> = parse(requested)?
        .into_iter()
        .filter(|s| supported.contains(&s.as_str()))
        .collect();
    grantable(
        &understood.join(" "),
        &allowed(client, device_scope),
        &client.id,
    )
}

/// Whether a code or device grant of `scope` to `client` comes with a refresh token: always for
/// a first-party client (the Wire app; this server has no login sessions, so every refresh token
/// is an "offline" one), for a third-party client only when `offline_access` was granted, that
/// is when the user allowed "Stay signed in" on the consent page.
pub fn refresh_token_allowed(client: &OAuthClient, scope: &str) -> bool {
    client.is_first_party() || has(scope, OFFLINE_ACCESS)
}

/// [`grantable`] for a token-endpoint-style grant: the refusal is the `invalid_scope` error.
pub fn grant(requested: &str, client: &OAuthClient, device_scope: &str) -> Result<String> {
    grantable(requested, &allowed(client, device_scope), &client.id).map_err(invalid_scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_values_are_split_checked_and_deduplicated() {
        assert_eq!(
            parse("openid  profile openid").unwrap(),
            ["openid", "profile"]
        );
        assert!(parse("").unwrap().is_empty());
        for bad in ["a\"b", "a\\b", "caf\u{e9}", "a\u{7f}", "a\tb"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert!(is_scope_token("urn:example:read-write!"));
        assert!(has("openid wire_devices", "wire_devices"));
        assert!(!has("openid wire_devices_x", "wire_devices"));
    }

    #[test]
    fn only_listed_scopes_are_grantable() {
        let allowed = vec!["api".to_owned(), "openid".to_owned()];
        assert_eq!(
            grantable("api  openid", &allowed, "c").unwrap(),
            "api openid"
        );
        let refused = grantable("api admin", &allowed, "c").unwrap_err();
        assert!(refused.contains("admin"), "{refused}");
        assert!(!default_for(false, "wire_devices").contains(&"wire_devices".to_owned()));
        assert!(default_for(true, "wire_devices").contains(&"wire_devices".to_owned()));
    }

    #[test]
    fn authorization_requests_ignore_unsupported_scopes_but_not_unregistered_ones() {
        let client = OAuthClient {
            id: "app".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            secret_sha256: None,
            consent_required: true,
            jwks: None,
            scopes: Some(vec!["openid".into(), "email".into()]),
            post_logout_redirect_uris: Vec::new(),
            token_exchange: Vec::new(),
            remote_auth: Vec::new(),
            jwt_bearer: Vec::new(),
        };
        assert_eq!(
            authorization_scope("openid calendar email urn:x:y", &client, "wire_devices").unwrap(),
            "openid email"
        );
        assert_eq!(
            authorization_scope("calendar", &client, "wire_devices").unwrap(),
            ""
        );
        for refused in ["openid profile", "openid wire_devices", "openid a\\b"] {
            assert!(
                authorization_scope(refused, &client, "wire_devices").is_err(),
                "{refused}"
            );
        }
        assert!(!refresh_token_allowed(&client, "openid email"));
        assert!(refresh_token_allowed(&client, "openid offline_access"));
    }
}
