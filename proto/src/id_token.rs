//! The OpenID Connect ID token a device presents for a `wire-oidc-01` challenge, verified as an
//! ACME server must (OpenID Connect Core §3.1.3.7, plus the Wire claims): issuer signature (key
//! chosen by `kid` from the issuer's JWKS), `iss`, `aud`/`azp`, `exp`/`iat`, the echoed
//! `keyauth` and `acme_aud`, and the display name and handle mapped to the order's by a
//! configurable [`ClaimMapping`].

use serde_json::Value;

use crate::clock::UnixTime;
use crate::jwk::Jwk;
use crate::jws::{Algorithm, Claims, UnverifiedJws};
use crate::wire_id::{HandleUri, WireIdentity};
use crate::{Error, Result};

/// Which ID token claims carry the user's handle and display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMapping {
    /// The claim holding the handle: `handle`, `handle@domain` or the handle URI itself.
    pub handle: String,
    /// The claim holding the display name.
    pub name: String,
}

impl Default for ClaimMapping {
    /// Wire's mapping: `preferred_username` and `name`.
    fn default() -> Self {
        Self {
            handle: "preferred_username".into(),
            name: "name".into(),
        }
    }
}

/// What an ACME server knows when a `wire-oidc-01` answer arrives.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenCheck<'a> {
    /// The issuer's signing keys (from its JWKS).
    pub issuer_keys: &'a [Jwk],
    /// The issuer (`iss`, exact string match), the challenge `target`.
    pub issuer: &'a str,
    /// The OAuth client id the token must be issued to (`aud`).
    pub client_id: &'a str,
    /// The key authorization of this challenge: `token.thumbprint(account key)`.
    pub keyauth: &'a str,
    /// This challenge's URL.
    pub acme_aud: &'a str,
    /// The order's identity (its handle and display name are mapped from the token).
    pub identity: &'a WireIdentity,
    /// Where the handle and name are in the token.
    pub mapping: &'a ClaimMapping,
}

/// An ID token that passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedIdToken {
    claims: Claims,
}

impl VerifiedIdToken {
    /// Its claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// Verifies `token` at time `now`, allowing `leeway` seconds of clock skew.
pub fn verify_id_token(
    token: &str,
    check: &IdTokenCheck<'_>,
    leeway: i64,
    now: UnixTime,
) -> Result<VerifiedIdToken> {
    let jws = UnverifiedJws::from_compact(token)?;
    // OIDC does not require `typ`; refuse only tokens typed as something else (a DPoP proof or
    // an access token must never pass as an ID token).
    if let Some(typ) = jws.header().typ()
        && !typ.eq_ignore_ascii_case("JWT")
    {
        return Err(Error::WrongTyp { expected: "JWT" });
    }
    let key = select_issuer_key(&jws, check.issuer_keys)?;
    let claims = jws.verify(key)?.claims()?;

    if claims.string("iss")? != check.issuer {
        return Err(Error::IssMismatch);
    }
    check_audience(&claims, check.client_id)?;
    let exp = claims.int("exp")?;
    let iat = claims.int("iat")?;
    if exp + leeway < now {
        return Err(Error::Expired);
    }
    if iat > now + leeway {
        return Err(Error::IatInFuture);
    }
    if claims.opt_int("nbf")?.is_some_and(|nbf| nbf > now + leeway) {
        return Err(Error::NotYetValid);
    }
    if claims.string(crate::wire_claims::KEYAUTH)? != check.keyauth {
        return Err(Error::KeyAuthMismatch);
    }
    if claims.string(crate::wire_claims::ACME_AUD)? != check.acme_aud {
        return Err(Error::AcmeAudMismatch);
    }
    let name = claim_str(&claims, &check.mapping.name)?;
    if name != check.identity.name() {
        return Err(Error::NameMismatch);
    }
    let handle = claim_str(&claims, &check.mapping.handle)?;
    if !handle_matches(handle, check.identity.handle()) {
        return Err(Error::HandleMismatch);
    }
    Ok(VerifiedIdToken { claims })
}

fn claim_str<'c>(claims: &'c Claims, name: &str) -> Result<&'c str> {
    match claims.get(name) {
        Some(Value::String(s)) => Ok(s),
        // The mapping is configuration, so its claim names are not `'static`; report the
        // mapped role instead.
        Some(_) => Err(Error::InvalidClaim("mapped handle/name claim")),
        None => Err(Error::MissingClaim("mapped handle/name claim")),
    }
}

