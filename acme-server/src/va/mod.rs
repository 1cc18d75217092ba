//! The validation authority: checks a challenge answer ([`Answer`], through the one entry point
//! [`ValidationAuthority::validate`]) and, only when it holds, returns the [`ValidatedAnswer`] the
//! registration authority needs to mark a challenge valid.
//!
//! The Wire validators are pure functions over `proto` ([`wire_dpop`], [`wire_oidc`]); this
//! module adds the trusted keys ([`keys`]) and classifies failures by problem type. A failing
//! token is the client's fault and invalidates the challenge ([`Outcome::Refused`]); failing to
//! fetch keys is ours and leaves the challenge pending (an `Err`).
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

use proto::clock::UnixTime;
use proto::jwk::Jwk;
use proto::wire_id::WireIdentity;

use crate::config::Config;
use crate::error::{Error, ProblemType, Result, challenge_problem};
use crate::model::{ChallengeKind, ChallengeRecord, Identifier, IdentifierKind, OrderProfile};
use keys::{KeySource, Remote};

/// An answer to check: the payload posted to a challenge, with the challenge, its
/// authorization's identifier and its order's profile.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The JWS payload.
    pub payload: &'a [u8],
    /// The challenge answered.
    pub challenge: &'a ChallengeRecord,
    /// Its URL.
    pub url: &'a str,
    /// The key of the account answering.
    pub account_key: &'a Jwk,
    /// The authorization's identifier (`dns` without `*.`, `ip`, or a Wire identifier).
    pub identifier: &'a Identifier,
    /// What the order certifies.
    pub profile: &'a OrderProfile,
}

impl<'a> Answer<'a> {
    /// What a validator proving `subject` knows about the challenge.
    fn context<S>(&self, subject: S) -> ChallengeContext<'a, S> {
        ChallengeContext {
            account_key: self.account_key,
            url: self.url,
            token: &self.challenge.token,
            subject,
        }
    }
}

/// What a validator knows about the challenge being answered: what every challenge has, and
/// `subject`, what it proves ([`WireSubject`] for the Wire challenges, the [`Identifier`] for
/// the standard ones).
#[derive(Debug, Clone, Copy)]
pub struct ChallengeContext<'a, S> {
    /// The ACME account's key.
    pub account_key: &'a Jwk,
    /// This challenge's URL.
    pub url: &'a str,
    /// This challenge's token.
    pub token: &'a str,
    /// What the challenge proves.
    pub subject: S,
}

/// What a Wire challenge proves: the order's identity, with a token from this challenge's
/// `target`.
#[derive(Debug, Clone, Copy)]
pub struct WireSubject<'a> {
    /// The order's identity.
    pub identity: &'a WireIdentity,
    /// This challenge's `target`.
    pub target: &'a str,
}

