//! Compact JWS (RFC 7515) signing and verification over an explicit allow-list of asymmetric
//! algorithms. `ring` generates keys, signs and verifies; parsing, header rules, the public JWK
//! and SPKI of a key and the algorithm/key pairing are ours, so no library default can widen
//! what we accept.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use serde_json::{Map, Value};

use crate::jwk::{EcCurve, Jwk, JwkParams};
use crate::secret::SecretBytes;
use crate::{Error, Result, b64};

/// The signature algorithms this service accepts. `none` and every HMAC algorithm are
/// absent by construction: a public key never verifies a MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 SHA-256.
    Es256,
    /// ECDSA P-384 SHA-384.
    Es384,
    /// Ed25519 under its RFC 8037 name `EdDSA`.
    EdDsa,
    /// Ed25519 under its RFC 9864 fully-specified name `Ed25519` (what oauth4webapi and
    /// openid-client write for Ed25519 keys); the same signature as [`Self::EdDsa`], bound to the
    /// same key type (OKP, `crv` Ed25519).
    Ed25519,
    /// RSASSA-PKCS1-v1_5 SHA-256 (2048 bits or more).
    Rs256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 5] = [
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
        Self::Ed25519,
        Self::Rs256,
    ];

    /// The JOSE `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::Rs256 => "RS256",
        }
    }

    /// Whether this algorithm signs with an Ed25519 key (under either name).
    fn is_ed25519(self) -> bool {
        matches!(self, Self::EdDsa | Self::Ed25519)
    }

    /// Looks an `alg` name up in the allow-list.
    pub fn from_name(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| Error::UnsupportedAlgorithm(name.chars().take(32).collect()))
    }

    /// Whether this algorithm is the one that key type and curve are used with.
    pub fn fits(self, key: &Jwk) -> bool {
        matches!(
            (self, &key.params),
            (
                Self::Es256,
                JwkParams::Ec {
                    crv: EcCurve::P256,
                    ..
                }
            ) | (
                Self::Es384,
                JwkParams::Ec {
                    crv: EcCurve::P384,
                    ..
                }
            ) | (Self::EdDsa | Self::Ed25519, JwkParams::Ed25519 { .. })
                | (Self::Rs256, JwkParams::Rsa { .. })
        )
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A private signing key with its public JWK. The private half is kept as PKCS#8 DER in a
/// [`SecretBytes`] and never printed.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    signer: Signer,
    public: Jwk,
    spki: Vec<u8>,
    pkcs8: SecretBytes,
}

/// The parsed private key, ready to sign (parsing PKCS#8 once, not per signature).
#[derive(Clone)]
enum Signer {
    Ecdsa(Arc<EcdsaKeyPair>),
    Ed25519(Arc<Ed25519KeyPair>),
    Rsa(Arc<RsaKeyPair>),
}

