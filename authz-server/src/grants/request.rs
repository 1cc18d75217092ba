//! The token request, read from the form into the grant it asks for with that grant's
//! parameters before any grant logic runs: authorization code (RFC 6749 §4.1.3), refresh token
//! (§6), client credentials (§4.4), device code (RFC 8628 §3.4), token exchange (RFC 8693
//! §2.1: one of our access tokens as the subject token, an upstream as the target), a JWT
//! bearer assertion (RFC 7523 §2.1), or — any other absolute URI — the grant type of a remote
//! verifier (RFC 6749 §4.5 extension grant, [`crate::remote_auth`]) with the form's parameters,
//! which the verifier checks. The client's credentials in the same form are read by the front
//! end ([`crate::oauth_clients::authentication`]).

use std::collections::HashMap;

use proto::secret::SecretString;

use crate::error::{Error, Result};

/// The device code grant type of RFC 8628 §3.4.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The token exchange grant type of RFC 8693 §2.1.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The JWT bearer grant type of RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// RFC 8693 §3: the token type of an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The grant types `/token` accepts (`grant_types_supported`), besides the remote verifiers'
/// (and [`JWT_BEARER`] only once an issuer is configured).
pub const GRANT_TYPES: [&str; 6] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    DEVICE_CODE,
    TOKEN_EXCHANGE,
    JWT_BEARER,
];

/// Whether `grant_type` is one this server implements itself (not a remote verifier's), or the
/// `password` or `implicit` grants OAuth 2.1 removed.
pub fn is_standard(grant_type: &str) -> bool {
    GRANT_TYPES.contains(&grant_type)
        || grant_type.starts_with("urn:ietf:params:oauth:")
        || ["password", "implicit"].contains(&grant_type)
}

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
        /// RFC 8707 `resource`.
        resource: Option<String>,
    },
    /// `refresh_token`.
    RefreshToken {
        /// `refresh_token`.
        refresh_token: SecretString,
        /// RFC 8707 `resource` (absent: the resource the family was granted for).
        resource: Option<String>,
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
        /// RFC 8707 `resource`.
        resource: Option<String>,
    },
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    TokenExchange(TokenExchangeRequest),
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    JwtBearer {
        /// `assertion`: one JWT.
        assertion: SecretString,
        /// `scope` (empty when absent).
        scope: String,
        /// RFC 8707 `resource`.
        resource: Option<String>,
    },
    /// Another absolute URI: a remote verifier's grant type, if one is configured.
    RemoteAuth(RemoteAuthRequest),
}

/// A request under a remote verifier's grant type: the parameters stay in the form until the
/// verifier's own list picks them (`Debug` leaves them out: one may be a one-time secret).
pub struct RemoteAuthRequest {
    /// `grant_type`.
    pub grant_type: String,
    /// `scope` (empty when absent).
    pub scope: String,
    /// RFC 8707 `resource`.
    pub resource: Option<String>,
    /// The form, from which the verifier takes its parameters.
    pub form: HashMap<String, String>,
}

impl std::fmt::Debug for RemoteAuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteAuthRequest")
            .field("grant_type", &self.grant_type)
            .field("scope", &self.scope)
            .field("resource", &self.resource)
            .finish_non_exhaustive()
    }
}

