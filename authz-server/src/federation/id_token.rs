//! The upstream's ID token, verified as a relying party must (OpenID Connect Core §3.1.3.7):
//! signed with an algorithm of the allow-list ([`ALGORITHMS`]: never `none`, never a MAC) by a
//! key of the upstream's JWKS chosen by `kid`, the configured issuer exactly, our client id in
//! `aud` (and in `azp` when present or when there are several audiences), `exp`, `iat` and
//! `nbf` within the clock skew, the `nonce` this login sent, and a `sub`.

use proto::clock::UnixTime;
use proto::jwk::Jwk;
use proto::jws::{Algorithm, Claims, UnverifiedJws};
use serde_json::Value;

/// The algorithms an upstream ID token may be signed with.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::Rs256, Algorithm::Es256, Algorithm::EdDsa];

/// What the token must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The upstream's issuer.
    pub issuer: &'a str,
    /// Our client id there.
    pub client_id: &'a str,
    /// The nonce sent with this login.
    pub nonce: &'a str,
    /// Seconds of clock difference tolerated.
    pub skew: i64,
    /// Now.
    pub now: UnixTime,
}

/// An ID token whose header was read, signature not yet checked.
#[derive(Debug)]
pub struct IdToken {
    jws: UnverifiedJws,
    alg: Algorithm,
}

/// Why an ID token is refused; the text goes into the error description.
pub type Refusal = String;

impl IdToken {
    /// Reads the token's header: a compact JWS with an allowed algorithm.
    pub fn parse(token: &str) -> Result<Self, Refusal> {
        Self::parse_with(token, &ALGORITHMS)
    }

    /// Reads the header of a signed JWT (an ID token, an RFC 7523 assertion): a compact JWS
    /// with one of `algorithms`, and `typ`, when present, `JWT`.
    pub fn parse_with(token: &str, algorithms: &[Algorithm]) -> Result<Self, Refusal> {
        let jws = UnverifiedJws::from_compact(token).map_err(|e| format!("malformed: {e}"))?;
        let alg = jws
            .header()
            .algorithm()
            .map_err(|e| format!("algorithm refused: {e}"))?;
        if !algorithms.contains(&alg) {
            return Err(format!("algorithm {alg} is not accepted"));
        }
        if let Some(typ) = jws.header().typ()
            && !typ.eq_ignore_ascii_case("JWT")
        {
            return Err(format!("typ {typ:?} is not JWT"));
        }
        Ok(Self { jws, alg })
    }

    /// The key of `keys` this token names (by `kid`; without one, the only key fitting its
    /// algorithm).
    pub fn key_in<'k>(&self, keys: &'k [Jwk]) -> Option<&'k Jwk> {
        match self.jws.header().kid() {
            Some(kid) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid) && self.alg.fits(k)),
            None => {
                let mut fitting = keys.iter().filter(|k| self.alg.fits(k));
                match (fitting.next(), fitting.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        }
    }

    /// Verifies the signature with `key` and every claim against `expected`.
    pub fn verify(self, key: &Jwk, expected: &Expected<'_>) -> Result<Claims, Refusal> {
        let claims = self.signed_claims(key)?;
        check_claims(&claims, expected)?;
        Ok(claims)
    }

    /// The claims, once the signature verified with `key` (none of them checked).
    pub fn signed_claims(self, key: &Jwk) -> Result<Claims, Refusal> {
        self.jws
            .verify(key)
            .map_err(|e| format!("signature: {e}"))?
            .claims()
            .map_err(|e| format!("claims: {e}"))
    }
}

