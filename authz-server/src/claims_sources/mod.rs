//! Permission sources: claims that live in the user's own systems, fetched when a user's access
//! token is issued (`[[claims_source]]`, [`config`]).
//!
//! Each source is an HTTP JSON service. At every issue of a user's access token — the first,
//! and every refresh, so permissions changed there reach the next token — each source that
//! applies to the token's scope and RFC 8707 `resource` is asked with a POST of
//!
//! ```json
//! {"sub": "user id", "handle": "alice", "domain": "wire.example",
//!  "client_id": "app", "scope": "openid perms", "resource": "https://game.example/eu-1"}
//! ```
//!
//! (`resource` left out when the request named none), with `Authorization: Bearer` when a token
//! is configured. A 2xx JSON object answer is mapped by JSON pointers into access-token claims
//! (RFC 9068 §7.2's `entitlements`, or names of the operator's own). The read is bounded in
//! time (`timeout_ms`) and size (`max_response_bytes`); answers are reused for `cache_secs` per
//! question, each question is asked once however many requests need it at once
//! ([`cache`]), and a failure is remembered for `failure_cache_secs`. A source that fails
//! answers the token request by its `on_failure`: `deny` (503 `temporarily_unavailable`,
//! nothing issued and nothing consumed) or `omit` (the token without its claims).
//!
//! The claims go into the access token only: never into the refresh token (an opaque handle
//! that carries nothing), the ID token or `/userinfo`.

pub mod cache;
pub mod config;

use std::time::Duration;

use proto::clock::UnixTime;
use proto::secret::SecretString;
use serde_json::{Map, Value, json};

pub use config::{ClaimsSourceConfig, OnFailure};

use crate::error::{Error, Result};
use crate::store::users::User;

/// What a source is asked about: the token about to be issued.
#[derive(Debug, Clone, Copy)]
pub struct ClaimsQuestion<'a> {
    /// The user.
    pub user: &'a User,
    /// The client the token is for.
    pub client_id: &'a str,
    /// The granted scope.
    pub scope: &'a str,
    /// The RFC 8707 resource the token is for, if the request named one.
    pub resource: Option<&'a str>,
}

/// One configured source, ready to ask.
#[derive(Debug)]
struct ClaimsSource {
    config: ClaimsSourceConfig,
    bearer: Option<SecretString>,
    http: reqwest::Client,
    answers: cache::AnswerCache,
}

/// Every configured source.
#[derive(Debug, Default)]
pub struct ClaimsSources {
    sources: Vec<ClaimsSource>,
}

