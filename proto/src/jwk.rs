//! JSON Web Keys (RFC 7517/7518) restricted to the public keys this service verifies with:
//! EC P-256/P-384, OKP Ed25519 and RSA. Parsing refuses private members, unknown key types and
//! malformed coordinates; thumbprints follow RFC 7638 with SHA-256.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{Error, Result, b64};

/// Elliptic curves of `kty: EC` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcCurve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
}

impl EcCurve {
    /// The JWK `crv` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

/// The key material of a public JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwkParams {
    /// `kty: EC`.
    Ec { crv: EcCurve, x: String, y: String },
    /// `kty: OKP`, `crv: Ed25519` (the only OKP curve we sign with).
    Ed25519 { x: String },
    /// `kty: RSA`.
    Rsa { n: String, e: String },
}

/// A public JSON Web Key, with the optional `kid` a key set uses to name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// The key material.
    pub params: JwkParams,
    /// `kid`, when the key is published in a set.
    pub kid: Option<String>,
}

/// Members that only private (or symmetric) keys have (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

impl Jwk {
    /// A JWK from key material, checked as if it had been parsed from JSON.
    pub fn from_params(params: JwkParams) -> Result<Self> {
        Self::from_json(&Self { params, kid: None }.to_json())
    }

    /// Parses a JWK from its JSON object, refusing private keys and anything unusable.
    pub fn from_json(value: &Value) -> Result<Self> {
        let map = value
            .as_object()
            .ok_or(Error::InvalidJwk("not a JSON object"))?;
        for member in PRIVATE_MEMBERS {
            if map.contains_key(member) {
                return Err(Error::PrivateKeyInJwk(member));
            }
        }
        let member = |name: &'static str| -> Result<&str> {
            map.get(name)
                .ok_or(Error::InvalidJwk(name))?
                .as_str()
                .ok_or(Error::InvalidJwk(name))
        };
        let fixed_len = |name: &'static str, len: usize| -> Result<String> {
            let text = member(name)?;
            if b64::decode(text, name)?.len() != len {
                return Err(Error::InvalidJwk(name));
            }
            Ok(text.to_owned())
        };
        let params = match member("kty")? {
            "EC" => {
                let crv = match member("crv")? {
                    "P-256" => EcCurve::P256,
                    "P-384" => EcCurve::P384,
                    _ => return Err(Error::InvalidJwk("unsupported EC curve")),
                };
                JwkParams::Ec {
                    crv,
                    x: fixed_len("x", crv.coordinate_len())?,
                    y: fixed_len("y", crv.coordinate_len())?,
                }
            }
            "OKP" => match member("crv")? {
                "Ed25519" => {
                    let x = fixed_len("x", 32)?;
                    if !crate::ed25519::is_acceptable_public_key(&b64::decode(&x, "x")?) {
                        return Err(Error::InvalidJwk(
                            "an Ed25519 key must be a canonical point of large order",
                        ));
                    }
                    JwkParams::Ed25519 { x }
                }
                _ => return Err(Error::InvalidJwk("unsupported OKP curve")),
            },
            "RSA" => {
                // RFC 7518 §6.3.1: minimal octets, so one key has one JWK (and one thumbprint).
                let n = member("n")?;
                let modulus = b64::decode(n, "n")?;
                if modulus.first() == Some(&0) {
                    return Err(Error::InvalidJwk("n has a leading zero octet"));
                }
                if modulus.len() < MIN_RSA_MODULUS_BYTES {
                    return Err(Error::InvalidJwk("RSA modulus shorter than 2048 bits"));
                }
                let e = member("e")?;
                match b64::decode(e, "e")?.first() {
                    None => return Err(Error::InvalidJwk("e")),
                    Some(0) => return Err(Error::InvalidJwk("e has a leading zero octet")),
                    Some(_) => {}
                }
                JwkParams::Rsa {
                    n: n.to_owned(),
                    e: e.to_owned(),
                }
            }
            "oct" => return Err(Error::PrivateKeyInJwk("k")),
            _ => return Err(Error::InvalidJwk("unsupported key type")),
        };
        let kid = match map.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(Error::InvalidJwk("kid")),
        };
        Ok(Self { params, kid })
    }

    /// The required public members only (no `kid`), as a JSON object.
    pub fn public_members(&self) -> Map<String, Value> {
        let value = match &self.params {
            JwkParams::Ec { crv, x, y } => json!({"kty": "EC", "crv": crv.name(), "x": x, "y": y}),
            JwkParams::Ed25519 { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            JwkParams::Rsa { n, e } => json!({"kty": "RSA", "n": n, "e": e}),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The key as JSON, with `kid` when it has one (the form a JWKS publishes).
    pub fn to_json(&self) -> Value {
        let mut map = self.public_members();
        if let Some(kid) = &self.kid {
            map.insert("kid".into(), Value::String(kid.clone()));
        }
        Value::Object(map)
    }

    /// The RFC 7638 canonical JSON: required members only, lexicographic order, no whitespace.
    pub fn thumbprint_input(&self) -> String {
        let s = |v: &str| Value::String(v.to_owned()).to_string();
        match &self.params {
            JwkParams::Ec { crv, x, y } => format!(
                r#"{{"crv":{},"kty":"EC","x":{},"y":{}}}"#,
                s(crv.name()),
                s(x),
                s(y)
            ),
            JwkParams::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, s(x)),
            JwkParams::Rsa { n, e } => format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, s(e), s(n)),
        }
    }

    /// The RFC 7638 SHA-256 thumbprint, base64url (RFC 9449 `jkt`, Wire `cnf.kid`).
    pub fn thumbprint(&self) -> String {
        b64::encode(Sha256::digest(self.thumbprint_input().as_bytes()))
    }

    /// Whether two JWKs are the same public key (whatever their `kid`).
    pub fn same_key(&self, other: &Jwk) -> bool {
        self.params == other.params
    }
}

