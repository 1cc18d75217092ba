//! GA4GH Visas: the signed JWTs a Passport (the `ga4gh_passport_v1` claim) lists, as the GA4GH
//! Passport v1.2 specification defines them
//! (<https://ga4gh.github.io/data-security/ga4gh-passport#visa-format>), in the Visa Document
//! Token format of the AAI OpenID Connect profile v1.2
//! (<https://ga4gh.github.io/data-security/aai-openid-connect-profile#conformance-for-visa-issuers>).
//!
//! - [`VisaClaims::sign`] makes one: header `typ` = [`VISA_TYP`] (Passport §"typ"), `jku` = the
//!   signer's JWK Set URL and `kid` (AAI, Visa Document Token, item 3); payload `iss`, `sub`,
//!   `iat`, `exp`, `jti` and the [`VisaObject`] under `ga4gh_visa_v1` (Passport §"Visa Object
//!   Claims": `type`, `asserted`, `value`, `source`, `by`, `conditions`).
//! - [`verify_visa`] is what a Passport Clearinghouse (a resource server such as a DAM) runs on
//!   each Visa before using it (AAI, "Conformance for Passport Clearinghouses", item 5): the
//!   visa's `jku` must be the key set configured for a trusted issuer — it is compared, never
//!   fetched (item 5.3.2: trust in the `jku` is checked before anything is fetched from it; here
//!   the caller holds the keys) — its `kid` a key of that set, the signature ES256 or RS256 (AAI
//!   §"Signing Algorithms"), `iss` that issuer, `exp` not passed, `iat` not ahead, and the
//!   `ga4gh_visa_v1` object well formed. `at+jwt` Visa Access Tokens (deprecated by v1.2, and
//!   needing userinfo polling) are refused by their `typ`.
//! - [`inspect_unverified`] is what a Broker passing visas of other issuers on "as is" can check
//!   without their keys: the same checks but the signature and the issuer's trust.
//! - [`check_assertion`] holds an issuer to the rules of each visa type before it signs.
//! - [`linked_identities`] and [`parse_linked_identities`] write and read the value of a
//!   `LinkedIdentities` visa (Passport §"LinkedIdentities": `sub,iss` pairs, each URI-encoded,
//!   joined by `;`).
//!
//! - [`conditions_met`] ([`conditions`]) evaluates a visa's `conditions` against the other
//!   visas of a Passport. [`verify_visa`] returns the object as sent and does not evaluate them:
//!   a clearinghouse either calls [`conditions_met`] with the visas its policy accepts, or
//!   ignores every visa for which [`VisaObject::has_conditions`] (Passport §"conditions").

pub mod conditions;

pub use conditions::conditions_met;
use serde_json::{Map, Value};

use crate::clock::UnixTime;
use crate::jwk::Jwk;
use crate::jws::{Algorithm, Claims, SigningKey, UnverifiedJws};
use crate::{Error, Result};

/// The `typ` of a Visa Document Token (Passport §"typ": `application/` left out, as RFC 7515
/// §4.1.9 recommends).
pub const VISA_TYP: &str = "vnd.ga4gh.visa+jwt";

/// The Passport claim: an array of visas, each a compact JWS string.
pub const PASSPORT_CLAIM: &str = "ga4gh_passport_v1";

/// The Visa claim inside a visa: the [`VisaObject`].
pub const VISA_CLAIM: &str = "ga4gh_visa_v1";

/// The longest visa accepted, in bytes (a visa is a few hundred; conditions make it longer).
pub const MAX_VISA_BYTES: usize = 16 * 1024;

/// The GA4GH standard visa types (Passport §"GA4GH Standard Visa Type Definitions"); any other
/// type must be a URL (a custom type).
pub const STANDARD_TYPES: [&str; 5] = [
    "AffiliationAndRole",
    "AcceptedTermsAndPolicies",
    "ResearcherStatus",
    "ControlledAccessGrants",
    "LinkedIdentities",
];

/// The fixed vocabulary of `by` (Passport §"by").
pub const BY_VALUES: [&str; 5] = ["self", "peer", "system", "so", "dac"];

/// The `LinkedIdentities` type.
pub const LINKED_IDENTITIES: &str = "LinkedIdentities";

