//! Raw ACME requests for tests that need them outside the SDK: the directory, a fresh nonce,
//! a JWS POST.

use proto::acme_jws::{KeyId, sign_request};
use proto::jws::SigningKey;
use serde_json::Value;

/// The directory at `url`.
pub async fn directory(http: &reqwest::Client, url: &str) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// A nonce from `HEAD new_nonce_url`.
pub async fn fresh_nonce(http: &reqwest::Client, new_nonce_url: &str) -> String {
    http.head(new_nonce_url).send().await.unwrap().headers()["replay-nonce"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A request signed with `key` sent as its JWK (newAccount), for `url`.
pub fn signed_with_jwk(key: &SigningKey, nonce: &str, url: &str, payload: &Value) -> String {
    sign_request(key, KeyId::Jwk, nonce, url, Some(payload)).unwrap()
}

/// POSTs a JWS to `to`.
pub async fn post_jose(http: &reqwest::Client, to: &str, body: String) -> reqwest::Response {
    http.post(to)
        .header("content-type", "application/jose+json")
        .body(body)
        .send()
        .await
        .unwrap()
}
