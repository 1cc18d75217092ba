//! The whole enrollment of DESIGN §4, step by step, each step timed, bounded by the step
//! timeout and reported to the [`Observer`]. [`Enrollment::run`] returns an [`Enrolled`]: the
//! chain, the credential key, the account key and the device, keys as PKCS#8 in secrets.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use proto::acme::{Authorization, Challenge, ChallengeStatus, WIRE_DPOP_01, WIRE_OIDC_01};
use proto::clock::{Clock, SystemClock};
use proto::dpop::{DpopClaims, WireClaims};
use proto::jws::SigningKey;
use proto::secret::SecretBytes;
use proto::wire_id::{ClientId, HandleUri, key_authorization};
use serde_json::{Value, json};

use crate::acme::AcmeClient;
use crate::authz::{Authz, Device};
use crate::certificate::{self, CertificateInfo, Identity};
use crate::config::{Config, KeyAlgorithm};
use crate::error::{Cause, Error, Result};
use crate::step::{Observer, Silent, Step};

/// Lifetime asked for the DPoP proof (`exp` − `iat`), in seconds.
const PROOF_LIFETIME: i64 = 300;

/// What an enrollment produced.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// Leaf then intermediate, PEM.
    pub chain_pem: String,
    /// The credential key (PKCS#8 DER) the leaf certifies.
    pub credential_key: SecretBytes,
    /// The ACME account key (PKCS#8 DER).
    pub account_key: SecretBytes,
    /// The key algorithm of both keys.
    pub algorithm: KeyAlgorithm,
    /// The ACME account URL.
    pub account_url: String,
    /// The device.
    pub device: Device,
    /// The certified identity.
    pub identity: Identity,
    /// What the leaf says.
    pub certificate: CertificateInfo,
}

/// A previous enrollment to renew: same device, same account key.
#[derive(Debug, Clone)]
pub struct Previous {
    /// The account key (PKCS#8 DER).
    pub account_key: SecretBytes,
    /// Its algorithm.
    pub algorithm: KeyAlgorithm,
    /// The device.
    pub device: Device,
}

