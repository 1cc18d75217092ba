//! ACME request bodies: JWS in flattened JSON serialization (RFC 8555 §6.2), signed by the
//! client and parsed by the server.
//!
//! [`AcmeRequest::parse`] performs the structural checks that need no server state, in order:
//! a JSON object with exactly `protected`, `payload` and `signature` (no unprotected `header`,
//! no general serialization), an allow-listed `alg`, no `crit`, `typ` absent or `JWT`, a
//! `nonce` and a `url`, and exactly one of `jwk` and `kid`. The server then redeems the nonce,
//! compares the URL, resolves the key and calls [`AcmeRequest::verify`], which yields the
//! [`VerifiedAcmeRequest`] its handlers take.

use serde_json::{Map, Value};

use crate::jwk::Jwk;
use crate::jws::{JoseHeader, SigningKey, UnverifiedJws};
use crate::{Error, Result};

/// How a request names its signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKey {
    /// The key itself (newAccount, revokeCert by certificate key).
    Jwk(Jwk),
    /// An account URL.
    Kid(String),
}

/// How the client names its key when signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyId<'a> {
    /// Embed the public key (`jwk`).
    Jwk,
    /// Name the account (`kid`).
    Kid(&'a str),
}

/// Signs an ACME request body. `payload` `None` makes a POST-as-GET (empty payload, §6.3).
pub fn sign_request(
    key: &SigningKey,
    key_id: KeyId<'_>,
    nonce: &str,
    url: &str,
    payload: Option<&Value>,
) -> Result<String> {
    let mut header = Map::new();
    match key_id {
        KeyId::Jwk => {
            header.insert(
                "jwk".into(),
                Value::Object(key.public_jwk().public_members()),
            );
        }
        KeyId::Kid(kid) => {
            header.insert("kid".into(), Value::String(kid.into()));
        }
    }
    header.insert("nonce".into(), Value::String(nonce.into()));
    header.insert("url".into(), Value::String(url.into()));
    let payload = payload.map(Value::to_string).unwrap_or_default();
    let compact = key.sign_compact(header, payload.as_bytes())?;
    let mut parts = compact.split('.');
    let (Some(protected), Some(payload), Some(signature)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::MalformedJws("signer produced a malformed JWS"));
    };
    Ok(serde_json::json!({
        "protected": protected,
        "payload": payload,
        "signature": signature,
    })
    .to_string())
}

/// A parsed ACME request whose signature is not checked yet.
#[derive(Debug, Clone)]
pub struct AcmeRequest {
    jws: UnverifiedJws,
    nonce: String,
    url: String,
    key: RequestKey,
}

impl AcmeRequest {
    /// Parses and structurally checks a request body.
    pub fn parse(body: &[u8]) -> Result<Self> {
        Self::parse_with(body, true)
    }

    /// Parses the inner JWS of a keyChange request (RFC 8555 §7.3.5): like [`Self::parse`],
    /// but the nonce may be omitted and the key must be a `jwk`.
    pub fn parse_key_change_inner(body: &[u8]) -> Result<Self> {
        let inner = Self::parse_with(body, false)?;
        if !matches!(inner.key, RequestKey::Jwk(_)) {
            return Err(Error::MissingJwk);
        }
        Ok(inner)
    }

    fn parse_with(body: &[u8], nonce_required: bool) -> Result<Self> {
        let map = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::MalformedJws("the body is not a JSON object")),
        };
        if map.contains_key("header") {
            return Err(Error::MalformedJws(
                "unprotected header members are not allowed",
            ));
        }
        if map.contains_key("signatures") {
            return Err(Error::MalformedJws(
                "only the flattened JSON serialization is accepted",
            ));
        }
        if map.len() != 3 {
            return Err(Error::MalformedJws(
                "a flattened JWS has exactly protected, payload and signature",
            ));
        }
        let part = |name: &'static str| -> Result<&str> {
            map.get(name)
                .and_then(Value::as_str)
                .ok_or(Error::MalformedJws(
                    "protected, payload and signature must be strings",
                ))
        };
        let jws =
            UnverifiedJws::from_parts(part("protected")?, part("payload")?, part("signature")?)?;
        let header = jws.header();
        if let Some(typ) = header.typ()
            && !typ.eq_ignore_ascii_case("JWT")
        {
            return Err(Error::WrongTyp { expected: "JWT" });
        }
        let nonce = match header_string(header, "nonce")? {
            Some(n) => n,
            None if nonce_required => return Err(Error::MissingNonce),
            None => String::new(),
        };
        let url = header_string(header, "url")?
            .ok_or(Error::MalformedJws("missing `url` in the protected header"))?;
        let key = match (header.has("jwk"), header_string(header, "kid")?) {
            (true, None) => RequestKey::Jwk(header.jwk()?),
            (false, Some(kid)) => RequestKey::Kid(kid),
            (true, Some(_)) => {
                return Err(Error::MalformedJws(
                    "`jwk` and `kid` are mutually exclusive",
                ));
            }
            (false, None) => return Err(Error::MalformedJws("either `jwk` or `kid` is required")),
        };
        Ok(Self {
            jws,
            nonce,
            url,
            key,
        })
    }

    /// The anti-replay nonce.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// The `url` the client signed.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How the request names its key.
    pub fn key(&self) -> &RequestKey {
        &self.key
    }

    /// Verifies the signature with `key` (the embedded `jwk`, or the account's key).
    pub fn verify(self, key: &Jwk) -> Result<VerifiedAcmeRequest> {
        let verified = self.jws.verify(key)?;
        Ok(VerifiedAcmeRequest {
            payload: verified.payload().to_vec(),
            url: self.url,
        })
    }
}

