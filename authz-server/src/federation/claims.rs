//! What an upstream says about a user, and which of its claims mean what here: the
//! [`ClaimMap`] of an `[[upstream]]` (`[upstream.claims]`: the subject its identities are linked
//! by, and the claims a first login makes the local account from), and the
//! [`UpstreamIdentity`] a login verified — from the ID token (and, with `userinfo = true`, the
//! userinfo endpoint's claims the ID token lacks) of an `oidc` upstream, or from the user-info
//! JSON of an `oauth2` one. A claim is text when it is a non-empty string, or an integer
//! (GitHub's numeric `id`), taken as its decimal string.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::config::UpstreamKind;

/// The longest subject accepted (bytes).
const MAX_SUBJECT: usize = 255;

/// Which upstream claims give the identity and the Wire identity of an account created at
/// first login.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMap {
    /// The claim holding the stable id of the user at the upstream (`sub` by default; required
    /// for `oauth2`, e.g. GitHub's `id`).
    pub subject: Option<String>,
    /// The claim holding the handle (a bare handle, or `handle@{domain}` of this server's
    /// domain).
    pub handle: String,
    /// The claim holding the display name.
    pub display_name: String,
    /// The claim holding the email address (recorded with `email_verified`; never used to find
    /// or link an account).
    pub email: String,
    /// The claim holding the team, if the upstream has one.
    pub team: Option<String>,
    /// The claim holding the user's roles (an array of strings, or one string), if mapped: the
    /// account's roles follow it at every login through this upstream (a login without the
    /// claim leaves the account none).
    pub roles: Option<String>,
    /// The roles this upstream may give (others it sends are left out); without it, any but
    /// `admin`, which an upstream gives only when listed here.
    pub allowed_roles: Option<Vec<String>>,
    /// The claim holding the user's groups (e.g. Keycloak's `groups`), likewise.
    pub groups: Option<String>,
}

impl Default for ClaimMap {
    fn default() -> Self {
        Self {
            subject: None,
            handle: "preferred_username".into(),
            display_name: "name".into(),
            email: "email".into(),
            team: None,
            roles: None,
            allowed_roles: None,
            groups: None,
        }
    }
}

impl ClaimMap {
    /// The claim holding the subject.
    pub fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or("sub")
    }

    /// No claim name is blank; an `oauth2` upstream names its subject claim.
    pub fn validate(&self, kind: UpstreamKind) -> Result<(), String> {
        if kind == UpstreamKind::Oauth2 && self.subject.is_none() {
            return Err(
                "claims.subject is required for kind = \"oauth2\" (the user-info field holding \
                 the user's stable id, e.g. \"id\")"
                    .into(),
            );
        }
        for (key, claim) in [
            ("claims.subject", self.subject.as_ref()),
            ("claims.handle", Some(&self.handle)),
            ("claims.display_name", Some(&self.display_name)),
            ("claims.email", Some(&self.email)),
            ("claims.team", self.team.as_ref()),
            ("claims.roles", self.roles.as_ref()),
            ("claims.groups", self.groups.as_ref()),
        ] {
            if claim.is_some_and(|c| c.trim().is_empty()) {
                return Err(format!("{key} is empty"));
            }
        }
        Ok(())
    }
}