/// An enrollment to run.
pub struct Enrollment {
    config: Config,
    observer: Arc<dyn Observer>,
    previous: Option<Previous>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Enrollment {
    /// A new enrollment (new device, new account).
    pub fn new(config: Config) -> Self {
        Self {
            config,
            observer: Arc::new(Silent),
            previous: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reports steps to `observer`.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Renews: keeps the device and the account key of `previous`.
    pub fn renewing(mut self, previous: Previous) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Reads time from `clock` (proof times, certificate validity checks).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn step<T, F>(&self, step: Step, work: F, describe: impl Fn(&T) -> String) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        self.observer.started(step);
        let started = Instant::now();
        let result = match tokio::time::timeout(self.config.step_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(step, Cause::Timeout)),
        };
        let elapsed = started.elapsed();
        match &result {
            Ok(value) => self.observer.finished(step, elapsed, Ok(&describe(value))),
            Err(e) => self.observer.finished(step, elapsed, Err(e)),
        }
        result
    }

    /// Runs the enrollment.
    pub async fn run(self) -> Result<Enrolled> {
        let config = &self.config;
        let algorithm = self
            .previous
            .as_ref()
            .map_or(config.algorithm, |p| p.algorithm);
        let http = io_kit::https::https_client(&config.tls_roots, config.step_timeout)
            .map_err(|e| Error::local(Step::Directory, e))?;
        let root_pem = std::fs::read_to_string(&config.ca_root).map_err(|e| {
            Error::local(
                Step::Directory,
                format!("{}: {e}", config.ca_root.display()),
            )
        })?;
        let account_key = match &self.previous {
            Some(p) => SigningKey::from_pkcs8_der(algorithm.jose(), p.account_key.expose()),
            None => SigningKey::generate(algorithm.jose()),
        }
        .map_err(|e| Error::local(Step::Account, e))?;
        let authz = Authz::new(http.clone(), &config.authz_url);

        let mut acme = self
            .step(
                Step::Directory,
                AcmeClient::connect(
                    http,
                    &config.acme_directory,
                    account_key.clone(),
                    config.nonce_retries,
                ),
                |_| config.acme_directory.clone(),
            )
            .await?;
        let tokens = self
            .step(Step::Login, authz.login(config, None, Step::Login), |_| {
                "logged in".into()
            })
            .await?;
        let bearer = tokens.access_token.clone();
        let (device, registered_now) = match &self.previous {
            Some(p) => (p.device.clone(), false),
            None => {
                let device = self
                    .step(Step::RegisterDevice, authz.register_device(&bearer), |d| {
                        d.client_id.clone()
                    })
                    .await?;
                (device, true)
            }
        };
        let enrolled: Result<Enrolled> = async {
            let identity = identity_of(&tokens.id_token, &device)?;
            let account_url = self
                .step(Step::Account, acme.account(), Clone::clone)
                .await?;
            let (order_url, order) = self
                .step(
                    Step::Order,
                    acme.new_order(&identity.acme_identifiers()),
                    |(url, _)| url.clone(),
                )
                .await?;
            let (dpop, oidc) = self
                .step(
                    Step::Authorizations,
                    async {
                        let mut found = (None, None);
                        for url in &order.authorizations {
                            let authz: Authorization = acme.get(Step::Authorizations, url).await?;
                            for c in authz.challenges {
                                match c.kind.as_str() {
                                    WIRE_DPOP_01 => found.0 = Some(c),
                                    WIRE_OIDC_01 => found.1 = Some(c),
                                    _ => {}
                                }
                            }
                        }
                        match found {
                            (Some(d), Some(o)) => Ok((d, o)),
                            _ => Err(Error::protocol(
                                Step::Authorizations,
                                "the order lacks a wire-dpop-01 or wire-oidc-01 challenge",
                            )),
                        }
                    },
                    |_| "wire-dpop-01, wire-oidc-01".into(),
                )
                .await?;

            let nonce = self
                .step(
                    Step::BackendNonce,
                    authz.backend_nonce(&bearer, &device.id),
                    |_| "received".into(),
                )
                .await?;
            let proof = wire_dpop_proof(&account_key, &identity, &dpop, &nonce, self.clock.now())?;
            let access_token = self
                .step(
                    Step::AccessToken,
                    authz.access_token(&bearer, &device.id, &proof),
                    |_| "received".into(),
                )
                .await?;
            self.step(
                Step::DpopChallenge,
                answer(
                    &acme,
                    Step::DpopChallenge,
                    &dpop,
                    json!({ "access_token": access_token }),
                ),
                |c| format!("{:?}", c.status).to_lowercase(),
            )
            .await?;

            let claims = id_token_claims(&oidc, &account_key);
            let id_token = self
                .step(
                    Step::IdToken,
                    async {
                        match &config.id_token_provider {
                            None => authz
                                .login(config, Some(&claims), Step::IdToken)
                                .await?
                                .id_token
                                .ok_or_else(|| Error::protocol(Step::IdToken, "no id_token")),
                            Some(provider) => {
                                if let Some(target) = oidc.target.as_deref()
                                    && !provider.is_issuer(target)
                                {
                                    return Err(Error::local(
                                        Step::IdToken,
                                        format!(
                                            "the ACME server takes ID tokens from {target}, \
                                         not from the configured provider {}",
                                            provider.issuer
                                        ),
                                    ));
                                }
                                provider
                                    .id_token(&claims, config.step_timeout, Step::IdToken)
                                    .await
                            }
                        }
                    },
                    |_| match &config.id_token_provider {
                        None => "received".into(),
                        Some(provider) => format!("received from {}", provider.issuer),
                    },
                )
                .await?;
            self.step(
                Step::OidcChallenge,
                answer(
                    &acme,
                    Step::OidcChallenge,
                    &oidc,
                    json!({ "id_token": id_token }),
                ),
                |c| format!("{:?}", c.status).to_lowercase(),
            )
            .await?;

            let credential = rcgen::KeyPair::generate_for(algorithm.x509())
                .map_err(|e| Error::local(Step::Finalize, e))?;
            let csr = certificate::csr(&identity, &credential)
                .map_err(|e| Error::local(Step::Finalize, e))?;
            let order = self
                .step(
                    Step::Finalize,
                    acme.finalize(&order_url, &order, &csr, config.step_timeout),
                    |o| format!("{:?}", o.status).to_lowercase(),
                )
                .await?;
            let cert_url = order.certificate.clone().ok_or_else(|| {
                Error::protocol(Step::Finalize, "a valid order without certificate")
            })?;
            let chain_pem = self
                .step(Step::Download, acme.certificate(&cert_url), |c| {
                    format!("{} certificates", c.matches("BEGIN CERTIFICATE").count())
                })
                .await?;
            let now = self.clock.now();
            let info = self
                .step(
                    Step::Verify,
                    async {
                        certificate::verify(
                            &chain_pem,
                            &root_pem,
                            &identity,
                            credential.public_key_raw(),
                            now,
                            config.clock_skew,
                        )
                        .map_err(|e| Error::new(Step::Verify, Cause::Verification(e)))
                    },
                    |i| i.subject.clone(),
                )
                .await?;
            Ok(Enrolled {
                chain_pem,
                credential_key: SecretBytes::new(credential.serialize_der()),
                account_key: account_key.pkcs8_der().clone(),
                algorithm,
                account_url,
                device: device.clone(),
                identity,
                certificate: info,
            })
        }
        .await;
        if enrolled.is_err() && registered_now {
            // Best effort: the enrollment's error is what the caller hears; a failed removal
            // is reported to the observer and leaves the device for the user to remove.
            let _ = self
                .step(
                    Step::RemoveDevice,
                    authz.remove_device(&bearer, &device.id),
                    |()| device.client_id.clone(),
                )
                .await;
        }
        enrolled
    }
}

/// The Wire DPoP proof for the backend's access-token endpoint, signed by the ACME account key
/// (the claims of [`wire_dpop_claims`]).
pub fn wire_dpop_proof(
    key: &SigningKey,
    identity: &Identity,
    dpop: &Challenge,
    nonce: &str,
    now: proto::clock::UnixTime,
) -> Result<String> {
    wire_dpop_claims(identity, dpop, nonce, now)?
        .sign(key)
        .map_err(|e| Error::local(Step::AccessToken, e))
}

/// The claims of the Wire DPoP proof: `htu` = the challenge's target, `chal`/`aud` = the
/// challenge, `sub`/`handle`/`name`/`team` = the identity, the backend nonce, a fresh `jti`,
/// `exp` five minutes ahead.
pub fn wire_dpop_claims(
    identity: &Identity,
    dpop: &Challenge,
    nonce: &str,
    now: proto::clock::UnixTime,
) -> Result<DpopClaims> {
    let target = dpop.target.clone().ok_or_else(|| {
        Error::protocol(
            Step::AccessToken,
            "the wire-dpop-01 challenge has no target",
        )
    })?;
    let mut claims = DpopClaims::new("POST", &target, now);
    claims.nbf = Some(now);
    claims.exp = Some(now + PROOF_LIFETIME);
    claims.nonce = Some(nonce.to_owned());
    claims.wire = Some(WireClaims {
        chal: dpop.token.clone(),
        sub: identity.client_id().to_uri(),
        aud: dpop.url.clone(),
        handle: identity.handle().to_uri(),
        team: identity.team().map(str::to_owned),
        name: identity.name().to_owned(),
    });
    Ok(claims)
}

/// The OIDC `claims` request that makes the ID token carry this challenge's key authorization
/// and URL.
pub fn id_token_claims(oidc: &Challenge, account_key: &SigningKey) -> Value {
    let keyauth = key_authorization(&oidc.token, &account_key.public_jwk().thumbprint());
    proto::wire_claims::AcmeClaims::for_challenge(&keyauth, &oidc.url).to_claims_parameter()
}

/// Answers a challenge and requires it to be `valid`.
pub async fn answer(
    acme: &AcmeClient,
    step: Step,
    challenge: &Challenge,
    payload: Value,
) -> Result<Challenge> {
    let answered = acme.answer(step, &challenge.url, &payload).await?;
    if answered.status != ChallengeStatus::Valid {
        return Err(Error::protocol(
            step,
            format!("the challenge is {:?}", answered.status),
        ));
    }
    Ok(answered)
}

/// The user's handle and name from the ID token of the login (received directly from the token
/// endpoint over TLS, OIDC Core §3.1.3.7), and the device's client id.
pub fn identity_of(id_token: &Option<String>, device: &Device) -> Result<Identity> {
    let step = Step::Login;
    let token = id_token
        .as_deref()
        .ok_or_else(|| Error::protocol(step, "the login returned no ID token"))?;
    let claims = unverified_claims(token, step)?;
    let client_id = ClientId::parse(&device.client_id).map_err(|e| Error::protocol(step, e))?;
    let username = claims["preferred_username"]
        .as_str()
        .ok_or_else(|| Error::protocol(step, "the ID token has no preferred_username"))?;
    let handle = username
        .strip_suffix(&format!("@{}", client_id.domain()))
        .unwrap_or(username);
    let name = claims["name"]
        .as_str()
        .ok_or_else(|| Error::protocol(step, "the ID token has no name"))?
        .to_owned();
    let handle =
        HandleUri::new(handle, client_id.domain()).map_err(|e| Error::protocol(step, e))?;
    Identity::new(
        client_id,
        handle,
        &name,
        claims[proto::wire_claims::TEAM].as_str().map(str::to_owned),
    )
    .map_err(|e| Error::protocol(step, e))
}

/// The claims of an ID token received directly from a token endpoint over TLS (OIDC Core
/// §3.1.3.7 lets the client rely on TLS instead of the signature); the ACME server verifies it.
pub(crate) fn unverified_claims(token: &str, step: Step) -> Result<Value> {
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| Error::protocol(step, "the ID token is not a JWT"))?;
    let claims: Value = serde_json::from_slice(
        &proto::b64::decode(payload, "id_token").map_err(|e| Error::protocol(step, e))?,
    )
    .map_err(|e| Error::protocol(step, e))?;
    if !claims.is_object() {
        return Err(Error::protocol(
            step,
            "the ID token's claims are not an object",
        ));
    }
    Ok(claims)
}
