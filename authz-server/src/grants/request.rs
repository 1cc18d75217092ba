//! The token request, read from the form into the grant it asks for with that grant's
//! parameters before any grant logic runs: authorization code (RFC 6749 §4.1.3), refresh token
//! (§6), client credentials (§4.4) or device code (RFC 8628 §3.4). The client's credentials in
//! the same form are read by the front end ([`crate::oauth_clients::authentication`]).

use std::collections::HashMap;

use proto::secret::SecretString;

use crate::error::{Error, Result};

/// The device code grant type of RFC 8628 §3.4.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The grant types `/token` accepts (`grant_types_supported`).
pub const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE,
];

/// A token request.
#[derive(Debug)]
pub enum TokenRequest {
    /// `authorization_code`.
    AuthorizationCode {
        /// `code` (empty when absent, which names no code).
        code: SecretString,
        /// `redirect_uri` (empty when absent).
        redirect_uri: String,
        /// `code_verifier`, unless absent or empty.
        code_verifier: Option<SecretString>,
    },
    /// `refresh_token`.
    RefreshToken {
        /// `refresh_token`.
        refresh_token: SecretString,
    },
    /// `client_credentials`.
    ClientCredentials {
        /// `scope` (empty when absent).
        scope: String,
    },
    /// `urn:ietf:params:oauth:grant-type:device_code`.
    DeviceCode {
        /// `device_code` (empty when absent, which names no device code).
        device_code: SecretString,
    },
}

/// The `grant_type` of a token request: read before anything else, so a request without one
/// is refused before the client is authenticated.
pub fn grant_type(form: &HashMap<String, String>) -> Result<&str> {
    form.get("grant_type")
        .map(String::as_str)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| Error::invalid_request("grant_type is missing"))
}

impl TokenRequest {
    /// The request of `grant_type` with its parameters from `form`; `unsupported_grant_type`
    /// names every supported one.
    pub fn parse(grant_type: &str, form: &HashMap<String, String>) -> Result<Self> {
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let secret = |k: &str| SecretString::new(field(k));
        Ok(match grant_type {
            "authorization_code" => Self::AuthorizationCode {
                code: secret("code"),
                redirect_uri: field("redirect_uri").to_owned(),
                code_verifier: Some(field("code_verifier"))
                    .filter(|v| !v.is_empty())
                    .map(SecretString::new),
            },
            "refresh_token" => {
                let refresh_token = field("refresh_token");
                if refresh_token.is_empty() {
                    return Err(Error::invalid_request("refresh_token is missing"));
                }
                Self::RefreshToken {
                    refresh_token: SecretString::new(refresh_token),
                }
            }
            "client_credentials" => Self::ClientCredentials {
                scope: field("scope").to_owned(),
            },
            DEVICE_CODE => Self::DeviceCode {
                device_code: secret("device_code"),
            },
            _ => {
                return Err(Error::OAuth {
                    code: "unsupported_grant_type",
                    description: format!("supported: {}", GRANT_TYPES.join(", ")),
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn each_grant_type_reads_its_own_parameters() {
        let code = form(&[
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", "https://app.example/cb"),
            ("code_verifier", ""),
            ("refresh_token", "ignored"),
        ]);
        let TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } = TokenRequest::parse(grant_type(&code).unwrap(), &code).unwrap()
        else {
            panic!("not a code request");
        };
        assert_eq!(code.expose(), "c");
        assert_eq!(redirect_uri, "https://app.example/cb");
        assert!(code_verifier.is_none());
        let refresh = form(&[("grant_type", "refresh_token")]);
        assert!(matches!(
            TokenRequest::parse("refresh_token", &refresh),
            Err(Error::OAuth {
                code: "invalid_request",
                ..
            })
        ));
        assert!(matches!(
            TokenRequest::parse(DEVICE_CODE, &form(&[("device_code", "d")])),
            Ok(TokenRequest::DeviceCode { .. })
        ));
        assert!(matches!(
            TokenRequest::parse("password", &form(&[])),
            Err(Error::OAuth {
                code: "unsupported_grant_type",
                ..
            })
        ));
        assert!(grant_type(&form(&[("grant_type", "")])).is_err());
    }
}
