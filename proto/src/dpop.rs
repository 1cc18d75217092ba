//! DPoP proofs (RFC 9449) with Wire's extension claims: building them on the device, and
//! verifying them in one ordered pipeline that performs every check of RFC 9449 §4.3.
//!
//! A successful verification yields a [`VerifiedDpopProof`], the only way to obtain one, so
//! code that needs a checked proof (token issuance) cannot be reached with an unchecked one.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::clock::UnixTime;
use crate::jwk::Jwk;
use crate::jws::{Algorithm, Claims, SigningKey, UnverifiedJws};
use crate::wire_id::{ClientId, HandleUri, WireIdentity};
use crate::{Error, Result, b64, htu, wire_claims};

/// The `typ` of a DPoP proof (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// Longest `jti` accepted; it is stored in replay caches.
const MAX_JTI_LEN: usize = 256;

/// The Wire claims a device adds to the proof it sends to the backend's access-token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireClaims {
    /// `chal`: the ACME `wire-dpop-01` challenge token.
    pub chal: String,
    /// `sub`: the device's client-id URI.
    pub sub: String,
    /// `aud`: the ACME challenge URL.
    pub aud: String,
    /// `handle`: the user's handle URI.
    pub handle: String,
    /// `team`, when the user belongs to one.
    pub team: Option<String>,
    /// `name`: the user's display name.
    pub name: String,
}

/// The claims of a DPoP proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopClaims {
    /// Unique identifier of this proof.
    pub jti: String,
    /// HTTP method of the request.
    pub htm: String,
    /// HTTP target URI of the request, without query and fragment.
    pub htu: String,
    /// Creation time.
    pub iat: UnixTime,
    /// Not-before (Wire sets it, backdated like `iat`).
    pub nbf: Option<UnixTime>,
    /// Expiry (required by Wire).
    pub exp: Option<UnixTime>,
    /// Server-provided nonce.
    pub nonce: Option<String>,
    /// Hash of the access token the proof is presented with.
    pub ath: Option<String>,
    /// The Wire claims, for proofs sent to the access-token endpoint.
    pub wire: Option<WireClaims>,
}

impl DpopClaims {
    /// A proof for `htm` `htu` made at `now`, with a fresh random `jti`.
    pub fn new(htm: &str, htu: &str, now: UnixTime) -> Self {
        Self {
            jti: crate::random::uuid_v4(),
            htm: htm.to_owned(),
            htu: htu.to_owned(),
            iat: now,
            nbf: None,
            exp: None,
            nonce: None,
            ath: None,
            wire: None,
        }
    }

    /// Binds the proof to an access token (`ath`, RFC 9449 §4.2).
    pub fn with_access_token(mut self, access_token: &str) -> Self {
        self.ath = Some(access_token_hash(access_token));
        self
    }

    /// The claims as a JSON object.
    pub fn to_claims(&self) -> Claims {
        let mut c = Claims::default();
        c.set("jti", self.jti.clone());
        c.set("htm", self.htm.clone());
        c.set("htu", self.htu.clone());
        c.set("iat", self.iat);
        if let Some(nbf) = self.nbf {
            c.set("nbf", nbf);
        }
        if let Some(exp) = self.exp {
            c.set("exp", exp);
        }
        if let Some(nonce) = &self.nonce {
            c.set("nonce", nonce.clone());
        }
        if let Some(ath) = &self.ath {
            c.set("ath", ath.clone());
        }
        if let Some(w) = &self.wire {
            c.set(wire_claims::CHAL, w.chal.clone());
            c.set("sub", w.sub.clone());
            c.set("aud", w.aud.clone());
            c.set(wire_claims::HANDLE, w.handle.clone());
            if let Some(team) = &w.team {
                c.set(wire_claims::TEAM, team.clone());
            }
            c.set(wire_claims::NAME, w.name.clone());
        }
        c
    }

    /// Signs the proof with `key`, embedding its public JWK as RFC 9449 requires.
    pub fn sign(&self, key: &SigningKey) -> Result<String> {
        sign_proof_claims(key, &self.to_claims())
    }