impl Signer {
    fn from_pkcs8(alg: Algorithm, der: &[u8]) -> Option<Self> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
        let rng = SystemRandom::new();
        Some(match alg {
            Algorithm::Es256 => Self::Ecdsa(Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng).ok()?,
            )),
            Algorithm::Es384 => Self::Ecdsa(Arc::new(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, der, &rng).ok()?,
            )),
            Algorithm::EdDsa | Algorithm::Ed25519 => Self::Ed25519(Arc::new(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?,
            )),
            Algorithm::Rs256 => Self::Rsa(Arc::new(RsaKeyPair::from_pkcs8(der).ok()?)),
        })
    }

    /// The public key as DER `SubjectPublicKeyInfo`.
    fn public_spki(&self) -> Vec<u8> {
        use crate::pkcs8::{EcCurveOid, ec_spki, ed25519_spki, rsa_spki};
        use ring::signature::KeyPair;
        match self {
            Self::Ecdsa(pair) => {
                let point = pair.public_key().as_ref();
                let curve = if point.len() == 1 + 2 * 32 {
                    EcCurveOid::P256
                } else {
                    EcCurveOid::P384
                };
                ec_spki(curve, point)
            }
            Self::Ed25519(pair) => ed25519_spki(pair.public_key().as_ref()),
            Self::Rsa(pair) => rsa_spki(pair.public().as_ref()),
        }
    }

    /// JWS signature bytes: R||S for ECDSA (RFC 7518 §3.4), raw for EdDSA and RSA.
    fn sign(&self, message: &[u8]) -> Option<Vec<u8>> {
        let rng = SystemRandom::new();
        match self {
            Self::Ecdsa(pair) => Some(pair.sign(&rng, message).ok()?.as_ref().to_vec()),
            Self::Ed25519(pair) => Some(pair.sign(message).as_ref().to_vec()),
            Self::Rsa(pair) => {
                let mut out = vec![0; pair.public().modulus_len()];
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                    .ok()?;
                Some(out)
            }
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("thumbprint", &self.public.thumbprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh key for `alg` from the operating system's CSPRNG. RSA keys are not generated
    /// here (ring cannot); an RSA key is brought as PKCS#8 ([`Self::from_pkcs8_der`]).
    pub fn generate(alg: Algorithm) -> Result<Self> {
        use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING};
        const GEN: Error = Error::Key("key generation failed");
        let rng = SystemRandom::new();
        let der = match alg {
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            }
            Algorithm::Es384 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng)
            }
            Algorithm::EdDsa | Algorithm::Ed25519 => Ed25519KeyPair::generate_pkcs8(&rng),
            Algorithm::Rs256 => {
                return Err(Error::Key(
                    "RSA keys are not generated here; load a PKCS#8 RSA key instead",
                ));
            }
        }
        .map_err(|_| GEN)?;
        Self::from_pkcs8_der(alg, der.as_ref())
    }

    /// Loads a PKCS#8 DER private key to be used with `alg` (a bare SEC1 EC key, as OpenSSL
    /// writes them, is taken and kept as PKCS#8).
    pub fn from_pkcs8_der(alg: Algorithm, der: &[u8]) -> Result<Self> {
        use crate::pkcs8::{EcCurveOid, is_sec1_ec_key, wrap_sec1};
        const READ: Error = Error::Key("not a PKCS#8 private key for this algorithm");
        let der = match alg {
            Algorithm::Es256 if is_sec1_ec_key(der) => wrap_sec1(EcCurveOid::P256, der),
            Algorithm::Es384 if is_sec1_ec_key(der) => wrap_sec1(EcCurveOid::P384, der),
            _ => der.to_vec(),
        };
        let signer = Signer::from_pkcs8(alg, &der).ok_or(READ)?;
        let spki = signer.public_spki();
        let public = crate::spki::jwk_from_spki_der(&spki)?;
        if !alg.fits(&public) {
            return Err(READ);
        }
        Ok(Self {
            alg,
            signer,
            public,
            spki,
            pkcs8: SecretBytes::new(der),
        })
    }

    /// Names the key (`kid` in its JWK and in headers made with [`SigningKey::sign_jwt`]).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.public.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The public key as a JWK (with `kid` if set).
    pub fn public_jwk(&self) -> &Jwk {
        &self.public
    }

    /// The public key as DER `SubjectPublicKeyInfo` (what a CSR or certificate carries).
    pub fn public_spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The private key as PKCS#8 DER, for storage with owner-only permissions.
    pub fn pkcs8_der(&self) -> &SecretBytes {
        &self.pkcs8
    }

    /// Raw signature over `message` in JWS form (R||S for ECDSA).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>> {
        self.signer
            .sign(message)
            .ok_or(Error::Key("signing failed"))
    }

    /// Signs a compact JWS. `header` gets `alg` set to this key's algorithm; everything else in
    /// it (`typ`, `jwk`, `kid`, ...) is the caller's choice.
    pub fn sign_compact(&self, mut header: Map<String, Value>, payload: &[u8]) -> Result<String> {
        header.insert("alg".into(), Value::String(self.alg.name().into()));
        let header_b64 = b64::encode(Value::Object(header).to_string());
        let signing_input = format!("{header_b64}.{}", b64::encode(payload));
        let signature = self.sign_bytes(signing_input.as_bytes())?;
        Ok(format!("{signing_input}.{}", b64::encode(signature)))
    }

    /// Signs JSON claims as a compact JWT with the given `typ`, embedding the public key as
    /// `jwk` when `embed_jwk` is set and naming it by `kid` when the key has one.
    pub fn sign_jwt(
        &self,
        typ: &str,
        embed_jwk: bool,
        claims: &Map<String, Value>,
    ) -> Result<String> {
        let mut header = Map::new();
        header.insert("typ".into(), Value::String(typ.into()));
        if embed_jwk {
            header.insert("jwk".into(), Value::Object(self.public.public_members()));
        }
        if let Some(kid) = &self.public.kid {
            header.insert("kid".into(), Value::String(kid.clone()));
        }
        self.sign_compact(header, Value::Object(claims.clone()).to_string().as_bytes())
    }
}