/// A JWK Set (RFC 7517 §5), as published at a `jwks_uri`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses `{"keys": [...]}`, skipping keys of types we cannot use (as RFC 7517 §5 asks)
    /// but refusing private key material outright.
    pub fn from_json(value: &Value) -> Result<Self> {
        let keys = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(Error::InvalidJwk("a JWK set needs a `keys` array"))?;
        let mut parsed = Vec::with_capacity(keys.len());
        for key in keys {
            match Jwk::from_json(key) {
                Ok(jwk) => parsed.push(jwk),
                Err(e @ Error::PrivateKeyInJwk(_)) => return Err(e),
                Err(_) => continue,
            }
        }
        Ok(Self { keys: parsed })
    }

    /// `{"keys": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({ "keys": self.keys.iter().map(Jwk::to_json).collect::<Vec<_>>() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example RSA key and its SHA-256 thumbprint.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    #[test]
    fn rfc7638_example_thumbprint() {
        let jwk = Jwk::from_json(&json!({
            "kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.kid.as_deref(), Some("2011-04-29"));
    }

    /// RFC 9449 §6.1 (Figure 9) binds the example proof key of §4.1 by this `jkt`.
    #[test]
    fn rfc9449_example_key_thumbprint() {
        let jwk = Jwk::from_json(&json!({
            "kty": "EC", "crv": "P-256",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
        }))
        .unwrap();
        assert_eq!(
            jwk.thumbprint_input(),
            r#"{"crv":"P-256","kty":"EC","x":"l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs","y":"9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"}"#
        );
        assert_eq!(
            jwk.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );
    }

    #[test]
    fn refuses_private_and_symmetric_keys() {
        let ec = json!({"kty": "EC", "crv": "P-256", "d": "AA",
            "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"});
        assert_eq!(Jwk::from_json(&ec), Err(Error::PrivateKeyInJwk("d")));
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        assert_eq!(Jwk::from_json(&oct), Err(Error::PrivateKeyInJwk("k")));
    }

    #[test]
    fn refuses_bad_coordinates_curves_and_short_rsa() {
        let short_x = json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"});
        assert_eq!(Jwk::from_json(&short_x), Err(Error::InvalidJwk("x")));
        let x448 = json!({"kty": "OKP", "crv": "X25519", "x": "AAAA"});
        assert!(matches!(Jwk::from_json(&x448), Err(Error::InvalidJwk(_))));
        let rsa1024 = json!({"kty": "RSA", "n": b64::encode([0xc5u8; 128]), "e": "AQAB"});
        assert!(matches!(
            Jwk::from_json(&rsa1024),
            Err(Error::InvalidJwk(_))
        ));
        assert!(matches!(
            Jwk::from_json(&json!("x")),
            Err(Error::InvalidJwk(_))
        ));
    }

    #[test]
    fn small_order_non_canonical_and_non_minimal_keys_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let mut negative_identity = identity;
        negative_identity[31] = 0x80;
        let mut y_is_p = [0xffu8; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        for x in [identity, negative_identity, [0; 32], y_is_p] {
            let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64::encode(x)});
            assert!(
                matches!(Jwk::from_json(&jwk), Err(Error::InvalidJwk(_))),
                "{jwk}"
            );
        }
        let padded_n = {
            let mut n = vec![0u8];
            n.extend(b64::decode(RFC7638_N, "n").unwrap());
            b64::encode(n)
        };
        for (n, e) in [(padded_n.as_str(), "AQAB"), (RFC7638_N, "AAEAAQ")] {
            let jwk = json!({"kty": "RSA", "n": n, "e": e});
            assert!(
                matches!(Jwk::from_json(&jwk), Err(Error::InvalidJwk(_))),
                "{jwk}"
            );
        }
    }

    #[test]
    fn jwk_set_skips_unknown_keys_and_keeps_kids() {
        let set = JwkSet::from_json(&json!({"keys": [
            {"kty": "OKP", "crv": "X448", "x": "AA"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "p8RM7kLwp61kjwCsfncENGOKlf1MZPIcFaUeg0ZytpQ"}
        ]}))
        .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid.as_deref(), Some("k1"));
        assert_eq!(JwkSet::from_json(&set.to_json()).unwrap(), set);
    }
}