    fn from_claims(c: &Claims, wire: bool) -> Result<Self> {
        let wire = if wire {
            Some(WireClaims {
                chal: c.string(wire_claims::CHAL)?.to_owned(),
                sub: c.string("sub")?.to_owned(),
                aud: c.string("aud")?.to_owned(),
                handle: c.string(wire_claims::HANDLE)?.to_owned(),
                // Wire's client writes `"team": null` for a user without a team.
                team: match c.get(wire_claims::TEAM) {
                    None | Some(Value::Null) => None,
                    Some(Value::String(team)) => Some(team.clone()),
                    Some(_) => return Err(Error::InvalidClaim(wire_claims::TEAM)),
                },
                name: c.string(wire_claims::NAME)?.to_owned(),
            })
        } else {
            None
        };
        Ok(Self {
            jti: c.string("jti")?.to_owned(),
            htm: c.string("htm")?.to_owned(),
            htu: c.string("htu")?.to_owned(),
            iat: c.int("iat")?,
            nbf: c.opt_int("nbf")?,
            exp: c.opt_int("exp")?,
            nonce: c.opt_string("nonce")?.map(str::to_owned),
            ath: c.opt_string("ath")?.map(str::to_owned),
            wire,
        })
    }
}

/// Signs arbitrary claims as a DPoP proof (`typ` and `jwk` set); tests use it to make proofs
/// that are wrong in exactly one way.
pub fn sign_proof_claims(key: &SigningKey, claims: &Claims) -> Result<String> {
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), Value::String(DPOP_TYP.into()));
    header.insert(
        "jwk".into(),
        Value::Object(key.public_jwk().public_members()),
    );
    key.sign_compact(
        header,
        Value::Object(claims.0.clone()).to_string().as_bytes(),
    )
}

/// `ath`: base64url(SHA-256(ASCII access token)).
pub fn access_token_hash(access_token: &str) -> String {
    b64::encode(Sha256::digest(access_token.as_bytes()))
}

/// Picks the single `DPoP` header value out of all the request's `DPoP` headers
/// (RFC 9449 §4.3 check 1).
pub fn single_dpop_header<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Result<&'a str> {
    let mut values = values.into_iter();
    let first = values.next().ok_or(Error::MissingDpopHeader)?;
    if values.next().is_some() {
        return Err(Error::MultipleDpopHeaders);
    }
    std::str::from_utf8(first).map_err(|_| Error::MalformedJws("the DPoP header is not ASCII"))
}

/// How a verifier treats the `nonce` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck<'a> {
    /// The server issued no nonce; a `nonce` claim, if any, is ignored.
    NotRequired,
    /// A nonce is required; the caller redeems it (for example against its nonce store).
    Present,
    /// A nonce is required and must equal this value.
    Equals(&'a str),
}

/// What the Wire claims must say.
#[derive(Debug, Clone, Copy)]
pub struct WireExpectations<'a> {
    /// The device and user the proof must be about (`sub`, `handle`, `name`, and `team` when
    /// the identity has one).
    pub identity: &'a WireIdentity,
    /// The challenge token, when known to the verifier (`chal`).
    pub challenge: Option<&'a str>,
    /// The challenge URL, when known to the verifier (`aud`).
    pub audience: Option<&'a str>,
}

/// What the request a proof arrives with looks like, and what it must be bound to.
#[derive(Debug, Clone, Copy)]
pub struct DpopCheck<'a> {
    /// The request method (`htm`).
    pub htm: &'a str,
    /// The request URI as the server's public configuration spells it (`htu`).
    pub htu: &'a str,
    /// Nonce requirements.
    pub nonce: NonceCheck<'a>,
    /// The access token presented with the proof, if any (`ath`).
    pub access_token: Option<&'a str>,
    /// Wire claim requirements, for the backend's access-token endpoint.
    pub wire: Option<WireExpectations<'a>>,
}

/// Acceptance windows and algorithms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpopPolicy {
    /// Algorithms accepted.
    pub algorithms: Vec<Algorithm>,
    /// Oldest acceptable `iat`, in seconds before now.
    pub max_age: i64,
    /// Clock skew tolerated for `iat`/`nbf` in the future and `exp` in the past.
    pub max_skew: i64,
    /// Furthest acceptable `exp`, in seconds after now, before the skew allowance is added.
    pub max_exp_ahead: Option<i64>,
    /// Whether `exp` must be present.
    pub require_exp: bool,
}