/// A Wire challenge's context.
pub type WireContext<'a> = ChallengeContext<'a, WireSubject<'a>>;

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
        // A key fetch is part of a validation: it gets the validation's timeout.
        let http = server_kit::tls::https_client(
            &config.trust_anchors,
            std::time::Duration::from_secs(config.validation.timeout.max(1)),
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

    /// Checks an answer: a Wire challenge of an identity order against the order's identity, a
    /// standard challenge of a name order against its identifier; any other pairing cannot be
    /// answered here.
    pub async fn validate(&self, answer: &Answer<'_>, now: UnixTime) -> Result<Outcome> {
        let challenge = answer.challenge;
        match (&challenge.kind, answer.profile) {
            (
                ChallengeKind::WireDpop01 | ChallengeKind::WireOidc01,
                OrderProfile::Identity(identity),
            ) => {
                let target = challenge.target.as_deref().unwrap_or_default();
                let ctx = answer.context(WireSubject { identity, target });
                self.validate_wire(&challenge.kind, answer.payload, &ctx, now)
                    .await
            }
            (kind, OrderProfile::Names(_)) => {
                let ctx = answer.context(answer.identifier);
                self.validate_standard(kind, answer.payload, &ctx).await
            }
            (other, OrderProfile::Identity(_)) => Err(cannot_be_answered(other)),
        }
    }

    /// Checks `payload` as the answer to a Wire challenge of type `kind`.
    async fn validate_wire(
        &self,
        kind: &ChallengeKind,
        payload: &[u8],
        ctx: &WireContext<'_>,
        now: UnixTime,
    ) -> Result<Outcome> {
        let (source, check): (&KeySource, TokenCheck<'_>) = match kind {
            ChallengeKind::WireDpop01 => {
                let answer: proto::acme::DpopAnswer = parse_answer(payload)?;
                let policy = wire_dpop::policy(&self.dpop);
                let ctx = *ctx;
                let check = move |keys: &[Jwk]| {
                    wire_dpop::check(&answer.access_token, &ctx, keys, &policy, now)
                };
                (&self.backend_keys, Box::new(check))
            }
            ChallengeKind::WireOidc01 => {
                let answer: proto::acme::OidcAnswer = parse_answer(payload)?;
                let oidc = self.oidc.clone();
                let ctx = *ctx;
                let check =
                    move |keys: &[Jwk]| wire_oidc::check(&answer.id_token, &ctx, keys, &oidc, now);
                (&self.issuer_keys, Box::new(check))
            }
            other => return Err(cannot_be_answered(other)),
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
    async fn validate_standard(
        &self,
        kind: &ChallengeKind,
        payload: &[u8],
        ctx: &ChallengeContext<'_, &Identifier>,
    ) -> Result<Outcome> {
        if serde_json::from_slice::<serde_json::Value>(payload).ok() != Some(serde_json::json!({}))
        {
            return Err(Error::malformed(format!(
                "a {kind} challenge is answered with the payload {{}}"
            )));
        }
        let keyauth = proto::wire_id::key_authorization(ctx.token, &ctx.account_key.thumbprint());
        let timeout = std::time::Duration::from_secs(self.validation.timeout.max(1));
        let identifier = ctx.subject;
        let value = identifier.value.as_str();
        let checked = tokio::time::timeout(timeout, async {
            match kind {
                ChallengeKind::Http01 => {
                    let ip = self.address_of(kind, identifier).await?;
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
                ChallengeKind::Dns01 => {
                    dns01::check(self.dns_server, value, &keyauth, timeout).await
                }
                ChallengeKind::TlsAlpn01 => {
                    let ip = self.address_of(kind, identifier).await?;
                    let expected = match value.parse::<std::net::IpAddr>() {
                        Ok(ip) if identifier.kind == IdentifierKind::Ip => {
                            tls_alpn01::Expected::Ip(ip)
                        }
                        _ => tls_alpn01::Expected::Dns(value),
                    };
                    let addr = std::net::SocketAddr::new(ip, self.validation.tls_port);
                    tls_alpn01::check(addr, expected, &keyauth).await
                }
                other => Err(cannot_be_answered(other)),
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
            Err(
                e @ Error::Problem {
                    kind: ProblemType::Malformed,
                    ..
                },
            ) => Err(e),
            Err(e @ Error::Problem { .. }) => Ok(Outcome::Refused(e)),
            Err(other) => Err(other),
        }
    }

    /// Where `kind` validation connects for an identifier: the `ip` identifier itself, or an
    /// address of the `dns` name (the `resolve_to` test address, else its A then AAAA records
    /// from the validation resolver); the first one the address policy admits. When it admits
    /// none: `rejectedIdentifier` with the one [`addresses::REFUSED`] detail, before anything
    /// connects.
    async fn address_of(
        &self,
        kind: &ChallengeKind,
        identifier: &Identifier,
    ) -> Result<std::net::IpAddr> {
        let candidates = if identifier.kind == IdentifierKind::Ip {
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

/// The refusal of an answer to a challenge type this order does not offer.
fn cannot_be_answered(kind: &ChallengeKind) -> Error {
    Error::malformed(format!("challenge type {kind} cannot be answered here"))
}

fn parse_answer<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| {
        Error::problem(
            ProblemType::Malformed,
            format!("the challenge answer is not the expected JSON object: {e}"),
        )
    })
}
