//! How this server authenticates at an upstream's token endpoint (`client_auth`): its client id
//! and a secret in HTTP Basic (`client_secret_basic`, RFC 6749 §2.3.1: both form-encoded first)
//! or in the form (`client_secret_post`), or an RFC 7523 §2.2 client assertion
//! (`private_key_jwt`) signed with an ES256 or EdDSA key read from an owner-only PKCS#8 PEM
//! file — `iss` and `sub` our client id, `aud` the token endpoint, a random `jti`, `iat`, and
//! `exp` [`ASSERTION_LIFETIME`] later. The secret and the key are never printed.

use base64::Engine;
use proto::clock::UnixTime;
use proto::jws::{Algorithm, SigningKey};
use proto::secret::SecretString;
use serde_json::{Map, Value, json};

use super::config::{ClientAuth, UpstreamConfig};
use crate::error::{Error, Result};

/// Seconds a client assertion is valid.
pub const ASSERTION_LIFETIME: i64 = 60;

/// The client secret this server authenticates with at an upstream (redacted in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(SecretString);

impl ClientSecret {
    /// The secret, for the token request.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(…)")
    }
}

/// What this server proves itself with at one upstream (`Debug` shows no secret and no
/// private key).
#[derive(Debug)]
pub enum UpstreamCredentials {
    /// A client secret, in HTTP Basic or (with `post`) in the form.
    Secret {
        /// The secret.
        secret: ClientSecret,
        /// `client_secret_post`.
        post: bool,
    },
    /// A private key signing client assertions.
    Key(SigningKey),
}

/// What a token request carries to authenticate: form fields and, for Basic, a header
/// (`Debug` shows only the field names).
#[derive(Default)]
pub struct Authentication {
    /// Fields added to the form.
    pub fields: Vec<(&'static str, String)>,
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
}

impl std::fmt::Debug for Authentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.fields.iter().map(|(name, _)| *name).collect();
        f.debug_struct("Authentication")
            .field("fields", &names)
            .field("authorization", &self.authorization.is_some())
            .finish()
    }
}

impl UpstreamCredentials {
    /// Reads the secret (a 0600 file or the environment) or the private key (a 0600 PKCS#8
    /// PEM file) of a validated upstream.
    pub fn load(config: &UpstreamConfig) -> std::result::Result<Self, String> {
        match config.client_auth {
            ClientAuth::ClientSecretBasic => Ok(Self::Secret {
                secret: read_secret(config)?,
                post: false,
            }),
            ClientAuth::ClientSecretPost => Ok(Self::Secret {
                secret: read_secret(config)?,
                post: true,
            }),
            ClientAuth::PrivateKeyJwt => {
                let path = config
                    .private_key_file
                    .as_ref()
                    .ok_or("no private_key_file")?;
                let pem = proto::secret::SecretBytes::new(
                    server_kit::files::read_private(path)
                        .map_err(|e| format!("private_key_file: {e}"))?,
                );
                let key = signing_key(pem.expose())
                    .map_err(|e| format!("private_key_file {}: {e}", path.display()))?;
                Ok(Self::Key(match &config.private_key_kid {
                    Some(kid) => key.with_kid(kid),
                    None => key,
                }))
            }
        }
    }

    /// How a token request of `client_id` to `token_endpoint` authenticates at `now`.
    pub fn authentication(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: UnixTime,
    ) -> Result<Authentication> {
        Ok(match self {
            Self::Secret { secret, post: true } => Authentication {
                fields: vec![
                    ("client_id", client_id.to_owned()),
                    ("client_secret", secret.expose().to_owned()),
                ],
                authorization: None,
            },
            Self::Secret {
                secret,
                post: false,
            } => {
                let encode = |v: &str| {
                    url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
                };
                let credentials = format!("{}:{}", encode(client_id), encode(secret.expose()));
                Authentication {
                    fields: Vec::new(),
                    authorization: Some(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(credentials)
                    )),
                }
            }
            Self::Key(key) => Authentication {
                fields: vec![
                    ("client_id", client_id.to_owned()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                    ),
                    (
                        "client_assertion",
                        client_assertion(key, client_id, token_endpoint, now)?,
                    ),
                ],
                authorization: None,
            },
        })
    }

    /// The public key of a `private_key_jwt` upstream, to register there.
    pub fn public_jwk(&self) -> Option<&proto::jwk::Jwk> {
        match self {
            Self::Key(key) => Some(key.public_jwk()),
            Self::Secret { .. } => None,
        }
    }
}