/// The names a claim lists: an array's strings, or a single string; names no role or group can
/// have (see [`crate::users::role_names`]) are left out, and at most
/// [`crate::users::MAX_ROLES`] kept. None when the claim is absent (an upstream leaves out an
/// empty list: the user is in none).
pub fn names(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    let values: Vec<String> = match claims.get(name) {
        Some(Value::String(one)) => vec![one.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let usable: Vec<String> = values
        .into_iter()
        .filter(|v| crate::users::is_role_name(v))
        .take(crate::users::MAX_ROLES)
        .collect();
    crate::users::role_names(&usable, name).unwrap_or_default()
}

impl ClaimMap {
    /// The roles an upstream may give of `offered`: those in `allowed_roles` when it is set,
    /// otherwise all but `admin` (the role of this server's own admin surface).
    pub fn allowed(&self, offered: Vec<String>) -> Vec<String> {
        offered
            .into_iter()
            .filter(|role| match &self.allowed_roles {
                Some(allowed) => allowed.contains(role),
                None => role != crate::users::ADMIN_ROLE,
            })
            .collect()
    }
}

/// The text of a claim: a non-empty string, or an integer as its decimal string.
pub fn text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    text_value(claims.get(name)?)
}

/// The text of a JSON value: a non-empty string, or an integer as its decimal string.
pub fn text_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// A verified upstream identity: the subject it is linked by, and its claims.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    /// The user's stable id at the upstream (the mapped subject claim).
    pub subject: String,
    /// Every claim the upstream gave.
    pub claims: Map<String, Value>,
}

impl UpstreamIdentity {
    /// The identity in `claims`, whose `map.subject()` claim must be text of at most 255 bytes.
    pub fn new(map: &ClaimMap, claims: Map<String, Value>) -> Result<Self, String> {
        let name = map.subject();
        let subject = text(&claims, name)
            .ok_or_else(|| format!("the {name} claim is missing, empty or not a string"))?;
        if subject.len() > MAX_SUBJECT {
            return Err(format!(
                "the {name} claim is longer than {MAX_SUBJECT} bytes"
            ));
        }
        Ok(Self { subject, claims })
    }

    /// The text of the claim `name`.
    pub fn claim(&self, name: &str) -> Option<String> {
        text(&self.claims, name)
    }

    /// Whether the upstream says the e-mail address is verified (`email_verified` true);
    /// anything else counts as unverified.
    pub fn email_verified(&self) -> bool {
        self.claims.get("email_verified") == Some(&Value::Bool(true))
    }

    /// Adds the claims of `more` (the userinfo endpoint's) that this identity lacks; those it
    /// has stay as they are.
    pub fn fill_from(&mut self, more: Map<String, Value>) {
        for (name, value) in more {
            self.claims.entry(name).or_insert(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn numbers_become_decimal_text_and_other_values_no_claim() {
        let github = ClaimMap {
            subject: Some("id".into()),
            ..ClaimMap::default()
        };
        let identity = UpstreamIdentity::new(
            &github,
            map(
                json!({"id": 12345, "login": "octo", "name": "", "email_verified": "true",
                       "big": 18446744073709551615u64, "float": 1.5, "flag": true}),
            ),
        )
        .unwrap();
        assert_eq!(identity.subject, "12345");
        assert_eq!(identity.claim("login").as_deref(), Some("octo"));
        assert_eq!(
            identity.claim("big").as_deref(),
            Some("18446744073709551615")
        );
        for absent in ["name", "float", "flag", "nothing"] {
            assert_eq!(identity.claim(absent), None, "{absent}");
        }
        // Only a JSON true verifies an address.
        assert!(!identity.email_verified());
        for refused in [
            json!({"id": ""}),
            json!({"id": 1.5}),
            json!({"sub": "s"}),
            json!({"id": "x".repeat(256)}),
        ] {
            assert!(
                UpstreamIdentity::new(&github, map(refused.clone())).is_err(),
                "{refused}"
            );
        }
    }

    #[test]
    fn userinfo_claims_fill_only_what_the_id_token_lacks() {
        let mut identity = UpstreamIdentity::new(
            &ClaimMap::default(),
            map(json!({"sub": "s1", "name": "From the ID token"})),
        )
        .unwrap();
        identity.fill_from(map(
            json!({"sub": "s1", "name": "From userinfo", "team": "ops"}),
        ));
        assert_eq!(identity.claim("name").as_deref(), Some("From the ID token"));
        assert_eq!(identity.claim("team").as_deref(), Some("ops"));
    }
}