/// A JOSE protected header, parsed but not trusted yet.
#[derive(Debug, Clone, PartialEq)]
pub struct JoseHeader(Map<String, Value>);

impl JoseHeader {
    /// Parses the base64url protected header; refuses non-objects, unknown `alg` and `crit`.
    pub fn parse(header_b64: &str) -> Result<Self> {
        let bytes = b64::decode(header_b64, "protected header")?;
        let map = match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::MalformedJws("the header is not a JSON object")),
        };
        if map.contains_key("crit") {
            return Err(Error::CriticalHeader);
        }
        let header = Self(map);
        header.algorithm()?;
        Ok(header)
    }

    /// The `alg`, checked against the allow-list.
    pub fn algorithm(&self) -> Result<Algorithm> {
        match self.0.get("alg") {
            Some(Value::String(alg)) => Algorithm::from_name(alg),
            Some(_) => Err(Error::MalformedJws("`alg` is not a string")),
            None => Err(Error::MalformedJws("missing `alg`")),
        }
    }

    /// A string member.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// `typ`.
    pub fn typ(&self) -> Option<&str> {
        self.str("typ")
    }

    /// `kid`.
    pub fn kid(&self) -> Option<&str> {
        self.str("kid")
    }

    /// Whether a member is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The embedded `jwk`, parsed and checked to be a public key.
    pub fn jwk(&self) -> Result<Jwk> {
        Jwk::from_json(self.0.get("jwk").ok_or(Error::MissingJwk)?)
    }

    /// All members.
    pub fn members(&self) -> &Map<String, Value> {
        &self.0
    }
}

/// A JWS split into its parts, header parsed, signature not yet verified.
#[derive(Debug, Clone)]
pub struct UnverifiedJws {
    header: JoseHeader,
    signing_input: String,
    payload_b64_start: usize,
    signature: Vec<u8>,
}

impl UnverifiedJws {
    /// Splits a compact JWS `header.payload.signature`.
    pub fn from_compact(token: &str) -> Result<Self> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::MalformedJws("a compact JWS has three parts"));
        };
        Self::from_parts(h, p, s)
    }

    /// Builds from the three base64url parts (compact or flattened JSON serialization).
    pub fn from_parts(protected: &str, payload: &str, signature: &str) -> Result<Self> {
        let header = JoseHeader::parse(protected)?;
        if payload.bytes().any(|b| !is_b64url(b)) {
            return Err(Error::Base64 { field: "payload" });
        }
        Ok(Self {
            header,
            signing_input: format!("{protected}.{payload}"),
            payload_b64_start: protected.len() + 1,
            signature: b64::decode(signature, "signature")?,
        })
    }

    /// The protected header.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// Verifies the signature with `key`; the header's `alg` must fit the key.
    pub fn verify(self, key: &Jwk) -> Result<VerifiedJws> {
        let alg = self.header.algorithm()?;
        if !alg.fits(key) {
            return Err(Error::AlgorithmKeyMismatch);
        }
        verify_signature(alg, key, self.signing_input.as_bytes(), &self.signature)?;
        let payload = b64::decode(&self.signing_input[self.payload_b64_start..], "payload")?;
        Ok(VerifiedJws {
            header: self.header,
            payload,
        })
    }
}

/// A JWS whose signature verified with the key it was checked against.
#[derive(Debug, Clone)]
pub struct VerifiedJws {
    header: JoseHeader,
    payload: Vec<u8>,
}