/// The client secret of a validated upstream: from its file (owner-only) or variable,
/// trimmed, not empty.
fn read_secret(config: &UpstreamConfig) -> std::result::Result<ClientSecret, String> {
    crate::config::read_secret_setting(
        "client_secret",
        config.client_secret_file.as_deref(),
        config.client_secret_env.as_deref(),
    )
    .map(ClientSecret)
}

/// The ES256 (P-256) or EdDSA (Ed25519) key of a PKCS#8 PEM file.
fn signing_key(pem: &[u8]) -> std::result::Result<SigningKey, String> {
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject;
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
        .map_err(|_| "not a PKCS#8 PEM private key (BEGIN PRIVATE KEY)".to_owned())?;
    [Algorithm::Es256, Algorithm::EdDsa]
        .into_iter()
        .find_map(|alg| SigningKey::from_pkcs8_der(alg, der.secret_pkcs8_der()).ok())
        .ok_or_else(|| "not a P-256 (ES256) or Ed25519 (EdDSA) key".to_owned())
}

/// The claims of a client assertion (RFC 7523 §3).
fn assertion_claims(client_id: &str, audience: &str, now: UnixTime) -> Map<String, Value> {
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": proto::random::token(128),
        "iat": now,
        "exp": now.saturating_add(ASSERTION_LIFETIME),
    });
    match claims {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A client assertion of `client_id` for `audience` (the token endpoint), signed with `key`.
pub fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
    now: UnixTime,
) -> Result<String> {
    key.sign_jwt("JWT", false, &assertion_claims(client_id, audience, now))
        .map_err(|e| Error::Internal(format!("client assertion: {e}")))
}

#[cfg(test)]
mod tests {
    use proto::jws::UnverifiedJws;

    use super::*;

    fn pem_of(key: &SigningKey) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(key.pkcs8_der().expose());
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n")
    }

    #[test]
    fn the_assertion_names_us_the_token_endpoint_and_a_fresh_jti_for_a_minute() {
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            let key = signing_key(pem_of(&SigningKey::generate(alg).unwrap()).as_bytes())
                .unwrap()
                .with_kid("k-1");
            assert_eq!(key.algorithm(), alg);
            let token = client_assertion(&key, "broker", "https://idp.test/token", 1_000).unwrap();
            let jws = UnverifiedJws::from_compact(&token).unwrap();
            assert_eq!(jws.header().kid(), Some("k-1"));
            assert_eq!(jws.header().algorithm().unwrap(), alg);
            let claims = jws.verify(key.public_jwk()).unwrap().claims().unwrap();
            assert_eq!(claims.string("iss").unwrap(), "broker");
            assert_eq!(claims.string("sub").unwrap(), "broker");
            assert_eq!(claims.string("aud").unwrap(), "https://idp.test/token");
            assert_eq!(claims.int("iat").unwrap(), 1_000);
            assert_eq!(claims.int("exp").unwrap(), 1_060);
            assert!(claims.string("jti").unwrap().len() >= 22);
            let again = client_assertion(&key, "broker", "https://idp.test/token", 1_000).unwrap();
            let jti = |t: &str| {
                UnverifiedJws::from_compact(t)
                    .unwrap()
                    .verify(key.public_jwk())
                    .unwrap()
                    .claims()
                    .unwrap()
                    .string("jti")
                    .unwrap()
                    .to_owned()
            };
            assert_ne!(jti(&token), jti(&again));
        }
        let p384 = SigningKey::generate(Algorithm::Es384).unwrap();
        assert!(signing_key(pem_of(&p384).as_bytes()).is_err());
        assert!(
            signing_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err()
        );
    }

    #[test]
    fn secrets_go_in_basic_or_the_form_and_never_print() {
        let secret = ClientSecret(SecretString::new("s3:cret&"));
        let basic = UpstreamCredentials::Secret {
            secret: secret.clone(),
            post: false,
        };
        let auth = basic
            .authentication("id:1", "https://idp.test/token", 0)
            .unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("id%3A1:s3%3Acret%26");
        assert_eq!(auth.authorization, Some(format!("Basic {expected}")));
        assert!(auth.fields.is_empty());
        let post = UpstreamCredentials::Secret { secret, post: true };
        let auth = post
            .authentication("id:1", "https://idp.test/token", 0)
            .unwrap();
        assert_eq!(auth.authorization, None);
        assert_eq!(
            auth.fields,
            [
                ("client_id", "id:1".to_owned()),
                ("client_secret", "s3:cret&".to_owned())
            ]
        );
        assert!(!format!("{basic:?}{post:?}").contains("s3"));
    }
}
