//! The validation authority: checks a challenge answer and, only when it holds, returns the
//! [`ValidatedAnswer`] the registration authority needs to mark a challenge valid.
//!
//! Validators are pure functions over `proto` ([`wire_dpop`], [`wire_oidc`]); this module adds
//! the trusted keys ([`keys`]) and maps failures to problem documents. A failing token is the
//! client's fault and invalidates the challenge ([`Outcome::Refused`]); failing to fetch keys is
//! ours and leaves the challenge pending (an `Err`).
//!
//! The standard validators connect only where the address policy ([`addresses`]) allows:
//! `ValidationAuthority::address_of` resolves a name itself (A and AAAA through the validation
//! resolver, [`dns`]), drops every refused address and hands the validator one admitted
//! address, or refuses before any connection with one detail that says nothing about what is
//! at the address.

pub mod addresses;
pub mod dns;
pub mod dns01;
pub mod http01;
pub mod keys;
pub mod tls_alpn01;
pub mod wire_dpop;
pub mod wire_oidc;

use std::sync::Arc;

use proto::acme::{DNS_01, HTTP_01, Identifier, TLS_ALPN_01, WIRE_DPOP_01, WIRE_OIDC_01};
use proto::clock::UnixTime;
use proto::jwk::Jwk;

use crate::config::Config;
use crate::error::{Error, ProblemType, Result, challenge_problem};
use keys::{KeySource, Remote};

/// What a validator knows about the challenge being answered.
#[derive(Debug, Clone, Copy)]
pub struct ChallengeContext<'a> {
    /// The ACME account's key.
    pub account_key: &'a Jwk,
    /// This challenge's URL.
    pub url: &'a str,
    /// This challenge's token.
    pub token: &'a str,
    /// This challenge's `target`.
    pub target: &'a str,
    /// The order's identity.
    pub identity: &'a proto::wire_id::WireIdentity,
}

/// What a standard validator knows about the challenge being answered.
#[derive(Debug, Clone, Copy)]
pub struct StandardContext<'a> {
    /// The ACME account's key.
    pub account_key: &'a Jwk,
    /// This challenge's URL.
    pub url: &'a str,
    /// This challenge's token.
    pub token: &'a str,
    /// The authorization's identifier (`dns` without `*.`, or `ip`).
    pub identifier: &'a Identifier,
}

/// Proof that an answer to the challenge at `url` verified.
#[derive(Debug, Clone)]
pub struct ValidatedAnswer {
    url: String,
}

impl ValidatedAnswer {
    /// The challenge it validates.
    pub fn challenge_url(&self) -> &str {
        &self.url
    }
}

/// The result of checking an answer.
#[derive(Debug)]
pub enum Outcome {
    /// The answer holds.
    Valid(ValidatedAnswer),
    /// The answer is wrong: the challenge becomes invalid with this problem.
    Refused(Error),
}

/// A token check over a set of trusted keys.
type TokenCheck<'c> = Box<dyn Fn(&[Jwk]) -> proto::Result<()> + Send + Sync + 'c>;

/// The validators with their trusted keys.
#[derive(Debug)]
pub struct ValidationAuthority {
    backend_keys: Arc<KeySource>,
    issuer_keys: Arc<KeySource>,
    dpop: crate::config::DpopConfig,
    oidc: crate::config::OidcConfig,
    validation: crate::config::ValidationConfig,
    addresses: addresses::AddressPolicy,
    dns_server: Option<std::net::SocketAddr>,
    plain_http: reqwest::Client,
}

impl ValidationAuthority {
    /// Builds the key sources from the configuration.
    pub fn new(config: &Config) -> Result<Self> {
        let http = server_kit::tls::https_client(
            &config.trust_anchors,
            std::time::Duration::from_secs(10),
        )?;
        let mut fixed = Vec::new();
        for path in &config.wire_dpop.backend_keys {
            let pem = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            fixed.push(
                proto::spki::jwk_from_spki_pem(&pem)
                    .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?,
            );
        }
        let backend_keys = KeySource::new(
            fixed,
            config.wire_dpop.backend_jwks_url.clone().map(Remote::Jwks),
            http.clone(),
        );
        let issuer_remote = match &config.wire_oidc.jwks_url {
            Some(url) => Remote::Jwks(url.clone()),
            None => Remote::Discovery(config.wire_oidc.issuer.clone()),
        };
        let issuer_keys = KeySource::new(Vec::new(), Some(issuer_remote), http);
        let timeout = std::time::Duration::from_secs(config.validation.timeout.max(1));
        Ok(Self {
            backend_keys,
            issuer_keys,
            dpop: config.wire_dpop.clone(),
            oidc: config.wire_oidc.clone(),
            validation: config.validation.clone(),
            addresses: addresses::AddressPolicy::new(&config.validation.allowed_networks),
            dns_server: config.validation.dns_server.or_else(dns::system_resolver),
            plain_http: http01::client(timeout)?,
        })
    }

    /// Whether standard validation may connect to `ip` (the address policy, [`addresses`]).
    pub fn permits(&self, ip: std::net::IpAddr) -> bool {
        self.addresses.permits(ip)
    }