/// A token exchange request: one of our access tokens, and the upstream whose token is wanted.
#[derive(Debug)]
pub struct TokenExchangeRequest {
    /// `subject_token` (an access token of ours).
    pub subject_token: SecretString,
    /// The upstream named: `audience` (its id) or `resource` (its issuer or id).
    pub target: String,
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
                resource: resource(form)?,
            },
            "refresh_token" => {
                let refresh_token = field("refresh_token");
                if refresh_token.is_empty() {
                    return Err(Error::invalid_request("refresh_token is missing"));
                }
                Self::RefreshToken {
                    refresh_token: SecretString::new(refresh_token),
                    resource: resource(form)?,
                }
            }
            "client_credentials" => {
                if resource(form)?.is_some() {
                    return Err(invalid_target(
                        "resource indicators are taken for users' tokens only",
                    ));
                }
                Self::ClientCredentials {
                    scope: field("scope").to_owned(),
                }
            }
            DEVICE_CODE => Self::DeviceCode {
                device_code: secret("device_code"),
                resource: resource(form)?,
            },
            TOKEN_EXCHANGE => Self::TokenExchange(TokenExchangeRequest::parse(form)?),
            JWT_BEARER => {
                let assertion = field("assertion");
                if assertion.is_empty() {
                    return Err(Error::invalid_request("assertion is missing"));
                }
                if assertion.len() > crate::jwt_bearer::assertion::MAX_ASSERTION {
                    return Err(Error::invalid_request("assertion is too long"));
                }
                Self::JwtBearer {
                    assertion: SecretString::new(assertion),
                    scope: field("scope").to_owned(),
                    resource: resource(form)?,
                }
            }
            other if !is_standard(other) && url::Url::parse(other).is_ok() => {
                Self::RemoteAuth(RemoteAuthRequest {
                    grant_type: other.to_owned(),
                    scope: field("scope").to_owned(),
                    resource: resource(form)?,
                    form: form.clone(),
                })
            }
            _ => {
                return Err(Error::OAuth {
                    code: "unsupported_grant_type",
                    description: format!("supported: {}", GRANT_TYPES.join(", ")),
                });
            }
        })
    }
}

/// RFC 8707 §2's `invalid_target`.
fn invalid_target(description: impl Into<String>) -> Error {
    Error::OAuth {
        code: "invalid_target",
        description: description.into(),
    }
}

/// The RFC 8707 `resource` of a user's token request, if it names one: an absolute URI
/// without a fragment (`invalid_target` otherwise). Whether tokens are issued for it is the
/// grant's decision ([`crate::claims_sources::ClaimsSources::check_resource`]).
fn resource(form: &HashMap<String, String>) -> Result<Option<String>> {
    match form.get("resource").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(r) if crate::claims_sources::config::is_resource(r) => Ok(Some(r.to_owned())),
        Some(_) => Err(invalid_target(
            "resource must be an absolute URI without a fragment (RFC 8707 §2)",
        )),
    }
}

impl TokenExchangeRequest {
    /// The parameters of RFC 8693 §2.1 this server takes: a `subject_token` of type
    /// `access_token`, an upstream named by `audience` or `resource` (both must then name the
    /// same one), no `actor_token`, and `requested_token_type` absent or `access_token`.
    fn parse(form: &HashMap<String, String>) -> Result<Self> {
        let field = |k: &str| form.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let subject_token = field("subject_token")
            .ok_or_else(|| Error::invalid_request("subject_token is missing"))?;
        if field("subject_token_type") != Some(ACCESS_TOKEN_TYPE) {
            return Err(Error::invalid_request(format!(
                "subject_token_type must be {ACCESS_TOKEN_TYPE}"
            )));
        }
        if field("requested_token_type").is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
            return Err(Error::invalid_request(format!(
                "requested_token_type may only be {ACCESS_TOKEN_TYPE}"
            )));
        }
        if field("actor_token").is_some() || field("actor_token_type").is_some() {
            return Err(Error::invalid_request(
                "delegation (actor_token) is not supported",
            ));
        }
        let target = match (field("audience"), field("resource")) {
            (Some(audience), Some(resource)) if audience != resource => {
                return Err(invalid_target(
                    "audience and resource name different upstreams",
                ));
            }
            (Some(target), _) | (None, Some(target)) => target,
            (None, None) => {
                return Err(Error::invalid_request(
                    "audience (an upstream's id) or resource (its issuer) is required",
                ));
            }
        };
        Ok(Self {
            subject_token: SecretString::new(subject_token),
            target: target.to_owned(),
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
            resource,
        } = TokenRequest::parse(grant_type(&code).unwrap(), &code).unwrap()
        else {
            panic!("not a code request");
        };
        assert_eq!(code.expose(), "c");
        assert_eq!(redirect_uri, "https://app.example/cb");
        assert!(code_verifier.is_none());
        assert!(resource.is_none());
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
        let Ok(TokenRequest::JwtBearer {
            assertion, scope, ..
        }) = TokenRequest::parse(
            JWT_BEARER,
            &form(&[("assertion", "a.b.c"), ("scope", "openid")]),
        )
        else {
            panic!("not a JWT bearer request");
        };
        assert_eq!((assertion.expose(), scope.as_str()), ("a.b.c", "openid"));
        assert!(TokenRequest::parse(JWT_BEARER, &form(&[])).is_err());
        let remote = form(&[("username", "alice"), ("server_hash", "s3cret-hash")]);
        let Ok(TokenRequest::RemoteAuth(request)) =
            TokenRequest::parse("https://auth.example/grant-type/minecraft", &remote)
        else {
            panic!("not a remote verifier's request");
        };
        assert_eq!(
            request.form.get("username").map(String::as_str),
            Some("alice")
        );
        assert!(!format!("{request:?}").contains("s3cret"));
        for not_remote in [
            "urn:ietf:params:oauth:grant-type:saml2-bearer",
            "implicit",
            "x y",
        ] {
            assert!(
                matches!(
                    TokenRequest::parse(not_remote, &remote),
                    Err(Error::OAuth {
                        code: "unsupported_grant_type",
                        ..
                    })
                ),
                "{not_remote}"
            );
        }
    }