/// The `ga4gh_visa_v1` object.
#[derive(Debug, Clone, PartialEq)]
pub struct VisaObject {
    /// `type`: a standard visa type or a custom one (a URL).
    pub visa_type: String,
    /// `asserted`: when the Visa Assertion Source made the assertion (seconds).
    pub asserted: UnixTime,
    /// `value`.
    pub value: String,
    /// `source`: the organisation that made the assertion (a URL).
    pub source: String,
    /// `by`: the authority within the source, when said.
    pub by: Option<String>,
    /// `conditions`, as sent: an array (OR) of arrays (AND) of clause objects.
    pub conditions: Option<Value>,
}

impl VisaObject {
    /// Reads the object, checking the shape Passport §"Visa Object Claims" gives it: `type`,
    /// `value` and `source` strings (`type` and `source` not empty), `asserted` an integer,
    /// `by` a string when present, `conditions` an array of arrays of objects when present.
    /// Members this version does not know are ignored, as the specification asks.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = value
            .as_object()
            .ok_or(Error::InvalidVisa("`ga4gh_visa_v1` is not an object"))?;
        let text = |name: &'static str, why: &'static str| -> Result<String> {
            match object.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(Error::InvalidVisa(why)),
            }
        };
        let visa_type = text("type", "`type` is not a string")?;
        let source = text("source", "`source` is not a string")?;
        if visa_type.is_empty() || source.is_empty() {
            return Err(Error::InvalidVisa("`type` and `source` must not be empty"));
        }
        let asserted = object
            .get("asserted")
            .and_then(Value::as_i64)
            .ok_or(Error::InvalidVisa("`asserted` is not an integer"))?;
        let by = match object.get("by") {
            None => None,
            Some(Value::String(by)) => Some(by.clone()),
            Some(_) => return Err(Error::InvalidVisa("`by` is not a string")),
        };
        let conditions = match object.get("conditions") {
            None => None,
            Some(conditions) => {
                check_conditions(conditions)?;
                Some(conditions.clone())
            }
        };
        Ok(Self {
            visa_type,
            asserted,
            value: text("value", "`value` is not a string")?,
            source,
            by,
            conditions,
        })
    }

    /// The object as JSON (`by` and `conditions` only when set).
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("type".into(), self.visa_type.clone().into());
        object.insert("asserted".into(), self.asserted.into());
        object.insert("value".into(), self.value.clone().into());
        object.insert("source".into(), self.source.clone().into());
        if let Some(by) = &self.by {
            object.insert("by".into(), by.clone().into());
        }
        if let Some(conditions) = &self.conditions {
            object.insert("conditions".into(), conditions.clone());
        }
        Value::Object(object)
    }

    /// Whether the visa holds only under conditions (a non-empty `conditions`).
    pub fn has_conditions(&self) -> bool {
        self.conditions
            .as_ref()
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty())
    }
}

/// `conditions` is an array of arrays of clause objects whose members are strings
/// (Passport §"conditions", "Format").
fn check_conditions(conditions: &Value) -> Result<()> {
    const WHY: Error = Error::InvalidVisa("`conditions` is not an array of arrays of clauses");
    let any_of = conditions.as_array().ok_or(WHY)?;
    for all_of in any_of {
        for clause in all_of.as_array().ok_or(WHY)? {
            let clause = clause.as_object().ok_or(WHY)?;
            if clause.is_empty() || clause.values().any(|v| !v.is_string()) {
                return Err(WHY);
            }
        }
    }
    Ok(())
}

/// The claims of a visa (Passport §"Visa Format").
#[derive(Debug, Clone, PartialEq)]
pub struct VisaClaims {
    /// `iss`: the Visa Issuer.
    pub iss: String,
    /// `sub`: the user at that issuer.
    pub sub: String,
    /// `iat`: when the visa was minted.
    pub iat: UnixTime,
    /// `exp`.
    pub exp: UnixTime,
    /// `jti`, when there is one.
    pub jti: Option<String>,
    /// `ga4gh_visa_v1`.
    pub visa: VisaObject,
}