impl DpopPolicy {
    /// RFC 9449 at a token or resource endpoint: `iat` within five minutes, one minute of skew.
    pub fn rfc9449() -> Self {
        Self {
            algorithms: Algorithm::ALL.to_vec(),
            max_age: 300,
            max_skew: 60,
            max_exp_ahead: None,
            require_exp: false,
        }
    }

    /// The Wire access-token endpoint: freshness comes from the single-use backend nonce, and
    /// Wire clients backdate `iat`/`nbf` by an hour, so `iat` may be an hour and five minutes
    /// old; `exp` is required and capped at one hour ahead (plus the skew allowance, 5 minutes
    /// by default: Wire sends `exp = iat + 1 h`, so a device clock a few minutes fast must
    /// pass). ES256, ES384, EdDSA (also by its RFC 9864 name Ed25519).
    pub fn wire() -> Self {
        Self {
            algorithms: vec![
                Algorithm::Es256,
                Algorithm::Es384,
                Algorithm::EdDsa,
                Algorithm::Ed25519,
            ],
            max_age: 3600 + 300,
            max_skew: DEFAULT_WIRE_SKEW,
            max_exp_ahead: Some(3600),
            require_exp: true,
        }
    }

    /// The same policy tolerating `skew` seconds of clock difference (for `iat`/`nbf` ahead,
    /// `exp` behind, and on top of the `exp` cap).
    pub fn with_skew(mut self, skew: i64) -> Self {
        self.max_skew = skew;
        self
    }
}

/// The clock difference tolerated between a Wire device and the servers unless configured
/// otherwise: five minutes (device clocks drift by minutes; the single-use backend nonce, not
/// the clock, makes a proof fresh).
pub const DEFAULT_WIRE_SKEW: i64 = 300;

/// A proof that passed every check; only [`verify_dpop_proof`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedDpopProof {
    raw: String,
    jwk: Jwk,
    thumbprint: String,
    claims: DpopClaims,
}

impl VerifiedDpopProof {
    /// The proof as it was received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The public key that signed it.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// RFC 7638 thumbprint of that key (`jkt`).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Its claims.
    pub fn claims(&self) -> &DpopClaims {
        &self.claims
    }

    /// The nonce it carries.
    pub fn nonce(&self) -> Option<&str> {
        self.claims.nonce.as_deref()
    }

    /// The Wire claims, when the proof was verified with [`WireExpectations`].
    pub fn wire(&self) -> Option<&WireClaims> {
        self.claims.wire.as_ref()
    }
}

/// Verifies a DPoP proof: structure, `typ`, algorithm, the embedded public `jwk`, signature,
/// `htm`, `htu`, `nonce`, `iat`/`nbf`/`exp`, `ath`, then the Wire claims. Each failure is its
/// own [`Error`].
pub fn verify_dpop_proof(
    raw: &str,
    check: &DpopCheck<'_>,
    policy: &DpopPolicy,
    now: UnixTime,
) -> Result<VerifiedDpopProof> {
    let jws = UnverifiedJws::from_compact(raw)?;
    if jws.header().typ() != Some(DPOP_TYP) {
        return Err(Error::WrongTyp { expected: DPOP_TYP });
    }
    let alg = jws.header().algorithm()?;
    if !policy.algorithms.contains(&alg) {
        return Err(Error::UnsupportedAlgorithm(alg.name().into()));
    }
    let jwk = jws.header().jwk()?;
    let verified = jws.verify(&jwk)?;
    let raw_claims = verified.claims()?;
    let claims = DpopClaims::from_claims(&raw_claims, check.wire.is_some())?;

    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(Error::InvalidClaim("jti"));
    }
    if claims.htm != check.htm {
        return Err(Error::HtmMismatch);
    }
    if !htu::matches(&claims.htu, check.htu)? {
        return Err(Error::HtuMismatch);
    }
    match check.nonce {
        NonceCheck::NotRequired => {}
        NonceCheck::Present => {
            if claims.nonce.as_deref().is_none_or(str::is_empty) {
                return Err(Error::MissingNonce);
            }
        }
        NonceCheck::Equals(expected) => match claims.nonce.as_deref() {
            None => return Err(Error::MissingNonce),
            Some(n) if !crate::secret::constant_time_eq(n.as_bytes(), expected.as_bytes()) => {
                return Err(Error::NonceMismatch);
            }
            Some(_) => {}
        },
    }
    check_times(&claims, policy, now)?;
    if let Some(token) = check.access_token {
        let ath = claims.ath.as_deref().ok_or(Error::MissingAth)?;
        if ath != access_token_hash(token) {
            return Err(Error::AthMismatch);
        }
    }
    if let (Some(expect), Some(wire)) = (&check.wire, &claims.wire) {
        check_wire_claims(wire, expect)?;
    }
    Ok(VerifiedDpopProof {
        raw: raw.to_owned(),
        thumbprint: jwk.thumbprint(),
        jwk,
        claims,
    })
}