impl VerifiedJws {
    /// The protected header.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// The payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as a JSON object of claims.
    pub fn claims(&self) -> Result<Claims> {
        Claims::from_slice(&self.payload)
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Verifies a JWS signature with ring (the key material comes straight from the JWK, so no key
/// object is built per verification).
fn verify_signature(alg: Algorithm, key: &Jwk, message: &[u8], signature: &[u8]) -> Result<()> {
    use ring::signature::{self as sig, UnparsedPublicKey};
    const KEY: Error = Error::InvalidJwk("not a usable public key");
    let decode = |text: &str| b64::decode(text, "jwk").map_err(|_| KEY);
    let ok = match (alg, &key.params) {
        (Algorithm::Es256 | Algorithm::Es384, JwkParams::Ec { x, y, .. }) => {
            let mut point = vec![4u8];
            point.extend(decode(x)?);
            point.extend(decode(y)?);
            let algorithm = if alg == Algorithm::Es256 {
                &sig::ECDSA_P256_SHA256_FIXED
            } else {
                &sig::ECDSA_P384_SHA384_FIXED
            };
            UnparsedPublicKey::new(algorithm, point)
                .verify(message, signature)
                .is_ok()
        }
        (alg, JwkParams::Ed25519 { x }) if alg.is_ed25519() => {
            UnparsedPublicKey::new(&sig::ED25519, decode(x)?)
                .verify(message, signature)
                .is_ok()
        }
        (Algorithm::Rs256, JwkParams::Rsa { n, e }) => sig::RsaPublicKeyComponents {
            n: decode(n)?,
            e: decode(e)?,
        }
        .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
        .is_ok(),
        _ => return Err(Error::AlgorithmKeyMismatch),
    };
    if ok { Ok(()) } else { Err(Error::BadSignature) }
}

/// A JWT claim set with typed accessors whose errors name the claim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Claims(pub Map<String, Value>);

impl Claims {
    /// Parses a JSON object.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(Error::MalformedClaims("the payload is not a JSON object")),
        }
    }

    /// A required string claim.
    pub fn string(&self, name: &'static str) -> Result<&str> {
        self.opt_string(name)?.ok_or(Error::MissingClaim(name))
    }

    /// An optional string claim (present with another type is an error).
    pub fn opt_string(&self, name: &'static str) -> Result<Option<&str>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::InvalidClaim(name)),
        }
    }

    /// A required NumericDate / integer claim.
    pub fn int(&self, name: &'static str) -> Result<i64> {
        self.opt_int(name)?.ok_or(Error::MissingClaim(name))
    }