impl VisaClaims {
    /// The claims as a JSON object.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), self.iss.clone().into());
        claims.insert("sub".into(), self.sub.clone().into());
        claims.insert("iat".into(), self.iat.into());
        claims.insert("exp".into(), self.exp.into());
        if let Some(jti) = &self.jti {
            claims.insert("jti".into(), jti.clone().into());
        }
        claims.insert(VISA_CLAIM.into(), self.visa.to_json());
        claims
    }

    /// Reads the claims of a visa: `iss`, `sub` (non-empty strings), `iat`, `exp`, `jti` when
    /// present, the visa object; a `scope` holding `openid` is refused (AAI, Visa Document
    /// Token, item 6: such a token would pass for an access token).
    pub fn from_claims(claims: &Claims) -> Result<Self> {
        let non_empty = |name: &'static str| -> Result<String> {
            let value = claims.string(name)?;
            if value.is_empty() {
                return Err(Error::InvalidClaim(name));
            }
            Ok(value.to_owned())
        };
        if let Some(scope) = claims.opt_string("scope")?
            && scope.split(' ').any(|s| s == "openid")
        {
            return Err(Error::InvalidVisa("a visa's `scope` must not hold openid"));
        }
        Ok(Self {
            iss: non_empty("iss")?,
            sub: non_empty("sub")?,
            iat: claims.int("iat")?,
            exp: claims.int("exp")?,
            jti: claims.opt_string("jti")?.map(str::to_owned),
            visa: VisaObject::from_json(
                claims
                    .get(VISA_CLAIM)
                    .ok_or(Error::MissingClaim(VISA_CLAIM))?,
            )?,
        })
    }

    /// Signs the visa with `key` (ES256 or RS256, with a `kid`), naming `jku`, the URL of the
    /// JWK Set that publishes the key.
    pub fn sign(&self, key: &SigningKey, jku: &str) -> Result<String> {
        if !ALGORITHMS.contains(&key.algorithm()) {
            return Err(Error::UnsupportedAlgorithm(key.algorithm().name().into()));
        }
        let kid = key
            .public_jwk()
            .kid
            .clone()
            .ok_or(Error::Key("a visa's key must have a kid"))?;
        let mut header = Map::new();
        header.insert("typ".into(), VISA_TYP.into());
        header.insert("jku".into(), jku.into());
        header.insert("kid".into(), kid.into());
        let payload = Value::Object(self.to_json()).to_string();
        key.sign_compact(header, payload.as_bytes())
    }
}

/// The algorithms visas are signed with (AAI §"Signing Algorithms").
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::Es256, Algorithm::Rs256];

/// A Visa Issuer a clearinghouse trusts: its `iss`, the URL of its JWK Set (what a visa of it
/// names in `jku`), and the keys of that set, which the caller obtained by a trusted path.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// The issuer (`iss`).
    pub issuer: String,
    /// Its JWK Set URL.
    pub jku: String,
    /// The keys of that set.
    pub keys: Vec<Jwk>,
}

/// A visa whose every check passed.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedVisa {
    /// Its claims.
    pub claims: VisaClaims,
    /// The `kid` of the key it was verified with.
    pub kid: String,
}

/// Verifies one visa (a compact JWS) against the trusted issuers at `now`, with `leeway`
/// seconds for the clocks' difference; each failing check is its own [`Error`]: too long or not
/// a JWS ([`Error::InvalidVisa`], [`Error::MalformedJws`]), another algorithm than ES256/RS256
/// ([`Error::UnsupportedAlgorithm`]), a `typ` other than [`VISA_TYP`] or `JWT`
/// ([`Error::WrongTyp`]), no `jku` ([`Error::MissingJku`]), a `jku` no trusted issuer has
/// ([`Error::UntrustedJku`]), a `kid` not in its key set ([`Error::UnknownSigningKey`]), a bad
/// signature ([`Error::BadSignature`]), an `iss` other than that issuer's
/// ([`Error::UntrustedVisaIssuer`]), expired ([`Error::Expired`]), minted in the future
/// ([`Error::IatInFuture`]), or claims of the wrong shape.
pub fn verify_visa(
    token: &str,
    trusted: &[TrustedIssuer],
    now: UnixTime,
    leeway: i64,
) -> Result<VerifiedVisa> {
    let jws = parse(token)?;
    let (jku, kid) = checked_header(jws.header())?;
    let kid = kid.to_owned();
    let issuer = trusted
        .iter()
        .find(|t| t.jku == jku)
        .ok_or(Error::UntrustedJku)?;
    let key = issuer
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid.as_str()))
        .ok_or(Error::UnknownSigningKey)?;
    let claims = VisaClaims::from_claims(&jws.verify(key)?.claims()?)?;
    if claims.iss != issuer.issuer {
        return Err(Error::UntrustedVisaIssuer);
    }
    check_times(&claims, now, leeway)?;
    Ok(VerifiedVisa { claims, kid })
}