fn check_times(claims: &DpopClaims, policy: &DpopPolicy, now: UnixTime) -> Result<()> {
    if claims.iat > now.saturating_add(policy.max_skew) {
        return Err(Error::IatInFuture);
    }
    if claims.iat < now.saturating_sub(policy.max_age) {
        return Err(Error::IatTooOld);
    }
    if claims
        .nbf
        .is_some_and(|nbf| nbf > now.saturating_add(policy.max_skew))
    {
        return Err(Error::NotYetValid);
    }
    match claims.exp {
        None if policy.require_exp => return Err(Error::MissingClaim("exp")),
        None => {}
        Some(exp) => {
            if exp < now.saturating_sub(policy.max_skew) {
                return Err(Error::Expired);
            }
            if policy
                .max_exp_ahead
                .is_some_and(|cap| exp > now.saturating_add(cap).saturating_add(policy.max_skew))
            {
                return Err(Error::ExpTooFar);
            }
        }
    }
    Ok(())
}

fn check_wire_claims(wire: &WireClaims, expect: &WireExpectations<'_>) -> Result<()> {
    if expect.challenge.is_some_and(|c| c != wire.chal) || wire.chal.is_empty() {
        return Err(Error::ChalMismatch);
    }
    if &ClientId::parse(&wire.sub)? != expect.identity.client_id() {
        return Err(Error::SubMismatch);
    }
    if expect.audience.is_some_and(|a| a != wire.aud) {
        return Err(Error::AudMismatch);
    }
    if HandleUri::parse(&wire.handle).map_err(|_| Error::HandleMismatch)?
        != *expect.identity.handle()
    {
        return Err(Error::HandleMismatch);
    }
    if wire.name != expect.identity.name() {
        return Err(Error::NameMismatch);
    }
    if let Some(team) = expect.identity.team() {
        match &wire.team {
            None => return Err(Error::MissingClaim("team")),
            Some(t) if t != team => return Err(Error::TeamMismatch),
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 9449 §4.1 (Figure 4): the example proof for the token request.
    const RFC9449_TOKEN_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg";
    /// RFC 9449 §7.1 (Figure 13): the example proof for a protected resource, with `ath`.
    const RFC9449_RESOURCE_PROOF: &str = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA";
    /// RFC 9449 §7.1: the DPoP-bound access token the resource proof hashes.
    const RFC9449_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

    fn check<'a>(htm: &'a str, htu: &'a str) -> DpopCheck<'a> {
        DpopCheck {
            htm,
            htu,
            nonce: NonceCheck::NotRequired,
            access_token: None,
            wire: None,
        }
    }

    #[test]
    fn rfc9449_example_proofs_verify() {
        let p = verify_dpop_proof(
            RFC9449_TOKEN_PROOF,
            &check("POST", "https://server.example.com/token"),
            &DpopPolicy::rfc9449(),
            1_562_262_616,
        )
        .unwrap();
        assert_eq!(p.claims().jti, "-BwC3ESc6acc2lTc");
        assert_eq!(
            p.thumbprint(),
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
        );

        let mut resource = check("GET", "https://resource.example.org/protectedresource");
        resource.access_token = Some(RFC9449_ACCESS_TOKEN);
        let p = verify_dpop_proof(
            RFC9449_RESOURCE_PROOF,
            &resource,
            &DpopPolicy::rfc9449(),
            1_562_262_618,
        )
        .unwrap();
        assert_eq!(
            p.claims().ath.as_deref(),
            Some("fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo")
        );
        assert_eq!(
            access_token_hash(RFC9449_ACCESS_TOKEN),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
    }

    #[test]
    fn rfc9449_example_proof_fails_each_request_binding() {
        let policy = DpopPolicy::rfc9449();
        let now = 1_562_262_616;
        let verify =
            |c: &DpopCheck<'_>, now| verify_dpop_proof(RFC9449_TOKEN_PROOF, c, &policy, now);
        assert_eq!(
            verify(&check("GET", "https://server.example.com/token"), now).unwrap_err(),
            Error::HtmMismatch
        );
        assert_eq!(
            verify(&check("POST", "https://server.example.com/other"), now).unwrap_err(),
            Error::HtuMismatch
        );
        assert_eq!(
            verify(&check("POST", "https://server.example.com/token"), now - 61).unwrap_err(),
            Error::IatInFuture
        );
        assert_eq!(
            verify(
                &check("POST", "https://server.example.com/token"),
                now + 301
            )
            .unwrap_err(),
            Error::IatTooOld
        );
        let mut c = check("POST", "https://server.example.com/token");
        c.nonce = NonceCheck::Present;
        assert_eq!(verify(&c, now).unwrap_err(), Error::MissingNonce);
        c.nonce = NonceCheck::NotRequired;
        c.access_token = Some(RFC9449_ACCESS_TOKEN);
        assert_eq!(verify(&c, now).unwrap_err(), Error::MissingAth);
        let mut resource = check("GET", "https://resource.example.org/protectedresource");
        resource.access_token = Some("another-token");
        assert_eq!(
            verify_dpop_proof(RFC9449_RESOURCE_PROOF, &resource, &policy, now + 2).unwrap_err(),
            Error::AthMismatch
        );
    }

    #[test]
    fn built_proofs_verify_and_header_rules_hold() {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut claims = DpopClaims::new("POST", "https://as.example/token", 1_000);
        claims.nonce = Some("n-1".into());
        let proof = claims.sign(&key).unwrap();
        let mut c = check("POST", "https://as.example/token");
        c.nonce = NonceCheck::Equals("n-1");
        let p = verify_dpop_proof(&proof, &c, &DpopPolicy::rfc9449(), 1_000).unwrap();
        assert_eq!(p.thumbprint(), key.public_jwk().thumbprint());
        c.nonce = NonceCheck::Equals("n-2");
        assert_eq!(
            verify_dpop_proof(&proof, &c, &DpopPolicy::rfc9449(), 1_000).unwrap_err(),
            Error::NonceMismatch
        );

        // typ other than dpop+jwt
        let other_typ = key.sign_jwt("JWT", true, &claims.to_claims().0).unwrap();
        c.nonce = NonceCheck::NotRequired;
        assert_eq!(
            verify_dpop_proof(&other_typ, &c, &DpopPolicy::rfc9449(), 1_000).unwrap_err(),
            Error::WrongTyp { expected: DPOP_TYP }
        );
        // no jwk
        let no_jwk = key
            .sign_jwt(DPOP_TYP, false, &claims.to_claims().0)
            .unwrap();
        assert_eq!(
            verify_dpop_proof(&no_jwk, &c, &DpopPolicy::rfc9449(), 1_000).unwrap_err(),
            Error::MissingJwk
        );
        // jwk of another key than the signer
        let other = SigningKey::generate(Algorithm::Es256).unwrap();
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), json!(DPOP_TYP));
        header.insert(
            "jwk".into(),
            Value::Object(other.public_jwk().public_members()),
        );
        let forged = key
            .sign_compact(
                header,
                Value::Object(claims.to_claims().0).to_string().as_bytes(),
            )
            .unwrap();
        assert_eq!(
            verify_dpop_proof(&forged, &c, &DpopPolicy::rfc9449(), 1_000).unwrap_err(),
            Error::BadSignature
        );
    }

    #[test]
    fn single_header_rule() {
        assert_eq!(
            single_dpop_header(Vec::<&[u8]>::new()),
            Err(Error::MissingDpopHeader)
        );
        assert_eq!(single_dpop_header([b"a".as_slice()]), Ok("a"));
        assert_eq!(
            single_dpop_header([b"a".as_slice(), b"b".as_slice()]),
            Err(Error::MultipleDpopHeaders)
        );
    }
}
