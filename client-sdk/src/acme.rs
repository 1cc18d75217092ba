//! The ACME client (RFC 8555) of the device: signed requests with the account key, nonces kept
//! from every response, `badNonce` retried by itself (bounded), problem documents surfaced as
//! [`Cause::Acme`], `Retry-After` honoured while an order is `processing`.

use std::sync::Mutex;
use std::time::Duration;

use proto::acme::{Challenge, Directory, Identifier, Order, OrderStatus, Problem};
use proto::acme_jws::{KeyId, sign_request};
use proto::jws::SigningKey;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Cause, Error, Result};
use crate::step::Step;

/// A response the client accepted.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: u16,
    /// `Location`.
    pub location: Option<String>,
    /// `Retry-After` in seconds.
    pub retry_after: Option<u64>,
    /// Body.
    pub body: Vec<u8>,
}

impl Reply {
    fn json<T: DeserializeOwned>(&self, step: Step) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::protocol(step, e))
    }
}

/// The client, bound to one account key.
#[derive(Debug)]
pub struct AcmeClient {
    http: reqwest::Client,
    directory: Directory,
    key: SigningKey,
    kid: Option<String>,
    nonce: Mutex<Option<String>>,
    nonce_retries: u32,
}

fn network(step: Step, e: reqwest::Error) -> Error {
    Error::network(step, &e)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl AcmeClient {
    /// Reads the directory.
    pub async fn connect(
        http: reqwest::Client,
        directory_url: &str,
        key: SigningKey,
        nonce_retries: u32,
    ) -> Result<Self> {
        let step = Step::Directory;
        let response = http
            .get(directory_url)
            .send()
            .await
            .map_err(|e| network(step, e))?;
        if !response.status().is_success() {
            return Err(Error::protocol(step, format!("HTTP {}", response.status())));
        }
        let directory = response
            .json()
            .await
            .map_err(|e| Error::protocol(step, e))?;
        Ok(Self {
            http,
            directory,
            key,
            kid: None,
            nonce: Mutex::new(None),
            nonce_retries,
        })
    }

    /// The account URL once known.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    fn saved_nonce(&self) -> Option<String> {
        self.nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    fn save_nonce(&self, response: &reqwest::Response) {
        if let Some(n) = header(response, "replay-nonce") {
            *self
                .nonce
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(n);
        }
    }

    async fn nonce(&self, step: Step) -> Result<String> {
        if let Some(n) = self.saved_nonce() {
            return Ok(n);
        }
        let response = self
            .http
            .head(&self.directory.new_nonce)
            .send()
            .await
            .map_err(|e| network(step, e))?;
        header(&response, "replay-nonce").ok_or_else(|| Error::protocol(step, "no Replay-Nonce"))
    }

    /// A signed POST (`payload` `None` is POST-as-GET), retrying `badNonce`.
    pub async fn post(&self, step: Step, url: &str, payload: Option<&Value>) -> Result<Reply> {
        let mut attempt = 0;
        loop {
            let nonce = self.nonce(step).await?;
            let key_id = match &self.kid {
                Some(kid) => KeyId::Kid(kid),
                None => KeyId::Jwk,
            };
            let body = sign_request(&self.key, key_id, &nonce, url, payload)
                .map_err(|e| Error::local(step, e))?;
            let response = self
                .http
                .post(url)
                .header("content-type", "application/jose+json")
                .body(body)
                .send()
                .await
                .map_err(|e| network(step, e))?;
            self.save_nonce(&response);
            let status = response.status().as_u16();
            let location = header(&response, "location");
            let retry_after = header(&response, "retry-after").and_then(|v| v.parse().ok());
            let body = response
                .bytes()
                .await
                .map_err(|e| network(step, e))?
                .to_vec();
            if (200..300).contains(&status) {
                return Ok(Reply {
                    status,
                    location,
                    retry_after,
                    body,
                });
            }
            let problem: Problem = serde_json::from_slice(&body).map_err(|_| {
                Error::protocol(step, format!("HTTP {status} without a problem document"))
            })?;
            if problem.kind.ends_with(":badNonce") && attempt < self.nonce_retries {
                attempt += 1;
                continue;
            }
            return Err(Error::new(step, Cause::Acme(problem)));
        }
    }

    /// Creates the account (or finds the existing one for this key); returns its URL.
    pub async fn account(&mut self) -> Result<String> {
        self.account_with(&json!({"termsOfServiceAgreed": true}))
            .await
    }

    /// [`Self::account`] with the newAccount payload given (contacts, EAB, what another
    /// client sends); returns the account URL, which later requests name as `kid`.
    pub async fn account_with(&mut self, payload: &Value) -> Result<String> {
        let step = Step::Account;
        let url = self.directory.new_account.clone();
        self.kid = None;
        let reply = self.post(step, &url, Some(payload)).await?;
        let kid = reply
            .location
            .ok_or_else(|| Error::protocol(step, "no Location for the account"))?;
        self.kid = Some(kid.clone());
        Ok(kid)
    }

    /// Creates an order; (order URL, order).
    pub async fn new_order(&self, identifiers: &[Identifier]) -> Result<(String, Order)> {
        let step = Step::Order;
        let url = self.directory.new_order.clone();
        let reply = self
            .post(step, &url, Some(&json!({ "identifiers": identifiers })))
            .await?;
        let location = reply
            .location
            .clone()
            .ok_or_else(|| Error::protocol(step, "no Location for the order"))?;
        Ok((location, reply.json(step)?))
    }

    /// POST-as-GET of a JSON resource.
    pub async fn get<T: DeserializeOwned>(&self, step: Step, url: &str) -> Result<T> {
        self.post(step, url, None).await?.json(step)
    }

    /// Answers a challenge.
    pub async fn answer(&self, step: Step, url: &str, answer: &Value) -> Result<Challenge> {
        self.post(step, url, Some(answer)).await?.json(step)
    }

    /// Finalizes and waits (honouring `Retry-After`, at most `patience`) for a final status.
    pub async fn finalize(
        &self,
        order_url: &str,
        order: &Order,
        csr_der: &[u8],
        patience: Duration,
    ) -> Result<Order> {
        let step = Step::Finalize;
        let payload = json!({ "csr": proto::b64::encode(csr_der) });
        let reply = self.post(step, &order.finalize, Some(&payload)).await?;
        let mut current: Order = reply.json(step)?;
        let mut retry_after = reply.retry_after;
        let started = tokio::time::Instant::now();
        while matches!(current.status, OrderStatus::Processing | OrderStatus::Ready) {
            let wait = Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 10));
            if started.elapsed() + wait > patience {
                return Err(Error::new(step, Cause::Timeout));
            }
            tokio::time::sleep(wait).await;
            let reply = self.post(step, order_url, None).await?;
            retry_after = reply.retry_after;
            current = reply.json(step)?;
        }
        if current.status != OrderStatus::Valid {
            let problem = current.error.clone().map_or_else(
                || Cause::Protocol(format!("the order ended {:?}", current.status)),
                Cause::Acme,
            );
            return Err(Error::new(step, problem));
        }
        Ok(current)
    }

    /// Downloads the PEM chain.
    pub async fn certificate(&self, url: &str) -> Result<String> {
        let step = Step::Download;
        let reply = self.post(step, url, None).await?;
        String::from_utf8(reply.body).map_err(|_| Error::protocol(step, "the chain is not text"))
    }
}