/// What a Broker can check of a visa it passes on "as is" (AAI, "Conformance for Brokers",
/// item 7) without holding its issuer's keys: everything [`verify_visa`] checks but the
/// signature and the trust in the issuer — size, a visa's header (ES256/RS256, `typ`, `jku`,
/// `kid`), the claims' shape, `exp` and `iat`. **The signature is not verified**: the claims
/// returned must not be used for any decision but whether to pass the visa on.
pub fn inspect_unverified(token: &str, now: UnixTime, leeway: i64) -> Result<VisaClaims> {
    let jws = parse(token)?;
    checked_header(jws.header())?;
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims = VisaClaims::from_claims(&Claims::from_slice(&crate::b64::decode(
        payload, "payload",
    )?)?)?;
    check_times(&claims, now, leeway)?;
    Ok(claims)
}

/// The visa split into its parts, at most [`MAX_VISA_BYTES`] long.
fn parse(token: &str) -> Result<UnverifiedJws> {
    if token.len() > MAX_VISA_BYTES {
        return Err(Error::InvalidVisa("the visa is too long"));
    }
    UnverifiedJws::from_compact(token)
}

/// A visa's header: ES256 or RS256, a visa's `typ` (or none), a `jku` and a `kid`; the last two.
fn checked_header(header: &crate::jws::JoseHeader) -> Result<(&str, &str)> {
    let alg = header.algorithm()?;
    if !ALGORITHMS.contains(&alg) {
        return Err(Error::UnsupportedAlgorithm(alg.name().into()));
    }
    if let Some(typ) = header.typ()
        && !is_visa_typ(typ)
    {
        return Err(Error::WrongTyp { expected: VISA_TYP });
    }
    let jku = header.str("jku").ok_or(Error::MissingJku)?;
    let kid = header.kid().ok_or(Error::UnknownSigningKey)?;
    Ok((jku, kid))
}

/// `exp` not passed and `iat` not ahead at `now`, give or take `leeway`.
fn check_times(claims: &VisaClaims, now: UnixTime, leeway: i64) -> Result<()> {
    if claims.exp.saturating_add(leeway) < now {
        return Err(Error::Expired);
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err(Error::IatInFuture);
    }
    Ok(())
}

/// The longest URL a URL claim may hold (Passport §"URL Claims", item 3).
pub const MAX_URL_CLAIM: usize = 255;

/// Whether `text` is a URL claim: an absolute `https` or `http` URL with a host, at most
/// [`MAX_URL_CLAIM`] characters (Passport §"URL Claims").
pub fn is_url_claim(text: &str) -> bool {
    text.len() <= MAX_URL_CLAIM
        && url::Url::parse(text)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
}