    /// An optional NumericDate / integer claim. Fractions are truncated (RFC 7519 allows them).
    pub fn opt_int(&self, name: &'static str) -> Result<Option<i64>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or(Error::InvalidClaim(name)),
            Some(_) => Err(Error::InvalidClaim(name)),
        }
    }

    /// A raw claim.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Sets a claim.
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.0.insert(name.to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_its_own_key_only() {
        for alg in Algorithm::ALL {
            let key = crate::test_keys::key_for(alg);
            let token = key.sign_jwt("JWT", false, &Map::new()).unwrap();
            let verified = UnverifiedJws::from_compact(&token)
                .unwrap()
                .verify(key.public_jwk())
                .unwrap();
            assert_eq!(verified.header().algorithm().unwrap(), alg);
            let other = crate::test_keys::another_key_for(alg);
            let err = UnverifiedJws::from_compact(&token)
                .unwrap()
                .verify(other.public_jwk())
                .unwrap_err();
            assert_eq!(err, Error::BadSignature, "{alg}");
        }
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        for alg in Algorithm::ALL {
            let key = crate::test_keys::key_for(alg);
            let again = SigningKey::from_pkcs8_der(alg, key.pkcs8_der().expose()).unwrap();
            assert!(again.public_jwk().same_key(key.public_jwk()));
        }
        let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
        assert!(SigningKey::from_pkcs8_der(Algorithm::Es256, ed.pkcs8_der().expose()).is_err());
    }

    #[test]
    fn refuses_none_hmac_and_mismatched_algorithms() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let token = key.sign_jwt("JWT", false, &Map::new()).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        for alg in ["none", "HS256", "PS256", "ES512"] {
            let header = b64::encode(format!(r#"{{"alg":"{alg}"}}"#));
            let err = UnverifiedJws::from_compact(&format!("{header}.{rest}")).unwrap_err();
            assert_eq!(err, Error::UnsupportedAlgorithm(alg.into()));
        }
        // ES384 header over a P-256 key.
        let header = b64::encode(r#"{"alg":"ES384"}"#);
        let err = UnverifiedJws::from_compact(&format!("{header}.{rest}"))
            .unwrap()
            .verify(key.public_jwk())
            .unwrap_err();
        assert_eq!(err, Error::AlgorithmKeyMismatch);
    }

    /// `header.payload.signature` with this header, signed by `key` whatever the header says.
    fn signed_with_header(key: &SigningKey, header: &str) -> String {
        let input = format!("{}.{}", b64::encode(header), b64::encode("{}"));
        let signature = key.sign_bytes(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(signature))
    }

    #[test]
    fn ed25519_is_accepted_by_both_names_and_only_with_an_ed25519_key() {
        let ed = SigningKey::generate(Algorithm::EdDsa).unwrap();
        for name in ["EdDSA", "Ed25519"] {
            let token = signed_with_header(&ed, &format!(r#"{{"alg":"{name}"}}"#));
            let jws = UnverifiedJws::from_compact(&token).unwrap();
            assert_eq!(jws.header().algorithm().unwrap().name(), name);
            assert!(jws.verify(ed.public_jwk()).is_ok(), "{name}");
        }
        // The name binds the key type: an EC or RSA key never verifies an `Ed25519` JWS, even
        // one that key signed.
        for alg in [Algorithm::Es256, Algorithm::Rs256] {
            let other = crate::test_keys::key_for(alg);
            let token = signed_with_header(&other, r#"{"alg":"Ed25519"}"#);
            let err = UnverifiedJws::from_compact(&token)
                .unwrap()
                .verify(other.public_jwk())
                .unwrap_err();
            assert_eq!(err, Error::AlgorithmKeyMismatch, "{alg}");
        }
        let stranger = SigningKey::generate(Algorithm::EdDsa).unwrap();
        let token = signed_with_header(&ed, r#"{"alg":"Ed25519"}"#);
        let err = UnverifiedJws::from_compact(&token)
            .unwrap()
            .verify(stranger.public_jwk())
            .unwrap_err();
        assert_eq!(err, Error::BadSignature);
        // Other fully-specified names stay outside the allow-list; names are case-sensitive.
        for name in ["Ed448", "ed25519", "ED25519"] {
            let header = b64::encode(format!(r#"{{"alg":"{name}"}}"#));
            let err = UnverifiedJws::from_compact(&format!("{header}.e30.AA")).unwrap_err();
            assert_eq!(err, Error::UnsupportedAlgorithm(name.into()));
        }
    }

    #[test]
    fn refuses_malformed_compact_tokens() {
        assert!(matches!(
            UnverifiedJws::from_compact("a.b"),
            Err(Error::MalformedJws(_))
        ));
        assert!(matches!(
            UnverifiedJws::from_compact("a.b.c.d"),
            Err(Error::MalformedJws(_))
        ));
        let not_object = b64::encode("[1]");
        assert!(matches!(
            UnverifiedJws::from_compact(&format!("{not_object}.e30.AA")),
            Err(Error::MalformedJws(_))
        ));
        let crit = b64::encode(r#"{"alg":"ES256","crit":["b64"]}"#);
        assert_eq!(
            UnverifiedJws::from_compact(&format!("{crit}.e30.AA")).unwrap_err(),
            Error::CriticalHeader
        );
        let ok = b64::encode(r#"{"alg":"ES256"}"#);
        assert_eq!(
            UnverifiedJws::from_compact(&format!("{ok}.e3=.AA")).unwrap_err(),
            Error::Base64 { field: "payload" }
        );
    }

    #[test]
    fn claims_accessors_name_the_claim() {
        let c = Claims::from_slice(br#"{"a":"x","n":5,"f":1.9,"bad":true}"#).unwrap();
        assert_eq!(c.string("a").unwrap(), "x");
        assert_eq!(c.string("zz"), Err(Error::MissingClaim("zz")));
        assert_eq!(c.string("n"), Err(Error::InvalidClaim("n")));
        assert_eq!(c.int("n").unwrap(), 5);
        assert_eq!(c.int("f").unwrap(), 1);
        assert_eq!(c.int("bad"), Err(Error::InvalidClaim("bad")));
        assert!(Claims::from_slice(b"[]").is_err());
    }
}
