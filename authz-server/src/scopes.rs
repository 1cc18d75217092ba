//! Scopes: what a `scope` value may hold (RFC 6749 §3.3), which scopes a client may be granted
//! (its registered list, or the documented default for clients registered without one), and the
//! `invalid_scope` refusal every grant uses for a scope outside that list (RFC 6749 §5.2).
//!
//! The device scope (`device_access.scope`, default [`DEFAULT_DEVICE_SCOPE`]) is the one that
//! lets a token register devices and obtain Wire access tokens; see
//! [`crate::config::DeviceAccess`].

use crate::error::{Error, Result};

/// The scope the Wire device endpoints require unless configured otherwise.
pub const DEFAULT_DEVICE_SCOPE: &str = "wire_devices";

/// Identity scopes `/authorize` supports besides the device scope.
pub const IDENTITY_SCOPES: [&str; 3] = ["openid", "profile", "wire_client_id"];

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

/// The scopes of a client registered without a list: the identity scopes, and for a
/// first-party client also the device scope (what such clients could use before lists existed;
/// third-party clients never get the device scope by default).
pub fn default_for(first_party: bool, device_scope: &str) -> Vec<String> {
    let mut scopes: Vec<String> = IDENTITY_SCOPES.iter().map(|s| (*s).to_owned()).collect();
    if first_party {
        scopes.push(device_scope.to_owned());
    }
    scopes
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

/// [`grantable`] for a token-endpoint-style grant: the refusal is the `invalid_scope` error.
pub fn grant(
    requested: &str,
    client: &crate::users::OAuthClient,
    device_scope: &str,
) -> Result<String> {
    grantable(requested, &client.allowed_scopes(device_scope), &client.id).map_err(invalid_scope)
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
}