/// The rules the Passport specification gives a visa's object beyond its shape, for an issuer
/// to check before it signs: `source` a URL claim; `by`, when present, of the fixed vocabulary;
/// a custom `type` a URL claim; for `AcceptedTermsAndPolicies`, `ResearcherStatus` and
/// `ControlledAccessGrants` a URL `value`, for `AffiliationAndRole` `role@affiliation`, for
/// `LinkedIdentities` a list of `sub,iss` pairs; `by` required for `AcceptedTermsAndPolicies`
/// and `ControlledAccessGrants` (Passport §"GA4GH Standard Visa Type Definitions").
pub fn check_assertion(object: &VisaObject) -> Result<()> {
    if !is_url_claim(&object.source) {
        return Err(Error::InvalidVisa(
            "`source` must be a URL of at most 255 characters",
        ));
    }
    if let Some(by) = &object.by
        && !BY_VALUES.contains(&by.as_str())
    {
        return Err(Error::InvalidVisa(
            "`by` must be self, peer, system, so or dac",
        ));
    }
    let value = object.value.as_str();
    match object.visa_type.as_str() {
        "AcceptedTermsAndPolicies" | "ResearcherStatus" | "ControlledAccessGrants"
            if !is_url_claim(value) =>
        {
            return Err(Error::InvalidVisa("this visa type's `value` must be a URL"));
        }
        "AffiliationAndRole" => {
            let (role, affiliation) = value.split_once('@').unwrap_or_default();
            if role.is_empty() || affiliation.is_empty() {
                return Err(Error::InvalidVisa(
                    "an AffiliationAndRole `value` is role@affiliation",
                ));
            }
        }
        LINKED_IDENTITIES => {
            parse_linked_identities(value)?;
        }
        standard if STANDARD_TYPES.contains(&standard) => {}
        custom if !is_url_claim(custom) => {
            return Err(Error::InvalidVisa("a custom visa `type` must be a URL"));
        }
        _ => {}
    }
    if matches!(
        object.visa_type.as_str(),
        "AcceptedTermsAndPolicies" | "ControlledAccessGrants"
    ) && object.by.is_none()
    {
        return Err(Error::InvalidVisa("this visa type needs `by`"));
    }
    Ok(())
}

/// Whether `typ` names a Visa Document Token: [`VISA_TYP`], with or without `application/`,
/// or the general `JWT` (Passport §"typ"); media types compare case-insensitively.
fn is_visa_typ(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    let bare = typ.strip_prefix("application/").unwrap_or(&typ);
    bare == VISA_TYP || bare == "jwt"
}

/// The visas of a Passport claim in `claims` (a userinfo answer, or a Passport's payload): the
/// strings of its `ga4gh_passport_v1` array; none when the claim is absent.
pub fn passport_visas(claims: &Map<String, Value>) -> Result<Vec<&str>> {
    match claims.get(PASSPORT_CLAIM) {
        None => Ok(Vec::new()),
        Some(Value::Array(visas)) => visas
            .iter()
            .map(|v| v.as_str().ok_or(Error::InvalidClaim(PASSPORT_CLAIM)))
            .collect(),
        Some(_) => Err(Error::InvalidClaim(PASSPORT_CLAIM)),
    }
}

/// The value of a `LinkedIdentities` visa listing `identities` as (`sub`, `iss`) pairs: each
/// part URI-encoded (every character but RFC 3986's unreserved ones), `sub,iss`, joined by `;`.
pub fn linked_identities<'a>(identities: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    identities
        .into_iter()
        .map(|(sub, iss)| format!("{},{}", uri_encode(sub), uri_encode(iss)))
        .collect::<Vec<_>>()
        .join(";")
}

/// The (`sub`, `iss`) pairs of a `LinkedIdentities` value.
pub fn parse_linked_identities(value: &str) -> Result<Vec<(String, String)>> {
    const WHY: Error = Error::InvalidVisa("not a list of sub,iss pairs");
    value
        .split(';')
        .map(|entry| {
            let (sub, iss) = entry.split_once(',').ok_or(WHY)?;
            let (sub, iss) = (uri_decode(sub).ok_or(WHY)?, uri_decode(iss).ok_or(WHY)?);
            if sub.is_empty() || iss.is_empty() {
                return Err(WHY);
            }
            Ok((sub, iss))
        })
        .collect()
}

