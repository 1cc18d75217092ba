//! The claims Wire adds to JWTs, named once: the DPoP proof's Wire claims (`chal`, `handle`,
//! `team`, `name`), and the two values the device asks the OpenID Provider to put into the ID
//! token for `wire-oidc-01` (`keyauth`, `acme_aud`) — with the OpenID Connect `claims` request
//! parameter (OIDC Core §5.5) that carries them: built by the device, read by the provider,
//! checked in the ID token by the ACME server.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The challenge token a Wire proof is for.
pub const CHAL: &str = "chal";
/// The user's handle URI.
pub const HANDLE: &str = "handle";
/// The user's team.
pub const TEAM: &str = "team";
/// The user's display name.
pub const NAME: &str = "name";
/// The ACME key authorization of the `wire-oidc-01` challenge.
pub const KEYAUTH: &str = "keyauth";
/// The URL of the `wire-oidc-01` challenge.
pub const ACME_AUD: &str = "acme_aud";

/// Longest `keyauth` / `acme_aud` value a provider echoes.
pub const MAX_ACME_CLAIM: usize = 1024;

/// The ACME values an ID token is asked to carry (each `None` when not asked for).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AcmeClaims {
    /// `keyauth`: the challenge token and the account key's thumbprint.
    pub keyauth: Option<String>,
    /// `acme_aud`: the challenge URL.
    pub acme_aud: Option<String>,
}

impl AcmeClaims {
    /// What the device asks for: both values, as essential claims.
    pub fn for_challenge(keyauth: &str, challenge_url: &str) -> Self {
        Self {
            keyauth: Some(keyauth.to_owned()),
            acme_aud: Some(challenge_url.to_owned()),
        }
    }

    /// The `claims` request parameter asking for these values in the ID token.
    pub fn to_claims_parameter(&self) -> Value {
        let mut id_token = serde_json::Map::new();
        for (name, value) in [(KEYAUTH, &self.keyauth), (ACME_AUD, &self.acme_aud)] {
            if let Some(value) = value {
                id_token.insert(name.into(), json!({"essential": true, "value": value}));
            }
        }
        json!({ "id_token": id_token })
    }

    /// The values a `claims` request parameter asks for (an absent parameter asks for none);
    /// refused, with the reason, when it is not JSON or a value is not a short string.
    pub fn from_claims_parameter(raw: Option<&str>) -> Result<Self, String> {
        let Some(raw) = raw else {
            return Ok(Self::default());
        };
        let value: Value =
            serde_json::from_str(raw).map_err(|_| "claims is not JSON".to_owned())?;
        let id_token = value.get("id_token");
        let pick = |name: &str| -> Result<Option<String>, String> {
            match id_token
                .and_then(|t| t.get(name))
                .and_then(|c| c.get("value"))
            {
                None => Ok(None),
                Some(Value::String(s)) if s.len() <= MAX_ACME_CLAIM => Ok(Some(s.clone())),
                Some(_) => Err(format!(
                    "claims.id_token.{name}.value must be a short string"
                )),
            }
        };
        Ok(Self {
            keyauth: pick(KEYAUTH)?,
            acme_aud: pick(ACME_AUD)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_device_request_reads_back_on_the_provider_side() {
        let asked = AcmeClaims::for_challenge("tok.thumb", "https://acme/chal");
        let raw = asked.to_claims_parameter().to_string();
        assert_eq!(
            raw,
            r#"{"id_token":{"keyauth":{"essential":true,"value":"tok.thumb"},"acme_aud":{"essential":true,"value":"https://acme/chal"}}}"#
        );
        assert_eq!(
            AcmeClaims::from_claims_parameter(Some(&raw)).unwrap(),
            asked
        );
        assert_eq!(
            AcmeClaims::from_claims_parameter(None).unwrap(),
            AcmeClaims::default()
        );
        assert!(AcmeClaims::from_claims_parameter(Some("{")).is_err());
        let not_string = r#"{"id_token":{"keyauth":{"value":5}}}"#;
        assert!(AcmeClaims::from_claims_parameter(Some(not_string)).is_err());
        let long = format!(
            r#"{{"id_token":{{"keyauth":{{"value":"{}"}}}}}}"#,
            "x".repeat(MAX_ACME_CLAIM + 1)
        );
        assert!(AcmeClaims::from_claims_parameter(Some(&long)).is_err());
    }
}