impl ClaimsSources {
    /// Reads each validated source's token and builds its HTTPS client.
    pub fn load(configs: &[ClaimsSourceConfig]) -> Result<Self> {
        let sources = configs
            .iter()
            .map(|config| {
                let unusable =
                    |what: String| Error::Config(format!("claims_source {:?}: {what}", config.id));
                let bearer = match (&config.bearer_token_file, &config.bearer_token_env) {
                    (None, None) => None,
                    (file, env) => Some(
                        crate::config::read_secret_setting(
                            "bearer_token",
                            file.as_deref(),
                            env.as_deref(),
                        )
                        .map_err(unusable)?,
                    ),
                };
                let http = server_kit::tls::https_client_trusting(
                    &config.trust_anchors,
                    config.trust_system_roots,
                    Duration::from_millis(config.timeout_ms),
                )
                .map_err(|e| unusable(format!("trust_anchors: {e}")))?;
                Ok(ClaimsSource {
                    config: config.clone(),
                    bearer,
                    http,
                    answers: cache::AnswerCache::default(),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { sources })
    }

    /// The sources asked only when `scope` is granted (their `scopes` name it), with the claims
    /// each sets: what withholding `scope` on the consent page keeps from the client.
    pub fn gated_by(&self, scope: &str) -> Vec<(String, Vec<String>)> {
        self.sources
            .iter()
            .filter(|s| s.config.scopes.iter().any(|g| g == scope))
            .map(|s| {
                (
                    s.config.id.clone(),
                    s.config.claims.keys().cloned().collect(),
                )
            })
            .collect()
    }

    /// The sources asked whatever the granted scope (without `scopes`), with the claims each
    /// sets: what a client's access tokens may carry however many scopes the user withholds.
    pub fn ungated(&self) -> Vec<(String, Vec<String>)> {
        self.sources
            .iter()
            .filter(|s| s.config.scopes.is_empty())
            .map(|s| {
                (
                    s.config.id.clone(),
                    s.config.claims.keys().cloned().collect(),
                )
            })
            .collect()
    }

    /// Refuses a `resource` no source answers for (`invalid_target`, RFC 8707 §2): this server
    /// issues tokens for itself and for the resources its sources name.
    pub fn check_resource(&self, resource: &str) -> Result<()> {
        if self.sources.iter().any(|s| s.config.covers(resource)) {
            return Ok(());
        }
        Err(Error::OAuth {
            code: "invalid_target",
            description: format!("tokens are not issued for the resource {resource:?}"),
        })
    }

    /// The claims every applying source gives the token `question` describes, at `now`:
    /// `temporarily_unavailable` when a source with `on_failure = "deny"` fails.
    pub async fn claims_for(
        &self,
        question: &ClaimsQuestion<'_>,
        now: UnixTime,
    ) -> Result<Map<String, Value>> {
        let mut claims = Map::new();
        let applying: Vec<&ClaimsSource> = self
            .sources
            .iter()
            .filter(|s| s.config.applies(question.scope, question.resource))
            .collect();
        if applying.is_empty() {
            return Ok(claims);
        }
        let body = question_body(question);
        for source in applying {
            match source.claims_for(&body, now).await {
                Ok(given) => claims.extend(given),
                Err(error) if source.config.on_failure == OnFailure::Omit => {
                    tracing::warn!(source = %source.config.id, %error, "claims source failed; token issued without its claims");
                }
                Err(error) => {
                    tracing::warn!(source = %source.config.id, %error, "claims source failed; token refused");
                    return Err(Error::Unavailable {
                        description: format!(
                            "the permissions for this token could not be read (claims source {}); try again",
                            source.config.id
                        ),
                        retry_after_secs: u64::try_from(source.config.failure_cache_secs.max(1))
                            .unwrap_or(1),
                    });
                }
            }
        }
        Ok(claims)
    }
}

/// The JSON a source is asked with (also the key its answer is kept under).
fn question_body(question: &ClaimsQuestion<'_>) -> String {
    let mut body = json!({
        "sub": question.user.id,
        "handle": question.user.handle,
        "domain": question.user.domain,
        "client_id": question.client_id,
        "scope": question.scope,
    });
    if let Some(resource) = question.resource {
        body["resource"] = resource.into();
    }
    body.to_string()
}

impl ClaimsSource {
    /// This source's claims for the question `body`: kept, or asked (and mapped once, so the
    /// cache holds the claims, not the whole answer).
    async fn claims_for(&self, body: &str, now: UnixTime) -> Result<Map<String, Value>> {
        let claims = self
            .answers
            .answer(
                body,
                now,
                self.config.cache_secs,
                self.config.failure_cache_secs,
                || async { self.ask(body).await.map(|answer| self.mapped(&answer)) },
            )
            .await?;
        Ok((*claims).clone())
    }

    /// POSTs the question and reads the answer as a JSON object, bounded in time and size.
    async fn ask(&self, body: &str) -> Result<Value> {
        let failed =
            |what: String| Error::upstream_unavailable(format!("{}: {what}", self.config.id));
        let mut request = self
            .http
            .post(&self.config.url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body.to_owned());
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token.expose());
        }
        let response = request.send().await.map_err(|e| {
            failed(if e.is_timeout() {
                format!("no answer within {} ms", self.config.timeout_ms)
            } else {
                "the service could not be reached".into()
            })
        })?;
        let status = response.status();
        let answer = server_kit::fetch::read_body(response, self.config.max_response_bytes)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if !status.is_success() {
            return Err(failed(format!("the service answered {status}")));
        }
        serde_json::from_slice::<Value>(&answer)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| failed("the answer is not a JSON object".into()))
    }

    /// The configured claims taken from `answer` (a pointer it lacks, or a `null`, leaves the
    /// claim out).
    fn mapped(&self, answer: &Value) -> Map<String, Value> {
        self.config
            .claims
            .iter()
            .filter_map(|(claim, pointer)| {
                answer
                    .pointer(pointer)
                    .filter(|v| !v.is_null())
                    .map(|v| (claim.clone(), v.clone()))
            })
            .collect()
    }
}