fn header_string(header: &JoseHeader, name: &'static str) -> Result<Option<String>> {
    match header.members().get(name) {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(Error::MalformedJws(
            "a protected header member has the wrong type",
        )),
    }
}

/// An ACME request whose signature verified.
#[derive(Debug, Clone)]
pub struct VerifiedAcmeRequest {
    payload: Vec<u8>,
    url: String,
}

impl VerifiedAcmeRequest {
    /// The payload bytes (empty for POST-as-GET).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// Whether this is a POST-as-GET (empty payload, §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The signed URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::b64;
    use crate::jws::Algorithm;

    fn body_with(protected: Value, payload: &str, key: &SigningKey) -> String {
        let protected = b64::encode(protected.to_string());
        let payload = b64::encode(payload);
        let sig = key
            .sign_bytes(format!("{protected}.{payload}").as_bytes())
            .unwrap();
        json!({"protected": protected, "payload": payload, "signature": b64::encode(sig)})
            .to_string()
    }

    #[test]
    fn signed_requests_parse_and_verify() {
        for alg in [
            Algorithm::Es256,
            Algorithm::Es384,
            Algorithm::EdDsa,
            Algorithm::Rs256,
        ] {
            let key = crate::test_keys::key_for(alg);
            let payload = json!({"termsOfServiceAgreed": true});
            let body = sign_request(
                &key,
                KeyId::Jwk,
                "n1",
                "https://a.test/new-acct",
                Some(&payload),
            )
            .unwrap();
            let request = AcmeRequest::parse(body.as_bytes()).unwrap();
            assert_eq!(request.nonce(), "n1");
            assert_eq!(request.url(), "https://a.test/new-acct");
            let RequestKey::Jwk(jwk) = request.key().clone() else {
                panic!("jwk expected")
            };
            assert!(jwk.same_key(key.public_jwk()));
            let verified = request.verify(&jwk).unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(verified.payload()).unwrap(),
                payload
            );
        }
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let body = sign_request(
            &key,
            KeyId::Kid("https://a.test/acct/1"),
            "n",
            "https://a.test/x",
            None,
        )
        .unwrap();
        let request = AcmeRequest::parse(body.as_bytes()).unwrap();
        assert_eq!(
            request.key(),
            &RequestKey::Kid("https://a.test/acct/1".into())
        );
        assert!(request.verify(key.public_jwk()).unwrap().is_post_as_get());
    }

    #[test]
    fn structural_faults_are_refused() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let jwk = Value::Object(key.public_jwk().public_members());
        let cases: Vec<(Value, Error)> = vec![
            (
                json!({"alg":"ES256","url":"u","kid":"k"}),
                Error::MissingNonce,
            ),
            (
                json!({"alg":"ES256","nonce":"n","kid":"k"}),
                Error::MalformedJws("missing `url` in the protected header"),
            ),
            (
                json!({"alg":"ES256","nonce":"n","url":"u","kid":"k","jwk":jwk}),
                Error::MalformedJws("`jwk` and `kid` are mutually exclusive"),
            ),
            (
                json!({"alg":"ES256","nonce":"n","url":"u"}),
                Error::MalformedJws("either `jwk` or `kid` is required"),
            ),
            (
                json!({"alg":"HS256","nonce":"n","url":"u","kid":"k"}),
                Error::UnsupportedAlgorithm("HS256".into()),
            ),
            (
                json!({"alg":"none","nonce":"n","url":"u","kid":"k"}),
                Error::UnsupportedAlgorithm("none".into()),
            ),
            (
                json!({"alg":"ES256","nonce":"n","url":"u","kid":"k","typ":"dpop+jwt"}),
                Error::WrongTyp { expected: "JWT" },
            ),
        ];
        for (protected, expected) in cases {
            let body = body_with(protected.clone(), "", &key);
            assert_eq!(
                AcmeRequest::parse(body.as_bytes()).unwrap_err(),
                expected,
                "{protected}"
            );
        }
        // Wire clients send `typ: JWT`.
        let body = body_with(
            json!({"alg":"ES256","nonce":"n","url":"u","kid":"k","typ":"JWT"}),
            "",
            &key,
        );
        AcmeRequest::parse(body.as_bytes()).unwrap();

        let good: Value = serde_json::from_str(&body).unwrap();
        let mut unprotected = good.clone();
        unprotected["header"] = json!({"kid": "k"});
        let mut general = good.clone();
        general["signatures"] = json!([]);
        for bad in [
            unprotected.to_string(),
            general.to_string(),
            "[]".into(),
            "{".into(),
        ] {
            assert!(matches!(
                AcmeRequest::parse(bad.as_bytes()),
                Err(Error::MalformedJws(_))
            ));
        }
    }

    #[test]
    fn a_tampered_payload_fails_verification() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let body = sign_request(&key, KeyId::Kid("k"), "n", "u", Some(&json!({"a": 1}))).unwrap();
        let mut value: Value = serde_json::from_str(&body).unwrap();
        value["payload"] = Value::String(b64::encode(r#"{"a":2}"#));
        let request = AcmeRequest::parse(value.to_string().as_bytes()).unwrap();
        assert_eq!(
            request.verify(key.public_jwk()).unwrap_err(),
            Error::BadSignature
        );
    }
}