    /// Checks `payload` as the answer to a challenge of type `kind`.
    pub async fn validate(
        &self,
        kind: &str,
        payload: &[u8],
        ctx: &ChallengeContext<'_>,
        now: UnixTime,
    ) -> Result<Outcome> {
        let (source, check): (&KeySource, TokenCheck<'_>) = match kind {
            WIRE_DPOP_01 => {
                let answer: proto::acme::DpopAnswer = parse_answer(payload)?;
                let policy = wire_dpop::policy(&self.dpop);
                let ctx = *ctx;
                let check = move |keys: &[Jwk]| {
                    wire_dpop::check(&answer.access_token, &ctx, keys, &policy, now)
                };
                (&self.backend_keys, Box::new(check))
            }
            WIRE_OIDC_01 => {
                let answer: proto::acme::OidcAnswer = parse_answer(payload)?;
                let oidc = self.oidc.clone();
                let ctx = *ctx;
                let check =
                    move |keys: &[Jwk]| wire_oidc::check(&answer.id_token, &ctx, keys, &oidc, now);
                (&self.issuer_keys, Box::new(check))
            }
            other => {
                return Err(Error::malformed(format!(
                    "challenge type {other} cannot be answered here"
                )));
            }
        };
        let mut result = check(&source.keys(now, false).await?);
        if matches!(result, Err(proto::Error::UnknownSigningKey)) {
            result = check(&source.keys(now, true).await?);
        }
        Ok(match result {
            Ok(()) => Outcome::Valid(ValidatedAnswer {
                url: ctx.url.to_owned(),
            }),
            Err(e) => Outcome::Refused(Error::problem(
                challenge_problem(&e),
                format!("{kind}: {e}"),
            )),
        })
    }
}

impl ValidationAuthority {
    /// Checks an answer to an http-01, dns-01 or tls-alpn-01 challenge. The payload must be
    /// `{}` (RFC 8555 §7.5.1, strictly).
    pub async fn validate_standard(
        &self,
        kind: &str,
        payload: &[u8],
        ctx: &StandardContext<'_>,
    ) -> Result<Outcome> {
        if serde_json::from_slice::<serde_json::Value>(payload).ok() != Some(serde_json::json!({}))
        {
            return Err(Error::malformed(format!(
                "a {kind} challenge is answered with the payload {{}}"
            )));
        }
        let keyauth = proto::wire_id::key_authorization(ctx.token, &ctx.account_key.thumbprint());
        let timeout = std::time::Duration::from_secs(self.validation.timeout.max(1));
        let value = ctx.identifier.value.as_str();
        let checked = tokio::time::timeout(timeout, async {
            match kind {
                HTTP_01 => {
                    let ip = self.address_of(kind, ctx.identifier).await?;
                    http01::check(
                        &self.plain_http,
                        ip,
                        self.validation.http_port,
                        value,
                        ctx.token,
                        &keyauth,
                    )
                    .await
                }
                DNS_01 => dns01::check(self.dns_server, value, &keyauth, timeout).await,
                TLS_ALPN_01 => {
                    let ip = self.address_of(kind, ctx.identifier).await?;
                    let expected = match value.parse::<std::net::IpAddr>() {
                        Ok(ip) if ctx.identifier.kind == crate::ra::names::IP => {
                            tls_alpn01::Expected::Ip(ip)
                        }
                        _ => tls_alpn01::Expected::Dns(value),
                    };
                    let addr = std::net::SocketAddr::new(ip, self.validation.tls_port);
                    tls_alpn01::check(addr, expected, &keyauth).await
                }
                other => Err(Error::malformed(format!(
                    "challenge type {other} cannot be answered here"
                ))),
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(Error::problem(
                ProblemType::Connection,
                format!("{kind} validation of {value} timed out"),
            ))
        });
        match checked {
            Ok(()) => Ok(Outcome::Valid(ValidatedAnswer {
                url: ctx.url.to_owned(),
            })),
            Err(Error::Problem {
                kind: ProblemType::Malformed,
                detail,
                subproblems,
            }) => Err(Error::Problem {
                kind: ProblemType::Malformed,
                detail,
                subproblems,
            }),
            Err(e @ Error::Problem { .. }) => Ok(Outcome::Refused(e)),
            Err(other) => Err(other),
        }
    }

    /// Where `kind` validation connects for an identifier: the `ip` identifier itself, or an
    /// address of the `dns` name (the `resolve_to` test address, else its A then AAAA records
    /// from the validation resolver); the first one the address policy admits. When it admits
    /// none: `rejectedIdentifier` with the one [`addresses::REFUSED`] detail, before anything
    /// connects.
    async fn address_of(&self, kind: &str, identifier: &Identifier) -> Result<std::net::IpAddr> {
        let candidates = if identifier.kind == crate::ra::names::IP {
            let ip = identifier
                .value
                .parse()
                .map_err(|_| Error::malformed("the ip identifier is not an address"))?;
            vec![ip]
        } else if let Some(ip) = self.validation.resolve_to {
            vec![ip]
        } else {
            self.resolve(&identifier.value).await?
        };
        candidates
            .into_iter()
            .find(|ip| self.addresses.permits(*ip))
            .ok_or_else(|| {
                Error::problem(
                    ProblemType::RejectedIdentifier,
                    format!("{kind}: {}", addresses::REFUSED),
                )
            })
    }

    /// The addresses of `name` according to the validation resolver.
    async fn resolve(&self, name: &str) -> Result<Vec<std::net::IpAddr>> {
        let timeout = std::time::Duration::from_secs(self.validation.timeout.max(1));
        let server = self.dns_server.ok_or_else(|| {
            Error::problem(
                ProblemType::Dns,
                "no DNS server is configured for validation",
            )
        })?;
        let found = dns::addresses(server, name, timeout)
            .await
            .map_err(|e| Error::problem(ProblemType::Dns, format!("A/AAAA {name}: {e}")))?;
        if found.is_empty() {
            return Err(Error::problem(
                ProblemType::Dns,
                format!("{name} has no A or AAAA record"),
            ));
        }
        Ok(found)
    }
}

fn parse_answer<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| {
        Error::problem(
            ProblemType::Malformed,
            format!("the challenge answer is not the expected JSON object: {e}"),
        )
    })
}