    #[test]
    fn a_resource_is_an_absolute_uri_without_a_fragment() {
        let with = |resource: &str| form(&[("refresh_token", "r"), ("resource", resource)]);
        let Ok(TokenRequest::RefreshToken { resource, .. }) =
            TokenRequest::parse("refresh_token", &with("https://game.test/eu-1"))
        else {
            panic!("not a refresh request");
        };
        assert_eq!(resource.as_deref(), Some("https://game.test/eu-1"));
        for bad in [
            "eu-1",
            "https://game.test/#x",
            "/relative",
            "https://game.test/servers/../admin",
            "https://game.test/servers/%2e%2e/admin",
        ] {
            assert!(
                matches!(
                    TokenRequest::parse("refresh_token", &with(bad)),
                    Err(Error::OAuth {
                        code: "invalid_target",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            TokenRequest::parse("client_credentials", &with("https://game.test/")),
            Err(Error::OAuth {
                code: "invalid_target",
                ..
            })
        ));
    }

    #[test]
    fn a_token_exchange_names_an_access_token_and_one_upstream() {
        let good = [
            ("subject_token", "at"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("audience", "corp"),
        ];
        let Ok(TokenRequest::TokenExchange(request)) =
            TokenRequest::parse(TOKEN_EXCHANGE, &form(&good))
        else {
            panic!("not a token exchange");
        };
        assert_eq!(
            (request.subject_token.expose(), request.target.as_str()),
            ("at", "corp")
        );
        let by_resource = [
            ("subject_token", "at"),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", "https://idp.test"),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
        ];
        let Ok(TokenRequest::TokenExchange(request)) =
            TokenRequest::parse(TOKEN_EXCHANGE, &form(&by_resource))
        else {
            panic!("not a token exchange");
        };
        assert_eq!(request.target, "https://idp.test");
        let refused = |extra: &[(&str, &str)], without: &str| {
            let mut pairs: Vec<(&str, &str)> = good
                .iter()
                .copied()
                .filter(|(k, _)| *k != without)
                .collect();
            pairs.extend_from_slice(extra);
            match TokenRequest::parse(TOKEN_EXCHANGE, &form(&pairs)) {
                Err(Error::OAuth { code, description }) => format!("{code}: {description}"),
                other => panic!("{other:?}"),
            }
        };
        let id_token_type = "urn:ietf:params:oauth:token-type:id_token";
        for (extra, without, expected) in [
            (
                vec![],
                "subject_token",
                "invalid_request: subject_token is missing",
            ),
            (
                vec![],
                "subject_token_type",
                "invalid_request: subject_token_type",
            ),
            (
                vec![("requested_token_type", id_token_type)],
                "",
                "invalid_request: requested_token_type",
            ),
            (
                vec![("actor_token", "x")],
                "",
                "invalid_request: delegation",
            ),
            (vec![], "audience", "invalid_request: audience"),
            (
                vec![("resource", "other")],
                "",
                "invalid_target: audience and resource",
            ),
        ] {
            let message = refused(&extra, without);
            assert!(message.starts_with(expected), "{message}");
        }
        let mut wrong_type = form(&good);
        wrong_type.insert("subject_token_type".into(), id_token_type.into());
        assert!(TokenRequest::parse(TOKEN_EXCHANGE, &wrong_type).is_err());
    }
}
