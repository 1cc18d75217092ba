//! External Account Binding (RFC 8555 §7.3.4): a JWS with `alg: HS256` and the operator-issued
//! `kid`, whose payload is the new account's public JWK and whose MAC key the operator handed
//! to the subscriber out of band. This module makes and checks it; HMAC-SHA-256 (RFC 2104) is
//! computed here over `sha2`.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::jwk::Jwk;
use crate::secret::constant_time_eq;
use crate::{Error, Result, b64};

const BLOCK: usize = 64;

/// HMAC-SHA-256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Makes the `externalAccountBinding` value for `account_key` (client side).
pub fn sign(kid: &str, mac_key: &[u8], url: &str, account_key: &Jwk) -> Value {
    let protected = b64::encode(json!({"alg": "HS256", "kid": kid, "url": url}).to_string());
    let payload = b64::encode(Value::Object(account_key.public_members()).to_string());
    let mac = hmac_sha256(mac_key, format!("{protected}.{payload}").as_bytes());
    json!({"protected": protected, "payload": payload, "signature": b64::encode(mac)})
}

/// A parsed binding, not yet checked.
#[derive(Debug, Clone)]
pub struct Binding {
    kid: String,
    url: String,
    signing_input: String,
    payload: Vec<u8>,
    mac: Vec<u8>,
}

impl Binding {
    /// Parses the binding: flattened JWS, `alg` HS256, a `kid`, a `url`, no `nonce`.
    pub fn parse(value: &Value) -> Result<Self> {
        let map = value.as_object().ok_or(Error::MalformedJws(
            "externalAccountBinding is not an object",
        ))?;
        let part = |name: &str| -> Result<&str> {
            map.get(name)
                .and_then(Value::as_str)
                .ok_or(Error::MalformedJws(
                    "externalAccountBinding needs protected, payload, signature",
                ))
        };
        let (protected, payload, signature) =
            (part("protected")?, part("payload")?, part("signature")?);
        let header: Map<String, Value> =
            serde_json::from_slice(&b64::decode(protected, "protected header")?)
                .map_err(|_| Error::MalformedJws("the binding header is not a JSON object"))?;
        if header.get("alg").and_then(Value::as_str) != Some("HS256") {
            return Err(Error::UnsupportedAlgorithm(
                header
                    .get("alg")
                    .and_then(Value::as_str)
                    .unwrap_or("none")
                    .to_owned(),
            ));
        }
        if header.contains_key("nonce") {
            return Err(Error::MalformedJws("the binding must not carry a nonce"));
        }
        let string = |name: &'static str| -> Result<String> {
            header
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or(Error::MalformedJws("the binding header needs kid and url"))
        };
        Ok(Self {
            kid: string("kid")?,
            url: string("url")?,
            signing_input: format!("{protected}.{payload}"),
            payload: b64::decode(payload, "payload")?,
            mac: b64::decode(signature, "signature")?,
        })
    }

    /// The operator-issued key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The URL it was made for (newAccount).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Checks the MAC with `mac_key` and that the payload is `account_key`.
    pub fn verify(&self, mac_key: &[u8], account_key: &Jwk) -> Result<()> {
        let expected = hmac_sha256(mac_key, self.signing_input.as_bytes());
        if !constant_time_eq(&expected, &self.mac) {
            return Err(Error::BadSignature);
        }
        let bound: Value = serde_json::from_slice(&self.payload)
            .map_err(|_| Error::MalformedJws("the binding payload is not a JWK"))?;
        if !Jwk::from_json(&bound)?.same_key(account_key) {
            return Err(Error::ProofKeyMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{Algorithm, SigningKey};

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_binding_verifies_only_with_its_key_and_account() {
        let account = SigningKey::generate(Algorithm::Es256).unwrap();
        let value = sign(
            "kid-1",
            b"secret mac key",
            "https://a.test/new-account",
            account.public_jwk(),
        );
        let binding = Binding::parse(&value).unwrap();
        assert_eq!(binding.kid(), "kid-1");
        binding
            .verify(b"secret mac key", account.public_jwk())
            .unwrap();
        assert_eq!(
            binding.verify(b"other key", account.public_jwk()),
            Err(Error::BadSignature)
        );
        let other = SigningKey::generate(Algorithm::Es256).unwrap();
        assert_eq!(
            binding.verify(b"secret mac key", other.public_jwk()),
            Err(Error::ProofKeyMismatch)
        );
    }
}