fn uri_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn uri_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b',' | b';' => return None,
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::b64;

    const NOW: UnixTime = 1_700_000_000;
    const ISSUER: &str = "https://broker.example";
    const JKU: &str = "https://broker.example/jwks";

    fn key() -> SigningKey {
        let key = SigningKey::generate(Algorithm::Es256).unwrap();
        let kid = key.public_jwk().thumbprint();
        key.with_kid(kid)
    }

    fn trusted(key: &SigningKey) -> Vec<TrustedIssuer> {
        vec![TrustedIssuer {
            issuer: ISSUER.into(),
            jku: JKU.into(),
            keys: vec![key.public_jwk().clone()],
        }]
    }

    fn grant() -> VisaClaims {
        VisaClaims {
            iss: ISSUER.into(),
            sub: "user-1".into(),
            iat: NOW,
            exp: NOW + 600,
            jti: Some("j1".into()),
            visa: VisaObject {
                visa_type: "ControlledAccessGrants".into(),
                asserted: NOW - 86_400,
                value: "https://ega.example/datasets/EGAD1".into(),
                source: "https://ega.example/dacs/EGAC1".into(),
                by: Some("dac".into()),
                conditions: Some(json!([[{"type": "AffiliationAndRole",
                                          "value": "const:faculty@uni.example"}]])),
            },
        }
    }

    /// `header.payload` signed by `key`, whatever they say.
    fn signed(key: &SigningKey, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64::encode(header.to_string()),
            b64::encode(payload.to_string())
        );
        let signature = key.sign_bytes(input.as_bytes()).unwrap();
        format!("{input}.{}", b64::encode(signature))
    }

    fn header(key: &SigningKey) -> Value {
        json!({"alg": "ES256", "typ": VISA_TYP, "jku": JKU,
               "kid": key.public_jwk().kid.clone().unwrap()})
    }

    #[test]
    fn a_signed_visa_verifies_with_its_header_and_claims_as_the_specification_has_them() {
        let key = key();
        let token = grant().sign(&key, JKU).unwrap();
        let jws = UnverifiedJws::from_compact(&token).unwrap();
        assert_eq!(jws.header().typ(), Some(VISA_TYP));
        assert_eq!(jws.header().str("jku"), Some(JKU));
        assert_eq!(jws.header().kid(), key.public_jwk().kid.as_deref());
        let verified = verify_visa(&token, &trusted(&key), NOW, 0).unwrap();
        assert_eq!(verified.claims, grant());
        assert!(verified.claims.visa.has_conditions());
        let payload = jws.verify(key.public_jwk()).unwrap().claims().unwrap();
        assert_eq!(payload.get(VISA_CLAIM).unwrap()["by"], "dac");
        assert_eq!(payload.get(VISA_CLAIM).unwrap()["asserted"], NOW - 86_400);
    }

    #[test]
    fn a_tampered_visa_is_refused() {
        let key = key();
        let token = grant().sign(&key, JKU).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut claims = grant().to_json();
        claims.insert("sub".into(), "someone-else".into());
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64::encode(Value::Object(claims).to_string()),
            parts[2]
        );
        assert_eq!(
            verify_visa(&forged, &trusted(&key), NOW, 0),
            Err(Error::BadSignature)
        );
        // Signed by another key under the trusted key's kid.
        let impostor = SigningKey::generate(Algorithm::Es256).unwrap();
        let token = signed(&impostor, &header(&key), &Value::Object(grant().to_json()));
        assert_eq!(
            verify_visa(&token, &trusted(&key), NOW, 0),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn an_expired_or_future_visa_is_refused_with_the_leeway_given() {
        let key = key();
        let token = grant().sign(&key, JKU).unwrap();
        assert!(verify_visa(&token, &trusted(&key), NOW + 600, 0).is_ok());
        assert_eq!(
            verify_visa(&token, &trusted(&key), NOW + 601, 0),
            Err(Error::Expired)
        );
        assert!(verify_visa(&token, &trusted(&key), NOW + 630, 30).is_ok());
        assert_eq!(
            verify_visa(&token, &trusted(&key), NOW - 31, 30),
            Err(Error::IatInFuture)
        );
    }

    #[test]
    fn only_a_trusted_issuer_at_its_own_key_set_is_believed() {
        let key = key();
        let token = grant().sign(&key, JKU).unwrap();
        // The key set named is not a trusted one, whoever signed.
        let elsewhere = grant().sign(&key, "https://evil.example/jwks").unwrap();
        assert_eq!(
            verify_visa(&elsewhere, &trusted(&key), NOW, 0),
            Err(Error::UntrustedJku)
        );
        // Nobody trusted.
        assert_eq!(verify_visa(&token, &[], NOW, 0), Err(Error::UntrustedJku));
        // A trusted key set, but the visa names another issuer.
        let other_iss = VisaClaims {
            iss: "https://other.example".into(),
            ..grant()
        };
        assert_eq!(
            verify_visa(&other_iss.sign(&key, JKU).unwrap(), &trusted(&key), NOW, 0),
            Err(Error::UntrustedVisaIssuer)
        );
        // A kid the key set does not hold.
        let stranger = SigningKey::generate(Algorithm::Es256)
            .unwrap()
            .with_kid("stranger");
        assert_eq!(
            verify_visa(
                &grant().sign(&stranger, JKU).unwrap(),
                &trusted(&key),
                NOW,
                0
            ),
            Err(Error::UnknownSigningKey)
        );
        // No jku at all.
        let mut bare = header(&key);
        bare.as_object_mut().unwrap().remove("jku");
        let token = signed(&key, &bare, &Value::Object(grant().to_json()));
        assert_eq!(
            verify_visa(&token, &trusted(&key), NOW, 0),
            Err(Error::MissingJku)
        );
    }

    #[test]
    fn a_wrong_typ_or_algorithm_is_refused() {
        let key = key();
        let payload = Value::Object(grant().to_json());
        for typ in ["at+jwt", "dpop+jwt", "vnd.ga4gh.passport+jwt"] {
            let mut h = header(&key);
            h["typ"] = typ.into();
            assert_eq!(
                verify_visa(&signed(&key, &h, &payload), &trusted(&key), NOW, 0),
                Err(Error::WrongTyp { expected: VISA_TYP }),
                "{typ}"
            );
        }
        for typ in [
            "JWT",
            "application/vnd.ga4gh.visa+jwt",
            "VND.GA4GH.VISA+JWT",
        ] {
            let mut h = header(&key);
            h["typ"] = typ.into();
            assert!(
                verify_visa(&signed(&key, &h, &payload), &trusted(&key), NOW, 0).is_ok(),
                "{typ}"
            );
        }
        let ed = SigningKey::generate(Algorithm::EdDsa)
            .unwrap()
            .with_kid("ed");
        assert_eq!(
            grant().sign(&ed, JKU),
            Err(Error::UnsupportedAlgorithm("EdDSA".into()))
        );
        let mut h = header(&ed);
        h["alg"] = "EdDSA".into();
        let issuers = vec![TrustedIssuer {
            keys: vec![ed.public_jwk().clone()],
            ..trusted(&key)[0].clone()
        }];
        assert_eq!(
            verify_visa(&signed(&ed, &h, &payload), &issuers, NOW, 0),
            Err(Error::UnsupportedAlgorithm("EdDSA".into()))
        );
    }

    #[test]
    fn malformed_visa_objects_and_claims_are_refused() {
        let key = key();
        let with = |edit: &dyn Fn(&mut Map<String, Value>)| {
            let mut claims = grant().to_json();
            edit(&mut claims);
            verify_visa(
                &signed(&key, &header(&key), &Value::Object(claims)),
                &trusted(&key),
                NOW,
                0,
            )
        };
        assert_eq!(
            with(&|c| {
                c.remove(VISA_CLAIM);
            }),
            Err(Error::MissingClaim(VISA_CLAIM))
        );
        assert_eq!(
            with(&|c| {
                c.remove("sub");
            }),
            Err(Error::MissingClaim("sub"))
        );
        for (member, bad) in [
            ("type", json!(1)),
            ("asserted", json!("yesterday")),
            ("value", json!(null)),
            ("source", json!("")),
            ("by", json!(["dac"])),
            ("conditions", json!([{"type": "x"}])),
            ("conditions", json!([[{"type": 1}]])),
        ] {
            let result = with(&|c| {
                c.get_mut(VISA_CLAIM).unwrap()[member] = bad.clone();
            });
            assert!(
                matches!(result, Err(Error::InvalidVisa(_))),
                "{member}: {result:?}"
            );
        }
        assert!(matches!(
            with(&|c| {
                c.insert("scope".into(), "openid ga4gh_passport_v1".into());
            }),
            Err(Error::InvalidVisa(_))
        ));
        let long = "a".repeat(MAX_VISA_BYTES + 1);
        assert!(matches!(
            verify_visa(&long, &trusted(&key), NOW, 0),
            Err(Error::InvalidVisa(_))
        ));
        assert!(matches!(
            verify_visa("not.a-visa", &trusted(&key), NOW, 0),
            Err(Error::MalformedJws(_))
        ));
    }

    #[test]
    fn linked_identities_values_encode_and_decode_as_the_specification_example() {
        let value = linked_identities([
            ("123456", "https://example.org/a|b,c"),
            ("7890", "https://example2.org"),
        ]);
        assert_eq!(
            value,
            "123456,https%3A%2F%2Fexample.org%2Fa%7Cb%2Cc;7890,https%3A%2F%2Fexample2.org"
        );
        assert_eq!(
            parse_linked_identities(&value).unwrap(),
            [
                ("123456".to_owned(), "https://example.org/a|b,c".to_owned()),
                ("7890".to_owned(), "https://example2.org".to_owned()),
            ]
        );
        for bad in ["", "a", "a,b,c", "a,%zz", ",b", "a,b;"] {
            assert!(parse_linked_identities(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_broker_inspects_without_keys_but_still_refuses_garbage_and_expired_visas() {
        let key = key();
        let token = grant().sign(&key, JKU).unwrap();
        assert_eq!(inspect_unverified(&token, NOW, 0).unwrap(), grant());
        assert_eq!(
            inspect_unverified(&token, NOW + 601, 0),
            Err(Error::Expired)
        );
        let mut h = header(&key);
        h["typ"] = "at+jwt".into();
        let payload = Value::Object(grant().to_json());
        assert_eq!(
            inspect_unverified(&signed(&key, &h, &payload), NOW, 0),
            Err(Error::WrongTyp { expected: VISA_TYP })
        );
        assert!(inspect_unverified("x.y.z", NOW, 0).is_err());
        let mut claims = grant().to_json();
        claims.remove(VISA_CLAIM);
        assert_eq!(
            inspect_unverified(&signed(&key, &header(&key), &Value::Object(claims)), NOW, 0),
            Err(Error::MissingClaim(VISA_CLAIM))
        );
    }

    #[test]
    fn assertions_follow_the_rules_of_their_type() {
        assert_eq!(check_assertion(&grant().visa), Ok(()));
        let with = |edit: &dyn Fn(&mut VisaObject)| {
            let mut object = grant().visa;
            edit(&mut object);
            check_assertion(&object)
        };
        assert!(with(&|o| o.by = None).is_err(), "a grant needs by");
        assert!(with(&|o| o.by = Some("boss".into())).is_err());
        assert!(with(&|o| o.source = "ega".into()).is_err());
        assert!(with(&|o| o.value = "EGAD1".into()).is_err());
        assert!(with(&|o| o.source = format!("https://e.example/{}", "a".repeat(250))).is_err());
        let role = |value: &str| {
            with(&|o| {
                o.visa_type = "AffiliationAndRole".into();
                o.value = value.into();
            })
        };
        assert!(role("faculty@uni.example").is_ok());
        assert!(role("faculty").is_err() && role("@uni.example").is_err());
        let custom = |visa_type: &str| with(&|o| o.visa_type = visa_type.into());
        assert!(custom("https://example.org/passportVisaTypes/researcherStudies").is_ok());
        assert!(custom("Researcher").is_err());
        assert!(
            with(&|o| {
                o.visa_type = LINKED_IDENTITIES.into();
                o.value = "no pairs".into();
            })
            .is_err()
        );
    }

    #[test]
    fn the_passport_claim_lists_strings() {
        let claims = json!({"ga4gh_passport_v1": ["a.b.c", "d.e.f"]});
        assert_eq!(
            passport_visas(claims.as_object().unwrap()).unwrap(),
            ["a.b.c", "d.e.f"]
        );
        assert!(passport_visas(&Map::new()).unwrap().is_empty());
        for bad in [
            json!({"ga4gh_passport_v1": "a.b.c"}),
            json!({"ga4gh_passport_v1": [1]}),
        ] {
            assert_eq!(
                passport_visas(bad.as_object().unwrap()),
                Err(Error::InvalidClaim(PASSPORT_CLAIM))
            );
        }
    }
}
