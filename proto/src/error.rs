//! The one error type of the crate. Every protocol check that can fail has its own variant, so
//! a server maps each to the exact wire error it owes the client (see the error modules of
//! `authz-server` and `acme-server`) and a test asserts *which* check refused an input.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a protocol object was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // ---- encodings and structure -------------------------------------------------------
    /// A member that must be base64url (no padding) is not.
    #[error("{field} is not valid base64url")]
    Base64 { field: &'static str },
    /// The JWS is not three dot-separated parts with a JSON object header.
    #[error("malformed JWS: {0}")]
    MalformedJws(&'static str),
    /// The JWS payload is not a JSON object of claims.
    #[error("malformed JWT claims: {0}")]
    MalformedClaims(&'static str),
    /// A required claim is absent.
    #[error("missing claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an unusable value.
    #[error("claim `{0}` has an invalid value")]
    InvalidClaim(&'static str),
    /// The JOSE header names an extension we must understand (`crit`).
    #[error("critical JOSE header extensions are not supported")]
    CriticalHeader,

    // ---- algorithms and keys ----------------------------------------------------------
    /// `alg` is not on the allow-list (this includes `none` and every HMAC algorithm).
    #[error("algorithm `{0}` is not allowed")]
    UnsupportedAlgorithm(String),
    /// `alg` does not belong to the key's type or curve.
    #[error("algorithm does not match the key type")]
    AlgorithmKeyMismatch,
    /// The header carries no `jwk` where one is required.
    #[error("missing `jwk` in the JOSE header")]
    MissingJwk,
    /// The JWK is not a usable public key.
    #[error("invalid JWK: {0}")]
    InvalidJwk(&'static str),
    /// The JWK contains private key material.
    #[error("JWK contains the private key member `{0}`")]
    PrivateKeyInJwk(&'static str),
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    BadSignature,
    /// No configured key matches the token's `kid` / `jwk`.
    #[error("the token is not signed by a trusted key")]
    UnknownSigningKey,
    /// A private key could not be generated, read or used.
    #[error("key error: {0}")]
    Key(&'static str),

    // ---- RFC 9449 DPoP proof checks ----------------------------------------------------
    /// No `DPoP` header.
    #[error("missing DPoP header")]
    MissingDpopHeader,
    /// More than one `DPoP` header.
    #[error("more than one DPoP header")]
    MultipleDpopHeaders,
    /// `typ` is not the required media type.
    #[error("`typ` must be `{expected}`")]
    WrongTyp { expected: &'static str },
    /// `htm` differs from the request method.
    #[error("`htm` does not match the request method")]
    HtmMismatch,
    /// `htu` differs from the request URI (after RFC 3986 normalisation).
    #[error("`htu` does not match the request URI")]
    HtuMismatch,
    /// A URI is not an absolute http(s) URI.
    #[error("invalid URI in `{0}`")]
    InvalidUri(&'static str),
    /// The server required a nonce and the proof carries none.
    #[error("the proof carries no nonce")]
    MissingNonce,
    /// The proof's nonce is not the one expected.
    #[error("the nonce does not match")]
    NonceMismatch,
    /// `iat` lies in the future beyond the allowed skew.
    #[error("`iat` is in the future")]
    IatInFuture,
    /// `iat` is older than the acceptance window.
    #[error("`iat` is too old")]
    IatTooOld,
    /// `nbf` lies in the future.
    #[error("not valid yet (`nbf`)")]
    NotYetValid,
    /// `exp` has passed.
    #[error("expired (`exp`)")]
    Expired,
    /// `exp` lies further ahead than allowed.
    #[error("`exp` is too far in the future")]
    ExpTooFar,
    /// The proof is used with an access token but carries no `ath`.
    #[error("missing `ath`")]
    MissingAth,
    /// `ath` is not the hash of the presented access token.
    #[error("`ath` does not match the access token")]
    AthMismatch,

    // ---- Wire claims ---------------------------------------------------------------------
    /// `chal` is not this challenge's token.
    #[error("`chal` does not match the challenge")]
    ChalMismatch,
    /// `sub` is not the expected client-id URI.
    #[error("`sub` does not match the client id")]
    SubMismatch,
    /// `handle` is not the expected handle URI.
    #[error("`handle` does not match")]
    HandleMismatch,
    /// `team` differs.
    #[error("`team` does not match")]
    TeamMismatch,
    /// `name` (display name) differs.
    #[error("`name` does not match")]
    NameMismatch,
    /// `aud` differs.
    #[error("`aud` does not match")]
    AudMismatch,
    /// A client-id URI is malformed.
    #[error("invalid client id: {0}")]
    InvalidClientId(&'static str),
    /// A handle URI is malformed.
    #[error("invalid handle: {0}")]
    InvalidHandle(&'static str),
    /// An ACME `wireapp-*` identifier value is malformed or inconsistent.
    #[error("invalid identifier: {0}")]
    InvalidIdentifier(&'static str),

    // ---- Wire access token -------------------------------------------------------------
    /// `iss` is not the expected access-token URL.
    #[error("`iss` does not match")]
    IssMismatch,
    /// `cnf` does not carry the thumbprint of the expected key.
    #[error("`cnf` is not bound to the expected key")]
    CnfMismatch,
    /// `client_id` is not the expected client id.
    #[error("`client_id` does not match")]
    ClientIdMismatch,
    /// `scope` is not the Wire scope.
    #[error("`scope` is not supported")]
    ScopeMismatch,
    /// `api_version` is not supported.
    #[error("`api_version` is not supported")]
    UnsupportedApiVersion,
    /// The embedded proof is signed by another key than the token is bound to.
    #[error("the embedded proof is not signed by the bound key")]
    ProofKeyMismatch,
    // ---- OpenID ID token (wire-oidc-01) -------------------------------------------------
    /// `keyauth` is not this challenge's key authorization.
    #[error("`keyauth` does not match the key authorization")]
    KeyAuthMismatch,
    /// `acme_aud` is not this challenge's URL.
    #[error("`acme_aud` does not match the challenge")]
    AcmeAudMismatch,

    // ---- GA4GH Visas ----------------------------------------------------------------------
    /// A visa names no `jku` (a Visa Document Token must).
    #[error("the visa names no `jku`")]
    MissingJku,
    /// The visa's `jku` is not the key set of any trusted issuer.
    #[error("the visa's `jku` is not a trusted issuer's key set")]
    UntrustedJku,
    /// The visa's `iss` is not the trusted issuer whose key set it names.
    #[error("the visa's issuer is not trusted")]
    UntrustedVisaIssuer,
    /// The visa's `ga4gh_visa_v1` object, or another part of it, is malformed.
    #[error("invalid visa: {0}")]
    InvalidVisa(&'static str),

    /// The DPoP proof embedded in an access token fails a check.
    #[error("embedded DPoP proof: {0}")]
    EmbeddedProof(Box<Error>),
}