/// `aud` is the client id or an array holding it; with several audiences `azp` must name the
/// client (OIDC Core §3.1.3.7 items 3–5).
fn check_audience(claims: &Claims, client_id: &str) -> Result<()> {
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        Some(_) => return Err(Error::InvalidClaim("aud")),
        None => return Err(Error::MissingClaim("aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(Error::AudMismatch);
    }
    let azp = claims.opt_string("azp")?;
    if (audiences.len() > 1 || azp.is_some()) && azp != Some(client_id) {
        return Err(Error::AudMismatch);
    }
    Ok(())
}

/// The handle claim may be the bare handle, `handle@domain` (Keycloak's `preferred_username` in
/// Wire's set-up) or the handle URI.
fn handle_matches(claim: &str, expected: &HandleUri) -> bool {
    if let Ok(uri) = HandleUri::parse(claim) {
        return &uri == expected;
    }
    let (handle, domain) = match claim.rsplit_once('@') {
        Some((handle, domain)) => (handle, domain),
        None => (claim, expected.domain()),
    };
    handle == expected.handle() && domain == expected.domain()
}

fn select_issuer_key<'k>(jws: &UnverifiedJws, keys: &'k [Jwk]) -> Result<&'k Jwk> {
    let alg: Algorithm = jws.header().algorithm()?;
    let key = match jws.header().kid() {
        Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
        None => {
            let mut fitting = keys.iter().filter(|k| alg.fits(k));
            match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    };
    key.ok_or(Error::UnknownSigningKey)
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::jws::SigningKey;

    const NOW: i64 = 1_700_000_000;

    struct Fixture {
        key: SigningKey,
        handle: HandleUri,
        mapping: ClaimMapping,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                key: SigningKey::generate(Algorithm::Es256)
                    .unwrap()
                    .with_kid("k1"),
                handle: HandleUri::new("alice_wire", "wire.com").unwrap(),
                mapping: ClaimMapping::default(),
            }
        }

        fn claims(&self) -> Map<String, Value> {
            json!({
                "iss": "https://idp.test", "aud": "wireapp", "azp": "wireapp",
                "exp": NOW + 60, "iat": NOW, "sub": "u1",
                "keyauth": "tok.thumb", "acme_aud": "https://acme.test/chall/1",
                "name": "Alice Smith", "preferred_username": "alice_wire@wire.com"
            })
            .as_object()
            .unwrap()
            .clone()
        }

        fn identity(&self) -> crate::wire_id::WireIdentity {
            let client_id = crate::wire_id::ClientId::parse(
                "wireapp://yRbSiljXSnCl77-QkM634g!9ff0457928ebe5f4@wire.com",
            )
            .unwrap();
            crate::wire_id::WireIdentity::new(client_id, self.handle.clone(), "Alice Smith", None)
                .unwrap()
        }

        fn verify(&self, token: &str) -> Result<VerifiedIdToken> {
            let keys = [self.key.public_jwk().clone()];
            let check = IdTokenCheck {
                issuer_keys: &keys,
                issuer: "https://idp.test",
                client_id: "wireapp",
                keyauth: "tok.thumb",
                acme_aud: "https://acme.test/chall/1",
                identity: &self.identity(),
                mapping: &self.mapping,
            };
            verify_id_token(token, &check, 60, NOW)
        }

        fn sign(&self, claims: &Map<String, Value>) -> String {
            self.key.sign_jwt("JWT", false, claims).unwrap()
        }
    }

    #[test]
    fn a_good_token_passes_and_each_mutation_fails_its_own_check() {
        let f = Fixture::new();
        f.verify(&f.sign(&f.claims())).unwrap();
        let cases: Vec<(&str, Value, Error)> = vec![
            ("iss", json!("https://other.test"), Error::IssMismatch),
            ("aud", json!("other"), Error::AudMismatch),
            ("aud", json!(["other", "x"]), Error::AudMismatch),
            ("azp", json!("other"), Error::AudMismatch),
            ("exp", json!(NOW - 61), Error::Expired),
            ("iat", json!(NOW + 61), Error::IatInFuture),
            ("nbf", json!(NOW + 61), Error::NotYetValid),
            ("keyauth", json!("tok.other"), Error::KeyAuthMismatch),
            (
                "acme_aud",
                json!("https://acme.test/chall/2"),
                Error::AcmeAudMismatch,
            ),
            ("name", json!("Mallory"), Error::NameMismatch),
            (
                "preferred_username",
                json!("bob@wire.com"),
                Error::HandleMismatch,
            ),
            (
                "preferred_username",
                json!("alice_wire@evil.com"),
                Error::HandleMismatch,
            ),
        ];
        for (claim, value, expected) in cases {
            let mut claims = f.claims();
            claims.insert(claim.into(), value.clone());
            assert_eq!(
                f.verify(&f.sign(&claims)).unwrap_err(),
                expected,
                "{claim} = {value}"
            );
        }
        for claim in ["exp", "iat", "keyauth", "acme_aud", "aud"] {
            let mut claims = f.claims();
            claims.remove(claim);
            assert!(f.verify(&f.sign(&claims)).is_err(), "without {claim}");
        }
    }

    #[test]
    fn handle_claim_forms_and_mapping_are_honoured() {
        let mut f = Fixture::new();
        for form in [
            "alice_wire",
            "alice_wire@wire.com",
            "wireapp://%40alice_wire@wire.com",
        ] {
            let mut claims = f.claims();
            claims.insert("preferred_username".into(), json!(form));
            f.verify(&f.sign(&claims)).unwrap();
        }
        f.mapping = ClaimMapping {
            handle: "handle".into(),
            name: "display".into(),
        };
        let mut claims = f.claims();
        claims.insert("handle".into(), json!("alice_wire"));
        claims.insert("display".into(), json!("Alice Smith"));
        claims.insert("name".into(), json!("ignored"));
        f.verify(&f.sign(&claims)).unwrap();
    }

    #[test]
    fn foreign_keys_and_token_types_are_refused() {
        let f = Fixture::new();
        let other = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k1");
        assert_eq!(
            f.verify(&other.sign_jwt("JWT", false, &f.claims()).unwrap())
                .unwrap_err(),
            Error::BadSignature
        );
        let unknown = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("k9");
        assert_eq!(
            f.verify(&unknown.sign_jwt("JWT", false, &f.claims()).unwrap())
                .unwrap_err(),
            Error::UnknownSigningKey
        );
        assert_eq!(
            f.verify(&f.key.sign_jwt("dpop+jwt", false, &f.claims()).unwrap())
                .unwrap_err(),
            Error::WrongTyp { expected: "JWT" }
        );
    }
}