/// The audiences of a JWT's `aud` (a string or an array of strings).
pub fn audiences(claims: &Claims) -> Result<Vec<&str>, Refusal> {
    match claims.get("aud") {
        Some(Value::String(aud)) => Ok(vec![aud.as_str()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .ok_or_else(|| "the aud claim lists something that is not a string".into()),
        _ => Err("the aud claim is missing".into()),
    }
}

/// The claim `name` as text, or the refusal saying it is missing or not text.
pub fn required_text<'c>(claims: &'c Claims, name: &'static str) -> Result<&'c str, Refusal> {
    claims
        .string(name)
        .map_err(|_| format!("the {name} claim is missing or not a string"))
}

/// The claim `name` as a number, or the refusal saying it is missing or not a number.
pub fn required_int(claims: &Claims, name: &'static str) -> Result<i64, Refusal> {
    claims
        .int(name)
        .map_err(|_| format!("the {name} claim is missing or not a number"))
}

fn check_claims(claims: &Claims, expected: &Expected<'_>) -> Result<(), Refusal> {
    let text = |name| required_text(claims, name);
    let int = |name| required_int(claims, name);
    if text("iss")? != expected.issuer {
        return Err("issuer mismatch".into());
    }
    let audiences = audiences(claims)?;
    if !audiences.contains(&expected.client_id) {
        return Err("audience mismatch".into());
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if (audiences.len() > 1 || claims.get("azp").is_some()) && azp != Some(expected.client_id) {
        return Err("authorized party (azp) mismatch".into());
    }
    if int("exp")?.saturating_add(expected.skew) < expected.now {
        return Err("expired".into());
    }
    if int("iat")? > expected.now.saturating_add(expected.skew) {
        return Err("issued in the future".into());
    }
    if claims.get("nbf").is_some() && int("nbf")? > expected.now.saturating_add(expected.skew) {
        return Err("not valid yet (nbf)".into());
    }
    let nonce = text("nonce")?;
    if !proto::secret::constant_time_eq(nonce.as_bytes(), expected.nonce.as_bytes()) {
        return Err("nonce mismatch".into());
    }
    let sub = text("sub")?;
    if sub.is_empty() || sub.len() > 255 {
        return Err("the sub claim is empty or longer than 255 bytes".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::jws::SigningKey;
    use serde_json::{Map, json};

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.test",
            client_id: "broker",
            nonce: "n-1",
            skew: 60,
            now: NOW,
        }
    }

    fn claims() -> Map<String, Value> {
        json!({"iss": "https://idp.test", "aud": "broker", "sub": "s1", "nonce": "n-1",
               "iat": NOW, "exp": NOW + 300})
        .as_object()
        .unwrap()
        .clone()
    }

    fn check(keys: &[Jwk], token: &str) -> Result<Claims, Refusal> {
        let parsed = IdToken::parse(token)?;
        let key = parsed.key_in(keys).ok_or("unknown key")?;
        parsed.verify(key, &expected())
    }

    #[test]
    fn a_good_token_passes_and_each_mutation_is_refused_with_its_reason() {
        let key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let keys = [key.public_jwk().clone()];
        let sign = |c: &Map<String, Value>| key.sign_jwt("JWT", false, c).unwrap();
        check(&keys, &sign(&claims())).unwrap();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("iss", json!("https://other.test"), "issuer mismatch"),
            ("aud", json!("other"), "audience mismatch"),
            ("aud", json!(["broker", "other"]), "azp"),
            ("azp", json!("other"), "azp"),
            ("exp", json!(NOW - 61), "expired"),
            ("iat", json!(NOW + 61), "issued in the future"),
            ("nonce", json!("n-2"), "nonce mismatch"),
            ("sub", json!(""), "sub"),
            ("nbf", json!(NOW + 61), "nbf"),
            ("aud", json!(["broker", 12345]), "not a string"),
            ("exp", json!(i64::MAX), ""),
        ];
        for (claim, value, reason) in cases {
            let mut c = claims();
            c.insert(claim.into(), value.clone());
            match check(&keys, &sign(&c)) {
                // A far `exp` is fine in itself (no overflow, no panic); with `nbf` within the
                // skew the token passes.
                Ok(_) => assert_eq!(value, json!(i64::MAX), "{claim}={value}"),
                Err(refusal) => assert!(refusal.contains(reason), "{claim}={value}: {refusal}"),
            }
        }
        let mut c = claims();
        c.insert("nbf".into(), json!(NOW + 59));
        check(&keys, &sign(&c)).unwrap();
        for claim in ["nonce", "exp", "iat", "sub", "aud"] {
            let mut c = claims();
            c.remove(claim);
            assert!(check(&keys, &sign(&c)).is_err(), "without {claim}");
        }
        // Within the skew.
        let mut c = claims();
        c.insert("exp".into(), json!(NOW - 59));
        check(&keys, &sign(&c)).unwrap();
    }

    #[test]
    fn none_foreign_keys_unknown_kids_and_other_algorithms_are_refused() {
        let key = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let keys = [key.public_jwk().clone()];
        let body = proto::b64::encode(serde_json::to_vec(&claims()).unwrap());
        let none = format!("{}.{body}.", proto::b64::encode(br#"{"alg":"none"}"#));
        assert!(IdToken::parse(&none).unwrap_err().contains("algorithm"));
        let hs = format!("{}.{body}.c2ln", proto::b64::encode(br#"{"alg":"HS256"}"#));
        assert!(IdToken::parse(&hs).unwrap_err().contains("algorithm"));
        let es384 = SigningKey::generate(Algorithm::Es384)
            .unwrap()
            .with_kid("k1");
        let token = es384.sign_jwt("JWT", false, &claims()).unwrap();
        assert!(IdToken::parse(&token).unwrap_err().contains("not accepted"));
        let stranger = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k9");
        let token = stranger.sign_jwt("JWT", false, &claims()).unwrap();
        assert!(IdToken::parse(&token).unwrap().key_in(&keys).is_none());
        let impostor = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        let token = impostor.sign_jwt("JWT", false, &claims()).unwrap();
        assert!(check(&keys, &token).unwrap_err().contains("signature"));
        // A key of another type under the token's kid is not the one to use.
        let eddsa_with_same_kid = SigningKey::generate(Algorithm::EdDsa)
            .unwrap()
            .with_kid("k1");
        let both = [eddsa_with_same_kid.public_jwk().clone(), keys[0].clone()];
        let token = key.sign_jwt("JWT", false, &claims()).unwrap();
        check(&both, &token).unwrap();
        let proof = key.sign_jwt("dpop+jwt", false, &claims()).unwrap();
        assert!(IdToken::parse(&proof).unwrap_err().contains("typ"));
    }
}
